/*
 * launcher.c — the audit launcher: one background worker for the whole
 * cluster that starts an audit worker (worker.c) for each database that
 * has work, when it has work, and makes the databases take turns when
 * worker processes are short.
 *
 * Design.  A PostgreSQL process serves one database for its whole life,
 * so every database whose access events must be written or whose entries
 * must be sealed needs a process connected to it for a while.  The
 * launcher, connected to no database, watches the database slots in shared
 * memory (shmem.c) and registers a dynamic worker for a slot when:
 *  - someone asked for one now (a producer waiting for room, phi_audit_seal,
 *    the sweep below), or
 *  - its queue holds an eighth of the pool, or the pool is half used, or
 *  - its queued events or unsealed entries are due at its next seal.
 * The worker writes, seals and exits when nothing is due soon, freeing its
 * process; an idle slot is then freed for another database.  When a worker
 * cannot be registered (max_worker_processes is used up) the launcher asks
 * the worker that has run longest to end its turn after its current round,
 * and serves the databases that waited longest first, so any number of
 * databases are served by however many processes there are.  When none of
 * phi_guard's workers runs and none can be started, producers refuse
 * accesses with PH006 (queue.c) until one can.
 *
 * The sweep: at start (after a restart or a failover) every database is
 * visited once, one seal interval later, so entries left unsealed before
 * are sealed without waiting for new activity; so again when a writer
 * found no free slot to record its entries in.  The sweep uses at most a
 * few slots at a time, only while a quarter of them are free and no
 * producer waits for one.
 *
 * Slots: while a producer waits for a free slot, slots that are held only
 * by unsealed entries are sealed at once rather than at their next seal,
 * so that they can be freed.  A database that was dropped loses its slot: before starting a worker
 * the launcher checks that the database exists, and every 10 s it checks
 * the slots without a worker; what such a slot still held goes to the
 * server log.
 *
 * Locking: audit_shared->lock, never held across a registration, a
 * transaction or a log message.  The handles of the workers it started are
 * the launcher's own (a restarted launcher forgets them: it resets the
 * slots still marked starting, whose workers then exit at once).  The
 * launcher exits with code 1 on SIGTERM, so that the postmaster starts it
 * again unless the server is shutting down.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "audit/access.h"
#include "audit/anchor.h"
#include "audit/audit.h"
#include "audit/shmem.h"
#include "audit/worker.h"

#define MAX_SLEEP_MS 1000		/* the launcher looks at the slots at least this often */
#define START_RETRY_MS 100		/* after a registration failed for want of a process */
#define RETRY_MS 1000			/* after a worker stopped before attaching */
#define GIVE_UP_FAILURES 5		/* such stops in a row, then the slot's events go to the log */
#define DROPPED_CHECK_MS 10000
#define SWEEP_IN_FLIGHT 4		/* slots the sweep holds at a time */
#define SWEEP_PAUSE_MS 1000		/* after a producer waited for a slot: the
								 * sweep pauses, unsealed slots seal early */
#define SHUTDOWN_WAIT_MS 10000	/* for the workers to write what is queued */

/* A slot that needs a worker. */
typedef struct Candidate
{
	int			slot;
	Oid			dboid;
	TimestampTz since;
	bool		usable;			/* the database exists */
} Candidate;

static BackgroundWorkerHandle **handles;	/* per slot: the worker started */
static Oid *sweep_dbs = NULL;	/* databases the sweep visits, in TopMemoryContext */
static int	sweep_n = 0;
static int	sweep_next = 0;
static TimestampTz sweep_at = 0;
static TimestampTz dropped_check_at = 0;

/* The launcher is a static background worker, registered when preloaded. */
static void
launcher_register(void)
{
	BackgroundWorker w;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	/* a standby writes no log: its access entries go to the server log */
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = 1;
	strlcpy(w.bgw_library_name, "phi_guard", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "phi_guard_launcher_main", BGW_MAXLEN);
	strlcpy(w.bgw_name, "phi_guard audit launcher", BGW_MAXLEN);
	strlcpy(w.bgw_type, "phi_guard audit launcher", BGW_MAXLEN);
	RegisterBackgroundWorker(&w);
}

