#!/usr/bin/env python3
"""lint-sql.py - search_path hazards in phi_guard's install and upgrade scripts.

Usage: test/lint-sql.py [FILE ...]
With no FILE, lints every phi_guard--*.sql in the repository root (the
parent of test/) but the generated install script, and the SQL pieces it is
generated from (src/*.sql, src/*/*.sql).  Prints one "file:line: problem" per problem and a last
line "lint-sql: N problems in M files"; exits 1 when it found a problem,
0 otherwise; finding no script to lint is a failure too.

Rules (CVE-2022-2625 and friends: an extension script and the functions it
creates must not resolve anything through a search_path that another role
can plant objects in):

  R1  every SECURITY DEFINER function (CREATE or ALTER) has
      SET search_path = pg_catalog, pg_temp, and an ALTER FUNCTION ... SET
      search_path sets exactly that;
  R2  the name of every CREATE FUNCTION, PROCEDURE, AGGREGATE, TABLE, VIEW,
      MATERIALIZED VIEW, TYPE, DOMAIN, SEQUENCE, OPERATOR [CLASS|FAMILY],
      COLLATION, CONVERSION, TEXT SEARCH ..., FOREIGN TABLE, STATISTICS is
      schema-qualified (indexes, triggers, policies, rules and casts cannot
      be, so they are not checked);
  R3  the install script (phi_guard--X.sql, one version, and the pieces
      under src/ it is generated from) uses neither CREATE OR REPLACE nor
      CREATE ... IF NOT EXISTS;
  R4  in the body of every LANGUAGE sql or plpgsql function (quoted or
      BEGIN ATOMIC) and of every DO block:
      - every operator is written OPERATOR(schema.op) - the only bare
        tokens allowed are syntax, not operators: := => :: .. , a star
        (SELECT *, count(*), t.*), a minus sign directly before a number,
        %TYPE / %ROWTYPE, and "=" where it assigns (a plpgsql assignment or
        DECLARE default, UPDATE/SET lists, RAISE ... USING options, GET
        DIAGNOSTICS);
      - no construct that looks an operator up implicitly: IN (...),
        NOT IN, BETWEEN, LIKE, ILIKE, SIMILAR TO, IS [NOT] DISTINCT FROM,
        NULLIF, and the simple CASE x WHEN form;
      - every name followed by "(" is schema-qualified, unless it is in
        NOT_FUNCTIONS below: SQL syntax that takes parentheses but is
        not a function looked up by name (COALESCE, EXISTS, ARRAY, CAST,
        ...) and keywords that may precede a parenthesised expression.
        Anything else - count(, format(, now(, a new helper( - is reported,
        so a newly added unqualified call is caught.

Not checked: text run by EXECUTE (it is a string), unqualified type names
and relation names (other than a relation followed by a column list), and
expressions outside function bodies (defaults, CHECK constraints, views,
policies), which are bound when the script runs under CREATE EXTENSION's
own search_path.
"""

import os
import re
import sys

# Names that may be followed by "(" in a body without a schema: SQL syntax
# that is not a function call looked up through search_path, and keywords
# after which a parenthesised expression or list may follow.  Keep this list
# short: every entry is a name the lint stops checking.
NOT_FUNCTIONS = frozenset("""
    coalesce nullif greatest least exists any all some array row cast values
    extract position substring overlay trim normalize grouping
    current_time current_timestamp localtime localtimestamp
    and or not is where having on using select from join lateral only
    return returning when then else if elsif while case as into filter
    over by with distinct union intersect except execute perform query
    next check default table primary key unique references include of
    until exit continue limit offset set window partition order group
    rows range groups rollup cube sets explain cursor in
    char character varchar varying numeric decimal dec float timestamp
    time interval bit
""".split())

# Keywords that start a plpgsql statement whose "=" is a comparison.
EXPR_START = frozenset("""
    if elsif while return when exit continue select perform case and or not
    until raise execute open fetch move close for foreach loop call insert
    delete with values get assert null
""".split())

