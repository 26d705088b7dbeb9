/*
 * prune.c — retention: phi_audit_prune removes sealed blocks that were
 * archived, and the phi_guard.audit_min_retention setting (SPEC §8).
 *
 * phi_audit_prune(upto_block, archive_digest) removes blocks 1..upto_block
 * that are left (those after the checkpoint) and their entries, and makes
 * upto_block the checkpoint (phi_guard.audit_checkpoint, one row) from which
 * the rest of the chain is verified.
 *
 * Invariants:
 * - Nothing is removed unless archive_digest names upto_block with its
 *   stored block_hash, the cumulative entry count and this cluster's system
 *   identifier (the archive holds what is removed), and unless every block
 *   removed is older than phi_guard.audit_min_retention.
 * - The rows are removed at the heap level (simple_heap_delete), so the
 *   append-only triggers of audit_log, audit_block and audit_checkpoint,
 *   which refuse every SQL UPDATE, DELETE and TRUNCATE, stay in force for
 *   everyone, the tables' owner included; there is no flag or setting that
 *   opens them.  The caller must have the privileges of phi_audit_admin.
 * - The entries removed are exactly those of the removed blocks' xid range,
 *   and must number what the blocks record, or nothing is removed.
 * - The prune writes an audit_prune entry naming the checkpoint (block,
 *   block_hash, entries); phi_audit_verify holds the checkpoint row to it.
 * - All of it commits or rolls back with the caller's transaction.
 *
 * Locking: ExclusiveLock on audit_block, as sealing takes, so prunes and
 * seals serialise and a seal never sees half a prune; writers are not
 * blocked (the entries they add lie above every sealed block).  READ
 * COMMITTED is required, so the reads after the lock see the latest blocks.
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "audit/audit.h"
#include "audit/seal.h"
#include "common/catalog.h"
#include "common/format.h"
#include "common/spi.h"

char	   *phi_guard_audit_min_retention = NULL;

/*
 * Check hook of phi_guard.audit_min_retention: an interval that is not
 * negative ("0" allows pruning anything archived).
 */
bool
audit_min_retention_check(char **newval, void **extra, GucSource source)
{
	MemoryContext cxt = CurrentMemoryContext;
	bool		ok = true;

	PG_TRY();
	{
		Interval   *iv = DatumGetIntervalP(DirectFunctionCall3(interval_in,
																CStringGetDatum(*newval),
																ObjectIdGetDatum(InvalidOid),
																Int32GetDatum(-1)));
		Interval	zero = {0};

		if (DatumGetInt32(DirectFunctionCall2(interval_cmp, IntervalPGetDatum(iv),
											  IntervalPGetDatum(&zero))) < 0)
		{
			GUC_check_errdetail("The minimum retention must not be negative.");
			ok = false;
		}
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(cxt);
		FlushErrorState();
		GUC_check_errdetail("The minimum retention must be an interval, for example '6 years'.");
		ok = false;
	}
	PG_END_TRY();
	return ok;
}

/* Owner of relation relid (the extension's owner for its tables). */
static Oid
rel_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/*
 * Raise 22023 unless archive_digest is phi_audit_digest()'s object for
 * block upto with block_hash hash_hex and total entries, of this cluster.
 */
static void
check_digest(Jsonb *digest, int64 upto, const char *hash_hex, int64 total)
{
	JsonbValue *jb = getKeyJsonValueFromContainer(&digest->root, "block", 5, NULL);
	JsonbValue *jh = getKeyJsonValueFromContainer(&digest->root, "block_hash", 10, NULL);
	JsonbValue *je = getKeyJsonValueFromContainer(&digest->root, "entries", 7, NULL);
	JsonbValue *js = getKeyJsonValueFromContainer(&digest->root, "system_identifier", 17, NULL);
	char		sysid[32];
	const char *field = NULL;

	if (!jb || jb->type != jbvNumeric || !jh || jh->type != jbvString ||
		!je || je->type != jbvNumeric || !js || js->type != jbvString)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("archive digest must have numeric \"block\" and \"entries\" and string \"block_hash\" and \"system_identifier\""),
				 errhint("Pass the phi_audit_digest() value kept with the archive; its \"block\" must be %lld.",
						 (long long) upto)));
	snprintf(sysid, sizeof(sysid), UINT64_FORMAT, GetSystemIdentifier());
	if (DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(jb->val.numeric))) != upto)
		field = "block";
	else if (jh->val.string.len != (int) strlen(hash_hex) ||
			 pg_strncasecmp(jh->val.string.val, hash_hex, jh->val.string.len) != 0)
		field = "block_hash";
	else if (DatumGetInt64(DirectFunctionCall1(numeric_int8, NumericGetDatum(je->val.numeric))) != total)
		field = "entries";
	else if (js->val.string.len != (int) strlen(sysid) ||
			 strncmp(js->val.string.val, sysid, js->val.string.len) != 0)
		field = "system_identifier";
	if (field != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("archive digest does not match block %lld of the audit chain", (long long) upto),
				 errdetail("Its \"%s\" differs from the chain's.", field),
				 errhint("Nothing was pruned. Prune only blocks whose archive verified against this chain.")));
}

