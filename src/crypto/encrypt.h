/*
 * encrypt.h — field encryption for phi_guard's own callers (encrypt.c).
 */
#ifndef PHI_GUARD_ENCRYPT_H
#define PHI_GUARD_ENCRYPT_H

#include "postgres.h"

extern bytea *encrypt_text_under(const char *key_name, const char *pt, int len,
								 const char *aad);
extern text *decrypt_text_value(bytea *value, const char *aad, uint32 *key_id,
								char *key_name);

#endif
