/*
 * encrypt.c — phi_encrypt, phi_decrypt, phi_decrypt_bytea, phi_rewrap
 * (SPEC §2-§3).
 *
 * Hot path per row: one fn_extra check (key name or id unchanged and the
 * keyring not flushed since), one palloc for the result, one AES-GCM
 * operation on a prepared context and a nonce from the batched buffer.
 * When the fn_extra cache is first set up (once per call site per query) we
 * accept pending invalidations, so a rotate or destroy committed elsewhere
 * is seen even inside a long transaction that takes no new locks.
 *
 * Text plaintext and aad are encrypted as UTF-8 (converted from and to the
 * database encoding when it is not UTF-8), so values decrypt anywhere.
 * Plaintext buffers this file allocates for its own use are wiped.
 * Every successful decryption is counted for the audit log's access entries
 * (audit_access.c), after the fact: a failed one returned nothing.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/memutils.h"

#include "audit/audit.h"
#include "core/ciphertext.h"
#include "core/secmem.h"
#include "crypto/encrypt.h"
#include "keys/keyring.h"
#include "phi_guard.h"
#include "common/stats.h"

typedef struct CallCache
{
	uint64		generation;
	uint32		key_id;			/* last key id */
	KeyEntry   *entry;
} CallCache;

static CallCache *
call_cache(FunctionCallInfo fcinfo)
{
	CallCache  *c = (CallCache *) fcinfo->flinfo->fn_extra;

	if (c == NULL)
	{
		c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CallCache));
		fcinfo->flinfo->fn_extra = c;
		AcceptInvalidationMessages();
	}
	return c;
}

static void *
active_key(const char *name, int len)
{
	return keyring_active(name, len);
}

/* The active key for the key name argument, cached per call site. */
static KeyEntry *
encryption_key(FunctionCallInfo fcinfo, int argno)
{
	return (KeyEntry *) keyring_by_name_arg(fcinfo, argno, active_key);
}

/* The key a value names in its header, cached per call site. */
static KeyEntry *
decryption_key(FunctionCallInfo fcinfo, uint32 key_id)
{
	CallCache  *c = call_cache(fcinfo);

	if (c->entry && c->generation == keyring_generation && c->key_id == key_id)
		return c->entry;
	c->entry = keyring_by_id(key_id);
	c->generation = keyring_generation;
	c->key_id = key_id;
	return c->entry;
}

/* Text in the database encoding as UTF-8 bytes (no copy when already UTF-8). */
static phic_bytes
utf8_of(const char *p, int len)
{
	char	   *u = pg_server_to_any(p, len, PG_UTF8);
	phic_bytes	b = {(const uint8 *) u, (u == p) ? (size_t) len : strlen(u)};

	return b;
}

