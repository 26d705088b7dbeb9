/*
 * tokenfmt.c — token shapes (tokenfmt.h).  Digits are drawn from seed
 * bytes by rejection sampling (a byte below 250 gives byte % 10); should the
 * seed run out, which with 4 seed bytes per digit has probability below
 * 10^-9 per digit, the digit is 0 (still a valid, if less random, token).
 */
#include "tokenfmt.h"

#include <string.h>

int
phic_token_format_parse(const char *name, size_t len)
{
	static const char *const names[] = {"opaque", "digits", "ssn"};

	for (int i = 0; i < 3; i++)
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
			return i;
	return -1;
}

size_t
phic_token_seed_len(phic_token_format f, size_t len)
{
	switch (f)
	{
		case PHIC_TOKEN_OPAQUE:
			return 16;
		case PHIC_TOKEN_SSN:
			return 16;
		case PHIC_TOKEN_DIGITS:
			return 4 * len + 4;
	}
	return 16;
}

typedef struct digit_source
{
	const uint8_t *p;
	size_t		left;
} digit_source;

/* A digit in [0, n) (n <= 10 or 100) from the seed, nearly unbiased. */
static int
draw(digit_source *s, int n)
{
	int			limit = 250 - 250 % n;

	while (s->left > 0)
	{
		int			b = *s->p++;

		s->left--;
		if (b < limit)
			return b % n;
	}
	return 0;
}

int
phic_luhn_valid(const char *d, size_t len)
{
	int			sum = 0;

	for (size_t i = 0; i < len; i++)
	{
		int			v = d[len - 1 - i] - '0';

		if (i % 2 == 1)
			v = v * 2 > 9 ? v * 2 - 9 : v * 2;
		sum += v;
	}
	return sum % 10 == 0;
}

static phic_status
make_digits(const char *value, size_t len, digit_source *s, char *out)
{
	if (len < 5)
		return PHIC_ERR_FORMAT;
	for (size_t i = 0; i < len; i++)
		if (value[i] < '0' || value[i] > '9')
			return PHIC_ERR_FORMAT;
	for (size_t i = 0; i < len - 4; i++)
		out[i] = (char) ('0' + draw(s, 10));
	memcpy(out + len - 4, value + len - 4, 4);
	/* changing one digit always changes the Luhn sum */
	if (len >= 12 && phic_luhn_valid(out, len))
		out[0] = (char) ('0' + (out[0] - '0' + 1) % 10);
	return PHIC_OK;
}

static phic_status
make_ssn(const char *value, size_t len, digit_source *s, char *out)
{
	char		d[9];
	size_t		n = 0;
	int			area = 900 + draw(s, 100);
	int			group = 1 + draw(s, 99);

	if (len == 11 && (value[3] != '-' || value[6] != '-'))
		return PHIC_ERR_FORMAT;
	if (len != 9 && len != 11)
		return PHIC_ERR_FORMAT;
	for (size_t i = 0; i < len; i++)
	{
		if (len == 11 && (i == 3 || i == 6))
			continue;
		if (value[i] < '0' || value[i] > '9')
			return PHIC_ERR_FORMAT;
		d[n++] = value[i];
	}
	out[0] = (char) ('0' + area / 100);
	out[1] = (char) ('0' + area / 10 % 10);
	out[2] = (char) ('0' + area % 10);
	out[3] = '-';
	out[4] = (char) ('0' + group / 10);
	out[5] = (char) ('0' + group % 10);
	out[6] = '-';
	memcpy(out + 7, d + 5, 4);
	return PHIC_OK;
}

phic_status
phic_token_make(phic_token_format f, const char *value, size_t len,
				const uint8_t *seed, char *out, size_t *outlen)
{
	static const char hex[] = "0123456789abcdef";
	digit_source s = {seed, phic_token_seed_len(f, len)};
	phic_status st = PHIC_OK;

	switch (f)
	{
		case PHIC_TOKEN_OPAQUE:
			memcpy(out, "tok_", 4);
			for (int i = 0; i < 16; i++)
			{
				out[4 + 2 * i] = hex[seed[i] >> 4];
				out[5 + 2 * i] = hex[seed[i] & 15];
			}
			*outlen = PHIC_TOKEN_OPAQUE_LEN;
			break;
		case PHIC_TOKEN_DIGITS:
			st = make_digits(value, len, &s, out);
			*outlen = len;
			break;
		case PHIC_TOKEN_SSN:
			st = make_ssn(value, len, &s, out);
			*outlen = PHIC_TOKEN_SSN_LEN;
			break;
	}
	if (st == PHIC_OK)
		out[*outlen] = '\0';
	return st;
}
