/*
 * test_mask.c — unit tests of src/core/mask (masking of ssn, phone, email,
 * name, dob and zip): fixed cases per kind, the 90-year rule of dob, kind
 * names, and 5000 pseudo-random inputs per kind that must fit
 * phic_mask_max and reveal no more digits than allowed.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "mask.h"

static const char *const mask_kinds[] = {"ssn", "phone", "email", "name", "dob", "zip"};

/* Mask in (year as given) and expect exactly want, within phic_mask_max. */
static void
check_mask(phic_mask_kind kind, const char *in, int year, const char *want)
{
	char		out[256],
				name[128];
	size_t		len = strlen(in),
				n;

	memset(out, '#', sizeof(out));
	n = phic_mask(kind, in, len, year, out);
	snprintf(name, sizeof(name), "mask %s \"%s\" (year %d)", mask_kinds[kind], in, year);
	check(n == strlen(want) && memcmp(out, want, n) == 0 && out[n] == '#' &&
		  n <= phic_mask_max(len), name, "got \"%.*s\" (len %zu), expected \"%s\"",
		  (int) (n < 200 ? n : 200), out, n, want);
}

/* The digits of s[0..n), in order, into d; returns how many. */
static size_t
digits_of(const char *s, size_t n, char *d)
{
	size_t		k = 0;

	for (size_t i = 0; i < n; i++)
		if (s[i] >= '0' && s[i] <= '9')
			d[k++] = s[i];
	return k;
}

