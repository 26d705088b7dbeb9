#!/usr/bin/env python3
"""report.py - turn the output of `make bench` into bench/results.md
and bench/chart.svg.

Usage: bench/report.py [--results DIR] [--markdown FILE] [--svg FILE]
                       [--command TEXT]

Reads bench/results/<name>.txt (the stdout of bench/<name>.sql or .sh, saved
by bench/run.sh: psql "aligned" tables separated by blank lines and
\\echo lines) and writes

  bench/results.md   one section per script: the comparisons against the
                     project's targets, then every table the script printed,
                     with the date of the run, the machine and the command;
  bench/chart.svg    a horizontal bar chart, one panel per comparison group
                     (phi_guard vs pgcrypto, audited vs unaudited vs the
                     plpgsql hash chain, protected vs WHERE), the ratio as
                     the bar length and the target marked on each bar.

Python 3 standard library only.  A missing results file is not an error: its
section says so and its bars are left out.  When no results file exists at
all nothing is written and the exit status is 2, so a committed report is
never replaced by an empty one.

The parser reads the tables by their column names and the comparisons by the
"metric" / "target" text the bench scripts print, so a changed target in a
script shows up here without editing this file.
"""

import argparse
import datetime
import os
import re
import shutil
import subprocess
import sys
from xml.sax.saxutils import escape

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The scripts the report knows, in the order of its sections.  Any other
# results file is still listed (its tables, no comparisons).
SCRIPTS = [
    ("encrypt", "bench/encrypt.sql", "Field encryption: phi_guard vs pgcrypto"),
    ("tokens", "bench/tokens.sql", "Blind indexes and tokenization"),
    ("audit", "bench/audit.sh", "Audit log: audited vs unaudited vs plpgsql triggers"),
    ("rls", "bench/rls.sql", "Row-level security: protected table vs WHERE"),
]

# The bars of the chart: (results file, metric text as printed by the script,
# short bar label).  The value, the target and the verdict come from the
# results file.
CHART_GROUPS = [
    ("encrypt",
     "phi_guard vs pgcrypto: pgcrypto time / phi_guard time (higher = phi_guard faster)",
     [("encrypt: pgcrypto encrypt_iv / phi_encrypt", "encrypt: encrypt_iv (random IV) / phi_encrypt"),
      ("encrypt: pgcrypto zero-IV encrypt / phi_encrypt", "encrypt: zero-IV encrypt / phi_encrypt"),
      ("decrypt: pgcrypto decrypt_iv / phi_decrypt", "decrypt: decrypt_iv / phi_decrypt")]),
    ("audit",
     "Audit log, pgbench single-row INSERTs: TPS ratio (higher = faster)",
     [("1. TPS: phi_guard / unaudited", "phi_guard audited / unaudited"),
      ("1. TPS: plpgsql jsonb trigger / unaudited", "plpgsql jsonb trigger / unaudited"),
      ("1. TPS: plpgsql hash chain / unaudited", "plpgsql hash chain / unaudited"),
      ("1. TPS: phi_guard / plpgsql hash chain", "phi_guard audited / plpgsql hash chain")]),
    ("rls",
     "Row-level security, count(*) of one tenant: time / WHERE time (lower = faster)",
     [("protected / where", "phi_protect_table / WHERE tenant = ..."),
      ("per_row / where", "per-row policy / WHERE tenant = ...")]),
]

SEPARATOR = re.compile(r"^-+(\+-+)*$")
ROWCOUNT = re.compile(r"^\(\d+ rows?\)$")
TARGET = re.compile(r"^(>=|<=|>|<)\s*([0-9]+(?:\.[0-9]+)?)\s*(x|%|µs|ms|s|/s)?$")
MEASURED = re.compile(r"^(-?[0-9]+(?:\.[0-9]+)?)\s*(x|%|µs|ms|s|/s)?$")
RLS_TARGET = re.compile(r"^target:\s*(\w+)\s*(>=|<=|>|<)\s*([0-9.]+)x\s+(\w+)$")


# ---------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------

class Table:
    """One psql aligned table: the text lines printed just before it
    (titles), its column names and its rows (lists of cell strings; a cell
    psql wrapped over several lines is joined with newlines)."""

    def __init__(self, titles, columns):
        self.titles = titles
        self.columns = columns
        self.rows = []

    def column(self, name):
        return self.columns.index(name) if name in self.columns else None

    def dicts(self):
        return [dict(zip(self.columns, r)) for r in self.rows]


