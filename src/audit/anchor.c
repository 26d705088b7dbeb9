/*
 * anchor.c — external anchoring of the audit chain (SPEC §8): after a
 * seal, phi_guard.audit_anchor_command receives the database's new
 * phi_audit_digest() JSON on its standard input, like archive_command,
 * so that a copy of the chain's head lives where a superuser of this
 * server cannot rewrite it.
 *
 * Two halves meet in a small shared record per database ("anchor due"):
 *  - the audit worker (worker.c), after each seal round, reads the newest
 *    block number; when it is newer than the block the record holds, it
 *    reads phi_audit_digest() (the same object the SQL function returns,
 *    as text) in a short transaction of its own and puts it in the record;
 *  - the launcher (launcher.c), which never waits for anything that can
 *    hang, starts the command for each due record in a child process of
 *    its own (a new process group: /bin/sh -c), writes the digest and a
 *    newline to its standard input and goes on; each round it reaps the
 *    commands that ended.  A SIGCHLD handler sets its latch.
 * So neither writers, nor the worker's writing of access entries, nor the
 * launcher's scheduling of workers ever waits for a command.
 *
 * Invariants.  At most one command per database runs at a time, and a
 * command always gets the newest digest due: blocks are anchored in
 * increasing order.  The digest is cumulative (block hash chained to every
 * earlier block, entries counted from block 1), so when several blocks
 * were sealed while a command failed or ran, anchoring the newest covers
 * those in between.  A failure (non-zero exit, a signal, no process) is a
 * WARNING naming the exit status, never the digest, and is retried with
 * the newest digest after 1, 2, 4 ... 60 s; a command that runs longer
 * than phi_guard.audit_anchor_timeout is killed (its whole process group)
 * and retried.  Anchoring is at least once: the records are in shared
 * memory, so after a restart the worker's first seal round makes the
 * newest block due again, and a block may be anchored twice (harmless).
 * A block that phi_audit_seal() sealed in a user's transaction is anchored
 * after the worker's next seal round.
 *
 * Locking: AnchorShared.lock guards every record; never held across a
 * transaction, a fork or a log message.  The children and their state are
 * the launcher's own (AnchorRun); a launcher that exits kills the commands
 * it started (on_proc_exit), and its successor starts afresh from the
 * records.  Records of as many databases as phi_guard.max_active_databases
 * are kept; one whose newest digest is anchored is reused for another
 * database when needed.
 */
#include "postgres.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "audit/anchor.h"
#include "audit/audit.h"
#include "audit/shmem.h"
#include "common/catalog.h"
#include "common/spi.h"
#include "common/xact.h"

/* phi_audit_digest()'s text is about 230 bytes; room to spare */
#define ANCHOR_DIGEST_LEN 512
#define ANCHOR_MAX_RUNNING 4	/* commands running at once, all databases */
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000

char	   *phi_guard_audit_anchor_command = NULL;
int			phi_guard_audit_anchor_timeout = 60000;

/* The anchoring state of one database. */
typedef struct AnchorDb
{
	Oid			dboid;			/* InvalidOid: a free record */
	int64		due;			/* block of digest; 0: none since start */
	int64		anchored;		/* newest block a command took; 0: none */
	bool		running;		/* the launcher runs a command for it */
	int			failures;		/* in a row, for the backoff */
	TimestampTz retry_at;		/* no new command before */
	char		dbname[NAMEDATALEN];
	char		digest[ANCHOR_DIGEST_LEN];	/* phi_audit_digest() of block due */
} AnchorDb;

typedef struct AnchorShared
{
	LWLock	   *lock;
	int			ndbs;
	AnchorDb	dbs[FLEXIBLE_ARRAY_MEMBER];
} AnchorShared;

/* A command the launcher started. */
typedef struct AnchorRun
{
	pid_t		pid;			/* 0: a free entry */
	int			rec;			/* its record */
	int64		block;
	TimestampTz started;
	bool		killed;			/* timed out: killed, not reaped yet */
} AnchorRun;

