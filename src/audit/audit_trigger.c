/*
 * audit_trigger.c — the trigger phi_audit_enable installs (SPEC §6).
 *
 * Statement-level AFTER triggers: INSERT, UPDATE and DELETE read their
 * transition table(s) and write one entry per affected row in one batch
 * (heap_multi_insert); TRUNCATE writes one entry.  The row key is the
 * primary key's value(s) as a JSON object of strings (no other column
 * values ever enter the log); UPDATE entries list the columns whose values
 * changed.  Key values are rendered without session settings: integers,
 * numerics, text, uuid and booleans by their output functions, dates and
 * timestamps as UTC ISO-8601, anything else as the hex of its binary form.
 *
 * A statement that changes at least phi_guard.audit_compact_rows rows (100
 * by default; 0: never) writes compact row entries (SPEC §6): first one
 * entry of kind "statement" with who, when, where and why, then per row
 * only kind, table, row key, columns and stmt, that entry's id — about a
 * third of the bytes, which is what a bulk change costs the log.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datetime.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "audit/audit.h"
#include "audit/record.h"
#include "audit/writer.h"
#include "common/catalog.h"
#include "common/format.h"

typedef struct KeyColumns
{
	int			n;
	AttrNumber *attnums;
	FmgrInfo   *out;			/* output or send function per column */
	bool	   *binary;			/* true: send function, hex-encoded */
	Oid		   *types;
} KeyColumns;

/*
 * What the trigger needs of an audited table, kept per backend until the
 * table's relcache entry is invalidated (ALTER TABLE, a new primary key...).
 */
typedef struct AuditedTable
{
	Oid			relid;			/* hash key */
	bool		valid;			/* false once its relcache entry was invalidated */
	char	   *name;			/* "schema.table" */
	KeyColumns *key;
} AuditedTable;

static HTAB *tables = NULL;
static MemoryContext tables_cxt = NULL;
static bool tables_reset_pending = false;

/*
 * Relcache callback: only mark; memory is reclaimed at the next lookup, so
 * an invalidation arriving while an entry is being filled frees nothing.
 */
static void
tables_invalidate(Datum arg, Oid relid)
{
	AuditedTable *t;

	if (tables == NULL)
		return;
	if (relid == InvalidOid)
		tables_reset_pending = true;
	else if ((t = hash_search(tables, &relid, HASH_FIND, NULL)) != NULL)
		t->valid = false;
}

/* Primary key columns of rel, with a stable renderer for each (in cxt). */
static KeyColumns *
key_columns(Relation rel, MemoryContext cxt)
{
	KeyColumns *k = MemoryContextAllocZero(cxt, sizeof(KeyColumns));
	Oid			pk = RelationGetPrimaryKeyIndex(rel);
	HeapTuple	itup;
	Form_pg_index idx;

	if (!OidIsValid(pk))
		return k;
	itup = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(pk));
	if (!HeapTupleIsValid(itup))
		return k;
	idx = (Form_pg_index) GETSTRUCT(itup);
	k->n = idx->indnkeyatts;
	k->attnums = MemoryContextAlloc(cxt, sizeof(AttrNumber) * k->n);
	k->out = MemoryContextAlloc(cxt, sizeof(FmgrInfo) * k->n);
	k->binary = MemoryContextAlloc(cxt, sizeof(bool) * k->n);
	k->types = MemoryContextAlloc(cxt, sizeof(Oid) * k->n);
	for (int i = 0; i < k->n; i++)
	{
		Oid			func;
		bool		varlena;

		k->attnums[i] = idx->indkey.values[i];
		k->types[i] = TupleDescAttr(RelationGetDescr(rel), k->attnums[i] - 1)->atttypid;
		k->binary[i] = !format_type_text_is_stable(k->types[i]) &&
			k->types[i] != DATEOID && k->types[i] != TIMESTAMPOID &&
			k->types[i] != TIMESTAMPTZOID;
		if (k->binary[i])
			getTypeBinaryOutputInfo(k->types[i], &func, &varlena);
		else
			getTypeOutputInfo(k->types[i], &func, &varlena);
		fmgr_info_cxt(func, &k->out[i], cxt);
	}
	ReleaseSysCache(itup);
	return k;
}

