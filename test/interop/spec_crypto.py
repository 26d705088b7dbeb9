#!/usr/bin/python3
"""Independent implementation of phi_guard's public formats (docs/format.md,
sections "Master key text", "Wrapped keys" and "Ciphertext").

Written from the format contract alone, not from phi_guard's sources, so
that the TAP test 002_interop.pl can show that data written by the extension
decrypts without it and that data written here decrypts in the extension.

Input (JSON object on stdin):
  {"master_key_hex": "<64 hex>",
   "keys":    [{"id": 1, "wrapped_key_hex": "<120 hex>"}, ...],
   "decrypt": [{"ct": "phi1:...", "aad": null | "text"}, ...],
   "encrypt": [{"key_id": 1, "plaintext_hex": "...", "aad": null | "text",
                "bytea": false}, ...]}
Output (JSON object on stdout):
  {"decrypted": [{"plaintext_hex": "...", "bytea": bool, "key_id": n,
                  "aad_flag": bool}, ...],
   "encrypted": ["phi1:...", ...]}

On any error the script exits non-zero and prints to stderr which item
failed and why, never a key, a plaintext or a ciphertext.

Only the standard library and `cryptography` are used.
"""

import base64
import binascii
import json
import os
import struct
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# docs/format.md, "Master key text": the master key is 32 bytes written as
# 64 hex characters.
MASTER_KEY_LEN = 32
# docs/format.md, "Wrapped keys": wrapped key = nonce(12) || ciphertext(32)
# || tag(16), AD = "phi_guard.dek.v1" || uint32_be(id).
WRAP_AD_PREFIX = b"phi_guard.dek.v1"
DEK_LEN = 32
WRAPPED_LEN = 60
# docs/format.md, "Ciphertext": value = header(8) || nonce(12) ||
# ciphertext(n) || tag(16).
TEXT_PREFIX = "phi1:"
FORMAT_VERSION = 0x01
ALG_AES256GCM = 0x01
FLAG_AAD = 0x01
FLAG_BYTEA = 0x02
HEADER_LEN = 8
NONCE_LEN = 12
TAG_LEN = 16
OVERHEAD = HEADER_LEN + NONCE_LEN + TAG_LEN  # 36


class SpecError(Exception):
    """A failure whose message is safe to print (carries no secret)."""


def _hex(value, what, length=None):
    if not isinstance(value, str):
        raise SpecError("%s is not a hex string" % what)
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise SpecError("%s is not valid hex" % what) from None
    if length is not None and len(raw) != length:
        raise SpecError("%s must be %d bytes, not %d" % (what, length, len(raw)))
    return raw


def _key_id(value, what):
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 0xFFFFFFFF:
        raise SpecError("%s is not an unsigned 32-bit integer" % what)
    return value


def _aad_bytes(item, what):
    aad = item.get("aad")
    if aad is None:
        return None
    if not isinstance(aad, str):
        raise SpecError("%s: aad must be null or a string" % what)
    return aad.encode("utf-8")


def unwrap_data_key(master_key, key_id, wrapped):
    """docs/format.md, "Wrapped keys": AES-256-GCM(master_key) over the data
    key, AD bound to the id."""
    ad = WRAP_AD_PREFIX + struct.pack(">I", key_id)
    try:
        dek = AESGCM(master_key).decrypt(wrapped[:NONCE_LEN], wrapped[NONCE_LEN:], ad)
    except InvalidTag:
        raise SpecError("data key %d cannot be unwrapped with this master key" % key_id) from None
    if len(dek) != DEK_LEN:
        raise SpecError("data key %d does not unwrap to %d bytes" % (key_id, DEK_LEN))
    return dek


def parse_text_form(ct, what):
    """docs/format.md, "Ciphertext": "phi1:" followed by standard base64 with
    padding."""
    if not isinstance(ct, str) or not ct.startswith(TEXT_PREFIX):
        raise SpecError("%s does not start with %r" % (what, TEXT_PREFIX))
    body = ct[len(TEXT_PREFIX):]
    try:
        raw = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise SpecError("%s is not valid base64" % what) from None
    if base64.b64encode(raw).decode("ascii") != body:
        raise SpecError("%s is not canonical padded base64" % what)
    return raw


