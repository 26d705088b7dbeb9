/*
 * verify_scan.c — phi_audit_verify's pass over the log (verify.h): every
 * record against its entry_hash, the last audit_prune entry, and the
 * entries gathered per block and sorted in memory for the walk.
 *
 * The heap is read once, in physical order, two entries at a time so their
 * records are hashed together (phic_sha256_pair).  Each entry, 48 bytes
 * (xid, id, entry_hash), goes to the bucket of the block the walk in
 * (xid, id) order would be filling when it met it; a bucket that holds as
 * many entries of its block's range as the block records is sorted and
 * walked at once, and its array reused by the next bucket.  The log being
 * appended in roughly xid order, a few buckets are open at a time, however
 * long the log.  Anything else (an entry for a block already walked whose
 * array was reused, buckets outgrowing maintenance_work_mem, blocks that
 * are not contiguous) gives the buckets up: verify.c then walks the
 * entries sorted by SQL.  Each block's result is the one the walk over all
 * entries in (xid, id) order gives: the same entries in the same order.
 *
 * Invariants: the scan's problems are noted in heap order, before any of
 * the walk's (verify_buckets_finish adds those); a problem names an entry
 * by (xid, id) only, never by its record (row keys may hold PHI); records
 * are hashed as UTF-8, as written.
 *
 * Locking: AccessShareLock on the log, held to the end of the transaction,
 * as any SELECT; the scan runs in the caller's registered snapshot.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "audit/seal.h"
#include "audit/verify.h"
#include "common/catalog.h"
#include "core/chain.h"

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
 * Whether "kind":"audit_prune" occurs in r, the cheap test before an entry
 * is parsed: it cannot match inside a JSON string, where its quotes would
 * be escaped.  A memchr for its 'k', then a comparison at each: three times
 * faster than memmem over ordinary records, which hold two k's or so.
 */
static bool
may_be_prune(const char *r, int rlen)
{
	static const char needle[] = "\"kind\":\"audit_prune\"";
	const int	nlen = sizeof(needle) - 1;
	const char *p,
			   *end;

	if (rlen < nlen)
		return false;
	p = r + 1;
	end = r + rlen - nlen + 2;	/* a 'k' at or past end cannot start one */
	while (p < end && (p = memchr(p, 'k', end - p)) != NULL)
	{
		if (memcmp(p - 1, needle, nlen) == 0)
			return true;
		p++;
	}
	return false;
}

/*
 * Note an entry whose hash matched if it is an audit_prune entry (its
 * record r passed may_be_prune: now parsed): keep the one naming the
 * highest block.
 */
