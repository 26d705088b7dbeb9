/*
 * spi.c — the SPI helpers of common/spi.h: plans prepared once and kept
 * for the life of the backend (key, permission and grant lookups, the
 * vault insert), one-off statements, and single-integer queries.
 *
 * Invariants: callers are inside SPI_connect; a statement that fails is
 * phi_guard's own and raises an ERROR naming it (the SQL text holds no
 * data: values are always parameters).  No locks of its own.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"

#include "common/spi.h"

/* The kept plan in *cache, preparing sql the first time. */
static SPIPlanPtr
spi_kept_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *types)
{
	if (*cache == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, types);

		if (p == NULL || SPI_keepplan(p) != 0)
			elog(ERROR, "phi_guard: could not prepare \"%s\"", sql);
		*cache = p;
	}
	return *cache;
}

int
spi_run_kept(SPIPlanPtr *cache, const char *sql, int nargs, Oid *types,
			 Datum *values, const char *nulls, bool read_only, long tcount)
{
	int			rc = SPI_execute_plan(spi_kept_plan(cache, sql, nargs, types),
									  values, nulls, read_only, tcount);

	if (rc < 0)
		elog(ERROR, "phi_guard: SPI failed (%d): %s", rc, sql);
	return rc;
}

int
spi_run(const char *sql, int nargs, Oid *types, Datum *values,
		const char *nulls, bool read_only)
{
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls,
										   read_only, 0);

	if (rc < 0)
		elog(ERROR, "phi_guard: SPI failed (%d): %s", rc, sql);
	return rc;
}

int64
spi_int(const char *sql, int nargs, Oid *types, Datum *values, const char *nulls)
{
	bool		isnull;
	Datum		d;
	Oid			type;
	int			rc = SPI_execute_with_args(sql, nargs, types, values, nulls,
										   false, 1);

	if (rc < 0)
		elog(ERROR, "phi_guard: SPI failed (%d): %s", rc, sql);
	if (SPI_processed == 0)
		return -1;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull)
		return -1;
	type = SPI_gettypeid(SPI_tuptable->tupdesc, 1);
	if (type == INT8OID)
		return DatumGetInt64(d);
	if (type == INT4OID)
		return (int64) DatumGetInt32(d);
	if (type == INT2OID)
		return (int64) DatumGetInt16(d);
	elog(ERROR, "phi_guard: statement does not return an integer: %s", sql);
	pg_unreachable();
}
