/*
 * internal.h — what the files of src/guard share; nothing outside the
 * folder includes it.
 */
#ifndef PHI_GUARD_GUARD_INTERNAL_H
#define PHI_GUARD_GUARD_INTERNAL_H

#include "postgres.h"

/*
 * The name of the restrictive tenant wall phi_protect_table creates (its
 * install script writes it too).  Other restrictive policies of a protected
 * table must sort after it.
 */
#define GUARD_WALL_POLICY "phi_guard_tenant"

/* lookup.c: what phi_guard holds in the current database */

/* OID of phi_guard.audit_trigger(); InvalidOid when phi_guard is not installed. */
extern Oid	lookup_audit_function(void);

/*
 * Whether relid has a row in registry "protected_tables" or
 * "audited_tables", as this transaction sees the registry now (its own
 * changes included), or, on a Citus worker, is a shard of a table that is
 * protected (forced row security and the tenant wall) or audited (an audit
 * trigger) there; false when phi_guard is not installed.
 */
extern bool lookup_registered(const char *registry, Oid relid);

/*
 * Whether relid has a policy named GUARD_WALL_POLICY (as this command sees
 * the catalog, its own changes included); its permissiveness in
 * *permissive when given.
 */
extern bool lookup_wall_policy(Oid relid, bool *permissive);

/* Whether either registry holds a table that exists. */
extern bool lookup_any_registered(void);

/* The function trigger tgname of relid calls; InvalidOid when there is none. */
extern Oid	lookup_trigger_function(Oid relid, const char *tgname);

/* Whether relid has a trigger that calls phi_guard.audit_trigger(). */
extern bool lookup_has_audit_trigger(Oid relid);

/* protect.c */

/*
 * Run sql (phi_guard's own statement, values as parameters) as the owner of
 * extension phi_guard, the way a SECURITY DEFINER function runs.
 */
extern void protect_call_as_owner(const char *sql, int nargs, Oid *types,
								  Datum *values);

/* utility.c: checks and work done when the current utility statement ends */
typedef enum DeferredKind
{
	DEFERRED_POLICY_DROPPED,	/* objid: the policy, relid: its table */
	DEFERRED_TRIGGER_DROPPED,	/* objid: the trigger, relid: its table */
	DEFERRED_INHERITANCE		/* objid: the child, relid: the parent */
} DeferredKind;

/* Remember kind for the end of the statement; name: the object's (or NULL). */
extern void utility_defer(DeferredKind kind, Oid objid, Oid relid, const char *name);
extern void utility_init(void);

/* objects.c: the object access hook */
extern void objects_init(void);

/* planner.c: the tenant wall first for the existing rows ON CONFLICT and MERGE check */
extern void planner_init(void);

/* replica.c: writes that session_replication_role = replica could silence */

/*
 * ERROR (42501) when relid has audit triggers (which do not fire in replica
 * mode) and the current role is not a superuser and either the session is
 * in replica mode or the role may switch it there.
 */
extern void replica_refuse_write(Oid relid);
extern void replica_init(void);

#endif
