/*
 * json.c — strict, bounded JSON reader (see json.h).
 *
 * One loop over the input with an explicit stack of open containers (at
 * most PHIC_JSON_MAX_DEPTH), so hostile nesting costs neither C stack nor
 * time.  Every read is preceded by a bounds check against the input length;
 * every write into the token array and the string buffer by a capacity check.
 */
#include "json.h"

#include <string.h>

enum state
{
	S_VALUE,					/* a value must follow */
	S_VALUE_OR_END,				/* after '[': a value or ']' */
	S_KEY_OR_END,				/* after '{': a member name or '}' */
	S_KEY,						/* after ',' in an object: a member name */
	S_COLON,					/* after a member name */
	S_COMMA_OR_END,				/* after a value inside a container */
	S_DONE						/* after the top-level value */
};

typedef struct parser
{
	phic_json_doc *doc;
	const unsigned char *s;
	size_t		n;
	size_t		pos;
	int			stack[PHIC_JSON_MAX_DEPTH];
	int			depth;
} parser;

/* Append a token; -1 when the token array is full. */
static int
new_tok(parser *p, phic_json_type type, size_t start, size_t len)
{
	phic_json_doc *d = p->doc;
	int			i;

	if (d->ntoks >= d->maxtoks)
		return -1;
	i = d->ntoks++;
	d->toks[i].type = type;
	d->toks[i].size = 0;
	d->toks[i].end = i + 1;
	d->toks[i].start = start;
	d->toks[i].len = len;
	return i;
}

static int
put(parser *p, const unsigned char *b, size_t k)
{
	phic_json_doc *d = p->doc;

	if (d->strcap - d->strused < k)
		return 0;
	memcpy(d->strbuf + d->strused, b, k);
	d->strused += k;
	return 1;
}

static int
hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits at pos into *v; 0 when absent or malformed. */
static int
hex4(parser *p, uint32_t *v)
{
	uint32_t	r = 0;

	if (p->n - p->pos < 4)
		return 0;
	for (size_t k = 0; k < 4; k++)
	{
		int			h = hexval(p->s[p->pos + k]);

		if (h < 0)
			return 0;
		r = (r << 4) | (uint32_t) h;
	}
	p->pos += 4;
	*v = r;
	return 1;
}

/*
 * Length of the well-formed UTF-8 sequence of a non-ASCII lead byte at s
 * (Unicode 15, table 3-7), 0 when ill-formed or cut off by the end of input.
 */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0],
				lo = 0x80,
				hi = 0xBF;
	size_t		k;

	if (c >= 0xC2 && c <= 0xDF)
		k = 2;
	else if (c >= 0xE0 && c <= 0xEF)
	{
		k = 3;
		if (c == 0xE0)
			lo = 0xA0;			/* no overlong forms */
		else if (c == 0xED)
			hi = 0x9F;			/* no surrogates */
	}
	else if (c >= 0xF0 && c <= 0xF4)
	{
		k = 4;
		if (c == 0xF0)
			lo = 0x90;			/* no overlong forms */
		else if (c == 0xF4)
			hi = 0x8F;			/* nothing above U+10FFFF */
	}
	else
		return 0;
	if (n < k || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < k; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	return k;
}

