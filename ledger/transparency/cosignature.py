"""C2SP tlog-cosignature (cosignature/v1, Ed25519) and the tlog-witness request body.

- A cosigner key is an Ed25519 key of signature type 0x04: its key id is SHA-256(name ‖
  0x0A ‖ 0x04 ‖ public key)[:4]; its verifier key ``<name>+<hex id>+base64(0x04 ‖ public
  key)``; its signing key ``PRIVATE+KEY+<name>+<hex id>+base64(0x04 ‖ seed)``.
- A cosignature is a signed-note signature line ``— <name> base64(key id ‖ u64 big-endian
  timestamp ‖ 64-byte Ed25519 signature)`` over the message ``cosignature/v1\\n``,
  ``time <timestamp>\\n``, then the checkpoint's note text (its lines, each ending in a
  newline; no signature lines).
- An ``add-checkpoint`` request body: ``old <size>\\n``, one base64 consistency-proof hash
  per line (at most 63), an empty line, then the signed checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
import re
import struct
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

from arms_ledger.ledger.transparency.merkle import HASH_SIZE
from arms_ledger.ledger.transparency.note import (
    DASH,
    NoteError,
    _b64decode,
    check_name,
    check_text,
    parse_note,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

COSIGNATURE_V1 = b"\x04"
MAX_PROOF_LINES = 63
_SIGNATURE_SIZE = 8 + 64  # timestamp, Ed25519 signature (after the 4-byte key id)


def cosigner_key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + COSIGNATURE_V1 + public).digest()[:4]


def message(text: str, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 signs over the checkpoint note text ``text``."""
    return f"cosignature/v1\ntime {timestamp}\n{check_text(text)}".encode()


def is_cosigner_key(vkey: str) -> bool:
    """Whether ``vkey`` is a verifier key of type 0x04 (a cosigner's), not a log's."""
    encoded = vkey.strip().split("+", 2)[-1]
    try:
        return base64.b64decode(encoded, validate=True)[:1] == COSIGNATURE_V1
    except ValueError:
        return False


class CosignerKey:
    """A witness's public key: verifies its cosignature/v1 lines."""

    def __init__(self, name: str, public: bytes):
        self.name = check_name(name)
        self.public = public
        self.id = cosigner_key_id(name, public)

    @cached_property
    def _key(self) -> Ed25519PublicKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        return Ed25519PublicKey.from_public_bytes(self.public)

    @classmethod
    def parse(cls, vkey: str) -> CosignerKey:
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError(
                "a witness key has the form <name>+<8 hex digits>+<base64 key>, "
                f"got {vkey.strip()[:60]!r}"
            )
        name, hex_id, encoded = parts
        raw = _b64decode(encoded, "the witness key")
        if len(raw) != 33 or raw[:1] != COSIGNATURE_V1:
            raise NoteError(
                f"the key of {name} is not a cosignature/v1 key (type 0x04, 32-byte "
                "Ed25519 key)"
            )
        key = cls(name, raw[1:])
        if hex_id != key.id.hex():
            raise NoteError(f"the witness key's id {hex_id} does not match its key")
        return key

    def __str__(self) -> str:
        encoded = base64.b64encode(COSIGNATURE_V1 + self.public).decode()
        return f"{self.name}+{self.id.hex()}+{encoded}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CosignerKey) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def timestamp(self, note: str) -> int | None:
        """When this witness cosigned the signed note ``note``; None if it carries no
        cosignature of this key. NoteError if one does not verify (the note was altered,
        or the line was copied from another checkpoint)."""
        from cryptography.exceptions import InvalidSignature

        text, signatures = parse_note(note)
        found = None
        for s in signatures:
            if s.name != self.name or s.id != self.id:
                continue
            if len(s.signature) != _SIGNATURE_SIZE:
                raise NoteError(f"the cosignature of {self.name} is not 76 bytes")
            (timestamp,) = struct.unpack(">Q", s.signature[:8])
            try:
                if timestamp >= 1 << 63:
                    raise InvalidSignature
                self._key.verify(s.signature[8:], message(text, timestamp))
            except InvalidSignature:
                raise NoteError(
                    f"the cosignature of {self.name} does not verify: it was made for "
                    "another checkpoint, or the checkpoint was altered"
                ) from None
            found = max(found or 0, timestamp)
        return found


class Cosigner:
    """A witness's private key: makes cosignature/v1 lines."""

    def __init__(self, name: str, seed: bytes):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self._seed = seed
        public = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.key = CosignerKey(name, public)
        self.name = name

    @classmethod
    def generate(cls, name: str) -> Cosigner:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        check_name(name)
        return cls(name, Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def parse(cls, skey: str) -> Cosigner:
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError("a witness key has the form PRIVATE+KEY+<name>+<id>+<base64>")
        _, _, name, hex_id, encoded = parts
        raw = _b64decode(encoded, "the witness's signing key")
        if len(raw) != 33 or raw[:1] != COSIGNATURE_V1:
            raise NoteError("the witness's signing key is not a type 0x04 Ed25519 key")
        cosigner = cls(name, raw[1:])
        if hex_id != cosigner.key.id.hex():
            raise NoteError(f"the witness's signing key id {hex_id} does not match it")
        return cosigner

    def __str__(self) -> str:
        encoded = base64.b64encode(COSIGNATURE_V1 + self._seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.key.id.hex()}+{encoded}"

    def cosign(self, text: str, timestamp: int) -> str:
        """The cosignature line (ending in a newline) over the note text ``text``."""
        if not 0 <= timestamp < 1 << 63:
            raise ValueError(f"timestamp {timestamp} is out of range")
        signature = self._key.sign(message(text, timestamp))
        raw = self.key.id + struct.pack(">Q", timestamp) + signature
        return f"{DASH} {self.name} {base64.b64encode(raw).decode()}\n"


def add_signatures(note: str, lines: list[str] | str) -> str:
    """``note`` with the signature ``lines`` appended, each once."""
    parse_note(note)
    have = set(note.split("\n"))
    text = "".join(lines) if isinstance(lines, list) else lines
    extra = [line for line in text.split("\n") if line and line not in have]
    for line in extra:
        if not line.startswith(f"{DASH} "):
            raise NoteError(f"{line[:40]!r} is not a signature line")
        have.add(line)
    return note + "".join(f"{line}\n" for line in extra)


# --- the tlog-witness add-checkpoint request ------------------------------------------


class AddCheckpoint(NamedTuple):
    old: int
    proof: list[bytes]
    note: str

    def body(self) -> bytes:
        lines = [f"old {self.old}\n"]
        lines += [base64.b64encode(h).decode() + "\n" for h in self.proof]
        return ("".join(lines) + "\n" + self.note).encode()


_OLD = re.compile(r"old (0|[1-9][0-9]*)")


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """The request's old size, proof and signed checkpoint; NoteError if malformed."""
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise NoteError("the request body is not UTF-8") from None
    head, sep, note = text.partition("\n\n")
    if not sep:
        raise NoteError("the request has no empty line before the checkpoint")
    lines = head.split("\n")
    matched = _OLD.fullmatch(lines[0])
    if matched is None:
        raise NoteError(f"the first line {lines[0][:40]!r} is not 'old <size>'")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise NoteError(f"the proof has more than {MAX_PROOF_LINES} lines")
    proof = []
    for line in lines[1:]:
        h = _b64decode(line, "a consistency proof line")
        if len(h) != HASH_SIZE:
            raise NoteError(f"a consistency proof line is not a {HASH_SIZE}-byte hash")
        proof.append(h)
    parse_note(note)
    return AddCheckpoint(int(matched.group(1)), proof, note)