# Keywords after which a minus sign is a sign, not a binary operator.
SIGN_AFTER = frozenset("""
    return select then else when and or not in by values default limit
    offset array is as between
""".split())

# Tokens after which "*" is a star, not multiplication.
STAR_AFTER = frozenset(["(", ",", ".", "select", "returning", "distinct", "all"])

# Statement boundaries inside a plpgsql body.
STMT_START = frozenset(["begin", "then", "else", "loop", "declare", "exception"])

OP_CHARS = set("+-*/<>=~!@#%^&|`?")
QUALIFIED_KINDS = [
    ("materialized", "view"), ("operator", "class"), ("operator", "family"),
    ("text", "search", "configuration"), ("text", "search", "dictionary"),
    ("text", "search", "parser"), ("text", "search", "template"),
    ("foreign", "table"), ("function",), ("procedure",), ("aggregate",),
    ("table",), ("view",), ("type",), ("domain",), ("sequence",),
    ("operator",), ("collation",), ("conversion",), ("statistics",),
]
UNQUALIFIED_KINDS = frozenset(["index", "trigger", "event", "policy", "rule",
                               "cast", "role", "user", "group", "schema",
                               "extension", "publication", "subscription",
                               "server", "access", "language", "tablespace",
                               "database", "transform", "foreign", "unique"])
CREATE_MODIFIERS = frozenset(["temp", "temporary", "unlogged", "global", "local",
                              "recursive", "trusted", "procedural", "default",
                              "constraint"])


class Tok:
    __slots__ = ("kind", "text", "line", "body_line")

    def __init__(self, kind, text, line, body_line=0):
        self.kind = kind            # ident qident string dollar number op punct param
        self.text = text
        self.line = line
        self.body_line = body_line  # for dollar: line where the body starts

    @property
    def low(self):
        return self.text.lower() if self.kind == "ident" else None

    def __repr__(self):
        return "Tok(%s,%r,%d)" % (self.kind, self.text, self.line)


