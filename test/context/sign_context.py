#!/usr/bin/env python3
"""Make context tokens (EdDSA JWTs, SPEC §5) for phi_guard's tests.

Test keys are derived from their kid (SHA-256 of "phi_guard test key:<kid>"
as the Ed25519 seed), so every run and every test file agree on them.
Nothing here is a production key.

  sign_context.py pem KID
      print the SubjectPublicKeyInfo PEM of KID's public key
  sign_context.py token KID [name=value ...] [hdr.name=value ...] [--sign-with=KID2] [--tamper]
      print a compact JWS signed by KID (or KID2) with header
      {"alg":"EdDSA","kid":KID}.  Values: roles=a,b (a list; roles= for []);
      exp/iat/nbf=+N or -N (seconds from now) or a number; json:... for any
      JSON value; anything else is a string.  hdr.alg=none etc. change the
      header (hdr.kid=- removes the kid).  --tamper flips one payload
      character after signing.
"""
import base64
import hashlib
import json
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


def key(kid):
    seed = hashlib.sha256(b"phi_guard test key:" + kid.encode()).digest()
    return Ed25519PrivateKey.from_private_bytes(seed)


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def value(name, text):
    if text.startswith("json:"):
        return json.loads(text[5:])
    if name == "roles":
        return [r for r in text.split(",") if r]
    if name in ("exp", "iat", "nbf"):
        if text[:1] in "+-":
            return int(time.time()) + int(text)
        return json.loads(text)
    return text


def token(kid, args):
    header = {"alg": "EdDSA", "kid": kid}
    claims = {}
    signer = kid
    tamper = False
    for a in args:
        if a.startswith("--sign-with="):
            signer = a.split("=", 1)[1]
        elif a == "--tamper":
            tamper = True
        elif a.startswith("hdr."):
            name, text = a[4:].split("=", 1)
            if text == "-":
                header.pop(name, None)
            else:
                header[name] = value(name, text)
        else:
            name, text = a.split("=", 1)
            claims[name] = value(name, text)
    signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                     b64url(json.dumps(claims, separators=(",", ":")).encode()))
    sig = key(signer).sign(signing_input.encode())
    head, payload = signing_input.split(".")
    if tamper:
        payload = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1]
    return head + "." + payload + "." + b64url(sig)


def main(argv):
    if len(argv) >= 2 and argv[0] == "pem":
        pub = key(argv[1]).public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        sys.stdout.write(pub.decode())
        return 0
    if len(argv) >= 2 and argv[0] == "token":
        sys.stdout.write(token(argv[1], argv[2:]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