void
audit_init(void)
{
	audit_shmem_init();
	audit_access_init();
	audit_anchor_init();
	launcher_register();
}

/* Register the worker of slot i for dboid; false when no process is free. */
static bool
start_worker(int i, Oid dboid)
{
	BackgroundWorker w;
	MemoryContext old;
	bool		ok;

	memset(&w, 0, sizeof(w));
	w.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	w.bgw_start_time = BgWorkerStart_RecoveryFinished;
	w.bgw_restart_time = BGW_NEVER_RESTART;
	strlcpy(w.bgw_library_name, "phi_guard", BGW_MAXLEN);
	strlcpy(w.bgw_function_name, "phi_guard_worker_main", BGW_MAXLEN);
	snprintf(w.bgw_name, BGW_MAXLEN, "phi_guard audit worker for database %u", dboid);
	strlcpy(w.bgw_type, "phi_guard audit worker", BGW_MAXLEN);
	w.bgw_main_arg = ObjectIdGetDatum(dboid);
	memcpy(w.bgw_extra, &i, sizeof(i));
	w.bgw_notify_pid = MyProcPid;	/* its start and exit set our latch */
	old = MemoryContextSwitchTo(TopMemoryContext);
	ok = RegisterDynamicBackgroundWorker(&w, &handles[i]);
	MemoryContextSwitchTo(old);
	return ok;
}

/*
 * Start and commit the launcher's short catalog transactions, keeping the
 * caller's memory context (commit would leave TopMemoryContext current).
 */
static MemoryContext
catalog_begin(void)
{
	MemoryContext cxt = CurrentMemoryContext;

	StartTransactionCommand();
	return cxt;
}

static void
catalog_end(MemoryContext cxt)
{
	CommitTransactionCommand();
	MemoryContextSwitchTo(cxt);
}

/* Whether dboid is a database a worker can connect to (in a transaction). */
static bool
database_usable(Oid dboid)
{
	HeapTuple	tup = SearchSysCache1(DATABASEOID, ObjectIdGetDatum(dboid));
	bool		ok = HeapTupleIsValid(tup);

	if (ok)
	{
		ok = !database_is_invalid_form((Form_pg_database) GETSTRUCT(tup));
		ReleaseSysCache(tup);
	}
	return ok;
}

/* The databases to sweep: every one that accepts connections. */
static void
sweep_load(TimestampTz at)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;
	int			size = 64;
	MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);

	if (sweep_dbs)
		pfree(sweep_dbs);
	sweep_dbs = palloc(size * sizeof(Oid));
	MemoryContextSwitchTo(old);
	sweep_n = sweep_next = 0;
	old = catalog_begin();
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (!db->datallowconn || database_is_invalid_form(db))
			continue;
		if (sweep_n == size)
		{
			size *= 2;
			sweep_dbs = repalloc(sweep_dbs, size * sizeof(Oid));
		}
		sweep_dbs[sweep_n++] = db->oid;
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	catalog_end(old);
	sweep_at = at;
}

/*
 * Claim slots for the next databases of the sweep, each with a visit due
 * now and "may have unsealed entries", so its worker seals (or finds no
 * phi_guard) and leaves.  Databases that hold a slot already are active
 * and need no visit.
 */
