/*
 * planner.c — the planner hook: an existing row that INSERT ... ON CONFLICT
 * DO UPDATE or MERGE would update or delete meets the tenant wall before
 * any other policy.
 *
 * PostgreSQL checks such a row against the UPDATE or DELETE policies as
 * WITH CHECK options (the row was not filtered by the table's security
 * quals: ON CONFLICT found it through a unique index, MERGE when the
 * statement reads no column of the target), in the order row security
 * built them: the permissive policies (ORed into one check) first, then
 * each restrictive one, by name.  The row may belong to another tenant; a
 * permissive policy of the table's owner (the README lets owners tune
 * access with their own) would then be evaluated on it — and could hand its
 * columns to a function of the owner — before the wall refuses it.  This
 * hook moves the restrictive checks of existing rows ahead of the
 * permissive one; since all of them must pass, only which refusal is
 * reported can change.  The wall sorts first among the restrictive ones
 * (objects.c keeps every other restrictive policy of a protected table
 * after it), so it is the first check the row meets.  Reads are already in
 * that order: row security applies restrictive policies before permissive
 * ones, by name.  Checks of new rows (the writer's own) keep their order.
 *
 * Only the top-level statement and its WITH queries can be INSERT ... ON
 * CONFLICT or MERGE (data-modifying statements are allowed nowhere else);
 * statements of functions are planned on their own and come through here
 * too.
 *
 * State: none.  Cost: a look at the statement and its WITH list.
 */
#include "postgres.h"

#include "nodes/parsenodes.h"
#include "optimizer/planner.h"

#include "guard/internal.h"

static planner_hook_type prev_planner = NULL;

/* In q, the restrictive checks of existing rows before the permissive ones. */
static void
restrictive_row_checks_first(Query *q)
{
	List	   *restrictive = NIL;
	List	   *others = NIL;
	ListCell   *lc;

	foreach(lc, q->withCheckOptions)
	{
		WithCheckOption *wco = lfirst_node(WithCheckOption, lc);
		bool		existing_row = wco->kind == WCO_RLS_CONFLICT_CHECK ||
			wco->kind == WCO_RLS_MERGE_UPDATE_CHECK || wco->kind == WCO_RLS_MERGE_DELETE_CHECK;

		/* a restrictive policy's check carries its name, the permissive one none */
		if (existing_row && wco->polname != NULL)
			restrictive = lappend(restrictive, wco);
		else
			others = lappend(others, wco);
	}
	q->withCheckOptions = list_concat(restrictive, others);
}

static PlannedStmt *
planner(Query *parse, const char *query_string, int cursor_options,
		ParamListInfo bound_params)
{
	ListCell   *lc;

	restrictive_row_checks_first(parse);
	foreach(lc, parse->cteList)
	{
		CommonTableExpr *cte = lfirst_node(CommonTableExpr, lc);

		if (IsA(cte->ctequery, Query))
			restrictive_row_checks_first((Query *) cte->ctequery);
	}
	if (prev_planner)
		return prev_planner(parse, query_string, cursor_options, bound_params);
	return standard_planner(parse, query_string, cursor_options, bound_params);
}

void
planner_init(void)
{
	prev_planner = planner_hook;
	planner_hook = planner;
}
