"""C2SP signed notes with Ed25519 keys, and C2SP tlog checkpoints.

- c2sp.org/signed-note: a text ending in a newline, a blank line, then signature lines
  ``— <key name> base64(key id ‖ signature)``; key id = SHA-256(name ‖ 0x0A ‖ 0x01 ‖
  public key)[:4]; verifier keys are ``<name>+<hex key id>+base64(0x01 ‖ public key)``.
- c2sp.org/tlog-checkpoint: the note text is the origin, the tree size and the base64 root
  hash, one per line.

Signing keys are kept in the Go ``golang.org/x/mod/sumdb/note`` text form,
``PRIVATE+KEY+<name>+<hex key id>+base64(0x01 ‖ 32-byte seed)``, so other tools can
read them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from functools import cached_property
from typing import TYPE_CHECKING, NamedTuple

from arms_ledger.ledger.transparency.merkle import HASH_SIZE

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

# The Ed25519 keys come from the `cryptography` package, imported when a key is first
# used to sign or verify: parsing notes, checkpoints and key names needs none of it, so
# commands that only read the log do not load OpenSSL.

ED25519 = b"\x01"
DASH = "\u2014"
_NAME = re.compile(r"^[^\s+\x00-\x1f\x7f]+$")


class NoteError(ValueError):
    """A key, note or checkpoint that is malformed or does not verify."""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise NoteError(
            f"key name {name!r} must be non-empty, without spaces or '+' "
            "(e.g. arms-ledger.example/dsca)"
        )
    return name


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def _b64decode(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not standard base64") from None


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


class Verifier:
    """A named Ed25519 public key."""

    def __init__(self, name: str, public: bytes):
        self.name = check_name(name)
        self.public = public
        self.id = key_id(name, public)

    @cached_property
    def _key(self) -> Ed25519PublicKey:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

        return Ed25519PublicKey.from_public_bytes(self.public)

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """From ``<name>+<hex key id>+<base64(0x01 ‖ public key)>``."""
        parts = vkey.strip().split("+", 2)
        if len(parts) != 3:
            raise NoteError(
                "a verifier key has the form <name>+<8 hex digits>+<base64 key>, "
                f"got {vkey.strip()[:60]!r}"
            )
        name, hex_id, encoded = parts
        raw = _b64decode(encoded, "the verifier key")
        if len(raw) != 33 or raw[:1] != ED25519:
            raise NoteError("the verifier key is not an Ed25519 key (type 0x01, 32 bytes)")
        verifier = cls(name, raw[1:])
        if hex_id != verifier.id.hex():
            raise NoteError(f"the verifier key's id {hex_id} does not match its key")
        return verifier

    def __str__(self) -> str:
        encoded = base64.b64encode(ED25519 + self.public).decode()
        return f"{self.name}+{self.id.hex()}+{encoded}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Verifier) and str(self) == str(other)

    def __hash__(self) -> int:
        return hash(str(self))

    def verify(self, text: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self._key.verify(signature, text)
        except InvalidSignature:
            return False
        return True


class Signer:
    """A named Ed25519 private key."""

    def __init__(self, name: str, seed: bytes):
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        self._key = Ed25519PrivateKey.from_private_bytes(seed)
        self._seed = seed
        self.verifier = Verifier(name, _raw_public(self._key))
        self.name = name

    @classmethod
    def generate(cls, name: str) -> Signer:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        check_name(name)
        key = Ed25519PrivateKey.generate()
        return cls(name, key.private_bytes_raw())

    @classmethod
    def parse(cls, skey: str) -> Signer:
        """From ``PRIVATE+KEY+<name>+<hex key id>+<base64(0x01 ‖ seed)>``."""
        parts = skey.strip().split("+", 4)
        if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
            raise NoteError(
                "a signing key has the form PRIVATE+KEY+<name>+<id>+<base64 key>"
            )
        _, _, name, hex_id, encoded = parts
        raw = _b64decode(encoded, "the signing key")
        if len(raw) != 33 or raw[:1] != ED25519:
            raise NoteError("the signing key is not an Ed25519 key (type 0x01, 32 bytes)")
        signer = cls(name, raw[1:])
        if hex_id != signer.verifier.id.hex():
            raise NoteError(f"the signing key's id {hex_id} does not match its key")
        return signer

    def __str__(self) -> str:
        encoded = base64.b64encode(ED25519 + self._seed).decode()
        return f"PRIVATE+KEY+{self.name}+{self.verifier.id.hex()}+{encoded}"

    def sign_bytes(self, message: bytes) -> bytes:
        """The raw Ed25519 signature of ``message``."""
        return self._key.sign(message)

    def sign(self, text: str) -> str:
        """The signed note of ``text`` (which ends in a newline)."""
        body = check_text(text).encode()
        signature = base64.b64encode(self.verifier.id + self._key.sign(body)).decode()
        return f"{text}\n{DASH} {self.name} {signature}\n"


def check_text(text: str) -> str:
    if not text.endswith("\n"):
        raise NoteError("a note's text must end in a newline")
    if any(ord(ch) < 0x20 and ch != "\n" for ch in text):
        raise NoteError("a note's text must not contain control characters")
    return text


class Signature(NamedTuple):
    name: str
    id: bytes
    signature: bytes


def parse_note(note: str) -> tuple[str, list[Signature]]:
    """Split a signed note into its text and signature lines (nothing verified)."""
    if not note.endswith("\n"):
        raise NoteError("a signed note ends in a newline")
    check_text(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("a signed note has a blank line before its signatures")
    text = check_text(note[: split + 1])
    signatures = []
    for line in note[split + 2 : -1].split("\n"):
        prefix = f"{DASH} "
        if not line.startswith(prefix):
            raise NoteError(f"signature line {line[:40]!r} does not start with '{DASH} '")
        fields = line[len(prefix) :].split(" ")
        if len(fields) != 2:
            raise NoteError(f"signature line {line[:40]!r} is not '{DASH} <name> <base64>'")
        name, encoded = fields
        raw = _b64decode(encoded, f"the signature of {name}")
        if len(raw) < 5:
            raise NoteError(f"the signature of {name} is too short")
        signatures.append(Signature(check_name(name), raw[:4], raw[4:]))
    return text, signatures


def open_note(note: str, verifier: Verifier) -> str:
    """The note's text, if ``verifier`` signed it; NoteError otherwise.

    Signatures by other keys are ignored, as the spec requires.
    """
    text, signatures = parse_note(note)
    mine = [s for s in signatures if s.name == verifier.name and s.id == verifier.id]
    if not mine:
        raise NoteError(
            f"the note is not signed by {verifier.name} (key id {verifier.id.hex()})"
        )
    if not all(verifier.verify(text.encode(), s.signature) for s in mine):
        raise NoteError(
            f"the signature by {verifier.name} does not verify: the note was altered"
        )
    return text


# --- checkpoints --------------------------------------------------------------------------


class Checkpoint(NamedTuple):
    origin: str
    size: int
    root: bytes

    def text(self) -> str:
        root = base64.b64encode(self.root).decode()
        return f"{self.origin}\n{self.size}\n{root}\n"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        lines = text.split("\n")
        if len(lines) < 4 or lines[-1] != "" or not all(lines[:-1]):
            raise NoteError(
                "a checkpoint is at least three non-empty lines: origin, size, root"
            )
        origin, size, root = lines[:3]
        if not re.fullmatch(r"0|[1-9][0-9]*", size):
            raise NoteError(f"the checkpoint's tree size {size!r} is not a decimal number")
        raw = _b64decode(root, "the checkpoint's root hash")
        if len(raw) != HASH_SIZE:
            raise NoteError(
                f"the checkpoint's root hash has {len(raw)} bytes, not {HASH_SIZE}"
            )
        return cls(origin, int(size), raw)


def open_checkpoint(note: str, verifier: Verifier) -> Checkpoint:
    return Checkpoint.parse(open_note(note, verifier))
