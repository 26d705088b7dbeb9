/*
 * indexkey.h — per key name, a root key for blind indexes and token
 * fingerprints (SPEC §4), independent of the name's data-key versions so
 * that blind indexes and deterministic tokens survive rotation.
 */
#ifndef PHI_GUARD_INDEXKEY_H
#define PHI_GUARD_INDEXKEY_H

#include "core/hmac.h"

typedef struct IndexKey
{
	char		name[64];		/* hash key */
	phic_hmac  *blind;			/* HMAC(root, "phi_guard.blind_index.v1") */
	phic_hmac  *token;			/* HMAC(root, "phi_guard.token.v1") */
} IndexKey;

/*
 * The index keys of a key name; 42704 when the name is unknown, PH005 when
 * every version of the name was destroyed (the index key went with them).  Valid until the next lookup or lock acquisition.
 */
extern const IndexKey *indexkey_get(const char *name, int len);

/* Inside an SPI connection of a key lifecycle function. */
extern void indexkey_create(const char *name);
extern void indexkey_destroy(const char *name);

extern void indexkey_init(void);

#endif
