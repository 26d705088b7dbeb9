/*
 * harness.c — the unit tests' shared harness (see harness.h): the pass and
 * fail counts, the check functions, and the helpers several test files use.
 *
 * Single-threaded; the counts are process-global, so a test that forks
 * (test_nonce) records its result in the parent only.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "nonce.h"

static int	n_passed,
			n_failed;

static uint64_t prng_state = 0x5eed0f9b1a2c3d4eULL;

const phic_bytes NONE = {NULL, 0};

int
check(int ok, const char *name, const char *fmt,...)
{
	va_list		ap;

	if (ok)
	{
		n_passed++;
		return 1;
	}
	n_failed++;
	printf("FAIL %s: ", name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	return 0;
}

static void
print_hex(const char *label, const uint8_t *p, size_t n)
{
	printf("    %s ", label);
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	putchar('\n');
}

int
check_status(const char *name, phic_status got, phic_status want)
{
	return check(got == want, name, "status \"%s\", expected \"%s\"",
				 phic_status_str(got), phic_status_str(want));
}

int
check_bytes(const char *name, const uint8_t *got, const uint8_t *want, size_t n)
{
	if (check(memcmp(got, want, n) == 0, name, "bytes differ (%zu bytes)", n))
		return 1;
	print_hex("got ", got, n);
	print_hex("want", want, n);
	return 0;
}

int
check_secret(const char *name, const uint8_t *got, const uint8_t *want, size_t n)
{
	size_t		i = 0;

	while (i < n && got[i] == want[i])
		i++;
	return check(i == n, name, "secret bytes differ first at offset %zu of %zu", i, n);
}

int
all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != 0)
			return 0;
	return 1;
}

int
check_zero(const char *name, const uint8_t *p, size_t n)
{
	size_t		i = 0;

	while (i < n && p[i] == 0)
		i++;
	return check(i == n, name, "buffer not wiped: byte %zu of %zu is non-zero", i, n);
}

size_t
unhex(const char *s, uint8_t *out)
{
	size_t		n = strlen(s);

	if (n % 2 != 0)
		abort();
	for (size_t i = 0; i < n / 2; i++)
	{
		unsigned int v;

		if (sscanf(s + 2 * i, "%2x", &v) != 1)
			abort();
		out[i] = (uint8_t) v;
	}
	return n / 2;
}

phic_bytes
bytes(const uint8_t *p, size_t n)
{
	phic_bytes	b = {p, n};

	return b;
}

void
random_fill(uint8_t *p, size_t n)
{
	if (n > 0 && phic_random_bytes(p, (int) n) != PHIC_OK)
	{
		printf("cannot draw random bytes\n");
		exit(2);
	}
}

uint64_t
prng(void)
{
	uint64_t	z = (prng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

void
prng_fill(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t) prng();
}

char *
exact_copy(const char *s, size_t len)
{
	char	   *p = malloc(len ? len : 1);

	if (p == NULL)
		abort();
	memcpy(p, s, len);
	return p;
}

phic_gcm *
new_gcm(const uint8_t *key)
{
	phic_gcm   *g = phic_gcm_new(key);

	if (g == NULL)
	{
		printf("phic_gcm_new failed\n");
		exit(2);
	}
	return g;
}

int
harness_summary(void)
{
	printf("%d passed, %d failed\n", n_passed, n_failed);
	return n_failed == 0 ? 0 : 1;
}
