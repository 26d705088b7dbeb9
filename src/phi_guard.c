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

#include "audit.h"
#include "indexkey.h"
#include "phi_guard.h"

PG_MODULE_MAGIC;

char	   *phi_guard_master_key_file = NULL;
char	   *phi_guard_master_key_command = NULL;
bool		phi_guard_preloaded = false;

void		_PG_init(void);

void
_PG_init(void)
{
	/*
	 * Defining a PGC_POSTMASTER setting after start-up is FATAL, so a library
	 * loaded late defines none: its key functions fail with PH003 instead.
	 */
	if (!process_shared_preload_libraries_in_progress)
	{
		MarkGUCPrefixReserved("phi_guard");
		keyring_init();
		indexkey_init();
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
	MarkGUCPrefixReserved("phi_guard");

	phi_guard_preloaded = true;
	masterkey_load_at_startup();
	keyring_init();
	indexkey_init();
	audit_access_init();
}
