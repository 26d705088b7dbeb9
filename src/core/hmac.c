/*
 * hmac.c — HMAC-SHA256 (RFC 2104) on precomputed pad states (hmac.h).
 */
#include "hmac.h"
#include "secmem.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/evp.h>

#define BLOCK 64

struct phic_hmac
{
	EVP_MD_CTX *inner;			/* absorbed key ^ ipad */
	EVP_MD_CTX *outer;			/* absorbed key ^ opad */
	EVP_MD_CTX *work;
};

static EVP_MD *sha256;

phic_hmac *
phic_hmac_new(const uint8_t *key, size_t keylen)
{
	uint8_t		k[BLOCK] = {0},
				pad[BLOCK];
	phic_hmac  *h;
	int			ok;

	if (sha256 == NULL && (sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		return NULL;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		return NULL;
	if (keylen > BLOCK)
	{
		if (EVP_Digest(key, keylen, k, NULL, sha256, NULL) != 1)
		{
			free(h);
			return NULL;
		}
	}
	else
		memcpy(k, key, keylen);
	h->inner = EVP_MD_CTX_new();
	h->outer = EVP_MD_CTX_new();
	h->work = EVP_MD_CTX_new();
	ok = h->inner && h->outer && h->work;
	for (int i = 0; ok && i < BLOCK; i++)
		pad[i] = k[i] ^ 0x36;
	ok = ok && EVP_DigestInit_ex2(h->inner, sha256, NULL) == 1 &&
		EVP_DigestUpdate(h->inner, pad, BLOCK) == 1;
	for (int i = 0; ok && i < BLOCK; i++)
		pad[i] = k[i] ^ 0x5c;
	ok = ok && EVP_DigestInit_ex2(h->outer, sha256, NULL) == 1 &&
		EVP_DigestUpdate(h->outer, pad, BLOCK) == 1;
	phic_wipe(k, sizeof(k));
	phic_wipe(pad, sizeof(pad));
	if (!ok)
	{
		phic_hmac_free(h);
		return NULL;
	}
	return h;
}

void
phic_hmac_free(phic_hmac *h)
{
	if (h == NULL)
		return;
	EVP_MD_CTX_free(h->inner);
	EVP_MD_CTX_free(h->outer);
	EVP_MD_CTX_free(h->work);
	free(h);
}

phic_status
phic_hmac3(phic_hmac *h, const void *a, size_t alen, const void *b, size_t blen,
		   const void *c, size_t clen, uint8_t out[PHIC_HMAC_LEN])
{
	uint8_t		ih[PHIC_HMAC_LEN];
	int			ok;

	ok = EVP_MD_CTX_copy_ex(h->work, h->inner) == 1 &&
		(a == NULL || EVP_DigestUpdate(h->work, a, alen) == 1) &&
		(b == NULL || EVP_DigestUpdate(h->work, b, blen) == 1) &&
		(c == NULL || EVP_DigestUpdate(h->work, c, clen) == 1) &&
		EVP_DigestFinal_ex(h->work, ih, NULL) == 1 &&
		EVP_MD_CTX_copy_ex(h->work, h->outer) == 1 &&
		EVP_DigestUpdate(h->work, ih, sizeof(ih)) == 1 &&
		EVP_DigestFinal_ex(h->work, out, NULL) == 1;
	return ok ? PHIC_OK : PHIC_ERR_CRYPTO;
}

uint64_t
phic_mac_bits(const uint8_t mac[PHIC_HMAC_LEN], int bits)
{
	uint64_t	v = 0;

	for (int i = 0; i < 8; i++)
		v = (v << 8) | mac[i];
	if (bits <= 0)
		return 0;
	return bits >= 64 ? v : v >> (64 - bits);
}
