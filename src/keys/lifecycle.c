/*
 * lifecycle.c — the key lifecycle (SPEC §2): phi_key_create, phi_key_rotate
 * and phi_key_destroy, SECURITY DEFINER functions granted to phi_key_admin.
 *
 * Every write of phi_guard.keys and phi_guard.index_keys outside master-key
 * rotation happens here, through SPI as the tables' owner.  A key name's
 * data-key versions and its index key change together: the index key is
 * created with the first version (or again by a rotation after every
 * version was destroyed) and destroyed with the last.  Concurrent changes
 * of one name serialise on a transaction-scoped advisory lock (class
 * 0x50484947, "PHIG").  Each change is an audit entry naming the key, never
 * key bytes.  Other backends see a change after commit through the tables'
 * invalidation trigger (keystore.c).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "audit/audit.h"
#include "common/spi.h"
#include "keys/keys.h"
#include "keys/keystore.h"
#include "keys/masterkey.h"

/*
 * Validate a new or changed key name argument into out (KEY_NAME_MAX + 1
 * bytes): a lookup's length rule, and no control characters.
 */
static void
check_key_name(text *name, char *out)
{
	keystore_name(VARDATA_ANY(name), VARSIZE_ANY_EXHDR(name), out);
	for (const char *p = out; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("key name must not contain control characters")));
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

/* Generate, wrap and insert an active data-key version; returns its id. */
static int32
insert_version(const char *name, int32 version)
{
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {CStringGetTextDatum(name), Int32GetDatum(version)};
	int32		id;

	id = keystore_insert_new(&keyring_store,
							 "INSERT INTO phi_guard.keys (id, wrapped_key, name, version, state) "
							 "VALUES ($1, $2, $3, $4, 'active')",
							 2, types, values);
	audit_key_event(version == 1 ? "key_create" : "key_rotate", name, id, version);
	return id;
}

/* Create the name's index key unless it has one. */
static void
ensure_index_key(Datum name)
{
	Oid			types[1] = {TEXTOID};

	if (spi_int("SELECT 1 FROM phi_guard.index_keys WHERE name OPERATOR(pg_catalog.=) $1",
				1, types, &name, NULL) > 0)
		return;
	(void) keystore_insert_new(&indexkey_store,
							   "INSERT INTO phi_guard.index_keys (id, wrapped_key, name) "
							   "VALUES ($1, $2, $3)",
							   1, types, &name);
}

/*
 * Common start of every lifecycle change: validate the name, connect SPI
 * and take the name's advisory lock.  Returns the name as a text Datum for
 * SPI parameters.
 */
static Datum
begin_key_change(text *arg, char *name)
{
	Oid			types[1] = {TEXTOID};
	Datum		value;

	check_key_name(arg, name);
	SPI_connect();
	value = CStringGetTextDatum(name);
	(void) spi_run("SELECT pg_catalog.pg_advisory_xact_lock(1346914631, pg_catalog.hashtext($1))",
				   1, types, &value, NULL, false);
	return value;
}

PG_FUNCTION_INFO_V1(phi_guard_key_create);

/* phi_key_create(name text) returns int4: a new key, version 1. */
Datum
phi_guard_key_create(PG_FUNCTION_ARGS)
{
	char		name[KEY_NAME_MAX + 1];
	Oid			types[1] = {TEXTOID};
	Datum		value;
	int32		id;

	(void) masterkey_get();
	value = begin_key_change(PG_GETARG_TEXT_PP(0), name);
	if (spi_int("SELECT 1 FROM phi_guard.keys WHERE name OPERATOR(pg_catalog.=) $1 LIMIT 1",
				1, types, &value, NULL) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("key \"%s\" already exists", name),
				 errhint("Use phi_key_rotate() to add a new version.")));
	id = insert_version(name, 1);
	ensure_index_key(value);
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
	Datum		value;
	int64		maxver;
	int32		id;

	(void) masterkey_get();
	value = begin_key_change(PG_GETARG_TEXT_PP(0), name);
	maxver = spi_int("SELECT pg_catalog.max(version) FROM phi_guard.keys WHERE name OPERATOR(pg_catalog.=) $1",
					 1, types, &value, NULL);
	if (maxver < 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("key \"%s\" does not exist", name),
				 errhint("Create it with phi_key_create().")));
	if (spi_run("UPDATE phi_guard.keys SET state = 'retired' "
				"WHERE name OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.=) 'active'",
				1, types, &value, NULL, false) != SPI_OK_UPDATE)
		elog(ERROR, "phi_guard: could not retire key");
	id = insert_version(name, (int32) maxver + 1);
	ensure_index_key(value);	/* again, if the name had been destroyed */
	SPI_finish();
	PG_RETURN_INT32(id);
}

PG_FUNCTION_INFO_V1(phi_guard_key_destroy);

/*
 * phi_key_destroy(name text, version int4 DEFAULT NULL) returns int4:
 * crypto-shred one version (or all, and the name's index key with them),
 * returning how many versions were destroyed.
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
	if (spi_run("UPDATE phi_guard.keys SET state = 'destroyed', wrapped_key = NULL "
				"WHERE name OPERATOR(pg_catalog.=) $1 "
				"AND ($2 IS NULL OR version OPERATOR(pg_catalog.=) $2) "
				"AND state OPERATOR(pg_catalog.<>) 'destroyed'",
				2, types, values, nulls, false) != SPI_OK_UPDATE)
		elog(ERROR, "phi_guard: could not destroy key");
	n = SPI_processed;
	/* blind indexes and tokens go with the key */
	if (all && spi_run("DELETE FROM phi_guard.index_keys WHERE name OPERATOR(pg_catalog.=) $1",
					   1, types, values, NULL, false) != SPI_OK_DELETE)
		elog(ERROR, "phi_guard: could not destroy index key");
	if (n > 0)
		audit_key_event("key_destroy", name, 0, all ? 0 : PG_GETARG_INT32(1));
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}
