/*
 * fuzz_json — phic_json_parse (src/core/json.c), the JSON reader behind
 * the JWS header and claims, on arbitrary bytes.
 *
 * Input: byte 0 = b chooses the room given to the parser: maxtoks =
 * tok_room[b % 8], string buffer = len + 1 bytes (enough, json.h) when
 * (b / 8) % 4 is 0 or 3, len / 2 when 1, 0 when 2.  The rest is the JSON
 * text (not NUL-terminated).  The token array and the string buffer are
 * malloc'd of exactly their size, so ASan sees any overrun.
 *
 * Properties (json.h):
 *  - on PHIC_ERR_FORMAT the document holds no tokens;
 *  - on PHIC_OK the token tree is consistent: toks[0] spans all tokens,
 *    every container's size is its number of children and its children end
 *    exactly at its end, object members are STRING names with pairwise
 *    different decoded names, nesting is at most PHIC_JSON_MAX_DEPTH,
 *    strings are NUL-terminated in the string buffer, contain no NUL and are
 *    valid UTF-8, numbers and literals point inside the text; phic_json_find
 *    finds each member of an object by its name;
 *  - less room never turns a failure into a success: whatever parses with
 *    the chosen room parses, to the same tokens, with ample room
 *    (len + 1 tokens and bytes).
 */
#include "fuzz_common.h"
#include "json.h"

#include <string.h>

static const int tok_room[8] = {1, 2, 3, 8, 64, 512, 1024, 0 /* ample */};

static int
same_name(const phic_json_doc *d, int a, int b)
{
	return d->toks[a].len == d->toks[b].len &&
		memcmp(phic_json_str(d, a), phic_json_str(d, b), d->toks[a].len) == 0;
}

/* Check token i at the given depth; return the index past it. */
static int
check_value(const phic_json_doc *d, int i, int depth)
{
	const phic_json_tok *t;
	int			j,
				n = 0;

	FUZZ_CHECK(i >= 0 && i < d->ntoks);
	t = &d->toks[i];
	FUZZ_CHECK(t->end > i && t->end <= d->ntoks);
	switch (t->type)
	{
		case PHIC_JSON_OBJECT:
		case PHIC_JSON_ARRAY:
			FUZZ_CHECK(depth < PHIC_JSON_MAX_DEPTH);
			FUZZ_CHECK(t->len >= 2 && t->start <= d->textlen - t->len);
			FUZZ_CHECK(d->text[t->start] == (t->type == PHIC_JSON_OBJECT ? '{' : '['));
			FUZZ_CHECK(d->text[t->start + t->len - 1] == (t->type == PHIC_JSON_OBJECT ? '}' : ']'));
			for (j = i + 1; j < t->end; n++)
			{
				if (t->type == PHIC_JSON_OBJECT)
				{
					int			v;

					FUZZ_CHECK(d->toks[j].type == PHIC_JSON_STRING);
					check_value(d, j, depth + 1);
					FUZZ_CHECK(d->toks[j].end == j + 1);
					for (int k = i + 1; k < j; k = d->toks[k + 1].end)
						FUZZ_CHECK(!same_name(d, k, j));
					v = phic_json_find(d, i, phic_json_str(d, j), d->toks[j].len);
					FUZZ_CHECK(v == j + 1);
					j = check_value(d, j + 1, depth + 1);
				}
				else
					j = check_value(d, j, depth + 1);
			}
			FUZZ_CHECK(j == t->end);
			FUZZ_CHECK(n == t->size);
			break;
		case PHIC_JSON_STRING:
			FUZZ_CHECK(t->end == i + 1 && t->size == 0);
			FUZZ_CHECK(t->start < d->strused && t->len < d->strused - t->start);
			FUZZ_CHECK(d->strbuf[t->start + t->len] == '\0');
			FUZZ_CHECK(memchr(d->strbuf + t->start, 0, t->len) == NULL);
			FUZZ_CHECK(fuzz_utf8_valid((const uint8_t *) d->strbuf + t->start, t->len));
			break;
		case PHIC_JSON_NUMBER:
			FUZZ_CHECK(t->end == i + 1 && t->size == 0);
			FUZZ_CHECK(t->len >= 1 && t->start <= d->textlen - t->len);
			for (size_t k = 0; k < t->len; k++)
				FUZZ_CHECK(strchr("-+.eE0123456789", d->text[t->start + k]) != NULL &&
						   d->text[t->start + k] != '\0');
			break;
		case PHIC_JSON_TRUE:
		case PHIC_JSON_FALSE:
		case PHIC_JSON_NULL:
			{
				const char *w = t->type == PHIC_JSON_TRUE ? "true" :
					t->type == PHIC_JSON_FALSE ? "false" : "null";

				FUZZ_CHECK(t->end == i + 1 && t->size == 0);
				FUZZ_CHECK(t->len == strlen(w) && t->start <= d->textlen - t->len);
				FUZZ_CHECK(memcmp(d->text + t->start, w, t->len) == 0);
				break;
			}
		default:
			abort();
	}
	return t->end;
}

static phic_status
parse(phic_json_doc *d, const char *text, size_t len, int maxtoks, size_t strcap,
	  phic_json_tok **toks, char **strbuf)
{
	phic_status st;

	*toks = fuzz_malloc((size_t) maxtoks * sizeof(phic_json_tok));
	*strbuf = fuzz_malloc(strcap);
	st = phic_json_parse(d, text, len, *toks, maxtoks, *strbuf, strcap);
	FUZZ_CHECK(st == PHIC_OK || st == PHIC_ERR_FORMAT);
	if (st != PHIC_OK)
	{
		FUZZ_CHECK(d->ntoks == 0);
		return st;
	}
	FUZZ_CHECK(d->ntoks >= 1 && d->ntoks <= maxtoks);
	FUZZ_CHECK(d->strused <= strcap);
	FUZZ_CHECK(d->text == text && d->textlen == len);
	FUZZ_CHECK(d->toks[0].end == d->ntoks);
	FUZZ_CHECK(check_value(d, 0, 0) == d->ntoks);
	return st;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text;
	size_t		len,
				strcap;
	int			maxtoks;
	phic_json_doc a,
				b;
	phic_json_tok *atoks,
			   *btoks;
	char	   *abuf,
			   *bbuf;
	phic_status sta,
				stb;

	if (size == 0)
		return 0;
	text = (const char *) data + 1;
	len = size - 1;
	maxtoks = tok_room[data[0] % 8];
	if (maxtoks == 0)
		maxtoks = (int) len + 1;
	switch ((data[0] / 8) % 4)
	{
		case 1:
			strcap = len / 2;
			break;
		case 2:
			strcap = 0;
			break;
		default:
			strcap = len + 1;
	}

	sta = parse(&a, text, len, maxtoks, strcap, &atoks, &abuf);
	stb = parse(&b, text, len, (int) len + 1, len + 1, &btoks, &bbuf);
	if (sta == PHIC_OK)
	{
		FUZZ_CHECK(stb == PHIC_OK);
		FUZZ_CHECK(a.ntoks == b.ntoks && a.strused == b.strused);
		for (int i = 0; i < a.ntoks; i++)
			FUZZ_CHECK(atoks[i].type == btoks[i].type && atoks[i].size == btoks[i].size &&
					   atoks[i].end == btoks[i].end && atoks[i].start == btoks[i].start &&
					   atoks[i].len == btoks[i].len);
		FUZZ_CHECK(a.strused == 0 || memcmp(abuf, bbuf, a.strused) == 0);
	}
	free(atoks);
	free(abuf);
	free(btoks);
	free(bbuf);
	return 0;
}
