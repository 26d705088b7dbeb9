/*
 * keystore.c — the one store behind phi_guard.keys, phi_guard.index_keys
 * and phi_guard.key_access (keystore.h): cache, coherence, reads, unwrap,
 * wrap-and-insert, rewrap.
 *
 * Three stores: data keys (keyring.c), index keys (indexkey.c) and the
 * access rules of key names (keyaccess.c, which holds no key bytes and
 * uses only the cache, coherence and reads).
 *
 * Cache: per store, hash tables in a private memory context.  OpenSSL
 * state built from key bytes (AES-GCM contexts, HMAC pad states) belongs
 * to the slot of its entry the moment it is created, and the entry is in
 * the store's LRU list before its key is unwrapped; flushing the cache
 * frees the state of every listed entry, then resets the context (in that
 * order: the entries live in the hash tables' own child contexts, which a
 * reset deletes before it would run a callback of the parent), so an
 * error between two allocations leaves nothing unowned.  The stores of key material are
 * bounded: past phi_guard.key_cache_size entries, admitting one evicts the
 * least recently used (its state freed, its entry removed), and
 * keystore_generation moves so that no caller keeps its pointer.  Memory
 * per cached data key: the entry (about 250 bytes with the hash table's
 * overhead) and OpenSSL's two AES-GCM contexts (README, "Keys").
 *
 * Coherence: a statement-level trigger on each table (any INSERT, UPDATE,
 * DELETE, TRUNCATE — by the key functions, a restore or a superuser) queues
 * a relcache invalidation of the table (phi_guard_keys_changed).  Every
 * backend watches a store's table from the store's first use (before
 * anything is cached) and flushes the store when it processes such an
 * invalidation: at its next transaction start or lock acquisition, so a
 * committed rotate, destroy or rule change takes effect in every session's
 * next call.  Each flush bumps keystore_generation, the
 * one counter under which callers cache entry pointers.  Rows are read with
 * a fresh snapshot, directly (no SPI, no ACL check), so that phi_encryptor
 * and phi_decryptor need no privilege on the tables.
 *
 * Key bytes: unwrapped or generated keys exist only transiently in one
 * locked, non-dumpable scratch page per backend, wiped after each use (also
 * on error); afterwards only OpenSSL's key schedules hold them.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "common/catalog.h"
#include "common/errors.h"
#include "common/spi.h"
#include "core/keywrap.h"
#include "core/nonce.h"
#include "core/secmem.h"
#include "keys/keys.h"
#include "keys/keystore.h"
#include "keys/masterkey.h"
#include "phi_guard.h"

#define SCRATCH_LEN (2 * PHIC_DEK_LEN)	/* a key and as much work space */
#define MAX_VALUES 4			/* caller values of keystore_insert_new */

uint64		keystore_generation = 1;
int			phi_guard_key_cache_size = 1000;

static uint8 *scratch = NULL;	/* SCRATCH_LEN bytes, secure page */

