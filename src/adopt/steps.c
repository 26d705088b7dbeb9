/*
 * steps.c — the machinery of a column migration (src/adopt): its state row
 * in phi_guard.column_migration, steps in retried subtransactions, batches
 * by primary-key range, progress NOTICEs and the audit entry of a batch.
 *
 * A step runs in a subtransaction as the caller with SECURITY_NOFORCE_RLS
 * (the owner's exemption from forced row security that referential
 * integrity checks have), so that row security hides no row from it; a
 * lock timeout, a deadlock or a serialization failure rolls it back and
 * tries it again after a pause, up to MAX_TRIES times.  The batches run
 * with the session's settings (the table's own triggers behave as usual);
 * primary-key values are SQL parameters of their own types, and are turned
 * into text for the state row only in C, under fixed ISO/UTC settings, so
 * that they read back the same.  A batch is one UPDATE of the rows after
 * the last key done up to the batch's last key (its `batch` rows when it
 * was counted, and whatever a writer added in between), committed with the
 * new last key and its audit entry, so that a call made again after an
 * interruption goes on after the last committed batch.  While the UPDATE
 * runs, adopt_in_batch is set and the audit trigger is told to skip the
 * batch's own rows (audit_quiet); both are reset on any error.  The state
 * table is read and written as its owner.
 */
#include "postgres.h"

#include "access/xact.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "adopt/adopt.h"
#include "adopt/migration.h"
#include "audit/audit.h"
#include "common/spi.h"
#include "crypto/crypto.h"

#define LOCK_TIMEOUT "100ms"	/* of every DDL step: writers wait at most this */
#define MAX_TRIES 1000			/* of a step that meets a lock or a deadlock */
#define NOTICE_EVERY_MS 2000

bool		adopt_in_batch = false;
int64		adopt_moves[CRYPTO_MOVE_NOT_AUTHENTIC + 1];

/* ---------------------------------------------------------------------
 * Settings, identity and subtransactions
 * --------------------------------------------------------------------- */

/*
 * Settings under which key values are turned into text and back (the
 * state row keeps the last key as text), undone by AtEOXact_GUC(nestlevel).
 * Only C conversions run under them: the batches run with the session's
 * settings, so that the table's own triggers behave as usual.
 */
