/*
 * mkseeds — write the generated seeds: for fuzz_ciphertext and
 * fuzz_text_form, values sealed with phic_ct_seal under the fixed fuzz key
 * (fuzz_common.h) and near-misses derived from them; for fuzz_jws, tokens
 * signed with the fixed Ed25519 key; for fuzz_jws_pem, PEM keys written by
 * OpenSSL.  Run by "make seeds"; the result is committed, so only run it
 * when a format changes (nonces and generated keys are random, so every run
 * writes different bytes).
 *
 *   ./mkseeds corpus
 */
#include "fuzz_common.h"
#include "base64.h"
#include "ciphertext.h"

#include <stdio.h>
#include <string.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

static const char *dir;

static void
write_file(const char *target, const char *name, const void *p, size_t n)
{
	char		path[512];
	FILE	   *f;

	snprintf(path, sizeof(path), "%s/%s/%s", dir, target, name);
	f = fopen(path, "wb");
	if (f == NULL || fwrite(p, 1, n, f) != n || fclose(f) != 0)
	{
		perror(path);
		exit(1);
	}
}

/* fuzz_ciphertext input: control byte (aad length), aad, raw value */
static void
ct_seed(const char *name, const uint8_t *aad, size_t aadlen, const uint8_t *raw, size_t len)
{
	uint8_t		buf[1 + 63 + 256];

	if (aadlen > 63 || len > 256)
		abort();
	buf[0] = (uint8_t) aadlen;
	if (aadlen > 0)
		memcpy(buf + 1, aad, aadlen);
	memcpy(buf + 1 + aadlen, raw, len);
	write_file("fuzz_ciphertext", name, buf, 1 + aadlen + len);
}

/* fuzz_text_form input: the text as given to phi_guard_ciphertext_in */
static void
text_seed(const char *name, const char *prefix, const uint8_t *raw, size_t len, const char *suffix)
{
	char		buf[16 + 4 * 256 / 3 + 16 + 16];
	size_t		p = strlen(prefix),
				e = phic_b64_encoded_len(len);

	if (len > 256 || strlen(suffix) > 15)
		abort();
	memcpy(buf, prefix, p);
	phic_b64_encode(raw, len, buf + p);
	strcpy(buf + p + e, suffix);
	write_file("fuzz_text_form", name, buf, strlen(buf));
}

static size_t
seal(phic_gcm *g, uint32_t key_id, int bytea, const char *aad, const char *pt,
	 size_t ptlen, uint8_t *out)
{
	phic_bytes	a = {(const uint8_t *) aad, aad ? strlen(aad) : 0};
	phic_bytes	p = {(const uint8_t *) pt, ptlen};

	if (phic_ct_seal(g, key_id, bytea, a, p, out) != PHIC_OK)
		abort();
	return phic_ct_size(ptlen);
}

/* ------------------------------------------------------------ JWS */

static EVP_PKEY *signer;

/* header.payload.signature, signed with the fixed key (flip: corrupt it) */
static size_t
make_token(const char *header, const char *payload, int flip, char *out)
{
	size_t		hc = fuzz_b64url((const uint8_t *) header, strlen(header), out),
				pc,
				siglen = 64;
	uint8_t		sig[64];
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	out[hc] = '.';
	pc = fuzz_b64url((const uint8_t *) payload, strlen(payload), out + hc + 1);
	out[hc + 1 + pc] = '.';
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, signer) != 1 ||
		EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *) out, hc + 1 + pc) != 1)
		abort();
	EVP_MD_CTX_free(ctx);
	if (flip)
		sig[10] ^= 1;
	return hc + 1 + pc + 1 + fuzz_b64url(sig, 64, out + hc + 1 + pc + 1);
}

/*
 * fuzz_jws input: flags, clock byte, body.  flags 16 = raw mode with
 * now = 1700000000; clock byte 57 = leeway 60, max lifetime 86400.
 */
#define JWS_RAW 16
#define JWS_SIGNED (16 | 1)
#define JWS_CLOCK 57

static void
jws_raw(const char *name, const char *header, const char *payload, int flip,
		const char *suffix)
{
	char		buf[2048];
	size_t		n;

	buf[0] = JWS_RAW;
	buf[1] = JWS_CLOCK;
	n = 2 + make_token(header, payload, flip, buf + 2);
	if (suffix != NULL)
	{
		memcpy(buf + n, suffix, strlen(suffix));
		n += strlen(suffix);
	}
	write_file("fuzz_jws", name, buf, n);
}

