/*
 * verify.c — phi_audit_verify(): recompute every entry hash and block hash
 * of the audit chain from the checkpoint on, and compare the chain with a
 * digest kept outside (SPEC §6, §8; docs/format.md, "Verifying").
 *
 * One pass over the log's heap checks each record against its entry_hash
 * and gathers (xid, id, entry_hash) of the entries below the last block's
 * end into an array, which is sorted by (xid, id) in memory and walked
 * block by block to recompute the block hashes (each block's entry hashes
 * packed in place at the array's start).  Memory: 48 bytes per entry
 * (VerifyEntry), about 58 MB for 1.2 million entries.  When the array would
 * outgrow maintenance_work_mem it is dropped, and the walk reads the entry
 * hashes again through SQL (ORDER BY xid, id, a sort that spills to disk),
 * holding the hashes of one block at a time, as sealing does.
 * Both walks see the same entries in the same order: same verdict.
 *
 * Invariants: the checkpoint, the blocks and the entries are read in one
 * snapshot, the calling statement's (registered for the heap scan); the
 * verdict keeps the problem of the earliest bad block; a problem names an
 * entry by (xid, id) only, never by its record (row keys may hold PHI).
 *
 * Locking: AccessShareLock on the tables read, held to the end of the
 * transaction, as any SELECT; nothing else.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "audit/cluster.h"
#include "audit/seal.h"
#include "common/catalog.h"
#include "common/errors.h"
#include "common/format.h"
#include "common/spi.h"
#include "core/chain.h"

#define FETCH_BATCH 10000

typedef struct SealedBlock
{
	uint64		no,
				lo,
				hi,
				entries;
	uint8		prev[PHIC_HASH_LEN];
	uint8		hash[PHIC_HASH_LEN];
} SealedBlock;

typedef struct Verdict
{
	bool		ok;
	int64		blocks;
	int64		entries;		/* sealed entries checked */
	int64		bad_block;		/* 0: none, or an unsealed entry */
	char		problem[256];	/* not palloc'd: outlives SPI_finish */
} Verdict;

static void
fail(Verdict *v, uint64 block, const char *fmt,...) pg_attribute_printf(3, 4);

static void
fail(Verdict *v, uint64 block, const char *fmt,...)
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
		fail(v, b->no, "block %llu: prev_hash is not the previous block's hash",
			 (unsigned long long) b->no);
	if (count != b->entries)
		fail(v, b->no, "block %llu: holds %llu entries, records %llu",
			 (unsigned long long) b->no, (unsigned long long) count,
			 (unsigned long long) b->entries);
	if (phic_block_hash(b->prev, b->no, count, hashes, h) != PHIC_OK)
		errors_raise_core(PHIC_ERR_CRYPTO, "hash audit block");
	if (memcmp(h, b->hash, PHIC_HASH_LEN) != 0)
		fail(v, b->no, "block %llu: block_hash does not match its entries",
			 (unsigned long long) b->no);
}

/* The block whose range holds xid (binary search), or -1: unsealed or below. */
static int64
block_of(const SealedBlock *blocks, int64 nblocks, uint64 xid)
{
	int64		lo = 0,
				hi = nblocks - 1;

	while (lo <= hi)
	{
		int64		mid = (lo + hi) / 2;

		if (xid < blocks[mid].lo)
			hi = mid - 1;
		else if (xid >= blocks[mid].hi)
			lo = mid + 1;
		else
			return mid;
	}
	return -1;
}

/* The last audit_prune entry seen: what the checkpoint must hold. */
typedef struct PruneSeen
{
	int64		block;			/* 0: none seen */
	int64		entries;
	char		hash[2 * PHIC_HASH_LEN + 1];
} PruneSeen;

/* The value of key in object c, or NULL; nested: an object, else a scalar. */
static JsonbValue *
json_key(JsonbContainer *c, const char *key, bool nested)
{
	JsonbValue *j = getKeyJsonValueFromContainer(c, key, strlen(key), NULL);

	if (j == NULL || (j->type == jbvBinary) != nested)
		return NULL;
	return j;
}

/*
 * Note an entry whose hash matched if it is an audit_prune entry (a cheap
 * text test first, then the parsed record): keep the one naming the highest
 * block.  The test cannot match inside a JSON string: its quotes would be
 * escaped there.  (memmem: _GNU_SOURCE, which PostgreSQL builds with.)
 */
