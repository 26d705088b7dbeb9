/*
 * keywrap.h — data keys wrapped under the master key (SPEC §2).
 *
 * wrapped = nonce(12) || AES-256-GCM(master, nonce, dek)(32) || tag(16),
 * associated data = "phi_guard.dek.v1" || uint32_be(key id).
 */
#ifndef PHIC_KEYWRAP_H
#define PHIC_KEYWRAP_H

#include <stdint.h>
#include "status.h"

#define PHIC_DEK_LEN 32
#define PHIC_WRAPPED_LEN 60

/* Wrap dek for key id under kek with a fresh random nonce. */
extern phic_status phic_key_wrap(const uint8_t kek[32], uint32_t key_id,
								 const uint8_t dek[PHIC_DEK_LEN],
								 uint8_t out[PHIC_WRAPPED_LEN]);

/*
 * Unwrap into dek.  PHIC_ERR_AUTH when the master key is not the one that
 * wrapped it, the id differs, or the bytes were altered; dek is then wiped.
 */
extern phic_status phic_key_unwrap(const uint8_t kek[32], uint32_t key_id,
								   const uint8_t wrapped[PHIC_WRAPPED_LEN],
								   uint8_t dek[PHIC_DEK_LEN]);

#endif
