/*
 * audit_seal.c — chaining committed entries into blocks, verifying the
 * chain, and the digest an auditor keeps outside the database (SPEC §6).
 *
 * Sealing uses transaction-id horizons, not locks on writers.  A block
 * covers xid_lo <= xid < xid_hi where xid_hi is the xmin of a snapshot taken
 * after the sealer holds EXCLUSIVE lock on audit_block (sealers serialise,
 * writers never touch audit_block): every transaction below xmin has ended,
 * so the block's set of visible entries can never change again — an aborted
 * transaction or rolled-back savepoint leaves nothing, a committed one is
 * wholly inside.  A transaction still running (long, or prepared for 2PC)
 * only holds xid_hi back; its entries go into a later block.
 *
 * After a prune (prune.c) the chain starts from the checkpoint, the last
 * pruned block (audit_checkpoint): the next block after it has its hash as
 * prev_hash, and entry counts stay cumulative.  Sealing, verification and
 * the digest read the checkpoint in the same snapshot as the blocks; prune
 * takes the sealers' lock, so a seal never sees half a prune.
 */
#include "postgres.h"

#include "access/brin.h"
#include "access/genam.h"
#include "access/relation.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "audit/seal.h"
#include "audit/shmem.h"
#include "common/catalog.h"
#include "common/errors.h"
#include "common/format.h"
#include "common/spi.h"
#include "core/chain.h"

#define FETCH_BATCH 10000

static uint64
getu64(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(tup, desc, col, isnull);

	return *isnull ? 0 : DatumGetUInt64(d);
}

/* A 32-byte hash column into dst; false when NULL or of another length. */
static bool
copy_hash(uint8 *dst, HeapTuple t, TupleDesc d, int col)
{
	bool		isnull;
	Datum		x = SPI_getbinval(t, d, col, &isnull);
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(x);
	if (VARSIZE_ANY_EXHDR(b) != PHIC_HASH_LEN)
		return false;
	memcpy(dst, VARDATA_ANY(b), PHIC_HASH_LEN);
	return true;
}

void
audit_require_read_committed(const char *fn)
{
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_ACTIVE_SQL_TRANSACTION),
				 errmsg("%s must run in a READ COMMITTED transaction", fn),
				 errdetail("A transaction snapshot could predate blocks sealed since.")));
}

/*
 * The checkpoint (seal.h).  The table is absent while the extension's
 * schema is older than 0.3.0: nothing was pruned then.
 */
bool
audit_checkpoint_read(AuditCheckpoint *cp, bool read_only)
{
	bool		isnull;
	bool		ok = true;

	memset(cp, 0, sizeof(*cp));
	if (!OidIsValid(catalog_relid("audit_checkpoint")))
		return true;
	(void) spi_run("SELECT block_no, block_hash, entries FROM phi_guard.audit_checkpoint "
				   "ORDER BY block_no DESC LIMIT 1", 0, NULL, NULL, NULL, read_only);
	if (SPI_processed == 0)
		return true;
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;
		int64		no = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
		int64		n;

		if (isnull || no <= 0)
			ok = false;
		else
			cp->block_no = (uint64) no;
		if (!copy_hash(cp->hash, t, d, 2))
			ok = false;
		n = DatumGetInt64(SPI_getbinval(t, d, 3, &isnull));
		if (isnull || n < 0)
			ok = false;
		else
			cp->entries = (uint64) n;
	}
	return ok;
}

/* As audit_checkpoint_read, but a malformed checkpoint is an ERROR (seal.h). */
void
audit_checkpoint_require(AuditCheckpoint *cp, bool read_only)
{
	if (!audit_checkpoint_read(cp, read_only))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the audit checkpoint is malformed"),
				 errhint("Run phi_audit_verify() to examine the chain.")));
}

