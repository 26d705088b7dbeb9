/*
 * decrypt.c — the one decrypt API (crypto_decrypt) and phi_decrypt,
 * phi_decrypt_bytea (SPEC §3).
 *
 * Every decryption in phi_guard goes through crypto_decrypt: phi_decrypt
 * and phi_decrypt_bytea here, phi_rewrap (encrypt.c), masked reads and
 * detokenize (src/tokens).  Hot path per row: parse the header, one check
 * of the caller's DecryptCache (same key id, no key cache flushed since),
 * the key's access rule (access.c: one pointer test for a key without a
 * rule, one generation test for a decided context), one palloc for the
 * result and one AES-GCM operation on the key's prepared context.  A
 * context refused by the rule is refused before anything is decrypted, and
 * so is one of another tenant (or none) for a value under a tenant's key
 * (SPEC §9; decided once per call site, key and context).
 *
 * Every successful SQL decryption is noted for the audit log's access
 * entries after the fact (a failed one returned nothing) and before the
 * value is returned, with its row reference — the aad, else the nonce
 * (crypto_row_ref, SPEC §7); when the access cannot be recorded the audit
 * wipes the plaintext and raises PH006.
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/inval.h"

#include "audit/audit.h"
#include "common/errors.h"
#include "common/stats.h"
#include "context/context.h"
#include "core/ciphertext.h"
#include "core/secmem.h"
#include "crypto/crypto.h"
#include "phi_guard.h"

DecryptCache *
crypto_call_cache(FunctionCallInfo fcinfo)
{
	if (fcinfo->flinfo->fn_extra == NULL)
		fcinfo->flinfo->fn_extra = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt,
														  sizeof(DecryptCache));
	return (DecryptCache *) fcinfo->flinfo->fn_extra;
}

/*
 * Fill cache with the key of key_id and the access rule of its name.  Each
 * lookup may flush the other's cache (a lock processes invalidations), so
 * both are taken again until neither moved keystore_generation.
 */
static void
cache_key(DecryptCache *cache, uint32 key_id)
{
	for (;;)
	{
		KeyEntry   *entry = keyring_by_id(key_id);
		uint64		generation = keystore_generation;
		const KeyAccess *access = keyaccess_get(entry->name);

		if (keystore_generation == generation)
		{
			cache->entry = entry;
			cache->access = access;
			cache->generation = generation;
			break;
		}
	}
	cache->key_id = key_id;
	cache->context_generation = 0;
	cache->tenant_context = 0;
}

/*
 * A value under a tenant's key is shown only to a signed context of that
 * tenant: 42501 otherwise, naming neither tenant.
 */
static void
check_tenant(const KeyEntry *key)
{
	const char *t = context_tenant_id();

	if (t != NULL && strcmp(t, key->tenant) == 0)
		return;
	audit_denial(psprintf("key %s: %s", key->name, t == NULL ? "no context" : "another tenant"));
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 t == NULL ? errmsg("values under tenant keys are readable only under their tenant's signed context")
			 : errmsg("the value belongs to another tenant"),
			 errdetail("It was encrypted under a key \"%s\" of one tenant, which only a context of that tenant may read.",
					   key->name),
			 t == NULL ? errhint("Call phi_set_context() with the end user's signed context token first.") : 0));
}

