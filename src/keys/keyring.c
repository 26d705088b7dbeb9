/*
 * keyring.c — data keys: the phi_guard.keys table, a per-backend cache of
 * unwrapped keys, and the key lifecycle functions (SPEC §2).
 *
 * Cache: two dynahash tables in a private memory context — id -> KeyEntry
 * (prepared AES-GCM contexts, destroyed keys cached as such) and name ->
 * active id.  Unwrapped key bytes exist only transiently in a locked,
 * non-dumpable scratch page; afterwards only OpenSSL's key schedule holds
 * them.
 *
 * Coherence: a statement-level trigger on phi_guard.keys (any INSERT,
 * UPDATE, DELETE, TRUNCATE — by these functions, a restore or a superuser)
 * queues a relcache invalidation of the table.  Every backend flushes its
 * cache when it processes it: at its next transaction start or lock
 * acquisition, so a committed rotate or destroy takes effect in every
 * session's next call.  Rows are read with a fresh snapshot.
 *
 * The table is read directly (no SPI, no ACL check) so that phi_encryptor
 * and phi_decryptor need no privilege on it; writes go through SPI inside
 * SECURITY DEFINER functions granted to phi_key_admin.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_collation.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "audit/audit.h"
#include "core/keywrap.h"
#include "core/nonce.h"
#include "core/secmem.h"
#include "keys/indexkey.h"
#include "keys/keyring.h"
#include "phi_guard.h"
#include "common/stats.h"

/* column numbers of phi_guard.keys, checked against the table on load */
#define Anum_keys_id 1
#define Anum_keys_name 2
#define Anum_keys_version 3
#define Anum_keys_state 4
#define Anum_keys_wrapped 5
#define Natts_keys 6

typedef struct NameEntry
{
	char		name[KEY_NAME_MAX + 1]; /* hash key */
	uint32		active_id;
} NameEntry;

uint64		keyring_generation = 1;

static MemoryContext keyring_cxt = NULL;
static HTAB *by_id = NULL;
static HTAB *by_name = NULL;
static Oid	keys_relid = InvalidOid;
static Oid	keys_pkey_oid = InvalidOid;
static Oid	keys_name_idx_oid = InvalidOid;
static uint8 *dek_scratch = NULL;	/* PHIC_DEK_LEN bytes, secure page */

static void
keyring_flush(void)
{
	if (by_id)
	{
		HASH_SEQ_STATUS seq;
		KeyEntry   *e;

		hash_seq_init(&seq, by_id);
		while ((e = hash_seq_search(&seq)) != NULL)
			phic_gcm_free(e->gcm);
	}
	by_id = NULL;
	by_name = NULL;
	keys_relid = InvalidOid;
	if (keyring_cxt)
		MemoryContextReset(keyring_cxt);
	keyring_generation++;
}

static void
keyring_relcache_cb(Datum arg, Oid relid)
{
	if (relid == InvalidOid || (OidIsValid(keys_relid) && relid == keys_relid))
		keyring_flush();
}

void
keyring_init(void)
{
	CacheRegisterRelcacheCallback(keyring_relcache_cb, (Datum) 0);
}

