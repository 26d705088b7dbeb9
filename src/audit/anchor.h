/*
 * anchor.h — external anchoring of the audit chain (anchor.c): after a
 * seal, phi_guard.audit_anchor_command receives the new phi_audit_digest()
 * on its standard input (SPEC §8).  Internal to src/audit, except the two
 * settings, which src/phi_guard.c registers.
 */
#ifndef PHI_GUARD_AUDIT_ANCHOR_H
#define PHI_GUARD_AUDIT_ANCHOR_H

#include "postgres.h"

#include "datatype/timestamp.h"

/* phi_guard.audit_anchor_command: shell command, "" = anchoring off */
extern char *phi_guard_audit_anchor_command;

/* phi_guard.audit_anchor_timeout: ms a command may run before it is killed */
extern int	phi_guard_audit_anchor_timeout;

/* From audit_init: the shared "anchor due" records. */
extern void audit_anchor_init(void);

/*
 * The audit worker, after a seal round (outside a transaction); sealed is
 * what audit_seal returned.  When anchoring is on and the database's
 * newest block is newer than the newest one anchored or due, reads its
 * phi_audit_digest() in a short transaction of its own and makes it due,
 * waking the launcher.  Never waits for a lock, never raises an error
 * (WARNING instead): the worker's access path must not depend on it.
 */
extern void audit_anchor_after_seal(int64 sealed);

/*
 * The launcher, at start: forget the commands a previous launcher left
 * running (it killed them as it exited) and catch SIGCHLD, which sets the
 * launcher's latch when a command ends.
 */
extern void audit_anchor_launcher_start(void);

/*
 * The launcher, every round: reap the commands that ended (log failures,
 * schedule retries with backoff), kill those running longer than
 * phi_guard.audit_anchor_timeout, and start one for each database whose
 * newest digest is due.  Never waits for a command.  Lowers *next to
 * when it must look again.
 */
extern void audit_anchor_round(TimestampTz now, TimestampTz *next);

#endif
