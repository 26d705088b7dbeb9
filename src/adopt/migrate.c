/*
 * migrate.c — CALL phi_encrypt_column and CALL phi_rewrap_column (SPEC §9):
 * a column moved under phi_guard, or onto its keys' active versions, online,
 * in batches committed as they go, resumable.
 *
 * phi_encrypt_column goes through states, each kept with its progress in
 * phi_guard.column_migration (one row per run; the running one has no
 * finished time), so that a call after a cancel, a crash or a restart goes
 * on where the last committed step left off:
 *   prepare   one short DDL transaction: the new phi_ciphertext column, the
 *             trigger that fills it for every row written from now on
 *             (spec.c; ENABLE ALWAYS), and a NOT VALID check that it is
 *             filled whenever the plaintext column is;
 *   backfill  batches of `batch` rows by primary-key range, each an UPDATE
 *             that lets the trigger fill the new column, committed with the
 *             last key done;
 *   validate  VALIDATE CONSTRAINT, which reads the table without blocking
 *             writers (rows found unfilled, which the trigger rules out,
 *             are filled and the check repeated);
 *   swap      one short transaction under ACCESS EXCLUSIVE taken with a
 *             100 ms lock_timeout and retried: drop the trigger, carry NOT
 *             NULL over through the check, drop the plaintext column, give
 *             the new one its name and comment; its lock time is measured;
 *   scrub     batches that rewrite every row, so that no live row keeps the
 *             dropped plaintext (dead row versions keep it until VACUUM;
 *             WAL and backups until they expire: README);
 *   done.
 * phi_rewrap_column has one state, rewrap: batches that move every value not
 * on its key's active version (rewrap.c, crypto_move_to_active), leaving
 * and counting those it cannot open.
 *
 * Who: the caller owns the table and holds phi_encryptor (rewrap: or
 * phi_key_admin); the DDL and the batches run as the caller (steps.c: the
 * exemption from forced row security, the retries), the state row is
 * written as its table's owner.
 * An audited table gets one column_migration entry per batch.  One
 * migration per table at a time: a session-level advisory lock (class
 * 0x50484948, "PHIH"; the table's OID), released when the call ends,
 * also on error.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/table.h"
#include "catalog/pg_inherits.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/parsenodes.h"
#include "storage/lock.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "adopt/adopt.h"
#include "adopt/migration.h"
#include "audit/audit.h"
#include "common/catalog.h"
#include "common/spi.h"

#define LOCK_CLASS 1346914632	/* "PHIH" */

/* ---------------------------------------------------------------------
 * The table
 * --------------------------------------------------------------------- */

/*
 * The table's facts the migration needs, checked (rel open): a plain
 * table, not partitioned nor in an inheritance tree, with a primary key
 * that does not include the column.
 */
static void
read_table(Migration *m, Relation rel)
{
	Oid			pkidx;
	Relation	idx;
	MemoryContext old;

	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relispartition ||
		rel->rd_rel->relhassubclass || has_superclass(m->relid))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s works on plain tables only; %s is partitioned, a partition or in an inheritance tree",
						m->proc, m->table_text)));
	pkidx = RelationGetPrimaryKeyIndex(rel);
	if (!OidIsValid(pkidx))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("table %s has no primary key", m->table_text),
				 errdetail("%s works through the table in batches by primary-key range.", m->proc),
				 errhint("Add a primary key (ALTER TABLE ... ADD PRIMARY KEY) and call it again.")));
	idx = index_open(pkidx, AccessShareLock);
	old = MemoryContextSwitchTo(m->cxt);
	m->npk = idx->rd_index->indnkeyatts;
	m->pk = palloc(m->npk * sizeof(char *));
	m->pk_type = palloc(m->npk * sizeof(Oid));
	m->pk_len = palloc(m->npk * sizeof(int16));
	m->pk_byval = palloc(m->npk * sizeof(bool));
	for (int i = 0; i < m->npk; i++)
	{
		AttrNumber	a = idx->rd_index->indkey.values[i];
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), a - 1);

		if (strcmp(NameStr(att->attname), m->col) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("column \"%s\" is part of the primary key of %s", m->col, m->table_text),
					 errdetail("A key column cannot be encrypted: rows are found by it.")));
		m->pk[i] = pstrdup(quote_identifier(NameStr(att->attname)));
		m->pk_type[i] = att->atttypid;
		get_typlenbyval(att->atttypid, &m->pk_len[i], &m->pk_byval[i]);
	}
	MemoryContextSwitchTo(old);
	index_close(idx, AccessShareLock);
}

