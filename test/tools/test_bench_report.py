"""Tests of bench/report.py: the psql tables printed by bench/*.sql
and bench/audit.sh are parsed into the right ratios and verdicts, a missing
or failed results file is skipped with a note, and bench/chart.svg is
well-formed XML with one bar per measured comparison and one marker per
target.

The sample texts are real outputs: ENCRYPT and RLS from runs of
bench/encrypt.sql and bench/rls.sql; AUDIT and TOKENS from the report
queries of bench/audit.sh and bench/tokens.sql run on hand-made
measurements (so their numbers are round, their layout is psql's own).

Run: python3 -m unittest discover -s test/tools
"""

import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import unittest
import xml.etree.ElementTree as ET

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
REPORT = os.path.join(ROOT, "bench", "report.py")

_spec = importlib.util.spec_from_file_location("bench_report", REPORT)
bench_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_report)

SVG_NS = "{http://www.w3.org/2000/svg}"

ENCRYPT = r"""
phi_guard encryption benchmark: 1,000,000 rows per query, median of 5 interleaved runs

              case              | median ms | min ms | max ms 
--------------------------------+-----------+--------+--------
 bare generate_series + count   | 209.7     | 170.8  | 377.3
 phi_encrypt (AES-256-GCM)      | 646.0     | 578.2  | 814.6
 pgcrypto encrypt_iv, random IV | 3486.5    | 2634.0 | 4030.9
 pgcrypto encrypt, zero IV      | 1859.2    | 1728.0 | 2087.9
 bare scan of t_phi             | 82.2      | 58.5   | 90.1
 phi_decrypt of t_phi           | 538.2     | 396.8  | 570.5
 pgcrypto decrypt_iv of t_pgc   | 1823.6    | 1533.0 | 2228.6

Ratios from this run (targets are informational; the machine may be noisy):

                     metric                      | measured |  target   | result 
-------------------------------------------------+----------+-----------+--------
 encrypt: pgcrypto encrypt_iv / phi_encrypt      | 5.40x    | >= 3.0x   | PASS
 encrypt: pgcrypto zero-IV encrypt / phi_encrypt | 2.88x    | > 1.0x    | PASS
 decrypt: pgcrypto decrypt_iv / phi_decrypt      | 3.39x    | >= 2.0x   | PASS
 phi_encrypt overhead over bare, per row         | 0.436 µs | <= 0.6 µs | PASS
 phi_decrypt overhead over bare scan, per row    | 0.456 µs | -         | info

"""

RLS = r"""phi_guard RLS benchmark: count(*) over 1,000,000 rows (100,000 of the context's tenant), median of 7 interleaved runs
   case    | median ms | vs where 
-----------+-----------+----------
 where     | 72.1      | 1.00x
 protected | 87.1      | 1.21x
 per_row   | 101.7     | 1.41x
(3 rows)

 target: protected <= 1.3x where | measured 
---------------------------------+----------
 ok                              | 1.21x
(1 row)

"""

