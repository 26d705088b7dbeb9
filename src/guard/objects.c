/*
 * objects.c — the object access hook: every change to a policy, a trigger
 * or an inheritance link, whatever statement makes it.
 *
 * Hooking the catalogs rather than the statements closes whole classes of
 * path at once: ALTER POLICY ... RENAME / USING / TO, DROP POLICY, DROP
 * COLUMN ... CASCADE, DROP OWNED, ALTER TABLE ... DISABLE / ENABLE REPLICA
 * / ENABLE ALWAYS TRIGGER (one trigger, ALL or USER), ALTER TRIGGER ...
 * RENAME, DROP TRIGGER, DROP FUNCTION ... CASCADE all end in the same
 * catalog change.
 *
 * Rules (the registries are phi_guard.protected_tables and
 * phi_guard.audited_tables, which only phi_guard's own functions write):
 * - A restrictive policy of a protected table is never altered: ERROR at
 *   once.  Dropping one is allowed only together with its table; that is
 *   known when the statement ends (utility.c).
 * - On a Citus distributed table the wall is permissive (Citus gives the
 *   shards no restrictive policy) and must stay the table's only policy:
 *   it is guarded as a restrictive one, and no other policy is created.
 * - A new restrictive policy of a protected table sorts after the tenant
 *   wall (GUARD_WALL_POLICY): PostgreSQL applies restrictive policies in
 *   name order, each before the next, so one sorting first would see (and
 *   could hand to a function of its owner) every tenant's rows before the
 *   wall filters them.  phi_guard.protect_apply refuses such a policy that
 *   was there before the table was protected.
 * - An audit trigger (one calling phi_guard.audit_trigger()) of an audited
 *   table keeps its name and stays enabled in origin mode: ERROR at once
 *   otherwise.  (CREATE OR REPLACE TRIGGER, which would swap its function
 *   in place, is refused before it runs: utility.c.)  Dropping one: as for
 *   policies.
 * - A new inheritance link (CREATE TABLE ... PARTITION OF / INHERITS,
 *   ATTACH PARTITION, INHERIT) is handed to utility.c, which extends the
 *   parent's protection and auditing to the child when the statement ends.
 * phi_unprotect_table and phi_audit_disable take the table out of its
 * registry first (in their own transaction), so these rules no longer hold
 * it.  Nothing is checked in a binary upgrade.
 *
 * Reading old and new: an OAT_POST_ALTER hook runs after the catalog row
 * was updated but before the command counter advances, so the catalog
 * snapshot still shows the row as it was and SnapshotSelf as it is now.
 * An OAT_POST_CREATE hook reads the new row with SnapshotSelf.
 *
 * State: none of its own (the deferred work is in utility.c).
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/table.h"
#include "catalog/objectaccess.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_policy.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"

#include "common/catalog.h"
#include "guard/internal.h"

static object_access_hook_type prev_object_access = NULL;

/*
 * A copy of the row with oid in catalog (by its oid index) as snapshot sees
 * it (NULL: the catalog snapshot), or NULL when there is none.
 */
static HeapTuple
catalog_row(Oid catalog, Oid oid_index, Oid oid, Snapshot snapshot)
{
	Relation	rel = table_open(catalog, AccessShareLock);
	ScanKeyData key;
	SysScanDesc scan;
	HeapTuple	tup;

	/* the oid is the first column of pg_policy and pg_trigger */
	ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(oid));
	scan = systable_beginscan(rel, oid_index, true, snapshot, 1, &key);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
		tup = heap_copytuple(tup);
	systable_endscan(scan);
	table_close(rel, AccessShareLock);
	return tup;
}

/*
 * The policy policy_oid if it is a restrictive policy or the tenant wall
 * (permissive on a Citus table) of a protected table.
 */
static Form_pg_policy
guarded_policy(Oid policy_oid)
{
	HeapTuple	tup = catalog_row(PolicyRelationId, PolicyOidIndexId, policy_oid, NULL);
	Form_pg_policy pol;

	if (tup == NULL)
		return NULL;
	pol = (Form_pg_policy) GETSTRUCT(tup);
	if ((pol->polpermissive && strcmp(NameStr(pol->polname), GUARD_WALL_POLICY) != 0) ||
		!lookup_registered("protected_tables", pol->polrelid))
		return NULL;
	return pol;
}

/*
 * Whether relid's tenant wall is permissive: the form phi_protect_table
 * gives a Citus distributed table, whose shards get every policy as
 * permissive, so that the wall must stay the table's only policy.
 */
static bool
wall_is_permissive(Oid relid)
{
	bool		permissive = false;

	return lookup_wall_policy(relid, &permissive) && permissive;
}

/* The trigger trigger_oid (as it was) if it is an audit trigger of an audited table. */
static Form_pg_trigger
guarded_trigger(Oid trigger_oid)
{
	Oid			fn = lookup_audit_function();
	HeapTuple	tup;
	Form_pg_trigger trig;

	if (!OidIsValid(fn))
		return NULL;
	tup = catalog_row(TriggerRelationId, TriggerOidIndexId, trigger_oid, NULL);
	if (tup == NULL)
		return NULL;
	trig = (Form_pg_trigger) GETSTRUCT(tup);
	if (trig->tgfoid != fn || !lookup_registered("audited_tables", trig->tgrelid))
		return NULL;
	return trig;
}

