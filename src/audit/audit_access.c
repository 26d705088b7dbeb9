/*
 * audit_access.c — access entries for decrypt, masked reads, detokenize,
 * tokenize, break-glass use and rejected contexts (SPEC §6, §7).
 *
 * Each call counts into a small backend-local table keyed by (kind, key):
 * one access per statement and key.  The first call of an access reserves
 * a cell of this database's queue in shared memory (queue.c) — before the
 * caller reveals anything, so an access that could not be recorded is
 * refused there with PH006 — and captures who/where/why.  When the
 * top-level statement ends (ExecutorEnd or utility at nesting level 0), or
 * the transaction ends either way, the accesses fill their reserved cells
 * as final entries, and the database's audit worker writes them to
 * phi_guard.audit_log in its own transaction (audit_queue_write) — so an
 * access inside a transaction that rolls back is still recorded, and
 * queuing at the end never fails.
 *
 * Accesses that reveal values (audit_access_reveal) also name their rows:
 * each distinct row reference (refs.c), the first
 * phi_guard.access_rows_max of them listed, the rest counted.  The text of
 * the listed ones grows in backend memory, and a queue cell is reserved
 * for each further ACCESS_CELL_TEXT bytes before the value that needs it
 * is returned, so the final entry never loses a reference for lack of
 * room.  In durable mode (phi_guard.access_audit, the default) the first
 * reference of an access is first queued as an intent entry, and the
 * caller waits until the worker has committed it (queue.c): the client
 * never holds a value whose access a crash could still erase.  A refused
 * reveal wipes the caller's plaintext before raising PH006.
 *
 * On a hot standby, which cannot write, entries go to the server log, as
 * they do when the library was not preloaded (no shared memory) — unless
 * phi_guard.standby_access is 'refuse', which refuses accesses that reveal
 * values there.  The records of queued events are built here too: as
 * entries by the worker (audit_queue_write), or as server log lines when a
 * database's events can never be written (audit_queue_discard: the
 * database or its extension is gone, or the server stops while it waits
 * for a worker).
 *
 * State: the pending table, its memory context (row references, reset
 * when the pending accesses are queued), the access counter and the
 * executor nesting level, all backend-local; no locks of its own (the
 * queue's are in shmem.c).
 */
#include "postgres.h"

#include "access/xlog.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/backend_status.h"
#include "utils/memutils.h"

#include "audit/access.h"
#include "audit/audit.h"
#include "audit/record.h"
#include "audit/refs.h"
#include "audit/shmem.h"
#include "common/xact.h"
#include "core/secmem.h"
#include "phi_guard.h"

#define PENDING_MAX 16
#define INTENT_WAIT_MS 5000		/* a durable access waits this long for its intent */

int			phi_guard_access_rows_max = 1000;
int			phi_guard_bulk_disclosure_limit = 0;

/* values revealed under a context in the current statement (the bulk limit) */
static int64 stmt_revealed = 0;
int			phi_guard_access_audit = AUDIT_MODE_DURABLE;
int			phi_guard_standby_access = AUDIT_STANDBY_LOG;

/* One access of this statement, waiting for the statement to end. */
typedef struct Pending
{
	AccessEvent e;				/* who, kind, key, counts */
	int			cell;			/* its reserved cell; -1: to the server log */
	int		   *text_cells;		/* reserved text cells (in access_cxt) */
	int			ntext;
	int			text_room;		/* length of text_cells */
	AccessRefs	refs;			/* kinds that reveal values */
} Pending;

static Pending pending[PENDING_MAX];
static int	npending = 0;
static int	last = 0;			/* the last access found or added */
static MemoryContext access_cxt = NULL;
static uint64 access_seq = 0;	/* accesses of this backend: their access_id */
static int	nesting = 0;

static ExecutorRun_hook_type prev_run = NULL;
static ExecutorFinish_hook_type prev_finish = NULL;
static ExecutorEnd_hook_type prev_end = NULL;
static ProcessUtility_hook_type prev_utility = NULL;