AUDIT = r"""
phi_guard audit-log benchmark

1. pgbench, 8 clients (-j 2), one single-row INSERT per transaction, fsync = on, synchronous_commit = on
   median of 3 interleaved runs of 10 s each

              table               | median TPS | min TPS | max TPS 
----------------------------------+------------+---------+---------
 unaudited                        | 1500.2     | 1490.5  | 1520.0
 phi_guard audit                  | 1340.1     | 1330.0  | 1355.0
 plpgsql jsonb trigger            | 1230.0     | 1220.0  | 1240.0
 plpgsql hash chain (locked head) | 310.0      | 305.0   | 312.0

2. INSERT ... SELECT FROM generate_series in one statement: 200000 rows (hash chain: 20000 rows),
   median of 3 interleaved runs, commit included, fsync = off, synchronous_commit = off

              table               |  rows  | median ms | min ms | max ms | µs/row 
----------------------------------+--------+-----------+--------+--------+--------
 unaudited                        | 200000 | 405.0     | 400.0  | 410.0  | 2.02
 phi_guard audit                  | 200000 | 725.0     | 720.0  | 730.0  | 3.62
 plpgsql jsonb trigger            | 200000 | 905.0     | 900.0  | 910.0  | 4.53
 plpgsql hash chain (locked head) |  20000 | 8000.0    | 7900.0 | 8100.0 | 400.00

3. phi_audit_verify() over every sealed entry

 entries | blocks | audit_log rows | median ms | min ms | max ms 
---------+--------+----------------+-----------+--------+--------
 1200000 |   1200 |        1200000 | 1890.0    | 1880.0 | 1900.0

4. sealing lag: writer pgbench -R, 4 clients, 100-row INSERTs, for 20 s, fsync = on, synchronous_commit = on
   sealed frontier sampled every 0.5 s; lag = sample time - ts of the oldest entry then unsealed

 offered rows/s |  rows  | entries | writer s | samples | max lag s | mean lag s | max unsealed | all sealed s after writer end | pgbench max schedule lag ms 
----------------+--------+---------+----------+---------+-----------+------------+--------------+-------------------------------+-----------------------------
          22000 | 435000 |  435000 | 20.01    |      48 | 1.100     | 0.550      |        24000 | 1.20                          | 35.0

Results against the targets (informational; the machine may be noisy):

                        metric                         | measured |     target     | result 
-------------------------------------------------------+----------+----------------+--------
 1. TPS: phi_guard / unaudited                         | 89.3%    | >= 85%         | PASS
 1. TPS: phi_guard / plpgsql hash chain                | 4.32x    | >= 4.0x        | PASS
 1. TPS: plpgsql jsonb trigger / unaudited             | 82.0%    | (issue: ~70%)  | info
 1. TPS: plpgsql hash chain / unaudited                | 20.7%    | -              | info
 2. bulk 200k: phi_guard time / unaudited              | 1.79x    | <= 2.0x        | PASS
 2. bulk 200k: jsonb trigger time / unaudited          | 2.23x    | -              | info
 2. bulk: hash chain per row / unaudited per row       | 197.5x   | -              | info
 2. bulk: hash chain, 20,000 rows                      | 8.00 s   | (issue: 7.8 s) | info
 2. bulk: hash chain linear extrapolation to 200k rows | 80.0 s   | (lower bound)  | info
 3. phi_audit_verify() entries/s                       | 634921/s | >= 500000/s    | PASS
 4. sealing: audited entries/s sustained               | 21739/s  | >= 20000/s     | PASS
 4. sealing: max lag                                   | 1.100 s  | < 2 s          | PASS

"""

