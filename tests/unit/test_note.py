"""C2SP signed notes (Ed25519) and C2SP tlog checkpoints, against published examples.

- golang.org/x/mod/sumdb/note: the package's own example key and note, byte for byte;
- c2sp.org/signed-note and c2sp.org/tlog-checkpoint: the specs' example notes;
- then every way a key, note or checkpoint must be refused.
"""

from __future__ import annotations

import base64
import hashlib
import re

import pytest
from arms_ledger.ledger.transparency.note import (
    Checkpoint,
    NoteError,
    Signer,
    Verifier,
    key_id,
    open_checkpoint,
    open_note,
    parse_note,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

DASH = "\u2014"  # the em dash that starts every signature line


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


# --- golang.org/x/mod/sumdb/note: the published example -----------------------------------

GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT
    + "\n"
    + f"{DASH} PeterNeumann "
    + "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZIn"
    + "NIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
    + "\n"
)


def test_go_example_signing_key_gives_the_published_verifier_key():
    signer = Signer.parse(GO_SKEY)
    assert str(signer.verifier) == GO_VKEY
    assert signer.verifier == Verifier.parse(GO_VKEY)


def test_go_example_signing_key_round_trips():
    assert str(Signer.parse(GO_SKEY)) == GO_SKEY


def test_go_example_verifier_key_round_trips():
    assert str(Verifier.parse(GO_VKEY)) == GO_VKEY


def test_go_example_signature_is_reproduced_byte_for_byte():
    # Ed25519 is deterministic: the same key and text give the same note.
    assert Signer.parse(GO_SKEY).sign(GO_TEXT) == GO_NOTE


def test_go_example_note_opens_to_its_text():
    assert open_note(GO_NOTE, Verifier.parse(GO_VKEY)) == GO_TEXT


def test_key_id_is_the_first_four_bytes_of_a_sha256():
    verifier = Verifier.parse(GO_VKEY)
    digest = hashlib.sha256(b"PeterNeumann" + b"\x0a" + b"\x01" + verifier.public).digest()
    assert key_id("PeterNeumann", verifier.public) == digest[:4]
    assert digest[:4] == bytes.fromhex("c74f20a3")
    assert verifier.id == bytes.fromhex("c74f20a3")
    # ...and the signature line starts with it.
    (signature,) = parse_note(GO_NOTE)[1]
    assert signature.id == verifier.id


# --- c2sp.org/tlog-checkpoint: the spec's example -----------------------------------------

SOFA_TEXT = (
    "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SOFA_NOTE = (
    SOFA_TEXT
    + "\n"
    + f"{DASH} example.com/behind-the-sofa "
    + "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeO"
    + "oRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8="
    + "\n"
)


def test_spec_checkpoint_parses_and_reproduces_byte_for_byte():
    checkpoint = Checkpoint.parse(SOFA_TEXT)
    assert checkpoint.origin == "example.com/behind-the-sofa"
    assert checkpoint.size == 20852163
    assert checkpoint.root == bytes.fromhex(
        "0ac5186a91863e8e1d90c808014aa89bf5da8e3ee1d9f07630f0378f68f1ab62"
    )
    assert checkpoint.text() == SOFA_TEXT


def test_spec_checkpoint_note_splits_into_text_and_one_signature():
    text, signatures = parse_note(SOFA_NOTE)
    assert text == SOFA_TEXT
    (signature,) = signatures
    assert signature.name == "example.com/behind-the-sofa"
    assert len(signature.id) == 4
    assert len(signature.signature) == 64  # Ed25519


def test_our_checkpoint_note_has_exactly_the_spec_layout():
    seed = bytes(range(32))
    signer = Signer("example.com/arms-ledger", seed)
    root = hashlib.sha256(b"some tree").digest()
    note = signer.sign(Checkpoint("example.com/arms-ledger", 42, root).text())

    # Built independently: the text, a blank line, one signature line over the text.
    text = f"example.com/arms-ledger\n42\n{b64(root)}\n"
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(text.encode())
    line = f"{DASH} example.com/arms-ledger {b64(signer.verifier.id + signature)}\n"
    assert note == text + "\n" + line
    checkpoint = open_checkpoint(note, signer.verifier)
    assert checkpoint == Checkpoint("example.com/arms-ledger", 42, root)


