/*
 * context.c — the signed per-request context (SPEC §5): phi_set_context,
 * the readers and phi_has_permission.
 *
 * phi_set_context verifies a compact JWS (EdDSA / Ed25519, src/core/jws.c)
 * against a key registered in phi_guard.context_keys, then keeps the claims
 * and the permissions of its roles (phi_guard.role_permissions over the
 * built-in defaults) in backend memory.  Nothing else can set the context:
 * no setting, no table, no SQL-visible state feeds it.
 *
 * Invariants:
 *  - A failed phi_set_context leaves no context (the old one is dropped
 *    first), so an error never leaves a stale tenant behind; so does
 *    phi_set_context(NULL).
 *  - context_generation moves with every change of the context, so
 *    decisions cached under it (src/crypto) never outlive their context.
 *  - The context ends with the transaction: commit, abort or PREPARE
 *    TRANSACTION (xact_on_end), which makes transaction pooling safe.
 *  - The audit log learns the context's user, tenant, purpose and request
 *    id (the token's jti) from context_fields, the provider registered with
 *    the audit (src/audit never calls this folder).
 *  - Readers run only in the leader (PARALLEL RESTRICTED in SQL): parallel
 *    workers never hold a context.  Policies call them in an InitPlan, whose
 *    value the leader passes to workers.
 *  - Token text never reaches a message; rejections are counted as
 *    'context_rejected' access entries (written even though the
 *    transaction aborts).
 *
 * On a Citus cluster (README, "Scaling out with Citus") the context must
 * also govern the shard queries the coordinator sends to the workers.
 * phi_set_context then also runs SET LOCAL phi_guard.context_token, which
 * Citus sends to every node the transaction reaches (and to those it
 * reaches later); on those nodes the first reader of the transaction
 * verifies that token exactly as phi_set_context does (context_ready),
 * once per node and transaction.  The setting is honoured only in the
 * transaction that set it (context_token_lxid), only from SET / SET LOCAL
 * (context_token_check) and only where Citus is installed, so it never
 * outlives its transaction and never replaces phi_set_context on a plain
 * server.  Any change of it drops the context, which the next reader takes
 * from the setting as it then is, on every node alike: ROLLBACK TO a
 * savepoint brings back the token (and so the context) of the savepoint
 * everywhere.  A bad token is rejected as by phi_set_context.
 */
#include "postgres.h"

#include <time.h>

#include "access/xact.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"		/* PostgreSQL's src/common, not ours */
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/memutils.h"

#include "audit/audit.h"
#include "common/citus.h"
#include "common/errors.h"
#include "common/spi.h"
#include "common/stats.h"
#include "common/xact.h"
#include "context/context.h"
#include "core/jws.h"

int			phi_guard_context_leeway = 30;
int			phi_guard_context_max_lifetime = 3600;
char	   *phi_guard_context_issuer = NULL;
char	   *phi_guard_context_audience = NULL;
char	   *phi_guard_context_token = NULL;

static bool ctx_set = false;
static phic_jws_claims ctx_claims;
static int	ctx_nperms = 0;
static char **ctx_perms = NULL; /* in ctx_cxt */
static MemoryContext ctx_cxt = NULL;

uint64		context_generation = 1;

/* the local transaction in which phi_guard.context_token was last set */
static LocalTransactionId context_token_lxid = InvalidLocalTransactionId;
static bool ctx_from_token = false;	/* the context came from that setting */
static bool verifying = false;	/* context_ready is verifying it */

static void
context_clear(void)
{
	context_generation++;
	ctx_set = false;
	ctx_from_token = false;
	memset(&ctx_claims, 0, sizeof(ctx_claims));
	ctx_nperms = 0;
	ctx_perms = NULL;
	if (ctx_cxt)
		MemoryContextReset(ctx_cxt);
}

/* At the end of every transaction, committed or not. */
static void
context_clear_at_end(void)
{
	if (ctx_set)
		context_clear();
}

