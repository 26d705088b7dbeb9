/*
 * queue.c — access events on their way from a backend to its database's
 * audit log, through the pool of cells in shared memory (shmem.h).
 *
 * A cell is reserved when a statement first reveals a value of a key
 * (audit_access.c), before the value is returned; it is filled and queued
 * on the database's list when the statement or the transaction ends, and
 * the database's worker (worker.c) writes the list in its own transaction.
 * Reserving first is what makes "refuse rather than lose" hold: a queued
 * event can never be turned away for lack of room, and an access for which
 * no cell can be had within WAIT_MS is refused with PH006 before anything
 * is revealed — whether rows of the statement were already sent (a cursor,
 * a portal fetched in parts) does not matter.
 *
 * Row references (SPEC §7): an event's first ACCESS_ROWS_INLINE bytes of
 * references travel in its cell, the rest in text cells that the backend
 * reserves as its list of references grows (before it reveals the value
 * that needs them), chained from the event and freed with it.
 *
 * Durable mode: an intent event is pushed with a ticket — its position in
 * the database's list, which the worker writes in order — and its backend
 * waits until the worker has committed that far
 * (audit_queue_wait_ticket): one worker transaction, with
 * synchronous_commit on, commits the intents of every waiting backend at
 * once, and once its commit record is flushed the worker wakes the
 * backends whose tickets it covered (their latches, found in waiters by
 * PGPROC number) — no one else.
 *
 * Room: one database may hold at most half of the pool (queued, reserved
 * and text cells), so a database whose worker cannot write does not starve
 * the others.  A producer wakes the worker (or the launcher, when the database
 * has none) once its database has an eighth of the pool waiting or the
 * pool is half used; otherwise events wait for the next seal interval.
 *
 * Locking: audit_shared->lock (shmem.c), exclusively to take, link or free
 * cells.  Only the database's worker, or the launcher for a database that
 * has no worker, consumes a list, from its head: a copy taken by
 * audit_queue_peek stays valid until audit_queue_consume.  Events leave
 * the list only after the transaction that wrote them committed (never
 * lost; written twice if the worker dies in between).
 */
#include "postgres.h"

#include "miscadmin.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "utils/timestamp.h"

#include "audit/audit.h"
#include "audit/shmem.h"
#include "phi_guard.h"

#define WAIT_MS 1000			/* a producer waits this long for room */
#define WRITTEN_WAIT_MS 5000	/* phi_audit_seal waits this long for the worker */
#define POLL_MS 10
#define WAKE_EVERY_MS 100		/* a waiting producer asks for a worker this often */

/* The bytes of a text cell (where its event would be). */
#define cell_text(c) ((char *) &(c)->event)

/* Why a producer got no cell. */
typedef enum Refusal
{
	REFUSAL_NONE = 0,
	REFUSAL_NO_SLOT,
	REFUSAL_NO_LAUNCHER,
	REFUSAL_NO_WORKER,
	REFUSAL_FULL,
	REFUSAL_NOT_WRITTEN
} Refusal;

static void
poll_wait(void)
{
	(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
					 POLL_MS, PG_WAIT_EXTENSION);
	ResetLatch(MyLatch);
	CHECK_FOR_INTERRUPTS();
}

static void
refuse(Refusal why) pg_attribute_noreturn();

/* ERROR PH006: the access cannot be recorded, so it is not granted. */
static void
refuse(Refusal why)
{
	const char *detail;
	const char *hint;

	switch (why)
	{
		case REFUSAL_NO_SLOT:
			detail = "Every one of the phi_guard.max_active_databases slots is in use by another database.";
			hint = "Raise phi_guard.max_active_databases (a server restart is needed).";
			break;
		case REFUSAL_NO_LAUNCHER:
			detail = "The phi_guard audit launcher is not running.";
			hint = "Check the server log: the launcher needs a free max_worker_processes slot at server start.";
			break;
		case REFUSAL_NO_WORKER:
			detail = "No phi_guard audit worker could be started.";
			hint = "Raise max_worker_processes: phi_guard needs one process for its launcher and at least one more for the databases it serves.";
			break;
		case REFUSAL_NOT_WRITTEN:
			detail = "The audit worker did not commit the access entry in time (phi_guard.access_audit is durable): a lock held on phi_guard.audit_log, or a worker that cannot start or write.";
			hint = "Find what holds the audit worker back (pg_locks, pg_stat_activity, the server log).";
			break;
		default:
			detail = "This database's access queue stayed full: its audit worker is not writing it (a lock held on phi_guard.audit_log, or no free worker process).";
			hint = "Raise phi_guard.access_queue_size, or find what holds the audit worker back (pg_locks, the server log).";
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_PHI_AUDIT_UNAVAILABLE),
			 errmsg("access refused: it cannot be recorded in the audit log"),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
	pg_unreachable();
}

