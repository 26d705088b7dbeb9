/*
 * lifecycle.c — the key lifecycle (SPEC §2, §9): phi_key_create,
 * phi_key_rotate, phi_key_destroy and phi_tenant_shred, SECURITY DEFINER
 * functions granted to phi_key_admin.
 *
 * Every write of phi_guard.keys and phi_guard.index_keys outside master-key
 * rotation happens here, through SPI as the tables' owner.  A key is a name
 * of one tenant, or shared (tenant NULL): each (tenant, name) has its own
 * versions and its own index key, created with the first version (or again
 * by a rotation after every version was destroyed) and destroyed with the
 * last.  A call without a tenant never touches tenant keys.  Concurrent
 * changes of one name serialise on a transaction-scoped advisory lock
 * (class 0x50484947, "PHIG", on the name's hash, every tenant alike);
 * phi_tenant_shred locks the key tables against every other change while
 * it destroys.  Each change is an audit entry naming the key and its
 * tenant, never key bytes.  Other backends see a change after commit
 * through the tables' invalidation trigger (keystore.c).  A database not
 * yet updated to 0.3.0 has no tenant column: shared keys only.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"

#include "audit/audit.h"
#include "common/catalog.h"
#include "common/spi.h"
#include "keys/keys.h"
#include "keys/keystore.h"
#include "keys/masterkey.h"

/* One key change: its name, its tenant ("" shared), as SPI parameters. */
typedef struct KeyChange
{
	char		name[KEY_NAME_MAX + 1];
	char		tenant[TENANT_MAX + 1];
	Datum		values[3];		/* $1 name, $2 tenant, $3 the call's extra value */
	char		nulls[3];
	const char *tenant_cond;	/* SQL: the rows of this tenant */
} KeyChange;

static Oid	change_types[3] = {TEXTOID, TEXTOID, INT4OID};

/* Reject control characters in a new or changed name or tenant. */
static void
check_no_controls(const char *s, const char *what)
{
	for (const char *p = s; *p; p++)
		if ((unsigned char) *p < 0x20 || *p == 0x7f)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain control characters", what)));
}

