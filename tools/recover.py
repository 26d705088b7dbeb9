#!/usr/bin/python3
"""Recover phi_guard data without phi_guard (docs/format.md).

This program decrypts values written by the phi_guard PostgreSQL extension
using only the formats documented in docs/format.md (sections "Master key
text", "Wrapped keys", "Ciphertext" and "Recovering data without
phi_guard"): the master key unwraps the data keys in ``phi_guard.keys``, and
each data key decrypts the values that name its id.  It does not load, call
or trust the extension: it reads the tables (live over libpq, or from a
plain-format ``pg_dump`` file) and does the AES-256-GCM itself with Python's
``cryptography`` package.  It is the proof that data in phi_guard is never
locked in.

Usage
-----

Every subcommand takes one source and one master key::

    --dsn "host=db dbname=clinic user=postgres"   live database, as a superuser
                                                  (only superusers can read
                                                  phi_guard.keys.wrapped_key)
    --dump clinic.sql                             plain-format pg_dump output
                                                  (also gzip-compressed);
                                                  --database NAME picks one
                                                  database of a pg_dumpall file
    --master-key-file /etc/phi/master.key         the server's key file
    --master-key-command 'vault kv get ...'       a command printing it

The master key is never taken from the command line itself.  Its text is
what the server reads (docs/format.md, "Master key text"): 64 hexadecimal
characters, or, after a master-key rotation, one key per line (optionally
``name:<64 hex>``); every key listed is tried when unwrapping.

Decrypt given values (arguments, or one per line on stdin; an empty line is
SQL NULL), with the aad they were encrypted with, if any::

    recover.py decrypt --dump clinic.sql --master-key-file mk 'phi1:AQEB...'
    psql -At -c "SELECT name FROM clinic.patients ORDER BY id" \\
      | recover.py decrypt --dsn "dbname=clinic" --master-key-file mk
    recover.py decrypt --dump clinic.sql --master-key-file mk \\
        --aad 'clinic.patients.ssn:42' 'phi1:AQEB...'

Decrypt a whole column, binding each value to its row with an aad template
whose ``{column}`` fields are filled with the row's columns (in their
PostgreSQL text form; a NULL field means "no aad", as ``'...' || NULL`` does
in SQL)::

    recover.py column --dsn "dbname=clinic" --master-key-file mk \\
        --table clinic.patients --column ssn \\
        --aad-template 'clinic.patients.ssn:{id}' > ssn.csv

Export a token vault (token -> value; values are bound to the aad
``phi_guard.token_vault:<domain>``), one domain or all of them::

    recover.py vault --dump clinic.sql --master-key-file mk --domain ssn

Check that a master key opens a keyring (no key material is printed, only
each key's state and the fingerprint of the master key that unwraps it, the
same fingerprint ``phi_master_key_status()`` shows)::

    recover.py keys --dump clinic.sql --master-key-file mk

Output
------

CSV in PostgreSQL's convention, so ``\\copy t FROM 'x.csv' CSV HEADER``
loads it back: an unquoted empty field is NULL, ``""`` is the empty string.
``column`` writes a header of the key columns (``--key-columns``, default
the table's primary key) and the decrypted column; ``vault`` writes
``domain,token,value``; ``decrypt`` writes one field per input value and no
header.  Text comes out as UTF-8; values encrypted from ``bytea`` (flags
bit 1) as ``\\x`` followed by hexadecimal.  ``-o FILE`` writes to a new file
of mode 0600 instead of stdout.

A value that cannot be decrypted is written as NULL and reported on stderr
by its row number with the reason -- its key was destroyed, its key is not
in the keyring, its key does not unwrap with this master key,
authentication failed (the value was altered, or the aad differs), or an
aad was expected or given when it should not be.  Messages name rows and
key ids only: never a key, a plaintext, a token or a ciphertext.

Exit status: 0 every value recovered, 1 some values could not be decrypted
(or, for ``keys``, some key does not unwrap), 2 usage or input error
(unreadable files, a master key that unwraps none of the keyring's data
keys, a table missing from the dump, a database error).

Only the standard library and ``cryptography`` are needed; ``--dsn`` also
needs psycopg2, imported only then.  Unwrapped keys live in ordinary Python
memory for the run; they cannot be wiped reliably in Python, so run the
tool on a machine you trust with the master key.
"""

import argparse
import base64
import binascii
import codecs
import contextlib
import gzip
import hashlib
import io
import os
import re
import stat
import struct
import subprocess
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

PROG = "recover.py"
EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2

# docs/format.md, "Master key text": the server reads at most 4096 bytes.
KEY_TEXT_MAX = 4096
KEY_LEN = 32
FINGERPRINT_PREFIX = b"phi_guard.mk.fp"
MASTER_KEY_NAME_RE = re.compile(r"[A-Za-z0-9_.-]{1,63}\Z")

# docs/format.md, "Wrapped keys": wrapped key = nonce(12) || ciphertext(32)
# || tag(16), associated data "phi_guard.dek.v1" || uint32_be(id).
WRAP_AD_PREFIX = b"phi_guard.dek.v1"
WRAPPED_LEN = 60

# docs/format.md, "Ciphertext": header(8) || nonce(12) || ciphertext(n)
# || tag(16).
TEXT_PREFIX = "phi1:"
FORMAT_VERSION = 0x01
ALG_AES256GCM = 0x01
FLAG_AAD = 0x01
FLAG_BYTEA = 0x02
HEADER_LEN = 8
NONCE_LEN = 12
TAG_LEN = 16
OVERHEAD = HEADER_LEN + NONCE_LEN + TAG_LEN

# The aad that binds a token vault value to its domain (src/token.c).
VAULT_AAD_PREFIX = "phi_guard.token_vault:"

KEYS_TABLE = ("phi_guard", "keys")
INDEX_KEYS_TABLE = ("phi_guard", "index_keys")
DOMAINS_TABLE = ("phi_guard", "token_domains")
VAULT_TABLE = ("phi_guard", "token_vault")

# Per-value errors reported on stderr before the rest are only counted.
MAX_REPORTED = 100
ITERSIZE = 10000


class InputError(Exception):
    """Bad usage or input; the message is safe to print (exit 2)."""


class ValueFailure(Exception):
    """One value cannot be decrypted; the message is safe to print."""