static void
ensure_cache(void)
{
	HASHCTL		ctl;

	if (keyring_cxt == NULL)
		keyring_cxt = AllocSetContextCreate(TopMemoryContext, "phi_guard keyring",
											ALLOCSET_SMALL_SIZES);
	if (dek_scratch == NULL)
	{
		dek_scratch = phic_secmem_alloc(PHIC_DEK_LEN, NULL);
		if (dek_scratch == NULL)
			ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY),
							errmsg("could not allocate protected memory for data keys")));
	}
	if (!OidIsValid(keys_relid))
	{
		Oid			nsp = get_namespace_oid("phi_guard", true);

		keys_relid = OidIsValid(nsp) ? get_relname_relid("keys", nsp) : InvalidOid;
		keys_pkey_oid = OidIsValid(nsp) ? get_relname_relid("keys_pkey", nsp) : InvalidOid;
		keys_name_idx_oid = OidIsValid(nsp) ? get_relname_relid("keys_name_version_key", nsp) : InvalidOid;
		if (!OidIsValid(keys_relid) || !OidIsValid(keys_pkey_oid) || !OidIsValid(keys_name_idx_oid))
		{
			keys_relid = InvalidOid;
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("phi_guard keyring table is missing in this database"),
					 errhint("Run CREATE EXTENSION phi_guard.")));
		}
	}
	if (by_id == NULL)
	{
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(uint32);
		ctl.entrysize = sizeof(KeyEntry);
		ctl.hcxt = keyring_cxt;
		by_id = hash_create("phi_guard keys by id", 64, &ctl,
							HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = KEY_NAME_MAX + 1;
		ctl.entrysize = sizeof(NameEntry);
		ctl.hcxt = keyring_cxt;
		by_name = hash_create("phi_guard keys by name", 64, &ctl,
							  HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
	}
}

static char
state_code(const char *s)
{
	if (strcmp(s, "active") == 0)
		return 'a';
	if (strcmp(s, "retired") == 0)
		return 'r';
	return 'd';
}

/*
 * Turn one phi_guard.keys row into a cached entry, unwrapping its data key.
 * No lock is taken after the entry is inserted, so the returned pointer is
 * valid for the caller.
 */
static KeyEntry *
cache_row(TupleDesc desc, HeapTuple tup)
{
	Datum		values[Natts_keys];
	bool		nulls[Natts_keys];
	KeyEntry	tmp;
	KeyEntry   *e;
	bool		found;
	char	   *s;

	if (desc->natts != Natts_keys)
		elog(ERROR, "phi_guard.keys has an unexpected shape");
	heap_deform_tuple(tup, desc, values, nulls);

	memset(&tmp, 0, sizeof(tmp));
	tmp.id = (uint32) DatumGetInt32(values[Anum_keys_id - 1]);
	tmp.version = DatumGetInt32(values[Anum_keys_version - 1]);
	s = TextDatumGetCString(values[Anum_keys_name - 1]);
	strlcpy(tmp.name, s, sizeof(tmp.name));
	tmp.state = state_code(TextDatumGetCString(values[Anum_keys_state - 1]));
	if (tmp.state != 'd')
	{
		bytea	   *w;
		phic_status st;

		if (nulls[Anum_keys_wrapped - 1])
			tmp.state = 'd';
		else
		{
			w = DatumGetByteaPP(values[Anum_keys_wrapped - 1]);
			if (VARSIZE_ANY_EXHDR(w) != PHIC_WRAPPED_LEN)
				st = PHIC_ERR_FORMAT;
			else
				st = masterkey_unwrap(tmp.id, (const uint8 *) VARDATA_ANY(w),
									  dek_scratch, NULL);
			if (st == PHIC_ERR_AUTH || st == PHIC_ERR_FORMAT)
				ereport(ERROR,
						(errcode(ERRCODE_PHI_MASTER_KEY_MISMATCH),
						 errmsg("data key %u cannot be unwrapped with the configured master key", tmp.id),
						 masterkey_count() == 1
						 ? errdetail("The master key differs from the one that wrapped this data key, or phi_guard.keys was altered.")
						 : errdetail("None of the %d loaded master keys is the one that wrapped this data key, or phi_guard.keys was altered.",
									 masterkey_count()),
						 errhint("Start the server with the master key this keyring was created with (an old master key may follow the current one in the key file).")));
			if (st != PHIC_OK)
				errors_raise_core(st, "unwrap data key");
			tmp.gcm = phic_gcm_new(dek_scratch);
			phic_wipe(dek_scratch, PHIC_DEK_LEN);
			if (tmp.gcm == NULL)
				errors_raise_core(PHIC_ERR_CRYPTO, "prepare data key");
		}
	}

	e = hash_search(by_id, &tmp.id, HASH_ENTER, &found);
	if (found)
		phic_gcm_free(e->gcm);
	*e = tmp;
	if (e->state == 'a')
	{
		NameEntry  *n = hash_search(by_name, e->name, HASH_ENTER, NULL);

		n->active_id = e->id;
	}
	return e;
}

/* Snapshot that sees every committed change and our own earlier commands. */
static Snapshot
fresh_snapshot(void)
{
	return RegisterSnapshot(IsInParallelMode() ? GetTransactionSnapshot()
							: GetLatestSnapshot());
}

KeyEntry *
keyring_by_id(uint32 id)
{
	KeyEntry   *e;

	ensure_cache();
	e = hash_search(by_id, &id, HASH_FIND, NULL);
	stats_count(e ? PHI_STAT_KEY_CACHE_HIT : PHI_STAT_KEY_CACHE_MISS);
	if (e == NULL)
	{
		Relation	rel;
		ScanKeyData skey;
		SysScanDesc scan;
		HeapTuple	tup;
		Snapshot	snap;

		rel = table_open(keys_relid, AccessShareLock);
		ensure_cache();			/* the lock may have flushed it */
		snap = fresh_snapshot();
		ScanKeyInit(&skey, Anum_keys_id, BTEqualStrategyNumber, F_INT4EQ,
					Int32GetDatum((int32) id));
		scan = systable_beginscan(rel, keys_pkey_oid, true, snap, 1, &skey);
		tup = systable_getnext(scan);
		if (HeapTupleIsValid(tup))
			e = cache_row(RelationGetDescr(rel), tup);
		systable_endscan(scan);
		UnregisterSnapshot(snap);
		table_close(rel, AccessShareLock);
		if (e == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("key id %u does not exist in this database's keyring", id),
					 errhint("The value was encrypted in another database or its key row was removed.")));
	}
	if (e->state == 'd')
		ereport(ERROR,
				(errcode(ERRCODE_PHI_KEY_DESTROYED),
				 errmsg("key \"%s\" version %d was destroyed", e->name, e->version),
				 errdetail("Values encrypted under key id %u can no longer be decrypted.", e->id)));
	return e;
}

