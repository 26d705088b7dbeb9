/*
 * test_json.c — unit tests of src/core/json (the strict JSON reader of the
 * context token): accepted and rejected texts (duplicate keys, bad escapes,
 * bad UTF-8, depth, trailing text), the token tree of a nested document,
 * token limits, and 30000 mutated documents (no crash, no over-read under
 * ASan, a consistent tree when accepted).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "json.h"

/* phic_json_parse on an exact-size copy with room for 64 tokens. */
static phic_status
json_parse_exact(const char *text, size_t len, phic_json_doc *doc, phic_json_tok *toks,
				 int maxtoks, char *strbuf)
{
	char	   *p = exact_copy(text, len);
	phic_status st = phic_json_parse(doc, p, len, toks, maxtoks, strbuf, len + 1);

	doc->text = NULL;			/* p is gone; strings live in strbuf */
	free(p);
	return st;
}

void
test_json(void)
{
	static const struct
	{
		const char *text;
		phic_status want;
	}			cases[] = {
		{"{}", PHIC_OK}, {"[]", PHIC_OK}, {" 0 ", PHIC_OK}, {"-0", PHIC_OK},
		{"1.5e-3", PHIC_OK}, {"-12E+4", PHIC_OK}, {"\"\"", PHIC_OK}, {"true", PHIC_OK},
		{"false", PHIC_OK}, {"null", PHIC_OK}, {"[1,\"a\",{},[],null]", PHIC_OK},
		{"{\"a\":{\"a\":1}}", PHIC_OK}, {"\"\\ud83d\\ude00\\u20ac\\t\"", PHIC_OK},
		{"\"\xf0\x9f\x98\x80\xef\xbf\xbf\"", PHIC_OK},
		{"", PHIC_ERR_FORMAT}, {" ", PHIC_ERR_FORMAT}, {"[1,]", PHIC_ERR_FORMAT},
		{"{,}", PHIC_ERR_FORMAT}, {"{\"a\"}", PHIC_ERR_FORMAT}, {"{\"a\":}", PHIC_ERR_FORMAT},
		{"{\"a\" 1}", PHIC_ERR_FORMAT}, {"{1:1}", PHIC_ERR_FORMAT}, {"nul", PHIC_ERR_FORMAT},
		{"tru", PHIC_ERR_FORMAT}, {"truex", PHIC_ERR_FORMAT}, {"nulls", PHIC_ERR_FORMAT},
		{"[1 2]", PHIC_ERR_FORMAT}, {"\"\\u12\"", PHIC_ERR_FORMAT},
		{"\"\\u12g4\"", PHIC_ERR_FORMAT}, {"1.", PHIC_ERR_FORMAT}, {".5", PHIC_ERR_FORMAT},
		{"-", PHIC_ERR_FORMAT}, {"+1", PHIC_ERR_FORMAT}, {"01", PHIC_ERR_FORMAT},
		{"1e", PHIC_ERR_FORMAT}, {"1e+", PHIC_ERR_FORMAT}, {"{\"a\":1}x", PHIC_ERR_FORMAT},
		{"{} {}", PHIC_ERR_FORMAT}, {"[", PHIC_ERR_FORMAT}, {"]", PHIC_ERR_FORMAT},
		{"[}", PHIC_ERR_FORMAT}, {"{]", PHIC_ERR_FORMAT}, {"\"abc", PHIC_ERR_FORMAT},
		{"\"\\", PHIC_ERR_FORMAT}, {"\"\\u", PHIC_ERR_FORMAT}, {"\"\\ud83d\"", PHIC_ERR_FORMAT},
		{"\"\\ud83d\\u0041\"", PHIC_ERR_FORMAT}, {"\"\\ud83d\\", PHIC_ERR_FORMAT},
		{"\"\\u0000\"", PHIC_ERR_FORMAT}, {"\"\t\"", PHIC_ERR_FORMAT},
		{"\"\xc3\"", PHIC_ERR_FORMAT}, {"\"\xe0\x80\xaf\"", PHIC_ERR_FORMAT},
		{"\"\xf8\x88\x80\x80\x80\"", PHIC_ERR_FORMAT}, {"'a'", PHIC_ERR_FORMAT},
		{"{\"a\":1,\"b\":2,\"a\":3}", PHIC_ERR_FORMAT},
		{"[{\"x\":1,\"\\u0078\":1}]", PHIC_ERR_FORMAT}, {"\x0b{}", PHIC_ERR_FORMAT},
		{"NaN", PHIC_ERR_FORMAT}, {"[1,2]]", PHIC_ERR_FORMAT},
	};
	static const char nested[] = "{\"a\":[1,{\"b\":\"x\"}],\"c\":\"\\u00e9\"}";
	phic_json_tok toks[64];
	phic_json_doc doc;
	char		strbuf[256],
				name[160],
				deep[40];
	int			ok;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
	{
		snprintf(name, sizeof(name), "json \"%s\"", cases[i].text);
		check_status(name, json_parse_exact(cases[i].text, strlen(cases[i].text), &doc,
											toks, 64, strbuf), cases[i].want);
	}
	/* the NUL byte is part of the text here */
	check_status("json raw NUL in a string",
				 json_parse_exact("\"a\0b\"", 5, &doc, toks, 64, strbuf), PHIC_ERR_FORMAT);

	ok = json_parse_exact(nested, strlen(nested), &doc, toks, 64, strbuf) == PHIC_OK &&
		doc.ntoks == 9 &&
		toks[0].type == PHIC_JSON_OBJECT && toks[0].size == 2 && toks[0].end == 9 &&
		toks[1].type == PHIC_JSON_STRING && toks[2].type == PHIC_JSON_ARRAY &&
		toks[2].size == 2 && toks[2].end == 7 && toks[3].type == PHIC_JSON_NUMBER &&
		toks[4].type == PHIC_JSON_OBJECT && toks[4].size == 1 && toks[4].end == 7 &&
		toks[7].type == PHIC_JSON_STRING && toks[8].len == 2 &&
		strcmp(phic_json_str(&doc, 8), "\xc3\xa9") == 0 &&
		phic_json_find(&doc, 0, "c", 1) == 8 && phic_json_find(&doc, 0, "a", 1) == 2 &&
		phic_json_find(&doc, 0, "b", 1) == -1 && phic_json_find(&doc, 4, "b", 1) == 6 &&
		phic_json_find(&doc, 2, "b", 1) == -1 && phic_json_find(&doc, 99, "a", 1) == -1;
	check(ok, "json token tree of a nested document", "wrong tokens");

	check_status("json 4 tokens fit in 4", json_parse_exact("[1,2,3]", 7, &doc, toks, 4, strbuf),
				 PHIC_OK);
	check_status("json 4 tokens do not fit in 3",
				 json_parse_exact("[1,2,3]", 7, &doc, toks, 3, strbuf), PHIC_ERR_FORMAT);
	check(doc.ntoks == 0, "json failure leaves no tokens", "%d tokens", doc.ntoks);
	memset(deep, '[', 16);
	memset(deep + 16, ']', 16);
	check_status("json depth 16", json_parse_exact(deep, 32, &doc, toks, 64, strbuf), PHIC_OK);
	memset(deep, '[', 17);
	memset(deep + 17, ']', 17);
	check_status("json depth 17", json_parse_exact(deep, 34, &doc, toks, 64, strbuf),
				 PHIC_ERR_FORMAT);

	/* mutations: no crash, no over-read (ASan), consistent trees when accepted */
	{
		static const char *const seeds[] = {
			"{\"sub\":\"u\\u00e9\",\"roles\":[\"a\",\"b\"],\"exp\":1700000000.5,\"x\":{\"y\":[true,false,null,-1e3]}}",
			"[[[[{\"a\":\"\\ud83d\\ude00\"}]]]]",
			"{\"a\":\"\xe2\x82\xac\xf0\x9f\x98\x80\",\"b\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}",
		};
		static const char interesting[] = "{}[]\",:\\u0123456789.eE+-tfnal \t\n\xc3\xa9\xed\xf0\x80\xbf";
		char		buf[200];
		int			bad = 0,
					accepted = 0;

		for (int t = 0; t < 30000; t++)
		{
			const char *s = seeds[prng() % 3];
			size_t		len = strlen(s);
			int			edits = 1 + (int) (prng() % 3);

			memcpy(buf, s, len);
			for (int e = 0; e < edits; e++)
			{
				size_t		at = len ? prng() % len : 0;
				char		c = interesting[prng() % (sizeof(interesting) - 1)];

				switch (prng() % 3)
				{
					case 0:
						if (len)
							buf[at] = c;
						break;
					case 1:
						if (len < sizeof(buf) - 1)
						{
							memmove(buf + at + 1, buf + at, len - at);
							buf[at] = c;
							len++;
						}
						break;
					default:
						if (len)
						{
							memmove(buf + at, buf + at + 1, len - at - 1);
							len--;
						}
						break;
				}
			}
			if (json_parse_exact(buf, len, &doc, toks, 64, strbuf) == PHIC_OK)
			{
				accepted++;
				if (doc.ntoks < 1 || toks[0].end != doc.ntoks)
					bad++;
				for (int i = 0; i < doc.ntoks; i++)
					if (toks[i].type == PHIC_JSON_STRING &&
						strlen(phic_json_str(&doc, i)) != toks[i].len)
						bad++;
			}
		}
		check(bad == 0 && accepted > 0, "json 30000 mutated documents", "%d inconsistent, %d accepted",
			  bad, accepted);
	}
}
