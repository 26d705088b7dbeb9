/*
 * aead.c — AES-256-GCM on reusable OpenSSL 3 contexts.
 *
 * The cipher is fetched once per process (EVP_CIPHER_fetch is a provider
 * lookup, far dearer than encrypting a short field).  Each phic_gcm keeps
 * one encrypt and one decrypt context keyed once; per operation we only
 * re-initialise the nonce.  Lengths are fed to OpenSSL in chunks of at most
 * INT_MAX bytes because its update calls take an int.  The tag is moved with
 * EVP_CIPHER_CTX_{get,set}_params rather than EVP_CIPHER_CTX_ctrl, which in
 * OpenSSL 3 builds the same parameter array at extra cost (~60 ns a call).
 */
#include "aead.h"
#include "secmem.h"

#include <limits.h>
#include <stdlib.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

struct phic_gcm
{
	EVP_CIPHER_CTX *enc;
	EVP_CIPHER_CTX *dec;
};

static EVP_CIPHER *gcm_cipher;

static const EVP_CIPHER *
cipher(void)
{
	if (gcm_cipher == NULL)
		gcm_cipher = EVP_CIPHER_fetch(NULL, "AES-256-GCM", NULL);
	return gcm_cipher;
}

phic_gcm *
phic_gcm_new(const uint8_t key[PHIC_GCM_KEY_LEN])
{
	phic_gcm   *g;
	const EVP_CIPHER *c = cipher();

	if (c == NULL)
		return NULL;
	g = calloc(1, sizeof(*g));
	if (g == NULL)
		return NULL;
	g->enc = EVP_CIPHER_CTX_new();
	g->dec = EVP_CIPHER_CTX_new();
	if (g->enc == NULL || g->dec == NULL ||
		EVP_EncryptInit_ex2(g->enc, c, key, NULL, NULL) != 1 ||
		EVP_DecryptInit_ex2(g->dec, c, key, NULL, NULL) != 1)
	{
		phic_gcm_free(g);
		return NULL;
	}
	return g;
}

void
phic_gcm_free(phic_gcm *g)
{
	if (g == NULL)
		return;
	EVP_CIPHER_CTX_free(g->enc);
	EVP_CIPHER_CTX_free(g->dec);
	free(g);
}

/* Feed associated data (out == NULL) or data through one context. */
static int
update(EVP_CIPHER_CTX *ctx, int enc, uint8_t *out, const uint8_t *in, size_t len)
{
	while (len > 0)
	{
		int			chunk = len > INT_MAX ? INT_MAX : (int) len;
		int			outl;
		int			ok = enc ? EVP_EncryptUpdate(ctx, out, &outl, in, chunk)
			: EVP_DecryptUpdate(ctx, out, &outl, in, chunk);

		if (ok != 1)
			return 0;
		in += chunk;
		if (out)
			out += chunk;
		len -= (size_t) chunk;
	}
	return 1;
}

phic_status
phic_gcm_seal(phic_gcm *g, const uint8_t nonce[PHIC_GCM_NONCE_LEN],
			  phic_bytes aad1, phic_bytes aad2, phic_bytes pt,
			  uint8_t *ct, uint8_t tag[PHIC_GCM_TAG_LEN])
{
	int			outl;
	OSSL_PARAM	params[2] = {
		OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, tag, PHIC_GCM_TAG_LEN),
		OSSL_PARAM_END
	};

	if (EVP_EncryptInit_ex2(g->enc, NULL, NULL, nonce, NULL) != 1 ||
		!update(g->enc, 1, NULL, aad1.ptr, aad1.len) ||
		!update(g->enc, 1, NULL, aad2.ptr, aad2.len) ||
		!update(g->enc, 1, ct, pt.ptr, pt.len) ||
		EVP_EncryptFinal_ex(g->enc, ct + pt.len, &outl) != 1 ||
		EVP_CIPHER_CTX_get_params(g->enc, params) != 1)
		return PHIC_ERR_CRYPTO;
	return PHIC_OK;
}

phic_status
phic_gcm_open(phic_gcm *g, const uint8_t nonce[PHIC_GCM_NONCE_LEN],
			  phic_bytes aad1, phic_bytes aad2, phic_bytes ct,
			  const uint8_t tag[PHIC_GCM_TAG_LEN], uint8_t *pt)
{
	int			outl;
	OSSL_PARAM	params[2] = {
		OSSL_PARAM_octet_string(OSSL_CIPHER_PARAM_AEAD_TAG, (void *) tag,
								PHIC_GCM_TAG_LEN),
		OSSL_PARAM_END
	};

	if (EVP_DecryptInit_ex2(g->dec, NULL, NULL, nonce, NULL) != 1 ||
		!update(g->dec, 0, NULL, aad1.ptr, aad1.len) ||
		!update(g->dec, 0, NULL, aad2.ptr, aad2.len) ||
		!update(g->dec, 0, pt, ct.ptr, ct.len) ||
		EVP_CIPHER_CTX_set_params(g->dec, params) != 1)
	{
		phic_wipe(pt, ct.len);
		return PHIC_ERR_CRYPTO;
	}
	if (EVP_DecryptFinal_ex(g->dec, pt + ct.len, &outl) != 1)
	{
		phic_wipe(pt, ct.len);
		return PHIC_ERR_AUTH;
	}
	return PHIC_OK;
}
