#!/usr/bin/python3
"""Independent verifier for the phi_guard audit chain (docs/format.md).

This program re-checks the tamper-evident audit log of the phi_guard
PostgreSQL extension without using the extension itself: it only reads the
tables ``phi_guard.audit_log``, ``phi_guard.audit_block`` and, after a
prune, ``phi_guard.audit_checkpoint`` (live, or from a CSV export) and recomputes every hash with Python's hashlib.  It
follows the contract in docs/format.md (sections "Audit chain" and "Audit
exports") alone, not the extension's code, so an auditor can use it as a
second opinion next to ``phi_audit_verify()``.

Usage
-----

Verify a live database (needs psycopg2 and SELECT on both tables)::

    verify_audit.py --dsn "host=db.example dbname=clinic user=auditor"

Take a copy for the audit file and verify that copy (the copy is written in
one REPEATABLE READ snapshot, so the two files are consistent)::

    verify_audit.py --dsn "host=... dbname=..." --write-export ./audit-2024-06

Verify an export made earlier (no database and no psycopg2 needed)::

    verify_audit.py --export ./audit-2024-06

Also check against a digest kept outside the database (the JSON returned by
``SELECT phi_audit_digest()``, saved to a file at some earlier time)::

    verify_audit.py --export ./audit-2024-06 --digest digest-2024-05-31.json

Check against every digest ``phi_guard.audit_anchor_command`` anchored
outside the database (a file of them, one JSON object per line, as the
command received them on its standard input)::

    verify_audit.py --dsn "host=... dbname=..." --anchors ./phi_anchors

Verify exports taken before and after ``phi_audit_prune`` as one chain
(repeat ``--export``, in any order; see "Several exports" below)::

    verify_audit.py --export ./audit-2024-06 --export ./audit-2025-06

List who saw one row's protected values (an accounting of disclosures,
docs/format.md "Row references"), from the same verified input: every
access entry whose ``detail.rows`` contain REF, one per access (its final
entry, or its intent when no final entry names REF), oldest first::

    verify_audit.py --export ./audit-2024-06 --disclosures patients.ssn:42

Add ``--json`` for one machine-readable JSON object on stdout (the human
summary then goes to stderr)::

    {"ok": true, "blocks": 12, "entries": 3456, "unsealed": 7,
     "first_bad_block": null, "problem": null}

Exit status: 0 the chain verified, 1 verification failed, 2 usage or
input/output error (bad arguments, unreadable files, a file that is not an
export as described below, a database error).

Making an export with psql
--------------------------

An export directory holds two files, and from 0.3.0 a third, made with
(run them in one ``BEGIN ISOLATION LEVEL REPEATABLE READ; ... COMMIT;`` so
that the files come from the same snapshot, and with the client encoding
UTF8, e.g. ``PGCLIENTENCODING=UTF8``)::

    \\copy (SELECT id, xid, record, encode(entry_hash,'hex') AS entry_hash FROM phi_guard.audit_log ORDER BY xid, id) TO 'audit_log.csv' CSV HEADER
    \\copy (SELECT block_no, xid_lo, xid_hi, entries, encode(prev_hash,'hex') AS prev_hash, encode(block_hash,'hex') AS block_hash, sealed_at FROM phi_guard.audit_block ORDER BY block_no) TO 'audit_block.csv' CSV HEADER
    \\copy (SELECT block_no, encode(block_hash,'hex') AS block_hash, entries, pruned_at FROM phi_guard.audit_checkpoint ORDER BY block_no) TO 'audit_checkpoint.csv' CSV HEADER

``--write-export`` writes byte-for-byte the same output (it sends the same
COPY statements).  audit_log.csv must be in (xid, id) order, as the ORDER BY
above produces; the verifier streams both files side by side and refuses an
export that is out of order (exit 2) rather than sorting it in memory.

What is checked (docs/format.md, "Audit chain")
-----------------------------------------------

* every ``entry_hash`` is SHA-256 of the UTF-8 bytes of ``record``;
* every ``record`` is a JSON object with ``"v": 1`` and the keys v, ts, kind,
  table, row_key, columns, db_user, role, app_user, tenant, purpose,
  client_addr, application_name, detail, or a compact row entry with
  ``"v": 2`` and the keys v, kind, table, row_key, columns and stmt, the id
  of an earlier entry of its transaction whose kind is "statement" (the
  statement entry holding the rows' who, when, where and why);
  ``request_id``, written under a
  request context, is a string or null; the ``detail.phase`` of an access
  entry is "intent" or "final" and its ``detail.rows`` an array of strings;
  (xid, id) pairs are unique;
* blocks are numbered 1, 2, 3, ... without gaps;
* block 1 has ``prev_hash`` = 32 zero bytes and ``xid_lo`` = the smallest xid
  among its entries; block n > 1 has ``prev_hash`` = ``block_hash`` of block
  n-1 and ``xid_lo`` = ``xid_hi`` of block n-1; always ``xid_lo < xid_hi``;
* a block holds exactly the entries with ``xid_lo <= xid < xid_hi``, its
  ``entries`` column is their count, and
  ``block_hash = SHA-256(prev_hash || uint64_be(block_no) ||
  uint64_be(entries) || entry_hash_1 || ... || entry_hash_n)`` over those
  entries ordered by (xid, id);
* an entry with an xid below block 1's ``xid_lo`` lies outside every block
  and is an error; entries with xid >= the last block's ``xid_hi`` are
  "unsealed": they are counted and their hashes and JSON are checked, but not
  being in a block is not an error (sealing runs periodically);
* with ``--digest``: the chain still reaches the digest's block, that
  block's ``block_hash`` equals the digest's, and the entries of blocks
  1..N add up to the digest's ``entries``;
* with ``--anchors FILE``: the same for every digest of the file, all of
  them checked (exit 1 if any differs; each mismatch is listed with its
  line and block number); an anchor naming a block after the chain's last
  one is a mismatch (blocks were removed); an anchor of a block pruned
  before the checkpoint is skipped and counted (give the export that holds
  that block to check it);
* after a prune (audit_checkpoint.csv holds the last pruned block): the
  blocks start at the checkpoint's block_no + 1, whose ``prev_hash`` is the
  checkpoint's ``block_hash``; counts continue from the checkpoint's
  ``entries`` (``blocks``/``entries`` count from block 1, as
  ``phi_audit_verify`` does); the ``audit_prune`` entry naming the highest
  block names the checkpoint (block, block_hash, entries); a digest of a
  pruned block needs the export that holds that block.

Several exports
---------------

Exports taken at different times, with ``phi_audit_prune`` in between,
verify as one chain when given together (``--export A --export B``, in any
order): each is verified on its own, then, ordered by checkpoint, each must
start at or before the last block of the one before (a gap is a failure),
its checkpoint must be the block of that number in the one before (same
``block_hash`` and cumulative entries), and the last block both hold must
be the same (a fork is a failure).  ``--disclosures`` reads every export,
once per access; ``--digest`` is checked by the export holding its block.

Verification stops at the first problem.  ``first_bad_block`` is the number
of the block where it was found (for a missing block: the missing number;
for a problem in an unsealed entry: null); ``blocks``/``entries`` then count
what was read up to that point.  Problems name blocks and entries only by
block number and (xid, id); record contents are never printed.

What a passing result does NOT prove: the hashes cover ``record`` and the
order of entries, not the ``xid``/``id`` columns themselves, and a
superuser who rewrites the log AND recomputes every later block hash
produces a chain that verifies -- only a digest kept outside the database
(``--digest``, ``--anchors``) detects that, for the blocks up to the
digest's block.
Removing the newest blocks is likewise only visible with a digest.
"""

