/*
 * tokens.h — src/tokens: what phi_guard derives from values without
 * storing them in the clear (SPEC §4, §5 masking).
 *
 * Owns:
 *   blindindex.c  phi_blind_index: keyed, truncated HMAC of a value
 *   token.c       token domains and the token vault: phi_tokenize,
 *                 phi_detokenize, phi_token_forget
 *   vault.c       the vault's rows: index look-ups, inserts without SQL
 *                 where nothing attached to the vault would be skipped
 *   mask.c        phi_mask, and masked reads (phi_decrypt_masked)
 * May call: src/core, src/common, src/audit, src/context (the signed
 * context's tenant), src/keys (index keys, data keys by name) and src/crypto (the vault's values are encrypted and
 * decrypted only through it).  Nothing in src/ below it calls it.
 *
 * This header names the folder's dependencies; token.c and vault.c also
 * share vault.h.
 */
#ifndef PHI_GUARD_TOKENS_H
#define PHI_GUARD_TOKENS_H

#include "postgres.h"

#include "audit/audit.h"
#include "context/context.h"
#include "crypto/crypto.h"
#include "keys/keys.h"

#endif
