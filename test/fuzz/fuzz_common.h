/*
 * fuzz_common.h — shared by the libFuzzer targets in test/fuzz.
 *
 * The targets never print their input (a crash report from libFuzzer names
 * the artifact file; the input itself is synthetic).  A broken property
 * calls abort(), which libFuzzer reports as a crash and saves as an artifact.
 */
#ifndef PHI_FUZZ_COMMON_H
#define PHI_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond) \
	do { if (!(cond)) abort(); } while (0)

/*
 * The fixed AES-256 key of fuzz_ciphertext.  mkseeds.c seals the seed
 * ciphertexts under it, so the fuzzer starts from values that authenticate
 * and explores both the success and the failure paths of phic_ct_open.
 */
static const uint8_t fuzz_key[32] = {
	0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
	0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f,
	0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
	0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f
};

/*
 * A fixed Ed25519 key pair for the JWS targets (RFC 8032 §7.1, test 1), and
 * the public key of test 2, which verifies none of test 1's signatures.
 */
static const uint8_t fuzz_ed25519_priv[32] = {
	0x9d, 0x61, 0xb1, 0x9d, 0xef, 0xfd, 0x5a, 0x60, 0xba, 0x84, 0x4a, 0xf4,
	0x92, 0xec, 0x2c, 0xc4, 0x44, 0x49, 0xc5, 0x69, 0x7b, 0x32, 0x69, 0x19,
	0x70, 0x3b, 0xac, 0x03, 0x1c, 0xae, 0x7f, 0x60
};
static const uint8_t fuzz_ed25519_pub[32] = {
	0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3,
	0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25,
	0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a
};
static const uint8_t fuzz_ed25519_other_pub[32] = {
	0x3d, 0x40, 0x17, 0xc3, 0xe8, 0x43, 0x89, 0x5a, 0x92, 0xb7, 0x0a, 0xa7,
	0x4d, 0x1b, 0x7e, 0xbc, 0x9c, 0x98, 0x2c, 0xcf, 0x2e, 0xc4, 0x96, 0x8c,
	0xc0, 0xcd, 0x55, 0xf1, 0x2a, 0xf4, 0x66, 0x0c
};

/* malloc that never returns NULL for size 0 and aborts when out of memory. */
static inline void *
fuzz_malloc(size_t n)
{
	void	   *p = malloc(n);

	if (p == NULL && n != 0)
		abort();
	return p;
}

/* Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF). */
static inline int
fuzz_utf8_valid(const uint8_t *s, size_t n)
{
	size_t		i = 0;

	while (i < n)
	{
		uint8_t		c = s[i];
		size_t		k;
		uint8_t		lo = 0x80,
					hi = 0xbf;

		if (c < 0x80)
		{
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			k = 1;
		else if (c >= 0xe0 && c <= 0xef)
		{
			k = 2;
			if (c == 0xe0)
				lo = 0xa0;
			if (c == 0xed)
				hi = 0x9f;
		}
		else if (c >= 0xf0 && c <= 0xf4)
		{
			k = 3;
			if (c == 0xf0)
				lo = 0x90;
			if (c == 0xf4)
				hi = 0x8f;
		}
		else
			return 0;
		if (n - i - 1 < k)
			return 0;
		if (s[i + 1] < lo || s[i + 1] > hi)
			return 0;
		for (size_t j = 2; j <= k; j++)
			if (s[i + j] < 0x80 || s[i + j] > 0xbf)
				return 0;
		i += k + 1;
	}
	return 1;
}

/* Unpadded base64url (RFC 4648 §5) of in[0..n) into out; returns its length. */
static inline size_t
fuzz_b64url(const uint8_t *in, size_t n, char *out)
{
	static const char a[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t		i = 0,
				o = 0;

	for (; i + 3 <= n; i += 3)
	{
		uint32_t	v = ((uint32_t) in[i] << 16) | ((uint32_t) in[i + 1] << 8) | in[i + 2];

		out[o++] = a[(v >> 18) & 63];
		out[o++] = a[(v >> 12) & 63];
		out[o++] = a[(v >> 6) & 63];
		out[o++] = a[v & 63];
	}
	if (n - i == 1)
	{
		out[o++] = a[in[i] >> 2];
		out[o++] = a[(in[i] & 3) << 4];
	}
	else if (n - i == 2)
	{
		uint32_t	v = ((uint32_t) in[i] << 8) | in[i + 1];

		out[o++] = a[v >> 10];
		out[o++] = a[(v >> 4) & 63];
		out[o++] = a[(v & 15) << 2];
	}
	return o;
}

/* Characters of the unpadded base64url of n bytes. */
static inline size_t
fuzz_b64url_len(size_t n)
{
	return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

#endif
