/*
 * verify.c — phi_audit_verify(): recompute every entry hash and block hash
 * of the audit chain from the checkpoint on, and compare the chain with a
 * digest kept outside (SPEC §6, §8; docs/format.md, "Verifying").
 *
 * The checkpoint and the blocks are read through SPI; one pass over the
 * log's heap (verify_scan.c) checks each record against its entry_hash and
 * gathers the entries of each block into a bucket, sorted by (xid, id) in
 * memory and walked (verify_walk.c) to recompute the block's hash: a few
 * buckets are open at a time, since the log is appended in roughly xid
 * order.  When the buckets are given up (they would outgrow
 * maintenance_work_mem, an entry comes after its block was walked and its
 * memory reused, the blocks are not contiguous), the walk reads the entry
 * hashes again through SQL (ORDER BY xid, id, a sort that spills to disk),
 * holding the hashes of one block at a time, as sealing does.  Both walks
 * see each block's entries in the same order: same verdict.
 *
 * Invariants: the checkpoint, the blocks and the entries are read in one
 * snapshot, the calling statement's (registered for the heap scan); the
 * verdict keeps the first problem of the earliest bad block, the scan's
 * problems of a block before the walk's; a problem names an entry by
 * (xid, id) only, never by its record (row keys may hold PHI).
 *
 * Locking: AccessShareLock on the tables read, held to the end of the
 * transaction, as any SELECT; nothing else.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"

#include "audit/cluster.h"
#include "audit/seal.h"
#include "audit/verify.h"
#include "common/format.h"
#include "common/spi.h"
#include "core/chain.h"

#define FETCH_BATCH 10000

/*
 * The walk when the buckets were given up: every entry again, sorted by
 * SQL, in the same snapshot.
 */
static void
walk_with_sql(ChainWalk *w)
{
	Portal		cur = SPI_cursor_open_with_args(NULL,
												"SELECT xid, id, entry_hash FROM phi_guard.audit_log ORDER BY xid, id",
												0, NULL, NULL, NULL, true, 0);

	w->bi = 0;
	w->in_block = 0;
	for (;;)
	{
		SPI_cursor_fetch(cur, true, FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			HeapTuple	t = SPI_tuptable->vals[i];
			TupleDesc	d = SPI_tuptable->tupdesc;
			bool		isnull;
			uint8		stored[PHIC_HASH_LEN];

			if (!audit_copy_hash(stored, t, d, 3))
				memset(stored, 0, sizeof(stored));
			verify_walk_entry(w, audit_getu64(t, d, 1, &isnull),
							  DatumGetInt64(SPI_getbinval(t, d, 2, &isnull)), stored);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(cur);
	while (w->bi < w->nblocks)
		verify_walk_close(w);
}

/*
 * Rule 4 of docs/format.md "Verifying": the chain still reaches the digest's
 * block with the same hash and the same count of entries up to it; after a
 * prune, the checkpoint's block can be checked, an older one cannot.
 */
static void
check_digest(Verdict *v, Jsonb *digest, const AuditCheckpoint *cp, const char *cp_hex,
			 const SealedBlock *blocks)
{
	JsonbValue *jb = getKeyJsonValueFromContainer(&digest->root, "block", 5, NULL);
	JsonbValue *jh = getKeyJsonValueFromContainer(&digest->root, "block_hash", 10, NULL);
	JsonbValue *je = getKeyJsonValueFromContainer(&digest->root, "entries", 7, NULL);
	int64		dblock,
				dentries,
				total = 0;
	char	   *hex;

	if (!jb || jb->type != jbvNumeric || !jh || jh->type != jbvString ||
		!je || je->type != jbvNumeric)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("digest must have numeric \"block\" and \"entries\" and a string \"block_hash\""),
				 errhint("Pass a value returned by phi_audit_digest().")));
	dblock = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(jb->val.numeric)));
	dentries = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(je->val.numeric)));
	hex = pnstrdup(jh->val.string.val, jh->val.string.len);
	if (dblock > v->blocks)
		verify_fail(v, v->blocks + 1, "the chain ends at block %lld but the digest names block %lld",
					(long long) v->blocks, (long long) dblock);
	else if (dblock > 0 && dblock < (int64) cp->block_no)
		verify_fail(v, dblock, "block %lld was pruned; the chain starts after block %llu",
					(long long) dblock, (unsigned long long) cp->block_no);
	else if (dblock > 0)
	{
		char		have[2 * PHIC_HASH_LEN + 1];

		/* the checkpoint's block, or one left after it */
		memcpy(have, cp_hex, sizeof(have));
		total = (int64) cp->entries;
		if (dblock > (int64) cp->block_no)
			format_hex_into(have, blocks[dblock - cp->block_no - 1].hash, PHIC_HASH_LEN);
		for (int64 i = 0; i < dblock - (int64) cp->block_no; i++)
			total += (int64) blocks[i].entries;
		if (pg_strcasecmp(have, hex) != 0)
			verify_fail(v, dblock, "block %lld differs from the digest", (long long) dblock);
		else if (total != dentries)
			verify_fail(v, dblock, "blocks 1..%lld hold %lld entries, the digest %lld",
						(long long) dblock, (long long) total, (long long) dentries);
	}
}

/*
 * Verify the chain (docs/format.md, "Verifying") in the calling statement's
 * snapshot: the checkpoint and the blocks through SPI, the entries in one
 * heap scan, then the blocks' hashes over the entries sorted by (xid, id).
 * The chain starts after the checkpoint, which must agree with the last
 * audit_prune entry; blocks and entries are counted from block 1
 * (cumulative).
 */
