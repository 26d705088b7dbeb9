/*
 * seal.h — sealing committed entries into blocks, the checkpoint that
 * pruning leaves behind (audit_seal.c), verifying (verify.c) and pruning
 * (prune.c); internal to src/audit, except the retention setting and its
 * check, which src/phi_guard.c registers.
 */
#ifndef PHI_GUARD_AUDIT_SEAL_H
#define PHI_GUARD_AUDIT_SEAL_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "utils/guc.h"

#include "core/chain.h"

/*
 * Seal every committed entry below the current horizon into one new
 * block, in a READ COMMITTED transaction.  Returns the entries sealed and
 * sets *horizon to the xid below which everything is now sealed (0 when
 * unknown).  wait: wait for a seal of another transaction to end (a
 * user's phi_audit_seal); else return -1 at once when sealing's locks are
 * taken (the worker).
 */
extern int64 audit_seal(bool wait, uint64 *horizon);

/*
 * Column helpers: an integer column of an SPI row (0 and *isnull when
 * NULL); a 32-byte hash, a bytea datum or a column of an SPI row, copied
 * into dst (false when NULL or of another length).
 */
extern uint64 audit_getu64(HeapTuple tup, TupleDesc desc, int col, bool *isnull);
extern bool audit_hash_datum(uint8 *dst, Datum x, bool isnull);
extern bool audit_copy_hash(uint8 *dst, HeapTuple t, TupleDesc d, int col);

/* Raise 25001 unless the transaction is READ COMMITTED (fn: its name). */
extern void audit_require_read_committed(const char *fn);

/*
 * The last pruned block (phi_guard.audit_checkpoint): the chain's remaining
 * blocks continue from it.  block_no 0 (and a zero hash, 0 entries): never
 * pruned.  entries counts every entry up to and including block_no.
 */
typedef struct AuditCheckpoint
{
	uint64		block_no;
	uint8		hash[PHIC_HASH_LEN];
	uint64		entries;
} AuditCheckpoint;

/*
 * Read the checkpoint into *cp, inside an SPI connection; read_only: with
 * the calling statement's snapshot (else a fresh one).  Returns false when
 * the stored row is malformed (cp then holds what could be read).
 */
extern bool audit_checkpoint_read(AuditCheckpoint *cp, bool read_only);

/* As audit_checkpoint_read, but a malformed checkpoint is an ERROR (XX001). */
extern void audit_checkpoint_require(AuditCheckpoint *cp, bool read_only);

/* phi_guard.audit_min_retention (prune.c): interval text, superuser-set */
#define AUDIT_MIN_RETENTION_DEFAULT "6 years"
extern char *phi_guard_audit_min_retention;
extern bool audit_min_retention_check(char **newval, void **extra, GucSource source);

#endif
