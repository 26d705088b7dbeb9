/*
 * test_secmem.c — unit tests of src/core/secmem (locked, zeroed key
 * memory and phic_wipe): allocations of several sizes zeroed and writable,
 * NULL arguments, and a wipe of exactly the given range.
 */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "secmem.h"

void
test_secmem(void)
{
	static const size_t sizes[] = {0, 1, 32, 4096, 10000};
	uint8_t		buf[64];

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
	{
		size_t		n = sizes[i] ? sizes[i] : 1;
		int			locked = -1;
		uint8_t    *p = phic_secmem_alloc(sizes[i], &locked);
		char		name[64];

		snprintf(name, sizeof(name), "secmem alloc %zu", sizes[i]);
		if (!check(p != NULL && (locked == 0 || locked == 1), name,
				   "p=%p locked=%d", (void *) p, locked))
			continue;
		snprintf(name, sizeof(name), "secmem alloc %zu zeroed and writable", sizes[i]);
		{
			int			ok = all_zero(p, n);

			memset(p, 0xA5, n);
			ok = ok && p[0] == 0xA5 && p[n - 1] == 0xA5;
			check(ok, name, "not zeroed or not writable");
		}
		phic_secmem_free(p, sizes[i]);
	}
	{
		uint8_t    *p = phic_secmem_alloc(100, NULL);

		check(p != NULL, "secmem alloc with NULL locked", "NULL");
		phic_secmem_free(p, 100);
	}
	phic_secmem_free(NULL, 10);	/* documented no-op */

	memset(buf, 0xC3, sizeof(buf));
	phic_wipe(buf + 8, 40);
	check(all_zero(buf + 8, 40) && buf[7] == 0xC3 && buf[48] == 0xC3,
		  "secmem wipe zeroes exactly the range", "wrong bytes wiped");
	phic_wipe(NULL, 0);
	phic_wipe(buf, 0);
	check(buf[0] == 0xC3, "secmem wipe of 0 bytes is a no-op", "byte changed");
}
