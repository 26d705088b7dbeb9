#!/usr/bin/env python3
"""Exit 1 (and name the file and line) when a server log message carries a
context token (a compact JWS, "eyJ...eyJ...").  Records that are statements
PostgreSQL itself logs (log_statement, log_min_error_statement, their
STATEMENT/CONTEXT/parameters lines) are skipped: they are the client's own
text, which the operator chose to log; phi_guard's messages are checked.

Usage: log-tokens.py FILE...
"""
import re
import sys

RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
TOKEN = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.eyJ")
CLIENT_TEXT = re.compile(r"\b(STATEMENT|CONTEXT|QUERY):  |"
                         r"(LOG|ERROR|WARNING|DEBUG\d?):\s+(statement|execute [^:]*|duration: [^:]*|parameters): ")


def records(path):
    current, start = [], 0
    with open(path, errors="replace") as f:
        for n, line in enumerate(f, 1):
            if RECORD.match(line) and current:
                yield start, current
                current = []
            if not current:
                start = n
            current.append(line)
    if current:
        yield start, current


def main(paths):
    bad = 0
    for path in paths:
        for start, lines in records(path):
            if CLIENT_TEXT.search(lines[0]):
                continue
            if any(TOKEN.search(l) for l in lines):
                print(f"{path}:{start}: a context token in a server message", file=sys.stderr)
                bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
