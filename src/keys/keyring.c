/*
 * keyring.c — data keys (SPEC §2, §9): the phi_guard.keys store, the key
 * for a key id, the active version of a key name of a tenant or shared,
 * the choice between them for a tenant, and the per-call-site cache of a
 * key-name argument.
 *
 * Cache (keystore.c keeps it coherent and bounded): id -> KeyEntry holding
 * prepared AES-GCM contexts (destroyed keys are cached as such, without
 * contexts), at most phi_guard.key_cache_size of them, least recently used
 * evicted; and (tenant, name) -> whether the tenant has versions of the
 * name and the id of its active one, negative answers included, so that
 * "this tenant has no key of its own" costs one hash probe.  Name entries
 * hold no key material; past four times key_cache_size they are all
 * forgotten at once.  A row is unwrapped once per backend until the next
 * change of phi_guard.keys or its eviction.
 *
 * Tenants: a database not yet updated to 0.3.0 has no tenant column; its
 * keys are all shared and read through the old (name, version) index.
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/parallel.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"

#include "common/stats.h"
#include "context/context.h"
#include "keys/keys.h"
#include "keys/keystore.h"
#include "phi_guard.h"

/* columns of phi_guard.keys, checked against the table on load */
#define Anum_keys_id 1
#define Anum_keys_name 2
#define Anum_keys_version 3
#define Anum_keys_state 4
#define Anum_keys_wrapped 5
#define Natts_keys_shared 6		/* before 0.3.0: no tenant column */
#define Natts_keys 7

#define BY_ID 0					/* hash tables of the store */
#define BY_NAME 1

#define IDX_ID 0				/* indexes of the store */
#define IDX_TENANT_NAME 1		/* 0.3.0: (tenant, name, version) */
#define IDX_NAME 2				/* before 0.3.0: (name, version) */

#define NAMES_PER_KEY 4			/* name entries kept per cacheable key */

typedef struct NameEntry
{
	KeyName		key;			/* hash key */
	bool		exists;			/* the tenant has versions of the name */
	uint32		active_id;		/* 0: none active */
} NameEntry;

KeyStore	keyring_store = {
	.what = "data key",
	.table = "keys",
	.table_what = "keyring table",
	.index = {"keys_pkey", "keys_tenant_name_version_key", "keys_name_version_key"},
	.hash_def = {
		{"phi_guard keys by id", sizeof(uint32), sizeof(KeyEntry), HASH_BLOBS},
		{"phi_guard keys by name", sizeof(KeyName), sizeof(NameEntry), HASH_BLOBS},
	},
	.bounded = true,
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
	KeyEntry   *e = (KeyEntry *) arg;

	e->gcm = keystore_gcm(&e->slot, key, "prepare data key");
}

/* kn for tenant (NULL: shared) and the C string name. */
static void
key_name(KeyName *kn, const char *tenant, const char *name)
{
	memset(kn, 0, sizeof(*kn));
	if (tenant)
		strlcpy(kn->tenant, tenant, sizeof(kn->tenant));
	strlcpy(kn->name, name, sizeof(kn->name));
}

/* Forget every name entry when there are too many (they hold no keys). */
static void
bound_names(KeyStore *ks)
{
	HASH_SEQ_STATUS seq;
	NameEntry  *n;

	if (hash_get_num_entries(ks->hash[BY_NAME]) < (long) phi_guard_key_cache_size * NAMES_PER_KEY)
		return;
	hash_seq_init(&seq, ks->hash[BY_NAME]);
	while ((n = hash_seq_search(&seq)) != NULL)
		(void) hash_search(ks->hash[BY_NAME], &n->key, HASH_REMOVE, NULL);
}

/*
 * The cached entry of one phi_guard.keys row, admitted and unwrapped if it
 * is not cached yet (a cached entry is current: any change of the table
 * flushes the cache before the row can be read again).
 */
