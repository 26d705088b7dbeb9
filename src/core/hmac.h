/*
 * hmac.h — HMAC-SHA256 with the key's inner and outer pads hashed once.
 *
 * A phic_hmac holds two SHA-256 states that have absorbed key^ipad and
 * key^opad; each MAC then costs two state copies and two short digests
 * instead of a full EVP_MAC set-up (blind indexes run once per row).
 */
#ifndef PHIC_HMAC_H
#define PHIC_HMAC_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

#define PHIC_HMAC_LEN 32

typedef struct phic_hmac phic_hmac;

/* Prepare a key of any length; NULL on failure. */
extern phic_hmac *phic_hmac_new(const uint8_t *key, size_t keylen);
extern void phic_hmac_free(phic_hmac *h);

/* MAC over the concatenation of up to three parts (ptr NULL = absent). */
extern phic_status phic_hmac3(phic_hmac *h,
							  const void *a, size_t alen,
							  const void *b, size_t blen,
							  const void *c, size_t clen,
							  uint8_t out[PHIC_HMAC_LEN]);

/* The first bits (1..64) of a MAC as an unsigned integer, big-endian. */
extern uint64_t phic_mac_bits(const uint8_t mac[PHIC_HMAC_LEN], int bits);

#endif
