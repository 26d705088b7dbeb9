/*
 * access.h — the worker's and the launcher's side of the access events
 * (audit_access.c); internal to src/audit.
 */
#ifndef PHI_GUARD_AUDIT_ACCESS_H
#define PHI_GUARD_AUDIT_ACCESS_H

#include "audit/shmem.h"
#include "audit/writer.h"

/*
 * Write up to max events waiting in slot i as entries through w, without
 * consuming them: audit_queue_consume(i, n) once the transaction
 * committed.  Returns how many were written.
 */
extern int	audit_queue_write(AuditWriter *w, int i, int max);

/*
 * Write e's record, with its listed references rows, to the server log
 * (LOG), prefixed with why it is not in the audit log: "standby",
 * "database dropped", ...  The references of token kinds are withheld
 * (tokens stay out of logs).  Builds the record only; needs no database.
 */
extern void audit_access_log(const AccessEvent *e, const char *rows, const char *why);

/*
 * Slot i's events cannot be written (its database or its extension is
 * gone, or the server stops before a worker could write them): write each
 * to the server log, saying why, and free the cells.  The slot then has
 * nothing to seal; it is freed unless in use.  Called by the slot's worker,
 * or by the launcher for a slot without one.
 */
extern void audit_queue_discard(int i, const char *why);

/* From audit_init: the executor, utility and transaction hooks. */
extern void audit_access_init(void);

#endif
