/*
 * shmem.c — the audit's shared memory and its database slots.
 *
 * Sized at server start by two postmaster settings: the slots
 * (phi_guard.max_active_databases) and the pool of access-event cells that
 * every database shares (phi_guard.access_queue_size).  A database holds a
 * slot only while it is active: it has access events reserved or waiting
 * (queue.c), entries that no seal has covered yet, or an audit worker.  An
 * idle slot is freed by the launcher (launcher.c) and reused by the next
 * database that needs one, so the number of databases a cluster may have
 * is not limited, only how many are active at once.
 *
 * Set up through shmem_request_hook / shmem_startup_hook (chained), only
 * when the library is preloaded.
 *
 * Locking: one LWLock (tranche "phi_guard audit") guards every slot, the
 * pool and the launcher's state; nothing is read or changed without it.
 * It is held only to copy or link a few cells and to update counters,
 * never across I/O or a wait.
 *
 * Unsealed entries: a writer records the newest transaction that wrote
 * entries directly (written_max, audit_db_mark_written); a seal whose
 * horizon (every xid below it has ended) is above it has covered them all.
 * The writer marks while its transaction runs, so a seal that could have
 * missed its entries has a horizon at or below its xid.
 */
#include "postgres.h"

#include "access/twophase.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "audit/audit.h"
#include "audit/shmem.h"

/*
 * A worker stays while a seal or a retry is due within this many ms, or
 * while durable accesses came within this many ms, so a busy database
 * keeps its worker and an idle one frees its process.
 */
#define LINGER_MS 2000
/* a round that found phi_guard.audit_log locked retries this much later */
#define BUSY_RETRY_MS 100

int			phi_guard_audit_seal_interval = 1000;
int			phi_guard_access_queue_size = 4096;
int			phi_guard_max_active_databases = 1024;

AuditShared *audit_shared = NULL;

static int	my_slot = -1;		/* the last slot this backend used */

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

/* One waiter per PGPROC (as InitProcGlobal counts them; MaxBackends is set by now). */
static int
waiter_count(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

static Size
shared_size(void)
{
	Size		size = MAXALIGN(sizeof(AuditShared));

	size = add_size(size, MAXALIGN(mul_size(phi_guard_max_active_databases, sizeof(AuditDb))));
	size = add_size(size, MAXALIGN(mul_size(phi_guard_access_queue_size, sizeof(AccessCell))));
	return add_size(size, mul_size(waiter_count(), sizeof(AuditWaiter)));
}

static void
shmem_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("phi_guard audit", 1);
}

static void
shmem_startup(void)
{
	bool		found;
	AuditShared *s;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	s = ShmemInitStruct("phi_guard audit", shared_size(), &found);
	if (!found)
	{
		/* shared memory has the same address in every process */
		s->dbs = (AuditDb *) ((char *) s + MAXALIGN(sizeof(AuditShared)));
		s->cells = (AccessCell *) ((char *) s->dbs +
								   MAXALIGN(phi_guard_max_active_databases * sizeof(AuditDb)));
		s->waiters = (AuditWaiter *) ((char *) s->cells +
									  MAXALIGN(phi_guard_access_queue_size * sizeof(AccessCell)));
		s->nwaiters = waiter_count();
		memset(s->waiters, 0, s->nwaiters * sizeof(AuditWaiter));
		s->lock = &(GetNamedLWLockTranche("phi_guard audit"))->lock;
		s->ndbs = phi_guard_max_active_databases;
		s->ncells = phi_guard_access_queue_size;
		memset(s->dbs, 0, s->ndbs * sizeof(AuditDb));
		for (int i = 0; i < s->ndbs; i++)
			pg_atomic_init_u64(&s->dbs[i].written_max, 0);
		for (int i = 0; i < s->ncells; i++)
			s->cells[i].next = i + 1 < s->ncells ? i + 1 : -1;
		s->free_cell = 0;
		s->nfree = s->ncells;
		s->launcher_pid = 0;
		s->launcher_latch = NULL;
		s->no_worker = false;
		s->sweep_requested = false;
		s->slot_wanted_at = 0;
	}
	LWLockRelease(AddinShmemInitLock);
	audit_shared = s;
}