static int
pin_settings(void)
{
	int			nestlevel = NewGUCNestLevel();
	static const char *const settings[][2] = {
		{"DateStyle", "ISO, YMD"},
		{"IntervalStyle", "postgres"},
		{"TimeZone", "UTC"},
		{"extra_float_digits", "3"},
	};

	for (int i = 0; i < lengthof(settings); i++)
		(void) set_config_option(settings[i][0], settings[i][1], PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	return nestlevel;
}

/* The text of key values d (in m->cxt). */
static char **
keys_to_text(Migration *m, Datum *d)
{
	int			nestlevel = pin_settings();
	char	  **t = MemoryContextAlloc(m->cxt, m->npk * sizeof(char *));

	for (int i = 0; i < m->npk; i++)
	{
		Oid			out;
		bool		varlena;

		getTypeOutputInfo(m->pk_type[i], &out, &varlena);
		t[i] = MemoryContextStrdup(m->cxt, OidOutputFunctionCall(out, d[i]));
	}
	AtEOXact_GUC(true, nestlevel);
	return t;
}

/* Key values from their text t (in m->cxt). */
static Datum *
keys_from_text(Migration *m, char **t)
{
	int			nestlevel = pin_settings();
	MemoryContext old = MemoryContextSwitchTo(m->cxt);
	Datum	   *d = palloc(m->npk * sizeof(Datum));

	for (int i = 0; i < m->npk; i++)
	{
		Oid			in;
		Oid			ioparam;

		getTypeInputInfo(m->pk_type[i], &in, &ioparam);
		d[i] = OidInputFunctionCall(in, t[i], ioparam, -1);
	}
	MemoryContextSwitchTo(old);
	AtEOXact_GUC(true, nestlevel);
	return d;
}

/* spi_run as the owner of phi_guard's tables (the state of migrations). */
int
state_run(Migration *m, const char *sql, int nargs, Oid *types, Datum *values,
		  const char *nulls)
{
	Oid			save_user;
	int			save_sec;
	int			rc = 0;

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(m->state_owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	PG_TRY();
	{
		rc = spi_run(sql, nargs, types, values, nulls, false);
	}
	PG_FINALLY();
	{
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	return rc;
}

/* Whether a failed step may be tried again (after a pause). */
static bool
retryable(int sqlerrcode)
{
	return sqlerrcode == ERRCODE_LOCK_NOT_AVAILABLE ||
		sqlerrcode == ERRCODE_T_R_DEADLOCK_DETECTED ||
		sqlerrcode == ERRCODE_T_R_SERIALIZATION_FAILURE;
}

/*
 * Run step(m, arg) in a subtransaction, as the caller exempt from forced
 * row security (with lock_timeout when ddl); a
 * lock timeout or a deadlock rolls it back and tries again after a pause
 * (up to MAX_TRIES times), any other error ends the call.
 */
void
in_step(Migration *m, StepFunction step, void *arg, bool ddl)
{
	for (int try = 1;; try++)
	{
		MemoryContext cxt = CurrentMemoryContext;
		ResourceOwner owner = CurrentResourceOwner;
		Oid			save_user;
		int			save_sec;
		ErrorData  *edata = NULL;

		BeginInternalSubTransaction(NULL);
		MemoryContextSwitchTo(cxt);
		PG_TRY();
		{
			if (ddl)			/* undone with the subtransaction */
				(void) set_config_option("lock_timeout", LOCK_TIMEOUT, PGC_USERSET,
										 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
			GetUserIdAndSecContext(&save_user, &save_sec);
			SetUserIdAndSecContext(save_user, save_sec | SECURITY_NOFORCE_RLS);
			step(m, arg);
			SetUserIdAndSecContext(save_user, save_sec);
			ReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
		}
		PG_CATCH();
		{
			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			RollbackAndReleaseCurrentSubTransaction();
			MemoryContextSwitchTo(cxt);
			CurrentResourceOwner = owner;
			audit_quiet.relid = InvalidOid;
			adopt_in_batch = false;
		}
		PG_END_TRY();
		if (edata == NULL)
			return;
		if (!retryable(edata->sqlerrcode) || try >= MAX_TRIES)
			ReThrowError(edata);
		if (try % 50 == 0)
			ereport(NOTICE,
					(errmsg("%s: waiting for the lock on %s (%d attempts so far)",
							m->proc, m->table_text, try)));
		FreeErrorData(edata);
		pg_usleep(Min(20000L * try, 500000L));
		CHECK_FOR_INTERRUPTS();
	}
}

/* ---------------------------------------------------------------------
 * The state row
 * --------------------------------------------------------------------- */

/* The state columns of the running row (fields read by load_state). */
#define STATE_COLUMNS "id, state, key_name, aad, tenant_column, new_column, last_key, " \
	"rows_done, rows_total, skipped, lock_ms, batch_size"

/* text[] Datum of m->last, or NULL. */
static Datum
last_datum(Migration *m, bool *isnull)
{
	Datum	   *d;

	*isnull = m->last == NULL;
	if (m->last == NULL)
		return (Datum) 0;
	d = palloc(m->npk * sizeof(Datum));
	for (int i = 0; i < m->npk; i++)
		d[i] = CStringGetTextDatum(m->last[i]);
	return PointerGetDatum(construct_array(d, m->npk, TEXTOID, -1, false, TYPALIGN_INT));
}

/* Column i of the first SPI row as a string in m->cxt; NULL for NULL. */
char *
spi_string(Migration *m, int i)
{
	char	   *v = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i);

	return v ? MemoryContextStrdup(m->cxt, v) : NULL;
}

int64
spi_int8(int i, int64 null_value)
{
	bool		isnull;
	Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i, &isnull);

	return isnull ? null_value : DatumGetInt64(d);
}

/* NULL-safe equality of two optional strings. */
static bool
same(const char *a, const char *b)
{
	return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/*
 * Load the running migration of m's column and operation, if any: returns
 * false when none.  A running one with other arguments is an error (55000).
 */
bool
load_state(Migration *m)
{
	Oid			types[3] = {OIDOID, NAMEOID, TEXTOID};
	Datum		values[3] = {ObjectIdGetDatum(m->relid), CStringGetDatum(m->col),
	CStringGetTextDatum(m->encrypt ? "encrypt" : "rewrap")};
	char	   *key,
			   *aad,
			   *tenant;
	bool		isnull;
	Datum		last;

	state_run(m, "SELECT " STATE_COLUMNS " FROM phi_guard.column_migration "
			  "WHERE tbl OPERATOR(pg_catalog.=) $1 AND column_name OPERATOR(pg_catalog.=) $2 "
			  "AND operation OPERATOR(pg_catalog.=) $3 AND finished IS NULL",
			  3, types, values, NULL);
	if (SPI_processed == 0)
		return false;
	key = spi_string(m, 3);
	aad = spi_string(m, 4);
	tenant = spi_string(m, 5);
	if ((m->encrypt && (!same(key, m->key) || !same(tenant, m->tenant_col))) ||
		(m->aad != NULL && !same(aad, m->aad)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("a %s of column \"%s\" of %s with other arguments is in progress",
						m->proc, m->col, m->table_text),
				 errhint("Call %s with the arguments it began with to finish it (phi_guard.column_migrations shows them).",
						 m->proc)));
	m->id = spi_int8(1, 0);
	m->state = spi_string(m, 2);
	m->aad = aad;
	m->shadow = spi_string(m, 6);
	last = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 7, &isnull);
	m->last = NULL;
	if (!isnull)
	{
		Datum	   *d;
		int			n;
		MemoryContext old = MemoryContextSwitchTo(m->cxt);

		deconstruct_array(DatumGetArrayTypeP(last), TEXTOID, -1, false, TYPALIGN_INT, &d, NULL, &n);
		if (n != m->npk)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the primary key of %s changed during the %s", m->table_text, m->proc),
					 errhint("Restore the primary key, or delete the migration's row from phi_guard.column_migration as a superuser and start again.")));
		m->last = palloc(n * sizeof(char *));
		for (int i = 0; i < n; i++)
			m->last[i] = TextDatumGetCString(d[i]);
		MemoryContextSwitchTo(old);
		m->last_key = keys_from_text(m, m->last);
	}
	m->rows_done = spi_int8(8, 0);
	m->rows_total = spi_int8(9, -1);
	m->skipped = spi_int8(10, 0);
	m->lock_ms = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 11, &isnull));
	if (isnull)
		m->lock_ms = 0;
	return true;
}