/* Whether the table is audited (phi_audit_enable). */
static bool
is_audited(Migration *m)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(m->relid)};

	state_run(m, "SELECT 1 FROM phi_guard.audited_tables WHERE relid OPERATOR(pg_catalog.=) $1",
			  1, types, values, NULL);
	return SPI_processed > 0;
}

/*
 * The checks of a new phi_encrypt_column: the column exists, is not
 * encrypted yet and is of a supported type; nothing but the table uses it
 * (an index, a constraint, a view or a policy would be dropped with it or
 * block the swap), it has no default, no generation, no column privileges;
 * the tenant column, the aad and the key are usable.
 */
static void
check_new_encrypt(Migration *m, Relation rel)
{
	AttrNumber	attno = get_attnum(m->relid, m->col);
	Form_pg_attribute att;
	AdoptSpec	spec;
	Oid			types[2] = {OIDOID, INT2OID};
	Datum		values[2];
	HeapTuple	tup;
	bool		has_acl;

	if (attno <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation %s does not exist", m->col, m->table_text)));
	att = TupleDescAttr(RelationGetDescr(rel), attno - 1);
	if (att->atttypid == adopt_ciphertext_type())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("column \"%s\" of %s is already encrypted", m->col, m->table_text),
				 errhint("phi_rewrap_column() moves its values onto a new key version.")));
	if (att->atthasdef || att->attgenerated || att->attidentity)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("column \"%s\" of %s has a default, an identity or a generation expression",
						m->col, m->table_text),
				 errhint("Drop it first (ALTER TABLE ... ALTER COLUMN ... DROP DEFAULT): a plaintext default cannot be stored in a phi_ciphertext column.")));
	tup = SearchSysCache2(ATTNUM, ObjectIdGetDatum(m->relid), Int16GetDatum(attno));
	has_acl = HeapTupleIsValid(tup) &&
		!heap_attisnull(tup, Anum_pg_attribute_attacl, NULL);
	if (HeapTupleIsValid(tup))
		ReleaseSysCache(tup);
	if (has_acl)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("column \"%s\" of %s has column privileges", m->col, m->table_text),
				 errhint("Revoke them, migrate the column, and grant them again on the encrypted column.")));
	/* with its own type check, the tenant column's and the aad's */
	adopt_spec_build(&spec, rel, m->col, NULL, m->key, m->tenant_col, m->aad);

	values[0] = ObjectIdGetDatum(m->relid);
	values[1] = Int16GetDatum(attno);
	spi_run("SELECT pg_catalog.string_agg(pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid), '; ' "
			"ORDER BY 1) FROM pg_catalog.pg_depend d "
			"WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass "
			"AND d.refobjid OPERATOR(pg_catalog.=) $1 AND d.refobjsubid OPERATOR(pg_catalog.=) $2",
			2, types, values, NULL, false);
	if (SPI_processed > 0 && spi_string(m, 1) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("column \"%s\" of %s is used by other objects", m->col, m->table_text),
				 errdetail("Used by: %s.", spi_string(m, 1)),
				 errhint("Drop or change them first: an index or a constraint on plaintext would keep it readable (a blind index replaces an index for equality search).")));

	/* the key: the shared one, or, with a tenant column, at least a key of the name */
	if (m->tenant_col == NULL)
		(void) keyring_active_of(NULL, m->key, (int) strlen(m->key));
	else
	{
		Oid			ktypes[1] = {TEXTOID};
		Datum		kvalues[1] = {CStringGetTextDatum(m->key)};

		state_run(m, "SELECT 1 FROM phi_guard.keys WHERE name OPERATOR(pg_catalog.=) $1 LIMIT 1",
				  1, ktypes, kvalues, NULL);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("key \"%s\" does not exist", m->key),
					 errhint("Create it with phi_key_create(), shared or for each tenant.")));
	}
	m->shadow = MemoryContextStrdup(m->cxt, psprintf("phi_guard_new_%d", attno));
	if (get_attnum(m->relid, m->shadow) != InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_COLUMN),
				 errmsg("column \"%s\" of %s already exists", m->shadow, m->table_text),
				 errhint("phi_encrypt_column adds a column of that name; rename or drop the existing one.")));
}

/* ---------------------------------------------------------------------
 * phi_encrypt_column's states
 * --------------------------------------------------------------------- */

