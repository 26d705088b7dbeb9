/*
 * vault.h — rows of phi_guard.token_vault, read and written without SQL
 * where that is safe (vault.c), for token.c.
 */
#ifndef PHI_GUARD_TOKENS_VAULT_H
#define PHI_GUARD_TOKENS_VAULT_H

#include "core/tokenfmt.h"
#include "tokens/tokens.h"

#define DOMAIN_MAX 63

/* vault columns */
#define Anum_vault_domain 1
#define Anum_vault_token 2
#define Anum_vault_fingerprint 3
#define Anum_vault_value 4
#define Anum_vault_created_at 5
#define Natts_vault 5

/* A token domain as a call site caches it (token.c fills it). */
typedef struct Domain
{
	char		name[DOMAIN_MAX + 1];
	char		key_name[KEY_NAME_MAX + 1];
	phic_token_format format;
	bool		deterministic;
	Oid			vault;			/* where the vault's rows are (a Citus shard) */
	Oid			vault_pkey;		/* (domain, token) */
	Oid			vault_fp;		/* unique B-tree: the insert's arbiter */
	Oid			vault_fp_hash;	/* hash index: lookups */
	Oid			domains;		/* phi_guard.token_domains */
	bool		direct;			/* both are their own storage: inserts may skip SQL */
	ItemPointerData locked_tid; /* the domain's row, key-share locked */
	LocalTransactionId locked_lxid; /* ... by this (sub)transaction */
	SubTransactionId locked_subxid;
	uint64		key_generation; /* index key cached under keystore_generation */
	uint64		key_context;	/* ... and context_generation (its tenant chooses it) */
	const IndexKey *key;
	uint32		name_hash;		/* groups the domain's tokenize access events */
	DecryptCache decrypt;		/* the data key that opened the last value */
} Domain;

/*
 * Look a vault row up by (domain, token) through the primary key, or by
 * fingerprint through the hash index (rechecking, since hash scans are
 * lossy); returns the requested column (palloc'd copy), *found false when
 * absent.  latest: use the latest snapshot, which also sees rows this
 * statement or a concurrent committed transaction inserted since the
 * statement began (as RI checks do); otherwise the statement's own
 * snapshot (the cheap first look).
 */
extern Datum vault_lookup(const Domain *d, bool by_fingerprint, Datum key, AttrNumber want,
						  bool latest, bool *found);

/*
 * Store (token, fingerprint fp or NULL, sealed value) in d's domain for
 * the vault's owner; the token when it went in, NULL when a row with that
 * token or fingerprint is already there.
 */
extern text *vault_insert(Domain *d, const char *token, bytea *fp, Datum sealed);

#endif
