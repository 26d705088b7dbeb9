"""Tests for tools/recover.py, recovery of phi_guard data without phi_guard.

Run from the repository root:

    /usr/bin/python3 -m unittest discover -s test/tools -v

Every value and wrapped key here is made by the test itself with AESGCM,
following SPEC.md sections 2-3 (a second, independent reading of the
formats), and the dumps are synthetic text in pg_dump's plain format.  No
database is needed; test/t/005_recover.pl runs the tool against a real
cluster and a real pg_dump.
"""

import base64
import contextlib
import gzip
import hashlib
import io
import importlib.util
import os
import random
import stat
import struct
import subprocess
import sys
import tempfile
import unittest

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOOL = os.path.join(REPO, "tools", "recover.py")
PYTHON = "/usr/bin/python3"

_spec = importlib.util.spec_from_file_location("recover", TOOL)
rc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rc)

SECRET = "PHI-SECRET-MARKER"


# --------------------------------------------------------------------------
# SPEC sections 2-3, written out again for the test
# --------------------------------------------------------------------------

def wrap(master, key_id, dek):
    nonce = os.urandom(12)
    return nonce + AESGCM(master).encrypt(
        nonce, dek, b"phi_guard.dek.v1" + struct.pack(">I", key_id))


def seal(dek, key_id, plaintext, aad=None, is_bytea=None):
    """A phi_guard value (raw bytes) of text (str) or bytea (bytes)."""
    if is_bytea is None:
        is_bytea = isinstance(plaintext, bytes)
    pt = plaintext if isinstance(plaintext, bytes) else plaintext.encode("utf-8")
    flags = (1 if aad is not None else 0) | (2 if is_bytea else 0)
    header = bytes([1, 1, flags, 0]) + struct.pack(">I", key_id)
    nonce = os.urandom(12)
    ad = header + (aad.encode("utf-8") if aad is not None else b"")
    return header + nonce + AESGCM(dek).encrypt(nonce, pt, ad)


def text_form(raw):
    return "phi1:" + base64.b64encode(raw).decode("ascii")


def copy_escape(s):
    """COPY text format of one field (str or None), as pg_dump writes it."""
    if s is None:
        return "\\N"
    return (s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
            .replace("\r", "\\r"))


def parse_pg_csv(text):
    """PostgreSQL-style CSV -> rows; an unquoted empty field is None."""
    rows, row, i, n = [], [], 0, len(text)
    field, quoted, at_start = [], False, True
    while i < n:
        c = text[i]
        if at_start and c == '"':
            quoted, at_start = True, False
            i += 1
            while True:
                j = text.index('"', i)
                field.append(text[i:j])
                if text.startswith('""', j):
                    field.append('"')
                    i = j + 2
                else:
                    i = j + 1
                    break
            continue
        if c in ",\n":
            row.append("".join(field) if field or quoted else None)
            field, quoted, at_start = [], False, True
            if c == "\n":
                rows.append(row)
                row = []
            i += 1
            continue
        field.append(c)
        at_start = False
        i += 1
    if field or quoted or row:
        row.append("".join(field) if field or quoted else None)
        rows.append(row)
    return rows


class World:
    """A keyring and its master key, made per SPEC section 2."""

    def __init__(self):
        self.master = os.urandom(32)
        self.master_hex = self.master.hex()
        self.deks = {}
        self.rows = []      # (id, name, version, state, wrapped or None)

    def key(self, key_id, name, version=1, state="active", master=None):
        dek = os.urandom(32)
        self.deks[key_id] = dek
        self.rows.append((key_id, name, version, state,
                          wrap(master or self.master, key_id, dek)))
        return dek

    def destroy(self, key_id):
        self.rows = [(i, n, v, "destroyed", None) if i == key_id else (i, n, v, s, w)
                     for i, n, v, s, w in self.rows]

    def keyring(self, master_keys=None):
        krows = [rc.KeyRow("data", i, n, v, s, w) for i, n, v, s, w in self.rows]
        mks = master_keys or [rc.MasterKey(self.master, None)]
        kr = rc.Keyring(krows, mks)
        return kr