static void
jws_signed(const char *name, int flags, const char *header, const char *payload)
{
	char		buf[2048];
	size_t		h = strlen(header),
				p = strlen(payload);

	buf[0] = (char) flags;
	buf[1] = JWS_CLOCK;
	memcpy(buf + 2, header, h);
	buf[2 + h] = '\0';
	memcpy(buf + 3 + h, payload, p);
	write_file("fuzz_jws", name, buf, 3 + h + p);
}

static void
jws_seeds(void)
{
	static const char hdr[] = "{\"alg\":\"EdDSA\",\"kid\":\"k1\",\"typ\":\"JWT\"}";
	static const char claims[] =
	"{\"sub\":\"u-42\",\"tenant\":\"t-1\",\"roles\":[\"clinician\",\"auditor\"],"
	"\"purpose\":\"treatment\",\"iat\":1700000000,\"nbf\":1699999990,\"exp\":1700003600}";

	signer = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, fuzz_ed25519_priv, 32);
	if (signer == NULL)
		abort();
	jws_raw("raw_valid", hdr, claims, 0, NULL);
	jws_raw("raw_expired", hdr,
			"{\"sub\":\"u\",\"tenant\":\"t\",\"roles\":[],\"exp\":1600000000}", 0, NULL);
	jws_raw("raw_not_yet_valid", hdr,
			"{\"sub\":\"u\",\"tenant\":\"t\",\"roles\":[],\"nbf\":1700009999.5,\"exp\":1700010000}", 0, NULL);
	jws_raw("raw_bad_signature", hdr, claims, 1, NULL);
	jws_raw("raw_alg_none", "{\"alg\":\"none\",\"kid\":\"k1\"}", claims, 0, NULL);
	jws_raw("raw_no_kid", "{\"alg\":\"EdDSA\"}", claims, 0, NULL);
	jws_raw("raw_padding", hdr, claims, 0, "==");

	jws_signed("signed_default_header", JWS_SIGNED, "", claims);
	jws_signed("signed_escapes", JWS_SIGNED, hdr,
			   "{\"sub\":\"\\u00e9l\\u00e8ve\",\"tenant\":\"t\\/1\",\"roles\":[\"\\ud83d\\ude00\"],"
			   "\"exp\":1700003600.25,\"iat\":1.7e9}");
	jws_signed("signed_c1_control", JWS_SIGNED, hdr,
			   "{\"sub\":\"a\\u0085b\",\"tenant\":\"t\",\"roles\":[],\"exp\":1700003600}");
	jws_signed("signed_duplicate_exp", JWS_SIGNED, hdr,
			   "{\"sub\":\"u\",\"tenant\":\"t\",\"roles\":[],\"exp\":1700003600,\"\\u0065xp\":1}");
	jws_signed("signed_flipped", JWS_SIGNED | 2, "", claims);
	jws_signed("signed_other_key", JWS_SIGNED | 4, "", claims);
	EVP_PKEY_free(signer);
}

/* ------------------------------------------------------------ PEM */

static size_t
pem_of(EVP_PKEY *pk, char *out, size_t cap)
{
	BIO		   *bio = BIO_new(BIO_s_mem());
	char	   *p;
	long		n;

	if (bio == NULL || PEM_write_bio_PUBKEY(bio, pk) != 1)
		abort();
	n = BIO_get_mem_data(bio, &p);
	if (n <= 0 || (size_t) n > cap)
		abort();
	memcpy(out, p, (size_t) n);
	BIO_free(bio);
	return (size_t) n;
}

/* fuzz_jws_pem input, text mode: byte 0 even, then the text */
static void
pem_text(const char *name, const char *lead, EVP_PKEY *a, EVP_PKEY *b, const char *trail)
{
	char		buf[4096];
	size_t		n = 1;

	buf[0] = 0;
	memcpy(buf + n, lead, strlen(lead));
	n += strlen(lead);
	n += pem_of(a, buf + n, sizeof(buf) - n - 64);
	if (b != NULL)
		n += pem_of(b, buf + n, sizeof(buf) - n - 64);
	memcpy(buf + n, trail, strlen(trail));
	n += strlen(trail);
	write_file("fuzz_jws_pem", name, buf, n);
}

