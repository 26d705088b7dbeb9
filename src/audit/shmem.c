/*
 * shmem.c — the audit's shared memory: AUDIT_SLOTS per-database slots,
 * each holding the state of the database's audit worker and a ring of
 * AUDIT_QUEUE_LEN access events (audit_access.c produces them, the worker
 * consumes them).
 *
 * Set up through shmem_request_hook / shmem_startup_hook (chained), only
 * when the library is preloaded.  A database claims a free slot the first
 * time one of its backends needs it and keeps it until restart.
 *
 * Locking: one LWLock (tranche "phi_guard") guards every slot.  Producers
 * append under the exclusive lock; the worker copies under a shared lock
 * and advances the tail (exclusive) only after its transaction committed,
 * so an event is never lost between copy and commit.  A full ring wakes
 * the worker and waits for it, polling every 10 ms, up to FULL_WAIT_MS.
 * Lock-free reads (a slot's dboid and worker state in fast paths) are
 * re-checked under the lock before anything is changed.
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"

#include "audit/audit.h"
#include "audit/shmem.h"

#define AUDIT_SLOTS 8
#define AUDIT_QUEUE_LEN 512
#define FULL_WAIT_MS 5000
#define POLL_MS 10

typedef enum WorkerState
{
	WORKER_NONE = 0,
	WORKER_STARTING,
	WORKER_RUNNING
} WorkerState;

typedef struct AuditSlot
{
	Oid			dboid;			/* InvalidOid: free */
	WorkerState state;
	int			worker_pid;
	Latch	   *latch;			/* the worker's, NULL when none runs */
	uint64		head;			/* next event written */
	uint64		tail;			/* next event to consume */
	AccessEvent q[AUDIT_QUEUE_LEN];
} AuditSlot;

typedef struct AuditShared
{
	LWLock	   *lock;
	AuditSlot	slots[AUDIT_SLOTS];
} AuditShared;

static AuditShared *shared = NULL;
static int	my_slot = -1;		/* this backend's database slot */

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

static void
shmem_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(MAXALIGN(sizeof(AuditShared)));
	RequestNamedLWLockTranche("phi_guard", 1);
}

static void
shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("phi_guard audit", sizeof(AuditShared), &found);
	if (!found)
	{
		memset(shared, 0, sizeof(AuditShared));
		shared->lock = &(GetNamedLWLockTranche("phi_guard"))->lock;
	}
	LWLockRelease(AddinShmemInitLock);
}

/* From _PG_init when preloaded. */
void
audit_shmem_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
}

bool
audit_shmem_attached(void)
{
	return shared != NULL;
}

/* The slot of this database, claiming a free one; -1 when all are taken. */
static int
slot_for_db(Oid dboid)
{
	int			free_slot = -1;

	if (my_slot >= 0 && shared->slots[my_slot].dboid == dboid)
		return my_slot;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < AUDIT_SLOTS; i++)
	{
		if (shared->slots[i].dboid == dboid)
		{
			my_slot = i;
			break;
		}
		if (free_slot < 0 && shared->slots[i].dboid == InvalidOid)
			free_slot = i;
	}
	if (my_slot < 0 || shared->slots[my_slot].dboid != dboid)
	{
		my_slot = free_slot;
		if (free_slot >= 0)
		{
			AuditSlot  *s = &shared->slots[free_slot];

			s->dboid = dboid;
			s->state = WORKER_NONE;
			s->head = s->tail = 0;
		}
	}
	LWLockRelease(shared->lock);
	return my_slot;
}

/* Sleep one poll interval on this process's latch. */
static void
poll_wait(void)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 POLL_MS, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
}

bool
audit_slot_claim_start(void)
{
	int			i;
	bool		start = false;

	if (shared == NULL)
		return false;
	i = slot_for_db(MyDatabaseId);
	if (i < 0 || shared->slots[i].state != WORKER_NONE)
		return false;			/* cheap when it runs: one unlocked read */
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->slots[i].state == WORKER_NONE)
	{
		shared->slots[i].state = WORKER_STARTING;
		start = true;
	}
	LWLockRelease(shared->lock);
	return start;
}

