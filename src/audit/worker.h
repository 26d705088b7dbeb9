/*
 * worker.h — the background processes of the audit, internal to
 * src/audit: the launcher (launcher.c), one for the cluster, and the audit
 * workers it starts, one per database with work at a time (worker.c).
 */
#ifndef PHI_GUARD_AUDIT_WORKER_H
#define PHI_GUARD_AUDIT_WORKER_H

#include "postgres.h"

/* Entered by the postmaster. */
PGDLLEXPORT void phi_guard_launcher_main(Datum arg);
PGDLLEXPORT void phi_guard_worker_main(Datum arg);

#endif
