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
 * A use is an access entry (audit_access.c): counted per statement and
 * grant, written even when the transaction rolls back.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "audit/audit.h"
#include "context/context.h"
#include "phi_guard.h"

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
	if (SPI_execute_plan(spi_kept_plan(&plan,
									   "SELECT b.id FROM phi_guard.break_glass b "
									   "WHERE b.user_id OPERATOR(pg_catalog.=) $1 "
									   "AND b.tenant OPERATOR(pg_catalog.=) $2 "
									   "AND b.ended_at IS NULL "
									   "AND b.expires_at OPERATOR(pg_catalog.>) pg_catalog.clock_timestamp() "
									   "ORDER BY b.expires_at DESC LIMIT 1",
									   2, types),
						 args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read phi_guard.break_glass");
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
 * protected table: true, and a 'break_glass_use' entry for tbl, when the
 * context holds an active grant.
 */
Datum
phi_guard_break_glass_use(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	int32		grant = active_grant();

	if (grant > 0)
	{
		char	   *nsp = get_namespace_name(get_rel_namespace(relid));
		char	   *name = get_rel_name(relid);

		audit_access_note(AUDIT_ACCESS_BREAK_GLASS, (uint32) grant,
						  nsp && name ? psprintf("%s.%s", nsp, name) : "?");
	}
	PG_RETURN_BOOL(grant > 0);
}