static size_t
utf8_put(uint32_t cp, unsigned char *b)
{
	if (cp < 0x80)
	{
		b[0] = (unsigned char) cp;
		return 1;
	}
	if (cp < 0x800)
	{
		b[0] = (unsigned char) (0xC0 | (cp >> 6));
		b[1] = (unsigned char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000)
	{
		b[0] = (unsigned char) (0xE0 | (cp >> 12));
		b[1] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
		b[2] = (unsigned char) (0x80 | (cp & 0x3F));
		return 3;
	}
	b[0] = (unsigned char) (0xF0 | (cp >> 18));
	b[1] = (unsigned char) (0x80 | ((cp >> 12) & 0x3F));
	b[2] = (unsigned char) (0x80 | ((cp >> 6) & 0x3F));
	b[3] = (unsigned char) (0x80 | (cp & 0x3F));
	return 4;
}

/* A string at pos (the opening quote): decode it into strbuf, add a token. */
static int
parse_string(parser *p)
{
	size_t		start = p->doc->strused;
	unsigned char b[4];
	static const unsigned char nul = 0;

	p->pos++;
	for (;;)
	{
		unsigned char c;

		if (p->pos >= p->n)
			return 0;
		c = p->s[p->pos];
		if (c == '"')
		{
			p->pos++;
			break;
		}
		if (c < 0x20)
			return 0;
		if (c == '\\')
		{
			uint32_t	cp,
						lo;

			if (p->n - p->pos < 2)
				return 0;
			c = p->s[p->pos + 1];
			p->pos += 2;
			switch (c)
			{
				case '"':
				case '\\':
				case '/':
					cp = c;
					break;
				case 'b':
					cp = '\b';
					break;
				case 'f':
					cp = '\f';
					break;
				case 'n':
					cp = '\n';
					break;
				case 'r':
					cp = '\r';
					break;
				case 't':
					cp = '\t';
					break;
				case 'u':
					if (!hex4(p, &cp) || cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF))
						return 0;
					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						/* a high surrogate must be followed by a low one */
						if (p->n - p->pos < 2 || p->s[p->pos] != '\\' ||
							p->s[p->pos + 1] != 'u')
							return 0;
						p->pos += 2;
						if (!hex4(p, &lo) || lo < 0xDC00 || lo > 0xDFFF)
							return 0;
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					}
					break;
				default:
					return 0;
			}
			if (!put(p, b, utf8_put(cp, b)))
				return 0;
		}
		else if (c < 0x80)
		{
			if (!put(p, &c, 1))
				return 0;
			p->pos++;
		}
		else
		{
			size_t		k = utf8_seq(p->s + p->pos, p->n - p->pos);

			if (k == 0 || !put(p, p->s + p->pos, k))
				return 0;
			p->pos += k;
		}
	}
	if (!put(p, &nul, 1))
		return 0;
	return new_tok(p, PHIC_JSON_STRING, start, p->doc->strused - start - 1) >= 0;
}

static int
is_digit(parser *p)
{
	return p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9';
}

/* A number at pos, RFC 8259 §6 grammar; what follows is the caller's. */
static int
parse_number(parser *p)
{
	size_t		start = p->pos;

	if (p->s[p->pos] == '-')
		p->pos++;
	if (!is_digit(p))
		return 0;
	if (p->s[p->pos++] != '0')
		while (is_digit(p))
			p->pos++;
	if (p->pos < p->n && p->s[p->pos] == '.')
	{
		p->pos++;
		if (!is_digit(p))
			return 0;
		while (is_digit(p))
			p->pos++;
	}
	if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
	{
		p->pos++;
		if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
			p->pos++;
		if (!is_digit(p))
			return 0;
		while (is_digit(p))
			p->pos++;
	}
	return new_tok(p, PHIC_JSON_NUMBER, start, p->pos - start) >= 0;
}

static int
parse_literal(parser *p, const char *word, phic_json_type type)
{
	size_t		k = strlen(word);

	if (p->n - p->pos < k || memcmp(p->s + p->pos, word, k) != 0)
		return 0;
	p->pos += k;
	return new_tok(p, type, p->pos - k, k) >= 0;
}

static int
same_name(const phic_json_doc *d, int a, int b)
{
	return d->toks[a].len == d->toks[b].len &&
		memcmp(d->strbuf + d->toks[a].start, d->strbuf + d->toks[b].start,
			   d->toks[a].len) == 0;
}

/* Whether the (complete) object at index obj has two equal member names. */
static int
has_duplicate(const phic_json_doc *d, int obj)
{
	int			end = d->toks[obj].end;

	for (int k = obj + 1; k < end; k = d->toks[k + 1].end)
		for (int j = obj + 1; j < k; j = d->toks[j + 1].end)
			if (same_name(d, j, k))
				return 1;
	return 0;
}

static int
push(parser *p, phic_json_type type)
{
	int			i;

	if (p->depth >= PHIC_JSON_MAX_DEPTH)
		return 0;
	if ((i = new_tok(p, type, p->pos, 0)) < 0)
		return 0;
	p->stack[p->depth++] = i;
	p->pos++;
	return 1;
}

/* Close the innermost container at pos (its closing bracket). */
static int
pop(parser *p)
{
	phic_json_doc *d = p->doc;
	int			i = p->stack[--p->depth];

	p->pos++;
	d->toks[i].end = d->ntoks;
	d->toks[i].len = p->pos - d->toks[i].start;
	return d->toks[i].type != PHIC_JSON_OBJECT || !has_duplicate(d, i);
}

