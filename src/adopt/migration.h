/*
 * migration.h — what the files of a column migration share, private to
 * src/adopt: the Migration (its arguments, its table's primary key, its
 * state row and progress) and the machinery of steps.c that migrate.c's
 * states run on.  All of it runs inside the procedure's non-atomic SPI
 * connection.
 */
#ifndef PHI_GUARD_ADOPT_MIGRATION_H
#define PHI_GUARD_ADOPT_MIGRATION_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* The alias of the table in a batch's UPDATE (its whole row: the aad's input). */
#define ROW_ALIAS "phi_guard_migrated_row"

typedef struct Migration
{
	MemoryContext cxt;			/* everything below; lives across commits */
	bool		encrypt;		/* phi_encrypt_column, else phi_rewrap_column */
	const char *proc;			/* its name, for messages */
	Oid			relid;
	char	   *table;			/* quoted schema.table, for SQL */
	char	   *table_text;		/* schema.table, for messages and the audit */
	char	   *col;
	char	   *key;			/* encrypt: the key name */
	char	   *aad;			/* the aad expression; NULL: none */
	char	   *tenant_col;		/* NULL: none */
	int32		batch;
	Oid			state_owner;	/* owner of phi_guard.column_migration */
	bool		audited;
	/* the primary key */
	int			npk;
	char	  **pk;				/* quoted column names */
	Oid		   *pk_type;
	int16	   *pk_len;
	bool	   *pk_byval;
	/* the state row */
	int64		id;
	char	   *state;
	char	   *shadow;			/* encrypt: the new column's name */
	char	  **last;			/* text of the last key done; NULL: none yet */
	Datum	   *last_key;		/* the same values, for the batches' SQL */
	int64		rows_done;		/* in the current state */
	int64		rows_total;		/* when the migration began; -1: not counted */
	int64		skipped;		/* rewrap: values left as they were */
	double		lock_ms;		/* encrypt: how long the swap held its lock */
	int64		batches;		/* batches of this call, for the audit */
	/* progress of this call */
	TimestampTz phase_start;
	int64		phase_start_rows;
	TimestampTz last_notice;
	bool		locked;			/* the advisory lock is held */
} Migration;

/* The work of one step, run by in_step in a subtransaction. */
typedef void (*StepFunction) (Migration *m, void *arg);

/*
 * Run step(m, arg) in a subtransaction, as the caller exempt from forced
 * row security (with a short lock_timeout when ddl); a lock timeout or a
 * deadlock rolls it back and tries again after a pause, any other error
 * ends the call.
 */
extern void in_step(Migration *m, StepFunction step, void *arg, bool ddl);

/* spi_run as the owner of phi_guard's tables (the state of migrations). */
extern int	state_run(Migration *m, const char *sql, int nargs, Oid *types,
					  Datum *values, const char *nulls);

/* Column i of the first SPI row: a string in m->cxt (NULL for NULL), an int8. */
extern char *spi_string(Migration *m, int i);
extern int64 spi_int8(int i, int64 null_value);

/*
 * The state row: load the running migration of m's column and operation
 * (false: none; 55000 when it has other arguments), insert a new one in
 * state state, save m's state and progress, enter a new state and commit.
 */
extern bool load_state(Migration *m);
extern void insert_state(Migration *m, const char *state);
extern void save_state(Migration *m);
extern void enter_state(Migration *m, const char *state);

/* A progress NOTICE (rows, rate, time left), at most every few seconds unless force. */
extern void progress(Migration *m, bool force);

/*
 * Every batch of the current state by primary-key range after m->last:
 * UPDATE ... AS ROW_ALIAS SET set WHERE <range> [AND filter], with param
 * (NULL: none) as parameter $(2 npk + 1); each committed with its progress
 * and audit entry; audit_quiet names column quiet.
 */
extern void run_batches(Migration *m, const char *set, const char *filter, const char *param,
						AttrNumber quiet);

#endif