static void
pem_seeds(void)
{
	EVP_PKEY   *ed = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, fuzz_ed25519_pub, 32);
	EVP_PKEY   *x = EVP_PKEY_Q_keygen(NULL, NULL, "X25519");
	EVP_PKEY   *ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	uint8_t		buf[1 + 32 + 8];

	if (ed == NULL || x == NULL || ec == NULL)
		abort();
	pem_text("text_valid", "", ed, NULL, "");
	pem_text("text_valid_spaces", " \n", ed, NULL, "\r\n\t ");
	pem_text("text_trailing_garbage", "", ed, NULL, "x");
	pem_text("text_two_keys", "", ed, ed, "");
	pem_text("text_x25519", "", x, NULL, "");
	pem_text("text_ec_p256", "", ec, NULL, "");
	/* constructed mode: byte 0 odd, raw key, trailer */
	buf[0] = 1;
	memcpy(buf + 1, fuzz_ed25519_pub, 32);
	memcpy(buf + 33, "\n \t\r", 4);
	write_file("fuzz_jws_pem", "built_ws_trailer", buf, 37);
	/* " -----BEGIN PUBLIC KEY-----": white space before the BEGIN line */
	buf[0] = 1 + 2 * 1;
	write_file("fuzz_jws_pem", "built_leading_space", buf, 33);
	buf[0] = 1;
	memcpy(buf + 33, "-----EN", 7);
	write_file("fuzz_jws_pem", "built_bad_trailer", buf, 40);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(x);
	EVP_PKEY_free(ec);
}

int
main(int argc, char **argv)
{
	phic_gcm   *g;
	uint8_t		v[256],
				m[256];
	size_t		n;
	static const char bin[] = {0x00, 0x01, (char) 0xff, (char) 0x80, 0x7f};

	if (argc != 2)
	{
		fprintf(stderr, "usage: mkseeds CORPUS_DIR\n");
		return 2;
	}
	dir = argv[1];
	g = phic_gcm_new(fuzz_key);
	if (g == NULL)
		abort();

	/* valid values, no aad */
	n = seal(g, 1, 0, NULL, "", 0, v);
	ct_seed("valid_empty", NULL, 0, v, n);
	text_seed("valid_empty", "phi1:", v, n, "");
	n = seal(g, 1, 0, NULL, "123-45-6789", 11, v);
	ct_seed("valid_ssn", NULL, 0, v, n);
	text_seed("valid_ssn", "phi1:", v, n, "");
	n = seal(g, 0x01020304, 0, NULL, "jane.doe@example.org", 20, v);
	ct_seed("valid_email_keyid", NULL, 0, v, n);
	n = seal(g, 7, 1, NULL, bin, sizeof(bin), v);
	ct_seed("valid_bytea", NULL, 0, v, n);

	/* valid values with aad (the aad slice of the input must match) */
	n = seal(g, 2, 0, "patients.ssn", "078-05-1120", 11, v);
	ct_seed("valid_aad", (const uint8_t *) "patients.ssn", 12, v, n);
	text_seed("valid_aad", "phi1:", v, n, "");
	n = seal(g, 2, 0, "", "x", 1, v);
	ct_seed("valid_empty_aad", (const uint8_t *) "", 0, v, n);

	/* near-misses: parse but do not authenticate */
	n = seal(g, 2, 0, "patients.ssn", "078-05-1120", 11, v);
	ct_seed("wrong_aad", (const uint8_t *) "patients.dob", 12, v, n);
	memcpy(m, v, n);
	m[n - 1] ^= 1;
	ct_seed("tag_flipped", NULL, 0, m, n);
	memcpy(m, v, n);
	m[7] ^= 1;
	ct_seed("keyid_changed", (const uint8_t *) "patients.ssn", 12, m, n);
	memset(m, 0, PHIC_CT_OVERHEAD);
	m[0] = PHIC_CT_VERSION;
	m[1] = PHIC_CT_ALG_AES256GCM;
	ct_seed("minimal_36", NULL, 0, m, PHIC_CT_OVERHEAD);

	/* near-misses: do not parse */
	n = seal(g, 1, 0, NULL, "123-45-6789", 11, v);
	memcpy(m, v, n);
	m[0] = 2;
	ct_seed("bad_version", NULL, 0, m, n);
	text_seed("bad_version", "phi1:", m, n, "");
	memcpy(m, v, n);
	m[2] = 4;
	ct_seed("unknown_flag", NULL, 0, m, n);
	memcpy(m, v, n);
	m[3] = 1;
	ct_seed("reserved_set", NULL, 0, m, n);
	ct_seed("short_35", NULL, 0, v, PHIC_CT_OVERHEAD - 1);
	text_seed("short_35", "phi1:", v, PHIC_CT_OVERHEAD - 1, "");

	/* text form near-misses */
	text_seed("upper_prefix", "PHI1:", v, n, "");
	text_seed("trailing_newline", "phi1:", v, n, "\n");
	text_seed("trailing_pad", "phi1:", v, n, "====");
	text_seed("prefix_only", "phi1:", v, 0, "");

	phic_gcm_free(g);

	jws_seeds();
	pem_seeds();
	return 0;
}