/* Insert the running row of a new migration in state state. */
void
insert_state(Migration *m, const char *state)
{
	Oid			types[9] = {OIDOID, NAMEOID, TEXTOID, TEXTOID, TEXTOID, NAMEOID, NAMEOID,
	INT4OID, TEXTOID};
	Datum		values[9];
	char		nulls[9] = "         ";

	values[0] = ObjectIdGetDatum(m->relid);
	values[1] = CStringGetDatum(m->col);
	values[2] = CStringGetTextDatum(m->encrypt ? "encrypt" : "rewrap");
	values[3] = m->key ? CStringGetTextDatum(m->key) : (Datum) 0;
	nulls[3] = m->key ? ' ' : 'n';
	values[4] = m->aad ? CStringGetTextDatum(m->aad) : (Datum) 0;
	nulls[4] = m->aad ? ' ' : 'n';
	values[5] = m->tenant_col ? CStringGetDatum(m->tenant_col) : (Datum) 0;
	nulls[5] = m->tenant_col ? ' ' : 'n';
	values[6] = m->shadow ? CStringGetDatum(m->shadow) : (Datum) 0;
	nulls[6] = m->shadow ? ' ' : 'n';
	values[7] = Int32GetDatum(m->batch);
	values[8] = CStringGetTextDatum(state);
	state_run(m, "INSERT INTO phi_guard.column_migration "
			  "(tbl, column_name, operation, key_name, aad, tenant_column, new_column, batch_size, state) "
			  "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
			  9, types, values, nulls);
	m->id = spi_int8(1, 0);
	m->state = MemoryContextStrdup(m->cxt, state);
	m->last = NULL;
	m->last_key = NULL;
	m->rows_done = 0;
	m->rows_total = -1;
	m->skipped = 0;
}

/* Write m's state and progress to its row (finished when state is done). */
void
save_state(Migration *m)
{
	Oid			types[8] = {INT8OID, TEXTOID, TEXTARRAYOID, INT8OID, INT8OID, INT8OID,
	FLOAT8OID, INT4OID};
	Datum		values[8];
	char		nulls[8] = "        ";
	bool		isnull;

	values[0] = Int64GetDatum(m->id);
	values[1] = CStringGetTextDatum(m->state);
	values[2] = last_datum(m, &isnull);
	nulls[2] = isnull ? 'n' : ' ';
	values[3] = Int64GetDatum(m->rows_done);
	values[4] = Int64GetDatum(m->rows_total);
	nulls[4] = m->rows_total < 0 ? 'n' : ' ';
	values[5] = Int64GetDatum(m->skipped);
	values[6] = Float8GetDatum(m->lock_ms);
	nulls[6] = m->encrypt ? ' ' : 'n';
	values[7] = Int32GetDatum(m->batch);
	state_run(m, "UPDATE phi_guard.column_migration SET state = $2, last_key = $3, rows_done = $4, "
			  "rows_total = $5, skipped = $6, lock_ms = $7, batch_size = $8, "
			  "finished = CASE WHEN $2 OPERATOR(pg_catalog.=) 'done' THEN pg_catalog.clock_timestamp() END "
			  "WHERE id OPERATOR(pg_catalog.=) $1",
			  8, types, values, nulls);
}

