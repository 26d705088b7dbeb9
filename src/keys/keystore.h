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
 * when the cache is flushed, whatever error happened in between.
 */
#ifndef PHI_GUARD_KEYSTORE_H
#define PHI_GUARD_KEYSTORE_H

#include "postgres.h"

#include "access/htup.h"
#include "access/tupdesc.h"
#include "utils/hsearch.h"

#include "core/aead.h"
#include "core/hmac.h"

#define KEYSTORE_HASHES 2		/* hash tables per store, at most */
#define KEYSTORE_INDEXES 2		/* indexes the reads use, at most */

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
	const char *index[KEYSTORE_INDEXES];	/* NULL: unused */
	KeyStoreHash hash_def[KEYSTORE_HASHES];

	/* the cache: valid after keystore_ready, gone after a flush */
	MemoryContext cxt;
	Oid			relid;
	Oid			index_oid[KEYSTORE_INDEXES];
	HTAB	   *hash[KEYSTORE_HASHES];
} KeyStore;

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
 * when the extension is missing) and empty hash tables after a flush.  Any
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
 * OpenSSL state built from key bytes, owned by ks's cache: freed when the
 * cache is flushed (a reset callback of its memory context), so an error
 * after creation leaks nothing.  what names the step in errors.
 */
extern phic_gcm *keystore_gcm(KeyStore *ks, const uint8 *key, const char *what);
extern phic_hmac *keystore_hmac(KeyStore *ks, const uint8 *key, size_t len,
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
