/*
 * alerts.c — alerts derived from the audit log (SPEC §8), and the denial
 * entries they count.
 *
 * Each seal (audit_seal.c: the worker's, or a phi_audit_seal call) hands
 * the xid range of its new block to audit_alerts_scan, which runs
 * phi_guard.alert_scan (src/audit/alerts.sql) in the same transaction: an
 * alert is a row of phi_guard.alert_log and a NOTIFY phi_guard_alert that
 * commit with the block, or neither.  Working from sealed entries means an
 * alert never depends on the fate of the transaction that caused it: a
 * refusal rolls its transaction back, but its denial entry is written by
 * the audit worker in a transaction of its own (audit_access.c).
 *
 * audit_denial is that entry for phi_guard's own refusals (42501 of key
 * access rules and tenant keys, refused break-glass): an access event of
 * kind AUDIT_ACCESS_DENIED, one per reason and statement, counted like any
 * access.  Refused context tokens have their context_rejected entry
 * (src/context).
 *
 * Invariants: the settings (superuser-only) reach the scan as arguments,
 * so a library loaded without preloading, which defines none, scans with
 * the defaults; the reason of a denial names a rule and a key, never a
 * value; an alert never fails its seal for want of room in the
 * notification queue (alert_raise skips the NOTIFY then, with a WARNING).
 * No state, no locks of its own (sealing holds the block lock).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "fmgr.h"
#include "pgtime.h"
#include "utils/builtins.h"

#include "audit/alerts.h"
#include "audit/audit.h"
#include "common/catalog.h"
#include "common/spi.h"
#include "common/stats.h"

int			phi_guard_alert_bulk_rows = ALERT_BULK_ROWS_DEFAULT;
int			phi_guard_alert_denials = ALERT_DENIALS_DEFAULT;
char	   *phi_guard_alert_hours = NULL;
char	   *phi_guard_alert_timezone = NULL;

/* One "HH:MM" at s (its first five characters) into minutes since midnight; false if malformed. */
static bool
parse_hhmm(const char *s, int *minutes)
{
	int			h,
				m;

	if (!isdigit((unsigned char) s[0]) || !isdigit((unsigned char) s[1]) || s[2] != ':' ||
		!isdigit((unsigned char) s[3]) || !isdigit((unsigned char) s[4]))
		return false;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	*minutes = h * 60 + m;
	return h < 24 && m < 60;
}

/* phi_guard.alert_hours: "" or "HH:MM-HH:MM" with two different times. */
bool
alert_hours_check(char **newval, void **extra, GucSource source)
{
	const char *s = *newval;
	int			opens,
				closes;

	if (s == NULL || *s == '\0')
		return true;
	if (strlen(s) != 11 || s[5] != '-' || !parse_hhmm(s, &opens) ||
		!parse_hhmm(s + 6, &closes) || opens == closes)
	{
		GUC_check_errdetail("Working hours are written HH:MM-HH:MM, for example 07:00-19:00, with two different times; an empty string turns off_hours alerts off.");
		return false;
	}
	return true;
}

/* phi_guard.alert_timezone: a time zone name (or POSIX rule) PostgreSQL knows. */
bool
alert_timezone_check(char **newval, void **extra, GucSource source)
{
	if (*newval == NULL || **newval == '\0' || pg_tzset(*newval) == NULL)
	{
		GUC_check_errdetail("Give a time zone name such as UTC or America/New_York.");
		return false;
	}
	return true;
}

/* (alerts.h) */
int
audit_alerts_scan(uint64 lo, uint64 hi)
{
	Oid			types[6] = {XID8OID, XID8OID, INT8OID, INT8OID, TEXTOID, TEXTOID};
	Datum		values[6];
	bool		isnull;

	if (!OidIsValid(catalog_relid("alert_log")))
		return 0;
	values[0] = UInt64GetDatum(lo);
	values[1] = UInt64GetDatum(hi);
	values[2] = Int64GetDatum((int64) phi_guard_alert_bulk_rows);
	values[3] = Int64GetDatum((int64) phi_guard_alert_denials);
	values[4] = CStringGetTextDatum(phi_guard_alert_hours ? phi_guard_alert_hours : "");
	values[5] = CStringGetTextDatum(phi_guard_alert_timezone ? phi_guard_alert_timezone
									: ALERT_TIMEZONE_DEFAULT);
	(void) spi_run("SELECT phi_guard.alert_scan($1, $2, $3, $4, $5, $6)",
				   6, types, values, NULL, false);
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
}

/* (audit.h) */
void
audit_denial(const char *reason)
{
	stats_count(PHI_STAT_DENIED);
	/* one entry per reason and statement: the reason's hash keys the count */
	audit_access_note(AUDIT_ACCESS_DENIED,
					  hash_bytes((const unsigned char *) reason, (int) strlen(reason)),
					  reason);
}

PG_FUNCTION_INFO_V1(phi_guard_audit_denial);

/*
 * phi_guard.audit_denial(reason text): audit_denial for phi_guard's SQL
 * functions, called just before they raise the refusal.  Granted to no
 * one: SECURITY DEFINER functions of the extension owner call it.
 */
Datum
phi_guard_audit_denial(PG_FUNCTION_ARGS)
{
	audit_denial(text_to_cstring(PG_GETARG_TEXT_PP(0)));
	PG_RETURN_VOID();
}