static AnchorShared *anchor_shared = NULL;
static AnchorRun runs[ANCHOR_MAX_RUNNING];

static shmem_request_hook_type prev_shmem_request = NULL;
static shmem_startup_hook_type prev_shmem_startup = NULL;

static Size
anchor_size(void)
{
	return add_size(offsetof(AnchorShared, dbs),
					mul_size(phi_guard_max_active_databases, sizeof(AnchorDb)));
}

static void
anchor_shmem_request(void)
{
	if (prev_shmem_request)
		prev_shmem_request();
	RequestAddinShmemSpace(anchor_size());
	RequestNamedLWLockTranche("phi_guard audit anchor", 1);
}

static void
anchor_shmem_startup(void)
{
	bool		found;
	AnchorShared *s;

	if (prev_shmem_startup)
		prev_shmem_startup();
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	s = ShmemInitStruct("phi_guard audit anchor", anchor_size(), &found);
	if (!found)
	{
		s->lock = &(GetNamedLWLockTranche("phi_guard audit anchor"))->lock;
		s->ndbs = phi_guard_max_active_databases;
		memset(s->dbs, 0, s->ndbs * sizeof(AnchorDb));
	}
	LWLockRelease(AddinShmemInitLock);
	anchor_shared = s;
}

void
audit_anchor_init(void)
{
	prev_shmem_request = shmem_request_hook;
	shmem_request_hook = anchor_shmem_request;
	prev_shmem_startup = shmem_startup_hook;
	shmem_startup_hook = anchor_shmem_startup;
}

/* The record of dboid, or -1 (the lock held). */
static int
record_find(Oid dboid)
{
	for (int i = 0; i < anchor_shared->ndbs; i++)
		if (anchor_shared->dbs[i].dboid == dboid)
			return i;
	return -1;
}

/*
 * The record of dboid, claiming a free one or one with nothing left to
 * anchor when it has none; -1 when every record has work (the lock held
 * exclusively).
 */
static int
record_claim(Oid dboid)
{
	int			i = record_find(dboid);

	if (i >= 0)
		return i;
	for (i = 0; i < anchor_shared->ndbs; i++)
	{
		AnchorDb   *r = &anchor_shared->dbs[i];

		if (r->dboid == InvalidOid || (!r->running && r->due <= r->anchored))
		{
			memset(r, 0, sizeof(*r));
			r->dboid = dboid;
			return i;
		}
	}
	return -1;
}

/* ---- the worker's half ---- */

/*
 * In a transaction of its own: when the database's newest block is newer
 * than known, copy its phi_audit_digest() text into digest and the
 * database's name into dbname, and return the block; else 0.  Takes no
 * lock it would wait for (a table locked against readers: 0, tried again
 * after the next seal round).  Needs the 0.3.0 tables.
 */
static int64
read_digest(int64 known, char *digest, char *dbname)
{
	Oid			block_rel,
				checkpoint_rel;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(known)};
	int64		block = 0;

	xact_begin_background("reading the audit digest to anchor");
	block_rel = catalog_relid("audit_block");
	checkpoint_rel = catalog_relid("audit_checkpoint");
	if (OidIsValid(block_rel) && OidIsValid(checkpoint_rel) &&
		ConditionalLockRelationOid(block_rel, AccessShareLock) &&
		ConditionalLockRelationOid(checkpoint_rel, AccessShareLock))
	{
		SPI_connect();

		/*
		 * The uncorrelated condition is a one-time filter: the digest (which
		 * sums every block's entries) is read only when a block is new.
		 */
		(void) spi_run("SELECT d::pg_catalog.text, "
					   "(d OPERATOR(pg_catalog.->>) 'block')::pg_catalog.int8 "
					   "FROM phi_guard.phi_audit_digest() AS d "
					   "WHERE (SELECT pg_catalog.max(b.block_no) FROM phi_guard.audit_block AS b) "
					   "OPERATOR(pg_catalog.>) $1",
					   1, types, values, NULL, false);
		if (SPI_processed > 0)
		{
			bool		isnull;
			char	   *json = TextDatumGetCString(SPI_getbinval(SPI_tuptable->vals[0],
																 SPI_tuptable->tupdesc, 1, &isnull));

			if (strlen(json) < ANCHOR_DIGEST_LEN)
			{
				strlcpy(digest, json, ANCHOR_DIGEST_LEN);
				block = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
													SPI_tuptable->tupdesc, 2, &isnull));
			}
			else
				elog(WARNING, "phi_guard: the audit digest is %zu bytes, too long to anchor",
					 strlen(json));
		}
		SPI_finish();
		if (block > 0)
		{
			char	   *name = get_database_name(MyDatabaseId);

			strlcpy(dbname, name ? name : "", NAMEDATALEN);
		}
	}
	xact_commit_background();
	return block;
}

