/*
 * test_ciphertext.c — unit tests of src/core/ciphertext (the SPEC §2
 * value: header, nonce, body, tag): sizes and overflow, header bytes, the
 * aad and bytea flags, every single-bit tamper of an authenticated region
 * (AUTH, output wiped), rejected format bytes and short values, the empty
 * plaintext, and another key.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "ciphertext.h"

void
test_ciphertext(void)
{
	static const uint8_t hdr_plain[8] = {1, 1, 0, 0, 1, 2, 3, 4};
	static const uint8_t hdr_aad_bytea[8] = {1, 1, 3, 0, 1, 2, 3, 4};
	static const uint8_t hdr_empty_aad[8] = {1, 1, 1, 0, 1, 2, 3, 4};
	const char *msg = "patient: Jane Doe, dx: J45.909";
	const char *aad_s = "row 42 / column ssn";
	size_t		pl = strlen(msg);
	uint8_t		key[32],
				ct[128],
				ct2[128],
				mod[128],
				out[128];
	phic_bytes	pt = bytes((const uint8_t *) msg, pl),
				aad = bytes((const uint8_t *) aad_s, strlen(aad_s)),
				empty_aad = bytes((const uint8_t *) "", 0);
	phic_ct		p;
	phic_gcm   *g;
	size_t		len = phic_ct_size(pl);
	char		name[96];

	check(phic_ct_size(0) == 36 && phic_ct_size(5) == 41 &&
		  phic_ct_size(pl) == pl + 36, "ct size = pt + 36",
		  "ct_size(0)=%zu ct_size(5)=%zu", phic_ct_size(0), phic_ct_size(5));
	check(phic_ct_size((size_t) -1) == 0 && phic_ct_size((size_t) -1 - 35) == 0 &&
		  phic_ct_size((size_t) -1 - 36) == (size_t) -1, "ct size overflow",
		  "wrong overflow boundary");

	random_fill(key, 32);
	g = new_gcm(key);

	/* no aad, text */
	memset(ct, 0xEE, sizeof(ct));
	check_status("ct seal no aad", phic_ct_seal(g, KEY_ID, 0, NONE, pt, ct), PHIC_OK);
	check_bytes("ct header no aad = 01 01 00 00 01 02 03 04", ct, hdr_plain, 8);
	check(ct[len] == 0xEE, "ct seal writes exactly pt+36 bytes", "wrote past the end");
	if (check_status("ct parse no aad", phic_ct_parse(ct, len, &p), PHIC_OK))
	{
		check(p.flags == 0 && p.key_id == KEY_ID && p.body_len == pl &&
			  p.header == ct && p.nonce == ct + 8 && p.body == ct + 20 &&
			  p.tag == ct + 20 + pl, "ct parse fields",
			  "flags %u key_id %08x body_len %zu", p.flags, p.key_id, p.body_len);
		memset(out, 0xAA, sizeof(out));
		if (check_status("ct open no aad", phic_ct_open(g, &p, NONE, out), PHIC_OK))
			check_bytes("ct open no aad: plaintext", out, pt.ptr, pl);
		memset(out, 0xAA, sizeof(out));
		check_status("ct open no-aad value with empty aad",
					 phic_ct_open(g, &p, empty_aad, out), PHIC_ERR_AUTH);
		check_status("ct open no-aad value with some aad",
					 phic_ct_open(g, &p, aad, out), PHIC_ERR_AUTH);
	}

	/* two seals of the same plaintext differ (fresh nonce) */
	phic_ct_seal(g, KEY_ID, 0, NONE, pt, ct2);
	check(memcmp(ct + 8, ct2 + 8, 12) != 0, "ct two seals: nonces differ", "same nonce");
	check(memcmp(ct + 20, ct2 + 20, pl + 16) != 0, "ct two seals: bodies differ",
		  "same ciphertext");

	/* aad and bytea flag */
	check_status("ct seal aad+bytea", phic_ct_seal(g, KEY_ID, 1, aad, pt, ct), PHIC_OK);
	check_bytes("ct header aad+bytea = 01 01 03 00 01 02 03 04", ct, hdr_aad_bytea, 8);
	if (check_status("ct parse aad+bytea", phic_ct_parse(ct, len, &p), PHIC_OK))
	{
		check(p.flags == (PHIC_CT_FLAG_AAD | PHIC_CT_FLAG_BYTEA) && p.key_id == KEY_ID,
			  "ct parse aad+bytea fields", "flags %u key_id %08x", p.flags, p.key_id);
		memset(out, 0xAA, sizeof(out));
		if (check_status("ct open aad+bytea", phic_ct_open(g, &p, aad, out), PHIC_OK))
			check_bytes("ct open aad+bytea: plaintext", out, pt.ptr, pl);
		check_status("ct open without the aad", phic_ct_open(g, &p, NONE, out),
					 PHIC_ERR_AUTH);
		memset(out, 0xAA, sizeof(out));
		check_status("ct open wrong aad",
					 phic_ct_open(g, &p, bytes((const uint8_t *) "row 43 / column ssn",
											   aad.len), out), PHIC_ERR_AUTH);
		check_zero("ct open wrong aad: output wiped", out, pl);
		check_status("ct open truncated aad",
					 phic_ct_open(g, &p, bytes(aad.ptr, aad.len - 1), out),
					 PHIC_ERR_AUTH);
	}

	/* empty, non-NULL aad sets the flag and must be given back */
	check_status("ct seal empty aad", phic_ct_seal(g, KEY_ID, 0, empty_aad, pt, ct), PHIC_OK);
	check_bytes("ct header empty aad = 01 01 01 00 01 02 03 04", ct, hdr_empty_aad, 8);
	if (check_status("ct parse empty aad", phic_ct_parse(ct, len, &p), PHIC_OK))
	{
		memset(out, 0xAA, sizeof(out));
		if (check_status("ct open empty aad", phic_ct_open(g, &p, empty_aad, out), PHIC_OK))
			check_bytes("ct open empty aad: plaintext", out, pt.ptr, pl);
		check_status("ct open empty-aad value with NULL aad",
					 phic_ct_open(g, &p, NONE, out), PHIC_ERR_AUTH);
	}

	/* tampering: authenticated bytes -> AUTH from open */
	phic_ct_seal(g, KEY_ID, 1, aad, pt, ct);
	{
		static const struct
		{
			const char *what;
			size_t		from,
						to;		/* to == 0: through the end */
		}			regions[] = {
			{"key id", 4, 8}, {"nonce", 8, 20}, {"body", 20, 0}, {"tag", 0, 0},
		};

		for (size_t r = 0; r < 4; r++)
		{
			size_t		from = regions[r].from,
						to = regions[r].to;
			int			bad_bit = -1;
			phic_status st = PHIC_OK;

			if (r == 2)
				to = 20 + pl;
			if (r == 3)
				from = 20 + pl, to = len;
			for (size_t bit = from * 8; bit < to * 8 && bad_bit < 0; bit++)
			{
				memcpy(mod, ct, len);
				mod[bit / 8] ^= (uint8_t) (1u << (bit % 8));
				memset(out, 0xAA, sizeof(out));
				st = phic_ct_parse(mod, len, &p);
				if (st == PHIC_OK)
					st = phic_ct_open(g, &p, aad, out);
				if (st != PHIC_ERR_AUTH || !all_zero(out, pl))
					bad_bit = (int) bit;
			}
			snprintf(name, sizeof(name), "ct tamper %s (every bit) -> AUTH, wiped",
					 regions[r].what);
			check(bad_bit < 0, name, "bit %d: status \"%s\"", bad_bit,
				  phic_status_str(st));
		}
	}

	/* known flag bits are authenticated too: flipping them gives AUTH */
	for (int bit = 0; bit < 2; bit++)
	{
		memcpy(mod, ct, len);
		mod[2] ^= (uint8_t) (1 << bit);
		snprintf(name, sizeof(name), "ct tamper known flag bit %d -> AUTH", bit);
		if (phic_ct_parse(mod, len, &p) == PHIC_OK)
		{
			check_status(name, phic_ct_open(g, &p, aad, out), PHIC_ERR_AUTH);
			if (bit == 0)
				check_status("ct tamper flag bit 0, no aad given -> AUTH",
							 phic_ct_open(g, &p, NONE, out), PHIC_ERR_AUTH);
		}
		else
			check(0, name, "parse rejected a known flag");
	}

	/* format bytes: version, algorithm, unknown flags, reserved -> FORMAT */
	{
		static const struct
		{
			const char *what;
			size_t		off;
			uint8_t		val;
		}			fmt[] = {
			{"version 0", 0, 0x00}, {"version 2", 0, 0x02}, {"version 0x81", 0, 0x81},
			{"alg 0", 1, 0x00}, {"alg 2", 1, 0x02},
			{"flag 0x04", 2, 0x07}, {"flag 0x08", 2, 0x0b}, {"flag 0x80", 2, 0x83},
			{"reserved 1", 3, 0x01}, {"reserved 0x80", 3, 0x80},
		};

		for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++)
		{
			memcpy(mod, ct, len);
			mod[fmt[i].off] = fmt[i].val;
			snprintf(name, sizeof(name), "ct parse rejects %s", fmt[i].what);
			check_status(name, phic_ct_parse(mod, len, &p), PHIC_ERR_FORMAT);
		}
	}

	/* short values: every length 0..35 of a real value, and NULL */
	{
		int			bad_len = -1;

		for (size_t l = 0; l < PHIC_CT_OVERHEAD && bad_len < 0; l++)
			if (phic_ct_parse(ct, l, &p) != PHIC_ERR_FORMAT)
				bad_len = (int) l;
		check(bad_len < 0, "ct parse rejects lengths 0..35", "accepted length %d", bad_len);
		check_status("ct parse rejects NULL", phic_ct_parse(NULL, 100, &p), PHIC_ERR_FORMAT);
	}

	/* empty plaintext: a 36-byte value */
	memset(ct, 0xEE, sizeof(ct));
	check_status("ct seal empty plaintext",
				 phic_ct_seal(g, KEY_ID, 0, aad, NONE, ct), PHIC_OK);
	check(ct[36] == 0xEE, "ct empty plaintext: 36 bytes written", "wrote past 36");
	if (check_status("ct parse 36-byte value", phic_ct_parse(ct, 36, &p), PHIC_OK))
	{
		check(p.body_len == 0 && p.tag == ct + 20, "ct 36-byte value: empty body",
			  "body_len %zu", p.body_len);
		check_status("ct open 36-byte value", phic_ct_open(g, &p, aad, out), PHIC_OK);
		memcpy(mod, ct, 36);
		mod[35] ^= 0x40;
		phic_ct_parse(mod, 36, &p);
		check_status("ct open 36-byte value, tag altered",
					 phic_ct_open(g, &p, aad, out), PHIC_ERR_AUTH);
	}

	/* a value sealed under one key does not open under another */
	phic_ct_seal(g, KEY_ID, 0, NONE, pt, ct);
	phic_gcm_free(g);
	key[0] ^= 1;
	g = new_gcm(key);
	phic_ct_parse(ct, len, &p);
	check_status("ct open under another key", phic_ct_open(g, &p, NONE, out),
				 PHIC_ERR_AUTH);
	phic_gcm_free(g);
}