/* The trigger and the check constraint of the migration's new column. */
static const char *
trigger_name(Migration *m)
{
	return quote_identifier(psprintf("zz_%s", m->shadow));
}

static const char *
check_name(Migration *m)
{
	return quote_identifier(psprintf("%s_check", m->shadow));
}

/* Whether the plaintext column is NOT NULL. */
static bool
col_not_null(Migration *m)
{
	HeapTuple	tup = SearchSysCacheAttName(m->relid, m->col);
	bool		notnull;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "phi_guard: column \"%s\" of %s is gone", m->col, m->table_text);
	notnull = ((Form_pg_attribute) GETSTRUCT(tup))->attnotnull;
	ReleaseSysCache(tup);
	return notnull;
}

/* in_step work of state prepare: the new column, its trigger and check. */
static void
prepare_step(Migration *m, void *arg)
{
	const char *col = quote_identifier(m->col);
	const char *shadow = quote_identifier(m->shadow);

	spi_run(psprintf("ALTER TABLE ONLY %s ADD COLUMN %s phi_guard.phi_ciphertext", m->table, shadow),
			0, NULL, NULL, NULL, false);
	spi_run(psprintf("CREATE TRIGGER %s BEFORE INSERT OR UPDATE ON %s FOR EACH ROW "
					 "EXECUTE FUNCTION phi_guard.column_migration_sync(%s, %s, %s, %s, %s)",
					 trigger_name(m), m->table, quote_literal_cstr(m->col),
					 quote_literal_cstr(m->shadow), quote_literal_cstr(m->key),
					 quote_literal_cstr(m->tenant_col ? m->tenant_col : ""),
					 quote_literal_cstr(m->aad ? m->aad : "")),
			0, NULL, NULL, NULL, false);
	spi_run(psprintf("ALTER TABLE ONLY %s ENABLE ALWAYS TRIGGER %s", m->table, trigger_name(m)),
			0, NULL, NULL, NULL, false);
	spi_run(psprintf("ALTER TABLE ONLY %s ADD CONSTRAINT %s CHECK (%s) NOT VALID", m->table,
					 check_name(m),
					 col_not_null(m) ? psprintf("%s IS NOT NULL", shadow)
					 : psprintf("(%s IS NULL) OPERATOR(pg_catalog.=) (%s IS NULL)", col, shadow)),
			0, NULL, NULL, NULL, false);
	m->state = "backfill";
	save_state(m);
}

/* in_step work: how many rows the table has (rows_total). */
static void
count_step(Migration *m, void *arg)
{
	spi_run(psprintf("SELECT pg_catalog.count(*) FROM ONLY %s", m->table), 0, NULL, NULL, NULL, false);
	m->rows_total = spi_int8(1, 0);
	save_state(m);
}

/* in_step work of state validate: the check holds for every row. */
static void
validate_step(Migration *m, void *arg)
{
	spi_run(psprintf("ALTER TABLE ONLY %s VALIDATE CONSTRAINT %s", m->table, check_name(m)),
			0, NULL, NULL, NULL, false);
}

/*
 * in_step work after a failed validation: rows the trigger should have
 * filled are filled (it cannot miss one; this is the belt to its braces).
 */
static void
fill_step(Migration *m, void *arg)
{
	const char *col = quote_identifier(m->col);
	const char *shadow = quote_identifier(m->shadow);

	spi_run(psprintf("UPDATE ONLY %s SET %s = NULL WHERE (%s IS NULL) OPERATOR(pg_catalog.<>) (%s IS NULL)",
					 m->table, shadow, col, shadow),
			0, NULL, NULL, NULL, false);
	ereport(NOTICE,
			(errmsg("%s %s.%s: filled " UINT64_FORMAT " rows the migration had not reached",
					m->proc, m->table_text, m->col, SPI_processed)));
}

