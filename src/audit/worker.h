/*
 * worker.h — starting this database's audit worker on demand
 * (worker_start.c); internal to src/audit.  The worker's own life is
 * worker.c, entered by the postmaster through phi_guard_worker_main.
 */
#ifndef PHI_GUARD_AUDIT_WORKER_H
#define PHI_GUARD_AUDIT_WORKER_H

/*
 * Make sure this database has its audit worker (queue draining and
 * sealing), registering one when it has none.  Cheap when it runs: one
 * read of shared memory.  Does nothing on a standby or when not preloaded.
 */
extern void audit_ensure_worker(void);

#endif
