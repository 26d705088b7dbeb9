/*
 * keyring.c — data keys (SPEC §2): the phi_guard.keys store, the key for a
 * key id and the active version of a key name, and the per-call-site cache
 * of a key-name argument.
 *
 * Cache (keystore.c keeps it coherent): id -> KeyEntry holding prepared
 * AES-GCM contexts (destroyed keys are cached as such, without contexts),
 * and name -> id of its active version.  A row is unwrapped once per
 * backend until the next change of phi_guard.keys.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"

#include "common/stats.h"
#include "keys/keys.h"
#include "keys/keystore.h"
#include "phi_guard.h"

/* columns of phi_guard.keys, checked against the table on load */
#define Anum_keys_id 1
#define Anum_keys_name 2
#define Anum_keys_version 3
#define Anum_keys_state 4
#define Anum_keys_wrapped 5
#define Natts_keys 6

#define BY_ID 0					/* hash tables and indexes of the store */
#define BY_NAME 1

typedef struct NameEntry
{
	char		name[KEY_NAME_MAX + 1]; /* hash key */
	uint32		active_id;
} NameEntry;

KeyStore	keyring_store = {
	.what = "data key",
	.table = "keys",
	.table_what = "keyring table",
	.index = {"keys_pkey", "keys_name_version_key"},
	.hash_def = {
		{"phi_guard keys by id", sizeof(uint32), sizeof(KeyEntry), HASH_BLOBS},
		{"phi_guard keys by name", KEY_NAME_MAX + 1, sizeof(NameEntry), HASH_STRINGS},
	},
};

static char
state_code(const char *s)
{
	if (strcmp(s, "active") == 0)
		return 'a';
	if (strcmp(s, "retired") == 0)
		return 'r';
	return 'd';
}

/* keystore_unwrap's step for a data key: its AES-GCM contexts. */
static void
prepare_gcm(KeyStore *ks, const uint8 *key, uint8 *work, void *arg)
{
	((KeyEntry *) arg)->gcm = keystore_gcm(ks, key, "prepare data key");
}

/*
 * The cached entry of one phi_guard.keys row, unwrapping its data key if it
 * is not cached yet (a cached entry is current: any change of the table
 * flushes the cache before the row can be read again).
 */
static KeyEntry *
cache_row(KeyStore *ks, TupleDesc desc, HeapTuple tup)
{
	Datum		values[Natts_keys];
	bool		nulls[Natts_keys];
	uint32		id;
	KeyEntry	tmp;
	KeyEntry   *e;

	if (desc->natts != Natts_keys)
		elog(ERROR, "phi_guard.keys has an unexpected shape");
	heap_deform_tuple(tup, desc, values, nulls);
	id = (uint32) DatumGetInt32(values[Anum_keys_id - 1]);
	e = hash_search(ks->hash[BY_ID], &id, HASH_FIND, NULL);
	if (e == NULL)
	{
		memset(&tmp, 0, sizeof(tmp));
		tmp.id = id;
		tmp.version = DatumGetInt32(values[Anum_keys_version - 1]);
		strlcpy(tmp.name, TextDatumGetCString(values[Anum_keys_name - 1]), sizeof(tmp.name));
		tmp.state = state_code(TextDatumGetCString(values[Anum_keys_state - 1]));
		if (tmp.state != 'd' && nulls[Anum_keys_wrapped - 1])
			tmp.state = 'd';
		if (tmp.state != 'd')
			keystore_unwrap(ks, id, DatumGetByteaPP(values[Anum_keys_wrapped - 1]),
							prepare_gcm, &tmp);
		e = hash_search(ks->hash[BY_ID], &id, HASH_ENTER, NULL);
		*e = tmp;
	}
	if (e->state == 'a')
	{
		NameEntry  *n = hash_search(ks->hash[BY_NAME], e->name, HASH_ENTER, NULL);

		n->active_id = e->id;
	}
	return e;
}

/* keystore_read visitor: the first row (looked up by id). */
static bool
visit_row(KeyStore *ks, TupleDesc desc, HeapTuple tup, void *arg)
{
	*(KeyEntry **) arg = cache_row(ks, desc, tup);
	return true;
}