KeyEntry *
keyring_active(const char *name, int len)
{
	char		buf[KEY_NAME_MAX + 1];
	NameEntry  *n;
	KeyEntry   *e = NULL;

	if (len <= 0 || len > KEY_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key name must be 1 to %d bytes long", KEY_NAME_MAX)));
	memcpy(buf, name, len);
	buf[len] = '\0';

	ensure_cache();
	n = hash_search(by_name, buf, HASH_FIND, NULL);
	if (n != NULL)
		e = hash_search(by_id, &n->active_id, HASH_FIND, NULL);
	stats_count(e ? PHI_STAT_KEY_CACHE_HIT : PHI_STAT_KEY_CACHE_MISS);
	if (e == NULL)
	{
		Relation	rel;
		ScanKeyData skey;
		SysScanDesc scan;
		HeapTuple	tup;
		Snapshot	snap;
		bool		any = false;

		rel = table_open(keys_relid, AccessShareLock);
		ensure_cache();
		snap = fresh_snapshot();
		ScanKeyEntryInitialize(&skey, 0, Anum_keys_name, BTEqualStrategyNumber,
							   InvalidOid, C_COLLATION_OID, F_TEXTEQ,
							   CStringGetTextDatum(buf));
		scan = systable_beginscan(rel, keys_name_idx_oid, true, snap, 1, &skey);
		while (HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			bool		isnull;
			Datum		st = heap_getattr(tup, Anum_keys_state, RelationGetDescr(rel), &isnull);

			any = true;
			if (!isnull && strcmp(TextDatumGetCString(st), "active") == 0)
			{
				e = cache_row(RelationGetDescr(rel), tup);
				break;
			}
		}
		systable_endscan(scan);
		UnregisterSnapshot(snap);
		table_close(rel, AccessShareLock);
		if (!any)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("key \"%s\" does not exist", buf),
					 errhint("Create it with phi_key_create().")));
		if (e == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_PHI_NO_ACTIVE_KEY),
					 errmsg("key \"%s\" has no active version", buf),
					 errdetail("Every version of the key was destroyed."),
					 errhint("Create a new version with phi_key_rotate().")));
	}
	return e;
}

typedef struct NameCallCache
{
	uint64		generation;		/* keyring_generation when filled */
	int			len;
	char		name[KEY_NAME_MAX + 1];
	void	   *value;
} NameCallCache;

