/*
 * phi_guard.c — module magic, _PG_init and the settings (GUCs).
 *
 * _PG_init only defines settings and hands over to each subsystem.  The
 * master key is read here when, and only when, the library is being loaded
 * through shared_preload_libraries: i.e. once, in the postmaster, before any
 * backend forks.  Loaded any other way (CREATE EXTENSION alone, LOAD), every
 * function that needs keys fails with a hint to preload.
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/guc.h"

#include "audit/alerts.h"
#include "audit/anchor.h"
#include "audit/audit.h"
#include "audit/seal.h"
#include "common/common.h"
#include "context/context.h"
#include "guard/guard.h"
#include "keys/keys.h"
#include "phi_guard.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

static const struct config_enum_entry access_audit_options[] = {
	{"durable", AUDIT_MODE_DURABLE, false},
	{"async", AUDIT_MODE_ASYNC, false},
	{NULL, 0, false}
};

static const struct config_enum_entry standby_access_options[] = {
	{"log", AUDIT_STANDBY_LOG, false},
	{"refuse", AUDIT_STANDBY_REFUSE, false},
	{NULL, 0, false}
};

/* Settings of the request context and break-glass: definable at any time. */
static void
define_context_settings(void)
{
	DefineCustomIntVariable("phi_guard.context_leeway",
							"Clock skew allowed when checking a context token's exp and nbf.",
							NULL,
							&phi_guard_context_leeway,
							30, 0, 300,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.context_max_lifetime",
							"Longest lifetime accepted for a context token (exp - now and exp - iat); 0 means no limit.",
							NULL,
							&phi_guard_context_max_lifetime,
							3600, 0, 86400 * 7,
							PGC_SUSET,
							GUC_UNIT_S,
							NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.break_glass_max_minutes",
							"Ceiling on the minutes of one break-glass grant.",
							NULL,
							&phi_guard_break_glass_max_minutes,
							60, 1, 1440,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.break_glass_min_reason",
							"Fewest characters a break-glass reason must have.",
							NULL,
							&phi_guard_break_glass_min_reason,
							10, 1, 1000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("phi_guard.context_issuer",
							   "Issuer a context token must name in its iss claim; empty: not checked.",
							   NULL,
							   &phi_guard_context_issuer,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("phi_guard.context_audience",
							   "Audience a context token's aud claim (a string or an array) must name; empty: not checked.",
							   NULL,
							   &phi_guard_context_audience,
							   "",
							   PGC_SUSET,
							   0,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("phi_guard.context_token",
							   "On a Citus cluster: the context token phi_set_context hands to the nodes of the transaction.",
							   "Set by phi_set_context with SET LOCAL; honoured only where Citus is installed and only in the transaction that set it.",
							   &phi_guard_context_token,
							   "",
							   PGC_USERSET,
							   GUC_NO_SHOW_ALL | GUC_NOT_IN_SAMPLE | GUC_DISALLOW_IN_FILE |
							   GUC_NO_RESET_ALL | GUC_SUPERUSER_ONLY,
							   context_token_check, context_token_assigned, NULL);
}

void
_PG_init(void)
{
	/*
	 * Defining a PGC_POSTMASTER setting after start-up is FATAL, so a library
	 * loaded late defines none: its key functions fail with PH003 instead.
	 */
	if (!process_shared_preload_libraries_in_progress)
	{
		define_context_settings();
		MarkGUCPrefixReserved("phi_guard");
		context_init();
		breakglass_init();
		return;
	}

	DefineCustomStringVariable("phi_guard.master_key_file",
							   "Path of the file holding the master key (64 hex characters).",
							   "Read once at server start; the file must not be accessible by group or others.",
							   &phi_guard_master_key_file,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomStringVariable("phi_guard.master_key_command",
							   "Shell command that prints the master key (64 hex characters).",
							   "Run once at server start, for example to fetch the key from a KMS.",
							   &phi_guard_master_key_command,
							   "",
							   PGC_POSTMASTER,
							   GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.audit_seal_interval",
							"Milliseconds between seals of a database's audit log by its audit worker.",
							NULL,
							&phi_guard_audit_seal_interval,
							1000, 10, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.access_queue_size",
							"Access entries that shared memory holds for the audit workers, all databases together.",
							"About 2.6 kB each, and one more per 2.6 kB of an entry's row references beyond its first kB; one database may hold at most half of them.  An access that finds no room within 1 s is refused (PH006).",
							&phi_guard_access_queue_size,
							4096, 16, 262144,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.access_rows_max",
							"Row references an access entry lists, per statement and key; further distinct ones are counted.",
							NULL,
							&phi_guard_access_rows_max,
							1000, 0, 100000,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.audit_compact_rows",
							"Rows from which a statement's row entries are compact, naming one statement entry; 0: never.",
							"Compact entries hold kind, table, row_key, columns and stmt; the statement entry holds who, when, where and why.",
							&phi_guard_audit_compact_rows,
							100, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.bulk_disclosure_limit",
							"Values one statement may reveal under a request context; 0: no limit.",
							"A statement that would reveal more fails with SQLSTATE 54000 before the value leaves.",
							&phi_guard_bulk_disclosure_limit,
							0, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.alert_bulk_rows",
							"A bulk_disclosure alert is raised for a statement that reveals more values of one key than this; 0: never.",
							NULL,
							&phi_guard_alert_bulk_rows,
							ALERT_BULK_ROWS_DEFAULT, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.alert_denials",
							"A repeated_denials alert is raised when one app user or database role is refused more often than this within 5 minutes.",
							"Refusals are rejected context tokens, phi_guard's 42501 refusals and refused break-glass.",
							&phi_guard_alert_denials,
							ALERT_DENIALS_DEFAULT, 0, INT_MAX,
							PGC_SUSET,
							0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("phi_guard.alert_hours",
							   "Working hours, HH:MM-HH:MM in phi_guard.alert_timezone: a disclosure outside them raises an off_hours alert; empty: never.",
							   "At most one off_hours alert per app user (or database role) and hour.",
							   &phi_guard_alert_hours,
							   "",
							   PGC_SUSET,
							   0,
							   alert_hours_check, NULL, NULL);
	DefineCustomStringVariable("phi_guard.alert_timezone",
							   "Time zone in which phi_guard.alert_hours are read.",
							   NULL,
							   &phi_guard_alert_timezone,
							   ALERT_TIMEZONE_DEFAULT,
							   PGC_SUSET,
							   0,
							   alert_timezone_check, NULL, NULL);
	DefineCustomStringVariable("phi_guard.audit_min_retention",
							   "Minimum age of an audit block before phi_audit_prune may remove it (an interval).",
							   "HIPAA documentation is kept six years; \"0\" allows pruning any archived block.",
							   &phi_guard_audit_min_retention,
							   AUDIT_MIN_RETENTION_DEFAULT,
							   PGC_SUSET,
							   0,
							   audit_min_retention_check, NULL, NULL);
	DefineCustomStringVariable("phi_guard.audit_anchor_command",
							   "Shell command run after each seal with the new phi_audit_digest() on its standard input; empty: off.",
							   "%b is replaced by the block number, %o by the database's OID, %% by %; the database's name is in PHI_GUARD_DATABASE.",
							   &phi_guard_audit_anchor_command,
							   "",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY | GUC_NOT_IN_SAMPLE,
							   NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.audit_anchor_timeout",
							"Milliseconds an audit anchor command may run before it is killed and retried.",
							NULL,
							&phi_guard_audit_anchor_timeout,
							60000, 1000, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	DefineCustomEnumVariable("phi_guard.access_audit",
							 "durable: a statement's first revealed value waits until an entry naming it is committed; async: access entries are written within a seal interval.",
							 "In async mode a crash may lose up to one seal interval of access entries.",
							 &phi_guard_access_audit,
							 AUDIT_MODE_DURABLE, access_audit_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomEnumVariable("phi_guard.standby_access",
							 "On a hot standby, which cannot write the audit log: log access entries to the server log, or refuse accesses that reveal values.",
							 NULL,
							 &phi_guard_standby_access,
							 AUDIT_STANDBY_LOG, standby_access_options,
							 PGC_SUSET,
							 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.max_active_databases",
							"Databases that can have access entries waiting, entries to seal or an audit worker at the same time.",
							"An idle database holds no slot; the number of databases is not limited.",
							&phi_guard_max_active_databases,
							1024, 1, 65536,
							PGC_POSTMASTER,
							0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("phi_guard.key_cache_size",
							"Unwrapped data keys, and index keys, a backend keeps in memory (least recently used evicted).",
							NULL,
							&phi_guard_key_cache_size,
							1000, 16, 1000000,
							PGC_USERSET,
							0,
							NULL, NULL, NULL);
	define_context_settings();
	MarkGUCPrefixReserved("phi_guard");

	phi_guard_preloaded = true;
	context_init();
	breakglass_init();
	masterkey_load_at_startup();
	audit_init();
	stats_init();
	guard_init();
}