import argparse
import csv
import hashlib
import json
import os
import struct
import sys

REQUIRED_KEYS = (
    "v", "ts", "kind", "table", "row_key", "columns", "db_user", "role",
    "app_user", "tenant", "purpose", "client_addr", "application_name",
    "detail",
)
# a compact row entry (SPEC §6); stmt: the id of its statement entry
COMPACT_KEYS = ("v", "kind", "table", "row_key", "columns", "stmt")
ZERO_HASH = bytes(32)
ITERSIZE = 10000
# access entries that name the rows whose values they revealed
ROW_KINDS = ("decrypt", "decrypt_masked", "detokenize", "tokenize")
DISCLOSURE_FIELDS = ("ts", "kind", "db_user", "app_user", "tenant",
                     "purpose", "request_id", "key")

LOG_FILE = "audit_log.csv"
BLOCK_FILE = "audit_block.csv"
CHECKPOINT_FILE = "audit_checkpoint.csv"   # from 0.3.0; optional
LOG_COLUMNS = ("id", "xid", "record", "entry_hash")
BLOCK_COLUMNS = ("block_no", "xid_lo", "xid_hi", "entries", "prev_hash",
                 "block_hash", "sealed_at")
CHECKPOINT_COLUMNS = ("block_no", "block_hash", "entries", "pruned_at")

LOG_QUERY = ("SELECT id, xid, record, encode(entry_hash,'hex') AS entry_hash "
             "FROM phi_guard.audit_log ORDER BY xid, id")
BLOCK_QUERY = ("SELECT block_no, xid_lo, xid_hi, entries, "
               "encode(prev_hash,'hex') AS prev_hash, "
               "encode(block_hash,'hex') AS block_hash, sealed_at "
               "FROM phi_guard.audit_block ORDER BY block_no")
CHECKPOINT_QUERY = ("SELECT block_no, encode(block_hash,'hex') AS block_hash, "
                    "entries, pruned_at FROM phi_guard.audit_checkpoint "
                    "ORDER BY block_no")

EXIT_OK, EXIT_FAILED, EXIT_ERROR = 0, 1, 2

# Records can be long; the csv module's default limit is 128 KiB per field.
csv.field_size_limit(2 ** 31 - 1)


class InputError(Exception):
    """The input cannot be read or is not what it should be (exit 2)."""


class _Failure(Exception):
    """Verification failed (exit 1)."""

    def __init__(self, block, problem):
        super().__init__(problem)
        self.block = block
        self.problem = problem


class Result:
    """Outcome of a verification run."""

    def __init__(self):
        self.ok = True
        self.blocks = 0
        self.entries = 0
        self.unsealed = 0
        self.first_bad_block = None
        self.problem = None
        self.last_block = None      # (block_no, xid_hi, sealed_at)
        self.digest_note = None
        self.notes = []
        self.checkpoint = None      # (block_no, block_hash, entries) or None
        self.kept = {}              # block_no -> (block_hash, entries up to it)
        self.anchors = None         # with --anchors: see check_anchors

    def as_json(self):
        out = {"ok": self.ok, "blocks": self.blocks, "entries": self.entries,
               "unsealed": self.unsealed,
               "first_bad_block": self.first_bad_block,
               "problem": self.problem}
        if self.anchors is not None:
            out["anchors"] = self.anchors
        return out


# --------------------------------------------------------------------------
# The verification proper.  `blocks` yields tuples
#   (block_no, xid_lo, xid_hi, entries, prev_hash, block_hash, sealed_at)
# in block_no order and `entries` yields tuples (xid, id, record, entry_hash)
# in (xid, id) order; integers are int, hashes bytes, any column may be None
# (SQL NULL).
# --------------------------------------------------------------------------

def _where(xid, eid, block):
    if block is None:
        return "unsealed entry xid=%s id=%s" % (xid, eid)
    return "entry xid=%s id=%s (block %d)" % (xid, eid, block)


