/*
 * test_core.c — unit tests for the plain-C core in src/core.
 *
 * A tiny self-made harness: every check() is one test.  The last line of
 * output is "N passed, N failed"; the exit status is non-zero on any failure.
 * Failures print the test name and what differed; byte dumps are printed
 * only for public values (test vectors, formats), never for random keys.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "aead.h"
#include "base64.h"
#include "chain.h"
#include "ciphertext.h"
#include "hexkey.h"
#include "hmac.h"
#include "json.h"
#include "jws.h"
#include "keywrap.h"
#include "mask.h"
#include "nonce.h"
#include "secmem.h"
#include "status.h"
#include "tokenfmt.h"

/* ---------------------------------------------------------------- harness */

static int	n_passed,
			n_failed;

/* Record one test; on failure print its name and a printf-style detail. */
static int
check(int ok, const char *name, const char *fmt, ...)
{
	va_list		ap;

	if (ok)
	{
		n_passed++;
		return 1;
	}
	n_failed++;
	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return 0;
}

static void
print_hex(const char *label, const uint8_t *p, size_t n)
{
	printf("    %s ", label);
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	putchar('\n');
}

static int
check_status(const char *name, phic_status got, phic_status want)
{
	return check(got == want, name, "status \"%s\", expected \"%s\"",
				 phic_status_str(got), phic_status_str(want));
}

/* Compare public bytes; dump both sides on a mismatch. */
static int
check_bytes(const char *name, const uint8_t *got, const uint8_t *want, size_t n)
{
	if (check(memcmp(got, want, n) == 0, name, "bytes differ (%zu bytes)", n))
		return 1;
	print_hex("got ", got, n);
	print_hex("want", want, n);
	return 0;
}

/* Compare secret bytes: report only where they first differ. */
static int
check_secret(const char *name, const uint8_t *got, const uint8_t *want, size_t n)
{
	size_t		i = 0;

	while (i < n && got[i] == want[i])
		i++;
	return check(i == n, name, "secret bytes differ first at offset %zu of %zu", i, n);
}

static int
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

static int
check_zero(const char *name, const uint8_t *p, size_t n)
{
	size_t		i = 0;

	while (i < n && p[i] == 0)
		i++;
	return check(i == n, name, "buffer not wiped: byte %zu of %zu is non-zero", i, n);
}

/* Decode a hex literal (test vectors only); aborts on a malformed literal. */
static size_t
unhex(const char *s, uint8_t *out)
{
	size_t		n = strlen(s);

	if (n % 2 != 0)
		abort();
	for (size_t i = 0; i < n / 2; i++)
	{
		unsigned int v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			abort();
		out[i] = (uint8_t) v;
	}
	return n / 2;
}

static phic_bytes
bytes(const uint8_t *p, size_t n)
{
	phic_bytes	b = {p, n};

	return b;
}

static const phic_bytes NONE = {NULL, 0};

static void
random_fill(uint8_t *p, size_t n)
{
	if (n > 0 && phic_random_bytes(p, (int) n) != PHIC_OK)
	{
		printf("cannot draw random bytes\n");
		exit(2);
	}
}

/* ------------------------------------------------------------------- aead */

typedef struct gcm_vector
{
	const char *name,
			   *key,
			   *iv,
			   *pt,
			   *aad,
			   *ct,
			   *tag;
} gcm_vector;

#define ZERO_KEY "0000000000000000000000000000000000000000000000000000000000000000"
#define TC15_KEY "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308"
#define TC15_PT "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72" \
	"1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b39"
#define TC15_CT "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa" \
	"8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662"

/* McGrew & Viega, "The Galois/Counter Mode of Operation", AES-256 cases. */
static const gcm_vector vectors[] = {
	{"TC13", ZERO_KEY, "000000000000000000000000", "", "", "",
	"530f8afbc74536b9a963b4f1c4cb738b"},
	{"TC14", ZERO_KEY, "000000000000000000000000",
		"00000000000000000000000000000000", "",
		"cea7403d4d606b6e074ec5d3baf39d18", "d0d1c8a799996bf0265b98b5d48ab919"},
	{"TC15", TC15_KEY, "cafebabefacedbaddecaf888", TC15_PT "1aafd255", "",
	TC15_CT "898015ad", "b094dac5d93471bdec1a502270e3cc6c"},
	{"TC16", TC15_KEY, "cafebabefacedbaddecaf888", TC15_PT,
		"feedfacedeadbeeffeedfacedeadbeefabaddad2", TC15_CT,
	"76fc6ece0f4e1768cddf8853bb2d551b"},
};

typedef struct decoded
{
	uint8_t		key[32],
				iv[12],
				pt[64],
				aad[32],
				ct[64],
				tag[16];
	size_t		pt_len,
				aad_len;
} decoded;

static void
decode(const gcm_vector *v, decoded *d)
{
	unhex(v->key, d->key);
	unhex(v->iv, d->iv);
	d->pt_len = unhex(v->pt, d->pt);
	d->aad_len = unhex(v->aad, d->aad);
	unhex(v->ct, d->ct);
	unhex(v->tag, d->tag);
}

/* Seal and open one vector on g, with the aad split at split (0 = whole). */
static void
run_vector(phic_gcm *g, const gcm_vector *v, size_t split, const char *what)
{
	decoded		d;
	uint8_t		out[80],
				want[80];
	char		name[96];
	phic_bytes	a1,
				a2;

	decode(v, &d);
	if (split > d.aad_len)
		split = d.aad_len;
	a1 = split ? bytes(d.aad, split) : bytes(d.aad, d.aad_len);
	a2 = split ? bytes(d.aad + split, d.aad_len - split) : NONE;

	memset(out, 0xAA, sizeof(out));
	snprintf(name, sizeof(name), "aead %s seal%s: status", v->name, what);
	if (check_status(name, phic_gcm_seal(g, d.iv, a1, a2, bytes(d.pt, d.pt_len),
										 out, out + 64), PHIC_OK))
	{
		/* compare ciphertext || tag as one value */
		memmove(out + d.pt_len, out + 64, 16);
		memcpy(want, d.ct, d.pt_len);
		memcpy(want + d.pt_len, d.tag, 16);
		snprintf(name, sizeof(name), "aead %s seal%s: ciphertext+tag", v->name, what);
		check_bytes(name, out, want, d.pt_len + 16);
	}

	memset(out, 0xAA, sizeof(out));
	snprintf(name, sizeof(name), "aead %s open%s: status", v->name, what);
	if (check_status(name, phic_gcm_open(g, d.iv, a1, a2, bytes(d.ct, d.pt_len),
										 d.tag, out), PHIC_OK))
	{
		snprintf(name, sizeof(name), "aead %s open%s: plaintext", v->name, what);
		check_bytes(name, out, d.pt, d.pt_len);
	}
}

static phic_gcm *
new_gcm(const uint8_t *key)
{
	phic_gcm   *g = phic_gcm_new(key);

	if (g == NULL)
	{
		printf("phic_gcm_new failed\n");
		exit(2);
	}
	return g;
}

/* Open a tampered TC16 and expect AUTH with the output wiped. */
static void
expect_auth_fail(phic_gcm *g, const char *name, const decoded *d,
				 const uint8_t *aad, const uint8_t *ct, const uint8_t *tag)
{
	uint8_t		out[64];
	char		buf[96];

	memset(out, 0xAA, sizeof(out));
	snprintf(buf, sizeof(buf), "aead tamper %s: status", name);
	check_status(buf, phic_gcm_open(g, d->iv, bytes(aad, d->aad_len), NONE,
									bytes(ct, d->pt_len), tag, out),
				 PHIC_ERR_AUTH);
	snprintf(buf, sizeof(buf), "aead tamper %s: output wiped", name);
	check_zero(buf, out, d->pt_len);
}

static void
test_aead(void)
{
	const gcm_vector *tc15 = &vectors[2],
			   *tc16 = &vectors[3];
	decoded		d;
	phic_gcm   *g;
	uint8_t		ct[64],
				tag[16],
				aad[32],
				tag_whole[16],
				tag_split[16],
				out[64];

	/* each vector on a fresh context, aad in one piece */
	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
	{
		decode(&vectors[i], &d);
		g = new_gcm(d.key);
		run_vector(g, &vectors[i], 0, "");
		phic_gcm_free(g);
	}

	/* TC16 with the aad split 7 + 13: same ciphertext and tag */
	decode(tc16, &d);
	g = new_gcm(d.key);
	run_vector(g, tc16, 7, " (aad split 7+13)");

	/* the split tag equals the one-piece tag, also with aad all in aad2 */
	phic_gcm_seal(g, d.iv, bytes(d.aad, d.aad_len), NONE,
				  bytes(d.pt, d.pt_len), ct, tag_whole);
	phic_gcm_seal(g, d.iv, NONE, bytes(d.aad, d.aad_len),
				  bytes(d.pt, d.pt_len), ct, tag_split);
	check_bytes("aead aad only in aad2: same tag", tag_split, tag_whole, 16);
	phic_gcm_seal(g, d.iv, bytes(d.aad, 7), bytes(d.aad + 7, d.aad_len - 7),
				  bytes(d.pt, d.pt_len), ct, tag_split);
	check_bytes("aead aad split 7+13: same tag as one piece", tag_split, tag_whole, 16);

	/* in-place seal and open */
	memcpy(out, d.pt, d.pt_len);
	phic_gcm_seal(g, d.iv, bytes(d.aad, d.aad_len), NONE,
				  bytes(out, d.pt_len), out, tag);
	check_bytes("aead in-place seal", out, d.ct, d.pt_len);
	check_status("aead in-place open",
				 phic_gcm_open(g, d.iv, bytes(d.aad, d.aad_len), NONE,
							   bytes(out, d.pt_len), tag, out), PHIC_OK);
	check_bytes("aead in-place open: plaintext", out, d.pt, d.pt_len);

	/* tampering: one flipped bit each in tag, ciphertext, aad */
	memcpy(tag, d.tag, 16);
	tag[15] ^= 0x01;
	expect_auth_fail(g, "tag bit", &d, d.aad, d.ct, tag);
	memcpy(ct, d.ct, d.pt_len);
	ct[0] ^= 0x80;
	expect_auth_fail(g, "ciphertext bit", &d, d.aad, ct, d.tag);
	memcpy(aad, d.aad, d.aad_len);
	aad[d.aad_len - 1] ^= 0x01;
	expect_auth_fail(g, "aad bit", &d, aad, d.ct, d.tag);
	memset(out, 0xAA, sizeof(out));
	check_status("aead tamper aad missing: status",
				 phic_gcm_open(g, d.iv, NONE, NONE, bytes(d.ct, d.pt_len),
							   d.tag, out), PHIC_ERR_AUTH);
	check_zero("aead tamper aad missing: output wiped", out, d.pt_len);

	/* the same context stays usable after failures and across keys' vectors */
	run_vector(g, tc16, 0, " (reuse 1)");
	run_vector(g, tc15, 0, " (reuse 2)");
	run_vector(g, tc16, 0, " (reuse 3)");
	phic_gcm_free(g);
	phic_gcm_free(NULL);		/* documented no-op */

	/* a different key gives AUTH, not garbage */
	{
		uint8_t		k2[32];

		memcpy(k2, d.key, 32);
		k2[31] ^= 1;
		g = new_gcm(k2);
		memset(out, 0xAA, sizeof(out));
		check_status("aead wrong key: status",
					 phic_gcm_open(g, d.iv, bytes(d.aad, d.aad_len), NONE,
								   bytes(d.ct, d.pt_len), d.tag, out),
					 PHIC_ERR_AUTH);
		check_zero("aead wrong key: output wiped", out, d.pt_len);
		phic_gcm_free(g);
	}
}

/* ------------------------------------------------------------------ nonce */

#define N_NONCES 10000

static int
cmp_nonce(const void *a, const void *b)
{
	return memcmp(a, b, PHIC_NONCE_LEN);
}

static void
test_nonce(void)
{
	static uint8_t all[N_NONCES][PHIC_NONCE_LEN];
	uint8_t		a[PHIC_NONCE_LEN],
				b[PHIC_NONCE_LEN];
	int			fails = 0,
				zeros = 0,
				dups = 0;
	int			fd[2];
	pid_t		pid;

	/* 10000 nonces span ~29 refills of 341 */
	for (int i = 0; i < N_NONCES; i++)
	{
		if (phic_nonce_next(all[i]) != PHIC_OK)
			fails++;
		if (all_zero(all[i], PHIC_NONCE_LEN))
			zeros++;
	}
	check(fails == 0, "nonce 10000 draws succeed", "%d draws failed", fails);
	check(zeros == 0, "nonce no all-zero nonce", "%d all-zero nonces", zeros);
	qsort(all, N_NONCES, PHIC_NONCE_LEN, cmp_nonce);
	for (int i = 1; i < N_NONCES; i++)
		if (memcmp(all[i - 1], all[i], PHIC_NONCE_LEN) == 0)
			dups++;
	check(dups == 0, "nonce 10000 pairwise distinct", "%d duplicates", dups);

	/*
	 * reset: the next nonce comes from a refill.  Were only the buffer wiped
	 * and not the count, it would be all zeros.
	 */
	phic_nonce_next(a);
	zeros = dups = 0;
	for (int i = 0; i < 50; i++)
	{
		phic_nonce_reset();
		if (phic_nonce_next(b) != PHIC_OK)
			fails++;
		if (all_zero(b, PHIC_NONCE_LEN))
			zeros++;
		if (memcmp(a, b, PHIC_NONCE_LEN) == 0)
			dups++;
		memcpy(a, b, PHIC_NONCE_LEN);
	}
	check(fails == 0 && zeros == 0 && dups == 0, "nonce after reset",
		  "%d failed, %d all-zero, %d repeated", fails, zeros, dups);

	/* after fork the child must not hand out the parent's buffered bytes */
	phic_nonce_next(a);			/* buffer filled and owned by this process */
	if (pipe(fd) != 0 || (pid = fork()) < 0)
	{
		check(0, "nonce fork", "pipe/fork failed");
		return;
	}
	if (pid == 0)
	{
		uint8_t		c[PHIC_NONCE_LEN];
		int			ok;

		close(fd[0]);
		ok = phic_nonce_next(c) == PHIC_OK &&
			write(fd[1], c, sizeof(c)) == (ssize_t) sizeof(c);
		_exit(ok ? 0 : 1);
	}
	close(fd[1]);
	{
		uint8_t		c[PHIC_NONCE_LEN];
		ssize_t		got = read(fd[0], c, sizeof(c));
		int			wstatus = 0;

		close(fd[0]);
		waitpid(pid, &wstatus, 0);
		phic_nonce_next(b);
		if (check(got == (ssize_t) sizeof(c) && WIFEXITED(wstatus) &&
				  WEXITSTATUS(wstatus) == 0, "nonce fork: child reports",
				  "read %zd bytes, child status %d", got, wstatus))
			check(memcmp(c, b, PHIC_NONCE_LEN) != 0,
				  "nonce fork: child's nonce differs from parent's next",
				  "child reused the parent's buffered nonce");
	}
}

/* ----------------------------------------------------------------- base64 */

static void
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

/* ----------------------------------------------------------------- hexkey */

static void
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

/* ------------------------------------------------------------- ciphertext */

#define KEY_ID 0x01020304u

