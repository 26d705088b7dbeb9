/*
 * test_sha256x2.c — unit tests of src/core/sha256x2 (SHA-256 of two
 * messages at once, behind chain.h's phic_sha256_pair).
 */
#include <string.h>

#include "harness.h"
#include "chain.h"
#include "sha256x2.h"

/*
 * sha256x2: phic_sha256_pair, which hashes with sha256x2.c where the CPU
 * has the x86 SHA extensions, against FIPS 180-2 vectors, and it and
 * phic_sha256x2 itself (where available) against phic_sha256 (OpenSSL)
 * for every length from 0 to 300 bytes, each paired with a message of
 * another length (other block counts, one- and two-block tails).
 */
void
test_sha256x2(void)
{
	static const char abc_hex[] = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
	static const char empty_hex[] = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
	static const char long_msg[] = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	static const char long_hex[] = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
	uint8_t		msg[301],
				a[32],
				b[32],
				want_a[32],
				want_b[32];
	int			bad = -1;

	unhex(abc_hex, want_a);
	unhex(empty_hex, want_b);
	check_status("sha256x2 pair status", phic_sha256_pair("abc", 3, a, "", 0, b), PHIC_OK);
	check_bytes("sha256x2 pair: sha256(\"abc\")", a, want_a, 32);
	check_bytes("sha256x2 pair: sha256(\"\")", b, want_b, 32);
	unhex(long_hex, want_b);
	phic_sha256_pair(long_msg, strlen(long_msg), b, "abc", 3, a);
	check_bytes("sha256x2 pair: sha256(448-bit message), first", b, want_b, 32);
	check_bytes("sha256x2 pair: sha256(\"abc\"), second", a, want_a, 32);

	for (int i = 0; i < (int) sizeof(msg); i++)
		msg[i] = (uint8_t) (i * 131 + 7);
	for (size_t n = 0; n < sizeof(msg) && bad < 0; n++)
	{
		size_t		m = (n * 37 + 11) % sizeof(msg);

		phic_sha256(msg, n, want_a);
		phic_sha256(msg + sizeof(msg) - m, m, want_b);
		if (phic_sha256_pair(msg, n, a, msg + sizeof(msg) - m, m, b) != PHIC_OK ||
			memcmp(a, want_a, 32) != 0 || memcmp(b, want_b, 32) != 0)
			bad = (int) n;
#ifdef PHIC_SHA256X2
		if (phic_sha256x2_available())
		{
			memset(a, 0, 32);
			memset(b, 0, 32);
			phic_sha256x2(msg, n, a, msg + sizeof(msg) - m, m, b);
			if (memcmp(a, want_a, 32) != 0 || memcmp(b, want_b, 32) != 0)
				bad = (int) n;
		}
#endif
	}
	check(bad < 0, "sha256x2 pair (and phic_sha256x2) equal two phic_sha256 for lengths 0..300",
		  "differs at length %d", bad);
}
