/*
 * breakglass.c — the C half of break-glass (SPEC §5): whether the current
 * context's user holds an active grant in its tenant, and the 'use' entry
 * when a protected table's break-glass policy admits rows through it.
 *
 * Grants live in phi_guard.break_glass (opened and ended by plpgsql
 * functions in the install script), so a grant holds across pooled
 * connections and transactions until it expires or is ended.  Each check
 * reads the table with the statement's snapshot; protected tables call it
 * once per query (an InitPlan in the policy), not per row.
 *
 * A use is an access entry (src/audit): counted per statement and grant,
 * written even when the transaction rolls back.  It is written only for a
 * call that row security made: break_glass_use must stay executable by
 * every role that reads a protected table (policies run as the reader), so
 * its own privileges cannot tell a policy from a forger.  The planner hook
 * below does: before planning, it marks (POLICY_CALL) the calls of
 * break_glass_use(tbl) found in the row-security quals of relation tbl
 * itself, which only that relation's policies put there; the executor
 * hands the marked node to the function (flinfo->fn_expr).  One exception:
 * an UPDATE or DELETE through a security_barrier view puts the view's
 * WHERE clause into the same list (the rewriter's securityQuals of the
 * relation written), so the row-security quals of a relation written
 * through a view are not marked at all (break-glass admits reads only,
 * never the write).  A direct call from a query, a view, a function, a
 * default, a check constraint or another table's policy is never marked:
 * it answers like phi_break_glass_active() and writes nothing.  The
 * policy's call is
 * evaluated only when a row of the table reaches its break-glass arm, so
 * an entry means the grant was in play for rows actually read.
 *
 * State: the OID of break_glass_use, cached per backend and forgotten on
 * any pg_proc change.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/planner.h"
#include "parser/parsetree.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/syscache.h"

#include "audit/audit.h"
#include "common/catalog.h"
#include "common/spi.h"
#include "context/context.h"

/*
 * The mark of a policy's call: a parse location no parser writes (they
 * are offsets >= 0, or -1 for unknown, and every reader treats a negative
 * location as unknown).
 */
#define POLICY_CALL (-2)

static planner_hook_type prev_planner = NULL;
static Oid	use_oid = InvalidOid;	/* phi_guard.break_glass_use(regclass) */

int			phi_guard_break_glass_max_minutes = 60;
int			phi_guard_break_glass_min_reason = 10;

/* The id of an active grant of the context's user and tenant, or 0. */
static int32
active_grant(void)
{
	static SPIPlanPtr plan = NULL;
	const char *user = context_user_id();
	const char *tenant = context_tenant_id();
	Datum		args[2];
	Oid			types[2] = {TEXTOID, TEXTOID};
	int32		grant = 0;

	if (user == NULL || tenant == NULL)
		return 0;
	args[0] = CStringGetTextDatum(user);
	args[1] = CStringGetTextDatum(tenant);
	SPI_connect();
	(void) spi_run_kept(&plan,
						"SELECT b.id FROM phi_guard.break_glass b "
						"WHERE b.user_id OPERATOR(pg_catalog.=) $1 "
						"AND b.tenant OPERATOR(pg_catalog.=) $2 "
						"AND b.ended_at IS NULL "
						"AND b.expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp() "
						"ORDER BY b.expires_at DESC LIMIT 1",
						2, types, args, NULL, true, 1);
	if (SPI_processed > 0)
	{
		bool		isnull;

		grant = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	return grant;
}

PG_FUNCTION_INFO_V1(phi_guard_break_glass_active);

/* phi_break_glass_active() returns bool; false without a context. */
Datum
phi_guard_break_glass_active(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(active_grant() > 0);
}

PG_FUNCTION_INFO_V1(phi_guard_break_glass_use);

/*
 * break_glass_use(tbl regclass) returns bool — the break-glass policy of a
 * protected table: whether the context holds an active grant, and, when it
 * does and row security made the call for tbl (marked POLICY_CALL), a
 * 'break_glass_use' entry for tbl.
 */
Datum
phi_guard_break_glass_use(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Node	   *call = fcinfo->flinfo->fn_expr;
	int32		grant = active_grant();

	if (grant > 0 && call != NULL && IsA(call, FuncExpr) &&
		((FuncExpr *) call)->location == POLICY_CALL)
	{
		char	   *table = catalog_qualified_name(relid);

		audit_access_note(AUDIT_ACCESS_BREAK_GLASS, (uint32) grant,
						  table ? table : "?");
	}
	PG_RETURN_BOOL(grant > 0);
}

/* The OID of phi_guard.break_glass_use(regclass); InvalidOid without the extension. */
static Oid
break_glass_use_oid(void)
{
	if (!OidIsValid(use_oid))
	{
		Oid			nsp = get_namespace_oid("phi_guard", true);
		Oid			argtypes[1] = {REGCLASSOID};

		if (OidIsValid(nsp))
			use_oid = GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid,
									  CStringGetDatum("break_glass_use"),
									  PointerGetDatum(buildoidvector(argtypes, 1)),
									  ObjectIdGetDatum(nsp));
	}
	return use_oid;
}

