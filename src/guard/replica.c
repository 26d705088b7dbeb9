/*
 * replica.c — audited tables are not written by a role that could make
 * session_replication_role = replica silence their triggers.
 *
 * phi_guard's audit triggers fire in origin mode (they must not fire for the
 * rows a logical-replication subscriber applies), so in replica mode a
 * write would leave no entry.  Setting the mode takes a superuser or a role
 * a superuser granted SET on it.  Such a role can switch the mode in the
 * middle of a statement (set_config() called by the statement itself), after
 * the statement was checked and before its statement-level audit triggers
 * are queued, so checking the mode when a statement starts is not enough:
 * a non-superuser that may set the mode — the current role, or a role the
 * session user may become with SET ROLE — writes no audited table at all,
 * in any mode.  Writes are INSERT, UPDATE, DELETE and MERGE (ExecutorStart,
 * data-modifying WITH included) here, COPY ... FROM and TRUNCATE from
 * utility.c.  Superusers keep the mode's usual meaning (a restore, a
 * subscriber); so does a session whose session user is a superuser.
 * Not covered: a SECURITY DEFINER function of a role that may set the mode,
 * written to switch it for its caller (only such a role can write one).
 *
 * State: none.  Cost per statement that writes: superuser() (cached) and,
 * for other roles, one syscache probe of pg_parameter_acl; the audit
 * triggers are looked up only for a role that may set the mode or a session
 * in replica mode.
 */
#include "postgres.h"

#include "catalog/pg_parameter_acl.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "parser/parsetree.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/syscache.h"

#include "common/catalog.h"
#include "guard/internal.h"

#define REPLICATION_ROLE_SETTING "session_replication_role"

static ExecutorStart_hook_type prev_executor_start = NULL;

/*
 * Whether this session, not a superuser's, could set
 * session_replication_role during a statement: the current role may (a
 * grant to it, a role it inherits or PUBLIC), or the session user may
 * become (SET ROLE) a role that may.
 */
static bool
may_set_replication_role(void)
{
	Oid			session = GetSessionUserId();
	HeapTuple	tup;
	Datum		acl;
	bool		isnull;
	bool		may = false;

	if (superuser_arg(session))
		return false;
	if (pg_parameter_aclcheck(REPLICATION_ROLE_SETTING, GetUserId(), ACL_SET) == ACLCHECK_OK)
		return true;
	tup = SearchSysCache1(PARAMETERACLNAME,
						  PointerGetDatum(cstring_to_text(REPLICATION_ROLE_SETTING)));
	if (!HeapTupleIsValid(tup))
		return false;
	acl = SysCacheGetAttr(PARAMETERACLNAME, tup, Anum_pg_parameter_acl_paracl, &isnull);
	if (!isnull)
	{
		Oid		   *roles;
		int			n = aclmembers(DatumGetAclP(acl), &roles);

		for (int i = 0; i < n && !may; i++)
			may = is_member_of_role(session, roles[i]) &&
				pg_parameter_aclcheck(REPLICATION_ROLE_SETTING, roles[i], ACL_SET) == ACLCHECK_OK;
	}
	ReleaseSysCache(tup);
	return may;
}

void
replica_refuse_write(Oid relid)
{
	if (!OidIsValid(relid) || superuser())
		return;
	if (SessionReplicationRole == SESSION_REPLICATION_ROLE_REPLICA)
	{
		if (lookup_has_audit_trigger(relid))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("cannot change audited table %s while session_replication_role is replica",
							catalog_qualified_name(relid)),
					 errdetail("phi_guard's audit triggers do not fire in replica mode; only a superuser may write an audited table in it."),
					 errhint("SET session_replication_role = origin.")));
	}
	else if (may_set_replication_role() && lookup_has_audit_trigger(relid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot change audited table %s as a role that may set session_replication_role",
						catalog_qualified_name(relid)),
				 errdetail("Such a role could switch to replica mode in the middle of the statement, where phi_guard's audit triggers do not fire."),
				 errhint("Write audited tables as a role without SET on session_replication_role.")));
}

static void
executor_start(QueryDesc *queryDesc, int eflags)
{
	PlannedStmt *stmt = queryDesc->plannedstmt;

	if (!(eflags & EXEC_FLAG_EXPLAIN_ONLY))
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
