/*
 * sha256x2.h — SHA-256 of two messages at once with the x86 SHA extensions
 * (sha256x2.c); for chain.c, which falls back to OpenSSL elsewhere.
 */
#ifndef PHIC_SHA256X2_H
#define PHIC_SHA256X2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define PHIC_SHA256X2 1

/* Whether this CPU has the SHA extensions (and SSSE3, SSE4.1); cached. */
extern bool phic_sha256x2_available(void);

/*
 * out0 = SHA-256 of n0 bytes at d0 and out1 = SHA-256 of n1 bytes at d1,
 * their blocks interleaved.  Only when phic_sha256x2_available().
 */
extern void phic_sha256x2(const uint8_t *d0, size_t n0, uint8_t out0[32],
						  const uint8_t *d1, size_t n1, uint8_t out1[32]);
#endif

#endif
