/*
 * access.c — decryption obeys the signed context (SPEC §5 phi_key_access):
 * what the current context may see of a key's values.
 *
 * A key name with a rule (phi_guard.key_access, cached in src/keys) is read
 * in clear only under a context one of whose roles holds the rule's
 * permission, masked only under one holding its masked permission, and not
 * at all otherwise or without a context.  A key without a rule is CLEAR:
 * the database roles alone decide, as in 0.2.0.  The database role still
 * needs its own privileges (EXECUTE on the function, phi_decryptor for
 * clear values): the context can only narrow what the role may see.
 *
 * Cost: the decision is kept in the caller's DecryptCache with the
 * context_generation it was made under, so a statement of a million rows
 * under one context decides once per call site and key; a key without a
 * rule costs one pointer test per row.
 *
 * Refusals are 42501 with the key name and the permissions involved (never
 * a value), counted as phi_guard refusals in the statistics and noted as
 * access_denied audit entries (audit_denial), which survive the rollback.
 */
#include "postgres.h"

#include "utils/inval.h"

#include "audit/audit.h"
#include "context/context.h"
#include "crypto/crypto.h"

/* What the current context may see under rule a. */
static CryptoReveal
decide(const KeyAccess *a)
{
	if (a->permission == NULL || context_has_permission(a->permission))
		return CRYPTO_REVEAL_CLEAR;
	if (a->masked_permission && context_has_permission(a->masked_permission))
		return CRYPTO_REVEAL_MASKED;
	return CRYPTO_REVEAL_NOTHING;
}

/* 42501 for a context that may see only got of rule a's values. */
static void
refuse(const KeyAccess *a, CryptoReveal got) pg_attribute_noreturn();

static void
refuse(const KeyAccess *a, CryptoReveal got)
{
	audit_denial(psprintf("key %s: %s", a->name,
						  context_user_id() == NULL ? "no context"
						  : got == CRYPTO_REVEAL_MASKED ? "masked only" : "no permission"));
	if (context_user_id() == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("values of key \"%s\" are readable only under a signed context", a->name),
				 errdetail("The key's access rule admits contexts whose roles hold permission \"%s\".",
						   a->permission),
				 errhint("Call phi_set_context() with the end user's signed context token first.")));
	if (got == CRYPTO_REVEAL_MASKED)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("the context may read values of key \"%s\" masked only", a->name),
				 errdetail("Its roles hold permission \"%s\" but not \"%s\".",
						   a->masked_permission, a->permission),
				 errhint("Use phi_decrypt_masked(), which returns the key's bound mask.")));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("no role of the context has permission \"%s\" to read values of key \"%s\"",
					a->permission, a->name),
			 a->masked_permission
			 ? errdetail("Permission \"%s\" would show them masked.", a->masked_permission)
			 : 0,
			 errhint("A key administrator grants permissions to context roles with phi_permission_grant().")));
	pg_unreachable();
}

CryptoReveal
crypto_access_check(DecryptCache *cache, CryptoReveal need)
{
	if (cache->access->permission == NULL)
		return CRYPTO_REVEAL_CLEAR;
	if (cache->context_generation != context_generation)
	{
		cache->reveal = decide(cache->access);
		cache->context_generation = context_generation;
	}
	if (cache->reveal < need)
		refuse(cache->access, cache->reveal);
	return cache->reveal;
}

CryptoReveal
crypto_access_require(DecryptCache *cache, const char *key_name, CryptoReveal need)
{
	if (cache->access == NULL || cache->generation != keystore_generation ||
		strcmp(cache->access->name, key_name) != 0)
	{
		/* once per call site: see rules committed elsewhere */
		if (cache->generation == 0)
			AcceptInvalidationMessages();
		cache->access = keyaccess_get(key_name);
		cache->entry = NULL;	/* the key is looked up again when needed */
		cache->generation = keystore_generation;
		cache->context_generation = 0;
	}
	return crypto_access_check(cache, need);
}
