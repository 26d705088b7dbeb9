/*
 * intent_wal.c — durable intents through the write-ahead log (SPEC §7,
 * phi_guard.access_audit = 'durable').
 *
 * A backend about to reveal the first value of an access queues its intent
 * event as any other (the audit worker writes it to audit_log later) and
 * also writes it to WAL as a record of phi_guard's own resource manager
 * (XLOG_PHI_INTENT), which it flushes before the value leaves: the
 * backends that reveal at once share one flush, as committing transactions
 * do, and none waits for the audit worker.  After committing a batch that
 * holds such intents, the worker logs their access ids (XLOG_PHI_WRITTEN).
 * An intent record is the first reference, then the event's fixed part
 * with its runs of zero bytes packed (zeros_pack).
 *
 * A crash loses the queue, not the WAL.  The physical replication slot
 * INTENT_SLOT keeps every WAL segment from the oldest intent that may not
 * be committed yet: the launcher moves its restart_lsn forward at most
 * once a second, to the smallest of the current insert position and, for
 * each database with intents still queued, the position from which all its
 * intents are committed (AuditDb.intents_safe, set by its worker after a
 * round that wrote everything queued when it began), having flushed WAL
 * first (the workers' commits are asynchronous).  The slot is saved to
 * disk before the WAL it released can be removed.  When the launcher
 * starts (after a crash, a restart, or its own restart) it reads the WAL
 * from the slot's restart_lsn, and queues again every intent of a process
 * that started before this shared memory was set up whose access id no
 * written record names: the worker writes it as any intent.  (A checkpoint
 * in between does not matter: recovery does not replay these records, the
 * slot keeps them.)
 *
 * Until the launcher has done so, or when the server cannot keep a slot
 * (wal_level minimal, max_replication_slots 0), durable accesses wait for
 * the worker to commit their intent instead (audit_access.c, queue.c).
 *
 * The records hold who-fields and a row reference, never a value; logical
 * decoding skips them.  Replaying WAL that holds them needs the library in
 * shared_preload_libraries (PostgreSQL refuses an unknown resource
 * manager).
 *
 * Locking: the slot is used by the launcher only; audit_shared->lock for
 * the slots' intent fields.
 */
#include "postgres.h"

#include "access/xlog.h"
#include "access/xlog_internal.h"
#include "access/xloginsert.h"
#include "access/xlogreader.h"
#include "access/xlogrecord.h"
#include "access/xlogutils.h"
#include "miscadmin.h"
#include "replication/slot.h"
#include "utils/hsearch.h"
#include "utils/timestamp.h"

#include "audit/intent_wal.h"
#include "audit/shmem.h"

/*
 * phi_guard's WAL resource manager: its records carry no page changes
 * (replaying them does nothing), and only this file writes them — no SQL
 * function can forge one, as pg_logical_emit_message could a logical
 * message.  The id is phi_guard's own among the custom ones (128-255).
 */
#define PHI_GUARD_RMGR_ID 173
#define XLOG_PHI_INTENT 0x00
#define XLOG_PHI_WRITTEN 0x10
#define INTENT_SLOT "phi_guard_intents"
#define ADVANCE_EVERY_MS 1000

/* The header of an intent message: which layout of AccessEvent follows. */
typedef struct IntentHeader
{
	uint32		event_size;		/* sizeof(AccessEvent) of the writer */
	Oid			dboid;
} IntentHeader;

/* An access id, as written records list them. */
typedef struct AccessId
{
	TimestampTz proc_start;
	uint64		seq;
	int32		pid;
} AccessId;

static TimestampTz advanced_at = 0;

static void
rmgr_redo(XLogReaderState *record)
{
	/* nothing to replay: the launcher reads these records itself */
}

static const char *
rmgr_identify(uint8 info)
{
	switch (info & ~XLR_INFO_MASK)
	{
		case XLOG_PHI_INTENT:
			return "INTENT";
		case XLOG_PHI_WRITTEN:
			return "WRITTEN";
	}
	return NULL;
}

static void
rmgr_desc(StringInfo buf, XLogReaderState *record)
{
	appendStringInfo(buf, "%u bytes", XLogRecGetDataLen(record));
}

