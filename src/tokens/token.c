/*
 * token.c — token domains and the token vault (SPEC §4).
 *
 * phi_guard.token_vault holds, per domain, token -> value encrypted with
 * AES-256-GCM under the domain's key (aad "phi_guard.token_vault:<domain>"),
 * and for deterministic domains a keyed fingerprint
 * HMAC(token subkey, domain || 0x00 || value) — never a plain hash; it is
 * unique across domains, so its index has no domain column.
 *
 * Deterministic tokens are derived from the fingerprint (and a retry
 * counter), so concurrent sessions tokenizing the same new value propose
 * the same token; the unique index on the fingerprint lets exactly one
 * insert win and the others read the winner's row.  Format-keeping tokens
 * that collide with another value's token are retried with the next
 * counter, so two values never share a token.
 *
 * The hot path (a value already in the vault) is a direct index lookup, no
 * SPI; inserts and deletes go through SPI as the vault's owner.
 *
 * Tenants (SPEC §9): under a signed context whose tenant has keys of the
 * domain's key name, its own index key makes the fingerprints and tokens
 * and its own data key encrypts the vault values, so equal values of two
 * tenants get unrelated tokens, and a tenant's values detokenize only
 * under its context.
 *
 * Accesses: phi_tokenize and phi_detokenize are access entries (per
 * statement and domain or key, written even when the transaction rolls
 * back) naming their tokens as row references (tok:<domain>:<token>, SPEC
 * §7); phi_detokenize obeys the access rule of the domain's key.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/hash.h"
#include "access/htup_details.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"		/* PostgreSQL's src/common, not ours */
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "common/catalog.h"
#include "common/citus.h"
#include "common/errors.h"
#include "common/spi.h"
#include "common/stats.h"
#include "core/nonce.h"
#include "core/tokenfmt.h"
#include "tokens/tokens.h"

#define MAX_TRIES 100
#define DOMAIN_MAX 63

typedef struct Domain
{
	char		name[DOMAIN_MAX + 1];
	char		key_name[KEY_NAME_MAX + 1];
	phic_token_format format;
	bool		deterministic;
	Oid			vault;			/* phi_guard.token_vault and its indexes */
	Oid			vault_pkey;
	Oid			vault_fp;		/* unique B-tree: the insert's arbiter */
	Oid			vault_fp_hash;	/* hash index: lookups */
	uint64		key_generation; /* index key cached under keystore_generation */
	uint64		key_context;	/* ... and context_generation (its tenant chooses it) */
	const IndexKey *key;
	uint32		name_hash;		/* groups the domain's tokenize access events */
	DecryptCache decrypt;		/* the data key that opened the last value */
} Domain;

/* vault columns */
#define Anum_vault_domain 1
#define Anum_vault_token 2
#define Anum_vault_fingerprint 3
#define Anum_vault_value 4

static void
check_domain_name(text *t, char *out)
{
	int			len = VARSIZE_ANY_EXHDR(t);

	if (len < 1 || len > DOMAIN_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("token domain name must be 1 to %d bytes long", DOMAIN_MAX)));
	memcpy(out, VARDATA_ANY(t), len);
	out[len] = '\0';
}

/*
 * The domain key's index keys for the signed context's tenant (its own
 * when it has keys of the name), cached with the domain while valid.
 */
static const IndexKey *
domain_key(Domain *d)
{
	if (d->key == NULL || d->key_generation != keystore_generation ||
		d->key_context != context_generation)
	{
		d->key = NULL;
		d->key = indexkey_get(d->key_name, (int) strlen(d->key_name));
		d->key_generation = keystore_generation;
		d->key_context = context_generation;
	}
	return d->key;
}

