/*
 * record.h — the canonical audit record and who acted (audit_record.c);
 * internal to src/audit.
 */
#ifndef PHI_GUARD_AUDIT_RECORD_H
#define PHI_GUARD_AUDIT_RECORD_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

#include "core/jws.h"

/*
 * Sizes of the who-fields, each with room for its terminating NUL.  Role
 * names and application_name are PostgreSQL names (at most NAMEDATALEN - 1
 * bytes: PostgreSQL shortens them itself); a claim of the request context
 * is at most PHIC_JWS_MAX_STR bytes (phi_set_context refuses longer ones
 * with 28000), so app_user, tenant, purpose and request_id are kept whole.
 */
#define AUDIT_ROLE_LEN NAMEDATALEN
#define AUDIT_CLAIM_LEN (PHIC_JWS_MAX_STR + 1)
#define AUDIT_ADDR_LEN 64
/* a key or token domain name, or an unquoted "schema.table" */
#define AUDIT_KEY_LEN (2 * NAMEDATALEN)

/*
 * Who, where and why, captured once per event.  A string longer than its
 * field (which the limits above rule out) is shortened at a character
 * boundary, so a record is always valid in the database encoding; an
 * empty string is written as JSON null.
 */
typedef struct AuditWho
{
	TimestampTz ts;
	char		db_user[AUDIT_ROLE_LEN];
	char		role[AUDIT_ROLE_LEN];
	char		app_user[AUDIT_CLAIM_LEN];
	char		tenant[AUDIT_CLAIM_LEN];
	char		purpose[AUDIT_CLAIM_LEN];
	bool		in_context;		/* a request context was set: request_id is written */
	char		request_id[AUDIT_CLAIM_LEN];	/* its token's jti; "": none (null) */
	char		client_addr[AUDIT_ADDR_LEN];
	char		application_name[AUDIT_ROLE_LEN];
} AuditWho;

/* The parts of a record that every row of one statement shares. */
typedef struct AuditRecordParts
{
	StringInfoData prefix;		/* {"v":1,...,"row_key": */
	StringInfoData suffix;		/* ,"db_user":...} */
} AuditRecordParts;

/* Fill *who from the session and the registered context provider. */
extern void audit_capture_who(AuditWho *who);

/* Whether a request context is set (the provider says so). */
extern bool audit_in_context(void);

/*
 * Copy src (NULL: "") into dst of size bytes, shortened if need be at a
 * character boundary of the database encoding; always NUL-terminated.
 */
extern void audit_copy_clipped(char *dst, const char *src, int size);

/* The shared prefix and suffix of the records of one statement. */
extern void audit_record_parts(AuditRecordParts *parts, const AuditWho *who,
							   const char *kind, const char *table, const char *detail);

/*
 * The parts of the compact row entries of one statement (SPEC §6): kind,
 * table, row key, columns and stmt, the id of the statement's entry (kind
 * "statement") that holds who, when, where and why for all of them.
 */
extern void audit_record_compact_parts(AuditRecordParts *parts, const char *kind,
									   const char *table, int64 stmt);

/* Append prefix || row_key || ,"columns": || columns || suffix to buf. */
extern void audit_record_join(StringInfo buf, const AuditRecordParts *parts,
							  const char *row_key, const char *columns);

/* Append one whole record to buf. */
extern void audit_build_record(StringInfo buf, const AuditWho *who,
							   const char *kind, const char *table,
							   const char *row_key, const char *columns,
							   const char *detail);

#endif
