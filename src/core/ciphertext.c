/*
 * ciphertext.c — build, parse and (de)crypt version-1 values (ciphertext.h).
 */
#include "ciphertext.h"
#include "nonce.h"

#include <string.h>

size_t
phic_ct_size(size_t pt_len)
{
	if (pt_len > ((size_t) -1) - PHIC_CT_OVERHEAD)
		return 0;
	return pt_len + PHIC_CT_OVERHEAD;
}

phic_status
phic_ct_parse(const uint8_t *buf, size_t len, phic_ct *out)
{
	if (buf == NULL || len < PHIC_CT_OVERHEAD ||
		buf[0] != PHIC_CT_VERSION ||
		buf[1] != PHIC_CT_ALG_AES256GCM ||
		(buf[2] & ~PHIC_CT_FLAGS_KNOWN) != 0 ||
		buf[3] != 0)
		return PHIC_ERR_FORMAT;
	out->flags = buf[2];
	out->key_id = ((uint32_t) buf[4] << 24) | ((uint32_t) buf[5] << 16) |
		((uint32_t) buf[6] << 8) | (uint32_t) buf[7];
	out->header = buf;
	out->nonce = buf + PHIC_CT_NONCE_OFF;
	out->body = buf + PHIC_CT_BODY_OFF;
	out->body_len = len - PHIC_CT_OVERHEAD;
	out->tag = buf + PHIC_CT_BODY_OFF + out->body_len;
	return PHIC_OK;
}

phic_status
phic_ct_seal(phic_gcm *g, uint32_t key_id, int bytea_flag,
			 phic_bytes aad, phic_bytes pt, uint8_t *out)
{
	phic_status st;
	phic_bytes	header = {out, PHIC_CT_HEADER_LEN};

	out[0] = PHIC_CT_VERSION;
	out[1] = PHIC_CT_ALG_AES256GCM;
	out[2] = (uint8_t) ((aad.ptr ? PHIC_CT_FLAG_AAD : 0) |
						(bytea_flag ? PHIC_CT_FLAG_BYTEA : 0));
	out[3] = 0;
	out[4] = (uint8_t) (key_id >> 24);
	out[5] = (uint8_t) (key_id >> 16);
	out[6] = (uint8_t) (key_id >> 8);
	out[7] = (uint8_t) key_id;
	st = phic_nonce_next(out + PHIC_CT_NONCE_OFF);
	if (st != PHIC_OK)
		return st;
	return phic_gcm_seal(g, out + PHIC_CT_NONCE_OFF, header, aad, pt,
						 out + PHIC_CT_BODY_OFF,
						 out + PHIC_CT_BODY_OFF + pt.len);
}

phic_status
phic_ct_open(phic_gcm *g, const phic_ct *ct, phic_bytes aad, uint8_t *pt)
{
	phic_bytes	header = {ct->header, PHIC_CT_HEADER_LEN};
	phic_bytes	body = {ct->body, ct->body_len};

	if (((ct->flags & PHIC_CT_FLAG_AAD) != 0) != (aad.ptr != NULL))
		return PHIC_ERR_AUTH;
	return phic_gcm_open(g, ct->nonce, header, aad, body, ct->tag, pt);
}