static void
note_prune(PruneSeen *seen, const char *r, int rlen)
{
	Jsonb	   *rec;
	JsonbValue *kind,
			   *detail,
			   *jb,
			   *jh,
			   *je;
	int64		block;

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

/* An entry gathered for the walk: 48 bytes. */
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
 * The entries of one block as the scan meets them, in heap order: those
 * the walk in (xid, id) order meets while it fills that block, that is its
 * own (xid_lo <= xid < xid_hi) and any below xid_lo that lie after the
 * previous block (outside every block).
 */
typedef struct Bucket
{
	VerifyEntry *items;			/* NULL: none yet, or given to another bucket */
	Size		n,
				cap;
	uint64		own;			/* entries within the block's range */
	bool		walked;			/* walked: the result below holds */
	uint64		walked_entries; /* the block's entries counted by the walk */
	char	   *problem;		/* the walk's first problem in the block, or NULL */
} Bucket;

/*
 * The buckets of every block, within maintenance_work_mem.  A bucket is
 * walked as soon as it holds as many entries as its block records, and its
 * array goes to a pool, reused by the next bucket that starts; until then
 * an entry that comes later for it reopens it.  An entry for a walked
 * bucket whose array was reused, or one that does not fit, ends the
 * buckets (b NULL): the walk then reads the entries again through SQL,
 * sorted there.  Used only when the blocks are contiguous (each xid_lo the
 * previous xid_hi, xid_lo < xid_hi): an entry's bucket is then the first
 * block ending above its xid.
 */
struct Buckets
{
	Bucket	   *b;				/* NULL: the walk goes through SQL */
	const char *why;			/* b NULL: why */
	Size		bytes,			/* held by the buckets' arrays */
				max;			/* maintenance_work_mem */
	int64	   *pool;			/* walked buckets, oldest first, from pool_head:
								 * their arrays can be taken */
	int64		pool_head,
				pool_tail;
	int64		last;			/* the previous entry's bucket */
	uint64		below;			/* the last block's xid_hi */
};

/* Buckets for the blocks, if they are contiguous (verify.h). */
Buckets *
verify_buckets_create(const SealedBlock *blocks, int64 nblocks, bool contiguous)
{
	Buckets    *g = palloc(sizeof(Buckets));

	g->b = contiguous ? palloc0(sizeof(Bucket) * (nblocks + 1)) : NULL;
	g->why = contiguous ? NULL : "the blocks' xid ranges are not contiguous";
	g->bytes = 0;
	g->max = (Size) maintenance_work_mem * 1024;
	/* a bucket enters the pool once at most: when its count is reached */
	g->pool = palloc(sizeof(int64) * (nblocks + 1));
	g->pool_head = g->pool_tail = 0;
	g->last = 0;
	g->below = nblocks > 0 ? blocks[nblocks - 1].hi : 0;
	return g;
}

/* Sort bucket i and walk it as block i into its result. */
static void
bucket_walk(Buckets *g, ChainWalk *w, int64 i)
{
	Bucket	   *bk = &g->b[i];
	Verdict		v = {true, 0, 0, 0, ""};

	if (bk->n > 1)
		sort_entries(bk->items, bk->n);
	w->v = &v;
	w->bi = i;
	w->in_block = 0;
	for (Size k = 0; k < bk->n; k++)
		verify_walk_entry(w, bk->items[k].xid, bk->items[k].id, bk->items[k].hash);
	verify_walk_close(w);
	w->v = NULL;
	bk->walked = true;
	bk->walked_entries = (uint64) v.entries;
	bk->problem = v.ok ? NULL : pstrdup(v.problem);
}

/* Free the array of bucket bk. */
static void
bucket_free(Buckets *g, Bucket *bk)
{
	if (bk->items != NULL)
		pfree(bk->items);
	g->bytes -= bk->cap * sizeof(VerifyEntry);
	bk->items = NULL;
	bk->cap = 0;
}

/*
 * The oldest array in the pool (its bucket keeps its result but can no
 * longer reopen), or -1 when the pool is empty.
 */
static int64
pool_take(Buckets *g)
{
	while (g->pool_head < g->pool_tail)
	{
		int64		j = g->pool[g->pool_head++];

		/* skip buckets reopened since */
		if (g->b[j].walked && g->b[j].items != NULL)
			return j;
	}
	return -1;
}

/*
 * Room for one more entry in bucket i: a new bucket wants as many as its
 * block records (a hint only: it may have been tampered with), from the
 * pool's oldest array if that is large enough; a full one doubles.  Arrays
 * of the pool are freed for room within max; false when there is none.
 */
static bool
bucket_make_room(Buckets *g, ChainWalk *w, int64 i)
{
	Bucket	   *bk = &g->b[i];
	Size		cap = bk->cap > 0 ? bk->cap * 2 : Max(Min(w->blocks[i].entries, (uint64) 1 << 24), 16);
	int64		j;

	if (bk->cap == 0 && (j = pool_take(g)) >= 0)
	{
		bk->items = g->b[j].items;
		bk->cap = g->b[j].cap;
		g->b[j].items = NULL;
		g->b[j].cap = 0;
		if (bk->cap >= cap)
			return true;
		bucket_free(g, bk);		/* too small: a new one */
	}
	while (g->bytes + (cap - bk->cap) * sizeof(VerifyEntry) > g->max &&
		   (j = pool_take(g)) >= 0)
		bucket_free(g, &g->b[j]);
	if (g->bytes + (cap - bk->cap) * sizeof(VerifyEntry) > g->max)
	{
		if (g->bytes + sizeof(VerifyEntry) > g->max)
			return false;
		cap = bk->cap + (g->max - g->bytes) / sizeof(VerifyEntry);
	}
	bk->items = bk->items == NULL ?
		palloc_extended(cap * sizeof(VerifyEntry), MCXT_ALLOC_HUGE) :
		repalloc_huge(bk->items, cap * sizeof(VerifyEntry));
	g->bytes += (cap - bk->cap) * sizeof(VerifyEntry);
	bk->cap = cap;
	return true;
}

/* End the buckets: the walk goes through SQL, for the reason why. */
static void
buckets_drop(Buckets *g, int64 nblocks, const char *why)
{
	for (int64 i = 0; i < nblocks; i++)
		if (g->b[i].items != NULL)
			pfree(g->b[i].items);
	pfree(g->b);
	g->b = NULL;
	g->why = why;
}

/* Put an entry the walk needs into its block's bucket, or end the buckets. */
static void
buckets_add(Buckets *g, ChainWalk *w, uint64 xid, int64 id, const uint8 *hash)
{
	const SealedBlock *blocks = w->blocks;
	int64		i = g->last;
	Bucket	   *bk;
	VerifyEntry *e;

	if (g->b == NULL || xid >= g->below)
		return;
	/* the first block ending above xid: most often the previous entry's */
	if (xid >= blocks[i].hi || (i > 0 && xid < blocks[i - 1].hi))
	{
		int64		lo = 0,
					hi = w->nblocks - 1;

		while (lo < hi)
		{
			int64		mid = (lo + hi) / 2;

			if (blocks[mid].hi > xid)
				hi = mid;
			else
				lo = mid + 1;
		}
		g->last = i = lo;
	}
	bk = &g->b[i];
	if (bk->walked)
	{
		if (bk->items == NULL)
		{
			buckets_drop(g, w->nblocks,
						 psprintf("an entry of block %llu came after the block was complete",
								  (unsigned long long) blocks[i].no));
			return;
		}
		bk->walked = false;		/* reopened: walked again at the end */
	}
	if (bk->n == bk->cap && !bucket_make_room(g, w, i))
	{
		buckets_drop(g, w->nblocks,
					 psprintf("they need more than maintenance_work_mem (%d kB)",
							  maintenance_work_mem));
		return;
	}
	e = &bk->items[bk->n++];
	e->xid = xid;
	e->id = id;
	memcpy(e->hash, hash, PHIC_HASH_LEN);
	if (xid >= blocks[i].lo && ++bk->own == blocks[i].entries)
	{
		/* walked now; its array, left whole, joins the pool (once) */
		bucket_walk(g, w, i);
		g->pool[g->pool_tail++] = i;
	}
}

/* Walk what is left, add each block's result to v (verify.h). */
bool
verify_buckets_finish(Buckets *g, ChainWalk *w, Verdict *v, const char **why)
{
	if (g->b == NULL)
	{
		*why = g->why;
		return false;
	}
	for (int64 i = 0; i < w->nblocks; i++)
	{
		Bucket	   *bk = &g->b[i];

		if (!bk->walked)
			bucket_walk(g, w, i);
		v->entries += (int64) bk->walked_entries;
		if (bk->problem != NULL)
			verify_fail(v, w->blocks[i].no, "%s", bk->problem);
	}
	return true;
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

/* The log's columns the scan reads (attribute numbers from 0). */
typedef struct LogColumns
{
	int			id,
				xid,
				rec,
				hash;
} LogColumns;

/* An entry read by the scan, its record to be hashed (with the next one's). */
typedef struct ScanEntry
{
	uint64		xid;
	int64		id;
	uint8		stored[PHIC_HASH_LEN];	/* entry_hash; zeros when malformed */
	const char *u;				/* the record in UTF-8, ulen bytes; NULL: nothing
								 * to hash (no record, or a malformed hash) */
	size_t		ulen;
	const char *r;				/* the record as stored, rlen bytes, when it may
								 * be an audit_prune entry; else NULL */
	int			rlen;
} ScanEntry;

/*
 * Read tuple t of the log into *e (values, nulls: room for its columns);
 * what it points to is t's, or allocated in the current memory context.
 */
static void
scan_read(ScanEntry *e, HeapTuple t, TupleDesc d, const LogColumns *c, Datum *values, bool *nulls)
{
	heap_deform_tuple(t, d, values, nulls);
	e->xid = nulls[c->xid] ? 0 : DatumGetUInt64(values[c->xid]);
	e->id = nulls[c->id] ? 0 : DatumGetInt64(values[c->id]);
	e->u = NULL;
	e->r = NULL;
	if (!audit_hash_datum(e->stored, values[c->hash], nulls[c->hash]))
		memset(e->stored, 0, sizeof(e->stored));	/* reported by scan_check */
	else if (!nulls[c->rec])
	{
		text	   *rec = DatumGetTextPP(values[c->rec]);
		const char *r = VARDATA_ANY(rec);
		int			rlen = VARSIZE_ANY_EXHDR(rec);

		e->u = pg_server_to_any(r, rlen, PG_UTF8);
		e->ulen = e->u == r ? (size_t) rlen : strlen(e->u);
		if (may_be_prune(r, rlen))
		{
			e->r = r;
			e->rlen = rlen;
		}
	}
}

/*
 * Copy what *e points to off its page: the UTF-8 record into buf, the
 * stored one (if kept) into the current memory context.
 */
static void
scan_keep(ScanEntry *e, StringInfo buf)
{
	resetStringInfo(buf);
	appendBinaryStringInfo(buf, e->u, (int) e->ulen);
	e->u = buf->data;
	if (e->r != NULL)
		e->r = pnstrdup(e->r, e->rlen);
}

/*
 * Check the n (1 or 2) entries e, in heap order: each record against its
 * entry_hash (two hashed at once), audit_prune entries into *pruned (parsed
 * in row_cxt), then the entry into its bucket.
 */
static void
scan_check(Verdict *v, PruneSeen *pruned, Buckets *g, ChainWalk *w, const ScanEntry *e, int n,
		   MemoryContext row_cxt)
{
	uint8		computed[2][PHIC_HASH_LEN];
	bool		hashed[2] = {false, false};

	if (n == 2 && e[0].u != NULL && e[1].u != NULL)
		hashed[0] = hashed[1] =
			phic_sha256_pair(e[0].u, e[0].ulen, computed[0], e[1].u, e[1].ulen, computed[1]) == PHIC_OK;
	else
		for (int i = 0; i < n; i++)
			hashed[i] = e[i].u != NULL && phic_sha256(e[i].u, e[i].ulen, computed[i]) == PHIC_OK;
	for (int i = 0; i < n; i++)
	{
		if (hashed[i] && memcmp(e[i].stored, computed[i], PHIC_HASH_LEN) == 0)
		{
			if (e[i].r != NULL)
			{
				MemoryContext old = MemoryContextSwitchTo(row_cxt);

				note_prune(pruned, e[i].r, e[i].rlen);
				MemoryContextSwitchTo(old);
			}
		}
		else
		{
			int64		b = block_of(w->blocks, w->nblocks, e[i].xid);

			verify_fail(v, b >= 0 ? w->blocks[b].no : 0,
						"%sentry (xid %llu, id %lld): entry_hash does not match record",
						b >= 0 ? "" : "unsealed ", (unsigned long long) e[i].xid, (long long) e[i].id);
		}
		buckets_add(g, w, e[i].xid, e[i].id, e[i].stored);
	}
}

/*
 * One pass over the log's heap, in physical order, with snapshot snap
 * (verify.h): every record against its entry_hash (a mismatch is reported
 * with the block holding the entry, or as unsealed), audit_prune entries
 * into *pruned, and the entries the walk needs into their buckets.
 * Entries are read two at a time, so their records are hashed together.
 */
void
verify_scan_log(Verdict *v, PruneSeen *pruned, Buckets *g, ChainWalk *w, Snapshot snap)
{
	Relation	rel = table_open(catalog_relid_required("audit_log", "audit log table"),
								 AccessShareLock);
	TupleDesc	d = RelationGetDescr(rel);
	LogColumns	c;
	Datum	   *values = palloc(sizeof(Datum) * d->natts);
	bool	   *nulls = palloc(sizeof(bool) * d->natts);
	MemoryContext row_cxt = AllocSetContextCreate(CurrentMemoryContext, "phi_audit_verify row",
												  ALLOCSET_DEFAULT_SIZES);
	StringInfoData kept;
	ScanEntry	e[2];
	int			n = 0;

	/* no synchronized scan: the same order, hence the same verdict, every time */
	TableScanDesc scan = table_beginscan_strat(rel, snap, 0, NULL, true, false);
	HeapTuple	t;

	c.id = log_column(d, "id");
	c.xid = log_column(d, "xid");
	c.rec = log_column(d, "record");
	c.hash = log_column(d, "entry_hash");
	initStringInfo(&kept);
	while ((t = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		MemoryContext old;

		CHECK_FOR_INTERRUPTS();
		old = MemoryContextSwitchTo(row_cxt);
		scan_read(&e[n], t, d, &c, values, nulls);
		if (n == 0 && e[0].u != NULL)
		{
			/* hashed with the next entry's, which may lie on another page */
			scan_keep(&e[0], &kept);
			MemoryContextSwitchTo(old);
			n = 1;
			continue;
		}
		MemoryContextSwitchTo(old);
		scan_check(v, pruned, g, w, e, n + 1, row_cxt);
		MemoryContextReset(row_cxt);
		n = 0;
	}
	if (n == 1)
		scan_check(v, pruned, g, w, e, 1, row_cxt);
	table_endscan(scan);
	table_close(rel, NoLock);
	MemoryContextDelete(row_cxt);
}