static bool context_ready(void);

/* The audit's view of the context: who acted, for which tenant and why. */
static void
context_fields(AuditContextFields *fields)
{
	fields->in_context = context_ready();
	fields->app_user = context_user_id();
	fields->tenant = context_tenant_id();
	fields->purpose = context_purpose();
	fields->request_id = ctx_set && ctx_claims.jti[0] != '\0' ? ctx_claims.jti : NULL;
}

/* From _PG_init, preloaded or not. */
void
context_init(void)
{
	xact_on_end(context_clear_at_end);
	audit_set_context_provider(context_fields);
}

/*
 * Reject the token: count a 'context_rejected' access entry (it survives
 * the abort) and raise 28000 with the reason, never the token.
 */
static void
reject(const char *reason, const char *hint) pg_attribute_noreturn();
static void
reject(const char *reason, const char *hint)
{
	stats_count(PHI_STAT_DENIED);
	/* one entry per reason and statement: the reason's hash keys the count */
	audit_access_note(AUDIT_ACCESS_CONTEXT_REJECTED,
					  hash_bytes((const unsigned char *) reason, (int) strlen(reason)),
					  reason);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
			 errmsg("context token rejected: %s", reason),
			 hint ? errhint("%s", hint) : 0));
	pg_unreachable();
}

/* The claims' roles as a text[], in token order. */
static ArrayType *
claims_roles(void)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(ctx_claims.nroles, 1));

	for (int i = 0; i < ctx_claims.nroles; i++)
		elems[i] = CStringGetTextDatum(ctx_claims.roles[i]);
	return construct_array(elems, ctx_claims.nroles, TEXTOID, -1, false, TYPALIGN_INT);
}

/*
 * The raw public key registered under kid.  Rejects unknown and revoked
 * keys.  Runs under the SECURITY DEFINER owner (phi_guard.context_keys is
 * readable by no application role).
 */
