/*
 * chain.c — SHA-256 for entry and block hashes (chain.h).  The digest is
 * fetched once per process: EVP_MD_fetch is a provider lookup that would
 * otherwise dominate hashing of short records.  Pairs of inputs go to
 * sha256x2.c when the CPU has the SHA extensions.
 */
#include "chain.h"

#include <openssl/evp.h>

#include "sha256x2.h"

static EVP_MD *sha256_md;

static const EVP_MD *
md(void)
{
	if (sha256_md == NULL)
		sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
	return sha256_md;
}

/* one context, reused: a fresh one per call costs more than hashing a record */
phic_status
phic_sha256(const void *data, size_t n, uint8_t out[PHIC_HASH_LEN])
{
	static EVP_MD_CTX *ctx;
	const EVP_MD *m = md();

	if (m == NULL || (ctx == NULL && (ctx = EVP_MD_CTX_new()) == NULL) ||
		EVP_DigestInit_ex2(ctx, m, NULL) != 1 ||
		EVP_DigestUpdate(ctx, data, n) != 1 ||
		EVP_DigestFinal_ex(ctx, out, NULL) != 1)
		return PHIC_ERR_CRYPTO;
	return PHIC_OK;
}

phic_status
phic_sha256_pair(const void *d0, size_t n0, uint8_t out0[PHIC_HASH_LEN],
				 const void *d1, size_t n1, uint8_t out1[PHIC_HASH_LEN])
{
#ifdef PHIC_SHA256X2
	if (phic_sha256x2_available())
	{
		phic_sha256x2(d0, n0, out0, d1, n1, out1);
		return PHIC_OK;
	}
#endif
	if (phic_sha256(d0, n0, out0) != PHIC_OK)
		return PHIC_ERR_CRYPTO;
	return phic_sha256(d1, n1, out1);
}

static void
put_u64_be(uint8_t *p, uint64_t v)
{
	int			i;

	for (i = 7; i >= 0; i--)
	{
		p[i] = (uint8_t) v;
		v >>= 8;
	}
}

phic_status
phic_block_hash(const uint8_t prev_hash[PHIC_HASH_LEN], uint64_t block_no,
				uint64_t n, const uint8_t *entry_hashes,
				uint8_t out[PHIC_HASH_LEN])
{
	const EVP_MD *m = md();
	EVP_MD_CTX *ctx;
	uint8_t		counts[16];
	int			ok;

	if (m == NULL || (ctx = EVP_MD_CTX_new()) == NULL)
		return PHIC_ERR_CRYPTO;
	put_u64_be(counts, block_no);
	put_u64_be(counts + 8, n);
	ok = EVP_DigestInit_ex2(ctx, m, NULL) == 1 &&
		EVP_DigestUpdate(ctx, prev_hash, PHIC_HASH_LEN) == 1 &&
		EVP_DigestUpdate(ctx, counts, sizeof(counts)) == 1 &&
		(n == 0 || EVP_DigestUpdate(ctx, entry_hashes, (size_t) n * PHIC_HASH_LEN) == 1) &&
		EVP_DigestFinal_ex(ctx, out, NULL) == 1;
	EVP_MD_CTX_free(ctx);
	return ok ? PHIC_OK : PHIC_ERR_CRYPTO;
}