/*
 * Summarize the audit log's newly completed BRIN ranges, so that the next
 * seal's range scan skips what is already sealed.  Only complete ranges:
 * once the range being filled has a summary, every insert into it must
 * update that summary under an exclusive page lock (brin_summarize_new_values
 * includes it), which would serialise writers.  Skipped, never waited for,
 * while VACUUM holds the lock; autosummarize covers the rest.
 */
static void
summarize_new_ranges(void)
{
	static BlockNumber done_below = 0;	/* ranges below this: summarized */
	Oid			heap = catalog_relid("audit_log");
	Oid			index = catalog_relid("audit_log_xid");
	Relation	irel,
				hrel;
	BlockNumber ppr,
				complete;

	if (!OidIsValid(heap) || !OidIsValid(index) ||
		!ConditionalLockRelationOid(heap, ShareUpdateExclusiveLock))
		return;
	hrel = relation_open(heap, NoLock);
	irel = index_open(index, AccessShareLock);
	ppr = BrinGetPagesPerRange(irel);
	complete = (RelationGetNumberOfBlocks(hrel) / ppr) * ppr;
	index_close(irel, NoLock);
	relation_close(hrel, NoLock);
	if (done_below > complete)
		done_below = 0;			/* the table was rewritten */
	for (BlockNumber start = done_below; start < complete; start += ppr)
		(void) DirectFunctionCall2(brin_summarize_range, ObjectIdGetDatum(index),
								   Int64GetDatum((int64) start));
	done_below = complete;
}

/*
 * Seal every committed entry below the current horizon into one new block.
 * Returns the number of entries sealed (0: nothing new; -1: !wait and the
 * locks are taken) and sets *horizon (see seal.h).  Fresh snapshots
 * throughout (READ COMMITTED is required).
 */
