/*
 * citus.c — where phi_guard's own tables keep their rows on a Citus node.
 *
 * On a Citus cluster, phi_citus_setup() (src/phi_guard.c's SQL, README
 * "Scaling out with Citus") makes the tables that hold keys, context keys,
 * permissions, break-glass grants and tokens Citus reference tables: every
 * node holds a full copy in a shard relation named "<table>_<shard id>"
 * (its indexes "<index>_<shard id>"), written by Citus in one distributed
 * transaction, while the table itself stays an empty shell.  Code that
 * reads those tables without SQL (the key cache, the token vault) must read
 * the shard; SQL reads go through Citus and need nothing from here.
 *
 * Invariants: without Citus, or for a table Citus does not distribute,
 * nothing changes: the table is its own storage.  Reads the catalogs only
 * (pg_dist_shard with an AccessShareLock for the scan); nothing cached
 * here.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_namespace.h"
#include "commands/extension.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "common/citus.h"

#define Anum_dist_shard_logicalrelid 1
#define Anum_dist_shard_shardid 2

bool
citus_present(void)
{
	return OidIsValid(get_extension_oid("citus", true));
}

int64
citus_reference_shard(Oid relid)
{
	Oid			catalog = get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
	Oid			index = get_relname_relid("pg_dist_shard_logical_relid_index",
										  PG_CATALOG_NAMESPACE);
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	int64		shard = 0;
	int			n = 0;

	if (!OidIsValid(catalog))
		return 0;
	rel = table_open(catalog, AccessShareLock);
	ScanKeyInit(&key, Anum_dist_shard_logicalrelid, BTEqualStrategyNumber,
				F_OIDEQ, ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, index, OidIsValid(index), NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_dist_shard_shardid,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			shard = DatumGetInt64(d);
		n++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return n == 1 ? shard : 0;
}

Oid
citus_shard_table(Oid relid)
{
	char	   *name = get_rel_name(relid);
	const char *u = name ? strrchr(name, '_') : NULL;
	Oid			catalog,
				table = InvalidOid;
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	int64		shard;
	char	   *expect;

	if (u == NULL || u[1] == '\0' || strspn(u + 1, "0123456789") != strlen(u + 1) ||
		strlen(u + 1) > 18 || !citus_present())
		return relid;
	catalog = get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
	if (!OidIsValid(catalog))
		return relid;
	shard = strtoi64(u + 1, NULL, 10);
	rel = table_open(catalog, AccessShareLock);
	ScanKeyInit(&key, Anum_dist_shard_shardid, BTEqualStrategyNumber,
				F_INT8EQ, Int64GetDatum(shard));
	scan = systable_beginscan(rel, get_relname_relid("pg_dist_shard_shardid_index",
													  PG_CATALOG_NAMESPACE),
							  true, NULL, 1, &key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, Anum_dist_shard_logicalrelid,
									 RelationGetDescr(rel), &isnull);

		if (!isnull)
			table = DatumGetObjectId(d);
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	/* only "<table>_<its shard id>" in the table's schema is a shard of it */
	if (!OidIsValid(table) || get_rel_name(table) == NULL ||
		get_rel_namespace(table) != get_rel_namespace(relid))
		return relid;
	expect = psprintf("%s_" INT64_FORMAT, get_rel_name(table), shard);
	return strcmp(expect, name) == 0 ? table : relid;
}

Oid
citus_storage_relid(Oid relid)
{
	Oid			table = get_rel_relkind(relid) == RELKIND_INDEX
		? IndexGetRelation(relid, false) : relid;
	int64		shard;
	char	   *name;
	Oid			storage;

	if (!citus_present() || (shard = citus_reference_shard(table)) == 0)
		return relid;
	name = psprintf("%s_" INT64_FORMAT, get_rel_name(relid), shard);
	storage = get_relname_relid(name, get_rel_namespace(relid));
	pfree(name);
	return OidIsValid(storage) ? storage : relid;
}

int
citus_local_reads_begin(void)
{
	int			level;

	if (!citus_present())
		return 0;
	level = NewGUCNestLevel();
	(void) set_config_option("citus.allow_nested_distributed_execution", "on",
							 PGC_USERSET, PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	return level;
}

void
citus_local_reads_end(int level)
{
	if (level > 0)
		AtEOXact_GUC(true, level);
}
