/*
 * audit_record.c — the canonical audit record: compact JSON written by
 * phi_guard itself, byte for byte the same whatever the session's TimeZone,
 * DateStyle, IntervalStyle or extra_float_digits (SPEC §6).
 *
 * Keys, always in this order: v, ts, kind, table, row_key, columns,
 * db_user, role, app_user, tenant, purpose, request_id (only in a record
 * written while a request context is set: SPEC §7), client_addr,
 * application_name, detail.  ts is UTC ISO-8601 with microseconds ("2026-11-23T15:38:24.123456Z").
 * row_key, columns and detail are JSON fragments built by the caller (or
 * null); strings are escaped by escape_json, which depends on no setting.
 *
 * Who acted: the session's roles, client and application_name, and the
 * request context's fields through the provider the context registers
 * (audit_set_context_provider) — the audit never calls the context.
 * Who-fields are kept whole (record.h sizes them for the longest role name
 * and context claim); application_name, which PostgreSQL does not limit,
 * is kept to NAMEDATALEN - 1 bytes as pg_stat_activity shows it.  Whatever
 * is shortened is cut at a character boundary, never inside one.
 * State: the provider and a two-entry cache of role names (reset by a
 * pg_authid syscache callback), backend-local.
 */
#include "postgres.h"

#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "audit/audit.h"
#include "audit/record.h"
#include "common/format.h"

extern char *application_name;

static AuditContextProvider context_provider = NULL;

void
audit_set_context_provider(AuditContextProvider provider)
{
	context_provider = provider;
}

void
audit_copy_clipped(char *dst, const char *src, int size)
{
	int			len = src ? (int) strlen(src) : 0;

	if (len >= size)
		len = pg_mbcliplen(src, len, size - 1);
	if (len > 0)
		memcpy(dst, src, len);
	dst[len] = '\0';
}

/*
 * The client's IP address, "[local]" for a Unix socket, empty for a
 * background process (through inet_client_addr(): the Port struct's header
 * drags in GSSAPI headers).
 */
static void
client_addr(char *dst)
{
	static char cached[AUDIT_ADDR_LEN];
	static bool known = false;	/* a session's client never changes */

	if (!known && MyProcPort != NULL)
	{
		LOCAL_FCINFO(fcinfo, 0);
		Datum		d;

		InitFunctionCallInfoData(*fcinfo, NULL, 0, InvalidOid, NULL, NULL);
		d = inet_client_addr(fcinfo);
		audit_copy_clipped(cached, fcinfo->isnull ? "[local]"
						   : DatumGetCString(DirectFunctionCall1(inet_out, d)),
						   AUDIT_ADDR_LEN);
		known = true;
	}
	strlcpy(dst, cached, AUDIT_ADDR_LEN);
}

static Oid	role_oids[2];
static char role_names[2][AUDIT_ROLE_LEN];

/* pg_authid changed (a rename, say): forget the remembered names */
static void
role_names_reset(Datum arg, int cacheid, uint32 hashvalue)
{
	role_oids[0] = role_oids[1] = InvalidOid;
}

/* A role's name, remembering the last two asked (session and current role). */
static void
role_name(Oid role, char *dst)
{
	static bool registered = false;
	static int	next;
	Oid		   *oids = role_oids;
	char		(*names)[AUDIT_ROLE_LEN] = role_names;

	if (!registered)
	{
		CacheRegisterSyscacheCallback(AUTHOID, role_names_reset, (Datum) 0);
		registered = true;
	}

	for (int i = 0; i < 2; i++)
		if (OidIsValid(oids[i]) && oids[i] == role)
		{
			strlcpy(dst, names[i], AUDIT_ROLE_LEN);
			return;
		}
	audit_copy_clipped(names[next], GetUserNameFromId(role, true), AUDIT_ROLE_LEN);
	oids[next] = role;
	strlcpy(dst, names[next], AUDIT_ROLE_LEN);
	next = 1 - next;
}