def warn(msg):
    print("%s: %s" % (PROG, msg), file=sys.stderr)


# --------------------------------------------------------------------------
# Master key (docs/format.md, "Master key text")
# --------------------------------------------------------------------------

class MasterKey:
    def __init__(self, key, name):
        self.key = key
        self.name = name
        self.fingerprint = hashlib.sha256(FINGERPRINT_PREFIX + key).digest()[:4].hex()


def parse_master_keys(text, source):
    """Master keys from key text: 64 hex characters, or one key per
    non-blank line, each "<64 hex>" or "<name>:<64 hex>" (surrounding white
    space ignored).  Messages quote line numbers, never the text."""
    if len(text) >= KEY_TEXT_MAX:
        raise InputError("%s holds %d bytes or more; a key file is at most a "
                         "few lines of 64 hexadecimal characters"
                         % (source, KEY_TEXT_MAX))
    try:
        s = text.decode("ascii")
    except UnicodeDecodeError:
        raise InputError("%s holds non-ASCII bytes; it must hold 64 "
                         "hexadecimal characters per line" % source) from None
    keys = []
    blank = " \t\r\v\f"
    for lineno, line in enumerate(s.split("\n"), 1):
        line = line.strip(blank)
        if not line:
            continue
        name = None
        if ":" in line:
            name, line = line.split(":", 1)
            name = name.rstrip(blank)
            if not MASTER_KEY_NAME_RE.match(name):
                raise InputError("%s line %d has an invalid key name: 1 to 63 "
                                 "letters, digits, '_', '.' or '-'"
                                 % (source, lineno))
            line = line.strip(blank)
        if len(line) != 2 * KEY_LEN or any(c not in "0123456789abcdefABCDEF" for c in line):
            raise InputError("%s line %d does not hold exactly 64 hexadecimal "
                             "characters" % (source, lineno))
        mk = MasterKey(bytes.fromhex(line), name)
        for i, other in enumerate(keys):
            if other.key == mk.key:
                raise InputError("%s line %d repeats master key %d"
                                 % (source, lineno, i + 1))
            if name is not None and other.name == name:
                raise InputError("%s line %d repeats the key name %s"
                                 % (source, lineno, name))
        keys.append(mk)
    if not keys:
        raise InputError("%s holds no master key (64 hexadecimal characters)"
                         % source)
    return keys


def read_master_key_file(path):
    source = "master key file %s" % path
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise InputError("cannot open %s: %s" % (source, e.strerror)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError("%s is not a regular file" % source)
        if st.st_mode & 0o077:
            warn("warning: %s can be read or written by group or others (the "
                 "server refuses such a file); chmod 600 it" % source)
        chunks = []
        while True:
            b = os.read(fd, KEY_TEXT_MAX + 1)
            if not b:
                break
            chunks.append(b)
            if sum(len(c) for c in chunks) > KEY_TEXT_MAX:
                break
        text = b"".join(chunks)
    except OSError as e:
        raise InputError("cannot read %s: %s" % (source, e.strerror)) from None
    finally:
        os.close(fd)
    return parse_master_keys(text, source)


def read_master_key_command(command):
    source = "the output of --master-key-command"
    try:
        p = subprocess.run(command, shell=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE)
    except OSError as e:
        raise InputError("cannot run --master-key-command: %s" % e.strerror) from None
    if p.returncode != 0:
        how = ("was killed by signal %d" % -p.returncode if p.returncode < 0
               else "exited with status %d" % p.returncode)
        raise InputError("--master-key-command %s" % how)
    return parse_master_keys(p.stdout, source)


# --------------------------------------------------------------------------
# Keyring (docs/format.md, "Wrapped keys")
# --------------------------------------------------------------------------

class KeyRow:
    """One row of phi_guard.keys (kind "data") or phi_guard.index_keys
    (kind "index"; version and state None)."""

    def __init__(self, kind, key_id, name, version, state, wrapped):
        self.kind = kind
        self.id = key_id
        self.name = name
        self.version = version
        self.state = state
        self.wrapped = wrapped

    @property
    def destroyed(self):
        return self.wrapped is None or self.state == "destroyed"

    def describe(self):
        if self.kind == "index":
            return 'index key of "%s"' % self.name
        return 'key "%s" version %s' % (self.name, self.version)


def unwrap(master_key, key_id, wrapped):
    """docs/format.md, "Wrapped keys": the data key, or None if this master
    key does not unwrap it (or the wrapped key is malformed)."""
    if wrapped is None or len(wrapped) != WRAPPED_LEN:
        return None
    ad = WRAP_AD_PREFIX + struct.pack(">I", key_id)
    try:
        dek = AESGCM(master_key).decrypt(wrapped[:NONCE_LEN], wrapped[NONCE_LEN:], ad)
    except InvalidTag:
        return None
    return dek if len(dek) == KEY_LEN else None


class Keyring:
    """The data keys of one database, unwrapped once with the first master
    key that opens each."""

    def __init__(self, rows, master_keys):
        self.rows = {}
        self.unwrapped_by = {}      # id -> MasterKey
        self._aead = {}             # id -> AESGCM under the data key
        self.live = 0
        for row in rows:
            if not (0 <= row.id <= 0xFFFFFFFF):
                continue
            if row.kind == "data":
                self.rows[row.id] = row
            if row.destroyed:
                continue
            if row.kind == "data":
                self.live += 1
            for mk in master_keys:
                dek = unwrap(mk.key, row.id, row.wrapped)
                if dek is not None:
                    self.unwrapped_by[(row.kind, row.id)] = mk
                    if row.kind == "data":
                        self._aead[row.id] = AESGCM(dek)
                    break

    def unwrapped_data_keys(self):
        return len(self._aead)

    def check_master_key(self, master_keys):
        """Refuse a master key that opens no live data key at all: then it is
        not this keyring's master key, and every value would fail."""
        if self.live > 0 and not self._aead:
            many = len(master_keys) > 1
            raise InputError(
                "wrong master key: the master key%s given (fingerprint%s %s) "
                "unwrap%s none of the %d live data key%s in phi_guard.keys"
                % ("s" if many else "", "s" if many else "",
                   ", ".join(mk.fingerprint for mk in master_keys),
                   "" if many else "s", self.live,
                   "" if self.live == 1 else "s"))

    def aead(self, key_id):
        row = self.rows.get(key_id)
        if row is None:
            raise ValueFailure("key id %d is not in this keyring (the value "
                               "comes from another database, or its key row "
                               "was deleted)" % key_id)
        if row.destroyed:
            raise ValueFailure("key id %d was destroyed (%s): the value was "
                               "crypto-shredded" % (key_id, row.describe()))
        a = self._aead.get(key_id)
        if a is None:
            raise ValueFailure("key id %d (%s) cannot be unwrapped with the "
                               "given master key" % (key_id, row.describe()))
        return a


# --------------------------------------------------------------------------
# Values (docs/format.md, "Ciphertext")
# --------------------------------------------------------------------------

def bytea_from_text(s):
    """bytea in PostgreSQL's text form: hex (\\x...) or escape format."""
    if s.startswith("\\x"):
        return bytes.fromhex(s[2:])
    out = bytearray()
    i = 0
    while i < len(s):
        c = s[i]
        if c != "\\":
            out += c.encode("latin-1")
            i += 1
        elif s.startswith("\\\\", i):
            out.append(0x5C)
            i += 2
        elif re.match(r"\\[0-3][0-7][0-7]", s[i:i + 4]):
            out.append(int(s[i + 1:i + 4], 8))
            i += 4
        else:
            raise ValueError("bad bytea escape")
    return bytes(out)


def raw_value(v):
    """The raw ciphertext bytes of a value given as bytes (a bytea or
    phi_ciphertext::bytea column), as "phi1:<base64>" text, or as bytea text
    ("\\x<hex>")."""
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v)
    v = v.strip()
    if v.startswith(TEXT_PREFIX):
        try:
            return base64.b64decode(v[len(TEXT_PREFIX):], validate=True)
        except (binascii.Error, ValueError):
            raise ValueFailure("not a phi_guard value: invalid base64 after "
                               "phi1:") from None
    if v.startswith("\\x"):
        try:
            return bytes.fromhex(v[2:])
        except ValueError:
            raise ValueFailure("not a phi_guard value: invalid hex after \\x") from None
    raise ValueFailure("not a phi_guard value (expected phi1:<base64> or "
                       "\\x<hex>)")