class _Statements:
    """The statement entries of the transaction being read (entries come
    ordered by (xid, id), so a compact row entry follows its statement)."""

    def __init__(self):
        self.xid = None
        self.ids = set()

    def enter(self, xid):
        if xid != self.xid:
            self.xid = xid
            self.ids = set()


def _check_entry(xid, eid, record, entry_hash, block, stmts):
    """Entry-level checks; never puts record contents into the message."""
    if record is None:
        raise _Failure(block, _where(xid, eid, block) + ": record is NULL")
    if entry_hash is None:
        raise _Failure(block, _where(xid, eid, block) + ": entry_hash is NULL")
    try:
        raw = record.encode("utf-8")
    except UnicodeEncodeError:
        raise _Failure(block, _where(xid, eid, block)
                       + ": record is not valid Unicode text") from None
    if hashlib.sha256(raw).digest() != entry_hash:
        raise _Failure(block, _where(xid, eid, block)
                       + ": entry_hash is not SHA-256 of the record")
    try:
        obj = json.loads(record)
    except ValueError:
        raise _Failure(block, _where(xid, eid, block)
                       + ": record is not valid JSON") from None
    if not isinstance(obj, dict):
        raise _Failure(block, _where(xid, eid, block)
                       + ": record is not a JSON object")
    stmts.enter(xid)
    v = obj.get("v")
    compact = type(v) is int and v == 2
    missing = [k for k in (COMPACT_KEYS if compact else REQUIRED_KEYS)
               if k not in obj]
    if missing:
        raise _Failure(block, _where(xid, eid, block)
                       + ": record lacks required key(s) " + ", ".join(missing))
    if compact:
        stmt = obj["stmt"]
        if type(stmt) is not int or stmt not in stmts.ids:
            raise _Failure(block, _where(xid, eid, block)
                           + ': compact entry "stmt" names no earlier '
                           'statement entry of its transaction')
        return obj
    if type(v) is not int or v != 1:
        raise _Failure(block, _where(xid, eid, block)
                       + ': record "v" is not 1 or 2')
    if obj["kind"] == "statement":
        stmts.ids.add(eid)
    rid = obj.get("request_id")
    if rid is not None and not isinstance(rid, str):
        raise _Failure(block, _where(xid, eid, block)
                       + ': record "request_id" is not a string or null')
    detail = obj["detail"]
    if obj["kind"] in ROW_KINDS and isinstance(detail, dict) \
            and "phase" in detail:
        rows = detail.get("rows")
        if detail["phase"] not in ("intent", "final") \
                or not isinstance(rows, list) \
                or not all(isinstance(r, str) for r in rows):
            raise _Failure(block, _where(xid, eid, block)
                           + ': access entry "detail" has a bad phase or '
                           'rows')
    return obj


