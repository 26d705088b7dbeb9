/*
 * xact.c — one transaction callback for phi_guard, calling the functions
 * registered with xact_on_end at commit, abort and PREPARE TRANSACTION
 * (the request context is dropped, the access counts flushed); and the
 * start and commit of the audit worker's own transactions.
 *
 * State: a fixed array filled by _PG_init, read-only afterwards.  No locks.
 */
#include "postgres.h"

#include "access/xact.h"
#include "pgstat.h"
#include "utils/snapmgr.h"

#include "common/xact.h"

#define XACT_END_MAX 4

static XactEndFunction at_end[XACT_END_MAX];
static int	n_at_end = 0;

static void
xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PREPARE:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_PARALLEL_ABORT:
			for (int i = 0; i < n_at_end; i++)
				at_end[i] ();
			break;
		default:
			break;
	}
}

void
xact_on_end(XactEndFunction fn)
{
	if (n_at_end == XACT_END_MAX)
		elog(ERROR, "phi_guard: too many end-of-transaction functions");
	if (n_at_end == 0)
		RegisterXactCallback(xact_callback, NULL);
	at_end[n_at_end++] = fn;
}

void
xact_begin_background(const char *activity)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	pgstat_report_activity(STATE_RUNNING, activity);
}

void
xact_commit_background(void)
{
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);
}
