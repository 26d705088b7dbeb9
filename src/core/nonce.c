/*
 * nonce.c — batched nonce supply (see nonce.h).  Not thread-safe: one
 * PostgreSQL backend is one thread.  getpid() is a system call on current
 * glibc, too dear per nonce, so fork safety comes from a pthread_atfork
 * child handler that empties the buffer instead.
 */
#include "nonce.h"
#include "secmem.h"

#include <pthread.h>
#include <string.h>
#include <openssl/rand.h>

#define NONCE_BATCH 341			/* 341 * 12 = 4092 bytes per refill */

static uint8_t buffer[NONCE_BATCH * PHIC_NONCE_LEN];
static int	remaining;			/* nonces left in buffer */
static int	atfork_registered;

/* In a forked child, never hand out the parent's buffered bytes. */
static void
forget_in_child(void)
{
	phic_nonce_reset();
}

phic_status
phic_nonce_next(uint8_t out[PHIC_NONCE_LEN])
{
	uint8_t    *p;

	if (remaining == 0)
	{
		if (!atfork_registered)
		{
			if (pthread_atfork(NULL, NULL, forget_in_child) != 0)
				return PHIC_ERR_RANDOM;
			atfork_registered = 1;
		}
		if (RAND_bytes(buffer, (int) sizeof(buffer)) != 1)
			return PHIC_ERR_RANDOM;
		remaining = NONCE_BATCH;
	}
	remaining--;
	p = buffer + (size_t) remaining * PHIC_NONCE_LEN;
	memcpy(out, p, PHIC_NONCE_LEN);
	phic_wipe(p, PHIC_NONCE_LEN);
	return PHIC_OK;
}

phic_status
phic_random_bytes(uint8_t *out, int len)
{
	return RAND_bytes(out, len) == 1 ? PHIC_OK : PHIC_ERR_RANDOM;
}

void
phic_nonce_reset(void)
{
	phic_wipe(buffer, sizeof(buffer));
	remaining = 0;
}