static void
lookup_key(const char *kid, uint8 pub[PHIC_ED25519_KEY_LEN])
{
	static SPIPlanPtr plan = NULL;
	Datum		arg = CStringGetTextDatum(kid);
	bool		isnull;
	bytea	   *raw;
	bool		revoked;

	Oid			types[1] = {TEXTOID};

	SPI_connect();
	(void) spi_run_kept(&plan,
						"SELECT public_key, revoked_at IS NOT NULL "
						"FROM phi_guard.context_keys WHERE kid OPERATOR(pg_catalog.=) $1",
						1, types, &arg, NULL, true, 1);
	if (SPI_processed == 0)
	{
		SPI_finish();
		reject("unknown key id",
			   "Register the signing key with phi_context_key_add().");
	}
	revoked = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	raw = DatumGetByteaPP(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	if (!revoked && !isnull && VARSIZE_ANY_EXHDR(raw) == PHIC_ED25519_KEY_LEN)
		memcpy(pub, VARDATA_ANY(raw), PHIC_ED25519_KEY_LEN);
	SPI_finish();
	if (revoked)
		reject("the signing key was revoked", NULL);
	if (isnull)
		elog(ERROR, "context key without a public key");
}

/*
 * Load the permissions of the claims' roles into ctx_perms: the built-in
 * defaults not revoked by an override, plus granted overrides.
 */
static void
load_permissions(void)
{
	static SPIPlanPtr plan = NULL;
	Datum		arg = PointerGetDatum(claims_roles());
	Oid			types[1] = {TEXTARRAYOID};
	MemoryContext old;

	SPI_connect();
	(void) spi_run_kept(&plan,
						"SELECT DISTINCT p.permission FROM phi_guard.permissions p "
						"WHERE p.role OPERATOR(pg_catalog.=) ANY ($1)",
						1, types, &arg, NULL, true, 0);
	old = MemoryContextSwitchTo(ctx_cxt);
	ctx_nperms = (int) SPI_processed;
	ctx_perms = palloc(sizeof(char *) * Max(ctx_nperms, 1));
	for (int i = 0; i < ctx_nperms; i++)
		ctx_perms[i] = SPI_getvalue(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1);
	MemoryContextSwitchTo(old);
	SPI_finish();
}

/*
 * When phi_guard.context_issuer / phi_guard.context_audience are set, the
 * verified claims must carry that iss / an aud naming that audience (SPEC
 * §7); reject (28000) otherwise.  Empty settings check nothing.
 */
static void
check_issuer_audience(void)
{
	const char *issuer = phi_guard_context_issuer;
	const char *audience = phi_guard_context_audience;
	bool		named = false;

	if (issuer != NULL && issuer[0] != '\0' && strcmp(ctx_claims.iss, issuer) != 0)
		reject(ctx_claims.iss[0] == '\0' ? "no issuer" : "issuer not accepted",
			   "The token's iss claim must equal phi_guard.context_issuer.");
	if (audience == NULL || audience[0] == '\0')
		return;
	for (int i = 0; i < ctx_claims.naud; i++)
		named |= strcmp(ctx_claims.aud[i], audience) == 0;
	if (!named)
		reject(ctx_claims.naud == 0 ? "no audience" : "audience not accepted",
			   "The token's aud claim (a string or an array) must name phi_guard.context_audience.");
}

/*
 * Verify token (len bytes) and make its claims the context; rejects
 * (28000) a token that does not verify.  Reads phi_guard.context_keys and
 * the permissions, so it runs as their owner.
 */
static void
context_verify(const char *tok, size_t len)
{
	char		kid[PHIC_JWS_MAX_STR + 1];
	uint8		pub[PHIC_ED25519_KEY_LEN];
	phic_status st;

	if (ctx_cxt == NULL)
		ctx_cxt = AllocSetContextCreate(TopMemoryContext, "phi_guard context",
										ALLOCSET_SMALL_SIZES);
	context_clear();
	if (len > PHIC_JWS_MAX_TOKEN)
		reject("token too long", "A context token has at most 8192 bytes.");
	if (phic_jws_header_kid(tok, len, kid) != PHIC_OK || kid[0] == '\0')
	{
		if (phic_jws_header_names_other_alg(tok, len))
			reject("unsupported algorithm", "Only EdDSA (Ed25519) tokens are accepted.");
		reject("malformed token",
			   "Expected a compact JWS with header {\"alg\":\"EdDSA\",\"kid\":...}.");
	}
	lookup_key(kid, pub);

	st = phic_jws_verify(tok, len, pub, (int64_t) time(NULL),
						 phi_guard_context_leeway, phi_guard_context_max_lifetime,
						 &ctx_claims);
	switch (st)
	{
		case PHIC_OK:
			break;
		case PHIC_ERR_AUTH:
			reject("signature does not verify", NULL);
		case PHIC_ERR_FORMAT:
			reject("malformed token",
				   "Required claims: sub, tenant (strings), roles (array of strings), exp (NumericDate).");
		case PHIC_ERR_EXPIRED:
			reject("token expired", NULL);
		case PHIC_ERR_NOT_YET_VALID:
			reject("token not yet valid", NULL);
		case PHIC_ERR_LIFETIME:
			reject("token lifetime exceeds phi_guard.context_max_lifetime", NULL);
		default:
			errors_raise_core(st, "verify the context token");
	}
	check_issuer_audience();
	load_permissions();
	ctx_set = true;
	context_generation++;
}

/*
 * On a Citus node, hand token (NULL: none) to every node this transaction
 * reaches: SET LOCAL phi_guard.context_token, which Citus propagates (with
 * citus.propagate_set_commands = 'local', set for this transaction).
 */
static void
context_propagate(text *token)
{
	char	   *lit = quote_literal_cstr(token ? text_to_cstring(token) : "");
	char	   *sql = psprintf("SET LOCAL phi_guard.context_token = %s", lit);

	SPI_connect();
	(void) set_config_option("citus.propagate_set_commands", "local", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_LOCAL, true, 0, false);
	if (SPI_execute(sql, false, 0) != SPI_OK_UTILITY)
		elog(ERROR, "could not hand the context to the Citus nodes");
	SPI_finish();
	explicit_bzero(sql, strlen(sql));
	explicit_bzero(lit, strlen(lit));
	pfree(sql);
	pfree(lit);
}

/*
 * Check hook of phi_guard.context_token: a token only from SET / SET LOCAL
 * in a session (Citus's, or the client's), never from a file, ALTER ROLE
 * or ALTER DATABASE default or connection option, which would outlive the
 * transaction.
 */
bool
context_token_check(char **newval, void **extra, GucSource source)
{
	if (**newval == '\0' || source == PGC_S_SESSION)
		return true;
	GUC_check_errdetail("phi_guard.context_token is set only for one transaction, by phi_set_context.");
	return false;
}

/*
 * Assign hook of phi_guard.context_token: remember the transaction, and
 * drop the context (whatever set it: a new token, a restored one or none
 * governs from here on).
 */
void
context_token_assigned(const char *newval, void *extra)
{
	context_token_lxid = MyProc != NULL ? MyProc->lxid : InvalidLocalTransactionId;
	if (ctx_set)
		context_clear();
}

/*
 * Whether a context holds: one set by phi_set_context, or, on a Citus
 * node, the token the coordinator handed over in this transaction, which
 * the first call verifies (as the extension's owner, as phi_set_context
 * runs).
 */
static bool
context_ready(void)
{
	Oid			save_user;
	int			save_sec;
	int			guc_level;
	const char *tok = phi_guard_context_token;

	if (ctx_set)
		return true;
	if (tok == NULL || tok[0] == '\0' || MyProc == NULL || verifying ||
		context_token_lxid != MyProc->lxid || !IsTransactionState() || !citus_present())
		return false;
	verifying = true;			/* a rejection's own entry reads no context */
	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(BOOTSTRAP_SUPERUSERID, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	guc_level = citus_local_reads_begin();
	PG_TRY();
	{
		context_verify(tok, strlen(tok));
	}
	PG_CATCH();
	{
		SetUserIdAndSecContext(save_user, save_sec);
		verifying = false;
		PG_RE_THROW();
	}
	PG_END_TRY();
	citus_local_reads_end(guc_level);
	SetUserIdAndSecContext(save_user, save_sec);
	verifying = false;
	ctx_from_token = true;
	return true;
}

PG_FUNCTION_INFO_V1(phi_guard_set_context);

/*
 * phi_set_context(token text) returns void — verify the token and make its
 * claims this transaction's context; NULL clears the context (a NULL token
 * must never leave the previous request's context in place).  SECURITY
 * DEFINER (reads the key and permission tables).  On a Citus node the
 * token also goes to every node of the transaction (context_propagate).
 */
Datum
phi_guard_set_context(PG_FUNCTION_ARGS)
{
	text	   *t = PG_ARGISNULL(0) ? NULL : PG_GETARG_TEXT_PP(0);

	context_clear();
	if (citus_present())
		context_propagate(t);
	if (t == NULL)
		PG_RETURN_VOID();
	context_verify(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));

	if (!IsTransactionBlock())
		ereport(WARNING,
				(errcode(ERRCODE_NO_ACTIVE_SQL_TRANSACTION),
				 errmsg("phi_set_context outside a transaction block lasts for this statement only"),
				 errhint("Call it after BEGIN; the context ends with the transaction.")));
	PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(phi_guard_clear_context);

Datum
phi_guard_clear_context(PG_FUNCTION_ARGS)
{
	context_clear();
	if (citus_present())
		context_propagate(NULL);
	PG_RETURN_VOID();
}

const char *
context_user_id(void)
{
	return context_ready() ? ctx_claims.sub : NULL;
}

const char *
context_tenant_id(void)
{
	return context_ready() ? ctx_claims.tenant : NULL;
}

const char *
context_purpose(void)
{
	return context_ready() && ctx_claims.purpose[0] != '\0' ? ctx_claims.purpose : NULL;
}

/* Deny by default: false without a context. */
bool
context_has_permission(const char *permission)
{
	if (!context_ready())
		return false;
	for (int i = 0; i < ctx_nperms; i++)
		if (strcmp(ctx_perms[i], permission) == 0)
			return true;
	return false;
}

static Datum
text_or_null(FunctionCallInfo fcinfo, const char *s)
{
	if (s == NULL)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(s));
}

PG_FUNCTION_INFO_V1(phi_guard_user_id);
PG_FUNCTION_INFO_V1(phi_guard_tenant_id);
PG_FUNCTION_INFO_V1(phi_guard_purpose);
PG_FUNCTION_INFO_V1(phi_guard_roles);
PG_FUNCTION_INFO_V1(phi_guard_has_role);
PG_FUNCTION_INFO_V1(phi_guard_has_permission);

Datum
phi_guard_user_id(PG_FUNCTION_ARGS)
{
	return text_or_null(fcinfo, context_user_id());
}

Datum
phi_guard_tenant_id(PG_FUNCTION_ARGS)
{
	return text_or_null(fcinfo, context_tenant_id());
}

Datum
phi_guard_purpose(PG_FUNCTION_ARGS)
{
	return text_or_null(fcinfo, context_purpose());
}

/* The context's roles in token order; NULL without a context. */
Datum
phi_guard_roles(PG_FUNCTION_ARGS)
{
	if (!context_ready())
		PG_RETURN_NULL();
	PG_RETURN_ARRAYTYPE_P(claims_roles());
}

/* phi_has_role(role): NULL without a context (SPEC §5 readers). */
Datum
phi_guard_has_role(PG_FUNCTION_ARGS)
{
	char	   *role = text_to_cstring(PG_GETARG_TEXT_PP(0));

	if (!context_ready())
		PG_RETURN_NULL();
	for (int i = 0; i < ctx_claims.nroles; i++)
		if (strcmp(ctx_claims.roles[i], role) == 0)
			PG_RETURN_BOOL(true);
	PG_RETURN_BOOL(false);
}

/* phi_has_permission(permission): false without a context. */
Datum
phi_guard_has_permission(PG_FUNCTION_ARGS)
{
	char	   *perm = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(context_has_permission(perm));
}

PG_FUNCTION_INFO_V1(phi_guard_context_key_raw);

/*
 * context_key_raw(pem text) returns bytea — the raw 32-byte Ed25519 key of
 * a PEM "PUBLIC KEY"; 22023 for anything else.  Public keys are not
 * secret, but the text is still not quoted back.
 */
Datum
phi_guard_context_key_raw(PG_FUNCTION_ARGS)
{
	text	   *pem = PG_GETARG_TEXT_PP(0);
	bytea	   *out = palloc(VARHDRSZ + PHIC_ED25519_KEY_LEN);
	phic_status st;

	st = phic_ed25519_pem_to_raw(VARDATA_ANY(pem), VARSIZE_ANY_EXHDR(pem),
								 (uint8_t *) VARDATA(out));
	if (st == PHIC_ERR_FORMAT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("not an Ed25519 public key in PEM form"),
				 errhint("Pass the SubjectPublicKeyInfo PEM (-----BEGIN PUBLIC KEY-----) of an Ed25519 key.")));
	if (st != PHIC_OK)
		errors_raise_core(st, "read the public key");
	SET_VARSIZE(out, VARHDRSZ + PHIC_ED25519_KEY_LEN);
	PG_RETURN_BYTEA_P(out);
}