/* The optional aad argument as UTF-8 bytes; ptr NULL when SQL NULL. */
static phic_bytes
aad_arg(FunctionCallInfo fcinfo, int argno)
{
	phic_bytes	aad = {NULL, 0};

	if (PG_NARGS() > argno && !PG_ARGISNULL(argno))
	{
		text	   *t = PG_GETARG_TEXT_PP(argno);

		aad = utf8_of(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	return aad;
}

static bytea *
seal(KeyEntry *key, int bytea_flag, phic_bytes aad, phic_bytes pt)
{
	size_t		size = phic_ct_size(pt.len);
	bytea	   *out;
	phic_status st;

	if (size == 0 || size > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value is too long to encrypt"),
				 errdetail("The encrypted value would exceed the 1 GB field limit.")));
	out = (bytea *) palloc(VARHDRSZ + size);
	SET_VARSIZE(out, VARHDRSZ + size);
	st = phic_ct_seal(key->gcm, key->id, bytea_flag, aad, pt, (uint8 *) VARDATA(out));
	if (st != PHIC_OK)
		errors_raise_core(st, "encrypt value");
	stats_count(PHI_STAT_ENCRYPT);
	return out;
}

static void
parse_or_error(bytea *v, phic_ct *ct)
{
	if (phic_ct_parse((const uint8 *) VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v), ct) != PHIC_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid phi_ciphertext value")));
}

/* Decrypt into a fresh varlena of the plaintext's size. */
static bytea *
open_value(KeyEntry *key, const phic_ct *ct, phic_bytes aad)
{
	bytea	   *out = (bytea *) palloc(VARHDRSZ + ct->body_len);
	phic_status st;

	SET_VARSIZE(out, VARHDRSZ + ct->body_len);
	st = phic_ct_open(key->gcm, ct, aad, (uint8 *) VARDATA(out));
	if (st != PHIC_OK)
	{
		pfree(out);
		stats_count(PHI_STAT_DECRYPT_FAILED);
		errors_raise_core(st, "decrypt value");
	}
	stats_count(PHI_STAT_DECRYPT);
	return out;
}

PG_FUNCTION_INFO_V1(phi_guard_encrypt_text);

/* phi_encrypt(plaintext text, key_name text, aad text DEFAULT NULL) */
Datum
phi_guard_encrypt_text(PG_FUNCTION_ARGS)
{
	text	   *t;
	KeyEntry   *key;
	phic_bytes	aad,
				pt;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	pt = utf8_of(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	aad = aad_arg(fcinfo, 2);
	key = encryption_key(fcinfo, 1);
	PG_RETURN_BYTEA_P(seal(key, 0, aad, pt));
}

PG_FUNCTION_INFO_V1(phi_guard_encrypt_bytea);

/* phi_encrypt(plaintext bytea, key_name text, aad text DEFAULT NULL) */
Datum
phi_guard_encrypt_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *b;
	KeyEntry   *key;
	phic_bytes	aad,
				pt;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	b = PG_GETARG_BYTEA_PP(0);
	pt.ptr = (const uint8 *) VARDATA_ANY(b);
	pt.len = VARSIZE_ANY_EXHDR(b);
	aad = aad_arg(fcinfo, 2);
	key = encryption_key(fcinfo, 1);
	PG_RETURN_BYTEA_P(seal(key, 1, aad, pt));
}

/*
 * Convert decrypted UTF-8 to the database encoding without PostgreSQL's
 * conversion error, which would quote the offending plaintext bytes.  Both
 * buffers are wiped; the input is freed.
 */
static text *
utf8_to_server(bytea *utf8, size_t len)
{
	int			enc = GetDatabaseEncoding();
	Oid			proc = FindDefaultConversionProc(PG_UTF8, enc);
	text	   *result;
	int			done = 0;

	if ((size_t) len > (MaxAllocSize - VARHDRSZ - 1) / MAX_CONVERSION_GROWTH)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("decrypted value is too long to convert to the database encoding")));
	result = (text *) palloc(VARHDRSZ + len * MAX_CONVERSION_GROWTH + 1);
	if (OidIsValid(proc))
		done = pg_do_encoding_conversion_buf(proc, PG_UTF8, enc,
											 (unsigned char *) VARDATA(utf8), (int) len,
											 (unsigned char *) VARDATA(result),
											 (int) (len * MAX_CONVERSION_GROWTH + 1), true);
	phic_wipe(VARDATA(utf8), len);
	pfree(utf8);
	if (!OidIsValid(proc) || done != (int) len)
	{
		phic_wipe(VARDATA(result), len * MAX_CONVERSION_GROWTH + 1);
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("decrypted value has characters that the database encoding \"%s\" cannot represent",
						GetDatabaseEncodingName()),
				 errhint("Use phi_decrypt_bytea() to read the UTF-8 bytes, or a UTF-8 database.")));
	}
	SET_VARSIZE(result, VARHDRSZ + strlen(VARDATA(result)));
	return result;
}

/*
 * A decrypted value as text: refuse bytea plaintext and invalid UTF-8, and
 * convert to the database encoding.  Wipes the plaintext on refusal.
 */
static text *
plain_to_text(bytea *out, const phic_ct *ct)
{
	if (ct->flags & PHIC_CT_FLAG_BYTEA)
	{
		phic_wipe(VARDATA(out), ct->body_len);
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("value was encrypted from bytea"),
				 errhint("Use phi_decrypt_bytea() for this value.")));
	}
	if (!pg_verify_mbstr(PG_UTF8, VARDATA(out), (int) ct->body_len, true))
	{
		phic_wipe(VARDATA(out), ct->body_len);
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("decrypted value is not valid UTF-8"),
				 errhint("The value was not written by phi_encrypt(text, ...); use phi_decrypt_bytea().")));
	}
	if (GetDatabaseEncoding() != PG_UTF8 && GetDatabaseEncoding() != PG_SQL_ASCII)
		return utf8_to_server(out, ct->body_len);
	return (text *) out;
}

