/*
 * indexkey.c — root keys for blind indexes and token fingerprints.
 *
 * Table phi_guard.index_keys holds one wrapped 32-byte root key per key
 * name, created with the name's first version and destroyed with its last
 * (phi_key_destroy(name) without a version).  It is wrapped exactly like a
 * data key (SPEC §2 format) under an id drawn from the same sequence, so
 * ids never collide.  The root key is never used directly: two subkeys are
 * derived from it with HMAC-SHA256 and kept as prepared HMAC states in a
 * per-backend cache, flushed (like the data-key cache) by a relcache
 * invalidation that the table's statement trigger raises.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "core/keywrap.h"
#include "core/nonce.h"
#include "core/secmem.h"
#include "keys/indexkey.h"
#include "keys/keyring.h"
#include "phi_guard.h"

#define BLIND_LABEL "phi_guard.blind_index.v1"
#define TOKEN_LABEL "phi_guard.token.v1"

static HTAB *cache = NULL;
static MemoryContext cache_cxt = NULL;
static Oid	table_relid = InvalidOid;

static void
flush(void)
{
	if (cache)
	{
		HASH_SEQ_STATUS seq;
		IndexKey   *k;

		hash_seq_init(&seq, cache);
		while ((k = hash_seq_search(&seq)) != NULL)
		{
			phic_hmac_free(k->blind);
			phic_hmac_free(k->token);
		}
	}
	cache = NULL;
	table_relid = InvalidOid;
	if (cache_cxt)
		MemoryContextReset(cache_cxt);
	keyring_generation++;		/* callers cache IndexKey pointers under it */
}

static void
relcache_cb(Datum arg, Oid relid)
{
	if (relid == InvalidOid || (OidIsValid(table_relid) && relid == table_relid))
		flush();
}

void
indexkey_init(void)
{
	CacheRegisterRelcacheCallback(relcache_cb, (Datum) 0);
}

static void
ensure(void)
{
	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(TopMemoryContext, "phi_guard index keys",
										  ALLOCSET_SMALL_SIZES);
	if (!OidIsValid(table_relid))
	{
		Oid			nsp = get_namespace_oid("phi_guard", true);

		table_relid = OidIsValid(nsp) ? get_relname_relid("index_keys", nsp) : InvalidOid;
		if (!OidIsValid(table_relid))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("phi_guard index key table is missing in this database"),
					 errhint("Run CREATE EXTENSION phi_guard.")));
	}
	if (cache == NULL)
	{
		HASHCTL		ctl;

		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = 64;
		ctl.entrysize = sizeof(IndexKey);
		ctl.hcxt = cache_cxt;
		cache = hash_create("phi_guard index keys", 32, &ctl,
							HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
}

static phic_hmac *
derive(const uint8 *root, const char *label)
{
	uint8		sub[PHIC_HMAC_LEN];
	phic_hmac  *r = phic_hmac_new(root, PHIC_DEK_LEN);
	phic_hmac  *h = NULL;

	if (r && phic_hmac3(r, label, strlen(label), NULL, 0, NULL, 0, sub) == PHIC_OK)
		h = phic_hmac_new(sub, sizeof(sub));
	phic_hmac_free(r);
	phic_wipe(sub, sizeof(sub));
	if (h == NULL)
		errors_raise_core(PHIC_ERR_CRYPTO, "derive index key");
	return h;
}

const IndexKey *
indexkey_get(const char *name, int len)
{
	char		buf[64];
	IndexKey   *k;
	Relation	rel;
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;
	uint32		id = 0;
	uint8		wrapped[PHIC_WRAPPED_LEN];
	uint8	   *root;
	bool		found = false;
	phic_status st;

	if (len <= 0 || len > KEY_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key name must be 1 to %d bytes long", KEY_NAME_MAX)));
	memcpy(buf, name, len);
	buf[len] = '\0';
	ensure();
	k = hash_search(cache, buf, HASH_FIND, NULL);
	if (k)
		return k;

	rel = table_open(table_relid, AccessShareLock);
	ensure();
	snap = RegisterSnapshot(IsInParallelMode() ? GetTransactionSnapshot() : GetLatestSnapshot());
	ScanKeyEntryInitialize(&skey, 0, 1, BTEqualStrategyNumber, InvalidOid,
						   C_COLLATION_OID, F_TEXTEQ, CStringGetTextDatum(buf));
	scan = systable_beginscan(rel, get_relname_relid("index_keys_pkey", RelationGetNamespace(rel)),
							  true, snap, 1, &skey);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		bool		isnull;
		bytea	   *w;

		id = (uint32) DatumGetInt32(heap_getattr(tup, 2, RelationGetDescr(rel), &isnull));
		w = DatumGetByteaPP(heap_getattr(tup, 3, RelationGetDescr(rel), &isnull));
		if (!isnull && VARSIZE_ANY_EXHDR(w) == PHIC_WRAPPED_LEN)
		{
			memcpy(wrapped, VARDATA_ANY(w), PHIC_WRAPPED_LEN);
			found = true;
		}
	}
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
	if (!found)
	{
		/* the name's state tells which error: unknown, or destroyed */
		(void) keyring_active(buf, len);
		ereport(ERROR,
				(errcode(ERRCODE_PHI_KEY_DESTROYED),
				 errmsg("the index key of key \"%s\" is missing", buf),
				 errhint("Rotate the key to create a new one; existing blind indexes and tokens cannot be recomputed.")));
	}

	root = phic_secmem_alloc(PHIC_DEK_LEN, NULL);
	if (root == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("could not allocate protected memory for an index key")));
	/* current master key first, then the old ones (phi_master_key_rewrap) */
	st = masterkey_unwrap(id, wrapped, root, NULL);
	if (st != PHIC_OK)
	{
		phic_secmem_free(root, PHIC_DEK_LEN);
		if (st != PHIC_ERR_AUTH)
			errors_raise_core(st, "unwrap index key");
		ereport(ERROR,
				(errcode(ERRCODE_PHI_MASTER_KEY_MISMATCH),
				 errmsg("index key %u cannot be unwrapped with the configured master key", id),
				 errhint("Start the server with the master key this keyring was created with (an old master key may follow the current one in the key file).")));
	}
	PG_TRY();
	{
		IndexKey	tmp;

		memset(&tmp, 0, sizeof(tmp));
		strlcpy(tmp.name, buf, sizeof(tmp.name));
		tmp.blind = derive(root, BLIND_LABEL);
		tmp.token = derive(root, TOKEN_LABEL);
		k = hash_search(cache, buf, HASH_ENTER, NULL);
		*k = tmp;
	}
	PG_FINALLY();
	{
		phic_secmem_free(root, PHIC_DEK_LEN);
	}
	PG_END_TRY();
	return k;
}