static AuditedTable *
audited_table(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	AuditedTable *t;
	bool		found;

	if (tables_reset_pending && tables != NULL)
	{
		hash_destroy(tables);
		tables = NULL;
		MemoryContextReset(tables_cxt);
	}
	tables_reset_pending = false;
	if (tables == NULL)
	{
		HASHCTL		ctl;

		if (tables_cxt == NULL)
		{
			tables_cxt = AllocSetContextCreate(CacheMemoryContext, "phi_guard audited tables",
											   ALLOCSET_SMALL_SIZES);
			CacheRegisterRelcacheCallback(tables_invalidate, (Datum) 0);
		}
		memset(&ctl, 0, sizeof(ctl));
		ctl.keysize = sizeof(Oid);
		ctl.entrysize = sizeof(AuditedTable);
		ctl.hcxt = tables_cxt;
		tables = hash_create("phi_guard audited tables", 16, &ctl,
							 HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}
	t = hash_search(tables, &relid, HASH_ENTER, &found);
	if (!found || !t->valid)
	{
		/* a stale entry's old strings stay in tables_cxt until a full reset */
		t->valid = true;
		t->name = MemoryContextStrdup(tables_cxt, catalog_qualified_name(RelationGetRelid(rel)));
		t->key = key_columns(rel, tables_cxt);
	}
	return t;
}

/* {"col":"value",...} for the key columns of one row, or null. */
static char *
row_key_json(Relation rel, KeyColumns *k, TupleTableSlot *slot, StringInfo buf)
{
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData val;

	if (k->n == 0)
		return NULL;
	resetStringInfo(buf);
	initStringInfo(&val);
	appendStringInfoChar(buf, '{');
	for (int i = 0; i < k->n; i++)
	{
		bool		isnull;
		Datum		d = slot_getattr(slot, k->attnums[i], &isnull);

		if (i > 0)
			appendStringInfoChar(buf, ',');
		audit_json_string(buf, NameStr(TupleDescAttr(desc, k->attnums[i] - 1)->attname));
		appendStringInfoChar(buf, ':');
		if (isnull)
		{
			appendStringInfoString(buf, "null");
			continue;
		}
		resetStringInfo(&val);
		if (k->types[i] == DATEOID)
		{
			DateADT		date = DatumGetDateADT(d);

			if (DATE_NOT_FINITE(date))
				appendStringInfoString(&val, DATE_IS_NOBEGIN(date) ? "-infinity" : "infinity");
			else
			{
				int			y,
							m,
							dd;

				j2date(date + POSTGRES_EPOCH_JDATE, &y, &m, &dd);
				appendStringInfo(&val, "%04d-%02d-%02d", y, m, dd);
			}
		}
		else if (k->types[i] == TIMESTAMPOID || k->types[i] == TIMESTAMPTZOID)
			format_utc_timestamp(&val, DatumGetTimestamp(d));
		else if (k->binary[i])
		{
			bytea	   *b = SendFunctionCall(&k->out[i], d);

			appendStringInfoString(&val, "\\x");
			format_hex(&val, (const uint8 *) VARDATA(b), VARSIZE(b) - VARHDRSZ);
		}
		else
			appendStringInfoString(&val, OutputFunctionCall(&k->out[i], d));
		escape_json(buf, val.data);
	}
	appendStringInfoChar(buf, '}');
	pfree(val.data);
	return buf->data;
}

/* ["col",...] of the user columns whose values differ between old and new. */
static char *
changed_columns_json(TupleDesc desc, TupleTableSlot *oldslot,
					 TupleTableSlot *newslot, StringInfo buf)
{
	bool		first = true;

	resetStringInfo(buf);
	appendStringInfoChar(buf, '[');
	slot_getallattrs(oldslot);
	slot_getallattrs(newslot);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		on = oldslot->tts_isnull[i],
					nn = newslot->tts_isnull[i];

		if (att->attisdropped)
			continue;
		if (on == nn && (on || datumIsEqual(oldslot->tts_values[i], newslot->tts_values[i],
											  att->attbyval, att->attlen)))
			continue;
		if (!first)
			appendStringInfoChar(buf, ',');
		first = false;
		audit_json_string(buf, NameStr(att->attname));
	}
	appendStringInfoChar(buf, ']');
	return buf->data;
}

