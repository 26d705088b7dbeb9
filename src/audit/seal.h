/*
 * seal.h — sealing committed entries into blocks (audit_seal.c); internal
 * to src/audit.
 */
#ifndef PHI_GUARD_AUDIT_SEAL_H
#define PHI_GUARD_AUDIT_SEAL_H

#include "postgres.h"

/*
 * Seal every committed entry below the current horizon into one new
 * block, in a READ COMMITTED transaction.  Returns the entries sealed.
 */
extern int64 audit_seal(void);

#endif