static RmgrData phi_guard_rmgr = {
	.rm_name = "phi_guard",
	.rm_redo = rmgr_redo,
	.rm_desc = rmgr_desc,
	.rm_identify = rmgr_identify,
};

void
audit_intent_wal_register(void)
{
	RegisterCustomRmgr(PHI_GUARD_RMGR_ID, &phi_guard_rmgr);
}

/* Write one record of phi_guard's resource manager; returns its end. */
static XLogRecPtr
log_record(uint8 info, const char *data, int len)
{
	XLogBeginInsert();
	XLogRegisterData(unconstify(char *, data), len);
	return XLogInsert(PHI_GUARD_RMGR_ID, info);
}

static void
access_id(AccessId *id, const AccessEvent *e)
{
	memset(id, 0, sizeof(*id));	/* (hashed as bytes, padding included) */
	id->proc_start = e->proc_start;
	id->seq = e->seq;
	id->pid = e->pid;
}

bool
audit_intent_wal_ready(void)
{
	return audit_shared != NULL && audit_shared->intent_wal && !RecoveryInProgress();
}

/*
 * An event's fixed part is mostly the zero bytes after its strings: in a
 * message, a run of n zero bytes (1 <= n <= 255) is written as 0, n.
 */
static void
zeros_pack(StringInfo to, const char *from, Size len)
{
	for (Size k = 0; k < len;)
	{
		if (from[k] != 0)
			appendStringInfoChar(to, from[k++]);
		else
		{
			Size		n = 0;

			while (k + n < len && from[k + n] == 0 && n < 255)
				n++;
			appendStringInfoChar(to, 0);
			appendStringInfoChar(to, (char) n);
			k += n;
		}
	}
}

/* Unpack len bytes into to from packed (size bytes); false when malformed. */
static bool
zeros_unpack(char *to, Size len, const char *packed, Size size)
{
	Size		k = 0,
				p = 0;

	while (k < len && p < size)
	{
		if (packed[p] != 0)
			to[k++] = packed[p++];
		else
		{
			Size		n = p + 1 < size ? (unsigned char) packed[p + 1] : 0;

			if (n == 0 || k + n > len)
				return false;
			memset(to + k, 0, n);
			k += n;
			p += 2;
		}
	}
	return k == len && p == size;
}

void
audit_intent_wal_log(const AccessEvent *e, const char *json)
{
	IntentHeader h = {sizeof(AccessEvent), MyDatabaseId};
	StringInfoData msg;

	Assert(e->rows_len <= ACCESS_ROWS_INLINE);
	initStringInfo(&msg);
	appendBinaryStringInfo(&msg, (char *) &h, sizeof(h));
	/* the first reference, NUL-terminated, then the packed fixed part */
	appendBinaryStringInfo(&msg, json, e->rows_len + 1);
	zeros_pack(&msg, (const char *) e, offsetof(AccessEvent, rows));
	XLogFlush(log_record(XLOG_PHI_INTENT, msg.data, msg.len));
	pfree(msg.data);
}

void
audit_intent_wal_note(StringInfo written, const AccessEvent *e)
{
	AccessId	id;

	if (!e->wal_intent)
		return;
	access_id(&id, e);
	appendBinaryStringInfo(written, (char *) &id, sizeof(id));
}

void
audit_intent_wal_written(StringInfo written)
{
	if (written->len == 0)
		return;
	/* flushed with the commit before it (audit_intent_wal_advance) */
	(void) log_record(XLOG_PHI_WRITTEN, written->data, written->len);
	resetStringInfo(written);
}

/* ---------------------------------------------------------------------
 * The launcher: the slot, and what it finds in WAL when it starts.
 */

/* Whether this server can keep the slot. */
static bool
slot_possible(void)
{
	return max_replication_slots > 0 && wal_level >= WAL_LEVEL_REPLICA;
}

/* Create the slot, reserving WAL from now on.  The caller owns no slot. */
static void
slot_create(void)
{
	ReplicationSlotCreate(INTENT_SLOT, false, RS_PERSISTENT, false);
	ReplicationSlotReserveWal();
	ReplicationSlotMarkDirty();
	ReplicationSlotSave();
	ReplicationSlotRelease();
}

