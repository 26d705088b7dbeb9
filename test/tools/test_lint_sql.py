"""Tests of test/lint-sql.py: each hazard class is caught on a small
synthetic script, a clean script passes, and the repository's own install
and upgrade scripts pass.

Run: python3 -m unittest discover -s test/tools
"""

import importlib.util
import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LINT = os.path.join(ROOT, "test", "lint-sql.py")

_spec = importlib.util.spec_from_file_location("lint_sql", LINT)
lint_sql = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lint_sql)

INSTALL = "phi_guard--9.9.9.sql"
UPGRADE = "phi_guard--9.9.8--9.9.9.sql"

CLEAN = r"""\echo Use "CREATE EXTENSION phi_guard" to load this file. \quit
-- a comment with = and || and format( in it
CREATE TABLE phi_guard.t (id pg_catalog.int4 NOT NULL CHECK (id > 0), v pg_catalog.text);
CREATE INDEX t_id ON phi_guard.t (id);
CREATE TYPE phi_guard.pair AS (a pg_catalog.int4, b pg_catalog.int4);
CREATE FUNCTION phi_guard.f(x pg_catalog.int4, y pg_catalog.text DEFAULT 'a = b')
  RETURNS pg_catalog.text
  LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
  SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS
$$
#variable_conflict use_variable
DECLARE
  n pg_catalog.int8 = 0;
  m phi_guard.t.id%TYPE := -1;
  r record;
  s pg_catalog.text[];
BEGIN
  n = 2;
  s[1] := 'x';
  FOR r IN SELECT * FROM phi_guard.t t WHERE t.id OPERATOR(pg_catalog.=) x LOOP
    UPDATE phi_guard.t SET v = 'y', id = r.id WHERE id OPERATOR(pg_catalog.=) r.id;
  END LOOP;
  FOR i IN 1..3 LOOP
    PERFORM pg_catalog.count(*) FROM phi_guard.t WHERE id OPERATOR(pg_catalog.>) -1;
  END LOOP;
  GET DIAGNOSTICS n = ROW_COUNT;
  IF NOT EXISTS (SELECT FROM phi_guard.t t WHERE t.v OPERATOR(pg_catalog.||) 'a'
                 OPERATOR(pg_catalog.=) COALESCE(y, '')) THEN
    RAISE EXCEPTION 'bad % = %', x, y
      USING ERRCODE = '22023', HINT = CASE WHEN x OPERATOR(pg_catalog.>) 1 THEN 'A.' ELSE 'B.' END;
  END IF;
  CASE WHEN x OPERATOR(pg_catalog.=) 1 THEN n := 1; ELSE n := 2; END CASE;
  EXECUTE pg_catalog.format('SELECT %L = format(%L)', y, y);
  RETURN pg_catalog.concat_ws(' ', ARRAY['a', 'b']::pg_catalog.text[]);
END
$$;
CREATE FUNCTION phi_guard.g(a pg_catalog.int4) RETURNS pg_catalog.int4
  LANGUAGE sql IMMUTABLE PARALLEL SAFE
  RETURN a OPERATOR(pg_catalog.+) 1;
CREATE FUNCTION phi_guard.h(a pg_catalog.int4) RETURNS pg_catalog.int4
  AS 'MODULE_PATHNAME', 'phi_guard_h' LANGUAGE C STRICT;
DO $do$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname OPERATOR(pg_catalog.=) 'x') THEN
    EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', 'x');
  END IF;
END
$do$;
REVOKE ALL ON FUNCTION phi_guard.f(pg_catalog.int4, pg_catalog.text) FROM PUBLIC;
"""


def lint(text, name=UPGRADE):
    linter = lint_sql.Linter()
    linter.lint_file(name, text)
    return linter.problems


def fn(body, lang="plpgsql", header=""):
    """An upgrade-script function with the given body."""
    return ("CREATE FUNCTION phi_guard.x() RETURNS void LANGUAGE %s %s\n"
            "  SET search_path = pg_catalog, pg_temp AS\n$$\n%s\n$$;\n" % (lang, header, body))


def plbody(stmts):
    return fn("BEGIN\n%s\nEND" % stmts)


