"""Tests of the checkers make test runs besides the suites:
test/check-tested.py (every phi_* function is called by a test) and
test/log-scan.py (no master key and no context token in the server logs).
Each passes on a small tree or log that is right, fails on one that is
wrong, and fails - instead of passing - when it reads nothing.

Run: python3 -m unittest discover -s test/tools
"""

import os
import subprocess
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK_TESTED = os.path.join(ROOT, "test", "check-tested.py")
LOG_SCAN = os.path.join(ROOT, "test", "log-scan.py")

KEY = "0123456789abcdef" * 4
# a context token's shape: two base64url JSON objects and a signature
TOKEN = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1c2VyLTQyIn0.c2lnbmF0dXJl"


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


class CheckTested(unittest.TestCase):
    """check-tested.py --root on a small tree in a temporary folder."""

    SCRIPT = ("CREATE FUNCTION phi_guard.phi_one(t text) RETURNS text AS 'x' LANGUAGE c;\n"
              "CREATE FUNCTION phi_guard.phi_two() RETURNS text AS 'x' LANGUAGE c;\n"
              "CREATE FUNCTION phi_guard.phi_ciphertext_in(cstring) RETURNS int AS 'x' LANGUAGE c;\n")

    def run_check(self, files):
        with tempfile.TemporaryDirectory() as d:
            for name, text in files.items():
                write(os.path.join(d, name), text)
            return subprocess.run([sys.executable, CHECK_TESTED, "--root", d],
                                  capture_output=True, text=True)

    def test_all_called_passes(self):
        r = self.run_check({"phi_guard--1.0.sql": self.SCRIPT,
                            "sql/01_one.sql": "SELECT phi_guard.phi_one('a');\n",
                            "test/t/001_two.pl": "$node->safe_psql('postgres', 'SELECT phi_two()');\n"})
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertEqual(r.stdout.splitlines(), ["tested: 2 passed, 0 failed"])

    def test_a_function_no_test_calls_fails(self):
        r = self.run_check({"phi_guard--1.0.sql": self.SCRIPT,
                            "sql/01_one.sql": "SELECT phi_guard.phi_one('a');\n"})
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.splitlines(), ["not tested: phi_two", "tested: 1 passed, 1 failed"])

    def test_pieces_of_the_install_script_count(self):
        r = self.run_check({"src/keys/keys.sql": self.SCRIPT,
                            "sql/01_one.sql": "SELECT phi_guard.phi_one('a');\n"})
        self.assertEqual(r.stdout.splitlines()[-1], "tested: 1 passed, 1 failed")

    def test_runners_directly_in_test_are_no_tests(self):
        r = self.run_check({"phi_guard--1.0.sql": self.SCRIPT,
                            "sql/01_one.sql": "SELECT phi_guard.phi_one('a');\n",
                            "test/function-reference.sql": "SELECT phi_two();\n"})
        self.assertEqual(r.returncode, 1)
        self.assertIn("not tested: phi_two", r.stdout.splitlines())

    def test_no_function_found_fails(self):
        r = self.run_check({"sql/01_one.sql": "SELECT phi_guard.phi_one('a');\n"})
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.splitlines()[-1], "tested: 0 passed, 1 failed")
        self.assertIn("read nothing", r.stdout)

    def test_no_test_file_found_fails(self):
        r = self.run_check({"phi_guard--1.0.sql": self.SCRIPT})
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.splitlines()[-1], "tested: 0 passed, 1 failed")

    def test_the_repository_passes(self):
        r = subprocess.run([sys.executable, CHECK_TESTED], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout)
        self.assertRegex(r.stdout.splitlines()[-1], r"^tested: [1-9][0-9]* passed, 0 failed$")


class LogScan(unittest.TestCase):
    """log-scan.py on log files written to a temporary folder."""

    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.key = os.path.join(self.dir.name, "master.key")
        write(self.key, KEY + "\n")

    def log(self, name, text):
        path = os.path.join(self.dir.name, name)
        write(path, text)
        return path

    def scan(self, *logs):
        r = subprocess.run([sys.executable, LOG_SCAN, "--master-key", self.key, *logs],
                           capture_output=True, text=True)
        return r.returncode, r.stdout.splitlines()

    def test_clean_log_passes(self):
        rc, out = self.scan(self.log("a.log", "2026-01-01 10:00:00.000 UTC [1] LOG:  database system is ready\n"))
        self.assertEqual(rc, 0, out)
        self.assertEqual(out[-1], "log scan: 2 passed, 0 failed")

    def test_master_key_in_any_case_fails(self):
        good = self.log("a.log", "2026-01-01 10:00:00.000 UTC [1] LOG:  ready\n")
        bad = self.log("b.log", "2026-01-01 10:00:01.000 UTC [2] DEBUG:  key %s\n" % KEY.upper())
        rc, out = self.scan(good, bad)
        self.assertEqual(rc, 1)
        self.assertEqual(out[0], "not ok: the master key appears in " + bad)
        self.assertEqual(out[-1], "log scan: 1 passed, 1 failed")
        self.assertNotIn(KEY, "\n".join(out).lower())

    def test_token_in_a_server_message_fails(self):
        rc, out = self.scan(self.log("a.log", "2026-01-01 10:00:00.000 UTC [1] LOG:  ready\n"
                                     "2026-01-01 10:00:01.000 UTC [2] ERROR:  bad context\n"
                                     "\tDETAIL:  token " + TOKEN + "\n"))
        self.assertEqual(rc, 1)
        self.assertRegex(out[1], r"^not ok: a context token in a server message at .*a\.log:2$")

    def test_token_in_a_logged_statement_passes(self):
        rc, out = self.scan(self.log("a.log",
                                     "2026-01-01 10:00:00.000 UTC [1] LOG:  statement: SELECT phi_context_set('%s');\n"
                                     "2026-01-01 10:00:01.000 UTC [1] ERROR:  context rejected\n"
                                     "2026-01-01 10:00:01.000 UTC [1] STATEMENT:  SELECT phi_context_set('%s');\n"
                                     % (TOKEN, TOKEN)))
        self.assertEqual(rc, 0, out)

    def test_no_log_fails(self):
        rc, out = self.scan()
        self.assertEqual(rc, 1)
        self.assertEqual(out[-1], "log scan: 0 passed, 2 failed")
        self.assertIn("no server log to scan", out[0])

    def test_empty_logs_fail(self):
        rc, out = self.scan(self.log("a.log", ""), self.log("b.log", ""))
        self.assertEqual(rc, 1)
        self.assertEqual(out[-1], "log scan: 0 passed, 2 failed")
        self.assertIn("no log record in 2 file(s)", out[0])

    def test_unreadable_log_fails(self):
        rc, out = self.scan(os.path.join(self.dir.name, "missing.log"))
        self.assertEqual(rc, 1)
        self.assertIn("cannot read", out[0])

    def test_no_master_key_fails(self):
        write(self.key, "\n")
        rc, out = self.scan(self.log("a.log", "2026-01-01 10:00:00.000 UTC [1] LOG:  ready\n"))
        self.assertEqual(rc, 1)
        self.assertIn("no master key in", out[0])


if __name__ == "__main__":
    unittest.main()
