/*
 * audit_seal.c — chaining committed entries into blocks, and the digest
 * an auditor keeps outside the database (SPEC §6); verify.c checks the
 * chain.
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
 * prev_hash, and entry counts stay cumulative.  Sealing, the digest and
 * verification read the checkpoint in the same snapshot as the blocks;
 * prune takes the sealers' lock, so a seal never sees half a prune.
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
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "audit/alerts.h"
#include "audit/cluster.h"
#include "audit/seal.h"
#include "audit/shmem.h"
#include "common/catalog.h"
#include "common/errors.h"
#include "common/format.h"
#include "common/spi.h"
#include "core/chain.h"

#define FETCH_BATCH 10000

/* An integer column of an SPI row (seal.h). */
uint64
audit_getu64(HeapTuple tup, TupleDesc desc, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(tup, desc, col, isnull);

	return *isnull ? 0 : DatumGetUInt64(d);
}

/* A 32-byte bytea datum into dst (seal.h). */
bool
audit_hash_datum(uint8 *dst, Datum x, bool isnull)
{
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(x);
	if (VARSIZE_ANY_EXHDR(b) != PHIC_HASH_LEN)
		return false;
	memcpy(dst, VARDATA_ANY(b), PHIC_HASH_LEN);
	return true;
}

/* A 32-byte hash column of an SPI row into dst (seal.h). */
bool
audit_copy_hash(uint8 *dst, HeapTuple t, TupleDesc d, int col)
{
	bool		isnull;
	Datum		x = SPI_getbinval(t, d, col, &isnull);

	return audit_hash_datum(dst, x, isnull);
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
		if (!audit_copy_hash(cp->hash, t, d, 2))
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
	hi = audit_getu64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

	(void) spi_run("SELECT block_no, xid_hi, block_hash FROM phi_guard.audit_block "
				   "ORDER BY block_no DESC LIMIT 1", 0, NULL, NULL, NULL, false);
	if (SPI_processed > 0)
	{
		HeapTuple	t = SPI_tuptable->vals[0];
		bytea	   *ph = DatumGetByteaPP(SPI_getbinval(t, SPI_tuptable->tupdesc, 3, &isnull));

		block_no = audit_getu64(t, SPI_tuptable->tupdesc, 1, &isnull) + 1;
		lo = audit_getu64(t, SPI_tuptable->tupdesc, 2, &isnull);
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
		lo = audit_getu64(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
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
	(void) audit_alerts_scan(lo, hi);
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
		if (audit_copy_hash(h, t, d, 2))
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
	PG_RETURN_DATUM(cluster_digest(DirectFunctionCall1(jsonb_in, CStringGetDatum(buf.data))));
}