/* Kinds whose entries name rows (SPEC §7). */
static bool
reveals_rows(char kind)
{
	return kind == AUDIT_ACCESS_DECRYPT || kind == AUDIT_ACCESS_DECRYPT_MASKED ||
		kind == AUDIT_ACCESS_DETOKENIZE || kind == AUDIT_ACCESS_TOKENIZE;
}

/*
 * Append e's record, with its listed references rows: kind, table and
 * detail by the event's kind.  to_log: for the server log, which gets no
 * token (the references of token kinds are withheld, their number kept).
 */
static void
build_access_record(StringInfo buf, const AccessEvent *e, const char *rows, bool to_log)
{
	bool		withhold = to_log && (e->kind == AUDIT_ACCESS_TOKENIZE ||
									  e->kind == AUDIT_ACCESS_DETOKENIZE);

	StringInfoData detail;
	const char *kind;
	const char *table = NULL;

	initStringInfo(&detail);
	switch (e->kind)
	{
		case AUDIT_ACCESS_BREAK_GLASS:
			kind = "break_glass_use";
			table = e->key_name;
			appendStringInfo(&detail, "{\"grant\":%u", e->key_id);
			break;
		case AUDIT_ACCESS_CONTEXT_REJECTED:
		case AUDIT_ACCESS_DENIED:
			kind = e->kind == AUDIT_ACCESS_DENIED ? "access_denied" : "context_rejected";
			appendStringInfoString(&detail, "{\"reason\":");
			audit_json_string(&detail, e->key_name);
			break;
		case AUDIT_ACCESS_TOKENIZE:
			kind = "tokenize";
			appendStringInfoString(&detail, "{\"domain\":");
			audit_json_string(&detail, e->key_name);
			break;
		default:
			kind = e->kind == AUDIT_ACCESS_DECRYPT ? "decrypt" :
				e->kind == AUDIT_ACCESS_DECRYPT_MASKED ? "decrypt_masked" :
				e->kind == AUDIT_ACCESS_DETOKENIZE ? "detokenize" : "detokenize_failed";
			appendStringInfoString(&detail, "{\"key\":");
			audit_json_string(&detail, e->key_name);
			appendStringInfo(&detail, ",\"key_id\":%u", e->key_id);
			if (e->kind == AUDIT_ACCESS_DETOKENIZE)
			{
				appendStringInfoString(&detail, ",\"domain\":");
				audit_json_string(&detail, e->domain);
			}
			break;
	}
	if (e->phase != 0)
	{
		appendStringInfo(&detail, ",\"phase\":\"%s\",\"access_id\":\"%d." INT64_FORMAT "." UINT64_FORMAT "\"",
						 e->phase == ACCESS_PHASE_INTENT ? "intent" : "final",
						 e->pid, (int64) e->proc_start, e->seq);
		appendStringInfo(&detail, ",\"rows\":[%s],\"rows_omitted\":" INT64_FORMAT,
						 withhold ? "" : rows, e->rows_omitted);
		if (withhold)
			appendStringInfo(&detail, ",\"rows_withheld\":%d", e->nrows);
		if (!e->omitted_exact)
			appendStringInfoString(&detail, ",\"rows_omitted_exact\":false");
		appendStringInfo(&detail, ",\"count\":" INT64_FORMAT, e->count);
		if (e->query_id != 0)
			appendStringInfo(&detail, ",\"query_id\":\"" INT64_FORMAT "\"", (int64) e->query_id);
		else
			appendStringInfoString(&detail, ",\"query_id\":null");
		appendStringInfo(&detail, ",\"pid\":%d}", e->pid);
	}
	else
		appendStringInfo(&detail, ",\"count\":" INT64_FORMAT ",\"pid\":%d}", e->count, e->pid);
	audit_build_record(buf, &e->who, kind, table, NULL, NULL, detail.data);
	pfree(detail.data);
}

void
audit_access_log(const AccessEvent *e, const char *rows, const char *why)
{
	StringInfoData buf;

	initStringInfo(&buf);
	build_access_record(&buf, e, rows, true);
	ereport(LOG,
			(errmsg("phi_guard access entry (%s): %s", why, buf.data)));
	pfree(buf.data);
}