TOKENS = r"""
phi_guard blind index and tokenization benchmark: median of 5 interleaved runs

                 case                 |  rows   | median ms | min ms | max ms 
--------------------------------------+---------+-----------+--------+--------
 bare generate_series + count         | 1000000 | 205.0     | 200.0  | 210.0
 phi_blind_index, 1M values           | 1000000 | 415.0     | 410.0  | 420.0
 phi_tokenize, 1M values in the vault | 1000000 | 3120.0    | 3100.0 | 3150.0
 phi_tokenize, 100k first-time values |  100000 | 3620.0    | 3600.0 | 3650.0

 load (not repeated) |  rows   |   ms    | µs/row 
---------------------+---------+---------+--------
 vault load          | 1000000 | 35123.4 | 35.12

Lookup plans (EXPLAIN (COSTS OFF) of the lookup each function does):

   lookup   |                                  plan                                  
------------+------------------------------------------------------------------------
 blind      | Index Scan using patients_mrn_bidx on patients                        +
            |   Index Cond: (mrn_bidx = '123'::bigint)                              +
            |   Filter: (phi_guard.phi_decrypt(mrn) = 'patient-424242'::text)
 detokenize | Index Scan using token_vault_pkey on token_vault                      +
            |   Index Cond: ((domain = 'bench_known'::text) AND (token = 'x'::text))
 tokenize   | Index Scan using token_vault_fingerprint_idx on token_vault           +
            |   Index Cond: (fingerprint = '\x00'::bytea)

Single lookups, 200 statements each (vault of 1.6M rows, 1M for this domain; patients 1M rows):

                lookup                 | median ms | p95 ms | max ms 
---------------------------------------+-----------+--------+--------
 patients by blind index + phi_decrypt | 0.040     | 0.049  | 0.050
 phi_detokenize(token)                 | 0.040     | 0.049  | 0.050
 phi_tokenize(known value)             | 0.040     | 0.049  | 0.050

Targets (informational; the machine may be noisy):

                            metric                             |  measured  |   target   | result 
---------------------------------------------------------------+------------+------------+--------
 phi_blind_index overhead over bare, per row                   | 0.210 µs   | <= 1 µs    | PASS
 phi_tokenize (value in the vault) overhead over bare, per row | 2.915 µs   | <= 3 µs    | PASS
 phi_tokenize (first time), per row                            | 36.20 µs   | -          | info
 phi_detokenize: plan uses the vault's primary key             | index scan | index scan | PASS
 phi_detokenize: single lookup, median                         | 0.040 ms   | < 1 ms     | PASS
 blind index search: plan uses patients_mrn_bidx               | index scan | index scan | PASS
 blind index search: single lookup, median                     | 0.040 ms   | < 1 ms     | PASS

"""

def comparisons(name, text):
    tables, _ = bench_report.parse_tables(text)
    return bench_report.comparisons(name, tables)


def run_report(files, extra_args=()):
    """Write files {name: text} into a results directory, run the script as
    make bench would, return (exit status, markdown or None, svg root or
    None, svg text or None, stderr)."""
    with tempfile.TemporaryDirectory() as d:
        res = os.path.join(d, "results")
        os.mkdir(res)
        for name, text in files.items():
            with open(os.path.join(res, name + ".txt"), "w", encoding="utf-8") as f:
                f.write(text)
        md_path = os.path.join(d, "results.md")
        svg_path = os.path.join(d, "chart.svg")
        p = subprocess.run([sys.executable, REPORT, "--results", res, "--markdown", md_path,
                            "--svg", svg_path, "--command", "make bench", *extra_args],
                           capture_output=True, text=True, timeout=60)
        md = svg = root = None
        if os.path.exists(md_path):
            with open(md_path, encoding="utf-8") as f:
                md = f.read()
        if os.path.exists(svg_path):
            with open(svg_path, encoding="utf-8") as f:
                svg = f.read()
            root = ET.fromstring(svg.encode("utf-8"))
        return p.returncode, md, root, svg, p.stderr


def bars(root):
    return [e for e in root.iter(SVG_NS + "rect") if e.get("class") == "bar"]


def targets(root):
    return [e for e in root.iter(SVG_NS + "line") if e.get("class") == "target"
            and e.find(SVG_NS + "title") is not None]


def bar_titles(root):
    return [e.find(SVG_NS + "title").text for e in bars(root)]


