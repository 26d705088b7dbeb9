/*
 * mask_sql.c — phi_mask and phi_decrypt_masked (SPEC §5 masking).
 *
 * The rules live in src/core/mask.c (plain C, unit-tested); this file
 * converts to and from UTF-8 and decides who sees plaintext: a role with
 * the privileges of phi_decryptor gets the value, anyone else allowed to
 * call phi_decrypt_masked (phi_masked_reader) gets the masked form.  Either
 * way the server decrypted PHI, so the call is an audited access.
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

#include "audit/audit.h"
#include "core/mask.h"
#include "core/secmem.h"
#include "crypto/encrypt.h"
#include "keys/keyring.h"

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
	const char *u = pg_server_to_any(value, len, PG_UTF8);
	size_t		ulen = (u == value) ? (size_t) len : strlen(u);
	char	   *out = palloc(phic_mask_max(ulen) + 1);
	size_t		olen = phic_mask(kind, u, ulen, current_year(), out);
	char	   *s;

	out[olen] = '\0';
	s = pg_any_to_server(out, (int) olen, PG_UTF8);
	return cstring_to_text(s);
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

PG_FUNCTION_INFO_V1(phi_guard_decrypt_masked);

/*
 * phi_decrypt_masked(ct phi_ciphertext, aad text, kind text) returns text:
 * plaintext for roles with phi_decryptor's privileges, masked otherwise.
 */
Datum
phi_guard_decrypt_masked(PG_FUNCTION_ARGS)
{
	phic_mask_kind kind;
	text	   *plain;
	text	   *masked;
	uint32		key_id;
	char		key_name[KEY_NAME_MAX + 1];
	Oid			decryptor;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("mask kind must not be null")));
	kind = mask_kind(PG_GETARG_TEXT_PP(2));
	plain = decrypt_text_value(PG_GETARG_BYTEA_PP(0),
							   PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1)),
							   &key_id, key_name);
	audit_access_note(AUDIT_ACCESS_DECRYPT, key_id, key_name);
	decryptor = get_role_oid("phi_decryptor", true);
	if (OidIsValid(decryptor) && has_privs_of_role(GetUserId(), decryptor))
		PG_RETURN_TEXT_P(plain);
	masked = mask_text(kind, VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain));
	phic_wipe(VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain));
	PG_RETURN_TEXT_P(masked);
}
