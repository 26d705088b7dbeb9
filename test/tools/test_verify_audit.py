"""Tests for tools/verify_audit.py, the independent audit-chain verifier.

Run from the repository root:

    /usr/bin/python3 -m unittest discover -s test/tools -v

The exports are synthetic: a small generator below follows SPEC.md section 6
(compact JSON records, entry_hash = SHA-256(record), blocks chained with
block_hash = SHA-256(prev_hash || u64be(block_no) || u64be(entries) ||
entry hashes in (xid, id) order)).  Nothing here needs a database, except
DsnModeTest, which runs only when PHI_GUARD_VERIFY_SCRATCH_DSN names a
scratch database WITHOUT the phi_guard extension (it creates and drops a
schema phi_guard holding plain copies of the two tables).
"""

import csv
import hashlib
import importlib.util
import io
import json
import os
import struct
import subprocess
import tempfile
import unittest
from contextlib import redirect_stderr, redirect_stdout

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TOOL = os.path.join(REPO, "tools", "verify_audit.py")
PYTHON = "/usr/bin/python3"

_spec = importlib.util.spec_from_file_location("verify_audit", TOOL)
va = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(va)

SECRET = "PHI-SECRET-MARKER"
ZERO = bytes(32)


# --------------------------------------------------------------------------
# A tiny generator that follows SPEC section 6.
# --------------------------------------------------------------------------

def make_record(xid, eid, **override):
    obj = {
        "v": 1,
        "ts": "2024-06-01T12:00:%02d.%06dZ" % (eid % 60, xid % 1000000),
        "kind": "UPDATE",
        "table": "public.patient",
        "row_key": "{\"id\": %d}" % eid,          # quotes exercise CSV quoting
        "columns": ["name", "dob"],
        "db_user": "app",
        "role": "clinician",
        "app_user": "Zoë, MD",                   # non-ASCII and a comma
        "tenant": "north",
        "purpose": "treatment",
        "client_addr": "10.0.0.7",
        "application_name": "ehr\nweb",          # newline inside a CSV field
        "detail": {"note": "%s-%d" % (SECRET, eid)},
    }
    obj.update(override)
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def sha(b):
    return hashlib.sha256(b).digest()


def entry(xid, eid, record=None):
    if record is None:
        record = make_record(xid, eid)
    return {"id": eid, "xid": xid, "record": record,
            "entry_hash": sha(record.encode("utf-8"))}


def block_hash(prev_hash, block_no, entries, hashes):
    h = hashlib.sha256()
    h.update(prev_hash)
    h.update(struct.pack(">QQ", block_no, entries))
    for eh in hashes:
        h.update(eh)
    return h.digest()


class Chain:
    """Entries plus blocks; seal() (re)computes blocks from xid bounds."""

    # xid -> ids.  Block 1 crosses a decimal-digit boundary (998 -> 1001) so
    # that sorting xids as text would be caught.  xid 1005 took ids 7, 8 before xid 1004 took 9, 10, so
    # (xid, id) order differs from id order inside block 2.
    LAYOUT = [
        (998, [1, 2]), (1001, [3]),                        # block 1
        (1002, [4, 5, 6]), (1004, [9, 10]), (1005, [7, 8]),  # block 2
        (1006, [11]), (1008, [12, 13, 14]),                # block 3
        (1009, [15]), (1011, [16, 17]),                    # block 4
        (1013, [18]),                                      # block 5
        (1014, [19, 20]), (1016, [21]),                    # unsealed
    ]
    BOUNDS = [(998, 1002), (1002, 1006), (1006, 1009), (1009, 1012),
              (1012, 1014)]

    def __init__(self, layout=None, bounds=None):
        if layout is None:
            layout = self.LAYOUT
        self.entries = [entry(x, i) for x, ids in layout for i in ids]
        self.blocks = []
        self.checkpoint = None      # after prune(): (block_no, hash, entries)
        self.seal(bounds if bounds is not None else self.BOUNDS)

    def sorted_entries(self):
        return sorted(self.entries, key=lambda e: (e["xid"], e["id"]))

    def seal(self, bounds, start=1, order=None):
        """(Re)build blocks start.. from bounds[start-1:] (honest sealing)."""
        order = order or (lambda e: (e["xid"], e["id"]))
        self.blocks = self.blocks[:start - 1]
        prev = self.blocks[-1]["block_hash"] if self.blocks else ZERO
        for no, (lo, hi) in enumerate(bounds, 1):
            if no < start:
                continue
            members = sorted((e for e in self.entries if lo <= e["xid"] < hi),
                             key=order)
            bh = block_hash(prev, no, len(members),
                            [e["entry_hash"] for e in members])
            self.blocks.append({
                "block_no": no, "xid_lo": lo, "xid_hi": hi,
                "entries": len(members), "prev_hash": prev, "block_hash": bh,
                "sealed_at": "2024-06-01 12:%02d:00.123456+00" % no})
            prev = bh

    def block(self, no):
        return next(b for b in self.blocks if b["block_no"] == no)

    def find(self, xid, eid):
        return next(e for e in self.entries
                    if e["xid"] == xid and e["id"] == eid)

    def rehash_block(self, no):
        """What a tamperer does to make one block's own hash consistent."""
        b = self.block(no)
        members = [e for e in self.sorted_entries()
                   if b["xid_lo"] <= e["xid"] < b["xid_hi"]]
        b["block_hash"] = block_hash(b["prev_hash"], no, b["entries"],
                                     [e["entry_hash"] for e in members])

    def digest(self, no):
        b = self.block(no)
        return {"block": no, "block_hash": b["block_hash"].hex(),
                "entries": sum(x["entries"] for x in self.blocks
                               if x["block_no"] <= no),
                "system_identifier": "7380000000000000001",
                "sealed_at": "2024-06-01T12:%02d:00.123456+00:00" % no}

    def prune(self, upto, xid, eid=1, forge_entries=0):
        """What phi_audit_prune does (SPEC section 8): write an audit_prune
        entry (xid, eid) naming block upto, drop blocks 1..upto and their
        entries and keep the checkpoint.  forge_entries: a tamperer's
        consistent lie about the entries up to upto (checkpoint and entry
        agree, the chain before does not)."""
        b = self.block(upto)
        total = sum(x["entries"] for x in self.blocks
                    if x["block_no"] <= upto) + forge_entries
        if self.checkpoint is not None:
            total += self.checkpoint[2]
        detail = {"block": upto, "block_hash": b["block_hash"].hex(),
                  "entries": total, "from_block": self.blocks[0]["block_no"],
                  "blocks_removed": upto - self.blocks[0]["block_no"] + 1,
                  "entries_removed": 0, "min_retention": "6 years"}
        self.entries.append(entry(xid, eid, make_record(
            xid, eid, kind="audit_prune", table="phi_guard.audit_log",
            row_key=None, columns=None, detail=detail)))
        self.entries = [e for e in self.entries if e["xid"] >= b["xid_hi"]]
        self.blocks = [x for x in self.blocks if x["block_no"] > upto]
        self.checkpoint = (upto, b["block_hash"], total)

    def write(self, directory, sort=True):
        """Write audit_log.csv / audit_block.csv (and audit_checkpoint.csv
        after a prune) like psql's \\copy."""
        rows = self.sorted_entries() if sort else self.entries
        with open(os.path.join(directory, "audit_log.csv"), "w",
                  encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["id", "xid", "record", "entry_hash"])
            for e in rows:
                w.writerow([e["id"], e["xid"], e["record"],
                            e["entry_hash"].hex()])
        with open(os.path.join(directory, "audit_block.csv"), "w",
                  encoding="utf-8", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["block_no", "xid_lo", "xid_hi", "entries",
                        "prev_hash", "block_hash", "sealed_at"])
            for b in sorted(self.blocks, key=lambda b: b["block_no"]):
                w.writerow([b["block_no"], b["xid_lo"], b["xid_hi"],
                            b["entries"], b["prev_hash"].hex(),
                            b["block_hash"].hex(), b["sealed_at"]])
        if self.checkpoint is not None:
            with open(os.path.join(directory, "audit_checkpoint.csv"), "w",
                      encoding="utf-8", newline="") as f:
                w = csv.writer(f, lineterminator="\n")
                w.writerow(["block_no", "block_hash", "entries", "pruned_at"])
                no, bh, n = self.checkpoint
                w.writerow([no, bh.hex(), n, "2030-06-01 00:00:00+00"])