static KeyEntry *
cache_row(KeyStore *ks, TupleDesc desc, HeapTuple tup)
{
	Datum		values[Natts_keys];
	bool		nulls[Natts_keys];
	uint32		id;
	bool		found;
	KeyEntry   *e;

	if (desc->natts != (ks->tenant_attno ? Natts_keys : Natts_keys_shared) ||
		(ks->tenant_attno && ks->tenant_attno != Natts_keys))
		elog(ERROR, "phi_guard.keys has an unexpected shape");
	heap_deform_tuple(tup, desc, values, nulls);
	id = (uint32) DatumGetInt32(values[Anum_keys_id - 1]);
	e = hash_search(ks->hash[BY_ID], &id, HASH_ENTER, &found);
	if (found)
		keystore_touch(ks, &e->slot);
	else
	{
		e->version = DatumGetInt32(values[Anum_keys_version - 1]);
		strlcpy(e->name, TextDatumGetCString(values[Anum_keys_name - 1]), sizeof(e->name));
		e->tenant[0] = '\0';
		if (ks->tenant_attno && !nulls[ks->tenant_attno - 1])
			strlcpy(e->tenant, TextDatumGetCString(values[ks->tenant_attno - 1]), sizeof(e->tenant));
		e->state = state_code(TextDatumGetCString(values[Anum_keys_state - 1]));
		if (e->state != 'd' && nulls[Anum_keys_wrapped - 1])
			e->state = 'd';
		e->gcm = NULL;
		keystore_admit(ks, BY_ID, e, &e->slot);
		if (e->state != 'd')
		{
			PG_TRY();
			{
				keystore_unwrap(ks, id, DatumGetByteaPP(values[Anum_keys_wrapped - 1]),
								prepare_gcm, e);
			}
			PG_CATCH();
			{
				keystore_evict(ks, &e->slot);
				PG_RE_THROW();
			}
			PG_END_TRY();
		}
	}
	if (e->state == 'a')
	{
		KeyName		kn;
		NameEntry  *n;

		key_name(&kn, e->tenant, e->name);
		bound_names(ks);
		n = hash_search(ks->hash[BY_NAME], &kn, HASH_ENTER, NULL);
		n->exists = true;
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

/*
 * The entry of key id (NULL: no such row), read when not cached; counted
 * as a key cache hit or miss when count.
 */
static KeyEntry *
lookup_id(uint32 id, bool count)
{
	KeyEntry   *e;

	keystore_ready(&keyring_store);
	e = hash_search(keyring_store.hash[BY_ID], &id, HASH_FIND, NULL);
	if (count)
		stats_count(e ? PHI_STAT_KEY_CACHE_HIT : PHI_STAT_KEY_CACHE_MISS);
	if (e)
		keystore_touch(&keyring_store, &e->slot);
	else
		keystore_read(&keyring_store, IDX_ID, Anum_keys_id, F_INT4EQ,
					  Int32GetDatum((int32) id), visit_row, &e);
	return e;
}

KeyEntry *
keyring_lookup_id(uint32 id)
{
	return lookup_id(id, true);
}

/* e, unless it is NULL (42704) or destroyed (PH002). */
static KeyEntry *
usable(KeyEntry *e, uint32 id)
{
	if (e == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("key id %u does not exist in this database's keyring", id),
				 errhint("The value was encrypted in another database or its key row was removed.")));
	if (e->state == 'd')
		ereport(ERROR,
				(errcode(ERRCODE_PHI_KEY_DESTROYED),
				 errmsg("key \"%s\" version %d was destroyed", e->name, e->version),
				 errdetail("Values encrypted under key id %u can no longer be decrypted.", e->id)));
	return e;
}

KeyEntry *
keyring_by_id(uint32 id)
{
	return usable(lookup_id(id, true), id);
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

/*
 * The name entry of kn, from the versions of kn when it is not cached
 * (*cached false).  Valid until the next keys lookup.
 */
static NameEntry *
name_entry(const KeyName *kn, bool *cached)
{
	KeyStore   *ks = &keyring_store;
	ActiveSearch s = {false, NULL};
	NameEntry  *n;

	keystore_ready(ks);
	n = hash_search(ks->hash[BY_NAME], kn, HASH_FIND, NULL);
	*cached = n != NULL;
	if (n)
		return n;
	if (ks->tenant_attno != 0)
	{
		ScanKeyData keys[2];

		keystore_name_keys(ks, Anum_keys_name, keys, kn);
		keystore_read_keys(ks, IDX_TENANT_NAME, keys, 2, visit_version, &s);
	}
	else if (kn->tenant[0] == '\0')
		keystore_read(ks, IDX_NAME, Anum_keys_name, F_TEXTEQ,
					  CStringGetTextDatum(kn->name), visit_version, &s);
	/* no lock since the read: the cache is as it left it */
	bound_names(ks);
	n = hash_search(ks->hash[BY_NAME], kn, HASH_ENTER, NULL);
	n->exists = s.any;
	n->active_id = s.active ? s.active->id : 0;
	return n;
}

const char *
keyring_tenant_of_name(const char *tenant, const char *name)
{
	KeyName		kn;
	bool		cached;

	if (tenant == NULL || tenant[0] == '\0' || strlen(tenant) > TENANT_MAX)
		return NULL;
	key_name(&kn, tenant, name);
	return name_entry(&kn, &cached)->exists ? tenant : NULL;
}

KeyEntry *
keyring_active_of(const char *tenant, const char *name, int len)
{
	char		buf[KEY_NAME_MAX + 1];
	KeyName		kn;
	NameEntry  *n;
	KeyEntry   *e;
	uint32		id;
	bool		cached;

	keystore_name(name, len, buf);
	key_name(&kn, tenant, buf);
	n = name_entry(&kn, &cached);
	if (!n->exists)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 kn.tenant[0] ? errmsg("key \"%s\" of tenant \"%s\" does not exist", buf, kn.tenant)
				 : errmsg("key \"%s\" does not exist", buf),
				 errhint("Create it with phi_key_create().")));
	if (n->active_id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_PHI_NO_ACTIVE_KEY),
				 kn.tenant[0] ? errmsg("key \"%s\" of tenant \"%s\" has no active version", buf, kn.tenant)
				 : errmsg("key \"%s\" has no active version", buf),
				 errdetail("Every version of the key was destroyed."),
				 errhint("Create a new version with phi_key_rotate().")));
	e = hash_search(keyring_store.hash[BY_ID], &n->active_id, HASH_FIND, NULL);
	/* one lookup: a hit when both the name and its key were cached */
	stats_count(cached && e ? PHI_STAT_KEY_CACHE_HIT : PHI_STAT_KEY_CACHE_MISS);
	if (e)
	{
		keystore_touch(&keyring_store, &e->slot);
		return e;
	}
	id = n->active_id;			/* n may go with the read */
	return usable(lookup_id(id, false), id);
}

