/*
 * phi_guard.h — declarations shared by the PostgreSQL glue in src/.
 *
 * Naming: SQL-callable C symbols are phi_guard_<what>; functions shared
 * between glue files are <file>_<what> (masterkey_, keyring_, ...); the
 * plain-C core in src/core uses phic_.
 */
#ifndef PHI_GUARD_H
#define PHI_GUARD_H

#include "postgres.h"
#include "core/status.h"
#include "executor/spi.h"

/*
 * The project's SQLSTATEs (class PH, documented in the README).  Standard
 * codes are used where one fits: 42704 unknown key, 42501 privileges,
 * 22P02/22P03 malformed phi_ciphertext, 42710 duplicate key name.
 */
#define ERRCODE_PHI_DECRYPT_FAILED		MAKE_SQLSTATE('P','H','0','0','1')
#define ERRCODE_PHI_KEY_DESTROYED		MAKE_SQLSTATE('P','H','0','0','2')
#define ERRCODE_PHI_NO_MASTER_KEY		MAKE_SQLSTATE('P','H','0','0','3')
#define ERRCODE_PHI_MASTER_KEY_MISMATCH MAKE_SQLSTATE('P','H','0','0','4')
#define ERRCODE_PHI_NO_ACTIVE_KEY		MAKE_SQLSTATE('P','H','0','0','5')

/* phi_guard.c */
extern char *phi_guard_master_key_file;
extern char *phi_guard_master_key_command;
extern bool phi_guard_preloaded;

/* masterkey.c: the current master key and old ones kept for unwrapping */
#define MASTERKEY_MAX 8			/* keys in the key file or command output */
#define MASTERKEY_NAME_MAX 63
extern void masterkey_load_at_startup(void);
extern const uint8 *masterkey_get(void);	/* current key; ERROR (PH003) when absent */
extern int	masterkey_count(void);
extern phic_status masterkey_unwrap(uint32 key_id, const uint8 *wrapped,
									uint8 *dek, int *slot);
extern const char *masterkey_fingerprint(int slot);
extern const char *masterkey_name(int slot);

/* errors.c */
extern void errors_raise_core(phic_status st, const char *what) pg_attribute_noreturn();

/* spi_plan.c */
extern SPIPlanPtr spi_kept_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *types);

/* keyring.c */
extern void keyring_init(void);

#endif
