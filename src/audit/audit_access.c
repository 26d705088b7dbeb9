/*
 * audit_access.c — access entries for decrypt, detokenize, tokenize,
 * break-glass use and rejected contexts (SPEC §6).
 *
 * Each call counts into a small backend-local table keyed by (kind, key);
 * the first count of a key in a statement captures who/where/why.  When the
 * top-level statement ends (ExecutorEnd or utility at nesting level 0), or
 * the transaction ends either way, the counts become access events in this
 * database's shared-memory queue (shmem.c), and the background worker
 * writes them to phi_guard.audit_log in its own transaction
 * (audit_queue_write) — so an access inside a transaction that rolls back
 * is still recorded.  On a hot standby, which cannot write, events go to
 * the server log instead; so they do when the queue stays full (never
 * lost) or the library was not preloaded.
 *
 * State: the pending table and the executor nesting level, both
 * backend-local; no locks of its own (the queue's are in shmem.c).
 */
#include "postgres.h"

#include "access/xlog.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "tcop/utility.h"

#include "audit/access.h"
#include "audit/audit.h"
#include "audit/record.h"
#include "audit/shmem.h"
#include "audit/worker.h"
#include "common/xact.h"

#define PENDING_MAX 16

static AccessEvent pending[PENDING_MAX];
static int	npending = 0;
static int	nesting = 0;

static ExecutorRun_hook_type prev_run = NULL;
static ExecutorFinish_hook_type prev_finish = NULL;
static ExecutorEnd_hook_type prev_end = NULL;
static ProcessUtility_hook_type prev_utility = NULL;

/* Append e's record: kind, table and detail by the event's kind. */
static void
build_access_record(StringInfo buf, const AccessEvent *e)
{
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
			kind = "context_rejected";
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
				e->kind == AUDIT_ACCESS_DETOKENIZE ? "detokenize" : "detokenize_failed";
			appendStringInfoString(&detail, "{\"key\":");
			audit_json_string(&detail, e->key_name);
			appendStringInfo(&detail, ",\"key_id\":%u", e->key_id);
			break;
	}
	appendStringInfo(&detail, ",\"count\":" INT64_FORMAT ",\"pid\":%d}", e->count, e->pid);
	audit_build_record(buf, &e->who, kind, table, NULL, NULL, detail.data);
	pfree(detail.data);
}

/* Write e's record to the server log, saying why it is not in the table. */
static void
log_event(const AccessEvent *e, const char *why)
{
	StringInfoData buf;

	initStringInfo(&buf);
	build_access_record(&buf, e);
	ereport(LOG,
			(errmsg("phi_guard access entry (%s): %s", why, buf.data)));
	pfree(buf.data);
}

/* Turn pending counts into events: queue, or log on a standby / overflow. */
static void
flush_pending(void)
{
	int			n = npending;

	npending = 0;
	for (int i = 0; i < n; i++)
	{
		if (!audit_shmem_attached() || RecoveryInProgress())
			log_event(&pending[i], RecoveryInProgress() ? "standby" : "not preloaded");
		else if (!audit_queue_push(&pending[i]))
		{
			log_event(&pending[i], "queue full");
			ereport(WARNING,
					(errmsg("phi_guard audit queue is full; access entry written to the server log"),
					 errhint("Check that the phi_guard audit worker is running.")));
		}
	}
}

/*
 * Count one access of kind to key key_id.  The first count of a key in a
 * statement captures the session's who/where/why (catalog lookups are not
 * possible later, at abort).
 */
void
audit_access_note(char kind, uint32 key_id, const char *key_name)
{
	static int	last = 0;
	AccessEvent *e;

	if (last < npending && pending[last].key_id == key_id && pending[last].kind == kind)
	{
		pending[last].count++;
		return;
	}
	for (last = 0; last < npending; last++)
		if (pending[last].key_id == key_id && pending[last].kind == kind)
		{
			pending[last].count++;
			return;
		}
	if (npending == PENDING_MAX)
		flush_pending();
	last = npending++;
	e = &pending[last];
	memset(e, 0, sizeof(*e));
	/* copy the name first: the lookups below may flush the keyring cache */
	strlcpy(e->key_name, key_name, sizeof(e->key_name));
	e->kind = kind;
	e->key_id = key_id;
	e->count = 1;
	e->pid = MyProcPid;
	audit_capture_who(&e->who);
	audit_ensure_worker();
}

int
audit_queue_write(AuditWriter *w, bool to_log)
{
	AccessEvent *events;
	int			n = audit_queue_peek(&events);
	StringInfoData buf;

	initStringInfo(&buf);
	for (int i = 0; i < n; i++)
	{
		if (to_log)
			log_event(&events[i], "standby");
		else
		{
			resetStringInfo(&buf);
			build_access_record(&buf, &events[i]);
			audit_writer_add(w, buf.data, buf.len);
		}
	}
	pfree(buf.data);
	if (events)
		pfree(events);
	return n;
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

static void
end_hook(QueryDesc *qd)
{
	if (prev_end)
		prev_end(qd);
	else
		standard_ExecutorEnd(qd);
	if (nesting == 0 && npending > 0)
		flush_pending();
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
	if (nesting == 0 && npending > 0)
		flush_pending();
}

/* At the end of every transaction, committed or not. */
static void
flush_at_end(void)
{
	if (npending > 0)
		flush_pending();
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
	xact_on_end(flush_at_end);
}
