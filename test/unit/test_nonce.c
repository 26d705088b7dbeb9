/*
 * test_nonce.c — unit tests of src/core/nonce (GCM nonces drawn from a
 * per-process buffer of random bytes): 10000 draws pairwise distinct and
 * never all zero, a reset refills, and after fork the child never hands out
 * the parent's buffered bytes.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "nonce.h"

#define N_NONCES 10000

static int
cmp_nonce(const void *a, const void *b)
{
	return memcmp(a, b, PHIC_NONCE_LEN);
}

void
test_nonce(void)
{
	static uint8_t all[N_NONCES][PHIC_NONCE_LEN];
	uint8_t		a[PHIC_NONCE_LEN],
				b[PHIC_NONCE_LEN];
	int			fails = 0,
				zeros = 0,
				dups = 0;
	int			fd[2];
	pid_t		pid;

	/* 10000 nonces span ~29 refills of 341 */
	for (int i = 0; i < N_NONCES; i++)
	{
		if (phic_nonce_next(all[i]) != PHIC_OK)
			fails++;
		if (all_zero(all[i], PHIC_NONCE_LEN))
			zeros++;
	}
	check(fails == 0, "nonce 10000 draws succeed", "%d draws failed", fails);
	check(zeros == 0, "nonce no all-zero nonce", "%d all-zero nonces", zeros);
	qsort(all, N_NONCES, PHIC_NONCE_LEN, cmp_nonce);
	for (int i = 1; i < N_NONCES; i++)
		if (memcmp(all[i - 1], all[i], PHIC_NONCE_LEN) == 0)
			dups++;
	check(dups == 0, "nonce 10000 pairwise distinct", "%d duplicates", dups);

	/*
	 * reset: the next nonce comes from a refill.  Were only the buffer wiped
	 * and not the count, it would be all zeros.
	 */
	phic_nonce_next(a);
	zeros = dups = 0;
	for (int i = 0; i < 50; i++)
	{
		phic_nonce_reset();
		if (phic_nonce_next(b) != PHIC_OK)
			fails++;
		if (all_zero(b, PHIC_NONCE_LEN))
			zeros++;
		if (memcmp(a, b, PHIC_NONCE_LEN) == 0)
			dups++;
		memcpy(a, b, PHIC_NONCE_LEN);
	}
	check(fails == 0 && zeros == 0 && dups == 0, "nonce after reset",
		  "%d failed, %d all-zero, %d repeated", fails, zeros, dups);

	/* after fork the child must not hand out the parent's buffered bytes */
	phic_nonce_next(a);			/* buffer filled and owned by this process */
	if (pipe(fd) != 0 || (pid = fork()) < 0)
	{
		check(0, "nonce fork", "pipe/fork failed");
		return;
	}
	if (pid == 0)
	{
		uint8_t		c[PHIC_NONCE_LEN];
		int			ok;

		close(fd[0]);
		ok = phic_nonce_next(c) == PHIC_OK &&
			write(fd[1], c, sizeof(c)) == (ssize_t) sizeof(c);
		_exit(ok ? 0 : 1);
	}
	close(fd[1]);
	{
		uint8_t		c[PHIC_NONCE_LEN];
		ssize_t		got = read(fd[0], c, sizeof(c));
		int			wstatus = 0;

		close(fd[0]);
		waitpid(pid, &wstatus, 0);
		phic_nonce_next(b);
		if (check(got == (ssize_t) sizeof(c) && WIFEXITED(wstatus) &&
				  WEXITSTATUS(wstatus) == 0, "nonce fork: child reports",
				  "read %zd bytes, child status %d", got, wstatus))
			check(memcmp(c, b, PHIC_NONCE_LEN) != 0,
				  "nonce fork: child's nonce differs from parent's next",
				  "child reused the parent's buffered nonce");
	}
}
