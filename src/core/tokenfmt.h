/*
 * tokenfmt.h — the shapes of tokens (SPEC §4), from caller-supplied bytes
 * (random for non-deterministic domains, keyed-HMAC output for
 * deterministic ones).
 *
 *   opaque  "tok_" + 32 lower-case hex digits (16 bytes)
 *   digits  as many digits as the value (>= 5 digits, digits only); the
 *           last 4 kept; tokens of 12 or more digits always fail the Luhn
 *           check, so a token is never a valid card number
 *   ssn     "9dd-dd-" + the value's last 4: area 900-999 and group 01-99,
 *           an area the SSA never issues, so a token is never a real SSN
 */
#ifndef PHIC_TOKENFMT_H
#define PHIC_TOKENFMT_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

typedef enum phic_token_format
{
	PHIC_TOKEN_OPAQUE,
	PHIC_TOKEN_DIGITS,
	PHIC_TOKEN_SSN
} phic_token_format;

#define PHIC_TOKEN_OPAQUE_LEN 36
#define PHIC_TOKEN_SSN_LEN 11

/* Format from its name; -1 when unknown. */
extern int	phic_token_format_parse(const char *name, size_t len);

/* Bytes of input phic_token_make needs for a value of len bytes. */
extern size_t phic_token_seed_len(phic_token_format f, size_t len);

/*
 * Token for value[0..len) into out (room for max(len, 36) + 1 bytes),
 * setting *outlen.  PHIC_ERR_FORMAT when the value does not fit the format
 * (digits: non-digits or fewer than 5; ssn: not 9 digits as ddddddddd or
 * ddd-dd-dddd).  seed holds phic_token_seed_len() bytes.
 */
extern phic_status phic_token_make(phic_token_format f, const char *value, size_t len,
								   const uint8_t *seed, char *out, size_t *outlen);

/* Luhn checksum validity of a string of digits. */
extern int	phic_luhn_valid(const char *digits, size_t len);

#endif
