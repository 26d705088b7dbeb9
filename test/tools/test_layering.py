"""The layering of src/: every file includes (and calls) only its own folder
and folders lower in

    core < common < audit < context < keys < crypto < tokens < guard < src/phi_guard.c

with no include loop among files and no PostgreSQL header in src/core (plain C,
unit-tested and fuzzed without a server).  src/phi_guard.h holds only what is
global (the SQLSTATEs): it counts as part of common.

Checks, on the #include "..." lines of src/**/*.c and *.h (an include is the
project's when it names a file of src/, relative to the including file's folder
or to src/ — the compiler's search order with -Isrc; anything else, such as
"utils/rel.h" or PostgreSQL's own "common/hashfn.h", is external):
  (a) no include loop among files,
  (b) no include from a lower folder to a higher one,
  (c) no PostgreSQL header in src/core (a quoted include there must be a
      file of src/core; an <...> include must not name a PostgreSQL header),
and, when the objects are built and up to date, the same order and no loop
for calls (a file referencing a symbol defined by another file, from nm).

The checker is tested on synthetic trees in a temporary folder: a clean tree
passes, each kind of violation is reported, an empty tree is an error.

Run: python3 -m unittest discover -s test/tools
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# lowest first; "top" is src/phi_guard.c (and any other file directly in src/)
ORDER = ["core", "common", "audit", "context", "keys", "crypto", "tokens", "adopt", "guard", "top"]
RANK = {name: i for i, name in enumerate(ORDER)}

# Headers of PostgreSQL's server include tree: top-level files and folders.
PG_TOP_HEADERS = {
    "postgres.h", "postgres_fe.h", "postgres_ext.h", "c.h", "fmgr.h", "funcapi.h",
    "miscadmin.h", "pgstat.h", "pgtime.h", "pg_config.h", "pg_config_manual.h",
    "pg_config_os.h", "port.h", "windowapi.h", "getopt_long.h", "libpq-fe.h",
}
PG_HEADER_DIRS = {
    "access", "bootstrap", "catalog", "commands", "common", "datatype", "executor",
    "fe_utils", "foreign", "jit", "lib", "libpq", "mb", "nodes", "optimizer",
    "parser", "partitioning", "port", "portability", "postmaster", "regex",
    "replication", "rewrite", "snowball", "statistics", "storage", "tcop",
    "tsearch", "utils",
}

INCLUDE_RE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


class NoSourcesError(Exception):
    """The tree held no C source: the check would vacuously pass."""


def level_of(rel):
    """Layer of a file given by its path relative to src/ ("audit/x.c")."""
    parts = rel.split("/")
    if len(parts) == 1:
        return "common" if parts[0] == "phi_guard.h" else "top"
    if parts[0] not in RANK or parts[0] == "top":
        return None
    return parts[0]


def scan(src):
    """{file relative to src: [(kind, target, lineno)]} for every .c/.h under src."""
    files = {}
    for dirpath, _dirs, names in os.walk(src):
        for name in names:
            if not name.endswith((".c", ".h")):
                continue
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            incs = []
            with open(path, encoding="utf-8", errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE_RE.match(line)
                    if m:
                        incs.append((m.group(1), m.group(2), lineno))
            files[rel] = incs
    return files


def resolve(files, including, target):
    """The project file a quoted include names, or None when external."""
    here = os.path.dirname(including)
    for cand in (os.path.normpath(os.path.join(here, target)).replace(os.sep, "/"),
                 os.path.normpath(target).replace(os.sep, "/")):
        if cand in files:
            return cand
    return None


def is_pg_header(target):
    first = target.split("/")[0]
    return target in PG_TOP_HEADERS or ("/" in target and first in PG_HEADER_DIRS)


def find_cycles(graph):
    """Each elementary loop found by a depth-first search, as a file list."""
    cycles, state, stack = [], {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def order_violations(edges, what):
    out = []
    for a, b, where in edges:
        la, lb = level_of(a), level_of(b)
        if la is None:
            out.append(f"{a}: folder not in the layering order {ORDER}")
        elif lb is not None and RANK[lb] > RANK[la]:
            out.append(f"{where}: {what} {b} ({lb}) from {la}, a lower layer")
    return out


def check_includes(src):
    """Violations of (a), (b), (c) in the tree under src, as strings."""
    files = scan(src)
    if not any(f.endswith(".c") for f in files):
        raise NoSourcesError(f"no .c file under {src}")
    problems, graph, edges = [], {}, []
    for rel, incs in sorted(files.items()):
        graph.setdefault(rel, set())
        if level_of(rel) is None:
            problems.append(f"{rel}: folder not in the layering order {ORDER}")
        for kind, target, lineno in incs:
            where = f"src/{rel}:{lineno}"
            dep = resolve(files, rel, target) if kind == '"' else None
            if dep is not None:
                graph[rel].add(dep)
                edges.append((rel, dep, where))
            if level_of(rel) == "core" and (
                    (kind == '"' and dep is None) or (kind == "<" and is_pg_header(target))):
                problems.append(f"{where}: src/core includes {kind}{target} (not a src/core file)")
    problems += order_violations([e for e in edges if level_of(e[0]) is not None],
                                 "includes")
    for cyc in find_cycles(graph):
        problems.append("include loop: " + " -> ".join(cyc))
    return problems, files


def object_symbols(src):
    """{file.c: (defined globals, undefined)} from nm, or None when the
    objects are missing or older than their sources."""
    out = {}
    for dirpath, _dirs, names in os.walk(src):
        for name in names:
            if not name.endswith(".c"):
                continue
            c = os.path.join(dirpath, name)
            o = c[:-2] + ".o"
            if not os.path.exists(o) or os.path.getmtime(o) < os.path.getmtime(c):
                return None
            rel = os.path.relpath(c, src).replace(os.sep, "/")
            res = subprocess.run(["nm", "-g", o], capture_output=True, text=True)
            if res.returncode != 0:
                return None
            defined, undefined = set(), set()
            for line in res.stdout.splitlines():
                parts = line.split()
                if len(parts) == 2 and parts[0] == "U":
                    undefined.add(parts[1])
                elif len(parts) == 3 and parts[1] in "TDBRVWC" and parts[1] != "U":
                    defined.add(parts[2])
            out[rel] = (defined, undefined)
    return out or None


def check_calls(src, symbols):
    """Order and loop violations of the file-level reference graph."""
    owner = {}
    for rel, (defined, _u) in symbols.items():
        for sym in defined:
            owner[sym] = rel
    graph, edges = {}, []
    for rel, (_d, undefined) in sorted(symbols.items()):
        graph.setdefault(rel, set())
        for sym in sorted(undefined):
            dep = owner.get(sym)
            if dep is not None and dep != rel:
                if dep not in graph[rel]:
                    edges.append((rel, dep, f"src/{rel} ({sym})"))
                graph[rel].add(dep)
    problems = order_violations(edges, "calls")
    problems += ["call loop: " + " -> ".join(c) for c in find_cycles(graph)]
    return problems


class RepositoryLayering(unittest.TestCase):
    """The real tree."""

    SRC = os.path.join(ROOT, "src")

    def test_includes_follow_the_layering(self):
        problems, files = check_includes(self.SRC)
        self.assertGreater(len([f for f in files if f.startswith("core/")]), 0)
        self.assertGreater(sum(len(i) for i in files.values()), 0, "no #include read")
        self.assertEqual([], problems, "\n" + "\n".join(problems))

    def test_calls_follow_the_layering(self):
        if shutil.which("nm") is None:
            self.skipTest("nm is not installed")
        symbols = object_symbols(self.SRC)
        if symbols is None:
            self.skipTest("objects missing or stale: run make first")
        problems = check_calls(self.SRC, symbols)
        self.assertEqual([], problems, "\n" + "\n".join(problems))


class CheckerOnSyntheticTrees(unittest.TestCase):
    """The checker itself: it reports what it must, and nothing else."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="phi_guard_layering.")
        self.src = os.path.join(self.tmp, "src")
        os.makedirs(self.src)

    def tearDown(self):
        shutil.rmtree(self.tmp)

    def write(self, rel, *includes):
        path = os.path.join(self.src, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("/* synthetic */\n")
            for inc in includes:
                f.write(f"#include {inc}\n")

    def clean_tree(self):
        self.write("core/aead.h", "<stdint.h>")
        self.write("core/aead.c", '"aead.h"', "<openssl/evp.h>", "<string.h>")
        self.write("phi_guard.h", '"postgres.h"')
        self.write("common/spi.h", '"postgres.h"', '"executor/spi.h"')
        self.write("common/spi.c", '"postgres.h"', '"common/spi.h"', '"common/hashfn.h"',
                   '"phi_guard.h"')
        self.write("audit/audit.h", '"postgres.h"')
        self.write("audit/record.c", '"audit/audit.h"', '"common/spi.h"', '"core/aead.h"')
        self.write("context/context.c", '"audit/audit.h"', '"phi_guard.h"')
        self.write("phi_guard.c", '"audit/audit.h"', '"common/spi.h"', '"phi_guard.h"')

    def test_clean_tree_passes(self):
        self.clean_tree()
        problems, files = check_includes(self.src)
        self.assertEqual([], problems)
        self.assertEqual(9, len(files))

    def test_empty_tree_is_an_error(self):
        with self.assertRaises(NoSourcesError):
            check_includes(self.src)

    def test_include_loop_is_reported(self):
        self.clean_tree()
        self.write("audit/writer.h", '"audit/access.h"')
        self.write("audit/access.h", '"writer.h"')
        problems, _ = check_includes(self.src)
        self.assertEqual(1, len(problems), problems)
        self.assertIn("include loop", problems[0])
        self.assertIn("audit/access.h", problems[0])
        self.assertIn("audit/writer.h", problems[0])

    def test_upward_include_is_reported(self):
        self.clean_tree()
        self.write("audit/record.c", '"audit/audit.h"', '"context/context.h"')
        self.write("context/context.h")
        problems, _ = check_includes(self.src)
        self.assertEqual(1, len(problems), problems)
        self.assertIn("src/audit/record.c:3", problems[0])
        self.assertIn("context/context.h (context) from audit", problems[0])

    def test_global_header_must_not_include_a_capability(self):
        self.clean_tree()
        self.write("phi_guard.h", '"postgres.h"', '"audit/audit.h"')
        problems, _ = check_includes(self.src)
        self.assertEqual(1, len(problems), problems)
        self.assertIn("src/phi_guard.h:3", problems[0])

    def test_postgres_header_in_core_is_reported(self):
        self.clean_tree()
        self.write("core/bad.c", '"aead.h"', '"postgres.h"', "<utils/elog.h>", "<stdlib.h>")
        problems, _ = check_includes(self.src)
        self.assertEqual(2, len(problems), problems)
        self.assertTrue(all("src/core/bad.c" in p for p in problems), problems)

    def test_unknown_folder_is_reported(self):
        self.clean_tree()
        self.write("misc/x.c", '"audit/audit.h"')
        problems, _ = check_includes(self.src)
        self.assertTrue(problems and all("misc/x.c" in p for p in problems), problems)

    def test_call_graph_checks(self):
        symbols = {
            "audit/record.c": ({"audit_json_string"}, {"context_user_id"}),
            "context/context.c": ({"context_user_id"}, {"audit_json_string"}),
            "common/spi.c": ({"spi_run"}, set()),
            "keys/keyring.c": (set(), {"spi_run", "audit_json_string"}),
        }
        problems = check_calls(self.src, symbols)
        self.assertEqual(2, len(problems), problems)
        self.assertTrue(any("calls context/context.c" in p and "context_user_id" in p
                            for p in problems), problems)
        self.assertTrue(any(p.startswith("call loop") for p in problems), problems)


if __name__ == "__main__":
    unittest.main()
