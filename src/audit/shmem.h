/*
 * shmem.h — the audit's shared memory, internal to src/audit: one slot per
 * database that is active (access events waiting, entries to seal, or an
 * audit worker), a pool of access-event cells shared by all databases, and
 * the launcher's state.  shmem.c sets it up and keeps the slots, queue.c
 * moves events through the pool, launcher.c and worker.c run the workers.
 *
 * Every field below is read and written under AuditShared.lock, except
 * where a field says otherwise.
 */
#ifndef PHI_GUARD_AUDIT_SHMEM_H
#define PHI_GUARD_AUDIT_SHMEM_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "port/atomics.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

#include "audit/record.h"

/* bytes of an event's row references kept in its own cell */
#define ACCESS_ROWS_INLINE 1024

/*
 * One access event: counts of one (kind, key) in one statement, and for
 * kinds that reveal values (SPEC §7) its row references and phase.  The
 * JSON text of the listed references (rows_len bytes: "ref","ref") is in
 * rows, and beyond ACCESS_ROWS_INLINE bytes in the chain of text cells
 * that rows_more starts.
 */
typedef struct AccessEvent
{
	AuditWho	who;
	char		kind;			/* AUDIT_ACCESS_* */
	char		phase;			/* ACCESS_PHASE_*, or 0: names no rows */
	bool		omitted_exact;	/* rows_omitted is exact (see refs.c) */
	uint32		key_id;
	int64		count;
	int			pid;
	TimestampTz proc_start;		/* with pid and seq: the access_id */
	uint64		seq;
	uint64		query_id;		/* 0: none */
	int			nrows;			/* references listed */
	int64		rows_omitted;
	int			rows_len;
	int			rows_more;		/* first text cell; -1: none */
	char		key_name[AUDIT_KEY_LEN];
	char		domain[NAMEDATALEN];	/* detokenize: the token domain */
	char		rows[ACCESS_ROWS_INLINE];
} AccessEvent;

#define ACCESS_PHASE_INTENT 'i'
#define ACCESS_PHASE_FINAL 'f'

/*
 * A cell of the pool: free, reserved by a backend, queued for a database
 * (an event), or text: more row references of a queued event, its bytes
 * where the event would be (ACCESS_CELL_TEXT of them, see cell_text in
 * queue.c), next chaining the event's text cells.
 */
typedef struct AccessCell
{
	int			next;			/* next cell of its list; -1: last */
	AccessEvent event;
} AccessCell;

#define ACCESS_CELL_TEXT ((int) sizeof(AccessEvent))

typedef enum AuditWorkerState
{
	AUDIT_WORKER_NONE = 0,
	AUDIT_WORKER_STARTING,		/* registered by the launcher, not attached yet */
	AUDIT_WORKER_RUNNING
} AuditWorkerState;

/* The state of one active database. */
typedef struct AuditDb
{
	Oid			dboid;			/* InvalidOid: the slot is free */
	AuditWorkerState state;
	int			worker_pid;
	Latch	   *worker_latch;	/* NULL unless RUNNING */
	TimestampTz started_at;		/* when the worker's turn began */
	bool		yield;			/* the launcher asks the worker to end its turn */
	bool		visit;			/* a worker is wanted now (phi_audit_seal, a
								 * waiting producer, the launcher's sweep) */
	bool		swept;			/* claimed by the sweep, not by activity */
	int			failures;		/* workers in a row that stopped before attaching */
	TimestampTz retry_at;		/* no new worker before this */
	TimestampTz waiting_since;	/* has needed a worker since; 0: does not */
	int			first;			/* queued cells, oldest first; -1: none */
	int			last;
	int			queued;
	int			reserved;		/* cells reserved by backends, not queued yet */
	int			text_cells;		/* text cells of queued events */
	uint64		pushed;			/* events queued since the slot was claimed */
	uint64		written;		/* events written since then: the first
								 * 'written' pushed ones (FIFO) are committed */
	pg_atomic_uint64 written_max;	/* newest transaction (FullTransactionId)
									 * that wrote entries directly; 0: none.
									 * Raised under the shared lock (every
									 * audited transaction does), set and
									 * read under the exclusive one */
	uint64		sealed_below;	/* the last seal covered every xid below it */
	TimestampTz next_seal;		/* the worker seals at or after this */
	TimestampTz urgent_at;		/* the last intent queued; 0: none */
} AuditDb;

/* A backend waiting until its database's events up to ticket are written. */
typedef struct AuditWaiter
{
	Oid			dboid;
	uint64		ticket;			/* 0: not waiting */
} AuditWaiter;

typedef struct AuditShared
{
	LWLock	   *lock;
	int			ndbs;			/* phi_guard.max_active_databases */
	int			ncells;			/* phi_guard.access_queue_size */
	int			free_cell;		/* free list of the pool; -1: empty */
	int			nfree;
	int			launcher_pid;	/* 0: no launcher runs */
	Latch	   *launcher_latch;
	bool		no_worker;		/* no worker could be started while none ran */
	bool		sweep_requested;	/* a writer found no free slot */
	TimestampTz slot_wanted_at; /* last time a producer waited for a slot */
	int			nwaiters;		/* one per PGPROC: backends waiting for a ticket */
	AuditWaiter *waiters;		/* after the cells */
	AuditDb    *dbs;			/* ndbs slots, after this struct */
	AccessCell *cells;			/* ncells cells, after the slots */
} AuditShared;