static void
test_ciphertext(void)
{
	static const uint8_t hdr_plain[8] = {1, 1, 0, 0, 1, 2, 3, 4};
	static const uint8_t hdr_aad_bytea[8] = {1, 1, 3, 0, 1, 2, 3, 4};
	static const uint8_t hdr_empty_aad[8] = {1, 1, 1, 0, 1, 2, 3, 4};
	const char *msg = "patient: Jane Doe, dx: J45.909";
	const char *aad_s = "row 42 / column ssn";
	size_t		pl = strlen(msg);
	uint8_t		key[32],
				ct[128],
				ct2[128],
				mod[128],
				out[128];
	phic_bytes	pt = bytes((const uint8_t *) msg, pl),
				aad = bytes((const uint8_t *) aad_s, strlen(aad_s)),
				empty_aad = bytes((const uint8_t *) "", 0);
	phic_ct		p;
	phic_gcm   *g;
	size_t		len = phic_ct_size(pl);
	char		name[96];

	check(phic_ct_size(0) == 36 && phic_ct_size(5) == 41 &&
		  phic_ct_size(pl) == pl + 36, "ct size = pt + 36",
		  "ct_size(0)=%zu ct_size(5)=%zu", phic_ct_size(0), phic_ct_size(5));
	check(phic_ct_size((size_t) -1) == 0 && phic_ct_size((size_t) -1 - 35) == 0 &&
		  phic_ct_size((size_t) -1 - 36) == (size_t) -1, "ct size overflow",
		  "wrong overflow boundary");

	random_fill(key, 32);
	g = new_gcm(key);

	/* no aad, text */
	memset(ct, 0xEE, sizeof(ct));
	check_status("ct seal no aad", phic_ct_seal(g, KEY_ID, 0, NONE, pt, ct), PHIC_OK);
	check_bytes("ct header no aad = 01 01 00 00 01 02 03 04", ct, hdr_plain, 8);
	check(ct[len] == 0xEE, "ct seal writes exactly pt+36 bytes", "wrote past the end");
	if (check_status("ct parse no aad", phic_ct_parse(ct, len, &p), PHIC_OK))
	{
		check(p.flags == 0 && p.key_id == KEY_ID && p.body_len == pl &&
			  p.header == ct && p.nonce == ct + 8 && p.body == ct + 20 &&
			  p.tag == ct + 20 + pl, "ct parse fields",
			  "flags %u key_id %08x body_len %zu", p.flags, p.key_id, p.body_len);
		memset(out, 0xAA, sizeof(out));
		if (check_status("ct open no aad", phic_ct_open(g, &p, NONE, out), PHIC_OK))
			check_bytes("ct open no aad: plaintext", out, pt.ptr, pl);
		memset(out, 0xAA, sizeof(out));
		check_status("ct open no-aad value with empty aad",
					 phic_ct_open(g, &p, empty_aad, out), PHIC_ERR_AUTH);
		check_status("ct open no-aad value with some aad",
					 phic_ct_open(g, &p, aad, out), PHIC_ERR_AUTH);
	}

	/* two seals of the same plaintext differ (fresh nonce) */
	phic_ct_seal(g, KEY_ID, 0, NONE, pt, ct2);
	check(memcmp(ct + 8, ct2 + 8, 12) != 0, "ct two seals: nonces differ", "same nonce");
	check(memcmp(ct + 20, ct2 + 20, pl + 16) != 0, "ct two seals: bodies differ",
		  "same ciphertext");

	/* aad and bytea flag */
	check_status("ct seal aad+bytea", phic_ct_seal(g, KEY_ID, 1, aad, pt, ct), PHIC_OK);
	check_bytes("ct header aad+bytea = 01 01 03 00 01 02 03 04", ct, hdr_aad_bytea, 8);
	if (check_status("ct parse aad+bytea", phic_ct_parse(ct, len, &p), PHIC_OK))
	{
		check(p.flags == (PHIC_CT_FLAG_AAD | PHIC_CT_FLAG_BYTEA) && p.key_id == KEY_ID,
			  "ct parse aad+bytea fields", "flags %u key_id %08x", p.flags, p.key_id);
		memset(out, 0xAA, sizeof(out));
		if (check_status("ct open aad+bytea", phic_ct_open(g, &p, aad, out), PHIC_OK))
			check_bytes("ct open aad+bytea: plaintext", out, pt.ptr, pl);
		check_status("ct open without the aad", phic_ct_open(g, &p, NONE, out),
					 PHIC_ERR_AUTH);
		memset(out, 0xAA, sizeof(out));
		check_status("ct open wrong aad",
					 phic_ct_open(g, &p, bytes((const uint8_t *) "row 43 / column ssn",
											   aad.len), out), PHIC_ERR_AUTH);
		check_zero("ct open wrong aad: output wiped", out, pl);
		check_status("ct open truncated aad",
					 phic_ct_open(g, &p, bytes(aad.ptr, aad.len - 1), out),
					 PHIC_ERR_AUTH);
	}

	/* empty, non-NULL aad sets the flag and must be given back */
	check_status("ct seal empty aad", phic_ct_seal(g, KEY_ID, 0, empty_aad, pt, ct), PHIC_OK);
	check_bytes("ct header empty aad = 01 01 01 00 01 02 03 04", ct, hdr_empty_aad, 8);
	if (check_status("ct parse empty aad", phic_ct_parse(ct, len, &p), PHIC_OK))
	{
		memset(out, 0xAA, sizeof(out));
		if (check_status("ct open empty aad", phic_ct_open(g, &p, empty_aad, out), PHIC_OK))
			check_bytes("ct open empty aad: plaintext", out, pt.ptr, pl);
		check_status("ct open empty-aad value with NULL aad",
					 phic_ct_open(g, &p, NONE, out), PHIC_ERR_AUTH);
	}

	/* tampering: authenticated bytes -> AUTH from open */
	phic_ct_seal(g, KEY_ID, 1, aad, pt, ct);
	{
		static const struct
		{
			const char *what;
			size_t		from,
						to;		/* to == 0: through the end */
		}			regions[] = {
			{"key id", 4, 8}, {"nonce", 8, 20}, {"body", 20, 0}, {"tag", 0, 0},
		};

		for (size_t r = 0; r < 4; r++)
		{
			size_t		from = regions[r].from,
						to = regions[r].to;
			int			bad_bit = -1;
			phic_status st = PHIC_OK;

			if (r == 2)
				to = 20 + pl;
			if (r == 3)
				from = 20 + pl, to = len;
			for (size_t bit = from * 8; bit < to * 8 && bad_bit < 0; bit++)
			{
				memcpy(mod, ct, len);
				mod[bit / 8] ^= (uint8_t) (1u << (bit % 8));
				memset(out, 0xAA, sizeof(out));
				st = phic_ct_parse(mod, len, &p);
				if (st == PHIC_OK)
					st = phic_ct_open(g, &p, aad, out);
				if (st != PHIC_ERR_AUTH || !all_zero(out, pl))
					bad_bit = (int) bit;
			}
			snprintf(name, sizeof(name), "ct tamper %s (every bit) -> AUTH, wiped",
					 regions[r].what);
			check(bad_bit < 0, name, "bit %d: status \"%s\"", bad_bit,
				  phic_status_str(st));
		}
	}

	/* known flag bits are authenticated too: flipping them gives AUTH */
	for (int bit = 0; bit < 2; bit++)
	{
		memcpy(mod, ct, len);
		mod[2] ^= (uint8_t) (1 << bit);
		snprintf(name, sizeof(name), "ct tamper known flag bit %d -> AUTH", bit);
		if (phic_ct_parse(mod, len, &p) == PHIC_OK)
		{
			check_status(name, phic_ct_open(g, &p, aad, out), PHIC_ERR_AUTH);
			if (bit == 0)
				check_status("ct tamper flag bit 0, no aad given -> AUTH",
							 phic_ct_open(g, &p, NONE, out), PHIC_ERR_AUTH);
		}
		else
			check(0, name, "parse rejected a known flag");
	}

	/* format bytes: version, algorithm, unknown flags, reserved -> FORMAT */
	{
		static const struct
		{
			const char *what;
			size_t		off;
			uint8_t		val;
		}			fmt[] = {
			{"version 0", 0, 0x00}, {"version 2", 0, 0x02}, {"version 0x81", 0, 0x81},
			{"alg 0", 1, 0x00}, {"alg 2", 1, 0x02},
			{"flag 0x04", 2, 0x07}, {"flag 0x08", 2, 0x0b}, {"flag 0x80", 2, 0x83},
			{"reserved 1", 3, 0x01}, {"reserved 0x80", 3, 0x80},
		};

		for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++)
		{
			memcpy(mod, ct, len);
			mod[fmt[i].off] = fmt[i].val;
			snprintf(name, sizeof(name), "ct parse rejects %s", fmt[i].what);
			check_status(name, phic_ct_parse(mod, len, &p), PHIC_ERR_FORMAT);
		}
	}

	/* short values: every length 0..35 of a real value, and NULL */
	{
		int			bad_len = -1;

		for (size_t l = 0; l < PHIC_CT_OVERHEAD && bad_len < 0; l++)
			if (phic_ct_parse(ct, l, &p) != PHIC_ERR_FORMAT)
				bad_len = (int) l;
		check(bad_len < 0, "ct parse rejects lengths 0..35", "accepted length %d", bad_len);
		check_status("ct parse rejects NULL", phic_ct_parse(NULL, 100, &p), PHIC_ERR_FORMAT);
	}

	/* empty plaintext: a 36-byte value */
	memset(ct, 0xEE, sizeof(ct));
	check_status("ct seal empty plaintext",
				 phic_ct_seal(g, KEY_ID, 0, aad, NONE, ct), PHIC_OK);
	check(ct[36] == 0xEE, "ct empty plaintext: 36 bytes written", "wrote past 36");
	if (check_status("ct parse 36-byte value", phic_ct_parse(ct, 36, &p), PHIC_OK))
	{
		check(p.body_len == 0 && p.tag == ct + 20, "ct 36-byte value: empty body",
			  "body_len %zu", p.body_len);
		check_status("ct open 36-byte value", phic_ct_open(g, &p, aad, out), PHIC_OK);
		memcpy(mod, ct, 36);
		mod[35] ^= 0x40;
		phic_ct_parse(mod, 36, &p);
		check_status("ct open 36-byte value, tag altered",
					 phic_ct_open(g, &p, aad, out), PHIC_ERR_AUTH);
	}

	/* a value sealed under one key does not open under another */
	phic_ct_seal(g, KEY_ID, 0, NONE, pt, ct);
	phic_gcm_free(g);
	key[0] ^= 1;
	g = new_gcm(key);
	phic_ct_parse(ct, len, &p);
	check_status("ct open under another key", phic_ct_open(g, &p, NONE, out),
				 PHIC_ERR_AUTH);
	phic_gcm_free(g);
}

/* ---------------------------------------------------------------- keywrap */

static void
test_keywrap(void)
{
	uint8_t		kek[32],
				kek2[32],
				dek[32],
				back[32],
				w[PHIC_WRAPPED_LEN + 4],
				w2[PHIC_WRAPPED_LEN],
				mod[PHIC_WRAPPED_LEN],
				expect[PHIC_WRAPPED_LEN],
				ad[20];
	int			bad_bit = -1;
	phic_status st = PHIC_OK;

	random_fill(kek, 32);
	random_fill(dek, 32);
	memcpy(kek2, kek, 32);
	kek2[7] ^= 0x10;

	memset(w, 0xEE, sizeof(w));
	check_status("keywrap wrap", phic_key_wrap(kek, KEY_ID, dek, w), PHIC_OK);
	check(w[60] == 0xEE && w[63] == 0xEE, "keywrap output is 60 bytes",
		  "wrote past 60 bytes");
	memset(back, 0xAA, 32);
	if (check_status("keywrap unwrap", phic_key_unwrap(kek, KEY_ID, w, back), PHIC_OK))
		check_secret("keywrap round trip", back, dek, 32);

	phic_key_wrap(kek, KEY_ID, dek, w2);
	check(memcmp(w, w2, 60) != 0 && memcmp(w, w2, 12) != 0,
		  "keywrap two wraps differ", "same nonce or output");

	memset(back, 0xAA, 32);
	check_status("keywrap unwrap with another kek",
				 phic_key_unwrap(kek2, KEY_ID, w, back), PHIC_ERR_AUTH);
	check_zero("keywrap another kek: dek wiped", back, 32);
	memset(back, 0xAA, 32);
	check_status("keywrap unwrap with another key id",
				 phic_key_unwrap(kek, KEY_ID + 1, w, back), PHIC_ERR_AUTH);
	check_zero("keywrap another key id: dek wiped", back, 32);
	memset(back, 0xAA, 32);
	check_status("keywrap unwrap with key id byte-swapped",
				 phic_key_unwrap(kek, 0x04030201u, w, back), PHIC_ERR_AUTH);

	for (int bit = 0; bit < PHIC_WRAPPED_LEN * 8 && bad_bit < 0; bit++)
	{
		memcpy(mod, w, sizeof(mod));
		mod[bit / 8] ^= (uint8_t) (1u << (bit % 8));
		memset(back, 0xAA, 32);
		st = phic_key_unwrap(kek, KEY_ID, mod, back);
		if (st != PHIC_ERR_AUTH || !all_zero(back, 32))
			bad_bit = bit;
	}
	check(bad_bit < 0, "keywrap every flipped bit (480) -> AUTH, dek wiped",
		  "bit %d: status \"%s\"", bad_bit, phic_status_str(st));

	/* independent construction: GCM(kek, nonce, AD = prefix || id_be, dek) */
	{
		phic_gcm   *g = new_gcm(kek);

		memcpy(ad, "phi_guard.dek.v1", 16);
		ad[16] = 0x01, ad[17] = 0x02, ad[18] = 0x03, ad[19] = 0x04;
		memcpy(expect, w, 12);
		check_status("keywrap interop: manual seal",
					 phic_gcm_seal(g, expect, bytes(ad, 20), NONE, bytes(dek, 32),
								   expect + 12, expect + 44), PHIC_OK);
		check_secret("keywrap interop: wrapped bytes match manual GCM", w, expect, 60);

		/* and the manual construction unwraps with phic_key_unwrap */
		random_fill(expect, 12);
		phic_gcm_seal(g, expect, bytes(ad, 20), NONE, bytes(dek, 32),
					  expect + 12, expect + 44);
		memset(back, 0xAA, 32);
		if (check_status("keywrap interop: unwrap manual value",
						 phic_key_unwrap(kek, KEY_ID, expect, back), PHIC_OK))
			check_secret("keywrap interop: unwrapped dek", back, dek, 32);
		phic_gcm_free(g);
	}
	phic_wipe(kek, 32);
	phic_wipe(dek, 32);
}

/* ------------------------------------------------------- secmem and status */

static void
test_secmem(void)
{
	static const size_t sizes[] = {0, 1, 32, 4096, 10000};
	uint8_t		buf[64];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
	{
		size_t		n = sizes[i] ? sizes[i] : 1;
		int			locked = -1;
		uint8_t    *p = phic_secmem_alloc(sizes[i], &locked);
		char		name[64];

		snprintf(name, sizeof(name), "secmem alloc %zu", sizes[i]);
		if (!check(p != NULL && (locked == 0 || locked == 1), name,
				   "p=%p locked=%d", (void *) p, locked))
			continue;
		snprintf(name, sizeof(name), "secmem alloc %zu zeroed and writable", sizes[i]);
		{
			int			ok = all_zero(p, n);

			memset(p, 0xA5, n);
			ok = ok && p[0] == 0xA5 && p[n - 1] == 0xA5;
			check(ok, name, "not zeroed or not writable");
		}
		phic_secmem_free(p, sizes[i]);
	}
	{
		uint8_t    *p = phic_secmem_alloc(100, NULL);

		check(p != NULL, "secmem alloc with NULL locked", "NULL");
		phic_secmem_free(p, 100);
	}
	phic_secmem_free(NULL, 10);	/* documented no-op */

	memset(buf, 0xC3, sizeof(buf));
	phic_wipe(buf + 8, 40);
	check(all_zero(buf + 8, 40) && buf[7] == 0xC3 && buf[48] == 0xC3,
		  "secmem wipe zeroes exactly the range", "wrong bytes wiped");
	phic_wipe(NULL, 0);
	phic_wipe(buf, 0);
	check(buf[0] == 0xC3, "secmem wipe of 0 bytes is a no-op", "byte changed");
}

static void
test_status(void)
{
	static const phic_status codes[] = {
		PHIC_OK, PHIC_ERR_AUTH, PHIC_ERR_FORMAT, PHIC_ERR_CRYPTO,
		PHIC_ERR_RANDOM, PHIC_ERR_NOMEM, PHIC_ERR_EXPIRED, PHIC_ERR_NOT_YET_VALID,
		PHIC_ERR_LIFETIME,
	};
	const size_t n = sizeof(codes) / sizeof(codes[0]);
	int			ok = 1;
	const char *unknown = phic_status_str((phic_status) 99);

	for (size_t i = 0; i < n; i++)
	{
		const char *s = phic_status_str(codes[i]);

		if (s == NULL || s[0] == '\0' || (unknown && strcmp(s, unknown) == 0))
			ok = 0;
		for (size_t j = 0; ok && j < i; j++)
			if (strcmp(s, phic_status_str(codes[j])) == 0)
				ok = 0;
	}
	check(ok, "status strings distinct and non-empty", "duplicate or empty string");
	check(unknown != NULL && unknown[0] != '\0', "status unknown code has a string",
		  "empty or NULL");
}

/*
 * chain: entry and block hashes (SPEC §6) against values computed
 * independently with Python's hashlib:
 *   h1 = sha256(b'{"v":1,"kind":"insert"}')
 *   h2 = sha256('{"v":1,"kind":"d\u00e9crypt"}'.encode())
 *   sha256(b'\x11'*32 + struct.pack('>QQ', 7, 2) + h1 + h2)
 *   sha256(bytes(32) + struct.pack('>QQ', 1, 0))
 */
static void
test_chain(void)
{
	const char *r1 = "{\"v\":1,\"kind\":\"insert\"}";
	const char *r2 = "{\"v\":1,\"kind\":\"d\xc3\xa9" "crypt\"}";
	uint8_t		want1[32],
				want2[32],
				want_block[32],
				want_empty[32],
				prev[32],
				hashes[64],
				got[32];

	unhex("2c227573364bccb496903716440f758a008a7b2bf4ef44d6d2b159730f72ab66", want1);
	unhex("e339c69ce22ff8409867163839e3ba7c052aa6b978ca80eb65d3848a2cb2585a", want2);
	unhex("b10ed44a02a069408ac34fab31f7b6116d69f81c639fcb001b23879d9ad23056", want_block);
	unhex("e8d9d27920689aa242fcd3cb9b2ea5add8f029d0b19c831a809eabc06255354e", want_empty);

	check_status("chain sha256 of record 1", phic_sha256(r1, strlen(r1), hashes), PHIC_OK);
	check_bytes("chain entry hash 1", hashes, want1, 32);
	check_status("chain sha256 of record 2", phic_sha256(r2, strlen(r2), hashes + 32), PHIC_OK);
	check_bytes("chain entry hash 2 (UTF-8 record)", hashes + 32, want2, 32);

	memset(prev, 0x11, sizeof(prev));
	check_status("chain block hash status", phic_block_hash(prev, 7, 2, hashes, got), PHIC_OK);
	check_bytes("chain block hash", got, want_block, 32);

	/* order matters: swapped entries give another block hash */
	memcpy(hashes, want2, 32);
	memcpy(hashes + 32, want1, 32);
	phic_block_hash(prev, 7, 2, hashes, got);
	check(memcmp(got, want_block, 32) != 0, "chain block hash depends on entry order", "same hash");

	memset(prev, 0, sizeof(prev));
	check_status("chain empty block status", phic_block_hash(prev, 1, 0, NULL, got), PHIC_OK);
	check_bytes("chain empty block hash", got, want_empty, 32);
}

/* ------------------------------------------------------------ test PRNG */

/* splitmix64 with a fixed seed: reproducible pseudo-random test inputs. */
static uint64_t prng_state = 0x5eed0f9b1a2c3d4eULL;

static uint64_t
prng(void)
{
	uint64_t	z = (prng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
prng_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t) prng();
}

/* ------------------------------------------------------------------- hmac */

