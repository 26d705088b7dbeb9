/*
 * record.h — the canonical audit record and who acted (audit_record.c);
 * internal to src/audit.
 */
#ifndef PHI_GUARD_AUDIT_RECORD_H
#define PHI_GUARD_AUDIT_RECORD_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

#define AUDIT_NAME_LEN 64

/*
 * Who, where and why, captured once per event.  Strings are truncated to
 * AUDIT_NAME_LEN - 1 bytes; an empty string is written as JSON null.
 */
typedef struct AuditWho
{
	TimestampTz ts;
	char		db_user[AUDIT_NAME_LEN];
	char		role[AUDIT_NAME_LEN];
	char		app_user[AUDIT_NAME_LEN];
	char		tenant[AUDIT_NAME_LEN];
	char		purpose[AUDIT_NAME_LEN];
	char		client_addr[AUDIT_NAME_LEN];
	char		application_name[AUDIT_NAME_LEN];
} AuditWho;

/* The parts of a record that every row of one statement shares. */
typedef struct AuditRecordParts
{
	StringInfoData prefix;		/* {"v":1,...,"row_key": */
	StringInfoData suffix;		/* ,"db_user":...} */
} AuditRecordParts;

/* Fill *who from the session and the registered context provider. */
extern void audit_capture_who(AuditWho *who);

/* The shared prefix and suffix of the records of one statement. */
extern void audit_record_parts(AuditRecordParts *parts, const AuditWho *who,
							   const char *kind, const char *table, const char *detail);

/* Append prefix || row_key || ,"columns": || columns || suffix to buf. */
extern void audit_record_join(StringInfo buf, const AuditRecordParts *parts,
							  const char *row_key, const char *columns);

/* Append one whole record to buf. */
extern void audit_build_record(StringInfo buf, const AuditWho *who,
							   const char *kind, const char *table,
							   const char *row_key, const char *columns,
							   const char *detail);

#endif
