/*
 * blindindex.c — phi_blind_index (SPEC §4): the first `bits` bits of
 * HMAC-SHA256(blind-index subkey of key_name, UTF-8 value), as int8.
 *
 * The subkey comes from the name's index key (src/keys/indexkey.c), so
 * results are stable across rotation of the name's data keys and unrelated
 * between names; under a signed context whose tenant has keys of the name,
 * from the tenant's own index key, so equal values of two tenants do not
 * match (SPEC §9).  The value is hashed as UTF-8 (crypto_utf8, which wipes
 * a transcoded copy).  Per row: one fn_extra check (keyring_by_name_arg,
 * valid while no key cache was flushed and the context is the same) and
 * one HMAC on prepared pad states.
 */
#include "postgres.h"

#include "fmgr.h"

#include "common/errors.h"
#include "common/stats.h"
#include "tokens/tokens.h"

#define BITS_MIN 8
#define BITS_MAX 63

static void *
index_key(const char *name, int len)
{
	return unconstify(IndexKey *, indexkey_get(name, len));
}

PG_FUNCTION_INFO_V1(phi_guard_blind_index);

/* phi_blind_index(value text, key_name text, bits int4 DEFAULT 32) returns int8 */
Datum
phi_guard_blind_index(PG_FUNCTION_ARGS)
{
	text	   *v;
	int32		bits;
	phic_bytes	u;
	uint8		mac[PHIC_HMAC_LEN];
	const IndexKey *k;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	bits = PG_ARGISNULL(2) ? 32 : PG_GETARG_INT32(2);
	if (bits < BITS_MIN || bits > BITS_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("bits must be between %d and %d", BITS_MIN, BITS_MAX),
				 errhint("See the README on choosing bits: fewer bits, more false positives, less leakage.")));
	/*
	 * Detoast the value first: fetching a large value takes a lock, which
	 * may process an invalidation that frees the cached key.
	 */
	v = PG_GETARG_TEXT_PP(0);
	u = crypto_utf8(VARDATA_ANY(v), VARSIZE_ANY_EXHDR(v));
	k = keyring_by_name_arg(fcinfo, 1, index_key);
	if (phic_hmac3(k->blind, u.ptr, u.len, NULL, 0, NULL, 0, mac) != PHIC_OK)
		errors_raise_core(PHIC_ERR_CRYPTO, "compute blind index");
	stats_count(PHI_STAT_BLIND_INDEX);
	PG_RETURN_INT64((int64) phic_mac_bits(mac, bits));
}