def _split(line, ncols):
    cells = line.split("|")
    if len(cells) != ncols:
        return None
    return cells


def parse_tables(text):
    """Parse every psql aligned table in text.  Returns (tables, notes):
    notes are the text lines that belong to no table and follow the last
    one (such as a failure list)."""
    lines = text.splitlines()
    tables = []
    titles = []
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        nxt = lines[i + 1].rstrip() if i + 1 < len(lines) else ""
        if line and SEPARATOR.match(nxt) and len(line.split("|")) == nxt.count("+") + 1:
            columns = [c.strip() for c in line.split("|")]
            table = Table(titles, columns)
            titles = []
            i += 2
            wrapped = False
            while i < len(lines):
                raw = lines[i].rstrip("\n")
                if not raw.strip() or ROWCOUNT.match(raw.strip()):
                    break
                cells = _split(raw, len(columns))
                if cells is None:
                    break
                # psql marks a wrapped cell with "+" where the padding space
                # would be: at the very end of the last column, just before
                # the "|" of the others.
                values = [c.strip() for c in cells]
                marks = [c.endswith("+") for c in cells]
                values = [v[:-1].rstrip() if m else v for v, m in zip(values, marks)]
                if wrapped and table.rows:
                    prev = table.rows[-1]
                    for k, v in enumerate(values):
                        if v:
                            prev[k] = prev[k] + "\n" + v if prev[k] else v
                else:
                    table.rows.append(values)
                wrapped = any(marks)
                i += 1
            tables.append(table)
            continue
        if line.strip() and not ROWCOUNT.match(line.strip()):
            titles.append(line.strip())
        i += 1
    return tables, titles


def parse_measured(text):
    """'5.40x' -> (5.40, 'x'); '89.3%' -> (89.3, '%'); 'n/a' -> (None, None)."""
    m = MEASURED.match(text.strip())
    if not m:
        return None, None
    return float(m.group(1)), m.group(2) or ""


def parse_target(text):
    """'>= 3.0x' -> ('>=', 3.0, 'x'); '-' or '(issue: ~70%)' -> None."""
    m = TARGET.match(text.strip())
    if not m:
        return None
    return m.group(1), float(m.group(2)), m.group(3) or ""


def verdict(value, target):
    if value is None:
        return "n/a"
    if target is None:
        return "info"
    op, bound = target[0], target[1]
    ok = {">=": value >= bound, ">": value > bound,
          "<=": value <= bound, "<": value < bound}[op]
    return "PASS" if ok else "MISS"


class Comparison:
    """One measured figure against its target.  ratio is the figure as a
    plain ratio (a percentage divided by 100) when unit is 'x' or '%',
    otherwise None (the figure is not drawn)."""

    def __init__(self, metric, measured, target_text, result):
        self.metric = metric
        self.measured = measured
        self.target_text = target_text
        self.value, self.unit = parse_measured(measured)
        self.target = parse_target(target_text)
        self.result = result or verdict(self.value, self.target)

    @property
    def ratio(self):
        if self.value is None or self.unit not in ("x", "%"):
            return None
        return self.value / 100.0 if self.unit == "%" else self.value

    @property
    def target_ratio(self):
        if self.target is None or self.target[2] not in ("x", "%"):
            return None
        return self.target[1] / 100.0 if self.target[2] == "%" else self.target[1]


def comparisons(name, tables):
    """The comparisons a results file states, keyed by metric."""
    out = {}
    for t in tables:
        if t.columns[:3] == ["metric", "measured", "target"]:
            for row in t.dicts():
                c = Comparison(row["metric"], row["measured"], row["target"], row.get("result"))
                out[c.metric] = c
    if name == "rls":
        # rls.sql: a case table with "vs where" and a one-row target table
        # whose header states the target.
        target = None
        for t in tables:
            m = RLS_TARGET.match(t.columns[0]) if t.columns else None
            if m:
                target = (m.group(1), m.group(2) + " " + m.group(3) + "x",
                          t.rows[0][0] if t.rows else "")
        for t in tables:
            if "case" in t.columns and "vs where" in t.columns:
                for row in t.dicts():
                    if row["case"] == "where":
                        continue
                    if target and row["case"] == target[0]:
                        res = {"ok": "PASS", "MISSED": "MISS"}.get(target[2], target[2])
                        c = Comparison(row["case"] + " / where", row["vs where"], target[1], res)
                    else:
                        c = Comparison(row["case"] + " / where", row["vs where"], "-", None)
                    out[c.metric] = c
    return out


