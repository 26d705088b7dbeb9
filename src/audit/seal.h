/*
 * seal.h — sealing committed entries into blocks (audit_seal.c); internal
 * to src/audit.
 */
#ifndef PHI_GUARD_AUDIT_SEAL_H
#define PHI_GUARD_AUDIT_SEAL_H

#include "postgres.h"

/*
 * Seal every committed entry below the current horizon into one new
 * block, in a READ COMMITTED transaction.  Returns the entries sealed and
 * sets *horizon to the xid below which everything is now sealed (0 when
 * unknown).  wait: wait for a seal of another transaction to end (a
 * user's phi_audit_seal); else return -1 at once when sealing's locks are
 * taken (the worker).
 */
extern int64 audit_seal(bool wait, uint64 *horizon);

#endif