def decrypt_raw(keyring, raw, aad):
    """docs/format.md, "Ciphertext".  Returns str for text, bytes for bytea
    plaintext."""
    if len(raw) < OVERHEAD:
        raise ValueFailure("value is %d bytes long, shorter than the %d bytes "
                           "of a phi_guard value" % (len(raw), OVERHEAD))
    version, alg, flags, reserved = raw[0], raw[1], raw[2], raw[3]
    if version != FORMAT_VERSION:
        raise ValueFailure("unknown format version %d" % version)
    if alg != ALG_AES256GCM:
        raise ValueFailure("unknown algorithm %d" % alg)
    if flags & ~(FLAG_AAD | FLAG_BYTEA) or reserved != 0:
        raise ValueFailure("unknown flag or reserved bits are set")
    (key_id,) = struct.unpack(">I", raw[4:8])
    aead = keyring.aead(key_id)
    if flags & FLAG_AAD and aad is None:
        raise ValueFailure("the value was encrypted with an aad, but none was "
                           "given (--aad, --aad-template)")
    if not flags & FLAG_AAD and aad is not None:
        raise ValueFailure("the value was encrypted without an aad, but one "
                           "was given")
    ad = raw[:HEADER_LEN] + (aad.encode("utf-8") if aad is not None else b"")
    try:
        plain = aead.decrypt(raw[HEADER_LEN:HEADER_LEN + NONCE_LEN],
                             raw[HEADER_LEN + NONCE_LEN:], ad)
    except InvalidTag:
        raise ValueFailure("authentication failed: the value was altered, or "
                           "the aad differs from the one it was encrypted "
                           "with") from None
    if flags & FLAG_BYTEA:
        return plain
    try:
        return plain.decode("utf-8")
    except UnicodeDecodeError:
        raise ValueFailure("the decrypted text is not valid UTF-8") from None


def render(plain):
    """Text as itself; bytea as \\x<hex>, PostgreSQL's bytea text form."""
    if isinstance(plain, bytes):
        return "\\x" + plain.hex()
    return plain


class Recovery:
    """Decrypts values one by one, reporting and counting failures."""

    def __init__(self, keyring):
        self.keyring = keyring
        self.ok = 0
        self.failed = 0
        self.nulls = 0

    def value(self, v, aad, where):
        """The rendered plaintext, or None (NULL in, or a failure)."""
        if v is None:
            self.nulls += 1
            return None
        try:
            if aad is not None:
                try:
                    aad.encode("utf-8")
                except UnicodeEncodeError:
                    raise ValueFailure("the aad is not valid UTF-8") from None
            out = render(decrypt_raw(self.keyring, raw_value(v), aad))
        except ValueFailure as e:
            self.failed += 1
            if self.failed <= MAX_REPORTED:
                warn("%s: %s" % (where, e))
            elif self.failed == MAX_REPORTED + 1:
                warn("further failures are counted, not shown")
            return None
        self.ok += 1
        return out

    def summary(self):
        warn("%d value%s recovered, %d failed, %d NULL"
             % (self.ok, "" if self.ok == 1 else "s", self.failed, self.nulls))


# --------------------------------------------------------------------------
# SQL identifiers, COPY text format, CSV output, aad templates
# --------------------------------------------------------------------------

_UNQUOTED = re.compile(r'[^\s."(),{}]+')
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def scan_ident(s, pos, fold=True):
    """One SQL identifier at s[pos:] -> (name, end).  "Quoted" names keep
    their case ("" is a quote); unquoted ones are folded to lower case when
    fold (as PostgreSQL does).  Raises ValueError."""
    if pos < len(s) and s[pos] == '"':
        parts = []
        i = pos + 1
        while True:
            j = s.find('"', i)
            if j < 0:
                raise ValueError("unterminated quoted identifier")
            parts.append(s[i:j])
            if s.startswith('""', j):
                parts.append('"')
                i = j + 2
                continue
            name = "".join(parts)
            if not name:
                raise ValueError("empty quoted identifier")
            return name, j + 1
    m = _UNQUOTED.match(s, pos)
    if not m:
        raise ValueError("identifier expected")
    return (m.group(0).translate(_ASCII_LOWER) if fold else m.group(0)), m.end()


