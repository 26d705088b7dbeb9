/*
 * cluster.h — the audit chain on a Citus coordinator (cluster.c, SPEC §10).
 */
#ifndef PHI_GUARD_AUDIT_CLUSTER_H
#define PHI_GUARD_AUDIT_CLUSTER_H

#include "postgres.h"

/*
 * phi_audit_digest's result from the local digest (jsonb): on a Citus
 * coordinator with workers, the local digest plus "nodes" and
 * "cluster_hash"; elsewhere local itself.  ERROR (08006) when a worker
 * does not answer.
 */
extern Datum cluster_digest(Datum local);

/*
 * phi_audit_verify's row (ok, blocks, entries, first_bad_block, problem),
 * given as the local verdict, becomes the cluster's on a Citus coordinator
 * with workers: every worker verified (against its part of digest when
 * given), counts summed, the first problem naming its node.  Unchanged
 * elsewhere.  ERROR (08006) when a worker does not answer.
 */
extern void cluster_verify(Datum digest, bool digest_null, Datum values[5], bool nulls[5]);

#endif
