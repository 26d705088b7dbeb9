"""Tests of the layout of the unit tests (test/unit): one test file per
core module, each run by main.c, and the generated JWS vectors exactly what
their generator writes.

Run: python3 -m unittest discover -s test/tools
"""

import importlib.util
import os
import re
import subprocess
import sys
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = os.path.join(ROOT, "src", "core")
UNIT = os.path.join(ROOT, "test", "unit")


class UnitLayout(unittest.TestCase):
    def test_every_core_module_has_a_test_file_run_by_main(self):
        modules = sorted(f[:-2] for f in os.listdir(CORE) if f.endswith(".c"))
        self.assertTrue(modules, "no module in src/core")
        with open(os.path.join(UNIT, "main.c")) as f:
            main = f.read()
        for m in modules:
            with self.subTest(module=m):
                path = os.path.join(UNIT, "test_%s.c" % m)
                self.assertTrue(os.path.isfile(path), "no test/unit/test_%s.c" % m)
                with open(path) as f:
                    self.assertRegex(f.read(), r"(?m)^void\ntest_%s\(void\)$" % m)
                self.assertRegex(main, r"\btest_%s\(\);" % m)

    def test_every_test_file_tests_a_core_module(self):
        modules = {f[:-2] for f in os.listdir(CORE) if f.endswith(".c")}
        for f in os.listdir(UNIT):
            m = re.fullmatch(r"test_(\w+)\.c", f)
            if m:
                self.assertIn(m.group(1), modules, "%s tests no src/core module" % f)

    @unittest.skipIf(importlib.util.find_spec("cryptography") is None,
                     "make_jws_vectors.py needs the cryptography package")
    def test_jws_vectors_are_the_generators_output(self):
        out = subprocess.run([sys.executable, "make_jws_vectors.py"], cwd=UNIT,
                             capture_output=True, text=True, check=True).stdout
        with open(os.path.join(UNIT, "jws_vectors.h")) as f:
            self.assertEqual(f.read(), out, "jws_vectors.h differs: make -C test/unit vectors")


if __name__ == "__main__":
    unittest.main()