void *
keyring_by_name_arg(FunctionCallInfo fcinfo, int argno, KeyNameLookup lookup)
{
	NameCallCache *c = (NameCallCache *) fcinfo->flinfo->fn_extra;
	text	   *name;
	int			len;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	name = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(name);
	if (c == NULL)
	{
		c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(NameCallCache));
		fcinfo->flinfo->fn_extra = c;
		/* once per call site per query: see changes committed elsewhere */
		AcceptInvalidationMessages();
	}
	if (c->value && c->generation == keyring_generation && c->len == len &&
		memcmp(c->name, VARDATA_ANY(name), len) == 0)
		return c->value;
	c->value = lookup(VARDATA_ANY(name), len);	/* errors on a bad name */
	c->generation = keyring_generation;
	c->len = len;
	memcpy(c->name, VARDATA_ANY(name), len);
	return c->value;
}

/* ---------------------------------------------------------------------
 * Invalidation trigger
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(phi_guard_keys_changed);

/*
 * AFTER ... FOR EACH STATEMENT trigger on phi_guard.keys: tell every backend
 * (at commit) and this one (at the next command) to drop cached keys.
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

/* ---------------------------------------------------------------------
 * Key lifecycle (SECURITY DEFINER, granted to phi_key_admin)
 * --------------------------------------------------------------------- */

static void
check_key_name(text *name, char *out)
{
	int			len = VARSIZE_ANY_EXHDR(name);
	const char *p = VARDATA_ANY(name);
	int			i;

	if (len < 1 || len > KEY_NAME_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("key name must be 1 to %d bytes long", KEY_NAME_MAX)));
	for (i = 0; i < len; i++)
		if ((unsigned char) p[i] < 0x20 || p[i] == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key name must not contain control characters")));
	memcpy(out, p, len);
	out[len] = '\0';
}

static int64
spi_int(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute_with_args(sql, nargs, types, values, nulls, false, 1) < 0)
		elog(ERROR, "phi_guard: SPI failed for keyring statement");
	if (SPI_processed == 0)
		return -1;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return -1;
	return SPI_tuptable->tupdesc->attrs[0].atttypid == INT8OID
		? DatumGetInt64(d) : (int64) DatumGetInt32(d);
}

/* The audit entry of a key lifecycle change: which key, never key bytes. */
static void
audit_key_event(const char *kind, const char *name, int32 id, int32 version)
{
	StringInfoData detail;

	initStringInfo(&detail);
	appendStringInfoString(&detail, "{\"key\":");
	audit_json_string(&detail, name);
	if (id > 0)
		appendStringInfo(&detail, ",\"key_id\":%d", id);
	if (version > 0)
		appendStringInfo(&detail, ",\"version\":%d", version);
	appendStringInfoChar(&detail, '}');
	audit_write_one(kind, "phi_guard.keys", NULL, NULL, detail.data);
	pfree(detail.data);
}

