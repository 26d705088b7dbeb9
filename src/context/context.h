/*
 * context.h — src/context: who is asking, on whose behalf and why.
 *
 * Owns: the verified per-request context (SPEC §5: end user, tenant,
 * roles and their permissions, purpose), set only by phi_set_context from
 * a signed token and cleared at the end of every transaction
 * (context.c); the readers and permission checks that row-level security
 * policies call; break-glass grants and their use (breakglass.c).  It
 * provides the audit's who-fields (audit_set_context_provider).
 *
 * May call: src/core (JWS), src/common, src/audit (access entries for
 * rejected tokens and break-glass use) and PostgreSQL.  Nothing above it
 * (keys, crypto, tokens, guard).
 */
#ifndef PHI_GUARD_CONTEXT_H
#define PHI_GUARD_CONTEXT_H

#include "postgres.h"

#include "utils/guc.h"

/* settings, defined by _PG_init */
extern int	phi_guard_context_leeway;
extern int	phi_guard_context_max_lifetime;
extern char *phi_guard_context_issuer;	/* "": iss not checked */
extern char *phi_guard_context_audience;	/* "": aud not checked */
extern char *phi_guard_context_token;	/* on Citus: the coordinator's token */
extern int	phi_guard_break_glass_max_minutes;
extern int	phi_guard_break_glass_min_reason;

/* From _PG_init, preloaded or not. */
extern void context_init(void);

/* Check and assign hooks of phi_guard.context_token (context.c). */
extern bool context_token_check(char **newval, void **extra, GucSource source);
extern void context_token_assigned(const char *newval, void *extra);

/* breakglass.c, from _PG_init (preloaded or not): the planner hook that tells policies' calls apart. */
extern void breakglass_init(void);

/* NULL when no context is set (purpose also when the token had none) */
extern const char *context_user_id(void);
extern const char *context_tenant_id(void);
extern const char *context_purpose(void);

/* Deny by default: false without a context. */
extern bool context_has_permission(const char *permission);

/*
 * Moves (never 0) whenever the context is set, cleared or ends: a caller
 * that caches a decision about the context keeps it alongside.
 */
extern uint64 context_generation;

#endif
