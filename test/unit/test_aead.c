/*
 * test_aead.c — unit tests of src/core/aead (AES-256-GCM seal and open):
 * the AES-256 vectors of McGrew & Viega (test cases 13-16), the aad given in
 * one piece, split in two or only as its second part, in-place operation,
 * one flipped bit of tag, ciphertext or aad (AUTH, output wiped), a wrong
 * key, and a context reused after failures.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "aead.h"

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

void
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
