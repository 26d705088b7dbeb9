/*
 * jws.c — EdDSA (Ed25519) compact JWS / JWT verification (see jws.h).
 *
 * Order of work: structure and base64url of all three parts, then the
 * header, then the signature over the original ASCII text, and only for an
 * authentic token the claims and the clock.  Decoded parts live in one
 * stack work area sized for the longest accepted token.
 */
#include "jws.h"
#include "base64.h"
#include "json.h"

#include <string.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define SIG_CHARS 86			/* base64url of 64 bytes, unpadded */
#define RAW_MAX (PHIC_JWS_MAX_TOKEN / 4 * 3 + 2)
#define DATE_DIGITS 15			/* a NumericDate is below 10^15 */
#define PEM_MAX 8192

typedef struct parts
{
	const char *h;
	size_t		hlen;
	const char *p;
	size_t		plen;
	const char *s;
	size_t		slen;
	uint8_t		sig[PHIC_ED25519_SIG_LEN];
} parts;

typedef struct work
{
	uint8_t		raw[RAW_MAX];
	char		strbuf[RAW_MAX + 1];
	phic_json_tok toks[PHIC_JWS_MAX_JSON_TOKENS];
	phic_json_doc doc;
} work;

/* ------------------------------------------------------------ structure */

/* Three non-empty parts, a 64-byte signature, base64url everywhere. */
static int
split(const char *token, size_t len, parts *pt)
{
	const char *d1,
			   *d2;
	size_t		n;

	if (token == NULL || len == 0 || len > PHIC_JWS_MAX_TOKEN)
		return 0;
	if ((d1 = memchr(token, '.', len)) == NULL)
		return 0;
	if ((d2 = memchr(d1 + 1, '.', len - (size_t) (d1 + 1 - token))) == NULL)
		return 0;
	if (memchr(d2 + 1, '.', len - (size_t) (d2 + 1 - token)) != NULL)
		return 0;
	pt->h = token;
	pt->hlen = (size_t) (d1 - token);
	pt->p = d1 + 1;
	pt->plen = (size_t) (d2 - pt->p);
	pt->s = d2 + 1;
	pt->slen = len - (size_t) (pt->s - token);
	if (pt->hlen == 0 || pt->plen == 0 || pt->slen != SIG_CHARS)
		return 0;
	return phic_b64url_decode(pt->s, pt->slen, pt->sig, sizeof(pt->sig), &n) &&
		n == PHIC_ED25519_SIG_LEN &&
		phic_b64url_decode(pt->p, pt->plen, NULL, RAW_MAX, &n);
}

/* Decode one part and read it as a JSON object into w->doc. */
static int
parse_part(work *w, const char *b64, size_t n)
{
	size_t		rawlen;

	return phic_b64url_decode(b64, n, w->raw, sizeof(w->raw), &rawlen) &&
		phic_json_parse(&w->doc, (const char *) w->raw, rawlen, w->toks,
						PHIC_JWS_MAX_JSON_TOKENS, w->strbuf,
						sizeof(w->strbuf)) == PHIC_OK &&
		w->toks[0].type == PHIC_JSON_OBJECT;
}

/*
 * Copy the string at token i (1..PHIC_JWS_MAX_STR bytes, no C0, DEL or C1
 * control character) NUL-terminated into out; 0 when it is anything else.
 */
static int
copy_str(const phic_json_doc *d, int i, char out[PHIC_JWS_MAX_STR + 1])
{
	const unsigned char *s;
	size_t		len;

	if (i < 0 || d->toks[i].type != PHIC_JSON_STRING)
		return 0;
	len = d->toks[i].len;
	if (len == 0 || len > PHIC_JWS_MAX_STR)
		return 0;
	s = (const unsigned char *) phic_json_str(d, i);
	for (size_t k = 0; k < len; k++)
	{
		if (s[k] < 0x20 || s[k] == 0x7F)
			return 0;
		/* U+0080..U+009F are C2 80..C2 9F (the string is valid UTF-8) */
		if (s[k] == 0xC2 && k + 1 < len && s[k + 1] <= 0x9F)
			return 0;
	}
	memcpy(out, s, len);
	out[len] = '\0';
	return 1;
}

