/*
 * vault.c — reading and writing rows of phi_guard.token_vault for token.c.
 *
 * Reads are direct index scans: by token through the primary key, by
 * fingerprint through the hash index.
 *
 * Writes act for the vault's owner.  A new row goes in the way INSERT ...
 * ON CONFLICT DO NOTHING puts it in after its pre-check, with the caller's
 * look-up just made standing in for the pre-check: a speculative heap
 * insert, then each index entry with a partial uniqueness check.  When an
 * index reports a possible conflict (a concurrent insert of the same
 * value, a token already taken) the speculative tuple is killed and the
 * row goes through SQL (INSERT ... ON CONFLICT DO NOTHING, run as the
 * owner), which waits for the other inserter and decides.  The foreign key
 * to token_domains is kept by locking the domain's row FOR KEY SHARE once
 * per (sub)transaction, as the RI trigger does for every row, and checking
 * before each insert that this transaction has not deleted it since.
 *
 * The direct write is taken only when it skips nothing the SQL insert
 * would do (vault_is_plain): both tables their own storage (not Citus
 * reference tables, whose writes Citus carries to every node), the five
 * columns with their NOT NULL marks, created_at defaulting to now(), that
 * one foreign key and its check trigger, no other INSERT trigger, rule,
 * CHECK constraint or forced row security, indexes on plain columns only,
 * and INSERT granted to the owner.  Anything else (an owner's trigger,
 * say) takes SQL, so nothing attached to the vault is skipped; so does a
 * read-only or parallel context, where SQL raises the proper error.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/hash.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "catalog/pg_trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/execnodes.h"
#include "nodes/primnodes.h"
#include "storage/lmgr.h"
#include "storage/proc.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "common/catalog.h"
#include "common/spi.h"
#include "tokens/vault.h"

#define VAULT_MAX_INDEXES 8

Datum
vault_lookup(const Domain *d, bool by_fingerprint, Datum key, AttrNumber want,
			 bool latest, bool *found)
{
	Relation	rel = table_open(d->vault, AccessShareLock);
	Relation	irel = index_open(by_fingerprint ? d->vault_fp_hash : d->vault_pkey, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	snap = RegisterSnapshot(latest ? GetLatestSnapshot() : GetActiveSnapshot());
	ScanKeyData skey[2];
	int			nkeys = 0;
	IndexScanDesc scan;
	Datum		result = (Datum) 0;

	/* attribute numbers are the index's; the fingerprint MAC covers the domain */
	if (by_fingerprint)
		ScanKeyEntryInitialize(&skey[nkeys++], 0, 1, HTEqualStrategyNumber,
							   InvalidOid, InvalidOid, F_BYTEAEQ, key);
	else
	{
		ScanKeyEntryInitialize(&skey[nkeys++], 0, 1, BTEqualStrategyNumber,
							   InvalidOid, C_COLLATION_OID, F_TEXTEQ, CStringGetTextDatum(d->name));
		ScanKeyEntryInitialize(&skey[nkeys++], 0, 2, BTEqualStrategyNumber,
							   InvalidOid, C_COLLATION_OID, F_TEXTEQ, key);
	}
	scan = index_beginscan(rel, irel, snap, nkeys, 0);
	index_rescan(scan, skey, nkeys, NULL, 0);
	*found = false;
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		v;

		if (scan->xs_recheck)
		{
			bytea	   *have = DatumGetByteaPP(slot_getattr(slot, Anum_vault_fingerprint, &isnull));
			bytea	   *want_fp = DatumGetByteaPP(key);

			if (isnull || VARSIZE_ANY_EXHDR(have) != VARSIZE_ANY_EXHDR(want_fp) ||
				memcmp(VARDATA_ANY(have), VARDATA_ANY(want_fp), VARSIZE_ANY_EXHDR(have)) != 0)
				continue;
		}
		v = slot_getattr(slot, want, &isnull);
		result = isnull ? (Datum) 0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(v));
		*found = true;
		break;
	}
	index_endscan(scan);
	UnregisterSnapshot(snap);
	ExecDropSingleTupleTableSlot(slot);
	/* keep the locks to the end of the transaction: the next call finds them held */
	index_close(irel, NoLock);
	table_close(rel, NoLock);
	return result;
}