def verify(blocks, entries, digest=None, check_order=False, on_record=None,
           checkpoint=None, keep=()):
    """Verify the chain.  Returns a Result; raises InputError on bad input.

    checkpoint, after a prune, is the last pruned block as (block_no,
    block_hash, entries up to it): the blocks start at block_no + 1, chained
    to block_hash, and counts are cumulative from block 1 (blocks = the last
    block's number); the last audit_prune entry must name it.  The hash and
    cumulative entries of the blocks numbered in keep (and of the
    checkpoint's) are left in Result.kept, to link exports (verify_exports).
    With check_order, the entries are read to the end after a failure, to
    raise InputError instead if they turn out not to be in (xid, id) order
    (for exports; a database returns them ORDER BY xid, id).  on_record, if
    given, is called as on_record(xid, id, record object) for every entry
    that passed its checks (Disclosures.add).
    """
    res = Result()
    stmts = _Statements()
    it = iter(entries)
    prev_key = [None]

    def nxt():
        """Next entry as (xid, id, record, entry_hash, duplicate)."""
        e = next(it, None)
        if e is None:
            return None
        xid, eid, record, entry_hash = e
        if xid is None or eid is None:
            raise _Failure(None, "an audit_log row has a NULL xid or id")
        key = (xid, eid)
        dup = False
        if prev_key[0] is not None:
            if key < prev_key[0]:
                raise InputError(
                    "audit_log rows are not in (xid, id) order (xid=%s id=%s "
                    "follows xid=%s id=%s); export with ORDER BY xid, id"
                    % (xid, eid, prev_key[0][0], prev_key[0][1]))
            dup = key == prev_key[0]
        prev_key[0] = key
        return (xid, eid, record, entry_hash, dup)

    d_block = d_hash = d_entries = None
    if digest is not None:
        d_block, d_hash, d_entries = digest

    cp_no, cp_hash, cp_entries = checkpoint or (0, ZERO_HASH, 0)
    res.checkpoint = checkpoint
    res.blocks, res.entries = cp_no, cp_entries
    if cp_no:
        res.kept[cp_no] = (cp_hash, cp_entries)
    pruned = [0, None, None]    # the last audit_prune entry: block, hash, entries

    def note(xid, eid, obj):
        """Keep the audit_prune entry naming the highest block; on_record."""
        det = obj.get("detail")
        if obj.get("kind") == "audit_prune" and isinstance(det, dict) \
                and type(det.get("block")) is int \
                and det["block"] > pruned[0]:
            pruned[:] = [det["block"], det.get("block_hash"),
                         det.get("entries")]
        if on_record is not None:
            on_record(xid, eid, obj)

    try:
        cur = nxt()
        expected_no = cp_no + 1
        prev_block_hash = cp_hash
        prev_hi = None
        total = cp_entries
        digest_done = d_block is None
        if d_block is not None and 0 < d_block <= cp_no:
            if d_block < cp_no:
                raise _Failure(d_block, "block %d was pruned; the chain starts "
                               "after block %d" % (d_block, cp_no))
            if d_hash != cp_hash or d_entries != cp_entries:
                raise _Failure(d_block, "the checkpoint (block %d) differs "
                               "from the digest" % d_block)
            digest_done = True
            res.digest_note = ("digest matches the checkpoint, block %d (%d "
                               "entries)" % (cp_no, cp_entries))
        if d_block == 0:
            if d_entries != 0:
                raise _Failure(None, "digest names block 0 but %d entries"
                               % d_entries)
            digest_done = True
            res.digest_note = "digest names no block (nothing sealed yet)"

        for b in blocks:
            no, lo, hi, n, ph, bh, sealed_at = b
            if no is None:
                raise _Failure(expected_no, "an audit_block row has a NULL "
                               "block_no (expected block %d)" % expected_no)
            if no != expected_no:
                if no > expected_no:
                    raise _Failure(expected_no,
                                   "block %d is missing (the next block "
                                   "present is %d)" % (expected_no, no))
                raise _Failure(no, "block number %d appears again after "
                               "block %d" % (no, expected_no - 1))
            res.blocks = no
            nulls = [name for name, val in (("xid_lo", lo), ("xid_hi", hi),
                                            ("entries", n), ("prev_hash", ph),
                                            ("block_hash", bh))
                     if val is None]
            if nulls:
                raise _Failure(no, "block %d: NULL %s" % (no, ", ".join(nulls)))
            if no == 1:
                if ph != ZERO_HASH:
                    raise _Failure(no, "block 1: prev_hash is not 32 zero "
                                   "bytes")
            elif no == cp_no + 1:
                if ph != cp_hash:
                    raise _Failure(no, "block %d: prev_hash is not the "
                                   "block_hash of the checkpoint (block %d)"
                                   % (no, cp_no))
            elif ph != prev_block_hash:
                raise _Failure(no, "block %d: prev_hash is not the block_hash "
                               "of block %d" % (no, no - 1))
            if no > cp_no + 1 and lo != prev_hi:
                raise _Failure(no, "block %d: xid_lo %d is not xid_hi %d of "
                               "block %d" % (no, lo, prev_hi, no - 1))
            if not lo < hi:
                raise _Failure(no, "block %d: xid_lo %d is not below xid_hi %d"
                               % (no, lo, hi))
            if not 0 <= n < 2 ** 64:
                raise _Failure(no, "block %d: entries %d is out of range"
                               % (no, n))
            if cur is not None and cur[0] < lo:
                raise _Failure(no, "entry xid=%d id=%d lies outside every "
                               "block (below xid_lo %d of block %d)"
                               % (cur[0], cur[1], lo, no))
            if no == 1 and cur is not None and cur[0] < hi and cur[0] != lo:
                raise _Failure(no, "block 1: xid_lo %d is not the smallest xid "
                               "among its entries (%d)" % (lo, cur[0]))

            h = hashlib.sha256()
            h.update(ph)
            h.update(struct.pack(">QQ", no, n))
            count = 0
            while cur is not None and cur[0] < hi:
                xid, eid, record, entry_hash, dup = cur
                if dup:
                    raise _Failure(no, _where(xid, eid, no)
                                   + ": duplicate (xid, id)")
                obj = _check_entry(xid, eid, record, entry_hash, no, stmts)
                note(xid, eid, obj)
                h.update(entry_hash)
                count += 1
                cur = nxt()
            res.entries = total + count
            if count != n:
                raise _Failure(no, "block %d: entries says %d but %d entries "
                               "have xid_lo <= xid < xid_hi (%d..%d)"
                               % (no, n, count, lo, hi))
            if h.digest() != bh:
                raise _Failure(no, "block %d: block_hash mismatch (stored %s, "
                               "computed %s)" % (no, bh.hex(), h.hexdigest()))
            total += n
            if no in keep:
                res.kept[no] = (bh, total)
            if no == d_block:
                if bh != d_hash:
                    raise _Failure(no, "block %d: block_hash %s differs from "
                                   "the digest's %s"
                                   % (no, bh.hex(), d_hash.hex()))
                if total != d_entries:
                    raise _Failure(no, "blocks 1..%d hold %d entries, the "
                                   "digest says %d" % (no, total, d_entries))
                digest_done = True
                res.digest_note = ("digest matches block %d (%d entries)"
                                   % (no, total))
            res.last_block = (no, hi, sealed_at)
            prev_block_hash = bh
            prev_hi = hi
            expected_no += 1

        if not digest_done:
            raise _Failure(d_block, "the chain ends at block %d but the digest "
                           "names block %d" % (expected_no - 1, d_block))

        while cur is not None:
            xid, eid, record, entry_hash, dup = cur
            if dup:
                raise _Failure(None, _where(xid, eid, None)
                               + ": duplicate (xid, id)")
            obj = _check_entry(xid, eid, record, entry_hash, None, stmts)
            note(xid, eid, obj)
            res.unsealed += 1
            cur = nxt()

        if pruned[0] or cp_no:
            if pruned[0] != cp_no or pruned[2] != cp_entries \
                    or not isinstance(pruned[1], str) \
                    or pruned[1].lower() != cp_hash.hex():
                raise _Failure(cp_no + 1, "the checkpoint (block %d) does not "
                               "match the last audit_prune entry (block %d)"
                               % (cp_no, pruned[0]))
    except _Failure as f:
        res.ok = False
        res.first_bad_block = f.block
        res.problem = f.problem
        if check_order:
            # The problem may only be an artefact of an export that is not in
            # (xid, id) order; read on so that such an export is reported as
            # unusable (InputError) rather than as a misleading failure.
            while True:
                try:
                    if nxt() is None:
                        break
                except _Failure:
                    pass
    return res


# --------------------------------------------------------------------------
# Disclosures of one row (--disclosures), gathered while verifying
# --------------------------------------------------------------------------

def row_reference(ref):
    """ref as the log records it: over 128 UTF-8 bytes, sha256: + hex."""
    raw = ref.encode("utf-8")
    if len(raw) > 128:
        return "sha256:" + hashlib.sha256(raw).hexdigest()
    return ref


