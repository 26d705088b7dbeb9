/*
 * fuzz_ciphertext — phic_ct_parse and phic_ct_open (src/core/ciphertext.c)
 * on arbitrary bytes, as the binary receive function and the bytea cast do.
 *
 * Input layout: byte 0 = c, then L = (c & 0x3f) bytes of aad (fewer if the
 * input is shorter), then the raw value handed to phic_ct_parse.
 *
 * Properties:
 *  - phic_ct_parse accepts exactly what ciphertext.h describes (length >= 36,
 *    version 1, algorithm 1, no unknown flag, reserved byte 0);
 *  - a parsed view lies inside the buffer: body_len + 36 == len, header,
 *    nonce, body and tag at their offsets, tag ending at the buffer's end,
 *    flags and key id read from the header;
 *  - phic_ct_open under a fixed key, once without aad and once with the aad
 *    slice, into a buffer of exactly body_len bytes (ASan sees overruns),
 *    returns PHIC_OK or PHIC_ERR_AUTH and nothing else (random data gives
 *    PHIC_ERR_AUTH; the seeds are sealed under the fixed key and give
 *    PHIC_OK); an aad given or not given against flag bit 0 is
 *    PHIC_ERR_AUTH; after PHIC_ERR_AUTH the output holds no plaintext
 *    (it was zeroed before the call and must be zero afterwards).
 */
#include "fuzz_common.h"
#include "ciphertext.h"

#include <string.h>

static phic_gcm *gcm;

static int
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

static void
open_once(const phic_ct *ct, phic_bytes aad)
{
	uint8_t    *pt = fuzz_malloc(ct->body_len);
	phic_status st;
	int			flag = (ct->flags & PHIC_CT_FLAG_AAD) != 0;

	if (ct->body_len > 0)
		memset(pt, 0, ct->body_len);
	st = phic_ct_open(gcm, ct, aad, pt);
	FUZZ_CHECK(st == PHIC_OK || st == PHIC_ERR_AUTH);
	if (flag != (aad.ptr != NULL))
		FUZZ_CHECK(st == PHIC_ERR_AUTH);
	if (st == PHIC_ERR_AUTH)
		FUZZ_CHECK(all_zero(pt, ct->body_len));
	free(pt);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t		aadlen;
	const uint8_t *aad;
	const uint8_t *buf;
	size_t		len;
	phic_ct		ct;
	phic_status st;
	int			expect_ok;

	if (size == 0)
		return 0;
	if (gcm == NULL && (gcm = phic_gcm_new(fuzz_key)) == NULL)
		abort();

	aadlen = data[0] & 0x3f;
	if (aadlen > size - 1)
		aadlen = size - 1;
	aad = data + 1;
	buf = aad + aadlen;
	len = size - 1 - aadlen;

	memset(&ct, 0xa5, sizeof(ct));
	st = phic_ct_parse(buf, len, &ct);
	expect_ok = len >= PHIC_CT_OVERHEAD && buf[0] == PHIC_CT_VERSION &&
		buf[1] == PHIC_CT_ALG_AES256GCM &&
		(buf[2] & ~PHIC_CT_FLAGS_KNOWN) == 0 && buf[3] == 0;
	FUZZ_CHECK(st == (expect_ok ? PHIC_OK : PHIC_ERR_FORMAT));
	if (st != PHIC_OK)
		return 0;

	FUZZ_CHECK(ct.body_len + PHIC_CT_OVERHEAD == len);
	FUZZ_CHECK(ct.header == buf);
	FUZZ_CHECK(ct.nonce == buf + PHIC_CT_NONCE_OFF);
	FUZZ_CHECK(ct.body == buf + PHIC_CT_BODY_OFF);
	FUZZ_CHECK(ct.tag == ct.body + ct.body_len);
	FUZZ_CHECK(ct.tag + PHIC_GCM_TAG_LEN == buf + len);
	FUZZ_CHECK(ct.flags == buf[2]);
	FUZZ_CHECK(ct.key_id == (((uint32_t) buf[4] << 24) | ((uint32_t) buf[5] << 16) |
							 ((uint32_t) buf[6] << 8) | buf[7]));

	open_once(&ct, (phic_bytes) {NULL, 0});
	open_once(&ct, (phic_bytes) {aad, aadlen});
	return 0;
}
