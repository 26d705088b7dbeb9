/*
 * fuzz_jws — phic_jws_header_kid, phic_jws_verify_signature and
 * phic_jws_verify (src/core/jws.c), the context token of phi_set_context.
 *
 * Input: byte 0 = flags, byte 1 = clock choice, the rest the body.
 *   flags bit 0 clear: raw mode, the body is the token as given.
 *   flags bit 0 set:   signed mode, the body is header JSON, a NUL byte, and
 *                      payload JSON (an empty header part stands for
 *                      {"alg":"EdDSA","kid":"k1"}); the target base64url-
 *                      encodes both and signs them with a fixed Ed25519 key,
 *                      so the claims and clock checks behind the signature
 *                      are reached.  bit 1: flip a bit of the signature;
 *                      bit 2: verify with another public key.
 *   flags bits 3-5: now = nows[]; byte 1: leeway = leeways[b % 8],
 *   max_lifetime = lifetimes[(b / 8) % 8].
 *
 * Properties (jws.h):
 *  - the results are among the documented codes (never PHIC_ERR_CRYPTO);
 *  - header_kid gives a 1..255-byte kid without control characters on
 *    success and "" on failure;
 *  - the three functions agree: a token whose header fails is refused by
 *    verify with PHIC_ERR_FORMAT; a header that passes with a bad signature
 *    gives PHIC_ERR_AUTH from verify; a token we signed with the right key
 *    verifies (verify_signature PHIC_OK) whenever its header passes;
 *  - claims are read only from authenticated payloads: with a flipped
 *    signature or the other key, verify returns PHIC_ERR_FORMAT or
 *    PHIC_ERR_AUTH only;
 *  - on failure *out is all zero; on success every claim string is
 *    1..255 bytes (purpose may be empty), NUL-terminated, valid UTF-8 without
 *    C0/DEL/C1 characters, nroles in 0..32, dates in [0, 10^15], and the
 *    clock rules hold when recomputed without overflow (__int128).
 */
#include "fuzz_common.h"
#include "jws.h"

#include <string.h>
#include <openssl/evp.h>

#define MAX_DATE 1000000000000000LL

static const int64_t nows[8] = {
	0, 1, 1700000000, MAX_DATE - 1, MAX_DATE, INT64_MAX, INT64_MIN, -1
};
static const int64_t leeways[8] = {0, 60, -60, MAX_DATE, INT64_MAX, INT64_MIN, 1, -1};
static const int64_t lifetimes[8] = {0, 3600, -1, 1, MAX_DATE, INT64_MAX, INT64_MIN, 86400};

static EVP_PKEY *signer;

static int
is_status(phic_status st)
{
	return st == PHIC_OK || st == PHIC_ERR_FORMAT || st == PHIC_ERR_AUTH ||
		st == PHIC_ERR_EXPIRED || st == PHIC_ERR_NOT_YET_VALID ||
		st == PHIC_ERR_LIFETIME;
}

/* A claim-like string: 1..255 bytes (0.. when may_be_empty), no controls. */
static void
check_str(const char *s, int may_be_empty)
{
	size_t		n = strnlen(s, PHIC_JWS_MAX_STR + 1);
	const uint8_t *u = (const uint8_t *) s;

	FUZZ_CHECK(n <= PHIC_JWS_MAX_STR);
	FUZZ_CHECK(n > 0 || may_be_empty);
	FUZZ_CHECK(fuzz_utf8_valid(u, n));
	for (size_t i = 0; i < n; i++)
	{
		FUZZ_CHECK(u[i] >= 0x20 && u[i] != 0x7f);
		FUZZ_CHECK(!(u[i] == 0xc2 && i + 1 < n && u[i + 1] <= 0x9f));
	}
}

static int
all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return 0;
	return 1;
}

/*
 * sig_ok: 1 = the token carries a valid signature under key (when its
 * header is well-formed), 0 = it certainly does not, -1 = unknown.
 */
