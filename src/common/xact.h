/*
 * xact.h — running backend-local clean-up when a transaction ends, and
 * the transactions of phi_guard's background processes (xact.c).
 */
#ifndef PHI_GUARD_COMMON_XACT_H
#define PHI_GUARD_COMMON_XACT_H

typedef void (*XactEndFunction) (void);

/*
 * Call fn whenever a transaction ends: commit, abort or PREPARE
 * TRANSACTION, in a backend or a parallel worker.  fn must not fail and
 * must not access the database (it also runs in an aborted transaction).
 * Functions run in the order registered.  Register from _PG_init only.
 */
extern void xact_on_end(XactEndFunction fn);

/*
 * A background process's own transaction: start one with a snapshot and
 * activity shown in pg_stat_activity; commit it and show the process idle.
 */
extern void xact_begin_background(const char *activity);
extern void xact_commit_background(void);

#endif
