/*
 * test_keywrap.c — unit tests of src/core/keywrap (data keys wrapped
 * under the master key with AES-256-GCM, the key id in the aad): round trip,
 * fresh nonces, another kek or key id (AUTH, key wiped), every flipped bit of
 * the 60 bytes, and the construction rebuilt by hand from phic_gcm_seal.
 */
#include <string.h>

#include "harness.h"
#include "keywrap.h"
#include "secmem.h"

void
test_keywrap(void)
{
	uint8_t		kek[32],
				kek2[32],
				dek[32],
				back[32],
				w[PHIC_WRAPPED_LEN + 4],
				w2[PHIC_WRAPPED_LEN],
				mod[PHIC_WRAPPED_LEN],
				expect[PHIC_WRAPPED_LEN],
				ad[20];
	int			bad_bit = -1;
	phic_status st = PHIC_OK;

	random_fill(kek, 32);
	random_fill(dek, 32);
	memcpy(kek2, kek, 32);
	kek2[7] ^= 0x10;

	memset(w, 0xEE, sizeof(w));
	check_status("keywrap wrap", phic_key_wrap(kek, KEY_ID, dek, w), PHIC_OK);
	check(w[60] == 0xEE && w[63] == 0xEE, "keywrap output is 60 bytes",
		  "wrote past 60 bytes");
	memset(back, 0xAA, 32);
	if (check_status("keywrap unwrap", phic_key_unwrap(kek, KEY_ID, w, back), PHIC_OK))
		check_secret("keywrap round trip", back, dek, 32);

	phic_key_wrap(kek, KEY_ID, dek, w2);
	check(memcmp(w, w2, 60) != 0 && memcmp(w, w2, 12) != 0,
		  "keywrap two wraps differ", "same nonce or output");

	memset(back, 0xAA, 32);
	check_status("keywrap unwrap with another kek",
				 phic_key_unwrap(kek2, KEY_ID, w, back), PHIC_ERR_AUTH);
	check_zero("keywrap another kek: dek wiped", back, 32);
	memset(back, 0xAA, 32);
	check_status("keywrap unwrap with another key id",
				 phic_key_unwrap(kek, KEY_ID + 1, w, back), PHIC_ERR_AUTH);
	check_zero("keywrap another key id: dek wiped", back, 32);
	memset(back, 0xAA, 32);
	check_status("keywrap unwrap with key id byte-swapped",
				 phic_key_unwrap(kek, 0x04030201u, w, back), PHIC_ERR_AUTH);

	for (int bit = 0; bit < PHIC_WRAPPED_LEN * 8 && bad_bit < 0; bit++)
	{
		memcpy(mod, w, sizeof(mod));
		mod[bit / 8] ^= (uint8_t) (1u << (bit % 8));
		memset(back, 0xAA, 32);
		st = phic_key_unwrap(kek, KEY_ID, mod, back);
		if (st != PHIC_ERR_AUTH || !all_zero(back, 32))
			bad_bit = bit;
	}
	check(bad_bit < 0, "keywrap every flipped bit (480) -> AUTH, dek wiped",
		  "bit %d: status \"%s\"", bad_bit, phic_status_str(st));

	/* independent construction: GCM(kek, nonce, AD = prefix || id_be, dek) */
	{
		phic_gcm   *g = new_gcm(kek);

		memcpy(ad, "phi_guard.dek.v1", 16);
		ad[16] = 0x01, ad[17] = 0x02, ad[18] = 0x03, ad[19] = 0x04;
		memcpy(expect, w, 12);
		check_status("keywrap interop: manual seal",
					 phic_gcm_seal(g, expect, bytes(ad, 20), NONE, bytes(dek, 32),
								   expect + 12, expect + 44), PHIC_OK);
		check_secret("keywrap interop: wrapped bytes match manual GCM", w, expect, 60);

		/* and the manual construction unwraps with phic_key_unwrap */
		random_fill(expect, 12);
		phic_gcm_seal(g, expect, bytes(ad, 20), NONE, bytes(dek, 32),
					  expect + 12, expect + 44);
		memset(back, 0xAA, 32);
		if (check_status("keywrap interop: unwrap manual value",
						 phic_key_unwrap(kek, KEY_ID, expect, back), PHIC_OK))
			check_secret("keywrap interop: unwrapped dek", back, dek, 32);
		phic_gcm_free(g);
	}
	phic_wipe(kek, 32);
	phic_wipe(dek, 32);
}