class Base(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="verify_audit_")
        self.dir = self._tmp.name
        self.chain = Chain()

    def tearDown(self):
        self._tmp.cleanup()

    def write_digest(self, d):
        path = os.path.join(self.dir, "digest.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(d, f)
        return path

    def verify(self, digest=None):
        """Write self.chain and verify it in-process."""
        self.chain.write(self.dir)
        dg = None
        if digest is not None:
            block, bh, entries, _ = va.load_digest(self.write_digest(digest))
            dg = (block, bh, entries)
        return va.verify_export(self.dir, dg)

    def assertBad(self, res, block, *words):
        self.assertFalse(res.ok, "tamper not detected")
        self.assertEqual(res.first_bad_block, block, res.problem)
        for w in words:
            self.assertIn(w, res.problem)
        self.assertNotIn(SECRET, res.problem)

    def run_tool(self, *args):
        p = subprocess.run([PYTHON, TOOL] + list(args), capture_output=True,
                           text=True, timeout=120)
        return p.returncode, p.stdout, p.stderr


# --------------------------------------------------------------------------

class GoodChainTest(Base):
    def test_generator_shape(self):
        # Guard the fixture itself: block 2 spans several xids whose ids are
        # not in xid order, and some entries are unsealed.
        b2 = [e for e in self.chain.sorted_entries()
              if 1002 <= e["xid"] < 1006]
        self.assertEqual(len({e["xid"] for e in b2}), 3)
        self.assertNotEqual([e["id"] for e in b2], sorted(e["id"] for e in b2))
        self.assertEqual(len(self.chain.blocks), 5)

    def test_good_chain_passes(self):
        res = self.verify()
        self.assertTrue(res.ok, res.problem)
        self.assertEqual((res.blocks, res.entries, res.unsealed), (5, 18, 3))
        self.assertIsNone(res.first_bad_block)
        self.assertIsNone(res.problem)

    def test_good_chain_passes_every_digest(self):
        for no in range(1, 6):
            with self.subTest(block=no):
                res = self.verify(self.chain.digest(no))
                self.assertTrue(res.ok, res.problem)
                self.assertIn("block %d" % no, res.digest_note)

    def test_digest_with_backslash_x_hash(self):
        d = self.chain.digest(3)
        d["block_hash"] = "\\x" + d["block_hash"].upper()
        self.assertTrue(self.verify(d).ok)

    def test_empty_log_passes(self):
        self.chain = Chain(layout=[], bounds=[])
        res = self.verify()
        self.assertTrue(res.ok, res.problem)
        self.assertEqual((res.blocks, res.entries, res.unsealed), (0, 0, 0))

    def test_nothing_sealed_yet(self):
        self.chain = Chain(bounds=[])
        res = self.verify()
        self.assertTrue(res.ok, res.problem)
        self.assertEqual((res.blocks, res.entries, res.unsealed), (0, 0, 21))

    def test_empty_block_passes(self):
        # SPEC section 6 does not say whether a block may hold no entries;
        # the hash is well defined for n = 0, so an honestly sealed empty
        # block (no xid in [1012, 1013)) is accepted.
        self.chain.seal(Chain.BOUNDS[:4] + [(1012, 1013), (1013, 1014)])
        res = self.verify()
        self.assertTrue(res.ok, res.problem)
        self.assertEqual((res.blocks, res.entries, res.unsealed), (6, 18, 3))

    def test_long_record_over_csv_default_limit(self):
        e = self.chain.find(1008, 13)
        e["record"] = make_record(1008, 13, detail={"n": "x" * 300000})
        e["entry_hash"] = sha(e["record"].encode())
        self.chain.seal(Chain.BOUNDS)
        self.assertTrue(self.verify().ok)

    def test_hash_uses_xid_id_order_not_id_order(self):
        # A sealer that ordered block 2 by id alone produces a different
        # block_hash, which the verifier must reject.
        self.chain.seal(Chain.BOUNDS, order=lambda e: e["id"])
        self.assertBad(self.verify(), 2, "block_hash")


class TamperTest(Base):
    def test_record_edited(self):
        e = self.chain.find(1008, 13)
        e["record"] = make_record(1008, 13, purpose="billing")
        self.assertBad(self.verify(), 3, "xid=1008 id=13", "entry_hash")

    def test_record_and_entry_hash_edited(self):
        e = self.chain.find(1008, 13)
        e["record"] = make_record(1008, 13, purpose="billing")
        e["entry_hash"] = sha(e["record"].encode())
        self.assertBad(self.verify(), 3, "block_hash")

    def test_entry_deleted(self):
        self.chain.entries.remove(self.chain.find(1004, 9))
        self.assertBad(self.verify(), 2, "entries")

    def test_first_transaction_deleted(self):
        for i in (1, 2):
            self.chain.entries.remove(self.chain.find(998, i))
        self.assertBad(self.verify(), 1, "xid_lo")

    def test_entry_inserted_into_sealed_range(self):
        self.chain.entries.append(entry(1010, 99))
        self.assertBad(self.verify(), 4, "entries")

    def test_entry_inserted_with_duplicate_key(self):
        self.chain.entries.append(entry(1006, 11, make_record(1006, 11,
                                                              kind="X")))
        self.assertBad(self.verify(), 3, "duplicate")

    def test_entry_outside_every_block(self):
        self.chain.entries.append(entry(997, 50))
        self.assertBad(self.verify(), 1, "outside every block",
                       "xid=997 id=50")

    def test_block_deleted_in_middle(self):
        self.chain.blocks = [b for b in self.chain.blocks
                             if b["block_no"] != 3]
        self.assertBad(self.verify(), 3, "missing")

    def test_block_renumbered_duplicate(self):
        self.chain.block(4)["block_no"] = 3
        self.assertBad(self.verify(), 3)

    def test_block_entries_count_changed(self):
        self.chain.block(4)["entries"] += 1
        self.assertBad(self.verify(), 4, "entries")

    def test_block_entries_count_changed_and_rehashed(self):
        self.chain.block(4)["entries"] -= 1
        self.chain.rehash_block(4)
        self.assertBad(self.verify(), 4, "entries")

    def test_prev_hash_broken(self):
        self.chain.block(3)["prev_hash"] = sha(b"forged")
        self.assertBad(self.verify(), 3, "prev_hash")

    def test_prev_hash_broken_and_rehashed(self):
        self.chain.block(3)["prev_hash"] = sha(b"forged")
        self.chain.rehash_block(3)
        self.assertBad(self.verify(), 3, "prev_hash")

    def test_block1_prev_hash_not_zero(self):
        self.chain.block(1)["prev_hash"] = b"\x01" * 32
        self.chain.rehash_block(1)
        self.assertBad(self.verify(), 1, "zero")

    def test_xid_gap_between_blocks(self):
        self.chain.block(3)["xid_lo"] = 1007
        self.assertBad(self.verify(), 3, "xid_lo")

    def test_xid_overlap_between_blocks(self):
        self.chain.block(3)["xid_lo"] = 1005
        self.assertBad(self.verify(), 3, "xid_lo")

    def test_xid_hi_shrunk(self):
        # Moving block 2's upper bound down changes its membership and
        # breaks the link to block 3.
        self.chain.block(2)["xid_hi"] = 1005
        self.assertBad(self.verify(), 2, "entries")

    def test_xid_lo_not_below_xid_hi(self):
        b = self.chain.block(5)
        b["xid_lo"], b["xid_hi"] = 1012, 1012
        self.assertBad(self.verify(), 5, "not below")

    def test_last_block_removed(self):
        full = self.chain.digest(5)
        self.chain.blocks.pop()
        res = self.verify()
        self.assertTrue(res.ok, res.problem)       # undetectable without digest
        self.assertEqual((res.blocks, res.entries, res.unsealed), (4, 17, 4))
        self.assertBad(self.verify(full), 5, "ends at block 4")

    def test_digest_with_different_hash(self):
        d = self.chain.digest(4)
        d["block_hash"] = sha(b"other").hex()
        self.assertBad(self.verify(d), 4, "digest")

    def test_digest_with_different_entries(self):
        d = self.chain.digest(4)
        d["entries"] += 1
        self.assertBad(self.verify(d), 4, "digest")

    def test_full_reseal_caught_only_by_digest(self):
        d = self.chain.digest(5)
        self.chain.entries.remove(self.chain.find(1004, 9))
        self.chain.seal(Chain.BOUNDS, start=2)     # superuser re-seals 2..5
        self.assertTrue(self.verify().ok)
        self.assertBad(self.verify(d), 5, "digest")

    def test_earlier_problem_wins_over_digest(self):
        d = self.chain.digest(5)
        self.chain.block(2)["entries"] += 1
        self.assertBad(self.verify(d), 2)

    def test_record_not_json(self):
        e = self.chain.find(1002, 5)
        e["record"] = "not json " + SECRET
        e["entry_hash"] = sha(e["record"].encode())
        self.chain.seal(Chain.BOUNDS)
        self.assertBad(self.verify(), 2, "not valid JSON", "xid=1002 id=5")

    def test_record_not_object(self):
        e = self.chain.find(1002, 5)
        e["record"] = "[1]"
        e["entry_hash"] = sha(e["record"].encode())
        self.chain.seal(Chain.BOUNDS)
        self.assertBad(self.verify(), 2, "not a JSON object")

    def test_record_missing_key(self):
        e = self.chain.find(1009, 15)
        obj = json.loads(e["record"])
        del obj["purpose"]
        e["record"] = json.dumps(obj, separators=(",", ":"))
        e["entry_hash"] = sha(e["record"].encode())
        self.chain.seal(Chain.BOUNDS)
        self.assertBad(self.verify(), 4, "purpose")

    def test_record_wrong_version(self):
        for v in (3, 0, "1", "2", True, 1.5):
            with self.subTest(v=v):
                self.chain = Chain()
                e = self.chain.find(1009, 15)
                e["record"] = make_record(1009, 15, v=v)
                e["entry_hash"] = sha(e["record"].encode())
                self.chain.seal(Chain.BOUNDS)
                self.assertBad(self.verify(), 4, '"v"')

    def test_unsealed_entry_tampered(self):
        e = self.chain.find(1016, 21)
        e["record"] = make_record(1016, 21, kind="DELETE")
        res = self.verify()
        self.assertBad(res, None, "unsealed", "xid=1016 id=21")


class CompactEntryTest(Base):
    """Compact row entries (SPEC §6): v 2, the row's own keys and stmt, the
    id of an earlier entry of kind "statement" in the same transaction."""

    def compact(self, xid, eid, stmt, **override):
        obj = {"v": 2, "kind": "insert", "table": "public.patient",
               "row_key": {"id": str(eid)}, "columns": None, "stmt": stmt}
        obj.update(override)
        e = self.chain.find(xid, eid)
        e["record"] = json.dumps(obj, separators=(",", ":"))
        e["entry_hash"] = sha(e["record"].encode())

    def statement(self, xid, eid):
        e = self.chain.find(xid, eid)
        e["record"] = make_record(xid, eid, kind="statement", row_key=None,
                                  columns=None,
                                  detail={"op": "insert", "rows": 2})
        e["entry_hash"] = sha(e["record"].encode())

    def test_statement_and_compact_rows_pass(self):
        # xid 1008 holds ids 12, 13, 14: the statement, then two rows
        self.statement(1008, 12)
        self.compact(1008, 13, 12)
        self.compact(1008, 14, 12, kind="update", columns=["name"])
        self.chain.seal(Chain.BOUNDS)
        res = self.verify()
        self.assertTrue(res.ok, res.problem)
        self.assertEqual((res.blocks, res.entries, res.unsealed), (5, 18, 3))

    def test_stmt_must_name_a_statement_entry_of_the_transaction(self):
        cases = (
            ("no such id", (1008, 14, 99)),
            ("not a statement", (1008, 14, 13)),
            ("later id", (1008, 13, 14)),
            ("another transaction", (1009, 15, 12)),
            ("not an integer", (1008, 14, "12")),
        )
        for name, (xid, eid, stmt) in cases:
            with self.subTest(name):
                self.chain = Chain()
                self.statement(1008, 12)
                if name == "later id":
                    self.statement(1008, 14)
                    self.compact(1008, 13, 14)
                else:
                    self.compact(1008, 13, 12)
                    self.compact(xid, eid, stmt)
                self.chain.seal(Chain.BOUNDS)
                block = 4 if xid == 1009 else 3
                self.assertBad(self.verify(), block, "stmt",
                               "xid=%d id=%d" % (xid, 13 if name == "later id" else eid))

    def test_compact_entry_missing_key(self):
        for key in ("kind", "table", "row_key", "columns", "stmt"):
            with self.subTest(key=key):
                self.chain = Chain()
                self.statement(1008, 12)
                self.compact(1008, 13, 12)
                e = self.chain.find(1008, 13)
                obj = json.loads(e["record"])
                del obj[key]
                e["record"] = json.dumps(obj, separators=(",", ":"))
                e["entry_hash"] = sha(e["record"].encode())
                self.chain.seal(Chain.BOUNDS)
                self.assertBad(self.verify(), 3, key, "xid=1008 id=13")


class AccessEntryTest(Base):
    """Access entries of 0.3 (docs/format.md, "Row references"): the
    request_id key, the phase and rows of detail, --disclosures."""

    def access(self, xid, eid, kind="decrypt", phase="final", rows=(),
               access_id=None, **override):
        e = self.chain.find(xid, eid)
        detail = {"key": "patients", "key_id": 1, "phase": phase,
                  "access_id": access_id or "a-%d-%d" % (xid, eid),
                  "rows": rows if isinstance(rows, str) else list(rows),
                  "rows_omitted": 0,
                  "count": 0 if phase == "intent" else len(rows),
                  "query_id": None, "pid": 4242}
        if kind in ("tokenize", "detokenize"):
            detail["domain"] = "ssn_tok"
        e["record"] = make_record(xid, eid, kind=kind, table=None,
                                  row_key=None, columns=None, detail=detail,
                                  **override)
        e["entry_hash"] = sha(e["record"].encode())

    def test_request_id_string_or_null_accepted(self):
        self.access(1002, 4, rows=["patients.ssn:1"], request_id="req-1")
        self.access(1002, 5, rows=["patients.ssn:1"], request_id=None)
        self.chain.seal(Chain.BOUNDS)
        self.assertTrue(self.verify().ok)

    def test_request_id_of_another_type_rejected(self):
        self.access(1002, 4, rows=["x:1"], request_id=7)
        self.chain.seal(Chain.BOUNDS)
        self.assertBad(self.verify(), 2, "request_id", "xid=1002 id=4")

    def test_bad_phase_or_rows_rejected(self):
        for phase, rows in (("begun", ["x:1"]), ("final", "x:1"),
                            ("intent", [1])):
            with self.subTest(phase=phase, rows=rows):
                self.chain = Chain()
                self.access(1006, 11, phase=phase, rows=rows)
                self.chain.seal(Chain.BOUNDS)
                self.assertBad(self.verify(), 3, "phase or rows")

    def disclosures(self, ref):
        found = va.Disclosures(ref)
        self.chain.seal(Chain.BOUNDS)
        self.chain.write(self.dir)
        res = va.verify_export(self.dir, None, found.add)
        self.assertTrue(res.ok, res.problem)
        return found.rows()

    def test_disclosures_final_wins_over_intent(self):
        # one access: its intent (xid 1002) and final (xid 1016, unsealed)
        self.access(1002, 4, phase="intent", rows=["patients.ssn:1"],
                    access_id="s1")
        self.access(1016, 21, rows=["patients.ssn:2", "patients.ssn:1"],
                    access_id="s1", request_id="req-9")
        # another access whose final was lost: its intent stands
        self.access(1008, 12, kind="detokenize", phase="intent",
                    rows=["patients.ssn:1"], access_id="s2")
        # a row whose reference merely ends like it does not match
        self.access(1009, 15, rows=["patients.ssn:11", "xpatients.ssn:1"])
        rows = self.disclosures("patients.ssn:1")
        # oldest first: the records' ts are 12:00:12 and 12:00:21
        self.assertEqual([(r["kind"], r["request_id"], r["key"]) for r in rows],
                         [("detokenize", None, "ssn_tok"),
                          ("decrypt", "req-9", "patients")])
        self.assertEqual(self.disclosures("patients.ssn:11")[0]["key"],
                         "patients")
        self.assertEqual(self.disclosures("patients.ssn:3"), [])

    def test_disclosures_long_reference_as_sha256(self):
        long_ref = "patients.notes:" + "é" * 80
        hashed = "sha256:" + hashlib.sha256(long_ref.encode()).hexdigest()
        self.access(1002, 4, rows=[hashed])
        self.assertEqual(len(self.disclosures(long_ref)), 1)
        self.assertEqual(len(self.disclosures(hashed)), 1)

    def test_disclosures_cli(self):
        self.access(1002, 4, rows=["patients.ssn:1"], request_id="req-1")
        self.chain.seal(Chain.BOUNDS)
        self.chain.write(self.dir)
        code, out, err = self.run_tool("--export", self.dir, "--json",
                                       "--disclosures", "patients.ssn:1")
        self.assertEqual(code, 0, err)
        d = json.loads(out)["disclosures"]
        self.assertEqual([(x["kind"], x["request_id"], x["db_user"])
                          for x in d], [("decrypt", "req-1", "app")])
        code, out, err = self.run_tool("--export", self.dir,
                                       "--disclosures", "patients.ssn:1")
        self.assertEqual(code, 0, err)
        self.assertIn("disclosures of patients.ssn:1: 1", out)
        # a chain that does not verify lists nothing
        self.chain.block(2)["entries"] += 1
        self.chain.write(self.dir)
        code, out, err = self.run_tool("--export", self.dir, "--json",
                                       "--disclosures", "patients.ssn:1")
        self.assertEqual(code, 1)
        self.assertIsNone(json.loads(out)["disclosures"])


class RetentionTest(Base):
    """Exports taken before and after phi_audit_prune verify as one chain
    (SPEC section 8); gaps, forged checkpoints and forks are found."""

    def export(self, name):
        d = os.path.join(self.dir, name)
        os.mkdir(d)
        self.chain.write(d)
        return d

    def reseal_after_prune(self):
        """Seal block 6 after a prune of blocks up to 3 (blocks 4, 5 kept)."""
        prev = self.chain.block(5)["block_hash"]
        members = sorted((e for e in self.chain.entries
                          if 1014 <= e["xid"] < 1018),
                         key=lambda e: (e["xid"], e["id"]))
        self.chain.blocks.append({
            "block_no": 6, "xid_lo": 1014, "xid_hi": 1018,
            "entries": len(members), "prev_hash": prev,
            "block_hash": block_hash(prev, 6, len(members),
                                     [e["entry_hash"] for e in members]),
            "sealed_at": "2024-06-01 12:06:00.123456+00"})

    def test_pruned_export_verifies_alone(self):
        self.chain.prune(3, 1017)
        after = self.export("after")
        res = va.verify_export(after)
        self.assertTrue(res.ok, res.problem)
        # cumulative, as phi_audit_verify counts: blocks 1..5, 18 entries
        self.assertEqual((res.blocks, res.entries, res.unsealed), (5, 18, 4))
        self.reseal_after_prune()
        res = va.verify_export(self.export("sealed"))
        self.assertTrue(res.ok, res.problem)
        self.assertEqual((res.blocks, res.entries, res.unsealed), (6, 22, 0))

    def test_export_prune_export_one_chain(self):
        before = self.export("before")
        self.chain.prune(3, 1017)
        self.reseal_after_prune()
        after = self.export("after")
        for dirs in ([before, after], [after, before]):
            res = va.verify_exports(dirs)
            self.assertTrue(res.ok, res.problem)
            self.assertEqual((res.blocks, res.entries), (6, 22))
        code, out, err = self.run_tool("--export", before, "--export", after,
                                       "--json")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["entries"], 22)
        self.assertIn("as one chain", err)

    def test_digest_of_a_pruned_block_needs_the_older_export(self):
        d2 = self.chain.digest(2)
        before = self.export("before")
        self.chain.prune(3, 1017)
        after = self.export("after")
        dg = (2, bytes.fromhex(d2["block_hash"]), d2["entries"])
        self.assertTrue(va.verify_exports([before, after], dg).ok)
        self.assertBad(va.verify_export(after, dg), 2, "was pruned")
        d3 = (3, self.chain.checkpoint[1], self.chain.checkpoint[2])
        self.assertTrue(va.verify_export(after, d3).ok)

    def test_gap_between_exports(self):
        full = Chain()
        self.chain.blocks = self.chain.blocks[:2]
        self.chain.entries = [e for e in self.chain.entries
                              if e["xid"] < 1006]
        early = self.export("early")
        self.chain = full
        self.chain.prune(3, 1017)
        after = self.export("after")
        res = va.verify_exports([early, after])
        self.assertBad(res, 3, "blocks 3..3 are in no export")
        code, out, _ = self.run_tool("--export", early, "--export", after,
                                     "--json")
        self.assertEqual(code, 1)

    def test_checkpoint_changed(self):
        self.chain.prune(3, 1017)
        after = self.export("after")
        path = os.path.join(after, "audit_checkpoint.csv")
        with open(path, encoding="utf-8") as f:
            text = f.read()
        no, bh, n = self.chain.checkpoint
        for old, new, words in (
                (bh.hex(), "ab" * 32, ("block 4", "checkpoint")),
                (",%d," % n, ",%d," % (n + 1), ("audit_prune",))):
            with self.subTest(changed=words):
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text.replace(old, new))
                self.assertBad(va.verify_export(after), 4, *words)
        os.remove(path)
        self.assertBad(va.verify_export(after), 1, "block 1 is missing")

    def test_consistent_forged_checkpoint_caught_by_older_export(self):
        before = self.export("before")
        self.chain.prune(3, 1017, forge_entries=5)
        after = self.export("after")
        self.assertTrue(va.verify_export(after).ok)
        self.assertBad(va.verify_exports([before, after]), 3,
                       "checkpoint", "is not block 3")

    def test_fork_after_the_checkpoint(self):
        before = self.export("before")
        e = self.chain.find(1013, 18)
        e["record"] = e["record"].replace("treatment", "billing")
        e["entry_hash"] = sha(e["record"].encode())
        self.chain.seal(Chain.BOUNDS, start=5)
        self.chain.prune(3, 1017)
        after = self.export("after")
        self.assertTrue(va.verify_export(after).ok)
        self.assertBad(va.verify_exports([before, after]), 5,
                       "block 5 differs")

    def test_disclosures_outlive_the_prune(self):
        e = self.chain.find(998, 1)
        e["record"] = make_record(998, 1, kind="decrypt", table=None,
                                  row_key=None, columns=None, detail={
                                      "key": "patients", "phase": "final",
                                      "access_id": "a1",
                                      "rows": ["patients.ssn:42"]})
        e["entry_hash"] = sha(e["record"].encode())
        self.chain.seal(Chain.BOUNDS)
        before = self.export("before")
        self.chain.prune(3, 1017)
        after = self.export("after")
        code, out, err = self.run_tool("--export", after, "--json",
                                       "--disclosures", "patients.ssn:42")
        self.assertEqual(code, 0, err)
        self.assertEqual(json.loads(out)["disclosures"], [])
        code, out, err = self.run_tool("--export", before, "--export", after,
                                       "--json", "--disclosures",
                                       "patients.ssn:42")
        self.assertEqual(code, 0, err)
        self.assertEqual([d["kind"] for d in json.loads(out)["disclosures"]],
                         ["decrypt"])