/* Fill *who from the session: users, client, the signed context if any. */
void
audit_capture_who(AuditWho *who)
{
	memset(who, 0, sizeof(*who));
	who->ts = GetCurrentTimestamp();
	if (OidIsValid(GetSessionUserId()))
		role_name(GetSessionUserId(), who->db_user);
	/* the caller's role, also inside phi_guard's SECURITY DEFINER functions */
	if (OidIsValid(GetOuterUserId()))
		role_name(GetOuterUserId(), who->role);
	if (context_provider != NULL)
	{
		AuditContextFields f = {false, NULL, NULL, NULL, NULL};

		context_provider(&f);
		who->in_context = f.in_context;
		audit_copy_clipped(who->app_user, f.app_user, AUDIT_CLAIM_LEN);
		audit_copy_clipped(who->tenant, f.tenant, AUDIT_CLAIM_LEN);
		audit_copy_clipped(who->purpose, f.purpose, AUDIT_CLAIM_LEN);
		audit_copy_clipped(who->request_id, f.request_id, AUDIT_CLAIM_LEN);
	}
	client_addr(who->client_addr);
	audit_copy_clipped(who->application_name, application_name, AUDIT_ROLE_LEN);
}

bool
audit_in_context(void)
{
	AuditContextFields f = {false, NULL, NULL, NULL, NULL};

	if (context_provider != NULL)
		context_provider(&f);
	return f.in_context;
}

/* Append s as a JSON string, or null when s is NULL or empty. */
void
audit_json_string(StringInfo buf, const char *s)
{
	if (s == NULL || *s == '\0')
		appendStringInfoString(buf, "null");
	else
		escape_json(buf, s);
}

/*
 * The record is prefix || row_key || ,"columns": || columns || suffix; the
 * prefix and suffix are the same for every row of a statement, so the
 * trigger builds them once (audit_record_parts) and each row only adds its
 * key (audit_record_join).
 */
void
audit_record_parts(AuditRecordParts *parts, const AuditWho *who,
				   const char *kind, const char *table, const char *detail)
{
	StringInfo	p = &parts->prefix;
	StringInfo	s = &parts->suffix;

	initStringInfo(p);
	appendStringInfoString(p, "{\"v\":1,\"ts\":\"");
	format_utc_timestamp(p, who->ts);
	appendStringInfoString(p, "\",\"kind\":");
	audit_json_string(p, kind);
	appendStringInfoString(p, ",\"table\":");
	audit_json_string(p, table);
	appendStringInfoString(p, ",\"row_key\":");

	initStringInfo(s);
	appendStringInfoString(s, ",\"db_user\":");
	audit_json_string(s, who->db_user);
	appendStringInfoString(s, ",\"role\":");
	audit_json_string(s, who->role);
	appendStringInfoString(s, ",\"app_user\":");
	audit_json_string(s, who->app_user);
	appendStringInfoString(s, ",\"tenant\":");
	audit_json_string(s, who->tenant);
	appendStringInfoString(s, ",\"purpose\":");
	audit_json_string(s, who->purpose);
	if (who->in_context)
	{
		appendStringInfoString(s, ",\"request_id\":");
		audit_json_string(s, who->request_id);
	}
	appendStringInfoString(s, ",\"client_addr\":");
	audit_json_string(s, who->client_addr);
	appendStringInfoString(s, ",\"application_name\":");
	audit_json_string(s, who->application_name);
	appendStringInfo(s, ",\"detail\":%s}", detail ? detail : "null");
}

void
audit_record_compact_parts(AuditRecordParts *parts, const char *kind,
						   const char *table, int64 stmt)
{
	initStringInfo(&parts->prefix);
	appendStringInfoString(&parts->prefix, "{\"v\":2,\"kind\":");
	audit_json_string(&parts->prefix, kind);
	appendStringInfoString(&parts->prefix, ",\"table\":");
	audit_json_string(&parts->prefix, table);
	appendStringInfoString(&parts->prefix, ",\"row_key\":");
	initStringInfo(&parts->suffix);
	appendStringInfo(&parts->suffix, ",\"stmt\":" INT64_FORMAT "}", stmt);
}

/* Append one record of a statement: its shared parts around this row's. */
void
audit_record_join(StringInfo buf, const AuditRecordParts *parts,
				  const char *row_key, const char *columns)
{
	appendBinaryStringInfo(buf, parts->prefix.data, parts->prefix.len);
	appendStringInfoString(buf, row_key ? row_key : "null");
	appendStringInfoString(buf, ",\"columns\":");
	appendStringInfoString(buf, columns ? columns : "null");
	appendBinaryStringInfo(buf, parts->suffix.data, parts->suffix.len);
}

/* Append a whole record (the single-row case of parts and join). */
void
audit_build_record(StringInfo buf, const AuditWho *who, const char *kind,
				   const char *table, const char *row_key,
				   const char *columns, const char *detail)
{
	AuditRecordParts parts;

	audit_record_parts(&parts, who, kind, table, detail);
	audit_record_join(buf, &parts, row_key, columns);
	pfree(parts.prefix.data);
	pfree(parts.suffix.data);
}