/* The domain's definition, cached per call site (domains never change). */
static Domain *
domain_for_call(FunctionCallInfo fcinfo, int argno)
{
	Domain	   *d = (Domain *) fcinfo->flinfo->fn_extra;
	char		name[DOMAIN_MAX + 1];
	Oid			types[1] = {TEXTOID};
	Datum		values[1];
	bool		isnull;
	int			level;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("token domain must not be null")));
	check_domain_name(PG_GETARG_TEXT_PP(argno), name);
	if (d && strcmp(d->name, name) == 0)
		return d;
	if (d == NULL)
		d = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(Domain));
	fcinfo->flinfo->fn_extra = NULL;
	SPI_connect();
	values[0] = CStringGetTextDatum(name);
	level = citus_local_reads_begin();
	if (spi_run("SELECT key_name, format, deterministic FROM phi_guard.token_domains "
				"WHERE name OPERATOR(pg_catalog.=) $1",
				1, types, values, NULL, true) != SPI_OK_SELECT)
		elog(ERROR, "phi_guard: could not read token domains");
	citus_local_reads_end(level);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("token domain \"%s\" does not exist", name),
				 errhint("Create it with phi_token_domain_create().")));
	strlcpy(d->name, name, sizeof(d->name));
	d->name_hash = hash_bytes((const unsigned char *) d->name, (int) strlen(d->name));
	strlcpy(d->key_name, SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1), sizeof(d->key_name));
	d->format = (phic_token_format) phic_token_format_parse(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
															strlen(SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)));
	d->deterministic = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull));
	SPI_finish();
	d->vault = catalog_relid_required("token_vault", "token vault");
	d->vault_pkey = catalog_relid_required("token_vault_pkey", "token vault");
	d->vault_fp = catalog_relid_required("token_vault_fingerprint_key", "token vault");
	d->vault_fp_hash = catalog_relid_required("token_vault_fingerprint_hash", "token vault");
	d->key = NULL;
	fcinfo->flinfo->fn_extra = d;
	return d;
}

/*
 * Look a vault row up by (domain, token) through the primary key, or by
 * fingerprint through the hash index (rechecking, since hash scans are
 * lossy); returns the requested column (palloc'd copy), *found false when
 * absent.  latest: use the latest snapshot, which also sees rows this
 * statement or a concurrent committed transaction inserted since the
 * statement began (as RI checks do); otherwise the statement's own
 * snapshot (the cheap first look).
 */
static Datum
vault_lookup(const Domain *d, bool by_fingerprint, Datum key, AttrNumber want,
			 bool latest, bool *found)
{
	Relation	rel = table_open(d->vault, AccessShareLock);
	Relation	irel = index_open(by_fingerprint ? d->vault_fp_hash : d->vault_pkey, AccessShareLock);
	TupleTableSlot *slot = table_slot_create(rel, NULL);
	Snapshot	snap = RegisterSnapshot(latest ? GetLatestSnapshot() : GetActiveSnapshot());
	ScanKeyData skey[2];
	int			nkeys = 0;
	IndexScanDesc scan;
	Datum		result = (Datum) 0;

	/* attribute numbers are the index's; the fingerprint MAC covers the domain */
	if (by_fingerprint)
		ScanKeyEntryInitialize(&skey[nkeys++], 0, 1, HTEqualStrategyNumber,
							   InvalidOid, InvalidOid, F_BYTEAEQ, key);
	else
	{
		ScanKeyEntryInitialize(&skey[nkeys++], 0, 1, BTEqualStrategyNumber,
							   InvalidOid, C_COLLATION_OID, F_TEXTEQ, CStringGetTextDatum(d->name));
		ScanKeyEntryInitialize(&skey[nkeys++], 0, 2, BTEqualStrategyNumber,
							   InvalidOid, C_COLLATION_OID, F_TEXTEQ, key);
	}
	scan = index_beginscan(rel, irel, snap, nkeys, 0);
	index_rescan(scan, skey, nkeys, NULL, 0);
	*found = false;
	while (index_getnext_slot(scan, ForwardScanDirection, slot))
	{
		bool		isnull;
		Datum		v;

		if (scan->xs_recheck)
		{
			bytea	   *have = DatumGetByteaPP(slot_getattr(slot, Anum_vault_fingerprint, &isnull));
			bytea	   *want_fp = DatumGetByteaPP(key);

			if (isnull || VARSIZE_ANY_EXHDR(have) != VARSIZE_ANY_EXHDR(want_fp) ||
				memcmp(VARDATA_ANY(have), VARDATA_ANY(want_fp), VARSIZE_ANY_EXHDR(have)) != 0)
				continue;
		}
		v = slot_getattr(slot, want, &isnull);
		result = isnull ? (Datum) 0 : PointerGetDatum(PG_DETOAST_DATUM_COPY(v));
		*found = true;
		break;
	}
	index_endscan(scan);
	UnregisterSnapshot(snap);
	ExecDropSingleTupleTableSlot(slot);
	/* keep the locks to the end of the transaction: the next call finds them held */
	index_close(irel, NoLock);
	table_close(rel, NoLock);
	return result;
}

