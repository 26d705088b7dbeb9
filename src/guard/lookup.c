/*
 * lookup.c — what phi_guard holds in the current database: its audit
 * trigger function, its two registries of guarded tables, and whether a
 * table carries audit triggers.
 *
 * Invariants: phi_guard's objects are found by schema and name, the
 * guarded tables by the registries (phi_guard.protected_tables,
 * phi_guard.audited_tables, whose first column is relid regclass and
 * primary key) and, on a Citus worker, a shard by what its table carries
 * (shard_of_guarded), and audit triggers by the function they call, never by
 * their own names.  Nothing is cached: each answer reflects the catalogs
 * and registries as this transaction sees them at the call (the callers
 * run on DDL, which is rare).  Locks: AccessShareLock on the registry or
 * pg_trigger while scanning.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_trigger.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

#include "common/catalog.h"
#include "common/citus.h"
#include "guard/internal.h"

Oid
lookup_audit_function(void)
{
	Oid			nsp = get_namespace_oid("phi_guard", true);

	if (!OidIsValid(nsp))
		return InvalidOid;
	return GetSysCacheOid3(PROCNAMEARGSNSP, Anum_pg_proc_oid,
						   CStringGetDatum("audit_trigger"),
						   PointerGetDatum(buildoidvector(NULL, 0)),
						   ObjectIdGetDatum(nsp));
}

/*
 * On a Citus worker: whether relid is a shard of a table guarded on the
 * coordinator.  The registries live where phi_protect_table and
 * phi_audit_enable ran; here the table's shell, which Citus keeps in step
 * with the coordinator's (where DDL on it runs, and is guarded), carries
 * what they made: for protected_tables, forced row security and the tenant
 * wall; for audited_tables, an audit trigger.
 */
static bool
shard_of_guarded(const char *registry, Oid relid)
{
	Oid			table = citus_shard_table(relid);
	HeapTuple	tup;
	bool		forced;

	if (table == relid)
		return false;
	if (strcmp(registry, "audited_tables") == 0)
		return lookup_has_audit_trigger(table);
	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(table));
	if (!HeapTupleIsValid(tup))
		return false;
	forced = ((Form_pg_class) GETSTRUCT(tup))->relforcerowsecurity;
	ReleaseSysCache(tup);
	return forced && lookup_wall_policy(table, NULL);
}

bool
lookup_wall_policy(Oid relid, bool *permissive)
{
	Relation	rel = table_open(PolicyRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found;

	ScanKeyInit(&key[0], Anum_pg_policy_polrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&key[1], Anum_pg_policy_polname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(GUARD_WALL_POLICY));
	scan = systable_beginscan(rel, PolicyPolrelidPolnameIndexId, true, SnapshotSelf, 2, key);
	tup = systable_getnext(scan);
	found = HeapTupleIsValid(tup);
	if (found && permissive != NULL)
		*permissive = ((Form_pg_policy) GETSTRUCT(tup))->polpermissive;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}

bool
lookup_registered(const char *registry, Oid relid)
{
	Oid			regid = catalog_relid(registry);
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	Snapshot	snapshot;
	bool		found;

	if (!OidIsValid(regid))
		return false;
	rel = table_open(regid, AccessShareLock);
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
	/* a fresh snapshot: what phi_unprotect_table deleted a moment ago is gone */
	snapshot = RegisterSnapshot(GetLatestSnapshot());
	scan = systable_beginscan(rel, RelationGetPrimaryKeyIndex(rel), true,
							  snapshot, 1, &key);
	found = HeapTupleIsValid(systable_getnext(scan));
	systable_endscan(scan);
	UnregisterSnapshot(snapshot);
	table_close(rel, AccessShareLock);
	return found || shard_of_guarded(registry, relid);
}

bool
lookup_any_registered(void)
{
	const char *registries[] = {"protected_tables", "audited_tables"};
	bool		found = false;

	for (int i = 0; i < lengthof(registries) && !found; i++)
	{
		Oid			regid = catalog_relid(registries[i]);
		Relation	rel;
		SysScanDesc scan;
		Snapshot	snapshot;
		HeapTuple	tup;

		if (!OidIsValid(regid))
			continue;
		rel = table_open(regid, AccessShareLock);
		snapshot = RegisterSnapshot(GetLatestSnapshot());
		scan = systable_beginscan(rel, InvalidOid, false, snapshot, 0, NULL);
		while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
		{
			bool		isnull;
			Datum		relid = heap_getattr(tup, 1, RelationGetDescr(rel), &isnull);

			/* (a row left behind by a table dropped in replica mode does not count) */
			found = !isnull && SearchSysCacheExists1(RELOID, relid);
		}
		systable_endscan(scan);
		UnregisterSnapshot(snapshot);
		table_close(rel, AccessShareLock);
	}
	return found;
}

Oid
lookup_trigger_function(Oid relid, const char *tgname)
{
	Relation	rel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyData key[2];
	SysScanDesc scan;
	HeapTuple	tup;
	Oid			fn = InvalidOid;

	ScanKeyInit(&key[0], Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	ScanKeyInit(&key[1], Anum_pg_trigger_tgname, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(tgname));
	scan = systable_beginscan(rel, TriggerRelidNameIndexId, true, NULL, 2, key);
	if (HeapTupleIsValid(tup = systable_getnext(scan)))
		fn = ((Form_pg_trigger) GETSTRUCT(tup))->tgfoid;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return fn;
}

bool
lookup_has_audit_trigger(Oid relid)
{
	Oid			fn = lookup_audit_function();
	Relation	rel;
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	if (!OidIsValid(fn))
		return false;
	rel = table_open(TriggerRelationId, AccessShareLock);
	ScanKeyInit(&key, Anum_pg_trigger_tgrelid, BTEqualStrategyNumber, F_OIDEQ,
				ObjectIdGetDatum(relid));
	scan = systable_beginscan(rel, TriggerRelidNameIndexId, true, NULL, 1, &key);
	while (!found && HeapTupleIsValid(tup = systable_getnext(scan)))
		found = ((Form_pg_trigger) GETSTRUCT(tup))->tgfoid == fn;
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return found;
}
