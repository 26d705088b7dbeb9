/*
 * fuzz_mask — phic_mask (src/core/mask.c) for every kind.
 *
 * Input: byte 0 = b; kind = b % 6 (ssn, phone, email, name, dob, zip),
 * current year = years[(b / 6) % 16]; the rest is the value.
 *
 * Properties:
 *  - the output fits in phic_mask_max(len) bytes: the buffer is malloc'd of
 *    exactly that size (ASan sees overruns) and the returned length is
 *    checked against it (the SQL glue writes a terminator at out[olen]);
 *  - only the empty value may give an empty output (mask.h);
 *  - the fixed shapes: ssn always 11 bytes, zip always 5, dob 4 or 6;
 *  - valid UTF-8 in gives valid UTF-8 out (mask.h: input and output are
 *    UTF-8; the glue converts the output back to the server encoding);
 *  - the same call twice gives the same output (pure function).
 */
#include "fuzz_common.h"
#include "mask.h"

#include <limits.h>
#include <string.h>

static const int years[16] = {
	0, 2025, 1999, 2070, 1, -1, 89, 90,
	9999, 10089, 294276, -4713, INT_MAX, INT_MIN, 1900, 2100
};

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	phic_mask_kind kind;
	int			year;
	const char *in;
	size_t		len,
				max,
				olen,
				olen2;
	char	   *out,
			   *out2;

	if (size == 0)
		return 0;
	kind = (phic_mask_kind) (data[0] % 6);
	year = years[(data[0] / 6) % 16];
	in = (const char *) data + 1;
	len = size - 1;
	max = phic_mask_max(len);
	FUZZ_CHECK(max >= len);

	out = fuzz_malloc(max);
	olen = phic_mask(kind, in, len, year, out);
	FUZZ_CHECK(olen <= max);
	FUZZ_CHECK(len == 0 || olen > 0);
	switch (kind)
	{
		case PHIC_MASK_SSN:
			FUZZ_CHECK(olen == 11);
			break;
		case PHIC_MASK_ZIP:
			FUZZ_CHECK(olen == 5);
			break;
		case PHIC_MASK_DOB:
			FUZZ_CHECK(olen == 4 || olen == 6);
			break;
		default:
			break;
	}
	if (fuzz_utf8_valid((const uint8_t *) in, len))
		FUZZ_CHECK(fuzz_utf8_valid((const uint8_t *) out, olen));

	out2 = fuzz_malloc(max);
	olen2 = phic_mask(kind, in, len, year, out2);
	FUZZ_CHECK(olen2 == olen && (olen == 0 || memcmp(out, out2, olen) == 0));
	free(out2);
	free(out);
	return 0;
}