class Result:
    def __init__(self, name, path):
        self.name = name
        self.path = path
        self.exists = os.path.isfile(path)
        self.tables, self.notes, self.comparisons = [], [], {}
        self.mtime = None
        if self.exists:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            self.mtime = os.path.getmtime(path)
            self.tables, self.notes = parse_tables(text)
            self.comparisons = comparisons(name, self.tables)


def load(results_dir):
    """Result objects for the known scripts, then for any other *.txt."""
    out = []
    known = set()
    for name, _, _ in SCRIPTS:
        out.append(Result(name, os.path.join(results_dir, name + ".txt")))
        known.add(name)
    if os.path.isdir(results_dir):
        for fn in sorted(os.listdir(results_dir)):
            if fn.endswith(".txt") and fn[:-4] not in known:
                out.append(Result(fn[:-4], os.path.join(results_dir, fn)))
    return out


def chart_bars(results):
    """[(group title, [(label, Comparison or None), ...]), ...] for the groups
    whose results file exists."""
    by_name = {r.name: r for r in results}
    groups = []
    for name, title, bars in CHART_GROUPS:
        r = by_name.get(name)
        if r is None or not r.exists:
            continue
        groups.append((title, [(label, r.comparisons.get(metric)) for metric, label in bars]))
    return groups


# ---------------------------------------------------------------------------
# Machine
# ---------------------------------------------------------------------------

