/*
 * audit_access.c — access entries for decrypt and detokenize (SPEC §6).
 *
 * Each call counts into a small backend-local table keyed by (kind, key);
 * the first count of a key in a statement captures who/where/why.  When the
 * top-level statement ends (ExecutorEnd or utility at nesting level 0), or
 * the transaction ends either way, the counts become access events in this
 * database's shared-memory queue, and the background worker writes them to
 * phi_guard.audit_log in its own transaction — so an access inside a
 * transaction that rolls back is still recorded.  On a hot standby, which
 * cannot write, events go to the server log instead.
 *
 * Shared memory: AUDIT_SLOTS per-database slots, each a ring of
 * AUDIT_QUEUE_LEN events.  Producers append under the exclusive lock; the
 * worker copies under a shared lock and advances the tail only after its
 * transaction committed.  A full ring wakes the worker and waits for it (up
 * to 5 s); only then does the event go to the server log (never lost).
 */
#include "postgres.h"

#include "access/xact.h"
#include "access/xlog.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "tcop/utility.h"
#include "utils/builtins.h"

#include "audit/audit.h"

#define AUDIT_SLOTS 8
#define AUDIT_QUEUE_LEN 512
#define PENDING_MAX 16
#define FULL_WAIT_MS 5000

typedef struct AccessEvent
{
	AuditWho	who;
	char		kind;
	uint32		key_id;
	int64		count;
	int			pid;
	char		key_name[AUDIT_NAME_LEN];
} AccessEvent;

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
	Latch	   *latch;
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

static AccessEvent pending[PENDING_MAX];
static int	npending = 0;
static int	nesting = 0;

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;
static ExecutorRun_hook_type prev_run = NULL;
static ExecutorFinish_hook_type prev_finish = NULL;
static ExecutorEnd_hook_type prev_end = NULL;
static ProcessUtility_hook_type prev_utility = NULL;

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

/*
 * Make sure this database has its audit worker (sealing and queue
 * draining).  Cheap when it runs: one read of shared memory.
 */
void
audit_ensure_worker(void)
{
	int			i;
	bool		start = false;

	if (shared == NULL || !OidIsValid(MyDatabaseId) || RecoveryInProgress())
		return;
	i = slot_for_db(MyDatabaseId);
	if (i < 0 || shared->slots[i].state != WORKER_NONE)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	if (shared->slots[i].state == WORKER_NONE)
	{
		shared->slots[i].state = WORKER_STARTING;
		start = true;
	}
	LWLockRelease(shared->lock);
	if (start && !worker_register(MyDatabaseId))
	{
		LWLockAcquire(shared->lock, LW_EXCLUSIVE);
		shared->slots[i].state = WORKER_NONE;
		LWLockRelease(shared->lock);
	}
}

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

/* Called by the worker for dboid: become the slot's consumer. */
bool
audit_worker_attach(Oid dboid)
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

static void
build_access_record(StringInfo buf, const AccessEvent *e)
{
	StringInfoData detail;
	const char *kind;
	const char *table = NULL;

	initStringInfo(&detail);
	switch (e->kind)
	{
		case AUDIT_ACCESS_BREAK_GLASS:
			kind = "break_glass_use";
			table = e->key_name;
			appendStringInfo(&detail, "{\"grant\":%u", e->key_id);
			break;
		case AUDIT_ACCESS_CONTEXT_REJECTED:
			kind = "context_rejected";
			appendStringInfoString(&detail, "{\"reason\":");
			audit_json_string(&detail, e->key_name);
			break;
		default:
			kind = e->kind == AUDIT_ACCESS_DECRYPT ? "decrypt" :
				e->kind == AUDIT_ACCESS_DETOKENIZE ? "detokenize" : "detokenize_failed";
			appendStringInfoString(&detail, "{\"key\":");
			audit_json_string(&detail, e->key_name);
			appendStringInfo(&detail, ",\"key_id\":%u", e->key_id);
			break;
	}
	appendStringInfo(&detail, ",\"count\":" INT64_FORMAT ",\"pid\":%d}", e->count, e->pid);
	audit_build_record(buf, &e->who, kind, table, NULL, NULL, detail.data);
	pfree(detail.data);
}

static void
log_event(const AccessEvent *e, const char *why)
{
	StringInfoData buf;

	initStringInfo(&buf);
	build_access_record(&buf, e);
	ereport(LOG,
			(errmsg("phi_guard access entry (%s): %s", why, buf.data)));
	pfree(buf.data);
}

/* Append one event to this database's ring; false when it stayed full. */
static bool
enqueue(const AccessEvent *e)
{
	int			i = slot_for_db(MyDatabaseId);
	int			waited = 0;

	if (i < 0)
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
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		waited += 10;
	}
}

