#!/usr/bin/env python3
"""check-tested.py - every user-facing function (phi_*) that the extension
defines is called by at least one test.

Usage: check-tested.py [--root DIR]

The functions are those the extension scripts (phi_guard--*.sql) and the
install script's pieces (src/**/*.sql) of the tree at DIR (default: the
repository this file is in) create; the tests are the files of sql/ and of
the folders of test/ (the runners and checkers directly in test/ are not
tests).  Prints each function no test calls, then a last line
"tested: N passed, M failed", and exits 1 when a function is not called.
Reading nothing is a failure, not a pass: no function found, or no test
file found, prints the reason and "tested: 0 passed, 1 failed".
"""
import argparse
import pathlib
import re
import sys

DEFINITION = re.compile(r"CREATE (?:OR REPLACE )?FUNCTION phi_guard\.(phi_\w+)\s*\(")
TEST_SUFFIXES = (".sql", ".spec", ".pl", ".py", ".c", ".js")


def defined_functions(root):
    """The phi_* functions the scripts create, but the type's own I/O
    functions (they run in every cast and literal, not by name)."""
    scripts = sorted(root.glob("phi_guard--*.sql")) + sorted((root / "src").rglob("*.sql"))
    names = set()
    for script in scripts:
        names |= set(DEFINITION.findall(script.read_text(errors="replace")))
    return {f for f in names if not f.startswith("phi_ciphertext")}


def test_files(root):
    """The test files: everything of sql/ and of test/'s folders."""
    dirs = [root / "sql"] + sorted(p for p in (root / "test").glob("*") if p.is_dir())
    return sorted(p for d in dirs for p in d.rglob("*")
                  if p.is_file() and p.suffix in TEST_SUFFIXES)


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", type=pathlib.Path,
                    default=pathlib.Path(__file__).resolve().parent.parent)
    args = ap.parse_args(argv)
    defined = defined_functions(args.root)
    files = test_files(args.root)
    if not defined or not files:
        print("not tested: read nothing (%d phi_* functions in the scripts, %d test files)"
              % (len(defined), len(files)))
        print("tested: 0 passed, 1 failed")
        return 1
    tests = "\n".join(p.read_text(errors="replace") for p in files)
    missing = sorted(f for f in defined if not re.search(r"\b" + f + r"\s*\(", tests))
    for f in missing:
        print(f"not tested: {f}")
    print(f"tested: {len(defined) - len(missing)} passed, {len(missing)} failed")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