/* audit_anchor_after_seal (anchor.h) */
void
audit_anchor_after_seal(int64 sealed)
{
	MemoryContext cxt = CurrentMemoryContext;
	char		digest[ANCHOR_DIGEST_LEN];
	char		dbname[NAMEDATALEN];
	int64		known = 0;
	volatile int64 block = 0;
	int			i;

	if (sealed < 0 || anchor_shared == NULL || phi_guard_audit_anchor_command[0] == '\0')
		return;
	LWLockAcquire(anchor_shared->lock, LW_SHARED);
	i = record_find(MyDatabaseId);
	if (i >= 0)
		known = Max(anchor_shared->dbs[i].due, anchor_shared->dbs[i].anchored);
	LWLockRelease(anchor_shared->lock);

	PG_TRY();
	{
		block = read_digest(known, digest, dbname);
	}
	PG_CATCH();
	{
		/* logged, not raised: the worker goes on writing access entries */
		MemoryContextSwitchTo(cxt);
		EmitErrorReport();
		FlushErrorState();
		AbortCurrentTransaction();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	PG_END_TRY();
	if (block <= known)
		return;

	LWLockAcquire(anchor_shared->lock, LW_EXCLUSIVE);
	i = record_claim(MyDatabaseId);
	if (i >= 0 && block > Max(anchor_shared->dbs[i].due, anchor_shared->dbs[i].anchored))
	{
		AnchorDb   *r = &anchor_shared->dbs[i];

		r->due = block;
		strlcpy(r->digest, digest, ANCHOR_DIGEST_LEN);
		strlcpy(r->dbname, dbname, NAMEDATALEN);
	}
	LWLockRelease(anchor_shared->lock);
	if (i < 0)
		ereport(WARNING,
				(errmsg("phi_guard cannot anchor audit block %lld of database \"%s\" yet", (long long) block, dbname),
				 errdetail("Every anchoring record holds a digest not anchored yet."),
				 errhint("The block is anchored with a later seal; see the earlier warnings about the anchor command.")));
	else
		audit_wake_launcher();
}

/* ---- the launcher's half ---- */

static void
anchor_sigchld(SIGNAL_ARGS)
{
	int			save_errno = errno;

	SetLatch(MyLatch);
	errno = save_errno;
}

/* on_proc_exit of the launcher: its commands die with it */
static void
kill_commands(int code, Datum arg)
{
	for (int k = 0; k < ANCHOR_MAX_RUNNING; k++)
		if (runs[k].pid > 0)
			(void) kill(-runs[k].pid, SIGKILL);
}

/* audit_anchor_launcher_start (anchor.h) */
void
audit_anchor_launcher_start(void)
{
	memset(runs, 0, sizeof(runs));
	LWLockAcquire(anchor_shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < anchor_shared->ndbs; i++)
		anchor_shared->dbs[i].running = false;
	LWLockRelease(anchor_shared->lock);
	pqsignal(SIGCHLD, anchor_sigchld);
	/* a command that exits before reading its digest fails the write, not us */
	pqsignal(SIGPIPE, SIG_IGN);
	on_proc_exit(kill_commands, (Datum) 0);
}

/*
 * The command to run: phi_guard.audit_anchor_command with %b replaced by
 * the block number, %o by the database's OID and %% by %; any other %
 * stays as it is.  (The database's name, which could hold shell syntax,
 * is only in the environment: PHI_GUARD_DATABASE.)
 */
static char *
command_text(int64 block, Oid dboid)
{
	StringInfoData buf;

	initStringInfo(&buf);
	for (const char *p = phi_guard_audit_anchor_command; *p; p++)
	{
		if (p[0] == '%' && p[1] == 'b')
			appendStringInfo(&buf, INT64_FORMAT, block);
		else if (p[0] == '%' && p[1] == 'o')
			appendStringInfo(&buf, "%u", dboid);
		else if (p[0] == '%' && p[1] == '%')
			appendStringInfoChar(&buf, '%');
		else
		{
			appendStringInfoChar(&buf, *p);
			continue;
		}
		p++;
	}
	return buf.data;
}

/*
 * In the child, between fork and exec: default signal handling, a process
 * group of its own (killed whole on a timeout), the digest pipe as
 * standard input, the database and block in the environment.  Never
 * returns.
 */
static void
child_exec(const char *cmd, int in, const char *dbname, const char *block)
{
	static const int sigs[] = {
		SIGHUP, SIGINT, SIGTERM, SIGQUIT, SIGALRM, SIGPIPE, SIGUSR1, SIGUSR2, SIGCHLD, SIGFPE
	};
	sigset_t	none;

	for (int k = 0; k < lengthof(sigs); k++)
		signal(sigs[k], SIG_DFL);
	(void) setsid();
	if (dup2(in, STDIN_FILENO) < 0)
		_exit(127);
	if (setenv("PHI_GUARD_DATABASE", dbname, 1) != 0 ||
		setenv("PHI_GUARD_BLOCK", block, 1) != 0)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	execl("/bin/sh", "sh", "-c", cmd, (char *) NULL);
	_exit(127);
}

/*
 * Start the command for record r's digest (a copy); returns its pid, or
 * -1 with errno set when no process could be started.  The digest and a
 * newline (a few hundred bytes, below PIPE_BUF) go into the empty pipe at
 * once, so the write never waits, whether or not the command reads them;
 * when they cannot be written whole the command is killed (a failure,
 * retried), so that it never anchors a partial digest.
 */
static pid_t
command_start(const AnchorDb *r)
{
	char	   *cmd = command_text(r->due, r->dboid);
	char		block[32];
	int			fds[2];
	sigset_t	all,
				old;
	pid_t		pid;
	int			save_errno;

	snprintf(block, sizeof(block), INT64_FORMAT, r->due);
	if (pipe2(fds, O_CLOEXEC) != 0)
		return -1;
	fflush(NULL);
	/* no handler of this process may run in the child before exec */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &old);
	pid = fork();
	if (pid == 0)
		child_exec(cmd, fds[0], r->dbname, block);
	save_errno = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	close(fds[0]);
	if (pid > 0)
	{
		char		line[ANCHOR_DIGEST_LEN + 1];
		size_t		len = strlen(r->digest);

		memcpy(line, r->digest, len);
		line[len++] = '\n';
		/* (the group exists once the child called setsid) */
		if (write(fds[1], line, len) != (ssize_t) len && kill(-pid, SIGKILL) != 0)
			(void) kill(pid, SIGKILL);
	}
	close(fds[1]);
	pfree(cmd);
	errno = save_errno;
	return pid;
}