/*
 * For phi_guard's own callers (the token vault, masked reads): encrypt text
 * under the active version of key_name with an optional text aad (NULL: no
 * aad), or decrypt such a value, reporting the key used.  Not counted as
 * access: callers audit their own.
 */
bytea *
encrypt_text_under(const char *key_name, const char *pt, int len, const char *aad)
{
	KeyEntry   *key = keyring_active(key_name, (int) strlen(key_name));

	phic_bytes	none = {NULL, 0};

	return seal(key, 0, aad ? utf8_of(aad, (int) strlen(aad)) : none, utf8_of(pt, len));
}

text *
decrypt_text_value(bytea *value, const char *aad, uint32 *key_id, char *key_name)
{
	phic_ct		ct;
	KeyEntry   *key;
	bytea	   *out;

	parse_or_error(value, &ct);
	key = keyring_by_id(ct.key_id);
	*key_id = key->id;
	strlcpy(key_name, key->name, KEY_NAME_MAX + 1);
	if (aad)
		out = open_value(key, &ct, utf8_of(aad, (int) strlen(aad)));
	else
	{
		phic_bytes	none = {NULL, 0};

		out = open_value(key, &ct, none);
	}
	return plain_to_text(out, &ct);
}

/*
 * The SQL decryption path: decrypt argument 0 with the aad of argument 1
 * under the key its header names (cached per call site), and count the
 * access for the audit log.
 */
static bytea *
decrypt_args(FunctionCallInfo fcinfo, phic_ct *ct)
{
	KeyEntry   *key;
	bytea	   *out;
	phic_bytes	aad;

	/* arguments first: detoasting may free the cached key (keyring.h) */
	parse_or_error(PG_GETARG_BYTEA_PP(0), ct);
	aad = aad_arg(fcinfo, 1);
	key = decryption_key(fcinfo, ct->key_id);
	out = open_value(key, ct, aad);
	audit_access_note(AUDIT_ACCESS_DECRYPT, key->id, key->name);
	return out;
}

PG_FUNCTION_INFO_V1(phi_guard_decrypt_text);

/* phi_decrypt(ct phi_ciphertext, aad text DEFAULT NULL) returns text */
Datum
phi_guard_decrypt_text(PG_FUNCTION_ARGS)
{
	phic_ct		ct;
	bytea	   *out;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	out = decrypt_args(fcinfo, &ct);
	PG_RETURN_TEXT_P(plain_to_text(out, &ct));
}

PG_FUNCTION_INFO_V1(phi_guard_decrypt_bytea);

/* phi_decrypt_bytea(ct phi_ciphertext, aad text DEFAULT NULL) returns bytea */
Datum
phi_guard_decrypt_bytea(PG_FUNCTION_ARGS)
{
	phic_ct		ct;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_BYTEA_P(decrypt_args(fcinfo, &ct));
}

PG_FUNCTION_INFO_V1(phi_guard_rewrap);

/*
 * phi_rewrap(ct phi_ciphertext, aad text DEFAULT NULL) returns phi_ciphertext:
 * decrypt and re-encrypt under the active version of the same key name,
 * keeping the aad and the bytea flag.  The plaintext stays in this function
 * and is wiped.
 */
Datum
phi_guard_rewrap(PG_FUNCTION_ARGS)
{
	phic_ct		ct;
	phic_bytes	aad,
				pt;
	bytea	   *plain,
			   *result;
	char		name[KEY_NAME_MAX + 1];
	KeyEntry   *key;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	parse_or_error(PG_GETARG_BYTEA_PP(0), &ct);
	aad = aad_arg(fcinfo, 1);
	key = keyring_by_id(ct.key_id);
	strlcpy(name, key->name, sizeof(name));
	plain = open_value(key, &ct, aad);
	/* key may be freed by the next lookup; only plain and name survive */
	PG_TRY();
	{
		key = keyring_active(name, (int) strlen(name));
		pt.ptr = (const uint8 *) VARDATA(plain);
		pt.len = ct.body_len;
		result = seal(key, (ct.flags & PHIC_CT_FLAG_BYTEA) != 0, aad, pt);
	}
	PG_FINALLY();
	{
		phic_wipe(VARDATA(plain), ct.body_len);
	}
	PG_END_TRY();
	pfree(plain);
	PG_RETURN_BYTEA_P(result);
}
