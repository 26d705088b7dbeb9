/*
 * refs.c — row references (SPEC §7): which rows an access revealed.
 *
 * A reference names the row of a value: the aad it was decrypted with
 * (applications bind a value to its row with it, e.g. "patients.ssn:42"),
 * "ct:" and the hex of its nonce when it had none, "tok:<domain>:<token>"
 * for tokens; one over REFS_MAX_BYTES bytes of UTF-8 is recorded as
 * "sha256:" and the hex of its SHA-256.  The text is built only for the
 * references an entry lists: the first phi_guard.access_rows_max distinct
 * ones of an access, found again by a set that compares their bytes
 * (behind a 64 kbit filter that rejects most others at once), so the list
 * is exact.  Every other call costs a 64-bit fingerprint (a hash
 * under a random per-backend key) appended to an array; the array is
 * deduplicated when the access is counted — by the fingerprints' top byte
 * into 256 buckets, each small enough for a set in the CPU's cache — so
 * that a statement decrypting a million rows pays a few tens of
 * nanoseconds per row.  Two different unlisted references count as one
 * only if their fingerprints collide (about n^2 / 2^65 for n of them).
 * The array holds at most OTHERS_MAX fingerprints (32 MB); beyond, the
 * others are counted as new (an upper bound, flagged in the entry).  One
 * array of up to OTHERS_KEEP fingerprints is kept for the next access, so
 * a backend that reads large statements does not fault in fresh memory
 * each time.
 *
 * State: backend-local only (the key and the kept array, in
 * TopMemoryContext); the sets live in the caller's memory context.
 */
#include "postgres.h"

#include "common/hashfn.h"		/* PostgreSQL's src/common, not ours */
#include "mb/pg_wchar.h"
#include "utils/json.h"
#include "utils/memutils.h"

#include "audit/refs.h"
#include "common/errors.h"
#include "common/format.h"
#include "core/chain.h"

#define REFS_MAX_BYTES 128		/* longer references are hashed */
#define LISTED_FIRST_SLOTS 64
#define OTHERS_FIRST ((Size) 1 << 16)
#define OTHERS_KEEP ((Size) 1 << 20)
#define OTHERS_MAX ((Size) 1 << 22)

static uint64 seeds[2];			/* the fingerprint key; 0, 0: not drawn yet */

/* the kept array of unlisted fingerprints, and its scratch */
static uint64 *kept_others = NULL;
static uint64 *kept_scratch = NULL;
static Size kept_room = 0;