def scan_qualified(s, pos, fold=True):
    parts = []
    while True:
        name, pos = scan_ident(s, pos, fold)
        parts.append(name)
        if pos < len(s) and s[pos] == ".":
            pos += 1
            continue
        return tuple(parts), pos


def scan_ident_list(s, pos, fold=True):
    """Comma-separated identifiers -> (list, end)."""
    names = []
    while True:
        while pos < len(s) and s[pos] == " ":
            pos += 1
        name, pos = scan_ident(s, pos, fold)
        names.append(name)
        while pos < len(s) and s[pos] == " ":
            pos += 1
        if pos < len(s) and s[pos] == ",":
            pos += 1
            continue
        return names, pos


def parse_qualified_arg(s, what):
    try:
        parts, pos = scan_qualified(s.strip(), 0)
    except ValueError as e:
        raise InputError("%s: %s" % (what, e)) from None
    if pos != len(s.strip()) or len(parts) > 2:
        raise InputError("%s must be [schema.]name (double-quote names with "
                         "upper case or special characters)" % what)
    return parts


def parse_ident_arg(s, what):
    parts = parse_qualified_arg(s, what)
    if len(parts) != 1:
        raise InputError("%s must be one column name" % what)
    return parts[0]


def parse_ident_list_arg(s, what):
    if not s.strip():
        return []
    try:
        names, pos = scan_ident_list(s.strip(), 0)
    except ValueError as e:
        raise InputError("%s: %s" % (what, e)) from None
    if pos != len(s.strip()):
        raise InputError("%s must be a comma-separated list of column names"
                         % what)
    return names


def quote_ident(name):
    return '"' + name.replace('"', '""') + '"'


def display_name(parts):
    return ".".join(quote_ident(p) if not re.match(r"[a-z_][a-z0-9_$]*\Z", p)
                    else p for p in parts)


_COPY_ESCAPES = {ord("b"): 8, ord("f"): 12, ord("n"): 10, ord("r"): 13,
                 ord("t"): 9, ord("v"): 11}
_OCTAL = b"01234567"
_HEX = b"0123456789abcdefABCDEF"


def copy_unescape(field):
    """Undo COPY text-format escaping of one field (bytes -> bytes): \\b \\f
    \\n \\r \\t \\v, \\ooo octal, \\xhh hex, and a backslash before any other
    character stands for that character."""
    if b"\\" not in field:
        return field
    out = bytearray()
    i, n = 0, len(field)
    while i < n:
        j = field.find(b"\\", i)
        if j < 0:
            out += field[i:]
            break
        out += field[i:j]
        i = j + 1
        if i >= n:
            out.append(0x5C)        # a lone trailing backslash: keep it
            break
        c = field[i]
        if c in _OCTAL:
            k = i
            while k < n and k < i + 3 and field[k] in _OCTAL:
                k += 1
            out.append(int(field[i:k], 8) & 0xFF)
            i = k
        elif c == ord("x") and i + 1 < n and field[i + 1] in _HEX:
            k = i + 1
            while k < n and k < i + 3 and field[k] in _HEX:
                k += 1
            out.append(int(field[i + 1:k], 16))
            i = k
        else:
            out.append(_COPY_ESCAPES.get(c, c))
            i += 1
    return bytes(out)


def copy_fields(line):
    """One COPY text-format data line (bytes, without the newline) -> list
    of bytes fields, None for \\N (SQL NULL)."""
    return [None if f == b"\\N" else copy_unescape(f) for f in line.split(b"\t")]


def csv_field(v):
    """PostgreSQL CSV: NULL is an unquoted empty field; the empty string,
    \\. and anything with a comma, quote or line break are quoted."""
    if v is None:
        return ""
    if v == "" or v == "\\." or any(c in v for c in ',"\r\n'):
        return '"' + v.replace('"', '""') + '"'
    return v


class CsvOut:
    def __init__(self, stream):
        self.stream = stream

    def row(self, values):
        self.stream.write(",".join(csv_field(v) for v in values) + "\n")


class AadTemplate:
    """An aad built from a row: literal text with {column} fields (column
    names as in SQL: {id}, {"MRN"}); {{ and }} are literal braces."""

    def __init__(self, text):
        self.parts = []         # (is_field, text or column name)
        self.fields = []
        lit = []
        i = 0
        while i < len(text):
            c = text[i]
            if c == "{" and text.startswith("{{", i):
                lit.append("{")
                i += 2
            elif c == "{":
                try:
                    name, j = scan_ident(text, i + 1)
                except ValueError:
                    j = None
                if j is None or j >= len(text) or text[j] != "}":
                    raise InputError("--aad-template: the '{' at position %d "
                                     "does not start a {column} field (write "
                                     "{{ for a literal brace)" % (i + 1))
                if lit:
                    self.parts.append((False, "".join(lit)))
                    lit = []
                self.parts.append((True, name))
                if name not in self.fields:
                    self.fields.append(name)
                i = j + 1
            elif c == "}" and text.startswith("}}", i):
                lit.append("}")
                i += 2
            elif c == "}":
                raise InputError("--aad-template: single '}' at position %d "
                                 "(write }} for a literal brace)" % (i + 1))
            else:
                lit.append(c)
                i += 1
        if lit:
            self.parts.append((False, "".join(lit)))

    def fill(self, row):
        """The aad for a row (dict column -> text or None); None (no aad)
        when a field is NULL, as with SQL's ||."""
        out = []
        for is_field, t in self.parts:
            if not is_field:
                out.append(t)
            elif row[t] is None:
                return None
            else:
                out.append(row[t])
        return "".join(out)


# --------------------------------------------------------------------------
# Sources: a plain pg_dump file, or a live database
# --------------------------------------------------------------------------

class TableInfo:
    def __init__(self, handle, parts, columns, primary_key, types=None):
        self.handle = handle
        self.parts = parts
        self.name = display_name(parts)
        self.columns = columns
        self.primary_key = primary_key
        self.types = types or {}

    def need(self, column, what):
        if column not in self.columns:
            raise InputError("table %s has no column %s (%s)"
                             % (self.name, display_name((column,)), what))


