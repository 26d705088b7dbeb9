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
  bench/chart.svg    every row of every script's targets table, one panel
                     per script: a bar per numeric target, its length how
                     far the measured figure is from the target on a common
                     logarithmic axis (measured / target, or target /
                     measured where lower is better: right of the target
                     line = better), PASS and MISS in their colours, the
                     raw figures printed beside it; a diamond on the target
                     line for a target that is no number ("index scan");
                     the figures without a target listed as text.

Python 3 standard library only.  A missing results file is not an error: its
section says so and its panel is left out.  When no results file exists at
all nothing is written and the exit status is 2, so a committed report is
never replaced by an empty one.

The parser reads the tables by their column names and the comparisons by the
"metric" / "target" text the bench scripts print, so a changed target in a
script shows up here without editing this file.
"""

import argparse
import datetime
import math
import os
import re
import shutil
import subprocess
import sys
from xml.sax.saxutils import escape, quoteattr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# The scripts the report knows, in the order of its sections and panels.  Any
# other results file is still listed (its tables, its comparisons).
SCRIPTS = [
    ("encrypt", "bench/encrypt.sql", "Field encryption: phi_guard vs pgcrypto"),
    ("tokens", "bench/tokens.sql", "Blind indexes and tokenization"),
    ("audit", "bench/audit.sh", "Audit log: audited vs unaudited vs plpgsql triggers"),
    ("rls", "bench/rls.sql", "Row-level security: protected table vs WHERE"),
    ("adoption", "bench/adoption.sql", "Adoption: phi_encrypt_column and phi_rewrap_column"),
    ("disclosure", "bench/disclosure.sh", "Disclosure accounting: durable vs async"),
    ("tenant_keys", "bench/tenant_keys.sh", "Tenant keys: one key among 10,000 vs one key"),
    ("citus", "bench/citus.sh", "Citus: 1 and 2 workers, with and without phi_guard"),
]

# The units a figure or a target may carry: (kind, factor to the kind's base
# unit).  A figure is compared with a target of the same kind only.
UNITS = {"x": ("ratio", 1.0), "%": ("ratio", 0.01), "": ("number", 1.0),
         "µs": ("time", 1e-6), "ms": ("time", 1e-3), "s": ("time", 1.0),
         "/s": ("rate", 1.0)}

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
    """One measured figure against its target (one row of a targets
    table).  value and unit: the figure parsed ('0.370 µs' -> 0.37, 'µs'),
    or None; target: the parsed target, or None when it is no bound
    ('-', '(issue: ~70%)', 'index scan')."""

    def __init__(self, metric, measured, target_text, result):
        self.metric = metric
        self.measured = measured
        self.target_text = target_text
        self.value, self.unit = parse_measured(measured)
        self.target = parse_target(target_text)
        self.result = result or verdict(self.value, self.target)

    @property
    def score(self):
        """How the figure stands against its target, oriented so that more
        is better: measured / target for a lower bound (>=, >), target /
        measured for an upper bound (<=, <); 1 is the target itself.  0 or
        math.inf at the extremes (a figure of 0 against an upper bound is
        infinitely better).  None when there is no figure, no numeric
        target, or their units are of different kinds."""
        if self.value is None or self.target is None:
            return None
        op, bound, tunit = self.target
        mine, theirs = UNITS.get(self.unit), UNITS.get(tunit)
        if mine is None or theirs is None or mine[0] != theirs[0] or bound <= 0:
            return None
        value, bound = self.value * mine[1], bound * theirs[1]
        if op in (">=", ">"):
            return max(value, 0.0) / bound
        return bound / value if value > 0 else math.inf


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


def chart_panels(results):
    """[(results name, panel title, [Comparison, ...]), ...]: one panel per
    results file that exists, in the order of load(), holding every row of
    its targets table in the order printed."""
    titles = {n: (src, t) for n, src, t in SCRIPTS}
    panels = []
    for r in results:
        if r.exists:
            src, title = titles.get(r.name, ("bench/" + r.name, r.name))
            panels.append((r.name, "%s (%s)" % (title, src), list(r.comparisons.values())))
    return panels


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
    lines.append("![every benchmark target, measured against the target](%s)" % svg_name)
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
WIDTH = 1180
LABEL_W = 420            # left column: the metrics, right-aligned here
LABEL_CHARS = 66         # longer metrics are shortened (in full in the tooltip)
PLOT_X = LABEL_W + 12    # the bars
PLOT_W = 360
VALUE_X = PLOT_X + PLOT_W + 14   # right column: the raw figures and the verdict
BAR_H = 16
ROW_H = 24
SPANS = (2, 5, 10, 20, 50, 100)  # axis half-ranges: the target times / divided by


def _fmt(v):
    return ("%.2f" % v).rstrip("0").rstrip(".")


def _span(panels):
    """The axis half-range: the first of SPANS that holds every finite score
    (a bar further out is drawn to the edge, its figures printed as ever)."""
    worst = 2.0
    for _, _, rows in panels:
        for c in rows:
            s = c.score
            if s is not None and 0 < s < math.inf:
                worst = max(worst, s, 1 / s)
    return next((f for f in SPANS if f >= worst), SPANS[-1])


def _x(score, span):
    """The x of a score on the logarithmic axis: 1 (the target) in the
    middle of the plot, span at its right edge, 1/span at its left edge;
    scores beyond are clipped to the edges."""
    if score <= 0:
        lg = -1.0
    elif score == math.inf:
        lg = 1.0
    else:
        lg = max(-1.0, min(1.0, math.log(score) / math.log(span)))
    return PLOT_X + PLOT_W / 2.0 * (1 + lg)


def _row_text(c):
    """The raw figures of a row: 'measured vs target · margin · verdict', or
    'measured · no target' for a figure listed for comparison."""
    measured = c.measured if c.value is not None or c.measured not in ("", "n/a") \
        else "n/a (not measured)"
    bound = c.target_text.replace(">=", "≥").replace("<=", "≤")
    if c.target is None and (c.result not in ("PASS", "MISS") or bound in ("", "-")):
        return (measured + " · no target" + (" " + bound if bound not in ("", "-") else "")
                + (" · " + c.result if c.result != "info" else ""))
    parts = ["%s vs target %s" % (measured, bound)]
    s = c.score
    if s is not None and 0 < s < math.inf and abs(math.log(s)) >= 0.005:
        parts.append("%s× %s" % (_fmt(max(s, 1 / s)), "better" if s > 1 else "short"))
    parts.append(c.result)
    return " · ".join(parts)


def _row(c, name, y, span):
    """The SVG of one row at y: label, bar (or diamond), figures."""
    out = ['<g class="row" data-script=%s data-metric=%s data-result=%s>'
           % (quoteattr(name), quoteattr(c.metric), quoteattr(c.result))]
    label = c.metric if len(c.metric) <= LABEL_CHARS else c.metric[:LABEL_CHARS - 1] + "…"
    cy = y + (ROW_H - BAR_H) // 2
    base = cy + BAR_H - 4
    out.append('<text class="label" x="%d" y="%d" text-anchor="end">%s<title>%s</title></text>'
               % (LABEL_W, base, escape(label), escape(c.metric)))
    colour = COLOURS.get(c.result, COLOURS["info"])
    text = _row_text(c)
    mid = _x(1.0, span)
    s = c.score
    if s is not None:
        end = _x(s, span)
        w = max(abs(end - mid), 2.0)
        left = s < 1 or (s == 1 and c.result == "MISS")    # '> 1.0x' measured 1.00x
        x0 = mid - w if left else mid
        out.append('<rect class="bar" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" '
                   'data-score="%.6g"><title>%s: %s</title></rect>'
                   % (x0, cy, w, BAR_H, colour, s, escape(c.metric), escape(text)))
        if end in (PLOT_X, PLOT_X + PLOT_W):        # clipped: an arrowhead at the edge
            d = 1 if s > 1 else -1
            out.append('<polygon class="clip" points="%.1f,%d %.1f,%d %.1f,%d" fill="%s"/>'
                       % (end, cy, end + 6 * d, cy + BAR_H // 2, end, cy + BAR_H, colour))
    elif c.result in ("PASS", "MISS"):             # a target that is no number
        h = BAR_H // 2
        out.append('<polygon class="mark" points="%.1f,%d %.1f,%d %.1f,%d %.1f,%d" fill="%s">'
                   '<title>%s: %s</title></polygon>'
                   % (mid, cy, mid + h, cy + h, mid, cy + BAR_H, mid - h, cy + h, colour,
                      escape(c.metric), escape(text)))
    out.append('<text class="value%s" x="%d" y="%d" style="fill:%s">%s</text>'
               % (" miss" if c.result == "MISS" else "", VALUE_X, base,
                  colour, escape(text)))
    out.append("</g>")
    return out


def _ticks(span):
    """[(score, label), ...] of the axis: 1 and the 1-2-5 steps up to span,
    each way."""
    out = [(1.0, "target")]
    for f in (2, 5, 10, 20, 50, 100):
        if f <= span:
            out += [(1.0 / f, "÷%d" % f), (float(f), "×%d" % f)]
    return sorted(out)


def svg(panels, subtitle):
    """The chart of chart_panels() as SVG text.  subtitle: a list of short
    lines (date and machine, command, ...)."""
    return _svg(panels, [l if len(l) <= 160 else l[:159] + "…" for l in subtitle])


def _svg(panels, subtitle):
    """A hand-written chart: per panel a title, one <g class="row"> per
    comparison (data-metric, data-result) holding its label, its
    <rect class="bar"> (numeric target) or <polygon class="mark"> (other
    target) and its figures, then the target line and the axis."""
    span = _span(panels)
    mid = _x(1.0, span)
    top_y = 62 + 14 * len(subtitle)          # the legend's baseline
    y = top_y + 30
    body = []
    for name, title, rows in panels:
        body.append('<text class="group" x="10" y="%d">%s</text>' % (y, escape(title)))
        y += 10
        top = y
        if not rows:
            body.append('<text class="value" x="%d" y="%d">no targets table in bench/results/%s.txt'
                        ' (see results.md)</text>' % (PLOT_X, y + ROW_H - 8, escape(name)))
            y += ROW_H
        for c in rows:
            body.extend(_row(c, name, y, span))
            y += ROW_H
        body.append('<line class="target" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (mid, top - 2, mid, y + 2))
        body.append('<line class="axis" x1="%d" y1="%d" x2="%d" y2="%d"/>'
                    % (PLOT_X, y + 2, PLOT_X + PLOT_W, y + 2))
        for score, label in _ticks(span):
            tx = _x(score, span)
            body.append('<line class="tick" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (tx, y + 2, tx, y + 6))
            body.append('<text class="tick" x="%.1f" y="%d" text-anchor="middle">%s</text>'
                        % (tx, y + 17, label))
        y += 44
    height = y
    parts = ['<?xml version="1.0" encoding="UTF-8"?>',
             '<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
             'role="img" aria-labelledby="title">' % (WIDTH, height, WIDTH, height),
             '<title id="title">phi_guard benchmarks: every target of every script</title>',
             '<style>text{font-family:Helvetica,Arial,sans-serif;font-size:12px;fill:#212121}'
             '.heading{font-size:16px;font-weight:bold}.group{font-size:13px;font-weight:bold}'
             '.small,.tick{font-size:10px;fill:#616161}.miss{font-weight:bold}'
             '.axis{stroke:#424242;stroke-width:1}line.tick{stroke:#424242}'
             '.target{stroke:#111;stroke-width:1.5;stroke-dasharray:4 2}</style>',
             '<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>' % (WIDTH, height),
             '<text class="heading" x="10" y="22">phi_guard benchmarks: every target of every '
             'script, measured against its target</text>']
    for k, line in enumerate(subtitle):
        parts.append('<text class="small" x="10" y="%d">%s</text>' % (38 + 14 * k, escape(line)))
    parts.append('<text class="small" x="10" y="%d">Bar: measured ÷ target, or target ÷ measured '
                 'where lower is better, on a logarithmic axis; the dashed line is the target, '
                 'right of it is better. The raw figures are printed on the right.</text>'
                 % (38 + 14 * len(subtitle)))
    lx = 10
    for key, text in (("PASS", "PASS: meets its target"), ("MISS", "MISS: misses its target"),
                      ("info", "no target: the figure, listed")):
        parts.append('<rect x="%d" y="%d" width="12" height="10" fill="%s"/>'
                     % (lx, top_y - 9, COLOURS[key]))
        parts.append('<text class="small" x="%d" y="%d">%s</text>' % (lx + 16, top_y, escape(text)))
        lx += 40 + 6 * len(text)
    parts.append('<polygon points="%d,%d %d,%d %d,%d %d,%d" fill="#616161"/>'
                 % (lx + 5, top_y - 10, lx + 10, top_y - 5, lx + 5, top_y, lx, top_y - 5))
    parts.append('<text class="small" x="%d" y="%d">target that is no number (met or not)</text>'
                 % (lx + 16, top_y))
    lx += 40 + 6 * 37
    parts.append('<line class="target key" x1="%d" y1="%d" x2="%d" y2="%d"/>'
                 % (lx, top_y - 10, lx, top_y + 2))
    parts.append('<text class="small" x="%d" y="%d">the target</text>' % (lx + 6, top_y))
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
    missing = [r.name for r in results if not r.exists]
    if missing:
        subtitle.append("not run: %s (see results.md)" % ", ".join(missing))
    chart = svg(chart_panels(results), subtitle)
    for path, text in ((args.markdown, md), (args.svg, chart)):
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    print("bench report: wrote %s and %s" % (args.markdown, args.svg), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