static bytea *
bytes_datum(const uint8 *p, size_t n)
{
	bytea	   *b = palloc(VARHDRSZ + n);

	SET_VARSIZE(b, VARHDRSZ + n);
	memcpy(VARDATA(b), p, n);
	return b;
}

/* Seed bytes for attempt `try`: HMAC(token key, fp || try || block). */
static void
derive_seed(const IndexKey *k, const uint8 *fp, uint32 try, uint8 *seed, size_t n)
{
	for (uint32 block = 0; n > 0; block++)
	{
		uint8		mac[PHIC_HMAC_LEN];
		uint32		ctr[2] = {pg_hton32(try), pg_hton32(block)};
		size_t		take = Min(n, sizeof(mac));

		if (phic_hmac3(k->token, "seed", 4, fp, PHIC_HMAC_LEN, ctr, sizeof(ctr), mac) != PHIC_OK)
			errors_raise_core(PHIC_ERR_CRYPTO, "derive token");
		memcpy(seed, mac, take);
		seed += take;
		n -= take;
	}
}

static SPIPlanPtr insert_plan = NULL;	/* kept for the backend's life */
static Oid	insert_plan_type = InvalidOid;

/* Insert a vault row as the vault's owner; the token if it went in, else NULL. */
static text *
vault_insert(const Domain *d, const char *token, const uint8 *fp, Datum value)
{
	Relation	vault = table_open(d->vault, AccessShareLock);
	Oid			owner = vault->rd_rel->relowner;
	Oid			save_user;
	int			save_sec;
	int			save_nestlevel;
	Oid			types[4] = {TEXTOID, TEXTOID, BYTEAOID,
							TupleDescAttr(RelationGetDescr(vault), Anum_vault_value - 1)->atttypid};
	Datum		values[4];
	char		nulls[4] = {' ', ' ', fp ? ' ' : 'n', ' '};
	bool		inserted = false;

	table_close(vault, AccessShareLock);
	values[0] = CStringGetTextDatum(d->name);
	values[1] = CStringGetTextDatum(token);
	values[2] = fp ? PointerGetDatum(bytes_datum(fp, PHIC_HMAC_LEN)) : (Datum) 0;
	values[3] = value;

	/*
	 * Insert as the vault's owner, the way RI triggers act for the user: a
	 * restricted operation with a pinned search_path, and a statement with
	 * no casts or unqualified names, so nothing the caller planted (say in
	 * pg_temp) can run with the owner's rights.
	 */
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	PG_TRY();
	{
		SPI_connect();
		/* the plan names the phi_ciphertext type by OID: redo it if that changed */
		if (insert_plan != NULL && insert_plan_type != types[3])
		{
			SPI_freeplan(insert_plan);
			insert_plan = NULL;
		}
		if (spi_run_kept(&insert_plan,
						 "INSERT INTO phi_guard.token_vault (domain, token, fingerprint, value) "
						 "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING token",
						 4, types, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING)
			elog(ERROR, "phi_guard: could not write to the token vault");
		insert_plan_type = types[3];
		inserted = SPI_processed > 0;
		SPI_finish();
	}
	PG_FINALLY();
	{
		AtEOXact_GUC(true, save_nestlevel);
		SetUserIdAndSecContext(save_user, save_sec);
	}
	PG_END_TRY();
	/* allocated here, not in SPI's memory, which SPI_finish released */
	return inserted ? cstring_to_text(token) : NULL;
}

/* The aad that binds a vault value to its domain. */
static char *
vault_aad(const Domain *d)
{
	return psprintf("phi_guard.token_vault:%s", d->name);
}

static bool
all_digits(const char *p, int len)
{
	for (int i = 0; i < len; i++)
		if (p[i] < '0' || p[i] > '9')
			return false;
	return true;
}

/*
 * The token tok (a text Datum) of d, about to be returned: an access entry
 * names it (the intent first, in durable mode; PH006 when it cannot be
 * recorded); the call was counted when it began.
 */
static Datum
reveal_token(const Domain *d, Datum tok)
{
	text	   *t = DatumGetTextPP(tok);
	AuditRowRef ref;

	ref.kind = AUDIT_REF_TOKEN;
	ref.data = VARDATA_ANY(t);
	ref.len = VARSIZE_ANY_EXHDR(t);
	ref.domain = d->name;
	audit_access_reveal(AUDIT_ACCESS_TOKENIZE, d->name_hash, d->name, &ref, false, NULL, 0);
	return tok;
}

PG_FUNCTION_INFO_V1(phi_guard_tokenize);

/* phi_tokenize(value text, domain text) returns text */
Datum
phi_guard_tokenize(PG_FUNCTION_ARGS)
{
	Domain	   *d;
	const IndexKey *k;
	text	   *v;
	const char *value;
	int			len;
	uint8		fp[PHIC_HMAC_LEN];
	Datum		sealed = (Datum) 0;	/* encrypted value, made once */

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	d = domain_for_call(fcinfo, 1);
	stats_count(PHI_STAT_TOKENIZE);
	/*
	 * Every attempt is an access entry (counted per statement and domain,
	 * kept when the transaction rolls back): with a deterministic domain,
	 * tokenizing candidate values and comparing tokens is a guessing attack
	 * on low-entropy values, which leaves this trace.
	 */
	audit_access_note(AUDIT_ACCESS_TOKENIZE, d->name_hash, d->name);
	v = PG_GETARG_TEXT_PP(0);
	value = VARDATA_ANY(v);
	len = VARSIZE_ANY_EXHDR(v);
	k = domain_key(d);
	/*
	 * An SSN is one value whether written with dashes or without: it is
	 * fingerprinted and stored as ddd-dd-dddd, so both spellings share a
	 * token and detokenize to the same text.
	 */
	if (d->format == PHIC_TOKEN_SSN && len == 9 && all_digits(value, len))
	{
		char	   *canon = crypto_alloc_wiped(12);

		snprintf(canon, 12, "%.3s-%.2s-%.4s", value, value + 3, value + 5);
		value = canon;
		len = 11;
	}
	if (phic_hmac3(k->token, d->name, strlen(d->name) + 1, value, len, NULL, 0, fp) != PHIC_OK)
		errors_raise_core(PHIC_ERR_CRYPTO, "fingerprint value");

	if (d->deterministic)
	{
		bool		found;
		Datum		fpd = PointerGetDatum(bytes_datum(fp, PHIC_HMAC_LEN));
		Datum		tok = vault_lookup(d, true, fpd, Anum_vault_token, false, &found);

		/*
		 * Not visible to this statement: also look with the latest snapshot,
		 * which sees values stored meanwhile (by this statement, or by a
		 * transaction committed since a REPEATABLE READ one began), before
		 * trying to insert.
		 */
		if (!found)
			tok = vault_lookup(d, true, fpd, Anum_vault_token, true, &found);
		if (found)
			PG_RETURN_DATUM(reveal_token(d, tok));
	}

	for (uint32 try = 0; try < MAX_TRIES; try++)
	{
		size_t		seedlen = phic_token_seed_len(d->format, len);
		uint8	   *seed = palloc(seedlen);
		char	   *token = palloc(Max(len, PHIC_TOKEN_OPAQUE_LEN) + 1);
		size_t		toklen;
		text	   *result;
		phic_status st;

		if (d->deterministic)
			derive_seed(domain_key(d), fp, try, seed, seedlen);
		else if ((st = phic_random_bytes(seed, (int) seedlen)) != PHIC_OK)
			errors_raise_core(st, "generate token");
		st = phic_token_make(d->format, value, len, seed, token, &toklen);
		if (st == PHIC_ERR_FORMAT)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("value does not fit token format \"%s\" of domain \"%s\"",
							d->format == PHIC_TOKEN_SSN ? "ssn" : "digits", d->name),
					 errdetail(d->format == PHIC_TOKEN_SSN
							   ? "An ssn value is 9 digits, written ddddddddd or ddd-dd-dddd."
							   : "A digits value is 5 or more digits and nothing else.")));
		/* a format-keeping token must not be the value itself */
		if (d->format != PHIC_TOKEN_OPAQUE && toklen == (size_t) len &&
			memcmp(token, value, len) == 0)
			continue;
		if (sealed == (Datum) 0)
			sealed = PointerGetDatum(crypto_encrypt_text(d->key_name, value, len, vault_aad(d)));
		result = vault_insert(d, token, d->deterministic ? fp : NULL, sealed);
		pfree(seed);
		if (result)
			PG_RETURN_DATUM(reveal_token(d, PointerGetDatum(result)));
		if (d->deterministic)
		{
			/* someone else may have stored this very value meanwhile */
			bool		found;
			Datum		tok = vault_lookup(d, true, PointerGetDatum(bytes_datum(fp, PHIC_HMAC_LEN)),
										   Anum_vault_token, true, &found);

			if (found)
				PG_RETURN_DATUM(reveal_token(d, tok));
		}
		/* the token belongs to another value: try the next one */
	}
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("could not find a free token in domain \"%s\"", d->name),
			 errdetail("%d candidate tokens were all taken by other values.", MAX_TRIES),
			 errhint("The format leaves too few token values for the values stored; use format 'opaque'.")));
	PG_RETURN_NULL();
}