class AnchorTest(Base):
    """--anchors FILE (SPEC section 8): the chain is checked against every
    digest phi_guard.audit_anchor_command received, one JSON object per
    line, as the server prints phi_audit_digest()."""

    def write_anchors(self, digests, name="anchors"):
        path = os.path.join(self.dir, name)
        with open(path, "w", encoding="utf-8") as f:
            for d in digests:
                f.write(json.dumps(d) + "\n")
        return path

    def check(self, digests, export=None):
        """Verify the export (default: self.chain written to self.dir)
        against the anchors, in-process, as main() does."""
        if export is None:
            self.chain.write(self.dir)
            export = self.dir
        anchors = va.load_anchors(self.write_anchors(digests))
        exports = export if isinstance(export, list) else [export]
        if len(exports) == 1:
            res = va.verify_export(exports[0],
                                   keep=va.anchor_blocks(anchors))
        else:
            res = va.verify_exports(exports, keep=va.anchor_blocks(anchors))
        va.check_anchors(res, anchors)
        return res

    def test_every_anchor_matches(self):
        res = self.check([self.chain.digest(n) for n in range(1, 6)])
        self.assertTrue(res.ok, res.problem)
        self.assertEqual(res.anchors, {"checked": 5, "skipped": 0,
                                       "mismatches": []})

    def test_repeated_anchor_after_a_restart_matches(self):
        # anchoring is at least once: a block may be anchored twice
        res = self.check([self.chain.digest(n) for n in (1, 2, 2, 4, 5, 5)])
        self.assertTrue(res.ok, res.problem)
        self.assertEqual(res.anchors["checked"], 6)

    def test_tampered_anchor_line_fails(self):
        digests = [self.chain.digest(n) for n in range(1, 6)]
        h = digests[2]["block_hash"]
        digests[2]["block_hash"] = ("0" if h[0] != "0" else "1") + h[1:]
        res = self.check(digests)
        self.assertBad(res, 3, "anchor line 3", "block 3", "block_hash")
        self.assertEqual([(m["line"], m["block"])
                          for m in res.anchors["mismatches"]], [(3, 3)])
        self.assertEqual(res.anchors["checked"], 4)

    def test_anchor_entries_differ(self):
        digests = [self.chain.digest(n) for n in range(1, 6)]
        digests[1]["entries"] += 1
        self.assertBad(self.check(digests), 2, "anchor line 2", "entries")

    def test_every_mismatch_is_listed(self):
        digests = [self.chain.digest(n) for n in range(1, 6)]
        digests[3]["entries"] = 0
        digests[1]["block_hash"] = "ab" * 32
        res = self.check(digests)
        self.assertBad(res, 2, "2 anchor(s)")
        self.assertEqual([(m["line"], m["block"])
                          for m in res.anchors["mismatches"]],
                         [(2, 2), (4, 4)])

    def test_anchor_after_the_last_block_fails(self):
        # the two newest blocks were removed after they were anchored
        digests = [self.chain.digest(n) for n in range(1, 6)]
        self.chain.blocks = self.chain.blocks[:3]
        res = self.check(digests)
        self.assertBad(res, 4, "names block 4", "ends at block 3")
        self.assertEqual(len(res.anchors["mismatches"]), 2)

    def test_full_reseal_caught_only_by_anchors(self):
        digests = [self.chain.digest(n) for n in range(1, 6)]
        e = self.chain.find(1002, 5)
        e["record"] = make_record(1002, 5, purpose="billing")
        e["entry_hash"] = sha(e["record"].encode("utf-8"))
        self.chain.seal(Chain.BOUNDS)
        self.chain.write(self.dir)
        self.assertTrue(va.verify_export(self.dir).ok)
        res = self.check(digests)
        self.assertBad(res, 2, "anchor line 2")
        self.assertEqual([m["block"] for m in res.anchors["mismatches"]],
                         [2, 3, 4, 5])
        self.assertNotIn("billing", res.problem)

    def test_anchors_of_pruned_blocks(self):
        digests = [self.chain.digest(n) for n in range(1, 6)]
        before = os.path.join(self.dir, "before")
        os.mkdir(before)
        self.chain.write(before)
        self.chain.prune(3, 1017)
        after = os.path.join(self.dir, "after")
        os.mkdir(after)
        self.chain.write(after)
        res = self.check(digests, after)
        self.assertTrue(res.ok, res.problem)
        # blocks 1, 2 are gone; 3 is the checkpoint; 4, 5 are kept
        self.assertEqual((res.anchors["checked"], res.anchors["skipped"]),
                         (3, 2))
        res = self.check(digests, [before, after])
        self.assertTrue(res.ok, res.problem)
        self.assertEqual((res.anchors["checked"], res.anchors["skipped"]),
                         (5, 0))
        digests[0]["block_hash"] = "cd" * 32
        self.assertBad(self.check(digests, [before, after]), 1,
                       "anchor line 1")

    def test_cli(self):
        self.chain.write(self.dir)
        digests = [self.chain.digest(n) for n in range(1, 6)]
        path = self.write_anchors(digests)
        rc, out, err = self.run_tool("--export", self.dir, "--anchors", path,
                                     "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["anchors"],
                         {"checked": 5, "skipped": 0, "mismatches": []})
        digests[4]["block_hash"] = "ef" * 32
        path = self.write_anchors(digests)
        rc, out, err = self.run_tool("--export", self.dir, "--anchors", path)
        self.assertEqual(rc, 1, err)
        self.assertIn("FAILED", out)
        self.assertIn("first bad block:  5", out)
        self.assertIn("line 5: block 5", out)

    def test_bad_anchors_file_exit_2(self):
        self.chain.write(self.dir)
        for name, text in (("empty", "\n"), ("notjson", "{\"block\": 1,\n"),
                           ("nohash", json.dumps({"block": 1, "entries": 3})
                            + "\n")):
            with self.subTest(name):
                path = os.path.join(self.dir, name)
                with open(path, "w", encoding="utf-8") as f:
                    f.write(text)
                rc, out, err = self.run_tool("--export", self.dir,
                                             "--anchors", path)
                self.assertEqual(rc, 2, out + err)
        rc, _, err = self.run_tool("--export", self.dir, "--anchors",
                                   os.path.join(self.dir, "missing"))
        self.assertEqual(rc, 2, err)