static void
sweep(TimestampTz now, TimestampTz *next)
{
	AuditShared *s = audit_shared;
	int			in_flight = 0,
				nfree = 0;
	bool		reload;

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	reload = sweep_next >= sweep_n && s->sweep_requested;
	s->sweep_requested = false;
	LWLockRelease(s->lock);
	if (reload)
		sweep_load(now);
	if (sweep_next >= sweep_n)
		return;
	if (now < sweep_at)
	{
		*next = Min(*next, sweep_at);
		return;
	}

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	if (now < TimestampTzPlusMilliseconds(s->slot_wanted_at, SWEEP_PAUSE_MS))
		in_flight = SWEEP_IN_FLIGHT;	/* a producer needs slots: give way */
	for (int i = 0; i < s->ndbs; i++)
	{
		if (s->dbs[i].dboid == InvalidOid)
			nfree++;
		else if (s->dbs[i].swept)
			in_flight++;
	}
	while (sweep_next < sweep_n && in_flight < SWEEP_IN_FLIGHT && nfree > s->ndbs / 4)
	{
		Oid			dboid = sweep_dbs[sweep_next++];
		int			i;
		AuditDb    *d;

		if (audit_db_slot(dboid, false) >= 0)
			continue;
		i = audit_db_slot(dboid, true);
		d = &s->dbs[i];
		d->swept = true;
		d->visit = true;
		pg_atomic_write_u64(&d->written_max, 1);	/* whatever it holds may be unsealed */
		d->next_seal = now;
		in_flight++;
		nfree--;
	}
	LWLockRelease(s->lock);
	if (sweep_next < sweep_n)
		*next = Min(*next, TimestampTzPlusMilliseconds(now, START_RETRY_MS));
}

/*
 * Forget the workers that stopped.  One that never attached leaves its
 * slot marked starting: back to no worker, retried a little later, and
 * given up (its events to the server log) after GIVE_UP_FAILURES in a row.
 */
static void
reap(TimestampTz now)
{
	AuditShared *s = audit_shared;

	for (int i = 0; i < s->ndbs; i++)
	{
		pid_t		pid;
		bool		give_up = false;
		Oid			dboid = InvalidOid;

		if (handles[i] == NULL ||
			GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STOPPED)
			continue;
		pfree(handles[i]);
		handles[i] = NULL;
		LWLockAcquire(s->lock, LW_EXCLUSIVE);
		if (s->dbs[i].state == AUDIT_WORKER_STARTING)
		{
			s->dbs[i].state = AUDIT_WORKER_NONE;
			s->dbs[i].retry_at = TimestampTzPlusMilliseconds(now, RETRY_MS);
			give_up = ++s->dbs[i].failures >= GIVE_UP_FAILURES;
			dboid = s->dbs[i].dboid;
		}
		LWLockRelease(s->lock);
		if (give_up)
		{
			ereport(WARNING,
					(errmsg("phi_guard audit worker for database %u stopped %d times before it started",
							dboid, GIVE_UP_FAILURES),
					 errdetail("The access entries queued for that database are written to the server log instead."),
					 errhint("Look for the workers' errors earlier in the server log.")));
			audit_queue_discard(i, "no worker");
		}
	}
}

/* Every slot without a worker whose database is gone is discarded. */
static void
drop_gone_databases(void)
{
	AuditShared *s = audit_shared;
	Oid		   *dboids = palloc(s->ndbs * sizeof(Oid));
	MemoryContext cxt;

	LWLockAcquire(s->lock, LW_SHARED);
	for (int i = 0; i < s->ndbs; i++)
		dboids[i] = s->dbs[i].state == AUDIT_WORKER_NONE ? s->dbs[i].dboid : InvalidOid;
	LWLockRelease(s->lock);
	cxt = catalog_begin();
	for (int i = 0; i < s->ndbs; i++)
		if (OidIsValid(dboids[i]) && database_usable(dboids[i]))
			dboids[i] = InvalidOid;
	catalog_end(cxt);
	for (int i = 0; i < s->ndbs; i++)
		if (OidIsValid(dboids[i]))
			audit_queue_discard(i, "database dropped");
	pfree(dboids);
}

static int
candidate_cmp(const void *a, const void *b)
{
	TimestampTz x = ((const Candidate *) a)->since;
	TimestampTz y = ((const Candidate *) b)->since;

	return x < y ? -1 : x > y ? 1 : 0;
}

/*
 * Whether slot d, which has no worker, needs one now.  While producers
 * wait for a free slot, a slot held only by unsealed entries is sealed at
 * once rather than at its next seal, so that it can be freed.
 */
static bool
needs_worker(AuditDb *d, TimestampTz now, bool slot_wanted)
{
	AuditShared *s = audit_shared;

	if (slot_wanted && audit_db_unsealed(d) && d->next_seal > now)
		d->next_seal = now;
	return d->visit ||
		d->queued >= Max(s->ncells / 8, 1) ||
		(d->queued > 0 && s->nfree < s->ncells / 2) ||
		((d->queued > 0 || audit_db_unsealed(d)) && now >= d->next_seal);
}