class ParseTables(unittest.TestCase):
    def test_encrypt_tables(self):
        tables, notes = bench_report.parse_tables(ENCRYPT)
        self.assertEqual(len(tables), 2)
        self.assertEqual(tables[0].columns, ["case", "median ms", "min ms", "max ms"])
        self.assertEqual(len(tables[0].rows), 7)
        self.assertEqual(tables[0].rows[1], ["phi_encrypt (AES-256-GCM)", "646.0", "578.2", "814.6"])
        self.assertIn("1,000,000 rows per query", tables[0].titles[0])
        self.assertEqual(tables[1].columns, ["metric", "measured", "target", "result"])
        self.assertEqual(notes, [])

    def test_wrapped_cells_are_joined(self):
        tables, _ = bench_report.parse_tables(TOKENS)
        plans = [t for t in tables if t.columns == ["lookup", "plan"]]
        self.assertEqual(len(plans), 1)
        rows = {r[0]: r[1] for r in plans[0].rows}
        self.assertEqual(sorted(rows), ["blind", "detokenize", "tokenize"])
        self.assertEqual(rows["blind"].split("\n"),
                         ["Index Scan using patients_mrn_bidx on patients",
                          "Index Cond: (mrn_bidx = '123'::bigint)",
                          "Filter: (phi_guard.phi_decrypt(mrn) = 'patient-424242'::text)"])
        self.assertTrue(rows["tokenize"].endswith("(fingerprint = '\\x00'::bytea)"))

    def test_titles_and_row_counts(self):
        tables, _ = bench_report.parse_tables(AUDIT)
        self.assertEqual(len(tables), 5)
        self.assertEqual([len(t.rows) for t in tables], [4, 4, 1, 1, 12])
        self.assertTrue(tables[0].titles[1].startswith("1. pgbench, 8 clients"))
        # "(3 rows)" footers (rls.sql keeps the footer on) are no data rows
        tables, _ = bench_report.parse_tables(RLS)
        self.assertEqual([len(t.rows) for t in tables], [3, 1])

    def test_measured_and_target_forms(self):
        self.assertEqual(bench_report.parse_measured("5.40x"), (5.40, "x"))
        self.assertEqual(bench_report.parse_measured("89.3%"), (89.3, "%"))
        self.assertEqual(bench_report.parse_measured("0.436 µs"), (0.436, "µs"))
        self.assertEqual(bench_report.parse_measured("634921/s"), (634921.0, "/s"))
        self.assertEqual(bench_report.parse_measured("n/a"), (None, None))
        self.assertEqual(bench_report.parse_measured("index scan"), (None, None))
        self.assertEqual(bench_report.parse_target(">= 3.0x"), (">=", 3.0, "x"))
        self.assertEqual(bench_report.parse_target("> 1.0x"), (">", 1.0, "x"))
        self.assertEqual(bench_report.parse_target(">= 85%"), (">=", 85.0, "%"))
        self.assertEqual(bench_report.parse_target("< 2 s"), ("<", 2.0, "s"))
        self.assertIsNone(bench_report.parse_target("-"))
        self.assertIsNone(bench_report.parse_target("(issue: ~70%)"))

    def test_verdicts(self):
        v = bench_report.verdict
        self.assertEqual(v(3.0, (">=", 3.0, "x")), "PASS")
        self.assertEqual(v(2.99, (">=", 3.0, "x")), "MISS")
        self.assertEqual(v(1.0, (">", 1.0, "x")), "MISS")
        self.assertEqual(v(1.3, ("<=", 1.3, "x")), "PASS")
        self.assertEqual(v(1.31, ("<=", 1.3, "x")), "MISS")
        self.assertEqual(v(2.0, ("<", 2.0, "s")), "MISS")
        self.assertEqual(v(5.0, None), "info")
        self.assertEqual(v(None, (">=", 1.0, "x")), "n/a")