# PostgreSQL encoding names that Python spells differently.
_PG_ENCODINGS = {
    "UTF8": "utf-8", "SQL_ASCII": "utf-8", "LATIN1": "iso8859-1",
    "LATIN2": "iso8859-2", "LATIN3": "iso8859-3", "LATIN4": "iso8859-4",
    "LATIN5": "iso8859-9", "LATIN6": "iso8859-10", "LATIN7": "iso8859-13",
    "LATIN8": "iso8859-14", "LATIN9": "iso8859-15", "LATIN10": "iso8859-16",
    "ISO_8859_5": "iso8859-5", "ISO_8859_6": "iso8859-6",
    "ISO_8859_7": "iso8859-7", "ISO_8859_8": "iso8859-8", "KOI8R": "koi8-r",
    "KOI8U": "koi8-u", "WIN866": "cp866", "WIN874": "cp874",
    "EUC_JIS_2004": "euc_jis_2004", "SHIFT_JIS_2004": "shift_jis_2004",
    "UHC": "cp949", "JOHAB": "johab", "GB18030": "gb18030", "GBK": "gbk",
    "BIG5": "big5", "SJIS": "shift_jis", "EUC_CN": "gb2312",
}


def python_encoding(pg_name):
    name = pg_name.upper()
    if name in _PG_ENCODINGS:
        return _PG_ENCODINGS[name]
    m = re.match(r"WIN(12\d\d)\Z", name)
    if m:
        return "cp" + m.group(1)
    try:
        return codecs.lookup(name.lower()).name
    except LookupError:
        raise InputError("the dump's client_encoding %s is not known to "
                         "Python; dump again with --encoding=UTF8" % pg_name) from None


def _parse_connect(rest):
    """The database named by a psql \\connect line of pg_dumpall (plain
    "\\connect db", "\\connect \\"Db\\"", or "\\connect -reuse-previous=on
    \\"dbname='x'\\"")."""
    rest = rest.strip()
    if rest.startswith("-reuse-previous=on "):
        rest = rest[len("-reuse-previous=on "):].strip()
    try:
        word, _ = scan_ident(rest, 0, fold=False)
    except ValueError:
        return rest
    m = re.match(r"dbname=(?:'((?:[^'\\]|\\.)*)'|(\S+))", word)
    if m:
        return re.sub(r"\\(.)", r"\1", m.group(1)) if m.group(1) is not None else m.group(2)
    return word


