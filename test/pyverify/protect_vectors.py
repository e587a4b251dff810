#!/usr/bin/env python3
"""The test vectors of protected values (docs/FORMAT.md section 11.6),
computed independently of the C++ core from the text of FORMAT.md alone,
with Python's standard library and python3-cryptography.

    protect_vectors.py            prints every input and output

test/unit/protect_test.cpp holds the same values; if this program and that
test disagree, one of the two implementations is wrong.
"""
import base64
import hashlib
import hmac
import os
import struct
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify import encode  # noqa: E402  (FORMAT.md section 2, written separately)

# ---- the inputs ----------------------------------------------------------------

FINGERPRINT_KEY = bytes(range(0x00, 0x20))
SALT = bytes(range(0x20, 0x40))
RECIPIENT_PRIVATE = bytes(range(0x40, 0x60))
EPHEMERAL_PRIVATE = bytes(range(0x60, 0x80))
NONCE = bytes(range(0xA0, 0xAC))  # the first value's; the second's is NONCE + 1
VALUE = "123-45-6789".encode()
VALUE2 = "Gr\u00fc\u00dfe".encode()  # "Grüße"


def raw_public(private):
    return X25519PrivateKey.from_private_bytes(private).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(key, value):
    return "hmac-sha256:" + hmac.new(key, value, hashlib.sha256).hexdigest()


def commitment(salt, value):
    return "sha256-salted:" + hashlib.sha256(b"sensitive_audit erasable\0" + salt + value).hexdigest()


def key_id(public):
    return hashlib.sha256(public).digest()[:8]


def seal(recipient_public, ephemeral_private, nonce, value):
    eph = X25519PrivateKey.from_private_bytes(ephemeral_private)
    eph_public = raw_public(ephemeral_private)
    shared = eph.exchange(X25519PublicKey.from_public_bytes(recipient_public))
    aead_key = HKDF(algorithm=hashes.SHA256(), length=32, salt=eph_public + recipient_public,
                    info=b"sensitive_audit sealed value").derive(shared)
    header = key_id(recipient_public) + eph_public
    sealed = AESGCM(aead_key).encrypt(nonce, value, header)  # ciphertext || tag
    return "x25519-aes256gcm:" + base64.b64encode(header + nonce + sealed).decode(), aead_key


def next_nonce(nonce):
    return ((int.from_bytes(nonce, "big") + 1) % (1 << 96)).to_bytes(12, "big")


def entries(sealed, fp, cm):
    """Two format 2 entries starting chain 3 (vector 1's fields, protected)."""
    common = ["public", "patients", "ssn", '{"id": "5"}', "primary key"]
    ctx = ["text", "alice", "alice", "psql", "192.0.2.10"]
    e1 = (2, 3, 1, 748, 1704164645123456, ["INSERT"] + common + [None, sealed] + ctx, 4242, bytes(32))
    b1 = encode(*e1)
    h1 = hashlib.sha256(b1).digest()
    e2 = (2, 3, 2, 749, 1704164646000000, ["UPDATE"] + common + [fp, cm] + ctx, 4242, h1)
    b2 = encode(*e2)
    return b1, h1, b2, hashlib.sha256(b2).digest()


def main():
    recipient = X25519PrivateKey.from_private_bytes(RECIPIENT_PRIVATE)
    recipient_public = raw_public(RECIPIENT_PRIVATE)
    pem_private = recipient.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()).decode()
    pem_public = recipient.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    fp = fingerprint(FINGERPRINT_KEY, VALUE)
    cm = commitment(SALT, VALUE)
    sealed1, aead_key = seal(recipient_public, EPHEMERAL_PRIVATE, NONCE, VALUE)
    sealed2, _ = seal(recipient_public, EPHEMERAL_PRIVATE, next_nonce(NONCE), VALUE2)
    sealed_empty, _ = seal(recipient_public, EPHEMERAL_PRIVATE, next_nonce(next_nonce(NONCE)), b"")
    b1, h1, b2, h2 = entries(sealed1, fp, cm)

    print("fingerprint key   " + FINGERPRINT_KEY.hex())
    print("salt              " + SALT.hex())
    print("value             " + VALUE.decode())
    print("value 2           " + VALUE2.hex())
    print("fingerprint       " + fp)
    print("commitment        " + cm)
    print("fingerprint('')   " + fingerprint(FINGERPRINT_KEY, b""))
    print("commitment('')    " + commitment(SALT, b""))
    print("recipient private " + RECIPIENT_PRIVATE.hex())
    print("recipient public  " + recipient_public.hex())
    print("key id            " + key_id(recipient_public).hex())
    print("ephemeral private " + EPHEMERAL_PRIVATE.hex())
    print("ephemeral public  " + raw_public(EPHEMERAL_PRIVATE).hex())
    print("nonce             " + NONCE.hex())
    print("aes-256-gcm key   " + aead_key.hex())
    print("sealed value      " + sealed1)
    print("sealed value 2    " + sealed2)
    print("sealed ''         " + sealed_empty)
    print("entry 1 encoding  " + b1.hex())
    print("entry 1 hash      " + h1.hex())
    print("entry 2 encoding  " + b2.hex())
    print("entry 2 hash      " + h2.hex())
    print(pem_private, end="")
    print(pem_public, end="")


if __name__ == "__main__":
    main()
