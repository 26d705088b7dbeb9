/*
 * utf8.c — the encoding rule of SPEC §3: text plaintext and aad are
 * encrypted as UTF-8, converted from and to the database encoding when it
 * is not UTF-8, so values decrypt the same in any database.
 *
 * Invariants: every transcoded copy of plaintext is wiped.  A copy made on
 * the way in (crypto_utf8) is wiped by a reset callback of the memory
 * context it lives in, registered before the copy is written: when the
 * row's or statement's context is reset or deleted, including after an
 * error, with no PG_TRY per call.  The way out (crypto_utf8_to_server)
 * wipes its input and output buffers itself, also on error.  In a UTF-8
 * (or SQL_ASCII) database nothing is copied.  Conversions never raise
 * PostgreSQL's conversion error, which quotes the offending bytes.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "mb/pg_wchar.h"
#include "utils/memutils.h"

#include "core/secmem.h"
#include "crypto/crypto.h"

/* Longest text either conversion accepts: its worst-case result must fit. */
#define CONVERT_MAX ((MaxAllocSize - VARHDRSZ - 1) / MAX_CONVERSION_GROWTH)

typedef struct WipeAtReset
{
	MemoryContextCallback cb;
	void	   *ptr;
	size_t		len;
} WipeAtReset;

static void
wipe_cb(void *arg)
{
	WipeAtReset *w = (WipeAtReset *) arg;

	phic_wipe(w->ptr, w->len);
}

char *
crypto_alloc_wiped(size_t size)
{
	WipeAtReset *w = palloc(sizeof(WipeAtReset));

	w->ptr = palloc(size);
	w->len = size;
	w->cb.func = wipe_cb;
	w->cb.arg = w;
	MemoryContextRegisterResetCallback(CurrentMemoryContext, &w->cb);
	return w->ptr;
}

/*
 * Convert src[0..len) with conversion proc into dst (len *
 * MAX_CONVERSION_GROWTH + 1 bytes, NUL-terminated); false when a character
 * has no equivalent.  Never raises PostgreSQL's conversion error, which
 * would quote the bytes.
 */
static bool
convert(Oid proc, int from, int to, const char *src, size_t len, char *dst)
{
	return OidIsValid(proc) &&
		pg_do_encoding_conversion_buf(proc, from, to,
									  (unsigned char *) unconstify(char *, src), (int) len,
									  (unsigned char *) dst,
									  (int) (len * MAX_CONVERSION_GROWTH + 1), true) == (int) len;
}

phic_bytes
crypto_utf8(const char *p, int len)
{
	int			enc = GetDatabaseEncoding();
	phic_bytes	b = {(const uint8 *) p, (size_t) len};
	char	   *u;

	if (len <= 0 || enc == PG_UTF8)
		return b;
	if (enc == PG_SQL_ASCII)
	{
		/* bytes as given, which must then be UTF-8 */
		if (!pg_verify_mbstr(PG_UTF8, p, len, true))
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("value is not valid UTF-8"),
					 errdetail("A SQL_ASCII database holds text as given; phi_guard encrypts text as UTF-8.")));
		return b;
	}
	if ((size_t) len > CONVERT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("value is too long to convert to UTF-8")));
	u = crypto_alloc_wiped((size_t) len * MAX_CONVERSION_GROWTH + 1);
	if (!convert(FindDefaultConversionProc(enc, PG_UTF8), enc, PG_UTF8, p, len, u))
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("value has characters of encoding \"%s\" that UTF-8 cannot represent",
						GetDatabaseEncodingName())));
	b.ptr = (const uint8 *) u;
	b.len = strlen(u);
	return b;
}

phic_bytes
crypto_aad_arg(FunctionCallInfo fcinfo, int argno)
{
	phic_bytes	aad = {NULL, 0};

	if (PG_NARGS() > argno && !PG_ARGISNULL(argno))
	{
		text	   *t = PG_GETARG_TEXT_PP(argno);

		aad = crypto_utf8(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
	}
	return aad;
}

text *
crypto_utf8_to_server(bytea *utf8, size_t len)
{
	int			enc = GetDatabaseEncoding();
	text	   *result = NULL;

	if (len > CONVERT_MAX)
	{
		phic_wipe(VARDATA(utf8), len);
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("decrypted value is too long to convert to the database encoding")));
	}
	PG_TRY();
	{
		result = (text *) palloc(VARHDRSZ + len * MAX_CONVERSION_GROWTH + 1);
		if (!convert(FindDefaultConversionProc(PG_UTF8, enc), PG_UTF8, enc,
					 VARDATA(utf8), len, VARDATA(result)))
		{
			phic_wipe(VARDATA(result), len * MAX_CONVERSION_GROWTH + 1);
			pfree(result);
			result = NULL;
		}
	}
	PG_FINALLY();
	{
		phic_wipe(VARDATA(utf8), len);
	}
	PG_END_TRY();
	pfree(utf8);
	if (result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNTRANSLATABLE_CHARACTER),
				 errmsg("decrypted value has characters that the database encoding \"%s\" cannot represent",
						GetDatabaseEncodingName()),
				 errhint("Use phi_decrypt_bytea() to read the UTF-8 bytes, or a UTF-8 database.")));
	SET_VARSIZE(result, VARHDRSZ + strlen(VARDATA(result)));
	return result;
}
