/*
 * test_chain.c — unit tests of src/core/chain (the audit chain's entry and
 * block hashes, SPEC §6) against values computed independently.
 */
#include <string.h>

#include "harness.h"
#include "chain.h"

/*
 * chain: entry and block hashes (SPEC §6) against values computed
 * independently with Python's hashlib:
 *   h1 = sha256(b'{"v":1,"kind":"insert"}')
 *   h2 = sha256('{"v":1,"kind":"d\u00e9crypt"}'.encode())
 *   sha256(b'\x11'*32 + struct.pack('>QQ', 7, 2) + h1 + h2)
 *   sha256(bytes(32) + struct.pack('>QQ', 1, 0))
 */
void
test_chain(void)
{
	const char *r1 = "{\"v\":1,\"kind\":\"insert\"}";
	const char *r2 = "{\"v\":1,\"kind\":\"d\xc3\xa9" "crypt\"}";
	uint8_t		want1[32],
				want2[32],
				want_block[32],
				want_empty[32],
				prev[32],
				hashes[64],
				got[32];

	unhex("2c227573364bccb496903716440f758a008a7b2bf4ef44d6d2b159730f72ab66", want1);
	unhex("e339c69ce22ff8409867163839e3ba7c052aa6b978ca80eb65d3848a2cb2585a", want2);
	unhex("b10ed44a02a069408ac34fab31f7b6116d69f81c639fcb001b23879d9ad23056", want_block);
	unhex("e8d9d27920689aa242fcd3cb9b2ea5add8f029d0b19c831a809eabc06255354e", want_empty);

	check_status("chain sha256 of record 1", phic_sha256(r1, strlen(r1), hashes), PHIC_OK);
	check_bytes("chain entry hash 1", hashes, want1, 32);
	check_status("chain sha256 of record 2", phic_sha256(r2, strlen(r2), hashes + 32), PHIC_OK);
	check_bytes("chain entry hash 2 (UTF-8 record)", hashes + 32, want2, 32);

	memset(prev, 0x11, sizeof(prev));
	check_status("chain block hash status", phic_block_hash(prev, 7, 2, hashes, got), PHIC_OK);
	check_bytes("chain block hash", got, want_block, 32);

	/* order matters: swapped entries give another block hash */
	memcpy(hashes, want2, 32);
	memcpy(hashes + 32, want1, 32);
	phic_block_hash(prev, 7, 2, hashes, got);
	check(memcmp(got, want_block, 32) != 0, "chain block hash depends on entry order", "same hash");

	memset(prev, 0, sizeof(prev));
	check_status("chain empty block status", phic_block_hash(prev, 1, 0, NULL, got), PHIC_OK);
	check_bytes("chain empty block hash", got, want_empty, 32);
}