/* Generate, wrap and insert a new active version; returns its id. */
static int32
insert_new_version(const char *name, int32 version)
{
	const uint8 *kek = masterkey_get();
	uint8		wrapped[PHIC_WRAPPED_LEN];
	bytea	   *wv;
	int64		id;
	phic_status st;
	Oid			types[4] = {INT4OID, TEXTOID, INT4OID, BYTEAOID};
	Datum		values[4];

	ensure_cache();
	id = spi_int("SELECT pg_catalog.nextval('phi_guard.keys_id_seq')::int4", 0, NULL, NULL, NULL);
	st = phic_random_bytes(dek_scratch, PHIC_DEK_LEN);
	if (st == PHIC_OK)
		st = phic_key_wrap(kek, (uint32) id, dek_scratch, wrapped);
	phic_wipe(dek_scratch, PHIC_DEK_LEN);
	if (st != PHIC_OK)
		errors_raise_core(st, "create data key");

	wv = (bytea *) palloc(VARHDRSZ + PHIC_WRAPPED_LEN);
	SET_VARSIZE(wv, VARHDRSZ + PHIC_WRAPPED_LEN);
	memcpy(VARDATA(wv), wrapped, PHIC_WRAPPED_LEN);
	values[0] = Int32GetDatum((int32) id);
	values[1] = CStringGetTextDatum(name);
	values[2] = Int32GetDatum(version);
	values[3] = PointerGetDatum(wv);
	if (SPI_execute_with_args("INSERT INTO phi_guard.keys (id, name, version, state, wrapped_key) "
							  "VALUES ($1, $2, $3, 'active', $4)",
							  4, types, values, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "phi_guard: could not insert key row");
	audit_key_event(version == 1 ? "key_create" : "key_rotate", name, (int32) id, version);
	return (int32) id;
}

/*
 * Common start of every lifecycle change: validate the name, connect SPI
 * and take a transaction-scoped advisory lock on the name (lock class
 * 0x50484947, "PHIG") so concurrent changes of one key serialise.  Returns
 * the name as a text Datum for SPI parameters.
 */
static Datum
begin_key_change(text *arg, char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		value;

	check_key_name(arg, name);
	SPI_connect();
	value = CStringGetTextDatum(name);
	spi_int("SELECT pg_catalog.pg_advisory_xact_lock(1346914631, pg_catalog.hashtext($1))",
			1, types, &value, NULL);
	return value;
}

PG_FUNCTION_INFO_V1(phi_guard_key_create);

/* phi_key_create(name text) returns int4: a new key, version 1. */
Datum
phi_guard_key_create(PG_FUNCTION_ARGS)
{
	char		name[KEY_NAME_MAX + 1];
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int32		id;

	(void) masterkey_get();
	values[0] = begin_key_change(PG_GETARG_TEXT_PP(0), name);
	if (spi_int("SELECT 1 FROM phi_guard.keys WHERE name OPERATOR(pg_catalog.=) $1 LIMIT 1",
				1, types, values, NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("key \"%s\" already exists", name),
				 errhint("Use phi_key_rotate() to add a new version.")));
	id = insert_new_version(name, 1);
	indexkey_create(name);
	SPI_finish();
	PG_RETURN_INT32(id);
}

PG_FUNCTION_INFO_V1(phi_guard_key_rotate);

/* phi_key_rotate(name text) returns int4: new active version, old retired. */
Datum
phi_guard_key_rotate(PG_FUNCTION_ARGS)
{
	char		name[KEY_NAME_MAX + 1];
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	int64		maxver;
	int32		id;

	(void) masterkey_get();
	values[0] = begin_key_change(PG_GETARG_TEXT_PP(0), name);
	maxver = spi_int("SELECT pg_catalog.max(version) FROM phi_guard.keys WHERE name OPERATOR(pg_catalog.=) $1",
					 1, types, values, NULL);
	if (maxver < 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("key \"%s\" does not exist", name),
				 errhint("Create it with phi_key_create().")));
	if (SPI_execute_with_args("UPDATE phi_guard.keys SET state = 'retired' "
							  "WHERE name OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.=) 'active'",
							  1, types, values, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "phi_guard: could not retire key");
	id = insert_new_version(name, (int32) maxver + 1);
	indexkey_create(name);		/* again, if the name had been destroyed */
	SPI_finish();
	PG_RETURN_INT32(id);
}

PG_FUNCTION_INFO_V1(phi_guard_key_destroy);

/*
 * phi_key_destroy(name text, version int4 DEFAULT NULL) returns int4:
 * crypto-shred one version (or all), returning how many were destroyed.
 */
Datum
phi_guard_key_destroy(PG_FUNCTION_ARGS)
{
	char		name[KEY_NAME_MAX + 1];
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2];
	char		nulls[2] = {' ', ' '};
	bool		all = PG_ARGISNULL(1);
	uint64		n;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	values[0] = begin_key_change(PG_GETARG_TEXT_PP(0), name);
	values[1] = all ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[1] = all ? 'n' : ' ';
	if (spi_int("SELECT 1 FROM phi_guard.keys WHERE name OPERATOR(pg_catalog.=) $1 "
				"AND ($2 IS NULL OR version OPERATOR(pg_catalog.=) $2) LIMIT 1",
				2, types, values, nulls) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 all ? errmsg("key \"%s\" does not exist", name)
				 : errmsg("key \"%s\" has no version %d", name, PG_GETARG_INT32(1))));
	if (SPI_execute_with_args("UPDATE phi_guard.keys SET state = 'destroyed', wrapped_key = NULL "
							  "WHERE name OPERATOR(pg_catalog.=) $1 "
							  "AND ($2 IS NULL OR version OPERATOR(pg_catalog.=) $2) "
							  "AND state OPERATOR(pg_catalog.<>) 'destroyed'",
							  2, types, values, nulls, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "phi_guard: could not destroy key");
	n = SPI_processed;
	if (all)
		indexkey_destroy(name);	/* blind indexes and tokens go with the key */
	if (n > 0)
		audit_key_event("key_destroy", name, 0, all ? 0 : PG_GETARG_INT32(1));
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}

