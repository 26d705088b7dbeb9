/*
 * phi_guard.h — the few declarations that belong to no one capability:
 * the project's SQLSTATEs.  (The version reaches C as PHI_GUARD_VERSION,
 * passed by the Makefile from phi_guard.control.)
 *
 * Any file of src/ outside src/core may include it; it includes nothing of
 * phi_guard's own (the layering test counts it as part of src/common).
 *
 * Naming: SQL-callable C symbols are phi_guard_<what>; functions shared
 * between glue files are <file>_<what> (masterkey_, keyring_, audit_, ...);
 * the plain-C core in src/core uses phic_.
 */
#ifndef PHI_GUARD_H
#define PHI_GUARD_H

#include "postgres.h"

/*
 * The project's SQLSTATEs (class PH, documented in the README).  Standard
 * codes are used where one fits: 42704 unknown key, 42501 privileges,
 * 22P02/22P03 malformed phi_ciphertext, 42710 duplicate key name.
 */
#define ERRCODE_PHI_DECRYPT_FAILED		MAKE_SQLSTATE('P','H','0','0','1')
#define ERRCODE_PHI_KEY_DESTROYED		MAKE_SQLSTATE('P','H','0','0','2')
#define ERRCODE_PHI_NO_MASTER_KEY		MAKE_SQLSTATE('P','H','0','0','3')
#define ERRCODE_PHI_MASTER_KEY_MISMATCH MAKE_SQLSTATE('P','H','0','0','4')
#define ERRCODE_PHI_NO_ACTIVE_KEY		MAKE_SQLSTATE('P','H','0','0','5')
#define ERRCODE_PHI_AUDIT_UNAVAILABLE	MAKE_SQLSTATE('P','H','0','0','6')

#endif
