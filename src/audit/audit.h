/*
 * audit.h — src/audit: the append-only, hash-chained audit log (SPEC §6).
 *
 * Owns: the canonical record (audit_record.c), the writer that appends
 * entries to phi_guard.audit_log (audit_write.c), the audit trigger and
 * phi_guard.audit_event (audit_trigger.c), the access events of decrypt,
 * detokenize, break-glass and rejected contexts (audit_access.c), their
 * per-database queue in shared memory (shmem.c), the background worker
 * that drains the queue and seals (worker_start.c starts it, worker.c is
 * its life), and sealing, verification and the digest (audit_seal.c).
 *
 * May call: src/core, src/common and PostgreSQL.  Nothing above it: the
 * request context (src/context) is not called; it *provides* the
 * who-fields of every record through audit_set_context_provider below.
 *
 * This header is what the capabilities above use; the files of this
 * folder share their internals through audit/record.h, audit/writer.h,
 * audit/shmem.h, audit/access.h, audit/worker.h and audit/seal.h.
 */
#ifndef PHI_GUARD_AUDIT_H
#define PHI_GUARD_AUDIT_H

#include "postgres.h"

#include "lib/stringinfo.h"

/* ---- the request context's part of every record (who-fields) ---- */

/* Filled by the provider; NULL (or "") where the context has no value. */
typedef struct AuditContextFields
{
	const char *app_user;		/* the end user (the token's sub) */
	const char *tenant;
	const char *purpose;
} AuditContextFields;

typedef void (*AuditContextProvider) (AuditContextFields *fields);

/*
 * Register the function that fills the context's fields whenever a record
 * captures who acted (src/context does, from _PG_init).  Without one the
 * fields are null.  The provider must not fail or access the database.
 */
extern void audit_set_context_provider(AuditContextProvider provider);

/* ---- writing entries (audit_write.c, audit_record.c) ---- */

/*
 * Write one entry about this session's action, in this transaction (it
 * rolls back with it).  table, row_key, columns, detail may be NULL;
 * row_key, columns and detail are JSON fragments built by the caller.
 */
extern void audit_write_one(const char *kind, const char *table,
							const char *row_key, const char *columns,
							const char *detail);

/* Append s as a JSON string, or null when s is NULL or empty. */
extern void audit_json_string(StringInfo buf, const char *s);

/* ---- access events (audit_access.c): written even when the transaction rolls back ---- */

#define AUDIT_ACCESS_DECRYPT 'd'	/* key_id, key_name: the data key */
#define AUDIT_ACCESS_DETOKENIZE 't' /* key_id, key_name: the domain's key */
#define AUDIT_ACCESS_DETOKENIZE_MISS 'm'
#define AUDIT_ACCESS_BREAK_GLASS 'b'	/* key_id: grant id, key_name: table */
#define AUDIT_ACCESS_CONTEXT_REJECTED 'r'	/* key_name: the reason */
#define AUDIT_ACCESS_TOKENIZE 'k'	/* key_id: hash of the domain, key_name: the domain */

/*
 * Count one access of kind to key_id; counts become one entry per (kind,
 * key) and statement.  key_name is copied.
 */
extern void audit_access_note(char kind, uint32 key_id, const char *key_name);

/* ---- start-up (from _PG_init when preloaded) ---- */

extern int	phi_guard_audit_seal_interval;	/* ms, the worker's sealing period */

extern void audit_shmem_init(void); /* shared memory of the access queues */
extern void audit_access_init(void);	/* statement and transaction hooks */

#endif