def run_main(argv, stdin=b""):
    """Run recover.main in-process -> (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    sys.stdin = io.TextIOWrapper(io.BytesIO(stdin), encoding="utf-8")
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = rc.main(argv)
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


# --------------------------------------------------------------------------
# The master key
# --------------------------------------------------------------------------

class MasterKeyTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.hex = os.urandom(32).hex()

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, text, mode=0o600):
        path = os.path.join(self.tmp.name, "mk")
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def test_one_key_surrounding_white_space(self):
        keys = rc.parse_master_keys(("  \t%s \r\n\n" % self.hex.upper()).encode(), "t")
        self.assertEqual(len(keys), 1)
        self.assertEqual(keys[0].key, bytes.fromhex(self.hex))
        self.assertIsNone(keys[0].name)

    def test_several_keys_named_or_not(self):
        old = os.urandom(32).hex()
        keys = rc.parse_master_keys(("current: %s\n\n  %s\n" % (self.hex, old)).encode(), "t")
        self.assertEqual([k.key.hex() for k in keys], [self.hex, old])
        self.assertEqual([k.name for k in keys], ["current", None])

    def test_fingerprint_is_the_servers(self):
        k = rc.MasterKey(bytes(range(32)), None)
        want = hashlib.sha256(b"phi_guard.mk.fp" + bytes(range(32))).hexdigest()[:8]
        self.assertEqual(k.fingerprint, want)

    def test_bad_key_text_never_quoted(self):
        h = self.hex
        cases = [
            (h[:-2], "line 1 does not hold exactly 64"),
            (h[:-1] + "g", "line 1 does not hold exactly 64"),
            (h + "00", "line 1 does not hold exactly 64"),
            (h[:32] + " " + h[32:], "line 1 does not hold exactly 64"),
            ("\n\n" + "0x" + h[2:], "line 3 does not hold exactly 64"),
            ("", "holds no master key"),
            ("  \n \n", "holds no master key"),
            ("%s\n%s\n" % (h, h), "line 2 repeats master key 1"),
            ("a:%s\na:%s\n" % (h, os.urandom(32).hex()), "line 2 repeats the key name"),
            ("bad name:%s" % h, "invalid key name"),
            (":%s" % h, "invalid key name"),
            ("x" * 5000, "4096 bytes or more"),
        ]
        for text, msg in cases:
            with self.subTest(msg=msg, text=text[:10]):
                with self.assertRaises(rc.InputError) as cm:
                    rc.parse_master_keys(text.encode(), "the key file")
                self.assertIn(msg, str(cm.exception))
                self.assertNotIn(h[:16], str(cm.exception))
        with self.assertRaises(rc.InputError) as cm:
            rc.parse_master_keys(("%s\u00e9" % h).encode("utf-8"), "f")
        self.assertIn("non-ASCII", str(cm.exception))

    def test_key_file(self):
        keys = rc.read_master_key_file(self.write(self.hex + "\n"))
        self.assertEqual(keys[0].key.hex(), self.hex)

    def test_key_file_open_to_others_warns(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            keys = rc.read_master_key_file(self.write(self.hex, 0o644))
        self.assertEqual(len(keys), 1)
        self.assertIn("group or others", err.getvalue())
        self.assertNotIn(self.hex, err.getvalue())

    def test_key_file_missing_or_directory(self):
        with self.assertRaises(rc.InputError) as cm:
            rc.read_master_key_file(os.path.join(self.tmp.name, "none"))
        self.assertIn("cannot open", str(cm.exception))
        with self.assertRaises(rc.InputError) as cm:
            rc.read_master_key_file(self.tmp.name)
        self.assertIn("not a regular file", str(cm.exception))

    def test_key_command(self):
        keys = rc.read_master_key_command("printf '%s\\n'" % self.hex)
        self.assertEqual(keys[0].key.hex(), self.hex)
        path = self.write("%s\n%s\n" % (self.hex, os.urandom(32).hex()))
        self.assertEqual(len(rc.read_master_key_command("cat '%s'" % path)), 2)

    def test_key_command_fails(self):
        with self.assertRaises(rc.InputError) as cm:
            rc.read_master_key_command("printf '%s'; exit 3" % self.hex)
        self.assertIn("exited with status 3", str(cm.exception))
        self.assertNotIn(self.hex, str(cm.exception))
        with self.assertRaises(rc.InputError) as cm:
            rc.read_master_key_command("echo not-a-key")
        self.assertIn("does not hold exactly 64", str(cm.exception))


# --------------------------------------------------------------------------
# Keyring and values
# --------------------------------------------------------------------------

class ValueTest(unittest.TestCase):

    def setUp(self):
        self.w = World()
        self.dek1 = self.w.key(1, "alpha", 1, "retired")
        self.dek3 = self.w.key(3, "alpha", 2, "active")
        self.dek4 = self.w.key(4, "gone", 1, "active")
        self.w.destroy(4)
        self.kr = self.w.keyring()
        self.rec = rc.Recovery(self.kr)

    def decrypt(self, v, aad=None):
        return rc.decrypt_raw(self.kr, rc.raw_value(v), aad)

    def fails(self, v, aad, msg):
        with self.assertRaises(rc.ValueFailure) as cm:
            self.decrypt(v, aad)
        self.assertIn(msg, str(cm.exception))
        return str(cm.exception)

    def test_text_round_trips(self):
        for pt in ["Jane Doe, MRN 000123", "", "Zo\u00eb \u60a3\u8005 \U0001fa7a",
                   "tab\tnl\ncr\r\\ \"q\" , ;", SECRET * 1000]:
            for key_id, dek in ((1, self.dek1), (3, self.dek3)):
                with self.subTest(pt=pt[:20], key=key_id):
                    raw = seal(dek, key_id, pt)
                    self.assertEqual(self.decrypt(raw), pt)
                    self.assertEqual(self.decrypt(text_form(raw)), pt)
                    self.assertEqual(self.decrypt("\\x" + raw.hex()), pt)
                    self.assertEqual(len(raw), len(pt.encode()) + 36)

    def test_bytea_flag(self):
        raw = seal(self.dek3, 3, b"\x00\x01\xff")
        self.assertEqual(self.decrypt(raw), b"\x00\x01\xff")
        self.assertEqual(rc.render(self.decrypt(raw)), "\\x0001ff")
        self.assertEqual(rc.render(self.decrypt(seal(self.dek3, 3, b""))), "\\x")
        # bytea that happens to be UTF-8 stays bytea; text stays text
        self.assertEqual(rc.render(self.decrypt(seal(self.dek3, 3, b"abc"))), "\\x616263")
        self.assertEqual(rc.render(self.decrypt(seal(self.dek3, 3, "abc"))), "abc")

    def test_aad_binding(self):
        raw = seal(self.dek3, 3, SECRET, "clinic.patients.ssn:42")
        self.assertEqual(self.decrypt(raw, "clinic.patients.ssn:42"), SECRET)
        self.fails(raw, "clinic.patients.ssn:43", "authentication failed")
        self.fails(raw, "", "authentication failed")
        self.fails(raw, None, "encrypted with an aad, but none was given")
        plain = seal(self.dek3, 3, SECRET)
        self.fails(plain, "clinic.patients.ssn:42", "encrypted without an aad")
        self.fails(plain, "", "encrypted without an aad")
        empty = seal(self.dek3, 3, SECRET, "")
        self.assertEqual(self.decrypt(empty, ""), SECRET)
        self.fails(empty, None, "none was given")
        utf8 = seal(self.dek1, 1, SECRET, "patient:Bj\u00f6rk")
        self.assertEqual(self.decrypt(utf8, "patient:Bj\u00f6rk"), SECRET)
        self.fails(utf8, "patient:Bjork", "authentication failed")

    def test_every_single_byte_change_is_refused(self):
        raw = seal(self.dek3, 3, SECRET, "row:1")
        known = ("authentication failed", "unknown", "not in this keyring",
                 "was destroyed", "without an aad", "encrypted with an aad",
                 "cannot be unwrapped")
        for i in range(len(raw)):
            for bit in (0x01, 0x80):
                bad = bytearray(raw)
                bad[i] ^= bit
                with self.subTest(byte=i, bit=bit):
                    with self.assertRaises(rc.ValueFailure) as cm:
                        self.decrypt(bytes(bad), "row:1")
                    msg = str(cm.exception)
                    self.assertTrue(any(k in msg for k in known), msg)
                    self.assertNotIn(SECRET, msg)
                    self.assertNotIn(base64.b64encode(raw).decode()[:20], msg)
        self.fails(raw[:-1], "row:1", "authentication failed")
        self.fails(raw[:35], "row:1", "shorter than the 36 bytes")

    def test_header_checks(self):
        raw = seal(self.dek3, 3, SECRET)
        for i, val, msg in ((0, 2, "unknown format version 2"),
                            (1, 7, "unknown algorithm 7"),
                            (2, 4, "unknown flag"), (3, 1, "reserved")):
            bad = bytearray(raw)
            bad[i] = val
            self.fails(bytes(bad), None, msg)

    def test_destroyed_key(self):
        raw = seal(self.dek4, 4, SECRET)
        msg = self.fails(raw, None, "key id 4 was destroyed")
        self.assertIn('key "gone" version 1', msg)

    def test_unknown_key_id(self):
        raw = seal(os.urandom(32), 99, SECRET)
        self.fails(raw, None, "key id 99 is not in this keyring")

    def test_key_wrapped_under_another_master_key(self):
        self.w.key(5, "beta", 1, "active", master=os.urandom(32))
        kr = self.w.keyring()
        with self.assertRaises(rc.ValueFailure) as cm:
            rc.decrypt_raw(kr, seal(self.w.deks[5], 5, SECRET), None)
        self.assertIn("key id 5 (key \"beta\" version 1) cannot be unwrapped", str(cm.exception))
        # the other keys still work
        self.assertEqual(rc.decrypt_raw(kr, seal(self.dek3, 3, "x"), None), "x")
        kr.check_master_key([rc.MasterKey(self.w.master, None)])

    def test_wrong_master_key(self):
        wrong = rc.MasterKey(os.urandom(32), None)
        kr = self.w.keyring([wrong])
        with self.assertRaises(rc.InputError) as cm:
            kr.check_master_key([wrong])
        msg = str(cm.exception)
        self.assertIn("wrong master key", msg)
        self.assertIn("none of the 2 live data keys", msg)
        self.assertIn(wrong.fingerprint, msg)
        self.assertNotIn(self.w.master_hex[:16], msg)
        self.assertNotIn(wrong.key.hex()[:16], msg)

    def test_rotated_master_keys_each_tried(self):
        new = os.urandom(32)
        self.w.key(6, "delta", 1, "active", master=new)
        mks = [rc.MasterKey(new, "new"), rc.MasterKey(self.w.master, "old")]
        kr = self.w.keyring(mks)
        kr.check_master_key(mks)
        self.assertEqual(rc.decrypt_raw(kr, seal(self.w.deks[6], 6, "n"), None), "n")
        self.assertEqual(rc.decrypt_raw(kr, seal(self.dek1, 1, "o"), None), "o")
        self.assertEqual(kr.unwrapped_by[("data", 6)].name, "new")
        self.assertEqual(kr.unwrapped_by[("data", 1)].name, "old")

    def test_wrapped_key_bound_to_its_id(self):
        # a wrapped key moved to another id does not unwrap (AD has the id)
        i, n, v, s, wrapped = self.w.rows[0]
        rows = [rc.KeyRow("data", 7, n, v, s, wrapped)]
        kr = rc.Keyring(rows, [rc.MasterKey(self.w.master, None)])
        self.assertEqual(kr.unwrapped_data_keys(), 0)
        self.assertIsNone(rc.unwrap(self.w.master, 1, wrapped[:-1]))

    def test_index_key_ids_do_not_decrypt(self):
        rows = [rc.KeyRow("data", i, n, v, s, w) for i, n, v, s, w in self.w.rows]
        idx = os.urandom(32)
        rows.append(rc.KeyRow("index", 2, "alpha", None, None, wrap(self.w.master, 2, idx)))
        kr = rc.Keyring(rows, [rc.MasterKey(self.w.master, None)])
        self.assertIn(("index", 2), kr.unwrapped_by)
        with self.assertRaises(rc.ValueFailure):
            rc.decrypt_raw(kr, seal(idx, 2, "x"), None)

    def test_not_a_value(self):
        for v in ["Jane Doe " + SECRET, "phi1:!!!" + SECRET, "phi1:AQE", "\\xzz" + SECRET,
                  "PHI1:AQEB"]:
            with self.subTest(v=v):
                with self.assertRaises(rc.ValueFailure) as cm:
                    rc.raw_value(v)
                self.assertTrue(str(cm.exception).startswith("not a phi_guard value"))
                self.assertNotIn(SECRET, str(cm.exception))
        self.fails(b"", None, "0 bytes long")

    def test_recovery_counts_and_reports(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            self.assertEqual(self.rec.value(text_form(seal(self.dek3, 3, SECRET)), None, "row 1"), SECRET)
            self.assertIsNone(self.rec.value(None, None, "row 2"))
            self.assertIsNone(self.rec.value(seal(self.dek4, 4, SECRET), None, "row 3"))
            self.assertIsNone(self.rec.value("junk " + SECRET, None, "row 4"))
        self.assertEqual((self.rec.ok, self.rec.nulls, self.rec.failed), (1, 1, 2))
        self.assertIn("row 3: key id 4 was destroyed", err.getvalue())
        self.assertIn("row 4: not a phi_guard value", err.getvalue())
        self.assertNotIn(SECRET, err.getvalue())

    def test_reports_are_capped(self):
        err = io.StringIO()
        with contextlib.redirect_stderr(err):
            for i in range(rc.MAX_REPORTED + 20):
                self.rec.value("junk", None, "row %d" % i)
        self.assertEqual(self.rec.failed, rc.MAX_REPORTED + 20)
        self.assertEqual(err.getvalue().count("not a phi_guard value"), rc.MAX_REPORTED)
        self.assertIn("counted, not shown", err.getvalue())


# --------------------------------------------------------------------------
# COPY text format, identifiers, CSV, templates
# --------------------------------------------------------------------------

class FormatTest(unittest.TestCase):

    def test_copy_unescape(self):
        cases = {
            b"plain": b"plain", b"a\\\\b": b"a\\b", b"\\t\\n\\r": b"\t\n\r",
            b"\\b\\f\\v": b"\b\f\v", b"\\101\\1\\0012": b"A\x01\x012",
            b"\\x41\\x4g\\xz": b"A\x04gxz", b"\\q\\.\\N": b"q.N",
            b"end\\": b"end\\", b"\\777": b"\xff", b"": b"",
        }
        for field, want in cases.items():
            with self.subTest(field=field):
                self.assertEqual(rc.copy_unescape(field), want)

    def test_copy_fields(self):
        self.assertEqual(rc.copy_fields(b"1\t\\N\t\t\\\\N\ta\\tb"),
                         [b"1", None, b"", b"\\N", b"a\tb"])

    def test_copy_round_trip(self):
        rnd = random.Random(7)
        alphabet = "ab\\\t\n\r,\"\u00e9N."
        for _ in range(500):
            s = "".join(rnd.choice(alphabet) for _ in range(rnd.randrange(12)))
            self.assertEqual(rc.copy_fields(copy_escape(s).encode()), [s.encode()])

    def test_bytea_from_text(self):
        self.assertEqual(rc.bytea_from_text("\\x00ff10"), b"\x00\xff\x10")
        self.assertEqual(rc.bytea_from_text("\\x"), b"")
        self.assertEqual(rc.bytea_from_text("ab\\\\\\000\\377"), b"ab\\\x00\xff")
        with self.assertRaises(ValueError):
            rc.bytea_from_text("\\9")

    def test_identifiers(self):
        self.assertEqual(rc.parse_qualified_arg("Clinic.Patients", "t"), ("clinic", "patients"))
        self.assertEqual(rc.parse_qualified_arg('"Clinic"."Visit ""N"" x"', "t"),
                         ("Clinic", 'Visit "N" x'))
        self.assertEqual(rc.parse_qualified_arg("patients", "t"), ("patients",))
        self.assertEqual(rc.parse_ident_list_arg('id, "Visit ID",tenant', "k"),
                         ["id", "Visit ID", "tenant"])
        self.assertEqual(rc.parse_ident_list_arg("", "k"), [])
        for bad in ('a.b.c', '"open', 'a b', '""', 'a,'):
            with self.subTest(bad=bad):
                with self.assertRaises(rc.InputError):
                    rc.parse_qualified_arg(bad, "t") if "," not in bad \
                        else rc.parse_ident_list_arg(bad, "k")
        self.assertEqual(rc.display_name(("clinic", "Visit Notes")), 'clinic."Visit Notes"')

    def test_copy_header(self):
        self.assertEqual(rc.Dump._copy_header(
            'COPY "Clinic"."Visit ""N""" ("Visit ID", note, "a,b") FROM stdin;'),
            (("Clinic", 'Visit "N"'), ["Visit ID", "note", "a,b"]))
        self.assertEqual(rc.Dump._copy_header("COPY public.empty  FROM stdin;"),
                         (("public", "empty"), []))
        self.assertIsNone(rc.Dump._copy_header("COPY x TO stdout;"))

    def test_csv_field(self):
        self.assertEqual(rc.csv_field(None), "")
        self.assertEqual(rc.csv_field(""), '""')
        self.assertEqual(rc.csv_field("plain text"), "plain text")
        self.assertEqual(rc.csv_field('a,"b"\n'), '"a,""b""\n"')
        self.assertEqual(rc.csv_field("\\."), '"\\."')
        self.assertEqual(rc.csv_field("\\x00ff"), "\\x00ff")
        line = ",".join(rc.csv_field(v) for v in [None, "", "x,y", "q\"\r\n"]) + "\n"
        self.assertEqual(parse_pg_csv(line), [[None, "", "x,y", "q\"\r\n"]])

    def test_aad_template(self):
        t = rc.AadTemplate("clinic.patients.ssn:{id}")
        self.assertEqual(t.fields, ["id"])
        self.assertEqual(t.fill({"id": "42"}), "clinic.patients.ssn:42")
        self.assertIsNone(t.fill({"id": None}))
        t = rc.AadTemplate('{{x}}:{"Visit ID"}/{Tenant}/{id}/{id}')
        self.assertEqual(t.fields, ["Visit ID", "tenant", "id"])
        self.assertEqual(t.fill({"Visit ID": "7", "tenant": "n", "id": ""}), "{x}:7/n//")
        self.assertEqual(rc.AadTemplate("constant").fill({}), "constant")
        self.assertEqual(rc.AadTemplate("").fill({}), "")
        for bad in ("{", "a{b", "{a b}", "}", "{}", "x}y"):
            with self.subTest(bad=bad):
                with self.assertRaises(rc.InputError):
                    rc.AadTemplate(bad)

    def test_connect_lines(self):
        self.assertEqual(rc._parse_connect("clinic"), "clinic")
        self.assertEqual(rc._parse_connect('"Clinic"'), "Clinic")
        self.assertEqual(rc._parse_connect('-reuse-previous=on "dbname=\'my db\'"'), "my db")
        self.assertEqual(rc._parse_connect('-reuse-previous=on "dbname=\'it\\\'s\'"'), "it's")

    def test_encodings(self):
        self.assertEqual(rc.python_encoding("UTF8"), "utf-8")
        self.assertEqual(rc.python_encoding("LATIN1"), "iso8859-1")
        self.assertEqual(rc.python_encoding("WIN1252"), "cp1252")
        self.assertEqual(rc.python_encoding("EUC_JP"), "euc_jp")
        with self.assertRaises(rc.InputError):
            rc.python_encoding("MULE_INTERNAL")