static void
note_prune(PruneSeen *seen, const char *r, int rlen)
{
	static const char needle[] = "\"kind\":\"audit_prune\"";
	const int	nlen = sizeof(needle) - 1;
	Jsonb	   *rec;
	JsonbValue *kind,
			   *detail,
			   *jb,
			   *jh,
			   *je;
	int64		block;

	if (memmem(r, rlen, needle, nlen) == NULL)
		return;
	rec = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(pnstrdup(r, rlen))));
	kind = json_key(&rec->root, "kind", false);
	if (kind == NULL || kind->type != jbvString ||
		kind->val.string.len != 11 || memcmp(kind->val.string.val, "audit_prune", 11) != 0 ||
		(detail = json_key(&rec->root, "detail", true)) == NULL)
		return;
	jb = json_key(detail->val.binary.data, "block", false);
	jh = json_key(detail->val.binary.data, "block_hash", false);
	je = json_key(detail->val.binary.data, "entries", false);
	if (!jb || jb->type != jbvNumeric || !jh || jh->type != jbvString ||
		jh->val.string.len != 2 * PHIC_HASH_LEN || !je || je->type != jbvNumeric)
		return;
	block = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(jb->val.numeric)));
	if (block <= seen->block)
		return;
	seen->block = block;
	seen->entries = DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(je->val.numeric)));
	memcpy(seen->hash, jh->val.string.val, 2 * PHIC_HASH_LEN);
	seen->hash[2 * PHIC_HASH_LEN] = '\0';
}

/* An entry below the last block's end, for the in-memory sort: 48 bytes. */
typedef struct VerifyEntry
{
	uint64		xid;
	int64		id;
	uint8		hash[PHIC_HASH_LEN];	/* zeros when malformed */
} VerifyEntry;

static inline int
entry_cmp(const VerifyEntry *a, const VerifyEntry *b)
{
	if (a->xid != b->xid)
		return a->xid < b->xid ? -1 : 1;
	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return 0;
}

/* sort_entries(items, n): by (xid, id); linear on presorted input */
#define ST_SORT sort_entries
#define ST_ELEMENT_TYPE VerifyEntry
#define ST_COMPARE(a, b) entry_cmp(a, b)
#define ST_CHECK_FOR_INTERRUPTS
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * The entries the walk needs: those below `below` (the highest xid_hi; an
 * entry at or above it lies after every block, unsealed).  items is NULL
 * once they would take more than max of them: the walk then reads them
 * through SQL.
 */
typedef struct EntryArray
{
	VerifyEntry *items;
	Size		n,
				cap,
				max;
	uint64		below;
} EntryArray;

/*
 * Start with room for hint entries (the blocks' counts: a hint only, they
 * may be tampered with), within maintenance_work_mem.
 */
static void
entries_init(EntryArray *a, uint64 hint, uint64 below)
{
	a->max = ((Size) maintenance_work_mem * 1024) / sizeof(VerifyEntry);
	a->below = below;
	a->n = 0;
	a->cap = Max(Min(hint, (uint64) a->max), 1024);
	a->items = hint > a->max ? NULL :
		palloc_extended(a->cap * sizeof(VerifyEntry), MCXT_ALLOC_HUGE);
}

/* Keep an entry the walk needs; drop them all when they outgrow max. */
static void
entries_add(EntryArray *a, uint64 xid, int64 id, const uint8 *hash)
{
	VerifyEntry *e;

	if (a->items == NULL || xid >= a->below)
		return;
	if (a->n == a->cap)
	{
		if (a->cap >= a->max)
		{
			pfree(a->items);
			a->items = NULL;
			return;
		}
		a->cap = Min(a->cap * 2, a->max);
		a->items = repalloc_huge(a->items, a->cap * sizeof(VerifyEntry));
	}
	e = &a->items[a->n++];
	e->xid = xid;
	e->id = id;
	memcpy(e->hash, hash, PHIC_HASH_LEN);
}