class Comparisons(unittest.TestCase):
    def test_encrypt(self):
        c = comparisons("encrypt", ENCRYPT)
        iv = c["encrypt: pgcrypto encrypt_iv / phi_encrypt"]
        self.assertAlmostEqual(iv.ratio, 5.40)
        self.assertEqual(iv.target, (">=", 3.0, "x"))
        self.assertEqual(iv.result, "PASS")
        zero = c["encrypt: pgcrypto zero-IV encrypt / phi_encrypt"]
        self.assertAlmostEqual(zero.ratio, 2.88)
        self.assertEqual(zero.target, (">", 1.0, "x"))
        dec = c["decrypt: pgcrypto decrypt_iv / phi_decrypt"]
        self.assertAlmostEqual(dec.ratio, 3.39)
        self.assertAlmostEqual(dec.target_ratio, 2.0)
        over = c["phi_encrypt overhead over bare, per row"]
        self.assertAlmostEqual(over.value, 0.436)
        self.assertIsNone(over.ratio)          # µs: listed, not drawn
        self.assertEqual(c["phi_decrypt overhead over bare scan, per row"].result, "info")

    def test_audit_percentages_become_ratios(self):
        c = comparisons("audit", AUDIT)
        tps = c["1. TPS: phi_guard / unaudited"]
        self.assertAlmostEqual(tps.ratio, 0.893)
        self.assertAlmostEqual(tps.target_ratio, 0.85)
        self.assertEqual(tps.result, "PASS")
        chain = c["1. TPS: phi_guard / plpgsql hash chain"]
        self.assertAlmostEqual(chain.ratio, 4.32)
        self.assertAlmostEqual(chain.target_ratio, 4.0)
        jsonb = c["1. TPS: plpgsql jsonb trigger / unaudited"]
        self.assertAlmostEqual(jsonb.ratio, 0.82)
        self.assertIsNone(jsonb.target)
        self.assertEqual(jsonb.result, "info")
        self.assertEqual(len(c), 12)
        self.assertIsNone(c["3. phi_audit_verify() entries/s"].ratio)

    def test_rls(self):
        c = comparisons("rls", RLS)
        self.assertEqual(sorted(c), ["per_row / where", "protected / where"])
        p = c["protected / where"]
        self.assertAlmostEqual(p.ratio, 1.21)
        self.assertEqual(p.target, ("<=", 1.3, "x"))
        self.assertEqual(p.result, "PASS")
        self.assertAlmostEqual(c["per_row / where"].ratio, 1.41)
        self.assertEqual(c["per_row / where"].result, "info")

    def test_rls_missed(self):
        text = RLS.replace("| 1.21x", "| 1.45x").replace(" ok      ", " MISSED  ").replace(
            "| 1.21x", "| 1.45x")
        c = comparisons("rls", text)
        self.assertAlmostEqual(c["protected / where"].ratio, 1.45)
        self.assertEqual(c["protected / where"].result, "MISS")

    def test_tokens(self):
        c = comparisons("tokens", TOKENS)
        self.assertEqual(len(c), 7)
        self.assertEqual(c["phi_detokenize: plan uses the vault's primary key"].result, "PASS")
        self.assertAlmostEqual(c["phi_blind_index overhead over bare, per row"].value, 0.21)


