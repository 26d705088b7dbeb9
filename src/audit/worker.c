/*
 * worker.c — the life of an audit worker: a background worker that the
 * launcher (launcher.c) starts for one database when it has work, which
 * writes the database's queued access events to audit_log and seals its
 * committed entries, then exits when nothing is due soon.
 *
 * A round: write every queued event, in transactions of its own (so an
 * access inside a transaction that rolled back is still recorded); then,
 * when entries are unsealed and the database's next seal is due, seal in a
 * transaction of its own; then stay (something is due within a couple of
 * seconds, or durable accesses came within them) or exit, which frees the
 * process for another database.  The launcher may ask it to end its turn
 * (another database waits for a process): it exits after the current
 * round.  Durable accesses wait for their intents (queue.c): its writes
 * commit synchronously, and each commit wakes the backends whose intents
 * it holds.
 *
 * The access path never depends on the seal nor on a lock a user can
 * hold: the lock on phi_guard.audit_log that writing needs is taken
 * without waiting (a lock held on the log, or an ACCESS EXCLUSIVE request
 * queued behind a reader's lock, makes the round skip the write and retry
 * 100 ms later), and so are sealing's locks (a phi_audit_seal() in an open
 * transaction makes the worker skip that seal, not wait: it tries again
 * one interval later).  lock_timeout bounds any other wait; an error ends
 * the worker, and the launcher starts another a second later.  Only the
 * owner of audit_log (the superuser who created the extension) can lock it
 * against writers; readers (phi_auditor) can take only ACCESS SHARE.
 *
 * It exits when the extension is not installed in its database (what was
 * queued goes to the server log).  On SIGTERM (server shutdown,
 * DROP DATABASE ... WITH (FORCE)) it writes what is queued, and what
 * backends still queue as they end, for up to 2 s, then exits.  Its
 * transactions are READ COMMITTED whatever the database's defaults, and an
 * idle round starts no transaction.  Events leave the queue only after the
 * transaction that wrote them committed (never lost; written twice if the
 * worker dies between commit and consume).
 */
#include "postgres.h"

#include "access/xact.h"
#include "commands/dbcommands.h"
#include "commands/extension.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "audit/access.h"
#include "audit/anchor.h"
#include "audit/audit.h"
#include "audit/seal.h"
#include "audit/shmem.h"
#include "audit/worker.h"
#include "audit/writer.h"
#include "common/catalog.h"
#include "common/xact.h"

#define DRAIN_BATCH 1024		/* events per transaction */
#define SHUTDOWN_DRAIN_MS 2000

typedef enum Round
{
	ROUND_DONE,					/* wrote everything queued */
	ROUND_BUSY,					/* audit_log was locked: retry soon */
	ROUND_GONE					/* the extension is not installed */
} Round;

static bool
extension_installed(void)
{
	return OidIsValid(get_extension_oid("phi_guard", true));
}

/* Write the events queued in slot i, DRAIN_BATCH per transaction. */
static Round
drain(int i)
{
	while (audit_queue_length(i) > 0)
	{
		Oid			log;
		AuditWriter *w;
		int			n;

		xact_begin_background("writing access entries");
		/* (a relcache lookup: what a durable access waits for stays short) */
		log = catalog_relid("audit_log");
		if (!OidIsValid(log))
		{
			bool		gone = !extension_installed();

			xact_commit_background();
			return gone ? ROUND_GONE : ROUND_BUSY;
		}
		if (!ConditionalLockRelationOid(log, RowExclusiveLock))
		{
			xact_commit_background();
			return ROUND_BUSY;
		}
		w = audit_writer_open();
		n = audit_queue_write(w, i, DRAIN_BATCH);
		audit_writer_close(w);
		xact_commit_background();
		audit_queue_consume(i, n);
	}
	return ROUND_DONE;
}

/*
 * Sealing was skipped since `since` (a lock held on audit_block or
 * audit_log): after 10 seal intervals (at least 1 s) say so, then every
 * 10 minutes — seals, and the alerts and anchors that follow them, wait.
 */
