/*
 * test_tokenfmt.c — unit tests of src/core/tokenfmt (token shapes: opaque,
 * digits, ssn): format names, the opaque text, Luhn, digits tokens of the
 * same length that keep the last 4 and are never Luhn-valid, determinism
 * per seed, and ssn tokens 9dd-dd-<last 4> reaching every area and group.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "tokenfmt.h"

static int
cmp_token(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* Make a token into out (pre-filled with '#'); check NUL and *outlen on OK. */
static phic_status
token(phic_token_format f, const char *value, const uint8_t *seed, char *out, size_t *outlen)
{
	phic_status st;

	memset(out, '#', 64);
	*outlen = 999;
	st = phic_token_make(f, value, strlen(value), seed, out, outlen);
	if (st == PHIC_OK && (*outlen > 40 || out[*outlen] != '\0' || strlen(out) != *outlen))
	{
		printf("    bad outlen %zu or terminator\n", *outlen);
		return PHIC_ERR_CRYPTO;	/* reported by the caller as a wrong status */
	}
	return st;
}

void
test_tokenfmt(void)
{
	static const char *const fmts[] = {"opaque", "digits", "ssn"};
	static const char *const luhn_ok[] = {
		"4111111111111111", "4012888888881881", "5555555555554444", "378282246310005",
		"79927398713", "0", "00",
	};
	static const char *const luhn_bad[] = {
		"4111111111111112", "4111111111111121", "79927398710", "1234567812345678", "1",
	};
	static const char *const ssn_bad[] = {
		"123-456789", "12345678", "12a456789", "123 45 6789", "1234567890",
		"123-45-678a", "123-4-56789", "12-345-6789", "123456789 ", "",
	};
	static const char *const digits_bad[] = {"1234", "", "12a45", "12 345", "-12345", "1234567890x"};
	static char many[1000][24];
	uint8_t		seed[128];
	char		out[64],
				out2[64],
				name[96];
	size_t		outlen,
				outlen2;
	int			bad;

	for (int f = 0; f < 3; f++)
		check(phic_token_format_parse(fmts[f], strlen(fmts[f])) == f, "token format parse",
			  "\"%s\" not format %d", fmts[f], f);
	check(phic_token_format_parse("ssnx", 3) == PHIC_TOKEN_SSN &&
		  phic_token_format_parse("Opaque", 6) == -1 &&
		  phic_token_format_parse("digit", 5) == -1 &&
		  phic_token_format_parse("card", 4) == -1 &&
		  phic_token_format_parse("", 0) == -1, "token format parse: len, unknown, case",
		  "wrong result");
	check(phic_token_seed_len(PHIC_TOKEN_OPAQUE, 100) >= 16 &&
		  phic_token_seed_len(PHIC_TOKEN_SSN, 11) >= 16 &&
		  phic_token_seed_len(PHIC_TOKEN_DIGITS, 24) <= sizeof(seed),
		  "token seed lengths", "unexpected seed length");

	/* opaque: "tok_" + hex of the 16 seed bytes, value ignored */
	unhex("deadbeef00017f80ff1009a55ac33c0f", seed);
	if (check_status("token opaque", token(PHIC_TOKEN_OPAQUE, "123-45-6789", seed, out,
										   &outlen), PHIC_OK))
		check(outlen == PHIC_TOKEN_OPAQUE_LEN &&
			  strcmp(out, "tok_deadbeef00017f80ff1009a55ac33c0f") == 0,
			  "token opaque text", "got \"%s\" (len %zu)", out, outlen);
	check_status("token opaque of an empty value", token(PHIC_TOKEN_OPAQUE, "", seed, out,
														 &outlen), PHIC_OK);

	/* Luhn on known numbers */
	for (size_t i = 0; i < sizeof(luhn_ok) / sizeof(luhn_ok[0]); i++)
		check(phic_luhn_valid(luhn_ok[i], strlen(luhn_ok[i])), "token luhn valid",
			  "\"%s\" rejected", luhn_ok[i]);
	for (size_t i = 0; i < sizeof(luhn_bad) / sizeof(luhn_bad[0]); i++)
		check(!phic_luhn_valid(luhn_bad[i], strlen(luhn_bad[i])), "token luhn invalid",
			  "\"%s\" accepted", luhn_bad[i]);

	/*
	 * digits, 10000 seeds: half for 4111111111111111, half for random
	 * digit strings of 5..24 digits.  Same length, all digits, last 4 kept,
	 * never Luhn-valid from 12 digits on.
	 */
	bad = -1;
	for (int t = 0; t < 10000 && bad < 0; t++)
	{
		char		value[32] = "4111111111111111";
		size_t		len = 16;
		int			ok;

		if (t % 2)
		{
			len = 5 + prng() % 20;
			for (size_t i = 0; i < len; i++)
				value[i] = (char) ('0' + prng() % 10);
			value[len] = '\0';
		}
		prng_fill(seed, phic_token_seed_len(PHIC_TOKEN_DIGITS, len));
		ok = token(PHIC_TOKEN_DIGITS, value, seed, out, &outlen) == PHIC_OK &&
			outlen == len && strspn(out, "0123456789") == len &&
			memcmp(out + len - 4, value + len - 4, 4) == 0 &&
			(len < 12 || !phic_luhn_valid(out, len));
		if (!ok)
		{
			bad = t;
			printf("    value %s -> token %s\n", value, out);
		}
	}
	check(bad < 0, "token digits: shape, last 4, never Luhn-valid (10000 seeds)",
		  "seed %d", bad);
	check_status("token digits of 5 digits", token(PHIC_TOKEN_DIGITS, "12345", seed, out,
												   &outlen), PHIC_OK);
	check(outlen == 5 && out[0] >= '0' && out[0] <= '9' && strcmp(out + 1, "2345") == 0,
		  "token digits of 5 digits: text", "got \"%s\"", out);
	for (size_t i = 0; i < sizeof(digits_bad) / sizeof(digits_bad[0]); i++)
	{
		snprintf(name, sizeof(name), "token digits rejects \"%s\"", digits_bad[i]);
		check_status(name, token(PHIC_TOKEN_DIGITS, digits_bad[i], seed, out, &outlen),
					 PHIC_ERR_FORMAT);
	}

	/* determinism: same seed, same token; 1000 seeds, at least 990 tokens */
	bad = 0;
	for (int t = 0; t < 1000; t++)
	{
		prng_fill(seed, phic_token_seed_len(PHIC_TOKEN_DIGITS, 16));
		token(PHIC_TOKEN_DIGITS, "4111111111111111", seed, out, &outlen);
		token(PHIC_TOKEN_DIGITS, "4111111111111111", seed, out2, &outlen2);
		bad += outlen2 != outlen || strcmp(out, out2) != 0;
		snprintf(many[t], sizeof(many[t]), "%.23s", out);
	}
	check(bad == 0, "token digits deterministic per seed", "%d tokens differ", bad);
	qsort(many, 1000, sizeof(many[0]), cmp_token);
	bad = 1;					/* distinct count */
	for (int t = 1; t < 1000; t++)
		bad += strcmp(many[t - 1], many[t]) != 0;
	check(bad >= 990, "token digits: 1000 seeds give >= 990 tokens", "only %d distinct", bad);

	/* ssn: 9dd-dd-<last 4>, area 900-999 and group 01-99 all reached */
	{
		int			areas[100] = {0},
					groups[100] = {0},
					n_area = 0,
					n_group = 0;

		bad = -1;
		for (int t = 0; t < 10000 && bad < 0; t++)
		{
			int			ok;

			prng_fill(seed, phic_token_seed_len(PHIC_TOKEN_SSN, 11));
			ok = token(PHIC_TOKEN_SSN, t % 2 ? "123-45-6789" : "123456789", seed, out,
					   &outlen) == PHIC_OK && outlen == PHIC_TOKEN_SSN_LEN &&
				out[0] == '9' && out[3] == '-' && out[6] == '-' &&
				strspn(out + 1, "0123456789") == 2 && strspn(out + 4, "0123456789") == 2 &&
				strcmp(out + 7, "6789") == 0 && !(out[4] == '0' && out[5] == '0');
			if (!ok)
			{
				bad = t;
				printf("    token \"%s\"\n", out);
				break;
			}
			areas[(out[1] - '0') * 10 + out[2] - '0'] = 1;
			groups[(out[4] - '0') * 10 + out[5] - '0'] = 1;
		}
		for (int i = 0; i < 100; i++)
			n_area += areas[i], n_group += groups[i];
		check(bad < 0, "token ssn: 9dd-dd-6789, group not 00 (10000 seeds)", "seed %d", bad);
		check(n_area == 100 && n_group == 99 && !groups[0], "token ssn: every area 900-999, "
			  "group 01-99 occurs", "%d areas, %d groups", n_area, n_group);
	}
	for (size_t i = 0; i < sizeof(ssn_bad) / sizeof(ssn_bad[0]); i++)
	{
		snprintf(name, sizeof(name), "token ssn rejects \"%s\"", ssn_bad[i]);
		check_status(name, token(PHIC_TOKEN_SSN, ssn_bad[i], seed, out, &outlen),
					 PHIC_ERR_FORMAT);
	}
}
