/*
 * secmem.c — locked, non-dumpable pages for key material.
 *
 * Linux semantics relied on: MADV_DONTDUMP is kept across fork() (it is a
 * property of the mapping), mlock() is not — a child that wants its copy
 * locked must lock it again.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "secmem.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static size_t
round_to_pages(size_t len)
{
	long		page = sysconf(_SC_PAGESIZE);
	size_t		p = page > 0 ? (size_t) page : 4096;

	return ((len + p - 1) / p) * p;
}

void *
phic_secmem_alloc(size_t len, int *locked)
{
	size_t		n = round_to_pages(len ? len : 1);
	void	   *p;

	p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
#ifdef MADV_DONTDUMP
	(void) madvise(p, n, MADV_DONTDUMP);
#endif
	if (locked)
		*locked = (mlock(p, n) == 0);
	else
		(void) mlock(p, n);
	return p;
}

void
phic_secmem_free(void *p, size_t len)
{
	size_t		n;

	if (p == NULL)
		return;
	n = round_to_pages(len ? len : 1);
	phic_wipe(p, n);
	(void) munlock(p, n);
	(void) munmap(p, n);
}

void
phic_wipe(void *p, size_t len)
{
	if (p && len)
		explicit_bzero(p, len);
}
