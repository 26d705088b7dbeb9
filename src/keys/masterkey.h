/*
 * masterkey.h — the master keys (masterkey.c), private to src/keys: only
 * the keystore wraps and unwraps with them, and masterkey_sql.c reports
 * on them.
 */
#ifndef PHI_GUARD_MASTERKEY_H
#define PHI_GUARD_MASTERKEY_H

#include "postgres.h"

#include "core/status.h"

#define MASTERKEY_MAX 8			/* keys in the key file or command output */
#define MASTERKEY_NAME_MAX 63

/*
 * The current master key (the first one loaded), for every new wrap.
 * Fails with PH003 and a hint when phi_guard was not preloaded or no key
 * could be loaded.
 */
extern const uint8 *masterkey_get(void);

/* How many master keys are loaded (>= 1); PH003 like masterkey_get. */
extern int	masterkey_count(void);

/*
 * Unwrap a data or index key (SPEC §2 format) with the loaded master keys,
 * current one first.  PHIC_OK with *slot (when not NULL) = the 0-based
 * index of the key that opened it; PHIC_ERR_AUTH when none does (dek
 * wiped); another status when OpenSSL fails.  PH003 when no key is loaded.
 */
extern phic_status masterkey_unwrap(uint32 key_id, const uint8 *wrapped,
									uint8 *dek, int *slot);

/* Fingerprint (8 hex characters) of loaded key slot (0-based). */
extern const char *masterkey_fingerprint(int slot);

/* Name given to loaded key slot in the key text, or NULL when none. */
extern const char *masterkey_name(int slot);

#endif
