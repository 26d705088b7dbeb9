/*
 * mask.c — masking rules (mask.h).  Pure functions of their input.
 */
#include "mask.h"

#include <string.h>

/* 3-digit ZIP areas of fewer than 20,000 people (HHS Safe Harbor guidance). */
static const char *const restricted_zip3[] = {
	"036", "059", "063", "102", "203", "556", "692", "790", "821",
	"823", "830", "831", "878", "879", "884", "890", "893"
};

int
phic_mask_kind_parse(const char *name, size_t len)
{
	static const char *const names[] = {"ssn", "phone", "email", "name", "dob", "zip"};

	for (int i = 0; i < (int) (sizeof(names) / sizeof(names[0])); i++)
		if (strlen(names[i]) == len && memcmp(names[i], name, len) == 0)
			return i;
	return -1;
}

size_t
phic_mask_max(size_t len)
{
	return 4 * len + 16;	/* "a b c": each 2 bytes become 5 */
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static size_t
count_digits(const char *in, size_t len)
{
	size_t		n = 0;

	for (size_t i = 0; i < len; i++)
		n += is_digit(in[i]);
	return n;
}

/* Length of the UTF-8 sequence starting at p (1 for a stray byte). */
static size_t
utf8_len(const char *p, size_t left)
{
	unsigned char c = (unsigned char) *p;
	size_t		n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;

	return n <= left ? n : 1;
}

static size_t
put(char *out, size_t o, const char *s)
{
	size_t		n = strlen(s);

	memcpy(out + o, s, n);
	return o + n;
}

static size_t
mask_ssn(const char *in, size_t len, char *out)
{
	size_t		o = put(out, 0, "***-**-");
	size_t		seen = 0;

	if (count_digits(in, len) != 9)
		return put(out, o, "****");
	for (size_t i = 0; i < len; i++)
		if (is_digit(in[i]) && ++seen > 5)
			out[o++] = in[i];
	return o;
}

static size_t
mask_phone(const char *in, size_t len, char *out)
{
	size_t		digits = count_digits(in, len),
				seen = 0,
				o = 0;

	for (size_t i = 0; i < len; i++)
	{
		if (is_digit(in[i]))
			out[o++] = (digits >= 7 && ++seen > digits - 4) ? in[i] : '*';
		else if (in[i] == ' ' || in[i] == '-' || in[i] == '(' || in[i] == ')' ||
				 in[i] == '+' || in[i] == '.')
			out[o++] = in[i];
		/* anything else (letters, extensions) is dropped */
	}
	return digits > 0 ? o : put(out, 0, "****");	/* no number: nothing to show */
}

static size_t
mask_email(const char *in, size_t len, char *out)
{
	const char *at = memchr(in, '@', len);
	size_t		o,
				first;

	if (at == NULL || at == in || at == in + len - 1 || memchr(at + 1, '@', len - (at + 1 - in)))
		return put(out, 0, "***@***");
	first = utf8_len(in, (size_t) (at - in));
	memcpy(out, in, first);
	o = put(out, first, "***");
	memcpy(out + o, at, len - (at - in));
	return o + len - (at - in);
}

static int
is_name_separator(char c)
{
	return c == ' ' || c == '-' || c == '\'';
}

static size_t
mask_name(const char *in, size_t len, char *out)
{
	size_t		o = 0;
	int			start = 1;
	size_t		letters = 0;

	for (size_t i = 0; i < len; i++)
		letters += !is_name_separator(in[i]);
	if (len > 0 && letters == 0)
		return put(out, 0, "***");	/* only separators: never the input back */

	for (size_t i = 0; i < len;)
	{
		if (is_name_separator(in[i]))
		{
			out[o++] = in[i++];
			start = 1;
			continue;
		}
		if (start)
		{
			size_t		n = utf8_len(in + i, len - i);

			memcpy(out + o, in + i, n);
			o = put(out, o + n, "***");
			start = 0;
		}
		i += utf8_len(in + i, len - i);
	}
	return o;
}

static const int days_in_month[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

/* Year of an ISO date (YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD); -1 if malformed. */
static int
iso_year(const char *in, size_t len)
{
	int			y = 0,
				m,
				d;
	const char *md;

	if (len == 10 && (in[4] == '-' || in[4] == '/') && in[7] == in[4])
		md = in + 5;
	else if (len == 8)
		md = in + 4;
	else
		return -1;
	for (int i = 0; i < 4; i++)
	{
		if (!is_digit(in[i]))
			return -1;
		y = y * 10 + in[i] - '0';
	}
	if (!is_digit(md[0]) || !is_digit(md[1]) || !is_digit(md[len == 10 ? 3 : 2]) ||
		!is_digit(md[len == 10 ? 4 : 3]))
		return -1;
	m = (md[0] - '0') * 10 + md[1] - '0';
	d = (md[len == 10 ? 3 : 2] - '0') * 10 + md[len == 10 ? 4 : 3] - '0';
	if (m < 1 || m > 12 || d < 1 || d > days_in_month[m - 1])
		return -1;
	if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
		return -1;
	return y;
}

static size_t
mask_dob(const char *in, size_t len, int current_year, char *out)
{
	int			y = iso_year(in, len);
	size_t		o = 0;
	int			show;
	char		digits[5];

	if (y < 0)
		return put(out, 0, "****");
	show = y;
	if (current_year > 0 && current_year - y >= 90)
	{
		o = put(out, 0, "<=");
		show = current_year - 90;
	}
	for (int i = 3; i >= 0; i--)
	{
		digits[i] = (char) ('0' + show % 10);
		show /= 10;
	}
	digits[4] = '\0';
	return put(out, o, digits);
}

static size_t
mask_zip(const char *in, size_t len, char *out)
{
	size_t		n = count_digits(in, len);

	if (!((len == 5 && n == 5) || (len == 9 && n == 9) ||
		  (len == 10 && n == 9 && in[5] == '-')))
		return put(out, 0, "*****");
	for (size_t i = 0; i < sizeof(restricted_zip3) / sizeof(restricted_zip3[0]); i++)
		if (memcmp(in, restricted_zip3[i], 3) == 0)
			return put(out, 0, "000**");
	memcpy(out, in, 3);
	return put(out, 3, "**");
}

size_t
phic_mask(phic_mask_kind kind, const char *in, size_t len, int current_year, char *out)
{
	switch (kind)
	{
		case PHIC_MASK_SSN:
			return mask_ssn(in, len, out);
		case PHIC_MASK_PHONE:
			return mask_phone(in, len, out);
		case PHIC_MASK_EMAIL:
			return mask_email(in, len, out);
		case PHIC_MASK_NAME:
			return mask_name(in, len, out);
		case PHIC_MASK_DOB:
			return mask_dob(in, len, current_year, out);
		case PHIC_MASK_ZIP:
			return mask_zip(in, len, out);
	}
	return put(out, 0, "****");
}
