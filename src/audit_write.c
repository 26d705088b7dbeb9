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
 * bytes of record.  Rows are buffered and inserted with heap_multi_insert.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/xid8.h"

#include "audit.h"
#include "core/chain.h"
#include "phi_guard.h"

#define AUDIT_BATCH 1000

struct AuditWriter
{
	Relation	rel;
	CatalogIndexState indstate;
	TupleTableSlot *slots[AUDIT_BATCH];
	int			nslots;			/* slots created */
	int			nused;			/* slots holding a pending tuple */
	FullTransactionId fxid;
};

static FullTransactionId id_fxid;	/* transaction the counter belongs to */
static int64 next_id;

static Oid
audit_log_relid(void)
{
	Oid			nsp = get_namespace_oid("phi_guard", true);
	Oid			rel = OidIsValid(nsp) ? get_relname_relid("audit_log", nsp) : InvalidOid;

	if (!OidIsValid(rel))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("phi_guard audit log table is missing in this database"),
				 errhint("Run CREATE EXTENSION phi_guard.")));
	return rel;
}

AuditWriter *
audit_writer_open(void)
{
	AuditWriter *w = palloc0(sizeof(AuditWriter));

	w->rel = table_open(audit_log_relid(), RowExclusiveLock);
	if (RelationGetDescr(w->rel)->natts != 4)
		elog(ERROR, "phi_guard.audit_log has an unexpected shape");
	w->indstate = CatalogOpenIndexes(w->rel);
	w->fxid = GetTopFullTransactionId();
	if (!FullTransactionIdEquals(w->fxid, id_fxid))
	{
		id_fxid = w->fxid;
		next_id = 1;
	}
	audit_ensure_worker();
	return w;
}

static void
flush(AuditWriter *w)
{
	if (w->nused == 0)
		return;
	CatalogTuplesMultiInsertWithInfo(w->rel, w->slots, w->nused, w->indstate);
	for (int i = 0; i < w->nused; i++)
		ExecClearTuple(w->slots[i]);
	w->nused = 0;
}

/* Queue one entry whose record text is record[0..len). */
void
audit_writer_add(AuditWriter *w, const char *record, int len)
{
	TupleTableSlot *slot;
	uint8		hash[PHIC_HASH_LEN];
	bytea	   *hv;
	const char *utf8 = pg_server_to_any(record, len, PG_UTF8);
	phic_status st;

	st = phic_sha256(utf8, utf8 == record ? (size_t) len : strlen(utf8), hash);
	if (st != PHIC_OK)
		errors_raise_core(st, "hash audit entry");

	if (w->nused == w->nslots)
		w->slots[w->nslots++] = MakeSingleTupleTableSlot(RelationGetDescr(w->rel),
														 &TTSOpsHeapTuple);
	slot = w->slots[w->nused];
	ExecClearTuple(slot);
	hv = (bytea *) palloc(VARHDRSZ + PHIC_HASH_LEN);
	SET_VARSIZE(hv, VARHDRSZ + PHIC_HASH_LEN);
	memcpy(VARDATA(hv), hash, PHIC_HASH_LEN);
	slot->tts_values[0] = Int64GetDatum(next_id++);
	slot->tts_values[1] = FullTransactionIdGetDatum(w->fxid);
	slot->tts_values[2] = PointerGetDatum(cstring_to_text_with_len(record, len));
	slot->tts_values[3] = PointerGetDatum(hv);
	memset(slot->tts_isnull, 0, 4 * sizeof(bool));
	ExecStoreVirtualTuple(slot);
	/* materialise: heap_multi_insert needs heap tuples, and frees nothing */
	ExecMaterializeSlot(slot);
	w->nused++;
	if (w->nused == AUDIT_BATCH)
		flush(w);
}

void
audit_writer_close(AuditWriter *w)
{
	flush(w);
	for (int i = 0; i < w->nslots; i++)
		ExecDropSingleTupleTableSlot(w->slots[i]);
	CatalogCloseIndexes(w->indstate);
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
