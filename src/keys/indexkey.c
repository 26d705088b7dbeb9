/*
 * indexkey.c — root keys for blind indexes and token fingerprints
 * (SPEC §4): the phi_guard.index_keys store.
 *
 * The table holds one wrapped 32-byte root key per key name of a tenant
 * (or shared), created with the name's first version and destroyed with
 * its last (lifecycle.c).  It is wrapped exactly like a data key under an
 * id from the same sequence, so ids never collide.  The root key is never
 * used directly: two subkeys are derived from it with HMAC-SHA256 and kept
 * as prepared HMAC states in the store's cache (keystore.c keeps it
 * coherent and bounded, and frees the states).  A signed context's tenant
 * uses its own index key of a name when it has keys of that name, the
 * shared one otherwise (the choice keyring.c makes for data keys), so equal
 * values of two tenants have unrelated blind indexes and tokens.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"

#include "common/errors.h"
#include "context/context.h"
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

#define IDX_TENANT_NAME 0		/* 0.3.0: (tenant, name) */
#define IDX_NAME 1				/* before 0.3.0: the primary key (name) */

KeyStore	indexkey_store = {
	.what = "index key",
	.table = "index_keys",
	.table_what = "index key table",
	.index = {"index_keys_tenant_name_key", "index_keys_pkey"},
	.hash_def = {
		{"phi_guard index keys", sizeof(KeyName), sizeof(IndexKey), HASH_BLOBS},
	},
	.bounded = true,
};

/*
 * The subkey HMAC(root, label) as a prepared HMAC state owned by the
 * cache; work receives the subkey bytes (protected memory, wiped by the
 * caller).
 */
static phic_hmac *
derive(KeyCacheSlot *slot, const uint8 *root, const char *label, uint8 *work)
{
	phic_hmac  *r = phic_hmac_new(root, PHIC_DEK_LEN);
	phic_status st = r ? phic_hmac3(r, label, strlen(label), NULL, 0, NULL, 0, work)
		: PHIC_ERR_CRYPTO;

	phic_hmac_free(r);
	if (st != PHIC_OK)
		errors_raise_core(st, "derive index key");
	return keystore_hmac(slot, work, PHIC_HMAC_LEN, "derive index key");
}

/* keystore_unwrap's step for an index key: both subkeys. */
static void
prepare_subkeys(KeyStore *ks, const uint8 *root, uint8 *work, void *arg)
{
	IndexKey   *k = (IndexKey *) arg;

	StaticAssertStmt(PHIC_HMAC_LEN <= PHIC_DEK_LEN, "work space holds a subkey");
	k->blind = derive(&k->slot, root, BLIND_LABEL, work);
	k->token = derive(&k->slot, root, TOKEN_LABEL, work);
}

/* keystore_read visitor: the row of the name looked up, into the cache. */
static bool
visit_row(KeyStore *ks, TupleDesc desc, HeapTuple tup, void *arg)
{
	IndexKey  **out = (IndexKey **) arg;
	KeyName		kn;
	bool		isnull;
	bool		found;
	uint32		id;
	Datum		w;
	Datum		tenant;

	memset(&kn, 0, sizeof(kn));
	strlcpy(kn.name, TextDatumGetCString(heap_getattr(tup, Anum_index_keys_name, desc, &isnull)),
			sizeof(kn.name));
	tenant = ks->tenant_attno ? heap_getattr(tup, ks->tenant_attno, desc, &isnull) : (Datum) 0;
	if (ks->tenant_attno && !isnull)
		strlcpy(kn.tenant, TextDatumGetCString(tenant), sizeof(kn.tenant));
	id = (uint32) DatumGetInt32(heap_getattr(tup, Anum_index_keys_id, desc, &isnull));
	w = heap_getattr(tup, Anum_index_keys_wrapped, desc, &isnull);
	if (isnull)
		return true;			/* NOT NULL in the table: treated as missing */
	*out = hash_search(ks->hash[0], &kn, HASH_ENTER, &found);
	if (found)
		return true;
	(*out)->blind = NULL;
	(*out)->token = NULL;
	keystore_admit(ks, 0, *out, &(*out)->slot);
	PG_TRY();
	{
		keystore_unwrap(ks, id, DatumGetByteaPP(w), prepare_subkeys, *out);
	}
	PG_CATCH();
	{
		keystore_evict(ks, &(*out)->slot);
		PG_RE_THROW();
	}
	PG_END_TRY();
	return true;
}

const IndexKey *
indexkey_get(const char *name, int len)
{
	KeyStore   *ks = &indexkey_store;
	KeyName		kn;
	const char *tenant;
	IndexKey   *k = NULL;

	memset(&kn, 0, sizeof(kn));
	keystore_name(name, len, kn.name);
	tenant = keyring_tenant_of_name(keyring_choosing_tenant(), kn.name);
	if (tenant)
		strlcpy(kn.tenant, tenant, sizeof(kn.tenant));
	keystore_ready(ks);
	k = hash_search(ks->hash[0], &kn, HASH_FIND, NULL);
	if (k)
	{
		keystore_touch(ks, &k->slot);
		return k;
	}
	if (ks->tenant_attno != 0)
	{
		ScanKeyData keys[2];

		keystore_name_keys(ks, Anum_index_keys_name, keys, &kn);
		keystore_read_keys(ks, IDX_TENANT_NAME, keys, 2, visit_row, &k);
	}
	else if (tenant == NULL)
		keystore_read(ks, IDX_NAME, Anum_index_keys_name, F_TEXTEQ,
					  CStringGetTextDatum(kn.name), visit_row, &k);
	if (k == NULL)
	{
		/* the name's data keys tell which error: unknown, or destroyed */
		(void) keyring_active_of(tenant, kn.name, len);
		ereport(ERROR,
				(errcode(ERRCODE_PHI_KEY_DESTROYED),
				 errmsg("the index key of key \"%s\" is missing", kn.name),
				 errhint("Rotate the key to create a new one; existing blind indexes and tokens cannot be recomputed.")));
	}
	return k;
}