def tokenize(src, line=1):
    """Split SQL text into tokens, dropping comments and whitespace."""
    toks = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("--", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            line += src.count("\n", i, j)
            i = j
        elif c == "'" or (c in "eEbBxXnN" and i + 1 < n and src[i + 1] == "'"
                          and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_"))):
            esc = c in "eE"
            j = i + 1 if c == "'" else i + 2
            while j < n:
                if esc and src[j] == "\\":
                    j += 2
                elif src[j] == "'":
                    if j + 1 < n and src[j + 1] == "'":
                        j += 2
                    else:
                        break
                else:
                    j += 1
            toks.append(Tok("string", src[i:j + 1], line))
            line += src.count("\n", i, j)
            i = j + 1
        elif c == '"':
            j = i + 1
            while j < n:
                if src[j] == '"':
                    if j + 1 < n and src[j + 1] == '"':
                        j += 2
                        continue
                    break
                j += 1
            toks.append(Tok("qident", src[i:j + 1], line))
            line += src.count("\n", i, j)
            i = j + 1
        elif c == "$":
            m = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$").match(src, i)
            if m and not (i > 0 and (src[i - 1].isalnum() or src[i - 1] == "_")):
                tag = m.group(0)
                start = m.end()
                end = src.find(tag, start)
                if end < 0:
                    end = n
                body = src[start:end]
                toks.append(Tok("dollar", body, line, line))
                line += src.count("\n", i, min(n, end + len(tag)))
                i = end + len(tag)
            else:
                m = re.compile(r"\$[0-9]+").match(src, i)
                j = m.end() if m else i + 1
                toks.append(Tok("param", src[i:j], line))
                i = j
        elif c.isdigit() or (c == "." and i + 1 < n and src[i + 1].isdigit()):
            m = re.compile(r"[0-9]*(\.[0-9]+|[0-9]*)([eE][+-]?[0-9]+)?").match(src, i)
            j = max(m.end(), i + 1)
            # 1..10 (plpgsql range): the number stops before ".."
            toks.append(Tok("number", src[i:j], line))
            i = j
        elif c.isalpha() or c == "_" or ord(c) > 127:
            m = re.compile(r"[\w$]+", re.UNICODE).match(src, i)
            toks.append(Tok("ident", m.group(0), line))
            i = m.end()
        elif c == "@" and src.startswith("@extschema@", i):
            toks.append(Tok("ident", "@extschema@", line))
            i += len("@extschema@")
        elif src.startswith("::", i) or src.startswith(":=", i) or src.startswith("..", i):
            toks.append(Tok("punct", src[i:i + 2], line))
            i += 2
        elif c in "()[],;.:":
            toks.append(Tok("punct", c, line))
            i += 1
        elif c in OP_CHARS:
            j = i
            while j < n and src[j] in OP_CHARS and not src.startswith("--", j) \
                    and not src.startswith("/*", j):
                j += 1
            op = src[i:j]
            while len(op) > 1 and op[-1] in "+-" and not set(op) & set("~!@#%^&|`?"):
                op = op[:-1]
            toks.append(Tok("op", op, line))
            i += len(op)
        elif c == "\\":
            # psql meta-command (\echo ... \quit): skip to the end of the line
            j = src.find("\n", i)
            i = n if j < 0 else j
        else:
            toks.append(Tok("punct", c, line))
            i += 1
    return toks


def split_statements(toks):
    """Top-level statements; BEGIN ATOMIC ... END bodies stay in one."""
    stmts, cur, atomic = [], [], False
    for k, t in enumerate(toks):
        if t.kind == "ident" and t.low == "atomic" and cur and cur[-1].low == "begin":
            atomic = True
        if t.kind == "punct" and t.text == ";":
            if atomic and not (cur and cur[-1].low == "end"):
                cur.append(t)
                continue
            if cur:
                stmts.append(cur)
            cur, atomic = [], False
        else:
            cur.append(t)
    if cur:
        stmts.append(cur)
    return stmts


def words(stmt):
    return [t.low for t in stmt]


def find_seq(stmt, seq, start=0):
    w = words(stmt)
    for i in range(start, len(w) - len(seq) + 1):
        if w[i:i + len(seq)] == list(seq):
            return i
    return -1


def search_path_ok(stmt, i):
    """stmt[i] is SET, stmt[i+1] search_path: is the value pg_catalog, pg_temp?"""
    vals = []
    j = i + 3
    if j - 1 >= len(stmt) or stmt[j - 1].text.lower() not in ("=", "to"):
        return False
    while j < len(stmt):
        t = stmt[j]
        if t.kind in ("ident", "qident", "string"):
            vals.append(t.text.strip("'\""))
            if j + 1 < len(stmt) and stmt[j + 1].text == ",":
                j += 2
                continue
        break
    flat = [v.strip().lower() for v in ",".join(vals).split(",")]
    return flat == ["pg_catalog", "pg_temp"]


class Linter:
    def __init__(self):
        self.problems = []

    def report(self, path, line, msg):
        self.problems.append("%s:%d: %s" % (path, line, msg))

    # ---- whole statements --------------------------------------------------
    def lint_file(self, path, text=None):
        if text is None:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        install = is_install_script(path)
        for stmt in split_statements(tokenize(text)):
            self.lint_statement(path, stmt, install)

    def lint_statement(self, path, stmt, install):
        w = words(stmt)
        if not w:
            return
        if w[0] == "do":
            for t in stmt:
                if t.kind in ("dollar", "string"):
                    self.lint_body(path, t, "plpgsql")
                    break
            return
        if w[0] == "alter" and len(w) > 1 and w[1] in ("function", "procedure", "routine"):
            self.check_security_definer(path, stmt, alter=True)
            return
        if w[0] != "create":
            return
        i = 1
        if w[i:i + 2] == ["or", "replace"]:
            if install:
                self.report(path, stmt[0].line,
                            "CREATE OR REPLACE in the install script (use plain CREATE)")
            i += 2
        while i < len(w) and w[i] in CREATE_MODIFIERS:
            i += 1
        kind = None
        for k in QUALIFIED_KINDS:
            if tuple(w[i:i + len(k)]) == k:
                kind = k
                break
        if kind is None:
            return
        if kind == ("operator",) and i + 1 < len(w) and w[i + 1] in ("class", "family"):
            return
        j = i + len(kind)
        if w[j:j + 3] == ["if", "not", "exists"]:
            if install:
                self.report(path, stmt[0].line,
                            "CREATE ... IF NOT EXISTS in the install script (use plain CREATE)")
            j += 3
        label = " ".join(kind).upper()
        if j >= len(stmt):
            return
        if not (j + 2 < len(stmt) and stmt[j + 1].text == "."):
            self.report(path, stmt[j].line,
                        "CREATE %s %s: name is not schema-qualified" % (label, stmt[j].text))
        if kind in (("function",), ("procedure",)):
            self.check_security_definer(path, stmt, alter=False)
            self.lint_function_body(path, stmt)

    def check_security_definer(self, path, stmt, alter):
        body_free = [t for t in stmt if t.kind != "dollar"]
        definer = find_seq(body_free, ["security", "definer"]) >= 0
        k = find_seq(body_free, ["set", "search_path"])
        if k >= 0 and not search_path_ok(body_free, k):
            self.report(path, body_free[k].line,
                        "search_path must be set to exactly pg_catalog, pg_temp")
        elif definer and k < 0:
            name = ".".join(t.text for t in stmt[2:5] if t.text != ".")
            self.report(path, stmt[0].line,
                        "SECURITY DEFINER %s without SET search_path = pg_catalog, pg_temp"
                        % ("ALTER" if alter else "function " + name))

    def lint_function_body(self, path, stmt):
        w = words(stmt)
        lang = None
        for k in range(len(w) - 1):
            if w[k] == "language":
                lang = stmt[k + 1].text.strip("'\"").lower()
        if lang not in ("sql", "plpgsql"):
            return
        k = find_seq(stmt, ["begin", "atomic"])
        if k >= 0:
            self.lint_tokens(path, stmt[k:], "sql")
            return
        for k in range(len(w) - 1):
            if w[k] == "as" and stmt[k + 1].kind in ("dollar", "string"):
                self.lint_body(path, stmt[k + 1], lang)
                return

    def lint_body(self, path, tok, lang):
        if tok.kind == "dollar":
            self.lint_tokens(path, tokenize(tok.text, tok.body_line), lang)
        else:
            body = tok.text[1:-1].replace("''", "'")
            self.lint_tokens(path, tokenize(body, tok.line), lang)

    # ---- function bodies ---------------------------------------------------
    def lint_tokens(self, path, toks, lang):
        n = len(toks)
        stmt_start = 0          # index of the first token of the current statement
        in_declare = False
        decl_eq_done = False
        set_list_depth = None   # paren depth of an assignment list (SET, USING, DIAGNOSTICS)
        depth = 0
        for_in_pending = False
        i = 0

        def low(k):
            return toks[k].low if 0 <= k < n else None

        def text(k):
            return toks[k].text if 0 <= k < n else None

        def is_target_end(k):
            """toks[k] ends an assignment target that starts right after a
            statement start, SET, USING, DIAGNOSTICS or a list comma."""
            j = k
            while j >= 0:
                t = toks[j]
                if t.kind in ("ident", "qident"):
                    if j - 1 >= 0 and toks[j - 1].text == ".":
                        j -= 2
                        continue
                    return j
                if t.text == "]":
                    d = 0
                    while j >= 0:
                        if toks[j].text == "]":
                            d += 1
                        elif toks[j].text == "[":
                            d -= 1
                            if d == 0:
                                break
                        j -= 1
                    j -= 1
                    continue
                return -1
            return -1

        cases = []              # open CASEs: "stmt" (plpgsql CASE statement) or "expr"
        while i < n:
            t = toks[i]
            lw = t.low
            # plpgsql compiler options (#variable_conflict ...): not operators
            if t.kind == "op" and t.text == "#" and low(i + 1) in (
                    "variable_conflict", "print_strict_params", "option"):
                line = t.line
                while i < n and toks[i].line == line:
                    i += 1
                continue
            if lw == "case" and low(i - 1) != "end":
                cases.append("stmt" if i == stmt_start else "expr")
            elif lw == "end" and cases and (cases[-1] == "expr" or low(i + 1) == "case"):
                cases.pop()
            # statement boundaries (THEN and ELSE of a CASE expression are not)
            in_case_expr = bool(cases) and cases[-1] == "expr"
            if t.text == ";" or (lw in STMT_START and lang == "plpgsql"
                                 and not (lw in ("then", "else") and in_case_expr)
                                 and not (lw == "exception" and low(i - 1) == "raise")):
                stmt_start = i + 1
                set_list_depth = None
                for_in_pending = False
                decl_eq_done = False
                if lw == "declare":
                    in_declare = True
                elif lw == "begin":
                    in_declare = False
                i += 1
                continue
            if i == stmt_start and lw in ("for", "foreach"):
                for_in_pending = True
            if t.text == "(":
                depth += 1
            elif t.text == ")":
                depth -= 1
                if set_list_depth is not None and depth < set_list_depth:
                    set_list_depth = None
            if lw == "set" or lw == "diagnostics" or \
                    (lw == "using" and low(stmt_start) == "raise"):
                set_list_depth = depth
            elif lw in ("where", "from", "returning") and set_list_depth == depth:
                set_list_depth = None

            # OPERATOR(schema.op)
            if lw == "operator" and text(i + 1) == "(":
                j = i + 2
                inner = []
                while j < n and toks[j].text != ")":
                    inner.append(toks[j])
                    j += 1
                if not (len(inner) >= 3 and inner[1].text == "."):
                    self.report(path, t.line, "OPERATOR(%s) is not schema-qualified"
                                % "".join(x.text for x in inner))
                if j < n:
                    toks[j].kind = "opclose"    # ")" of OPERATOR(...): acts as an operator
                i = j + 1
                continue

            if t.kind == "op":
                self.check_operator(path, toks, i, stmt_start, in_declare,
                                    decl_eq_done, set_list_depth, depth, is_target_end)
                if t.text == "=" and in_declare:
                    decl_eq_done = True
            elif t.kind == "punct" and t.text in ("%",):
                pass
            elif t.kind == "ident":
                self.check_keyword(path, toks, i, stmt_start, depth, for_in_pending)
                if lw == "in" and for_in_pending:
                    for_in_pending = False
                # not a call: a column list after an alias ("AS t(a)", "f(x) t(a)")
                # or after a CTE name ("WITH RECURSIVE tree (a) AS")
                if text(i + 1) == "(" and text(i - 1) not in (".", ")") \
                        and low(i - 1) not in ("as", "with", "recursive") \
                        and lw not in NOT_FUNCTIONS:
                    self.report(path, t.line,
                                "unqualified call %s(...): write pg_catalog.%s( or "
                                "the schema it lives in" % (t.text, t.text))
            elif t.kind == "qident" and text(i + 1) == "(" and text(i - 1) != ".":
                self.report(path, t.line, "unqualified call %s(...)" % t.text)
            i += 1

    def check_operator(self, path, toks, i, stmt_start, in_declare, decl_eq_done,
                       set_list_depth, depth, is_target_end):
        t = toks[i]
        op = t.text
        prev = toks[i - 1] if i > 0 else None
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        if op == "=>":
            return
        if op == "*" and (prev is None or (prev.text.lower() if prev.kind in ("ident", "punct") else None) in STAR_AFTER):
            return
        if op == "-" and nxt is not None and nxt.kind == "number" and (
                prev is None or prev.kind in ("op", "opclose")
                or prev.text in ("(", ",", "[", ":=", "::")
                or (prev.kind == "ident" and prev.low in SIGN_AFTER)):
            return
        if op == "%" and nxt is not None and nxt.kind == "ident" \
                and nxt.low in ("type", "rowtype"):
            return
        if op == "=":
            # DECLARE x type [NOT NULL] = value
            if in_declare and not decl_eq_done:
                return
            # target = value, first thing in a plpgsql statement
            first = toks[stmt_start] if stmt_start < len(toks) else None
            s = is_target_end(i - 1)
            if s == stmt_start and first is not None and first.low not in EXPR_START:
                return
            # SET a = 1, b = 2 / RAISE ... USING ERRCODE = ... / GET DIAGNOSTICS n = ROW_COUNT
            if set_list_depth is not None and set_list_depth == depth and s > 0:
                before = toks[s - 1]
                if before.text == "," or before.low in ("set", "using", "diagnostics",
                                                         "local", "session"):
                    return
        self.report(path, t.line, "bare operator %s: write OPERATOR(pg_catalog.%s)" % (op, op))

    def check_keyword(self, path, toks, i, stmt_start, depth, for_in_pending):
        lw = toks[i].low
        line = toks[i].line
        nxt = toks[i + 1] if i + 1 < len(toks) else None
        nlw = nxt.low if nxt is not None else None
        prev = toks[i - 1] if i > 0 else None
        plw = prev.low if prev is not None else None
        if lw == "in" and nxt is not None and nxt.text == "(" and not for_in_pending:
            self.report(path, line, "IN (...) looks up = through search_path: write "
                        "OPERATOR(pg_catalog.=) ANY (ARRAY[...])")
        elif lw in ("between", "like", "ilike") or (lw == "similar" and nlw == "to"):
            self.report(path, line, "%s looks up an operator through search_path: write "
                        "OPERATOR(pg_catalog.x) instead" % lw.upper())
        elif lw == "distinct" and plw in ("is", "not"):
            self.report(path, line, "IS DISTINCT FROM looks up = through search_path")
        elif lw == "nullif" and nlw is None and nxt is not None and nxt.text == "(":
            self.report(path, line, "NULLIF looks up = through search_path: write a CASE "
                        "with OPERATOR(pg_catalog.=)")
        elif lw == "case" and nlw != "when" and plw != "end":
            self.report(path, line, "CASE x WHEN looks up = through search_path: write "
                        "CASE WHEN x OPERATOR(pg_catalog.=) ...")


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PIECES = os.path.join(ROOT, "src")


def is_install_script(path):
    """An install script (phi_guard--X.sql: one version) or a piece of the
    generated one (an .sql file under the repository's src/): R3 applies."""
    if os.path.basename(path).count("--") == 1:
        return True
    return os.path.commonpath([os.path.abspath(path), PIECES]) == PIECES


def current_version():
    """default_version of phi_guard.control."""
    with open(os.path.join(ROOT, "phi_guard.control"), encoding="utf-8") as f:
        m = re.search(r"^default_version = '([^']+)'", f.read(), re.M)
    return m.group(1) if m else None


def default_files():
    """The scripts in the repository root - released install scripts and
    every update script - and the pieces of the current version's install
    script (src/*.sql, src/*/*.sql).  The install script make generates from
    those pieces (phi_guard--<default_version>.sql) is left out: its pieces
    are linted instead, with their own names and line numbers."""
    generated = "phi_guard--%s.sql" % current_version()
    scripts = [os.path.join(ROOT, f) for f in os.listdir(ROOT)
               if re.fullmatch(r"phi_guard--.+\.sql", f) and f != generated]
    pieces = [os.path.join(d, f)
              for d in [PIECES] + [os.path.join(PIECES, x) for x in os.listdir(PIECES)]
              if os.path.isdir(d) for f in os.listdir(d) if f.endswith(".sql")]
    return sorted(scripts + pieces)


def main(argv):
    files = argv[1:] or default_files()
    if not files:
        print("lint-sql: no script to lint")
        return 1
    linter = Linter()
    for f in files:
        linter.lint_file(f)
    for p in linter.problems:
        print(p)
    print("lint-sql: %d problems in %d files" % (len(linter.problems), len(files)))
    return 1 if linter.problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