#define FIND(d, name) phic_json_find((d), 0, (name), sizeof(name) - 1)

/* Header: alg "EdDSA", no crit, kid a claim-like string (required or not). */
static int
check_header(work *w, const parts *pt, int need_kid, char kid[PHIC_JWS_MAX_STR + 1])
{
	const phic_json_doc *d = &w->doc;
	int			alg,
				k;

	kid[0] = '\0';
	if (!parse_part(w, pt->h, pt->hlen))
		return 0;
	alg = FIND(d, "alg");
	if (alg < 0 || d->toks[alg].type != PHIC_JSON_STRING ||
		d->toks[alg].len != 5 || memcmp(phic_json_str(d, alg), "EdDSA", 5) != 0)
		return 0;
	if (FIND(d, "crit") >= 0)
		return 0;
	k = FIND(d, "kid");
	if (k < 0)
		return !need_kid;
	return copy_str(d, k, kid);
}

/* ------------------------------------------------------------ signature */

static phic_status
ed25519_verify(const uint8_t pub[PHIC_ED25519_KEY_LEN], const char *msg, size_t mlen,
			   const uint8_t sig[PHIC_ED25519_SIG_LEN])
{
	EVP_PKEY   *pk;
	EVP_MD_CTX *ctx = NULL;
	phic_status st = PHIC_ERR_CRYPTO;
	int			rc;

	ERR_set_mark();
	pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, pub, PHIC_ED25519_KEY_LEN);
	if (pk != NULL && (ctx = EVP_MD_CTX_new()) != NULL &&
		EVP_DigestVerifyInit(ctx, NULL, NULL, NULL, pk) == 1)
	{
		rc = EVP_DigestVerify(ctx, sig, PHIC_ED25519_SIG_LEN,
							  (const unsigned char *) msg, mlen);
		st = rc == 1 ? PHIC_OK : PHIC_ERR_AUTH;
	}
	EVP_MD_CTX_free(ctx);
	EVP_PKEY_free(pk);
	if (st == PHIC_ERR_AUTH)
		ERR_pop_to_mark();
	else
		ERR_clear_last_mark();
	return st;
}

/* Structure, header and signature, sharing the caller's work area. */
static phic_status
verify_sig(work *w, const char *token, size_t len,
		   const uint8_t pubkey[PHIC_ED25519_KEY_LEN], int need_kid, parts *pt)
{
	char		kid[PHIC_JWS_MAX_STR + 1];

	if (pubkey == NULL || !split(token, len, pt) || !check_header(w, pt, need_kid, kid))
		return PHIC_ERR_FORMAT;
	return ed25519_verify(pubkey, token, pt->hlen + 1 + pt->plen, pt->sig);
}

/* ------------------------------------------------------------ claims */

/* A NumericDate (see jws.h) at token i, fraction rounded up or down. */
static int
numeric_date(const phic_json_doc *d, int i, int round_up, int64_t *v)
{
	const char *s;
	size_t		n,
				k = 0;
	int64_t		r = 0;
	int			frac = 0;

	if (i < 0 || d->toks[i].type != PHIC_JSON_NUMBER)
		return 0;
	s = d->text + d->toks[i].start;
	n = d->toks[i].len;
	/* the JSON grammar is already checked: digits [. digits] [e ...] */
	for (; k < n && s[k] >= '0' && s[k] <= '9'; k++)
	{
		if (k >= DATE_DIGITS)
			return 0;
		r = r * 10 + (s[k] - '0');
	}
	if (k == 0)
		return 0;				/* a minus sign */
	if (k < n && s[k] == '.')
		for (k++; k < n && s[k] >= '0' && s[k] <= '9'; k++)
			frac |= s[k] != '0';
	if (k != n)
		return 0;				/* an exponent */
	*v = r + (frac && round_up);
	return 1;
}

