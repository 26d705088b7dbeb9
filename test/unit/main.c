/*
 * main.c — runs the unit tests of the plain-C core (src/core): one test file
 * per core module (test_<module>.c), in a fixed order, then prints the last
 * line "N passed, M failed"; the exit status is non-zero on any failure.
 *
 * The order matters only for reproducibility: the files draw their random
 * inputs from one fixed-seed PRNG (harness.c).
 */
#include <stdio.h>

#include "harness.h"

int
main(void)
{
	setvbuf(stdout, NULL, _IONBF, 0);	/* no duplicated output across fork */
	test_status();
	test_secmem();
	test_hexkey();
	test_base64();
	test_aead();
	test_nonce();
	test_ciphertext();
	test_keywrap();
	test_chain();
	test_sha256x2();
	test_hmac();
	test_mask();
	test_tokenfmt();
	test_json();
	test_jws();
	return harness_summary();
}
