/*
 * keyaccess.c — the access rules of key names (SPEC §5 phi_key_access,
 * phi_mask_bind): the phi_guard.key_access store.
 *
 * A row names the context permission that reads a key's values in clear,
 * the one that reads them masked, and the mask kind bound to the key.  The
 * rows are written by the plpgsql functions phi_key_access and
 * phi_mask_bind (src/keys/keys.sql); this file only reads them, for the
 * decision in src/crypto.
 *
 * Cache (keystore.c keeps it coherent, like the keys): name -> KeyAccess,
 * negative entries included, so a key without a rule costs one hash probe
 * per cache refill of a call site and nothing per row.  The table is
 * optional: a database whose extension is not yet updated to 0.3.0 has
 * none, and then no key has a rule (as in 0.2.0).
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"

#include "core/mask.h"
#include "keys/keys.h"
#include "keys/keystore.h"

/* columns of phi_guard.key_access */
#define Anum_key_access_name 1
#define Anum_key_access_permission 2
#define Anum_key_access_masked_permission 3
#define Anum_key_access_mask_kind 4

KeyStore	keyaccess_store = {
	.what = "key access rule",
	.table = "key_access",
	.table_what = "key access table",
	.optional = true,
	.index = {"key_access_pkey"},
	.hash_def = {
		{"phi_guard key access rules", KEY_NAME_MAX + 1, sizeof(KeyAccess), HASH_STRINGS},
	},
};

/* A text column of a row as a string in the store's memory; NULL for NULL. */
static const char *
column_string(KeyStore *ks, TupleDesc desc, HeapTuple tup, AttrNumber attno)
{
	bool		isnull;
	Datum		d = heap_getattr(tup, attno, desc, &isnull);

	return isnull ? NULL : MemoryContextStrdup(ks->cxt, TextDatumGetCString(d));
}

/*
 * keystore_read visitor: the name's row, into the cache.  A bound kind
 * this library does not know counts as none (a full mask): fail closed.
 */
static bool
visit_row(KeyStore *ks, TupleDesc desc, HeapTuple tup, void *arg)
{
	KeyAccess **out = (KeyAccess **) arg;
	KeyAccess	tmp;
	const char *kind = column_string(ks, desc, tup, Anum_key_access_mask_kind);

	memset(&tmp, 0, sizeof(tmp));
	strlcpy(tmp.name, column_string(ks, desc, tup, Anum_key_access_name), sizeof(tmp.name));
	tmp.permission = column_string(ks, desc, tup, Anum_key_access_permission);
	tmp.masked_permission = tmp.permission
		? column_string(ks, desc, tup, Anum_key_access_masked_permission) : NULL;
	tmp.mask_kind = kind ? phic_mask_kind_parse(kind, strlen(kind)) : -1;
	*out = hash_search(ks->hash[0], tmp.name, HASH_ENTER, NULL);
	**out = tmp;
	return true;
}

const KeyAccess *
keyaccess_get(const char *name)
{
	static const KeyAccess none = {"", NULL, NULL, -1};
	char		buf[KEY_NAME_MAX + 1];
	KeyAccess  *a;
	bool		found;

	/* copied first: name may live in a cache that the read below flushes */
	strlcpy(buf, name, sizeof(buf));
	if (!keystore_ready(&keyaccess_store))
		return &none;
	a = hash_search(keyaccess_store.hash[0], buf, HASH_FIND, NULL);
	if (a)
		return a;
	keystore_read(&keyaccess_store, 0, Anum_key_access_name, F_TEXTEQ,
				  CStringGetTextDatum(buf), visit_row, &a);
	if (a)
		return a;
	/* no row: remember that (keystore_read left the store ready, no lock since) */
	a = hash_search(keyaccess_store.hash[0], buf, HASH_ENTER, &found);
	a->permission = NULL;
	a->masked_permission = NULL;
	a->mask_kind = -1;
	return a;
}