static void
proc_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	use_oid = InvalidOid;
}

typedef struct MarkContext
{
	Oid			fn;				/* break_glass_use */
	Oid			relid;			/* the relation whose row-security quals are walked */
} MarkContext;

/*
 * The relation q updates or deletes from through an auto-updatable view,
 * whose securityQuals may hold the view's WHERE clause; NULL for any other
 * query.  The rewriter leaves the view's own entry in the range table as a
 * relation of kind view (a view read in FROM becomes a subquery).
 */
static RangeTblEntry *
written_through_view(Query *q)
{
	ListCell   *lc;

	if (q->commandType != CMD_UPDATE && q->commandType != CMD_DELETE)
		return NULL;
	foreach(lc, q->rtable)
	{
		RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

		if (rte->rtekind == RTE_RELATION && rte->relkind == RELKIND_VIEW)
			return rt_fetch(q->resultRelation, q->rtable);
	}
	return NULL;
}

/*
 * Walk a query tree; inside the row-security quals of relation R, mark
 * every call break_glass_use(R) whose argument is the constant R.  The
 * quals of a relation are walked once, as its own (so a table read inside
 * R's policy cannot mark calls naming R from its own quals), and not at
 * all as quals of a relation written through a view.
 */
static bool
mark_walker(Node *node, MarkContext *cx)
{
	if (node == NULL)
		return false;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;
		RangeTblEntry *unmarked = written_through_view(q);
		ListCell   *lc;

		foreach(lc, q->rtable)
		{
			RangeTblEntry *rte = lfirst_node(RangeTblEntry, lc);

			if (rte->rtekind == RTE_RELATION)
			{
				Oid			outer = cx->relid;

				cx->relid = rte == unmarked ? InvalidOid : rte->relid;
				(void) mark_walker((Node *) rte->securityQuals, cx);
				cx->relid = outer;
				(void) mark_walker((Node *) rte->tablesample, cx);
			}
			else
				(void) range_table_entry_walker(rte, mark_walker, cx, 0);
		}
		return query_tree_walker(q, mark_walker, cx, QTW_IGNORE_RANGE_TABLE);
	}
	if (IsA(node, FuncExpr) && ((FuncExpr *) node)->funcid == cx->fn &&
		OidIsValid(cx->relid))
	{
		FuncExpr   *f = (FuncExpr *) node;
		Const	   *arg = list_length(f->args) == 1 ? (Const *) linitial(f->args) : NULL;

		if (arg && IsA(arg, Const) && !arg->constisnull &&
			DatumGetObjectId(arg->constvalue) == cx->relid)
			f->location = POLICY_CALL;
	}
	return expression_tree_walker(node, mark_walker, cx);
}

/* planner_hook: mark the policies' break_glass_use calls, then plan. */
static PlannedStmt *
planner(Query *parse, const char *query_string, int cursor_options,
		ParamListInfo bound_params)
{
	MarkContext cx = {break_glass_use_oid(), InvalidOid};

	if (OidIsValid(cx.fn))
		(void) mark_walker((Node *) parse, &cx);
	if (prev_planner)
		return prev_planner(parse, query_string, cursor_options, bound_params);
	return standard_planner(parse, query_string, cursor_options, bound_params);
}

void
breakglass_init(void)
{
	prev_planner = planner_hook;
	planner_hook = planner;
	CacheRegisterSyscacheCallback(PROCOID, proc_changed, (Datum) 0);
}