/* in_step work of state swap: under ACCESS EXCLUSIVE, as short as it can be. */
static void
swap_step(Migration *m, void *arg)
{
	TimestampTz *locked_at = (TimestampTz *) arg;
	const char *col = quote_identifier(m->col);
	const char *shadow = quote_identifier(m->shadow);
	char	   *comment;
	Oid			types[2] = {OIDOID, INT4OID};
	Datum		values[2] = {ObjectIdGetDatum(m->relid), Int32GetDatum(get_attnum(m->relid, m->col))};

	spi_run("SELECT pg_catalog.col_description($1, $2)", 2, types, values, NULL, false);
	comment = spi_string(m, 1);
	spi_run(psprintf("LOCK TABLE ONLY %s IN ACCESS EXCLUSIVE MODE", m->table), 0, NULL, NULL, NULL, false);
	*locked_at = GetCurrentTimestamp();
	spi_run(psprintf("DROP TRIGGER %s ON %s", trigger_name(m), m->table), 0, NULL, NULL, NULL, false);
	if (col_not_null(m))
		spi_run(psprintf("ALTER TABLE ONLY %s ALTER COLUMN %s SET NOT NULL", m->table, shadow),
				0, NULL, NULL, NULL, false);
	spi_run(psprintf("ALTER TABLE ONLY %s DROP CONSTRAINT %s, DROP COLUMN %s", m->table,
					 check_name(m), col),
			0, NULL, NULL, NULL, false);
	spi_run(psprintf("ALTER TABLE ONLY %s RENAME COLUMN %s TO %s", m->table, shadow, col),
			0, NULL, NULL, NULL, false);
	if (comment)
		spi_run(psprintf("COMMENT ON COLUMN %s.%s IS %s", m->table, col, quote_literal_cstr(comment)),
				0, NULL, NULL, NULL, false);
	m->state = "scrub";
	m->last = NULL;
	m->last_key = NULL;
	m->rows_done = 0;
	save_state(m);
}

/* phi_encrypt_column, from whatever state its row is in. */
static void
run_encrypt(Migration *m)
{
	while (strcmp(m->state, "done") != 0)
	{
		if (strcmp(m->state, "prepare") == 0)
		{
			in_step(m, prepare_step, NULL, false);
			SPI_commit();
			m->phase_start = GetCurrentTimestamp();
		}
		else if (strcmp(m->state, "backfill") == 0)
		{
			if (m->rows_total < 0)
			{
				in_step(m, count_step, NULL, false);
				SPI_commit();
			}
			run_batches(m, psprintf("%s = NULL", quote_identifier(m->shadow)), NULL, NULL,
						get_attnum(m->relid, m->shadow));
			progress(m, true);
			enter_state(m, "validate");
		}
		else if (strcmp(m->state, "validate") == 0)
		{
			PG_TRY();
			{
				in_step(m, validate_step, NULL, false);
			}
			PG_CATCH();
			{
				if (geterrcode() != ERRCODE_CHECK_VIOLATION)
					PG_RE_THROW();
				FlushErrorState();
				in_step(m, fill_step, NULL, false);
				in_step(m, validate_step, NULL, false);
			}
			PG_END_TRY();
			enter_state(m, "swap");
		}
		else if (strcmp(m->state, "swap") == 0)
		{
			TimestampTz locked_at = 0;

			in_step(m, swap_step, &locked_at, true);
			SPI_commit();
			m->lock_ms = (double) (GetCurrentTimestamp() - locked_at) / 1000.0;
			save_state(m);
			SPI_commit();
			ereport(NOTICE,
					(errmsg("%s %s.%s: the column is phi_ciphertext; the swap held the table's lock for %.1f ms",
							m->proc, m->table_text, m->col, m->lock_ms)));
			m->phase_start = GetCurrentTimestamp();
			m->phase_start_rows = 0;
		}
		else if (strcmp(m->state, "scrub") == 0)
		{
			const char *col = quote_identifier(m->col);

			run_batches(m, psprintf("%s = %s", col, col), NULL, NULL, 0);
			progress(m, true);
			enter_state(m, "done");
		}
		else
			elog(ERROR, "phi_guard: unknown migration state \"%s\"", m->state);
	}
}

/* phi_rewrap_column's batches. */
static void
run_rewrap(Migration *m)
{
	const char *col = quote_identifier(m->col);

	if (m->rows_total < 0)
	{
		in_step(m, count_step, NULL, false);
		SPI_commit();
	}
	/* the aad expression is a parameter, compiled by column_rewrap as spec.c compiles it */
	run_batches(m, psprintf("%s = phi_guard.column_rewrap(%s, %s, $%d)", col, col, ROW_ALIAS,
							2 * m->npk + 1),
				psprintf("phi_guard.column_rewrap_due(%s)", col), m->aad ? m->aad : "",
				get_attnum(m->relid, m->col));
	progress(m, true);
	enter_state(m, "done");
	if (m->skipped > 0)
		ereport(WARNING,
				(errmsg(INT64_FORMAT " values of %s.%s were left under their old key versions",
						m->skipped, m->table_text, m->col),
				 errdetail("Their keys were destroyed or are unknown, or they do not authenticate with the aad."),
				 errhint("phi_key_usage() shows the versions still in use: do not destroy those.")));
}