/* Validate a tenant argument (not NULL) into out (TENANT_MAX + 1 bytes). */
static void
check_tenant(text *arg, char *out)
{
	int			len = VARSIZE_ANY_EXHDR(arg);

	if (len < 1 || len > TENANT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tenant must be 1 to %d bytes long", TENANT_MAX)));
	memcpy(out, VARDATA_ANY(arg), len);
	out[len] = '\0';
	check_no_controls(out, "tenant");
}

/* Whether phi_guard.keys has tenants (0.3.0). */
static bool
keys_have_tenants(void)
{
	keystore_ready(&keyring_store);
	return keyring_store.tenant_attno != 0;
}

/* The audit entry of a key lifecycle change: which key, never key bytes. */
static void
audit_key_event(const char *kind, const KeyChange *c, int32 id, int32 version)
{
	StringInfoData detail;

	initStringInfo(&detail);
	appendStringInfoString(&detail, "{\"key\":");
	audit_json_string(&detail, c->name);
	if (c->tenant[0])
	{
		appendStringInfoString(&detail, ",\"tenant\":");
		audit_json_string(&detail, c->tenant);
	}
	if (id > 0)
		appendStringInfo(&detail, ",\"key_id\":%d", id);
	if (version > 0)
		appendStringInfo(&detail, ",\"version\":%d", version);
	appendStringInfoChar(&detail, '}');
	audit_write_one(kind, "phi_guard.keys", NULL, NULL, detail.data);
	pfree(detail.data);
}

/* SQL run for change c: sql with %s replaced by c's tenant condition. */
static int
change_run(KeyChange *c, const char *sql, bool read_only)
{
	return spi_run(psprintf(sql, c->tenant_cond), 3, change_types,
				   c->values, c->nulls, read_only);
}

static int64
change_int(KeyChange *c, const char *sql)
{
	return spi_int(psprintf(sql, c->tenant_cond), 3, change_types,
				   c->values, c->nulls);
}

/* Generate, wrap and insert an active data-key version; returns its id. */
static int32
insert_version(const KeyChange *c, int32 version)
{
	Oid			types[3] = {TEXTOID, INT4OID, TEXTOID};
	Datum		values[3] = {c->values[0], Int32GetDatum(version), c->values[1]};
	int32		id;

	id = keystore_insert_new(&keyring_store, c->tenant[0]
							 ? "INSERT INTO phi_guard.keys (id, wrapped_key, name, version, state, tenant) "
							 "VALUES ($1, $2, $3, $4, 'active', $5)"
							 : "INSERT INTO phi_guard.keys (id, wrapped_key, name, version, state) "
							 "VALUES ($1, $2, $3, $4, 'active')",
							 c->tenant[0] ? 3 : 2, types, values);
	audit_key_event(version == 1 ? "key_create" : "key_rotate", c, id, version);
	return id;
}

/* Create the key's index key unless it has one. */
static void
ensure_index_key(KeyChange *c)
{
	Oid			types[2] = {TEXTOID, TEXTOID};

	if (change_int(c, "SELECT 1 FROM phi_guard.index_keys WHERE name OPERATOR(pg_catalog.=) $1 AND %s") > 0)
		return;
	(void) keystore_insert_new(&indexkey_store, c->tenant[0]
							   ? "INSERT INTO phi_guard.index_keys (id, wrapped_key, name, tenant) "
							   "VALUES ($1, $2, $3, $4)"
							   : "INSERT INTO phi_guard.index_keys (id, wrapped_key, name) "
							   "VALUES ($1, $2, $3)",
							   c->tenant[0] ? 2 : 1, types, c->values);
}

/*
 * Common start of every lifecycle change: validate the name and the tenant
 * argument tenant_argno (-1 or NULL: shared), connect SPI and take the
 * name's advisory lock.  Tenant keys need the 0.3.0 schema.
 */
static void
begin_key_change(FunctionCallInfo fcinfo, int tenant_argno, KeyChange *c)
{
	Oid			types[1] = {TEXTOID};

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	memset(c, 0, sizeof(*c));
	keystore_name(VARDATA_ANY(PG_GETARG_TEXT_PP(0)), VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0)), c->name);
	check_no_controls(c->name, "key name");
	if (tenant_argno >= 0 && tenant_argno < PG_NARGS() && !PG_ARGISNULL(tenant_argno))
		check_tenant(PG_GETARG_TEXT_PP(tenant_argno), c->tenant);
	c->values[0] = CStringGetTextDatum(c->name);
	c->values[1] = c->tenant[0] ? CStringGetTextDatum(c->tenant) : (Datum) 0;
	c->nulls[0] = ' ';
	c->nulls[1] = c->tenant[0] ? ' ' : 'n';
	c->nulls[2] = 'n';
	if (!keys_have_tenants())
	{
		if (c->tenant[0])
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("tenant keys need phi_guard 0.3.0 in this database"),
					 errhint("Run ALTER EXTENSION phi_guard UPDATE.")));
		c->tenant_cond = "true";
	}
	else
		c->tenant_cond = c->tenant[0] ? "tenant OPERATOR(pg_catalog.=) $2" : "tenant IS NULL";
	SPI_connect();
	(void) spi_run("SELECT pg_catalog.pg_advisory_xact_lock(1346914631, pg_catalog.hashtext($1))",
				   1, types, c->values, NULL, false);
}

PG_FUNCTION_INFO_V1(phi_guard_key_create);

/*
 * phi_key_create(name text) and phi_key_create(name text, tenant text)
 * returns int4: a new key of the tenant (NULL: shared), version 1.
 */
