/*
 * keystore.h — the wrapped-key store (keystore.c), private to src/keys.
 *
 * phi_guard.keys (data keys) and phi_guard.index_keys (index keys) hold
 * keys of one format (SPEC §2: id int4, wrapped_key bytea, ids from
 * keys_id_seq).  phi_guard.key_access holds the access rules of key names
 * (no key bytes).  A KeyStore describes one of the three tables and caches
 * what its client (keyring.c, indexkey.c, keyaccess.c) builds from its
 * rows, in hash tables that live in the store's memory context.  The store
 * keeps that cache
 * coherent (relcache invalidation raised by the tables' statement trigger),
 * reads rows with a fresh snapshot, unwraps keys in a protected scratch
 * page, and owns the OpenSSL objects built from them: they are released
 * when the cache is flushed or their entry is evicted, whatever error
 * happened in between.
 *
 * Bounded stores (data keys, index keys): each entry holding key material
 * embeds a KeyCacheSlot (keys.h) and is admitted to the store's LRU list;
 * past phi_guard.key_cache_size entries, the least recently used one is
 * evicted (its OpenSSL state freed, the entry removed from its hash table)
 * and keystore_generation moves, so that no caller keeps a pointer to it.
 */
#ifndef PHI_GUARD_KEYSTORE_H
#define PHI_GUARD_KEYSTORE_H

#include "postgres.h"

#include "access/htup.h"
#include "access/skey.h"
#include "access/tupdesc.h"
#include "lib/ilist.h"
#include "utils/hsearch.h"

#include "core/aead.h"
#include "core/hmac.h"
#include "keys/keys.h"

#define KEYSTORE_HASHES 2		/* hash tables per store, at most */
#define KEYSTORE_INDEXES 3		/* indexes the reads use, at most */

typedef struct KeyStoreHash
{
	const char *name;			/* NULL: unused */
	Size		keysize;
	Size		entrysize;
	int			flags;			/* HASH_BLOBS or HASH_STRINGS */
} KeyStoreHash;

typedef struct KeyStore
{
	/* what the store is: fixed */
	const char *what;			/* "data key", "index key" */
	const char *table;			/* relation in schema phi_guard */
	const char *table_what;		/* the table in "phi_guard <...> is missing" */
	bool		optional;		/* a table older schemas lack: missing reads as empty */
	const char *index[KEYSTORE_INDEXES];	/* NULL: unused; a missing one is
											 * an error only when read through */
	KeyStoreHash hash_def[KEYSTORE_HASHES];
	bool		bounded;		/* entries hold key material: LRU, key_cache_size */

	/* the cache: valid after keystore_ready, gone after a flush */
	MemoryContext cxt;
	Oid			relid;
	AttrNumber	tenant_attno;	/* the table's tenant column; 0: none (before 0.3.0) */
	Oid			index_oid[KEYSTORE_INDEXES];
	HTAB	   *hash[KEYSTORE_HASHES];
	dlist_head	lru;			/* admitted slots, most recently used first */
	int			count;			/* how many */
} KeyStore;

/*
 * keyring.c: the tenant whose keys of name encrypt for tenant: tenant when
 * it has versions of that name (in any state), NULL (the shared keys)
 * otherwise.  The same choice for data and index keys.
 */
extern const char *keyring_tenant_of_name(const char *tenant, const char *name);

/* the stores (keyring.c, indexkey.c, keyaccess.c) */
extern KeyStore keyring_store;
extern KeyStore indexkey_store;
extern KeyStore keyaccess_store;

/*
 * Copy the key name name[0..len) into out (KEY_NAME_MAX + 1 bytes) as a C
 * string; 22023 unless it is 1 to KEY_NAME_MAX bytes long.
 */
extern void keystore_name(const char *name, int len, char *out);

/*
 * Make ks usable: its memory context, its table's and indexes' OIDs (55000
 * when the extension is missing), whether the table has a tenant column,
 * and empty hash tables after a flush.  Any
 * lock acquisition may flush the cache again.  Returns false, with nothing
 * made usable but the memory context, only for an optional store whose
 * table does not exist (an extension not yet updated to this version).
 */
extern bool keystore_ready(KeyStore *ks);