def decrypt_value(deks, item, what):
    raw = parse_text_form(item.get("ct"), what)
    if len(raw) < OVERHEAD:
        raise SpecError("%s is shorter than %d bytes" % (what, OVERHEAD))
    version, alg, flags, reserved = raw[0], raw[1], raw[2], raw[3]
    if version != FORMAT_VERSION:
        raise SpecError("%s has format version %d" % (what, version))
    if alg != ALG_AES256GCM:
        raise SpecError("%s has algorithm %d" % (what, alg))
    if flags & ~(FLAG_AAD | FLAG_BYTEA):
        raise SpecError("%s has unknown flag bits 0x%02x" % (what, flags))
    if reserved != 0:
        raise SpecError("%s has a non-zero reserved byte" % what)
    (key_id,) = struct.unpack(">I", raw[4:8])
    aad = _aad_bytes(item, what)
    if bool(flags & FLAG_AAD) != (aad is not None):
        raise SpecError("%s: aad %s given but the value's aad flag is %s"
                        % (what, "was" if aad is not None else "was not",
                           "set" if flags & FLAG_AAD else "clear"))
    if key_id not in deks:
        raise SpecError("%s: key id %d is not among the given keys" % (what, key_id))
    header = raw[:HEADER_LEN]
    nonce = raw[HEADER_LEN:HEADER_LEN + NONCE_LEN]
    body_and_tag = raw[HEADER_LEN + NONCE_LEN:]
    try:
        plaintext = AESGCM(deks[key_id]).decrypt(nonce, body_and_tag, header + (aad or b""))
    except InvalidTag:
        raise SpecError("%s: authentication failed" % what) from None
    return {
        "plaintext_hex": plaintext.hex(),
        "bytea": bool(flags & FLAG_BYTEA),
        "key_id": key_id,
        "aad_flag": bool(flags & FLAG_AAD),
    }


def encrypt_value(deks, item, what):
    key_id = _key_id(item.get("key_id"), what + ": key_id")
    if key_id not in deks:
        raise SpecError("%s: key id %d is not among the given keys" % (what, key_id))
    plaintext = _hex(item.get("plaintext_hex"), what + ": plaintext_hex")
    is_bytea = item.get("bytea", False)
    if not isinstance(is_bytea, bool):
        raise SpecError("%s: bytea must be true or false" % what)
    if not is_bytea:
        # text values are UTF-8 (as phi_decrypt returns text)
        try:
            plaintext.decode("utf-8")
        except UnicodeDecodeError:
            raise SpecError("%s: text plaintext is not valid UTF-8" % what) from None
    aad = _aad_bytes(item, what)
    flags = (FLAG_AAD if aad is not None else 0) | (FLAG_BYTEA if is_bytea else 0)
    header = bytes([FORMAT_VERSION, ALG_AES256GCM, flags, 0]) + struct.pack(">I", key_id)
    nonce = os.urandom(NONCE_LEN)
    body_and_tag = AESGCM(deks[key_id]).encrypt(nonce, plaintext, header + (aad or b""))
    raw = header + nonce + body_and_tag
    assert len(raw) == len(plaintext) + OVERHEAD
    return TEXT_PREFIX + base64.b64encode(raw).decode("ascii")


def run(request):
    if not isinstance(request, dict):
        raise SpecError("input is not a JSON object")
    master_key = _hex(request.get("master_key_hex"), "master_key_hex", MASTER_KEY_LEN)
    deks = {}
    for i, k in enumerate(request.get("keys", [])):
        what = "keys[%d]" % i
        if not isinstance(k, dict):
            raise SpecError("%s is not an object" % what)
        key_id = _key_id(k.get("id"), what + ".id")
        wrapped = _hex(k.get("wrapped_key_hex"), what + ".wrapped_key_hex", WRAPPED_LEN)
        deks[key_id] = unwrap_data_key(master_key, key_id, wrapped)
    decrypted = []
    for i, item in enumerate(request.get("decrypt", [])):
        if not isinstance(item, dict):
            raise SpecError("decrypt[%d] is not an object" % i)
        decrypted.append(decrypt_value(deks, item, "decrypt[%d]" % i))
    encrypted = []
    for i, item in enumerate(request.get("encrypt", [])):
        if not isinstance(item, dict):
            raise SpecError("encrypt[%d] is not an object" % i)
        encrypted.append(encrypt_value(deks, item, "encrypt[%d]" % i))
    return {"decrypted": decrypted, "encrypted": encrypted}


def main():
    try:
        request = json.loads(sys.stdin.buffer.read())
    except ValueError:
        print("spec_crypto: input is not valid JSON", file=sys.stderr)
        return 2
    try:
        result = run(request)
    except SpecError as e:
        print("spec_crypto: %s" % e, file=sys.stderr)
        return 1
    except Exception as e:  # never print str(e): it could quote data
        print("spec_crypto: unexpected %s" % type(e).__name__, file=sys.stderr)
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
