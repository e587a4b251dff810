#!/usr/bin/env python3
"""A second, independent checker of sensitive_audit bundles and proof files.

Written from docs/FORMAT.md alone (sections 2, 3, 6, 9, 10 and 11), with nothing
but Python's standard library and python3-cryptography, so that the C++
program's verdicts can be compared with one that shares no code with it.

    verify.py bundle FILE --pubkey PUBFILE
    verify.py proof FILE --pubkey PUBFILE

Prints one line and exits 0 (verified), 1 (tampering found) or 2 (could not
verify: unreadable, malformed, truncated, unknown version, or no entry).
"""
import base64
import hashlib
import json
import re
import struct
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class Invalid(Exception):
    """The input cannot be verified (exit status 2)."""


def sha(b):
    return hashlib.sha256(b).digest()


# ---- canonical JSON (10.1) ------------------------------------------------------

def canonical(text, keys, where):
    try:
        obj = json.loads(text)
    except ValueError:
        raise Invalid(where + ": not JSON")
    if not isinstance(obj, dict):
        raise Invalid(where + ": not an object")
    again = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if again != text:
        raise Invalid(where + ": not canonical")
    if keys is not None and set(obj) != set(keys):
        raise Invalid(where + ": wrong keys")
    return obj


def string(obj, key, where):
    v = obj.get(key)
    if not isinstance(v, str):
        raise Invalid(where + ": " + key + " not a string")
    return v


def opt_string(obj, key, where):
    v = obj.get(key)
    if v is not None and not isinstance(v, str):
        raise Invalid(where + ": " + key + " not a string or null")
    return v


DECIMAL = re.compile(r"^(0|-?[1-9][0-9]*)$")


def number(obj, key, where, lo, hi):
    v = string(obj, key, where)
    if not DECIMAL.match(v):
        raise Invalid(where + ": " + key + " not decimal")
    n = int(v)
    if n < lo or n > hi:
        raise Invalid(where + ": " + key + " out of range")
    return n


def hexbytes(v, where, length=None):
    if not isinstance(v, str) or not re.match(r"^([0-9a-f]{2})*$", v):
        raise Invalid(where + ": not lower-case hex")
    b = bytes.fromhex(v)
    if length is not None and len(b) != length:
        raise Invalid(where + ": wrong length")
    return b


I16 = (-(1 << 15), (1 << 15) - 1)
I32 = (-(1 << 31), (1 << 31) - 1)
I64 = (-(1 << 63), (1 << 63) - 1)
U64 = (0, (1 << 64) - 1)


# ---- entries (sections 2, 3) ----------------------------------------------------

TEXTS = ["operation", "table_schema", "table_name", "column_name", "row_key", "row_key_source",
         "old_value", "new_value", "value_type", "session_role", "effective_role",
         "application_name", "client_addr"]
CONTEXT_FIELDS = ["operation", "table_schema", "table_name", "column_name", "row_key_source",
                  "value_type", "session_role", "effective_role", "application_name", "client_addr"]


def encode(fmt, chain, seq, txid, event_time, texts, backend_pid, prev_hash):
    out = b"sensitive_audit entry\x00" + struct.pack(
        ">HIQQq", fmt & 0xFFFF, chain & 0xFFFFFFFF, seq & 0xFFFFFFFFFFFFFFFF, txid, event_time)
    for t in texts:
        if t is None:
            out += b"\x00"
        else:
            b = t.encode("utf-8")
            out += b"\x01" + struct.pack(">I", len(b)) + b
    return out + struct.pack(">i", backend_pid) + prev_hash


# ---- protected values (11) -------------------------------------------------------

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def protected_form(v):
    """Whether v is one of the three forms a format 2 value may hold (11.1-11.3)."""
    if v.startswith("hmac-sha256:"):
        return bool(HEX64.match(v[len("hmac-sha256:"):]))
    if v.startswith("sha256-salted:"):
        return bool(HEX64.match(v[len("sha256-salted:"):]))
    if v.startswith("x25519-aes256gcm:"):
        raw = b64decode_strict(v[len("x25519-aes256gcm:"):])
        return raw is not None and len(raw) >= 8 + 32 + 12 + 16
    return False


# ---- trees (9.1, 9.2) -------------------------------------------------------------

def leaf(data):
    return sha(b"\x00" + data)


def node(left, right):
    return sha(b"\x01" + left + right)


def mth_of_leaf_hashes(hashes):
    if not hashes:
        return sha(b"")
    if len(hashes) == 1:
        return hashes[0]
    k = 1
    while k * 2 < len(hashes):
        k *= 2
    return node(mth_of_leaf_hashes(hashes[:k]), mth_of_leaf_hashes(hashes[k:]))