/*
 * OAT_POST_CREATE of a policy: ERROR if it is on a protected table and
 * either restrictive and sorting before the tenant wall (strcmp, the order
 * PostgreSQL applies restrictive policies in), or any policy beside a
 * permissive wall (a Citus table's, which another permissive policy would
 * widen).
 */
static void
policy_created(Oid policy_oid)
{
	HeapTuple	tup = catalog_row(PolicyRelationId, PolicyOidIndexId, policy_oid, SnapshotSelf);
	Form_pg_policy pol;

	if (tup == NULL)
		return;
	pol = (Form_pg_policy) GETSTRUCT(tup);
	if (strcmp(NameStr(pol->polname), GUARD_WALL_POLICY) == 0 ||
		!lookup_registered("protected_tables", pol->polrelid))
		return;
	if (wall_is_permissive(pol->polrelid))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("protected Citus table %s takes no policy besides its tenant wall \"%s\"",
						catalog_qualified_name(pol->polrelid), GUARD_WALL_POLICY),
				 errdetail("Citus gives the shards every policy as permissive, so any other policy would widen the wall."),
				 errhint("Only phi_unprotect_table, run by a phi_key_admin, removes the protection.")));
	if (pol->polpermissive || strcmp(NameStr(pol->polname), GUARD_WALL_POLICY) > 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("restrictive policy \"%s\" of protected table %s would sort before the tenant wall \"%s\"",
					NameStr(pol->polname), catalog_qualified_name(pol->polrelid), GUARD_WALL_POLICY),
			 errdetail("PostgreSQL applies restrictive policies in name order; a policy applied before the wall sees every tenant's rows."),
			 errhint("Give the policy a name that sorts after \"%s\".", GUARD_WALL_POLICY)));
}

/* OAT_POST_ALTER of a policy: ERROR if it is guarded (any change). */
static void
policy_altered(Oid policy_oid)
{
	Form_pg_policy pol = guarded_policy(policy_oid);

	if (pol != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("cannot alter restrictive policy \"%s\" of protected table %s",
						NameStr(pol->polname), catalog_qualified_name(pol->polrelid)),
				 errdetail("The restrictive policies of a table protected by phi_protect_table keep its tenants apart; they cannot be renamed, changed or dropped."),
				 errhint("Only phi_unprotect_table, run by a phi_key_admin, removes the protection.")));
}

/*
 * OAT_POST_ALTER of a trigger: ERROR if it is guarded and now disabled, in
 * replica or always mode, or renamed.
 */
static void
trigger_altered(Oid trigger_oid)
{
	Form_pg_trigger was = guarded_trigger(trigger_oid);
	HeapTuple	tup;
	Form_pg_trigger now;

	if (was == NULL)
		return;
	tup = catalog_row(TriggerRelationId, TriggerOidIndexId, trigger_oid, SnapshotSelf);
	if (tup == NULL)
		return;
	now = (Form_pg_trigger) GETSTRUCT(tup);
	/* ENABLE TRIGGER (ALL) leaves an enabled audit trigger as it is */
	if (now->tgenabled == TRIGGER_FIRES_ON_ORIGIN &&
		namestrcmp(&now->tgname, NameStr(was->tgname)) == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot alter audit trigger \"%s\" of audited table %s",
					NameStr(was->tgname), catalog_qualified_name(was->tgrelid)),
			 errdetail("The audit triggers of a table audited by phi_audit_enable stay enabled, in origin mode, under their names: they cannot be disabled, set to replica or always mode, renamed or dropped."),
			 errhint("Only phi_audit_disable, run by a phi_audit_admin, ends the auditing of a table.")));
}

static void
object_access(ObjectAccessType access, Oid classId, Oid objectId, int subId,
			  void *arg)
{
	if (prev_object_access)
		prev_object_access(access, classId, objectId, subId, arg);
	if (IsBinaryUpgrade)
		return;

	if (access == OAT_POST_CREATE)
	{
		if (classId == PolicyRelationId)
			policy_created(objectId);
	}
	else if (access == OAT_POST_ALTER)
	{
		if (classId == PolicyRelationId)
			policy_altered(objectId);
		else if (classId == TriggerRelationId)
			trigger_altered(objectId);
		else if (classId == InheritsRelationId && arg != NULL &&
				 OidIsValid(catalog_relid("protected_tables")))
			utility_defer(DEFERRED_INHERITANCE, objectId,
						  ((ObjectAccessPostAlter *) arg)->auxiliary_id, NULL);
	}
	else if (access == OAT_DROP)
	{
		if (classId == PolicyRelationId)
		{
			Form_pg_policy pol = guarded_policy(objectId);

			if (pol != NULL)
				utility_defer(DEFERRED_POLICY_DROPPED, objectId, pol->polrelid,
							  NameStr(pol->polname));
		}
		else if (classId == TriggerRelationId)
		{
			Form_pg_trigger trig = guarded_trigger(objectId);

			if (trig != NULL)
				utility_defer(DEFERRED_TRIGGER_DROPPED, objectId, trig->tgrelid,
							  NameStr(trig->tgname));
		}
	}
}

void
objects_init(void)
{
	prev_object_access = object_access_hook;
	object_access_hook = object_access;
}
