/*
 * verify_walk.c — phi_audit_verify's verdict and its walk over the chain
 * (verify.h): the entries of each block in (xid, id) order, their hashes
 * gathered and the block checked against its row (count, hash, link to the
 * block before).  Fed by the buckets (verify_scan.c) one block at a time,
 * or by verify.c with every entry sorted by SQL.
 *
 * Invariants: a verdict keeps the first problem of each block and, of the
 * blocks, the earliest (0, an unsealed entry, last), whatever order the
 * blocks are walked in; a problem names an entry by (xid, id) only.
 *
 * Locking: none (memory only).
 */
#include "postgres.h"

#include "audit/verify.h"
#include "common/errors.h"
#include "core/chain.h"

/* Note a problem of block (0: an unsealed entry) in v (verify.h). */
void
verify_fail(Verdict *v, uint64 block, const char *fmt,...)
{
	va_list		ap;

	/* keep the problem of the earliest block; 0 (unsealed) comes last */
	if (!v->ok && (block == 0 || (v->bad_block != 0 && (int64) block >= v->bad_block)))
		return;
	va_start(ap, fmt);
	vsnprintf(v->problem, sizeof(v->problem), fmt, ap);
	va_end(ap);
	v->ok = false;
	v->bad_block = (int64) block;
}

/*
 * Check the hashes gathered for block b and its links to its predecessor
 * (for the first block left: first_prev, the checkpoint's hash or zeros).
 */
static void
finish_block(Verdict *v, SealedBlock *blocks, int64 bi, const uint8 *first_prev,
			 const uint8 *hashes, uint64 count)
{
	SealedBlock	   *b = &blocks[bi];
	const uint8 *expect_prev = bi > 0 ? blocks[bi - 1].hash : first_prev;
	uint8		h[PHIC_HASH_LEN];

	if (memcmp(b->prev, expect_prev, PHIC_HASH_LEN) != 0)
		verify_fail(v, b->no, "block %llu: prev_hash is not the previous block's hash",
					(unsigned long long) b->no);
	if (count != b->entries)
		verify_fail(v, b->no, "block %llu: holds %llu entries, records %llu",
					(unsigned long long) b->no, (unsigned long long) count,
					(unsigned long long) b->entries);
	if (phic_block_hash(b->prev, b->no, count, hashes, h) != PHIC_OK)
		errors_raise_core(PHIC_ERR_CRYPTO, "hash audit block");
	if (memcmp(h, b->hash, PHIC_HASH_LEN) != 0)
		verify_fail(v, b->no, "block %llu: block_hash does not match its entries",
					(unsigned long long) b->no);
}

/* Close the block being filled: check it, go on to the next (verify.h). */
void
verify_walk_close(ChainWalk *w)
{
	finish_block(w->v, w->blocks, w->bi, w->first_prev,
				 (const uint8 *) w->hashes.data, w->in_block);
	resetStringInfo(&w->hashes);
	w->bi++;
	w->in_block = 0;
}

/*
 * The next entry in (xid, id) order (hash: zeros when malformed, which the
 * scan reported): close the blocks that end before it, then count it into
 * its block; an entry below the block's range lies outside every block.
 */
void
verify_walk_entry(ChainWalk *w, uint64 xid, int64 id, const uint8 *hash)
{
	while (w->bi < w->nblocks && xid >= w->blocks[w->bi].hi)
		verify_walk_close(w);
	if (w->bi >= w->nblocks)
		return;					/* unsealed: checked by the scan */
	if (xid < w->blocks[w->bi].lo)
	{
		verify_fail(w->v, w->blocks[w->bi].no,
					"entry (xid %llu, id %lld) lies outside every block",
					(unsigned long long) xid, (long long) id);
		return;
	}
	appendBinaryStringInfo(&w->hashes, (const char *) hash, PHIC_HASH_LEN);
	w->in_block++;
	w->v->entries++;
}
