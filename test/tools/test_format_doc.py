"""The worked examples of docs/format.md, recomputed.

docs/format.md documents every byte format of phi_guard with worked examples
(one set of made-up keys, fixed nonces).  This test reads those examples out
of the document and recomputes each one from the algorithm the document
describes, written out again here with only the standard library and the
`cryptography` package (nothing is taken from phi_guard's sources):

  - the master-key fingerprint of the example master key;
  - both example wrapped keys: unwrapping with the master key and the key id
    gives the example key, wrapping with the example nonce gives the bytes;
  - the example ciphertext: header, associated data, decryption, encryption
    with the example nonce, the `phi1:` text form;
  - K_blind, the value's HMAC and the blind index at every documented width;
  - K_token, and for every example domain the fingerprint, seed(0) and token
    (plus the 9-digit spelling of the ssn value, and the area/group arithmetic);
  - the example audit record's entry_hash, and the chain test vector's
    entry_hash and block_hash values.

Each value is parsed from the document, so changing any of them (or the
constants of the algorithm text, such as the HMAC labels) makes a test fail;
an example that cannot be found is a failure too, never a skip.

The examples are read from the fenced code blocks that follow the document's
"**Example**" / "Test vector" markers, whose lines have the shape
`name = value  annotation` (a value ends at the first run of two spaces; a
value may go on over indented lines without " = ").

Run: python3 -m unittest discover -s test/tools
Another copy of the document (to check that an altered value fails):
    PHI_GUARD_FORMAT_DOC=/tmp/format.md \
        python3 -m unittest discover -s test/tools -p test_format_doc.py
"""

import base64
import hashlib
import hmac
import json
import os
import re
import struct
import unittest

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOC = os.environ.get("PHI_GUARD_FORMAT_DOC") or os.path.join(ROOT, "docs", "format.md")

# The algorithm constants, as docs/format.md writes them (each test also checks
# that the document still says so).
MK_FP_LABEL = b"phi_guard.mk.fp"
WRAP_AD_PREFIX = b"phi_guard.dek.v1"
BLIND_LABEL = b"phi_guard.blind_index.v1"
TOKEN_LABEL = b"phi_guard.token.v1"
SEED_LABEL = b"seed"
TEXT_PREFIX = "phi1:"
CT_OVERHEAD = 36


class DocError(AssertionError):
    """The document does not have the shape this test reads."""


# --- reading the document -------------------------------------------------