def machine():
    try:
        ncpu = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        ncpu = os.cpu_count()
    model = "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    mem = None
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    mem = int(line.split()[1]) // 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    pg = None
    pg_config = os.environ.get("PG_CONFIG") or "/usr/lib/postgresql/15/bin/pg_config"
    if not os.access(pg_config, os.X_OK):
        pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            pg = subprocess.run([pg_config, "--version"], capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            pg = None
    return {"nproc": ncpu, "model": model, "mem_mb": mem, "postgres": pg}


# ---------------------------------------------------------------------------
# Markdown
# ---------------------------------------------------------------------------

def _md_cell(text):
    return text.replace("|", "\\|").replace("\n", "<br>") if text else ""


def md_table(columns, rows):
    out = ["| " + " | ".join(_md_cell(c) for c in columns) + " |",
           "|" + "|".join("---" for _ in columns) + "|"]
    for r in rows:
        out.append("| " + " | ".join(_md_cell(c) for c in r) + " |")
    return "\n".join(out)


def _stamp(ts):
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def markdown(results, mach, command, svg_name):
    present = [r for r in results if r.exists]
    lines = ["# phi_guard benchmark results", ""]
    lines.append("Generated by `bench/report.py` from `bench/results/*.txt`; "
                 "see [bench/README.md](README.md) for what each script measures.")
    lines.append("")
    if present:
        lines.append("- Date of the run: " + _stamp(max(r.mtime for r in present)))
    lines.append("- Machine: %s CPU%s (%s)%s" % (
        mach["nproc"], "" if mach["nproc"] == 1 else "s", mach["model"],
        ", %d MiB RAM" % mach["mem_mb"] if mach["mem_mb"] else ""))
    if mach["postgres"]:
        lines.append("- Server: " + mach["postgres"])
    lines.append("- Command: `%s`" % command)
    lines.append("")
    lines.append("Only the ratios between cases of one run mean anything: every case of a "
                 "script runs in the same session, interleaved, on the same machine. "
                 "Targets are informational; a MISS on a shared, noisy machine calls for a "
                 "rerun before a conclusion.")
    lines.append("")
    lines.append("![benchmark ratios against their targets](%s)" % svg_name)
    lines.append("")
    titles = {n: (src, t) for n, src, t in SCRIPTS}
    for r in results:
        src, title = titles.get(r.name, ("bench/" + r.name, r.name))
        lines.append("## %s (`%s`)" % (title, src))
        lines.append("")
        if not r.exists:
            lines.append("_No results: `bench/results/%s.txt` is missing (the script did not run "
                         "or failed); section skipped._" % r.name)
            lines.append("")
            continue
        lines.append("Run: " + _stamp(r.mtime) + ".")
        lines.append("")
        if not r.tables:
            lines.append("_`bench/results/%s.txt` holds no table; nothing to report._" % r.name)
            lines.append("")
            continue
        if r.comparisons:
            lines.append("**Against the targets**")
            lines.append("")
            lines.append(md_table(["comparison", "measured", "target", "result"],
                                  [[c.metric, c.measured, c.target_text, c.result]
                                   for c in r.comparisons.values()]))
            lines.append("")
        lines.append("**Tables printed by the script**")
        lines.append("")
        for t in r.tables:
            if t.columns[:3] == ["metric", "measured", "target"]:
                continue            # already shown above
            if r.name == "rls" and RLS_TARGET.match(t.columns[0]):
                continue
            for title_line in t.titles:
                # "1. pgbench ..." would start a Markdown list
                lines.append(re.sub(r"^(\d+)\.", r"\1\\.", _md_cell(title_line)) + "  ")
            if t.titles:
                lines.append("")
            lines.append(md_table(t.columns, t.rows))
            lines.append("")
        if r.notes:
            lines.append("```")
            lines.extend(r.notes)
            lines.append("```")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


# ---------------------------------------------------------------------------
# SVG
# ---------------------------------------------------------------------------

COLOURS = {"PASS": "#2e7d32", "MISS": "#c62828", "info": "#78909c", "n/a": "#78909c"}
WIDTH = 960
LABEL_W = 330            # left column: bar labels
PLOT_X = LABEL_W + 10    # where the bars start
PLOT_W = 440             # bar area
BAR_H = 18
ROW_H = 30


def _axis(v):
    """(axis maximum, tick step) for values up to v: a 1/2/2.5/5 x 10^k step
    giving at most 6 intervals, the maximum a multiple of it."""
    if v <= 0:
        v = 1.0
    base = 1.0
    while base * 10 <= v / 6:
        base *= 10
    while base > v / 6:
        base /= 10
    for m in (1, 2, 2.5, 5, 10):
        step = base * m
        if step * 6 >= v:
            break
    n = int(v / step)
    if n * step < v:
        n += 1
    return n * step, step


def _fmt(v):
    return ("%.2f" % v).rstrip("0").rstrip(".")


def _target_label(c):
    op, bound, unit = c.target
    op = {">=": "≥", "<=": "≤"}.get(op, op)
    return "target %s %s%s" % (op, _fmt(bound), "×" if unit == "x" else unit)


def svg(groups, subtitle):
    """subtitle: a list of short lines (date and machine, command, ...)."""
    return _svg(groups, [l if len(l) <= 140 else l[:139] + "…" for l in subtitle])


def _svg(groups, subtitle):
    """A hand-written horizontal bar chart; one <rect class="bar"> per
    comparison with a value, one <line class="target"> per target."""
    parts = []
    top_y = 48 + 14 * len(subtitle)          # the legend's baseline
    y = top_y + 28
    body = []
    for title, bars in groups:
        values = [c.ratio for _, c in bars if c is not None and c.ratio is not None]
        targets = [c.target_ratio for _, c in bars if c is not None and c.target_ratio is not None]
        xmax, step = _axis(max(values + targets + [1.0]) * 1.08)
        scale = PLOT_W / xmax
        body.append('<text class="group" x="10" y="%d">%s</text>' % (y, escape(title)))
        y += 14
        top = y
        for label, c in bars:
            cy = y + (ROW_H - BAR_H) // 2
            body.append('<text class="label" x="%d" y="%d" text-anchor="end">%s</text>'
                        % (LABEL_W, cy + BAR_H - 4, escape(label)))
            if c is None or c.ratio is None:
                body.append('<text class="value" x="%d" y="%d">n/a (not measured)</text>'
                            % (PLOT_X + 4, cy + BAR_H - 4))
                y += ROW_H
                continue
            w = max(1.0, c.ratio * scale)
            colour = COLOURS.get(c.result, COLOURS["info"])
            tip = "%s: %s (%s, %s)" % (c.metric, c.measured, c.target_text, c.result)
            body.append('<rect class="bar" x="%d" y="%d" width="%.1f" height="%d" fill="%s">'
                        '<title>%s</title></rect>'
                        % (PLOT_X, cy, w, BAR_H, colour, escape(tip)))
            if c.unit == "x":
                text = c.measured.strip()[:-1] + "×"
            else:
                text = "%s (%s×)" % (c.measured, _fmt(c.ratio))
            if c.result in ("PASS", "MISS"):
                text += "  " + c.result
            tx = PLOT_X + w + 6
            if c.target_ratio is not None:
                tx = max(tx, PLOT_X + c.target_ratio * scale + 6)
                tx_t = PLOT_X + c.target_ratio * scale
                body.append('<line class="target" x1="%.1f" y1="%d" x2="%.1f" y2="%d">'
                            '<title>%s</title></line>'
                            % (tx_t, cy - 4, tx_t, cy + BAR_H + 4, escape(_target_label(c))))
                text += "  (%s)" % _target_label(c)
            body.append('<text class="value" x="%.1f" y="%d">%s</text>'
                        % (tx, cy + BAR_H - 4, escape(text)))
            y += ROW_H
        # x axis of this panel
        body.append('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>'
                    % (PLOT_X, top, PLOT_X, y))
        body.append('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>'
                    % (PLOT_X, y, PLOT_X + PLOT_W, y))
        for k in range(int(round(xmax / step)) + 1):
            tx = PLOT_X + k * step * scale
            body.append('<line class="tick" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (tx, y, tx, y + 4))
            body.append('<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>'
                        % (tx, y + 16, _fmt(k * step)))
        if xmax >= 1:
            px = PLOT_X + scale
            body.append('<line class="parity" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (px, top, px, y))
        body.append('<text class="axislabel" x="%d" y="%d" text-anchor="middle">ratio (×; 1 = parity, dotted)</text>'
                    % (PLOT_X + PLOT_W // 2, y + 32))
        y += 58
    height = y + 10
    parts.append('<?xml version="1.0" encoding="UTF-8"?>')
    parts.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
                 'role="img" aria-labelledby="title">' % (WIDTH, height, WIDTH, height))
    parts.append('<title id="title">phi_guard benchmark ratios against their targets</title>')
    parts.append('<style>text{font-family:Helvetica,Arial,sans-serif;font-size:12px;fill:#212121}'
                 '.heading{font-size:16px;font-weight:bold}.group{font-size:13px;font-weight:bold}'
                 '.small,.tick{font-size:10px;fill:#616161}.axislabel{font-size:11px;fill:#424242}'
                 '.axis{stroke:#424242;stroke-width:1}.tick{stroke:#424242}'
                 '.parity{stroke:#9e9e9e;stroke-dasharray:2 3}'
                 '.target{stroke:#111;stroke-width:2;stroke-dasharray:4 2}</style>')
    parts.append('<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>' % (WIDTH, height))
    parts.append('<text class="heading" x="10" y="22">phi_guard benchmarks: ratios measured in one run</text>')
    for k, line in enumerate(subtitle):
        parts.append('<text class="small" x="10" y="%d">%s</text>' % (38 + 14 * k, escape(line)))
    # legend
    lx = 10
    for key, text in (("PASS", "meets its target"), ("MISS", "misses its target"),
                      ("info", "no target (for comparison)")):
        parts.append('<rect x="%d" y="%d" width="12" height="10" fill="%s"/>'
                     % (lx, top_y - 9, COLOURS[key]))
        parts.append('<text class="small" x="%d" y="%d">%s</text>' % (lx + 16, top_y, escape(text)))
        lx += 40 + 6 * len(text)
    parts.append('<line class="target" x1="%d" y1="%d" x2="%d" y2="%d"/>'
                 % (lx, top_y - 10, lx, top_y + 2))
    parts.append('<text class="small" x="%d" y="%d">target</text>' % (lx + 6, top_y))
    parts.extend(body)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--results", default=os.path.join(ROOT, "bench", "results"),
                    help="directory of <name>.txt files (default: bench/results)")
    ap.add_argument("--markdown", default=os.path.join(ROOT, "bench", "results.md"))
    ap.add_argument("--svg", default=os.path.join(ROOT, "bench", "chart.svg"))
    ap.add_argument("--command", default="make bench",
                    help="the command that produced the results, recorded in the report")
    args = ap.parse_args(argv)

    results = load(args.results)
    if not any(r.exists for r in results):
        print("bench report: no results in %s (run `make bench` first); nothing written"
              % args.results, file=sys.stderr)
        return 2
    mach = machine()
    svg_rel = os.path.relpath(args.svg, os.path.dirname(os.path.abspath(args.markdown)))
    md = markdown(results, mach, args.command, svg_rel)
    present = [r for r in results if r.exists]
    subtitle = ["%s, %s CPUs (%s)" % (_stamp(max(r.mtime for r in present)),
                                     mach["nproc"], mach["model"]),
                "command: " + args.command]
    charted = [g[0] for g in CHART_GROUPS]
    missing = [r.name for r in results if not r.exists and r.name in charted]
    if missing:
        subtitle.append("not run: %s (see results.md)" % ", ".join(missing))
    chart = svg(chart_bars(results), subtitle)
    for path, text in ((args.markdown, md), (args.svg, chart)):
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    print("bench report: wrote %s and %s" % (args.markdown, args.svg), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
