/*
 * worker.c — the life of the background worker of one database that uses
 * phi_guard's audit log.  Woken by a filling access queue or by
 * phi_audit_seal(), it writes queued access events to audit_log in one
 * transaction; every phi_guard.audit_seal_interval ms it also seals
 * committed entries into a new block, in a transaction of its own.
 *
 * Started on demand (worker_start.c), it first attaches to its database's
 * slot in shared memory (shmem.c) and detaches when it exits.  It exits
 * when the extension is no longer installed in its database; an error
 * ends it too, and the next audited action starts a new one.  On SIGTERM
 * (server shutdown) it writes what is queued before it exits.  Its
 * transactions are READ COMMITTED whatever the server's default, and an
 * idle round starts no transaction.  Events leave the queue only after
 * the transaction that wrote them committed (never lost, possibly written
 * twice if the worker dies between commit and consume).
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "audit/access.h"
#include "audit/audit.h"
#include "audit/seal.h"
#include "audit/shmem.h"
#include "audit/writer.h"

int			phi_guard_audit_seal_interval = 1000;

PGDLLEXPORT void phi_guard_worker_main(Datum arg);

static bool
extension_installed(void)
{
	return OidIsValid(get_extension_oid("phi_guard", true));
}

static void
begin(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

static void
end(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}

/* Write queued access events (to the log on a standby).  false: extension gone. */
static bool
drain(void)
{
	int			written;

	if (audit_queue_length() == 0)
		return true;			/* nothing to write: no transaction, no xid */
	begin("writing access entries");
	if (!extension_installed())
	{
		end();
		return false;
	}
	if (RecoveryInProgress())
		written = audit_queue_write(NULL, true);
	else
	{
		AuditWriter *w = audit_writer_open();

		written = audit_queue_write(w, false);
		audit_writer_close(w);
	}
	end();
	audit_queue_consume(written);
	return true;
}

static void
seal(void)
{
	if (RecoveryInProgress())
		return;
	begin("sealing");
	(void) audit_seal();
	end();
}

static volatile sig_atomic_t shutdown_requested = false;

/* SIGTERM: finish the current round, write what is queued, then exit. */
static void
request_shutdown(SIGNAL_ARGS)
{
	int			save_errno = errno;

	shutdown_requested = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

void
phi_guard_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	TimestampTz next_seal;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, request_shutdown);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);
	/* sealing needs fresh snapshots, whatever the server's default */
	SetConfigOption("default_transaction_isolation", "read committed",
					PGC_SUSET, PGC_S_OVERRIDE);
	/* a database owner's ALTER DATABASE ... SET search_path must not steer it */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	if (!audit_slot_attach_worker(dboid))
		proc_exit(0);

	next_seal = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
											phi_guard_audit_seal_interval);
	for (;;)
	{
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!drain() || shutdown_requested)
			break;
		if (GetCurrentTimestamp() >= next_seal)
		{
			seal();
			next_seal = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													phi_guard_audit_seal_interval);
		}
		wait_ms = TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next_seal);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Max(wait_ms, 1), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	proc_exit(0);
}
