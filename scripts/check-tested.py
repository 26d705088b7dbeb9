#!/usr/bin/env python3
"""Every user-facing function (phi_*) that the extension scripts create is
called by at least one test (sql/, test/): print each that is not, and
exit 1.  Prints 'tested: N passed, M failed' for the test runner."""
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
defined = set()
for script in root.glob("phi_guard--*.sql"):
    defined |= set(re.findall(r"CREATE (?:OR REPLACE )?FUNCTION phi_guard\.(phi_\w+)\s*\(",
                              script.read_text()))
tests = "\n".join(p.read_text(errors="replace")
                  for d in ("sql", "test") for p in (root / d).rglob("*")
                  if p.is_file() and p.suffix in (".sql", ".spec", ".pl", ".py", ".c", ".js"))
# the type's own functions run in every cast and literal, not by name
defined = {f for f in defined if not f.startswith("phi_ciphertext")}
missing = sorted(f for f in defined if not re.search(r"\b" + f + r"\s*\(", tests))
for f in missing:
    print(f"not tested: {f}")
print(f"tested: {len(defined) - len(missing)} passed, {len(missing)} failed")
sys.exit(1 if missing else 0)
