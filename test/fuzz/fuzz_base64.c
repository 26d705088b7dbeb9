/*
 * fuzz_base64 — phic_b64_decode (src/core/base64.c) on arbitrary bytes.
 *
 * Properties (base64.h: the decoder accepts exactly the encoder's output):
 *  - decoding never writes past phic_b64_decoded_max(n) bytes (the output
 *    buffer is malloc'd of exactly that size, so ASan sees any overrun);
 *  - if decoding succeeds, re-encoding the result gives back exactly the
 *    input (canonical round trip), and the lengths agree;
 *  - conversely, encoding the input as bytes and decoding that text
 *    succeeds and gives back the input.
 */
#include "fuzz_common.h"
#include "base64.h"

#include <string.h>

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *) data;
	size_t		max = phic_b64_decoded_max(size);
	uint8_t    *raw = fuzz_malloc(max);
	size_t		rawlen = (size_t) -1;
	phic_status st = phic_b64_decode(text, size, raw, &rawlen);

	FUZZ_CHECK(st == PHIC_OK || st == PHIC_ERR_FORMAT);
	if (st == PHIC_OK)
	{
		size_t		enclen = phic_b64_encoded_len(rawlen);
		char	   *again;

		FUZZ_CHECK(rawlen <= max);
		FUZZ_CHECK(enclen == size);
		FUZZ_CHECK(size % 4 == 0);
		again = fuzz_malloc(enclen);
		phic_b64_encode(raw, rawlen, again);
		FUZZ_CHECK(memcmp(again, text, size) == 0);
		free(again);
	}
	else
		FUZZ_CHECK(size != 0);	/* "" is the canonical text of no bytes */
	free(raw);

	/* the other direction: any byte string encodes to text that decodes back */
	{
		size_t		enclen = phic_b64_encoded_len(size);
		char	   *enc;
		uint8_t    *dec;
		size_t		declen = (size_t) -1;

		FUZZ_CHECK(enclen != 0 || size == 0);
		FUZZ_CHECK(enclen % 4 == 0);
		enc = fuzz_malloc(enclen);
		phic_b64_encode(data, size, enc);
		dec = fuzz_malloc(phic_b64_decoded_max(enclen));
		FUZZ_CHECK(phic_b64_decode(enc, enclen, dec, &declen) == PHIC_OK);
		FUZZ_CHECK(declen == size);
		FUZZ_CHECK(size == 0 || memcmp(dec, data, size) == 0);
		free(enc);
		free(dec);
	}
	return 0;
}