/*
 * Delete, at the heap level (no triggers), the rows of relid whose
 * int8/xid8 column attno is below limit, both compared as uint64 (a
 * block_no is positive), seen with the latest snapshot.  Returns the rows
 * deleted.
 */
static int64
delete_below(Oid relid, AttrNumber attno, uint64 limit)
{
	Relation	rel = table_open(relid, RowExclusiveLock);
	Snapshot	snap = RegisterSnapshot(GetLatestSnapshot());
	TableScanDesc scan = table_beginscan(rel, snap, 0, NULL);
	HeapTuple	tup;
	int64		n = 0;

	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, attno, RelationGetDescr(rel), &isnull);

		if (isnull || DatumGetUInt64(d) >= limit)
			continue;
		simple_heap_delete(rel, &tup->t_self);
		n++;
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(rel, NoLock);
	return n;
}

PG_FUNCTION_INFO_V1(phi_guard_audit_prune);

/*
 * phi_audit_prune(upto_block int8, archive_digest jsonb) returns int8: the
 * entries removed (see the banner).  Errors: 42501 without phi_audit_admin,
 * 22023 for a block not sealed or already pruned or a digest that does not
 * match, 55000 for a block younger than the minimum retention, 25006 on a
 * standby, 25001 outside READ COMMITTED.
 */
