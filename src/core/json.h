/*
 * json.h — a strict, bounded, non-recursive JSON (RFC 8259) reader for the
 * small documents of a JWS header and claims set.
 *
 * phic_json_parse reads one complete JSON text into a flat array of tokens
 * supplied by the caller (no allocation).  It accepts exactly RFC 8259 with
 * these restrictions, each reported as PHIC_ERR_FORMAT:
 *  - nothing but white space (space, tab, LF, CR) may follow the value, and
 *    no byte-order mark may precede it;
 *  - nesting deeper than PHIC_JSON_MAX_DEPTH, or more tokens than the caller
 *    gave room for;
 *  - strings that are not valid UTF-8 (overlong forms, surrogates, code points
 *    above U+10FFFF), unpaired \u surrogate escapes, and \u0000 (decoded
 *    strings never contain NUL, so they are safe as C strings);
 *  - two members of one object, at any depth, whose names are equal after
 *    escapes are decoded ("exp" and "\u0065xp" are duplicates).
 * It never reads outside text[0 .. len); text need not be NUL-terminated.
 *
 * Tokens are in document order.  An object token is followed by its members,
 * each a STRING token (the name) and then the value's tokens; an array token
 * by its elements.  tok.end is the index just past a value's last token, so
 * the next sibling of token i is toks[i].end.
 */
#ifndef PHIC_JSON_H
#define PHIC_JSON_H

#include <stddef.h>
#include <stdint.h>
#include "status.h"

#define PHIC_JSON_MAX_DEPTH 16

typedef enum phic_json_type
{
	PHIC_JSON_OBJECT = 1,
	PHIC_JSON_ARRAY,
	PHIC_JSON_STRING,
	PHIC_JSON_NUMBER,
	PHIC_JSON_TRUE,
	PHIC_JSON_FALSE,
	PHIC_JSON_NULL
} phic_json_type;

typedef struct phic_json_tok
{
	phic_json_type type;
	int			size;			/* OBJECT: members; ARRAY: elements; else 0 */
	int			end;			/* index just past this value's last token */
	size_t		start;			/* STRING: offset in strbuf; else in text */
	size_t		len;			/* STRING: decoded bytes; else text bytes */
} phic_json_tok;

typedef struct phic_json_doc
{
	const char *text;
	size_t		textlen;
	phic_json_tok *toks;
	int			ntoks;
	int			maxtoks;
	char	   *strbuf;			/* decoded strings, each NUL-terminated */
	size_t		strcap;
	size_t		strused;
} phic_json_doc;

/*
 * Parse text[0 .. len) into doc, using toks[maxtoks] and strbuf[strcap]
 * (len + 1 bytes of strbuf always suffice).  On PHIC_OK doc->ntoks >= 1 and
 * toks[0] is the top-level value; on PHIC_ERR_FORMAT doc holds no tokens.
 */
extern phic_status phic_json_parse(phic_json_doc *doc, const char *text, size_t len,
								   phic_json_tok *toks, int maxtoks,
								   char *strbuf, size_t strcap);

/*
 * Index of the value of member name[0 .. namelen) of the object at index obj
 * (names compared after decoding), or -1 when absent or obj is no object.
 */
extern int	phic_json_find(const phic_json_doc *doc, int obj, const char *name,
						   size_t namelen);

/* Decoded bytes of the STRING token i (NUL-terminated; length toks[i].len). */
extern const char *phic_json_str(const phic_json_doc *doc, int i);

#endif
