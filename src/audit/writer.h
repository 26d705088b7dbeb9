/*
 * writer.h — appending entries to phi_guard.audit_log in the current
 * transaction (audit_write.c); internal to src/audit.
 */
#ifndef PHI_GUARD_AUDIT_WRITER_H
#define PHI_GUARD_AUDIT_WRITER_H

typedef struct AuditWriter AuditWriter;

/* Open the log for appending (and have this database sealed later). */
extern AuditWriter *audit_writer_open(void);

/* Queue one entry whose record text is record[0..len); returns its id. */
extern int64 audit_writer_add(AuditWriter *w, const char *record, int len);

/* Insert what is queued and close the log. */
extern void audit_writer_close(AuditWriter *w);

#endif