static Verdict
verify_chain(Jsonb *digest)
{
	Verdict		v = {true, 0, 0, 0, ""};
	SealedBlock *blocks;
	int64		nblocks;
	bool		isnull;
	AuditCheckpoint cp;
	PruneSeen	pruned = {0, 0, ""};
	char		cp_hex[2 * PHIC_HASH_LEN + 1];
	Buckets    *g;
	ChainWalk	w;
	const char *why;
	Snapshot	snap;
	bool		contiguous = true;

	SPI_connect();
	if (!audit_checkpoint_read(&cp, true))
		verify_fail(&v, cp.block_no + 1, "the checkpoint (block %llu) is malformed",
					(unsigned long long) cp.block_no);
	format_hex_into(cp_hex, cp.hash, PHIC_HASH_LEN);
	v.entries = (int64) cp.entries;
	(void) spi_run("SELECT block_no, xid_lo, xid_hi, entries, prev_hash, block_hash "
				   "FROM phi_guard.audit_block ORDER BY block_no", 0, NULL, NULL, NULL, true);
	nblocks = (int64) SPI_processed;
	blocks = palloc0(sizeof(SealedBlock) * (nblocks + 1));
	for (int64 i = 0; i < nblocks; i++)
	{
		HeapTuple	t = SPI_tuptable->vals[i];
		TupleDesc	d = SPI_tuptable->tupdesc;
		SealedBlock *b = &blocks[i];

		b->no = audit_getu64(t, d, 1, &isnull);
		b->lo = audit_getu64(t, d, 2, &isnull);
		b->hi = audit_getu64(t, d, 3, &isnull);
		b->entries = audit_getu64(t, d, 4, &isnull);
		if (!audit_copy_hash(b->prev, t, d, 5) || !audit_copy_hash(b->hash, t, d, 6))
			verify_fail(&v, b->no, "block %llu: malformed hash column", (unsigned long long) b->no);
		if (b->no != cp.block_no + (uint64) i + 1)
			verify_fail(&v, cp.block_no + (uint64) i + 1, "block %llu is missing",
						(unsigned long long) (cp.block_no + (uint64) i + 1));
		if (b->lo >= b->hi)
		{
			contiguous = false;
			verify_fail(&v, b->no, "block %llu: empty xid range", (unsigned long long) b->no);
		}
		if (i > 0 && b->lo != blocks[i - 1].hi)
		{
			contiguous = false;
			verify_fail(&v, b->no, "block %llu: xid_lo is not the previous block's xid_hi",
						(unsigned long long) b->no);
		}
	}
	v.blocks = (int64) cp.block_no + nblocks;
	SPI_freetuptable(SPI_tuptable);

	/* the entries, in the snapshot the blocks were read with */
	w.blocks = blocks;
	w.nblocks = nblocks;
	w.first_prev = cp.hash;
	initStringInfo(&w.hashes);
	g = verify_buckets_create(blocks, nblocks, contiguous);
	snap = RegisterSnapshot(GetActiveSnapshot());
	verify_scan_log(&v, &pruned, g, &w, snap);
	UnregisterSnapshot(snap);

	/* the blocks' hashes, walking the entries in (xid, id) order */
	if (verify_buckets_finish(g, &w, &v, &why))
		ereport(DEBUG1,
				(errmsg_internal("phi_audit_verify sorts the sealed entries in memory")));
	else
	{
		Verdict		wv = {true, 0, 0, 0, ""};

		ereport(DEBUG1,
				(errmsg_internal("phi_audit_verify sorts the sealed entries through SQL: %s", why)));
		w.v = &wv;
		walk_with_sql(&w);
		v.entries += wv.entries;
		if (!wv.ok)
			verify_fail(&v, (uint64) wv.bad_block, "%s", wv.problem);
	}

	/* the checkpoint is what the last prune recorded in the chain */
	if ((cp.block_no > 0 || pruned.block > 0) &&
		(pruned.block != (int64) cp.block_no || pruned.entries != (int64) cp.entries ||
		 pg_strcasecmp(pruned.hash, cp_hex) != 0))
		verify_fail(&v, cp.block_no + 1,
					"the checkpoint (block %llu) does not match the last audit_prune entry (block %lld)",
					(unsigned long long) cp.block_no, (long long) pruned.block);

	if (digest != NULL)
		check_digest(&v, digest, &cp, cp_hex, blocks);
	SPI_finish();
	return v;
}

PG_FUNCTION_INFO_V1(phi_guard_audit_verify);

/*
 * phi_audit_verify(digest jsonb DEFAULT NULL) returns
 * (ok, blocks, entries, first_bad_block, problem).
 */
Datum
phi_guard_audit_verify(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[5];
	bool		nulls[5] = {false, false, false, false, false};
	Verdict		v;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "phi_audit_verify must return a composite");
	v = verify_chain(PG_ARGISNULL(0) ? NULL : PG_GETARG_JSONB_P(0));
	values[0] = BoolGetDatum(v.ok);
	values[1] = Int64GetDatum(v.blocks);
	values[2] = Int64GetDatum(v.entries);
	values[3] = Int64GetDatum(v.bad_block);
	nulls[3] = v.ok || v.bad_block == 0;	/* 0: a problem outside every block */
	values[4] = v.ok ? (Datum) 0 : CStringGetTextDatum(v.problem);
	nulls[4] = v.ok;
	cluster_verify(PG_GETARG_DATUM(0), PG_ARGISNULL(0), values, nulls);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

