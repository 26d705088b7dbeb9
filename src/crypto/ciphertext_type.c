/*
 * ciphertext_type.c — the phi_ciphertext type (SPEC §3): text form
 * "phi1:" + base64 of the raw bytes, binary form the raw bytes, and the
 * validating cast from bytea.  Every way in validates the format, so a
 * phi_ciphertext column can never hold plaintext by mistake.  Error messages
 * say what is wrong with the shape, never echo the input.
 */
#include "postgres.h"

#include "fmgr.h"
#include "libpq/pqformat.h"
#include "utils/memutils.h"

#include "core/base64.h"
#include "core/ciphertext.h"

#define TEXT_PREFIX "phi1:"
#define TEXT_PREFIX_LEN 5

/* Build a phi_ciphertext varlena from raw bytes after checking them. */
static bytea *
validated_copy(const uint8 *raw, size_t len, int errcode_on_bad)
{
	phic_ct		ct;
	bytea	   *result;

	if (phic_ct_parse(raw, len, &ct) != PHIC_OK)
		ereport(ERROR,
				(errcode(errcode_on_bad),
				 errmsg("invalid phi_ciphertext value"),
				 errdetail("A value has at least %d bytes and starts with format version 1, algorithm 1, known flags and a zero reserved byte.",
						   PHIC_CT_OVERHEAD)));
	if (len > MaxAllocSize - VARHDRSZ)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("phi_ciphertext value is too long")));
	result = (bytea *) palloc(VARHDRSZ + len);
	SET_VARSIZE(result, VARHDRSZ + len);
	memcpy(VARDATA(result), raw, len);
	return result;
}

PG_FUNCTION_INFO_V1(phi_guard_ciphertext_in);

Datum
phi_guard_ciphertext_in(PG_FUNCTION_ARGS)
{
	const char *s = PG_GETARG_CSTRING(0);
	size_t		len = strlen(s);
	uint8	   *raw;
	size_t		rawlen;
	bytea	   *result;

	if (len < TEXT_PREFIX_LEN || memcmp(s, TEXT_PREFIX, TEXT_PREFIX_LEN) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type phi_ciphertext"),
				 errdetail("A phi_ciphertext value is written \"phi1:\" followed by base64."),
				 errhint("Use phi_encrypt() to produce values; plaintext cannot be stored in this type.")));
	s += TEXT_PREFIX_LEN;
	len -= TEXT_PREFIX_LEN;
	raw = palloc(phic_b64_decoded_max(len) + 1);
	if (phic_b64_decode(s, len, raw, &rawlen) != PHIC_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type phi_ciphertext"),
				 errdetail("The text after \"phi1:\" is not canonical standard base64 with padding.")));
	result = validated_copy(raw, rawlen, ERRCODE_INVALID_TEXT_REPRESENTATION);
	pfree(raw);
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(phi_guard_ciphertext_out);

Datum
phi_guard_ciphertext_out(PG_FUNCTION_ARGS)
{
	bytea	   *v = PG_GETARG_BYTEA_PP(0);
	size_t		len = VARSIZE_ANY_EXHDR(v);
	size_t		enc = phic_b64_encoded_len(len);
	char	   *out;

	if (enc == 0 && len != 0)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("phi_ciphertext value is too long for its text form")));
	out = palloc(TEXT_PREFIX_LEN + enc + 1);
	memcpy(out, TEXT_PREFIX, TEXT_PREFIX_LEN);
	phic_b64_encode((const uint8 *) VARDATA_ANY(v), len, out + TEXT_PREFIX_LEN);
	out[TEXT_PREFIX_LEN + enc] = '\0';
	PG_RETURN_CSTRING(out);
}

PG_FUNCTION_INFO_V1(phi_guard_ciphertext_recv);

Datum
phi_guard_ciphertext_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			len = buf->len - buf->cursor;
	bytea	   *result;

	result = validated_copy((const uint8 *) buf->data + buf->cursor, len,
							ERRCODE_INVALID_BINARY_REPRESENTATION);
	buf->cursor = buf->len;
	PG_RETURN_BYTEA_P(result);
}

PG_FUNCTION_INFO_V1(phi_guard_ciphertext_send);

Datum
phi_guard_ciphertext_send(PG_FUNCTION_ARGS)
{
	bytea	   *v = PG_GETARG_BYTEA_P_COPY(0);

	PG_RETURN_BYTEA_P(v);
}

PG_FUNCTION_INFO_V1(phi_guard_ciphertext_from_bytea);

/* bytea -> phi_ciphertext: the raw bytes, validated. */
Datum
phi_guard_ciphertext_from_bytea(PG_FUNCTION_ARGS)
{
	bytea	   *v = PG_GETARG_BYTEA_PP(0);

	PG_RETURN_BYTEA_P(validated_copy((const uint8 *) VARDATA_ANY(v),
									 VARSIZE_ANY_EXHDR(v),
									 ERRCODE_INVALID_BINARY_REPRESENTATION));
}
