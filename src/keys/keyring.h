/*
 * keyring.h — per-backend cache of unwrapped data keys (SPEC §2).
 *
 * A KeyEntry pointer stays valid only until the next keyring lookup or the
 * next lock acquisition (either may process an invalidation that frees the
 * cache).  Callers that remember an entry across calls (fn_extra) keep
 * keyring_generation alongside and look again when it moved.
 */
#ifndef PHI_GUARD_KEYRING_H
#define PHI_GUARD_KEYRING_H

#include "fmgr.h"

#include "core/aead.h"

#define KEY_NAME_MAX 63

typedef struct KeyEntry
{
	uint32		id;				/* hash key: phi_guard.keys.id */
	char		state;			/* 'a'ctive, 'r'etired, 'd'estroyed */
	int32		version;
	char		name[KEY_NAME_MAX + 1];
	phic_gcm   *gcm;			/* NULL when destroyed */
} KeyEntry;

/* Bumped whenever the cache is flushed. */
extern uint64 keyring_generation;

/*
 * Key for decrypting a value written under key id: errors 42704 when the id
 * is unknown, PH002 when destroyed, PH004 when its data key cannot be
 * unwrapped with the configured master key.
 */
extern KeyEntry *keyring_by_id(uint32 id);

/* Active version of a key name: 42704 unknown name, PH005 none active. */
extern KeyEntry *keyring_active(const char *name, int len);

/*
 * What the key-name argument argno of a call resolves to through lookup,
 * cached per call site (fn_extra): lookup runs again only when the name
 * changes or the keyring was flushed.  NULL name: 22004.
 */
typedef void *(*KeyNameLookup) (const char *name, int len);
extern void *keyring_by_name_arg(FunctionCallInfo fcinfo, int argno, KeyNameLookup lookup);

#endif
