/*
 * shmem.h — the audit's shared memory (shmem.c): per database, the state
 * of its worker and the ring of access events waiting to be written;
 * internal to src/audit.
 */
#ifndef PHI_GUARD_AUDIT_SHMEM_H
#define PHI_GUARD_AUDIT_SHMEM_H

#include "postgres.h"

#include "audit/record.h"

/* One access event: counts of one (kind, key) in one statement. */
typedef struct AccessEvent
{
	AuditWho	who;
	char		kind;			/* AUDIT_ACCESS_* */
	uint32		key_id;
	int64		count;
	int			pid;
	char		key_name[AUDIT_NAME_LEN];
} AccessEvent;

/* false when the library was not preloaded (no shared memory) */
extern bool audit_shmem_attached(void);

/*
 * The worker of this database (MyDatabaseId).  claim: true when it had no
 * worker and is now marked starting, so the caller must start one (and
 * call audit_slot_start_failed if that fails); false when it has one, is
 * getting one, or cannot have one (no shared memory, every slot taken).
 */
extern bool audit_slot_claim_start(void);
extern void audit_slot_start_failed(void);

/*
 * Called by the worker for dboid: become the slot's consumer until the
 * process exits.  false when there is no slot for it.
 */
extern bool audit_slot_attach_worker(Oid dboid);

/*
 * Producer side (any backend of the database): append e, waking the
 * worker when the ring is half full and waiting for it (up to 5 s) while
 * it is full.  false when e could not be queued.
 */
extern bool audit_queue_push(const AccessEvent *e);

/*
 * Wait (up to 5 s) until the worker has consumed every event queued so
 * far in this database.  true when done or when there is no queue.
 */
extern bool audit_queue_wait_written(void);

/*
 * Worker side, in the worker's own slot: the events waiting (a palloc'd
 * copy in *events, their number returned; the ring keeps them), consume
 * the first n once written, and how many wait.
 */
extern int	audit_queue_peek(AccessEvent **events);
extern void audit_queue_consume(int n);
extern int	audit_queue_length(void);

#endif