KeyEntry *
keyring_for_tenant(const char *tenant, const char *name, int len)
{
	char		buf[KEY_NAME_MAX + 1];

	keystore_name(name, len, buf);
	return keyring_active_of(keyring_tenant_of_name(tenant, buf), buf, len);
}

const char *
keyring_choosing_tenant(void)
{
	if (IsParallelWorker())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("phi_guard cannot choose a key by name in a parallel worker"),
				 errdetail("The signed context, whose tenant chooses the key, is held by the leader process only."),
				 errhint("Mark a function that calls phi_encrypt, phi_blind_index or phi_tokenize PARALLEL RESTRICTED.")));
	return context_tenant_id();
}

KeyEntry *
keyring_active(const char *name, int len)
{
	return keyring_for_tenant(keyring_choosing_tenant(), name, len);
}

typedef struct NameCallCache
{
	uint64		generation;		/* keystore_generation when filled */
	uint64		context_generation; /* context_generation when filled */
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
	if (c->value && c->generation == keystore_generation &&
		c->context_generation == context_generation && c->len == len &&
		memcmp(c->name, VARDATA_ANY(name), len) == 0)
		return c->value;
	c->value = lookup(VARDATA_ANY(name), len);	/* errors on a bad name */
	c->generation = keystore_generation;
	c->context_generation = context_generation;
	c->len = len;
	memcpy(c->name, VARDATA_ANY(name), len);
	return c->value;
}