void
crypto_decrypt(DecryptCache *cache, bytea *value, phic_bytes aad, CryptoReveal need,
			   Plaintext *out)
{
	phic_ct		ct;
	KeyEntry   *key;
	phic_status st;

	if (phic_ct_parse((const uint8 *) VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), &ct) != PHIC_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid phi_ciphertext value")));
	if (cache->entry == NULL || cache->generation != keystore_generation ||
		cache->key_id != ct.key_id)
	{
		/* once per call site: see changes committed elsewhere */
		if (cache->generation == 0)
			AcceptInvalidationMessages();
		cache_key(cache, ct.key_id);
	}
	key = cache->entry;
	if (need != CRYPTO_REVEAL_NOTHING && key->tenant[0] != '\0' &&
		cache->tenant_context != context_generation)
	{
		check_tenant(key);
		cache->tenant_context = context_generation;
	}
	out->reveal = need == CRYPTO_REVEAL_NOTHING ? CRYPTO_REVEAL_NOTHING
		: crypto_access_check(cache, need);
	out->mask_kind = cache->access->mask_kind;

	out->bytes = (bytea *) palloc(VARHDRSZ + ct.body_len);
	SET_VARSIZE(out->bytes, VARHDRSZ + ct.body_len);
	st = phic_ct_open(key->gcm, &ct, aad, (uint8 *) VARDATA(out->bytes));
	if (st != PHIC_OK)
	{
		pfree(out->bytes);		/* wiped by phic_ct_open */
		stats_count(PHI_STAT_DECRYPT_FAILED);
		errors_raise_core(st, "decrypt value");
	}
	stats_count(PHI_STAT_DECRYPT);
	out->len = ct.body_len;
	out->from_bytea = (ct.flags & PHIC_CT_FLAG_BYTEA) != 0;
	out->key_id = key->id;
	strlcpy(out->key_name, key->name, sizeof(out->key_name));
	strlcpy(out->key_tenant, key->tenant, sizeof(out->key_tenant));
}

void
crypto_row_ref(bytea *value, phic_bytes aad, AuditRowRef *ref)
{
	if (aad.ptr != NULL)
	{
		ref->kind = AUDIT_REF_AAD;
		ref->data = (const char *) aad.ptr;
		ref->len = (int) aad.len;
	}
	else
	{
		/* crypto_decrypt checked the layout: the nonce is at its place */
		ref->kind = AUDIT_REF_NONCE;
		ref->data = VARDATA_ANY(value) + PHIC_CT_NONCE_OFF;
		ref->len = PHIC_GCM_NONCE_LEN;
	}
	ref->domain = NULL;
}

text *
crypto_plain_text(Plaintext *p)
{
	if (p->from_bytea)
	{
		phic_wipe(VARDATA(p->bytes), p->len);
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("value was encrypted from bytea"),
				 errhint("Use phi_decrypt_bytea() for this value.")));
	}
	if (!pg_verify_mbstr(PG_UTF8, VARDATA(p->bytes), (int) p->len, true))
	{
		phic_wipe(VARDATA(p->bytes), p->len);
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("decrypted value is not valid UTF-8"),
				 errhint("The value was not written by phi_encrypt(text, ...); use phi_decrypt_bytea().")));
	}
	if (GetDatabaseEncoding() != PG_UTF8 && GetDatabaseEncoding() != PG_SQL_ASCII)
		return crypto_utf8_to_server(p->bytes, p->len);
	return (text *) p->bytes;
}

/*
 * The SQL decryption path: decrypt argument 0 with the aad of argument 1,
 * caching the key in fn_extra, and note the access for the audit log.
 * Arguments are detoasted before the key is looked up: detoasting may take
 * a lock, which may flush the key cache.
 */
static void
decrypt_args(FunctionCallInfo fcinfo, Plaintext *p)
{
	bytea	   *value = PG_GETARG_BYTEA_PP(0);
	phic_bytes	aad = crypto_aad_arg(fcinfo, 1);

	AuditRowRef ref;

	crypto_decrypt(crypto_call_cache(fcinfo), value, aad, CRYPTO_REVEAL_CLEAR, p);
	crypto_row_ref(value, aad, &ref);
	audit_access_reveal(AUDIT_ACCESS_DECRYPT, p->key_id, p->key_name, &ref, true,
						VARDATA(p->bytes), p->len);
}

PG_FUNCTION_INFO_V1(phi_guard_decrypt_text);

/* phi_decrypt(ct phi_ciphertext, aad text DEFAULT NULL) returns text */
Datum
phi_guard_decrypt_text(PG_FUNCTION_ARGS)
{
	Plaintext	p;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	decrypt_args(fcinfo, &p);
	PG_RETURN_TEXT_P(crypto_plain_text(&p));
}

PG_FUNCTION_INFO_V1(phi_guard_decrypt_bytea);

/* phi_decrypt_bytea(ct phi_ciphertext, aad text DEFAULT NULL) returns bytea */
Datum
phi_guard_decrypt_bytea(PG_FUNCTION_ARGS)
{
	Plaintext	p;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	decrypt_args(fcinfo, &p);
	PG_RETURN_BYTEA_P(p.bytes);
}
