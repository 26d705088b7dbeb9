/*
 * indexkey.c — root keys for blind indexes and token fingerprints
 * (SPEC §4): the phi_guard.index_keys store.
 *
 * The table holds one wrapped 32-byte root key per key name, created with
 * the name's first version and destroyed with its last (lifecycle.c).  It
 * is wrapped exactly like a data key under an id from the same sequence, so
 * ids never collide.  The root key is never used directly: two subkeys are
 * derived from it with HMAC-SHA256 and kept as prepared HMAC states in the
 * store's cache (keystore.c keeps it coherent and frees the states).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"

#include "common/errors.h"
#include "core/keywrap.h"
#include "keys/keys.h"
#include "keys/keystore.h"
#include "phi_guard.h"

#define BLIND_LABEL "phi_guard.blind_index.v1"
#define TOKEN_LABEL "phi_guard.token.v1"

/* columns of phi_guard.index_keys */
#define Anum_index_keys_name 1
#define Anum_index_keys_id 2
#define Anum_index_keys_wrapped 3

KeyStore	indexkey_store = {
	.what = "index key",
	.table = "index_keys",
	.table_what = "index key table",
	.index = {"index_keys_pkey"},
	.hash_def = {
		{"phi_guard index keys", KEY_NAME_MAX + 1, sizeof(IndexKey), HASH_STRINGS},
	},
};

/*
 * The subkey HMAC(root, label) as a prepared HMAC state owned by the
 * cache; work receives the subkey bytes (protected memory, wiped by the
 * caller).
 */
static phic_hmac *
derive(KeyStore *ks, const uint8 *root, const char *label, uint8 *work)
{
	phic_hmac  *r = phic_hmac_new(root, PHIC_DEK_LEN);
	phic_status st = r ? phic_hmac3(r, label, strlen(label), NULL, 0, NULL, 0, work)
		: PHIC_ERR_CRYPTO;

	phic_hmac_free(r);
	if (st != PHIC_OK)
		errors_raise_core(st, "derive index key");
	return keystore_hmac(ks, work, PHIC_HMAC_LEN, "derive index key");
}

/* keystore_unwrap's step for an index key: both subkeys. */
static void
prepare_subkeys(KeyStore *ks, const uint8 *root, uint8 *work, void *arg)
{
	IndexKey   *k = (IndexKey *) arg;

	StaticAssertStmt(PHIC_HMAC_LEN <= PHIC_DEK_LEN, "work space holds a subkey");
	k->blind = derive(ks, root, BLIND_LABEL, work);
	k->token = derive(ks, root, TOKEN_LABEL, work);
}

/* keystore_read visitor: the name's row, into the cache. */
static bool
visit_row(KeyStore *ks, TupleDesc desc, HeapTuple tup, void *arg)
{
	IndexKey  **out = (IndexKey **) arg;
	IndexKey	tmp;
	bool		isnull;
	uint32		id;
	Datum		w;

	memset(&tmp, 0, sizeof(tmp));
	strlcpy(tmp.name, TextDatumGetCString(heap_getattr(tup, Anum_index_keys_name, desc, &isnull)),
			sizeof(tmp.name));
	id = (uint32) DatumGetInt32(heap_getattr(tup, Anum_index_keys_id, desc, &isnull));
	w = heap_getattr(tup, Anum_index_keys_wrapped, desc, &isnull);
	if (isnull)
		return true;			/* NOT NULL in the table: treated as missing */
	keystore_unwrap(ks, id, DatumGetByteaPP(w), prepare_subkeys, &tmp);
	*out = hash_search(ks->hash[0], tmp.name, HASH_ENTER, NULL);
	**out = tmp;
	return true;
}

const IndexKey *
indexkey_get(const char *name, int len)
{
	char		buf[KEY_NAME_MAX + 1];
	IndexKey   *k;

	keystore_name(name, len, buf);
	keystore_ready(&indexkey_store);
	k = hash_search(indexkey_store.hash[0], buf, HASH_FIND, NULL);
	if (k)
		return k;

	keystore_read(&indexkey_store, 0, Anum_index_keys_name, F_TEXTEQ,
				  CStringGetTextDatum(buf), visit_row, &k);
	if (k == NULL)
	{
		/* the name's data keys tell which error: unknown, or destroyed */
		(void) keyring_active(buf, len);
		ereport(ERROR,
				(errcode(ERRCODE_PHI_KEY_DESTROYED),
				 errmsg("the index key of key \"%s\" is missing", buf),
				 errhint("Rotate the key to create a new one; existing blind indexes and tokens cannot be recomputed.")));
	}
	return k;
}