int
audit_queue_reserve(void)
{
	AuditShared *s = audit_shared;
	int			waited = 0;

	for (;;)
	{
		Refusal		why = REFUSAL_NONE;
		int			cell = -1;
		bool		claimed = false;
		Latch	   *wake = NULL;
		int			i;

		LWLockAcquire(s->lock, LW_EXCLUSIVE);
		i = audit_db_slot(MyDatabaseId, false);
		if (i < 0)
		{
			i = audit_db_slot(MyDatabaseId, true);
			claimed = i >= 0;
		}
		if (i < 0)
		{
			why = REFUSAL_NO_SLOT;
			s->slot_wanted_at = GetCurrentTimestamp();	/* the sweep gives way */
			if (waited % WAKE_EVERY_MS == 0)
				wake = s->launcher_latch;	/* it frees idle slots */
		}
		else
		{
			AuditDb    *d = &s->dbs[i];
			bool		running = d->state == AUDIT_WORKER_RUNNING;

			if (s->launcher_pid == 0 && !running)
				why = REFUSAL_NO_LAUNCHER;
			else if (s->no_worker && !running)
				why = REFUSAL_NO_WORKER;
			else if (s->free_cell < 0 ||
					 d->queued + d->reserved + d->text_cells >= Max(s->ncells / 2, 1))
				why = REFUSAL_FULL;
			else
			{
				cell = s->free_cell;
				s->free_cell = s->cells[cell].next;
				s->nfree--;
				d->reserved++;
			}
			if (why != REFUSAL_NONE && waited % WAKE_EVERY_MS == 0)
			{
				d->visit = true;	/* have a worker write, or try to start one */
				wake = audit_db_wake_latch(i);
			}
			else if (claimed)
				wake = s->launcher_latch;	/* a new slot: schedule its seal */
		}
		LWLockRelease(s->lock);
		if (wake)
			SetLatch(wake);
		if (why == REFUSAL_NONE)
			return cell;
		if (waited >= WAIT_MS)
			refuse(why);
		poll_wait();
		waited += POLL_MS;
	}
}

void
audit_queue_unreserve(const int *cells, int n)
{
	AuditShared *s = audit_shared;
	int			i;

	if (n == 0)
		return;
	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	/* the reservations keep the slot: it cannot have been freed */
	i = audit_db_slot(MyDatabaseId, false);
	Assert(i >= 0);
	for (int k = 0; k < n; k++)
	{
		s->cells[cells[k]].next = s->free_cell;
		s->free_cell = cells[k];
		s->nfree++;
	}
	s->dbs[i].reserved -= n;
	LWLockRelease(s->lock);
}

int
audit_queue_text_cells(int len)
{
	return len <= ACCESS_ROWS_INLINE ? 0
		: (len - ACCESS_ROWS_INLINE + ACCESS_CELL_TEXT - 1) / ACCESS_CELL_TEXT;
}