static int
read_claims(const phic_json_doc *d, phic_jws_claims *c)
{
	int			roles,
				e,
				i,
				k;

	if (!copy_str(d, FIND(d, "sub"), c->sub) ||
		!copy_str(d, FIND(d, "tenant"), c->tenant) ||
		!numeric_date(d, FIND(d, "exp"), 0, &c->exp))
		return 0;
	roles = FIND(d, "roles");
	if (roles < 0 || d->toks[roles].type != PHIC_JSON_ARRAY ||
		d->toks[roles].size > PHIC_JWS_MAX_ROLES)
		return 0;
	for (i = 0, e = roles + 1; i < d->toks[roles].size; i++, e = d->toks[e].end)
		if (!copy_str(d, e, c->roles[i]))
			return 0;
	c->nroles = d->toks[roles].size;
	if ((i = FIND(d, "purpose")) >= 0 && !copy_str(d, i, c->purpose))
		return 0;
	if ((i = FIND(d, "jti")) >= 0 && !copy_str(d, i, c->jti))
		return 0;
	if ((i = FIND(d, "iss")) >= 0 && !copy_str(d, i, c->iss))
		return 0;
	if ((i = FIND(d, "aud")) >= 0)
	{
		if (d->toks[i].type != PHIC_JSON_ARRAY)
		{
			if (!copy_str(d, i, c->aud[0]))
				return 0;
			c->naud = 1;
		}
		else
		{
			if (d->toks[i].size < 1 || d->toks[i].size > PHIC_JWS_MAX_AUD)
				return 0;
			for (k = 0, e = i + 1; k < d->toks[i].size; k++, e = d->toks[e].end)
				if (!copy_str(d, e, c->aud[k]))
					return 0;
			c->naud = d->toks[i].size;
		}
	}
	if ((i = FIND(d, "iat")) >= 0)
	{
		if (!numeric_date(d, i, 0, &c->iat))
			return 0;
		c->has_iat = 1;
	}
	if ((i = FIND(d, "nbf")) >= 0)
	{
		if (!numeric_date(d, i, 1, &c->nbf))
			return 0;
		c->has_nbf = 1;
	}
	return 1;
}

static int64_t
sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	if (b < 0 && a < INT64_MIN - b)
		return INT64_MIN;
	return a + b;
}

static int64_t
sat_sub(int64_t a, int64_t b)
{
	if (b < 0 && a > INT64_MAX + b)
		return INT64_MAX;
	if (b > 0 && a < INT64_MIN + b)
		return INT64_MIN;
	return a - b;
}

/*
 * Claims dates lie in [0, 10^15], so saturating now +- leeway never changes
 * a comparison with them.
 */
static phic_status
check_time(const phic_jws_claims *c, int64_t now, int64_t leeway, int64_t max_lifetime)
{
	if (c->exp <= sat_sub(now, leeway))
		return PHIC_ERR_EXPIRED;
	if (c->has_nbf && c->nbf > sat_add(now, leeway))
		return PHIC_ERR_NOT_YET_VALID;
	if (max_lifetime > 0)
	{
		if (c->exp > sat_add(now, max_lifetime))
			return PHIC_ERR_LIFETIME;
		if (c->has_iat && c->exp - c->iat > max_lifetime)
			return PHIC_ERR_LIFETIME;
	}
	return PHIC_OK;
}

/* ------------------------------------------------------------ public */

phic_status
phic_jws_header_kid(const char *token, size_t len, char kid[PHIC_JWS_MAX_STR + 1])
{
	work		w;
	parts		pt;

	if (kid == NULL)
		return PHIC_ERR_FORMAT;
	kid[0] = '\0';
	if (!split(token, len, &pt) || !check_header(&w, &pt, 1, kid))
	{
		kid[0] = '\0';
		return PHIC_ERR_FORMAT;
	}
	return PHIC_OK;
}

