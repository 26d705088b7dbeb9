/*
 * catalog.c — lookups in the system catalogs shared by every capability:
 * the OIDs of phi_guard's own relations and the "schema.table" name that
 * audit entries carry.  On a Citus node, a table Citus keeps as a reference
 * table is found as its local shard (citus.c), so that reads without SQL
 * see its rows.
 *
 * Invariants: reads the syscache only (no locks taken; on a Citus node
 * also pg_dist_shard, citus.c), nothing cached here: callers that keep an OID also keep it coherent, typically with a
 * relcache callback).
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "utils/lsyscache.h"

#include "common/catalog.h"
#include "common/citus.h"

Oid
catalog_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid("phi_guard", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;

	return OidIsValid(relid) ? citus_storage_relid(relid) : InvalidOid;
}

Oid
catalog_relid_required(const char *relname, const char *what)
{
	Oid			relid = catalog_relid(relname);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("phi_guard %s is missing in this database", what),
				 errhint("Run CREATE EXTENSION phi_guard.")));
	return relid;
}

char *
catalog_qualified_name(Oid relid)
{
	char	   *name;
	char	   *nsp;

	relid = citus_shard_table(relid);
	name = get_rel_name(relid);
	if (name == NULL)
		return NULL;
	nsp = get_namespace_name(get_rel_namespace(relid));
	if (nsp == NULL)
		return NULL;
	return psprintf("%s.%s", nsp, name);
}
