"""Tests of META.json, the PGXN distribution metadata: it is valid JSON
with every key the PGXN meta spec 1.0.0 requires, and its versions are the
control file's default_version, so a release cannot ship a stale one.

Run: python3 -m unittest discover -s test/tools
"""

import json
import os
import re
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def control_version():
    with open(os.path.join(ROOT, "phi_guard.control")) as f:
        m = re.search(r"^default_version = '([^']+)'$", f.read(), re.M)
    return m.group(1) if m else None


class Meta(unittest.TestCase):
    def setUp(self):
        with open(os.path.join(ROOT, "META.json")) as f:
            self.meta = json.load(f)

    def test_required_keys(self):
        for key in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec"):
            self.assertIn(key, self.meta)
        self.assertEqual(self.meta["name"], "phi_guard")
        self.assertEqual(self.meta["meta-spec"]["version"], "1.0.0")
        self.assertRegex(self.meta["version"], r"^\d+\.\d+\.\d+$")

    def test_versions_are_the_control_files(self):
        version = control_version()
        self.assertIsNotNone(version, "no default_version in phi_guard.control")
        self.assertEqual(self.meta["version"], version)
        self.assertEqual(self.meta["provides"]["phi_guard"]["version"], version)

    def test_provided_files_exist(self):
        ext = self.meta["provides"]["phi_guard"]
        for key in ("file", "docfile"):
            self.assertTrue(os.path.isfile(os.path.join(ROOT, ext[key])), ext[key])


if __name__ == "__main__":
    unittest.main()
