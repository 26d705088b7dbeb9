/*
 * audit_write.c — append entries to phi_guard.audit_log.
 *
 * Entries are inserted straight into the heap and its (xid, id) index, in
 * the caller's transaction, without SPI, without ACL checks (ordinary roles
 * have no privilege on the table) and without firing the table's triggers.
 * Writers share no lock beyond what any heap insert takes: nothing
 * serialises them; chaining happens later, at sealing (audit_seal.c).
 *
 * id is a counter per top-level transaction starting at 1, so (xid, id) is
 * unique without any shared sequence.  entry_hash is SHA-256 of the UTF-8
 * bytes of record.  Rows are buffered and inserted with heap_multi_insert;
 * their per-row datums live in a batch context reset after every flush.
 * A writer that fills a whole batch (a bulk statement) inserts through a
 * bulk-insert state, as COPY does: the target page stays pinned across
 * batches and the pages pass through a small ring of buffers.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/indexing.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "nodes/execnodes.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/xid8.h"

#include "audit/audit.h"
#include "audit/record.h"
#include "audit/shmem.h"
#include "audit/writer.h"
#include "common/catalog.h"
#include "common/errors.h"
#include "core/chain.h"

#define AUDIT_BATCH 1000

struct AuditWriter
{
	Relation	rel;
	CatalogIndexState indstate;
	TupleTableSlot *slots[AUDIT_BATCH];
	int			nslots;			/* slots created */
	int			nused;			/* slots holding a pending tuple */
	MemoryContext batch_cxt;	/* per-row datums, reset after each flush */
	FullTransactionId fxid;
	BulkInsertState bistate;	/* from the first full batch: a bulk statement */
};

static FullTransactionId id_fxid;	/* transaction the counter belongs to */
static int64 next_id;

static Oid	cached_relid = InvalidOid;

static void
relid_reset(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cached_relid)
		cached_relid = InvalidOid;
}

/* phi_guard.audit_log, remembered until its relcache entry is invalidated. */
static Oid
audit_log_relid(void)
{
	static bool registered = false;

	if (OidIsValid(cached_relid))
		return cached_relid;
	if (!registered)
	{
		CacheRegisterRelcacheCallback(relid_reset, (Datum) 0);
		registered = true;
	}
	cached_relid = catalog_relid_required("audit_log", "audit log table");
	return cached_relid;
}

/* Opened in the caller's memory context; the id counter restarts per transaction. */
AuditWriter *
audit_writer_open(void)
{
	AuditWriter *w = palloc0(sizeof(AuditWriter));

	w->rel = table_open(audit_log_relid(), RowExclusiveLock);
	if (RelationGetDescr(w->rel)->natts != 4)
		elog(ERROR, "phi_guard.audit_log has an unexpected shape");
	w->indstate = CatalogOpenIndexes(w->rel);
	w->batch_cxt = AllocSetContextCreate(CurrentMemoryContext, "phi_guard audit batch",
										 ALLOCSET_DEFAULT_SIZES);
	w->fxid = GetTopFullTransactionId();
	if (!FullTransactionIdEquals(w->fxid, id_fxid))
	{
		id_fxid = w->fxid;
		next_id = 1;
		/* once per transaction: the launcher has this database sealed */
		audit_db_mark_written(U64FromFullTransactionId(w->fxid));
	}
	return w;
}

/*
 * Insert the buffered rows: one heap_multi_insert, then each index entry
 * straight from the filled slots.  (CatalogTuplesMultiInsertWithInfo would
 * build and drop a tuple slot per row for its index inserts, which costs
 * more than the rest of the row.)
 */
static void
flush(AuditWriter *w)
{
	ResultRelInfo *rri = w->indstate;

	if (w->nused == 0)
		return;
	/* a writer with a full batch writes many: extend the log as COPY does */
	if (w->bistate == NULL && w->nused == AUDIT_BATCH)
		w->bistate = GetBulkInsertState();
	heap_multi_insert(w->rel, w->slots, w->nused, GetCurrentCommandId(true), 0, w->bistate);
	for (int i = 0; i < w->nused; i++)
	{
		for (int j = 0; j < rri->ri_NumIndices; j++)
		{
			Relation	irel = rri->ri_IndexRelationDescs[j];
			IndexInfo  *ii = rri->ri_IndexRelationInfo[j];
			Datum		values[INDEX_MAX_KEYS];
			bool		isnull[INDEX_MAX_KEYS];

			FormIndexDatum(ii, w->slots[i], NULL, values, isnull);
			index_insert(irel, values, isnull, &w->slots[i]->tts_tid, w->rel,
						 irel->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO,
						 false, ii);
		}
		ExecClearTuple(w->slots[i]);
	}
	w->nused = 0;
	MemoryContextReset(w->batch_cxt);
}

/* Queue one entry whose record text is record[0..len); returns its id. */
int64
audit_writer_add(AuditWriter *w, const char *record, int len)
{
	int64		id = next_id++;
	TupleTableSlot *slot;
	uint8		hash[PHIC_HASH_LEN];
	bytea	   *hv;
	const char *utf8;
	phic_status st;
	MemoryContext old;

	/* slots live as long as the writer: create them outside the batch context */
	if (w->nused == w->nslots)
		w->slots[w->nslots++] = MakeSingleTupleTableSlot(RelationGetDescr(w->rel),
														 &TTSOpsHeapTuple);
	old = MemoryContextSwitchTo(w->batch_cxt);
	utf8 = pg_server_to_any(record, len, PG_UTF8);
	st = phic_sha256(utf8, utf8 == record ? (size_t) len : strlen(utf8), hash);
	if (st != PHIC_OK)
		errors_raise_core(st, "hash audit entry");

	slot = w->slots[w->nused];
	ExecClearTuple(slot);
	hv = (bytea *) palloc(VARHDRSZ + PHIC_HASH_LEN);
	SET_VARSIZE(hv, VARHDRSZ + PHIC_HASH_LEN);
	memcpy(VARDATA(hv), hash, PHIC_HASH_LEN);
	slot->tts_values[0] = Int64GetDatum(id);
	slot->tts_values[1] = FullTransactionIdGetDatum(w->fxid);
	slot->tts_values[2] = PointerGetDatum(cstring_to_text_with_len(record, len));
	slot->tts_values[3] = PointerGetDatum(hv);
	memset(slot->tts_isnull, 0, 4 * sizeof(bool));
	ExecStoreVirtualTuple(slot);
	MemoryContextSwitchTo(old);
	/* materialise into the slot's own memory: the datums die with the batch */
	ExecMaterializeSlot(slot);
	w->nused++;
	if (w->nused == AUDIT_BATCH)
		flush(w);
	return id;
}

void
audit_writer_close(AuditWriter *w)
{
	flush(w);
	for (int i = 0; i < w->nslots; i++)
		ExecDropSingleTupleTableSlot(w->slots[i]);
	if (w->bistate)
		FreeBulkInsertState(w->bistate);
	CatalogCloseIndexes(w->indstate);
	MemoryContextDelete(w->batch_cxt);
	table_close(w->rel, RowExclusiveLock);
	pfree(w);
}

/* Write one entry about this session's action, in this transaction. */
void
audit_write_one(const char *kind, const char *table, const char *row_key,
				const char *columns, const char *detail)
{
	AuditWho	who;
	StringInfoData buf;
	AuditWriter *w;

	audit_capture_who(&who);
	initStringInfo(&buf);
	audit_build_record(&buf, &who, kind, table, row_key, columns, detail);
	w = audit_writer_open();
	audit_writer_add(w, buf.data, buf.len);
	audit_writer_close(w);
	pfree(buf.data);
}