/* A 64-bit finalizer (MurmurHash3's). */
static inline uint64
mix64(uint64 h)
{
	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

uint64
refs_fingerprint(const AuditRowRef *ref)
{
	uint64		h;

	if (unlikely(seeds[0] == 0 && seeds[1] == 0))
	{
		if (!pg_strong_random(seeds, sizeof(seeds)))
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not generate a random key for row references")));
		seeds[0] |= 1;
	}
	if (ref->kind == AUDIT_REF_NONCE && ref->len == 12)
	{
		/* a nonce is random already: mixing it with the key is enough */
		uint64		lo;
		uint32		hi;

		memcpy(&lo, ref->data, 8);
		memcpy(&hi, ref->data + 8, 4);
		h = mix64(lo ^ seeds[0]) ^ mix64(hi ^ seeds[1]);
	}
	else
		h = hash_bytes_extended((const unsigned char *) ref->data, ref->len,
								seeds[0] ^ (seeds[1] * (uint64) (ref->kind + 1)));
	return h != 0 ? h : 1;		/* 0 marks an empty slot */
}

/* The slot of fp in the listed set: where it is, or the empty one to take. */
static uint32
listed_slot(const AccessRefs *r, const AuditRowRef *ref, uint64 fp)
{
	uint32		i;

	for (i = (uint32) fp & r->mask; r->slots[i] != 0; i = (i + 1) & r->mask)
	{
		int			k = r->listed_at[i];

		if (r->slots[i] == fp && r->raw_len[k] == ref->len + 1 &&
			r->raw[k][0] == (char) ref->kind &&
			memcmp(r->raw[k] + 1, ref->data, ref->len) == 0)
			break;
	}
	return i;
}

/* The filter bit of fp. */
#define FILTER_BIT(fp) (((fp) >> 40) & (REFS_FILTER_BITS - 1))

bool
refs_is_listed(const AccessRefs *r, const AuditRowRef *ref, uint64 fp)
{
	/* most references of a large statement are not listed: one bit says so */
	if (r->filter == NULL || (r->filter[FILTER_BIT(fp) / 64] & (UINT64CONST(1) << (FILTER_BIT(fp) % 64))) == 0)
		return false;
	return r->slots[listed_slot(r, ref, fp)] != 0;
}

/* The listed set at twice the slots (or its first slots). */
static void
listed_grow(AccessRefs *r, MemoryContext cxt)
{
	uint32		old = r->slots ? r->mask + 1 : 0;
	uint32		size = old ? old * 2 : LISTED_FIRST_SLOTS;
	uint64	   *slots = r->slots;
	int		   *at = r->listed_at;

	r->slots = MemoryContextAllocZero(cxt, size * sizeof(uint64));
	r->listed_at = MemoryContextAlloc(cxt, size * sizeof(int));
	r->mask = size - 1;
	for (uint32 k = 0; k < old; k++)
	{
		uint32		i;

		if (slots[k] == 0)
			continue;
		for (i = (uint32) slots[k] & r->mask; r->slots[i] != 0; i = (i + 1) & r->mask)
			;
		r->slots[i] = slots[k];
		r->listed_at[i] = at[k];
	}
	if (old)
	{
		pfree(slots);
		pfree(at);
	}
}

void
refs_list(AccessRefs *r, MemoryContext cxt, const AuditRowRef *ref, uint64 fp,
		  const char *json)
{
	uint32		i;
	char	   *raw;

	/*
	 * At most a quarter full: every unlisted reference is looked up here
	 * first, and misses then take one or two probes.
	 */
	if (r->slots == NULL || (uint32) r->listed + 1 > (r->mask + 1) / 4)
		listed_grow(r, cxt);
	if (r->filter == NULL)
		r->filter = MemoryContextAllocZero(cxt, REFS_FILTER_BITS / 8);
	r->filter[FILTER_BIT(fp) / 64] |= UINT64CONST(1) << (FILTER_BIT(fp) % 64);
	if (r->listed == r->raw_room)
	{
		r->raw_room = Max(2 * r->raw_room, 16);
		r->raw = r->raw ? repalloc(r->raw, r->raw_room * sizeof(char *))
			: MemoryContextAlloc(cxt, r->raw_room * sizeof(char *));
		r->raw_len = r->raw_len ? repalloc(r->raw_len, r->raw_room * sizeof(int))
			: MemoryContextAlloc(cxt, r->raw_room * sizeof(int));
	}
	raw = MemoryContextAlloc(cxt, ref->len + 1);
	raw[0] = (char) ref->kind;
	memcpy(raw + 1, ref->data, ref->len);
	r->raw[r->listed] = raw;
	r->raw_len[r->listed] = ref->len + 1;
	i = listed_slot(r, ref, fp);
	r->slots[i] = fp;
	r->listed_at[i] = r->listed;
	r->listed++;

	if (r->json.data == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(cxt);

		initStringInfo(&r->json);
		MemoryContextSwitchTo(old);
	}
	else
		appendStringInfoChar(&r->json, ',');
	appendStringInfoString(&r->json, json);
}

/*
 * Remove repeats from a[0..n) (fingerprints, never 0), using tmp of n
 * entries; returns how many distinct ones are left at the start of a.
 * By the top byte into 256 buckets, then each bucket through an
 * open-addressing set sized for it.
 */
static Size
dedupe(uint64 *a, Size n, uint64 *tmp)
{
	Size		start[257];
	Size		pos[256];
	Size		biggest = 0;
	Size		out = 0;
	Size		room = 16;
	uint64	   *set;

	memset(start, 0, sizeof(start));
	for (Size k = 0; k < n; k++)
		start[(a[k] >> 56) + 1]++;
	for (int b = 0; b < 256; b++)
	{
		biggest = Max(biggest, start[b + 1]);
		start[b + 1] += start[b];
		pos[b] = start[b];
	}
	for (Size k = 0; k < n; k++)
		tmp[pos[a[k] >> 56]++] = a[k];
	while (room < 2 * biggest)
		room *= 2;
	set = palloc(room * sizeof(uint64));
	for (int b = 0; b < 256; b++)
	{
		Size		m = 16;

		if (start[b + 1] == start[b])
			continue;
		while (m < 2 * (start[b + 1] - start[b]))
			m *= 2;
		memset(set, 0, m * sizeof(uint64));
		for (Size k = start[b]; k < start[b + 1]; k++)
		{
			uint64		v = tmp[k];
			Size		i;

			for (i = v & (m - 1); set[i] != 0 && set[i] != v; i = (i + 1) & (m - 1))
				;
			if (set[i] == 0)
			{
				set[i] = v;
				a[out++] = v;
			}
		}
	}
	pfree(set);
	return out;
}

/* Room for one more unlisted fingerprint: false when there is none. */
static bool
others_make_room(AccessRefs *r)
{
	if (r->others == NULL)
	{
		if (kept_others != NULL)
		{
			r->others = kept_others;
			r->scratch = kept_scratch;
			r->others_room = kept_room;
			kept_others = kept_scratch = NULL;
			kept_room = 0;
		}
		else
		{
			r->others_room = OTHERS_FIRST;
			r->others = MemoryContextAlloc(TopMemoryContext, r->others_room * sizeof(uint64));
			r->scratch = MemoryContextAlloc(TopMemoryContext, r->others_room * sizeof(uint64));
		}
		return true;
	}
	if (r->full)
		return false;
	r->nothers = dedupe(r->others, r->nothers, r->scratch);
	if (r->nothers <= r->others_room / 2)
		return true;
	if (r->others_room >= OTHERS_MAX)
	{
		/* what room is left after the repeats is used, then no more */
		r->full = true;
		return r->nothers < r->others_room;
	}
	r->others_room *= 2;
	r->others = repalloc(r->others, r->others_room * sizeof(uint64));
	r->scratch = repalloc(r->scratch, r->others_room * sizeof(uint64));
	return true;
}

void
refs_other_full(AccessRefs *r, uint64 fp)
{
	if (!others_make_room(r))
	{
		r->beyond++;
		return;
	}
	r->others[r->nothers++] = fp;
}

int64
refs_others_distinct(AccessRefs *r, bool *exact)
{
	if (r->nothers > 0)
		r->nothers = dedupe(r->others, r->nothers, r->scratch);
	*exact = r->beyond == 0;
	return (int64) r->nothers + r->beyond;
}

void
refs_release(AccessRefs *r)
{
	if (r->others == NULL)
		return;
	if (kept_others == NULL && r->others_room <= OTHERS_KEEP)
	{
		kept_others = r->others;
		kept_scratch = r->scratch;
		kept_room = r->others_room;
	}
	else
	{
		pfree(r->others);
		pfree(r->scratch);
	}
	r->others = r->scratch = NULL;
	r->nothers = r->others_room = 0;
	r->full = false;
}

char *
refs_json(const AuditRowRef *ref)
{
	StringInfoData utf8;
	StringInfoData out;
	char	   *text;

	/* the reference as UTF-8 */
	initStringInfo(&utf8);
	switch (ref->kind)
	{
		case AUDIT_REF_AAD:
			appendBinaryStringInfo(&utf8, ref->data, ref->len);
			break;
		case AUDIT_REF_NONCE:
			appendStringInfoString(&utf8, "ct:");
			format_hex(&utf8, (const uint8 *) ref->data, ref->len);
			break;
		case AUDIT_REF_TOKEN:
			appendStringInfo(&utf8, "tok:%s:", ref->domain);
			appendBinaryStringInfo(&utf8, ref->data, ref->len);
			text = pg_server_to_any(utf8.data, utf8.len, PG_UTF8);
			if (text != utf8.data)
			{
				resetStringInfo(&utf8);
				appendStringInfoString(&utf8, text);
			}
			break;
	}
	if (utf8.len > REFS_MAX_BYTES)
	{
		uint8		hash[PHIC_HASH_LEN];
		phic_status st = phic_sha256(utf8.data, utf8.len, hash);

		if (st != PHIC_OK)
			errors_raise_core(st, "hash a row reference");
		resetStringInfo(&utf8);
		appendStringInfoString(&utf8, "sha256:");
		format_hex(&utf8, hash, PHIC_HASH_LEN);
	}
	/* as JSON text in the database encoding */
	text = pg_any_to_server(utf8.data, utf8.len, PG_UTF8);
	initStringInfo(&out);
	escape_json(&out, text);
	if (text != utf8.data)
		pfree(text);
	pfree(utf8.data);
	return out.data;
}