def record(chain, size, root):
    return b"sensitive_audit chain\x00" + struct.pack(">IQ", chain, size) + root


def root_from_inclusion(index, size, leaf_hash, path):
    """RFC 9162 section 2.1.3.2; None when the path does not fit."""
    if index >= size:
        return None
    fn, sn, r = index, size - 1, leaf_hash
    for p in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node(p, r)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        return None
    return r


# ---- keys, notes, checkpoints (9.3, 9.4) ---------------------------------------

def b64decode_strict(s):
    try:
        b = base64.b64decode(s, validate=True)
    except ValueError:
        return None
    if base64.b64encode(b).decode() != s:
        return None
    return b


def key_id(name, public_key):
    return sha(name.encode() + b"\n\x01" + public_key)[:4]


def load_verifier_key(path):
    try:
        text = open(path, "rb").read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        raise Invalid("cannot read the public key file")
    if not text.endswith("\n") or text.count("\n") != 1:
        raise Invalid("public key file: not one line")
    parts = text[:-1].split("+", 2)
    if len(parts) != 3 or not re.match(r"^[0-9a-f]{8}$", parts[1]):
        raise Invalid("public key file: malformed")
    raw = b64decode_strict(parts[2])
    if raw is None or len(raw) != 33 or raw[0] != 1:
        raise Invalid("public key file: not an Ed25519 key")
    if key_id(parts[0], raw[1:]).hex() != parts[1]:
        raise Invalid("public key file: key ID does not match")
    return parts[0], bytes.fromhex(parts[1]), raw[1:]