class InputTest(Base):
    def test_unordered_export_is_input_error(self):
        self.chain.entries.reverse()
        self.chain.write(self.dir, sort=False)
        with self.assertRaises(va.InputError):
            va.verify_export(self.dir)

    def test_missing_file_is_input_error(self):
        self.chain.write(self.dir)
        os.remove(os.path.join(self.dir, "audit_block.csv"))
        with self.assertRaises(va.InputError):
            va.verify_export(self.dir)

    def test_bad_header_is_input_error(self):
        self.chain.write(self.dir)
        with open(os.path.join(self.dir, "audit_log.csv"), "w") as f:
            f.write("a,b\n1,2\n")
        with self.assertRaises(va.InputError):
            va.verify_export(self.dir)

    def test_bad_digest_is_input_error(self):
        path = self.write_digest({"block": "x"})
        with self.assertRaises(va.InputError):
            va.load_digest(path)


class CliTest(Base):
    KEYS = {"ok", "blocks", "entries", "unsealed", "first_bad_block",
            "problem"}

    def test_executable(self):
        self.assertTrue(os.access(TOOL, os.X_OK))
        with open(TOOL, encoding="utf-8") as f:
            self.assertTrue(f.readline().startswith("#!"))
        self.assertIn("\\copy", va.__doc__)

    def test_json_ok(self):
        self.chain.write(self.dir)
        rc, out, err = self.run_tool("--export", self.dir, "--json")
        self.assertEqual(rc, 0, err)
        obj = json.loads(out)
        self.assertEqual(set(obj), self.KEYS)
        self.assertEqual(obj, {"ok": True, "blocks": 5, "entries": 18,
                               "unsealed": 3, "first_bad_block": None,
                               "problem": None})
        self.assertEqual(out.count("\n"), 1)

    def test_json_ok_with_digest(self):
        self.chain.write(self.dir)
        dpath = self.write_digest(self.chain.digest(5))
        rc, out, err = self.run_tool("--export", self.dir, "--digest", dpath,
                                     "--json")
        self.assertEqual(rc, 0, err)
        self.assertTrue(json.loads(out)["ok"])

    def test_json_failure(self):
        e = self.chain.find(1008, 13)
        e["record"] = make_record(1008, 13, purpose="billing")
        self.chain.write(self.dir)
        rc, out, err = self.run_tool("--export", self.dir, "--json")
        self.assertEqual(rc, 1)
        obj = json.loads(out)
        self.assertEqual(set(obj), self.KEYS)
        self.assertIs(obj["ok"], False)
        self.assertEqual(obj["first_bad_block"], 3)
        self.assertIsInstance(obj["problem"], str)
        self.assertIsInstance(obj["blocks"], int)
        self.assertIsInstance(obj["entries"], int)
        self.assertIsInstance(obj["unsealed"], int)
        self.assertNotIn(SECRET, out + err)
        self.assertNotIn("billing", out + err)

    def test_digest_failure_exit_1(self):
        self.chain.write(self.dir)
        d = self.chain.digest(5)
        d["block"] = 6
        dpath = self.write_digest(d)
        rc, out, err = self.run_tool("--export", self.dir, "--digest", dpath,
                                     "--json")
        self.assertEqual(rc, 1)
        self.assertEqual(json.loads(out)["first_bad_block"], 6)

    def test_human_output(self):
        self.chain.write(self.dir)
        rc, out, _ = self.run_tool("--export", self.dir)
        self.assertEqual(rc, 0)
        self.assertIn("OK", out)
        self.assertIn("unsealed entries: 3", out)
        self.chain.block(3)["prev_hash"] = ZERO
        self.chain.write(self.dir)
        rc, out, err = self.run_tool("--export", self.dir)
        self.assertEqual(rc, 1)
        self.assertIn("FAILED", out)
        self.assertIn("first bad block:  3", out)
        self.assertNotIn(SECRET, out + err)

    def test_missing_export_exit_2(self):
        rc, out, err = self.run_tool("--export",
                                     os.path.join(self.dir, "nope"), "--json")
        self.assertEqual(rc, 2)
        obj = json.loads(out)
        self.assertEqual(set(obj), self.KEYS)
        self.assertIs(obj["ok"], False)
        self.assertIn("error", err)

    def test_unordered_export_exit_2(self):
        self.chain.entries.reverse()
        self.chain.write(self.dir, sort=False)
        rc, _, _ = self.run_tool("--export", self.dir)
        self.assertEqual(rc, 2)

    def test_usage_errors_exit_2(self):
        for args in ([], ["--export", self.dir, "--dsn", "dbname=x"],
                     ["--export", self.dir, "--write-export", self.dir],
                     ["--bogus"]):
            with self.subTest(args=args):
                rc, _, _ = self.run_tool(*args)
                self.assertEqual(rc, 2)

    def test_bad_digest_file_exit_2(self):
        self.chain.write(self.dir)
        rc, _, _ = self.run_tool("--export", self.dir, "--digest",
                                 os.path.join(self.dir, "missing.json"))
        self.assertEqual(rc, 2)

    def test_export_mode_does_not_import_psycopg2(self):
        self.chain.write(self.dir)
        code = ("import importlib.util, sys, io, contextlib\n"
                "s = importlib.util.spec_from_file_location('v', %r)\n"
                "m = importlib.util.module_from_spec(s); s.loader.exec_module(m)\n"
                "with contextlib.redirect_stdout(io.StringIO()):\n"
                "    rc = m.main(['--export', %r])\n"
                "assert rc == 0, rc\n"
                "assert 'psycopg2' not in sys.modules\n" % (TOOL, self.dir))
        p = subprocess.run([PYTHON, "-c", code], capture_output=True,
                           text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)

    def test_main_in_process(self):
        self.chain.write(self.dir)
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            rc = va.main(["--export", self.dir, "--json"])
        self.assertEqual(rc, 0)
        self.assertTrue(json.loads(out.getvalue())["ok"])