class CleanScripts(unittest.TestCase):
    def test_clean_install_script_passes(self):
        self.assertEqual(lint(CLEAN, INSTALL), [])

    def test_clean_upgrade_script_passes(self):
        self.assertEqual(lint(CLEAN, UPGRADE), [])

    def test_repository_scripts_pass(self):
        files = lint_sql.default_files()
        names = [os.path.relpath(f, ROOT) for f in files]
        # the released install script, every update script and the pieces
        # of the generated install script, not the generated script itself
        self.assertIn("phi_guard--0.1.0.sql", names)
        self.assertIn("phi_guard--0.1.0--0.2.0.sql", names)
        self.assertIn("phi_guard--0.2.0--0.3.0.sql", names)
        self.assertIn(os.path.join("src", "common", "schema.sql"), names)
        self.assertIn(os.path.join("src", "reports.sql"), names)
        self.assertNotIn("phi_guard--%s.sql" % lint_sql.current_version(), names)
        linter = lint_sql.Linter()
        for f in files:
            linter.lint_file(f)
        self.assertEqual(linter.problems, [])


class SecurityDefiner(unittest.TestCase):
    def test_missing_search_path(self):
        p = lint("CREATE FUNCTION phi_guard.x() RETURNS void LANGUAGE C SECURITY DEFINER\n"
                 "  AS 'MODULE_PATHNAME', 'x';\n")
        self.assertEqual(len(p), 1)
        self.assertIn("SECURITY DEFINER", p[0])
        self.assertTrue(p[0].startswith(UPGRADE + ":1: "))

    def test_wrong_search_path(self):
        p = lint("CREATE FUNCTION phi_guard.x() RETURNS void LANGUAGE C SECURITY DEFINER\n"
                 "  SET search_path = public, pg_catalog AS 'MODULE_PATHNAME', 'x';\n")
        self.assertEqual(len(p), 1)
        self.assertIn("exactly pg_catalog, pg_temp", p[0])

    def test_search_path_as_string_is_fine(self):
        self.assertEqual(lint("CREATE FUNCTION phi_guard.x() RETURNS void LANGUAGE C SECURITY DEFINER\n"
                              "  SET search_path TO 'pg_catalog, pg_temp' AS 'MODULE_PATHNAME', 'x';\n"), [])

    def test_alter_function_security_definer(self):
        p = lint("ALTER FUNCTION phi_guard.x() SECURITY DEFINER;\n")
        self.assertEqual(len(p), 1)
        self.assertIn("SECURITY DEFINER", p[0])
        self.assertEqual(lint("ALTER FUNCTION phi_guard.x() SECURITY DEFINER "
                              "SET search_path = pg_catalog, pg_temp;\n"), [])


class QualifiedNames(unittest.TestCase):
    def test_unqualified_creates(self):
        for stmt, label in [
                ("CREATE FUNCTION x() RETURNS void AS 'MODULE_PATHNAME', 'x' LANGUAGE C;", "FUNCTION"),
                ("CREATE TABLE t (a pg_catalog.int4);", "TABLE"),
                ("CREATE VIEW v AS SELECT 1;", "VIEW"),
                ("CREATE MATERIALIZED VIEW mv AS SELECT 1;", "MATERIALIZED VIEW"),
                ("CREATE TYPE ty AS (a pg_catalog.int4);", "TYPE"),
                ("CREATE DOMAIN d AS pg_catalog.int4;", "DOMAIN"),
                ("CREATE SEQUENCE s;", "SEQUENCE"),
                ("CREATE OPERATOR CLASS oc FOR TYPE pg_catalog.int4 USING btree AS OPERATOR 1 pg_catalog.<;",
                 "OPERATOR CLASS"),
                ("CREATE OR REPLACE VIEW v2 AS SELECT 1;", "VIEW")]:
            with self.subTest(stmt=stmt):
                p = lint(stmt + "\n")
                self.assertEqual(len(p), 1, p)
                self.assertIn("CREATE %s" % label, p[0])
                self.assertIn("not schema-qualified", p[0])

    def test_unqualifiable_objects_are_not_reported(self):
        self.assertEqual(lint("CREATE INDEX i ON phi_guard.t (a);\n"
                              "CREATE TRIGGER tr AFTER INSERT ON phi_guard.t "
                              "FOR EACH ROW EXECUTE FUNCTION phi_guard.f();\n"
                              "CREATE POLICY p ON phi_guard.t USING (true);\n"), [])


