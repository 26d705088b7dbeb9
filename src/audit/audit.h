/*
 * audit.h — src/audit: the append-only, hash-chained audit log (SPEC §6).
 *
 * Owns: the canonical record (audit_record.c), the writer that appends
 * entries to phi_guard.audit_log (audit_write.c), the audit trigger and
 * phi_guard.audit_event (audit_trigger.c), the access events of decrypt,
 * masked reads, detokenize, tokenize, break-glass and rejected contexts
 * (audit_access.c) with the row references of what they revealed
 * (refs.c), their queue in shared memory (shmem.c, queue.c), the launcher
 * that starts an audit worker for each database with work (launcher.c)
 * and the worker that writes the queue and seals (worker.c), sealing,
 * verification and the digest (audit_seal.c), and the alerts each seal
 * raises, with the access_denied entries they count (alerts.c).
 *
 * May call: src/core, src/common and PostgreSQL.  Nothing above it: the
 * request context (src/context) is not called; it *provides* the
 * who-fields of every record through audit_set_context_provider below.
 *
 * This header is what the capabilities above use; the files of this
 * folder share their internals through audit/record.h, audit/writer.h,
 * audit/shmem.h, audit/access.h, audit/refs.h, audit/worker.h,
 * audit/seal.h and audit/alerts.h.
 *
 * Access entries are refused rather than lost: when one cannot be recorded
 * (no room in the queue within a bounded wait, no worker can run, no free
 * database slot) the access fails with PH006 before anything is revealed.
 * Entries of accesses that reveal values name the rows they revealed (row
 * references, refs.c: SPEC §7), and in durable mode the first value of an
 * access leaves only once an intent entry naming it is committed.
 */
#ifndef PHI_GUARD_AUDIT_H
#define PHI_GUARD_AUDIT_H

#include "postgres.h"

#include "access/attnum.h"
#include "lib/stringinfo.h"

/* ---- the request context's part of every record (who-fields) ---- */

/* Filled by the provider; NULL (or "") where the context has no value. */
typedef struct AuditContextFields
{
	bool		in_context;		/* a context is set: records carry request_id */
	const char *app_user;		/* the end user (the token's sub) */
	const char *tenant;
	const char *purpose;
	const char *request_id;		/* the token's jti */
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

/*
 * Set by a column migration (src/adopt) around each of its own batch
 * statements, and cleared after it (also on error): the audit trigger
 * writes no entry for an UPDATE of a row of relation relid that changed no
 * user column but attnum (0: none); the migration writes one
 * column_migration entry per batch instead.  Backend-local and set only by
 * C code, never from SQL.  relid InvalidOid: nothing is quiet.
 */
typedef struct AuditQuiet
{
	Oid			relid;
	AttrNumber	attnum;
} AuditQuiet;
extern AuditQuiet audit_quiet;

/* ---- access events (audit_access.c): written even when the transaction rolls back ---- */

#define AUDIT_ACCESS_DECRYPT 'd'	/* key_id, key_name: the data key */
#define AUDIT_ACCESS_DECRYPT_MASKED 'M' /* a masked read that returned the mask */
#define AUDIT_ACCESS_DETOKENIZE 't' /* key_id, key_name: the domain's key */
#define AUDIT_ACCESS_DETOKENIZE_MISS 'm'
#define AUDIT_ACCESS_BREAK_GLASS 'b'	/* key_id: grant id, key_name: table */
#define AUDIT_ACCESS_CONTEXT_REJECTED 'r'	/* key_name: the reason */
#define AUDIT_ACCESS_TOKENIZE 'k'	/* key_id: hash of the domain, key_name: the domain */
#define AUDIT_ACCESS_DENIED 'x'		/* key_name: the rule that refused (audit_denial) */

/*
 * Count one access of kind to key_id; counts become one entry per (kind,
 * key) and statement.  key_name is copied.  Call it before revealing
 * anything: the first call of a key in a statement raises PH006 when the
 * access cannot be recorded.  For accesses that name no row (break-glass
 * use, rejected contexts, failed detokenizations, a tokenize attempt);
 * revealed values go through audit_access_reveal.
 */
extern void audit_access_note(char kind, uint32 key_id, const char *key_name);

/*
 * A refusal of phi_guard's own (42501 of a key access rule or a tenant key,
 * a refused break-glass), just before it is raised: counted in
 * phi_guard.stats and noted as an access_denied entry, which survives the
 * rollback and feeds the repeated_denials alert (alerts.c).  reason names
 * the rule (and key), never a value; it may raise PH006 like
 * audit_access_note.
 */
extern void audit_denial(const char *reason);

/*
 * A row reference (SPEC §7): what names the row of a value revealed.  The
 * text is built only when an entry lists it (refs.c).
 */
typedef enum AuditRefKind
{
	AUDIT_REF_AAD,				/* data: the aad, as UTF-8 */
	AUDIT_REF_NONCE,			/* data: the value's 12-byte nonce */
	AUDIT_REF_TOKEN				/* data: the token, domain: its domain (database encoding) */
} AuditRefKind;

typedef struct AuditRowRef
{
	AuditRefKind kind;
	const char *data;
	int			len;
	const char *domain;			/* AUDIT_REF_TOKEN only, NUL-terminated */
} AuditRowRef;

/*
 * One value of key key_id revealed to the caller, after it was decrypted
 * (or the token made) and before it is returned: counted like
 * audit_access_note (unless counted is false: the caller noted the call
 * already) with its row reference ref.  kind is AUDIT_ACCESS_DECRYPT,
 * _DECRYPT_MASKED, _DETOKENIZE (domain: ref->domain) or _TOKENIZE.  The
 * first reference of an access is made durable first in durable mode (an
 * intent entry, committed by the audit worker), so this may wait; when the
 * access cannot be recorded it raises PH006, after wiping secret[0..
 * secret_len) (the caller's plaintext; NULL: nothing to wipe).
 */
extern void audit_access_reveal(char kind, uint32 key_id, const char *key_name,
								const AuditRowRef *ref, bool counted,
								void *secret, size_t secret_len);

/* ---- settings and start-up (from _PG_init when preloaded) ---- */

extern int	phi_guard_audit_seal_interval;	/* ms, a database's sealing period */
extern int	phi_guard_access_queue_size;	/* access events in shared memory */
extern int	phi_guard_max_active_databases; /* databases active at once */
extern int	phi_guard_access_rows_max;	/* row references an entry lists */
extern int	phi_guard_audit_compact_rows;	/* rows from which a statement's
											 * row entries are compact */
extern int	phi_guard_bulk_disclosure_limit;	/* values a statement may reveal
												 * under a context; 0: no limit */
extern int	phi_guard_access_audit;	/* AUDIT_MODE_DURABLE or _ASYNC */
extern int	phi_guard_standby_access;	/* AUDIT_STANDBY_LOG or _REFUSE */

/* phi_guard.access_audit */
#define AUDIT_MODE_DURABLE 0		/* an intent entry is committed before the first value */
#define AUDIT_MODE_ASYNC 1			/* entries queued, written within a seal interval */
/* phi_guard.standby_access */
#define AUDIT_STANDBY_LOG 0			/* access entries to the server log */
#define AUDIT_STANDBY_REFUSE 1		/* reads refused (PH006) */

/*
 * Shared memory (sized by the two postmaster settings above), the
 * statement and transaction hooks of access events, and the launcher of
 * the audit workers.
 */
extern void audit_init(void);

#endif
