/*
 * fuzz_tokenfmt — phic_token_make (src/core/tokenfmt.c).
 *
 * Input: byte 0 = b; format = b % 3 (opaque, digits, ssn); seed kind =
 * (b / 3) % 2: 0 = a fixed pseudo-random array, 1 = all 0xff (every byte is
 * rejected by the digit sampler, so the "seed runs out" path is taken); the
 * rest is the value.  The seed is malloc'd of exactly phic_token_seed_len()
 * bytes and the output of exactly max(len, 36) + 1 bytes, so ASan sees any
 * overrun of either.
 *
 * Properties (tokenfmt.h):
 *  - opaque never fails: "tok_" + 32 lower-case hex digits;
 *  - digits fails exactly when the value is shorter than 5 or has a
 *    non-digit; otherwise the token has the value's length, only digits,
 *    the value's last 4, and fails the Luhn check from 12 digits on;
 *  - ssn fails exactly unless the value is ddddddddd or ddd-dd-dddd;
 *    otherwise the token is 9dd-dd-dddd, group not 00, with the value's last 4;
 *  - on success the output is NUL-terminated at *outlen.
 */
#include "fuzz_common.h"
#include "tokenfmt.h"

#include <string.h>

static int
digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
all_digits(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!digit(s[i]))
			return 0;
	return 1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	phic_token_format f;
	const char *value;
	size_t		len,
				seedlen,
				outmax,
				outlen = 0;
	uint8_t    *seed;
	char	   *out;
	phic_status st;
	int			fits = 0;

	if (size == 0)
		return 0;
	f = (phic_token_format) (data[0] % 3);
	value = (const char *) data + 1;
	len = size - 1;

	seedlen = phic_token_seed_len(f, len);
	seed = fuzz_malloc(seedlen);
	if ((data[0] / 3) % 2 == 0)
	{
		uint32_t	x = 2463534242u;	/* xorshift32, fixed start */

		for (size_t i = 0; i < seedlen; i++)
		{
			x ^= x << 13;
			x ^= x >> 17;
			x ^= x << 5;
			seed[i] = (uint8_t) x;
		}
	}
	else if (seedlen > 0)
		memset(seed, 0xff, seedlen);

	outmax = (len > PHIC_TOKEN_OPAQUE_LEN ? len : PHIC_TOKEN_OPAQUE_LEN) + 1;
	out = fuzz_malloc(outmax);
	st = phic_token_make(f, value, len, seed, out, &outlen);

	switch (f)
	{
		case PHIC_TOKEN_OPAQUE:
			fits = 1;
			break;
		case PHIC_TOKEN_DIGITS:
			fits = len >= 5 && all_digits(value, len);
			break;
		case PHIC_TOKEN_SSN:
			fits = (len == 9 && all_digits(value, 9)) ||
				(len == 11 && all_digits(value, 3) && value[3] == '-' &&
				 all_digits(value + 4, 2) && value[6] == '-' &&
				 all_digits(value + 7, 4));
			break;
	}
	FUZZ_CHECK(st == (fits ? PHIC_OK : PHIC_ERR_FORMAT));
	if (st == PHIC_OK)
	{
		FUZZ_CHECK(outlen < outmax);
		FUZZ_CHECK(out[outlen] == '\0');
		switch (f)
		{
			case PHIC_TOKEN_OPAQUE:
				FUZZ_CHECK(outlen == PHIC_TOKEN_OPAQUE_LEN);
				FUZZ_CHECK(memcmp(out, "tok_", 4) == 0);
				for (size_t i = 4; i < outlen; i++)
					FUZZ_CHECK(digit(out[i]) || (out[i] >= 'a' && out[i] <= 'f'));
				break;
			case PHIC_TOKEN_DIGITS:
				FUZZ_CHECK(outlen == len);
				FUZZ_CHECK(all_digits(out, outlen));
				FUZZ_CHECK(memcmp(out + len - 4, value + len - 4, 4) == 0);
				if (len >= 12)
					FUZZ_CHECK(!phic_luhn_valid(out, outlen));
				break;
			case PHIC_TOKEN_SSN:
				FUZZ_CHECK(outlen == PHIC_TOKEN_SSN_LEN);
				FUZZ_CHECK(out[0] == '9' && digit(out[1]) && digit(out[2]));
				FUZZ_CHECK(out[3] == '-' && out[6] == '-');
				FUZZ_CHECK(digit(out[4]) && digit(out[5]));
				FUZZ_CHECK(!(out[4] == '0' && out[5] == '0'));
				FUZZ_CHECK(all_digits(out + 7, 4));
				FUZZ_CHECK(memcmp(out + 7, value + len - 4, 4) == 0);
				break;
		}
	}
	free(out);
	free(seed);
	return 0;
}
