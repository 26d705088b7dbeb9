/*
 * fuzz_hexkey — phic_hexkey_parse (src/core/hexkey.c), the master key's
 * text form, on arbitrary bytes.
 *
 * Properties (hexkey.h): it succeeds exactly when, once leading and
 * trailing white space (space, \t \n \v \f \r) is removed, 64 hex digits
 * remain; on success the key is those digits decoded; on failure the
 * output is wiped (all zero).
 */
#include "fuzz_common.h"
#include "hexkey.h"

#include <string.h>

static int
ws(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int
hexval(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t		key[PHIC_KEY_LEN];
	size_t		start = 0,
				end = size;
	int			expect_ok;
	phic_status st;

	memset(key, 0xa5, sizeof(key));
	st = phic_hexkey_parse((const char *) data, size, key);

	while (start < end && ws(data[start]))
		start++;
	while (end > start && ws(data[end - 1]))
		end--;
	expect_ok = end - start == 2 * PHIC_KEY_LEN;
	for (size_t i = start; expect_ok && i < end; i++)
		expect_ok = hexval(data[i]) >= 0;

	FUZZ_CHECK(st == (expect_ok ? PHIC_OK : PHIC_ERR_FORMAT));
	for (size_t i = 0; i < PHIC_KEY_LEN; i++)
		FUZZ_CHECK(key[i] == (expect_ok
							  ? (uint8_t) (hexval(data[start + 2 * i]) << 4 |
										   hexval(data[start + 2 * i + 1]))
							  : 0));
	return 0;
}
