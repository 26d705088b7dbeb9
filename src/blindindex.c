/*
 * blindindex.c — phi_blind_index (SPEC §4): the first `bits` bits of
 * HMAC-SHA256(blind-index subkey of key_name, UTF-8 value), as int8.
 *
 * The subkey comes from the name's index key (indexkey.c), so results are
 * stable across rotation of the name's data keys and unrelated between
 * names.  Per row: one fn_extra check and one HMAC on prepared pad states.
 */
#include "postgres.h"

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"

#include "indexkey.h"
#include "keyring.h"
#include "phi_guard.h"

#define BITS_MIN 8
#define BITS_MAX 63

typedef struct BlindCache
{
	uint64		generation;
	int			name_len;
	char		name[KEY_NAME_MAX + 1];
	const IndexKey *key;
} BlindCache;

/* The index key of the key-name argument, cached per call site. */
static const IndexKey *
blind_key_for_call(FunctionCallInfo fcinfo, int argno)
{
	BlindCache *c = (BlindCache *) fcinfo->flinfo->fn_extra;
	text	   *name;
	int			len;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	name = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(name);
	if (c == NULL)
	{
		c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(BlindCache));
		fcinfo->flinfo->fn_extra = c;
	}
	/* the index-key cache is flushed together with the keyring's */
	if (c->key && c->generation == keyring_generation && c->name_len == len &&
		memcmp(c->name, VARDATA_ANY(name), len) == 0)
		return c->key;
	c->key = indexkey_get(VARDATA_ANY(name), len);
	c->generation = keyring_generation;
	c->name_len = len;
	memcpy(c->name, VARDATA_ANY(name), Min(len, KEY_NAME_MAX));
	return c->key;
}

PG_FUNCTION_INFO_V1(phi_guard_blind_index);

/* phi_blind_index(value text, key_name text, bits int4 DEFAULT 32) returns int8 */
Datum
phi_guard_blind_index(PG_FUNCTION_ARGS)
{
	text	   *v;
	int32		bits;
	const char *p,
			   *u;
	int			len;
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
	p = VARDATA_ANY(v);
	len = VARSIZE_ANY_EXHDR(v);
	u = pg_server_to_any(p, len, PG_UTF8);
	k = blind_key_for_call(fcinfo, 1);
	if (phic_hmac3(k->blind, u, u == p ? (size_t) len : strlen(u), NULL, 0, NULL, 0, mac) != PHIC_OK)
		errors_raise_core(PHIC_ERR_CRYPTO, "compute blind index");
	PG_RETURN_INT64((int64) phic_mac_bits(mac, bits));
}
