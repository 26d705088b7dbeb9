/*
 * context.h — the verified per-request context (SPEC §5): who the end user
 * is, in which tenant, with which roles and permissions, for what purpose.
 * Set only by phi_set_context from a signed token; cleared at the end of
 * every transaction.
 */
#ifndef PHI_GUARD_CONTEXT_H
#define PHI_GUARD_CONTEXT_H

/* settings (phi_guard.c) */
extern int	phi_guard_context_leeway;
extern int	phi_guard_context_max_lifetime;
extern int	phi_guard_break_glass_max_minutes;
extern int	phi_guard_break_glass_min_reason;

extern void context_init(void);

/* NULL when no context is set (purpose also when the token had none) */
extern const char *context_user_id(void);
extern const char *context_tenant_id(void);
extern const char *context_purpose(void);
extern bool context_has_permission(const char *permission);

#endif