/*
 * Ask up to n running workers, those whose turn began first, to end their
 * turn after their current round.
 */
static void
request_yields(int n)
{
	AuditShared *s = audit_shared;
	Latch	   *wake[8];
	int			nwake = 0;

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	for (int k = 0; k < n && k < lengthof(wake); k++)
	{
		int			oldest = -1;

		for (int i = 0; i < s->ndbs; i++)
		{
			AuditDb    *d = &s->dbs[i];

			if (d->state == AUDIT_WORKER_RUNNING && !d->yield &&
				(oldest < 0 || d->started_at < s->dbs[oldest].started_at))
				oldest = i;
		}
		if (oldest < 0)
			break;
		s->dbs[oldest].yield = true;
		wake[nwake++] = s->dbs[oldest].worker_latch;
	}
	LWLockRelease(s->lock);
	for (int k = 0; k < nwake; k++)
		SetLatch(wake[k]);
}

/*
 * One look at every slot: free idle ones, start workers for those that
 * need one (longest waiting first), take turns when processes run out,
 * sweep.  Returns how long to sleep, in ms.
 */
static long
launcher_round(void)
{
	AuditShared *s = audit_shared;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz next = TimestampTzPlusMilliseconds(now, MAX_SLEEP_MS);
	Candidate  *cand = palloc(s->ndbs * sizeof(Candidate));
	int			ncand = 0,
				running = 0,
				yielding = 0,
				k;
	bool		started = false,
				slot_wanted;

	reap(now);
	if (now >= dropped_check_at)
	{
		drop_gone_databases();
		dropped_check_at = TimestampTzPlusMilliseconds(now, DROPPED_CHECK_MS);
	}

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	slot_wanted = now < TimestampTzPlusMilliseconds(s->slot_wanted_at, SWEEP_PAUSE_MS);
	for (int i = 0; i < s->ndbs; i++)
	{
		AuditDb    *d = &s->dbs[i];

		if (d->dboid == InvalidOid)
			continue;
		if (d->state != AUDIT_WORKER_NONE)
		{
			running++;
			yielding += d->yield ? 1 : 0;
		}
		else if (audit_db_release_if_idle(i))
			continue;
		else if (now < d->retry_at)
			next = Min(next, d->retry_at);
		else if (needs_worker(d, now, slot_wanted))
		{
			if (d->waiting_since == 0)
				d->waiting_since = now;
			cand[ncand].slot = i;
			cand[ncand].dboid = d->dboid;
			cand[ncand++].since = d->waiting_since;
		}
		else if (d->queued > 0 || audit_db_unsealed(d))
			next = Min(next, d->next_seal);
	}
	LWLockRelease(s->lock);

	qsort(cand, ncand, sizeof(Candidate), candidate_cmp);
	if (ncand > 0)
	{
		MemoryContext cxt = catalog_begin();

		for (k = 0; k < ncand; k++)
			cand[k].usable = database_usable(cand[k].dboid);
		catalog_end(cxt);
	}
	for (k = 0; k < ncand; k++)
	{
		int			i = cand[k].slot;
		bool		ok;

		if (!cand[k].usable)
		{
			audit_queue_discard(i, "database dropped");
			continue;
		}
		LWLockAcquire(s->lock, LW_EXCLUSIVE);
		ok = s->dbs[i].dboid == cand[k].dboid && s->dbs[i].state == AUDIT_WORKER_NONE;
		if (ok)
			s->dbs[i].state = AUDIT_WORKER_STARTING;
		LWLockRelease(s->lock);
		if (!ok)
			continue;
		ok = start_worker(i, cand[k].dboid);
		LWLockAcquire(s->lock, LW_EXCLUSIVE);
		if (ok)
			s->dbs[i].waiting_since = 0;
		else
			s->dbs[i].state = AUDIT_WORKER_NONE;
		LWLockRelease(s->lock);
		if (!ok)
			break;
		started = true;
		running++;
	}

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	if (started)
		s->no_worker = false;
	else if (k < ncand && running == 0)
		s->no_worker = true;	/* producers refuse until a worker starts */
	LWLockRelease(s->lock);
	if (k < ncand)
	{
		/* no process for the rest: running workers end their turn */
		if (ncand - k > yielding)
			request_yields(ncand - k - yielding);
		next = Min(next, TimestampTzPlusMilliseconds(now, START_RETRY_MS));
	}
	pfree(cand);

	sweep(now, &next);
	audit_anchor_round(now, &next);
	return Max(TimestampDifferenceMilliseconds(GetCurrentTimestamp(), next), 1);
}