SCRATCH_DSN = os.environ.get("PHI_GUARD_VERIFY_SCRATCH_DSN")


@unittest.skipUnless(SCRATCH_DSN, "set PHI_GUARD_VERIFY_SCRATCH_DSN to a "
                     "scratch database without phi_guard to test --dsn")
class DsnModeTest(Base):
    def setUp(self):
        super().setUp()
        import psycopg2
        self.conn = psycopg2.connect(SCRATCH_DSN)
        self.conn.autocommit = True
        with self.conn.cursor() as c:
            c.execute("SELECT 1 FROM pg_namespace WHERE nspname='phi_guard'")
            if c.fetchone():
                self.skipTest("schema phi_guard exists in the scratch db")
            c.execute("CREATE SCHEMA phi_guard")
            c.execute("CREATE TABLE phi_guard.audit_log (id int8, xid xid8, "
                      "record text, entry_hash bytea)")
            c.execute("CREATE TABLE phi_guard.audit_block (block_no int8, "
                      "xid_lo xid8, xid_hi xid8, entries int8, prev_hash "
                      "bytea, block_hash bytea, sealed_at timestamptz)")
            for e in self.chain.entries:
                c.execute("INSERT INTO phi_guard.audit_log VALUES "
                          "(%s, %s::text::xid8, %s, %s)",
                          (e["id"], str(e["xid"]), e["record"],
                           e["entry_hash"]))
            for b in self.chain.blocks:
                c.execute("INSERT INTO phi_guard.audit_block VALUES "
                          "(%s, %s::text::xid8, %s::text::xid8, %s, %s, %s, "
                          "%s)", (b["block_no"], str(b["xid_lo"]),
                                  str(b["xid_hi"]), b["entries"],
                                  b["prev_hash"], b["block_hash"],
                                  b["sealed_at"]))

    def tearDown(self):
        if hasattr(self, "conn"):
            with self.conn.cursor() as c:
                c.execute("DROP SCHEMA IF EXISTS phi_guard CASCADE")
            self.conn.close()
        super().tearDown()

    def test_dsn_good_and_export(self):
        rc, out, err = self.run_tool("--dsn", SCRATCH_DSN, "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["entries"], 18)
        exp = os.path.join(self.dir, "export")
        rc, out, err = self.run_tool("--dsn", SCRATCH_DSN, "--write-export",
                                     exp, "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(sorted(os.listdir(exp)),
                         ["audit_block.csv", "audit_log.csv"])
        rc, out, err = self.run_tool("--export", exp, "--json")
        self.assertEqual(rc, 0, err)
        self.assertEqual(json.loads(out)["unsealed"], 3)

    def test_dsn_tamper(self):
        with self.conn.cursor() as c:
            c.execute("UPDATE phi_guard.audit_log SET record = "
                      "replace(record, 'treatment', 'billing') "
                      "WHERE id = 13")
        rc, out, err = self.run_tool("--dsn", SCRATCH_DSN, "--json")
        self.assertEqual(rc, 1, err)
        self.assertEqual(json.loads(out)["first_bad_block"], 3)

    def test_dsn_bad_connection_exit_2(self):
        rc, _, _ = self.run_tool("--dsn", "host=/nonexistent dbname=x",
                                 "--json")
        self.assertEqual(rc, 2)


if __name__ == "__main__":
    unittest.main()