int
phic_jws_header_names_other_alg(const char *token, size_t len)
{
	work		w;
	parts		pt;
	int			alg;

	if (!split(token, len, &pt) || !parse_part(&w, pt.h, pt.hlen))
		return 0;
	alg = FIND(&w.doc, "alg");
	return alg < 0 || w.doc.toks[alg].type != PHIC_JSON_STRING ||
		w.doc.toks[alg].len != 5 || memcmp(phic_json_str(&w.doc, alg), "EdDSA", 5) != 0;
}

phic_status
phic_jws_verify_signature(const char *token, size_t len,
						  const uint8_t pubkey[PHIC_ED25519_KEY_LEN])
{
	work		w;
	parts		pt;

	return verify_sig(&w, token, len, pubkey, 0, &pt);
}

phic_status
phic_jws_verify(const char *token, size_t len, const uint8_t pubkey[PHIC_ED25519_KEY_LEN],
				int64_t now, int64_t leeway, int64_t max_lifetime, phic_jws_claims *out)
{
	work		w;
	parts		pt;
	phic_status st;

	if (out == NULL)
		return PHIC_ERR_FORMAT;
	memset(out, 0, sizeof(*out));
	st = verify_sig(&w, token, len, pubkey, 1, &pt);
	if (st == PHIC_OK)
		st = parse_part(&w, pt.p, pt.plen) && read_claims(&w.doc, out)
			? check_time(out, now, leeway, max_lifetime) : PHIC_ERR_FORMAT;
	if (st != PHIC_OK)
		memset(out, 0, sizeof(*out));
	return st;
}

/* ------------------------------------------------------------ PEM */

/* Public keys carry no passphrase: never prompt for one. */
static int
no_password(char *buf, int size, int rwflag, void *u)
{
	(void) buf;
	(void) size;
	(void) rwflag;
	(void) u;
	return -1;
}

static int
only_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return 0;
	return 1;
}

phic_status
phic_ed25519_pem_to_raw(const char *pem, size_t len, uint8_t out[PHIC_ED25519_KEY_LEN])
{
	static const char begin[] = "-----BEGIN PUBLIC KEY-----";
	uint8_t		raw[PHIC_ED25519_KEY_LEN];
	size_t		rawlen = sizeof(raw),
				i = 0;
	BIO		   *bio;
	EVP_PKEY   *pk = NULL;
	phic_status st = PHIC_ERR_FORMAT;
	char		rest[256];
	int			r;

	if (pem == NULL || out == NULL || len == 0 || len > PEM_MAX ||
		memchr(pem, '\0', len) != NULL)
		return PHIC_ERR_FORMAT;
	while (i < len && only_space(pem + i, 1))
		i++;
	if (len - i < sizeof(begin) - 1 || memcmp(pem + i, begin, sizeof(begin) - 1) != 0)
		return PHIC_ERR_FORMAT;

	ERR_set_mark();
	/* from the BEGIN line: OpenSSL wants it at the start of a line */
	if ((bio = BIO_new_mem_buf(pem + i, (int) (len - i))) == NULL)
	{
		ERR_clear_last_mark();
		return PHIC_ERR_CRYPTO;
	}
	pk = PEM_read_bio_PUBKEY(bio, NULL, no_password, NULL);
	if (pk != NULL && EVP_PKEY_get_id(pk) == EVP_PKEY_ED25519 &&
		EVP_PKEY_get_raw_public_key(pk, raw, &rawlen) == 1 &&
		rawlen == PHIC_ED25519_KEY_LEN)
	{
		st = PHIC_OK;
		/* nothing but white space may follow the END line */
		while (st == PHIC_OK && (r = BIO_read(bio, rest, sizeof(rest))) > 0)
			if (!only_space(rest, (size_t) r))
				st = PHIC_ERR_FORMAT;
	}
	EVP_PKEY_free(pk);
	BIO_free(bio);
	ERR_pop_to_mark();
	if (st == PHIC_OK)
		memcpy(out, raw, sizeof(raw));
	return st;
}