static void
warn_skipped_seals(TimestampTz since, TimestampTz now)
{
	static TimestampTz warned_at = 0;
	long		after_ms = Max(10L * phi_guard_audit_seal_interval, 1000L);

	if (now < TimestampTzPlusMilliseconds(since, after_ms) ||
		(warned_at >= since && now < TimestampTzPlusMilliseconds(warned_at, 600000)))
		return;
	warned_at = now;
	ereport(WARNING,
			(errmsg("phi_guard has not sealed the audit log of database \"%s\" for %ld s",
					get_database_name(MyDatabaseId),
					(long) ((now - since) / USECS_PER_SEC)),
			 errdetail("A transaction holds a lock on phi_guard.audit_block or phi_guard.audit_log: phi_audit_seal() in a transaction left open, or an explicit LOCK. Alerts and anchors wait for the seal."),
			 errhint("Find it with SELECT pid, mode FROM pg_locks WHERE relation IN ('phi_guard.audit_block'::regclass, 'phi_guard.audit_log'::regclass).")));
}

/* Seal, unless sealing's locks are taken (a skipped round). */
static Round
seal(int i)
{
	static TimestampTz skipped_since = 0;
	int64		sealed;
	uint64		horizon = 0;

	xact_begin_background("sealing");
	if (!extension_installed())
	{
		xact_commit_background();
		return ROUND_GONE;
	}
	sealed = audit_seal(false, &horizon);
	if (sealed < 0)
	{
		TimestampTz now = GetCurrentTimestamp();

		if (skipped_since == 0)
			skipped_since = now;
		warn_skipped_seals(skipped_since, now);
	}
	else
		skipped_since = 0;
	xact_commit_background();
	if (sealed >= 0 && horizon != 0)
		audit_worker_sealed(i, horizon);
	audit_anchor_after_seal(sealed);
	return ROUND_DONE;
}

/* Before exiting on SIGTERM: what is queued, and what backends queue as they end. */
static void
drain_before_exit(int i)
{
	for (int waited = 0; waited < SHUTDOWN_DRAIN_MS; waited += 50)
	{
		if (drain(i) == ROUND_GONE)
			return;
		if (audit_queue_length(i) == 0 && audit_queue_reserved(i) == 0)
			return;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 50, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

void
phi_guard_worker_main(Datum arg)
{
	Oid			dboid = DatumGetObjectId(arg);
	int			slot;

	memcpy(&slot, MyBgworkerEntry->bgw_extra, sizeof(slot));
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	/* SIGTERM: finish the current round, write what is queued, then exit */
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	/* a database closed to connections may still hold entries to seal */
	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, BGWORKER_BYPASS_ALLOWCONN);
	/*
	 * The database owner's ALTER DATABASE ... SET must not steer it: sealing
	 * needs fresh snapshots, writing a writable transaction, and no search
	 * path or timeout of theirs applies.  lock_timeout bounds what the
	 * conditional locks do not cover.
	 */
	SetConfigOption("default_transaction_isolation", "read committed", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("default_transaction_read_only", "off", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("statement_timeout", "0", PGC_SUSET, PGC_S_OVERRIDE);
	SetConfigOption("lock_timeout", "10s", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * A seal reads the new entries through the BRIN index on xid: without
	 * statistics on audit_log (no ANALYZE yet, autovacuum off) the planner
	 * would scan the whole log every interval, and the durable accesses
	 * waiting for this worker with it.
	 */
	SetConfigOption("enable_seqscan", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * ... which prices any plan with a sequential scan left in it above
	 * jit_above_cost: compiling it would cost more CPU than the whole round.
	 */
	SetConfigOption("jit", "off", PGC_SUSET, PGC_S_OVERRIDE);
	/*
	 * A backend waiting for its intent is woken only once the commit that
	 * wrote it is flushed: one flush for every intent of the transaction.
	 */
	SetConfigOption("synchronous_commit", "on", PGC_SUSET, PGC_S_OVERRIDE);
	if (!audit_worker_attach(slot, dboid))
		proc_exit(0);

	for (;;)
	{
		Round		r;
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		audit_worker_round_begin(slot);
		r = drain(slot);
		if (r != ROUND_GONE && audit_worker_seal_due(slot, GetCurrentTimestamp()) &&
			seal(slot) == ROUND_GONE)
			r = ROUND_GONE;
		if (r == ROUND_GONE)
		{
			audit_queue_discard(slot, "extension not installed");
			break;
		}
		if (ShutdownRequestPending)
		{
			drain_before_exit(slot);
			break;
		}
		if (audit_worker_end_round(slot, GetCurrentTimestamp(), r == ROUND_BUSY, &wait_ms))
			break;
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	proc_exit(0);
}
