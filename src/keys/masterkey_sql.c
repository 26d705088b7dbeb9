/*
 * masterkey_sql.c — master-key rotation (SPEC §1): phi_master_key_rewrap
 * and phi_master_key_status, SECURITY DEFINER functions granted to
 * phi_key_admin.
 *
 * Both wrapped-key stores (data keys, index keys) are served the same way
 * (keystore.c).  Only wrapped_key changes: the keys themselves, and
 * therefore every ciphertext, blind index and token, stay the same.
 * Locking: rewrap holds SHARE ROW EXCLUSIVE on both tables, which keeps
 * key creation, rotation and destruction out until it commits.
 */
#include "postgres.h"

#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"

#include "audit/audit.h"
#include "common/spi.h"
#include "keys/keystore.h"
#include "keys/masterkey.h"

PG_FUNCTION_INFO_V1(phi_guard_master_key_rewrap);

/*
 * phi_master_key_rewrap() returns int8: moves every data key and index key
 * still wrapped under an old master key to the current one (the first in
 * the key file or command output) and returns how many it rewrapped.
 * Audited as kind master_key_rewrap.  Other sessions keep their cached keys
 * (the unwrapped bytes do not change) and reload rows after the
 * invalidation the tables' triggers raise.
 */
Datum
phi_guard_master_key_rewrap(PG_FUNCTION_ARGS)
{
	int64		data_keys,
				index_keys;
	StringInfoData detail;

	(void) masterkey_get();
	SPI_connect();
	if (spi_run("LOCK TABLE phi_guard.keys, phi_guard.index_keys IN SHARE ROW EXCLUSIVE MODE",
				0, NULL, NULL, NULL, false) != SPI_OK_UTILITY)
		elog(ERROR, "phi_guard: could not lock the keyring");
	data_keys = keystore_rewrap(&keyring_store);
	index_keys = keystore_rewrap(&indexkey_store);

	initStringInfo(&detail);
	appendStringInfo(&detail,
					 "{\"master_key\":\"%s\",\"data_keys\":" INT64_FORMAT ",\"index_keys\":" INT64_FORMAT "}",
					 masterkey_fingerprint(0), data_keys, index_keys);
	audit_write_one("master_key_rewrap", "phi_guard.keys", NULL, NULL, detail.data);
	pfree(detail.data);
	SPI_finish();
	PG_RETURN_INT64(data_keys + index_keys);
}

PG_FUNCTION_INFO_V1(phi_guard_master_key_status);

/*
 * phi_master_key_status() returns setof (slot, name, fingerprint, current,
 * data_keys, index_keys): one row per loaded master key in key-file order
 * (slot 1 is the current key) with how many data and index keys each one
 * opens, plus a row with NULL slot when some keys open with none of them.
 * Secret-free: the fingerprint is a truncated domain-separated hash.
 */
Datum
phi_guard_master_key_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int			nkeys = masterkey_count();
	int64		data[MASTERKEY_MAX + 1];
	int64		idx[MASTERKEY_MAX + 1];

	InitMaterializedSRF(fcinfo, 0);
	memset(data, 0, sizeof(data));
	memset(idx, 0, sizeof(idx));
	SPI_connect();
	keystore_count_by_master(&keyring_store, data, nkeys);
	keystore_count_by_master(&indexkey_store, idx, nkeys);
	SPI_finish();

	for (int i = 0; i <= nkeys; i++)
	{
		Datum		values[6];
		bool		nulls[6] = {false, false, false, false, false, false};
		const char *name = i < nkeys ? masterkey_name(i) : NULL;

		if (i == nkeys && data[i] == 0 && idx[i] == 0)
			break;
		if (i < nkeys)
		{
			values[0] = Int32GetDatum(i + 1);
			values[2] = CStringGetTextDatum(masterkey_fingerprint(i));
		}
		else
			nulls[0] = nulls[2] = true;
		if (name)
			values[1] = CStringGetTextDatum(name);
		else
			nulls[1] = true;
		values[3] = BoolGetDatum(i == 0);
		values[4] = Int64GetDatum(data[i]);
		values[5] = Int64GetDatum(idx[i]);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
