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

#include "aead.h"
#include "base64.h"
#include "chain.h"
#include "ciphertext.h"
#include "hexkey.h"
#include "hmac.h"
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
		PHIC_ERR_RANDOM, PHIC_ERR_NOMEM,
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
	printf("%d passed, %d failed\n", n_passed, n_failed);
	return n_failed == 0 ? 0 : 1;
}
