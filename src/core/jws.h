/*
 * jws.h — compact JWS / JWT verification for EdDSA with Ed25519 (RFC 7515,
 * RFC 7519, RFC 8037), the context token of phi_set_context (SPEC §5).
 *
 * A token is accepted only when all of these hold (else PHIC_ERR_FORMAT
 * unless another code is named):
 *  - at most PHIC_JWS_MAX_TOKEN bytes, exactly three parts separated by two
 *    dots, each strict base64url (RFC 4648 §5: alphabet A-Z a-z 0-9 - _, no
 *    '=' padding, no white space, unused trailing bits zero); header and
 *    payload non-empty; the signature exactly 64 bytes (86 characters);
 *  - the header is a JSON object (strict, see json.h: no duplicate member
 *    names, no trailing data, valid UTF-8, bounded depth) whose "alg" is the
 *    string "EdDSA" exactly (so "none", "HS256", "eddsa" are refused), without
 *    "crit", and whose "kid" is a string of 1..PHIC_JWS_MAX_STR bytes; other
 *    header members (typ, ...) are ignored;
 *  - the Ed25519 signature over the ASCII bytes "header.payload" verifies
 *    with the given 32-byte public key (PHIC_ERR_AUTH otherwise);
 *  - only then is the payload read: a JSON object with sub, tenant (strings),
 *    roles (array of at most PHIC_JWS_MAX_ROLES strings), exp (NumericDate),
 *    and optionally purpose, jti, iss (strings), aud (a string or an array
 *    of 1..PHIC_JWS_MAX_AUD strings), iat, nbf (NumericDate).  Every claim
 *    string, role, audience and kid must be 1..PHIC_JWS_MAX_STR bytes
 *    without control characters (C0, DEL, C1), even escaped ones.  A NumericDate is a JSON
 *    number >= 0 without exponent, below 10^15; a fraction is rounded toward
 *    the safe side (exp and iat down, nbf up).  Other claims are ignored,
 *    but must still be well-formed JSON;
 *  - time, in this order, with any int64 now/leeway/max_lifetime and no
 *    overflow: exp <= now - leeway gives PHIC_ERR_EXPIRED; nbf > now + leeway
 *    gives PHIC_ERR_NOT_YET_VALID; when max_lifetime > 0, exp - now >
 *    max_lifetime or (iat present) exp - iat > max_lifetime gives
 *    PHIC_ERR_LIFETIME.
 * PHIC_ERR_CRYPTO means OpenSSL itself failed (not a property of the token).
 *
 * Nothing is allocated except short-lived OpenSSL objects, freed on every
 * path; about 30 kB of stack is used.  Nothing is printed.  OpenSSL errors
 * raised by a rejected token or key are popped from the error queue, so only
 * PHIC_ERR_CRYPTO leaves a reason there.
 */
#ifndef PHIC_JWS_H
#define PHIC_JWS_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

#define PHIC_JWS_MAX_TOKEN 8192		/* bytes of the compact serialization */
#define PHIC_JWS_MAX_STR 255		/* bytes of kid, sub, tenant, purpose, a role */
#define PHIC_JWS_MAX_ROLES 32
#define PHIC_JWS_MAX_AUD 32		/* audiences of an aud array */
#define PHIC_JWS_MAX_JSON_TOKENS 512	/* JSON values + member names per part */
#define PHIC_ED25519_KEY_LEN 32
#define PHIC_ED25519_SIG_LEN 64

typedef struct phic_jws_claims
{
	char		sub[PHIC_JWS_MAX_STR + 1];
	char		tenant[PHIC_JWS_MAX_STR + 1];
	char		purpose[PHIC_JWS_MAX_STR + 1];	/* "" when absent */
	char		jti[PHIC_JWS_MAX_STR + 1];	/* "" when absent */
	char		iss[PHIC_JWS_MAX_STR + 1];	/* "" when absent */
	int			naud;			/* 0 when absent; 1 for a string aud */
	char		aud[PHIC_JWS_MAX_AUD][PHIC_JWS_MAX_STR + 1];	/* token order */
	int			nroles;
	char		roles[PHIC_JWS_MAX_ROLES][PHIC_JWS_MAX_STR + 1];	/* token order */
	int64_t		exp;
	int64_t		iat;			/* valid when has_iat */
	int64_t		nbf;			/* valid when has_nbf */
	int			has_iat;
	int			has_nbf;
} phic_jws_claims;

/*
 * Check the token's structure and header (every rule above up to, not
 * including, the signature) and copy its kid, NUL-terminated, so the caller
 * can find the key.  PHIC_OK or PHIC_ERR_FORMAT (kid is then "").
 */
extern phic_status phic_jws_header_kid(const char *token, size_t len,
									   char kid[PHIC_JWS_MAX_STR + 1]);

/*
 * For error messages only: 1 when the token is well-formed up to a header
 * that parses as a JSON object whose "alg" is missing or not "EdDSA"
 * ("none", "HS256", ...); 0 otherwise.
 */
extern int	phic_jws_header_names_other_alg(const char *token, size_t len);

/*
 * Structure, header and signature only: like phic_jws_verify up to the
 * signature, except that kid is optional and the payload may be any bytes
 * (for RFC 8037 test vectors and tests).  PHIC_OK, PHIC_ERR_FORMAT,
 * PHIC_ERR_AUTH or PHIC_ERR_CRYPTO.
 */
extern phic_status phic_jws_verify_signature(const char *token, size_t len,
											 const uint8_t pubkey[PHIC_ED25519_KEY_LEN]);

/*
 * Full verification (all rules above) with the raw Ed25519 public key.  On
 * PHIC_OK *out holds the claims; on any other status *out is zeroed.  A
 * token whose signature is wrong returns PHIC_ERR_AUTH whatever its payload
 * holds: claims are read only from authenticated payloads.
 */
extern phic_status phic_jws_verify(const char *token, size_t len,
								   const uint8_t pubkey[PHIC_ED25519_KEY_LEN],
								   int64_t now, int64_t leeway, int64_t max_lifetime,
								   phic_jws_claims *out);

/*
 * The raw 32-byte key of a PEM "PUBLIC KEY" (SubjectPublicKeyInfo) holding
 * an Ed25519 key.  The text must start (after white space) with the BEGIN
 * line and hold nothing but white space after the END line.  PHIC_ERR_FORMAT
 * for anything else (RSA, EC, X25519, several keys, garbage, more than 8 kB);
 * PHIC_ERR_CRYPTO when OpenSSL fails.  out is written only on PHIC_OK.
 */
extern phic_status phic_ed25519_pem_to_raw(const char *pem, size_t len,
										   uint8_t out[PHIC_ED25519_KEY_LEN]);

#endif