/* ---------------------------------------------------------------------
 * The procedures
 * --------------------------------------------------------------------- */

/* The advisory lock that lets one migration of a table run at a time. */
static void
table_lock(Migration *m, bool take)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) LOCK_CLASS, (uint32) m->relid, 2);
	if (!take)
	{
		if (m->locked)
			LockRelease(&tag, ExclusiveLock, true);
		m->locked = false;
		return;
	}
	if (LockAcquire(&tag, ExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		ereport(ERROR,
				(errcode(ERRCODE_LOCK_NOT_AVAILABLE),
				 errmsg("another column migration of %s is running", m->table_text),
				 errhint("phi_guard.column_migrations shows its progress; call again once it ended.")));
	m->locked = true;
}

/* A text argument as a C string in m->cxt; NULL for NULL. */
static char *
text_arg(Migration *m, FunctionCallInfo fcinfo, int argno)
{
	return PG_ARGISNULL(argno) ? NULL
		: MemoryContextStrdup(m->cxt, TextDatumGetCString(PG_GETARG_DATUM(argno)));
}

/*
 * Common start of both procedures: outside a transaction block, the
 * arguments, the caller's rights (owns the table, holds role), the lock,
 * SPI.
 */
static void
begin_call(FunctionCallInfo fcinfo, Migration *m, const char *role, const char *role2)
{
	CallContext *call = (CallContext *) fcinfo->context;
	Relation	rel;
	Oid			r1 = get_role_oid(role, false);
	Oid			r2 = role2 ? get_role_oid(role2, false) : InvalidOid;

	if (call == NULL || !IsA(call, CallContext) || call->atomic)
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s cannot run inside a transaction block", m->proc),
				 errdetail("It commits after each batch."),
				 errhint("CALL it on its own, outside BEGIN ... COMMIT and not from a function.")));
	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table and column must not be null")));
	m->relid = PG_GETARG_OID(0);
	m->col = MemoryContextStrdup(m->cxt, NameStr(*PG_GETARG_NAME(1)));
	rel = table_open(m->relid, AccessShareLock);
	m->table = MemoryContextStrdup(m->cxt, quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
																	 RelationGetRelationName(rel)));
	m->table_text = MemoryContextStrdup(m->cxt, psprintf("%s.%s", get_namespace_name(RelationGetNamespace(rel)),
														 RelationGetRelationName(rel)));
	table_close(rel, AccessShareLock);
	if (!pg_class_ownercheck(m->relid, GetUserId()) ||
		!(has_privs_of_role(GetUserId(), r1) || (OidIsValid(r2) && has_privs_of_role(GetUserId(), r2))))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("%s is for the owner of %s holding %s%s%s", m->proc, m->table_text, role,
						role2 ? " or " : "", role2 ? role2 : "")));
	rel = table_open(catalog_relid_required("column_migration", "column migration table"), AccessShareLock);
	m->state_owner = rel->rd_rel->relowner;
	table_close(rel, AccessShareLock);
	table_lock(m, true);
	SPI_connect_ext(SPI_OPT_NONATOMIC);
	m->audited = is_audited(m);
	m->phase_start = m->last_notice = GetCurrentTimestamp();
}

/* Common end, also on error: lock released, hooks reset, memory freed. */
static void
end_call(Migration *m)
{
	audit_quiet.relid = InvalidOid;
	adopt_in_batch = false;
	table_lock(m, false);
}