/*
 * Enter state state and commit: its progress starts again, except for done,
 * which keeps the rows of the last state.
 */
void
enter_state(Migration *m, const char *state)
{
	m->state = MemoryContextStrdup(m->cxt, state);
	m->last = NULL;
	m->last_key = NULL;
	if (strcmp(state, "done") != 0)
		m->rows_done = 0;
	save_state(m);
	SPI_commit();
	m->phase_start = GetCurrentTimestamp();
	m->phase_start_rows = 0;
}

/* ---------------------------------------------------------------------
 * Progress and the audit
 * --------------------------------------------------------------------- */

/* A NOTICE with rows done, rate and time left, at most every few seconds. */
void
progress(Migration *m, bool force)
{
	TimestampTz now = GetCurrentTimestamp();
	double		secs = (double) (now - m->phase_start) / USECS_PER_SEC;
	double		rate = secs > 0 ? (m->rows_done - m->phase_start_rows) / secs : 0;

	if (!force && now - m->last_notice < NOTICE_EVERY_MS * INT64CONST(1000))
		return;
	m->last_notice = now;
	if (m->rows_total > 0 && rate > 0 && m->rows_done < m->rows_total)
		ereport(NOTICE,
				(errmsg("%s %s.%s: %s " INT64_FORMAT " of " INT64_FORMAT " rows (%.0f%%), %.0f rows/s, about %.0f s left",
						m->proc, m->table_text, m->col, m->state, m->rows_done, m->rows_total,
						100.0 * m->rows_done / m->rows_total, rate,
						(m->rows_total - m->rows_done) / rate)));
	else
		ereport(NOTICE,
				(errmsg("%s %s.%s: %s " INT64_FORMAT " rows, %.0f rows/s",
						m->proc, m->table_text, m->col, m->state, m->rows_done, rate)));
}

/* The audit entry of one batch of an audited table: how many rows, no values. */
static void
audit_batch(Migration *m, int64 rows)
{
	StringInfoData d;

	if (!m->audited)
		return;
	initStringInfo(&d);
	appendStringInfoString(&d, "{\"column\":");
	audit_json_string(&d, m->col);
	appendStringInfo(&d, ",\"operation\":\"%s\",\"phase\":", m->encrypt ? "encrypt" : "rewrap");
	audit_json_string(&d, m->state);
	if (m->key)
	{
		appendStringInfoString(&d, ",\"key\":");
		audit_json_string(&d, m->key);
	}
	appendStringInfo(&d, ",\"batch\":" INT64_FORMAT ",\"rows\":" INT64_FORMAT "}", ++m->batches, rows);
	audit_write_one("column_migration", m->table_text, NULL, NULL, d.data);
	pfree(d.data);
}

/* ---------------------------------------------------------------------
 * Batches by primary-key range
 * --------------------------------------------------------------------- */

/*
 * "a, b" of the key columns; with how "-", "s.a DESC, s.b DESC" (the
 * batch's last key first).
 */
static char *
pk_list(Migration *m, const char *how)
{
	StringInfoData s;
	bool		desc = strcmp(how, "-") == 0;

	initStringInfo(&s);
	for (int i = 0; i < m->npk; i++)
		appendStringInfo(&s, "%s%s%s%s", i ? ", " : "", desc ? "s." : "", m->pk[i],
						 desc ? " DESC" : "");
	return s.data;
}

/* "$n, ..." of parameters first..first+npk-1. */
static char *
pk_params(Migration *m, int first)
{
	StringInfoData s;

	initStringInfo(&s);
	for (int i = 0; i < m->npk; i++)
		appendStringInfo(&s, "%s$%d", i ? ", " : "", first + i);
	return s.data;
}

typedef struct Batch
{
	const char *set;			/* the UPDATE's SET list; $(2 npk + 1) is param */
	const char *filter;			/* more of its WHERE; NULL: none */
	const char *param;			/* a text parameter; NULL: none */
	AttrNumber	quiet;			/* the column it changes (audit_quiet) */
	int64		rows;			/* out: rows in the range; 0 when none was left */
} Batch;

/*
 * in_step work: the next batch after m->last, its rows updated with
 * b->set; m->last moves to its last key.  Its audit entry and the state
 * row commit with it.
 */
