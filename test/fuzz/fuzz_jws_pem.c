/*
 * fuzz_jws_pem — phic_ed25519_pem_to_raw (src/core/jws.c), the PEM public
 * key of a context token issuer.
 *
 * Input: byte 0 = b.
 *   b even: the rest is the PEM text as given.
 *   b odd:  the next 32 bytes are a raw Ed25519 public key; the target
 *           writes it as a PEM "PUBLIC KEY" with OpenSSL, after
 *           (b / 2) % 4 white-space characters, and appends the remaining
 *           input as trailer.
 *
 * Properties (jws.h):
 *  - the result is PHIC_OK or PHIC_ERR_FORMAT (PHIC_ERR_CRYPTO only when
 *    OpenSSL fails, which it must not here);
 *  - out is written only on PHIC_OK (it is pre-filled and checked);
 *  - PHIC_OK only for at most 8 kB of text without NUL that starts, after
 *    white space, with the BEGIN line;
 *  - a well-formed key with a trailer accepts exactly when the trailer is
 *    white space (space, tab, CR, LF) and the whole fits in 8 kB, and then
 *    gives back the raw key.
 */
#include "fuzz_common.h"
#include "jws.h"

#include <string.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#define PEM_MAX 8192
static const char begin[] = "-----BEGIN PUBLIC KEY-----";

static int
ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static phic_status
parse(const char *pem, size_t len, uint8_t out[PHIC_ED25519_KEY_LEN])
{
	phic_status st;
	size_t		i = 0;

	memset(out, 0xa5, PHIC_ED25519_KEY_LEN);
	st = phic_ed25519_pem_to_raw(pem, len, out);
	FUZZ_CHECK(st == PHIC_OK || st == PHIC_ERR_FORMAT);
	if (st != PHIC_OK)
	{
		for (size_t k = 0; k < PHIC_ED25519_KEY_LEN; k++)
			FUZZ_CHECK(out[k] == 0xa5);
		return st;
	}
	FUZZ_CHECK(len > 0 && len <= PEM_MAX);
	FUZZ_CHECK(memchr(pem, 0, len) == NULL);
	while (i < len && ws(pem[i]))
		i++;
	FUZZ_CHECK(len - i >= sizeof(begin) - 1 &&
			   memcmp(pem + i, begin, sizeof(begin) - 1) == 0);
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t		out[PHIC_ED25519_KEY_LEN];

	if (size == 0)
		return 0;
	if (data[0] % 2 == 0)
	{
		parse((const char *) data + 1, size - 1, out);
		return 0;
	}
	if (size < 1 + PHIC_ED25519_KEY_LEN)
		return 0;
	{
		static const char lead[] = " \n\t\r";
		const uint8_t *raw = data + 1;
		const char *trailer = (const char *) data + 1 + PHIC_ED25519_KEY_LEN;
		size_t		tlen = size - 1 - PHIC_ED25519_KEY_LEN,
					nlead = (data[0] / 2) % 4,
					pemlen,
					len;
		EVP_PKEY   *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, raw,
													 PHIC_ED25519_KEY_LEN);
		BIO		   *bio = BIO_new(BIO_s_mem());
		char	   *pemtext,
				   *text;
		int			expect_ok = 1;
		phic_status st;

		if (pk == NULL || bio == NULL || PEM_write_bio_PUBKEY(bio, pk) != 1)
			abort();
		pemlen = (size_t) BIO_get_mem_data(bio, &pemtext);
		len = nlead + pemlen + tlen;
		text = fuzz_malloc(len);
		memcpy(text, lead, nlead);
		memcpy(text + nlead, pemtext, pemlen);
		memcpy(text + nlead + pemlen, trailer, tlen);
		for (size_t k = 0; k < tlen; k++)
			if (!ws(trailer[k]))
				expect_ok = 0;
		if (len > PEM_MAX)
			expect_ok = 0;

		st = parse(text, len, out);
		FUZZ_CHECK(st == (expect_ok ? PHIC_OK : PHIC_ERR_FORMAT));
		if (st == PHIC_OK)
			FUZZ_CHECK(memcmp(out, raw, PHIC_ED25519_KEY_LEN) == 0);
		free(text);
		BIO_free(bio);
		EVP_PKEY_free(pk);
	}
	return 0;
}