/* The batch size argument argno: 1 to 1,000,000. */
static int32
batch_arg(FunctionCallInfo fcinfo, int argno)
{
	int32		batch = PG_ARGISNULL(argno) ? 10000 : PG_GETARG_INT32(argno);

	if (batch < 1 || batch > 1000000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch must be between 1 and 1000000")));
	return batch;
}

/* A new Migration in its own memory context (under TopMemoryContext). */
static void
new_migration(Migration *m, bool encrypt)
{
	memset(m, 0, sizeof(*m));
	m->cxt = AllocSetContextCreate(TopMemoryContext, "phi_guard column migration",
								   ALLOCSET_DEFAULT_SIZES);
	m->encrypt = encrypt;
	m->proc = encrypt ? "phi_encrypt_column" : "phi_rewrap_column";
}

PG_FUNCTION_INFO_V1(phi_guard_encrypt_column);

/*
 * CALL phi_encrypt_column(tbl regclass, col name, key text, aad text
 * DEFAULT NULL, batch int4 DEFAULT 10000, tenant_column name DEFAULT
 * NULL): turn a plaintext column into phi_ciphertext online (SPEC §9);
 * called again after an interruption, it goes on where it stopped.
 */
Datum
phi_guard_encrypt_column(PG_FUNCTION_ARGS)
{
	Migration	m;

	new_migration(&m, true);
	PG_TRY();
	{
		begin_call(fcinfo, &m, "phi_encryptor", NULL);
		if (PG_ARGISNULL(2))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("key name must not be null")));
		m.key = text_arg(&m, fcinfo, 2);
		m.aad = text_arg(&m, fcinfo, 3);
		m.batch = batch_arg(fcinfo, 4);
		m.tenant_col = PG_ARGISNULL(5) ? NULL
			: MemoryContextStrdup(m.cxt, NameStr(*PG_GETARG_NAME(5)));
		{
			Relation	rel = table_open(m.relid, AccessShareLock);

			read_table(&m, rel);
			if (load_state(&m))
				ereport(NOTICE,
						(errmsg("%s %s.%s: resuming in state %s", m.proc, m.table_text, m.col, m.state)));
			else
			{
				check_new_encrypt(&m, rel);
				insert_state(&m, "prepare");
			}
			table_close(rel, AccessShareLock);
		}
		SPI_commit();
		run_encrypt(&m);
		SPI_finish();
	}
	PG_FINALLY();
	{
		end_call(&m);
		MemoryContextDelete(m.cxt);
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}

/*
 * The aad phi_rewrap_column uses when given none: the expression recorded
 * by the last finished migration of the column (NULL: none recorded).
 */
static char *
recorded_aad(Migration *m)
{
	Oid			types[2] = {OIDOID, NAMEOID};
	Datum		values[2] = {ObjectIdGetDatum(m->relid), CStringGetDatum(m->col)};

	state_run(m, "SELECT aad FROM phi_guard.column_migration "
			  "WHERE tbl OPERATOR(pg_catalog.=) $1 AND column_name OPERATOR(pg_catalog.=) $2 "
			  "AND finished IS NOT NULL ORDER BY finished DESC LIMIT 1",
			  2, types, values, NULL);
	return SPI_processed > 0 ? spi_string(m, 1) : NULL;
}

PG_FUNCTION_INFO_V1(phi_guard_rewrap_column);

/*
 * CALL phi_rewrap_column(tbl regclass, col name, batch int4 DEFAULT
 * 10000, aad text DEFAULT NULL): move every value of a phi_ciphertext
 * column onto its key's active version (SPEC §9); resumable like
 * phi_encrypt_column.
 */
Datum
phi_guard_rewrap_column(PG_FUNCTION_ARGS)
{
	Migration	m;

	new_migration(&m, false);
	PG_TRY();
	{
		Relation	rel;
		AttrNumber	attno;

		begin_call(fcinfo, &m, "phi_encryptor", "phi_key_admin");
		m.batch = batch_arg(fcinfo, 2);
		m.aad = text_arg(&m, fcinfo, 3);
		rel = table_open(m.relid, AccessShareLock);
		read_table(&m, rel);
		attno = get_attnum(m.relid, m.col);
		if (attno <= 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_COLUMN),
					 errmsg("column \"%s\" of relation %s does not exist", m.col, m.table_text)));
		if (TupleDescAttr(RelationGetDescr(rel), attno - 1)->atttypid != adopt_ciphertext_type())
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of %s is not of type phi_ciphertext", m.col, m.table_text),
					 errhint("phi_encrypt_column() encrypts a plaintext column.")));
		if (!load_state(&m))
		{
			if (m.aad == NULL)
				m.aad = recorded_aad(&m);
			if (m.aad)
				(void) adopt_aad_expr(rel, m.aad, attno);
			insert_state(&m, "rewrap");
		}
		else
			ereport(NOTICE,
					(errmsg("%s %s.%s: resuming", m.proc, m.table_text, m.col)));
		table_close(rel, AccessShareLock);
		SPI_commit();
		run_rewrap(&m);
		SPI_finish();
	}
	PG_FINALLY();
	{
		end_call(&m);
		MemoryContextDelete(m.cxt);
	}
	PG_END_TRY();
	PG_RETURN_VOID();
}