def test_a_generated_key_signs_a_checkpoint_that_opens():
    signer = Signer.generate("example.com/log")
    checkpoint = Checkpoint("example.com/log", 0, hashlib.sha256(b"").digest())
    note = signer.sign(checkpoint.text())
    base64_root = "[A-Za-z0-9+/]{43}="  # 32 bytes
    base64_signature = "[A-Za-z0-9+/]{91}="  # 4 + 64 bytes
    layout = (
        rf"example\.com/log\n0\n{base64_root}\n\n— example\.com/log {base64_signature}\n"
    )
    assert re.fullmatch(layout, note)
    assert open_checkpoint(note, signer.verifier) == checkpoint
    # The signing key survives its text form.
    assert Signer.parse(str(signer)).sign(checkpoint.text()) == note


def test_a_checkpoint_may_carry_extension_lines():
    text = SOFA_TEXT + "an extension line\n"
    assert Checkpoint.parse(text) == Checkpoint.parse(SOFA_TEXT)


# --- c2sp.org/signed-note: the spec's example ---------------------------------------------

QUASIMODO_TEXT = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed è subito sera.\n"
)
QUASIMODO_NOTE = (
    QUASIMODO_TEXT
    + "\n"
    + f"{DASH} quasimodo.example/salvatore "
    + "NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC"
    + "+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc="
    + "\n"
)


def test_spec_note_splits_at_its_last_blank_line():
    # The text has a blank line of its own; the signatures start after the last one.
    text, signatures = parse_note(QUASIMODO_NOTE)
    assert text == QUASIMODO_TEXT
    (signature,) = signatures
    assert signature.name == "quasimodo.example/salvatore"
    assert len(signature.id) == 4
    assert len(signature.signature) == 64


def test_a_text_with_blank_lines_signs_and_opens():
    signer = Signer.generate("quasimodo.example/salvatore")
    assert open_note(signer.sign(QUASIMODO_TEXT), signer.verifier) == QUASIMODO_TEXT


# --- other signatures are ignored ---------------------------------------------------------

ALICE = Signer(name="example.com/alice", seed=b"\x01" * 32)
BOB = Signer(name="example.com/bob", seed=b"\x02" * 32)
TEXT = "example.com/alice\n3\n" + b64(bytes(32)) + "\n"


def signature_line(note: str) -> str:
    """The last signature line of a note."""
    return note.splitlines(keepends=True)[-1]


def test_signatures_by_other_keys_are_ignored():
    both = TEXT + "\n" + signature_line(BOB.sign(TEXT)) + signature_line(ALICE.sign(TEXT))
    assert open_note(both, ALICE.verifier) == TEXT
    assert open_note(both, BOB.verifier) == TEXT
    assert [s.name for s in parse_note(both)[1]] == ["example.com/bob", "example.com/alice"]


def test_an_unknown_signature_that_would_not_verify_is_ignored():
    stranger = f"{DASH} example.com/stranger {b64(b'abcd' + bytes(64))}\n"
    note = ALICE.sign(TEXT) + stranger
    assert open_note(note, ALICE.verifier) == TEXT


# --- refusals -----------------------------------------------------------------------------


def test_an_altered_text_is_refused():
    note = ALICE.sign(TEXT).replace("\n3\n", "\n4\n")
    with pytest.raises(NoteError, match="does not verify"):
        open_note(note, ALICE.verifier)


def test_an_altered_signature_is_refused():
    note = ALICE.sign(TEXT)
    line = signature_line(note)
    encoded = line.split(" ")[-1].strip()
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 0x01  # a byte of the Ed25519 signature, after the 4-byte key id
    altered = note[: -len(line)] + line.replace(encoded, b64(bytes(raw)))
    with pytest.raises(NoteError, match="does not verify"):
        open_note(altered, ALICE.verifier)