/* The protected scratch page, mapped on first use. */
static uint8 *
scratch_page(void)
{
	if (scratch == NULL)
	{
		scratch = phic_secmem_alloc(SCRATCH_LEN, NULL);
		if (scratch == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not allocate protected memory for keys")));
	}
	return scratch;
}

/* errors_raise_core for step verb ("unwrap", ...) on a key of ks. */
static void
raise_core(phic_status st, const char *verb, KeyStore *ks) pg_attribute_noreturn();

static void
raise_core(phic_status st, const char *verb, KeyStore *ks)
{
	errors_raise_core(st, psprintf("%s %s", verb, ks->what));
}

/*
 * PH004 for key id of ks that no loaded master key opens; rewrapping says
 * whether phi_master_key_rewrap met it (another remedy applies).
 */
static void
unwrap_failed(KeyStore *ks, uint32 id, bool rewrapping) pg_attribute_noreturn();

static void
unwrap_failed(KeyStore *ks, uint32 id, bool rewrapping)
{
	int			n = masterkey_count();

	ereport(ERROR,
			(errcode(ERRCODE_PHI_MASTER_KEY_MISMATCH),
			 errmsg("%s %u cannot be unwrapped with the configured master key", ks->what, id),
			 n == 1
			 ? errdetail("The master key differs from the one that wrapped this %s, or phi_guard.%s was altered.",
						 ks->what, ks->table)
			 : errdetail("None of the %d loaded master keys is the one that wrapped this %s, or phi_guard.%s was altered.",
						 n, ks->what, ks->table),
			 rewrapping
			 ? errhint("List the master key that wrapped it after the current one in the key file or command output, restart the server and run phi_master_key_rewrap() again.")
			 : errhint("Start the server with the master key this keyring was created with (an old master key may follow the current one in the key file).")));
	pg_unreachable();
}

void
keystore_name(const char *name, int len, char *out)
{
	if (len <= 0 || len > KEY_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key name must be 1 to %d bytes long", KEY_NAME_MAX)));
	memcpy(out, name, len);
	out[len] = '\0';
}

/* ---------------------------------------------------------------------
 * Cache and coherence
 * --------------------------------------------------------------------- */

/* Free the OpenSSL state slot owns. */
static void
release_objects(KeyCacheSlot *slot)
{
	for (int i = 0; i < slot->nobj; i++)
		slot->release[i] (slot->obj[i]);
	slot->nobj = 0;
}

/* Free the OpenSSL state of every entry of ks's LRU list. */
static void
release_all(KeyStore *ks)
{
	dlist_iter	it;

	dlist_foreach(it, &ks->lru)
		release_objects(dlist_container(KeyCacheSlot, node, it.cur));
}

/* Drop every entry of ks (freeing their OpenSSL state) and its OIDs. */
static void
flush(KeyStore *ks)
{
	for (int i = 0; i < KEYSTORE_HASHES; i++)
		ks->hash[i] = NULL;
	ks->relid = InvalidOid;
	if (ks->cxt)
	{
		release_all(ks);
		MemoryContextReset(ks->cxt);
	}
	dlist_init(&ks->lru);
	ks->count = 0;
	keystore_generation++;
}

/*
 * One relcache callback for every store (PostgreSQL has ten slots per
 * backend, shared with other extensions such as Citus): flush each watched
 * store whose table the invalidation names.
 */
static KeyStore *watched[3];
static int	nwatched = 0;

static void
relcache_cb(Datum arg, Oid relid)
{
	for (int i = 0; i < nwatched; i++)
	{
		KeyStore   *ks = watched[i];

		if (relid == InvalidOid || (OidIsValid(ks->relid) && relid == ks->relid))
			flush(ks);
	}
}

/* The OID of relation name of ks: 55000 when missing, unless ks is optional. */
static Oid
store_relid(KeyStore *ks, const char *name)
{
	return ks->optional ? catalog_relid(name) : catalog_relid_required(name, ks->table_what);
}

bool
keystore_ready(KeyStore *ks)
{
	if (ks->cxt == NULL)
	{
		/* first use in this backend: watch the table before caching from it */
		if (nwatched == 0)
			CacheRegisterRelcacheCallback(relcache_cb, (Datum) 0);
		if (nwatched == lengthof(watched))
			elog(ERROR, "too many phi_guard key stores");
		watched[nwatched++] = ks;
		ks->cxt = AllocSetContextCreate(TopMemoryContext, "phi_guard key cache",
										ALLOCSET_SMALL_SIZES);
		MemoryContextSetIdentifier(ks->cxt, ks->table);
		dlist_init(&ks->lru);
	}
	if (!OidIsValid(ks->relid))
	{
		Oid			relid = store_relid(ks, ks->table);

		if (!OidIsValid(relid))
			return false;
		for (int i = 0; i < KEYSTORE_INDEXES; i++)
			ks->index_oid[i] = ks->index[i] ? catalog_relid(ks->index[i]) : InvalidOid;
		ks->tenant_attno = get_attnum(relid, "tenant");
		ks->relid = relid;
	}
	if (ks->hash[0] == NULL)
	{
		for (int i = 0; i < KEYSTORE_HASHES && ks->hash_def[i].name; i++)
		{
			HASHCTL		ctl;

			memset(&ctl, 0, sizeof(ctl));
			ctl.keysize = ks->hash_def[i].keysize;
			ctl.entrysize = ks->hash_def[i].entrysize;
			ctl.hcxt = ks->cxt;
			ks->hash[i] = hash_create(ks->hash_def[i].name, 32, &ctl,
									  HASH_ELEM | HASH_CONTEXT | ks->hash_def[i].flags);
		}
	}
	return true;
}

void
keystore_read(KeyStore *ks, int idx, AttrNumber attno, RegProcedure eqproc,
			  Datum value, KeyStoreVisit visit, void *arg)
{
	ScanKeyData skey;

	ScanKeyInit(&skey, attno, BTEqualStrategyNumber, eqproc, value);
	keystore_read_keys(ks, idx, &skey, 1, visit, arg);
}

void
keystore_name_keys(KeyStore *ks, AttrNumber name_attno, ScanKey keys, const KeyName *kn)
{
	if (kn->tenant[0] == '\0')
		ScanKeyEntryInitialize(&keys[0], SK_ISNULL | SK_SEARCHNULL, ks->tenant_attno,
							   InvalidStrategy, InvalidOid, InvalidOid, InvalidOid, (Datum) 0);
	else
		ScanKeyInit(&keys[0], ks->tenant_attno, BTEqualStrategyNumber, F_TEXTEQ,
					CStringGetTextDatum(kn->tenant));
	ScanKeyInit(&keys[1], name_attno, BTEqualStrategyNumber, F_TEXTEQ,
				CStringGetTextDatum(kn->name));
}

void
keystore_read_keys(KeyStore *ks, int idx, ScanKey keys, int nkeys,
				   KeyStoreVisit visit, void *arg)
{
	Relation	rel;
	SysScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;

	if (!keystore_ready(ks))
		return;
	rel = table_open(ks->relid, AccessShareLock);
	keystore_ready(ks);			/* the lock may have flushed the cache */
	if (!OidIsValid(ks->index_oid[idx]))
		(void) catalog_relid_required(ks->index[idx], ks->table_what);
	/* sees every committed change and our own earlier commands */
	snap = RegisterSnapshot(IsInParallelMode() ? GetTransactionSnapshot()
							: GetLatestSnapshot());
	scan = systable_beginscan(rel, ks->index_oid[idx], true, snap, nkeys, keys);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
		if (visit(ks, RelationGetDescr(rel), tup, arg))
			break;
	systable_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, AccessShareLock);
}

/* ---------------------------------------------------------------------
 * Key bytes and the OpenSSL state built from them
 * --------------------------------------------------------------------- */

void
keystore_unwrap(KeyStore *ks, uint32 id, bytea *wrapped,
				KeyStorePrepare prepare, void *arg)
{
	uint8	   *key = scratch_page();
	phic_status st = PHIC_ERR_FORMAT;

	if (VARSIZE_ANY_EXHDR(wrapped) == PHIC_WRAPPED_LEN)
		st = masterkey_unwrap(id, (const uint8 *) VARDATA_ANY(wrapped), key, NULL);
	if (st != PHIC_OK)
	{
		phic_wipe(key, SCRATCH_LEN);
		if (st == PHIC_ERR_AUTH || st == PHIC_ERR_FORMAT)
			unwrap_failed(ks, id, false);
		raise_core(st, "unwrap", ks);
	}
	PG_TRY();
	{
		prepare(ks, key, key + PHIC_DEK_LEN, arg);
	}
	PG_FINALLY();
	{
		phic_wipe(key, SCRATCH_LEN);
	}
	PG_END_TRY();
}

static void
release_gcm(void *arg)
{
	phic_gcm_free((phic_gcm *) arg);
}

static void
release_hmac(void *arg)
{
	phic_hmac_free((phic_hmac *) arg);
}

/* Give obj to slot (nothing can fail between obj's creation and this). */
static void
own(KeyCacheSlot *slot, void (*release) (void *), void *obj)
{
	Assert(slot->nobj < lengthof(slot->obj));
	slot->release[slot->nobj] = release;
	slot->obj[slot->nobj++] = obj;
}

phic_gcm *
keystore_gcm(KeyCacheSlot *slot, const uint8 *key, const char *what)
{
	phic_gcm   *g = phic_gcm_new(key);

	if (g == NULL)
		errors_raise_core(PHIC_ERR_CRYPTO, what);
	own(slot, release_gcm, g);
	return g;
}

phic_hmac *
keystore_hmac(KeyCacheSlot *slot, const uint8 *key, size_t len, const char *what)
{
	phic_hmac  *h = phic_hmac_new(key, len);

	if (h == NULL)
		errors_raise_core(PHIC_ERR_CRYPTO, what);
	own(slot, release_hmac, h);
	return h;
}

/* ---------------------------------------------------------------------
 * The bound: LRU eviction
 * --------------------------------------------------------------------- */

void
keystore_evict(KeyStore *ks, KeyCacheSlot *slot)
{
	release_objects(slot);
	dlist_delete(&slot->node);
	ks->count--;
	/* the hash key starts the entry */
	(void) hash_search(ks->hash[slot->hash_idx], slot->entry, HASH_REMOVE, NULL);
	keystore_generation++;
}

void
keystore_admit(KeyStore *ks, int hash_idx, void *entry, KeyCacheSlot *slot)
{
	Assert(ks->bounded);
	slot->hash_idx = hash_idx;
	slot->entry = entry;
	slot->nobj = 0;
	dlist_push_head(&ks->lru, &slot->node);
	ks->count++;
	while (ks->count > phi_guard_key_cache_size && dlist_tail_node(&ks->lru) != &slot->node)
		keystore_evict(ks, dlist_container(KeyCacheSlot, node, dlist_tail_node(&ks->lru)));
}

void
keystore_touch(KeyStore *ks, KeyCacheSlot *slot)
{
	if (dlist_head_node(&ks->lru) != &slot->node)
		dlist_move_head(&ks->lru, &slot->node);
}

/* ---------------------------------------------------------------------
 * Writes (inside SPI, in SECURITY DEFINER functions)
 * --------------------------------------------------------------------- */

/* A wrapped_key value: a bytea of PHIC_WRAPPED_LEN bytes to fill. */
static bytea *
new_wrapped(void)
{
	bytea	   *w = (bytea *) palloc(VARHDRSZ + PHIC_WRAPPED_LEN);

	SET_VARSIZE(w, VARHDRSZ + PHIC_WRAPPED_LEN);
	return w;
}

int32
keystore_insert_new(KeyStore *ks, const char *insert_sql, int nvalues,
					Oid *types, Datum *values)
{
	const uint8 *kek = masterkey_get();
	uint8	   *key = scratch_page();
	bytea	   *wrapped = new_wrapped();
	Oid			all_types[2 + MAX_VALUES] = {INT4OID, BYTEAOID};
	Datum		all_values[2 + MAX_VALUES];
	int64		id;
	phic_status st;

	Assert(nvalues <= MAX_VALUES);
	id = spi_int("SELECT pg_catalog.nextval('phi_guard.keys_id_seq')::int4",
				 0, NULL, NULL, NULL);
	st = phic_random_bytes(key, PHIC_DEK_LEN);
	if (st == PHIC_OK)
		st = phic_key_wrap(kek, (uint32) id, key, (uint8 *) VARDATA(wrapped));
	phic_wipe(key, PHIC_DEK_LEN);
	if (st != PHIC_OK)
		raise_core(st, "create", ks);

	all_values[0] = Int32GetDatum((int32) id);
	all_values[1] = PointerGetDatum(wrapped);
	memcpy(all_types + 2, types, nvalues * sizeof(Oid));
	memcpy(all_values + 2, values, nvalues * sizeof(Datum));
	if (spi_run(insert_sql, 2 + nvalues, all_types, all_values, NULL, false) != SPI_OK_INSERT)
		elog(ERROR, "phi_guard: could not store a new %s", ks->what);
	return (int32) id;
}

/* Row i of an SPI result (id, wrapped_key). */
static void
spi_row(SPITupleTable *tt, uint64 i, uint32 *id, bytea **wrapped)
{
	bool		isnull;

	*id = (uint32) DatumGetInt32(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
	*wrapped = DatumGetByteaPP(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
}

int64
keystore_rewrap(KeyStore *ks)
{
	const uint8 *kek = masterkey_get();
	uint8	   *key = scratch_page();
	char	   *update;
	SPITupleTable *tt;
	uint64		n;
	int64		done = 0;
	Oid			types[3] = {INT4OID, BYTEAOID, BYTEAOID};

	if (spi_run(psprintf("SELECT id, wrapped_key FROM phi_guard.%s "
						 "WHERE wrapped_key IS NOT NULL ORDER BY id", ks->table),
				0, NULL, NULL, NULL, false) != SPI_OK_SELECT)
		elog(ERROR, "phi_guard: could not read phi_guard.%s", ks->table);
	tt = SPI_tuptable;
	n = SPI_processed;
	update = psprintf("UPDATE phi_guard.%s SET wrapped_key = $2 WHERE id OPERATOR(pg_catalog.=) $1 "
					  "AND wrapped_key OPERATOR(pg_catalog.=) $3", ks->table);
	for (uint64 i = 0; i < n; i++)
	{
		uint32		id;
		bytea	   *w;
		bytea	   *nw;
		int			slot = 0;
		phic_status st;
		Datum		values[3];

		spi_row(tt, i, &id, &w);
		if (VARSIZE_ANY_EXHDR(w) != PHIC_WRAPPED_LEN)
			unwrap_failed(ks, id, true);
		st = masterkey_unwrap(id, (const uint8 *) VARDATA_ANY(w), key, &slot);
		if (st == PHIC_ERR_AUTH)
			unwrap_failed(ks, id, true);
		if (st != PHIC_OK)
			raise_core(st, "unwrap", ks);
		if (slot == 0)
		{
			phic_wipe(key, PHIC_DEK_LEN);
			continue;			/* already under the current master key */
		}
		nw = new_wrapped();
		st = phic_key_wrap(kek, id, key, (uint8 *) VARDATA(nw));
		phic_wipe(key, PHIC_DEK_LEN);
		if (st != PHIC_OK)
			raise_core(st, "rewrap", ks);
		values[0] = Int32GetDatum((int32) id);
		values[1] = PointerGetDatum(nw);
		values[2] = PointerGetDatum(w);
		if (spi_run(update, 3, types, values, NULL, false) != SPI_OK_UPDATE)
			elog(ERROR, "phi_guard: could not store a rewrapped key in phi_guard.%s", ks->table);
		done += (int64) SPI_processed;
		pfree(nw);
	}
	return done;
}

void
keystore_count_by_master(KeyStore *ks, int64 *counts, int nkeys)
{
	uint8	   *key = scratch_page();

	if (spi_run(psprintf("SELECT id, wrapped_key FROM phi_guard.%s "
						 "WHERE wrapped_key IS NOT NULL", ks->table),
				0, NULL, NULL, NULL, true) != SPI_OK_SELECT)
		elog(ERROR, "phi_guard: could not read phi_guard.%s", ks->table);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		uint32		id;
		bytea	   *w;
		int			slot = nkeys;

		spi_row(SPI_tuptable, i, &id, &w);
		if (VARSIZE_ANY_EXHDR(w) == PHIC_WRAPPED_LEN)
		{
			phic_status st = masterkey_unwrap(id, (const uint8 *) VARDATA_ANY(w), key, &slot);

			phic_wipe(key, PHIC_DEK_LEN);
			if (st == PHIC_ERR_AUTH)
				slot = nkeys;
			else if (st != PHIC_OK)
				raise_core(st, "unwrap", ks);
		}
		counts[slot]++;
	}
}

/* ---------------------------------------------------------------------
 * Invalidation trigger
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(phi_guard_keys_changed);

/*
 * AFTER ... FOR EACH STATEMENT trigger on phi_guard.keys,
 * phi_guard.index_keys and phi_guard.key_access: tell every backend (at
 * commit) and this one (at the next command) to drop what it cached from
 * the table.
 */
Datum
phi_guard_keys_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("phi_guard_keys_changed must be called as a trigger")));
	CacheInvalidateRelcacheByRelid(RelationGetRelid(trig->tg_relation));
	return PointerGetDatum(NULL);
}
