/*
 * test_hmac.c — unit tests of src/core/hmac (HMAC-SHA256 of up to three
 * parts, used by blind indexes and tokens): RFC 4231 vectors and keys of 64
 * and 65 bytes, every 3-part split of each message, NULL parts, one context
 * reused 1000 times, and phic_mac_bits.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "hmac.h"

/*
 * RFC 4231 HMAC-SHA256 cases 1-4, 6, 7, plus keys of exactly 64 and 65
 * bytes and an empty message, all checked with Python's hmac + hashlib.
 * Keys: the string key, or key_len bytes of key_byte (0: bytes 1, 2, 3...).
 * Messages: the string msg, or 50 bytes of msg_byte.
 */
static const struct hmac_vector
{
	const char *name,
			   *key;
	size_t		key_len;
	uint8_t		key_byte;
	const char *msg;
	uint8_t		msg_byte;
	const char *mac;
}			hmac_vectors[] = {
	{"RFC 4231 TC1", NULL, 20, 0x0b, "Hi There", 0,
	"b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"},
	{"RFC 4231 TC2", "Jefe", 0, 0, "what do ya want for nothing?", 0,
	"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
	{"RFC 4231 TC3", NULL, 20, 0xaa, NULL, 0xdd,
	"773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"},
	{"RFC 4231 TC4", NULL, 25, 0, NULL, 0xcd,
	"82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"},
	{"RFC 4231 TC6", NULL, 131, 0xaa,
		"Test Using Larger Than Block-Size Key - Hash Key First", 0,
	"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"},
	{"RFC 4231 TC7", NULL, 131, 0xaa,
		"This is a test using a larger than block-size key and a larger than "
		"block-size data. The key needs to be hashed before being used by the "
		"HMAC algorithm.", 0,
	"9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2"},
	{"64-byte key", NULL, 64, 0, "phi_guard", 0,
	"c3408d2fc66737ed27ffc49eeccdb98232d3bd20b093dbc5bb3a39802ba68c86"},
	{"65-byte key", NULL, 65, 0, "phi_guard", 0,
	"31bad6274824c163ab002f077098c84fde688d6a0ef697814dea2a2f342dbc77"},
	{"empty message", "Jefe", 0, 0, "", 0,
	"923598ca6d64af2a5dba79dcd021a8a0fe5c5f557519adaaf0ad532d4506dd30"},
};

/* Key, message and MAC of a vector; returns a fresh phic_hmac. */
static phic_hmac *
hmac_setup(const struct hmac_vector *v, uint8_t *msg, size_t *msg_len, uint8_t *mac)
{
	uint8_t		key[256];
	size_t		klen = v->key ? strlen(v->key) : v->key_len;
	phic_hmac  *h;

	for (size_t i = 0; i < klen; i++)
		key[i] = v->key ? (uint8_t) v->key[i] : v->key_byte ? v->key_byte : (uint8_t) (i + 1);
	*msg_len = v->msg ? strlen(v->msg) : 50;
	if (v->msg)
		memcpy(msg, v->msg, *msg_len);
	else
		memset(msg, v->msg_byte, 50);
	unhex(v->mac, mac);
	if ((h = phic_hmac_new(key, klen)) == NULL)
	{
		printf("phic_hmac_new failed\n");
		exit(2);
	}
	return h;
}

void
test_hmac(void)
{
	const size_t nv = sizeof(hmac_vectors) / sizeof(hmac_vectors[0]);
	uint8_t		msg[256],
				msg7[256],
				want[32],
				want7[32],
				out[32];
	size_t		len,
				len7;
	char		name[96];
	phic_hmac  *h;

	for (size_t v = 0; v < nv; v++)
	{
		int			bad_i = -1,
					bad_j = -1;

		h = hmac_setup(&hmac_vectors[v], msg, &len, want);
		memset(out, 0, sizeof(out));
		snprintf(name, sizeof(name), "hmac %s", hmac_vectors[v].name);
		if (check_status(name, phic_hmac3(h, msg, len, NULL, 0, NULL, 0, out), PHIC_OK))
			check_bytes(name, out, want, 32);

		/* every split a | b | c of the message gives the same MAC */
		for (size_t i = 0; i <= len && bad_i < 0; i++)
			for (size_t j = i; j <= len && bad_i < 0; j++)
				if (phic_hmac3(h, msg, i, msg + i, j - i, msg + j, len - j, out) != PHIC_OK ||
					memcmp(out, want, 32) != 0)
					bad_i = (int) i, bad_j = (int) j;
		snprintf(name, sizeof(name), "hmac %s: every 3-part split", hmac_vectors[v].name);
		check(bad_i < 0, name, "split at %d, %d differs", bad_i, bad_j);
		phic_hmac_free(h);
	}

	/* NULL parts are skipped, whatever their length */
	h = hmac_setup(&hmac_vectors[1], msg, &len, want);
	phic_hmac3(h, NULL, 5, msg, len, NULL, 99, out);
	check_bytes("hmac NULL a and c skipped", out, want, 32);
	phic_hmac3(h, NULL, 7, NULL, 1, msg, len, out);
	check_bytes("hmac NULL a and b skipped", out, want, 32);
	phic_hmac3(h, msg, 10, NULL, 3, msg + 10, len - 10, out);
	check_bytes("hmac NULL b between parts skipped", out, want, 32);
	phic_hmac_free(h);
	h = hmac_setup(&hmac_vectors[nv - 1], msg, &len, want);
	phic_hmac3(h, NULL, 0, NULL, 0, NULL, 0, out);
	check_bytes("hmac all parts NULL = empty message", out, want, 32);
	phic_hmac_free(h);
	phic_hmac_free(NULL);		/* documented no-op */

	/* one phic_hmac reused 1000 times for two messages (TC6 and TC7 share a key) */
	{
		int			bad = -1;

		phic_hmac_free(hmac_setup(&hmac_vectors[5], msg7, &len7, want7));
		h = hmac_setup(&hmac_vectors[4], msg, &len, want);
		for (int i = 0; i < 1000 && bad < 0; i++)
			if ((i % 2 ? phic_hmac3(h, msg7, len7, NULL, 0, NULL, 0, out)
				 : phic_hmac3(h, msg, 10, msg + 10, len - 10, NULL, 0, out)) != PHIC_OK ||
				memcmp(out, i % 2 ? want7 : want, 32) != 0)
				bad = i;
		check(bad < 0, "hmac reused 1000 times", "MAC %d wrong", bad);
		phic_hmac_free(h);
	}
	/* phic_mac_bits: the leading bits, big-endian */
	{
		uint8_t		mac[32];

		memset(mac, 0xff, sizeof(mac));
		unhex("8000000000000001", mac);
		check(phic_mac_bits(mac, 1) == 1, "hmac mac_bits 1", "%llx",
			  (unsigned long long) phic_mac_bits(mac, 1));
		check(phic_mac_bits(mac, 8) == 0x80, "hmac mac_bits 8", "%llx",
			  (unsigned long long) phic_mac_bits(mac, 8));
		check(phic_mac_bits(mac, 32) == 0x80000000u, "hmac mac_bits 32", "%llx",
			  (unsigned long long) phic_mac_bits(mac, 32));
		check(phic_mac_bits(mac, 63) == 0x4000000000000000ULL, "hmac mac_bits 63", "%llx",
			  (unsigned long long) phic_mac_bits(mac, 63));
		check(phic_mac_bits(mac, 64) == 0x8000000000000001ULL, "hmac mac_bits 64", "%llx",
			  (unsigned long long) phic_mac_bits(mac, 64));
	}
}
