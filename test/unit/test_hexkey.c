/*
 * test_hexkey.c — unit tests of src/core/hexkey (the master key's text
 * form, 64 hexadecimal digits): any case, surrounding white space, only len
 * bytes read; every malformed text rejected with the output wiped.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "hexkey.h"

void
test_hexkey(void)
{
	static const char key_hex[] =
	"00112233445566778899AaBbCcDdEeFf0123456789abcdefABCDEF0011223344";
	uint8_t		want[32],
				out[32];
	char		text[160],
				name[96];
	static const struct
	{
		const char *name;
		const char *text;
	}			bad[] = {
		{"empty", ""},
		{"only spaces", " \n\t "},
		{"63 digits", "00112233445566778899aabbccddeeff0123456789abcdefabcdef001122334"},
		{"65 digits", "00112233445566778899aabbccddeeff0123456789abcdefabcdef00112233445"},
		{"non-hex char", "00112233445566778899aabbccddeeff0123456789abcdefabcdef001122334g"},
		{"non-hex char first", "x0112233445566778899aabbccddeeff0123456789abcdefabcdef0011223344"},
		{"0x prefix", "0x00112233445566778899aabbccddeeff0123456789abcdefabcdef00112233"},
		{"interior space (64 chars)", "00112233445566778899aabbccddeeff 123456789abcdefabcdef0011223344"},
		{"interior space (65 chars)", "00112233445566778899aabbccddeeff 0123456789abcdefabcdef0011223344"},
		{"interior newline", "00112233445566778899aabbccddeeff\n0123456789abcdefabcdef0011223344"},
	};

	unhex("00112233445566778899aabbccddeeff0123456789abcdefabcdef0011223344", want);

	/* mixed case, bare */
	memset(out, 0, sizeof(out));
	if (check_status("hexkey mixed case: status",
					 phic_hexkey_parse(key_hex, 64, out), PHIC_OK))
		check_bytes("hexkey mixed case: value", out, want, 32);

	/* surrounding white space of every kind */
	snprintf(text, sizeof(text), " \t\r\n\v\f%s\n\n \t", key_hex);
	memset(out, 0, sizeof(out));
	if (check_status("hexkey surrounding white space: status",
					 phic_hexkey_parse(text, strlen(text), out), PHIC_OK))
		check_bytes("hexkey surrounding white space: value", out, want, 32);

	/* only len bytes are read: trailing garbage beyond len is ignored */
	snprintf(text, sizeof(text), "%s\nzz", key_hex);
	check_status("hexkey honours len", phic_hexkey_parse(text, 65, out), PHIC_OK);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		snprintf(text, sizeof(text), "  %s\n", bad[i].text);
		memset(out, 0x5A, sizeof(out));
		snprintf(name, sizeof(name), "hexkey reject %s", bad[i].name);
		check_status(name, phic_hexkey_parse(text, strlen(text), out), PHIC_ERR_FORMAT);
		snprintf(name, sizeof(name), "hexkey reject %s: output wiped", bad[i].name);
		check_zero(name, out, sizeof(out));
	}
}
