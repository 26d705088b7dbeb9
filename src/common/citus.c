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

/*
 * The rows of pg_dist_shard whose column key_attno equals value (eq, the
 * equality function; index_name, the index on that column): the column
 * want_attno of the last one in *out (not null; untouched when none).
 * Returns how many matched; 0 without Citus's catalog.
 */
static int
dist_shard_lookup(AttrNumber key_attno, RegProcedure eq, Datum value,
				  const char *index_name, AttrNumber want_attno, Datum *out)
{
	Oid			catalog = get_relname_relid("pg_dist_shard", PG_CATALOG_NAMESPACE);
	Oid			index = get_relname_relid(index_name, PG_CATALOG_NAMESPACE);
	Relation	rel;
	SysScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;
	int			n = 0;

	if (!OidIsValid(catalog))
		return 0;
	rel = table_open(catalog, AccessShareLock);
	ScanKeyInit(&key, key_attno, BTEqualStrategyNumber, eq, value);
	scan = systable_beginscan(rel, index, OidIsValid(index), NULL, 1, &key);
	while (HeapTupleIsValid(tup = systable_getnext(scan)))
	{
		bool		isnull;
		Datum		d = heap_getattr(tup, want_attno, RelationGetDescr(rel), &isnull);

		if (!isnull)
			*out = d;
		n++;
	}
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return n;
}

int64
citus_reference_shard(Oid relid)
{
	Datum		shard = Int64GetDatum(0);

	if (dist_shard_lookup(Anum_dist_shard_logicalrelid, F_OIDEQ, ObjectIdGetDatum(relid),
						  "pg_dist_shard_logical_relid_index", Anum_dist_shard_shardid,
						  &shard) != 1)
		return 0;
	return DatumGetInt64(shard);
}

Oid
citus_shard_table(Oid relid)
{
	char	   *name = get_rel_name(relid);
	const char *u = name ? strrchr(name, '_') : NULL;
	Datum		found = ObjectIdGetDatum(InvalidOid);
	Oid			table;
	int64		shard;
	char	   *expect;

	if (u == NULL || u[1] == '\0' || strspn(u + 1, "0123456789") != strlen(u + 1) ||
		strlen(u + 1) > 18 || !citus_present())
		return relid;
	shard = strtoi64(u + 1, NULL, 10);
	(void) dist_shard_lookup(Anum_dist_shard_shardid, F_INT8EQ, Int64GetDatum(shard),
							 "pg_dist_shard_shardid_index", Anum_dist_shard_logicalrelid,
							 &found);
	table = DatumGetObjectId(found);
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