Datum
phi_guard_audit_prune(PG_FUNCTION_ARGS)
{
	int64		upto = PG_GETARG_INT64(0);
	Jsonb	   *digest = PG_GETARG_JSONB_P(1);
	Oid			admin = get_role_oid("phi_audit_admin", true);
	Oid			block_rel = catalog_relid_required("audit_block", "audit block table");
	Oid			log_rel = catalog_relid_required("audit_log", "audit log table");
	Oid			cp_rel = catalog_relid_required("audit_checkpoint", "audit checkpoint table");
	const char *retention = phi_guard_audit_min_retention ? phi_guard_audit_min_retention
		: AUDIT_MIN_RETENTION_DEFAULT;
	Oid			save_user;
	int			save_sec;
	AuditCheckpoint cp;
	char		hash_hex[2 * PHIC_HASH_LEN + 1];
	uint8		hash[PHIC_HASH_LEN];
	uint64		xid_hi;
	int64		blocks,
				in_blocks,
				removed;
	bool		isnull;
	StringInfoData detail;

	if (!OidIsValid(admin) || !has_privs_of_role(GetUserId(), admin))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to prune the audit log"),
				 errhint("Pruning requires the privileges of role phi_audit_admin.")));
	if (RecoveryInProgress())
		ereport(ERROR,
				(errcode(ERRCODE_READ_ONLY_SQL_TRANSACTION),
				 errmsg("cannot prune the audit log on a standby"),
				 errhint("Prune on the primary; the change replicates here.")));
	audit_require_read_committed("phi_audit_prune()");
	LockRelationOid(block_rel, ExclusiveLock);

	/* the reads as the tables' owner: phi_audit_admin does not read them */
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(rel_owner(block_rel),
						   save_sec | SECURITY_LOCAL_USERID_CHANGE | SECURITY_RESTRICTED_OPERATION);
	SPI_connect();
	audit_checkpoint_require(&cp, false);
	if (upto <= (int64) cp.block_no)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("audit block %lld is already pruned", (long long) upto),
				 errdetail("The chain starts after block %llu.", (unsigned long long) cp.block_no)));
	{
		Oid			types[2] = {INT8OID, TEXTOID};
		Datum		values[2] = {Int64GetDatum(upto), CStringGetTextDatum(retention)};
		HeapTuple	t;
		TupleDesc	d;

		(void) spi_run("SELECT b.block_hash, b.xid_hi, s.n, s.total, "
					   "s.newest OPERATOR(pg_catalog.>) (pg_catalog.now() OPERATOR(pg_catalog.-) $2::pg_catalog.interval), "
					   "pg_catalog.to_char(s.newest AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS') "
					   "FROM phi_guard.audit_block b, "
					   "(SELECT pg_catalog.count(*) AS n, pg_catalog.sum(x.entries)::pg_catalog.int8 AS total, "
					   "        pg_catalog.max(x.sealed_at) AS newest "
					   "   FROM phi_guard.audit_block x WHERE x.block_no OPERATOR(pg_catalog.<=) $1) s "
					   "WHERE b.block_no OPERATOR(pg_catalog.=) $1",
					   2, types, values, NULL, false);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("audit block %lld is not sealed", (long long) upto),
					 errhint("Prune only blocks that are sealed and archived.")));
		t = SPI_tuptable->vals[0];
		d = SPI_tuptable->tupdesc;
		blocks = DatumGetInt64(SPI_getbinval(t, d, 3, &isnull));
		if (blocks != upto - (int64) cp.block_no ||
			VARSIZE_ANY_EXHDR(DatumGetByteaPP(SPI_getbinval(t, d, 1, &isnull))) != PHIC_HASH_LEN)
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("the audit chain up to block %lld is damaged", (long long) upto),
					 errhint("Run phi_audit_verify() to examine the chain; nothing was pruned.")));
		memcpy(hash, VARDATA_ANY(DatumGetByteaPP(SPI_getbinval(t, d, 1, &isnull))), PHIC_HASH_LEN);
		format_hex_into(hash_hex, hash, PHIC_HASH_LEN);
		xid_hi = DatumGetUInt64(SPI_getbinval(t, d, 2, &isnull));
		in_blocks = DatumGetInt64(SPI_getbinval(t, d, 4, &isnull));
		check_digest(digest, upto, hash_hex, (int64) cp.entries + in_blocks);
		if (DatumGetBool(SPI_getbinval(t, d, 5, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("audit block %lld is younger than the minimum retention", (long long) upto),
					 errdetail("Blocks up to %lld were sealed until %s UTC; phi_guard.audit_min_retention is \"%s\".",
							   (long long) upto, TextDatumGetCString(SPI_getbinval(t, d, 6, &isnull)),
							   retention),
					 errhint("Prune only blocks sealed longer ago than phi_guard.audit_min_retention.")));
	}

	removed = delete_below(log_rel, 2, xid_hi);
	if (removed != in_blocks)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("the audit blocks up to %lld record %lld entries but the log holds %lld",
						(long long) upto, (long long) in_blocks, (long long) removed),
				 errhint("Run phi_audit_verify() to examine the chain; nothing was pruned.")));
	(void) delete_below(block_rel, 1, (uint64) upto + 1);
	(void) delete_below(cp_rel, 1, PG_UINT64_MAX);
	{
		Oid			types[3] = {INT8OID, BYTEAOID, INT8OID};
		bytea	   *hv = palloc(VARHDRSZ + PHIC_HASH_LEN);
		Datum		values[3];

		SET_VARSIZE(hv, VARHDRSZ + PHIC_HASH_LEN);
		memcpy(VARDATA(hv), hash, PHIC_HASH_LEN);
		values[0] = Int64GetDatum(upto);
		values[1] = PointerGetDatum(hv);
		values[2] = Int64GetDatum((int64) cp.entries + in_blocks);
		(void) spi_run("INSERT INTO phi_guard.audit_checkpoint (block_no, block_hash, entries, pruned_at) "
					   "VALUES ($1, $2, $3, pg_catalog.now())", 3, types, values, NULL, false);
	}
	SPI_finish();
	SetUserIdAndSecContext(save_user, save_sec);

	initStringInfo(&detail);
	appendStringInfo(&detail,
					 "{\"block\":" INT64_FORMAT ",\"block_hash\":\"%s\",\"entries\":" INT64_FORMAT
					 ",\"from_block\":" UINT64_FORMAT ",\"blocks_removed\":" INT64_FORMAT
					 ",\"entries_removed\":" INT64_FORMAT ",\"min_retention\":",
					 upto, hash_hex, (int64) cp.entries + in_blocks, cp.block_no + 1,
					 blocks, removed);
	escape_json(&detail, retention);
	appendStringInfoChar(&detail, '}');
	audit_write_one("audit_prune", "phi_guard.audit_log", NULL, NULL, detail.data);
	PG_RETURN_INT64(removed);
}