/*
 * Queue the pending accesses in their reserved cells as final entries, or
 * log them; an access refused before it revealed anything (no call counted,
 * no reference) gives its cells back instead.
 */
static void
flush_pending(void)
{
	int			n = npending;

	npending = 0;
	last = 0;
	for (int k = 0; k < n; k++)
	{
		Pending    *p = &pending[k];
		AccessEvent *e = &p->e;
		const char *rows = p->refs.json.data ? p->refs.json.data : "";
		bool		exact;
		int			ntext;

		if (e->count == 0 && refs_empty(&p->refs))
		{
			if (p->cell >= 0)
			{
				audit_queue_unreserve(&p->cell, 1);
				audit_queue_unreserve(p->text_cells, p->ntext);
			}
			refs_release(&p->refs);
			continue;
		}
		if (reveals_rows(e->kind))
			e->phase = ACCESS_PHASE_FINAL;
		e->nrows = p->refs.listed;
		e->rows_omitted = refs_others_distinct(&p->refs, &exact);
		e->omitted_exact = exact;
		refs_release(&p->refs);
		e->rows_len = (int) strlen(rows);
		if (p->cell < 0)
		{
			audit_access_log(e, rows, audit_shared ? "standby" : "not preloaded");
			continue;
		}
		/* cells reserved for a reference that was then refused */
		ntext = audit_queue_text_cells(e->rows_len);
		audit_queue_unreserve(p->text_cells + ntext, p->ntext - ntext);
		(void) audit_queue_push(p->cell, e, rows, p->text_cells, ntext, false);
	}
	if (access_cxt != NULL)
		MemoryContextReset(access_cxt);
}

/* The pending access (kind, key_id[, domain]), or -1. */
static int
pending_find(char kind, uint32 key_id, const char *domain)
{
	for (int k = -1; k < npending; k++)
	{
		int			i = k < 0 ? last : k;	/* the last one first */

		if (i < npending && pending[i].e.key_id == key_id && pending[i].e.kind == kind &&
			(domain == NULL || strcmp(pending[i].e.domain, domain) == 0))
			return last = i;
	}
	return -1;
}

/*
 * A new pending access, no call counted yet: reserves its cell (or raises
 * PH006) and captures the session's who/where/why (catalog lookups are
 * not possible later, at abort).  On a standby that refuses disclosures,
 * an access that reveals values raises PH006 instead.
 */
static int
pending_add(char kind, uint32 key_id, const char *key_name, const char *domain)
{
	int			cell = -1;
	Pending    *p;

	if (npending == PENDING_MAX)
		flush_pending();
	if (access_cxt == NULL)
		access_cxt = AllocSetContextCreate(TopMemoryContext, "phi_guard access rows",
										   ALLOCSET_DEFAULT_SIZES);
	/* a standby cannot write the log: its events go to the server log */
	if (audit_shared != NULL && !RecoveryInProgress())
		cell = audit_queue_reserve();
	else if (audit_shared != NULL && reveals_rows(kind) &&
			 phi_guard_standby_access == AUDIT_STANDBY_REFUSE)
		ereport(ERROR,
				(errcode(ERRCODE_PHI_AUDIT_UNAVAILABLE),
				 errmsg("access refused: it cannot be recorded in the audit log"),
				 errdetail("This server is a hot standby, which cannot write the audit log, and phi_guard.standby_access is \"refuse\"."),
				 errhint("Read the values on the primary, or set phi_guard.standby_access to \"log\" to have access entries written to the server log.")));
	last = npending++;
	p = &pending[last];
	memset(p, 0, sizeof(*p));
	p->cell = cell;
	/* copy the names first: the lookups below may flush the keyring cache */
	audit_copy_clipped(p->e.key_name, key_name, sizeof(p->e.key_name));
	if (domain != NULL)
		audit_copy_clipped(p->e.domain, domain, sizeof(p->e.domain));
	p->e.kind = kind;
	p->e.key_id = key_id;
	p->e.pid = MyProcPid;
	p->e.proc_start = MyStartTimestamp;
	p->e.seq = ++access_seq;
	p->e.query_id = pgstat_get_my_query_id();
	p->e.rows_more = -1;
	audit_capture_who(&p->e.who);
	return last;
}