/* NULL when the library was not preloaded */
extern AuditShared *audit_shared;

/* From audit_init: request and set up the shared memory. */
extern void audit_shmem_init(void);

/* ---- shmem.c: slots (the caller holds audit_shared->lock exclusively) ---- */

/* The slot of dboid, or -1; with claim, a free slot becomes dboid's. */
extern int	audit_db_slot(Oid dboid, bool claim);

/* Free slot i unless something still needs it; true when freed. */
extern bool audit_db_release_if_idle(int i);

/* Slot i has unsealed entries (or may have: see the sweep). */
extern bool audit_db_unsealed(AuditDb *d);

/*
 * The latch to set so that slot i's events get written: its worker's, or
 * the launcher's when it has none (NULL when neither runs).
 */
extern Latch *audit_db_wake_latch(int i);

/* ---- shmem.c: without the lock held ---- */

/*
 * This database has entries written directly by transaction fxid, to be
 * sealed: its slot remembers the newest such transaction.  Never fails and
 * never waits for a free slot (without one the launcher sweeps later).
 */
extern void audit_db_mark_written(uint64 fxid);

/* Set the launcher's latch, if it runs. */
extern void audit_wake_launcher(void);

/* ---- shmem.c: the worker of slot i ---- */

/*
 * Become the worker of slot i, which the launcher started for dboid: false
 * when the slot is no longer waiting for this worker (then exit).  The
 * slot forgets its worker when the process exits.
 */
extern bool audit_worker_attach(int i, Oid dboid);

/* Start of a round: the visit asked for is being made. */
extern void audit_worker_round_begin(int i);

/*
 * Whether to seal now: the slot has unsealed entries and its next seal is
 * due.  When it is, the next one is set an interval later (a round that
 * cannot take its lock is skipped, not retried sooner).
 */
extern bool audit_worker_seal_due(int i, TimestampTz now);

/* A seal by the worker committed with this horizon. */
extern void audit_worker_sealed(int i, uint64 horizon);

/*
 * End of a round: true when the worker should exit (its turn is over, or
 * nothing is due soon), and then the slot no longer has a worker; else
 * *wait_ms is how long to sleep.  busy: the round could not write for a
 * lock held elsewhere.
 */
extern bool audit_worker_end_round(int i, TimestampTz now, bool busy, long *wait_ms);

/* ---- queue.c: producers ---- */

/*
 * A cell for one access event of this database, reserved before the
 * access is granted.  Waits a bounded time for room; when none comes (the
 * queue stays full, no worker can run, no slot is free) raises PH006.
 */
extern int	audit_queue_reserve(void);

/*
 * Give back cells reserved with audit_queue_reserve and not used (an
 * access refused after its cell was reserved).
 */
extern void audit_queue_unreserve(const int *cells, int n);

/*
 * Queue e in the reserved cell, with its row references: rows[0..
 * e->rows_len), whose bytes beyond ACCESS_ROWS_INLINE go to the reserved
 * text cells text_cells[0..ntext) (audit_queue_text_cells of them).  Never
 * fails and never waits for room.  Returns the event's ticket.  urgent:
 * an intent, for which this backend waits next (audit_queue_wait_ticket):
 * the worker is woken now, and wakes this backend once it is written.
 */
extern uint64 audit_queue_push(int cell, const AccessEvent *e, const char *rows,
							   const int *text_cells, int ntext, bool urgent);

/* The text cells that row references of len bytes need. */
extern int	audit_queue_text_cells(int len);

/*
 * Wait until the event of ticket (from audit_queue_push) is committed in
 * the log (and flushed: the worker commits synchronously), for up to
 * timeout_ms; raises PH006 when it is not, or when no worker can write it.
 */
extern void audit_queue_wait_ticket(uint64 ticket, int timeout_ms);

/*
 * Have this database's events queued so far written: asks for a worker and
 * waits (up to 5 s).  true when done or when there is no queue.
 */
extern bool audit_queue_wait_written(void);

/* ---- queue.c: the worker of slot i (or the launcher, when it has none) ---- */

/* How many events wait in slot i; how many cells backends reserved there. */
extern int	audit_queue_length(int i);
extern int	audit_queue_reserved(int i);

/*
 * A palloc'd copy of up to max events waiting in slot i, oldest first, in
 * *events, and of each one's row references (NUL-terminated; "" when none)
 * in (*rows)[k]; returns their number.  The slot keeps them until
 * audit_queue_consume.
 */
extern int	audit_queue_peek(int i, int max, AccessEvent **events, char ***rows);

/*
 * The first n events of slot i were written and committed (or logged, when
 * they cannot be written): free their cells, and wake the backends waiting
 * for them.
 */
extern void audit_queue_consume(int i, int n);

#endif