Datum
phi_guard_key_create(PG_FUNCTION_ARGS)
{
	KeyChange	c;
	int32		id;

	(void) masterkey_get();
	begin_key_change(fcinfo, 1, &c);
	if (change_int(&c, "SELECT 1 FROM phi_guard.keys WHERE name OPERATOR(pg_catalog.=) $1 AND %s LIMIT 1") > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 c.tenant[0] ? errmsg("key \"%s\" of tenant \"%s\" already exists", c.name, c.tenant)
				 : errmsg("key \"%s\" already exists", c.name),
				 errhint("Use phi_key_rotate() to add a new version.")));
	id = insert_version(&c, 1);
	ensure_index_key(&c);
	SPI_finish();
	PG_RETURN_INT32(id);
}

PG_FUNCTION_INFO_V1(phi_guard_key_rotate);

/*
 * phi_key_rotate(name text, tenant text DEFAULT NULL) returns int4: new
 * active version of the tenant's key (NULL: the shared one), old retired.
 */
Datum
phi_guard_key_rotate(PG_FUNCTION_ARGS)
{
	KeyChange	c;
	int64		maxver;
	int32		id;

	(void) masterkey_get();
	begin_key_change(fcinfo, 1, &c);
	maxver = change_int(&c, "SELECT pg_catalog.max(version) FROM phi_guard.keys "
						"WHERE name OPERATOR(pg_catalog.=) $1 AND %s");
	if (maxver < 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 c.tenant[0] ? errmsg("key \"%s\" of tenant \"%s\" does not exist", c.name, c.tenant)
				 : errmsg("key \"%s\" does not exist", c.name),
				 errhint("Create it with phi_key_create().")));
	if (change_run(&c, "UPDATE phi_guard.keys SET state = 'retired' "
				   "WHERE name OPERATOR(pg_catalog.=) $1 AND %s AND state OPERATOR(pg_catalog.=) 'active'",
				   false) != SPI_OK_UPDATE)
		elog(ERROR, "phi_guard: could not retire key");
	id = insert_version(&c, (int32) maxver + 1);
	ensure_index_key(&c);		/* again, if the key had been destroyed */
	SPI_finish();
	PG_RETURN_INT32(id);
}

PG_FUNCTION_INFO_V1(phi_guard_key_destroy);

/*
 * phi_key_destroy(name text, version int4 DEFAULT NULL, tenant text
 * DEFAULT NULL) returns int4: crypto-shred one version of the tenant's key
 * (NULL: the shared one), or all of them and its index key, returning how
 * many versions were destroyed.
 */
Datum
phi_guard_key_destroy(PG_FUNCTION_ARGS)
{
	KeyChange	c;
	bool		all = PG_ARGISNULL(1);
	uint64		n;

	begin_key_change(fcinfo, 2, &c);
	c.values[2] = all ? (Datum) 0 : PG_GETARG_DATUM(1);
	c.nulls[2] = all ? 'n' : ' ';
	if (change_int(&c, "SELECT 1 FROM phi_guard.keys WHERE name OPERATOR(pg_catalog.=) $1 AND %s "
				   "AND ($3 IS NULL OR version OPERATOR(pg_catalog.=) $3) LIMIT 1") < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 all ? (c.tenant[0] ? errmsg("key \"%s\" of tenant \"%s\" does not exist", c.name, c.tenant)
						: errmsg("key \"%s\" does not exist", c.name))
				 : (c.tenant[0] ? errmsg("key \"%s\" of tenant \"%s\" has no version %d", c.name, c.tenant,
										 PG_GETARG_INT32(1))
					: errmsg("key \"%s\" has no version %d", c.name, PG_GETARG_INT32(1)))));
	if (change_run(&c, "UPDATE phi_guard.keys SET state = 'destroyed', wrapped_key = NULL "
				   "WHERE name OPERATOR(pg_catalog.=) $1 AND %s "
				   "AND ($3 IS NULL OR version OPERATOR(pg_catalog.=) $3) "
				   "AND state OPERATOR(pg_catalog.<>) 'destroyed'", false) != SPI_OK_UPDATE)
		elog(ERROR, "phi_guard: could not destroy key");
	n = SPI_processed;
	/* blind indexes and tokens go with the key */
	if (all && change_run(&c, "DELETE FROM phi_guard.index_keys WHERE name OPERATOR(pg_catalog.=) $1 AND %s",
						  false) != SPI_OK_DELETE)
		elog(ERROR, "phi_guard: could not destroy index key");
	if (n > 0)
		audit_key_event("key_destroy", &c, 0, all ? 0 : PG_GETARG_INT32(1));
	SPI_finish();
	PG_RETURN_INT32((int32) n);
}

