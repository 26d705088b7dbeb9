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
 * Reads and writes of vault rows are vault.c's: the hot path (a value
 * already in the vault) is a hash-index look-up, new rows go in
 * without SQL where the vault allows it; deletes go through SPI as the
 * vault's owner.
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

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"		/* PostgreSQL's src/common, not ours */
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "storage/lock.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"

#include "common/catalog.h"
#include "common/citus.h"
#include "common/errors.h"
#include "common/spi.h"
#include "common/stats.h"
#include "core/nonce.h"
#include "core/tokenfmt.h"
#include "tokens/vault.h"

#define MAX_TRIES 100

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
	Oid			nsp;

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
	/* not Citus shards (catalog_relid gives their storage): writes may skip SQL (vault.c) */
	nsp = get_namespace_oid("phi_guard", false);
	d->domains = get_relname_relid("token_domains", nsp);
	d->direct = d->vault == get_relname_relid("token_vault", nsp) &&
		d->domains == catalog_relid("token_domains");
	d->locked_lxid = InvalidLocalTransactionId;
	d->key = NULL;
	fcinfo->flinfo->fn_extra = d;
	return d;
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
	bytea	   *fpb = NULL;		/* fp as stored, deterministic domains only */

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
		Datum		fpd;
		Datum		tok;

		fpb = bytes_datum(fp, PHIC_HMAC_LEN);
		fpd = PointerGetDatum(fpb);
		tok = vault_lookup(d, true, fpd, Anum_vault_token, false, &found);

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
		result = vault_insert(d, token, fpb, sealed);
		pfree(seed);
		if (result)
			PG_RETURN_DATUM(reveal_token(d, PointerGetDatum(result)));
		if (d->deterministic)
		{
			/* someone else may have stored this very value meanwhile */
			bool		found;
			Datum		tok = vault_lookup(d, true, PointerGetDatum(fpb), Anum_vault_token, true, &found);

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