/* ---------------------------------------------------------------------
 * Master-key rotation (SECURITY DEFINER, granted to phi_key_admin)
 *
 * Both phi_guard.keys and phi_guard.index_keys hold (id int4, wrapped_key
 * bytea) in the SPEC §2 format, so one pair of routines serves both.  Only
 * wrapped_key changes: data keys, and therefore every ciphertext, blind
 * index and token, stay the same.
 * --------------------------------------------------------------------- */

/* PH004 for a wrapped key (of kind what) that no loaded master key opens. */
static void
no_master_key_opens(const char *what, uint32 id)
{
	ereport(ERROR,
			(errcode(ERRCODE_PHI_MASTER_KEY_MISMATCH),
			 errmsg("%s %u cannot be unwrapped with the configured master key", what, id),
			 errdetail("None of the %d loaded master keys is the one that wrapped it, or the table was altered.",
					   masterkey_count()),
			 errhint("List the master key that wrapped it after the current one in the key file or command output, restart the server and run phi_master_key_rewrap() again.")));
}

/*
 * Rewrap under the current master key every non-NULL wrapped key of table
 * that an older loaded master key opens; returns how many rows changed.
 * The caller is SPI-connected and holds a lock that keeps other key changes
 * out.  A row that no loaded key opens fails the whole call with PH004.
 */
static int64
rewrap_table(const char *table, const char *what)
{
	const uint8 *kek = masterkey_get();
	char		sql[256];
	SPITupleTable *tt;
	uint64		n,
				i;
	int64		done = 0;
	Oid			types[3] = {INT4OID, BYTEAOID, BYTEAOID};

	snprintf(sql, sizeof(sql),
			 "SELECT id, wrapped_key FROM %s WHERE wrapped_key IS NOT NULL ORDER BY id", table);
	if (SPI_execute(sql, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "phi_guard: could not read %s", table);
	tt = SPI_tuptable;
	n = SPI_processed;
	snprintf(sql, sizeof(sql),
			 "UPDATE %s SET wrapped_key = $2 WHERE id OPERATOR(pg_catalog.=) $1 "
			 "AND wrapped_key OPERATOR(pg_catalog.=) $3", table);
	for (i = 0; i < n; i++)
	{
		bool		isnull;
		uint32		id;
		bytea	   *w;
		bytea	   *nw;
		int			slot = 0;
		phic_status st;
		Datum		values[3];

		id = (uint32) DatumGetInt32(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));
		w = DatumGetByteaPP(SPI_getbinval(tt->vals[i], tt->tupdesc, 2, &isnull));
		if (VARSIZE_ANY_EXHDR(w) != PHIC_WRAPPED_LEN)
			no_master_key_opens(what, id);
		st = masterkey_unwrap(id, (const uint8 *) VARDATA_ANY(w), dek_scratch, &slot);
		if (st == PHIC_ERR_AUTH)
			no_master_key_opens(what, id);
		if (st != PHIC_OK)
			errors_raise_core(st, "unwrap data key");
		if (slot == 0)
		{
			phic_wipe(dek_scratch, PHIC_DEK_LEN);
			continue;			/* already under the current master key */
		}
		nw = (bytea *) palloc(VARHDRSZ + PHIC_WRAPPED_LEN);
		SET_VARSIZE(nw, VARHDRSZ + PHIC_WRAPPED_LEN);
		st = phic_key_wrap(kek, id, dek_scratch, (uint8 *) VARDATA(nw));
		phic_wipe(dek_scratch, PHIC_DEK_LEN);
		if (st != PHIC_OK)
			errors_raise_core(st, "rewrap data key");
		values[0] = Int32GetDatum((int32) id);
		values[1] = PointerGetDatum(nw);
		values[2] = PointerGetDatum(w);
		if (SPI_execute_with_args(sql, 3, types, values, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "phi_guard: could not store a rewrapped key in %s", table);
		done += (int64) SPI_processed;
		pfree(nw);
	}
	return done;
}

PG_FUNCTION_INFO_V1(phi_guard_master_key_rewrap);

/*
 * phi_master_key_rewrap() returns int8: moves every data key and index key
 * still wrapped under an old master key to the current one (the first in
 * the key file or command output) and returns how many it rewrapped.
 * Blocks concurrent key creation, rotation and destruction for its
 * duration; audited as kind master_key_rewrap.  Other sessions keep their
 * cached keys (the unwrapped bytes do not change) and reload rows after the
 * invalidation the table triggers raise.
 */
Datum
phi_guard_master_key_rewrap(PG_FUNCTION_ARGS)
{
	int64		data_keys,
				index_keys;
	StringInfoData detail;

	(void) masterkey_get();
	ensure_cache();
	SPI_connect();
	if (SPI_execute("LOCK TABLE phi_guard.keys, phi_guard.index_keys IN SHARE ROW EXCLUSIVE MODE",
					false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "phi_guard: could not lock the keyring");
	data_keys = rewrap_table("phi_guard.keys", "data key");
	index_keys = rewrap_table("phi_guard.index_keys", "index key");

	initStringInfo(&detail);
	appendStringInfo(&detail,
					 "{\"master_key\":\"%s\",\"data_keys\":" INT64_FORMAT ",\"index_keys\":" INT64_FORMAT "}",
					 masterkey_fingerprint(0), data_keys, index_keys);
	audit_write_one("master_key_rewrap", "phi_guard.keys", NULL, NULL, detail.data);
	pfree(detail.data);
	SPI_finish();
	PG_RETURN_INT64(data_keys + index_keys);
}

/*
 * Count the wrapped keys of table by the loaded master key that opens them:
 * counts[slot] for slot 0..nkeys-1, counts[nkeys] for those none opens.
 * The caller is SPI-connected.
 */
static void
count_table(const char *table, int64 *counts, int nkeys)
{
	char		sql[160];
	uint64		i;

	snprintf(sql, sizeof(sql),
			 "SELECT id, wrapped_key FROM %s WHERE wrapped_key IS NOT NULL", table);
	if (SPI_execute(sql, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "phi_guard: could not read %s", table);
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		uint32		id;
		bytea	   *w;
		int			slot = nkeys;

		id = (uint32) DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		w = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));
		if (VARSIZE_ANY_EXHDR(w) == PHIC_WRAPPED_LEN)
		{
			phic_status st = masterkey_unwrap(id, (const uint8 *) VARDATA_ANY(w),
											  dek_scratch, &slot);

			phic_wipe(dek_scratch, PHIC_DEK_LEN);
			if (st == PHIC_ERR_AUTH)
				slot = nkeys;
			else if (st != PHIC_OK)
				errors_raise_core(st, "unwrap data key");
		}
		counts[slot]++;
	}
}

