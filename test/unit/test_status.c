/*
 * test_status.c — unit tests of src/core/status: every status code has a
 * distinct, non-empty string, and an unknown code has one too.
 */
#include <string.h>

#include "harness.h"

void
test_status(void)
{
	static const phic_status codes[] = {
		PHIC_OK, PHIC_ERR_AUTH, PHIC_ERR_FORMAT, PHIC_ERR_CRYPTO,
		PHIC_ERR_RANDOM, PHIC_ERR_NOMEM, PHIC_ERR_EXPIRED, PHIC_ERR_NOT_YET_VALID,
		PHIC_ERR_LIFETIME,
	};
	const size_t n = sizeof(codes) / sizeof(codes[0]);
	int			ok = 1;
	const char *unknown = phic_status_str((phic_status) 99);

	for (size_t i = 0; i < n; i++)
	{
		const char *s = phic_status_str(codes[i]);

		if (s == NULL || s[0] == '\0' || (unknown && strcmp(s, unknown) == 0))
			ok = 0;
		for (size_t j = 0; ok && j < i; j++)
			if (strcmp(s, phic_status_str(codes[j])) == 0)
				ok = 0;
	}
	check(ok, "status strings distinct and non-empty", "duplicate or empty string");
	check(unknown != NULL && unknown[0] != '\0', "status unknown code has a string",
		  "empty or NULL");
}