PG_FUNCTION_INFO_V1(phi_guard_detokenize);

/*
 * phi_detokenize(token text, domain text) returns text; audited.  Obeys
 * the access rule of the domain's key (42501 unless the context may read
 * its values in clear).
 */
Datum
phi_guard_detokenize(PG_FUNCTION_ARGS)
{
	Domain	   *d;
	bool		found;
	Datum		ct;
	char	   *aad;
	Plaintext	p;
	AuditRowRef ref;
	text	   *plain;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	d = domain_for_call(fcinfo, 1);
	/* the domain key's access rule first: a refused context learns nothing */
	(void) crypto_access_require(&d->decrypt, d->key_name, CRYPTO_REVEAL_CLEAR);
	ct = vault_lookup(d, false, PointerGetDatum(PG_GETARG_TEXT_PP(0)),
					  Anum_vault_value, true, &found);
	if (!found)
	{
		/* failed attempts are accesses too (recorded even though this aborts) */
		audit_access_note(AUDIT_ACCESS_DETOKENIZE_MISS, 0, d->key_name);
		stats_count(PHI_STAT_DETOKENIZE_FAILED);
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("token not found in domain \"%s\"", d->name),
				 errdetail("It was never issued in this domain, or it was forgotten.")));
	}
	aad = vault_aad(d);
	crypto_decrypt(&d->decrypt, DatumGetByteaPP(ct), crypto_utf8(aad, (int) strlen(aad)),
				   CRYPTO_REVEAL_CLEAR, &p);
	plain = crypto_plain_text(&p);
	ref.kind = AUDIT_REF_TOKEN;
	ref.data = VARDATA_ANY(PG_GETARG_TEXT_PP(0));
	ref.len = VARSIZE_ANY_EXHDR(PG_GETARG_TEXT_PP(0));
	ref.domain = d->name;
	audit_access_reveal(AUDIT_ACCESS_DETOKENIZE, p.key_id, p.key_name, &ref, true,
						VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain));
	stats_count(PHI_STAT_DETOKENIZE);
	PG_RETURN_TEXT_P(plain);
}

