#!/usr/bin/env python3
"""make_jws_vectors.py — test tokens and keys for the JWS tests in test_jws.c.

Writes the generated header jws_vectors.h to stdout:
    python3 make_jws_vectors.py > jws_vectors.h    (or: make -C test/unit vectors)
The output is deterministic (Ed25519 signatures are; the keys come from
fixed seeds and fixed numbers), so a rerun gives the same text, and
test/tools/test_jws_vectors.py checks that the committed file is this
script's output.

Needs the `cryptography` package.  Tokens are signed here, independently of
the C code, with Ed25519 keys derived from public, test-only seeds.  The C
test calls phic_jws_verify(token, key, JWS_NOW, leeway 30, max_lifetime
3600) and expects the status given for each case.
"""
import base64
import hashlib
import hmac
import json

from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, rsa, x25519
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey, Ed25519PublicKey)

NOW = 1700000000
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEY2 = Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))
RAW = ser.Encoding.Raw, ser.PublicFormat.Raw
PUB = KEY.public_key().public_bytes(*RAW)
PUB2 = KEY2.public_key().public_bytes(*RAW)


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def js(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


HDR = js({"alg": "EdDSA", "typ": "JWT", "kid": "k1"})
DEL = object()


def claims(**over):
    c = {"sub": "user-42", "tenant": "clinic-a",
         "roles": ["clinician", "auditor"], "exp": NOW + 600}
    c.update(over)
    return js({k: v for k, v in c.items() if v is not DEL})


def sign_text(text, key=KEY):
    """Compact token for the signing input text, signed with key."""
    sig = key.sign(text.encode())
    Ed25519PublicKey.from_public_bytes(
        key.public_key().public_bytes(*RAW)).verify(sig, text.encode())
    return text + "." + b64(sig)


def tok(payload, header=HDR, key=KEY):
    return sign_text(b64(header) + "." + b64(payload), key)


cases = []                      # (c identifier, description, token, status)


def case(ident, desc, token, status):
    cases.append((ident, desc, token, status))


# --- valid ---------------------------------------------------------------
case("valid_full", "valid, all claims",
     tok(js({"sub": "user-42", "tenant": "clinic-a",
             "roles": ["clinician", "auditor", "nurse"],
             "purpose": "treatment", "iat": NOW - 10, "nbf": NOW - 10,
             "exp": NOW + 600})), "PHIC_OK")
case("valid_min", "valid, no optional claims",
     tok(js({"sub": "u1", "tenant": "t1", "roles": [], "exp": NOW + 60})),
     "PHIC_OK")
case("valid_ws", "valid, white space in header and claims",
     tok(b'\r\n { "sub" :\t"u1" ,\n"tenant":"t1", "roles" : [ "a" , "b" ] ,'
         b' "exp" : %d }\n ' % (NOW + 60),
         header=b' {\n\t"alg" : "EdDSA" , "kid":"k1"\r\n}\t'), "PHIC_OK")
case("valid_unicode", "valid, unicode escapes and raw UTF-8",
     tok(b'{"sub":"\\u00e9l\\u00E8ve","tenant":"\\ud83d\\ude00 \xe2\x82\xac",'
         b'"roles":["\\/r\\"q\\\\"],"exp":%d}' % (NOW + 60)), "PHIC_OK")
case("valid_ext", "valid, extra claims of every JSON type ignored",
     tok(b'{"sub":"u1","tenant":"t1","roles":["a"],"exp":%d,"iss":"idp",'
         b'"aud":["x","y"],"x":{"a":[1,-2.5e3,{"b":null}],"c":true,'
         b'"d":false},"e":"\\n"}' % (NOW + 60)), "PHIC_OK")
case("valid_frac", "valid, fractional dates (exp rounds down)",
     tok(b'{"sub":"u1","tenant":"t1","roles":[],"exp":%d.9,"iat":%d.5}'
         % (NOW + 60, NOW)), "PHIC_OK")
case("valid_roles32", "valid, 32 roles",
     tok(claims(roles=["r%d" % i for i in range(32)])), "PHIC_OK")
case("valid_long", "valid, 255-byte sub/tenant/role/purpose/kid",
     tok(claims(sub="s" * 255, tenant="t" * 255, roles=["r" * 255],
                purpose="p" * 255),
         header=js({"alg": "EdDSA", "kid": "k" * 255})), "PHIC_OK")
big = tok(claims(pad="x" * 5900))
assert 8100 < len(big) <= 8192, len(big)
case("valid_big", "valid, %d-byte token" % len(big), big, "PHIC_OK")

# --- time ----------------------------------------------------------------
case("exp_past", "expired", tok(claims(exp=NOW - 31)), "PHIC_ERR_EXPIRED")
case("exp_edge", "exp == now - leeway is expired",
     tok(claims(exp=NOW - 30)), "PHIC_ERR_EXPIRED")
case("exp_in_leeway", "exp == now - leeway + 1 is accepted",
     tok(claims(exp=NOW - 29)), "PHIC_OK")
case("exp_zero", "exp 0", tok(claims(exp=0)), "PHIC_ERR_EXPIRED")
case("nbf_future", "nbf beyond the leeway",
     tok(claims(nbf=NOW + 31)), "PHIC_ERR_NOT_YET_VALID")
case("nbf_edge", "nbf == now + leeway is accepted",
     tok(claims(nbf=NOW + 30)), "PHIC_OK")
case("nbf_frac", "nbf now + leeway + 0.5 rounds up",
     tok(b'{"sub":"u","tenant":"t","roles":[],"exp":%d,"nbf":%d.5}'
         % (NOW + 600, NOW + 30)), "PHIC_ERR_NOT_YET_VALID")
case("life_long", "exp - now > max_lifetime",
     tok(claims(exp=NOW + 3601)), "PHIC_ERR_LIFETIME")
case("life_edge", "exp - now == max_lifetime is accepted",
     tok(claims(exp=NOW + 3600)), "PHIC_OK")
case("life_iat", "exp - iat > max_lifetime",
     tok(claims(iat=NOW - 100, exp=NOW + 3600)), "PHIC_ERR_LIFETIME")
case("life_iat_edge", "exp - iat == max_lifetime is accepted",
     tok(claims(iat=NOW - 100, exp=NOW + 3500)), "PHIC_OK")

# --- signature -----------------------------------------------------------
case("wrong_key", "signed by another key", tok(claims(), key=KEY2),
     "PHIC_ERR_AUTH")
case("wrong_key_junk", "bad signature beats malformed claims",
     tok(b"not json", key=KEY2), "PHIC_ERR_AUTH")
t = tok(claims())
h, p, s = t.split(".")
case("sig_empty", "empty signature", h + "." + p + ".", "PHIC_ERR_FORMAT")
sig = base64.urlsafe_b64decode(s + "==")
case("sig_63", "63-byte signature", h + "." + p + "." + b64(sig[:63]),
     "PHIC_ERR_FORMAT")
case("sig_65", "65-byte signature", h + "." + p + "." + b64(sig + b"\0"),
     "PHIC_ERR_FORMAT")
case("sig_zero", "64 zero bytes", h + "." + p + "." + b64(bytes(64)),
     "PHIC_ERR_AUTH")

# --- alg -----------------------------------------------------------------
ht = b64(js({"alg": "none", "kid": "k1"})) + "." + b64(claims())
case("alg_none", "alg none, unsigned", ht + ".", "PHIC_ERR_FORMAT")
case("alg_none_signed", "alg none with an Ed25519 signature", sign_text(ht),
     "PHIC_ERR_FORMAT")
hs = b64(js({"alg": "HS256", "typ": "JWT", "kid": "k1"})) + "." + b64(claims())
case("alg_hs256", "alg HS256 (HMAC keyed with the public key)",
     hs + "." + b64(hmac.new(PUB, hs.encode(), hashlib.sha256).digest()),
     "PHIC_ERR_FORMAT")
case("alg_hs256_ed", "alg HS256 with an Ed25519 signature", sign_text(hs),
     "PHIC_ERR_FORMAT")
for ident, alg in (("lower", "eddsa"), ("upper", "EDDSA"), ("space", "EdDSA "),
                   ("ed25519", "Ed25519")):
    case("alg_" + ident, 'alg "%s"' % alg,
         tok(claims(), header=js({"alg": alg, "kid": "k1"})), "PHIC_ERR_FORMAT")
case("alg_missing", "no alg", tok(claims(), header=js({"kid": "k1"})),
     "PHIC_ERR_FORMAT")
case("alg_number", "alg a number", tok(claims(), header=b'{"alg":1,"kid":"k1"}'),
     "PHIC_ERR_FORMAT")
case("alg_escaped", "alg spelled with escapes",
     tok(claims(), header=b'{"\\u0061lg":"\\u0045dDSA","kid":"k1"}'), "PHIC_OK")
case("crit", "crit header",
     tok(claims(), header=js({"alg": "EdDSA", "kid": "k1", "crit": ["exp"]})),
     "PHIC_ERR_FORMAT")

# --- kid -----------------------------------------------------------------
case("kid_missing", "no kid", tok(claims(), header=js({"alg": "EdDSA"})),
     "PHIC_ERR_FORMAT")
case("kid_long", "256-byte kid",
     tok(claims(), header=js({"alg": "EdDSA", "kid": "k" * 256})),
     "PHIC_ERR_FORMAT")
case("kid_empty", "empty kid",
     tok(claims(), header=js({"alg": "EdDSA", "kid": ""})), "PHIC_ERR_FORMAT")
case("kid_number", "kid a number",
     tok(claims(), header=b'{"alg":"EdDSA","kid":7}'), "PHIC_ERR_FORMAT")
case("hdr_dup", "duplicate alg in header",
     tok(claims(), header=b'{"alg":"EdDSA","kid":"k1","alg":"EdDSA"}'),
     "PHIC_ERR_FORMAT")
case("hdr_notjson", "header not JSON", tok(claims(), header=b"EdDSA k1"),
     "PHIC_ERR_FORMAT")
case("hdr_array", "header a JSON array",
     tok(claims(), header=b'["alg","EdDSA"]'), "PHIC_ERR_FORMAT")
case("hdr_trailing", "header with trailing garbage",
     tok(claims(), header=HDR + b"}"), "PHIC_ERR_FORMAT")

# --- claims types --------------------------------------------------------
case("roles_string", "roles not an array", tok(claims(roles="admin")),
     "PHIC_ERR_FORMAT")
case("roles_nonstring", "roles with a number", tok(claims(roles=["a", 1])),
     "PHIC_ERR_FORMAT")
case("roles_nested", "roles with an array", tok(claims(roles=["a", ["b"]])),
     "PHIC_ERR_FORMAT")
case("roles_33", "33 roles", tok(claims(roles=["r%d" % i for i in range(33)])),
     "PHIC_ERR_FORMAT")
case("roles_empty_str", "empty role", tok(claims(roles=["a", ""])),
     "PHIC_ERR_FORMAT")
case("roles_long", "256-byte role", tok(claims(roles=["r" * 256])),
     "PHIC_ERR_FORMAT")
case("roles_missing", "no roles", tok(claims(roles=DEL)), "PHIC_ERR_FORMAT")
case("sub_number", "sub a number", tok(claims(sub=42)), "PHIC_ERR_FORMAT")
case("sub_missing", "no sub", tok(claims(sub=DEL)), "PHIC_ERR_FORMAT")
case("sub_empty", "empty sub", tok(claims(sub="")), "PHIC_ERR_FORMAT")
case("sub_long", "256-byte sub", tok(claims(sub="s" * 256)), "PHIC_ERR_FORMAT")
case("tenant_missing", "no tenant", tok(claims(tenant=DEL)), "PHIC_ERR_FORMAT")
case("tenant_null", "tenant null", tok(claims(tenant=None)), "PHIC_ERR_FORMAT")
case("purpose_null", "purpose null", tok(claims(purpose=None)),
     "PHIC_ERR_FORMAT")
case("purpose_long", "256-byte purpose", tok(claims(purpose="p" * 256)),
     "PHIC_ERR_FORMAT")
case("valid_ids", "valid, jti, iss and a string aud",
     tok(claims(jti="req-7f3a", iss="https://idp.example", aud="phi-db")),
     "PHIC_OK")
case("valid_aud_list", "valid, aud an array of 32 strings",
     tok(claims(aud=["a%d" % i for i in range(31)] + ["phi-db"], jti="j" * 255)),
     "PHIC_OK")
case("jti_number", "jti a number", tok(claims(jti=7)), "PHIC_ERR_FORMAT")
case("jti_empty", "empty jti", tok(claims(jti="")), "PHIC_ERR_FORMAT")
case("jti_long", "256-byte jti", tok(claims(jti="j" * 256)), "PHIC_ERR_FORMAT")
case("jti_ctrl", "newline in jti", tok(claims(jti="a\nb")), "PHIC_ERR_FORMAT")
case("iss_number", "iss a number", tok(claims(iss=1)), "PHIC_ERR_FORMAT")
case("aud_number", "aud a number", tok(claims(aud=1)), "PHIC_ERR_FORMAT")
case("aud_empty_list", "aud an empty array", tok(claims(aud=[])),
     "PHIC_ERR_FORMAT")
case("aud_nonstring", "aud array with a number", tok(claims(aud=["a", 2])),
     "PHIC_ERR_FORMAT")
case("aud_33", "aud array of 33 strings",
     tok(claims(aud=["a%d" % i for i in range(33)])), "PHIC_ERR_FORMAT")
case("aud_long", "256-byte audience", tok(claims(aud=["x", "a" * 256])),
     "PHIC_ERR_FORMAT")
case("exp_missing", "no exp", tok(claims(exp=DEL)), "PHIC_ERR_FORMAT")
case("exp_string", "exp a string", tok(claims(exp=str(NOW + 600))),
     "PHIC_ERR_FORMAT")
case("exp_exponent", "exp with an exponent",
     tok(b'{"sub":"u","tenant":"t","roles":[],"exp":1.7000006e9}'),
     "PHIC_ERR_FORMAT")
case("exp_negative", "exp negative", tok(claims(exp=-5)), "PHIC_ERR_FORMAT")
case("exp_huge", "exp 10^15", tok(claims(exp=10 ** 15)), "PHIC_ERR_FORMAT")
case("iat_string", "iat a string", tok(claims(iat="now")), "PHIC_ERR_FORMAT")
case("nbf_bool", "nbf true", tok(claims(nbf=True)), "PHIC_ERR_FORMAT")
case("claims_array", "claims a JSON array", tok(b'["sub","u"]'),
     "PHIC_ERR_FORMAT")
case("claims_string", "claims a JSON string", tok(b'"sub"'), "PHIC_ERR_FORMAT")

# --- claims JSON syntax --------------------------------------------------
case("dup_exp", "duplicate exp",
     tok(claims()[:-1] + b',"exp":%d}' % (NOW + 900)), "PHIC_ERR_FORMAT")
case("dup_exp_escaped", "duplicate exp spelled with an escape",
     tok(claims()[:-1] + b',"\\u0065xp":%d}' % (NOW + 900)), "PHIC_ERR_FORMAT")
case("dup_nested", "duplicate key in a nested object",
     tok(claims()[:-1] + b',"x":{"a":1,"a":2}}'), "PHIC_ERR_FORMAT")
case("trailing", "trailing garbage after the claims",
     tok(claims() + b"x"), "PHIC_ERR_FORMAT")
case("trailing_obj", "two objects", tok(claims() + b"{}"), "PHIC_ERR_FORMAT")
case("trailing_ws", "trailing white space is fine",
     tok(claims() + b" \n"), "PHIC_OK")
case("bom", "byte-order mark", tok(b"\xef\xbb\xbf" + claims()),
     "PHIC_ERR_FORMAT")
case("trailing_comma", "trailing comma", tok(claims()[:-1] + b",}"),
     "PHIC_ERR_FORMAT")
case("single_quotes", "single quotes",
     tok(b"{'sub':'u','tenant':'t','roles':[],'exp':%d}" % (NOW + 60)),
     "PHIC_ERR_FORMAT")
case("leading_zero", "number with a leading zero",
     tok(claims()[:-1] + b',"x":01}'), "PHIC_ERR_FORMAT")
case("truncated", "truncated JSON", tok(claims()[:-1]), "PHIC_ERR_FORMAT")
case("nul_escape", "\\u0000 in sub",
     tok(b'{"sub":"a\\u0000b","tenant":"t","roles":[],"exp":%d}' % (NOW + 60)),
     "PHIC_ERR_FORMAT")
case("nul_escape_other", "\\u0000 in an ignored claim",
     tok(claims()[:-1] + b',"x":"\\u0000"}'), "PHIC_ERR_FORMAT")
case("nul_raw", "raw NUL in a string",
     tok(b'{"sub":"a\x00b","tenant":"t","roles":[],"exp":%d}' % (NOW + 60)),
     "PHIC_ERR_FORMAT")
case("ctrl_raw", "raw control character in a string",
     tok(b'{"sub":"a\x01b","tenant":"t","roles":[],"exp":%d}' % (NOW + 60)),
     "PHIC_ERR_FORMAT")
case("ctrl_escaped", "escaped newline in sub",
     tok(claims(sub="a\nb")), "PHIC_ERR_FORMAT")
case("ctrl_del", "DEL in tenant", tok(claims(tenant="a\x7fb")),
     "PHIC_ERR_FORMAT")
case("ctrl_c1", "C1 control U+0085 in a role",
     tok(claims(roles=["a\u0085b"])), "PHIC_ERR_FORMAT")
case("lone_surrogate", "lone high surrogate escape",
     tok(b'{"sub":"\\ud800","tenant":"t","roles":[],"exp":%d}' % (NOW + 60)),
     "PHIC_ERR_FORMAT")
case("lone_low_surrogate", "lone low surrogate escape",
     tok(b'{"sub":"\\udc00x","tenant":"t","roles":[],"exp":%d}' % (NOW + 60)),
     "PHIC_ERR_FORMAT")
case("bad_escape", "unknown escape \\x",
     tok(b'{"sub":"\\x41","tenant":"t","roles":[],"exp":%d}' % (NOW + 60)),
     "PHIC_ERR_FORMAT")
for ident, raw in (("ff", b"\xff"), ("overlong", b"\xc0\xaf"),
                   ("surrogate", b"\xed\xa0\x80"), ("cut", b"\xe2\x82"),
                   ("above", b"\xf4\x90\x80\x80"), ("cont", b"\x80")):
    case("utf8_" + ident, "invalid UTF-8 (%s) in sub" % raw.hex(),
         tok(b'{"sub":"a' + raw + b'","tenant":"t","roles":[],"exp":%d}'
             % (NOW + 60)), "PHIC_ERR_FORMAT")
case("utf8_other", "invalid UTF-8 in an ignored claim",
     tok(claims()[:-1] + b',"x":"\xc3"}'), "PHIC_ERR_FORMAT")
case("depth_bomb", "nesting bomb of 2000 arrays in a claim",
     tok(claims()[:-1] + b',"x":' + b"[" * 2000 + b"]" * 2000 + b"}"),
     "PHIC_ERR_FORMAT")
case("depth_17", "17 nested levels",
     tok(claims()[:-1] + b',"x":' + b"[" * 16 + b"]" * 16 + b"}"),
     "PHIC_ERR_FORMAT")
case("depth_16", "16 nested levels are fine",
     tok(claims()[:-1] + b',"x":' + b"[" * 15 + b"]" * 15 + b"}"), "PHIC_OK")
case("many_tokens", "more than 512 JSON values",
     tok(claims()[:-1] + b',"x":[' + b",".join([b"1"] * 600) + b"]}"),
     "PHIC_ERR_FORMAT")

# --- structure and base64url ---------------------------------------------
seg_h = b64(HDR)
for i in range(100):
    pl = claims(sub="u" * i)
    if len(b64(pl)) % 4:
        break
padded = seg_h + "." + b64(pl) + "=" * (-len(b64(pl)) % 4)
case("pad", "'=' padding in the payload (signed as is)", sign_text(padded),
     "PHIC_ERR_FORMAT")
# ASCII maps to '-' (62) or '_' (63) only through '~' or '?' at offset 2 mod 3
pl = b64(claims(sub="user~~~"))
assert "-" in pl
case("plus", "'+' in the payload (signed as is)",
     sign_text(seg_h + "." + pl.replace("-", "+")), "PHIC_ERR_FORMAT")
pl = b64(claims(sub="user???"))
assert "_" in pl
case("slash", "'/' in the payload (signed as is)",
     sign_text(seg_h + "." + pl.replace("_", "/")), "PHIC_ERR_FORMAT")
t = tok(claims())
h, p, s = t.split(".")
case("one_dot", "two parts", h + "." + p, "PHIC_ERR_FORMAT")
case("no_dot", "one part", h + p + s, "PHIC_ERR_FORMAT")
case("four_parts", "four parts", t + "." + s, "PHIC_ERR_FORMAT")
case("empty_payload", "empty payload (signed as is)", sign_text(h + "."),
     "PHIC_ERR_FORMAT")
case("empty_header", "empty header (signed as is)", sign_text("." + p),
     "PHIC_ERR_FORMAT")
case("space", "white space inside the token", h + "." + p + " ." + s,
     "PHIC_ERR_FORMAT")
case("sig_padded", "'==' after the signature", t + "==", "PHIC_ERR_FORMAT")
case("sig_std_b64", "signature in standard base64",
     h + "." + p + "." + base64.b64encode(sig).decode().rstrip("="),
     "PHIC_ERR_FORMAT" if "+" in base64.b64encode(sig).decode() or "/" in
     base64.b64encode(sig).decode() else "PHIC_OK")
# the last symbol of an 86-character signature carries 4 unused bits
last = s[-1]
alphabet = ("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
            "0123456789-_")
bits = alphabet.index(last)
case("sig_unused_bits", "signature with non-zero unused bits",
     h + "." + p + "." + s[:-1] + alphabet[bits | 1], "PHIC_ERR_FORMAT")


def sized(total):
    """A valid token of exactly total bytes (kid and padding claim tuned)."""
    for k in range(1, 5):
        hdr = js({"alg": "EdDSA", "kid": "k" * k})
        for n in range(5700, 6200):
            t = tok(claims(pad="x" * n), header=hdr)
            if len(t) == total:
                return t
    raise SystemExit("no token of %d bytes" % total)


case("len_8192", "8192-byte token (the limit)", sized(8192), "PHIC_OK")
case("len_8193", "8193-byte token", sized(8193), "PHIC_ERR_FORMAT")
over = tok(claims(pad="x" * 6600))
assert len(over) > 9000, len(over)
case("overlong", "%d-byte token" % len(over), over, "PHIC_ERR_FORMAT")

# --- PEM -----------------------------------------------------------------
SPKI = ser.Encoding.PEM, ser.PublicFormat.SubjectPublicKeyInfo
pem_ed = KEY.public_key().public_bytes(*SPKI).decode()
n = (1 << 2047) + 12345 * 2 + 1
pem_rsa = rsa.RSAPublicNumbers(65537, n).public_key().public_bytes(*SPKI).decode()
pem_ec = ec.derive_private_key(123456789, ec.SECP256R1()).public_key() \
    .public_bytes(*SPKI).decode()
pem_x = x25519.X25519PrivateKey.from_private_bytes(bytes(range(32))) \
    .public_key().public_bytes(*SPKI).decode()
pem_priv = KEY.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8,
                             ser.NoEncryption()).decode()
