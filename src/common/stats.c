/*
 * stats.c — counters since server start of encryptions, decryptions,
 * tokenizations, blind indexes, refusals and keyring cache use, and the
 * SQL function phi_stats() behind the phi_guard.stats view.
 *
 * Shared memory (requested through shmem_request_hook, set up in
 * shmem_startup_hook, both chained; only when preloaded): one slot of
 * PHI_STAT_COUNT counters per PGPROC (MaxBackends + auxiliary processes +
 * prepared-transaction slots), each slot on its own cache lines.  Only the
 * process owning a PGPROC writes its slot (stats.h), so counting takes no
 * lock and no read-modify-write atomic; phi_stats() reads every slot with
 * atomic 64-bit reads, so a sum is at most a few increments behind.
 * Nothing else is shared, and no counter names a key, value or user.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/twophase.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "utils/timestamp.h"

#include "common/errors.h"
#include "common/stats.h"

typedef struct StatsShared
{
	TimestampTz since;			/* when these counters started */
	int			nslots;
	/* followed by nslots slots of SLOT_BYTES each, cache-line aligned */
} StatsShared;

#define SLOT_BYTES TYPEALIGN(PG_CACHE_LINE_SIZE, sizeof(pg_atomic_uint64) * PHI_STAT_COUNT)
#define HEADER_BYTES TYPEALIGN(PG_CACHE_LINE_SIZE, sizeof(StatsShared))

pg_atomic_uint64 *stats_mine = NULL;
bool		stats_attached = false;

static StatsShared *stats_shared = NULL;
static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

static int
slots_wanted(void)
{
	return MaxBackends + NUM_AUXILIARY_PROCS + max_prepared_xacts;
}

/* Header and slots, plus room to align the start to a cache line. */
static Size
stats_size(void)
{
	return add_size(PG_CACHE_LINE_SIZE,
					add_size(HEADER_BYTES, mul_size(slots_wanted(), SLOT_BYTES)));
}

static pg_atomic_uint64 *
slot(int i)
{
	return (pg_atomic_uint64 *) ((char *) stats_shared + HEADER_BYTES + (Size) i * SLOT_BYTES);
}

static void
shmem_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(stats_size());
}

static void
shmem_startup(void)
{
	bool		found;
	char	   *raw;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	raw = ShmemInitStruct("phi_guard stats", stats_size(), &found);
	stats_shared = (StatsShared *) TYPEALIGN(PG_CACHE_LINE_SIZE, raw);
	if (!found)
	{
		stats_shared->since = GetCurrentTimestamp();
		stats_shared->nslots = slots_wanted();
		for (int i = 0; i < stats_shared->nslots; i++)
			for (int s = 0; s < PHI_STAT_COUNT; s++)
				pg_atomic_init_u64(&slot(i)[s], 0);
	}
	LWLockRelease(AddinShmemInitLock);
}

/*
 * First count in this process: find its slot.  Stays detached (counting
 * nothing) when not preloaded; waits for a PGPROC before deciding.
 */
void
stats_attach(void)
{
	if (stats_shared == NULL)
	{
		stats_attached = true;
		return;
	}
	if (MyProc == NULL)
		return;
	stats_attached = true;
	if (MyProc->pgprocno >= 0 && MyProc->pgprocno < stats_shared->nslots)
		stats_mine = slot(MyProc->pgprocno);
}

/* From _PG_init when preloaded. */
void
stats_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = shmem_startup;
}

PG_FUNCTION_INFO_V1(phi_guard_stats);

/*
 * phi_stats() returns one row: each counter summed over every process,
 * then the time they started counting.  PH003 when not preloaded: there
 * are no counters, and zeros would read as "nothing happened".
 */
Datum
phi_guard_stats(PG_FUNCTION_ARGS)
{
	TupleDesc	desc;
	Datum		values[PHI_STAT_COUNT + 1];
	bool		nulls[PHI_STAT_COUNT + 1] = {0};
	uint64		sum[PHI_STAT_COUNT] = {0};

	errors_require_preloaded("The counters live in shared memory, which only a preloaded library has.");
	if (stats_shared == NULL)
		elog(ERROR, "phi_guard: stats shared memory is missing");
	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "phi_guard: phi_stats must return a row");
	desc = BlessTupleDesc(desc);
	if (desc->natts != PHI_STAT_COUNT + 1)
		elog(ERROR, "phi_guard: phi_stats has an unexpected shape");

	for (int i = 0; i < stats_shared->nslots; i++)
	{
		pg_atomic_uint64 *c = slot(i);

		for (int s = 0; s < PHI_STAT_COUNT; s++)
			sum[s] += pg_atomic_read_u64(&c[s]);
	}
	for (int s = 0; s < PHI_STAT_COUNT; s++)
		values[s] = Int64GetDatum((int64) Min(sum[s], (uint64) PG_INT64_MAX));
	values[PHI_STAT_COUNT] = TimestampTzGetDatum(stats_shared->since);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(desc, values, nulls)));
}