/* A pseudo-random input: digits, separators, printable ASCII, UTF-8. */
static size_t
random_input(char *in)
{
	static const char *const utf8[] = {"\xc3\x9c", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
	static const char seps[] = " -()/.+@'";
	size_t		len = prng() % 2 ? prng() % 65 : prng() % 13,
				i = 0;

	while (i < len)
	{
		unsigned	r = (unsigned) (prng() % 20);
		const char *u;

		if (r < 10)
			in[i++] = (char) ('0' + prng() % 10);
		else if (r < 13)
			in[i++] = seps[prng() % (sizeof(seps) - 1)];
		else if (r < 17)
			in[i++] = (char) (0x20 + prng() % 95);
		else if (r < 18)
			in[i++] = (char) (0x80 + prng() % 128);	/* stray non-ASCII byte */
		else
			for (u = utf8[prng() % 3]; *u && i < len; u++)	/* may be cut short */
				in[i++] = *u;
	}
	return len;
}

void
test_mask(void)
{
	static const struct
	{
		phic_mask_kind kind;
		const char *in,
				   *want;
	}			cases[] = {
		{PHIC_MASK_SSN, "123-45-6789", "***-**-6789"},
		{PHIC_MASK_SSN, "123456789", "***-**-6789"},
		{PHIC_MASK_SSN, "123 45 6789", "***-**-6789"},
		{PHIC_MASK_SSN, " 123-45-6789 ", "***-**-6789"},
		{PHIC_MASK_SSN, "12345678", "***-**-****"},
		{PHIC_MASK_SSN, "1234567890", "***-**-****"},
		{PHIC_MASK_SSN, "123-45-678", "***-**-****"},
		{PHIC_MASK_SSN, "abc-de-fghi", "***-**-****"},
		{PHIC_MASK_SSN, "", "***-**-****"},
		{PHIC_MASK_PHONE, "(555) 123-4567", "(***) ***-4567"},
		{PHIC_MASK_PHONE, "555-123-4567", "***-***-4567"},
		{PHIC_MASK_PHONE, "555.123.4567", "***.***.4567"},
		{PHIC_MASK_PHONE, "+1 555 123 4567", "+* *** *** 4567"},
		{PHIC_MASK_PHONE, "5551234567", "******4567"},
		{PHIC_MASK_PHONE, "---", "****"},	/* no number: never echoed */
		{PHIC_MASK_NAME, "-", "***"},	/* only separators: never echoed */
		{PHIC_MASK_NAME, " - '", "***"},
		{PHIC_MASK_DOB, "1980-02-31", "****"},	/* no such day */
		{PHIC_MASK_DOB, "1980-04-31", "****"},
		{PHIC_MASK_DOB, "2000-02-29", "2000"},	/* leap year */
		{PHIC_MASK_DOB, "1999-02-29", "****"},
		{PHIC_MASK_PHONE, "1234567", "***4567"},
		{PHIC_MASK_PHONE, "123456", "******"},
		{PHIC_MASK_PHONE, "123-45", "***-**"},
		{PHIC_MASK_PHONE, "555-CALL-1234", "***--1234"},
		{PHIC_MASK_PHONE, "Tel: 555 123 4567", " *** *** 4567"},
		{PHIC_MASK_PHONE, "n/a", "****"},
		{PHIC_MASK_PHONE, "", "****"},
		{PHIC_MASK_EMAIL, "jane.doe@example.org", "j***@example.org"},
		{PHIC_MASK_EMAIL, "a@b.c", "a***@b.c"},
		{PHIC_MASK_EMAIL, "\xc3\x9cnal@x.de", "\xc3\x9c***@x.de"},
		{PHIC_MASK_EMAIL, "\xf0\x9f\x98\x80x@y.z", "\xf0\x9f\x98\x80***@y.z"},
		{PHIC_MASK_EMAIL, "\xc3@x.de", "\xc3***@x.de"},	/* cut lead byte: not past '@' */
		{PHIC_MASK_EMAIL, "jane.doe.example.org", "***@***"},
		{PHIC_MASK_EMAIL, "@example.org", "***@***"},
		{PHIC_MASK_EMAIL, "jane@", "***@***"},
		{PHIC_MASK_EMAIL, "jane@doe@example.org", "***@***"},
		{PHIC_MASK_EMAIL, "@", "***@***"},
		{PHIC_MASK_EMAIL, "", "***@***"},
		{PHIC_MASK_NAME, "Ada King-Lovelace", "A*** K***-L***"},
		{PHIC_MASK_NAME, "Ada Augusta King", "A*** A*** K***"},
		{PHIC_MASK_NAME, "O'Brien", "O***'B***"},
		{PHIC_MASK_NAME, "\xc3\x9cnal \xc3\x96zt\xc3\xbcrk", "\xc3\x9c*** \xc3\x96***"},
		{PHIC_MASK_NAME, "  Ada  ", "  A***  "},
		{PHIC_MASK_NAME, "a", "a***"},
		{PHIC_MASK_NAME, "a-b-c-d-e-f-g-h-i-j-k-l-m-n-o-p-q-r-s-t-u-v-w-x-y-z",
		"a***-b***-c***-d***-e***-f***-g***-h***-i***-j***-k***-l***-m***-n***-o***-"
		"p***-q***-r***-s***-t***-u***-v***-w***-x***-y***-z***"},
		{PHIC_MASK_NAME, "", ""},
		{PHIC_MASK_DOB, "1980-07-14", "1980"},
		{PHIC_MASK_DOB, "1980/07/14", "1980"},
		{PHIC_MASK_DOB, "19800714", "1980"},
		{PHIC_MASK_DOB, "1980-12-31", "1980"},
		{PHIC_MASK_DOB, "1980-13-14", "****"},
		{PHIC_MASK_DOB, "1980-00-14", "****"},
		{PHIC_MASK_DOB, "1980-07-00", "****"},
		{PHIC_MASK_DOB, "1980-07-32", "****"},
		{PHIC_MASK_DOB, "19801314", "****"},
		{PHIC_MASK_DOB, "1980-07/14", "****"},
		{PHIC_MASK_DOB, "1980.07.14", "****"},
		{PHIC_MASK_DOB, "1980-7-14", "****"},
		{PHIC_MASK_DOB, "14-07-1980", "****"},
		{PHIC_MASK_DOB, " 19800714", "****"},
		{PHIC_MASK_DOB, "198O-07-14", "****"},
		{PHIC_MASK_DOB, "1980-0a-14", "****"},
		{PHIC_MASK_DOB, "", "****"},
		{PHIC_MASK_DOB, "1936-12-31", "<=1936"},	/* 2026 - 90 */
		{PHIC_MASK_DOB, "1937-01-01", "1937"},
		{PHIC_MASK_DOB, "1900-01-01", "<=1936"},
		{PHIC_MASK_DOB, "2030-01-01", "2030"},
		{PHIC_MASK_ZIP, "02139", "021**"},
		{PHIC_MASK_ZIP, "021394307", "021**"},
		{PHIC_MASK_ZIP, "02139-4307", "021**"},
		{PHIC_MASK_ZIP, "03601", "000**"},
		{PHIC_MASK_ZIP, "89301-1234", "000**"},
		{PHIC_MASK_ZIP, "893011234", "000**"},
		{PHIC_MASK_ZIP, "03701", "037**"},
		{PHIC_MASK_ZIP, "0213", "*****"},
		{PHIC_MASK_ZIP, "021390", "*****"},
		{PHIC_MASK_ZIP, "0213a", "*****"},
		{PHIC_MASK_ZIP, "ABCDE", "*****"},
		{PHIC_MASK_ZIP, "02139 4307", "*****"},
		{PHIC_MASK_ZIP, "0213-94307", "*****"},
		{PHIC_MASK_ZIP, "", "*****"},
	};
	int			bad_len = -1,
				leaks = 0;
	char		in[80],
				out[512],
				din[80],
				dout[512];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check_mask(cases[i].kind, cases[i].in, 2026, cases[i].want);
	/* current_year 0 disables the 90-year rule */
	check_mask(PHIC_MASK_DOB, "1900-01-01", 0, "1900");
	check_mask(PHIC_MASK_DOB, "1936-12-31", 0, "1936");
	check_mask(PHIC_MASK_DOB, "1980-07-14", 0, "1980");

	for (int k = 0; k < 6; k++)
		check(phic_mask_kind_parse(mask_kinds[k], strlen(mask_kinds[k])) == k,
			  "mask kind parse", "\"%s\" not kind %d", mask_kinds[k], k);
	check(phic_mask_kind_parse("zip5", 3) == PHIC_MASK_ZIP, "mask kind parse honours len",
		  "\"zip5\", 3 not zip");
	check(phic_mask_kind_parse("address", 7) == -1 && phic_mask_kind_parse("SSN", 3) == -1 &&
		  phic_mask_kind_parse("Email", 5) == -1 && phic_mask_kind_parse("", 0) == -1 &&
		  phic_mask_kind_parse("ssn", 2) == -1 && phic_mask_kind_parse("ssn ", 4) == -1,
		  "mask kind parse rejects unknown, wrong case, prefix", "accepted");

	/*
	 * Property, 5000 pseudo-random inputs x 6 kinds x 2 years: the output
	 * fits phic_mask_max and nothing is written past it; ssn, phone, zip and
	 * dob show at most 4 digits (so never 5 consecutive input digits), and
	 * those are the input's last digits (ssn, phone), its first three or
	 * "000" (zip), or a year (dob).
	 */
	for (int t = 0; t < 5000; t++)
	{
		size_t		len = random_input(in),
					max = phic_mask_max(len),
					nin = digits_of(in, len, din);

		for (int k = 0; k < 6; k++)
		{
			size_t		n,
						nout;
			int			ok;

			memset(out, '#', sizeof(out));
			n = phic_mask((phic_mask_kind) k, in, len, t % 2 ? 2026 : 0, out);
			if (n > max || out[max] != '#' || out[n] != '#')
			{
				if (bad_len < 0)
					printf("    %s input of length %zu: output %zu, max %zu\n",
						   mask_kinds[k], len, n, max);
				bad_len = k;
			}
			if (k == PHIC_MASK_EMAIL || k == PHIC_MASK_NAME || n > max)
				continue;
			nout = digits_of(out, n, dout);
			ok = nout <= 4;
			if (k == PHIC_MASK_SSN && (n != 11 || memcmp(out, "***-**-", 7) != 0))
				ok = 0;
			if (k == PHIC_MASK_SSN || k == PHIC_MASK_PHONE)
				ok = ok && (nout == 0 || (nout == 4 && nin >= 7 &&
										  memcmp(dout, din + nin - 4, 4) == 0));
			else if (k == PHIC_MASK_ZIP)
				ok = ok && n == 5 && (nout == 0 ||
									  (nout == 3 && (memcmp(dout, din, 3) == 0 ||
													 memcmp(dout, "000", 3) == 0)));
			else
				ok = ok && (nout == 0 || nout == 4);
			if (!ok && leaks++ == 0)
				printf("    %s \"%.*s\" -> \"%.*s\"\n", mask_kinds[k], (int) len, in,
					   (int) n, out);
		}
	}
	check(bad_len < 0, "mask random inputs fit phic_mask_max", "overflow (kind %d)", bad_len);
	check(leaks == 0, "mask random inputs: ssn/phone/zip/dob reveal at most the allowed digits",
		  "%d outputs leak digits", leaks);
}
