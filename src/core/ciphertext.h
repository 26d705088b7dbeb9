/*
 * ciphertext.h — the raw phi_ciphertext format, version 1 (SPEC §3).
 *
 *   0  1  format version 0x01
 *   1  1  algorithm 0x01 = AES-256-GCM
 *   2  1  flags: bit 0 caller gave aad, bit 1 plaintext was bytea
 *   3  1  reserved, 0
 *   4  4  key id, big-endian
 *   8 12  nonce
 *  20  n  ciphertext
 * 20+n 16 tag
 *
 * GCM associated data = bytes 0..7 followed by the caller's aad (if given).
 */
#ifndef PHIC_CIPHERTEXT_H
#define PHIC_CIPHERTEXT_H

#include <stddef.h>
#include <stdint.h>
#include "aead.h"
#include "status.h"

#define PHIC_CT_VERSION 0x01
#define PHIC_CT_ALG_AES256GCM 0x01
#define PHIC_CT_FLAG_AAD 0x01
#define PHIC_CT_FLAG_BYTEA 0x02
#define PHIC_CT_FLAGS_KNOWN (PHIC_CT_FLAG_AAD | PHIC_CT_FLAG_BYTEA)
#define PHIC_CT_HEADER_LEN 8
#define PHIC_CT_NONCE_OFF 8
#define PHIC_CT_BODY_OFF 20
#define PHIC_CT_OVERHEAD 36		/* header + nonce + tag */

/* A parsed view into a raw ciphertext; pointers alias the input buffer. */
typedef struct phic_ct
{
	uint8_t		flags;
	uint32_t	key_id;
	const uint8_t *header;		/* PHIC_CT_HEADER_LEN bytes */
	const uint8_t *nonce;		/* PHIC_GCM_NONCE_LEN bytes */
	const uint8_t *body;
	size_t		body_len;		/* = plaintext length */
	const uint8_t *tag;			/* PHIC_GCM_TAG_LEN bytes */
} phic_ct;

/*
 * Check that buf[0..len) is a well-formed version-1 value (length, version,
 * algorithm, no unknown flags, reserved byte 0) and fill *out.  Does not
 * authenticate: that takes the key (phic_ct_open).
 */
extern phic_status phic_ct_parse(const uint8_t *buf, size_t len, phic_ct *out);

/* Size of the raw value for a plaintext of pt_len bytes; 0 on overflow. */
extern size_t phic_ct_size(size_t pt_len);

/*
 * Encrypt pt under g into out (phic_ct_size(pt.len) bytes) with the given key
 * id and a fresh nonce.  aad.ptr == NULL means "no aad": flag bit 0 clear;
 * a non-NULL aad of length 0 sets the flag.  bytea_flag sets bit 1.
 */
extern phic_status phic_ct_seal(phic_gcm *g, uint32_t key_id, int bytea_flag,
								phic_bytes aad, phic_bytes pt, uint8_t *out);

/*
 * Authenticate and decrypt a parsed value into pt (ct->body_len bytes).
 * aad.ptr == NULL means the caller gave none; a mismatch with flag bit 0
 * is reported as PHIC_ERR_AUTH like any other wrong aad.
 */
extern phic_status phic_ct_open(phic_gcm *g, const phic_ct *ct,
								phic_bytes aad, uint8_t *pt);

#endif