def test_a_note_signed_by_another_key_is_refused():
    with pytest.raises(NoteError, match="not signed by"):
        open_note(BOB.sign(TEXT), ALICE.verifier)


def test_another_key_with_the_same_name_is_ignored():
    impostor = Signer(name="example.com/alice", seed=b"\x03" * 32)
    assert impostor.verifier.id != ALICE.verifier.id
    with pytest.raises(NoteError, match="not signed by"):
        open_note(impostor.sign(TEXT), ALICE.verifier)


def test_our_key_id_under_another_name_is_ignored():
    note = ALICE.sign(TEXT)
    renamed = note.replace(f"{DASH} example.com/alice ", f"{DASH} example.com/eve ")
    with pytest.raises(NoteError, match="not signed by"):
        open_note(renamed, ALICE.verifier)


GOOD = ALICE.sign(TEXT)
GOOD_SIGNATURE = signature_line(GOOD)

# id: (note, what the refusal says)
MALFORMED_NOTES = {
    "no blank line": (TEXT + GOOD_SIGNATURE, "blank line"),
    "no trailing newline": (GOOD[:-1], "ends in a newline"),
    "no signature": (TEXT + "\n", "does not start with"),
    "tab in text": (TEXT.replace("\n3\n", "\n3\t\n") + "\n" + GOOD_SIGNATURE, "control"),
    "CRLF in text": (TEXT.replace("\n", "\r\n") + "\n" + GOOD_SIGNATURE, "control"),
    "NUL in text": ("a\x00b\n\n" + GOOD_SIGNATURE, "control"),
    "bad base64": (
        GOOD.replace(GOOD_SIGNATURE, f"{DASH} example.com/alice not*base64!\n"),
        "base64",
    ),
    "unpadded base64": (GOOD.replace("=\n", "\n"), "base64"),
    "signature shorter than a key id": (
        GOOD.replace(GOOD_SIGNATURE, f"{DASH} example.com/alice {b64(b'abcd')}\n"),
        "too short",
    ),
    "hyphen instead of em dash": (GOOD.replace(DASH, "-"), "does not start with"),
    "two spaces": (GOOD.replace(f"{DASH} ", f"{DASH}  "), "is not"),
    "no key name": (GOOD.replace(f"{DASH} example.com/alice ", f"{DASH} "), "is not"),
    # The last blank line starts the signatures, so the first signature becomes text.
    "blank line among signatures": (GOOD + "\n" + GOOD_SIGNATURE, "does not verify"),
}


@pytest.mark.parametrize(
    ("note", "reason"), MALFORMED_NOTES.values(), ids=MALFORMED_NOTES.keys()
)
def test_a_malformed_note_is_refused(note: str, reason: str):
    with pytest.raises(NoteError, match=reason):
        open_note(note, ALICE.verifier)


def test_a_control_character_in_a_signature_line_is_refused():
    signed = ALICE.sign(TEXT)
    forged = signed.replace(f"{DASH} {ALICE.name} ", f"{DASH} {ALICE.name}\x01 ")
    with pytest.raises(NoteError, match="control characters"):
        open_note(forged, ALICE.verifier)


def test_a_key_name_with_a_control_character_is_refused():
    with pytest.raises(NoteError, match="key name"):
        Signer("example.com/al\x01ice", b"\x01" * 32)


@pytest.mark.parametrize(
    "text", ["no newline", "tab\there\n", "bell\x07\n", "\r\n"], ids=repr
)
def test_signing_refuses_a_text_that_is_not_a_note_text(text: str):
    with pytest.raises(NoteError):
        ALICE.sign(text)


ALICE_VKEY = str(ALICE.verifier)
_name, _id, _key = ALICE_VKEY.split("+", 2)
_raw = base64.b64decode(_key)  # 0x01 ‖ the 32-byte public key
_TYPE_0X02 = b"\x02" + _raw[1:]