int64
audit_seal(bool wait, uint64 *horizon)
{
	bool		isnull;
	uint64		hi,
				lo,
				block_no = 1,
				n = 0;
	uint8		prev[PHIC_HASH_LEN] = {0};
	uint8		hash[PHIC_HASH_LEN];
	StringInfoData hashes;
	Portal		cur;
	Oid			types[6] = {XID8OID, XID8OID};
	Datum		values[6];
	phic_status st;
	Oid			block_rel = catalog_relid_required("audit_block", "audit block table");
	Oid			log_rel = catalog_relid_required("audit_log", "audit log table");

	audit_require_read_committed("phi_audit_seal()");
	*horizon = 0;
	/* sealers serialise on audit_block; the worker never waits for a lock */
	if (wait)
		LockRelationOid(block_rel, ExclusiveLock);
	else if (!ConditionalLockRelationOid(block_rel, ExclusiveLock) ||
			 !ConditionalLockRelationOid(log_rel, AccessShareLock))
		return -1;
	SPI_connect();
	(void) spi_run("SELECT pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())",
				   0, NULL, NULL, NULL, false);
	hi = getu64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	(void) spi_run("SELECT block_no, xid_hi, block_hash FROM phi_guard.audit_block "
				   "ORDER BY block_no DESC LIMIT 1", 0, NULL, NULL, NULL, false);
	if (SPI_processed > 0)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		bytea	   *ph = DatumGetByteaPP(SPI_getbinval(t, SPI_tuptable->tupdesc, 3, &isnull));

		block_no = getu64(t, SPI_tuptable->tupdesc, 1, &isnull) + 1;
		lo = getu64(t, SPI_tuptable->tupdesc, 2, &isnull);
		if (VARSIZE_ANY_EXHDR(ph) != PHIC_HASH_LEN)
			elog(ERROR, "phi_guard: audit block %llu has a malformed hash",
				 (unsigned long long) (block_no - 1));
		memcpy(prev, VARDATA_ANY(ph), PHIC_HASH_LEN);
	}
	else
	{
		AuditCheckpoint cp;

		/*
		 * No block: the chain starts at block 1, or after the checkpoint when
		 * every block was pruned.  The first block starts at the smallest
		 * entry left (what a prune left is above the pruned blocks' range).
		 */
		audit_checkpoint_require(&cp, false);
		block_no = cp.block_no + 1;
		memcpy(prev, cp.hash, PHIC_HASH_LEN);
		values[0] = UInt64GetDatum(hi);
		(void) spi_run("SELECT pg_catalog.min(xid) FROM phi_guard.audit_log "
					   "WHERE xid OPERATOR(pg_catalog.<) $1", 1, types, values, NULL, false);
		lo = getu64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		if (isnull)
			lo = hi;
	}
	if (lo > hi)
	{
		/*
		 * The chain ends above this cluster's transaction ids: the audit log
		 * was restored from a cluster that was further ahead.  New entries
		 * would fall inside sealed ranges; seal nothing and say so (the
		 * worker once, phi_audit_seal() every time).
		 */
		static bool warned = false;

		SPI_finish();
		if (!IsBackgroundWorker || !warned)
			ereport(IsBackgroundWorker ? WARNING : ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("the audit chain's horizon is ahead of this cluster's transaction ids"),
					 errdetail("The last block ends at transaction %llu; this cluster is at %llu. The audit log was restored from another cluster.",
							   (unsigned long long) lo, (unsigned long long) hi),
					 errhint("Start the restore target with pg_resetwal -e above the source's epoch; see the README section \"Backup and restore\".")));
		warned = true;
		return 0;
	}
	if (lo == hi)
	{
		SPI_finish();
		*horizon = hi;
		return 0;
	}

	initStringInfo(&hashes);
	values[0] = UInt64GetDatum(lo);
	values[1] = UInt64GetDatum(hi);
	/* a fresh snapshot, taken after the horizon: sees every xid below hi */
	cur = SPI_cursor_open_with_args(NULL,
									"SELECT entry_hash FROM phi_guard.audit_log "
									"WHERE xid OPERATOR(pg_catalog.>=) $1 AND xid OPERATOR(pg_catalog.<) $2 "
									"ORDER BY xid, id",
									2, types, values, NULL, false, 0);
	for (;;)
	{
		SPI_cursor_fetch(cur, true, FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			bytea	   *eh = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[i],
														   SPI_tuptable->tupdesc, 1, &isnull));

			if (isnull || VARSIZE_ANY_EXHDR(eh) != PHIC_HASH_LEN)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("audit entry has a malformed entry_hash"),
						 errhint("Run phi_audit_verify() to locate it.")));
			appendBinaryStringInfo(&hashes, VARDATA_ANY(eh), PHIC_HASH_LEN);
			n++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(cur);
	if (n == 0)
	{
		SPI_finish();
		*horizon = hi;
		return 0;
	}
	st = phic_block_hash(prev, block_no, n, (const uint8 *) hashes.data, hash);
	if (st != PHIC_OK)
		errors_raise_core(st, "hash audit block");

	{
		bytea	   *pv = palloc(VARHDRSZ + PHIC_HASH_LEN);
		bytea	   *hv = palloc(VARHDRSZ + PHIC_HASH_LEN);
		Oid			t6[6] = {INT8OID, XID8OID, XID8OID, INT8OID, BYTEAOID, BYTEAOID};

		SET_VARSIZE(pv, VARHDRSZ + PHIC_HASH_LEN);
		SET_VARSIZE(hv, VARHDRSZ + PHIC_HASH_LEN);
		memcpy(VARDATA(pv), prev, PHIC_HASH_LEN);
		memcpy(VARDATA(hv), hash, PHIC_HASH_LEN);
		values[0] = Int64GetDatum((int64) block_no);
		values[1] = UInt64GetDatum(lo);
		values[2] = UInt64GetDatum(hi);
		values[3] = Int64GetDatum((int64) n);
		values[4] = PointerGetDatum(pv);
		values[5] = PointerGetDatum(hv);
		(void) spi_run("INSERT INTO phi_guard.audit_block "
					   "(block_no, xid_lo, xid_hi, entries, prev_hash, block_hash, sealed_at) "
					   "VALUES ($1, $2, $3, $4, $5, $6, pg_catalog.clock_timestamp())",
					   6, t6, values, NULL, false);
	}
	SPI_finish();
	summarize_new_ranges();
	*horizon = hi;
	return (int64) n;
}