class Disclosures:
    """The access entries whose detail.rows name one row reference, one per
    access (detail.access_id): its final entry, or its intent when no final
    entry names the reference (docs/format.md, "Row references")."""

    def __init__(self, ref):
        self.ref = row_reference(ref)
        self._accesses = {}

    def add(self, xid, eid, obj):
        detail = obj.get("detail")
        if obj.get("kind") not in ROW_KINDS or not isinstance(detail, dict) \
                or self.ref not in (detail.get("rows") or ()):
            return
        access = detail.get("access_id") or "%d/%d" % (xid, eid)
        final = detail.get("phase") != "intent"
        kept = self._accesses.get(access)
        if kept is None or (final and not kept[0]):
            self._accesses[access] = (final, xid, eid, obj)

    def rows(self):
        """One dict per access (DISCLOSURE_FIELDS), oldest first."""
        out = []
        for _, xid, eid, obj in sorted(
                self._accesses.values(),
                key=lambda a: (str(a[3].get("ts")), a[1], a[2])):
            detail = obj["detail"]
            key = detail.get("domain") if obj["kind"] in (
                "detokenize", "tokenize") else detail.get("key")
            out.append(dict({f: obj.get(f) for f in DISCLOSURE_FIELDS[:-1]},
                            key=key))
        return out


# --------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------

def _int(text, what, line):
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        raise InputError("%s line %d: %s is not an integer"
                         % (what, line, text[:40])) from None


def _unhex(text, what, line):
    if text == "":
        return None
    if text.startswith("\\x"):
        text = text[2:]
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise InputError("%s line %d: not a hex string" % (what, line)) from None


def _open_csv(path, columns):
    try:
        f = open(path, "r", encoding="utf-8", newline="")
    except OSError as e:
        raise InputError("cannot open %s: %s" % (path, e.strerror)) from None
    reader = csv.reader(f)
    header = next(reader, None)
    if header is None:
        f.close()
        raise InputError("%s is empty (no CSV header)" % path)
    idx = {}
    for c in columns:
        if c not in header:
            f.close()
            raise InputError("%s: CSV header lacks column %r" % (path, c))
        idx[c] = header.index(c)
    return f, reader, [idx[c] for c in columns], len(header)


def _csv_rows(path, columns):
    f, reader, idx, width = _open_csv(path, columns)
    name = os.path.basename(path)
    with f:
        for row in reader:
            if len(row) != width:
                raise InputError("%s line %d: expected %d fields, found %d"
                                 % (name, reader.line_num, width, len(row)))
            yield reader.line_num, [row[i] for i in idx]


def export_entries(path):
    name = os.path.basename(path)
    for line, (eid, xid, record, entry_hash) in _csv_rows(path, LOG_COLUMNS):
        yield (_int(xid, name, line), _int(eid, name, line), record,
               _unhex(entry_hash, name, line))


def export_blocks(path):
    name = os.path.basename(path)
    for line, (no, lo, hi, n, ph, bh, sealed_at) in _csv_rows(path,
                                                               BLOCK_COLUMNS):
        yield (_int(no, name, line), _int(lo, name, line),
               _int(hi, name, line), _int(n, name, line),
               _unhex(ph, name, line), _unhex(bh, name, line),
               sealed_at or None)


def _last_checkpoint(rows, what):
    """The checkpoint row with the highest block_no (as phi_audit_verify
    reads it), as (block_no, block_hash, entries); None without rows."""
    best = None
    for no, bh, n in rows:
        if no is None or bh is None or n is None or len(bh) != 32 \
                or no < 1 or n < 0:
            raise InputError("%s: malformed checkpoint row" % what)
        if best is None or no > best[0]:
            best = (no, bh, n)
    return best


def export_checkpoint(directory):
    """The checkpoint of an export directory, or None (nothing pruned, or an
    export made before 0.3.0, which has no audit_checkpoint.csv)."""
    path = os.path.join(directory, CHECKPOINT_FILE)
    if not os.path.exists(path):
        return None
    name = os.path.basename(path)
    try:
        return _last_checkpoint(
            ((_int(no, name, line), _unhex(bh, name, line),
              _int(n, name, line))
             for line, (no, bh, n, _) in _csv_rows(path, CHECKPOINT_COLUMNS)),
            name)
    except csv.Error as e:
        raise InputError("malformed CSV: %s" % e) from None


def _export_span(directory):
    """(first block after the checkpoint - 1, last block) of an export."""
    cp = export_checkpoint(directory)
    last = cp[0] if cp else 0
    try:
        for b in export_blocks(os.path.join(directory, BLOCK_FILE)):
            if b[0] is not None:
                last = b[0]
    except csv.Error as e:
        raise InputError("malformed CSV: %s" % e) from None
    return (cp[0] if cp else 0), last


def verify_export(directory, digest=None, on_record=None, keep=()):
    """Verify an export directory; returns a Result (InputError if unusable)."""
    if not os.path.isdir(directory):
        raise InputError("%s is not a directory" % directory)
    log_path = os.path.join(directory, LOG_FILE)
    block_path = os.path.join(directory, BLOCK_FILE)
    # Open both up front so that a missing file is an error even when the
    # other one is empty.
    for p, cols in ((log_path, LOG_COLUMNS), (block_path, BLOCK_COLUMNS)):
        f, _, _, _ = _open_csv(p, cols)
        f.close()
    checkpoint = export_checkpoint(directory)
    try:
        return verify(export_blocks(block_path), export_entries(log_path),
                      digest, check_order=True, on_record=on_record,
                      checkpoint=checkpoint, keep=keep)
    except csv.Error as e:
        raise InputError("malformed CSV: %s" % e) from None
    except UnicodeDecodeError:
        raise InputError("export is not valid UTF-8") from None


