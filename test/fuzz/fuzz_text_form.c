/*
 * fuzz_text_form — the text input of phi_ciphertext as
 * phi_guard_ciphertext_in (src/ciphertext_type.c) does it, without
 * PostgreSQL: the input is a C string (so it ends at the first NUL byte),
 * must start with "phi1:", the rest is decoded with phic_b64_decode into a
 * buffer of phic_b64_decoded_max(len) + 1 bytes, then checked with
 * phic_ct_parse.
 *
 * Properties: no memory error on the way; a value accepted by all three
 * steps has a well-formed view inside the decoded buffer; and the output
 * function (prefix + phic_b64_encode of the raw bytes) gives back exactly
 * the input text, so text in -> text out is the identity.
 */
#include "fuzz_common.h"
#include "base64.h"
#include "ciphertext.h"

#include <string.h>

#define TEXT_PREFIX "phi1:"
#define TEXT_PREFIX_LEN 5

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *s;
	size_t		len;
	uint8_t    *raw;
	size_t		rawlen;
	phic_ct		ct;
	char	   *out;
	size_t		enc;

	/* PG_GETARG_CSTRING: a NUL-terminated copy, read up to its first NUL */
	s = fuzz_malloc(size + 1);
	memcpy(s, data, size);
	s[size] = '\0';
	len = strlen(s);

	if (len < TEXT_PREFIX_LEN || memcmp(s, TEXT_PREFIX, TEXT_PREFIX_LEN) != 0)
		goto done;
	raw = fuzz_malloc(phic_b64_decoded_max(len - TEXT_PREFIX_LEN) + 1);
	if (phic_b64_decode(s + TEXT_PREFIX_LEN, len - TEXT_PREFIX_LEN, raw, &rawlen) != PHIC_OK)
		goto done_raw;
	FUZZ_CHECK(rawlen <= phic_b64_decoded_max(len - TEXT_PREFIX_LEN));
	if (phic_ct_parse(raw, rawlen, &ct) != PHIC_OK)
		goto done_raw;

	FUZZ_CHECK(rawlen >= PHIC_CT_OVERHEAD);
	FUZZ_CHECK(ct.body_len + PHIC_CT_OVERHEAD == rawlen);
	FUZZ_CHECK(ct.header == raw && ct.nonce == raw + PHIC_CT_NONCE_OFF &&
			   ct.body == raw + PHIC_CT_BODY_OFF);
	FUZZ_CHECK(ct.tag + PHIC_GCM_TAG_LEN == raw + rawlen);

	/* phi_guard_ciphertext_out */
	enc = phic_b64_encoded_len(rawlen);
	FUZZ_CHECK(enc != 0);
	out = fuzz_malloc(TEXT_PREFIX_LEN + enc + 1);
	memcpy(out, TEXT_PREFIX, TEXT_PREFIX_LEN);
	phic_b64_encode(raw, rawlen, out + TEXT_PREFIX_LEN);
	out[TEXT_PREFIX_LEN + enc] = '\0';
	FUZZ_CHECK(strcmp(out, s) == 0);
	free(out);

done_raw:
	free(raw);
done:
	free(s);
	return 0;
}
