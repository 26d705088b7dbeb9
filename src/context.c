/*
 * context.c — readers of the per-request context (SPEC §5).
 *
 * phi_set_context is not built yet (issue: signed request context), so no
 * context can exist and every reader answers NULL; the audit log records
 * that as app_user/tenant/purpose null.
 */
#include "postgres.h"

#include "context.h"

const char *
context_user_id(void)
{
	return NULL;
}

const char *
context_tenant_id(void)
{
	return NULL;
}

const char *
context_purpose(void)
{
	return NULL;
}
