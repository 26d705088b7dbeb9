/*
 * access.h — the worker's side of the access events (audit_access.c);
 * internal to src/audit.
 */
#ifndef PHI_GUARD_AUDIT_ACCESS_H
#define PHI_GUARD_AUDIT_ACCESS_H

#include "audit/writer.h"

/*
 * Write the events waiting in this database's queue as entries through w
 * (or to the server log when to_log, on a standby), without consuming
 * them: audit_queue_consume(n) after the transaction committed.  Returns
 * how many were written.
 */
extern int	audit_queue_write(AuditWriter *w, bool to_log);

#endif