# --------------------------------------------------------------------------
# Synthetic plain-format dumps, end to end
# --------------------------------------------------------------------------

def dump_text(world, tables, encoding="UTF8", pks=None, database=None):
    """pg_dump-like plain SQL: tables is [(qualified header name, columns,
    rows of str/None)]; pks maps a header name to its primary key."""
    out = []
    if database:
        out.append("\\connect %s\n" % database)
    out.append("--\n-- PostgreSQL database dump\n--\n\nSET statement_timeout = 0;\n"
               "SET client_encoding = '%s';\nSET standard_conforming_strings = on;\n"
               % encoding)
    keys = [(str(i), n, str(v), s, "\\x" + w.hex() if w is not None else None, "2026-01-01")
            for i, n, v, s, w in world.rows]
    tables = [("phi_guard.keys", ["id", "name", "version", "state", "wrapped_key",
                                  "created_at"], keys)] + list(tables)
    for name, cols, rows in tables:
        out.append("\n--\n-- Data for Name: x; Type: TABLE DATA\n--\n\n")
        out.append("COPY %s (%s) FROM stdin;\n" % (name, ", ".join(cols)))
        for r in rows:
            out.append("\t".join(copy_escape(v) for v in r) + "\n")
        out.append("\\.\n\n")
    for name, key in (pks or {}).items():
        out.append("\nALTER TABLE ONLY %s\n    ADD CONSTRAINT x_pkey PRIMARY KEY (%s);\n"
                   % (name, ", ".join(key)))
    out.append("\n--\n-- PostgreSQL database dump complete\n--\n\n")
    return "".join(out).encode("latin-1" if encoding == "LATIN1" else "utf-8")