void
audit_slot_start_failed(void)
{
	int			i = slot_for_db(MyDatabaseId);

	if (i < 0)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->slots[i].state = WORKER_NONE;
	LWLockRelease(shared->lock);
}

/* before_shmem_exit of the worker: the slot has no worker any more. */
static void
worker_detach(int code, Datum arg)
{
	AuditSlot  *s = &shared->slots[DatumGetInt32(arg)];

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	s->state = WORKER_NONE;
	s->worker_pid = 0;
	s->latch = NULL;
	LWLockRelease(shared->lock);
}

bool
audit_slot_attach_worker(Oid dboid)
{
	int			i;

	if (shared == NULL || (i = slot_for_db(dboid)) < 0)
		return false;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->slots[i].state = WORKER_RUNNING;
	shared->slots[i].worker_pid = MyProcPid;
	shared->slots[i].latch = MyLatch;
	LWLockRelease(shared->lock);
	before_shmem_exit(worker_detach, Int32GetDatum(i));
	return true;
}

bool
audit_queue_push(const AccessEvent *e)
{
	int			i;
	int			waited = 0;

	if (shared == NULL || (i = slot_for_db(MyDatabaseId)) < 0)
		return false;
	for (;;)
	{
		AuditSlot  *s = &shared->slots[i];
		Latch	   *wake = NULL;
		bool		done = false;

		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		if (s->head - s->tail < AUDIT_QUEUE_LEN)
		{
			s->q[s->head % AUDIT_QUEUE_LEN] = *e;
			s->head++;
			done = true;
		}
		if (s->head - s->tail >= AUDIT_QUEUE_LEN / 2)
			wake = s->latch;
		LWLockRelease(shared->lock);
		if (wake)
			SetLatch(wake);
		if (done)
			return true;
		if (waited >= FULL_WAIT_MS)
			return false;
		poll_wait();
		waited += POLL_MS;
	}
}

bool
audit_queue_wait_written(void)
{
	int			i,
				waited = 0;
	uint64		target;

	if (shared == NULL || (i = slot_for_db(MyDatabaseId)) < 0)
		return true;
	LWLockAcquire(shared->lock, LW_SHARED);
	target = shared->slots[i].head;
	LWLockRelease(shared->lock);
	for (;;)
	{
		Latch	   *wake;
		uint64		tail;

		LWLockAcquire(shared->lock, LW_SHARED);
		tail = shared->slots[i].tail;
		wake = shared->slots[i].latch;
		LWLockRelease(shared->lock);
		if (tail >= target)
			return true;
		if (waited >= FULL_WAIT_MS)
			return false;
		if (wake)
			SetLatch(wake);
		poll_wait();
		CHECK_FOR_INTERRUPTS();
		waited += POLL_MS;
	}
}

int
audit_queue_peek(AccessEvent **events)
{
	AuditSlot  *s;
	uint64		tail,
				n;

	*events = NULL;
	if (shared == NULL || my_slot < 0)
		return 0;
	s = &shared->slots[my_slot];
	LWLockAcquire(shared->lock, LW_SHARED);
	tail = s->tail;
	n = s->head - s->tail;
	*events = palloc(sizeof(AccessEvent) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		(*events)[i] = s->q[(tail + i) % AUDIT_QUEUE_LEN];
	LWLockRelease(shared->lock);
	return (int) n;
}

void
audit_queue_consume(int n)
{
	if (shared == NULL || my_slot < 0 || n <= 0)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->slots[my_slot].tail += n;
	LWLockRelease(shared->lock);
}

int
audit_queue_length(void)
{
	int			n;

	if (shared == NULL || my_slot < 0)
		return 0;
	LWLockAcquire(shared->lock, LW_SHARED);
	n = (int) (shared->slots[my_slot].head - shared->slots[my_slot].tail);
	LWLockRelease(shared->lock);
	return n;
}