MALFORMED_VERIFIER_KEYS = {
    "two parts": f"{_name}+{_id}",
    "one part": _name,
    "wrong id": f"{_name}+{'0' * 8}+{_key}",
    "id of another name": f"example.com/bob+{_id}+{_key}",
    "wrong type byte": f"{_name}+{_id}+{b64(_TYPE_0X02)}",
    "key too short": f"{_name}+{_id}+{b64(_raw[:-1])}",
    "key too long": f"{_name}+{_id}+{b64(_raw + bytes(1))}",
    "key not base64": f"{_name}+{_id}+not*base64",
    "empty name": f"+{_id}+{_key}",
    "name with a space": f"example.com/al ice+{_id}+{_key}",
}


@pytest.mark.parametrize(
    "vkey", MALFORMED_VERIFIER_KEYS.values(), ids=MALFORMED_VERIFIER_KEYS.keys()
)
def test_a_malformed_verifier_key_is_refused(vkey: str):
    with pytest.raises(NoteError):
        Verifier.parse(vkey)


MALFORMED_SIGNING_KEYS = {
    "not private": GO_SKEY.replace("PRIVATE+KEY+", "PUBLIC+KEY+"),
    "a verifier key": GO_VKEY,
    "wrong id": GO_SKEY.replace("c74f20a3", "c74f20a4"),
    "wrong type byte": GO_SKEY.replace("+AYEK", "+AoEK"),
    "seed too short": "PRIVATE+KEY+PeterNeumann+c74f20a3+" + b64(b"\x01" + bytes(31)),
}


@pytest.mark.parametrize(
    "skey", MALFORMED_SIGNING_KEYS.values(), ids=MALFORMED_SIGNING_KEYS.keys()
)
def test_a_malformed_signing_key_is_refused(skey: str):
    with pytest.raises(NoteError):
        Signer.parse(skey)


@pytest.mark.parametrize(
    "name",
    ["", "example.com/a b", "example.com/a+b", "tab\there", "no-break\u00a0space"],
    ids=repr,
)
def test_a_key_name_with_spaces_or_plus_is_refused(name: str):
    with pytest.raises(NoteError):
        Signer.generate(name)
    with pytest.raises(NoteError):
        Signer(name, bytes(32))
    with pytest.raises(NoteError):
        Verifier(name, ALICE.verifier.public)


ROOT = b64(bytes(32))

MALFORMED_CHECKPOINTS = {
    "size not decimal": f"example.com/log\nten\n{ROOT}\n",
    "size in hex": f"example.com/log\n0x10\n{ROOT}\n",
    "negative size": f"example.com/log\n-1\n{ROOT}\n",
    "signed size": f"example.com/log\n+1\n{ROOT}\n",
    "size with a space": f"example.com/log\n 1\n{ROOT}\n",
    "size with a leading zero": f"example.com/log\n007\n{ROOT}\n",
    "non-ASCII digits": f"example.com/log\n\u0661\u0662\n{ROOT}\n",
    "root too short": f"example.com/log\n1\n{b64(bytes(31))}\n",
    "root too long": f"example.com/log\n1\n{b64(bytes(33))}\n",
    "root not base64": f"example.com/log\n1\n{'*' * 44}\n",
    "two lines": "example.com/log\n1\n",
    "no root line": f"example.com/log\n1\n\n{ROOT}\n",
    "empty origin": f"\n1\n{ROOT}\n",
    "no final newline": f"example.com/log\n1\n{ROOT}",
    "empty extension line": f"example.com/log\n1\n{ROOT}\n\nextension\n",
}


@pytest.mark.parametrize(
    "text", MALFORMED_CHECKPOINTS.values(), ids=MALFORMED_CHECKPOINTS.keys()
)
def test_a_malformed_checkpoint_is_refused(text: str):
    with pytest.raises(NoteError):
        Checkpoint.parse(text)


def test_a_checkpoint_of_size_zero_is_fine():
    assert Checkpoint.parse(f"example.com/log\n0\n{ROOT}\n").size == 0


def test_a_signed_note_that_is_not_a_checkpoint_is_refused():
    with pytest.raises(NoteError, match="checkpoint"):
        open_checkpoint(ALICE.sign("just some text\n"), ALICE.verifier)
