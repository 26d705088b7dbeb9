/*
 * mask.c — masking (SPEC §5): phi_mask, and masked reads
 * (phi_decrypt_masked).
 *
 * The rules live in src/core/mask.c (plain C, unit-tested, on UTF-8); this
 * file converts to and from the database encoding and decides who sees
 * plaintext.  A masked read shows the value only when both allow it: the
 * database role (with the privileges of phi_decryptor) and the signed
 * context (the key's phi_key_access rule, src/crypto/access.c).  Everyone
 * else allowed to call phi_decrypt_masked (phi_masked_reader, or a context
 * holding only the rule's masked permission) gets the mask of the kind a
 * key administrator bound to the key (phi_mask_bind) — never a kind the
 * caller chose, which could show more (phone on a date shows month and
 * day) — and a full mask without a binding.  A masked read decrypts
 * through the one decrypt API (src/crypto, key cached per call site); the
 * server decrypted PHI either way, so the call is an audited access.
 * Plaintext copies are wiped (crypto_utf8 wipes its transcoded copy).
 */
#include "postgres.h"

#include "access/xact.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "core/mask.h"
#include "core/secmem.h"
#include "tokens/tokens.h"

/* What a masked reader sees of a key without a bound kind: nothing of the value. */
#define FULL_MASK "****"

static phic_mask_kind
mask_kind(text *t)
{
	int			k = phic_mask_kind_parse(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));

	if (k < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown mask kind \"%s\"", text_to_cstring(t)),
				 errhint("Kinds are ssn, email, phone, name, dob and zip.")));
	return (phic_mask_kind) k;
}

/* The year of the transaction's start: dob masks keep an age band. */
static int
current_year(void)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (timestamp2tm(GetCurrentTransactionStartTimestamp(), NULL, &tm, &fsec, NULL, NULL) != 0)
		return 0;
	return tm.tm_year;
}

/* Masked copy of value[0..len) in the database encoding. */
static text *
mask_text(phic_mask_kind kind, const char *value, int len)
{
	phic_bytes	u = crypto_utf8(value, len);
	char	   *out = palloc(phic_mask_max(u.len) + 1);
	size_t		olen = phic_mask(kind, (const char *) u.ptr, u.len, current_year(), out);

	out[olen] = '\0';
	return cstring_to_text(pg_any_to_server(out, (int) olen, PG_UTF8));
}

PG_FUNCTION_INFO_V1(phi_guard_mask);

/* phi_mask(value text, kind text) returns text */
Datum
phi_guard_mask(PG_FUNCTION_ARGS)
{
	text	   *v = PG_GETARG_TEXT_PP(0);
	phic_mask_kind kind = mask_kind(PG_GETARG_TEXT_PP(1));

	PG_RETURN_TEXT_P(mask_text(kind, VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v)));
}

/* Whether the current role has the privileges of phi_decryptor. */
static bool
full_reader(void)
{
	Oid			decryptor = get_role_oid("phi_decryptor", true);

	return OidIsValid(decryptor) && has_privs_of_role(GetUserId(), decryptor);
}

PG_FUNCTION_INFO_V1(phi_guard_decrypt_masked);

/*
 * phi_decrypt_masked(ct phi_ciphertext, aad text, kind text) returns text:
 * plaintext when the role has phi_decryptor's privileges and the context
 * may read the key in clear; otherwise the key's bound mask ("****"
 * without a binding), whatever kind says; 42501 when the context may not
 * even see masks.  kind must still be a known kind.
 */
Datum
phi_guard_decrypt_masked(PG_FUNCTION_ARGS)
{
	bytea	   *value;
	phic_bytes	aad;
	Plaintext	p;
	text	   *plain;
	text	   *masked;
	AuditRowRef ref;
	bool		clear;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("mask kind must not be null")));
	(void) mask_kind(PG_GETARG_TEXT_PP(2));
	value = PG_GETARG_BYTEA_PP(0);
	aad = crypto_aad_arg(fcinfo, 1);
	crypto_decrypt(crypto_call_cache(fcinfo), value, aad, CRYPTO_REVEAL_MASKED, &p);
	plain = crypto_plain_text(&p);
	clear = p.reveal == CRYPTO_REVEAL_CLEAR && full_reader();
	/* a read that returns clear text is a decrypt, one that returns the mask a decrypt_masked */
	crypto_row_ref(value, aad, &ref);
	audit_access_reveal(clear ? AUDIT_ACCESS_DECRYPT : AUDIT_ACCESS_DECRYPT_MASKED,
						p.key_id, p.key_name, &ref, true,
						VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain));
	if (clear)
		PG_RETURN_TEXT_P(plain);
	masked = p.mask_kind < 0 ? cstring_to_text(FULL_MASK)
		: mask_text((phic_mask_kind) p.mask_kind, VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain));
	phic_wipe(VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain));
	PG_RETURN_TEXT_P(masked);
}
