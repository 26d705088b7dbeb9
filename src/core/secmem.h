/*
 * secmem.h — memory for key material: locked in RAM, excluded from core
 * dumps, wiped before release.
 */
#ifndef PHIC_SECMEM_H
#define PHIC_SECMEM_H

#include <stddef.h>

/*
 * Map len bytes (rounded up to whole pages) of zeroed anonymous memory,
 * mlock() it and mark it MADV_DONTDUMP.  Returns NULL when the mapping fails;
 * a failed mlock (RLIMIT_MEMLOCK) is tolerated and reported through *locked.
 */
extern void *phic_secmem_alloc(size_t len, int *locked);

/* Wipe and unmap memory obtained from phic_secmem_alloc. */
extern void phic_secmem_free(void *p, size_t len);

/* Overwrite len bytes with zeros in a way the compiler may not elide. */
extern void phic_wipe(void *p, size_t len);

#endif
