/*
 * verify.h — the parts of phi_audit_verify (internal to src/audit): the
 * verdict and the walk over the blocks in (xid, id) order
 * (verify_walk.c); the pass over the log and the buckets that sort each
 * block's entries in memory (verify_scan.c); verify.c puts them together.
 */
#ifndef PHI_GUARD_AUDIT_VERIFY_H
#define PHI_GUARD_AUDIT_VERIFY_H

#include "postgres.h"

#include "lib/stringinfo.h"
#include "utils/snapshot.h"

#include "core/chain.h"

/* A row of phi_guard.audit_block. */
typedef struct SealedBlock
{
	uint64		no,
				lo,
				hi,
				entries;
	uint8		prev[PHIC_HASH_LEN];
	uint8		hash[PHIC_HASH_LEN];
} SealedBlock;

/*
 * What verification found: the first problem of the earliest bad block
 * (verify_fail), or ok.
 */
typedef struct Verdict
{
	bool		ok;
	int64		blocks;
	int64		entries;		/* sealed entries checked */
	int64		bad_block;		/* 0: none, or an unsealed entry */
	char		problem[256];	/* not palloc'd: outlives SPI_finish */
} Verdict;

/* The last audit_prune entry seen: what the checkpoint must hold. */
typedef struct PruneSeen
{
	int64		block;			/* 0: none seen */
	int64		entries;
	char		hash[2 * PHIC_HASH_LEN + 1];
} PruneSeen;

/*
 * Walking the entries in (xid, id) order, block by block, into verdict v
 * (the walk's own: every problem the walk finds in a block comes after
 * those the scan found in it, so the two are merged at the end).  The
 * entries come sorted per block from the buckets, or sorted by SQL.
 */
typedef struct ChainWalk
{
	Verdict    *v;				/* v->entries counts the entries walked */
	SealedBlock *blocks;
	int64		nblocks;
	int64		bi;				/* the block being filled */
	uint64		in_block;		/* its entries so far */
	const uint8 *first_prev;	/* prev_hash of the first block left */
	StringInfoData hashes;		/* the block's entry hashes, back to back */
} ChainWalk;

/* ---- verify_walk.c ---- */

/*
 * Note a problem of block (0: an unsealed entry) in v: the first problem
 * of a block is kept, and of the blocks the earliest; 0 comes last.
 */
extern void verify_fail(Verdict *v, uint64 block, const char *fmt,...) pg_attribute_printf(3, 4);

/* The next entry in (xid, id) order into the walk (hash: zeros when malformed). */
extern void verify_walk_entry(ChainWalk *w, uint64 xid, int64 id, const uint8 *hash);

/* Check the block being filled (w->bi) and go on to the next. */
extern void verify_walk_close(ChainWalk *w);

/* ---- verify_scan.c ---- */

/* The entries of each block, gathered by the scan. */
typedef struct Buckets Buckets;

/*
 * Buckets for the nblocks blocks (kept by the caller until the end); used
 * only when the blocks are contiguous (each xid_lo the previous xid_hi,
 * xid_lo < xid_hi), which the caller has checked.
 */
extern Buckets *verify_buckets_create(const SealedBlock *blocks, int64 nblocks, bool contiguous);

/*
 * One pass over the log's heap with snapshot snap: every record against
 * its entry_hash (problems into v), the last audit_prune entry into
 * *pruned, the entries of the blocks into g; w: the walk, with its blocks.
 */
extern void verify_scan_log(Verdict *v, PruneSeen *pruned, Buckets *g, ChainWalk *w,
							Snapshot snap);

/*
 * After the scan: walk the buckets not walked yet and add every block's
 * result to v.  False, with the reason in *why, when the buckets were given
 * up: the walk must then read the entries again, sorted by SQL.
 */
extern bool verify_buckets_finish(Buckets *g, ChainWalk *w, Verdict *v, const char **why);

#endif
