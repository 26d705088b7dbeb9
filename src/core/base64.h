/*
 * base64.h — standard base64 (RFC 4648 §4, with padding), strict decoding.
 *
 * The decoder accepts exactly the encoder's output: length a multiple of 4,
 * only the standard alphabet, '=' only as final padding, and unused bits of
 * the last symbol zero.  So every byte string has one text form, and the text
 * form of phi_ciphertext round-trips exactly.
 */
#ifndef PHIC_BASE64_H
#define PHIC_BASE64_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

/* Characters needed to encode n bytes (no terminator); 0 on overflow. */
extern size_t phic_b64_encoded_len(size_t n);

/* Upper bound of bytes a text of n characters decodes to. */
extern size_t phic_b64_decoded_max(size_t n);

/* Encode n bytes of in into out (phic_b64_encoded_len(n) characters). */
extern void phic_b64_encode(const uint8_t *in, size_t n, char *out);

/*
 * Decode n characters of in into out (room for phic_b64_decoded_max(n)),
 * setting *outlen.  PHIC_ERR_FORMAT on anything non-canonical.
 */
extern phic_status phic_b64_decode(const char *in, size_t n, uint8_t *out,
								   size_t *outlen);

/*
 * Strict unpadded base64url (RFC 4648 §5, as JWS uses it) into out[cap]
 * (out NULL: only check); returns 0 on anything non-canonical (padding, the
 * standard alphabet's '+' or '/', non-zero unused bits) or too long.
 */
extern int	phic_b64url_decode(const char *in, size_t n, uint8_t *out, size_t cap,
							   size_t *outlen);

#endif
