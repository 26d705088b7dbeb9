/*
 * status.c — names of the core's result codes.
 */
#include "status.h"

const char *
phic_status_str(phic_status st)
{
	switch (st)
	{
		case PHIC_OK:
			return "ok";
		case PHIC_ERR_AUTH:
			return "authentication failed";
		case PHIC_ERR_FORMAT:
			return "malformed input";
		case PHIC_ERR_CRYPTO:
			return "cryptographic library failure";
		case PHIC_ERR_RANDOM:
			return "random generator failure";
		case PHIC_ERR_NOMEM:
			return "out of memory";
		case PHIC_ERR_EXPIRED:
			return "token expired";
		case PHIC_ERR_NOT_YET_VALID:
			return "token not yet valid";
		case PHIC_ERR_LIFETIME:
			return "token lifetime too long";
	}
	return "unknown status";
}
