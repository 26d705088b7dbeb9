/*
 * format.c — the setting-independent text forms of common/format.h.
 *
 * Audit records and digests must be byte for byte the same in every
 * session, so nothing here reads TimeZone, DateStyle or any other GUC.
 * No state, no locks.
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "utils/datetime.h"
#include "utils/timestamp.h"

#include "common/format.h"

static const char hex_digits[] = "0123456789abcdef";

void
format_utc_timestamp(StringInfo buf, TimestampTz ts)
{
	struct pg_tm tm;
	fsec_t		fsec;

	if (TIMESTAMP_NOT_FINITE(ts))
	{
		appendStringInfoString(buf, TIMESTAMP_IS_NOBEGIN(ts) ? "-infinity" : "infinity");
		return;
	}
	/* a NULL time zone pointer makes timestamp2tm work in UTC */
	if (timestamp2tm(ts, NULL, &tm, &fsec, NULL, NULL) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("timestamp out of range")));
	appendStringInfo(buf, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ",
					 tm.tm_year, tm.tm_mon, tm.tm_mday,
					 tm.tm_hour, tm.tm_min, tm.tm_sec, (int) fsec);
}

void
format_hex(StringInfo buf, const uint8 *data, size_t len)
{
	enlargeStringInfo(buf, (int) (2 * len));
	format_hex_into(buf->data + buf->len, data, len);
	buf->len += (int) (2 * len);
}

void
format_hex_into(char *dst, const uint8 *data, size_t len)
{
	for (size_t i = 0; i < len; i++)
	{
		dst[2 * i] = hex_digits[data[i] >> 4];
		dst[2 * i + 1] = hex_digits[data[i] & 15];
	}
	dst[2 * len] = '\0';
}

bool
format_type_text_is_stable(Oid type)
{
	switch (type)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case OIDOID:
		case NUMERICOID:
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
		case NAMEOID:
		case UUIDOID:
		case BOOLOID:
			return true;
		default:
			return false;
	}
}
