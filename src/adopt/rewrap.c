/*
 * rewrap.c — the per-row functions of phi_rewrap_column's batches (SPEC
 * §9): phi_guard.column_rewrap_due(ct) chooses the rows whose value is not
 * on its key's active version, phi_guard.column_rewrap(ct, row, aad) moves
 * a value onto it (crypto_move_to_active), bound to the aad expression
 * evaluated over the row by the same compiled code as the encryption's
 * (spec.c).  A value under a destroyed or
 * unknown key, or one that does not authenticate with the aad, is left as
 * it is and counted (adopt_moves), so that one bad row does not stop the
 * rotation of the rest; phi_rewrap_column reports them.
 *
 * Both refuse to run outside the procedure's own batch statements
 * (adopt_in_batch, set only by migrate.c): they are not an API.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "adopt/adopt.h"
#include "crypto/crypto.h"

/* 42501 unless one of phi_rewrap_column's batches is running. */
static void
require_batch(void)
{
	if (!adopt_in_batch)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("this function is used by phi_rewrap_column only"),
				 errhint("Use phi_rewrap() for single values.")));
}

PG_FUNCTION_INFO_V1(phi_guard_column_rewrap_due);

/*
 * phi_guard.column_rewrap_due(ct phi_ciphertext) returns bool; a value it
 * leaves because its key is destroyed or unknown is counted here.
 */
Datum
phi_guard_column_rewrap_due(PG_FUNCTION_ARGS)
{
	CryptoMove	why;

	require_batch();
	if (crypto_needs_move(PG_GETARG_BYTEA_PP(0), &why))
		PG_RETURN_BOOL(true);
	if (why != CRYPTO_MOVE_CURRENT)
		adopt_moves[why]++;
	PG_RETURN_BOOL(false);
}

/* A call site's compiled aad: the table it was compiled for and the text. */
typedef struct RewrapSite
{
	Oid			relid;
	char	   *aad;
	AdoptAad	compiled;
} RewrapSite;

/*
 * The aad of the row r (a whole row of the batch's table) under the aad
 * expression text aad, compiled once per call site (phi_rewrap_column
 * checked it against the column before its first batch).
 */
static phic_bytes
row_aad(FunctionCallInfo fcinfo, HeapTupleHeader r, const char *aad)
{
	RewrapSite *site = (RewrapSite *) fcinfo->flinfo->fn_extra;
	Oid			relid = get_typ_typrelid(HeapTupleHeaderGetTypeId(r));
	HeapTupleData tup;

	if (site == NULL || site->relid != relid || strcmp(site->aad, aad) != 0)
	{
		MemoryContext old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
		Relation	rel = table_open(relid, AccessShareLock);

		site = palloc0(sizeof(RewrapSite));
		site->relid = relid;
		site->aad = pstrdup(aad);
		adopt_aad_compile(&site->compiled, rel, aad, InvalidAttrNumber);
		table_close(rel, AccessShareLock);
		MemoryContextSwitchTo(old);
		fcinfo->flinfo->fn_extra = site;
	}
	tup.t_len = HeapTupleHeaderGetDatumLength(r);
	ItemPointerSetInvalid(&tup.t_self);
	tup.t_tableOid = relid;
	tup.t_data = r;
	return adopt_aad_eval(&site->compiled, &tup);
}

PG_FUNCTION_INFO_V1(phi_guard_column_rewrap);

/*
 * phi_guard.column_rewrap(ct phi_ciphertext, r record, aad text) returns
 * phi_ciphertext: ct moved onto its key's active version, bound to the
 * aad expression aad ('' : none) evaluated over row r, or ct itself when
 * it cannot be opened.
 */
Datum
phi_guard_column_rewrap(PG_FUNCTION_ARGS)
{
	CryptoMove	outcome;
	bytea	   *moved;
	bytea	   *value;
	phic_bytes	aad;

	require_batch();
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("the row and the aad expression must not be null")));
	/* detoasted before any key lookup (a lock may flush the key cache) */
	value = PG_GETARG_BYTEA_PP(0);
	aad = row_aad(fcinfo, PG_GETARG_HEAPTUPLEHEADER(1), TextDatumGetCString(PG_GETARG_DATUM(2)));
	moved = crypto_move_to_active(value, aad, &outcome);
	adopt_moves[outcome]++;
	if (moved == NULL)
		PG_RETURN_DATUM(PG_GETARG_DATUM(0));
	PG_RETURN_BYTEA_P(moved);
}