/* The attribute number (from 0) of the log's column name. */
static int
log_column(TupleDesc d, const char *name)
{
	for (int i = 0; i < d->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(d, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return i;
	}
	elog(ERROR, "phi_guard.audit_log has no column \"%s\"", name);
	return -1;					/* not reached */
}

/*
 * One pass over the log's heap, in physical order, with snapshot snap:
 * every record against its entry_hash (a mismatch is reported with the
 * block holding the entry, or as unsealed), audit_prune entries into
 * *pruned, and the entries the walk needs into a.
 */
static void
scan_log(Verdict *v, const SealedBlock *blocks, int64 nblocks, PruneSeen *pruned,
		 EntryArray *a, Snapshot snap)
{
	Relation	rel = table_open(catalog_relid_required("audit_log", "audit log table"),
								 AccessShareLock);
	TupleDesc	d = RelationGetDescr(rel);
	int			c_id = log_column(d, "id"),
				c_xid = log_column(d, "xid"),
				c_rec = log_column(d, "record"),
				c_hash = log_column(d, "entry_hash");
	Datum	   *values = palloc(sizeof(Datum) * d->natts);
	bool	   *nulls = palloc(sizeof(bool) * d->natts);
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext, "phi_audit_verify row",
												  ALLOCSET_DEFAULT_SIZES);
	/* no synchronized scan: the same order, hence the same verdict, every time */
	TableScanDesc scan = table_beginscan_strat(rel, snap, 0, NULL, true, false);
	HeapTuple	t;

	while ((t = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		uint8		stored[PHIC_HASH_LEN],
					computed[PHIC_HASH_LEN];
		uint64		xid;
		int64		id;
		bool		matches = false;
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		heap_deform_tuple(t, d, values, nulls);
		xid = nulls[c_xid] ? 0 : DatumGetUInt64(values[c_xid]);
		id = nulls[c_id] ? 0 : DatumGetInt64(values[c_id]);
		old = MemoryContextSwitchTo(row_cxt);
		if (!audit_hash_datum(stored, values[c_hash], nulls[c_hash]))
			memset(stored, 0, sizeof(stored));	/* reported just below */
		else if (!nulls[c_rec])
		{
			text	   *rec = DatumGetTextPP(values[c_rec]);
			const char *r = VARDATA_ANY(rec);
			int			rlen = VARSIZE_ANY_EXHDR(rec);
			const char *u = pg_server_to_any(r, rlen, PG_UTF8);

			matches = phic_sha256(u, u == r ? (size_t) rlen : strlen(u), computed) == PHIC_OK &&
				memcmp(stored, computed, PHIC_HASH_LEN) == 0;
			if (matches)
				note_prune(pruned, r, rlen);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(row_cxt);
		if (!matches)
		{
			int64		b = block_of(blocks, nblocks, xid);

			fail(v, b >= 0 ? blocks[b].no : 0,
				 "%sentry (xid %llu, id %lld): entry_hash does not match record",
				 b >= 0 ? "" : "unsealed ", (unsigned long long) xid, (long long) id);
		}
		entries_add(a, xid, id, stored);
	}
	table_endscan(scan);
	table_close(rel, NoLock);
	MemoryContextDelete(row_cxt);
}

/* Walking the entries in (xid, id) order, block by block. */
typedef struct ChainWalk
{
	Verdict    *v;
	SealedBlock *blocks;
	int64		nblocks;
	int64		bi;				/* the block being filled */
	uint64		in_block;		/* its entries so far */
	const uint8 *first_prev;	/* prev_hash of the first block left */

	/*
	 * The block's entry hashes, back to back: in place over the sorted array
	 * (in_place: the array), where the j-th hash of a block, taken from
	 * element k >= j, lands in bytes [32 j, 32 j + 32), below every element
	 * not yet read; or else in hashes (the walk through SQL).
	 */
	uint8	   *in_place;
	StringInfoData hashes;
} ChainWalk;

static void
walk_close_block(ChainWalk *w)
{
	finish_block(w->v, w->blocks, w->bi, w->first_prev,
				 w->in_place ? w->in_place : (const uint8 *) w->hashes.data, w->in_block);
	if (w->in_place == NULL)
		resetStringInfo(&w->hashes);
	w->bi++;
	w->in_block = 0;
}

/*
 * The next entry in (xid, id) order (hash: zeros when malformed, which the
 * scan reported): close the blocks that end before it, then count it into
 * its block; an entry below the block's range lies outside every block.
 */
static void
walk_entry(ChainWalk *w, uint64 xid, int64 id, const uint8 *hash)
{
	while (w->bi < w->nblocks && xid >= w->blocks[w->bi].hi)
		walk_close_block(w);
	if (w->bi >= w->nblocks)
		return;					/* unsealed: checked by the scan */
	if (xid < w->blocks[w->bi].lo)
	{
		fail(w->v, w->blocks[w->bi].no, "entry (xid %llu, id %lld) lies outside every block",
			 (unsigned long long) xid, (long long) id);
		return;
	}
	if (w->in_place != NULL)
		memmove(w->in_place + w->in_block * PHIC_HASH_LEN, hash, PHIC_HASH_LEN);
	else
		appendBinaryStringInfo(&w->hashes, (const char *) hash, PHIC_HASH_LEN);
	w->in_block++;
	w->v->entries++;
}

/* The walk over entries too many for memory: sorted by SQL, same snapshot. */
static void
walk_with_sql(ChainWalk *w)
{
	Portal		cur = SPI_cursor_open_with_args(NULL,
												"SELECT xid, id, entry_hash FROM phi_guard.audit_log ORDER BY xid, id",
												0, NULL, NULL, NULL, true, 0);

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
			walk_entry(w, audit_getu64(t, d, 1, &isnull),
					   DatumGetInt64(SPI_getbinval(t, d, 2, &isnull)), stored);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(cur);
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
		fail(v, v->blocks + 1, "the chain ends at block %lld but the digest names block %lld",
			 (long long) v->blocks, (long long) dblock);
	else if (dblock > 0 && dblock < (int64) cp->block_no)
		fail(v, dblock, "block %lld was pruned; the chain starts after block %llu",
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
			fail(v, dblock, "block %lld differs from the digest", (long long) dblock);
		else if (total != dentries)
			fail(v, dblock, "blocks 1..%lld hold %lld entries, the digest %lld",
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
	uint64		hint = 0,
				below = 0;
	bool		isnull;
	AuditCheckpoint cp;
	PruneSeen	pruned = {0, 0, ""};
	char		cp_hex[2 * PHIC_HASH_LEN + 1];
	EntryArray	a;
	ChainWalk	w;
	Snapshot	snap;

	SPI_connect();
	if (!audit_checkpoint_read(&cp, true))
		fail(&v, cp.block_no + 1, "the checkpoint (block %llu) is malformed",
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
			fail(&v, b->no, "block %llu: malformed hash column", (unsigned long long) b->no);
		if (b->no != cp.block_no + (uint64) i + 1)
			fail(&v, cp.block_no + (uint64) i + 1, "block %llu is missing",
				 (unsigned long long) (cp.block_no + (uint64) i + 1));
		if (b->lo >= b->hi)
			fail(&v, b->no, "block %llu: empty xid range", (unsigned long long) b->no);
		if (i > 0 && b->lo != blocks[i - 1].hi)
			fail(&v, b->no, "block %llu: xid_lo is not the previous block's xid_hi",
				 (unsigned long long) b->no);
		hint += b->entries;
		below = Max(below, b->hi);
	}
	v.blocks = (int64) cp.block_no + nblocks;
	SPI_freetuptable(SPI_tuptable);

	/* the entries, in the snapshot the blocks were read with */
	entries_init(&a, hint, below);
	snap = RegisterSnapshot(GetActiveSnapshot());
	scan_log(&v, blocks, nblocks, &pruned, &a, snap);
	UnregisterSnapshot(snap);

	w.v = &v;
	w.blocks = blocks;
	w.nblocks = nblocks;
	w.bi = 0;
	w.in_block = 0;
	w.first_prev = cp.hash;
	w.in_place = (uint8 *) a.items;
	if (a.items != NULL)
	{
		ereport(DEBUG1,
				(errmsg_internal("phi_audit_verify sorts the sealed entries in memory")));
		sort_entries(a.items, a.n);
		for (Size i = 0; i < a.n; i++)
			walk_entry(&w, a.items[i].xid, a.items[i].id, a.items[i].hash);
	}
	else
	{
		ereport(DEBUG1,
				(errmsg_internal("phi_audit_verify sorts the sealed entries through SQL: they need more than maintenance_work_mem (%d kB)",
								 maintenance_work_mem)));
		initStringInfo(&w.hashes);
		walk_with_sql(&w);
	}
	while (w.bi < nblocks)
		walk_close_block(&w);

	/* the checkpoint is what the last prune recorded in the chain */
	if ((cp.block_no > 0 || pruned.block > 0) &&
		(pruned.block != (int64) cp.block_no || pruned.entries != (int64) cp.entries ||
		 pg_strcasecmp(pruned.hash, cp_hex) != 0))
		fail(&v, cp.block_no + 1,
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