PG_FUNCTION_INFO_V1(phi_guard_audit_seal);

/*
 * phi_audit_seal() returns int8: have the worker write the access events
 * queued so far, then seal now, waiting for a seal in progress elsewhere;
 * returns the entries sealed.
 */
Datum
phi_guard_audit_seal(PG_FUNCTION_ARGS)
{
	uint64		horizon;

	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot seal the audit log on a standby"),
				 errhint("The primary seals; its blocks replicate here.")));
	if (!audit_queue_wait_written())
		ereport(WARNING,
				(errmsg("phi_guard audit worker did not write the queued access entries in time"),
				 errdetail("They will be sealed in a later block.")));
	/* not recorded as sealed: this transaction may still roll back */
	PG_RETURN_INT64(audit_seal(true, &horizon));
}

/* ---------------------------------------------------------------------
 * Verification
 * --------------------------------------------------------------------- */

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
			 StringInfo hashes, uint64 count)
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
	if (phic_block_hash(b->prev, b->no, count, (const uint8 *) hashes->data, h) != PHIC_OK)
		errors_raise_core(PHIC_ERR_CRYPTO, "hash audit block");
	if (memcmp(h, b->hash, PHIC_HASH_LEN) != 0)
		fail(v, b->no, "block %llu: block_hash does not match its entries",
			 (unsigned long long) b->no);
	resetStringInfo(hashes);
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
 * escaped there.
 */
