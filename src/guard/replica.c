/*
 * replica.c — audited tables are not written while session_replication_role
 * = replica silences their triggers.
 *
 * phi_guard's audit triggers fire in origin mode (they must not fire for the
 * rows a logical-replication subscriber applies), so in replica mode a
 * write would leave no entry.  Setting the mode takes a superuser or a role
 * a superuser granted SET on it; this file refuses such a role's writes to
 * audited tables: INSERT, UPDATE, DELETE and MERGE (ExecutorStart, data-
 * modifying WITH included) here, COPY ... FROM and TRUNCATE from utility.c.
 * Superusers keep the mode's usual meaning (a restore, a subscriber).
 *
 * State: none.  Cost: nothing unless the session is in replica mode.
 */
#include "postgres.h"

#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "parser/parsetree.h"

#include "common/catalog.h"
#include "guard/internal.h"

static ExecutorStart_hook_type prev_executor_start = NULL;

void
replica_refuse_write(Oid relid)
{
	if (SessionReplicationRole != SESSION_REPLICATION_ROLE_REPLICA ||
		!OidIsValid(relid) || superuser() || !lookup_has_audit_trigger(relid))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot change audited table %s while session_replication_role is replica",
					catalog_qualified_name(relid)),
			 errdetail("phi_guard's audit triggers do not fire in replica mode; only a superuser may write an audited table in it."),
			 errhint("SET session_replication_role = origin.")));
}

static void
executor_start(QueryDesc *queryDesc, int eflags)
{
	PlannedStmt *stmt = queryDesc->plannedstmt;

	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA &&
		!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
	{
		ListCell   *lc;

		foreach(lc, stmt->resultRelations)
			replica_refuse_write(rt_fetch(lfirst_int(lc), stmt->rtable)->relid);
	}
	if (prev_executor_start)
		prev_executor_start(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
}

void
replica_init(void)
{
	prev_executor_start = ExecutorStart_hook;
	ExecutorStart_hook = executor_start;
}