class InstallScriptCreate(unittest.TestCase):
    def test_create_or_replace_in_install_script(self):
        s = "CREATE OR REPLACE FUNCTION phi_guard.x() RETURNS void AS 'MODULE_PATHNAME', 'x' LANGUAGE C;\n"
        p = lint(s, INSTALL)
        self.assertEqual(len(p), 1)
        self.assertIn("CREATE OR REPLACE in the install script", p[0])
        self.assertEqual(lint(s, UPGRADE), [])

    def test_pieces_are_install_script(self):
        s = "CREATE OR REPLACE FUNCTION phi_guard.x() RETURNS void AS 'MODULE_PATHNAME', 'x' LANGUAGE C;\n"
        piece = os.path.join(ROOT, "src", "keys", "keys.sql")
        p = lint(s, piece)
        self.assertEqual(len(p), 1, p)
        self.assertIn("CREATE OR REPLACE in the install script", p[0])
        # an update script in a tree copied under some .../src/ stays one
        copied = os.path.join(tempfile.gettempdir(), "src", UPGRADE)
        self.assertEqual(lint(s, copied), [])

    def test_if_not_exists_in_install_script(self):
        p = lint("CREATE TABLE IF NOT EXISTS phi_guard.t (a pg_catalog.int4);\n", INSTALL)
        self.assertEqual(len(p), 1)
        self.assertIn("IF NOT EXISTS", p[0])


class Operators(unittest.TestCase):
    def test_bare_operators_in_plpgsql(self):
        for op in ["=", "<>", "||", "<", ">=", "~~", "+", "@>", "-"]:
            with self.subTest(op=op):
                p = lint(plbody("  IF 1 %s 2 THEN RETURN; END IF;" % op))
                self.assertEqual(len(p), 1, p)
                self.assertIn("bare operator %s" % op, p[0])

    def test_bare_operator_in_sql_body_and_line_number(self):
        p = lint(fn("SELECT 1\n  WHERE 'a' || 'b' IS NOT NULL", lang="sql"))
        self.assertEqual(p, [UPGRADE + ":5: bare operator ||: write OPERATOR(pg_catalog.||)"])

    def test_comparison_after_update_set_is_caught(self):
        p = lint(plbody("  UPDATE phi_guard.t SET a = 1 WHERE b = 2;"))
        self.assertEqual(len(p), 1, p)
        self.assertIn("bare operator =", p[0])

    def test_comparison_in_if_is_caught(self):
        p = lint(plbody("  IF x = 2 THEN RETURN; END IF;"))
        self.assertEqual(len(p), 1, p)

    def test_unqualified_operator_construct(self):
        p = lint(plbody("  IF 1 OPERATOR(=) 2 THEN RETURN; END IF;"))
        self.assertEqual(len(p), 1, p)
        self.assertIn("OPERATOR(=) is not schema-qualified", p[0])

    def test_implicit_operator_lookups(self):
        for expr, word in [("x IN (1, 2)", "IN (...)"), ("x NOT IN (SELECT 1)", "IN (...)"),
                           ("x BETWEEN 1 AND 2", "BETWEEN"), ("y LIKE 'a%'", "LIKE"),
                           ("y ILIKE 'a%'", "ILIKE"), ("y SIMILAR TO 'a'", "SIMILAR"),
                           ("x IS DISTINCT FROM 1", "DISTINCT FROM"),
                           ("NULLIF(x, 1) IS NULL", "NULLIF"),
                           ("CASE x WHEN 1 THEN true END", "CASE x WHEN")]:
            with self.subTest(expr=expr):
                p = lint(plbody("  IF %s THEN RETURN; END IF;" % expr))
                self.assertEqual(len(p), 1, p)
                self.assertIn(word, p[0])

    def test_operators_in_strings_and_execute_text_are_ignored(self):
        self.assertEqual(lint(plbody("  EXECUTE 'SELECT 1 = 1 || format(''x'')';\n"
                                     "  RAISE NOTICE 'a = b <> c';")), [])

    def test_quoted_body(self):
        p = lint("CREATE FUNCTION phi_guard.x() RETURNS pg_catalog.bool LANGUAGE sql\n"
                 "  AS 'SELECT 1 = 1';\n")
        self.assertEqual(len(p), 1, p)
        self.assertIn("bare operator =", p[0])

    def test_begin_atomic_body(self):
        p = lint("CREATE FUNCTION phi_guard.x() RETURNS pg_catalog.int4 LANGUAGE sql\n"
                 "BEGIN ATOMIC\n  SELECT 1 + 1;\n  SELECT now();\nEND;\n")
        self.assertEqual(len(p), 2, p)
        self.assertIn(":3: bare operator +", p[0])
        self.assertIn(":4: unqualified call now", p[1])

    def test_do_block(self):
        p = lint("DO $x$\nBEGIN\n  IF 1 = 1 THEN RETURN; END IF;\nEND\n$x$;\n")
        self.assertEqual(p, [UPGRADE + ":3: bare operator =: write OPERATOR(pg_catalog.=)"])

    def test_c_function_is_not_linted(self):
        self.assertEqual(lint("CREATE FUNCTION phi_guard.x() RETURNS void\n"
                              "  AS 'MODULE_PATHNAME', 'a = b' LANGUAGE C;\n"), [])