PG_FUNCTION_INFO_V1(phi_guard_token_forget);

/* phi_token_forget(domain text, token text) returns bool; audited. */
Datum
phi_guard_token_forget(PG_FUNCTION_ARGS)
{
	char		domain[DOMAIN_MAX + 1];
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2];
	bool		gone;
	StringInfoData detail;

	check_domain_name(PG_GETARG_TEXT_PP(0), domain);
	values[0] = CStringGetTextDatum(domain);
	values[1] = PG_GETARG_DATUM(1);
	SPI_connect();
	if (spi_int("SELECT 1 FROM phi_guard.token_domains WHERE name OPERATOR(pg_catalog.=) $1",
				1, types, values, NULL) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("token domain \"%s\" does not exist", domain)));
	if (spi_run("DELETE FROM phi_guard.token_vault WHERE domain OPERATOR(pg_catalog.=) $1 "
				"AND token OPERATOR(pg_catalog.=) $2",
				2, types, values, NULL, false) != SPI_OK_DELETE)
		elog(ERROR, "phi_guard: could not delete from the token vault");
	gone = SPI_processed > 0;
	SPI_finish();
	initStringInfo(&detail);
	appendStringInfoString(&detail, "{\"domain\":");
	audit_json_string(&detail, domain);
	appendStringInfo(&detail, ",\"forgotten\":%s}", gone ? "true" : "false");
	audit_write_one("token_forget", "phi_guard.token_vault", NULL, NULL, detail.data);
	PG_RETURN_BOOL(gone);
}
