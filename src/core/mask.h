/*
 * mask.h — display masking of identifiers (HIPAA Safe Harbor style).
 *
 * Input and output are UTF-8.  Malformed input never comes back as it is:
 * it yields a fully masked value of the kind's shape (only the empty string
 * stays empty).
 *
 *   ssn    123-45-6789            -> ***-**-6789   (needs exactly 9 digits)
 *   phone  (555) 123-4567         -> (***) ***-4567 (digits but the last 4 hidden;
 *                                    needs at least 7 digits)
 *   email  jane.doe@example.org   -> j***@example.org
 *   name   Ada King-Lovelace      -> A*** K***-L***
 *   dob    1980-07-14             -> 1980 (year only; a birth year 90 or more
 *                                    years before current_year -> "<=YYYY")
 *   zip    02139-4307             -> 021** ("000**" for the 3-digit areas with
 *                                    fewer than 20,000 people)
 */
#ifndef PHIC_MASK_H
#define PHIC_MASK_H

#include <stddef.h>

typedef enum phic_mask_kind
{
	PHIC_MASK_SSN,
	PHIC_MASK_PHONE,
	PHIC_MASK_EMAIL,
	PHIC_MASK_NAME,
	PHIC_MASK_DOB,
	PHIC_MASK_ZIP
} phic_mask_kind;

/* Kind from its name ("ssn", ...); -1 when unknown. */
extern int	phic_mask_kind_parse(const char *name, size_t len);

/* Room needed for the masked form of len input bytes. */
extern size_t phic_mask_max(size_t len);

/* Mask in[0..len) into out; returns the output length (no terminator). */
extern size_t phic_mask(phic_mask_kind kind, const char *in, size_t len,
						int current_year, char *out);

#endif