/*
 * Count one access of kind to key key_id.  The first count of a key in a
 * statement reserves its queue cell (or raises PH006).
 */
void
audit_access_note(char kind, uint32 key_id, const char *key_name)
{
	int			i = pending_find(kind, key_id, NULL);

	if (i < 0)
		i = pending_add(kind, key_id, key_name, NULL);
	pending[i].e.count++;
}

/*
 * The intent entry of p, naming its first reference json: queued and
 * committed by the worker before this returns (or PH006).  json is at most
 * 6 * 128 + 2 bytes (refs.c), which the event's own cell holds.
 */
static void
write_intent(const Pending *p, const char *json)
{
	AccessEvent intent = p->e;
	int			cell;

	intent.phase = ACCESS_PHASE_INTENT;
	intent.count = 0;
	intent.nrows = 1;
	intent.rows_omitted = 0;
	intent.omitted_exact = true;
	intent.rows_len = (int) strlen(json);
	Assert(audit_queue_text_cells(intent.rows_len) == 0);
	cell = audit_queue_reserve();
	audit_queue_wait_ticket(audit_queue_push(cell, &intent, json, NULL, 0, true),
							INTENT_WAIT_MS);
}

/* The length of p's listed references with json added. */
static int
listed_len(const Pending *p, const char *json)
{
	return (p->refs.json.data ? p->refs.json.len + 1 : 0) + (int) strlen(json);
}

/* Reserve text cells until p's listed references can grow to len bytes. */
static void
reserve_text(Pending *p, int len)
{
	int			need = audit_queue_text_cells(len);

	if (need > p->text_room)
	{
		int			room = Max(need, 2 * p->text_room);

		p->text_cells = p->text_cells == NULL
			? MemoryContextAlloc(access_cxt, room * sizeof(int))
			: repalloc(p->text_cells, room * sizeof(int));
		p->text_room = room;
	}
	while (p->ntext < need)
		p->text_cells[p->ntext++] = audit_queue_reserve();
}

void
audit_access_reveal(char kind, uint32 key_id, const char *key_name,
					const AuditRowRef *ref, bool counted,
					void *secret, size_t secret_len)
{
	const char *domain = kind == AUDIT_ACCESS_DETOKENIZE ? ref->domain : NULL;
	int			i = pending_find(kind, key_id, domain);
	Pending    *p = i >= 0 ? &pending[i] : NULL;
	uint64		fp;
	char	   *json = NULL;
	bool		list;
	bool		intent;

	/* phi_guard.bulk_disclosure_limit: refused before the value leaves */
	if (counted && phi_guard_bulk_disclosure_limit > 0 &&
		stmt_revealed >= phi_guard_bulk_disclosure_limit && audit_in_context())
	{
		if (secret != NULL)
			phic_wipe(secret, secret_len);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("statement would reveal more than %d protected values",
						phi_guard_bulk_disclosure_limit),
				 errdetail("phi_guard.bulk_disclosure_limit caps the values one statement may reveal under a request context."),
				 errhint("Read fewer rows per statement, or have a superuser raise the limit.")));
	}
	if (counted)
		stmt_revealed++;
	fp = refs_fingerprint(ref);

	/* a listed reference again: one more call */
	if (p != NULL && refs_is_listed(&p->refs, ref, fp))
	{
		if (counted)
			p->e.count++;
		return;
	}
	list = (p ? p->refs.listed : 0) < phi_guard_access_rows_max;
	intent = phi_guard_access_audit == AUDIT_MODE_DURABLE && (p == NULL || refs_empty(&p->refs));

	/*
	 * What may refuse the access comes first — its cell (a new access), its
	 * intent (its first reference), room for the reference's text — and
	 * wipes the caller's plaintext when it does; a reference beyond the cap
	 * needs none of it.
	 */
	if (list || intent)
		json = refs_json(ref);
	if (p == NULL ||
		(p->cell >= 0 &&
		 (intent || (list && audit_queue_text_cells(listed_len(p, json)) > p->ntext))))
	{
		PG_TRY();
		{
			if (p == NULL)
				p = &pending[pending_add(kind, key_id, key_name, domain)];
			if (p->cell >= 0 && intent)
				write_intent(p, json);
			if (p->cell >= 0 && list)
				reserve_text(p, listed_len(p, json));
		}
		PG_CATCH();
		{
			if (secret != NULL)
				phic_wipe(secret, secret_len);
			PG_RE_THROW();
		}
		PG_END_TRY();
	}

	if (list)
		refs_list(&p->refs, access_cxt, ref, fp, json);
	else
		refs_other(&p->refs, fp);
	if (json != NULL)
		pfree(json);
	if (counted)
		p->e.count++;
}