AuditQuiet	audit_quiet = {InvalidOid, 0};
int			phi_guard_audit_compact_rows = 100;

/*
 * Whether an updated row is one a column migration quiets (audit.h): no
 * user column but audit_quiet.attnum differs between old and new.
 */
static bool
quiet_row(TupleDesc desc, TupleTableSlot *oldslot, TupleTableSlot *newslot)
{
	slot_getallattrs(oldslot);
	slot_getallattrs(newslot);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		bool		on = oldslot->tts_isnull[i],
					nn = newslot->tts_isnull[i];

		if (att->attisdropped || att->attnum == audit_quiet.attnum)
			continue;
		if (on != nn || (!on && !datumIsEqual(oldslot->tts_values[i], newslot->tts_values[i],
											  att->attbyval, att->attlen)))
			return false;
	}
	return true;
}

/*
 * The statement entry (kind "statement", SPEC §6) that the compact row
 * entries of one large statement name: who, when, where and why, once,
 * and in detail the operation and the number of rows it changed.
 * Returns its id.
 */
static int64
statement_entry(AuditWriter *w, const AuditWho *who, const char *table, const char *detail)
{
	StringInfoData rec;
	int64		id;

	initStringInfo(&rec);
	audit_build_record(&rec, who, "statement", table, NULL, NULL, detail);
	id = audit_writer_add(w, rec.data, rec.len);
	pfree(rec.data);
	return id;
}

PG_FUNCTION_INFO_V1(phi_guard_audit_trigger);