KeyEntry *
keyring_by_id(uint32 id)
{
	KeyEntry   *e;

	keystore_ready(&keyring_store);
	e = hash_search(keyring_store.hash[BY_ID], &id, HASH_FIND, NULL);
	stats_count(e ? PHI_STAT_KEY_CACHE_HIT : PHI_STAT_KEY_CACHE_MISS);
	if (e == NULL)
	{
		keystore_read(&keyring_store, BY_ID, Anum_keys_id, F_INT4EQ,
					  Int32GetDatum((int32) id), visit_row, &e);
		if (e == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("key id %u does not exist in this database's keyring", id),
					 errhint("The value was encrypted in another database or its key row was removed.")));
	}
	if (e->state == 'd')
		ereport(ERROR,
				(errcode(ERRCODE_PHI_KEY_DESTROYED),
				 errmsg("key \"%s\" version %d was destroyed", e->name, e->version),
				 errdetail("Values encrypted under key id %u can no longer be decrypted.", e->id)));
	return e;
}

typedef struct ActiveSearch
{
	bool		any;			/* the name has rows */
	KeyEntry   *active;
} ActiveSearch;

/* keystore_read visitor: the versions of a name, until the active one. */
static bool
visit_version(KeyStore *ks, TupleDesc desc, HeapTuple tup, void *arg)
{
	ActiveSearch *s = (ActiveSearch *) arg;
	bool		isnull;
	Datum		state = heap_getattr(tup, Anum_keys_state, desc, &isnull);

	s->any = true;
	if (isnull || strcmp(TextDatumGetCString(state), "active") != 0)
		return false;
	s->active = cache_row(ks, desc, tup);
	return true;
}

KeyEntry *
keyring_active(const char *name, int len)
{
	char		buf[KEY_NAME_MAX + 1];
	NameEntry  *n;
	KeyEntry   *e = NULL;
	ActiveSearch s = {false, NULL};

	keystore_name(name, len, buf);
	keystore_ready(&keyring_store);
	n = hash_search(keyring_store.hash[BY_NAME], buf, HASH_FIND, NULL);
	if (n != NULL)
		e = hash_search(keyring_store.hash[BY_ID], &n->active_id, HASH_FIND, NULL);
	stats_count(e ? PHI_STAT_KEY_CACHE_HIT : PHI_STAT_KEY_CACHE_MISS);
	if (e != NULL)
		return e;

	keystore_read(&keyring_store, BY_NAME, Anum_keys_name, F_TEXTEQ,
				  CStringGetTextDatum(buf), visit_version, &s);
	if (!s.any)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("key \"%s\" does not exist", buf),
				 errhint("Create it with phi_key_create().")));
	if (s.active == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_PHI_NO_ACTIVE_KEY),
				 errmsg("key \"%s\" has no active version", buf),
				 errdetail("Every version of the key was destroyed."),
				 errhint("Create a new version with phi_key_rotate().")));
	return s.active;
}

typedef struct NameCallCache
{
	uint64		generation;		/* keystore_generation when filled */
	int			len;
	char		name[KEY_NAME_MAX + 1];
	void	   *value;
} NameCallCache;

void *
keyring_by_name_arg(FunctionCallInfo fcinfo, int argno, KeyNameLookup lookup)
{
	NameCallCache *c = (NameCallCache *) fcinfo->flinfo->fn_extra;
	text	   *name;
	int			len;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("key name must not be null")));
	name = PG_GETARG_TEXT_PP(argno);
	len = VARSIZE_ANY_EXHDR(name);
	if (c == NULL)
	{
		c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(NameCallCache));
		fcinfo->flinfo->fn_extra = c;
		/* once per call site per query: see changes committed elsewhere */
		AcceptInvalidationMessages();
	}
	if (c->value && c->generation == keystore_generation && c->len == len &&
		memcmp(c->name, VARDATA_ANY(name), len) == 0)
		return c->value;
	c->value = lookup(VARDATA_ANY(name), len);	/* errors on a bad name */
	c->generation = keystore_generation;
	c->len = len;
	memcpy(c->name, VARDATA_ANY(name), len);
	return c->value;
}
