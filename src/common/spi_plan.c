/*
 * spi_plan.c — statements that phi_guard's glue runs through SPI again and
 * again (key, permission and grant lookups, the vault insert): prepared on
 * first use, kept for the life of the backend.
 */
#include "postgres.h"

#include "executor/spi.h"

#include "phi_guard.h"

/*
 * The kept plan in *cache, preparing sql (nargs parameters of types) the
 * first time.  Call inside SPI_connect.  A failure to prepare is a
 * can't-happen (the statements are phi_guard's own): ERROR naming it.
 */
SPIPlanPtr
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