/* before_shmem_exit of the launcher */
static void
launcher_detach(int code, Datum arg)
{
	LWLockAcquire(audit_shared->lock, LW_EXCLUSIVE);
	if (audit_shared->launcher_pid == MyProcPid)
	{
		audit_shared->launcher_pid = 0;
		audit_shared->launcher_latch = NULL;
	}
	LWLockRelease(audit_shared->lock);
}

static void
launcher_attach(void)
{
	AuditShared *s = audit_shared;

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	s->launcher_pid = MyProcPid;
	s->launcher_latch = MyLatch;
	s->no_worker = false;
	/* workers a previous launcher started and never saw attach: forgotten */
	for (int i = 0; i < s->ndbs; i++)
		if (s->dbs[i].state == AUDIT_WORKER_STARTING)
			s->dbs[i].state = AUDIT_WORKER_NONE;
	LWLockRelease(s->lock);
	before_shmem_exit(launcher_detach, (Datum) 0);
}

/*
 * SIGTERM.  At a server shutdown the workers got it as well and write what
 * is queued before they exit: wait for them, then write to the server log
 * what no worker could write (databases still waiting for their turn).
 * When workers keep running, only the launcher was asked to stop: it
 * leaves the queues alone, and the postmaster starts it again.
 */
static void
launcher_shutdown(void)
{
	AuditShared *s = audit_shared;
	bool		busy = true;
	int			left = 0;

	for (int waited = 0; busy && waited < SHUTDOWN_WAIT_MS; waited += 100)
	{
		busy = false;
		LWLockAcquire(s->lock, LW_SHARED);
		for (int i = 0; i < s->ndbs; i++)
			busy |= s->dbs[i].dboid != InvalidOid && s->dbs[i].state != AUDIT_WORKER_NONE;
		LWLockRelease(s->lock);
		if (busy)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 100, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
		}
	}
	if (busy)
		return;
	for (int i = 0; i < s->ndbs; i++)
	{
		int			n = audit_queue_length(i);

		if (n == 0)
			continue;
		left += n;
		audit_queue_discard(i, "not written before shutdown");
	}
	if (left > 0)
		ereport(WARNING,
				(errmsg("phi_guard wrote %d access entries to the server log at shutdown", left),
				 errdetail("No audit worker could write them to their databases' audit log before the server stopped.")));
}

void
phi_guard_launcher_main(Datum arg)
{
	MemoryContext round_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	/* SIGTERM: finish the round, let the workers write, then exit */
	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	/* a lock on pg_database must not stop it for long: it errors, and restarts */
	SetConfigOption("lock_timeout", "10s", PGC_SUSET, PGC_S_OVERRIDE);
	if (audit_shared == NULL)
		proc_exit(0);
	handles = MemoryContextAllocZero(TopMemoryContext,
									 audit_shared->ndbs * sizeof(BackgroundWorkerHandle *));
	round_cxt = AllocSetContextCreate(TopMemoryContext, "phi_guard launcher round",
									  ALLOCSET_DEFAULT_SIZES);
	launcher_attach();
	audit_anchor_launcher_start();
	sweep_load(TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
										   phi_guard_audit_seal_interval));

	while (!ShutdownRequestPending)
	{
		long		wait_ms;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(round_cxt);
		wait_ms = launcher_round();
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(round_cxt);
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 wait_ms, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
	launcher_shutdown();
	proc_exit(1);
}