typedef struct OwnerCall
{
	const Domain *d;
	const char *token;
	bytea	   *fp;
	Datum		sealed;
	bool		done;			/* the row went in / the domain's row is locked */
	ItemPointerData tid;		/* the domain's row, when locked */
} OwnerCall;

/*
 * Run fn as the vault's owner, the way RI triggers act for the user: a
 * restricted operation with a pinned search_path, running statements with
 * no casts or unqualified names, so nothing the caller planted (say in
 * pg_temp) can run with the owner's rights.
 */
static void
as_owner(void (*fn) (OwnerCall *), OwnerCall *call)
{
	Relation	vault = table_open(call->d->vault, AccessShareLock);
	Oid			owner = vault->rd_rel->relowner;
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;

	table_close(vault, NoLock);
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		fn(call);
	}
	PG_FINALLY();
	{
		AtEOXact_GUC(true, save_nestlevel);
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
}

static SPIPlanPtr insert_plan = NULL;	/* kept for the backend's life */
static Oid	insert_plan_type = InvalidOid;
static SPIPlanPtr lock_plan = NULL;

/* The SQL insert (as the owner). */
static void
insert_sql(OwnerCall *call)
{
	Relation	vault = table_open(call->d->vault, AccessShareLock);
	Oid			types[4] = {TEXTOID, TEXTOID, BYTEAOID,
							TupleDescAttr(RelationGetDescr(vault), Anum_vault_value - 1)->atttypid};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', call->fp ? ' ' : 'n', ' '};

	table_close(vault, AccessShareLock);
	values[0] = CStringGetTextDatum(call->d->name);
	values[1] = CStringGetTextDatum(call->token);
	values[2] = PointerGetDatum(call->fp);
	values[3] = call->sealed;
	SPI_connect();
	/* the plan names the phi_ciphertext type by OID: redo it if that changed */
	if (insert_plan != NULL && insert_plan_type != types[3])
	{
		SPI_freeplan(insert_plan);
		insert_plan = NULL;
	}
	if (spi_run_kept(&insert_plan,
					 "INSERT INTO phi_guard.token_vault (domain, token, fingerprint, value) "
					 "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING token",
					 4, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
		elog(ERROR, "phi_guard: could not write to the token vault");
	insert_plan_type = types[3];
	call->done = SPI_processed > 0;
	SPI_finish();
}

/* Key-share lock the domain's row (as the owner), as the RI check would. */
static void
lock_domain_sql(OwnerCall *call)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(call->d->name)};
	bool		isnull;

	SPI_connect();
	if (spi_run_kept(&lock_plan,
					 "SELECT ctid FROM phi_guard.token_domains "
					 "WHERE name OPERATOR(pg_catalog.=) $1 FOR KEY SHARE",
					 1, types, values, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "phi_guard: could not lock the token domain");
	call->done = SPI_processed > 0;
	if (call->done)
		call->tid = *(ItemPointer) DatumGetPointer(SPI_getbinval(SPI_tuptable->vals[0],
																 SPI_tuptable->tupdesc, 1, &isnull));
	SPI_finish();
}

/*
 * Whether the domain's row this (sub)transaction locked is still there:
 * the lock keeps other sessions from deleting it, not this transaction
 * (which may have deleted or renamed it since).
 */
static bool
domain_row_live(const Domain *d)
{
	Relation	rel = table_open(d->domains, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	ItemPointerData tid = d->locked_tid;
	bool		live = table_tuple_fetch_row_version(rel, &tid, SnapshotSelf, slot);

	ExecDropSingleTupleTableSlot(slot);
	table_close(rel, NoLock);
	return live;
}

/* Whether created_at's default (nodeToString form) is now(); the last one seen is remembered. */
static bool
default_is_now(const char *adbin)
{
	static char *known = NULL;	/* in TopMemoryContext */
	Node	   *expr;

	if (known && strcmp(known, adbin) == 0)
		return true;
	expr = stringToNode(adbin);
	if (!IsA(expr, FuncExpr) || ((FuncExpr *) expr)->funcid != F_NOW)
		return false;
	if (known)
		pfree(known);
	known = MemoryContextStrdup(TopMemoryContext, adbin);
	return true;
}

/*
 * Whether rel (locked) is the vault as created, so that a direct write
 * skips nothing the SQL insert would do: its columns and their NOT NULL
 * marks, created_at defaulting to now(), no CHECK constraint, generated
 * column, rule or forced row security, one foreign key (domain to
 * token_domains, the one the caller's domain-row lock stands for), no
 * trigger on INSERT but that key's own check, and INSERT granted to its
 * owner, as whom the SQL insert runs.
 */
static bool
vault_is_plain(const Domain *d, Relation rel)
{
	static const char *const names[Natts_vault] = {"domain", "token", "fingerprint", "value", "created_at"};
	static const Oid types[Natts_vault] = {TEXTOID, TEXTOID, BYTEAOID, InvalidOid, TIMESTAMPTZOID};
	static const bool notnull[Natts_vault] = {true, true, false, true, true};
	TupleDesc	desc = RelationGetDescr(rel);
	TupleConstr *constr = desc->constr;
	Oid			fkey = InvalidOid;
	ListCell   *lc;

	if (desc->natts != Natts_vault || rel->rd_rel->relforcerowsecurity || rel->rd_rules != NULL)
		return false;
	for (int i = 0; i < Natts_vault; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || strcmp(NameStr(att->attname), names[i]) != 0 ||
			(OidIsValid(types[i]) ? att->atttypid != types[i] : att->attlen != -1) ||
			att->attnotnull != notnull[i])
			return false;
	}
	if (constr == NULL || constr->num_check > 0 || constr->has_generated_stored)
		return false;
	for (int i = 0;; i++)
	{
		if (i == constr->num_defval)
			return false;		/* created_at has no default */
		if (constr->defval[i].adnum == Anum_vault_created_at)
		{
			if (!default_is_now(constr->defval[i].adbin))
				return false;
			break;
		}
	}
	foreach(lc, RelationGetFKeyList(rel))
	{
		ForeignKeyCacheInfo *fk = lfirst_node(ForeignKeyCacheInfo, lc);

		if (OidIsValid(fkey) || fk->confrelid != d->domains || fk->nkeys != 1 ||
			fk->conkey[0] != Anum_vault_domain)
			return false;
		fkey = fk->conoid;
	}
	if (rel->trigdesc)
		for (int i = 0; i < rel->trigdesc->numtriggers; i++)
		{
			Trigger    *t = &rel->trigdesc->triggers[i];

			/* triggers on other events (a referencing table's keys) do not fire here */
			if (!TRIGGER_FOR_INSERT(t->tgtype))
				continue;
			if (!t->tgisinternal || t->tgconstraint != fkey || t->tgfoid != F_RI_FKEY_CHECK_INS)
				return false;
		}
	return pg_class_aclcheck(RelationGetRelid(rel), rel->rd_rel->relowner, ACL_INSERT) == ACLCHECK_OK;
}

typedef enum DirectResult
{
	DIRECT_INSERTED,
	DIRECT_CONFLICT,			/* a unique index saw a possible duplicate */
	DIRECT_NOT_TAKEN			/* the vault is not plain: use SQL */
} DirectResult;

/*
 * The direct insert (see the header comment).  The caller holds the
 * domain row's lock.
 */
static DirectResult
insert_direct(const Domain *d, const char *token, bytea *fp, Datum sealed)
{
	Relation	rel = table_open(d->vault, RowExclusiveLock);
	Relation	irels[VAULT_MAX_INDEXES];
	IndexInfo  *infos[VAULT_MAX_INDEXES];
	int			nidx = 0;
	bool		plain = vault_is_plain(d, rel);
	List	   *indexes = plain ? RelationGetIndexList(rel) : NIL;
	ListCell   *lc;
	TupleTableSlot *slot;
	TransactionId xid;
	uint32		spec;
	bool		conflict = false;

	foreach(lc, indexes)
	{
		Relation	irel;
		IndexInfo  *ii;

		if (nidx == VAULT_MAX_INDEXES)
		{
			plain = false;
			break;
		}
		irel = index_open(lfirst_oid(lc), RowExclusiveLock);
		ii = BuildIndexInfo(irel);
		irels[nidx] = irel;
		infos[nidx++] = ii;
		if (ii->ii_Expressions != NIL || ii->ii_Predicate != NIL ||
			ii->ii_ExclusionOps != NULL || (ii->ii_Unique && !irel->rd_index->indimmediate))
			plain = false;
	}
	if (!plain)
	{
		for (int i = 0; i < nidx; i++)
			index_close(irels[i], NoLock);
		table_close(rel, NoLock);
		return DIRECT_NOT_TAKEN;
	}

	slot = MakeSingleTupleTableSlot(RelationGetDescr(rel), &TTSOpsVirtual);
	ExecClearTuple(slot);
	slot->tts_values[Anum_vault_domain - 1] = CStringGetTextDatum(d->name);
	slot->tts_values[Anum_vault_token - 1] = CStringGetTextDatum(token);
	slot->tts_values[Anum_vault_fingerprint - 1] = PointerGetDatum(fp);
	slot->tts_values[Anum_vault_value - 1] = sealed;
	slot->tts_values[Anum_vault_created_at - 1] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	memset(slot->tts_isnull, false, Natts_vault * sizeof(bool));
	slot->tts_isnull[Anum_vault_fingerprint - 1] = (fp == NULL);
	ExecStoreVirtualTuple(slot);

	xid = GetCurrentTransactionId();
	spec = SpeculativeInsertionLockAcquire(xid);
	table_tuple_insert_speculative(rel, slot, GetCurrentCommandId(true), 0, NULL, spec);
	for (int i = 0; i < nidx && !conflict; i++)
	{
		Datum		values[INDEX_MAX_KEYS];
		bool		isnull[INDEX_MAX_KEYS];

		if (!infos[i]->ii_ReadyForInserts)
			continue;
		FormIndexDatum(infos[i], slot, NULL, values, isnull);
		if (!index_insert(irels[i], values, isnull, &slot->tts_tid, rel,
						  infos[i]->ii_Unique ? UNIQUE_CHECK_PARTIAL : UNIQUE_CHECK_NO,
						  false, infos[i]) && infos[i]->ii_Unique)
			conflict = true;
	}
	/* on a conflict the tuple is killed: the entries already made point at nothing */
	table_tuple_complete_speculative(rel, slot, spec, !conflict);
	SpeculativeInsertionLockRelease(xid);
	ExecDropSingleTupleTableSlot(slot);
	for (int i = 0; i < nidx; i++)
		index_close(irels[i], NoLock);
	table_close(rel, NoLock);
	if (conflict)
		return DIRECT_CONFLICT;
	/* later look-ups of this statement see the row, as after SQL's insert */
	CommandCounterIncrement();
	return DIRECT_INSERTED;
}

text *
vault_insert(Domain *d, const char *token, bytea *fp, Datum sealed)
{
	OwnerCall	call = {d, token, fp, sealed, false};

	if (d->direct && !XactReadOnly && !IsInParallelMode())
	{
		if (d->locked_lxid != MyProc->lxid || d->locked_subxid != GetCurrentSubTransactionId() ||
			!domain_row_live(d))
		{
			as_owner(lock_domain_sql, &call);
			if (!call.done)
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_OBJECT),
						 errmsg("token domain \"%s\" does not exist", d->name)));
			d->locked_tid = call.tid;
			d->locked_lxid = MyProc->lxid;
			d->locked_subxid = GetCurrentSubTransactionId();
		}
		switch (insert_direct(d, token, fp, sealed))
		{
			case DIRECT_INSERTED:
				return cstring_to_text(token);
			case DIRECT_CONFLICT:
				break;
			case DIRECT_NOT_TAKEN:
				d->direct = false;
				break;
		}
	}
	call.done = false;
	as_owner(insert_sql, &call);
	/* allocated here, not in SPI's memory, which SPI_finish released */
	return call.done ? cstring_to_text(token) : NULL;
}
