/*
 * audit.h — the audit log (SPEC §6): records, the writer, access events,
 * sealing and the background worker.
 */
#ifndef PHI_GUARD_AUDIT_H
#define PHI_GUARD_AUDIT_H

#include "postgres.h"

#include "access/transam.h"
#include "datatype/timestamp.h"
#include "lib/stringinfo.h"
#include "utils/relcache.h"

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

/* audit_record.c */
extern void audit_capture_who(AuditWho *who);
extern void audit_record_parts(AuditRecordParts *parts, const AuditWho *who,
							   const char *kind, const char *table, const char *detail);
extern void audit_record_join(StringInfo buf, const AuditRecordParts *parts,
							  const char *row_key, const char *columns);
extern void audit_build_record(StringInfo buf, const AuditWho *who,
							   const char *kind, const char *table,
							   const char *row_key, const char *columns,
							   const char *detail);
extern void audit_json_string(StringInfo buf, const char *s);
extern char *audit_table_name(Relation rel);

/* audit_write.c: append entries to phi_guard.audit_log in this transaction */
typedef struct AuditWriter AuditWriter;
extern AuditWriter *audit_writer_open(void);
extern void audit_writer_add(AuditWriter *w, const char *record, int len);
extern void audit_writer_close(AuditWriter *w);
extern void audit_write_one(const char *kind, const char *table,
							const char *row_key, const char *columns,
							const char *detail);

/* audit_access.c: decrypt / detokenize counts, flushed per statement */
#define AUDIT_ACCESS_DECRYPT 'd'
#define AUDIT_ACCESS_DETOKENIZE 't'
#define AUDIT_ACCESS_DETOKENIZE_MISS 'm'
#define AUDIT_ACCESS_BREAK_GLASS 'b'	/* key_id: grant id, key_name: table */
#define AUDIT_ACCESS_CONTEXT_REJECTED 'r'	/* key_name: the reason */
extern void audit_access_note(char kind, uint32 key_id, const char *key_name);
extern void audit_access_init(void);
extern void audit_ensure_worker(void);
extern int	audit_queue_write(AuditWriter *w, bool to_log);
extern void audit_queue_consume(int n);
extern int	audit_queue_length(void);
extern bool audit_queue_sync(void);
extern bool audit_worker_attach(Oid dboid);

/* audit_seal.c */
extern int64 audit_seal(void);

/* worker.c */
extern int	phi_guard_audit_seal_interval;
extern bool worker_register(Oid dboid);

#endif