class FunctionCalls(unittest.TestCase):
    def test_unqualified_calls(self):
        for call in ["format('%s', 1)", "now()", "count(*)", "current_setting('x')",
                     "my_new_helper(1)", '"quoted"(1)']:
            with self.subTest(call=call):
                p = lint(plbody("  PERFORM %s;" % call))
                self.assertEqual(len(p), 1, p)
                self.assertIn("unqualified call", p[0])

    def test_syntax_with_parentheses_is_not_a_call(self):
        self.assertEqual(lint(plbody(
            "  PERFORM COALESCE(NULL, 1), GREATEST(1, 2), ARRAY(SELECT 1), ROW(1, 2),\n"
            "          CAST(1 AS pg_catalog.text), EXISTS (SELECT 1), EXTRACT(year FROM pg_catalog.now()),\n"
            "          pg_catalog.substring('abc' FROM 2), 1 OPERATOR(pg_catalog.=) ANY (ARRAY[1]);\n"
            "  RETURN (SELECT 1) ;")), [])

    def test_column_lists_of_aliases_and_ctes_are_not_calls(self):
        self.assertEqual(lint(plbody(
            "  PERFORM t.a FROM pg_catalog.generate_series(1, 2) t(a);\n"
            "  PERFORM u.a FROM pg_catalog.generate_series(1, 2) AS u(a);\n"
            "  WITH RECURSIVE tree (a) AS (SELECT 1) SELECT tree.a INTO x FROM tree;")), [])
        # a call after a CTE's AS ( is still a call
        p = lint(plbody("  WITH w AS (SELECT now()) SELECT 1 INTO x FROM w;"))
        self.assertEqual(len(p), 1, p)

    def test_allow_list_is_explicit(self):
        # the allow-list names SQL syntax only, no ordinary function
        for name in ["format", "now", "count", "current_setting", "concat", "lower"]:
            self.assertNotIn(name, lint_sql.NOT_FUNCTIONS)
        self.assertIn("coalesce", lint_sql.NOT_FUNCTIONS)


class CommandLine(unittest.TestCase):
    def run_lint(self, text, name):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, name)
            with open(path, "w") as f:
                f.write(text)
            return subprocess.run([sys.executable, LINT, path], capture_output=True, text=True)

    def test_exit_status_and_output(self):
        bad = self.run_lint(plbody("  PERFORM now();"), UPGRADE)
        self.assertEqual(bad.returncode, 1)
        lines = bad.stdout.splitlines()
        self.assertRegex(lines[0], r"^.*phi_guard--9\.9\.8--9\.9\.9\.sql:5: unqualified call now")
        self.assertEqual(lines[-1], "lint-sql: 1 problems in 1 files")
        good = self.run_lint(CLEAN, INSTALL)
        self.assertEqual(good.returncode, 0, good.stdout)
        self.assertEqual(good.stdout.splitlines(), ["lint-sql: 0 problems in 1 files"])

    def test_no_script_is_a_failure(self):
        found = lint_sql.default_files
        lint_sql.default_files = lambda: []
        try:
            self.assertEqual(lint_sql.main(["lint-sql.py"]), 1)
        finally:
            lint_sql.default_files = found


if __name__ == "__main__":
    unittest.main()