/* The retry delay after failures failures in a row. */
static int
backoff_ms(int failures)
{
	return Min(RETRY_MIN_MS << Min(failures - 1, 6), RETRY_MAX_MS);
}

/*
 * Command run k ended with status (or could not start: status -1, errno
 * set): record the outcome and free the run.
 */
static void
command_done(int k, int status, TimestampTz now)
{
	AnchorRun  *run = &runs[k];
	AnchorDb   *r = &anchor_shared->dbs[run->rec];
	bool		ok = status == 0;
	int			failures,
				delay = 0;
	char		dbname[NAMEDATALEN];
	char	   *why = status < 0 ? pstrdup(strerror(errno)) : wait_result_to_str(status);

	LWLockAcquire(anchor_shared->lock, LW_EXCLUSIVE);
	r->running = false;
	if (ok)
	{
		r->anchored = Max(r->anchored, run->block);
		failures = r->failures;
		r->failures = 0;
		r->retry_at = 0;
	}
	else
	{
		failures = ++r->failures;
		delay = backoff_ms(failures);
		r->retry_at = TimestampTzPlusMilliseconds(now, delay);
	}
	memcpy(dbname, r->dbname, NAMEDATALEN);
	LWLockRelease(anchor_shared->lock);

	if (ok && failures > 0)
		ereport(LOG,
				(errmsg_plural("phi_guard audit anchor command succeeded for block %lld of database \"%s\" after %d failed attempt",
							   "phi_guard audit anchor command succeeded for block %lld of database \"%s\" after %d failed attempts",
							   failures, (long long) run->block, dbname, failures)));
	else if (!ok && run->killed)
		ereport(WARNING,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("phi_guard audit anchor command timed out for block %lld of database \"%s\"",
						(long long) run->block, dbname),
				 errdetail("It ran longer than phi_guard.audit_anchor_timeout (%d ms) and was killed.",
						   phi_guard_audit_anchor_timeout),
				 errhint("It is retried in %d s with the newest digest.", delay / 1000)));
	else if (!ok)
		ereport(WARNING,
				(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
				 errmsg("phi_guard audit anchor command failed for block %lld of database \"%s\"",
						(long long) run->block, dbname),
				 errdetail("The %s.", why),
				 errhint("It is retried in %d s with the newest digest.", delay / 1000)));
	pfree(why);
	run->pid = 0;
}

