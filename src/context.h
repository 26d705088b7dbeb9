/*
 * context.h — the verified per-request context (SPEC §5).  Until
 * phi_set_context exists every reader returns NULL: there is never a
 * context, which is what the audit record then says.
 */
#ifndef PHI_GUARD_CONTEXT_H
#define PHI_GUARD_CONTEXT_H

extern const char *context_user_id(void);
extern const char *context_tenant_id(void);
extern const char *context_purpose(void);

#endif
