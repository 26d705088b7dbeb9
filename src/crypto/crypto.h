/*
 * crypto.h — src/crypto: field encryption (SPEC §2, §3).
 *
 * Owns:
 *   ciphertext_type.c  the phi_ciphertext type: text and binary forms and
 *                      the validating cast from bytea
 *   utf8.c             the encoding rule (text is encrypted as UTF-8) and
 *                      the wiping of transcoded plaintext copies
 *   encrypt.c          phi_encrypt, phi_rewrap, and encryption for
 *                      phi_guard's own callers (the token vault, column
 *                      migrations: sealing, moving a value onto its key's
 *                      active version)
 *   decrypt.c          THE decrypt API, with a per-call-site key cache,
 *                      used by every caller (phi_decrypt, phi_decrypt_bytea,
 *                      phi_rewrap, masked reads and detokenize in
 *                      src/tokens), and phi_decrypt, phi_decrypt_bytea
 *   access.c           whether the signed context may see a key's values
 *                      (the key's phi_key_access rule), decided once per
 *                      call site, context and key
 * May call: src/core, src/common, src/audit (access events), src/context
 * (the permissions of the signed context), src/keys.
 * Never calls src/tokens, which sits above it.
 *
 * Plaintext that this folder copies for its own use is wiped; what it
 * returns to a caller is the caller's to wipe (or to return to SQL).
 */
#ifndef PHI_GUARD_CRYPTO_H
#define PHI_GUARD_CRYPTO_H

#include "postgres.h"

#include "fmgr.h"

#include "audit/audit.h"
#include "core/aead.h"
#include "keys/keys.h"

/*
 * How much of a key's values the signed context may see (SPEC §5
 * phi_key_access), in increasing order.  A key without a rule: CLEAR (the
 * database roles alone decide, as in 0.2.0).
 */
typedef enum CryptoReveal
{
	CRYPTO_REVEAL_NOTHING,		/* no context, or none of the rule's permissions */
	CRYPTO_REVEAL_MASKED,		/* the rule's masked permission only */
	CRYPTO_REVEAL_CLEAR			/* the rule's permission, or no rule */
} CryptoReveal;

/*
 * A call site's memory of the key that opened its last value and of what
 * the context may see of it (a caller keeps one per call site, e.g. in
 * fn_extra).  All zero: empty.
 */
typedef struct DecryptCache
{
	uint64		generation;		/* keystore_generation when filled; 0: never */
	uint32		key_id;
	KeyEntry   *entry;			/* NULL: look the key up again */
	const KeyAccess *access;	/* the access rule of entry's name */
	uint64		context_generation; /* context_generation of 'reveal'; 0: none */
	CryptoReveal reveal;		/* what that context may see under 'access' */
	uint64		tenant_context; /* context_generation under which entry's
								 * tenant was the context's; 0: not checked */
} DecryptCache;

/* What crypto_decrypt opened. */
typedef struct Plaintext
{
	bytea	   *bytes;			/* palloc'd; the plaintext is VARDATA(bytes) */
	size_t		len;			/* its length */
	bool		from_bytea;		/* written by phi_encrypt(bytea, ...) */
	uint32		key_id;			/* the data key that opened it */
	char		key_name[KEY_NAME_MAX + 1];
	char		key_tenant[TENANT_MAX + 1]; /* "": a shared key */
	CryptoReveal reveal;		/* what the context may see of it */
	int			mask_kind;		/* phic_mask_kind bound to the key; -1: none */
} Plaintext;

/* utf8.c */

/*
 * Text in the database encoding as UTF-8 bytes: no copy in a UTF-8 (or
 * SQL_ASCII) database; otherwise a transcoded copy in the current memory
 * context that is wiped when that context is reset or deleted, also when
 * an error ends the statement.
 */
extern phic_bytes crypto_utf8(const char *p, int len);

/*
 * size bytes for a plaintext copy in the current memory context, wiped
 * when that context is reset or deleted (also after an error): the wipe is
 * arranged before anything is written.
 */
extern char *crypto_alloc_wiped(size_t size);

/* The optional text aad argument argno as UTF-8 bytes; ptr NULL when absent or NULL. */
extern phic_bytes crypto_aad_arg(FunctionCallInfo fcinfo, int argno);

/*
 * Decrypted UTF-8 (the first len bytes of VARDATA(utf8)) as text in the
 * database encoding, without PostgreSQL's conversion error (which would
 * quote plaintext).  utf8 and any partial result are wiped; utf8 is freed.
 */
extern text *crypto_utf8_to_server(bytea *utf8, size_t len);

/* decrypt.c */