PG_FUNCTION_INFO_V1(phi_guard_tenant_shred);

/*
 * phi_tenant_shred(tenant text) returns int4: destroy every data-key
 * version and index key of tenant, returning how many versions were
 * destroyed; the tenant's values can no longer be decrypted (PH002), its
 * blind indexes and tokens no longer recomputed.  Other tenants and the
 * shared keys are untouched.  One audit entry (tenant_shred), marked as a
 * change of a safeguard, whenever a key of the tenant existed.
 */
Datum
phi_guard_tenant_shred(PG_FUNCTION_ARGS)
{
	char		tenant[TENANT_MAX + 1];
	Oid			types[1] = {TEXTOID};
	Datum		value;
	int64		names;
	uint64		n,
				m;
	StringInfoData detail;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tenant must not be null"),
				 errhint("Shared keys are destroyed one by one with phi_key_destroy().")));
	check_tenant(PG_GETARG_TEXT_PP(0), tenant);
	if (!keys_have_tenants())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("tenant keys need phi_guard 0.3.0 in this database"),
				 errhint("Run ALTER EXTENSION phi_guard UPDATE.")));
	value = CStringGetTextDatum(tenant);
	SPI_connect();
	/* no key of any name changes meanwhile; readers go on */
	(void) spi_run("LOCK TABLE phi_guard.keys, phi_guard.index_keys IN SHARE ROW EXCLUSIVE MODE",
				   0, NULL, NULL, NULL, false);
	names = spi_int("SELECT pg_catalog.count(DISTINCT name) FROM phi_guard.keys "
					"WHERE tenant OPERATOR(pg_catalog.=) $1", 1, types, &value, NULL);
	if (names <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant \"%s\" has no keys", tenant),
				 errhint("phi_guard.key_status lists the keys of each tenant.")));
	if (spi_run("UPDATE phi_guard.keys SET state = 'destroyed', wrapped_key = NULL "
				"WHERE tenant OPERATOR(pg_catalog.=) $1 AND state OPERATOR(pg_catalog.<>) 'destroyed'",
				1, types, &value, NULL, false) != SPI_OK_UPDATE)
		elog(ERROR, "phi_guard: could not destroy the tenant's keys");
	n = SPI_processed;
	if (spi_run("DELETE FROM phi_guard.index_keys WHERE tenant OPERATOR(pg_catalog.=) $1",
				1, types, &value, NULL, false) != SPI_OK_DELETE)
		elog(ERROR, "phi_guard: could not destroy the tenant's index keys");
	m = SPI_processed;
	SPI_finish();

	initStringInfo(&detail);
	appendStringInfoString(&detail, "{\"tenant\":");
	audit_json_string(&detail, tenant);
	appendStringInfo(&detail, ",\"key_names\":" INT64_FORMAT ",\"versions_destroyed\":" UINT64_FORMAT
					 ",\"index_keys_destroyed\":" UINT64_FORMAT ",\"safeguard_changed\":true}",
					 names, n, m);
	audit_write_one("tenant_shred", "phi_guard.keys", NULL, NULL, detail.data);
	pfree(detail.data);
	PG_RETURN_INT32((int32) n);
}
