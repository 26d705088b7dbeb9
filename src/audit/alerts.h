/*
 * alerts.h — alerts raised from the sealed audit log (alerts.c, SPEC §8):
 * the scan sealing runs over each new block, and the alert settings that
 * src/phi_guard.c registers.  (Denial entries, which capabilities above
 * write, are declared in audit/audit.h.)
 */
#ifndef PHI_GUARD_AUDIT_ALERTS_H
#define PHI_GUARD_AUDIT_ALERTS_H

#include "postgres.h"

#include "utils/guc.h"

/* the settings (SPEC §8): superuser-set */
#define ALERT_BULK_ROWS_DEFAULT 1000
#define ALERT_DENIALS_DEFAULT 5
#define ALERT_TIMEZONE_DEFAULT "UTC"
extern int	phi_guard_alert_bulk_rows;	/* values one access entry may reveal; 0: off */
extern int	phi_guard_alert_denials;	/* refusals per subject and 5 minutes */
extern char *phi_guard_alert_hours;	/* "HH:MM-HH:MM", or "": no off_hours alerts */
extern char *phi_guard_alert_timezone;	/* the zone alert_hours are read in */

/* GUC check hooks: "HH:MM-HH:MM" or empty; a time zone name PostgreSQL knows */
extern bool alert_hours_check(char **newval, void **extra, GucSource source);
extern bool alert_timezone_check(char **newval, void **extra, GucSource source);

/*
 * Raise the alerts of the entries with lo <= xid < hi (the block just
 * sealed): rows of phi_guard.alert_log and NOTIFY phi_guard_alert, in the
 * sealing transaction.  Called inside sealing's SPI connection, as the
 * extension's owner.  Does nothing in a database whose phi_guard objects
 * predate alerts (ALTER EXTENSION UPDATE not run yet).  Returns the alerts
 * raised.
 */
extern int	audit_alerts_scan(uint64 lo, uint64 hi);

#endif
