/*
 * spi.h — running phi_guard's own statements through SPI (spi.c).
 *
 * Every function is called between SPI_connect and SPI_finish.  A failure
 * of one of these statements is a can't-happen (they are phi_guard's own,
 * against its own tables): ERROR naming the statement, never a value.
 */
#ifndef PHI_GUARD_COMMON_SPI_H
#define PHI_GUARD_COMMON_SPI_H

#include "postgres.h"

#include "executor/spi.h"

/*
 * Run sql through the plan kept in *cache (a static SPIPlanPtr of the
 * caller), preparing it with nargs parameters of types the first time and
 * keeping it for the life of the backend.  values/nulls as for
 * SPI_execute_plan (nulls: NULL or ' '/'n' per argument); at most tcount
 * rows (0: all).  Returns the SPI_OK_* code.
 */
extern int	spi_run_kept(SPIPlanPtr *cache, const char *sql, int nargs, Oid *types,
						 Datum *values, const char *nulls, bool read_only, long tcount);

/*
 * Run sql once (not kept).  read_only: use the calling statement's
 * snapshot, so that several reads agree; otherwise take a fresh one, so a
 * read sees what committed after an earlier one.  Returns the SPI_OK_* code.
 */
extern int	spi_run(const char *sql, int nargs, Oid *types, Datum *values,
					const char *nulls, bool read_only);

/*
 * Run sql with a fresh snapshot and return the first column (int2, int4 or
 * int8) of its first row; -1 when there is no row or the value is NULL.
 */
extern int64 spi_int(const char *sql, int nargs, Oid *types, Datum *values,
					 const char *nulls);

#endif