def open_note(note, key):
    """The note's text if a signature by key verifies, else None (9.4)."""
    name, kid, public_key = key
    if "\n\n" not in note:
        return None
    text, sigs = note.split("\n\n", 1)
    text += "\n"
    if not sigs.endswith("\n"):
        return None
    verified = 0
    for line in sigs[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            return None
        fields = line[2:].split(" ")
        if len(fields) != 2:
            return None
        blob = b64decode_strict(fields[1])
        if blob is None or len(blob) < 5:
            return None
        if fields[0] != name or blob[:4] != kid:
            continue
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(blob[4:], text.encode("utf-8"))
        except InvalidSignature:
            return None
        verified += 1
    return text if verified else None


def parse_body(text):
    """(log_id, total, root, [(chain, size, root)]) or None (9.3)."""
    if not text.endswith("\n"):
        return None
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not lines[0].startswith("sensitive_audit/"):
        return None
    log_id = lines[0][len("sensitive_audit/"):]
    if not re.match(r"^[A-Za-z0-9._-]{1,128}$", log_id) or not re.match(r"^(0|[1-9][0-9]*)$", lines[1]):
        return None
    root = b64decode_strict(lines[2])
    if root is None or len(root) != 32:
        return None
    chains = []
    for line in lines[3:]:
        m = re.match(r"^chain (0|[1-9][0-9]*) ([1-9][0-9]*) ([A-Za-z0-9+/=]+)$", line)
        if not m:
            return None
        r = b64decode_strict(m.group(3))
        if r is None or len(r) != 32:
            return None
        c, n = int(m.group(1)), int(m.group(2))
        if c > 0xFFFFFFFF or (chains and c <= chains[-1][0]):
            return None
        chains.append((c, n, r))
    if int(lines[1]) != sum(n for _, n, _ in chains):
        return None
    if mth_of_leaf_hashes([leaf(record(*c)) for c in chains]) != root:
        return None
    return log_id, int(lines[1]), root, chains


# ---- bundles (10.3) ------------------------------------------------------------

class Chain:
    def __init__(self):
        self.last_seq = 0
        self.last_hash = bytes(32)
        self.failed = False
        self.leaves = []


def check_bundle(path, key):
    try:
        data = open(path, "rb").read()
    except OSError:
        raise Invalid("cannot read the bundle")
    if not data:
        raise Invalid("empty bundle")
    if not data.endswith(b"\n"):
        raise Invalid("truncated bundle")
    raw_lines = data[:-1].split(b"\n")
    try:
        lines = [l.decode("utf-8") for l in raw_lines]
    except UnicodeDecodeError:
        raise Invalid("not UTF-8")

    header = canonical(lines[0], ["format", "log_id", "type", "version"], "header")
    if header["type"] != "header" or header["format"] != "sensitive_audit bundle":
        raise Invalid("not a bundle")
    if header["version"] != "1":
        raise Invalid("unknown bundle version")
    log_id = string(header, "log_id", "header")
    if log_id and not re.match(r"^[A-Za-z0-9._-]{1,128}$", log_id):
        raise Invalid("malformed log id")

    end = canonical(lines[-1], ["checkpoints", "contexts", "entries", "sha256", "type"], "end line")
    if len(lines) < 2 or end["type"] != "end":
        raise Invalid("truncated bundle: no end line")
    body_bytes = b"".join(l + b"\n" for l in raw_lines[:-1])
    if string(end, "sha256", "end") != hashlib.sha256(body_bytes).hexdigest():
        raise Invalid("bundle digest does not match")

    checkpoints, contexts, entries = [], {}, []
    seen_ctx = {}
    phase = 0
    for i, text in enumerate(lines[1:-1], start=2):
        where = "line %d" % i
        obj = canonical(text, None, where)
        kind = obj.get("type")
        if kind == "checkpoint" and phase == 0:
            canonical(text, ["id", "note", "type"], where)
            number(obj, "id", where, *I64)
            checkpoints.append(string(obj, "note", where))
        elif kind == "context" and phase <= 1:
            phase = 1
            canonical(text, ["id", "type"] + CONTEXT_FIELDS, where)
            cid = number(obj, "id", where, *I64)
            seen_ctx[cid] = seen_ctx.get(cid, 0) + 1
            contexts[cid] = [opt_string(obj, f, where) for f in CONTEXT_FIELDS]
        elif kind == "entry":
            phase = 2
            canonical(text, ["backend_pid", "chain", "context", "event_time", "format", "hash",
                             "new_value", "old_value", "prev_hash", "row_key", "seq", "txid", "type"], where)
            e = {
                "chain": number(obj, "chain", where, *I32) & 0xFFFFFFFF,
                "seq": number(obj, "seq", where, *I64) & 0xFFFFFFFFFFFFFFFF,
                "txid": number(obj, "txid", where, *U64),
                "event_time": number(obj, "event_time", where, *I64),
                "context": number(obj, "context", where, *I64),
                "format": number(obj, "format", where, *I16) & 0xFFFF,
                "backend_pid": number(obj, "backend_pid", where, *I32),
                "row_key": opt_string(obj, "row_key", where),
                "old_value": opt_string(obj, "old_value", where),
                "new_value": opt_string(obj, "new_value", where),
            }
            for k in ("prev_hash", "hash"):
                v = obj.get(k)
                e[k] = None if v is None else hexbytes(v, where + " " + k)
            entries.append(e)
        else:
            raise Invalid(where + ": unexpected line")
    if (number(end, "checkpoints", "end", *U64) != len(checkpoints)
            or number(end, "contexts", "end", *U64) != sum(seen_ctx.values())
            or number(end, "entries", "end", *U64) != len(entries)):
        raise Invalid("end line counts do not match")
    for cid, n in seen_ctx.items():
        if n > 1:
            contexts.pop(cid, None)

    problems = []
    chains = {}
    highest = None
    verified = 0
    for e in entries:
        c = chains.setdefault(e["chain"], Chain())
        behind = highest is not None and e["chain"] < highest
        if not behind:
            highest = e["chain"]
        if c.failed:
            continue
        ctx = contexts.get(e["context"], [None] * 10)
        texts = [ctx[0], ctx[1], ctx[2], ctx[3], e["row_key"], ctx[4], e["old_value"], e["new_value"],
                 ctx[5], ctx[6], ctx[7], ctx[8], ctx[9]]
        seq, stored = e["seq"], e["hash"]
        prev = e["prev_hash"]
        bad = None
        if e["format"] not in (1, 2):
            bad = "unsupported format"
        elif behind:
            bad = "reordered chains"
        elif stored is None or len(stored) != 32:
            bad = "hash missing or malformed"
        elif seq == 0:
            bad = "forged: seq 0"
        elif seq <= c.last_seq:
            bad = "duplicate"
        elif seq > c.last_seq + 1:
            bad = "gap"
        elif prev is None or len(prev) != 32:
            bad = "content changed (prev_hash malformed)"
        elif sha(encode(e["format"], e["chain"], seq, e["txid"], e["event_time"], texts,
                        e["backend_pid"], prev)) != stored:
            bad = "hash does not match"
        elif prev != c.last_hash:
            bad = "link broken"
        elif e["format"] == 2 and not all(v is None or protected_form(v)
                                          for v in (e["old_value"], e["new_value"])):
            bad = "malformed protected value"
        if bad:
            c.failed = True
            problems.append("chain %d seq %d: %s" % (e["chain"], seq, bad))
            continue
        c.last_seq, c.last_hash = seq, stored
        c.leaves.append(leaf(stored))
        verified += 1

    for note in checkpoints:
        text = open_note(note, key)
        body = parse_body(text) if text is not None else None
        if body is None:
            problems.append("a stored checkpoint does not verify")
            continue
        if body[0] != log_id:
            problems.append("a stored checkpoint is of another log")
            continue
        for chain, size, root in body[3]:
            c = chains.get(chain)
            if c is None or len(c.leaves) < size or mth_of_leaf_hashes(c.leaves[:size]) != root:
                problems.append("chain %d does not extend a stored checkpoint" % chain)
    if problems:
        return 1, "FAILED: " + "; ".join(problems[:5])
    if verified == 0:
        raise Invalid("no entry verified")
    return 0, "VERIFIED: %d entries in %d chains, %d checkpoints" % (verified, len(chains), len(checkpoints))


# ---- proofs (10.4) ---------------------------------------------------------------

def check_proof(path, key):
    try:
        data = open(path, "rb").read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        raise Invalid("cannot read the proof file")
    if not data.endswith("\n") or data.count("\n") != 1:
        raise Invalid("proof file: truncated or not one line")
    p = canonical(data[:-1], ["checkpoint", "entry", "entry_hash", "format", "leaf_index", "log_id",
                              "path", "record_count", "record_index", "record_path", "tree_size",
                              "version"], "proof")
    if p["format"] != "sensitive_audit proof":
        raise Invalid("not a proof file")
    if p["version"] != "1":
        raise Invalid("unknown proof version")
    e = p["entry"]
    if not isinstance(e, dict) or set(e) != set(["format", "chain", "seq", "txid", "event_time",
                                                  "backend_pid", "prev_hash"] + TEXTS):
        raise Invalid("proof entry: wrong keys")
    fmt = number(e, "format", "entry", *U64)
    if fmt not in (1, 2):
        raise Invalid("unknown entry format")
    chain = number(e, "chain", "entry", 0, 0xFFFFFFFF)
    seq = number(e, "seq", "entry", 1, I64[1])
    txid = number(e, "txid", "entry", *U64)
    event_time = number(e, "event_time", "entry", *I64)
    pid = number(e, "backend_pid", "entry", *I32)
    prev = hexbytes(e["prev_hash"], "prev_hash", 32)
    texts = [opt_string(e, t, "entry") for t in TEXTS]
    entry_hash = hexbytes(p["entry_hash"], "entry_hash", 32)
    leaf_index = number(p, "leaf_index", "proof", *U64)
    tree_size = number(p, "tree_size", "proof", *U64)
    record_index = number(p, "record_index", "proof", *U64)
    record_count = number(p, "record_count", "proof", *U64)
    paths = {}
    for k in ("path", "record_path"):
        if not isinstance(p[k], list) or len(p[k]) > 64:
            raise Invalid(k + " is not a list")
        paths[k] = [hexbytes(x, k, 32) for x in p[k]]
    note = string(p, "checkpoint", "proof")
    log_id = string(p, "log_id", "proof")

    if sha(encode(fmt, chain, seq, txid, event_time, texts, pid, prev)) != entry_hash:
        return 1, "FAILED: the entry does not match its hash"
    if leaf_index != seq - 1:
        return 1, "FAILED: leaf index is not seq - 1"
    text = open_note(note, key)
    if text is None:
        return 1, "FAILED: the checkpoint has no valid signature by the key"
    body = parse_body(text)
    if body is None:
        return 1, "FAILED: not a valid checkpoint body"
    if body[0] != log_id:
        return 1, "FAILED: the checkpoint is of another log"
    heads = body[3]
    idx = [i for i, h in enumerate(heads) if h[0] == chain]
    if not idx:
        return 1, "FAILED: the checkpoint has no line for the chain"
    i = idx[0]
    _, size, root = heads[i]
    if size != tree_size or leaf_index >= size:
        return 1, "FAILED: tree size does not match the checkpoint"
    if root_from_inclusion(leaf_index, tree_size, leaf(entry_hash), paths["path"]) != root:
        return 1, "FAILED: the audit path does not lead to the chain's root"
    if record_index != i or record_count != len(heads):
        return 1, "FAILED: record index or count does not match"
    if root_from_inclusion(record_index, record_count, leaf(record(*heads[i])), paths["record_path"]) != body[2]:
        return 1, "FAILED: the record path does not lead to the checkpoint's root"
    return 0, "VERIFIED: chain %d seq %d is in the signed checkpoint of log %s" % (chain, seq, log_id)


def main(argv):
    if len(argv) != 5 or argv[1] not in ("bundle", "proof") or argv[3] != "--pubkey":
        print("usage: verify.py bundle|proof FILE --pubkey PUBFILE", file=sys.stderr)
        return 2
    try:
        key = load_verifier_key(argv[4])
        status, line = (check_bundle if argv[1] == "bundle" else check_proof)(argv[2], key)
    except Invalid as e:
        print("NOT VERIFIED: %s" % e)
        return 2
    print(line)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv))