class Dump:
    """A plain-format pg_dump (or pg_dumpall) file, read in two passes: the
    first collects the keyring, the token domains, each table's COPY column
    list and primary key; later passes stream one table's COPY rows."""

    SMALL = (KEYS_TABLE, INDEX_KEYS_TABLE, DOMAINS_TABLE)

    def __init__(self, path, database=None):
        self.path = path
        self.database = database
        self._check_format()
        self.small = {t: [] for t in self.SMALL}
        self.columns = {}           # table -> COPY column list
        self.primary_keys = {}
        self.copy_dbs = {}          # table -> databases that hold its COPY
        self.databases = []
        self.encoding = "utf-8"
        for table, fields in self._scan(set(self.SMALL)):
            self.small[table].append(fields)
        if database is not None and database not in self.databases:
            raise InputError("the dump has no \\connect to database %s "
                             "(databases in it: %s)"
                             % (database, ", ".join(self.databases) or "none"))
        dbs = self.copy_dbs.get(KEYS_TABLE, [])
        if len(dbs) > 1:
            raise InputError("the dump holds phi_guard.keys of %d databases "
                             "(%s), as pg_dumpall writes: choose one with "
                             "--database NAME" % (len(dbs), ", ".join(dbs)))

    def _check_format(self):
        if os.path.isdir(self.path):
            raise InputError("%s is a directory-format dump; convert it with "
                             "pg_restore -f dump.sql %s" % (self.path, self.path))
        try:
            with open(self.path, "rb") as f:
                magic = f.read(5)
        except OSError as e:
            raise InputError("cannot read dump %s: %s" % (self.path, e.strerror)) from None
        self.gzipped = magic[:2] == b"\x1f\x8b"
        if magic == b"PGDMP":
            raise InputError("%s is a custom- or tar-format archive, not a "
                             "plain SQL dump; convert it with pg_restore -f "
                             "dump.sql %s" % (self.path, self.path))

    def _lines(self):
        try:
            f = gzip.open(self.path, "rb") if self.gzipped else open(self.path, "rb")
            with f:
                for line in f:
                    yield line.rstrip(b"\n").rstrip(b"\r")
        except (OSError, EOFError) as e:
            raise InputError("cannot read dump %s: %s"
                             % (self.path, getattr(e, "strerror", None) or e)) from None

    def _scan(self, wanted):
        """Yield (table, fields) for every COPY row of a wanted table in the
        selected database; collect the metadata on the way."""
        self.columns = {}
        self.primary_keys = {}
        self.copy_dbs = {}
        self.databases = []
        db = None
        copying = None              # the table whose COPY data follows
        skipping = False
        alter = None                # table of the last "ALTER TABLE" line
        lines = self._lines()
        for line in lines:
            if copying is not None or skipping:
                if line == b"\\.":
                    copying = None
                    skipping = False
                elif copying is not None:
                    yield copying, copy_fields(line)
                continue
            text = line.decode(self.encoding, "replace")
            active = self.database is None or db == self.database
            if text.startswith("COPY "):
                hdr = self._copy_header(text)
                if hdr is None:
                    continue
                table, cols = hdr
                skipping = True     # data lines follow until \.
                if not active:
                    continue
                self.copy_dbs.setdefault(table, []).append(db or "?")
                self.columns[table] = cols
                if table in wanted:
                    copying, skipping = table, False
                continue
            if text.startswith("\\connect "):
                db = _parse_connect(text[len("\\connect "):])
                if db not in self.databases:
                    self.databases.append(db)
                continue
            m = re.match(r"SET client_encoding = '([^']*)';", text)
            if m:
                self.encoding = python_encoding(m.group(1))
                continue
            if alter is not None and active:
                m = re.match(r"\s+ADD CONSTRAINT ", text)
                if m:
                    try:
                        _, pos = scan_ident(text, m.end(), fold=False)
                        if text.startswith(" PRIMARY KEY (", pos):
                            cols, _ = scan_ident_list(text, pos + len(" PRIMARY KEY ("), fold=False)
                            self.primary_keys[alter] = cols
                    except ValueError:
                        pass
            alter = None
            m = re.match(r"ALTER TABLE (?:ONLY )?", text)
            if m:
                try:
                    table, pos = scan_qualified(text, m.end(), fold=False)
                    if pos == len(text):
                        alter = table
                except ValueError:
                    pass

    @staticmethod
    def _copy_header(text):
        """'COPY schema.table (a, b) FROM stdin;' -> (table, columns)."""
        tail = " FROM stdin;"
        if not text.endswith(tail):
            return None
        body = text[5:-len(tail)]
        try:
            table, pos = scan_qualified(body, 0, fold=False)
            rest = body[pos:].strip()
            cols = []
            if rest:
                if not (rest.startswith("(") and rest.endswith(")")):
                    return None
                cols, end = scan_ident_list(rest, 1, fold=False)
                if end != len(rest) - 1:
                    return None
        except ValueError:
            return None
        return table, cols

    def _decode(self, field, where):
        if field is None:
            return None
        try:
            return field.decode(self.encoding)
        except UnicodeDecodeError:
            raise InputError("%s is not valid in the dump's encoding %s"
                             % (where, self.encoding)) from None

    def _rows_of_small(self, table, names):
        cols = self.columns.get(table)
        if cols is None:
            return None
        missing = [n for n in names if n not in cols]
        if missing:
            raise InputError("the dump's COPY of %s lacks column(s) %s"
                             % (display_name(table), ", ".join(missing)))
        idx = [cols.index(n) for n in names]
        out = []
        for i, fields in enumerate(self.small[table], 1):
            if len(fields) != len(cols):
                raise InputError("row %d of %s in the dump has %d fields, not %d"
                                 % (i, display_name(table), len(fields), len(cols)))
            out.append([self._decode(fields[k], "row %d of %s" % (i, display_name(table)))
                        for k in idx])
        return out

    def keyring_rows(self):
        data = self._rows_of_small(KEYS_TABLE, ["id", "name", "version", "state", "wrapped_key"])
        if data is None:
            raise InputError("the dump holds no data of phi_guard.keys (only "
                             "plain-format dumps with COPY data are read: was "
                             "it made with --inserts, --schema-only, or "
                             "without the phi_guard schema?)")
        rows = []
        try:
            for key_id, name, version, state, wrapped in data:
                rows.append(KeyRow("data", int(key_id), name, int(version), state,
                                   bytea_from_text(wrapped) if wrapped is not None else None))
            for key_id, name, wrapped in self._rows_of_small(
                    INDEX_KEYS_TABLE, ["id", "name", "wrapped_key"]) or []:
                rows.append(KeyRow("index", int(key_id), name, None, None,
                                   bytea_from_text(wrapped) if wrapped is not None else None))
        except (TypeError, ValueError):
            raise InputError("the dump's phi_guard.keys or phi_guard.index_keys "
                             "data is malformed") from None
        return rows

    def token_domains(self):
        rows = self._rows_of_small(DOMAINS_TABLE, ["name"])
        return [r[0] for r in rows or []]

    def resolve_table(self, parts):
        if len(parts) == 2:
            found = [parts] if tuple(parts) in self.columns else []
        else:
            found = [t for t in self.columns if t[-1] == parts[-1]]
        if not found:
            raise InputError("the dump holds no COPY data of table %s (only "
                             "plain-format dumps with COPY data are read: was "
                             "it made with --inserts or --schema-only, or "
                             "with the table excluded?)" % display_name(parts))
        if len(found) > 1:
            raise InputError("table name %s is ambiguous in the dump (%s): "
                             "qualify it with its schema"
                             % (display_name(parts),
                                ", ".join(display_name(t) for t in sorted(found))))
        table = tuple(found[0])
        dbs = self.copy_dbs.get(table, [])
        if len(dbs) > 1:
            raise InputError("the dump holds table %s of %d databases (%s): "
                             "choose one with --database NAME"
                             % (display_name(table), len(dbs), ", ".join(dbs)))
        return TableInfo(table, table, self.columns[table],
                         self.primary_keys.get(table, []))

    def rows(self, info, text_columns, ct_column, where=None):
        """Yield (texts, ct) per row: the text form of text_columns (None
        for NULL) and the ciphertext column's text; with where=(column,
        value), only rows whose column equals value."""
        cols = info.columns
        idx = [cols.index(c) for c in text_columns]
        ct_idx = cols.index(ct_column)
        w_idx = cols.index(where[0]) if where else None
        w_val = where[1].encode(self.encoding) if where else None
        n = 0
        for _, fields in self._scan({info.handle}):
            n += 1
            if len(fields) != len(cols):
                raise InputError("row %d of %s in the dump has %d fields, not %d"
                                 % (n, info.name, len(fields), len(cols)))
            if where and fields[w_idx] != w_val:
                continue
            where_txt = "row %d of %s in the dump" % (n, info.name)
            yield ([self._decode(fields[k], where_txt) for k in idx],
                   self._decode(fields[ct_idx], where_txt))