/* Turn pending counts into events: queue, or log on a standby / overflow. */
static void
flush_pending(void)
{
	int			n = npending;

	npending = 0;
	for (int i = 0; i < n; i++)
	{
		if (shared == NULL || RecoveryInProgress())
			log_event(&pending[i], RecoveryInProgress() ? "standby" : "not preloaded");
		else if (!enqueue(&pending[i]))
		{
			log_event(&pending[i], "queue full");
			ereport(WARNING,
					(errmsg("phi_guard audit queue is full; access entry written to the server log"),
					 errhint("Check that the phi_guard audit worker is running.")));
		}
	}
}

/*
 * Count one access of kind to key key_id.  The first count of a key in a
 * statement captures the session's who/where/why (catalog lookups are not
 * possible later, at abort).
 */
void
audit_access_note(char kind, uint32 key_id, const char *key_name)
{
	static int	last = 0;
	AccessEvent *e;

	if (last < npending && pending[last].key_id == key_id && pending[last].kind == kind)
	{
		pending[last].count++;
		return;
	}
	for (last = 0; last < npending; last++)
		if (pending[last].key_id == key_id && pending[last].kind == kind)
		{
			pending[last].count++;
			return;
		}
	if (npending == PENDING_MAX)
		flush_pending();
	last = npending++;
	e = &pending[last];
	memset(e, 0, sizeof(*e));
	/* copy the name first: the lookups below may flush the keyring cache */
	strlcpy(e->key_name, key_name, sizeof(e->key_name));
	e->kind = kind;
	e->key_id = key_id;
	e->count = 1;
	e->pid = MyProcPid;
	audit_capture_who(&e->who);
	audit_ensure_worker();
}

/*
 * Worker side: write the events waiting in this database's ring as entries
 * (or to the log), without consuming them; audit_queue_consume(n) after
 * the transaction committed.  Returns how many were written.
 */
int
audit_queue_write(AuditWriter *w, bool to_log)
{
	AuditSlot  *s;
	AccessEvent *copy;
	uint64		tail,
				n;
	StringInfoData buf;

	if (shared == NULL || my_slot < 0)
		return 0;
	s = &shared->slots[my_slot];
	LWLockAcquire(shared->lock, LW_SHARED);
	tail = s->tail;
	n = s->head - s->tail;
	copy = palloc(sizeof(AccessEvent) * Max(n, 1));
	for (uint64 i = 0; i < n; i++)
		copy[i] = s->q[(tail + i) % AUDIT_QUEUE_LEN];
	LWLockRelease(shared->lock);

	initStringInfo(&buf);
	for (uint64 i = 0; i < n; i++)
	{
		if (to_log)
			log_event(&copy[i], "standby");
		else
		{
			resetStringInfo(&buf);
			build_access_record(&buf, &copy[i]);
			audit_writer_add(w, buf.data, buf.len);
		}
	}
	pfree(buf.data);
	pfree(copy);
	return (int) n;
}

/*
 * Wait (up to FULL_WAIT_MS) until the worker has written every access event
 * queued so far in this database, so that a seal that follows includes them.
 * Returns false if it did not happen in time (no worker, or a slow one).
 */
bool
audit_queue_sync(void)
{
	int			i,
				waited = 0;
	uint64		target;

	if (shared == NULL || (i = slot_for_db(MyDatabaseId)) < 0)
		return true;
	audit_ensure_worker();
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
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 10, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		CHECK_FOR_INTERRUPTS();
		waited += 10;
	}
}

/* Events waiting in this backend's database slot (the worker's view). */
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

void
audit_queue_consume(int n)
{
	if (shared == NULL || my_slot < 0 || n <= 0)
		return;
	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	shared->slots[my_slot].tail += n;
	LWLockRelease(shared->lock);
}

/* ---------------------------------------------------------------------
 * Statement boundaries
 * --------------------------------------------------------------------- */

static void
run_hook(QueryDesc *qd, ScanDirection dir, uint64 count, bool execute_once)
{
	nesting++;
	PG_TRY();
	{
		if (prev_run)
			prev_run(qd, dir, count, execute_once);
		else
			standard_ExecutorRun(qd, dir, count, execute_once);
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();
}

static void
finish_hook(QueryDesc *qd)
{
	nesting++;
	PG_TRY();
	{
		if (prev_finish)
			prev_finish(qd);
		else
			standard_ExecutorFinish(qd);
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();
}

static void
end_hook(QueryDesc *qd)
{
	if (prev_end)
		prev_end(qd);
	else
		standard_ExecutorEnd(qd);
	if (nesting == 0 && npending > 0)
		flush_pending();
}

static void
utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			 ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	nesting++;
	PG_TRY();
	{
		if (prev_utility)
			prev_utility(pstmt, queryString, readOnlyTree, context, params,
						 queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();
	if (nesting == 0 && npending > 0)
		flush_pending();
}

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			if (npending > 0)
				flush_pending();
			break;
		default:
			break;
	}
}

/* From _PG_init when preloaded: shared memory, executor hooks. */
void
audit_access_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
	prev_run = ExecutorRun_hook;
	ExecutorRun_hook = run_hook;
	prev_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = finish_hook;
	prev_end = ExecutorEnd_hook;
	ExecutorEnd_hook = end_hook;
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = utility_hook;
	RegisterXactCallback(xact_callback, NULL);
}
