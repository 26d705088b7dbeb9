/*
 * cluster.c — phi_audit_digest and phi_audit_verify on a Citus coordinator
 * (SPEC §10): each node keeps and seals its own chain; the coordinator's
 * digest carries every worker's digest and a cluster hash binding them,
 * and its verification covers every worker's chain.
 *
 * The work is SQL (src/cluster/cluster.sql: cluster_digest,
 * cluster_verify), which reaches the workers through Citus; this file only
 * hands the local result to it.  Without Citus, or on a worker, the local
 * result stands unchanged (the SQL finds no workers to reach).
 *
 * Invariants: a worker that cannot be reached is an error, never a digest
 * or a verdict that leaves it out.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

#include "audit/cluster.h"
#include "common/citus.h"
#include "common/spi.h"

Datum
cluster_digest(Datum local)
{
	Oid			types[1] = {JSONBOID};
	bool		isnull;
	Datum		d;

	if (!citus_present())
		return local;
	SPI_connect();
	(void) spi_run("SELECT phi_guard.cluster_digest($1)", 1, types, &local, NULL, false);
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	d = isnull ? local : SPI_datumTransfer(d, false, -1);
	SPI_finish();
	return d;
}

void
cluster_verify(Datum digest, bool digest_null, Datum values[5], bool nulls[5])
{
	Oid			types[6] = {JSONBOID, BOOLOID, INT8OID, INT8OID, INT8OID, TEXTOID};
	Datum		args[6];
	char		argnulls[6];

	if (!citus_present())
		return;
	args[0] = digest;
	argnulls[0] = digest_null ? 'n' : ' ';
	for (int i = 0; i < 5; i++)
	{
		args[i + 1] = values[i];
		argnulls[i + 1] = nulls[i] ? 'n' : ' ';
	}
	SPI_connect();
	(void) spi_run("SELECT * FROM phi_guard.cluster_verify($1, $2, $3, $4, $5, $6)",
				   6, types, args, argnulls, false);
	for (int i = 0; i < 5; i++)
	{
		values[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &nulls[i]);
		if (!nulls[i])
			values[i] = SPI_datumTransfer(values[i], i < 4, i < 4 ? 8 : -1);
	}
	SPI_finish();
}
