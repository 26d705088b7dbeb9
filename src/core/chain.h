/*
 * chain.h — hashing of the audit chain (SPEC §6).
 *
 *   entry_hash = SHA-256(UTF-8 bytes of record)
 *   block_hash = SHA-256(prev_hash || uint64_be(block_no) || uint64_be(entries)
 *                        || entry_hash_1 || ... || entry_hash_n)
 */
#ifndef PHIC_CHAIN_H
#define PHIC_CHAIN_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

#define PHIC_HASH_LEN 32

/* SHA-256 of n bytes; PHIC_ERR_CRYPTO if OpenSSL fails. */
extern phic_status phic_sha256(const void *data, size_t n, uint8_t out[PHIC_HASH_LEN]);

/*
 * SHA-256 of two inputs, as two phic_sha256 calls would give them: faster
 * where the CPU can hash both at once (sha256x2.c).
 */
extern phic_status phic_sha256_pair(const void *d0, size_t n0, uint8_t out0[PHIC_HASH_LEN],
									const void *d1, size_t n1, uint8_t out1[PHIC_HASH_LEN]);

/*
 * Block hash over n entry hashes stored back to back (n * 32 bytes) in
 * entry_hashes, in (xid, id) order.
 */
extern phic_status phic_block_hash(const uint8_t prev_hash[PHIC_HASH_LEN],
								   uint64_t block_no, uint64_t n,
								   const uint8_t *entry_hashes,
								   uint8_t out[PHIC_HASH_LEN]);

#endif