class DumpModeTest(unittest.TestCase):

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        w = self.w = World()
        d1 = w.key(1, "alpha", 1, "retired")
        d3 = w.key(3, "alpha", 2, "active")
        d5 = w.key(5, "gamma", 1, "active")
        w.destroy(5)
        self.keyfile = os.path.join(self.tmp.name, "master.key")
        with open(self.keyfile, "w") as f:
            f.write(w.master_hex + "\n")
        os.chmod(self.keyfile, 0o600)

        # clinic.patients (id, label, name, ssn, photo); label is tricky
        self.labels = {1: "tab\there", 2: "nl\nand\\back", 3: 'q"c,', 4: "", 5: None}
        self.names = {1: "Jane Doe", 2: "Zo\u00eb \u60a3\u8005", 3: "a\tb\nc\\d,\"e\"",
                      4: "", 5: None}
        self.ssns = {1: "123-45-6789", 2: "987-65-4321", 3: "111-22-3333",
                     4: "444-55-6666", 5: "555-66-7777"}
        self.photos = {1: b"\x00\x01", 2: b"", 3: b"\xff" * 40, 4: None, 5: b"z"}
        rows = []
        for i in range(1, 6):
            dek, kid = (d1, 1) if i <= 2 else (d3, 3)
            label = self.labels[i]
            aad = "clinic.patients.ssn:%d:%s" % (i, label) if label is not None else None
            name = self.names[i]
            photo = self.photos[i]
            rows.append([str(i), label,
                         text_form(seal(dek, kid, name)) if name is not None else None,
                         text_form(seal(dek, kid, self.ssns[i], aad)),
                         ("\\x" + seal(dek, kid, photo).hex()) if photo is not None else None])
        # a row under the destroyed key
        rows.append(["6", "x", text_form(seal(d5, 5, SECRET)), text_form(seal(d3, 3, "ok", "clinic.patients.ssn:6:x")), None])
        self.patients = ("clinic.patients", ["id", "label", "name", "ssn", "photo"], rows)

        visit_rows = [[str(i), "north", text_form(seal(d3, 3, "note %d" % i, "visit:%d" % i))]
                      for i in (10, 11)]
        self.visits = ('"Clinic"."Visit Notes"', ['"Visit ID"', "tenant", "note"], visit_rows)

        self.vault = ("phi_guard.token_vault", ["domain", "token", "fingerprint", "value", "created_at"], [
            ["ssn", "906-75-6789", "\\x0102",
             text_form(seal(d3, 3, "123-45-6789", "phi_guard.token_vault:ssn")), "2026"],
            ["ssn", "931-11-3333", None,
             text_form(seal(d1, 1, "111-22-3333", "phi_guard.token_vault:ssn")), "2026"],
            ["mrn", "tok_00ab", "\\x03",
             text_form(seal(d3, 3, "MRN-7", "phi_guard.token_vault:mrn")), "2026"],
            # a value copied into another domain: its aad no longer matches
            ["mrn", "tok_00cd", None,
             text_form(seal(d3, 3, "moved", "phi_guard.token_vault:ssn")), "2026"],
        ])
        self.domains = ("phi_guard.token_domains", ["name", "key_name", "format", "deterministic", "created_at"],
                        [["mrn", "alpha", "opaque", "f", "2026"], ["ssn", "alpha", "ssn", "t", "2026"]])
        self.dump = self.write_dump(dump_text(
            w, [self.patients, self.visits, self.domains, self.vault],
            pks={"clinic.patients": ["id"], '"Clinic"."Visit Notes"': ['"Visit ID"']}))

    def tearDown(self):
        self.tmp.cleanup()

    def write_dump(self, data, name="dump.sql"):
        path = os.path.join(self.tmp.name, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    def run_tool(self, *args, dump=None, stdin=b""):
        return run_main([args[0], "--dump", dump or self.dump,
                         "--master-key-file", self.keyfile] + list(args[1:]), stdin)

    def assertNoSecrets(self, err):
        self.assertNotIn(self.w.master_hex[:16], err)
        self.assertNotIn(SECRET, err)
        for v in list(self.names.values()) + list(self.ssns.values()):
            if v:
                self.assertNotIn(v, err)
        self.assertNotIn("phi1:", err)

    def test_column_text_with_primary_key(self):
        code, out, err = self.run_tool("column", "--table", "clinic.patients", "--column", "name")
        self.assertEqual(code, 1, err)          # row 6 is under a destroyed key
        rows = parse_pg_csv(out)
        self.assertEqual(rows[0], ["id", "name"])
        got = {int(r[0]): r[1] for r in rows[1:]}
        self.assertEqual(got, {**self.names, 6: None})
        self.assertIn("row 6: key id 5 was destroyed (key \"gamma\" version 1)", err)
        self.assertIn("4 values recovered, 1 failed, 1 NULL", err)
        self.assertNoSecrets(err)

    def test_column_aad_template_from_tricky_columns(self):
        code, out, err = self.run_tool("column", "--table", "Clinic.Patients", "--column", "SSN",
                                       "--aad-template", "clinic.patients.ssn:{id}:{label}",
                                       "--key-columns", "id, label")
        self.assertEqual(code, 0, err)
        rows = parse_pg_csv(out)
        self.assertEqual(rows[0], ["id", "label", "ssn"])
        got = {int(r[0]): (r[1], r[2]) for r in rows[1:]}
        # row 5: label NULL, so the aad was NULL ('...' || NULL): none
        for i in range(1, 6):
            self.assertEqual(got[i], (self.labels[i], self.ssns[i]))
        self.assertEqual(got[6], ("x", "ok"))
        # a NULL template field means no aad; a value that has one fails
        rows = [r[:] for r in self.patients[2]]
        rows[0][1] = None
        dump = self.write_dump(dump_text(self.w, [("clinic.patients", self.patients[1], rows)],
                                         pks={"clinic.patients": ["id"]}), "null.sql")
        code, out, err = self.run_tool("column", "--table", "clinic.patients", "--column", "ssn",
                                       "--aad-template", "clinic.patients.ssn:{id}:{label}",
                                       dump=dump)
        self.assertEqual(code, 1)
        self.assertEqual(parse_pg_csv(out)[1], ["1", None])
        self.assertIn("row 1: the value was encrypted with an aad, but none was given", err)
        self.assertNoSecrets(err)

    def test_column_wrong_aad_template(self):
        code, out, err = self.run_tool("column", "--table", "clinic.patients", "--column", "ssn",
                                       "--aad-template", "clinic.patients.ssn:{id}")
        self.assertEqual(code, 1)
        self.assertEqual(err.count("authentication failed"), 5)
        self.assertIn("row 5: the value was encrypted without an aad, but one was given", err)
        self.assertNoSecrets(err)

    def test_column_bytea_values(self):
        code, out, err = self.run_tool("column", "--table", "patients", "--column", "photo")
        self.assertEqual(code, 0, err)
        got = {int(r[0]): r[1] for r in parse_pg_csv(out)[1:]}
        for i in range(1, 6):
            want = "\\x" + self.photos[i].hex() if self.photos[i] is not None else None
            self.assertEqual(got[i], want)
        self.assertIsNone(got[6])
        self.assertIn("4 values recovered, 0 failed, 2 NULL", err)

    def test_quoted_table_and_key_column(self):
        code, out, err = self.run_tool("column", "--table", '"Clinic"."Visit Notes"',
                                       "--column", "note", "--aad-template", 'visit:{"Visit ID"}')
        self.assertEqual(code, 0, err)
        self.assertEqual(parse_pg_csv(out), [["Visit ID", "note"], ["10", "note 10"], ["11", "note 11"]])
        code, out, err = self.run_tool("column", "--table", "Clinic.\"Visit Notes\"",
                                       "--column", "note", "--aad-template", 'visit:{"Visit ID"}')
        self.assertEqual(code, 2)
        self.assertIn("no COPY data of table clinic.\"Visit Notes\"", err)

    def test_key_columns(self):
        code, out, _ = self.run_tool("column", "--table", "clinic.patients", "--column", "photo",
                                     "--key-columns", "")
        self.assertEqual(parse_pg_csv(out)[0], ["photo"])
        self.assertEqual(len(parse_pg_csv(out)), 7)
        code, out, err = self.run_tool("column", "--table", "clinic.patients", "--column", "photo",
                                       "--key-columns", "nope")
        self.assertEqual(code, 2)
        self.assertIn("has no column nope (--key-columns)", err)

    def test_no_primary_key_needs_key_columns(self):
        dump = self.write_dump(dump_text(self.w, [self.patients]), "nopk.sql")
        code, out, err = self.run_tool("column", "--table", "clinic.patients", "--column", "name",
                                       dump=dump)
        self.assertEqual(code, 2)
        self.assertIn("no primary key", err)
        code, out, err = self.run_tool("column", "--table", "clinic.patients", "--column", "name",
                                       "--key-columns", "id", dump=dump)
        self.assertEqual(code, 1)
        self.assertEqual(parse_pg_csv(out)[1], ["1", "Jane Doe"])

    def test_bad_table_or_column(self):
        for args, msg in (
                (("--table", "clinic.nope", "--column", "x"), "no COPY data of table clinic.nope"),
                (("--table", "clinic.patients", "--column", "nope"), "has no column nope (--column)"),
                (("--table", "clinic.patients", "--column", "ssn", "--aad-template", "{zz}"),
                 "has no column zz (--aad-template)"),
                (("--table", "a.b.c", "--column", "x"), "[schema.]name")):
            with self.subTest(msg=msg):
                code, out, err = self.run_tool("column", *args)
                self.assertEqual(code, 2)
                self.assertIn(msg, err)

    def test_ambiguous_table_name(self):
        other = ("public.patients", ["id", "name"], [])
        dump = self.write_dump(dump_text(self.w, [self.patients, other]), "amb.sql")
        code, out, err = self.run_tool("column", "--table", "patients", "--column", "name",
                                       "--key-columns", "id", dump=dump)
        self.assertEqual(code, 2)
        self.assertIn("ambiguous", err)

    def test_vault_one_domain(self):
        code, out, err = self.run_tool("vault", "--domain", "ssn")
        self.assertEqual(code, 0, err)
        self.assertEqual(parse_pg_csv(out), [["domain", "token", "value"],
                                              ["ssn", "906-75-6789", "123-45-6789"],
                                              ["ssn", "931-11-3333", "111-22-3333"]])

    def test_vault_all_domains(self):
        code, out, err = self.run_tool("vault")
        self.assertEqual(code, 1)
        rows = parse_pg_csv(out)
        self.assertEqual(len(rows), 5)
        self.assertIn(["mrn", "tok_00ab", "MRN-7"], rows)
        self.assertIn(["mrn", "tok_00cd", None], rows)
        self.assertIn("vault row 4: authentication failed", err)
        self.assertNotIn("tok_00cd", err)

    def test_vault_unknown_domain(self):
        code, out, err = self.run_tool("vault", "--domain", "Nope")
        self.assertEqual(code, 2)
        self.assertIn('no token domain "Nope"', err)

    def test_decrypt_arguments_and_stdin(self):
        v = self.patients[2]
        name1, ssn1 = v[0][2], v[0][3]
        code, out, err = self.run_tool("decrypt", name1, v[1][2])
        self.assertEqual(code, 0, err)
        self.assertEqual(parse_pg_csv(out), [["Jane Doe"], ["Zo\u00eb \u60a3\u8005"]])
        stdin = ("%s\n\n  %s  \n%s\n" % (name1, v[2][2], v[3][2])).encode()
        code, out, err = self.run_tool("decrypt", stdin=stdin)
        self.assertEqual(code, 0, err)
        self.assertEqual(parse_pg_csv(out), [["Jane Doe"], [None], [self.names[3]], [""]])
        code, out, err = self.run_tool("decrypt", "--aad", "clinic.patients.ssn:1:tab\there",
                                       ssn1, name1)
        self.assertEqual(code, 1)
        self.assertEqual(parse_pg_csv(out), [[self.ssns[1]], [None]])
        self.assertIn("value 2: the value was encrypted without an aad", err)
        self.assertNoSecrets(err)

    def test_keys_listing(self):
        code, out, err = self.run_tool("keys")
        self.assertEqual(code, 0, err)
        self.assertEqual(parse_pg_csv(out), [
            ["kind", "id", "name", "version", "state", "unwraps", "master_key_fingerprint"],
            ["data", "1", "alpha", "1", "retired", "yes", rc.MasterKey(self.w.master, None).fingerprint],
            ["data", "3", "alpha", "2", "active", "yes", rc.MasterKey(self.w.master, None).fingerprint],
            ["data", "5", "gamma", "1", "destroyed", None, None]])
        self.assertNotIn(self.w.master_hex[:16], out)
        for _, _, _, _, wrapped in self.w.rows:
            if wrapped:
                self.assertNotIn(wrapped.hex()[:16], out)

    def test_wrong_master_key(self):
        with open(self.keyfile, "w") as f:
            f.write(os.urandom(32).hex())
        for args in (("column", "--table", "clinic.patients", "--column", "name"),
                     ("vault",), ("decrypt", "phi1:AAAA"), ("keys",)):
            with self.subTest(cmd=args[0]):
                code, out, err = self.run_tool(*args)
                self.assertEqual(code, 2)
                self.assertIn("wrong master key", err)
                self.assertNoSecrets(err)

    def test_rotated_master_key_file(self):
        new = os.urandom(32)
        self.w.key(7, "delta", 1, "active", master=new)
        dump = self.write_dump(dump_text(self.w, [self.patients]), "rot.sql")
        with open(self.keyfile, "w") as f:
            f.write("new:%s\nold:%s\n" % (new.hex(), self.w.master_hex))
        code, out, err = self.run_tool("keys", dump=dump)
        self.assertEqual(code, 0, err)
        fps = {r[1]: r[6] for r in parse_pg_csv(out)[1:]}
        self.assertEqual(fps["7"], rc.MasterKey(new, None).fingerprint)
        self.assertEqual(fps["1"], rc.MasterKey(self.w.master, None).fingerprint)

    def test_latin1_dump(self):
        d = self.w.deks[3]
        rows = [["1", "Bj\u00f6rk", text_form(seal(d, 3, "M\u00fcller", "p:Bj\u00f6rk"))]]
        dump = self.write_dump(dump_text(self.w, [("public.p", ["id", "who", "v"], rows)],
                                         encoding="LATIN1", pks={"public.p": ["id"]}), "l1.sql")
        code, out, err = self.run_tool("column", "--table", "p", "--column", "v",
                                       "--aad-template", "p:{who}", "--key-columns", "who", dump=dump)
        self.assertEqual(code, 0, err)
        self.assertEqual(out.splitlines(), ["who,v", "Bj\u00f6rk,M\u00fcller"])

    def test_gzip_dump(self):
        with open(self.dump, "rb") as f:
            gz = self.write_dump(gzip.compress(f.read()), "dump.sql.gz")
        code, out, err = self.run_tool("vault", "--domain", "ssn", dump=gz)
        self.assertEqual(code, 0, err)
        self.assertEqual(len(parse_pg_csv(out)), 3)

    def test_not_a_plain_dump(self):
        custom = self.write_dump(b"PGDMP\x01\x0e\x00", "custom.dump")
        code, out, err = self.run_tool("keys", dump=custom)
        self.assertEqual(code, 2)
        self.assertIn("pg_restore -f", err)
        code, out, err = self.run_tool("keys", dump=self.tmp.name)
        self.assertEqual(code, 2)
        self.assertIn("directory-format", err)
        inserts = self.write_dump(b"SET client_encoding = 'UTF8';\n"
                                  b"INSERT INTO phi_guard.keys VALUES (1);\n", "ins.sql")
        code, out, err = self.run_tool("keys", dump=inserts)
        self.assertEqual(code, 2)
        self.assertIn("--inserts", err)
        code, out, err = self.run_tool("keys", dump=os.path.join(self.tmp.name, "none.sql"))
        self.assertEqual(code, 2)
        self.assertIn("cannot read dump", err)

    def test_pg_dumpall_needs_database(self):
        other = World()
        od = other.key(1, "alpha")
        other_rows = [["1", None, text_form(seal(od, 1, "other db")), text_form(seal(od, 1, "s")), None]]
        data = (b"--\n-- PostgreSQL database cluster dump\n--\n\n"
                + dump_text(self.w, [self.patients], pks={"clinic.patients": ["id"]}, database="clinic")
                + dump_text(other, [("clinic.patients", self.patients[1], other_rows)],
                            pks={"clinic.patients": ["id"]},
                            database='-reuse-previous=on "dbname=\'other db\'"'))
        dump = self.write_dump(data, "all.sql")
        code, out, err = self.run_tool("keys", dump=dump)
        self.assertEqual(code, 2)
        self.assertIn("--database NAME", err)
        self.assertIn("clinic, other db", err)
        code, out, err = run_main(["column", "--dump", dump, "--database", "clinic",
                                   "--master-key-file", self.keyfile,
                                   "--table", "clinic.patients", "--column", "name"])
        self.assertEqual(code, 1, err)
        self.assertEqual(parse_pg_csv(out)[1], ["1", "Jane Doe"])
        with open(self.keyfile, "w") as f:
            f.write(other.master_hex)
        code, out, err = run_main(["column", "--dump", dump, "--database", "other db",
                                   "--master-key-file", self.keyfile,
                                   "--table", "clinic.patients", "--column", "name"])
        self.assertEqual(code, 0, err)
        self.assertEqual(parse_pg_csv(out), [["id", "name"], ["1", "other db"]])
        code, out, err = run_main(["keys", "--dump", dump, "--database", "nope",
                                   "--master-key-file", self.keyfile])
        self.assertEqual(code, 2)
        self.assertIn("no \\connect to database nope", err)

    def test_output_file_is_private(self):
        path = os.path.join(self.tmp.name, "out.csv")
        code, out, err = self.run_tool("vault", "--domain", "ssn", "-o", path)
        self.assertEqual(code, 0, err)
        self.assertEqual(out, "")
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path, encoding="utf-8") as f:
            self.assertIn("906-75-6789,123-45-6789", f.read())

    def test_command_line(self):
        # a real process: exit codes, and dump mode never imports psycopg2
        probe = ("import runpy, sys\n"
                 "sys.argv = %r\n"
                 "try:\n"
                 "    runpy.run_path(%r, run_name='__main__')\n"
                 "except SystemExit as e:\n"
                 "    code = e.code\n"
                 "sys.stderr.write('psycopg2 loaded: %%s\\n' %% ('psycopg2' in sys.modules))\n"
                 "sys.exit(code)\n"
                 % (["recover.py", "vault", "--dump", self.dump, "--master-key-command",
                     "cat '%s'" % self.keyfile, "--domain", "ssn"], TOOL))
        p = subprocess.run([PYTHON, "-c", probe], capture_output=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn(b"psycopg2 loaded: False", p.stderr)
        self.assertEqual(p.stdout.count(b"\n"), 3)
        p = subprocess.run([TOOL, "column", "--dump", self.dump, "--master-key-file",
                            self.keyfile, "--table", "clinic.patients", "--column", "name"],
                           capture_output=True)
        self.assertEqual(p.returncode, 1)
        p = subprocess.run([PYTHON, TOOL, "keys", "--dump", self.dump], capture_output=True)
        self.assertEqual(p.returncode, 2)
        self.assertIn(b"--master-key-file", p.stderr)
        p = subprocess.run([PYTHON, TOOL, "keys", "--dump", self.dump, "--dsn", "x",
                            "--master-key-file", self.keyfile], capture_output=True)
        self.assertEqual(p.returncode, 2)


if __name__ == "__main__":
    unittest.main()
