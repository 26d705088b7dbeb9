/*
 * errors.c — the one place where failures of the plain-C core become
 * PostgreSQL errors (like pgcrypto's px_THROW_ERROR), and the error of a
 * library that was not preloaded.  Messages name the operation and never
 * include data, keys or ciphertext.
 *
 * State: phi_guard_preloaded, written once by _PG_init in the postmaster
 * and inherited by every backend.  No locks.
 */
#include "postgres.h"

#include <openssl/err.h>

#include "common/errors.h"
#include "phi_guard.h"

bool		phi_guard_preloaded = false;

void
errors_raise_core(phic_status st, const char *what)
{
	unsigned long ossl = ERR_get_error();
	const char *reason = ossl ? ERR_reason_error_string(ossl) : NULL;

	ERR_clear_error();
	switch (st)
	{
		case PHIC_ERR_AUTH:
			ereport(ERROR,
					(errcode(ERRCODE_PHI_DECRYPT_FAILED),
					 errmsg("could not %s: authentication failed", what),
					 errdetail("The value was altered, was encrypted under another key, or the aad differs from the one given at encryption."),
					 errhint("Pass the same aad that was given to phi_encrypt().")));
			break;
		case PHIC_ERR_FORMAT:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("could not %s: malformed input", what)));
			break;
		case PHIC_ERR_RANDOM:
			ereport(ERROR,
					(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
					 errmsg("could not %s: random number generator failed", what),
					 reason ? errdetail("OpenSSL: %s.", reason) : 0));
			break;
		case PHIC_ERR_NOMEM:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("could not %s: out of memory", what)));
			break;
		case PHIC_ERR_EXPIRED:
		case PHIC_ERR_NOT_YET_VALID:
		case PHIC_ERR_LIFETIME:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_AUTHORIZATION_SPECIFICATION),
					 errmsg("could not %s: token is %s", what,
							st == PHIC_ERR_EXPIRED ? "expired" :
							st == PHIC_ERR_NOT_YET_VALID ? "not yet valid" :
							"valid for longer than allowed")));
			break;
		case PHIC_ERR_CRYPTO:
		case PHIC_OK:
			break;
	}
	ereport(ERROR,
			(errcode(ERRCODE_EXTERNAL_ROUTINE_EXCEPTION),
			 errmsg("could not %s: OpenSSL failure", what),
			 reason ? errdetail("OpenSSL: %s.", reason) : 0));
	pg_unreachable();
}

void
errors_require_preloaded(const char *detail)
{
	if (phi_guard_preloaded)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_PHI_NO_MASTER_KEY),
			 errmsg("phi_guard is not loaded through shared_preload_libraries"),
			 detail ? errdetail("%s", detail) : 0,
			 errhint("Add phi_guard to shared_preload_libraries in postgresql.conf and restart the server.")));
}