uint64
audit_queue_push(int cell, const AccessEvent *e, const char *rows,
				 const int *text_cells, int ntext, bool urgent)
{
	AuditShared *s = audit_shared;
	Latch	   *wake = NULL;
	uint64		ticket;
	int			i;
	TimestampTz now = urgent ? GetCurrentTimestamp() : 0;

	Assert(ntext == audit_queue_text_cells(e->rows_len));
	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	/* the reservation keeps the slot: it cannot have been freed */
	i = audit_db_slot(MyDatabaseId, false);
	Assert(i >= 0);
	{
		AuditDb    *d = &s->dbs[i];
		AccessCell *c = &s->cells[cell];
		int			done = Min(e->rows_len, ACCESS_ROWS_INLINE);

		c->event = *e;
		memcpy(c->event.rows, rows, done);
		c->event.rows_more = ntext > 0 ? text_cells[0] : -1;
		for (int k = 0; k < ntext; k++)
		{
			AccessCell *t = &s->cells[text_cells[k]];
			int			n = Min(e->rows_len - done, ACCESS_CELL_TEXT);

			memcpy(cell_text(t), rows + done, n);
			done += n;
			t->next = k + 1 < ntext ? text_cells[k + 1] : -1;
		}
		c->next = -1;
		if (d->last >= 0)
			s->cells[d->last].next = cell;
		else
			d->first = cell;
		d->last = cell;
		d->queued++;
		d->reserved -= 1 + ntext;
		d->text_cells += ntext;
		ticket = ++d->pushed;
		if (urgent)
		{
			/* the worker wakes this backend when the ticket is written */
			AuditWaiter *me = &s->waiters[MyProc->pgprocno];

			me->dboid = MyDatabaseId;
			me->ticket = ticket;
			d->visit = true;
			d->urgent_at = now;
		}
		if (urgent || d->queued >= Max(s->ncells / 8, 1) || s->nfree < s->ncells / 2)
			wake = audit_db_wake_latch(i);
	}
	LWLockRelease(s->lock);
	if (wake)
		SetLatch(wake);
	return ticket;
}

void
audit_queue_wait_ticket(uint64 ticket, int timeout_ms)
{
	AuditShared *s = audit_shared;
	TimestampTz start = GetCurrentTimestamp();
	Refusal		why = REFUSAL_NONE;

	/* (audit_queue_push registered this backend as the ticket's waiter) */
	for (;;)
	{
		long		waited = TimestampDifferenceMilliseconds(start, GetCurrentTimestamp());
		Latch	   *wake = NULL;
		bool		done;
		int			i;

		LWLockAcquire(s->lock, LW_SHARED);
		/* the waiter's reservations keep the slot */
		i = audit_db_slot(MyDatabaseId, false);
		Assert(i >= 0);
		done = s->dbs[i].written >= ticket;
		if (!done)
		{
			AuditDb    *d = &s->dbs[i];
			bool		running = d->state == AUDIT_WORKER_RUNNING;

			/* (databases may take turns for worker processes: wait on) */
			if (waited >= timeout_ms)
				why = s->launcher_pid == 0 && !running ? REFUSAL_NO_LAUNCHER :
					s->no_worker && !running ? REFUSAL_NO_WORKER : REFUSAL_NOT_WRITTEN;
			else if (!running)
				wake = audit_db_wake_latch(i);
		}
		LWLockRelease(s->lock);
		if (done || why != REFUSAL_NONE)
			break;
		if (wake)
		{
			/* no worker runs: have the launcher start one */
			LWLockAcquire(s->lock, LW_EXCLUSIVE);
			s->dbs[i].visit = true;
			LWLockRelease(s->lock);
			SetLatch(wake);
		}
		/* a worker that must first start is checked on now and then */
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 Min(timeout_ms - waited, WAKE_EVERY_MS), PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
		/* (a cancel leaves the waiter entry: a spurious wake-up later at most) */
		CHECK_FOR_INTERRUPTS();
	}
	if (why != REFUSAL_NONE)
	{
		/* the worker clears a waiter it wakes; one refused clears itself */
		LWLockAcquire(s->lock, LW_EXCLUSIVE);
		s->waiters[MyProc->pgprocno].ticket = 0;
		LWLockRelease(s->lock);
		refuse(why);
	}
}

