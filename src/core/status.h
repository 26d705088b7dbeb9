/*
 * status.h — result codes shared by every src/core module.
 *
 * The core never prints, allocates through PostgreSQL or throws: each call
 * returns one of these codes and the glue in src/ maps it to an SQLSTATE
 * (src/errors.c).  Messages never contain data, only what kind of failure.
 */
#ifndef PHIC_STATUS_H
#define PHIC_STATUS_H

typedef enum phic_status
{
	PHIC_OK = 0,
	PHIC_ERR_AUTH,				/* authentication tag did not verify */
	PHIC_ERR_FORMAT,			/* input is not a well-formed value */
	PHIC_ERR_CRYPTO,			/* the OpenSSL library failed */
	PHIC_ERR_RANDOM,			/* the random generator failed */
	PHIC_ERR_NOMEM,				/* out of memory */
	PHIC_ERR_EXPIRED,			/* a token's exp is past (beyond the leeway) */
	PHIC_ERR_NOT_YET_VALID,		/* a token's nbf is ahead (beyond the leeway) */
	PHIC_ERR_LIFETIME			/* a token lives longer than allowed */
} phic_status;

/* A short, data-free description of a status, for logs and unit tests. */
extern const char *phic_status_str(phic_status st);

#endif