class Report(unittest.TestCase):
    def test_full_report(self):
        rc, md, root, svg, err = run_report(
            {"encrypt": ENCRYPT, "tokens": TOKENS, "audit": AUDIT, "rls": RLS})
        self.assertEqual(rc, 0, err)
        # one bar per comparison: 3 encryption, 4 audit TPS, 2 RLS
        b = bars(root)
        self.assertEqual(len(b), 9)
        titles = bar_titles(root)
        for metric in ("encrypt: pgcrypto encrypt_iv / phi_encrypt",
                       "decrypt: pgcrypto decrypt_iv / phi_decrypt",
                       "1. TPS: phi_guard / unaudited", "1. TPS: phi_guard / plpgsql hash chain",
                       "protected / where"):
            self.assertEqual(sum(t.startswith(metric + ":") for t in titles), 1, metric)
        # a marker per target: 3 encryption, 2 audit, 1 RLS
        self.assertEqual(len(targets(root)), 6)
        # bar length is the ratio: within the encryption panel 5.40 : 2.88
        w = [float(e.get("width")) for e in b]
        self.assertAlmostEqual(w[0] / w[1], 5.40 / 2.88, places=2)
        self.assertAlmostEqual(w[3] / w[5], 0.893 / 0.207, places=2)
        for e in b:
            self.assertEqual(e.get("fill"), bench_report.COLOURS["PASS"]
                             if "PASS" in e.find(SVG_NS + "title").text else bench_report.COLOURS["info"])
        # the target marker of encrypt_iv sits at 3/5.4 of its bar's length
        t0 = targets(root)[0]
        self.assertAlmostEqual((float(t0.get("x1")) - float(b[0].get("x"))) / w[0], 3.0 / 5.40, places=2)
        # labelled axes
        labels = [e.text for e in root.iter(SVG_NS + "text") if e.get("class") == "axislabel"]
        self.assertEqual(len(labels), 3)
        # the markdown: machine, command, chart, every section, ratios
        self.assertIn("- Machine: ", md)
        self.assertIn("- Command: `make bench`", md)
        self.assertIn("![benchmark ratios against their targets](chart.svg)", md)
        for src in ("bench/encrypt.sql", "bench/tokens.sql", "bench/audit.sh", "bench/rls.sql"):
            self.assertIn("(`%s`)" % src, md)
        self.assertIn("| encrypt: pgcrypto encrypt_iv / phi_encrypt | 5.40x | >= 3.0x | PASS |", md)
        self.assertIn("| protected / where | 1.21x | <= 1.3x | PASS |", md)
        self.assertIn("| 1. TPS: phi_guard / unaudited | 89.3% | >= 85% | PASS |", md)
        self.assertIn("| phi_encrypt (AES-256-GCM) | 646.0 | 578.2 | 814.6 |", md)
        self.assertNotIn("section skipped", md)
        # a title line "1. pgbench ..." is no Markdown list item
        self.assertIn("\n1\\. pgbench, 8 clients", md)

    def test_missing_files_are_skipped(self):
        rc, md, root, svg, err = run_report({"rls": RLS})
        self.assertEqual(rc, 0, err)
        for name in ("encrypt", "tokens", "audit"):
            self.assertIn("`bench/results/%s.txt` is missing" % name, md)
        self.assertEqual(len(bars(root)), 2)
        self.assertNotIn("pgcrypto", svg)
        self.assertIn("not run: encrypt, audit", svg)

    def test_no_results_writes_nothing(self):
        rc, md, root, svg, err = run_report({})
        self.assertEqual(rc, 2)
        self.assertIsNone(md)
        self.assertIsNone(svg)
        self.assertIn("no results", err)

    def test_not_measured_value_has_no_bar(self):
        # bench/audit.sh prints n/a (measured and result) for phi_guard when
        # its part failed
        text = "\n".join(re.sub(r"^( 1\. TPS: phi_guard / [^|]*\| )\S+( +\|[^|]*\| )PASS$",
                                 r"\1n/a  \2n/a", l)
                         for l in AUDIT.splitlines())
        self.assertEqual(text.count("| n/a"), 4)
        c = comparisons("audit", text)
        self.assertIsNone(c["1. TPS: phi_guard / unaudited"].value)
        self.assertEqual(c["1. TPS: phi_guard / unaudited"].result, "n/a")
        rc, md, root, svg, err = run_report({"audit": text})
        self.assertEqual(rc, 0, err)
        self.assertEqual(len(bars(root)), 2)          # jsonb and hash chain / unaudited
        self.assertEqual(svg.count("n/a (not measured)"), 2)

    def test_miss_is_coloured(self):
        text = RLS.replace("1.21x", "1.45x").replace(" ok      ", " MISSED  ")
        rc, md, root, svg, err = run_report({"rls": text})
        self.assertEqual(rc, 0, err)
        b = bars(root)
        self.assertEqual(b[0].get("fill"), bench_report.COLOURS["MISS"])
        self.assertIn("| protected / where | 1.45x | <= 1.3x | MISS |", md)

    def test_other_and_empty_results_files(self):
        other = " what | ms \n------+----\n a    | 1.0\n b    | 2.0\n\n"
        rc, md, root, svg, err = run_report({"rls": RLS, "zz_new": other, "tokens": ""})
        self.assertEqual(rc, 0, err)
        self.assertIn("## zz_new (`bench/zz_new`)", md)
        self.assertIn("| a | 1.0 |", md)
        self.assertIn("`bench/results/tokens.txt` holds no table", md)
        self.assertEqual(len(bars(root)), 2)


if __name__ == "__main__":
    unittest.main()