Datum
phi_guard_audit_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trig = (TriggerData *) fcinfo->context;
	Relation	rel;
	TriggerEvent ev;
	const char *kind;
	AuditedTable *at;
	AuditWho	who;
	AuditRecordParts parts;
	AuditWriter *w;
	StringInfoData rec,
				key,
				cols;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(trig->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trig->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("phi_guard audit trigger must be an AFTER ... FOR EACH STATEMENT trigger")));
	rel = trig->tg_relation;
	ev = trig->tg_event;
	kind = TRIGGER_FIRED_BY_INSERT(ev) ? "insert" :
		TRIGGER_FIRED_BY_UPDATE(ev) ? "update" :
		TRIGGER_FIRED_BY_DELETE(ev) ? "delete" : "truncate";
	at = audited_table(rel);
	audit_capture_who(&who);
	audit_record_parts(&parts, &who, kind, at->name, NULL);
	initStringInfo(&rec);
	initStringInfo(&key);
	initStringInfo(&cols);
	w = audit_writer_open();

	if (TRIGGER_FIRED_BY_TRUNCATE(ev))
	{
		audit_record_join(&rec, &parts, NULL, NULL);
		audit_writer_add(w, rec.data, rec.len);
	}
	else
	{
		Tuplestorestate *rows = TRIGGER_FIRED_BY_DELETE(ev) ? trig->tg_oldtable : trig->tg_newtable;
		Tuplestorestate *olds = TRIGGER_FIRED_BY_UPDATE(ev) ? trig->tg_oldtable : NULL;
		TupleDesc	desc = RelationGetDescr(rel);
		TupleTableSlot *slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
		TupleTableSlot *oldslot = olds ? MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple) : NULL;
		KeyColumns *k = at->key;
		int64		nrows = rows ? tuplestore_tuple_count(rows) : 0;
		bool		compact = phi_guard_audit_compact_rows > 0 &&
			nrows >= phi_guard_audit_compact_rows;
		AuditRecordParts compact_parts;
		const AuditRecordParts *row_parts = &parts;

		if (rows == NULL || (TRIGGER_FIRED_BY_UPDATE(ev) && olds == NULL))
			ereport(ERROR,
					(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
					 errmsg("phi_guard audit trigger on \"%s\" lacks its transition table", at->name),
					 errhint("Re-create it with phi_audit_disable() and phi_audit_enable().")));
		tuplestore_rescan(rows);
		if (olds)
			tuplestore_rescan(olds);
		while (tuplestore_gettupleslot(rows, true, false, slot))
		{
			char	   *columns = NULL;

			if (olds)
			{
				if (!tuplestore_gettupleslot(olds, true, false, oldslot))
					elog(ERROR, "phi_guard: transition tables of different lengths");
				if (audit_quiet.relid == RelationGetRelid(rel) && quiet_row(desc, oldslot, slot))
					continue;
				columns = changed_columns_json(desc, oldslot, slot, &cols);
			}
			if (compact && row_parts == &parts)
			{
				/* before the first row entry: the statement's, which they name */
				char	   *detail = psprintf("{\"op\":\"%s\",\"rows\":" INT64_FORMAT "}",
											  kind, nrows);

				audit_record_compact_parts(&compact_parts, kind, at->name,
										   statement_entry(w, &who, at->name, detail));
				row_parts = &compact_parts;
			}
			resetStringInfo(&rec);
			audit_record_join(&rec, row_parts, row_key_json(rel, k, slot, &key), columns);
			audit_writer_add(w, rec.data, rec.len);
		}
		ExecDropSingleTupleTableSlot(slot);
		if (oldslot)
			ExecDropSingleTupleTableSlot(oldslot);
	}
	audit_writer_close(w);
	return PointerGetDatum(NULL);
}

/*
 * jsonb_out separates with ", " and ": "; drop white space outside strings
 * so the record stays compact.  In place.
 */
static char *
compact_json(char *s)
{
	char	   *r = s,
			   *w = s;
	bool		in_string = false;

	for (; *r; r++)
	{
		if (in_string)
		{
			*w++ = *r;
			if (*r == '\\' && r[1])
				*w++ = *++r;
			else if (*r == '"')
				in_string = false;
		}
		else if (*r != ' ' && *r != '\n')
		{
			if (*r == '"')
				in_string = true;
			*w++ = *r;
		}
	}
	*w = '\0';
	return s;
}

PG_FUNCTION_INFO_V1(phi_guard_audit_event);

/*
 * phi_guard.audit_event(kind text, tbl regclass, detail jsonb): one entry
 * written by phi_guard's own SQL (enable, disable, DDL, key lifecycle).
 * Not granted to anyone: only SECURITY DEFINER functions of the extension
 * owner call it.
 */
Datum
phi_guard_audit_event(PG_FUNCTION_ARGS)
{
	char	   *kind;
	char	   *table = NULL;
	char	   *detail = NULL;

	if (PG_ARGISNULL(0))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("audit event kind must not be null")));
	kind = text_to_cstring(PG_GETARG_TEXT_PP(0));
	if (!PG_ARGISNULL(1))
	{
		Oid			relid = PG_GETARG_OID(1);

		table = catalog_qualified_name(relid);
		if (table == NULL)
			table = psprintf("%u", relid);
	}
	if (!PG_ARGISNULL(2))
		detail = compact_json(DatumGetCString(DirectFunctionCall1(jsonb_out, PG_GETARG_DATUM(2))));
	audit_write_one(kind, table, NULL, NULL, detail);
	PG_RETURN_VOID();
}