def read_doc():
    """The document's text; a missing or empty file is a failure."""
    try:
        with open(DOC, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise DocError("cannot read %s: %s" % (DOC, e.strerror))
    if not text.strip():
        raise DocError("%s is empty" % DOC)
    return text


def sections(text):
    """{heading: body} for every "## " and "### " heading outside code fences."""
    out = {}
    name = None
    body = []
    fenced = False
    for line in text.split("\n"):
        if line.startswith("```"):
            fenced = not fenced
        m = None if fenced else re.match(r"#{2,3} (.+)$", line)
        if m:
            if name is not None:
                out[name] = "\n".join(body)
            name, body = m.group(1).strip(), []
        else:
            body.append(line)
    if name is not None:
        out[name] = "\n".join(body)
    return out


def section(doc, heading):
    if heading not in doc:
        raise DocError("no section %r in %s" % (heading, DOC))
    return doc[heading]


def after(body, marker):
    """The text of body after the one occurrence of marker."""
    n = body.count(marker)
    if n != 1:
        raise DocError("marker %r found %d times (expected once)" % (marker, n))
    return body.split(marker, 1)[1]


def fenced_blocks(text):
    """[(language, content)] of the fenced code blocks of text, in order."""
    return [(m.group(1), m.group(2))
            for m in re.finditer(r"^```(\w*)\n(.*?)^```\s*$", text, re.S | re.M)]


def first_block(text, what):
    blocks = fenced_blocks(text)
    if not blocks:
        raise DocError("no code block for %s" % what)
    return blocks[0][1]


def field_parts(block, name):
    """[(value, annotation)] of the one line `name = value  annotation` of
    block and of its continuation lines (indented, without " = ")."""
    lines = block.split("\n")
    hits = [i for i, l in enumerate(lines)
            if re.match(r"\s*" + re.escape(name) + r"\s+=\s", l)]
    if len(hits) != 1:
        raise DocError("field %r found %d times (expected once)" % (name, len(hits)))
    i = hits[0]
    pieces = [re.split(r"\s+=\s", lines[i], 1)[1]]
    for l in lines[i + 1:]:
        if not l.strip() or not l[0].isspace() or re.search(r"\s=\s", l):
            break
        pieces.append(l)
    parts = []
    for p in pieces:
        value, _, note = p.strip().partition("  ")
        parts.append((value, note.strip()))
    return parts


def field(block, name):
    """The value of field name (one line)."""
    parts = field_parts(block, name)
    if len(parts) != 1:
        raise DocError("field %r spans %d lines (expected one)" % (name, len(parts)))
    return parts[0][0]


def unhex(value, what, length=None):
    """Bytes of a lower-case hex value, groups separated by single spaces."""
    h = value.replace(" ", "")
    if not re.fullmatch(r"(?:[0-9a-f]{2})+", h):
        raise DocError("%s is not lower-case hex: %r" % (what, value))
    b = bytes.fromhex(h)
    if length is not None and len(b) != length:
        raise DocError("%s is %d bytes, expected %d" % (what, len(b), length))
    return b


def abbreviated(b, abbrev, what):
    """Check that `a0a1…ab` (first and last bytes) abbreviates b."""
    m = re.fullmatch(r"([0-9a-f]+)…([0-9a-f]+)", abbrev)
    if not m:
        raise DocError("%s abbreviation %r is not <hex>…<hex>" % (what, abbrev))
    if not (b.hex().startswith(m.group(1)) and b.hex().endswith(m.group(2))):
        raise DocError("%s %s does not match its abbreviation %s" % (what, b.hex(), abbrev))


# --- the documented algorithms, written again ------------------------------

def hmac256(key, msg):
    return hmac.new(key, msg, hashlib.sha256).digest()


def wrap_ad(key_id):
    return WRAP_AD_PREFIX + struct.pack(">I", key_id)


def blind_index(k_blind, value, bits):
    mac = hmac256(k_blind, value.encode("utf-8"))
    return int.from_bytes(mac[:8], "big") >> (64 - bits)


def ssn_canonical(value):
    """The ssn rewrite: 9 digits become ddd-dd-dddd; anything else stays."""
    if re.fullmatch(r"[0-9]{9}", value):
        return "%s-%s-%s" % (value[:3], value[3:5], value[5:])
    return value


def seed_len(fmt, value):
    return 4 * len(value) + 4 if fmt == "digits" else 16


def seed(k_token, fp, attempt, length):
    out = b""
    block = 0
    while len(out) < length:
        out += hmac256(k_token, SEED_LABEL + fp + struct.pack(">II", attempt, block))
        block += 1
    return out[:length]


class Draw:
    """Numbers drawn from seed bytes; `used` lists the bytes that gave them."""

    def __init__(self, seed_bytes):
        self.left = list(seed_bytes)
        self.used = []

    def __call__(self, n):
        limit = 250 - 250 % n
        while self.left:
            x = self.left.pop(0)
            if x < limit:
                self.used.append(x)
                return x % n
        return 0


def luhn_valid(digits):
    total = 0
    for i, c in enumerate(reversed(digits)):
        v = int(c)
        if i % 2 == 1:
            v = v * 2 - 9 if v * 2 > 9 else v * 2
        total += v
    return total % 10 == 0


def make_token(fmt, value, seed_bytes):
    """(token, Draw) for a value (ssn already rewritten) and a seed."""
    draw = Draw(seed_bytes)
    if fmt == "opaque":
        return "tok_" + seed_bytes[:16].hex(), draw
    if fmt == "digits":
        out = "".join(str(draw(10)) for _ in range(len(value) - 4)) + value[-4:]
        if len(value) >= 12 and luhn_valid(out):
            out = str((int(out[0]) + 1) % 10) + out[1:]
        return out, draw
    if fmt == "ssn":
        area = 900 + draw(100)
        group = 1 + draw(99)
        return "%03d-%02d-%s" % (area, group, value[-4:]), draw
    raise DocError("unknown token format %r" % fmt)


def block_hash(prev, block_no, entry_hashes):
    return hashlib.sha256(prev + struct.pack(">QQ", block_no, len(entry_hashes))
                          + b"".join(entry_hashes)).digest()


# --- the tests -----------------------------------------------------------

class FormatDocExamples(unittest.TestCase):
    """Every worked example of docs/format.md recomputes."""

    @classmethod
    def setUpClass(cls):
        cls.text = read_doc()
        cls.doc = sections(cls.text)

    def assertSaysLiterally(self, heading, needle):
        """The section states the formula or constant this test uses (runs
        of white space count as one space)."""
        def squeeze(t):
            return re.sub(r"\s+", " ", t)
        self.assertIn(squeeze(needle), squeeze(section(self.doc, heading)),
                      "section %r no longer says %s" % (heading, needle))

    def keys(self):
        """{letter: (key bytes, id or None, fingerprint or None)} from the
        table of the "Example keys" section; M, D and R must be there."""
        table = section(self.doc, "Example keys")
        keys = {}
        for m in re.finditer(r"^\|[^|`]*`([A-Z])`([^|]*)\|\s*`([0-9a-f ]+)`"
                             r"(?:\s*\(fingerprint `([^`]*)`\))?\s*\|\s*$", table, re.M):
            letter, desc, hexkey, fp = m.groups()
            ident = re.search(r"\bid (\d+)", desc)
            keys[letter] = (unhex(hexkey, "key " + letter, 32),
                            int(ident.group(1)) if ident else None, fp)
        for letter in "MDR":
            if letter not in keys:
                raise DocError("example key %s not in the Example keys table" % letter)
        if keys["D"][1] is None or keys["R"][1] is None:
            raise DocError("the example data and index keys need their ids")
        return keys

    def test_master_key_fingerprint(self):
        self.assertSaysLiterally("Master key text", '`SHA-256("phi_guard.mk.fp" || M)`')
        m, _, fp = self.keys()["M"]
        self.assertIsNotNone(fp, "the example master key has no fingerprint")
        self.assertEqual(hashlib.sha256(MK_FP_LABEL + m).hexdigest()[:8], fp)

    def wrapped_examples(self):
        """[(letter, id, nonce abbreviation, ad bytes or None, wrapped bytes)]."""
        body = section(self.doc, "Wrapped keys")
        found = []
        for m in re.finditer(r"`([A-Z])`\s+\(id\s+(\d+)\)\s+wrapped\s+under\s+`M`\s+"
                             r"with\s+nonce\s+`([^`]*)`:\s*"
                             r"(?:```\n(.*?)```|`([0-9a-f ]+)`)", body, re.S):
            letter, ident, abbrev, block, inline = m.groups()
            if block is not None:
                parts = field_parts(block, "wrapped")
                wrapped = unhex("".join(p[0] for p in parts), "wrapped key " + letter)
                ad = unhex(field(block, "ad"), "ad of " + letter)
            else:
                wrapped, ad = unhex(inline, "wrapped key " + letter), None
            found.append((letter, int(ident), abbrev, ad, wrapped))
        return found

    def test_wrapped_keys(self):
        self.assertSaysLiterally("Wrapped keys", 'ad = "phi_guard.dek.v1" || uint32_be(id)')
        keys = self.keys()
        m = keys["M"][0]
        examples = self.wrapped_examples()
        self.assertEqual(sorted(e[0] for e in examples), ["D", "R"],
                         "expected wrapped examples of D and R")
        for letter, ident, abbrev, ad, wrapped in examples:
            with self.subTest(key=letter):
                key, table_id, _ = keys[letter]
                self.assertEqual(ident, table_id, "id differs from the Example keys table")
                self.assertEqual(len(wrapped), 60)
                nonce, sealed = wrapped[:12], wrapped[12:]
                abbreviated(nonce, abbrev, "nonce of " + letter)
                if ad is not None:
                    self.assertEqual(ad, wrap_ad(ident))
                # unwrap: the right key, and only under its own id
                self.assertEqual(AESGCM(m).decrypt(nonce, sealed, wrap_ad(ident)), key)
                with self.assertRaises(InvalidTag):
                    AESGCM(m).decrypt(nonce, sealed, wrap_ad(ident + 1))
                # wrap with the example nonce
                self.assertEqual(nonce + AESGCM(m).encrypt(nonce, key, wrap_ad(ident)), wrapped)

    def test_ciphertext(self):
        keys = self.keys()
        d, d_id, _ = keys["D"]
        body = section(self.doc, "Ciphertext")
        example = after(body, "**Example.**")
        prose = re.sub(r"\s+", " ", example.split("```", 1)[0])
        m = re.search(r"`phi_encrypt\('([^']*)', '([^']*)', '([^']*)'\)` with data key `D` "
                      r"\(id (\d+)\) and nonce `([^`]*)`", prose)
        if not m:
            raise DocError("the ciphertext example does not say what it encrypts")
        plaintext, key_name, aad, ident, abbrev = m.groups()
        self.assertEqual(int(ident), d_id)
        self.assertIn("`%s` version 1, id %d" % (key_name, d_id),
                      section(self.doc, "Example keys"))
        block = first_block(example, "the ciphertext example")

        header = unhex(field(block, "header"), "header", 8)
        self.assertEqual(header, bytes([1, 1, 0x01, 0]) + struct.pack(">I", d_id))
        associated = unhex(field(block, "associated"), "associated")
        self.assertEqual(associated, header + aad.encode("utf-8"))

        raw_fields = [l for l in block.split("\n") if re.match(r"raw \(\d+ B\)\s+=", l)]
        self.assertEqual(len(raw_fields), 1, "one `raw (N B) =` line")
        raw_name = raw_fields[0].split("=")[0].strip()
        parts = field_parts(block, raw_name)
        self.assertEqual(len(parts), 4, "raw is header, nonce, ciphertext, tag")
        h, nonce, ct, tag = (unhex(p[0], "raw part %d" % i) for i, p in enumerate(parts))
        raw = h + nonce + ct + tag
        self.assertEqual(len(raw), int(re.search(r"\d+", raw_name).group()))
        self.assertEqual(h, header)
        self.assertEqual(len(nonce), 12)
        abbreviated(nonce, abbrev, "ciphertext nonce")
        self.assertEqual(len(tag), 16)
        self.assertEqual(len(ct), len(plaintext.encode("utf-8")))
        stated = re.search(r"\((\d+) bytes\)", parts[2][1])
        if stated:
            self.assertEqual(int(stated.group(1)), len(ct))
        self.assertEqual(len(raw), CT_OVERHEAD + len(ct))

        self.assertEqual(AESGCM(d).decrypt(nonce, ct + tag, associated),
                         plaintext.encode("utf-8"))
        self.assertEqual(AESGCM(d).encrypt(nonce, plaintext.encode("utf-8"), associated),
                         ct + tag)
        self.assertEqual(field(block, "text form"),
                         TEXT_PREFIX + base64.b64encode(raw).decode("ascii"))

    def test_blind_index(self):
        self.assertSaysLiterally("Blind index", 'K_blind = HMAC(R, "phi_guard.blind_index.v1")')
        self.assertSaysLiterally("Blind index", "result = uint64 from mac bytes 0..7 (big-endian), "
                                                "shifted right by 64 - bits\n```")
        r = self.keys()["R"][0]
        example = after(section(self.doc, "Blind index"), "**Example** with index key `R`")
        block = first_block(example, "the blind index example")
        k_blind = hmac256(r, BLIND_LABEL)
        self.assertEqual(unhex(field(block, "K_blind"), "K_blind", 32), k_blind)

        m = re.search(r"^phi_blind_index\('([^']*)', '([^']*)', (\d+)\)\s+=\s+(\d+)\s*$",
                      block, re.M)
        if not m:
            raise DocError("no phi_blind_index(...) = n line in the blind index example")
        value, key_name = m.group(1), m.group(2)
        self.assertEqual(key_name, "patients")
        widths = [(int(m.group(3)), int(m.group(4)))]
        widths += [(int(b), int(v)) for b, v in
                   re.findall(r"^\s+…, (\d+)\)\s+=\s+(\d+)\s*$", block, re.M)]
        self.assertGreaterEqual(len(widths), 2, "expected several widths")

        mac_name = 'HMAC(K_blind, "%s")' % value
        mac = unhex(field(block, mac_name), mac_name, 32)
        self.assertEqual(mac, hmac256(k_blind, value.encode("utf-8")))
        for bits, expected in widths:
            with self.subTest(bits=bits):
                self.assertTrue(8 <= bits <= 63)
                self.assertEqual(blind_index(k_blind, value, bits), expected)

    def token_examples(self):
        """(K_token, {domain: (format, value, other spelling, lines)})."""
        example = after(section(self.doc, "Derivation"), "**Example** with index key `R`")
        prose = re.sub(r"\s+", " ", example.split("```", 1)[0])
        if "(deterministic domains " not in prose:
            raise DocError("the token example does not say its domains are deterministic")
        formats = dict(re.findall(r"`(\w+)` of format `(\w+)`", prose))
        block = first_block(example, "the token example")
        head, *rest = re.split(r"^(?=domain )", block, flags=re.M)
        domains = {}
        for sub in rest:
            m = re.match(r'domain (\w+), "([^"]*)"(?:\s+\(also "([^"]*)"\))?\s*\n', sub)
            if not m:
                raise DocError("token example line %r is not `domain <name>, \"<value>\"`"
                               % sub.split("\n")[0])
            name = m.group(1)
            if name not in formats:
                raise DocError("the format of token domain %r is not stated" % name)
            domains[name] = (formats[name], m.group(2), m.group(3), sub)
        if not domains:
            raise DocError("no token domain in the token example")
        return unhex(field(head, "K_token"), "K_token", 32), domains

    def test_tokens(self):
        self.assertSaysLiterally("Derivation", 'K_token = HMAC(R, "phi_guard.token.v1")')
        self.assertSaysLiterally("Derivation",
                                 "fingerprint = HMAC(K_token, domain || 0x00 || value)")
        self.assertSaysLiterally("Derivation", 'S(t, b) = HMAC(K_token, "seed" || fingerprint || '
                                               "uint32_be(t) || uint32_be(b))")
        self.assertSaysLiterally("Derivation", "if `x < 250 − (250 mod n)`")
        r = self.keys()["R"][0]
        k_token, domains = self.token_examples()
        self.assertEqual(k_token, hmac256(r, TOKEN_LABEL))
        self.assertEqual(sorted(f for f, *_ in domains.values()), ["digits", "opaque", "ssn"],
                         "expected one example per token format")
        for name, (fmt, value, other, sub) in domains.items():
            with self.subTest(domain=name):
                if fmt == "ssn":
                    value = ssn_canonical(value)
                fp = hmac256(k_token, name.encode("utf-8") + b"\x00" + value.encode("utf-8"))
                self.assertEqual(unhex(field(sub, "fingerprint"), "fingerprint", 32), fp)
                s = seed(k_token, fp, 0, seed_len(fmt, value))
                if re.search(r"^\s*seed\(0\)\s", sub, re.M):
                    self.assertEqual(unhex(field(sub, "seed(0)"), "seed(0)"), s)
                token, draw = make_token(fmt, value, s)
                self.assertNotEqual(token, value)
                self.assertEqual(field(sub, "token"), token)
                if other is not None:
                    # the other spelling is the same value: same fingerprint, same token
                    self.assertEqual(ssn_canonical(other), value)
                if fmt == "ssn":
                    self.check_area_group(sub, draw)

    def check_area_group(self, sub, draw):
        """The line `area = 900 + 0x82 (130) mod 100 = 930, group = …` states
        the bytes drawn and the arithmetic."""
        m = re.search(r"area = 900 \+ 0x([0-9a-f]{2}) \((\d+)\) mod 100 = (\d+), "
                      r"group = 1 \+ 0x([0-9a-f]{2}) \((\d+)\) mod 99 = (\d+)", sub)
        if not m:
            raise DocError("the ssn token example has no area/group line")
        ahex, adec, area, ghex, gdec, group = m.groups()
        self.assertEqual([int(ahex, 16), int(ghex, 16)], draw.used)
        self.assertEqual([int(adec), int(gdec)], draw.used)
        self.assertEqual(int(area), 900 + int(adec) % 100)
        self.assertEqual(int(group), 1 + int(gdec) % 99)

    def test_audit_record_entry_hash(self):
        body = section(self.doc, "Record")
        example = after(body, "Example (one line, as stored")
        blocks = fenced_blocks(example)
        if not blocks or blocks[0][0] != "json":
            raise DocError("no json block for the audit record example")
        record = blocks[0][1].rstrip("\n")
        self.assertNotIn("\n", record, "the record is one line")
        m = re.search(r"`entry_hash` = `([0-9a-f]{64})`", example)
        if not m:
            raise DocError("no entry_hash for the audit record example")
        self.assertEqual(hashlib.sha256(record.encode("utf-8")).hexdigest(), m.group(1))
        # the record has the documented keys, in the documented order
        keys = re.findall(r"^\| `(\w+)` \|", body.split("Example (one line")[0], re.M)
        obj = json.loads(record)
        self.assertEqual(list(obj), keys)
        self.assertEqual(obj["v"], 1)
        self.assertRegex(obj["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")

    def test_chain_vector(self):
        self.assertSaysLiterally("Blocks: `phi_guard.audit_block`",
                                 "block_hash = SHA-256( prev_hash || uint64_be(block_no) || "
                                 "uint64_be(entries) || entry_hash_1 || … || entry_hash_n )")
        block = first_block(after(section(self.doc, "Blocks: `phi_guard.audit_block`"),
                                  "Test vector"), "the chain test vector")
        entries = []
        for i in range(1, 100):
            if not re.search(r"^record %d\s" % i, block, re.M):
                break
            record = field(block, "record %d" % i)
            h = unhex(field(block, "entry_hash_%d" % i), "entry_hash_%d" % i, 32)
            with self.subTest(record=i):
                self.assertEqual(hashlib.sha256(record.encode("utf-8")).digest(), h)
            entries.append(h)
        self.assertGreaterEqual(len(entries), 1, "no record in the chain test vector")
        groups = re.findall(r"^prev_hash = (.+?), block_no = (\d+), entries = (\d+)\s*\n"
                            r"block_hash = ([0-9a-f]+)\s*$", block, re.M)
        self.assertGreaterEqual(len(groups), 1, "no block in the chain test vector")
        for prev_text, block_no, n, expected in groups:
            with self.subTest(block_no=block_no):
                m = re.fullmatch(r"(\d+) bytes 0x([0-9a-f]{2})|(\d+) zero bytes", prev_text)
                if not m:
                    raise DocError("prev_hash %r is not `32 bytes 0xNN` or `32 zero bytes`"
                                   % prev_text)
                if m.group(3):
                    prev = bytes(int(m.group(3)))
                else:
                    prev = bytes.fromhex(m.group(2)) * int(m.group(1))
                self.assertEqual(len(prev), 32)
                n = int(n)
                self.assertLessEqual(n, len(entries))
                self.assertEqual(block_hash(prev, int(block_no), entries[:n]),
                                 unhex(expected, "block_hash", 32))


if __name__ == "__main__":
    unittest.main()