static void
note_prune(PruneSeen *seen, const char *r, int rlen)
{
	static const char needle[] = "\"kind\":\"audit_prune\"";
	const int	nlen = sizeof(needle) - 1;
	const char *p = r;
	const char *end = r + rlen;
	Jsonb	   *rec;
	JsonbValue *kind,
			   *detail,
			   *jb,
			   *jh,
			   *je;
	int64		block;

	while ((p = memchr(p, '"', end - p)) != NULL &&
		   (end - p < nlen || memcmp(p, needle, nlen) != 0))
		p++;
	if (p == NULL)
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

/*
 * Two passes over the log, both with the caller's snapshot: every record
 * against its entry_hash in physical order (no sort of whole records), then
 * (xid, id, entry_hash) sorted, to rebuild each block's hash.  The chain
 * starts after the checkpoint, which must agree with the last audit_prune
 * entry; blocks and entries are counted from block 1 (cumulative).
 */
static Verdict
verify_chain(Jsonb *digest)
{
	Verdict		v = {true, 0, 0, 0, ""};
	SealedBlock	   *blocks;
	int64		nblocks,
				bi = 0;
	uint64		in_block = 0;
	StringInfoData hashes;
	Portal		cur;
	bool		isnull;
	AuditCheckpoint cp;
	PruneSeen	pruned = {0, 0, ""};
	char		cp_hex[2 * PHIC_HASH_LEN + 1];

	/* checkpoint, blocks and entries: one snapshot, the caller's */
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
		SealedBlock	   *b = &blocks[i];

		b->no = getu64(t, d, 1, &isnull);
		b->lo = getu64(t, d, 2, &isnull);
		b->hi = getu64(t, d, 3, &isnull);
		b->entries = getu64(t, d, 4, &isnull);
		if (!copy_hash(b->prev, t, d, 5) || !copy_hash(b->hash, t, d, 6))
			fail(&v, b->no, "block %llu: malformed hash column", (unsigned long long) b->no);
		if (b->no != cp.block_no + (uint64) i + 1)
			fail(&v, cp.block_no + (uint64) i + 1, "block %llu is missing",
				 (unsigned long long) (cp.block_no + (uint64) i + 1));
		if (b->lo >= b->hi)
			fail(&v, b->no, "block %llu: empty xid range", (unsigned long long) b->no);
		if (i > 0 && b->lo != blocks[i - 1].hi)
			fail(&v, b->no, "block %llu: xid_lo is not the previous block's xid_hi",
				 (unsigned long long) b->no);
	}
	v.blocks = (int64) cp.block_no + nblocks;
	SPI_freetuptable(SPI_tuptable);

	/* pass 1: each record against its entry_hash */
	cur = SPI_cursor_open_with_args(NULL,
									"SELECT xid, id, record, entry_hash FROM phi_guard.audit_log",
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
			uint64		xid = getu64(t, d, 1, &isnull);
			int64		id = DatumGetInt64(SPI_getbinval(t, d, 2, &isnull));
			text	   *rec = DatumGetTextPP(SPI_getbinval(t, d, 3, &isnull));
			uint8		stored[PHIC_HASH_LEN],
						computed[PHIC_HASH_LEN];
			const char *r = VARDATA_ANY(rec);
			int			rlen = VARSIZE_ANY_EXHDR(rec);
			const char *u = pg_server_to_any(r, rlen, PG_UTF8);
			int64		b;

			if (copy_hash(stored, t, d, 4) &&
				phic_sha256(u, u == r ? (size_t) rlen : strlen(u), computed) == PHIC_OK &&
				memcmp(stored, computed, PHIC_HASH_LEN) == 0)
			{
				note_prune(&pruned, r, rlen);
				continue;
			}
			b = block_of(blocks, nblocks, xid);
			fail(&v, b >= 0 ? blocks[b].no : 0,
				 "%sentry (xid %llu, id %lld): entry_hash does not match record",
				 b >= 0 ? "" : "unsealed ", (unsigned long long) xid, (long long) id);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(cur);

	/* pass 2: block hashes over entry hashes in (xid, id) order */
	initStringInfo(&hashes);
	cur = SPI_cursor_open_with_args(NULL,
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
			uint64		xid = getu64(t, d, 1, &isnull);
			int64		id = DatumGetInt64(SPI_getbinval(t, d, 2, &isnull));
			uint8		stored[PHIC_HASH_LEN];

			/* close blocks that end before this entry */
			while (bi < nblocks && xid >= blocks[bi].hi)
			{
				finish_block(&v, blocks, bi, cp.hash, &hashes, in_block);
				bi++;
				in_block = 0;
			}
			if (bi >= nblocks)
				continue;		/* unsealed: checked in pass 1 */
			if (xid < blocks[bi].lo)
			{
				fail(&v, blocks[bi].no, "entry (xid %llu, id %lld) lies outside every block",
					 (unsigned long long) xid, (long long) id);
				continue;
			}
			if (!copy_hash(stored, t, d, 3))
				memset(stored, 0, sizeof(stored));	/* reported by pass 1 */
			appendBinaryStringInfo(&hashes, (const char *) stored, PHIC_HASH_LEN);
			in_block++;
			v.entries++;
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(cur);
	for (; bi < nblocks; bi++)
	{
		finish_block(&v, blocks, bi, cp.hash, &hashes, in_block);
		in_block = 0;
	}

	/* the checkpoint is what the last prune recorded in the chain */
	if ((cp.block_no > 0 || pruned.block > 0) &&
		(pruned.block != (int64) cp.block_no || pruned.entries != (int64) cp.entries ||
		 pg_strcasecmp(pruned.hash, cp_hex) != 0))
		fail(&v, cp.block_no + 1,
			 "the checkpoint (block %llu) does not match the last audit_prune entry (block %lld)",
			 (unsigned long long) cp.block_no, (long long) pruned.block);

	if (digest != NULL)
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
		if (dblock > v.blocks)
			fail(&v, v.blocks + 1, "the chain ends at block %lld but the digest names block %lld",
				 (long long) v.blocks, (long long) dblock);
		else if (dblock > 0 && dblock < (int64) cp.block_no)
			fail(&v, dblock, "block %lld was pruned; the chain starts after block %llu",
				 (long long) dblock, (unsigned long long) cp.block_no);
		else if (dblock > 0)
		{
			char		have[2 * PHIC_HASH_LEN + 1];

			/* the checkpoint's block, or one left after it */
			memcpy(have, cp_hex, sizeof(have));
			total = (int64) cp.entries;
			if (dblock > (int64) cp.block_no)
				format_hex_into(have, blocks[dblock - cp.block_no - 1].hash, PHIC_HASH_LEN);
			for (int64 i = 0; i < dblock - (int64) cp.block_no; i++)
				total += (int64) blocks[i].entries;
			if (pg_strcasecmp(have, hex) != 0)
				fail(&v, dblock, "block %lld differs from the digest", (long long) dblock);
			else if (total != dentries)
				fail(&v, dblock, "blocks 1..%lld hold %lld entries, the digest %lld",
					 (long long) dblock, (long long) total, (long long) dentries);
		}
	}
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
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(desc), values, nulls)));
}

