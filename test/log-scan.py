#!/usr/bin/env python3
"""log-scan.py - the secrets scan of the server logs a test run wrote.

Usage: log-scan.py --master-key FILE LOG...

Two checks, each printed as "ok: ..." or "not ok: ...", then a last line
"log scan: N passed, M failed"; the exit status is 1 when one failed.

  1. the master key (the 64 hexadecimal characters of each line of FILE,
     in any case) appears in no log;
  2. no server message carries a context token (a compact JWS,
     "eyJ...eyJ...").  Records that are statements PostgreSQL itself logs
     (log_statement, log_min_error_statement, their STATEMENT / CONTEXT /
     parameters lines) are skipped: they are the client's own text, which
     the operator chose to log; phi_guard's messages are checked.

A scan that reads nothing proves nothing, so it fails both checks: no LOG
given, a LOG that cannot be read, no record in any LOG, or no key in FILE.
"""
import argparse
import re
import sys

RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ")
CLIENT_TEXT = re.compile(r"\b(STATEMENT|CONTEXT|QUERY):  |"
                         r"(LOG|ERROR|WARNING|DEBUG\d?):\s+(statement|execute [^:]*|duration: [^:]*|parameters): ")
HEXKEY = re.compile(r"[0-9a-fA-F]{64}")


def records(lines):
    """The log's records as (first line number, lines): a record starts at
    a line with a timestamp and runs to the next one."""
    current, start = [], 0
    for n, line in enumerate(lines, 1):
        if RECORD.match(line) and current:
            yield start, current
            current = []
        if not current:
            start = n
        current.append(line)
    if current:
        yield start, current


def master_keys(path):
    """The master keys of a key file, lower case; [] when it has none."""
    with open(path) as f:
        return [m.group(0).lower() for m in map(HEXKEY.search, f) if m]


def scan(key_file, paths):
    """Run both checks; returns the list of (ok, text) results."""
    problems = []
    try:
        keys = master_keys(key_file)
    except OSError as e:
        keys = []
        problems.append(f"cannot read the master key file {key_file}: {e.strerror}")
    if not keys:
        problems.append(f"no master key in {key_file}")
    if not paths:
        problems.append("no server log to scan")
    nrecords = 0
    key_in = []
    token_at = []
    for path in paths:
        try:
            with open(path, errors="replace") as f:
                text = f.read()
        except OSError as e:
            problems.append(f"cannot read {path}: {e.strerror}")
            continue
        low = text.lower()
        if any(k in low for k in keys):
            key_in.append(path)
        for start, lines in records(text.splitlines(keepends=True)):
            nrecords += 1
            if CLIENT_TEXT.search(lines[0]):
                continue
            if any(TOKEN.search(l) for l in lines):
                token_at.append(f"{path}:{start}")
    if paths and nrecords == 0 and not problems:
        problems.append(f"no log record in {len(paths)} file(s)")
    if problems:
        why = "; ".join(problems)
        return [(False, f"the master key scan read nothing: {why}"),
                (False, f"the context token scan read nothing: {why}")]
    return [
        (not key_in, "the master key appears in no server log" if not key_in else
         "the master key appears in " + ", ".join(key_in)),
        (not token_at, "no context token appears in a server message" if not token_at else
         "a context token in a server message at " + ", ".join(token_at)),
    ]


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--master-key", required=True, metavar="FILE")
    ap.add_argument("logs", nargs="*", metavar="LOG")
    args = ap.parse_args(argv)
    results = scan(args.master_key, args.logs)
    for ok, text in results:
        print(("ok: " if ok else "not ok: ") + text)
    failed = sum(1 for ok, _ in results if not ok)
    print(f"log scan: {len(results) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