/*
 * RFC 4231 HMAC-SHA256 cases 1-4, 6, 7, plus keys of exactly 64 and 65
 * bytes and an empty message, all checked with Python's hmac + hashlib.
 * Keys: the string key, or key_len bytes of key_byte (0: bytes 1, 2, 3...).
 * Messages: the string msg, or 50 bytes of msg_byte.
 */
static const struct hmac_vector
{
	const char *name,
			   *key;
	size_t		key_len;
	uint8_t		key_byte;
	const char *msg;
	uint8_t		msg_byte;
	const char *mac;
}			hmac_vectors[] = {
	{"RFC 4231 TC1", NULL, 20, 0x0b, "Hi There", 0,
	"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
	{"RFC 4231 TC2", "Jefe", 0, 0, "what do ya want for nothing?", 0,
	"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	{"RFC 4231 TC3", NULL, 20, 0xaa, NULL, 0xdd,
	"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
	{"RFC 4231 TC4", NULL, 25, 0, NULL, 0xcd,
	"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
	{"RFC 4231 TC6", NULL, 131, 0xaa,
		"Test Using Larger Than Block-Size Key - Hash Key First", 0,
	"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
	{"RFC 4231 TC7", NULL, 131, 0xaa,
		"This is a test using a larger than block-size key and a larger than "
		"block-size data. The key needs to be hashed before being used by the "
		"HMAC algorithm.", 0,
	"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	{"64-byte key", NULL, 64, 0, "phi_guard", 0,
	"c3408d2fc66737ed27ffc49eeccdb98232d3bd20b093dbc5bb3a39802ba68c86"},
	{"65-byte key", NULL, 65, 0, "phi_guard", 0,
	"31bad6274824c163ab002f077098c84fde688d6a0ef697814dea2a2f342dbc77"},
	{"empty message", "Jefe", 0, 0, "", 0,
	"923598ca6d64af2a5dba79dcd021a8a0fe5c5f557519adaaf0ad532d4506dd30"},
};

/* Key, message and MAC of a vector; returns a fresh phic_hmac. */
static phic_hmac *
hmac_setup(const struct hmac_vector *v, uint8_t *msg, size_t *msg_len, uint8_t *mac)
{
	uint8_t		key[256];
	size_t		klen = v->key ? strlen(v->key) : v->key_len;
	phic_hmac  *h;

	for (size_t i = 0; i < klen; i++)
		key[i] = v->key ? (uint8_t) v->key[i] : v->key_byte ? v->key_byte : (uint8_t) (i + 1);
	*msg_len = v->msg ? strlen(v->msg) : 50;
	if (v->msg)
		memcpy(msg, v->msg, *msg_len);
	else
		memset(msg, v->msg_byte, 50);
	unhex(v->mac, mac);
	if ((h = phic_hmac_new(key, klen)) == NULL)
	{
		printf("phic_hmac_new failed\n");
		exit(2);
	}
	return h;
}

static void
test_hmac(void)
{
	const size_t nv = sizeof(hmac_vectors) / sizeof(hmac_vectors[0]);
	uint8_t		msg[256],
				msg7[256],
				want[32],
				want7[32],
				out[32];
	size_t		len,
				len7;
	char		name[96];
	phic_hmac  *h;

	for (size_t v = 0; v < nv; v++)
	{
		int			bad_i = -1,
					bad_j = -1;

		h = hmac_setup(&hmac_vectors[v], msg, &len, want);
		memset(out, 0, sizeof(out));
		snprintf(name, sizeof(name), "hmac %s", hmac_vectors[v].name);
		if (check_status(name, phic_hmac3(h, msg, len, NULL, 0, NULL, 0, out), PHIC_OK))
			check_bytes(name, out, want, 32);

		/* every split a | b | c of the message gives the same MAC */
		for (size_t i = 0; i <= len && bad_i < 0; i++)
			for (size_t j = i; j <= len && bad_i < 0; j++)
				if (phic_hmac3(h, msg, i, msg + i, j - i, msg + j, len - j, out) != PHIC_OK ||
					memcmp(out, want, 32) != 0)
					bad_i = (int) i, bad_j = (int) j;
		snprintf(name, sizeof(name), "hmac %s: every 3-part split", hmac_vectors[v].name);
		check(bad_i < 0, name, "split at %d, %d differs", bad_i, bad_j);
		phic_hmac_free(h);
	}

	/* NULL parts are skipped, whatever their length */
	h = hmac_setup(&hmac_vectors[1], msg, &len, want);
	phic_hmac3(h, NULL, 5, msg, len, NULL, 99, out);
	check_bytes("hmac NULL a and c skipped", out, want, 32);
	phic_hmac3(h, NULL, 7, NULL, 1, msg, len, out);
	check_bytes("hmac NULL a and b skipped", out, want, 32);
	phic_hmac3(h, msg, 10, NULL, 3, msg + 10, len - 10, out);
	check_bytes("hmac NULL b between parts skipped", out, want, 32);
	phic_hmac_free(h);
	h = hmac_setup(&hmac_vectors[nv - 1], msg, &len, want);
	phic_hmac3(h, NULL, 0, NULL, 0, NULL, 0, out);
	check_bytes("hmac all parts NULL = empty message", out, want, 32);
	phic_hmac_free(h);
	phic_hmac_free(NULL);		/* documented no-op */

	/* one phic_hmac reused 1000 times for two messages (TC6 and TC7 share a key) */
	{
		int			bad = -1;

		phic_hmac_free(hmac_setup(&hmac_vectors[5], msg7, &len7, want7));
		h = hmac_setup(&hmac_vectors[4], msg, &len, want);
		for (int i = 0; i < 1000 && bad < 0; i++)
			if ((i % 2 ? phic_hmac3(h, msg7, len7, NULL, 0, NULL, 0, out)
				 : phic_hmac3(h, msg, 10, msg + 10, len - 10, NULL, 0, out)) != PHIC_OK ||
				memcmp(out, i % 2 ? want7 : want, 32) != 0)
				bad = i;
		check(bad < 0, "hmac reused 1000 times", "MAC %d wrong", bad);
		phic_hmac_free(h);
	}
	/* phic_mac_bits: the leading bits, big-endian */
	{
		uint8_t		mac[32];

		memset(mac, 0xff, sizeof(mac));
		unhex("8000000000000001", mac);
		check(phic_mac_bits(mac, 1) == 1, "hmac mac_bits 1", "%llx",
			  (unsigned long long) phic_mac_bits(mac, 1));
		check(phic_mac_bits(mac, 8) == 0x80, "hmac mac_bits 8", "%llx",
			  (unsigned long long) phic_mac_bits(mac, 8));
		check(phic_mac_bits(mac, 32) == 0x80000000u, "hmac mac_bits 32", "%llx",
			  (unsigned long long) phic_mac_bits(mac, 32));
		check(phic_mac_bits(mac, 63) == 0x4000000000000000ULL, "hmac mac_bits 63", "%llx",
			  (unsigned long long) phic_mac_bits(mac, 63));
		check(phic_mac_bits(mac, 64) == 0x8000000000000001ULL, "hmac mac_bits 64", "%llx",
			  (unsigned long long) phic_mac_bits(mac, 64));
	}
}

/* ------------------------------------------------------------------- mask */

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

static void
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

/* --------------------------------------------------------------- tokenfmt */

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

static void
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

/*
 * jws: compact JWS / JWT with EdDSA (SPEC §5).  The RFC 8037 appendix A
 * vectors were checked with Python's `cryptography` (the public key x derived
 * from d, the A.4 signature verifies and re-signing reproduces it).  The
 * other tokens and keys come from make_jws_vectors.py (deterministic; see
 * its header), pasted between the markers below.
 */
static const char rfc8037_d[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
static const char rfc8037_x[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
static const uint8_t rfc8037_pub[32] = {
	0xd7, 0x5a, 0x98, 0x01, 0x82, 0xb1, 0x0a, 0xb7, 0xd5, 0x4b, 0xfe, 0xd3,
	0xc9, 0x64, 0x07, 0x3a, 0x0e, 0xe1, 0x72, 0xf3, 0xda, 0xa6, 0x23, 0x25,
	0xaf, 0x02, 0x1a, 0x68, 0xf7, 0x07, 0x51, 0x1a,
};
static const char rfc8037_a4[] =
	"eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc."
	"hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

/* BEGIN make_jws_vectors.py (generated: do not edit by hand) */
#define JWS_NOW INT64_C(1700000000)
static const uint8_t jws_pub[32] = {0x03, 0xa1, 0x07, 0xbf, 0xf3, 0xce, 0x10, 0xbe, 0x1d, 0x70, 0xdd, 0x18, 0xe7, 0x4b, 0xc0, 0x99, 0x67, 0xe4, 0xd6, 0x30, 0x9b, 0xa5, 0x0d, 0x5f, 0x1d, 0xdc, 0x86, 0x64, 0x12, 0x55, 0x31, 0xb8};
static const uint8_t jws_pub2[32] = {0x29, 0xac, 0xba, 0xe1, 0x41, 0xbc, 0xca, 0xf0, 0xb2, 0x2e, 0x1a, 0x94, 0xd3, 0x4d, 0x0b, 0xc7, 0x36, 0x1e, 0x52, 0x6d, 0x0b, 0xfe, 0x12, 0xc8, 0x97, 0x94, 0xbc, 0x93, 0x22, 0x96, 0x6d, 0xd7};
static const char jws_valid_full[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"IiwibnVyc2UiXSwicHVycG9zZSI6InRyZWF0bWVudCIsImlhdCI6MTY5OTk5OTk5MCwibm"
	"JmIjoxNjk5OTk5OTkwLCJleHAiOjE3MDAwMDA2MDB9.LTY3azF5thhc76XoHkIhmDRAnqJ"
	"DI3tJXVdFn0F-pm3CKGJie08LZ2BcFoa7J30lBV-RqS7D5c3DWhfzt12GCA";
static const char jws_valid_min[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1MSIsIn"
	"RlbmFudCI6InQxIiwicm9sZXMiOltdLCJleHAiOjE3MDAwMDAwNjB9.QCcWwc5fmKLrjDC"
	"T6BeHSqtn9pzjwhqyrvCr7K7dD7JOC1oxo03NzkIavqWClJPuy4907LW0u-4Vj2r5j-xoD"
	"A";
static const char jws_valid_ws[] =
	"IHsKCSJhbGciIDogIkVkRFNBIiAsICJraWQiOiJrMSINCn0J.DQogeyAic3ViIiA6CSJ1M"
	"SIgLAoidGVuYW50IjoidDEiLCAicm9sZXMiIDogWyAiYSIgLCAiYiIgXSAsICJleHAiIDo"
	"gMTcwMDAwMDA2MCB9CiA.Rg10LEU9VB-tu15zUvMgntG66eW6kO5TyusZ_xvaHoFCP0egn"
	"7C5GO7BOnYC6w06a4oQd4_aF_bM-18XBRd_DQ";
static const char jws_valid_unicode[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJcdTAwZT"
	"lsXHUwMEU4dmUiLCJ0ZW5hbnQiOiJcdWQ4M2RcdWRlMDAg4oKsIiwicm9sZXMiOlsiXC9y"
	"XCJxXFwiXSwiZXhwIjoxNzAwMDAwMDYwfQ.7uXIDM8z73U75gpMGAcKDPn79WB84_Djs1s"
	"DChJMBtS5EtSA29-E3a8XuZmXaC0ifKt0SilKrzlTjfiXqv8fDQ";
static const char jws_valid_ext[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1MSIsIn"
	"RlbmFudCI6InQxIiwicm9sZXMiOlsiYSJdLCJleHAiOjE3MDAwMDAwNjAsImlzcyI6Imlk"
	"cCIsImF1ZCI6WyJ4IiwieSJdLCJ4Ijp7ImEiOlsxLC0yLjVlMyx7ImIiOm51bGx9XSwiYy"
	"I6dHJ1ZSwiZCI6ZmFsc2V9LCJlIjoiXG4ifQ.1jnS2csL9y2mGndIwpA2NksOJumiqhpGi"
	"UzS-XZN3gApV4t5Sq-ftyOwv1-ZK14eN1kVdA-dhFTu3AFM6fr4CQ";
static const char jws_valid_frac[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1MSIsIn"
	"RlbmFudCI6InQxIiwicm9sZXMiOltdLCJleHAiOjE3MDAwMDAwNjAuOSwiaWF0IjoxNzAw"
	"MDAwMDAwLjV9.gWu3-PBSzKvNHjsrl3WIm1U8VnvJo6AaD1BSiw7GAnx_sBvjqh0dydEYF"
	"sIrujVbi3GGRPUqEeemkTo5j0oBCg";
static const char jws_valid_roles32[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJyMCIsInIxIiwicjIiLCJyMyIs"
	"InI0IiwicjUiLCJyNiIsInI3IiwicjgiLCJyOSIsInIxMCIsInIxMSIsInIxMiIsInIxMy"
	"IsInIxNCIsInIxNSIsInIxNiIsInIxNyIsInIxOCIsInIxOSIsInIyMCIsInIyMSIsInIy"
	"MiIsInIyMyIsInIyNCIsInIyNSIsInIyNiIsInIyNyIsInIyOCIsInIyOSIsInIzMCIsIn"
	"IzMSJdLCJleHAiOjE3MDAwMDA2MDB9.Ttx3kW1g0FjtgGZSqz11kCLQZq0GPEpX1s4I7pP"
	"SwAuQzqCORPU9BRbYUPyulrG87aEIraIcs1gZxhvgDosIBw";
static const char jws_valid_long[] =
	"eyJhbGciOiJFZERTQSIsImtpZCI6Imtra2tra2tra2tra2tra2tra2tra2tra2tra2tra2"
	"tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tr"
	"a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2"
	"tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tr"
	"a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2"
	"tra2tra2tra2tra2trayJ9.eyJzdWIiOiJzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3N"
	"zc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc"
	"3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3N"
	"zc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc"
	"3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3N"
	"zc3Nzc3Nzc3Nzc3Nzc3Nzc3MiLCJ0ZW5hbnQiOiJ0dHR0dHR0dHR0dHR0dHR0dHR0dHR0d"
	"HR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR"
	"0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0d"
	"HR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR"
	"0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0dHR0d"
	"HR0dHR0dHR0dHR0dHR0dHR0dHR0dHQiLCJyb2xlcyI6WyJycnJycnJycnJycnJycnJycnJ"
	"ycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJyc"
	"nJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJ"
	"ycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJyc"
	"nJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJ"
	"ycnJycnJycnJycnJycnJycnJycnJycnJycnIiXSwiZXhwIjoxNzAwMDAwNjAwLCJwdXJwb"
	"3NlIjoicHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHB"
	"wcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"
	"HBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHB"
	"wcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc"
	"HBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwIn0"
	".N9woA16F6iYJm8l3JavZmaWtpk1eL7XSC0Vr-DsRjgy2_dut1NbKjaJeyDVCf_hxcB-oA"
	"TcPDISX0XE3ADnZDA";
static const char jws_valid_big[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwicGFkIjoieHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHgifQ.X_N"
	"7SrQhkN82BIOCSaeqC-fStPnpQtRL6v0A1sTs5M8zbI8yWet9VTVZVJ3ZEYIvn9IAUtoqT"
	"8w6JuCE0VaNDw";
static const char jws_exp_past[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTY5OTk5OTk2OX0.4q8bI3Kj3L8X91qgNrWRken3OKa9PVzydLM_MKz8Og"
	"K4OJU3tt2wsk1ftrs2b2noV-kj3ytrNOIiWP5egQT_AA";
static const char jws_exp_edge[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTY5OTk5OTk3MH0.mzo-9SWHkJKSjsLqHAtBjBshKpDGLQtnKeUC_sYXqZ"
	"XiTc6w5RStVDj4OOBaHwWqduPVmtg5qz2rzAvdxXy6DQ";
static const char jws_exp_in_leeway[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTY5OTk5OTk3MX0.KGml-isRO8fJ8j6Pz9mKfimMFQAevGBg_g63YV52yo"
	"nsNPFUIn5XDRNYbiN6G2ywybPJo06TsfYLDfdJcvO3CA";
static const char jws_exp_zero[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MH0.-YZSakwuJzbwZwRbbcyh9Iwq4vjuWfgfaouO1ss4h-r8j0KOdWzMeI"
	"Tt5f0GXAX71fMETthHtCZykrmCleeQDw";
static const char jws_nbf_future[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwibmJmIjoxNzAwMDAwMDMxfQ.WvV2M3Iy0drPrUjfXot"
	"lP7d13LVviE7mZR6OTyUclOvkgzlaIT-m_k-fbKQjxdbNrgGvgXd_oLTBy2XWYxn1CQ";
static const char jws_nbf_edge[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwibmJmIjoxNzAwMDAwMDMwfQ.V6deFOWOTIbKHWnOloh"
	"wqNJLaKfMy7MGYuYm9KcnTpYXH8hF__Lhcc_RPgf3H9qrrX1NX9cVT1-Wh1G3CI-JDw";
static const char jws_nbf_frac[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1IiwidG"
	"VuYW50IjoidCIsInJvbGVzIjpbXSwiZXhwIjoxNzAwMDAwNjAwLCJuYmYiOjE3MDAwMDAw"
	"MzAuNX0.dVnOncxaxxlZFI6XxT9xcW0nJJqMZXfqgYHeVw0dtFsi334aLxV6bVMFSAd2JW"
	"S4V3_xPVEcgDdIp2OZMgi4BQ";
static const char jws_life_long[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMzYwMX0.-Gcp1yJ5HoCStGKkpU79oeUxBKEpqKs9IwUzlNqnhp"
	"KXmsaDlgBg9yREOopUHHK7W4_D_ud81a_lY-MyJ247BA";
static const char jws_life_edge[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMzYwMH0.X48KDQXdjsRg94JhaBHDFZLYmhwREYejgIq3J5EC9m"
	"p52Cl3BmASQUBQgYyJaRrP-1mDiXsLL0JhamLi6FuwDg";
static const char jws_life_iat[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMzYwMCwiaWF0IjoxNjk5OTk5OTAwfQ.YIiVXeizUAD8ER6sFS9"
	"NbWozd6FBcW5vEjVpk1kx0lojidz-ihMMMalu-QvwlyrJGLF3suxLoDedmn3SEDg-CA";
static const char jws_life_iat_edge[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMzUwMCwiaWF0IjoxNjk5OTk5OTAwfQ.LGsC-DGb4ZQ3hk7oqxJ"
	"KRk4Ebf4LTFt13pHAYfSyUKUa-ms82z3d-pExlmfJxxVyY26j5yncaPE8TmyxKYy5AQ";
static const char jws_wrong_key[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.G9NPsHu3oPs-x19NJCE7S-oOpMEKkvksCtv2ZsS918"
	"fE5nKCRHqey502Z1dZoplGx6J8qN-6P2l7AqtpbW3MAg";
static const char jws_wrong_key_junk[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.bm90IGpzb24.lz_ubW"
	"OIT_5WYPwUIZS4o7OSdcR6NujzkihmbDvkia9rS-Ot19lzTacduYH09gXQEltgxcGxB4A6"
	"MAK6ADMJCg";
static const char jws_sig_empty[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.";
static const char jws_sig_63[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.XkBdzG2ifZ5iu8lVtDevqTnfOAV-YTRBjUhOnBtRpG"
	"ThYkJ41DvVgN0FhnDy8g6qAMz0a4Tg2h-fRqN5jrNt";
static const char jws_sig_65[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.XkBdzG2ifZ5iu8lVtDevqTnfOAV-YTRBjUhOnBtRpG"
	"ThYkJ41DvVgN0FhnDy8g6qAMz0a4Tg2h-fRqN5jrNtAQA";
static const char jws_sig_zero[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
static const char jws_alg_none[] =
	"eyJhbGciOiJub25lIiwia2lkIjoiazEifQ.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50Ijo"
	"iY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwM"
	"DAwMDYwMH0.";
static const char jws_alg_none_signed[] =
	"eyJhbGciOiJub25lIiwia2lkIjoiazEifQ.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50Ijo"
	"iY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwM"
	"DAwMDYwMH0.dRRp19yWCQX4qZdV3iSTTPFzJ4ORQzwcqTNgY5uoXOiqAWpO6NWf52sI1D3"
	"wjfMxGZraFUGnH0egNY6MVbrGAw";
static const char jws_alg_hs256[] =
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.KZS77A6FOE8IebinI8b899Fhyu_yf5lb5l1CK1EoOh"
	"o";
static const char jws_alg_hs256_ed[] =
	"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.jDGCzjCkE9SAIlE0OxRvYEBpsySJ-FKdZaRNcZYF9F"
	"oIFpFGr_cOOh0RZnsL8XxmsrYL24ozcgms70X3DJqEBQ";
static const char jws_alg_lower[] =
	"eyJhbGciOiJlZGRzYSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50Ij"
	"oiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcw"
	"MDAwMDYwMH0.TRg4LvTm8QEW1dJMrgc-rTHm6vXnsmv3UMMjJmPLttkyMWhGrtBVZJ-Ixe"
	"gIITZ0MlYksuybRDd1VMoACdJKDQ";
static const char jws_alg_upper[] =
	"eyJhbGciOiJFRERTQSIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50Ij"
	"oiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcw"
	"MDAwMDYwMH0.NagjAOi6qR2AqFVbLwz-Nvm5_GLNCTnuWYeUvJPZgaZawWiy_Ona8L5Wjz"
	"TUPYuQXA5OnlP6NTEY9GP2YNsbBQ";
static const char jws_alg_space[] =
	"eyJhbGciOiJFZERTQSAiLCJraWQiOiJrMSJ9.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50I"
	"joiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTc"
	"wMDAwMDYwMH0.lvARDk9b25gWevG9WlyaoloH1l_MKtS_7UbCd17HAtnJUqkmZeEExUerA"
	"l2Rkv8vp2c79t0c3-dLaZ1lEVJXBA";
static const char jws_alg_ed25519[] =
	"eyJhbGciOiJFZDI1NTE5Iiwia2lkIjoiazEifQ.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW5"
	"0IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6M"
	"TcwMDAwMDYwMH0.9RLpNBJLw_qOyniHbSkUQ3YiMFz2gABeEMQjsWTP-k2gyh_FaGYw9mi"
	"EWMAUQqN4k_ByX512bwCdmlyNCbYIDw";
static const char jws_alg_missing[] =
	"eyJraWQiOiJrMSJ9.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb"
	"2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwMDAwMDYwMH0.D15WlQX"
	"ALLm1-Yj05wffiEYItiUKKRCmGqM8DA4bOe_doNPauDxscFpUgPD2M_VypByD6q8vTbLl8"
	"f_DbntABA";
static const char jws_alg_number[] =
	"eyJhbGciOjEsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50IjoiY2xpbm"
	"ljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwMDAwMDYw"
	"MH0.fqF_HlKzvLL8JujpNG7nt1H2zpo9VU5GRi_exr6Gv0Nepgu12uTydzlAxQW7MdMo0M"
	"Oipi1CkX6fDIPndiobDQ";
static const char jws_alg_escaped[] =
	"eyJcdTAwNjFsZyI6Ilx1MDA0NWREU0EiLCJraWQiOiJrMSJ9.eyJzdWIiOiJ1c2VyLTQyI"
	"iwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0"
	"sImV4cCI6MTcwMDAwMDYwMH0.FpZB-yp8fJPRnNKMgrfLIaYuV_A-03UHhHACaC4r2tClN"
	"m29Dn31KAnsWzHIECcOmExHJZ_3XyqGioV0P5DHCQ";
static const char jws_crit[] =
	"eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwiY3JpdCI6WyJleHAiXX0.eyJzdWIiOiJ1c2"
	"VyLTQyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRp"
	"dG9yIl0sImV4cCI6MTcwMDAwMDYwMH0.WDYfgS8eoNekTPde2JIGh0RNTHrEoz8zz0P4hh"
	"0Cfo_TKJEZSsLwoP2Asvtc4LWSd5MNKZDouhwOtBKktJWhBQ";
static const char jws_kid_missing[] =
	"eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50IjoiY2xpbmljLWEiL"
	"CJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwMDAwMDYwMH0.950"
	"Ljssg09vDdIVYbIIOmvoZd9T_liJgJPS0CVEzXkQzIH8eQpiBXjFr-60i-rs-nyLSej0P7"
	"IMTE1gcYA_FBA";
static const char jws_kid_long[] =
	"eyJhbGciOiJFZERTQSIsImtpZCI6Imtra2tra2tra2tra2tra2tra2tra2tra2tra2tra2"
	"tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tr"
	"a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2"
	"tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tr"
	"a2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2tra2"
	"tra2tra2tra2tra2tra2sifQ.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50IjoiY2xpbmljL"
	"WEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwMDAwMDYwMH0"
	".LzxSF9s4qfZmyJhJZPdpItNUBKgmq3p1uyeclvIrJFkPwbbdsxH9Yy_sGBO98i8ixYWZd"
	"11PCE9G7d5Cnw9qDA";
static const char jws_kid_empty[] =
	"eyJhbGciOiJFZERTQSIsImtpZCI6IiJ9.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50IjoiY"
	"2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwMDA"
	"wMDYwMH0.HFWFfcUWki6bpYegybu2O6uGhS9P7tA5NW4iR2pag7V4BrM46icNuvyTAe0q2"
	"MsRgLw_wT66cP8vNl5HR8D9Dw";
static const char jws_kid_number[] =
	"eyJhbGciOiJFZERTQSIsImtpZCI6N30.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50IjoiY2"
	"xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwMDAw"
	"MDYwMH0.nbx4IMICgwQdVe0cv2l0eWgKjCdcaH9iXeyqxQBZ_50_KOdGPYqI-rs6JcPiYg"
	"DAWN884xEXUQXdDPLDGU6lAQ";
static const char jws_hdr_dup[] =
	"eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwiYWxnIjoiRWREU0EifQ.eyJzdWIiOiJ1c2V"
	"yLTQyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpd"
	"G9yIl0sImV4cCI6MTcwMDAwMDYwMH0.hwXLgkJqzSYqxOr_FIEi1Yz3WFmyv54O9MshBml"
	"RnzoexC-bQ4_LKvNu4XDFs1YNy9XPI0rxv0AnrD5kOMbeBw";
static const char jws_hdr_notjson[] =
	"RWREU0EgazE.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcy"
	"I6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwMDAwMDYwMH0.4zQZeYAM4WbB"
	"_kNS-Kf4CeLon3xDRzT8f4hmqqIEfOVz9LUV2A9oWc8dmsZtjThd1tPbn0cn1o8vZKKSbg"
	"rTDA";
static const char jws_hdr_array[] =
	"WyJhbGciLCJFZERTQSJd.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50IjoiY2xpbmljLWEiL"
	"CJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwMDAwMDYwMH0.CGv"
	"ig2_Ye6sS8N-5z3uF4lCIEvWt7zTJcSCF4bApFfFuwVVSk7q9Irp3xO9ma9Ge9hRXnAW8a"
	"_5Z9uXGwePaCQ";
static const char jws_hdr_trailing[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn19.eyJzdWIiOiJ1c2VyL"
	"TQyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9"
	"yIl0sImV4cCI6MTcwMDAwMDYwMH0.Xo0ecfZsGp3YhNXzVS_QZ1TeMycHALJMcP857Kfyd"
	"E41gXPN-qunPJ3x-N0OaKPJnuKWCfhR97M0N2wmTOzIBg";
static const char jws_roles_string[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6ImFkbWluIiwiZXhwIjoxNzAwMDAw"
	"NjAwfQ.uD2AP3f1vHk4DQFBspnX8MKLIC9krNScpVwJlWtJr-dhSipcqOkLDjnG0hq9CNN"
	"Njg7r44mYFTl4N9a4FsQwDg";
static const char jws_roles_nonstring[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJhIiwxXSwiZXhwIjoxNzAwMDAw"
	"NjAwfQ.El3mlmjuF9JX9iasqXJ3jfPivnJwAlia5d-nFoq58GQmq2uFw3Enk0-oVyWUO6K"
	"704JR6DwHEBkXt9Ok3KFMDA";
static const char jws_roles_nested[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJhIixbImIiXV0sImV4cCI6MTcw"
	"MDAwMDYwMH0.lK4cSCrlxlk1zD23qps5Oxxe2VkX8QviiuZJQKApMlMzNF9eCrbAFetv8R"
	"Q8C3Lu6Qirv_0uvQcOr_hfPNJwBA";
static const char jws_roles_33[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJyMCIsInIxIiwicjIiLCJyMyIs"
	"InI0IiwicjUiLCJyNiIsInI3IiwicjgiLCJyOSIsInIxMCIsInIxMSIsInIxMiIsInIxMy"
	"IsInIxNCIsInIxNSIsInIxNiIsInIxNyIsInIxOCIsInIxOSIsInIyMCIsInIyMSIsInIy"
	"MiIsInIyMyIsInIyNCIsInIyNSIsInIyNiIsInIyNyIsInIyOCIsInIyOSIsInIzMCIsIn"
	"IzMSIsInIzMiJdLCJleHAiOjE3MDAwMDA2MDB9.3AAtXqzry1xAe5bTSLJvkDU7CQRDlr5"
	"9Nwk0Xs6vuCAiUQQFgHqLN5Fdl9G6pBTlsOXBAwFShzxy3Nr9xgnPDg";
static const char jws_roles_empty_str[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJhIiwiIl0sImV4cCI6MTcwMDAw"
	"MDYwMH0.PZyZCRUye2InSWljOM_kfF68Lzd3xqHbLhDUktCmB6ft-qmnqHRa2tMwRxn39O"
	"BFEMZPzlf_16j4oUcR4jR7Cw";
static const char jws_roles_long[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJycnJycnJycnJycnJycnJycnJy"
	"cnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycn"
	"JycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJy"
	"cnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycn"
	"JycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJycnJy"
	"cnJycnJycnJycnJycnJycnJycnJycnJycnJyIl0sImV4cCI6MTcwMDAwMDYwMH0.pfeuf-"
	"vtVJXJvVCaTGkUa_vgMYFVVkmoa2KBK7Xl5LGxtgVSFIxT-xfvNCp4fJpYhK25TZQ6mYak"
	"LGrgYpcRDQ";
static const char jws_roles_missing[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJleHAiOjE3MDAwMDA2MDB9.YJ8_Ms3ynk7akTH"
	"ytJCCug8SPYuJh8czBgh2LMW03YyO6C3zfAMXFEvoYBLP9UHFQd1vmwEv_R0TgyXgvOL6B"
	"w";
static const char jws_sub_number[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOjQyLCJ0ZW"
	"5hbnQiOiJjbGluaWMtYSIsInJvbGVzIjpbImNsaW5pY2lhbiIsImF1ZGl0b3IiXSwiZXhw"
	"IjoxNzAwMDAwNjAwfQ.O3idEzlhulcnThr8X4Km3aQnDKHuFR8VrcGS8R1m4wq9a0lLQgq"
	"Vsb_M6NoGJ-L--JFvdEBhOLttsRELQH10BA";
static const char jws_sub_missing[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJ0ZW5hbnQiOiJjbG"
	"luaWMtYSIsInJvbGVzIjpbImNsaW5pY2lhbiIsImF1ZGl0b3IiXSwiZXhwIjoxNzAwMDAw"
	"NjAwfQ.yBXihPfcfqL6DKBv8eqmfZhhpn1b4YAJPm1zZEPHnCsv0CwgZAl9n17s9YwfFMm"
	"E9pfb1mf9d3Ii3SAeJBSTAA";
static const char jws_sub_empty[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiIiLCJ0ZW"
	"5hbnQiOiJjbGluaWMtYSIsInJvbGVzIjpbImNsaW5pY2lhbiIsImF1ZGl0b3IiXSwiZXhw"
	"IjoxNzAwMDAwNjAwfQ.R2n5NlfVjkY_B_faOyL7Z6GnKoMPJqsMAYaOOdJ-DKMQvMAA27L"
	"1Miw3Bh2IPF8nRnAIJRKEq_RmXYbxix27DQ";
static const char jws_sub_long[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJzc3Nzc3"
	"Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nz"
	"c3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3"
	"Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nz"
	"c3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3"
	"Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3Nzc3NzIiwidGVuYW50Ijoi"
	"Y2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwMD"
	"AwMDYwMH0.WKoYNv5b_mnYcwEctc0OPb5n9TwZEnuDEnskA_K1zm6ozy4g-fkmBWUiXxW-"
	"QXgRf4RAiSbh4q22IEEA6DjqCA";
static const char jws_tenant_missing[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwicm9sZXMiOlsiY2xpbmljaWFuIiwiYXVkaXRvciJdLCJleHAiOjE3MDAwMDA2MDB9"
	".AFJNzgDOgHC3JPYaRHdQEStt9S1qEY81iKhSQt0h1zi9afLW6ZO_sncP_Z6F-kBIaF8_F"
	"Ah-8pGIfPLsxYuiAA";
static const char jws_tenant_null[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjpudWxsLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4"
	"cCI6MTcwMDAwMDYwMH0.6tMi6EJei1fR7MEpxhauyUReDjyghY-W3WGZKGxVjB1vErbPuw"
	"_uzzf4FeOz1mnQKCeWmP9TjocvxI-QVlK9BA";
static const char jws_purpose_null[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwicHVycG9zZSI6bnVsbH0.ul2KplZoxEf4nU67M-KsIn"
	"Xl8l7p-e6ZK4ZLoyQvRxdWXd5e-UX7D0NUbrqq6V50ojqrjHExVQpkhuuNxkiAAg";
static const char jws_purpose_long[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwicHVycG9zZSI6InBwcHBwcHBwcHBwcHBwcHBwcHBwcH"
	"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw"
	"cHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"
	"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBw"
	"cHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"
	"BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHAifQ.akMS2JTas316L9KCoL3WSFOCXH2fXbex6"
	"GW7CB2foy2ioxX_tJ5QIYK9ThtvZ3FEQmZGhOWZQLUe76D_qE_mBQ";
static const char jws_exp_missing[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il19.szE5bPKH8QeVR1N2F49-f4NktdJDyODXTf0DveiqPdqHU3LGwut6lmdHaJEoiO5EJ"
	"l3rHfnvJW-7m6jyu5ttCw";
static const char jws_exp_string[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6IjE3MDAwMDA2MDAifQ.pdBGj0ppXDlrlRrJWkJ7AI064N2khFKSexAq5Yj"
	"N4SLQOnugiUJlg3ALIGzKr1yShVwL09IQPf_unRPqLA8rCg";
static const char jws_exp_exponent[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1IiwidG"
	"VuYW50IjoidCIsInJvbGVzIjpbXSwiZXhwIjoxLjcwMDAwMDZlOX0.lP-tB3jrZOmcw7nt"
	"UGa0EmQIqr70mHEPI_Dq-p7K0UZedxD7xTiJGorPaKDBbXVCXMsySBdPqWPSjfeYltxIDg";
static const char jws_exp_negative[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6LTV9.TEbxYH6M6pDge-BuAvY7rg4STs_lBe2hzZfyXxdIH-QMFZrJqHbXM"
	"ODMfAhNuCbEgk-4WKn8PSvQ0U-mM2L3Dw";
static const char jws_exp_huge[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTAwMDAwMDAwMDAwMDAwMH0.M0PKglOvvUzz0YWZ_604r7F2VJsdheItKb"
	"5VUtVjPvDrhijBLPIrL-uyjA-HPmHbkI_HphXUM3aZmbV1rRHhAA";
static const char jws_iat_string[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwiaWF0Ijoibm93In0.QqZ3oeKqvn1Yp29Y92KyWJeqmi"
	"c0SlLNSTpLgwijXooTpR-vk5Cq2W4gOCy3XW3G3HhcYSf4uThR7RVgeRr2DA";
static const char jws_nbf_bool[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwibmJmIjp0cnVlfQ.kahl4psF5EsUC8KJ3LoUelr68VM"
	"lnoozLRIA4F1E0q6r8XAdh_INIh_ciakBKsBslrjcFidke7ntTwcROuGhBw";
static const char jws_claims_array[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.WyJzdWIiLCJ1Il0.rM"
	"XDHqHLVOHujdqg-XgXs8nkSkVnogiLT_oa6snv3YqbrrthdIaRvuBJWOEHq91CfY3rNcp-"
	"L2_D91zhOTBZCg";
static const char jws_claims_string[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.InN1YiI.nAI-TGTtas"
	"EnEvGtYzX8qv6XXfy1xzpl3DkLlA3V3BIQ-9rXg7_c-obrYnjQ58NHXppOAG1OQ0u5VhIx"
	"rcsoDQ";
static const char jws_dup_exp[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwiZXhwIjoxNzAwMDAwOTAwfQ.oSiNV_UF2KKvkHE7iXK"
	"zQ9OiSP_zuLVSzq7YtBEjhMJtK1HWU-_E4PUC1BSntlvxscc3HygCvIGdyr2vZDGWBQ";
static const char jws_dup_exp_escaped[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwiXHUwMDY1eHAiOjE3MDAwMDA5MDB9.DBWt4L58Hspw3"
	"arv2LF89VFDjvJWiHi0i_vknazrqoFGjy3Drb5ft0KtJeppAcMYgRiPf0XkD6Z4jO44-S6"
	"-Bw";
static const char jws_dup_nested[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwieCI6eyJhIjoxLCJhIjoyfX0.cUbxeQnmUBssIYTJqK"
	"dUyI_eH2aMAb1dSvzY51JLp28yP7ibSR3vB3UVj9u8MnF4Bl65cIG7JcdVH6w-Jmk1Ag";
static const char jws_trailing[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH14.iWam9XiPRcqU_BLBRkoypK-vFToalm6wqIxE3nIOZ"
	"lCS904IjbP1nQr4S8Dfc7CtOmT7Kb2z1EobNhRz67HYAA";
static const char jws_trailing_obj[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH17fQ.oXqsd9OfFqfJnvIEk-lqssVqxBY0cib6QtNTfMi"
	"JWQfTyfWUQfaWlL6I-HwWSdJa00kAX2aLU7_dyZBHNP8ABg";
static const char jws_trailing_ws[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0gCg.2MfS38z1OPAxnKzM2jwUUB1QbQdf-khP0X6Pz06"
	"6KTi0GAPd0vYLtzeFCXhcFq6k3HwthCOuM_jNGXcHzWB-Ag";
static const char jws_bom[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.77u_eyJzdWIiOiJ1c2"
	"VyLTQyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRp"
	"dG9yIl0sImV4cCI6MTcwMDAwMDYwMH0.4GuUKbiSqCHJ4ScFnGtIcbA6jE24ADXUfVi1Wu"
	"PvVk_2D-2znHf-VxFmwpy2TUHR8aY8wMlgsfZm0NamtsnqAw";
static const char jws_trailing_comma[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCx9.xX0lvkxf1VyC_c_QDRajgSvXktDuc7oN0m3J-OpWj"
	"scsGhV9Ouz79BpuIzp9OOo-7ImIAe5TmhXShvs--Ax0Dw";
static const char jws_single_quotes[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eydzdWInOid1JywndG"
	"VuYW50JzondCcsJ3JvbGVzJzpbXSwnZXhwJzoxNzAwMDAwMDYwfQ.-JoTuExFpYDwSCvKL"
	"tIZChhRZGzhd841eenhCOl-KLmJQ4eqTZHesjMusDI71FbIQqKQL9Pmh7pXx8KgXmyYDg";
static const char jws_leading_zero[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwieCI6MDF9.TE0bOi3Ff53XdxK6D3pw8S1gNrXWvWzl-"
	"V0FU_ivjfVRmI4AMYH6qjJM-WqZQ6vn3qc_r9gPki-pz3DRx5hsCA";
static const char jws_truncated[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMA.FCVrr6vGQMQM-fR-XAtcQsd4CsUzKWXvVqfCeUY8uLD"
	"2mJabH2S97SFLaG8Q7u5LmfL7hyZYvNnQJ1b7P7EABQ";
static const char jws_nul_escape[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJhXHUwMD"
	"AwYiIsInRlbmFudCI6InQiLCJyb2xlcyI6W10sImV4cCI6MTcwMDAwMDA2MH0.tNzEG_KO"
	"Vy8pAX5c41PRuuGlqMPKkdO2y2lQB1Ipxgfo0aJV5ty5Br32QSSxNUwKwYpvii6wzznZk8"
	"MD-N-MBw";
static const char jws_nul_escape_other[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwieCI6Ilx1MDAwMCJ9.iAGNIFaay92spcGrUmXiD10hJ"
	"-H5iv0IZToPQjASwqUWFrOCLX8xDaOq4UW-qsKIhJ1bXag-Cw46Xf22KPpQCA";
static const char jws_nul_raw[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJhAGIiLC"
	"J0ZW5hbnQiOiJ0Iiwicm9sZXMiOltdLCJleHAiOjE3MDAwMDAwNjB9.zDYHkqcxl0vdDB9"
	"e-0Hzr_pzc3rVucnQRy4Go_dnnWVsABBAO7iJOZOV04-Tscz5quDZSzKu4pR4bpGsTRqQD"
	"Q";
static const char jws_ctrl_raw[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJhAWIiLC"
	"J0ZW5hbnQiOiJ0Iiwicm9sZXMiOltdLCJleHAiOjE3MDAwMDAwNjB9.w_E4bamyffQ9SV-"
	"IcSlM_X3MIU6D9JSE-o50wGI0aCudXu8yRlOUtwHTaE4VuAMgzLfWUPR2wNLmeyd8Io8eC"
	"w";
static const char jws_ctrl_escaped[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJhXG5iIi"
	"widGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0s"
	"ImV4cCI6MTcwMDAwMDYwMH0.Axjb6bn3F5vT02-ecZObGGQXgvFGJcn9_Ds-8CYojg1kxX"
	"39ebaBXFGX5SnnVC5q9Zyo7vrUfHd04_zdy560Bw";
static const char jws_ctrl_del[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiYVx1MDA3ZmIiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.cxx464-vWr0FZ2ydl6Sa5_LxLY7RQWU1EZ-LAyNtAA"
	"8w1QXynkLObFN7mUu4GyMsQgUUVQpLn5EE68elHSdmCg";
static const char jws_ctrl_c1[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJhXHUwMDg1YiJdLCJleHAiOjE3"
	"MDAwMDA2MDB9.-XaFLYxt68BKNfj9kVBDb3G8Zr3Ga7hdcA3Sh0JmJFUv3RpR9YEc_jkHE"
	"FPo8t2yOpr50A0MRoEH-_qhSxc9CQ";
static const char jws_lone_surrogate[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJcdWQ4MD"
	"AiLCJ0ZW5hbnQiOiJ0Iiwicm9sZXMiOltdLCJleHAiOjE3MDAwMDAwNjB9.5qExEt6-r3M"
	"SUxA6mwbLpCB0II8UEyMHHnLdxC8bX6nUNT6PHTluAMNI-KH5tTpnWL9nSKpdjCzkTtBK0"
	"RN8BQ";
static const char jws_lone_low_surrogate[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJcdWRjMD"
	"B4IiwidGVuYW50IjoidCIsInJvbGVzIjpbXSwiZXhwIjoxNzAwMDAwMDYwfQ.G6e0Z1Det"
	"rvyEgh7ACH4jdFYuhu_VtQ0QwJKxGreOGz-BdtZRCjX6bJ8yg1lzWvlq0_jyaN_9ebfJpm"
	"M1BEUAg";
static const char jws_bad_escape[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJceDQxIi"
	"widGVuYW50IjoidCIsInJvbGVzIjpbXSwiZXhwIjoxNzAwMDAwMDYwfQ.WPj96r3J-lBB9"
	"YLykYs8RDM9dehdbHASEUOrSUyRDZujD0I0B0vFVMLoJkZHtziW0yxeEsgIsh_G0xzmzBh"
	"oDA";
static const char jws_utf8_ff[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJh_yIsIn"
	"RlbmFudCI6InQiLCJyb2xlcyI6W10sImV4cCI6MTcwMDAwMDA2MH0.Dw21yN5CmfbrbZ7I"
	"xFxXe2iL51EjCM5Lz0XDIJFtddkhlke6of4AIO9UFPrq9GdERaTVsHiNmLsFCYmbjFfWBA";
static const char jws_utf8_overlong[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJhwK8iLC"
	"J0ZW5hbnQiOiJ0Iiwicm9sZXMiOltdLCJleHAiOjE3MDAwMDAwNjB9.oqIBUMkD4V4N00n"
	"xq2j5LHYF14jz28-EV_vhhrWhFh-RbZOfh0W_5fm5pQ7c_r9tCM07tQL3-pQEtwu4lzT3C"
	"g";
static const char jws_utf8_surrogate[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJh7aCAIi"
	"widGVuYW50IjoidCIsInJvbGVzIjpbXSwiZXhwIjoxNzAwMDAwMDYwfQ.8G8MX-LSQSySm"
	"0vp4fq8QfWQCMLQcXTp-cNsQ9bIJuxaUGN5sGedabccWGwdqF-4vMq-z8x5uSSNI7AdGHj"
	"TAA";
static const char jws_utf8_cut[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJh4oIiLC"
	"J0ZW5hbnQiOiJ0Iiwicm9sZXMiOltdLCJleHAiOjE3MDAwMDAwNjB9.Y51sk2Yufp-BslC"
	"SL7w0EM7Zxo_hgDZQDRUm9McVM8l_q7IOq40eTVvpgllxX3h8pz3hHR_iLgIV_GXKxIK5A"
	"g";
static const char jws_utf8_above[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJh9JCAgC"
	"IsInRlbmFudCI6InQiLCJyb2xlcyI6W10sImV4cCI6MTcwMDAwMDA2MH0._QhEvHosPGFI"
	"iw53EeV9mAELK3PjlUEqkzbzivBGdO8fcSRynS4kBpM8pRWX447MI0oLBURVUX9xJLfiFS"
	"2rBQ";
static const char jws_utf8_cont[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJhgCIsIn"
	"RlbmFudCI6InQiLCJyb2xlcyI6W10sImV4cCI6MTcwMDAwMDA2MH0.yqPg5W5cCmUHCPt8"
	"l0mTX0wb3rUUU584D3m-hu_Y2metxswulGB2tXrTNdgSRdd_I0atEf51KlDDpvQFhkgvDw";
static const char jws_utf8_other[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwieCI6IsMifQ.hCwH-dxmLgzBOQwyXigJY1VSU9NVZ-8"
	"iDU9tlMEhT2SwxePHZDccgEBKaszQAejfHlidKvA_tQpSZvcWgOFJCA";
static const char jws_depth_bomb[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwieCI6W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1"
	"tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tb"
	"W1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tbW1tdXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV"
	"1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1d"
	"XV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXV1dXX0.yjMsZL2cEBT1lvTS2K7wjp"
	"k02_0hwAnmmX0dMFJuZC7ieYb-BxRnT6kVWXBVbKlTbyERr2YsoWy1-GOd3cBrBA";
static const char jws_depth_17[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwieCI6W1tbW1tbW1tbW1tbW1tbW11dXV1dXV1dXV1dXV"
	"1dXV19.6GsBmlAYTZIOKExTF0zfKQm0ml0Pj5Rs59HguWRXGyyZok_f8OhanBdQxAGl6cQ"
	"xWXqrWFREDkVv5svawPO6Cg";
static const char jws_depth_16[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwieCI6W1tbW1tbW1tbW1tbW1tbXV1dXV1dXV1dXV1dXV"
	"1dfQ.Nn-77bf4qGkbt8NkniUAEwnpXTqQOsI7d0MORgVpad1iDrQrqDbB5tJiipE45L0au"
	"L8JE84Ugw23WDruQ4p_CA";
static const char jws_many_tokens[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwieCI6WzEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMS"
	"wxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEs"
	"MSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLD"
	"EsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwx"
	"LDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMS"
	"wxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEs"
	"MSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLD"
	"EsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwx"
	"LDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMS"
	"wxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEs"
	"MSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLD"
	"EsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwx"
	"LDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMS"
	"wxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEs"
	"MSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLD"
	"EsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwx"
	"LDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMS"
	"wxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEs"
	"MSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLD"
	"EsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwx"
	"LDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMS"
	"wxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEs"
	"MSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLDEsMSwxLD"
	"EsMSwxLDEsMSwxLDEsMSwxXX0.zBkj68bGX2-Y8PvQptl5a4Qu7DBFW0fN5gy_3G2I-Lkl"
	"6Zcw0h879EKfV78VDh3L1uRQNDsV4A_3bOx8IGVzDg";
static const char jws_pad[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiIiLCJ0ZW"
	"5hbnQiOiJjbGluaWMtYSIsInJvbGVzIjpbImNsaW5pY2lhbiIsImF1ZGl0b3IiXSwiZXhw"
	"IjoxNzAwMDAwNjAwfQ==.ouRpo4-_YexPk6KTwkMhoeA5xqxJinxX1Hc-3lnn9HQq_wewA"
	"wbwArxjjM1fRvd2UyqE-stNEVP28jLsLjivBA";
static const char jws_plus[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2Vyfn"
	"5+IiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.Or8lOeQk1cEC0rxn2wkV8457snYmCo3e0EqO98m9Z4"
	"62c9T1jRh0B80xkJWGWDSylg1cHoIfDwKyrdRvBXWYCA";
static const char jws_slash[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyPz"
	"8/IiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.UWoKzCkEMMxdDeJOXF743eL_nLvdVPXHDDNFNM1Tg_"
	"ThxgVImPdeLdozrAFBJYo8H_xUM7QEfmpDFlHEzDG9Dg";
static const char jws_one_dot[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0";
static const char jws_no_dot[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0eyJzdWIiOiJ1c2VyLTQ"
	"yIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yI"
	"l0sImV4cCI6MTcwMDAwMDYwMH0XkBdzG2ifZ5iu8lVtDevqTnfOAV-YTRBjUhOnBtRpGTh"
	"YkJ41DvVgN0FhnDy8g6qAMz0a4Tg2h-fRqN5jrNtAQ";
static const char jws_four_parts[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.XkBdzG2ifZ5iu8lVtDevqTnfOAV-YTRBjUhOnBtRpG"
	"ThYkJ41DvVgN0FhnDy8g6qAMz0a4Tg2h-fRqN5jrNtAQ.XkBdzG2ifZ5iu8lVtDevqTnfO"
	"AV-YTRBjUhOnBtRpGThYkJ41DvVgN0FhnDy8g6qAMz0a4Tg2h-fRqN5jrNtAQ";
static const char jws_empty_payload[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0..B45vzC1x_Lxyd0_gc"
	"all9jnpp4ay0kM7_A4V-gGWvtIGEEfOAhyDDUWxd9cruu0roD7AUkqTIUu14SmtSmA0Aw";
static const char jws_empty_header[] =
	".eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGlua"
	"WNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwMDAwMDYwMH0.SNmGXzHixYkZEZuaLX2PZ1D"
	"O01mBlSnSOJJjc2U9lveKB3zyvHIDsJSQnjkPUmJN-0dNihfXgvWWzESN7zMWDQ";
static const char jws_space[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0 .XkBdzG2ifZ5iu8lVtDevqTnfOAV-YTRBjUhOnBtRp"
	"GThYkJ41DvVgN0FhnDy8g6qAMz0a4Tg2h-fRqN5jrNtAQ";
static const char jws_sig_padded[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.XkBdzG2ifZ5iu8lVtDevqTnfOAV-YTRBjUhOnBtRpG"
	"ThYkJ41DvVgN0FhnDy8g6qAMz0a4Tg2h-fRqN5jrNtAQ==";
static const char jws_sig_std_b64[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.XkBdzG2ifZ5iu8lVtDevqTnfOAV+YTRBjUhOnBtRpG"
	"ThYkJ41DvVgN0FhnDy8g6qAMz0a4Tg2h+fRqN5jrNtAQ";
static const char jws_sig_unused_bits[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMH0.XkBdzG2ifZ5iu8lVtDevqTnfOAV-YTRBjUhOnBtRpG"
	"ThYkJ41DvVgN0FhnDy8g6qAMz0a4Tg2h-fRqN5jrNtAR";
static const char jws_len_8192[] =
	"eyJhbGciOiJFZERTQSIsImtpZCI6ImsifQ.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50Ijo"
	"iY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwM"
	"DAwMDYwMCwicGFkIjoieHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHgifQ.B5xzx2NbxfzODz"
	"qsSmIFoH8OUD_6F7YBt2yEW3IFl-Ut0IOdBtz47kwj1VluKg4niSUzYQlCATcD0qwS_4JG"
	"Bw";
static const char jws_len_8193[] =
	"eyJhbGciOiJFZERTQSIsImtpZCI6ImsifQ.eyJzdWIiOiJ1c2VyLTQyIiwidGVuYW50Ijo"
	"iY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9yIl0sImV4cCI6MTcwM"
	"DAwMDYwMCwicGFkIjoieHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4e"
	"Hh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh"
	"4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4In0.XRHtXTvNNLRvv"
	"cl2alvY5PMy-sA3yTNF7w2io-v1IceZjFOUwe32oqnyj2GYMaRZDkpLxspi1xKY_hm9Jn7"
	"QBg";
static const char jws_overlong[] =
	"eyJhbGciOiJFZERTQSIsInR5cCI6IkpXVCIsImtpZCI6ImsxIn0.eyJzdWIiOiJ1c2VyLT"
	"QyIiwidGVuYW50IjoiY2xpbmljLWEiLCJyb2xlcyI6WyJjbGluaWNpYW4iLCJhdWRpdG9y"
	"Il0sImV4cCI6MTcwMDAwMDYwMCwicGFkIjoieHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eH"
	"h4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4"
	"eHh4eHh4eHh4eHh4In0.a8flpeuCQjiA3rUhXqVWGxZ0AOm2rqJo3Jfx3-gD7CnzQMaZuu"
	"bRWpjlmckC1gRhyPbsL45Re5uB9xO_-YKkDg";
static const struct jws_case
{
	const char *name;
	const char *token;
	size_t		len;
	phic_status want;
} jws_cases[] = {
	{"valid, all claims", jws_valid_full, sizeof(jws_valid_full) - 1, PHIC_OK},
	{"valid, no optional claims", jws_valid_min, sizeof(jws_valid_min) - 1, PHIC_OK},
	{"valid, white space in header and claims", jws_valid_ws, sizeof(jws_valid_ws) - 1, PHIC_OK},
	{"valid, unicode escapes and raw UTF-8", jws_valid_unicode, sizeof(jws_valid_unicode) - 1, PHIC_OK},
	{"valid, extra claims of every JSON type ignored", jws_valid_ext, sizeof(jws_valid_ext) - 1, PHIC_OK},
	{"valid, fractional dates (exp rounds down)", jws_valid_frac, sizeof(jws_valid_frac) - 1, PHIC_OK},
	{"valid, 32 roles", jws_valid_roles32, sizeof(jws_valid_roles32) - 1, PHIC_OK},
	{"valid, 255-byte sub/tenant/role/purpose/kid", jws_valid_long, sizeof(jws_valid_long) - 1, PHIC_OK},
	{"valid, 8133-byte token", jws_valid_big, sizeof(jws_valid_big) - 1, PHIC_OK},
	{"expired", jws_exp_past, sizeof(jws_exp_past) - 1, PHIC_ERR_EXPIRED},
	{"exp == now - leeway is expired", jws_exp_edge, sizeof(jws_exp_edge) - 1, PHIC_ERR_EXPIRED},
	{"exp == now - leeway + 1 is accepted", jws_exp_in_leeway, sizeof(jws_exp_in_leeway) - 1, PHIC_OK},
	{"exp 0", jws_exp_zero, sizeof(jws_exp_zero) - 1, PHIC_ERR_EXPIRED},
	{"nbf beyond the leeway", jws_nbf_future, sizeof(jws_nbf_future) - 1, PHIC_ERR_NOT_YET_VALID},
	{"nbf == now + leeway is accepted", jws_nbf_edge, sizeof(jws_nbf_edge) - 1, PHIC_OK},
	{"nbf now + leeway + 0.5 rounds up", jws_nbf_frac, sizeof(jws_nbf_frac) - 1, PHIC_ERR_NOT_YET_VALID},
	{"exp - now > max_lifetime", jws_life_long, sizeof(jws_life_long) - 1, PHIC_ERR_LIFETIME},
	{"exp - now == max_lifetime is accepted", jws_life_edge, sizeof(jws_life_edge) - 1, PHIC_OK},
	{"exp - iat > max_lifetime", jws_life_iat, sizeof(jws_life_iat) - 1, PHIC_ERR_LIFETIME},
	{"exp - iat == max_lifetime is accepted", jws_life_iat_edge, sizeof(jws_life_iat_edge) - 1, PHIC_OK},
	{"signed by another key", jws_wrong_key, sizeof(jws_wrong_key) - 1, PHIC_ERR_AUTH},
	{"bad signature beats malformed claims", jws_wrong_key_junk, sizeof(jws_wrong_key_junk) - 1, PHIC_ERR_AUTH},
	{"empty signature", jws_sig_empty, sizeof(jws_sig_empty) - 1, PHIC_ERR_FORMAT},
	{"63-byte signature", jws_sig_63, sizeof(jws_sig_63) - 1, PHIC_ERR_FORMAT},
	{"65-byte signature", jws_sig_65, sizeof(jws_sig_65) - 1, PHIC_ERR_FORMAT},
	{"64 zero bytes", jws_sig_zero, sizeof(jws_sig_zero) - 1, PHIC_ERR_AUTH},
	{"alg none, unsigned", jws_alg_none, sizeof(jws_alg_none) - 1, PHIC_ERR_FORMAT},
	{"alg none with an Ed25519 signature", jws_alg_none_signed, sizeof(jws_alg_none_signed) - 1, PHIC_ERR_FORMAT},
	{"alg HS256 (HMAC keyed with the public key)", jws_alg_hs256, sizeof(jws_alg_hs256) - 1, PHIC_ERR_FORMAT},
	{"alg HS256 with an Ed25519 signature", jws_alg_hs256_ed, sizeof(jws_alg_hs256_ed) - 1, PHIC_ERR_FORMAT},
	{"alg \"eddsa\"", jws_alg_lower, sizeof(jws_alg_lower) - 1, PHIC_ERR_FORMAT},
	{"alg \"EDDSA\"", jws_alg_upper, sizeof(jws_alg_upper) - 1, PHIC_ERR_FORMAT},
	{"alg \"EdDSA \"", jws_alg_space, sizeof(jws_alg_space) - 1, PHIC_ERR_FORMAT},
	{"alg \"Ed25519\"", jws_alg_ed25519, sizeof(jws_alg_ed25519) - 1, PHIC_ERR_FORMAT},
	{"no alg", jws_alg_missing, sizeof(jws_alg_missing) - 1, PHIC_ERR_FORMAT},
	{"alg a number", jws_alg_number, sizeof(jws_alg_number) - 1, PHIC_ERR_FORMAT},
	{"alg spelled with escapes", jws_alg_escaped, sizeof(jws_alg_escaped) - 1, PHIC_OK},
	{"crit header", jws_crit, sizeof(jws_crit) - 1, PHIC_ERR_FORMAT},
	{"no kid", jws_kid_missing, sizeof(jws_kid_missing) - 1, PHIC_ERR_FORMAT},
	{"256-byte kid", jws_kid_long, sizeof(jws_kid_long) - 1, PHIC_ERR_FORMAT},
	{"empty kid", jws_kid_empty, sizeof(jws_kid_empty) - 1, PHIC_ERR_FORMAT},
	{"kid a number", jws_kid_number, sizeof(jws_kid_number) - 1, PHIC_ERR_FORMAT},
	{"duplicate alg in header", jws_hdr_dup, sizeof(jws_hdr_dup) - 1, PHIC_ERR_FORMAT},
	{"header not JSON", jws_hdr_notjson, sizeof(jws_hdr_notjson) - 1, PHIC_ERR_FORMAT},
	{"header a JSON array", jws_hdr_array, sizeof(jws_hdr_array) - 1, PHIC_ERR_FORMAT},
	{"header with trailing garbage", jws_hdr_trailing, sizeof(jws_hdr_trailing) - 1, PHIC_ERR_FORMAT},
	{"roles not an array", jws_roles_string, sizeof(jws_roles_string) - 1, PHIC_ERR_FORMAT},
	{"roles with a number", jws_roles_nonstring, sizeof(jws_roles_nonstring) - 1, PHIC_ERR_FORMAT},
	{"roles with an array", jws_roles_nested, sizeof(jws_roles_nested) - 1, PHIC_ERR_FORMAT},
	{"33 roles", jws_roles_33, sizeof(jws_roles_33) - 1, PHIC_ERR_FORMAT},
	{"empty role", jws_roles_empty_str, sizeof(jws_roles_empty_str) - 1, PHIC_ERR_FORMAT},
	{"256-byte role", jws_roles_long, sizeof(jws_roles_long) - 1, PHIC_ERR_FORMAT},
	{"no roles", jws_roles_missing, sizeof(jws_roles_missing) - 1, PHIC_ERR_FORMAT},
	{"sub a number", jws_sub_number, sizeof(jws_sub_number) - 1, PHIC_ERR_FORMAT},
	{"no sub", jws_sub_missing, sizeof(jws_sub_missing) - 1, PHIC_ERR_FORMAT},
	{"empty sub", jws_sub_empty, sizeof(jws_sub_empty) - 1, PHIC_ERR_FORMAT},
	{"256-byte sub", jws_sub_long, sizeof(jws_sub_long) - 1, PHIC_ERR_FORMAT},
	{"no tenant", jws_tenant_missing, sizeof(jws_tenant_missing) - 1, PHIC_ERR_FORMAT},
	{"tenant null", jws_tenant_null, sizeof(jws_tenant_null) - 1, PHIC_ERR_FORMAT},
	{"purpose null", jws_purpose_null, sizeof(jws_purpose_null) - 1, PHIC_ERR_FORMAT},
	{"256-byte purpose", jws_purpose_long, sizeof(jws_purpose_long) - 1, PHIC_ERR_FORMAT},
	{"no exp", jws_exp_missing, sizeof(jws_exp_missing) - 1, PHIC_ERR_FORMAT},
	{"exp a string", jws_exp_string, sizeof(jws_exp_string) - 1, PHIC_ERR_FORMAT},
	{"exp with an exponent", jws_exp_exponent, sizeof(jws_exp_exponent) - 1, PHIC_ERR_FORMAT},
	{"exp negative", jws_exp_negative, sizeof(jws_exp_negative) - 1, PHIC_ERR_FORMAT},
	{"exp 10^15", jws_exp_huge, sizeof(jws_exp_huge) - 1, PHIC_ERR_FORMAT},
	{"iat a string", jws_iat_string, sizeof(jws_iat_string) - 1, PHIC_ERR_FORMAT},
	{"nbf true", jws_nbf_bool, sizeof(jws_nbf_bool) - 1, PHIC_ERR_FORMAT},
	{"claims a JSON array", jws_claims_array, sizeof(jws_claims_array) - 1, PHIC_ERR_FORMAT},
	{"claims a JSON string", jws_claims_string, sizeof(jws_claims_string) - 1, PHIC_ERR_FORMAT},
	{"duplicate exp", jws_dup_exp, sizeof(jws_dup_exp) - 1, PHIC_ERR_FORMAT},
	{"duplicate exp spelled with an escape", jws_dup_exp_escaped, sizeof(jws_dup_exp_escaped) - 1, PHIC_ERR_FORMAT},
	{"duplicate key in a nested object", jws_dup_nested, sizeof(jws_dup_nested) - 1, PHIC_ERR_FORMAT},
	{"trailing garbage after the claims", jws_trailing, sizeof(jws_trailing) - 1, PHIC_ERR_FORMAT},
	{"two objects", jws_trailing_obj, sizeof(jws_trailing_obj) - 1, PHIC_ERR_FORMAT},
	{"trailing white space is fine", jws_trailing_ws, sizeof(jws_trailing_ws) - 1, PHIC_OK},
	{"byte-order mark", jws_bom, sizeof(jws_bom) - 1, PHIC_ERR_FORMAT},
	{"trailing comma", jws_trailing_comma, sizeof(jws_trailing_comma) - 1, PHIC_ERR_FORMAT},
	{"single quotes", jws_single_quotes, sizeof(jws_single_quotes) - 1, PHIC_ERR_FORMAT},
	{"number with a leading zero", jws_leading_zero, sizeof(jws_leading_zero) - 1, PHIC_ERR_FORMAT},
	{"truncated JSON", jws_truncated, sizeof(jws_truncated) - 1, PHIC_ERR_FORMAT},
	{"\\u0000 in sub", jws_nul_escape, sizeof(jws_nul_escape) - 1, PHIC_ERR_FORMAT},
	{"\\u0000 in an ignored claim", jws_nul_escape_other, sizeof(jws_nul_escape_other) - 1, PHIC_ERR_FORMAT},
	{"raw NUL in a string", jws_nul_raw, sizeof(jws_nul_raw) - 1, PHIC_ERR_FORMAT},
	{"raw control character in a string", jws_ctrl_raw, sizeof(jws_ctrl_raw) - 1, PHIC_ERR_FORMAT},
	{"escaped newline in sub", jws_ctrl_escaped, sizeof(jws_ctrl_escaped) - 1, PHIC_ERR_FORMAT},
	{"DEL in tenant", jws_ctrl_del, sizeof(jws_ctrl_del) - 1, PHIC_ERR_FORMAT},
	{"C1 control U+0085 in a role", jws_ctrl_c1, sizeof(jws_ctrl_c1) - 1, PHIC_ERR_FORMAT},
	{"lone high surrogate escape", jws_lone_surrogate, sizeof(jws_lone_surrogate) - 1, PHIC_ERR_FORMAT},
	{"lone low surrogate escape", jws_lone_low_surrogate, sizeof(jws_lone_low_surrogate) - 1, PHIC_ERR_FORMAT},
	{"unknown escape \\x", jws_bad_escape, sizeof(jws_bad_escape) - 1, PHIC_ERR_FORMAT},
	{"invalid UTF-8 (ff) in sub", jws_utf8_ff, sizeof(jws_utf8_ff) - 1, PHIC_ERR_FORMAT},
	{"invalid UTF-8 (c0af) in sub", jws_utf8_overlong, sizeof(jws_utf8_overlong) - 1, PHIC_ERR_FORMAT},
	{"invalid UTF-8 (eda080) in sub", jws_utf8_surrogate, sizeof(jws_utf8_surrogate) - 1, PHIC_ERR_FORMAT},
	{"invalid UTF-8 (e282) in sub", jws_utf8_cut, sizeof(jws_utf8_cut) - 1, PHIC_ERR_FORMAT},
	{"invalid UTF-8 (f4908080) in sub", jws_utf8_above, sizeof(jws_utf8_above) - 1, PHIC_ERR_FORMAT},
	{"invalid UTF-8 (80) in sub", jws_utf8_cont, sizeof(jws_utf8_cont) - 1, PHIC_ERR_FORMAT},
	{"invalid UTF-8 in an ignored claim", jws_utf8_other, sizeof(jws_utf8_other) - 1, PHIC_ERR_FORMAT},
	{"nesting bomb of 2000 arrays in a claim", jws_depth_bomb, sizeof(jws_depth_bomb) - 1, PHIC_ERR_FORMAT},
	{"17 nested levels", jws_depth_17, sizeof(jws_depth_17) - 1, PHIC_ERR_FORMAT},
	{"16 nested levels are fine", jws_depth_16, sizeof(jws_depth_16) - 1, PHIC_OK},
	{"more than 512 JSON values", jws_many_tokens, sizeof(jws_many_tokens) - 1, PHIC_ERR_FORMAT},
	{"'=' padding in the payload (signed as is)", jws_pad, sizeof(jws_pad) - 1, PHIC_ERR_FORMAT},
	{"'+' in the payload (signed as is)", jws_plus, sizeof(jws_plus) - 1, PHIC_ERR_FORMAT},
	{"'/' in the payload (signed as is)", jws_slash, sizeof(jws_slash) - 1, PHIC_ERR_FORMAT},
	{"two parts", jws_one_dot, sizeof(jws_one_dot) - 1, PHIC_ERR_FORMAT},
	{"one part", jws_no_dot, sizeof(jws_no_dot) - 1, PHIC_ERR_FORMAT},
	{"four parts", jws_four_parts, sizeof(jws_four_parts) - 1, PHIC_ERR_FORMAT},
	{"empty payload (signed as is)", jws_empty_payload, sizeof(jws_empty_payload) - 1, PHIC_ERR_FORMAT},
	{"empty header (signed as is)", jws_empty_header, sizeof(jws_empty_header) - 1, PHIC_ERR_FORMAT},
	{"white space inside the token", jws_space, sizeof(jws_space) - 1, PHIC_ERR_FORMAT},
	{"'==' after the signature", jws_sig_padded, sizeof(jws_sig_padded) - 1, PHIC_ERR_FORMAT},
	{"signature in standard base64", jws_sig_std_b64, sizeof(jws_sig_std_b64) - 1, PHIC_ERR_FORMAT},
	{"signature with non-zero unused bits", jws_sig_unused_bits, sizeof(jws_sig_unused_bits) - 1, PHIC_ERR_FORMAT},
	{"8192-byte token (the limit)", jws_len_8192, sizeof(jws_len_8192) - 1, PHIC_OK},
	{"8193-byte token", jws_len_8193, sizeof(jws_len_8193) - 1, PHIC_ERR_FORMAT},
	{"9066-byte token", jws_overlong, sizeof(jws_overlong) - 1, PHIC_ERR_FORMAT},
};
static const char jws_pem_ed25519[] =
	"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEAA6EHv/POEL4dcN0Y50vAmWfk1j"
	"CbpQ1fHdyGZBJVMbg=\n-----END PUBLIC KEY-----\n";
static const char jws_pem_rsa[] =
	"-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQ"
	"EAgAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	"AAAAAAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	"AAAAAAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	"AAAAAAAAAA\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	"AAAAAA\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	"Bg\ncwIDAQAB\n-----END PUBLIC KEY-----\n";
static const char jws_pem_ec[] =
	"-----BEGIN PUBLIC KEY-----\nMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE+1A4jy"
	"lJjQqTrSXsTDQDe508w8yk\neH62/tq+KzAD6sifd2XKnWKI5v9zT1zQjzpZIc9UshuzmL"
	"UKwNJXf6B0cg==\n-----END PUBLIC KEY-----\n";
static const char jws_pem_x25519[] =
	"-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VuAyEAj0DFrbaPJWJK5bIU6nZ6bslNgp"
	"09e14a0bpvPiE4KF8=\n-----END PUBLIC KEY-----\n";
static const char jws_pem_ed25519_private[] =
	"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAABAgMEBQYHCAkKCwwND"
	"g8QERITFBUWFxgZGhscHR4f\n-----END PRIVATE KEY-----\n";
/* END make_jws_vectors.py */

/* base64url (unpadded) of n bytes into out, NUL-terminated; its length. */
static size_t
b64url_enc(const uint8_t *in, size_t n, char *out)
{
	size_t		len = phic_b64_encoded_len(n);

	phic_b64_encode(in, n, out);
	while (len > 0 && out[len - 1] == '=')
		len--;
	for (size_t i = 0; i < len; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	out[len] = '\0';
	return len;
}

/* base64url through the strict standard decoder; 0 on success. */
static int
b64url_dec(const char *in, size_t n, uint8_t *out, size_t *outlen)
{
	char		buf[256];
	size_t		k = 0;

	if (n + 3 > sizeof(buf))
		return -1;
	for (size_t i = 0; i < n; i++)
		buf[k++] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	while (k % 4)
		buf[k++] = '=';
	return phic_b64_decode(buf, k, out, outlen) == PHIC_OK ? 0 : -1;
}

/* An exact-size heap copy of len bytes (no terminator): ASan sees over-reads. */
static char *
exact_copy(const char *s, size_t len)
{
	char	   *p = malloc(len ? len : 1);

	if (p == NULL)
		abort();
	memcpy(p, s, len);
	return p;
}

static phic_status
jws_verify_exact(const char *token, size_t len, const uint8_t *pub, int64_t now,
				 int64_t leeway, int64_t max_lifetime, phic_jws_claims *c)
{
	char	   *p = exact_copy(token, len);
	phic_status st = phic_jws_verify(p, len, pub, now, leeway, max_lifetime, c);

	free(p);
	return st;
}

static phic_status
jws_sig_exact(const char *token, size_t len, const uint8_t *pub)
{
	char	   *p = exact_copy(token, len);
	phic_status st = phic_jws_verify_signature(p, len, pub);

	free(p);
	return st;
}

static phic_status
jws_kid_exact(const char *token, size_t len, char kid[PHIC_JWS_MAX_STR + 1])
{
	char	   *p = exact_copy(token, len);
	phic_status st = phic_jws_header_kid(p, len, kid);

	free(p);
	return st;
}

static phic_status
pem_exact(const char *pem, size_t len, uint8_t out[32])
{
	char	   *p = exact_copy(pem, len);
	phic_status st = phic_ed25519_pem_to_raw(p, len, out);

	free(p);
	return st;
}

static int
is_zero_claims(const phic_jws_claims *c)
{
	static const phic_jws_claims zero;

	return memcmp(c, &zero, sizeof(zero)) == 0;
}

/* phic_json_parse on an exact-size copy with room for 64 tokens. */
static phic_status
json_parse_exact(const char *text, size_t len, phic_json_doc *doc, phic_json_tok *toks,
				 int maxtoks, char *strbuf)
{
	char	   *p = exact_copy(text, len);
	phic_status st = phic_json_parse(doc, p, len, toks, maxtoks, strbuf, len + 1);

	doc->text = NULL;			/* p is gone; strings live in strbuf */
	free(p);
	return st;
}

static void
test_json(void)
{
	static const struct
	{
		const char *text;
		phic_status want;
	}			cases[] = {
		{"{}", PHIC_OK}, {"[]", PHIC_OK}, {" 0 ", PHIC_OK}, {"-0", PHIC_OK},
		{"1.5e-3", PHIC_OK}, {"-12E+4", PHIC_OK}, {"\"\"", PHIC_OK}, {"true", PHIC_OK},
		{"false", PHIC_OK}, {"null", PHIC_OK}, {"[1,\"a\",{},[],null]", PHIC_OK},
		{"{\"a\":{\"a\":1}}", PHIC_OK}, {"\"\\ud83d\\ude00\\u20ac\\t\"", PHIC_OK},
		{"\"\xf0\x9f\x98\x80\xef\xbf\xbf\"", PHIC_OK},
		{"", PHIC_ERR_FORMAT}, {" ", PHIC_ERR_FORMAT}, {"[1,]", PHIC_ERR_FORMAT},
		{"{,}", PHIC_ERR_FORMAT}, {"{\"a\"}", PHIC_ERR_FORMAT}, {"{\"a\":}", PHIC_ERR_FORMAT},
		{"{\"a\" 1}", PHIC_ERR_FORMAT}, {"{1:1}", PHIC_ERR_FORMAT}, {"nul", PHIC_ERR_FORMAT},
		{"tru", PHIC_ERR_FORMAT}, {"truex", PHIC_ERR_FORMAT}, {"nulls", PHIC_ERR_FORMAT},
		{"[1 2]", PHIC_ERR_FORMAT}, {"\"\\u12\"", PHIC_ERR_FORMAT},
		{"\"\\u12g4\"", PHIC_ERR_FORMAT}, {"1.", PHIC_ERR_FORMAT}, {".5", PHIC_ERR_FORMAT},
		{"-", PHIC_ERR_FORMAT}, {"+1", PHIC_ERR_FORMAT}, {"01", PHIC_ERR_FORMAT},
		{"1e", PHIC_ERR_FORMAT}, {"1e+", PHIC_ERR_FORMAT}, {"{\"a\":1}x", PHIC_ERR_FORMAT},
		{"{} {}", PHIC_ERR_FORMAT}, {"[", PHIC_ERR_FORMAT}, {"]", PHIC_ERR_FORMAT},
		{"[}", PHIC_ERR_FORMAT}, {"{]", PHIC_ERR_FORMAT}, {"\"abc", PHIC_ERR_FORMAT},
		{"\"\\", PHIC_ERR_FORMAT}, {"\"\\u", PHIC_ERR_FORMAT}, {"\"\\ud83d\"", PHIC_ERR_FORMAT},
		{"\"\\ud83d\\u0041\"", PHIC_ERR_FORMAT}, {"\"\\ud83d\\", PHIC_ERR_FORMAT},
		{"\"\\u0000\"", PHIC_ERR_FORMAT}, {"\"\t\"", PHIC_ERR_FORMAT},
		{"\"\xc3\"", PHIC_ERR_FORMAT}, {"\"\xe0\x80\xaf\"", PHIC_ERR_FORMAT},
		{"\"\xf8\x88\x80\x80\x80\"", PHIC_ERR_FORMAT}, {"'a'", PHIC_ERR_FORMAT},
		{"{\"a\":1,\"b\":2,\"a\":3}", PHIC_ERR_FORMAT},
		{"[{\"x\":1,\"\\u0078\":1}]", PHIC_ERR_FORMAT}, {"\x0b{}", PHIC_ERR_FORMAT},
		{"NaN", PHIC_ERR_FORMAT}, {"[1,2]]", PHIC_ERR_FORMAT},
	};
	static const char nested[] = "{\"a\":[1,{\"b\":\"x\"}],\"c\":\"\\u00e9\"}";
	phic_json_tok toks[64];
	phic_json_doc doc;
	char		strbuf[256],
				name[160],
				deep[40];
	int			ok;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		snprintf(name, sizeof(name), "json \"%s\"", cases[i].text);
		check_status(name, json_parse_exact(cases[i].text, strlen(cases[i].text), &doc,
											toks, 64, strbuf), cases[i].want);
	}
	/* the NUL byte is part of the text here */
	check_status("json raw NUL in a string",
				 json_parse_exact("\"a\0b\"", 5, &doc, toks, 64, strbuf), PHIC_ERR_FORMAT);

	ok = json_parse_exact(nested, strlen(nested), &doc, toks, 64, strbuf) == PHIC_OK &&
		doc.ntoks == 9 &&
		toks[0].type == PHIC_JSON_OBJECT && toks[0].size == 2 && toks[0].end == 9 &&
		toks[1].type == PHIC_JSON_STRING && toks[2].type == PHIC_JSON_ARRAY &&
		toks[2].size == 2 && toks[2].end == 7 && toks[3].type == PHIC_JSON_NUMBER &&
		toks[4].type == PHIC_JSON_OBJECT && toks[4].size == 1 && toks[4].end == 7 &&
		toks[7].type == PHIC_JSON_STRING && toks[8].len == 2 &&
		strcmp(phic_json_str(&doc, 8), "\xc3\xa9") == 0 &&
		phic_json_find(&doc, 0, "c", 1) == 8 && phic_json_find(&doc, 0, "a", 1) == 2 &&
		phic_json_find(&doc, 0, "b", 1) == -1 && phic_json_find(&doc, 4, "b", 1) == 6 &&
		phic_json_find(&doc, 2, "b", 1) == -1 && phic_json_find(&doc, 99, "a", 1) == -1;
	check(ok, "json token tree of a nested document", "wrong tokens");

	check_status("json 4 tokens fit in 4", json_parse_exact("[1,2,3]", 7, &doc, toks, 4, strbuf),
				 PHIC_OK);
	check_status("json 4 tokens do not fit in 3",
				 json_parse_exact("[1,2,3]", 7, &doc, toks, 3, strbuf), PHIC_ERR_FORMAT);
	check(doc.ntoks == 0, "json failure leaves no tokens", "%d tokens", doc.ntoks);
	memset(deep, '[', 16);
	memset(deep + 16, ']', 16);
	check_status("json depth 16", json_parse_exact(deep, 32, &doc, toks, 64, strbuf), PHIC_OK);
	memset(deep, '[', 17);
	memset(deep + 17, ']', 17);
	check_status("json depth 17", json_parse_exact(deep, 34, &doc, toks, 64, strbuf),
				 PHIC_ERR_FORMAT);

	/* mutations: no crash, no over-read (ASan), consistent trees when accepted */
	{
		static const char *const seeds[] = {
			"{\"sub\":\"u\\u00e9\",\"roles\":[\"a\",\"b\"],\"exp\":1700000000.5,\"x\":{\"y\":[true,false,null,-1e3]}}",
			"[[[[{\"a\":\"\\ud83d\\ude00\"}]]]]",
			"{\"a\":\"\xe2\x82\xac\xf0\x9f\x98\x80\",\"b\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
		};
		static const char interesting[] = "{}[]\",:\\u0123456789.eE+-tfnal \t\n\xc3\xa9\xed\xf0\x80\xbf";
		char		buf[200];
		int			bad = 0,
					accepted = 0;

		for (int t = 0; t < 30000; t++)
		{
			const char *s = seeds[prng() % 3];
			size_t		len = strlen(s);
			int			edits = 1 + (int) (prng() % 3);

			memcpy(buf, s, len);
			for (int e = 0; e < edits; e++)
			{
				size_t		at = len ? prng() % len : 0;
				char		c = interesting[prng() % (sizeof(interesting) - 1)];

				switch (prng() % 3)
				{
					case 0:
						if (len)
							buf[at] = c;
						break;
					case 1:
						if (len < sizeof(buf) - 1)
						{
							memmove(buf + at + 1, buf + at, len - at);
							buf[at] = c;
							len++;
						}
						break;
					default:
						if (len)
						{
							memmove(buf + at, buf + at + 1, len - at - 1);
							len--;
						}
						break;
				}
			}
			if (json_parse_exact(buf, len, &doc, toks, 64, strbuf) == PHIC_OK)
			{
				accepted++;
				if (doc.ntoks < 1 || toks[0].end != doc.ntoks)
					bad++;
				for (int i = 0; i < doc.ntoks; i++)
					if (toks[i].type == PHIC_JSON_STRING &&
						strlen(phic_json_str(&doc, i)) != toks[i].len)
						bad++;
			}
		}
		check(bad == 0 && accepted > 0, "json 30000 mutated documents", "%d inconsistent, %d accepted",
			  bad, accepted);
	}
}

static void
test_jws_rfc8037(void)
{
	const size_t len = sizeof(rfc8037_a4) - 1;
	const char *dot2 = strrchr(rfc8037_a4, '.');
	uint8_t		x[64],
				d[64],
				sig[64],
				want_sig[64],
				pub[32],
				part[3][64];
	size_t		n,
				dn = 0,
				siglen = sizeof(sig),
				publen = sizeof(pub),
				partlen[3];
	char		tok[sizeof(rfc8037_a4)],
				seg[3][100],
				kid[PHIC_JWS_MAX_STR + 1],
				name[128];
	EVP_PKEY   *sk;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	phic_jws_claims c;
	int			ok,
				bad;

	ERR_clear_error();			/* test_jws_pem checks nothing is left queued */

	ok = b64url_dec(rfc8037_x, strlen(rfc8037_x), x, &n) == 0 && n == 32;
	check(ok, "jws rfc8037 A.2 x is 32 bytes", "decoded to %zu bytes", n);
	check_bytes("jws rfc8037 A.2 x", x, rfc8037_pub, 32);

	/* A.1's d yields A.2's x and, Ed25519 being deterministic, A.4's signature */
	ok = b64url_dec(rfc8037_d, strlen(rfc8037_d), d, &dn) == 0 && dn == 32 &&
		b64url_dec(dot2 + 1, strlen(dot2 + 1), want_sig, &n) == 0 && n == 64;
	sk = ok ? EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, d, 32) : NULL;
	ok = sk != NULL && ctx != NULL &&
		EVP_PKEY_get_raw_public_key(sk, pub, &publen) == 1 && publen == 32 &&
		EVP_DigestSignInit(ctx, NULL, NULL, NULL, sk) == 1 &&
		EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *) rfc8037_a4,
					   (size_t) (dot2 - rfc8037_a4)) == 1 && siglen == 64;
	check(ok, "jws rfc8037 A.1 key signs", "OpenSSL failed");
	if (ok)
	{
		check_bytes("jws rfc8037 A.1 d gives A.2 x", pub, rfc8037_pub, 32);
		check_bytes("jws rfc8037 A.1 d re-signs A.4", sig, want_sig, 64);
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(sk);

	check_status("jws rfc8037 A.4 signature verifies",
				 jws_sig_exact(rfc8037_a4, len, rfc8037_pub), PHIC_OK);
	check_status("jws rfc8037 A.4 with another key",
				 jws_sig_exact(rfc8037_a4, len, jws_pub), PHIC_ERR_AUTH);
	/* its header has no kid and its payload is no claims set */
	check_status("jws rfc8037 A.4 is no context token",
				 jws_verify_exact(rfc8037_a4, len, rfc8037_pub, JWS_NOW, 30, 3600, &c),
				 PHIC_ERR_FORMAT);
	check_status("jws rfc8037 A.4 header has no kid", jws_kid_exact(rfc8037_a4, len, kid),
				 PHIC_ERR_FORMAT);

	/* any changed character: never accepted */
	bad = 0;
	memcpy(tok, rfc8037_a4, sizeof(tok));
	for (size_t i = 0; i < len; i++)
	{
		static const char alt[] = "AQgw09-_=.+/ ";
		char		orig = tok[i];

		for (size_t a = 0; a <= sizeof(alt) - 1; a++)
		{
			tok[i] = a < sizeof(alt) - 1 ? alt[a] : (char) (orig ^ 1);
			if (tok[i] != orig && jws_sig_exact(tok, len, rfc8037_pub) == PHIC_OK)
				bad++;
		}
		tok[i] = orig;
	}
	check(bad == 0, "jws rfc8037 A.4: every changed character is rejected", "%d accepted", bad);

	/* any flipped bit of the decoded parts: AUTH for payload and signature */
	{
		const char *p0 = rfc8037_a4,
				   *p1 = strchr(p0, '.') + 1,
				   *p2 = dot2 + 1;
		const char *starts[3] = {p0, p1, p2};
		const size_t lens[3] = {(size_t) (p1 - 1 - p0), (size_t) (dot2 - p1), strlen(p2)};

		ok = 1;
		for (int k = 0; k < 3; k++)
			ok = ok && b64url_dec(starts[k], lens[k], part[k], &partlen[k]) == 0;
		check(ok && partlen[0] == 15 && partlen[1] == 26 && partlen[2] == 64,
			  "jws rfc8037 A.4 parts decode", "lengths wrong");
		for (int k = 0; ok && k < 3; k++)
		{
			bad = 0;
			for (size_t b = 0; b < partlen[k] * 8; b++)
			{
				int			m;
				phic_status st;
				char		t[300];

				part[k][b / 8] ^= (uint8_t) (1u << (b % 8));
				for (m = 0; m < 3; m++)
					b64url_enc(part[m], partlen[m], seg[m]);
				snprintf(t, sizeof(t), "%s.%s.%s", seg[0], seg[1], seg[2]);
				st = jws_sig_exact(t, strlen(t), rfc8037_pub);
				if (k == 0 ? st == PHIC_OK : st != PHIC_ERR_AUTH)
					bad++;
				part[k][b / 8] ^= (uint8_t) (1u << (b % 8));
			}
			snprintf(name, sizeof(name), "jws rfc8037 A.4: every flipped bit of the %s is %s",
					 k == 0 ? "header" : k == 1 ? "payload" : "signature",
					 k == 0 ? "rejected" : "an authentication failure");
			check(bad == 0, name, "%d wrong results", bad);
		}
	}
}

static void
test_jws_cases(void)
{
	phic_jws_claims c;
	char		name[200],
				kid[PHIC_JWS_MAX_STR + 1];
	int			not_zeroed = 0,
				bad;

	for (size_t i = 0; i < sizeof(jws_cases) / sizeof(jws_cases[0]); i++)
	{
		const struct jws_case *k = &jws_cases[i];
		phic_status st;

		memset(&c, 0x5a, sizeof(c));
		st = jws_verify_exact(k->token, k->len, jws_pub, JWS_NOW, 30, 3600, &c);
		snprintf(name, sizeof(name), "jws verify: %s", k->name);
		check_status(name, st, k->want);
		if (st != PHIC_OK && !is_zero_claims(&c))
			not_zeroed++;
		/* the other entry points see every case too (ASan, UBSan) */
		(void) jws_sig_exact(k->token, k->len, jws_pub);
		st = jws_kid_exact(k->token, k->len, kid);
		if (st != PHIC_OK && kid[0] != '\0')
			not_zeroed++;
	}
	check(not_zeroed == 0, "jws rejected tokens leave claims zeroed and kid empty",
		  "%d not cleared", not_zeroed);

	/* every proper prefix of a valid token is malformed */
	bad = 0;
	for (size_t n = 0; n < sizeof(jws_valid_full) - 1; n++)
		if (jws_verify_exact(jws_valid_full, n, jws_pub, JWS_NOW, 30, 3600, &c) != PHIC_ERR_FORMAT ||
			jws_kid_exact(jws_valid_full, n, kid) != PHIC_ERR_FORMAT)
			bad++;
	check(bad == 0, "jws every prefix of a valid token is malformed", "%d prefixes not", bad);

	/* random edits of a valid token: never accepted */
	bad = 0;
	for (int t = 0; t < 3000; t++)
	{
		static const char chars[] = "AZaz09-_.=+/ \"{}e";
		char		tok[sizeof(jws_valid_full)];
		size_t		len = sizeof(jws_valid_full) - 1,
					at;

		memcpy(tok, jws_valid_full, sizeof(tok));
		/* mostly the header, where the JSON reader runs before the signature */
		at = prng() % 4 ? prng() % 52 : prng() % len;
		tok[at] = chars[prng() % (sizeof(chars) - 1)];
		if (prng() % 4 == 0)
			len = prng() % len;
		if ((len != sizeof(jws_valid_full) - 1 || tok[at] != jws_valid_full[at]) &&
			jws_verify_exact(tok, len, jws_pub, JWS_NOW, 30, 3600, &c) == PHIC_OK)
			bad++;
		(void) jws_kid_exact(tok, len, kid);
	}
	check(bad == 0, "jws 3000 edited tokens are rejected", "%d accepted", bad);
}

static void
test_jws_claims(void)
{
	phic_jws_claims c;
	char		kid[PHIC_JWS_MAX_STR + 1],
				s255[256];
	phic_status st;
	int			ok;

#define VERIFY(tok, now, leeway, life) \
	jws_verify_exact((tok), sizeof(tok) - 1, jws_pub, (now), (leeway), (life), &c)

	st = VERIFY(jws_valid_full, JWS_NOW, 30, 3600);
	ok = st == PHIC_OK && strcmp(c.sub, "user-42") == 0 && strcmp(c.tenant, "clinic-a") == 0 &&
		c.nroles == 3 && strcmp(c.roles[0], "clinician") == 0 &&
		strcmp(c.roles[1], "auditor") == 0 && strcmp(c.roles[2], "nurse") == 0 &&
		strcmp(c.purpose, "treatment") == 0 && c.exp == JWS_NOW + 600 &&
		c.has_iat && c.iat == JWS_NOW - 10 && c.has_nbf && c.nbf == JWS_NOW - 10;
	check(ok, "jws claims of the full token", "status \"%s\" or claims differ",
		  phic_status_str(st));

	st = VERIFY(jws_valid_min, JWS_NOW, 30, 3600);
	ok = st == PHIC_OK && strcmp(c.sub, "u1") == 0 && strcmp(c.tenant, "t1") == 0 &&
		c.nroles == 0 && c.purpose[0] == '\0' && c.exp == JWS_NOW + 60 &&
		!c.has_iat && !c.has_nbf && c.iat == 0 && c.nbf == 0;
	check(ok, "jws claims of the minimal token", "status \"%s\" or claims differ",
		  phic_status_str(st));

	st = VERIFY(jws_valid_ws, JWS_NOW, 30, 3600);
	ok = st == PHIC_OK && strcmp(c.sub, "u1") == 0 && c.nroles == 2 &&
		strcmp(c.roles[1], "b") == 0 && c.exp == JWS_NOW + 60;
	check(ok, "jws claims with white space", "status \"%s\" or claims differ",
		  phic_status_str(st));

	st = VERIFY(jws_valid_unicode, JWS_NOW, 30, 3600);
	ok = st == PHIC_OK && strcmp(c.sub, "\xc3\xa9l\xc3\xa8ve") == 0 &&
		strcmp(c.tenant, "\xf0\x9f\x98\x80 \xe2\x82\xac") == 0 && c.nroles == 1 &&
		strcmp(c.roles[0], "/r\"q\\") == 0;
	check(ok, "jws claims with escapes decoded to UTF-8", "status \"%s\" or claims differ",
		  phic_status_str(st));

	st = VERIFY(jws_valid_frac, JWS_NOW, 30, 3600);
	check(st == PHIC_OK && c.exp == JWS_NOW + 60 && c.has_iat && c.iat == JWS_NOW,
		  "jws fractional exp and iat round down", "status \"%s\", exp %lld",
		  phic_status_str(st), (long long) c.exp);

	st = VERIFY(jws_valid_roles32, JWS_NOW, 30, 3600);
	check(st == PHIC_OK && c.nroles == 32 && strcmp(c.roles[0], "r0") == 0 &&
		  strcmp(c.roles[31], "r31") == 0, "jws 32 roles in order", "status \"%s\", %d roles",
		  phic_status_str(st), c.nroles);

	memset(s255, 's', 255);
	s255[255] = '\0';
	st = VERIFY(jws_valid_long, JWS_NOW, 30, 3600);
	check(st == PHIC_OK && strcmp(c.sub, s255) == 0 && strlen(c.tenant) == 255 &&
		  strlen(c.roles[0]) == 255 && strlen(c.purpose) == 255,
		  "jws 255-byte claims kept whole", "status \"%s\"", phic_status_str(st));

	/* kid */
	st = jws_kid_exact(jws_valid_full, sizeof(jws_valid_full) - 1, kid);
	check(st == PHIC_OK && strcmp(kid, "k1") == 0, "jws header kid", "status \"%s\", kid \"%s\"",
		  phic_status_str(st), kid);
	memset(s255, 'k', 255);
	st = jws_kid_exact(jws_valid_long, sizeof(jws_valid_long) - 1, kid);
	check(st == PHIC_OK && strcmp(kid, s255) == 0, "jws header kid of 255 bytes",
		  "status \"%s\"", phic_status_str(st));
	check_status("jws header kid missing",
				 jws_kid_exact(jws_kid_missing, sizeof(jws_kid_missing) - 1, kid),
				 PHIC_ERR_FORMAT);
	check_status("jws header kid of 256 bytes",
				 jws_kid_exact(jws_kid_long, sizeof(jws_kid_long) - 1, kid), PHIC_ERR_FORMAT);
	check_status("jws header kid with alg none",
				 jws_kid_exact(jws_alg_none_signed, sizeof(jws_alg_none_signed) - 1, kid),
				 PHIC_ERR_FORMAT);
	/* which malformed headers name another algorithm (for the message) */
	check(phic_jws_header_names_other_alg(jws_alg_none_signed, sizeof(jws_alg_none_signed) - 1) == 1,
		  "jws other alg: none", "expected 1");
	check(phic_jws_header_names_other_alg(jws_alg_hs256_ed, sizeof(jws_alg_hs256_ed) - 1) == 1,
		  "jws other alg: HS256", "expected 1");
	check(phic_jws_header_names_other_alg(jws_alg_lower, sizeof(jws_alg_lower) - 1) == 1,
		  "jws other alg: eddsa", "expected 1");
	check(phic_jws_header_names_other_alg(jws_valid_full, sizeof(jws_valid_full) - 1) == 0,
		  "jws other alg: EdDSA is not other", "expected 0");
	check(phic_jws_header_names_other_alg(jws_kid_missing, sizeof(jws_kid_missing) - 1) == 0,
		  "jws other alg: EdDSA without kid is not other", "expected 0");
	check(phic_jws_header_names_other_alg("a.b.c", 5) == 0,
		  "jws other alg: garbage is not other", "expected 0");
	check(phic_jws_header_names_other_alg(NULL, 5) == 0,
		  "jws other alg: NULL", "expected 0");
	check_status("jws header kid with alg eddsa",
				 jws_kid_exact(jws_alg_lower, sizeof(jws_alg_lower) - 1, kid), PHIC_ERR_FORMAT);
	check_status("jws header kid of a 63-byte signature token",
				 jws_kid_exact(jws_sig_63, sizeof(jws_sig_63) - 1, kid), PHIC_ERR_FORMAT);
	check_status("jws header kid of an overlong token",
				 jws_kid_exact(jws_overlong, sizeof(jws_overlong) - 1, kid), PHIC_ERR_FORMAT);
	check_status("jws header kid ignores the signature's validity",
				 jws_kid_exact(jws_wrong_key, sizeof(jws_wrong_key) - 1, kid), PHIC_OK);
	check_status("jws signature-only check of a kid-less token",
				 jws_sig_exact(jws_kid_missing, sizeof(jws_kid_missing) - 1, jws_pub), PHIC_OK);
	check_status("jws signature-only check, other key",
				 jws_sig_exact(jws_valid_full, sizeof(jws_valid_full) - 1, jws_pub2),
				 PHIC_ERR_AUTH);
	check_status("jws verify with the other key",
				 jws_verify_exact(jws_valid_full, sizeof(jws_valid_full) - 1, jws_pub2,
								  JWS_NOW, 30, 3600, &c), PHIC_ERR_AUTH);
	check_status("jws verify signed by the other key, with it",
				 jws_verify_exact(jws_wrong_key, sizeof(jws_wrong_key) - 1, jws_pub2,
								  JWS_NOW, 30, 3600, &c), PHIC_OK);

	/* time: the full token has exp now+600, iat and nbf now-10 */
	check_status("jws exp == now, no leeway", VERIFY(jws_valid_full, JWS_NOW + 600, 0, 0),
				 PHIC_ERR_EXPIRED);
	check_status("jws exp == now + 1, no leeway", VERIFY(jws_valid_full, JWS_NOW + 599, 0, 0),
				 PHIC_OK);
	check_status("jws nbf == now + 1, no leeway", VERIFY(jws_valid_full, JWS_NOW - 11, 0, 0),
				 PHIC_ERR_NOT_YET_VALID);
	check_status("jws nbf == now, no leeway", VERIFY(jws_valid_full, JWS_NOW - 10, 0, 0),
				 PHIC_OK);
	check_status("jws negative leeway is stricter", VERIFY(jws_valid_full, JWS_NOW, -600, 0),
				 PHIC_ERR_EXPIRED);
	check_status("jws max_lifetime 0 disables the lifetime check",
				 VERIFY(jws_life_long, JWS_NOW, 30, 0), PHIC_OK);
	check_status("jws negative max_lifetime disables the lifetime check",
				 VERIFY(jws_life_iat, JWS_NOW, 30, -1), PHIC_OK);
	check_status("jws exp - iat 610 > max_lifetime 600",
				 VERIFY(jws_valid_full, JWS_NOW, 30, 600), PHIC_ERR_LIFETIME);
	check_status("jws exp - iat 610 == max_lifetime 610",
				 VERIFY(jws_valid_full, JWS_NOW, 30, 610), PHIC_OK);
	check_status("jws exp checked before nbf",
				 VERIFY(jws_valid_full, JWS_NOW + 10000, 0, 1), PHIC_ERR_EXPIRED);
	/* extreme clock values: no overflow (UBSan), sensible answers */
	check_status("jws now INT64_MIN", VERIFY(jws_valid_full, INT64_MIN, 0, 0),
				 PHIC_ERR_NOT_YET_VALID);
	check_status("jws now INT64_MIN, leeway INT64_MAX",
				 VERIFY(jws_valid_full, INT64_MIN, INT64_MAX, INT64_MAX), PHIC_ERR_NOT_YET_VALID);
	check_status("jws now INT64_MAX", VERIFY(jws_valid_full, INT64_MAX, 0, INT64_MAX),
				 PHIC_ERR_EXPIRED);
	check_status("jws now INT64_MAX, leeway INT64_MIN",
				 VERIFY(jws_valid_full, INT64_MAX, INT64_MIN, 0), PHIC_ERR_EXPIRED);
	check_status("jws leeway INT64_MAX", VERIFY(jws_valid_full, JWS_NOW, INT64_MAX, INT64_MAX),
				 PHIC_OK);
	check_status("jws now INT64_MIN, lifetime INT64_MAX",
				 VERIFY(jws_valid_min, INT64_MIN, INT64_MAX, INT64_MAX), PHIC_ERR_LIFETIME);
	check_status("jws now INT64_MIN, leeway and lifetime INT64_MAX, no nbf",
				 VERIFY(jws_valid_min, INT64_MIN + 1, INT64_MAX, 0), PHIC_OK);

	/* arguments */
	check_status("jws NULL token", phic_jws_verify(NULL, 10, jws_pub, JWS_NOW, 30, 3600, &c),
				 PHIC_ERR_FORMAT);
	check_status("jws NULL key", phic_jws_verify(jws_valid_full, sizeof(jws_valid_full) - 1,
												 NULL, JWS_NOW, 30, 3600, &c), PHIC_ERR_FORMAT);
	check_status("jws NULL claims", phic_jws_verify(jws_valid_full, sizeof(jws_valid_full) - 1,
													jws_pub, JWS_NOW, 30, 3600, NULL),
				 PHIC_ERR_FORMAT);
	check_status("jws empty token", VERIFY("", JWS_NOW, 30, 3600), PHIC_ERR_FORMAT);
	check_status("jws kid NULL token", phic_jws_header_kid(NULL, 5, kid), PHIC_ERR_FORMAT);
#undef VERIFY
}

static void
test_jws_pem(void)
{
	static const uint8_t spki_ed25519[12] = {
		0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
	};
	uint8_t		out[32],
				der[44],
				ff[32];
	char		b64[64],
				pem[512],
				name[128];
	phic_status st;
	size_t		n;
	const struct
	{
		const char *name;
		const char *pem;
	}			bad[] = {
		{"RSA", jws_pem_rsa}, {"EC P-256", jws_pem_ec}, {"X25519", jws_pem_x25519},
		{"Ed25519 private key", jws_pem_ed25519_private}, {"garbage", "garbage"},
		{"empty", ""}, {"only BEGIN", "-----BEGIN PUBLIC KEY-----\n"},
		{"empty body", "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"},
		{"bad body", "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA!!!!\n-----END PUBLIC KEY-----\n"},
		{"text before", "key:\n-----BEGIN PUBLIC KEY-----\n"},
	};

	memset(ff, 0xee, sizeof(ff));
	st = pem_exact(jws_pem_ed25519, strlen(jws_pem_ed25519), out);
	check_status("pem Ed25519 SPKI", st, PHIC_OK);
	if (st == PHIC_OK)
		check_bytes("pem Ed25519 SPKI raw key", out, jws_pub, 32);

	/* the RFC 8037 key, wrapped by hand: 12 bytes of SPKI header + x */
	memcpy(der, spki_ed25519, 12);
	memcpy(der + 12, rfc8037_pub, 32);
	phic_b64_encode(der, 44, b64);
	b64[phic_b64_encoded_len(44)] = '\0';
	snprintf(pem, sizeof(pem), "  \r\n-----BEGIN PUBLIC KEY-----\r\n%s\r\n-----END PUBLIC KEY-----\r\n\n \n",
			 b64);
	st = pem_exact(pem, strlen(pem), out);
	check_status("pem RFC 8037 key, CRLF and white space", st, PHIC_OK);
	if (st == PHIC_OK)
		check_bytes("pem RFC 8037 raw key", out, rfc8037_pub, 32);
	/* the same with the X25519 OID */
	der[8] = 0x6e;
	phic_b64_encode(der, 44, b64);
	b64[phic_b64_encoded_len(44)] = '\0';
	snprintf(pem, sizeof(pem), "-----BEGIN PUBLIC KEY-----\n%s\n-----END PUBLIC KEY-----\n", b64);
	memcpy(out, ff, 32);
	check_status("pem X25519 OID", pem_exact(pem, strlen(pem), out), PHIC_ERR_FORMAT);
	check(memcmp(out, ff, 32) == 0, "pem failure leaves out alone", "out written");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
	{
		memcpy(out, ff, 32);
		snprintf(name, sizeof(name), "pem rejects %s", bad[i].name);
		check_status(name, pem_exact(bad[i].pem, strlen(bad[i].pem), out), PHIC_ERR_FORMAT);
		if (memcmp(out, ff, 32) != 0)
			check(0, name, "out written");
	}

	n = strlen(jws_pem_ed25519);
	snprintf(pem, sizeof(pem), "%s%s", jws_pem_ed25519, jws_pem_ed25519);
	check_status("pem rejects two keys", pem_exact(pem, 2 * n, out), PHIC_ERR_FORMAT);
	snprintf(pem, sizeof(pem), "%sx\n", jws_pem_ed25519);
	check_status("pem rejects text after END", pem_exact(pem, n + 2, out), PHIC_ERR_FORMAT);
	check_status("pem rejects a NUL byte", pem_exact(jws_pem_ed25519, n + 1, out),
				 PHIC_ERR_FORMAT);
	check_status("pem rejects a cut key", pem_exact(jws_pem_ed25519, n - 30, out),
				 PHIC_ERR_FORMAT);
	check_status("pem rejects NULL", phic_ed25519_pem_to_raw(NULL, 10, out), PHIC_ERR_FORMAT);
	{
		size_t		big = 9000;
		char	   *p = malloc(big);

		if (p == NULL)
			abort();
		memset(p, '\n', big);
		memcpy(p, jws_pem_ed25519, n);
		check_status("pem rejects more than 8 kB", pem_exact(p, big, out), PHIC_ERR_FORMAT);
		free(p);
	}
	check(ERR_peek_error() == 0, "pem and jws leave no OpenSSL errors queued",
		  "error queue not empty");
}

int
main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);	/* no duplicated output across fork */
	test_status();
	test_secmem();
	test_hexkey();
	test_base64();
	test_aead();
	test_nonce();
	test_ciphertext();
	test_keywrap();
	test_chain();
	test_hmac();
	test_mask();
	test_tokenfmt();
	test_json();
	test_jws_rfc8037();
	test_jws_cases();
	test_jws_claims();
	test_jws_pem();
	printf("%d passed, %d failed\n", n_passed, n_failed);
	return n_failed == 0 ? 0 : 1;
}
