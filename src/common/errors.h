/*
 * errors.h — errors that several capabilities raise the same way
 * (errors.c).  The SQLSTATEs themselves are in phi_guard.h.
 */
#ifndef PHI_GUARD_COMMON_ERRORS_H
#define PHI_GUARD_COMMON_ERRORS_H

#include "postgres.h"

#include "core/status.h"

/* true once _PG_init ran from shared_preload_libraries */
extern bool phi_guard_preloaded;

/*
 * Raise the PostgreSQL error for a failure st of the plain-C core while
 * doing what ("encrypt value", ...): the one mapping of core statuses and
 * OpenSSL failures to SQLSTATEs.  Never names data, keys or ciphertext.
 */
extern void errors_raise_core(phic_status st, const char *what) pg_attribute_noreturn();

/*
 * ERROR (PH003) "phi_guard is not loaded through shared_preload_libraries"
 * with a hint to preload, unless phi_guard_preloaded.  detail (a full
 * sentence, or NULL) says what needs the preloaded library.
 */
extern void errors_require_preloaded(const char *detail);

#endif
