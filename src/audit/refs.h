/*
 * refs.h — the row references of one access (refs.c); internal to
 * src/audit.
 */
#ifndef PHI_GUARD_AUDIT_REFS_H
#define PHI_GUARD_AUDIT_REFS_H

#include "postgres.h"

#include "lib/stringinfo.h"

#include "audit/audit.h"

/*
 * The references of one access (statement, kind and key), in backend
 * memory: the listed ones — the first distinct ones, up to the cap — in
 * an open-addressing set that compares them byte for byte, with their
 * JSON text; the fingerprints of all the others, deduplicated when they
 * are counted.  All zero: empty.
 */
#define REFS_FILTER_BITS 65536	/* a bit per fingerprint's bits 40..55 */

typedef struct AccessRefs
{
	uint64	   *filter;			/* REFS_FILTER_BITS: which fingerprints may be listed */
	uint64	   *slots;			/* fingerprint of a listed reference; 0: empty */
	int		   *listed_at;		/* per slot: its number among the listed */
	uint32		mask;			/* number of slots - 1 */
	char	  **raw;			/* per listed reference: kind byte, then its bytes */
	int		   *raw_len;
	int			raw_room;
	int			listed;
	StringInfoData json;		/* "ref","ref",... (no brackets); data NULL: none */
	uint64	   *others;			/* fingerprints of the others, repeats included */
	uint64	   *scratch;		/* as long as others: for deduplicating */
	Size		nothers;
	Size		others_room;
	bool		full;			/* the array is as large as it may grow */
	int64		beyond;			/* others not kept (the array was full): counted as new */
} AccessRefs;

/* ref's fingerprint: a 64-bit hash under this backend's random key. */
extern uint64 refs_fingerprint(const AuditRowRef *ref);

/* Whether ref (fingerprint fp) is one of r's listed references. */
extern bool refs_is_listed(const AccessRefs *r, const AuditRowRef *ref, uint64 fp);

/*
 * The reference's JSON string, palloc'd: the aad, "ct:" + the nonce's hex,
 * or "tok:<domain>:<token>"; over 128 bytes of UTF-8, "sha256:" + the hex
 * of their SHA-256; in the database encoding.  At most 6 * 128 + 2 bytes.
 */
extern char *refs_json(const AuditRowRef *ref);

/* List ref (fingerprint fp, JSON string json), new to r (memory from cxt). */
extern void refs_list(AccessRefs *r, MemoryContext cxt, const AuditRowRef *ref,
					  uint64 fp, const char *json);

/* The slow part of refs_other: room to be made first. */
extern void refs_other_full(AccessRefs *r, uint64 fp);

/* Count one more unlisted reference (fingerprint fp) of r. */
static inline void
refs_other(AccessRefs *r, uint64 fp)
{
	if (likely(r->nothers < r->others_room))
		r->others[r->nothers++] = fp;
	else
		refs_other_full(r, fp);
}

/*
 * How many distinct unlisted references r has; *exact false when some
 * could not be kept to tell repeats apart (counted as new).
 */
extern int64 refs_others_distinct(AccessRefs *r, bool *exact);

/* Whether r has no reference at all. */
#define refs_empty(r) ((r)->listed == 0 && (r)->nothers == 0 && (r)->beyond == 0)

/* Give back r's memory for the unlisted ones (kept for the next access). */
extern void refs_release(AccessRefs *r);

#endif