/* Create the name's root key unless it exists (caller is SPI-connected). */
void
indexkey_create(const char *name)
{
	uint8	   *root = phic_secmem_alloc(PHIC_DEK_LEN, NULL);
	uint8		wrapped[PHIC_WRAPPED_LEN];
	bytea	   *wv;
	Oid			types[3] = {TEXTOID, INT4OID, BYTEAOID};
	Datum		values[3];
	bool		isnull;
	int32		id;
	phic_status st;

	if (root == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
						errmsg("could not allocate protected memory for an index key")));
	values[0] = CStringGetTextDatum(name);
	if (SPI_execute_with_args("SELECT 1 FROM phi_guard.index_keys WHERE name OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "phi_guard: could not read index keys");
	if (SPI_processed > 0)
	{
		phic_secmem_free(root, PHIC_DEK_LEN);
		return;
	}
	if (SPI_execute("SELECT pg_catalog.nextval('phi_guard.keys_id_seq')::int4", false, 1) != SPI_OK_SELECT)
		elog(ERROR, "phi_guard: could not draw a key id");
	id = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	st = phic_random_bytes(root, PHIC_DEK_LEN);
	if (st == PHIC_OK)
		st = phic_key_wrap(masterkey_get(), (uint32) id, root, wrapped);
	phic_secmem_free(root, PHIC_DEK_LEN);
	if (st != PHIC_OK)
		errors_raise_core(st, "create index key");
	wv = palloc(VARHDRSZ + PHIC_WRAPPED_LEN);
	SET_VARSIZE(wv, VARHDRSZ + PHIC_WRAPPED_LEN);
	memcpy(VARDATA(wv), wrapped, PHIC_WRAPPED_LEN);
	values[1] = Int32GetDatum(id);
	values[2] = PointerGetDatum(wv);
	if (SPI_execute_with_args("INSERT INTO phi_guard.index_keys (name, id, wrapped_key) VALUES ($1, $2, $3)",
							  3, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "phi_guard: could not store index key");
}

/* Crypto-shred the name's root key (caller is SPI-connected). */
void
indexkey_destroy(const char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(name)};

	if (SPI_execute_with_args("DELETE FROM phi_guard.index_keys WHERE name OPERATOR(pg_catalog.=) $1",
							  1, types, values, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "phi_guard: could not destroy index key");
}
