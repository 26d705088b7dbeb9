/*
 * worker_start.c — starting a database's audit worker on demand.
 *
 * Workers are dynamic background workers, one per database that uses the
 * audit log: the first backend of a database that writes an audit entry
 * or counts an access (audit_write.c, audit_access.c) registers one.  The
 * slot in shared memory (shmem.c) records that a worker is starting or
 * running, so a database never gets two; when registration fails (no free
 * worker process) the slot goes back to "none" and the next audited action
 * tries again.  The worker's life itself is worker.c.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "miscadmin.h"
#include "postmaster/bgworker.h"

#include "audit/shmem.h"
#include "audit/worker.h"

/* Register the worker for dboid; false (with a warning) when impossible. */
static bool
worker_register(Oid dboid)
{
	BackgroundWorker w;
	BackgroundWorkerHandle *handle;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "phi_guard", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "phi_guard_worker_main", BGW_MAXLEN);
	snprintf(w.bgw_name, BGW_MAXLEN, "phi_guard audit worker for database %u", dboid);
	strlcpy(w.bgw_type, "phi_guard audit worker", BGW_MAXLEN);
	w.bgw_main_arg = ObjectIdGetDatum(dboid);
	w.bgw_notify_pid = 0;
	if (!RegisterDynamicBackgroundWorker(&w, &handle))
	{
		ereport(WARNING,
				(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
				 errmsg("could not start the phi_guard audit worker"),
				 errhint("Raise max_worker_processes; until then entries are sealed only by phi_audit_seal().")));
		return false;
	}
	return true;
}

void
audit_ensure_worker(void)
{
	if (!OidIsValid(MyDatabaseId) || RecoveryInProgress())
		return;
	if (audit_slot_claim_start() && !worker_register(MyDatabaseId))
		audit_slot_start_failed();
}
