/*
 * catalog.h — finding phi_guard's relations and naming relations
 * (catalog.c).
 */
#ifndef PHI_GUARD_COMMON_CATALOG_H
#define PHI_GUARD_COMMON_CATALOG_H

#include "postgres.h"

/*
 * The OID of relation (table, index, sequence) relname in the phi_guard
 * schema; InvalidOid when the schema or the relation does not exist.  On
 * a Citus node where it is a reference table (or an index of one): its
 * local shard (citus_storage_relid), which holds the rows.
 */
extern Oid	catalog_relid(const char *relname);

/*
 * As catalog_relid, but a missing relation is an ERROR (55000) saying
 * "phi_guard <what> is missing in this database", with a hint to run
 * CREATE EXTENSION.
 */
extern Oid	catalog_relid_required(const char *relname, const char *what);

/*
 * "schema.table" of relid, unquoted, in the current memory context; NULL
 * when no such relation exists.  A Citus shard is named by its table
 * (citus_shard_table).
 */
extern char *catalog_qualified_name(Oid relid);

#endif
