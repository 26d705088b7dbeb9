/*
 * intent_wal.h — durable intents through the write-ahead log (intent_wal.c).
 */
#ifndef PHI_GUARD_AUDIT_INTENT_WAL_H
#define PHI_GUARD_AUDIT_INTENT_WAL_H

#include "postgres.h"

#include "lib/stringinfo.h"

#include "audit/shmem.h"

/* From audit_init (shared_preload_libraries): phi_guard's WAL resource manager. */
extern void audit_intent_wal_register(void);

/* A backend may flush its intents to WAL (the launcher has its slot). */
extern bool audit_intent_wal_ready(void);

/*
 * Write intent e (already queued, wal_intent set) with its first reference
 * json to WAL and flush it.
 */
extern void audit_intent_wal_log(const AccessEvent *e, const char *json);

/* The worker: add e's access id to written when e was held in WAL. */
extern void audit_intent_wal_note(StringInfo written, const AccessEvent *e);

/*
 * The worker, after the commit that wrote them: log the access ids in
 * written, then empty it.  Nothing when it is empty.
 */
extern void audit_intent_wal_written(StringInfo written);

/* What to do with an intent found in WAL that the queue has no room for. */
typedef void (*IntentNoRoom) (const AccessEvent *e, const char *json);

/*
 * The launcher, when it starts: create the slot, or queue again the
 * intents that a crash left only in WAL; then backends may use WAL.
 */
extern void audit_intent_wal_start(IntentNoRoom no_room);

/* The launcher, each round: move the slot forward (at most once a second). */
extern void audit_intent_wal_advance(void);

#endif
