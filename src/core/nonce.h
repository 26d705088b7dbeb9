/*
 * nonce.h — 96-bit GCM nonces drawn from a batched random buffer.
 *
 * One RAND_bytes call costs about as much as encrypting a short field, so
 * nonces are cut from a 4 KiB buffer refilled when used up.  A fork handler
 * empties the buffer in the child: a child never reuses its parent's bytes.
 * Bytes are wiped as they are handed out.
 */
#ifndef PHIC_NONCE_H
#define PHIC_NONCE_H

#include <stdint.h>
#include "status.h"

#define PHIC_NONCE_LEN 12

/* Write a fresh random nonce into out; PHIC_ERR_RANDOM if the CSPRNG fails. */
extern phic_status phic_nonce_next(uint8_t out[PHIC_NONCE_LEN]);

/* Random bytes straight from the CSPRNG (for data keys): PHIC_ERR_RANDOM. */
extern phic_status phic_random_bytes(uint8_t *out, int len);

/* Drop whatever is buffered (tests; after fork it happens by itself). */
extern void phic_nonce_reset(void);

#endif