bool
audit_queue_wait_written(void)
{
	AuditShared *s = audit_shared;
	Latch	   *wake = NULL;
	uint64		target = 0;
	int			i;

	if (s == NULL)
		return true;
	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	i = audit_db_slot(MyDatabaseId, false);
	if (i >= 0 && s->dbs[i].queued > 0)
	{
		s->dbs[i].visit = true;
		target = s->dbs[i].pushed;
		wake = audit_db_wake_latch(i);
	}
	LWLockRelease(s->lock);
	if (target == 0)
		return true;			/* nothing queued */
	if (wake)
		SetLatch(wake);
	for (int waited = 0;; waited += POLL_MS)
	{
		bool		done;

		LWLockAcquire(s->lock, LW_SHARED);
		/* a slot freed meanwhile had nothing left to write */
		done = s->dbs[i].dboid != MyDatabaseId || s->dbs[i].written >= target;
		LWLockRelease(s->lock);
		if (done)
			return true;
		if (waited >= WRITTEN_WAIT_MS)
			return false;
		poll_wait();
	}
}

int
audit_queue_length(int i)
{
	int			n;

	LWLockAcquire(audit_shared->lock, LW_SHARED);
	n = audit_shared->dbs[i].queued;
	LWLockRelease(audit_shared->lock);
	return n;
}

int
audit_queue_reserved(int i)
{
	int			n;

	LWLockAcquire(audit_shared->lock, LW_SHARED);
	n = audit_shared->dbs[i].reserved;
	LWLockRelease(audit_shared->lock);
	return n;
}

int
audit_queue_peek(int i, int max, AccessEvent **events, char ***rows)
{
	AuditShared *s = audit_shared;
	int			n = Min(audit_queue_length(i), max);
	int			c;

	/* allocated outside the lock; meanwhile the list can only grow */
	*events = palloc(sizeof(AccessEvent) * Max(n, 1));
	*rows = palloc(sizeof(char *) * Max(n, 1));
	LWLockAcquire(s->lock, LW_SHARED);
	c = s->dbs[i].first;
	for (int k = 0; k < n; k++)
	{
		(*events)[k] = s->cells[c].event;
		c = s->cells[c].next;
	}
	LWLockRelease(s->lock);

	/*
	 * The text cells of these events change only when the caller consumes
	 * them, and the lock taken above orders their bytes before this read.
	 */
	for (int k = 0; k < n; k++)
	{
		const AccessEvent *e = &(*events)[k];
		char	   *to = palloc(e->rows_len + 1);
		int			done = Min(e->rows_len, ACCESS_ROWS_INLINE);

		memcpy(to, e->rows, done);
		for (int t = e->rows_more; t >= 0 && done < e->rows_len; t = s->cells[t].next)
		{
			int			len = Min(e->rows_len - done, ACCESS_CELL_TEXT);

			memcpy(to + done, cell_text(&s->cells[t]), len);
			done += len;
		}
		to[done] = '\0';
		(*rows)[k] = to;
	}
	return n;
}

void
audit_queue_consume(int i, int n)
{
	AuditShared *s = audit_shared;
	AuditDb    *d = &s->dbs[i];

	LWLockAcquire(s->lock, LW_EXCLUSIVE);
	for (int k = 0; k < n; k++)
	{
		int			c = d->first;
		int			t = s->cells[c].event.rows_more;

		d->first = s->cells[c].next;
		s->cells[c].next = s->free_cell;
		s->free_cell = c;
		s->nfree++;
		/* and its text cells */
		while (t >= 0)
		{
			int			next = s->cells[t].next;

			s->cells[t].next = s->free_cell;
			s->free_cell = t;
			s->nfree++;
			d->text_cells--;
			t = next;
		}
	}
	if (d->first < 0)
		d->last = -1;
	d->queued -= n;
	d->written += n;
	/* wake the backends whose intents are now committed, and only them */
	for (int k = 0; n > 0 && k < s->nwaiters; k++)
	{
		AuditWaiter *w = &s->waiters[k];

		if (w->ticket != 0 && w->ticket <= d->written && w->dboid == d->dboid)
		{
			w->ticket = 0;
			SetLatch(&GetPGProcByNumber(k)->procLatch);
		}
	}
	LWLockRelease(s->lock);
}
