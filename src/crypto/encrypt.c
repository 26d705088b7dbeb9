/*
 * encrypt.c — phi_encrypt (text, bytea), phi_rewrap, and encryption for
 * phi_guard's own callers (SPEC §2, §3).
 *
 * Moving a whole column onto its keys' active versions (src/adopt,
 * phi_rewrap_column) uses crypto_move_to_active, which leaves in place what
 * it cannot open instead of failing the batch.
 *
 * Hot path per row: one fn_extra check (key name unchanged, no key cache
 * flushed and the same signed context since: keyring_by_name_arg; the
 * context's tenant chooses its own key of the name when it has one), one
 * palloc for the result, one AES-GCM operation on the key's prepared
 * context and a nonce from the batched buffer.  Text and aad are encrypted as UTF-8 (utf8.c).  The
 * plaintext phi_rewrap decrypts stays in this file and is wiped, also on
 * error.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/memutils.h"

#include "common/errors.h"
#include "common/stats.h"
#include "core/ciphertext.h"
#include "core/secmem.h"
#include "crypto/crypto.h"

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

bytea *
crypto_seal(KeyEntry *key, bool bytea_flag, phic_bytes aad, phic_bytes pt)
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

PG_FUNCTION_INFO_V1(phi_guard_encrypt_text);

/* phi_encrypt(plaintext text, key_name text, aad text DEFAULT NULL) */
Datum
phi_guard_encrypt_text(PG_FUNCTION_ARGS)
{
	text	   *t;
	phic_bytes	aad,
				pt;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	t = PG_GETARG_TEXT_PP(0);
	pt = crypto_utf8(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	aad = crypto_aad_arg(fcinfo, 2);
	PG_RETURN_BYTEA_P(crypto_seal(encryption_key(fcinfo, 1), false, aad, pt));
}

PG_FUNCTION_INFO_V1(phi_guard_encrypt_bytea);

/* phi_encrypt(plaintext bytea, key_name text, aad text DEFAULT NULL) */
Datum
phi_guard_encrypt_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *b;
	phic_bytes	aad,
				pt;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	b = PG_GETARG_BYTEA_PP(0);
	pt.ptr = (const uint8 *) VARDATA_ANY(b);
	pt.len = VARSIZE_ANY_EXHDR(b);
	aad = crypto_aad_arg(fcinfo, 2);
	PG_RETURN_BYTEA_P(crypto_seal(encryption_key(fcinfo, 1), true, aad, pt));
}

bytea *
crypto_encrypt_text(const char *key_name, const char *pt, int len, const char *aad)
{
	phic_bytes	none = {NULL, 0};
	phic_bytes	upt = crypto_utf8(pt, len);
	phic_bytes	uaad = aad ? crypto_utf8(aad, (int) strlen(aad)) : none;

	return crypto_seal(keyring_active(key_name, (int) strlen(key_name)), false, uaad, upt);
}

PG_FUNCTION_INFO_V1(phi_guard_rewrap);

/*
 * phi_rewrap(ct phi_ciphertext, aad text DEFAULT NULL) returns phi_ciphertext:
 * decrypt and re-encrypt under the active version of the same key name of
 * the same tenant (or shared), keeping the aad and the bytea flag.
 */
Datum
phi_guard_rewrap(PG_FUNCTION_ARGS)
{
	bytea	   *value;
	phic_bytes	aad;
	Plaintext	p;
	bytea	   *result = NULL;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	value = PG_GETARG_BYTEA_PP(0);
	aad = crypto_aad_arg(fcinfo, 1);
	/* no plaintext leaves: key access rules do not apply (README, phi_key_access) */
	crypto_decrypt(crypto_call_cache(fcinfo), value, aad, CRYPTO_REVEAL_NOTHING, &p);
	PG_TRY();
	{
		phic_bytes	pt = {(const uint8 *) VARDATA(p.bytes), p.len};

		result = crypto_seal(keyring_active_of(p.key_tenant[0] ? p.key_tenant : NULL,
										p.key_name, (int) strlen(p.key_name)),
					  p.from_bytea, aad, pt);
	}
	PG_FINALLY();
	{
		phic_wipe(VARDATA(p.bytes), p.len);
	}
	PG_END_TRY();
	pfree(p.bytes);
	PG_RETURN_BYTEA_P(result);
}

/*
 * The key entry of value's key id (from) and the active version of the
 * same key name and tenant (to), taken again until neither lookup moved
 * keystore_generation, so that both pointers are valid together.  from is
 * NULL for an unknown id; to is NULL when from is NULL or destroyed.
 */
static void
move_keys(uint32 id, KeyEntry **from, KeyEntry **to)
{
	for (;;)
	{
		uint64		generation;

		*to = NULL;
		*from = keyring_lookup_id(id);
		if (*from == NULL || (*from)->state == 'd')
			return;
		generation = keystore_generation;
		*to = keyring_active_of((*from)->tenant[0] ? (*from)->tenant : NULL,
								(*from)->name, (int) strlen((*from)->name));
		if (keystore_generation == generation)
			return;
	}
}

/* value's header; 22P03 when it is not a well-formed phi_ciphertext. */
static void
parse_value(bytea *value, phic_ct *ct)
{
	if (phic_ct_parse((const uint8 *) VARDATA_ANY(value), VARSIZE_ANY_EXHDR(value), ct) != PHIC_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid phi_ciphertext value")));
}

bool
crypto_needs_move(bytea *value, CryptoMove *why)
{
	phic_ct		ct;
	KeyEntry   *from;
	KeyEntry   *to;

	parse_value(value, &ct);
	move_keys(ct.key_id, &from, &to);
	*why = from == NULL ? CRYPTO_MOVE_UNKNOWN_KEY
		: to == NULL ? CRYPTO_MOVE_DESTROYED
		: to->id == from->id ? CRYPTO_MOVE_CURRENT : CRYPTO_MOVE_DONE;
	return *why == CRYPTO_MOVE_DONE;
}

bytea *
crypto_move_to_active(bytea *value, phic_bytes aad, CryptoMove *outcome)
{
	phic_ct		ct;
	KeyEntry   *from;
	KeyEntry   *to;
	uint8	   *pt;
	phic_bytes	plain;
	phic_status st;

	parse_value(value, &ct);
	move_keys(ct.key_id, &from, &to);
	if (from == NULL || to == NULL || to->id == from->id)
	{
		*outcome = from == NULL ? CRYPTO_MOVE_UNKNOWN_KEY
			: to == NULL ? CRYPTO_MOVE_DESTROYED : CRYPTO_MOVE_CURRENT;
		return NULL;
	}
	pt = (uint8 *) crypto_alloc_wiped(Max(ct.body_len, 1));
	st = phic_ct_open(from->gcm, &ct, aad, pt);
	if (st == PHIC_ERR_AUTH)
	{
		stats_count(PHI_STAT_DECRYPT_FAILED);
		*outcome = CRYPTO_MOVE_NOT_AUTHENTIC;
		return NULL;
	}
	if (st != PHIC_OK)
		errors_raise_core(st, "decrypt value");
	stats_count(PHI_STAT_DECRYPT);
	*outcome = CRYPTO_MOVE_DONE;
	plain.ptr = pt;
	plain.len = ct.body_len;
	return crypto_seal(to, (ct.flags & PHIC_CT_FLAG_BYTEA) != 0, aad, plain);
}
