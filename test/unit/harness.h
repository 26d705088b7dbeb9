/*
 * harness.h — the unit tests' shared harness: one check() per test, the
 * helpers the test files share, and each test file's entry point.
 *
 * Every check() is one test; main.c runs each file's entry point in turn
 * and prints the last line "N passed, M failed".  Failures print the test
 * name and what differed; byte dumps are printed only for public values
 * (test vectors, formats), never for random keys.  Random test inputs come
 * from a fixed-seed PRNG shared by all files, so a run is reproducible as
 * long as the files run in main.c's order.
 */
#ifndef PHI_GUARD_UNIT_HARNESS_H
#define PHI_GUARD_UNIT_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "aead.h"
#include "status.h"

/* the key id the ciphertext and key-wrap tests seal under */
#define KEY_ID 0x01020304u

/* A phic_bytes of no bytes (a NULL aad, an empty part). */
extern const phic_bytes NONE;

/* Record one test; on failure print its name and a printf-style detail.
 * Returns ok. */
int			check(int ok, const char *name, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

/* One test: the status got is want. */
int			check_status(const char *name, phic_status got, phic_status want);

/* One test: n public bytes equal; dumps both sides on a mismatch. */
int			check_bytes(const char *name, const uint8_t *got, const uint8_t *want, size_t n);

/* One test: n secret bytes equal; reports only where they first differ. */
int			check_secret(const char *name, const uint8_t *got, const uint8_t *want, size_t n);

/* One test: the n bytes at p were wiped (are all zero). */
int			check_zero(const char *name, const uint8_t *p, size_t n);

/* Whether the n bytes at p are all zero (no test recorded). */
int			all_zero(const uint8_t *p, size_t n);

/* Decode a hex literal (test vectors only) into out; its length in bytes.
 * Aborts on a malformed literal. */
size_t		unhex(const char *s, uint8_t *out);

/* The phic_bytes of n bytes at p. */
phic_bytes	bytes(const uint8_t *p, size_t n);

/* n random bytes from the core's CSPRNG; exits on failure. */
void		random_fill(uint8_t *p, size_t n);

/* splitmix64 with a fixed seed: reproducible pseudo-random test inputs. */
uint64_t	prng(void);
void		prng_fill(uint8_t *p, size_t n);

/* An exact-size heap copy of len bytes (no terminator), so that ASan sees
 * any read past len; the caller frees it. */
char	   *exact_copy(const char *s, size_t len);

/* A GCM context for key; exits on failure.  Free with phic_gcm_free. */
phic_gcm   *new_gcm(const uint8_t *key);

/* Print the summary line "N passed, M failed"; the exit status (0 when no
 * test failed). */
int			harness_summary(void);

/* The test files' entry points (test_<core module>.c), in main.c's order. */
void		test_status(void);
void		test_secmem(void);
void		test_hexkey(void);
void		test_base64(void);
void		test_aead(void);
void		test_nonce(void);
void		test_ciphertext(void);
void		test_keywrap(void);
void		test_chain(void);
void		test_sha256x2(void);
void		test_hmac(void);
void		test_mask(void);
void		test_tokenfmt(void);
void		test_json(void);
void		test_jws(void);

#endif							/* PHI_GUARD_UNIT_HARNESS_H */
