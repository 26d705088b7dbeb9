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

#include "audit/audit.h"
#include "common/common.h"
#include "context/context.h"
#include "guard/guard.h"
#include "keys/keys.h"
#include "phi_guard.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

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
							"Milliseconds between seals of the audit log by the background worker.",
							NULL,
							&phi_guard_audit_seal_interval,
							1000, 10, 3600000,
							PGC_SIGHUP,
							GUC_UNIT_MS,
							NULL, NULL, NULL);
	define_context_settings();
	MarkGUCPrefixReserved("phi_guard");

	phi_guard_preloaded = true;
	context_init();
	breakglass_init();
	masterkey_load_at_startup();
	audit_shmem_init();
	audit_access_init();
	stats_init();
	guard_init();
}
