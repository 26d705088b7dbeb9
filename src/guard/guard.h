/*
 * guard.h — src/guard: protection follows the data, and nothing but
 * phi_guard's own functions can weaken it.
 *
 * Owns: tables protected by phi_protect_table (registry
 * phi_guard.protected_tables) and audited by phi_audit_enable (registry
 * phi_guard.audited_tables) stay whole.  Their partitions and inheritance
 * children, present and future, get the same protection and auditing; no
 * statement but phi_unprotect_table / phi_audit_disable may switch off their
 * row security or FORCE, alter or drop their restrictive policies, or
 * disable, rename, replace or drop their audit triggers, nor add a
 * restrictive policy applied before the wall; and no non-superuser that
 * could make session_replication_role silence the triggers writes them.
 *
 * May call: src/common (and PostgreSQL).  Nothing includes this folder but
 * src/phi_guard.c.
 */
#ifndef PHI_GUARD_GUARD_H
#define PHI_GUARD_GUARD_H

/* From _PG_init when preloaded: the utility, executor and object hooks. */
extern void guard_init(void);

#endif