def verify_exports(directories, digest=None, on_record=None, keep=()):
    """Verify several exports of one database as one chain: each export on
    its own (from its checkpoint), then their links.  Taken at different
    times, with prunes in between, they are put in order of their
    checkpoints; each must start at or before the block where the one
    before it ends (no gap), at a checkpoint that block of the one before
    has (same hash, same cumulative entries), and where two exports hold
    the same last block it must be the same block (same hash).  A digest is
    checked by the export that holds its block.  Returns one Result: blocks
    and entries of the newest export, unsealed entries of the newest, and
    the blocks numbered in keep that any export holds in kept."""
    spans = [(_export_span(d), d) for d in directories]
    spans.sort(key=lambda s: s[0])
    keep = set(keep)
    for (cp, last), _ in spans:
        keep.update((cp, last))
    d_block = digest[0] if digest is not None else None
    holder = None
    if d_block is not None:
        holder = next((d for (cp, last), d in spans if cp <= d_block <= last),
                      spans[-1][1] if d_block > spans[-1][0][1]
                      else spans[0][1])
    results = []
    for (cp, last), d in spans:
        res = verify_export(d, digest if d == holder else None, on_record,
                            keep)
        if not res.ok:
            res.problem = "export %s: %s" % (d, res.problem)
            return res
        results.append(res)
    out = results[-1]
    for i in range(1, len(spans)):
        (a_cp, a_last), a_dir = spans[i - 1]
        (b_cp, b_last), b_dir = spans[i]
        a, b = results[i - 1], results[i]
        problem = None
        if b_cp > a_last:
            problem = ("blocks %d..%d are in no export (%s ends at block %d, "
                       "%s starts after block %d)"
                       % (a_last + 1, b_cp, a_dir, a_last, b_dir, b_cp))
            bad = a_last + 1
        elif b_cp and a.kept.get(b_cp) != b.kept.get(b_cp):
            problem = ("the checkpoint of %s (block %d) is not block %d of %s"
                       % (b_dir, b_cp, b_cp, a_dir))
            bad = b_cp
        else:
            common = min(a_last, b_last)
            if common > b_cp and a.kept.get(common) != b.kept.get(common):
                problem = ("block %d differs between %s and %s"
                           % (common, a_dir, b_dir))
                bad = common
        if problem is not None:
            out.ok = False
            out.first_bad_block = bad
            out.problem = problem
            return out
    for r in results[:-1]:
        for no, kept in r.kept.items():
            out.kept.setdefault(no, kept)
    if holder is not None and holder != spans[-1][1]:
        out.digest_note = next(r.digest_note for r, (_, d)
                               in zip(results, spans) if d == holder)
    out.notes.append("exports verified as one chain: %s"
                     % ", ".join(d for _, d in spans))
    return out


def _connect(dsn):
    try:
        import psycopg2  # noqa: imported lazily, only for --dsn
    except ImportError:
        raise InputError("--dsn needs the psycopg2 module") from None
    try:
        conn = psycopg2.connect(dsn)
        conn.set_client_encoding("UTF8")
    except psycopg2.Error as e:
        raise InputError("cannot connect: %s" % str(e).strip()) from None
    return psycopg2, conn


def _system_identifier(conn):
    """The cluster's system identifier, or None if it cannot be read."""
    try:
        with conn.cursor() as c:
            c.execute("SELECT system_identifier::text FROM pg_control_system()")
            row = c.fetchone()
        conn.rollback()
        return row[0] if row else None
    except Exception:
        conn.rollback()
        return None


def _db_entries(conn):
    c = conn.cursor(name="phi_guard_verify_entries")
    c.itersize = ITERSIZE
    # ORDER BY must name the table's columns: a bare "xid" would mean the
    # text output column and sort 10000 before 9999.
    c.execute("SELECT l.xid::text, l.id, l.record, l.entry_hash "
              "FROM phi_guard.audit_log AS l ORDER BY l.xid, l.id")
    for xid, eid, record, entry_hash in c:
        yield (int(xid) if xid is not None else None, eid, record,
               bytes(entry_hash) if entry_hash is not None else None)
    c.close()


def _db_blocks(conn):
    c = conn.cursor(name="phi_guard_verify_blocks")
    c.itersize = ITERSIZE
    c.execute("SELECT b.block_no, b.xid_lo::text, b.xid_hi::text, "
              "b.entries, b.prev_hash, b.block_hash, b.sealed_at::text "
              "FROM phi_guard.audit_block AS b ORDER BY b.block_no")
    for no, lo, hi, n, ph, bh, sealed_at in c:
        yield (no, int(lo) if lo is not None else None,
               int(hi) if hi is not None else None, n,
               bytes(ph) if ph is not None else None,
               bytes(bh) if bh is not None else None, sealed_at)
    c.close()


def _db_checkpoint(conn):
    """The database's checkpoint (None: nothing pruned, or before 0.3.0)."""
    with conn.cursor() as c:
        c.execute("SELECT pg_catalog.to_regclass('phi_guard.audit_checkpoint') "
                  "IS NOT NULL")
        if not c.fetchone()[0]:
            return None
        c.execute("SELECT block_no, block_hash, entries "
                  "FROM phi_guard.audit_checkpoint")
        rows = [(no, bytes(bh) if bh is not None else None, n)
                for no, bh, n in c.fetchall()]
    return _last_checkpoint(rows, "audit_checkpoint")