/* The DecryptCache of a call site that keeps nothing else in fn_extra. */
extern DecryptCache *crypto_call_cache(FunctionCallInfo fcinfo);

/*
 * Decrypt value (a detoasted phi_ciphertext) under the key its header
 * names, authenticating aad (ptr NULL: none), for a caller that needs the
 * context to allow at least need (CRYPTO_REVEAL_NOTHING: no check, for
 * phi_rewrap, which returns no plaintext).  cache spares the key and rule
 * lookups while the key id repeats and no key cache was flushed, and the
 * decision while the context stays the same; on its first use pending
 * invalidations are accepted, so a rotate, destroy or rule change committed
 * elsewhere is seen even in a long transaction.  Counts the decryption in
 * the statistics; noting the access for the audit log is the caller's
 * (with out->key_id and out->key_name).  Errors: 22P03 malformed value,
 * 42704/PH002/PH004 from the keyring, 42501 when the context allows less
 * than need (before anything is decrypted), PH001 when it does not
 * authenticate.  A value under a tenant's key is refused (42501) to
 * every context but its tenant's, unless need is CRYPTO_REVEAL_NOTHING.
 */
extern void crypto_decrypt(DecryptCache *cache, bytea *value, phic_bytes aad,
						   CryptoReveal need, Plaintext *out);

/*
 * The row reference (SPEC §7) of value, which crypto_decrypt opened with
 * aad, for audit_access_reveal: the aad when one was given, else the
 * value's nonce.  ref points into value and aad.
 */
extern void crypto_row_ref(bytea *value, phic_bytes aad, AuditRowRef *ref);

/* access.c */

/*
 * What the context may see of the values of cache's key (cache->access
 * filled); 42501 when that is less than need.  Decided once per context
 * (context_generation) and rule.
 */
extern CryptoReveal crypto_access_check(DecryptCache *cache, CryptoReveal need);

/*
 * The same check for the values of key_name before any of them is looked
 * up (phi_detokenize: a refused context learns nothing, not even whether
 * a token exists); fills cache->access for key_name.
 */
extern CryptoReveal crypto_access_require(DecryptCache *cache, const char *key_name,
										  CryptoReveal need);

/*
 * The plaintext as text in the database encoding: 42804 when it was
 * written from bytea, 22021 when it is not UTF-8, 22P05 when the database
 * encoding cannot hold it.  p->bytes is wiped when refused or converted.
 */
extern text *crypto_plain_text(Plaintext *p);

/* encrypt.c */

/*
 * A new phi_ciphertext of pt under key (active, with its contexts), the
 * bytea flag and aad (ptr NULL: none) as given; counted as an encryption.
 */
extern bytea *crypto_seal(KeyEntry *key, bool bytea_flag, phic_bytes aad, phic_bytes pt);

/* What crypto_move_to_active did with a value. */
typedef enum CryptoMove
{
	CRYPTO_MOVE_DONE,			/* re-encrypted under the active version */
	CRYPTO_MOVE_CURRENT,		/* already under it: left alone */
	CRYPTO_MOVE_DESTROYED,		/* under a destroyed version: left alone */
	CRYPTO_MOVE_UNKNOWN_KEY,	/* under an id this keyring lacks: left alone */
	CRYPTO_MOVE_NOT_AUTHENTIC	/* did not authenticate with aad: left alone */
} CryptoMove;

/*
 * value (a detoasted phi_ciphertext) re-encrypted under the active version
 * of its own key (name and tenant), keeping aad and the bytea flag, for a
 * caller that moves a whole column (phi_rewrap_column): returns NULL,
 * leaving the value as it is, when *outcome is not CRYPTO_MOVE_DONE.  No
 * plaintext leaves (context rules do not apply, as for phi_rewrap); the
 * plaintext copy is wiped.  Errors: 22P03 malformed value, PH005 when its
 * key has no active version.
 */
extern bytea *crypto_move_to_active(bytea *value, phic_bytes aad, CryptoMove *outcome);

/*
 * Whether crypto_move_to_active would re-encrypt value (errors likewise);
 * when not, *why tells why (CURRENT, DESTROYED or UNKNOWN_KEY), as far as
 * it can be told without the aad.
 */
extern bool crypto_needs_move(bytea *value, CryptoMove *why);

/*
 * Encrypt text pt[0..len) (database encoding) under the active version of
 * key_name (the signed context's tenant's own when it has one), with an
 * optional text aad (NULL: none).  Not an audited access: callers audit
 * their own.
 */
extern bytea *crypto_encrypt_text(const char *key_name, const char *pt, int len,
								  const char *aad);

#endif
