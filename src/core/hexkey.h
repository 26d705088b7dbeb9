/*
 * hexkey.h — parse the master key's text form: 64 hexadecimal characters,
 * surrounding white space ignored (SPEC §1).
 */
#ifndef PHIC_HEXKEY_H
#define PHIC_HEXKEY_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

#define PHIC_KEY_LEN 32

/*
 * Decode text of length len into out.  PHIC_ERR_FORMAT unless, once leading
 * and trailing white space is removed, exactly 64 hex digits remain.  out is
 * wiped on failure.
 */
extern phic_status phic_hexkey_parse(const char *text, size_t len,
									 uint8_t out[PHIC_KEY_LEN]);

#endif
