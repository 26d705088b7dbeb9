/*
 * aead.h — AES-256-GCM with a 96-bit nonce and a 128-bit tag, on prepared
 * OpenSSL contexts.
 *
 * A phic_gcm holds one key's expanded schedule in an encrypt and a decrypt
 * context, so each operation only sets a nonce: no algorithm fetch, no key
 * expansion per call.  Associated data may be passed in two pieces (the
 * ciphertext header and the caller's aad) to avoid concatenating them.
 * Not thread-safe: one phic_gcm per thread (one per PostgreSQL backend).
 */
#ifndef PHIC_AEAD_H
#define PHIC_AEAD_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

#define PHIC_GCM_KEY_LEN 32
#define PHIC_GCM_NONCE_LEN 12
#define PHIC_GCM_TAG_LEN 16

typedef struct phic_gcm phic_gcm;

/* A bounded byte string; ptr may be NULL when len is 0. */
typedef struct phic_bytes
{
	const uint8_t *ptr;
	size_t		len;
} phic_bytes;

/* Key a new pair of contexts; NULL on failure (out of memory or OpenSSL). */
extern phic_gcm *phic_gcm_new(const uint8_t key[PHIC_GCM_KEY_LEN]);

/* Free both contexts (OpenSSL wipes their key schedules). NULL is a no-op. */
extern void phic_gcm_free(phic_gcm *g);

/*
 * Encrypt pt into ct (pt.len bytes; may be the same buffer) and write the
 * tag.  aad1 and aad2 are authenticated in that order.
 */
extern phic_status phic_gcm_seal(phic_gcm *g,
								 const uint8_t nonce[PHIC_GCM_NONCE_LEN],
								 phic_bytes aad1, phic_bytes aad2,
								 phic_bytes pt, uint8_t *ct,
								 uint8_t tag[PHIC_GCM_TAG_LEN]);

/*
 * Decrypt ct into pt (ct.len bytes) and verify the tag.  On PHIC_ERR_AUTH the
 * output buffer has been wiped: unauthenticated plaintext never escapes.
 */
extern phic_status phic_gcm_open(phic_gcm *g,
								 const uint8_t nonce[PHIC_GCM_NONCE_LEN],
								 phic_bytes aad1, phic_bytes aad2,
								 phic_bytes ct,
								 const uint8_t tag[PHIC_GCM_TAG_LEN],
								 uint8_t *pt);

#endif