class Database:
    """A live database over psycopg2, read in one REPEATABLE READ, read-only
    transaction so that the keyring and the data are one snapshot."""

    def __init__(self, dsn):
        try:
            import psycopg2
        except ImportError:
            raise InputError("--dsn needs psycopg2 (Debian: apt-get install "
                             "python3-psycopg2); or recover from a pg_dump "
                             "file with --dump") from None
        self.psycopg2 = psycopg2
        try:
            self.conn = psycopg2.connect(dsn)
            self.conn.set_client_encoding("UTF8")
            self.conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
            with self.conn.cursor() as c:
                # rows hidden by row-level security make the query fail
                # instead of silently missing from the recovery; text forms
                # of dates and numbers as pg_dump writes them
                c.execute("SET row_security = off; SET DateStyle = 'ISO, MDY'; "
                          "SET IntervalStyle = 'postgres'; SET extra_float_digits = 3")
        except psycopg2.Error as e:
            raise InputError("cannot connect: %s" % self._msg(e)) from None

    @staticmethod
    def _msg(e):
        m = getattr(getattr(e, "diag", None), "message_primary", None)
        return m or str(e).strip().split("\n")[0]

    def _query(self, sql, params=()):
        try:
            with self.conn.cursor() as c:
                c.execute(sql, params)
                return c.fetchall()
        except self.psycopg2.Error as e:
            raise InputError("database error: %s" % self._msg(e)) from None

    def _exists(self, table):
        return self._query("SELECT to_regclass(%s) IS NOT NULL",
                           (".".join(quote_ident(p) for p in table),))[0][0]

    def keyring_rows(self):
        if not self._exists(KEYS_TABLE):
            raise InputError("this database has no table phi_guard.keys "
                             "(is it the phi_guard database?)")
        try:
            with self.conn.cursor() as c:
                c.execute("SELECT id, name, version, state, wrapped_key "
                          "FROM phi_guard.keys ORDER BY id")
                data = c.fetchall()
        except self.psycopg2.Error as e:
            if getattr(e, "pgcode", None) == "42501":
                raise InputError("permission denied for phi_guard.keys: only "
                                 "a superuser can read the wrapped keys") from None
            raise InputError("database error: %s" % self._msg(e)) from None
        rows = [KeyRow("data", i, n, v, s, bytes(w) if w is not None else None)
                for i, n, v, s, w in data]
        if self._exists(INDEX_KEYS_TABLE):
            for i, n, w in self._query("SELECT id, name, wrapped_key FROM "
                                       "phi_guard.index_keys ORDER BY id"):
                rows.append(KeyRow("index", i, n, None, None,
                                   bytes(w) if w is not None else None))
        return rows

    def token_domains(self):
        if not self._exists(DOMAINS_TABLE):
            return []
        return [r[0] for r in self._query("SELECT name FROM "
                                          "phi_guard.token_domains ORDER BY name")]

    def resolve_table(self, parts):
        quoted = ".".join(quote_ident(p) for p in parts)
        found = self._query(
            "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE c.oid = pg_catalog.to_regclass(%s)", (quoted,))
        if not found:
            raise InputError("no table %s in this database" % display_name(parts))
        oid, nsp, rel = found[0]
        cols = self._query(
            "SELECT a.attname, tn.nspname, t.typname FROM pg_catalog.pg_attribute a "
            "JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
            "JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace "
            "WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped "
            "ORDER BY a.attnum", (oid,))
        pk = [r[0] for r in self._query(
            "SELECT a.attname FROM pg_catalog.pg_index i, "
            "unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord), pg_catalog.pg_attribute a "
            "WHERE i.indrelid = %s AND i.indisprimary AND a.attrelid = i.indrelid "
            "AND a.attnum = k.attnum ORDER BY k.ord", (oid,))]
        return TableInfo(oid, (nsp, rel), [c[0] for c in cols], pk,
                         {c[0]: (c[1], c[2]) for c in cols})

    def rows(self, info, text_columns, ct_column, where=None):
        typ = info.types.get(ct_column)
        ct = quote_ident(ct_column)
        if typ == ("phi_guard", "phi_ciphertext"):
            ct_expr = ct + "::pg_catalog.bytea"     # binary-coercible: raw bytes
        elif typ in (("pg_catalog", "bytea"), ("pg_catalog", "text"),
                     ("pg_catalog", "varchar")):
            ct_expr = ct
        else:
            raise InputError("column %s of %s is of type %s, not phi_ciphertext, "
                             "bytea or text" % (display_name((ct_column,)), info.name,
                                                ".".join(typ or ("?",))))
        exprs = [quote_ident(c) + "::pg_catalog.text" for c in text_columns] + [ct_expr]
        sql = "SELECT %s FROM %s" % (", ".join(exprs),
                                     ".".join(quote_ident(p) for p in info.parts))
        params = ()
        if where:
            sql += " WHERE %s OPERATOR(pg_catalog.=) %%s" % quote_ident(where[0])
            params = (where[1],)
        try:
            c = self.conn.cursor(name="phi_guard_recover")
            c.itersize = ITERSIZE
            c.execute(sql, params)
            for row in c:
                yield list(row[:-1]), row[-1]
            c.close()
        except self.psycopg2.Error as e:
            raise InputError("database error: %s" % self._msg(e)) from None

    def close(self):
        try:
            self.conn.rollback()
            self.conn.close()
        except self.psycopg2.Error:
            pass


# --------------------------------------------------------------------------
# Subcommands
# --------------------------------------------------------------------------

def cmd_decrypt(args, source, rec, out):
    if args.values:
        values = args.values
    else:
        values = (line.decode("utf-8", "replace").strip()
                  for line in sys.stdin.buffer)
    for n, v in enumerate(values, 1):
        out.row([rec.value(v if v != "" else None, args.aad, "value %d" % n)])


def cmd_column(args, source, rec, out):
    info = source.resolve_table(parse_qualified_arg(args.table, "--table"))
    column = parse_ident_arg(args.column, "--column")
    info.need(column, "--column")
    if args.key_columns is not None:
        keys = parse_ident_list_arg(args.key_columns, "--key-columns")
    else:
        keys = info.primary_key
        if not keys:
            raise InputError("table %s has no primary key: name the columns "
                             "that identify a row with --key-columns (or "
                             "--key-columns '' for none)" % info.name)
    for k in keys:
        info.need(k, "--key-columns")
    template = AadTemplate(args.aad_template) if args.aad_template is not None else None
    fields = template.fields if template else []
    for f in fields:
        info.need(f, "--aad-template")
    text_cols = list(dict.fromkeys(keys + fields))
    out.row(keys + [column])
    for n, (texts, ct) in enumerate(source.rows(info, text_cols, column), 1):
        row = dict(zip(text_cols, texts))
        aad = template.fill(row) if template else None
        out.row([row[k] for k in keys] + [rec.value(ct, aad, "row %d" % n)])


def cmd_vault(args, source, rec, out):
    domains = source.token_domains()
    if args.domain is not None and args.domain not in domains:
        raise InputError("no token domain %s in phi_guard.token_domains"
                         % display_name((args.domain,)))
    info = source.resolve_table(VAULT_TABLE)
    where = ("domain", args.domain) if args.domain is not None else None
    out.row(["domain", "token", "value"])
    for n, ((domain, token), ct) in enumerate(
            source.rows(info, ["domain", "token"], "value", where), 1):
        aad = VAULT_AAD_PREFIX + domain if domain is not None else None
        out.row([domain, token, rec.value(ct, aad, "vault row %d" % n)])


