/*
 * hexkey.c — master key text form (SPEC §1).
 */
#include "hexkey.h"
#include "secmem.h"

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

phic_status
phic_hexkey_parse(const char *text, size_t len, uint8_t out[PHIC_KEY_LEN])
{
	size_t		start = 0,
				end = len,
				i;

	while (start < end && is_space(text[start]))
		start++;
	while (end > start && is_space(text[end - 1]))
		end--;
	phic_wipe(out, PHIC_KEY_LEN);
	if (end - start != 2 * PHIC_KEY_LEN)
		return PHIC_ERR_FORMAT;
	for (i = 0; i < PHIC_KEY_LEN; i++)
	{
		int			hi = hexval(text[start + 2 * i]);
		int			lo = hexval(text[start + 2 * i + 1]);

		if (hi < 0 || lo < 0)
		{
			phic_wipe(out, PHIC_KEY_LEN);
			return PHIC_ERR_FORMAT;
		}
		out[i] = (uint8_t) ((hi << 4) | lo);
	}
	return PHIC_OK;
}