def verify_dsn(dsn, digest=None, write_export=None, system_identifier=None,
               on_record=None, keep=()):
    """Verify a live database (or export it, then verify the export); the
    blocks numbered in keep are left in Result.kept (see verify)."""
    psycopg2, conn = _connect(dsn)
    notes = []
    try:
        sysid = _system_identifier(conn)
        if system_identifier is not None and sysid is not None \
                and str(system_identifier) != sysid:
            notes.append("note: the digest's system_identifier %s is not this "
                         "cluster's (%s); fine after a restore to a new "
                         "cluster, otherwise suspicious"
                         % (system_identifier, sysid))
        conn.set_session(isolation_level="REPEATABLE READ", readonly=True)
        if write_export is not None:
            _write_export(conn, write_export)
            conn.rollback()
            conn.close()
            conn = None
            res = verify_export(write_export, digest, on_record, keep)
        else:
            checkpoint = _db_checkpoint(conn)
            res = verify(_db_blocks(conn), _db_entries(conn), digest,
                         check_order=True, on_record=on_record,
                         checkpoint=checkpoint, keep=keep)
            conn.rollback()
    except psycopg2.Error as e:
        raise InputError("database error: %s" % str(e).strip()) from None
    finally:
        if conn is not None:
            conn.close()
    res.notes.extend(notes)
    return res


def _write_export(conn, directory):
    try:
        os.makedirs(directory, exist_ok=True)
        files = [(LOG_FILE, LOG_QUERY), (BLOCK_FILE, BLOCK_QUERY)]
        with conn.cursor() as c:
            c.execute("SELECT pg_catalog.to_regclass("
                      "'phi_guard.audit_checkpoint') IS NOT NULL")
            if c.fetchone()[0]:
                files.append((CHECKPOINT_FILE, CHECKPOINT_QUERY))
        for name, query in files:
            final = os.path.join(directory, name)
            tmp = final + ".part"
            with conn.cursor() as c, open(tmp, "wb") as f:
                c.copy_expert("COPY (%s) TO STDOUT CSV HEADER" % query, f)
            os.replace(tmp, final)
    except OSError as e:
        raise InputError("cannot write export to %s: %s"
                         % (directory, e.strerror or e)) from None


def load_digest(path):
    """Parse a phi_audit_digest() JSON file -> (block, hash, entries, sysid)."""
    try:
        with open(path, "r", encoding="utf-8") as f:
            d = json.load(f)
    except OSError as e:
        raise InputError("cannot read digest %s: %s" % (path, e.strerror)) \
            from None
    except ValueError:
        raise InputError("digest %s is not valid JSON" % path) from None
    return parse_digest(d, path)


def parse_digest(d, path):
    """A phi_audit_digest() object -> (block, hash, entries, sysid); path
    names it in errors."""
    if not isinstance(d, dict):
        raise InputError("digest %s is not a JSON object" % path)

    def as_int(key):
        v = d.get(key)
        if isinstance(v, bool):
            v = None
        if isinstance(v, str) and v.strip().isdigit():
            v = int(v)
        if not isinstance(v, int) or v < 0:
            raise InputError('digest %s: "%s" is not a non-negative integer'
                             % (path, key))
        return v

    block = d.get("block")
    if block is None and d.get("entries") in (0, "0"):
        return (0, None, 0, d.get("system_identifier"))
    block = as_int("block")
    entries = as_int("entries")
    bh = d.get("block_hash")
    if block == 0:
        return (0, None, entries, d.get("system_identifier"))
    if not isinstance(bh, str):
        raise InputError('digest %s: "block_hash" is not a hex string' % path)
    h = bh[2:] if bh.startswith("\\x") else bh
    try:
        hb = bytes.fromhex(h)
    except ValueError:
        raise InputError('digest %s: "block_hash" is not a hex string'
                         % path) from None
    if len(hb) != 32:
        raise InputError('digest %s: "block_hash" is not 32 bytes' % path)
    return (block, hb, entries, d.get("system_identifier"))


def load_anchors(path):
    """Read an anchors file: one phi_audit_digest() JSON object per line, as
    phi_guard.audit_anchor_command received them (blank lines skipped).
    Returns [(line number, (block, hash, entries, sysid))]; InputError for
    an unreadable file, a line that is not such an object, or no line."""
    anchors = []
    try:
        with open(path, "r", encoding="utf-8") as f:
            for line, text in enumerate(f, 1):
                if not text.strip():
                    continue
                where = "%s line %d" % (path, line)
                try:
                    d = json.loads(text)
                except ValueError:
                    raise InputError("digest %s is not valid JSON"
                                     % where) from None
                anchors.append((line, parse_digest(d, where)))
    except OSError as e:
        raise InputError("cannot read anchors %s: %s" % (path, e.strerror)) \
            from None
    except UnicodeDecodeError:
        raise InputError("anchors %s is not valid UTF-8" % path) from None
    if not anchors:
        raise InputError("anchors %s holds no digest" % path)
    return anchors


def anchor_blocks(anchors):
    """The block numbers the anchors name (for verify's keep)."""
    return {a[1][0] for a in anchors}


def check_anchors(res, anchors):
    """Check a verified chain (res, from verify/verify_export(s) with keep =
    anchor_blocks(anchors)) against every anchored digest.  An anchor must
    name a block the chain still reaches with the same block_hash and
    cumulative entries; a block after the chain's last one is a mismatch
    (blocks were removed).  An anchor of a block pruned before the
    checkpoint cannot be checked here (the export that holds it can) and is
    counted as skipped.  Sets res.anchors = {"checked", "skipped",
    "mismatches": [{"line", "block", "problem"}]}; any mismatch fails res
    (first_bad_block: the lowest mismatched block).  A chain that did not
    verify is left as it is: its own problem comes first."""
    out = {"checked": 0, "skipped": 0, "mismatches": []}
    res.anchors = out
    if not res.ok:
        return
    cp_no = res.checkpoint[0] if res.checkpoint else 0
    for line, (block, bh, entries, _) in anchors:
        kept = res.kept.get(block)
        problem = None
        if block == 0:
            if entries != 0:
                problem = "names block 0 but %d entries" % entries
        elif block > res.blocks:
            problem = ("names block %d, but the chain ends at block %d"
                       % (block, res.blocks))
        elif kept is None and block < cp_no:
            out["skipped"] += 1
            continue
        elif kept is None:
            problem = "block %d was not read" % block
        elif kept[0] != bh:
            problem = ("block %d: block_hash %s differs from the anchored %s"
                       % (block, kept[0].hex(), bh.hex()))
        elif kept[1] != entries:
            problem = ("blocks 1..%d hold %d entries, the anchor says %d"
                       % (block, kept[1], entries))
        if problem is None:
            out["checked"] += 1
        else:
            out["mismatches"].append({"line": line, "block": block,
                                      "problem": problem})
    bad = out["mismatches"]
    if bad:
        first = min(bad, key=lambda m: (m["block"], m["line"]))
        res.ok = False
        res.first_bad_block = first["block"]
        res.problem = "%d anchor(s) do not match the chain; anchor line %d " \
            "%s" % (len(bad), first["line"], first["problem"])