phic_status
phic_json_parse(phic_json_doc *doc, const char *text, size_t len,
				phic_json_tok *toks, int maxtoks, char *strbuf, size_t strcap)
{
	parser		p;
	enum state	st = S_VALUE;

	doc->text = text;
	doc->textlen = len;
	doc->toks = toks;
	doc->ntoks = 0;
	doc->maxtoks = maxtoks;
	doc->strbuf = strbuf;
	doc->strcap = strcap;
	doc->strused = 0;
	if (text == NULL || toks == NULL || strbuf == NULL || maxtoks <= 0)
		return PHIC_ERR_FORMAT;

	p.doc = doc;
	p.s = (const unsigned char *) text;
	p.n = len;
	p.pos = 0;
	p.depth = 0;

	for (;;)
	{
		unsigned char c;
		phic_json_type top;
		int			ok;

		while (p.pos < p.n && (p.s[p.pos] == ' ' || p.s[p.pos] == '\t' ||
							   p.s[p.pos] == '\n' || p.s[p.pos] == '\r'))
			p.pos++;
		if (p.pos >= p.n)
		{
			if (st == S_DONE)
				return PHIC_OK;
			break;
		}
		c = p.s[p.pos];
		top = p.depth > 0 ? doc->toks[p.stack[p.depth - 1]].type : (phic_json_type) 0;

		if (st == S_DONE)
			break;				/* trailing garbage */
		if (st == S_COLON)
		{
			if (c != ':')
				break;
			p.pos++;
			st = S_VALUE;
			continue;
		}
		if (st == S_COMMA_OR_END)
		{
			if (c == ',')
			{
				p.pos++;
				st = top == PHIC_JSON_OBJECT ? S_KEY : S_VALUE;
				continue;
			}
			if (!((c == '}' && top == PHIC_JSON_OBJECT) ||
				  (c == ']' && top == PHIC_JSON_ARRAY)) || !pop(&p))
				break;
		}
		else if ((st == S_KEY_OR_END && c == '}') || (st == S_VALUE_OR_END && c == ']'))
		{
			if (!pop(&p))
				break;
		}
		else if (st == S_KEY_OR_END || st == S_KEY)
		{
			if (c != '"' || !parse_string(&p))
				break;
			doc->toks[p.stack[p.depth - 1]].size++;
			st = S_COLON;
			continue;
		}
		else
		{
			/* S_VALUE or S_VALUE_OR_END: one value */
			if (top == PHIC_JSON_ARRAY)
				doc->toks[p.stack[p.depth - 1]].size++;
			if (c == '{')
			{
				if (!push(&p, PHIC_JSON_OBJECT))
					break;
				st = S_KEY_OR_END;
				continue;
			}
			if (c == '[')
			{
				if (!push(&p, PHIC_JSON_ARRAY))
					break;
				st = S_VALUE_OR_END;
				continue;
			}
			if (c == '"')
				ok = parse_string(&p);
			else if (c == '-' || (c >= '0' && c <= '9'))
				ok = parse_number(&p);
			else if (c == 't')
				ok = parse_literal(&p, "true", PHIC_JSON_TRUE);
			else if (c == 'f')
				ok = parse_literal(&p, "false", PHIC_JSON_FALSE);
			else if (c == 'n')
				ok = parse_literal(&p, "null", PHIC_JSON_NULL);
			else
				ok = 0;
			if (!ok)
				break;
		}
		/* a value (scalar or just-closed container) is complete */
		st = p.depth == 0 ? S_DONE : S_COMMA_OR_END;
	}
	doc->ntoks = 0;
	doc->strused = 0;
	return PHIC_ERR_FORMAT;
}

int
phic_json_find(const phic_json_doc *doc, int obj, const char *name, size_t namelen)
{
	if (obj < 0 || obj >= doc->ntoks || doc->toks[obj].type != PHIC_JSON_OBJECT)
		return -1;
	for (int k = obj + 1; k < doc->toks[obj].end; k = doc->toks[k + 1].end)
		if (doc->toks[k].len == namelen &&
			memcmp(doc->strbuf + doc->toks[k].start, name, namelen) == 0)
			return k + 1;
	return -1;
}

const char *
phic_json_str(const phic_json_doc *doc, int i)
{
	return doc->strbuf + doc->toks[i].start;
}