int
audit_queue_write(AuditWriter *w, int i, int max)
{
	AccessEvent *events;
	char	  **rows;
	int			n = audit_queue_peek(i, max, &events, &rows);
	StringInfoData buf;

	initStringInfo(&buf);
	for (int k = 0; k < n; k++)
	{
		resetStringInfo(&buf);
		build_access_record(&buf, &events[k], rows[k], false);
		audit_writer_add(w, buf.data, buf.len);
		pfree(rows[k]);
	}
	pfree(buf.data);
	pfree(rows);
	pfree(events);
	return n;
}

void
audit_queue_discard(int i, const char *why)
{
	AccessEvent *events;
	char	  **rows;
	int			n;

	while ((n = audit_queue_peek(i, 1024, &events, &rows)) > 0)
	{
		for (int k = 0; k < n; k++)
		{
			audit_access_log(&events[k], rows[k], why);
			pfree(rows[k]);
		}
		audit_queue_consume(i, n);
		pfree(rows);
		pfree(events);
	}
	pfree(rows);
	pfree(events);
	LWLockAcquire(audit_shared->lock, LW_EXCLUSIVE);
	pg_atomic_write_u64(&audit_shared->dbs[i].written_max, 0);
	audit_shared->dbs[i].visit = false;
	(void) audit_db_release_if_idle(i);
	LWLockRelease(audit_shared->lock);
}

/* ---------------------------------------------------------------------
 * Statement boundaries
 * --------------------------------------------------------------------- */

static void
run_hook(QueryDesc *qd, ScanDirection dir, uint64 count, bool execute_once)
{
	nesting++;
	PG_TRY();
	{
		if (prev_run)
			prev_run(qd, dir, count, execute_once);
		else
			standard_ExecutorRun(qd, dir, count, execute_once);
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();
}

static void
finish_hook(QueryDesc *qd)
{
	nesting++;
	PG_TRY();
	{
		if (prev_finish)
			prev_finish(qd);
		else
			standard_ExecutorFinish(qd);
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();
}

/* A top-level statement or a transaction ended: its accesses are queued, its count restarts. */
static void
statement_done(void)
{
	stmt_revealed = 0;
	if (npending > 0)
		flush_pending();
}

static void
end_hook(QueryDesc *qd)
{
	if (prev_end)
		prev_end(qd);
	else
		standard_ExecutorEnd(qd);
	if (nesting == 0)
		statement_done();
}

static void
utility_hook(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree,
			 ProcessUtilityContext context, ParamListInfo params,
			 QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	nesting++;
	PG_TRY();
	{
		if (prev_utility)
			prev_utility(pstmt, queryString, readOnlyTree, context, params,
						 queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context,
									params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		nesting--;
	}
	PG_END_TRY();
	if (nesting == 0)
		statement_done();
}

/* From _PG_init when preloaded: executor, utility and transaction hooks. */
void
audit_access_init(void)
{
	prev_run = ExecutorRun_hook;
	ExecutorRun_hook = run_hook;
	prev_finish = ExecutorFinish_hook;
	ExecutorFinish_hook = finish_hook;
	prev_end = ExecutorEnd_hook;
	ExecutorEnd_hook = end_hook;
	prev_utility = ProcessUtility_hook;
	ProcessUtility_hook = utility_hook;
	xact_on_end(statement_done);	/* every transaction's end, committed or not */
}