/*
 * Read the rows of ks's table whose column attno equals value (eqproc, in
 * the "C" collation), through index ks->index[idx], with a snapshot that
 * sees every committed change and this transaction's earlier commands.
 * visit runs for each row until it returns true.  visit may fill the
 * cache: no lock is taken after it, so entries it creates stay valid for
 * the caller.  An optional store without its table has no rows.
 */
typedef bool (*KeyStoreVisit) (KeyStore *ks, TupleDesc desc, HeapTuple tup,
							   void *arg);
extern void keystore_read(KeyStore *ks, int idx, AttrNumber attno,
						  RegProcedure eqproc, Datum value,
						  KeyStoreVisit visit, void *arg);

/*
 * The same with nkeys scan keys on the index's columns (attribute numbers
 * of the index; SK_ISNULL | SK_SEARCHNULL for IS NULL).  55000 when index
 * idx does not exist.
 */
extern void keystore_read_keys(KeyStore *ks, int idx, ScanKey keys, int nkeys,
							   KeyStoreVisit visit, void *arg);

/*
 * keys[0..1] of a lookup of kn (tenant "": IS NULL) in ks's table, whose
 * tenant column is ks->tenant_attno and name column name_attno, through an
 * index on (tenant, name, ...).
 */
extern void keystore_name_keys(KeyStore *ks, AttrNumber name_attno, ScanKey keys,
							   const KeyName *kn);

/*
 * Bounded stores.  keystore_admit links slot (of an entry just entered in
 * hash table hash_idx, whose hash key starts the entry) at the head of the
 * LRU list, then evicts from the tail until at most key_cache_size entries
 * remain (never slot itself).  keystore_touch marks slot used.
 * keystore_evict frees slot's OpenSSL state and removes its entry now (an
 * entry whose preparation failed).  Evictions move keystore_generation.
 */
extern void keystore_admit(KeyStore *ks, int hash_idx, void *entry, KeyCacheSlot *slot);
extern void keystore_touch(KeyStore *ks, KeyCacheSlot *slot);
extern void keystore_evict(KeyStore *ks, KeyCacheSlot *slot);

/*
 * Unwrap wrapped (a wrapped_key value of key id) with the loaded master keys
 * into the protected scratch page and call prepare(ks, key, work, arg):
 * key is the PHIC_DEK_LEN unwrapped bytes, work PHIC_DEK_LEN more bytes of
 * protected memory for derived secrets.  Both are wiped when prepare
 * returns or fails.  PH004 when no loaded master key opens it.
 */
typedef void (*KeyStorePrepare) (KeyStore *ks, const uint8 *key, uint8 *work,
								 void *arg);
extern void keystore_unwrap(KeyStore *ks, uint32 id, bytea *wrapped,
							KeyStorePrepare prepare, void *arg);

/*
 * OpenSSL state built from key bytes, owned by slot (an admitted entry's)
 * from the moment it exists: freed when the entry is evicted or the cache
 * flushed, so an error after creation leaks nothing.  what names the step
 * in errors.
 */
extern phic_gcm *keystore_gcm(KeyCacheSlot *slot, const uint8 *key, const char *what);
extern phic_hmac *keystore_hmac(KeyCacheSlot *slot, const uint8 *key, size_t len,
								const char *what);

/*
 * Inside SPI: a fresh random key wrapped under the current master key for
 * a new id from keys_id_seq, stored by insert_sql, whose $1 is the id
 * (int4) and $2 the wrapped key (bytea); $3... are values (types).
 * Returns the id.
 */
extern int32 keystore_insert_new(KeyStore *ks, const char *insert_sql,
								 int nvalues, Oid *types, Datum *values);

/*
 * Inside SPI, with key changes locked out: rewrap under the current master
 * key every key of ks that an older loaded master key opens; returns how
 * many rows changed.  PH004 when a row opens with no loaded key.
 */
extern int64 keystore_rewrap(KeyStore *ks);

/*
 * Inside SPI: count the keys of ks by the loaded master key that opens
 * them: counts[slot] for slot 0..nkeys-1, counts[nkeys] for those none opens.
 */
extern void keystore_count_by_master(KeyStore *ks, int64 *counts, int nkeys);

#endif