void
audit_shmem_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
}


int
audit_db_slot(Oid dboid, bool claim)
{
	AuditShared *s = audit_shared;
	int			free_slot = -1;

	if (my_slot >= 0 && s->dbs[my_slot].dboid == dboid)
		return my_slot;
	for (int i = 0; i < s->ndbs; i++)
	{
		if (s->dbs[i].dboid == dboid)
			return my_slot = i;
		if (free_slot < 0 && s->dbs[i].dboid == InvalidOid)
			free_slot = i;
	}
	if (!claim || free_slot < 0)
		return -1;

	{
		AuditDb    *d = &s->dbs[free_slot];

		memset(d, 0, sizeof(*d));
		pg_atomic_init_u64(&d->written_max, 0);
		d->dboid = dboid;
		d->state = AUDIT_WORKER_NONE;
		d->first = d->last = -1;
		/* as a worker started now would: the first seal one interval on */
		d->next_seal = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
												   phi_guard_audit_seal_interval);
	}
	return my_slot = free_slot;
}

bool
audit_db_unsealed(AuditDb *d)
{
	uint64		written_max = pg_atomic_read_u64(&d->written_max);

	return written_max != 0 && written_max >= d->sealed_below;
}

bool
audit_db_release_if_idle(int i)
{
	AuditDb    *d = &audit_shared->dbs[i];

	if (d->dboid == InvalidOid || d->state != AUDIT_WORKER_NONE ||
		d->queued > 0 || d->reserved > 0 || d->visit || audit_db_unsealed(d))
		return false;
	d->dboid = InvalidOid;
	return true;
}

Latch *
audit_db_wake_latch(int i)
{
	AuditDb    *d = &audit_shared->dbs[i];

	return d->worker_latch ? d->worker_latch : audit_shared->launcher_latch;
}

void
audit_wake_launcher(void)
{
	Latch	   *latch;

	LWLockAcquire(audit_shared->lock, LW_SHARED);
	latch = audit_shared->launcher_latch;
	LWLockRelease(audit_shared->lock);
	if (latch)
		SetLatch(latch);
}

/* Raise d's written_max to at least fxid (any lock mode). */
static void
raise_written_max(AuditDb *d, uint64 fxid)
{
	uint64		cur = pg_atomic_read_u64(&d->written_max);

	while (cur < fxid && !pg_atomic_compare_exchange_u64(&d->written_max, &cur, fxid))
		;
}

void
audit_db_mark_written(uint64 fxid)
{
	AuditShared *s = audit_shared;
	int			i;
	bool		claimed = false;

	if (s == NULL || !OidIsValid(MyDatabaseId))
		return;
	/*
	 * Every audited transaction comes here: the shared lock keeps the slot
	 * (a slot is released only under the exclusive one) and the atomic
	 * takes the raise, so writers do not queue on the lock.
	 */
	LWLockAcquire(s->lock, LW_SHARED);
	i = audit_db_slot(MyDatabaseId, false);
	if (i >= 0)
		raise_written_max(&s->dbs[i], fxid);
	LWLockRelease(s->lock);
	if (i >= 0)
		return;

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	i = audit_db_slot(MyDatabaseId, false);
	if (i < 0)
	{
		i = audit_db_slot(MyDatabaseId, true);
		claimed = true;
	}
	if (i >= 0)
		raise_written_max(&s->dbs[i], fxid);
	else
		s->sweep_requested = true;	/* every slot is taken: sweep later */
	LWLockRelease(s->lock);
	if (claimed)
		audit_wake_launcher();	/* it schedules the new slot's seal */
}

/* ---------------------------------------------------------------------
 * The worker's own slot
 * --------------------------------------------------------------------- */