PG_FUNCTION_INFO_V1(phi_guard_master_key_status);

/*
 * phi_master_key_status() returns setof (slot, name, fingerprint, current,
 * data_keys, index_keys): one row per loaded master key in key-file order
 * (slot 1 is the current key) with how many data and index keys each one
 * opens, plus a row with NULL slot when some keys open with none of them.
 * Secret-free: the fingerprint is a truncated domain-separated hash.
 */
Datum
phi_guard_master_key_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			nkeys = masterkey_count();
	int64		data[MASTERKEY_MAX + 1];
	int64		idx[MASTERKEY_MAX + 1];
	int			i;

	InitMaterializedSRF(fcinfo, 0);
	memset(data, 0, sizeof(data));
	memset(idx, 0, sizeof(idx));
	ensure_cache();
	SPI_connect();
	count_table("phi_guard.keys", data, nkeys);
	count_table("phi_guard.index_keys", idx, nkeys);
	SPI_finish();

	for (i = 0; i <= nkeys; i++)
	{
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		const char *name = i < nkeys ? masterkey_name(i) : NULL;

		if (i == nkeys && data[i] == 0 && idx[i] == 0)
			break;
		if (i < nkeys)
		{
			values[0] = Int32GetDatum(i + 1);
			values[2] = CStringGetTextDatum(masterkey_fingerprint(i));
		}
		else
			nulls[0] = nulls[2] = true;
		if (name)
			values[1] = CStringGetTextDatum(name);
		else
			nulls[1] = true;
		values[3] = BoolGetDatum(i == 0);
		values[4] = Int64GetDatum(data[i]);
		values[5] = Int64GetDatum(idx[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
