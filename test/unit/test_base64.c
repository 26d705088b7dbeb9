/*
 * test_base64.c — unit tests of src/core/base64 (strict standard base64):
 * the RFC 4648 vectors, random round trips of 0..300 bytes, and every
 * non-canonical form (bad padding, white space, NUL bytes, non-zero unused
 * bits, the URL alphabet) rejected.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "base64.h"

void
test_base64(void)
{
	static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
	static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
	static const struct
	{
		const char *text;
		size_t		len;		/* explicit, for embedded NULs */
	}			bad[] = {
		{"Z", 1}, {"Zg", 2}, {"Zg=", 3}, {"Zm9vY", 5}, {"Zm9vYg=", 7},
		{"Zm9 ", 4}, {" Zm9v", 5}, {"Zm9v\n", 5}, {"Zm\n9v", 5}, {"Zm9v\nZm9v", 9},
		{"Zm-v", 4}, {"Zm_v", 4}, {"Zm9\0", 4}, {"Z\0==", 4}, {"Zm9v\0\0\0\0", 8},
		{"Zm9vYmF\0", 8}, {"Zm\0v", 4}, {"Zm9v*m9v", 8},
		{"Zg==Zg==", 8}, {"Zm8=Zm9v", 8}, {"Z===", 4}, {"====", 4},
		{"Zm9v====", 8}, {"=Zg=", 4}, {"Zh==", 4}, {"Zm9=", 4}, {"Zg=a", 4},
		{"Zm=v", 4}, {"Zg-=", 4}, {"Zg\0=", 4}, {"Zm9vZ===", 8}, {"Zm9vYh==", 8},
	};
	char		text[512],
				name[96];
	uint8_t		buf[512],
				back[512];
	size_t		n,
				blen;

	for (size_t i = 0; i < 7; i++)
	{
		size_t		pl = strlen(plain[i]);

		memset(text, '#', sizeof(text));
		snprintf(name, sizeof(name), "base64 encode \"%s\"", plain[i]);
		n = phic_b64_encoded_len(pl);
		phic_b64_encode((const uint8_t *) plain[i], pl, text);
		check(n == strlen(coded[i]) && memcmp(text, coded[i], n) == 0 &&
			  text[n] == '#', name, "got \"%.*s\" (len %zu), expected \"%s\"",
			  (int) n, text, n, coded[i]);

		snprintf(name, sizeof(name), "base64 decode \"%s\"", coded[i]);
		memset(buf, '#', sizeof(buf));
		blen = 999;
		if (check_status(name, phic_b64_decode(coded[i], strlen(coded[i]), buf, &blen),
						 PHIC_OK))
			check(blen == pl && memcmp(buf, plain[i], pl) == 0 &&
				  blen <= phic_b64_decoded_max(strlen(coded[i])),
				  name, "got \"%.*s\" (len %zu), expected \"%s\"",
				  (int) (blen < 64 ? blen : 64), (const char *) buf, blen, plain[i]);
	}

	/* random round trips, lengths 0..300 */
	{
		int			failed_len = -1;

		for (size_t len = 0; len <= 300 && failed_len < 0; len++)
		{
			random_fill(buf, len);
			n = phic_b64_encoded_len(len);
			phic_b64_encode(buf, len, text);
			if (n != 4 * ((len + 2) / 3) ||
				phic_b64_decoded_max(n) < len ||
				phic_b64_decode(text, n, back, &blen) != PHIC_OK ||
				blen != len || memcmp(back, buf, len) != 0)
				failed_len = (int) len;
		}
		check(failed_len < 0, "base64 random round trip 0..300",
			  "failed at length %d", failed_len);
	}

	/* strictness */
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		char		shown[64];
		size_t		j,
					k = 0;

		for (j = 0; j < bad[i].len && k < sizeof(shown) - 5; j++)
		{
			unsigned char c = (unsigned char) bad[i].text[j];

			if (c == '\n')
				k += (size_t) snprintf(shown + k, sizeof(shown) - k, "\\n");
			else if (c < 0x20)
				k += (size_t) snprintf(shown + k, sizeof(shown) - k, "\\%o", c);
			else
				shown[k++] = (char) c;
		}
		shown[k] = '\0';
		snprintf(name, sizeof(name), "base64 reject \"%s\"", shown);
		check_status(name, phic_b64_decode(bad[i].text, bad[i].len, buf, &blen),
					 PHIC_ERR_FORMAT);
	}

	/* the canonical neighbours of the rejected forms are accepted */
	check_status("base64 accept \"Zg==\" (canonical twin of Zh==)",
				 phic_b64_decode("Zg==", 4, buf, &blen), PHIC_OK);
	check_status("base64 accept \"Zm8=\" (canonical twin of Zm9=)",
				 phic_b64_decode("Zm8=", 4, buf, &blen), PHIC_OK);
	check_status("base64 accept all symbols",
				 phic_b64_decode("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
								 64, buf, &blen), PHIC_OK);
	{
		static const uint8_t hi[] = {0xfb, 0xff, 0xbf};

		blen = 0;
		phic_b64_decode("+/+/", 4, buf, &blen);
		check(blen == 3 && memcmp(buf, hi, 3) == 0, "base64 decode \"+/+/\"",
			  "wrong bytes or length %zu, expected fb ff bf", blen);
		phic_b64_encode(hi, 3, text);
		check(memcmp(text, "+/+/", 4) == 0, "base64 encode fb ff bf",
			  "got \"%.4s\", expected \"+/+/\"", text);
	}
}