PG_FUNCTION_INFO_V1(phi_guard_audit_digest);

/*
 * phi_audit_digest() returns jsonb: the newest block, to keep elsewhere;
 * entries counts from block 1, pruned blocks included.  When every block
 * was pruned, the checkpoint's block (sealed_at null: it is gone).
 */
Datum
phi_guard_audit_digest(PG_FUNCTION_ARGS)
{
	StringInfoData buf,
				sealed;
	bool		isnull;
	char		hex[2 * PHIC_HASH_LEN + 1] = {0};
	int64		block,
				total;
	AuditCheckpoint cp;

	/* allocated out here: SPI_finish frees what is allocated inside */
	initStringInfo(&sealed);
	SPI_connect();
	/*
	 * Checkpoint and blocks in one fresh snapshot (a prune changes both at
	 * once; a seal just made in this transaction is seen).
	 */
	PushActiveSnapshot(GetTransactionSnapshot());
	audit_checkpoint_require(&cp, true);
	block = (int64) cp.block_no;
	total = (int64) cp.entries;
	if (cp.block_no > 0)
		format_hex_into(hex, cp.hash, PHIC_HASH_LEN);
	else
		memset(hex, '0', 2 * PHIC_HASH_LEN);
	(void) spi_run("SELECT block_no, block_hash, "
				   "(SELECT pg_catalog.sum(entries) FROM phi_guard.audit_block)::int8, "
				   "sealed_at "
				   "FROM phi_guard.audit_block ORDER BY block_no DESC LIMIT 1",
				   0, NULL, NULL, NULL, true);
	PopActiveSnapshot();
	if (SPI_processed > 0)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		TupleDesc	d = SPI_tuptable->tupdesc;
		uint8		h[PHIC_HASH_LEN];
		Datum		at;

		block = DatumGetInt64(SPI_getbinval(t, d, 1, &isnull));
		if (copy_hash(h, t, d, 2))
			format_hex_into(hex, h, PHIC_HASH_LEN);
		total += DatumGetInt64(SPI_getbinval(t, d, 3, &isnull));
		at = SPI_getbinval(t, d, 4, &isnull);
		if (!isnull)
			format_utc_timestamp(&sealed, DatumGetTimestampTz(at));
	}
	SPI_finish();
	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"block\": " INT64_FORMAT ", \"block_hash\": \"%s\", \"entries\": " INT64_FORMAT
					 ", \"system_identifier\": \"" UINT64_FORMAT "\", \"sealed_at\": %s%s%s}",
					 block, hex, total, GetSystemIdentifier(),
					 sealed.len ? "\"" : "", sealed.len ? sealed.data : "null", sealed.len ? "\"" : "");
	PG_RETURN_DATUM(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data)));
}