static void
batch_step(Migration *m, void *arg)
{
	Batch	   *b = (Batch *) arg;
	int			n = m->npk;
	int			nparams = 2 * n + (b->param ? 1 : 0);
	Oid		   *types = palloc(nparams * sizeof(Oid));
	Datum	   *values = palloc0(nparams * sizeof(Datum));
	char	   *nulls = palloc(nparams + 1);
	StringInfoData next;
	StringInfoData upd;
	Datum	   *hi;
	char	  **old_last;
	Datum	   *old_key;
	int64		old_done,
				old_skipped,
				old_batches;

	memset(adopt_moves, 0, sizeof(adopt_moves));
	memset(nulls, 'n', nparams);
	nulls[nparams] = '\0';
	for (int i = 0; i < n; i++)
	{
		types[i] = types[n + i] = m->pk_type[i];
		if (m->last_key)
		{
			values[i] = m->last_key[i];
			nulls[i] = ' ';
		}
	}
	if (b->param)
	{
		types[2 * n] = TEXTOID;
		values[2 * n] = CStringGetTextDatum(b->param);
		nulls[2 * n] = ' ';
	}

	/* the batch: its last key and how many rows it has */
	initStringInfo(&next);
	appendStringInfoString(&next, "SELECT ");
	for (int i = 0; i < n; i++)
		appendStringInfo(&next, "s.%s, ", m->pk[i]);
	appendStringInfo(&next, "pg_catalog.count(*) OVER () FROM (SELECT %s FROM ONLY %s",
					 pk_list(m, ""), m->table);
	if (m->last_key)
		appendStringInfo(&next, " WHERE (%s) > (%s)", pk_list(m, ""), pk_params(m, 1));
	appendStringInfo(&next, " ORDER BY %s LIMIT %d) s ORDER BY %s LIMIT 1",
					 pk_list(m, ""), m->batch, pk_list(m, "-"));
	spi_run(next.data, nparams, types, values, nulls, false);
	b->rows = 0;
	if (SPI_processed == 0)
		return;
	b->rows = spi_int8(n + 1, 0);
	hi = MemoryContextAlloc(m->cxt, n * sizeof(Datum));
	for (int i = 0; i < n; i++)
	{
		bool		isnull;
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &isnull);
		MemoryContext old = MemoryContextSwitchTo(m->cxt);

		hi[i] = datumCopy(d, m->pk_byval[i], m->pk_len[i]);
		MemoryContextSwitchTo(old);
		values[n + i] = hi[i];
		nulls[n + i] = ' ';
	}

	/* its rows */
	initStringInfo(&upd);
	appendStringInfo(&upd, "UPDATE ONLY %s AS %s SET %s WHERE (%s) <= (%s)", m->table, ROW_ALIAS,
					 b->set, pk_list(m, ""), pk_params(m, n + 1));
	if (m->last_key)
		appendStringInfo(&upd, " AND (%s) > (%s)", pk_list(m, ""), pk_params(m, 1));
	if (b->filter)
		appendStringInfo(&upd, " AND %s", b->filter);
	audit_quiet.relid = m->relid;
	audit_quiet.attnum = b->quiet;
	adopt_in_batch = true;
	spi_run(upd.data, nparams, types, values, nulls, false);
	adopt_in_batch = false;
	audit_quiet.relid = InvalidOid;

	/* the progress commits with the batch; kept as it was if that fails */
	old_last = m->last;
	old_key = m->last_key;
	old_done = m->rows_done;
	old_skipped = m->skipped;
	old_batches = m->batches;
	PG_TRY();
	{
		m->last = keys_to_text(m, hi);
		m->last_key = hi;
		m->rows_done += b->rows;
		m->skipped += adopt_moves[CRYPTO_MOVE_DESTROYED] + adopt_moves[CRYPTO_MOVE_UNKNOWN_KEY] +
			adopt_moves[CRYPTO_MOVE_NOT_AUTHENTIC];
		audit_batch(m, b->rows);
		save_state(m);
	}
	PG_CATCH();
	{
		m->last = old_last;
		m->last_key = old_key;
		m->rows_done = old_done;
		m->skipped = old_skipped;
		m->batches = old_batches;
		PG_RE_THROW();
	}
	PG_END_TRY();
}

/*
 * Every batch of the current state, each committed with its progress,
 * until no row is left after m->last.
 */
void
run_batches(Migration *m, const char *set, const char *filter, const char *param,
			AttrNumber quiet)
{
	Batch		b = {set, filter, param, quiet, 0};

	for (;;)
	{
		in_step(m, batch_step, &b, false);
		if (b.rows == 0)
			break;
		SPI_commit();
		progress(m, false);
		CHECK_FOR_INTERRUPTS();
	}
}