def cmd_keys(args, rows, keyring, master_keys, out):
    out.row(["kind", "id", "name", "version", "state", "unwraps",
             "master_key_fingerprint"])
    bad = 0
    for row in sorted(rows, key=lambda r: (r.kind != "data", r.id)):
        mk = keyring.unwrapped_by.get((row.kind, row.id))
        if row.destroyed:
            unwraps = None
        else:
            unwraps = "yes" if mk is not None else "no"
            bad += mk is None
        out.row([row.kind, str(row.id), row.name,
                 str(row.version) if row.version is not None else None,
                 row.state, unwraps, mk.fingerprint if mk else None])
    live = sum(1 for r in rows if not r.destroyed)
    warn("%d of %d live keys unwrap with the given master key%s"
         % (live - bad, live, "s" if len(master_keys) > 1 else ""))
    return EXIT_FAILED if bad else EXIT_OK


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

EXAMPLES = """\
examples:
  recover.py keys --dump clinic.sql --master-key-file mk
  recover.py decrypt --dsn "dbname=clinic" --master-key-file mk 'phi1:AQEB...'
  recover.py column --dump clinic.sql --master-key-command 'vault-read mk' \\
      --table clinic.patients --column ssn --aad-template 'clinic.patients.ssn:{id}'
  recover.py vault --dsn "dbname=clinic" --master-key-file mk --domain ssn -o ssn.csv

Each command takes its options after its name (recover.py COMMAND --help).
Output is CSV (an unquoted empty field is NULL); values that cannot be
decrypted come out as NULL and are named by row on stderr.
Exit status: 0 all values recovered, 1 some values failed, 2 usage or
input error."""


def build_parser():
    common = argparse.ArgumentParser(add_help=False)
    src = common.add_argument_group("source (one of)")
    srcx = src.add_mutually_exclusive_group(required=True)
    srcx.add_argument("--dsn", help="libpq connection string of the database "
                      "(connect as a superuser)")
    srcx.add_argument("--dump", metavar="FILE",
                      help="plain-format pg_dump or pg_dumpall output (may be "
                           "gzip-compressed)")
    src.add_argument("--database", metavar="NAME",
                     help="with --dump of a pg_dumpall file: the database to read")
    mk = common.add_argument_group("master key (one of)")
    mkx = mk.add_mutually_exclusive_group(required=True)
    mkx.add_argument("--master-key-file", metavar="PATH",
                     help="file holding the master key (64 hex characters, "
                          "or one key per line)")
    mkx.add_argument("--master-key-command", metavar="CMD",
                     help="shell command printing the master key")
    common.add_argument("-o", "--output", metavar="FILE",
                        help="write the CSV to FILE (created with mode 0600) "
                             "instead of stdout")

    p = argparse.ArgumentParser(
        prog=PROG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Decrypt phi_guard data without phi_guard, from the "
                    "master key alone\n(the formats it reads are documented "
                    "in docs/format.md).",
        epilog=EXAMPLES)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("decrypt", parents=[common],
                       help="decrypt phi1:... values given as arguments or on stdin")
    d.add_argument("values", nargs="*", metavar="VALUE",
                   help="phi1:<base64> or \\x<hex> values; none: one per line on stdin")
    d.add_argument("--aad", help="the aad the values were encrypted with "
                   "('' is the empty aad, which differs from none)")

    c = sub.add_parser("column", parents=[common],
                       help="decrypt one column of a table, as CSV")
    c.add_argument("--table", required=True, help="[schema.]table")
    c.add_argument("--column", required=True, help="the encrypted column")
    c.add_argument("--key-columns", metavar="COLS",
                   help="comma-separated columns written before the plaintext "
                        "(default: the primary key)")
    c.add_argument("--aad-template", metavar="TEMPLATE",
                   help="aad of each row, with {column} fields, e.g. "
                        "'clinic.patients.ssn:{id}'")

    v = sub.add_parser("vault", parents=[common],
                       help="export token -> value pairs of the token vault, as CSV")
    v.add_argument("--domain", help="only this token domain (default: all)")

    sub.add_parser("keys", parents=[common],
                   help="list the keyring and whether each key unwraps (no key material)")
    return p


@contextlib.contextmanager
def open_output(path):
    """The CSV stream: stdout as UTF-8, or a new file of mode 0600."""
    if path is None:
        if not hasattr(sys.stdout, "buffer"):    # already a text stream
            yield sys.stdout
            return
        sys.stdout.flush()
        stream = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
        try:
            yield stream
        finally:
            stream.flush()
            stream.detach()
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as e:
        raise InputError("cannot create %s: %s" % (path, e.strerror)) from None
    with open(fd, "w", encoding="utf-8", newline="") as stream:
        yield stream


def run(args):
    if args.database is not None and args.dump is None:
        raise InputError("--database goes with --dump")
    if args.master_key_file is not None:
        master_keys = read_master_key_file(args.master_key_file)
    else:
        master_keys = read_master_key_command(args.master_key_command)
    source = Dump(args.dump, args.database) if args.dump is not None else Database(args.dsn)
    try:
        rows = source.keyring_rows()
        keyring = Keyring(rows, master_keys)
        if args.command == "keys":
            with open_output(args.output) as stream:
                rc = cmd_keys(args, rows, keyring, master_keys, CsvOut(stream))
            keyring.check_master_key(master_keys)
            return rc
        if not any(r.kind == "data" for r in rows):
            raise InputError("phi_guard.keys has no rows: there is no data key "
                             "to decrypt with")
        keyring.check_master_key(master_keys)
        rec = Recovery(keyring)
        handler = {"decrypt": cmd_decrypt, "column": cmd_column,
                   "vault": cmd_vault}[args.command]
        with open_output(args.output) as stream:
            handler(args, source, rec, CsvOut(stream))
        rec.summary()
        return EXIT_FAILED if rec.failed else EXIT_OK
    finally:
        if isinstance(source, Database):
            source.close()


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except InputError as e:
        warn("error: %s" % e)
        return EXIT_ERROR
    except BrokenPipeError:
        # the reader went away (e.g. "| head"): stop quietly
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_ERROR
    except Exception as e:  # never print str(e): it could quote data
        tb = e.__traceback__
        while tb.tb_next is not None:
            tb = tb.tb_next
        warn("unexpected %s at line %d" % (type(e).__name__, tb.tb_lineno))
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
