/*
 * stats.h — counters of phi_guard's work since the server started, for the
 * phi_guard.stats view (stats.c).
 *
 * Each process counts into its own slot of a shared-memory array (indexed
 * by its PGPROC number), so an increment is a plain load and store to a
 * cache line no other process writes: no lock, no contended atomic on the
 * per-row hot path.  Readers sum the slots.  A slot outlives its process
 * and the next process with that PGPROC keeps adding to it, so the sums
 * only grow (until a crash restart reinitializes shared memory).  When the
 * library was not preloaded there are no slots and stats_count does
 * nothing.
 */
#ifndef PHI_GUARD_STATS_H
#define PHI_GUARD_STATS_H

#include "postgres.h"

#include "port/atomics.h"

typedef enum PhiStat
{
	PHI_STAT_ENCRYPT,			/* values encrypted (phi_encrypt, phi_rewrap, vault) */
	PHI_STAT_DECRYPT,			/* values decrypted */
	PHI_STAT_DECRYPT_FAILED,	/* values that did not authenticate */
	PHI_STAT_TOKENIZE,			/* phi_tokenize calls on a non-NULL value */
	PHI_STAT_DETOKENIZE,		/* tokens detokenized */
	PHI_STAT_DETOKENIZE_FAILED, /* unknown or forgotten tokens */
	PHI_STAT_BLIND_INDEX,		/* blind indexes computed */
	PHI_STAT_DENIED,			/* phi_guard's own refusals (rejected contexts, key access
								 * rules, tenant keys, break-glass) */
	PHI_STAT_KEY_CACHE_HIT,		/* keyring lookups answered from the cache */
	PHI_STAT_KEY_CACHE_MISS,	/* keyring lookups that read phi_guard.keys */
	PHI_STAT_COUNT
} PhiStat;

/* this process's counters; NULL until attached, or when not preloaded */
extern pg_atomic_uint64 *stats_mine;
extern bool stats_attached;

extern void stats_attach(void);
extern void stats_init(void);

/* Count one event of kind s (cheap: one load and one store when attached). */
static inline void
stats_count(PhiStat s)
{
	if (unlikely(!stats_attached))
		stats_attach();
	if (likely(stats_mine != NULL))
		pg_atomic_write_u64(&stats_mine[s], pg_atomic_read_u64(&stats_mine[s]) + 1);
}

#endif
