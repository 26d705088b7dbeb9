/*
 * keywrap.c — envelope wrapping of data keys (keywrap.h).  Rare operations:
 * each call keys a throw-away context and frees it (OpenSSL wipes the key
 * schedule on free).
 */
#include "keywrap.h"
#include "aead.h"
#include "nonce.h"

#define WRAP_AD_PREFIX "phi_guard.dek.v1"
#define WRAP_AD_PREFIX_LEN 16

static void
wrap_ad(uint32_t key_id, uint8_t ad[WRAP_AD_PREFIX_LEN + 4])
{
	int			i;

	for (i = 0; i < WRAP_AD_PREFIX_LEN; i++)
		ad[i] = (uint8_t) WRAP_AD_PREFIX[i];
	ad[16] = (uint8_t) (key_id >> 24);
	ad[17] = (uint8_t) (key_id >> 16);
	ad[18] = (uint8_t) (key_id >> 8);
	ad[19] = (uint8_t) key_id;
}

phic_status
phic_key_wrap(const uint8_t kek[32], uint32_t key_id,
			  const uint8_t dek[PHIC_DEK_LEN], uint8_t out[PHIC_WRAPPED_LEN])
{
	uint8_t		ad[WRAP_AD_PREFIX_LEN + 4];
	phic_bytes	adb = {ad, sizeof(ad)};
	phic_bytes	none = {NULL, 0};
	phic_bytes	pt = {dek, PHIC_DEK_LEN};
	phic_gcm   *g;
	phic_status st;

	st = phic_random_bytes(out, PHIC_GCM_NONCE_LEN);
	if (st != PHIC_OK)
		return st;
	g = phic_gcm_new(kek);
	if (g == NULL)
		return PHIC_ERR_CRYPTO;
	wrap_ad(key_id, ad);
	st = phic_gcm_seal(g, out, adb, none, pt, out + PHIC_GCM_NONCE_LEN,
					   out + PHIC_GCM_NONCE_LEN + PHIC_DEK_LEN);
	phic_gcm_free(g);
	return st;
}

phic_status
phic_key_unwrap(const uint8_t kek[32], uint32_t key_id,
				const uint8_t wrapped[PHIC_WRAPPED_LEN],
				uint8_t dek[PHIC_DEK_LEN])
{
	uint8_t		ad[WRAP_AD_PREFIX_LEN + 4];
	phic_bytes	adb = {ad, sizeof(ad)};
	phic_bytes	none = {NULL, 0};
	phic_bytes	ct = {wrapped + PHIC_GCM_NONCE_LEN, PHIC_DEK_LEN};
	phic_gcm   *g;
	phic_status st;

	g = phic_gcm_new(kek);
	if (g == NULL)
		return PHIC_ERR_CRYPTO;
	wrap_ad(key_id, ad);
	st = phic_gcm_open(g, wrapped, adb, none, ct,
					   wrapped + PHIC_GCM_NONCE_LEN + PHIC_DEK_LEN, dek);
	phic_gcm_free(g);
	return st;
}