# --------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------

def summary(res, source):
    lines = ["phi_guard audit chain (%s): %s"
             % (source, "OK" if res.ok else "FAILED")]
    if not res.ok:
        if res.first_bad_block is not None:
            lines.append("  first bad block:  %d" % res.first_bad_block)
        lines.append("  problem:          %s" % res.problem)
    lines.append("  %-18s%d" % ("blocks verified:" if res.ok
                                 else "blocks read:", res.blocks))
    lines.append("  sealed entries:   %d" % res.entries)
    if res.checkpoint is not None:
        lines.append("  checkpoint:       block %d (%d entries), pruned; "
                     "counts are from block 1" % (res.checkpoint[0],
                                                  res.checkpoint[2]))
    if res.ok:
        if res.last_block is not None:
            no, hi, sealed_at = res.last_block
            lines.append("  last block:       %d (xid_hi %d%s)"
                         % (no, hi, ", sealed " + sealed_at
                            if sealed_at else ""))
        lines.append("  unsealed entries: %d (not yet in a block; not an "
                     "error)" % res.unsealed)
        if res.digest_note:
            lines.append("  digest:           " + res.digest_note)
    if res.anchors is not None:
        a = res.anchors
        lines.append("  anchors:          %d checked, %d mismatched, %d of "
                     "pruned blocks skipped" % (a["checked"],
                                                len(a["mismatches"]),
                                                a["skipped"]))
        for m in a["mismatches"]:
            lines.append("    line %d: %s" % (m["line"], m["problem"]))
    for n in res.notes:
        lines.append("  " + n)
    return "\n".join(lines)


def disclosures_text(ref, rows):
    """The --disclosures listing for humans (rows None: chain failed)."""
    if rows is None:
        return ("disclosures of %s: not listed, the chain did not verify"
                % ref)
    lines = ["disclosures of %s: %d" % (ref, len(rows))]
    for r in rows:
        lines.append("  " + "  ".join(
            "%s=%s" % (f, "-" if r[f] is None else r[f])
            for f in DISCLOSURE_FIELDS))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(
        prog="verify_audit.py",
        description="Independently verify the phi_guard audit chain "
                    "(docs/format.md, section \"Audit chain\").",
        epilog="Exit status: 0 verified, 1 verification failed, "
               "2 usage or I/O error.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dsn", help="libpq connection string of the database")
    src.add_argument("--export", metavar="DIR", action="append",
                     help="directory with audit_log.csv and audit_block.csv "
                          "(and audit_checkpoint.csv after a prune); repeat "
                          "it to verify exports taken before and after "
                          "prunes as one chain")
    p.add_argument("--write-export", metavar="DIR",
                   help="with --dsn: write an export to DIR (one snapshot), "
                        "then verify that export")
    p.add_argument("--digest", metavar="FILE",
                   help="JSON from phi_audit_digest() kept outside the "
                        "database")
    p.add_argument("--anchors", metavar="FILE",
                   help="digests phi_guard.audit_anchor_command received, "
                        "one JSON object per line: the chain must match "
                        "every one")
    p.add_argument("--disclosures", metavar="REF",
                   help="also list the accesses whose row references name "
                        "REF (e.g. patients.ssn:42), oldest first")
    p.add_argument("--json", action="store_true",
                   help="print one JSON object on stdout (summary to stderr)")
    args = p.parse_args(argv)
    if args.write_export and not args.dsn:
        p.error("--write-export needs --dsn")

    try:
        digest = sysid = None
        if args.digest:
            block, bh, entries, sysid = load_digest(args.digest)
            digest = (block, bh, entries)
        anchors = load_anchors(args.anchors) if args.anchors else None
        keep = anchor_blocks(anchors) if anchors else ()
        found = Disclosures(args.disclosures) if args.disclosures else None
        on_record = found.add if found is not None else None
        if args.dsn:
            res = verify_dsn(args.dsn, digest, args.write_export, sysid,
                             on_record, keep)
            source = ("database, exported to %s" % args.write_export
                      if args.write_export else "database")
        else:
            if len(args.export) == 1:
                res = verify_export(args.export[0], digest, on_record, keep)
            else:
                res = verify_exports(args.export, digest, on_record, keep)
            source = "export%s %s" % ("s" if len(args.export) > 1 else "",
                                      ", ".join(args.export))
    except InputError as e:
        msg = str(e)
        print("verify_audit.py: error: %s" % msg, file=sys.stderr)
        if args.json:
            print(json.dumps({"ok": False, "blocks": 0, "entries": 0,
                              "unsealed": 0, "first_bad_block": None,
                              "problem": "error: " + msg}))
        return EXIT_ERROR

    if anchors is not None:
        check_anchors(res, anchors)
    text = summary(res, source)
    out = res.as_json()
    if found is not None:
        # an accounting read from a chain that does not verify is not one
        rows = found.rows() if res.ok else None
        out["disclosures"] = rows
        text += "\n" + disclosures_text(found.ref, rows)
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(out))
    else:
        print(text)
    return EXIT_OK if res.ok else EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