assert ser.load_pem_public_key(pem_ed.encode()).public_bytes(*RAW) == PUB

# RFC 8037 A.2 / A.4, checked here as well
X = base64.urlsafe_b64decode("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
A4 = ("eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGC"
      "jP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_M"
      "uM0KAg")
ah, ap, asig = A4.split(".")
Ed25519PublicKey.from_public_bytes(X).verify(
    base64.urlsafe_b64decode(asig + "=="), (ah + "." + ap).encode())


# --- output --------------------------------------------------------------
def c_str(text, indent="\t"):
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    chunks = [text[i:i + 70] for i in range(0, len(text), 70)] or [""]
    return ("\n" + indent).join('"%s"' % c for c in chunks)


def c_bytes(b):
    return ", ".join("0x%02x" % x for x in b)


print("""/*
 * jws_vectors.h — the test tokens and keys of test_jws.c, generated by
 * make_jws_vectors.py: do not edit by hand, rerun it
 * (make -C test/unit vectors).  Included by test_jws.c only: the
 * definitions are static.
 */
#ifndef PHI_GUARD_UNIT_JWS_VECTORS_H
#define PHI_GUARD_UNIT_JWS_VECTORS_H
""")
print("#define JWS_NOW INT64_C(%d)" % NOW)
print("static const uint8_t jws_pub[32] = {%s};" % c_bytes(PUB))
print("static const uint8_t jws_pub2[32] = {%s};" % c_bytes(PUB2))
for ident, desc, token, status in cases:
    print("static const char jws_%s[] =\n\t%s;" % (ident, c_str(token)))
print("static const struct jws_case\n{\n\tconst char *name;\n"
      "\tconst char *token;\n\tsize_t\t\tlen;\n\tphic_status want;\n} "
      "jws_cases[] = {")
for ident, desc, token, status in cases:
    print('\t{"%s", jws_%s, sizeof(jws_%s) - 1, %s},'
          % (desc.replace("\\", "\\\\").replace('"', '\\"'), ident, ident,
             status))
print("};")
for name, pem in (("ed25519", pem_ed), ("rsa", pem_rsa), ("ec", pem_ec),
                  ("x25519", pem_x), ("ed25519_private", pem_priv)):
    print("static const char jws_pem_%s[] =\n\t%s;" % (name, c_str(pem)))
print("\n#endif\t\t\t\t\t\t\t/* PHI_GUARD_UNIT_JWS_VECTORS_H */")