static void
check_token(const char *tok, size_t len, const uint8_t *key, int sig_ok,
			int64_t now, int64_t leeway, int64_t maxl)
{
	char		kid[PHIC_JWS_MAX_STR + 1];
	phic_jws_claims *c = fuzz_malloc(sizeof(*c));
	phic_status st_kid,
				st_sig,
				st;

	memset(kid, 0xa5, sizeof(kid));
	st_kid = phic_jws_header_kid(tok, len, kid);
	FUZZ_CHECK(st_kid == PHIC_OK || st_kid == PHIC_ERR_FORMAT);
	if (st_kid == PHIC_OK)
		check_str(kid, 0);
	else
		FUZZ_CHECK(kid[0] == '\0');

	/* a header naming another algorithm never yields a kid */
	if (phic_jws_header_names_other_alg(tok, len))
		FUZZ_CHECK(st_kid == PHIC_ERR_FORMAT);

	st_sig = phic_jws_verify_signature(tok, len, key);
	FUZZ_CHECK(st_sig == PHIC_OK || st_sig == PHIC_ERR_FORMAT || st_sig == PHIC_ERR_AUTH);
	if (len > PHIC_JWS_MAX_TOKEN)
		FUZZ_CHECK(st_kid == PHIC_ERR_FORMAT && st_sig == PHIC_ERR_FORMAT);
	if (st_kid == PHIC_OK)
		FUZZ_CHECK(st_sig != PHIC_ERR_FORMAT);
	if (sig_ok == 1 && st_kid == PHIC_OK)
		FUZZ_CHECK(st_sig == PHIC_OK);
	if (sig_ok == 0)
		FUZZ_CHECK(st_sig != PHIC_OK);

	memset(c, 0xa5, sizeof(*c));
	st = phic_jws_verify(tok, len, key, now, leeway, maxl, c);
	FUZZ_CHECK(is_status(st));
	if (st_kid != PHIC_OK)
		FUZZ_CHECK(st == PHIC_ERR_FORMAT);
	else if (st_sig == PHIC_ERR_AUTH)
		FUZZ_CHECK(st == PHIC_ERR_AUTH);
	else
		FUZZ_CHECK(st != PHIC_ERR_AUTH);
	if (sig_ok == 0)
		FUZZ_CHECK(st == PHIC_ERR_FORMAT || st == PHIC_ERR_AUTH);

	if (st != PHIC_OK)
		FUZZ_CHECK(all_zero(c, sizeof(*c)));
	else
	{
		__int128	n = now,
					l = leeway,
					m = maxl;

		check_str(c->sub, 0);
		check_str(c->tenant, 0);
		check_str(c->purpose, 1);
		FUZZ_CHECK(c->nroles >= 0 && c->nroles <= PHIC_JWS_MAX_ROLES);
		for (int i = 0; i < c->nroles; i++)
			check_str(c->roles[i], 0);
		FUZZ_CHECK(c->has_iat == 0 || c->has_iat == 1);
		FUZZ_CHECK(c->has_nbf == 0 || c->has_nbf == 1);
		FUZZ_CHECK(c->exp >= 0 && c->exp < MAX_DATE);
		if (c->has_iat)
			FUZZ_CHECK(c->iat >= 0 && c->iat < MAX_DATE);
		if (c->has_nbf)
			FUZZ_CHECK(c->nbf >= 0 && c->nbf <= MAX_DATE);
		FUZZ_CHECK((__int128) c->exp > n - l);
		if (c->has_nbf)
			FUZZ_CHECK((__int128) c->nbf <= n + l);
		if (maxl > 0)
		{
			FUZZ_CHECK((__int128) c->exp - n <= m);
			if (c->has_iat)
				FUZZ_CHECK((__int128) c->exp - c->iat <= m);
		}
	}
	free(c);
}

static void
signed_mode(const uint8_t *body, size_t blen, int flags, int64_t now,
			int64_t leeway, int64_t maxl)
{
	static const char def_header[] = "{\"alg\":\"EdDSA\",\"kid\":\"k1\"}";
	const uint8_t *h = body,
			   *p,
			   *nul = memchr(body, 0, blen);
	size_t		hlen,
				plen,
				hc,
				pc,
				len,
				siglen = PHIC_ED25519_SIG_LEN;
	uint8_t		sig[PHIC_ED25519_SIG_LEN];
	char	   *tok;
	EVP_MD_CTX *ctx;

	hlen = nul ? (size_t) (nul - body) : blen;
	p = nul ? nul + 1 : body + blen;
	plen = nul ? blen - hlen - 1 : 0;
	if (hlen == 0)
	{
		h = (const uint8_t *) def_header;
		hlen = sizeof(def_header) - 1;
	}
	hc = fuzz_b64url_len(hlen);
	pc = fuzz_b64url_len(plen);
	len = hc + 1 + pc + 1 + fuzz_b64url_len(PHIC_ED25519_SIG_LEN);
	tok = fuzz_malloc(len);
	fuzz_b64url(h, hlen, tok);
	tok[hc] = '.';
	fuzz_b64url(p, plen, tok + hc + 1);
	tok[hc + 1 + pc] = '.';

	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, signer) != 1 ||
		EVP_DigestSign(ctx, sig, &siglen, (const unsigned char *) tok, hc + 1 + pc) != 1 ||
		siglen != PHIC_ED25519_SIG_LEN)
		abort();
	EVP_MD_CTX_free(ctx);
	if (flags & 2)
		sig[flags % PHIC_ED25519_SIG_LEN] ^= 0x10;
	fuzz_b64url(sig, PHIC_ED25519_SIG_LEN, tok + hc + 1 + pc + 1);

	check_token(tok, len, (flags & 4) ? fuzz_ed25519_other_pub : fuzz_ed25519_pub,
				(flags & 6) ? 0 : 1, now, leeway, maxl);
	free(tok);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int			flags;
	int64_t		now,
				leeway,
				maxl;

	if (size < 2)
		return 0;
	if (signer == NULL &&
		(signer = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, fuzz_ed25519_priv,
											   sizeof(fuzz_ed25519_priv))) == NULL)
		abort();
	flags = data[0];
	now = nows[(flags >> 3) & 7];
	leeway = leeways[data[1] % 8];
	maxl = lifetimes[(data[1] / 8) % 8];

	if (flags & 1)
		signed_mode(data + 2, size - 2, flags, now, leeway, maxl);
	else
		check_token((const char *) data + 2, size - 2,
					(flags & 4) ? fuzz_ed25519_other_pub : fuzz_ed25519_pub,
					-1, now, leeway, maxl);
	return 0;
}