/* Reap the commands that ended; kill those past the timeout. */
static void
commands_reap(TimestampTz now, TimestampTz *next)
{
	for (int k = 0; k < ANCHOR_MAX_RUNNING; k++)
	{
		AnchorRun  *run = &runs[k];
		int			status;
		TimestampTz deadline;

		if (run->pid <= 0)
			continue;
		if (waitpid(run->pid, &status, WNOHANG) == run->pid)
		{
			command_done(k, status, now);
			continue;
		}
		deadline = TimestampTzPlusMilliseconds(run->started, phi_guard_audit_anchor_timeout);
		if (!run->killed && now >= deadline)
		{
			(void) kill(-run->pid, SIGKILL);
			run->killed = true;
		}
		else if (!run->killed)
			*next = Min(*next, deadline);
	}
}

/* audit_anchor_round (anchor.h) */
void
audit_anchor_round(TimestampTz now, TimestampTz *next)
{
	AnchorShared *s = anchor_shared;

	commands_reap(now, next);
	if (phi_guard_audit_anchor_command[0] == '\0')
		return;
	for (int k = 0; k < ANCHOR_MAX_RUNNING; k++)
	{
		AnchorDb	copy;
		int			rec = -1;

		if (runs[k].pid > 0)
			continue;
		LWLockAcquire(s->lock, LW_EXCLUSIVE);
		for (int i = 0; i < s->ndbs && rec < 0; i++)
		{
			AnchorDb   *r = &s->dbs[i];

			if (r->dboid == InvalidOid || r->running || r->due <= r->anchored)
				continue;
			if (now < r->retry_at)
				*next = Min(*next, r->retry_at);
			else
				rec = i;
		}
		if (rec >= 0)
		{
			s->dbs[rec].running = true;
			copy = s->dbs[rec];
		}
		LWLockRelease(s->lock);
		if (rec < 0)
			break;
		runs[k].rec = rec;
		runs[k].block = copy.due;
		runs[k].started = now;
		runs[k].killed = false;
		runs[k].pid = command_start(&copy);
		if (runs[k].pid < 0)
			command_done(k, -1, now);
		else
			*next = Min(*next, TimestampTzPlusMilliseconds(now, phi_guard_audit_anchor_timeout));
	}
}
