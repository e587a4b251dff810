#!/usr/bin/env python3
"""The test vectors of protected values (docs/FORMAT.md section 11.6),
computed independently of the C++ core from the text of FORMAT.md alone,
with Python's standard library and python3-cryptography.

    protect_vectors.py            prints every input and output
    protect_vectors.py bundle OUT PUBLIC_PEM [--tamper-value | --tamper-entry | --plain-value]
                                  writes a bundle (FORMAT.md 10.3) of format 2 entries
                                  whose values are sealed to PUBLIC_PEM (random keys and
                                  nonces), fingerprinted and committed; --tamper-value
                                  seals one value with a broken tag (hashed into the chain
                                  as written), --tamper-entry changes a stored value,
                                  --plain-value writes one value in clear (hashed as written)

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


def write_bundle(out, public_pem, tamper):
    """A bundle of one chain of format 2 entries (no checkpoints), for decrypt."""
    import json
    recipient_public = serialization.load_pem_public_key(public_pem).public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def sealed(v, broken=False):
        text, _ = seal(recipient_public, os.urandom(32), os.urandom(12), v.encode())
        if broken:
            raw = bytearray(base64.b64decode(text[len("x25519-aes256gcm:"):]))
            raw[-1] ^= 1
            text = "x25519-aes256gcm:" + base64.b64encode(bytes(raw)).decode()
        return text

    ctx = ["UPDATE", "public", "patients", "ssn", "primary key", "text", "alice", "alice", "psql",
           "192.0.2.10"]
    names = ["operation", "table_schema", "table_name", "column_name", "row_key_source", "value_type",
             "session_role", "effective_role", "application_name", "client_addr"]
    values = [(None, sealed("123-45-6789")),
              (sealed("123-45-6789"), sealed("987-65-4321", tamper == "value")),
              (fingerprint(FINGERPRINT_KEY, b"x"), commitment(SALT, b"x")),
              (sealed("Gr\u00fc\u00dfe"), "in clear" if tamper == "plain" else None)]
    dump = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    lines = [dump({"format": "sensitive_audit bundle", "log_id": "", "type": "header", "version": "1"}),
             dump(dict(zip(names, ctx), id="1", type="context"))]
    prev = bytes(32)
    for seq, (old, new) in enumerate(values, 1):
        row_key = '{"id": "%d"}' % seq
        texts = ctx[:4] + [row_key, ctx[4], old, new] + ctx[5:]
        h = hashlib.sha256(encode(2, 0, seq, 700 + seq, 1704164645000000 + seq, texts, 4242, prev)).digest()
        if tamper == "entry" and seq == 2:
            new = sealed("tampered")
        lines.append(dump({"backend_pid": "4242", "chain": "0", "context": "1",
                           "event_time": str(1704164645000000 + seq), "format": "2", "hash": h.hex(),
                           "new_value": new, "old_value": old, "prev_hash": prev.hex(),
                           "row_key": row_key, "seq": str(seq), "txid": str(700 + seq), "type": "entry"}))
        prev = h
    body = "".join(line + "\n" for line in lines).encode()
    end = dump({"checkpoints": "0", "contexts": "1", "entries": str(len(values)),
                "sha256": hashlib.sha256(body).hexdigest(), "type": "end"})
    with open(out, "xb") as f:
        f.write(body + (end + "\n").encode())


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "bundle":
        flag = sys.argv[4] if len(sys.argv) > 4 else ""
        if len(sys.argv) > 5 or flag not in ("", "--tamper-value", "--tamper-entry", "--plain-value"):
            sys.exit("usage: protect_vectors.py bundle OUT PUBLIC_PEM"
                     " [--tamper-value | --tamper-entry | --plain-value]")
        with open(sys.argv[3], "rb") as f:
            write_bundle(sys.argv[2], f.read(), {"": "", "--tamper-value": "value",
                                                 "--tamper-entry": "entry", "--plain-value": "plain"}[flag])
    elif len(sys.argv) == 1:
        main()
    else:
        sys.exit(__doc__)