/* The slot's restart_lsn (InvalidXLogRecPtr when it was invalidated). */
static XLogRecPtr
slot_restart_lsn(void)
{
	XLogRecPtr	lsn;

	ReplicationSlotAcquire(INTENT_SLOT, true);
	SpinLockAcquire(&MyReplicationSlot->mutex);
	lsn = MyReplicationSlot->data.restart_lsn;
	SpinLockRelease(&MyReplicationSlot->mutex);
	ReplicationSlotRelease();
	return lsn;
}

/*
 * Read WAL from `from` to the flushed end: every intent of a process older
 * than this shared memory whose access id no written record names is
 * queued again, or given to no_room when there is no room.  Returns how
 * many.
 */
static int
recover(XLogRecPtr from, IntentNoRoom no_room)
{
	ReadLocalXLogPageNoWaitPrivate *priv = palloc0(sizeof(*priv));
	XLogReaderState *r;
	XLogRecPtr	end = GetFlushRecPtr(NULL);
	HASHCTL		ctl;
	HTAB	   *written;
	List	   *intents = NIL;
	ListCell   *lc;
	int			n = 0;
	char	   *errormsg;

	memset(&ctl, 0, sizeof(ctl));
	ctl.keysize = sizeof(AccessId);
	ctl.entrysize = sizeof(AccessId);
	ctl.hcxt = CurrentMemoryContext;
	written = hash_create("phi_guard written intents", 1024, &ctl,
						  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	r = XLogReaderAllocate(wal_segment_size, NULL,
						   XL_ROUTINE(.page_read = read_local_xlog_page_no_wait,
									  .segment_open = wal_segment_open,
									  .segment_close = wal_segment_close),
						   priv);
	if (r == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	{
		XLogRecPtr	first = XLogFindNextRecord(r, from);

		if (XLogRecPtrIsInvalid(first))
		{
			XLogReaderFree(r);
			return 0;
		}
		XLogBeginRead(r, first);
	}
	while (r->EndRecPtr < end && XLogReadRecord(r, &errormsg) != NULL)
	{
		uint8		info = XLogRecGetInfo(r) & ~XLR_INFO_MASK;
		const char *body = XLogRecGetData(r);
		Size		size = XLogRecGetDataLen(r);

		if (XLogRecGetRmid(r) != PHI_GUARD_RMGR_ID)
			continue;
		if (info == XLOG_PHI_WRITTEN)
		{
			for (Size k = 0; k + sizeof(AccessId) <= size; k += sizeof(AccessId))
				(void) hash_search(written, body + k, HASH_ENTER, NULL);
		}
		else if (info == XLOG_PHI_INTENT && size > sizeof(IntentHeader))
		{
			StringInfo	copy = makeStringInfo();

			appendBinaryStringInfo(copy, body, size);
			intents = lappend(intents, copy);
		}
	}
	XLogReaderFree(r);

	foreach(lc, intents)
	{
		StringInfo	msg = lfirst(lc);
		IntentHeader h;
		AccessEvent *e = palloc0(sizeof(AccessEvent));
		AccessId	id;
		char	   *json = msg->data + sizeof(h);
		Size		json_len = strnlen(json, msg->len - sizeof(h));
		Size		fixed = sizeof(h) + json_len + 1;

		memcpy(&h, msg->data, sizeof(h));
		if (h.event_size != sizeof(AccessEvent) || json_len > ACCESS_ROWS_INLINE ||
			fixed > msg->len ||
			!zeros_unpack((char *) e, offsetof(AccessEvent, rows), msg->data + fixed,
						  msg->len - fixed))
		{
			ereport(WARNING,
					(errmsg("phi_guard skipped an access intent in WAL that it cannot read"),
					 errdetail("Another build of the library wrote it.")));
			continue;
		}
		/* a process of this shared memory: its intent is queued, or written */
		if (e->proc_start >= audit_shared->born)
			continue;
		access_id(&id, e);
		if (hash_search(written, &id, HASH_FIND, NULL) != NULL)
			continue;
		e->rows_len = (int) json_len;
		/* its database's slot holds the WAL from `from` on until written */
		if (!audit_queue_push_recovered(h.dboid, e, json, from))
			no_room(e, json);
		n++;
	}
	return n;
}

void
audit_intent_wal_start(IntentNoRoom no_room)
{
	XLogRecPtr	from;
	int			n;

	if (!slot_possible())
	{
		ereport(LOG,
				(errmsg("phi_guard: durable access entries wait for the audit worker"),
				 errdetail("Flushing intents to WAL needs a replication slot: wal_level is minimal or max_replication_slots is 0.")));
		return;
	}
	if (SearchNamedReplicationSlot(INTENT_SLOT, true) == NULL)
	{
		slot_create();
		from = InvalidXLogRecPtr;
	}
	else
		from = slot_restart_lsn();
	if (!XLogRecPtrIsInvalid(from))
	{
		MemoryContext cxt = CurrentMemoryContext;

		PG_TRY();
		{
			n = recover(from, no_room);
			if (n > 0)
				ereport(LOG,
						(errmsg("phi_guard queued again %d access intents found in WAL", n),
						 errdetail("Their processes revealed values before a crash, and their entries had not been committed.")));
		}
		PG_CATCH();
		{
			ErrorData  *err;

			MemoryContextSwitchTo(cxt);
			err = CopyErrorData();
			FlushErrorState();
			ereport(WARNING,
					(errmsg("phi_guard could not read the WAL its slot \"%s\" keeps: %s",
							INTENT_SLOT, err->message),
					 errdetail("Access intents written before a crash may be missing from the audit log.")));
		}
		PG_END_TRY();
	}
	audit_shared->intent_wal = true;
}

void
audit_intent_wal_advance(void)
{
	AuditShared *s = audit_shared;
	TimestampTz now = GetCurrentTimestamp();
	XLogRecPtr	to;
	bool		moved = false;
	bool		lost;

	if (!s->intent_wal || now < TimestampTzPlusMilliseconds(advanced_at, ADVANCE_EVERY_MS))
		return;
	advanced_at = now;
	/* read before the slots: an intent queued after this lies beyond it */
	to = GetXLogInsertRecPtr();
	LWLockAcquire(s->lock, LW_SHARED);
	for (int i = 0; i < s->ndbs; i++)
		if (s->dbs[i].dboid != InvalidOid && s->dbs[i].intents_pending > 0)
			to = Min(to, s->dbs[i].intents_safe);
	LWLockRelease(s->lock);
	/*
	 * The workers commit without waiting for the flush: the commits that
	 * wrote the intents before `to` were made before the look above, so
	 * flushing up to now makes them durable before the slot lets go.
	 */
	XLogFlush(GetXLogInsertRecPtr());

	if (SearchNamedReplicationSlot(INTENT_SLOT, true) == NULL)
	{
		ereport(WARNING,
				(errmsg("phi_guard created its replication slot \"%s\" again", INTENT_SLOT),
				 errdetail("Someone dropped it: access intents of the time in between are not kept for crash recovery."),
				 errhint("Do not drop the slot \"%s\" while phi_guard.access_audit is durable.", INTENT_SLOT)));
		slot_create();
		return;
	}
	ReplicationSlotAcquire(INTENT_SLOT, true);
	SpinLockAcquire(&MyReplicationSlot->mutex);
	lost = XLogRecPtrIsInvalid(MyReplicationSlot->data.restart_lsn);
	if (!lost && to > MyReplicationSlot->data.restart_lsn)
	{
		MyReplicationSlot->data.restart_lsn = to;
		moved = true;
	}
	SpinLockRelease(&MyReplicationSlot->mutex);
	if (lost)
	{
		ereport(WARNING,
				(errmsg("phi_guard's replication slot \"%s\" was invalidated", INTENT_SLOT),
				 errdetail("The audit worker kept the access intents waiting longer than max_slot_wal_keep_size allows: those of the time in between are not kept for crash recovery."),
				 errhint("Find what holds the audit worker back (pg_locks, the server log), or raise max_slot_wal_keep_size.")));
		ReplicationSlotReserveWal();
		moved = true;
	}
	if (moved)
	{
		/* on disk before the WAL it released may be removed */
		ReplicationSlotMarkDirty();
		ReplicationSlotSave();
	}
	ReplicationSlotRelease();
	if (moved)
		ReplicationSlotsComputeRequiredLSN();
}
