/*
 * citus.h — phi_guard's tables on a Citus node (citus.c).
 */
#ifndef PHI_GUARD_COMMON_CITUS_H
#define PHI_GUARD_COMMON_CITUS_H

#include "postgres.h"

/* Whether the citus extension exists in this database. */
extern bool citus_present(void);

/*
 * The shard id of relid when Citus keeps it in exactly one shard (a
 * reference table); 0 otherwise, and when Citus is absent.
 */
extern int64 citus_reference_shard(Oid relid);

/*
 * The relation that holds relid's rows on this node: for a Citus reference
 * table (or an index of one) its local shard "<name>_<shard id>", when that
 * exists here; otherwise relid itself.
 */
extern Oid	citus_storage_relid(Oid relid);

/*
 * The Citus table relid is a shard of ("<table>_<shard id>"), so that
 * entries and messages name the table the application knows; relid itself
 * for any other relation, and without Citus.
 */
extern Oid	citus_shard_table(Oid relid);

/*
 * Bracket SQL reads of phi_guard's reference tables that may run inside a
 * shard query on a worker, where Citus refuses queries on distributed
 * tables unless citus.allow_nested_distributed_execution is on: safe here,
 * as a reference table has a copy on every node and is read locally.
 * begin returns the level to give end; on an error, the (sub)transaction's
 * abort undoes the setting.  Without Citus both do nothing.
 */
extern int	citus_local_reads_begin(void);
extern void citus_local_reads_end(int level);

#endif
