/*
 * test_jws.c — unit tests of src/core/jws (compact JWS / JWT with EdDSA, the
 * context token of SPEC §5): the RFC 8037 appendix A vectors, every changed
 * character and flipped bit rejected, the generated cases of jws_vectors.h
 * (claims, times, algorithms, JSON syntax, sizes) with their expected
 * status, every prefix and random edits of a valid token, the claims read
 * back, and Ed25519 public keys in PEM (SPKI) form.
 *
 * The RFC 8037 vectors were checked with Python's `cryptography` (the public
 * key x derived from d, the A.4 signature verifies and re-signing
 * reproduces it).  The other tokens and keys come from make_jws_vectors.py
 * (deterministic; see its header), which writes jws_vectors.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/evp.h>

#include "harness.h"
#include "base64.h"
#include "jws.h"
#include "jws_vectors.h"

/* RFC 8037 appendix A: the private key d (A.1), the public key x (A.2) and
 * the signed example (A.4) */
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

	/* jti, iss, aud: kept for the audit's request_id and the settings' checks */
	st = VERIFY(jws_valid_ids, JWS_NOW, 30, 3600);
	check(st == PHIC_OK && strcmp(c.jti, "req-7f3a") == 0 &&
		  strcmp(c.iss, "https://idp.example") == 0 && c.naud == 1 &&
		  strcmp(c.aud[0], "phi-db") == 0, "jws jti, iss and a string aud",
		  "status \"%s\" or claims differ", phic_status_str(st));
	st = VERIFY(jws_valid_aud_list, JWS_NOW, 30, 3600);
	check(st == PHIC_OK && c.naud == 32 && strcmp(c.aud[0], "a0") == 0 &&
		  strcmp(c.aud[31], "phi-db") == 0 && strlen(c.jti) == 255 && c.iss[0] == '\0',
		  "jws aud array in order, 255-byte jti", "status \"%s\", %d audiences",
		  phic_status_str(st), c.naud);
	st = VERIFY(jws_valid_min, JWS_NOW, 30, 3600);
	check(st == PHIC_OK && c.jti[0] == '\0' && c.iss[0] == '\0' && c.naud == 0,
		  "jws no jti, iss or aud", "status \"%s\" or claims differ", phic_status_str(st));

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

void
test_jws(void)
{
	test_jws_rfc8037();
	test_jws_cases();
	test_jws_claims();
	test_jws_pem();
}