/* before_shmem_exit of the worker: the slot has no worker any more. */
static void
worker_detach(int code, Datum arg)
{
	AuditDb    *d = &audit_shared->dbs[DatumGetInt32(arg)];

	LWLockAcquire(audit_shared->lock, LW_EXCLUSIVE);
	if (d->worker_pid == MyProcPid)
	{
		d->state = AUDIT_WORKER_NONE;
		d->worker_pid = 0;
		d->worker_latch = NULL;
		d->yield = false;
		/* an error ended it: the launcher waits a little before the next */
		if (code != 0)
			d->retry_at = TimestampTzPlusMilliseconds(GetCurrentTimestamp(), 1000);
	}
	LWLockRelease(audit_shared->lock);
	audit_wake_launcher();
}

bool
audit_worker_attach(int i, Oid dboid)
{
	AuditDb    *d;
	bool		ok;

	if (audit_shared == NULL || i < 0 || i >= audit_shared->ndbs)
		return false;
	d = &audit_shared->dbs[i];
	LWLockAcquire(audit_shared->lock, LW_EXCLUSIVE);
	ok = d->dboid == dboid && d->state == AUDIT_WORKER_STARTING;
	if (ok)
	{
		d->state = AUDIT_WORKER_RUNNING;
		d->worker_pid = MyProcPid;
		d->worker_latch = MyLatch;
		d->started_at = GetCurrentTimestamp();
		d->failures = 0;
		d->yield = false;
	}
	LWLockRelease(audit_shared->lock);
	if (ok)
	{
		my_slot = i;
		before_shmem_exit(worker_detach, Int32GetDatum(i));
	}
	return ok;
}

void
audit_worker_round_begin(int i)
{
	LWLockAcquire(audit_shared->lock, LW_EXCLUSIVE);
	audit_shared->dbs[i].visit = false;
	LWLockRelease(audit_shared->lock);
}

bool
audit_worker_seal_due(int i, TimestampTz now)
{
	AuditDb    *d = &audit_shared->dbs[i];
	bool		due;

	LWLockAcquire(audit_shared->lock, LW_EXCLUSIVE);
	due = audit_db_unsealed(d) && now >= d->next_seal;
	if (due)
		d->next_seal = TimestampTzPlusMilliseconds(now, phi_guard_audit_seal_interval);
	LWLockRelease(audit_shared->lock);
	return due;
}

void
audit_worker_sealed(int i, uint64 horizon)
{
	AuditDb    *d = &audit_shared->dbs[i];

	LWLockAcquire(audit_shared->lock, LW_EXCLUSIVE);
	d->sealed_below = Max(d->sealed_below, horizon);
	LWLockRelease(audit_shared->lock);
}

bool
audit_worker_end_round(int i, TimestampTz now, bool busy, long *wait_ms)
{
	AuditDb    *d = &audit_shared->dbs[i];
	TimestampTz due = 0;		/* when there is something to do; 0: nothing */
	TimestampTz soon = TimestampTzPlusMilliseconds(now, LINGER_MS);
	bool		leave;

	LWLockAcquire(audit_shared->lock, LW_EXCLUSIVE);
	if (busy && d->queued > 0)
		due = TimestampTzPlusMilliseconds(now, BUSY_RETRY_MS);
	else if (d->visit)
		due = now;
	else if (d->queued > 0 || audit_db_unsealed(d))
		due = d->next_seal;
	/* durable accesses came lately: more will, stay to serve them at once */
	if ((due == 0 || due > soon) && d->urgent_at != 0 &&
		now < TimestampTzPlusMilliseconds(d->urgent_at, LINGER_MS))
		due = TimestampTzPlusMilliseconds(d->urgent_at, LINGER_MS);
	leave = d->yield || due == 0 || due > soon;
	if (leave)
	{
		d->state = AUDIT_WORKER_NONE;
		d->worker_pid = 0;
		d->worker_latch = NULL;
		d->yield = false;
	}
	LWLockRelease(audit_shared->lock);
	if (leave)
		audit_wake_launcher();	/* a process is free for another database */
	else
		*wait_ms = Max(TimestampDifferenceMilliseconds(now, due), 1);
	return leave;
}
