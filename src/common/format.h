/*
 * format.h — text forms that depend on no session setting (format.c):
 * UTC ISO-8601 timestamps, lower-case hex, and which types' own output
 * functions are such a form.
 */
#ifndef PHI_GUARD_COMMON_FORMAT_H
#define PHI_GUARD_COMMON_FORMAT_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "lib/stringinfo.h"

/*
 * Append ts as "YYYY-MM-DDTHH:MM:SS.ffffffZ" in UTC, whatever TimeZone and
 * DateStyle say; "infinity" or "-infinity" when not finite.  Serves
 * timestamp and timestamptz alike (a timestamp is read as if UTC).
 */
extern void format_utc_timestamp(StringInfo buf, TimestampTz ts);

/* Append the 2 * len lower-case hex digits of data. */
extern void format_hex(StringInfo buf, const uint8 *data, size_t len);

/*
 * Write the 2 * len lower-case hex digits of data and a NUL into dst
 * (2 * len + 1 bytes).  Allocates nothing: safe outside a transaction.
 */
extern void format_hex_into(char *dst, const uint8 *data, size_t len);

/*
 * Whether values of type (not looked through domains) print the same in
 * every session with their output function: the integers, numeric, oid,
 * text, varchar, bpchar, name, uuid and bool.
 */
extern bool format_type_text_is_stable(Oid type);

#endif
