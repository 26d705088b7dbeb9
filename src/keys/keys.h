/*
 * keys.h — src/keys: the master key and the keyring (SPEC §1, §2).
 *
 * Owns:
 *   masterkey.c      the master keys, read once in the postmaster
 *   masterkey_sql.c  master-key rotation: phi_master_key_rewrap, _status
 *   keystore.c       one wrapped-key store behind phi_guard.keys and
 *                    phi_guard.index_keys: per-backend cache (bounded,
 *                    LRU), invalidation, fresh-snapshot reads, unwrap,
 *                    wrap-and-insert, rewrap
 *   keyring.c        data keys: by id, active version of a name, the
 *                    choice between a tenant's key and the shared one
 *   indexkey.c       index keys: blind-index and token subkeys of a name
 *   lifecycle.c      phi_key_create, phi_key_rotate, phi_key_destroy,
 *                    phi_tenant_shred
 *   keyaccess.c      the access rules of key names (phi_key_access,
 *                    phi_mask_bind), cached like the keys
 * May call: src/core, src/common, src/audit (audit entries of key changes),
 * src/context (the signed context's tenant chooses its keys).
 * Never calls src/crypto or src/tokens, which sit above it.
 *
 * This header is what the layers above use: cached keys and the module's
 * start-up.  keystore.h and masterkey.h are private to the folder.
 *
 * Pointer validity: a KeyEntry, IndexKey or KeyAccess pointer stays valid
 * only until the next keys lookup or the next lock acquisition (either may
 * process an invalidation that frees the cache, and a lookup may evict the
 * least recently used key to keep the cache within key_cache_size).  Callers that remember an
 * entry across calls (fn_extra) keep keystore_generation alongside and look
 * again when it moved.
 */
#ifndef PHI_GUARD_KEYS_H
#define PHI_GUARD_KEYS_H

#include "postgres.h"

#include "fmgr.h"
#include "lib/ilist.h"

#include "core/aead.h"
#include "core/hmac.h"

#define KEY_NAME_MAX 63
#define TENANT_MAX 63			/* longest tenant of a key (SPEC §9) */

/* settings, defined in _PG_init (phi_guard.c); the variables are masterkey.c's */
extern char *phi_guard_master_key_file;
extern char *phi_guard_master_key_command;

/* phi_guard.key_cache_size: unwrapped keys a backend keeps (keystore.c) */
extern int	phi_guard_key_cache_size;

/*
 * A key name of one tenant ("" for the shared keys), zero-padded: the hash
 * key of the caches by name.
 */
typedef struct KeyName
{
	char		tenant[TENANT_MAX + 1];
	char		name[KEY_NAME_MAX + 1];
} KeyName;

/*
 * Private to src/keys: a cached entry's place in its store's LRU list and
 * the OpenSSL state it owns (freed when the entry is evicted).
 */
typedef struct KeyCacheSlot
{
	dlist_node	node;
	int			hash_idx;		/* the store's hash table holding the entry */
	void	   *entry;			/* the entry; its hash key comes first */
	int			nobj;
	void	   *obj[2];
	void		(*release[2]) (void *);
} KeyCacheSlot;

/* A data key version (phi_guard.keys row). */
typedef struct KeyEntry
{
	uint32		id;				/* hash key: phi_guard.keys.id */
	char		state;			/* 'a'ctive, 'r'etired, 'd'estroyed */
	int32		version;
	char		name[KEY_NAME_MAX + 1];
	char		tenant[TENANT_MAX + 1]; /* "": a shared key */
	phic_gcm   *gcm;			/* NULL when destroyed */
	KeyCacheSlot slot;
} KeyEntry;

/* The index keys of a key name of one tenant (phi_guard.index_keys row). */
typedef struct IndexKey
{
	KeyName		key;			/* hash key */
	phic_hmac  *blind;			/* HMAC(root, "phi_guard.blind_index.v1") */
	phic_hmac  *token;			/* HMAC(root, "phi_guard.token.v1") */
	KeyCacheSlot slot;
} IndexKey;

/*
 * The access rule of a key name (phi_guard.key_access row; SPEC §5
 * phi_key_access and phi_mask_bind).
 */
typedef struct KeyAccess
{
	char		name[KEY_NAME_MAX + 1]; /* hash key */
	const char *permission;		/* clear values; NULL: no rule, database roles decide */
	const char *masked_permission;	/* masked values only; NULL: none */
	int			mask_kind;		/* phic_mask_kind bound to the key; -1: none (full mask) */
} KeyAccess;

/* keystore.c: bumped whenever any key cache is flushed (never 0). */
extern uint64 keystore_generation;

/* masterkey.c: read the master keys; in the postmaster only (_PG_init). */
extern void masterkey_load_at_startup(void);

/*
 * keyring.c: the key for decrypting a value written under key id: errors
 * 42704 when the id is unknown, PH002 when destroyed, PH004 when its data
 * key cannot be unwrapped with the loaded master keys.
 */
extern KeyEntry *keyring_by_id(uint32 id);

/*
 * keyring.c: the key id of a value, or NULL when no row has that id;
 * destroyed keys are returned (state 'd'), not raised.  For a caller that
 * skips what it cannot open (phi_rewrap_column).
 */
extern KeyEntry *keyring_lookup_id(uint32 id);

/*
 * keyring.c: the active version of key name of tenant (NULL: the shared
 * key; no fallback): 42704 unknown, PH005 none active.  phi_rewrap keeps a
 * value in its own (tenant, name) with it.
 */
extern KeyEntry *keyring_active_of(const char *tenant, const char *name, int len);

/*
 * keyring.c: the key that encrypts for tenant (NULL: none): the tenant's
 * own key of that name when it has one (in any state: a shredded tenant's
 * name fails with PH005, never falls back), otherwise the shared one
 * (SPEC §9).  A tenant longer than TENANT_MAX has no keys.
 */
extern KeyEntry *keyring_for_tenant(const char *tenant, const char *name, int len);

/*
 * keyring.c: the tenant whose key of a name a call chooses, the signed
 * context's (NULL: none).  A parallel worker holds no context and would
 * fall back to shared keys: there it raises 0A000 instead (the SQL
 * functions that choose are PARALLEL RESTRICTED; this covers a
 * parallel-safe wrapper around them).
 */
extern const char *keyring_choosing_tenant(void);

/* keyring.c: keyring_for_tenant for the signed context's tenant (phi_encrypt). */
extern KeyEntry *keyring_active(const char *name, int len);

/*
 * keyring.c: what the key-name argument argno of a call resolves to through
 * lookup (keyring_active, indexkey_get), cached per call site (fn_extra):
 * lookup runs again only when the name changes, a key cache was flushed or
 * the signed context changed (its tenant chooses the key).  NULL name:
 * 22004.
 */
typedef void *(*KeyNameLookup) (const char *name, int len);
extern void *keyring_by_name_arg(FunctionCallInfo fcinfo, int argno, KeyNameLookup lookup);

/*
 * indexkey.c: the index keys of a key name for the signed context's tenant
 * (chosen as keyring_active chooses data keys); 42704 when the name is
 * unknown, PH005 when every version of the name was destroyed (the index
 * key went with them), PH002 when its index key row alone is missing.
 */
extern const IndexKey *indexkey_get(const char *name, int len);

/*
 * keyaccess.c: the access rule of key name name (a C string of at most
 * KEY_NAME_MAX bytes), read once per backend until phi_guard.key_access
 * changes.  Never NULL: a name without a row (or a database without the
 * table) has permission NULL and mask_kind -1.
 */
extern const KeyAccess *keyaccess_get(const char *name);

#endif
