"""The transparency-log commands through CliRunner: exact output, exit codes, C2SP bytes.

Keys, checkpoints and proofs are checked here with nothing but hashlib, base64 and the
``cryptography`` primitives (and an RFC 9162 tree written out naively), so a mistake in
``ledger.note`` or ``ledger.merkle`` cannot hide itself.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

import pytest
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.transparency import merkle, tlog
from arms_ledger.ledger.transparency.note import (
    Checkpoint,
    Signer,
    Verifier,
    open_checkpoint,
)
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests import stores
from tests.cli.conftest import one_line_error
from tests.histories import EVERY_TYPE, jsonl

ORIGIN = "dsca.example/fms-queue"
N = len(EVERY_TYPE)
DASH = "\u2014"
EMPTY_ROOT = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="  # SHA-256 of nothing
TIME = r"\d+\.\d\d"

# The last line of `audit verify` on a ledger that does not enforce authority.
UNSIGNED = re.escape(
    "20 of 20 decisions are unsigned; this ledger does not enforce authority (no root "
    "named: `arms-ledger init --authority-root KEYFILE`).\n"
)


@pytest.fixture
def initialized(run):
    assert run("init", "--origin", ORIGIN).exit_code == 0
    return run


@pytest.fixture
def loaded(initialized):
    """A ledger of EVERY_TYPE (40 events, one append: one checkpoint)."""
    result = initialized("append", "-", input=jsonl(EVERY_TYPE))
    assert result.exit_code == 0, result.stderr
    return initialized


def usage_error(result, message: str) -> None:
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("Usage: ")
    assert result.stderr.endswith(f"\n\nError: {message}\n")


def sql(ledger_dir: Path, query: str) -> list[tuple]:
    with stores.raw(ledger_dir) as db:
        return db.execute(query).fetchall()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# --- an RFC 9162 tree over the stored events, written out naively -------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaves(ledger_dir: Path) -> list[bytes]:
    """SHA-256(0x00 ‖ export line) of every stored event, the line built here by hand."""
    rows = sql(ledger_dir, "SELECT rowid, state FROM stored_events ORDER BY rowid")
    return [sha256(b'\x00{"position":%d,' % p + s[1:]) for p, s in rows]


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d: list[bytes]) -> bytes:
    if not d:
        return sha256(b"")
    if len(d) == 1:
        return d[0]
    k = _k(len(d))
    return sha256(b"\x01" + mth(d[:k]) + mth(d[k:]))


def path(m: int, d: list[bytes]) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 §2.1.3.1."""
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*path(m, d[:k]), mth(d[k:])]
    return [*path(m - k, d[k:]), mth(d[:k])]


def proof(m: int, d: list[bytes], whole: bool = True) -> list[bytes]:
    """SUBPROOF(m, D[n], b) of RFC 9162 §2.1.4.1."""
    if m == len(d):
        return [] if whole else [mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*proof(m, d[:k], whole), mth(d[k:])]
    return [*proof(m - k, d[k:], False), mth(d[:k])]


# --- init ---------------------------------------------------------------------------------


def test_init_makes_an_ed25519_key_and_prints_the_c2sp_verifier_key(run, ledger_dir):
    result = run("init", "--origin", ORIGIN)
    assert result.exit_code == 0, result.stderr
    vkey = (ledger_dir / "verifier.key").read_text()
    assert result.stdout == f"Created an empty ledger at {ledger_dir}\nVerifier key: {vkey}"
    assert result.stderr == ""
    # <name>+<8 hex digits>+<base64(0x01 ‖ 32-byte public key)>
    match = re.fullmatch(r"([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]{44})\n", vkey)
    assert match, vkey
    name, hex_id, encoded = match.groups()
    raw = base64.b64decode(encoded, validate=True)
    assert name == ORIGIN and len(raw) == 33 and raw[0] == 0x01
    public = raw[1:]
    assert hex_id == sha256(name.encode() + b"\n" + b"\x01" + public)[:4].hex()
    # the signing key, mode 0600, in the Go sumdb/note form, is the pair of that key
    skey = ledger_dir / "signing.key"
    assert skey.stat().st_mode & 0o777 == 0o600
    match = re.fullmatch(
        r"PRIVATE\+KEY\+([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/]{44})\n", skey.read_text()
    )
    assert match and match.group(1, 2) == (name, hex_id)
    seed = base64.b64decode(match.group(3), validate=True)
    assert len(seed) == 33 and seed[0] == 0x01
    derived = Ed25519PrivateKey.from_private_bytes(seed[1:]).public_key()
    assert derived.public_bytes(Encoding.Raw, PublicFormat.Raw) == public
    meta = json.loads((ledger_dir / "ledger.json").read_text())
    assert (meta["format"], meta["origin"], meta["checkpoints"]) == (2, ORIGIN, "append")


def test_init_names_the_log_when_no_origin_is_given(run, ledger_dir):
    result = run("init")
    assert result.exit_code == 0, result.stderr
    vkey = (ledger_dir / "verifier.key").read_text().strip()
    assert re.fullmatch(r"arms-ledger\.local/[0-9a-f]{16}\+[0-9a-f]{8}\+\S{44}", vkey), vkey
    assert (
        json.loads((ledger_dir / "ledger.json").read_text())["origin"]
        == vkey.split("+", 1)[0]
    )


def test_init_with_manual_checkpoints_signs_only_on_audit_checkpoint(run, ledger_dir):
    assert run("init", "--origin", ORIGIN, "--checkpoints", "manual").exit_code == 0
    assert json.loads((ledger_dir / "ledger.json").read_text())["checkpoints"] == "manual"
    assert run("append", "-", input=jsonl(EVERY_TYPE[:10])).exit_code == 0
    assert run("append", "-", input=jsonl(EVERY_TYPE[10:])).exit_code == 0
    assert sql(ledger_dir, "SELECT count(*) FROM tlog_checkpoints") == [(0,)]
    result = run("audit", "checkpoint")
    assert result.exit_code == 0, result.stderr
    assert sql(ledger_dir, "SELECT size, note FROM tlog_checkpoints") == [
        (N, result.stdout)
    ]


@pytest.mark.parametrize(
    "origin",
    [
        "a b",
        "a+b",
        "tab\there",
        "",
    ],
)
def test_init_refuses_an_origin_that_is_not_a_key_name(run, ledger_dir, origin):
    result = run("init", "--origin", origin)
    one_line_error(
        result,
        f"origin: key name {origin!r} must be non-empty, without spaces or '+' "
        "(e.g. arms-ledger.example/dsca)",
    )
    assert not ledger_dir.exists()


@pytest.mark.parametrize("option", ["--key", "--trusted-checkpoint"])
def test_init_key_or_trusted_checkpoint_without_from_export_is_a_usage_error(
    run, ledger_dir, tmp_path, option
):
    value = str(tmp_path / "somefile")
    Path(value).write_text("x")
    result = run("init", option, value)
    usage_error(result, "--key and --trusted-checkpoint go with --from-export")
    assert not ledger_dir.exists()


# --- audit checkpoint ---------------------------------------------------------------------


def test_audit_checkpoint_prints_the_stored_note_in_the_c2sp_layout(loaded, ledger_dir):
    vkey = (ledger_dir / "verifier.key").read_text().strip()
    result = loaded("audit", "checkpoint")
    assert (result.exit_code, result.stderr) == (0, "")
    note = result.stdout
    # the append already signed this size: the same note (Ed25519 is deterministic),
    # kept once
    assert sql(ledger_dir, "SELECT id, size, note, verifier FROM tlog_checkpoints") == [
        (1, N, note, vkey)
    ]
    root = mth(leaves(ledger_dir))
    text = f"{ORIGIN}\n{N}\n{b64(root)}\n"
    match = re.fullmatch(
        re.escape(f"{text}\n{DASH} {ORIGIN} ")
        + r"([A-Za-z0-9+/]{90}==|[A-Za-z0-9+/]{91}=)\n",
        note,
    )
    assert match, note
    signature = base64.b64decode(match.group(1), validate=True)
    public = base64.b64decode(vkey.split("+", 2)[2])[1:]
    assert len(signature) == 4 + 64
    assert signature[:4].hex() == vkey.split("+", 2)[1]
    Ed25519PublicKey.from_public_bytes(public).verify(signature[4:], text.encode())
    assert open_checkpoint(note, Verifier.parse(vkey)) == Checkpoint(ORIGIN, N, root)


def test_audit_checkpoint_after_more_events_stores_another_and_keeps_the_first(
    loaded, ledger_dir
):
    first = loaded("audit", "checkpoint").stdout
    assert (
        loaded(
            "append",
            "-",
            input=jsonl(
                [
                    {
                        "type": "PartnerRegistered",
                        "partner": "NOR",
                        "name": "Norway",
                        "region": "Europe",
                        "notification_group": "NATO+",
                        "nato_member": True,
                        "actor": "state.pm-rsat",
                    }
                ]
            ),
        ).exit_code
        == 0
    )
    second = loaded("audit", "checkpoint").stdout
    assert second.startswith(
        f"{ORIGIN}\n{N + 1}\n{b64(mth(leaves(ledger_dir)))}\n\n{DASH} "
    )
    assert sql(ledger_dir, "SELECT size, note FROM tlog_checkpoints ORDER BY id") == [
        (N, first),
        (N + 1, second),
    ]


def test_audit_checkpoint_of_the_empty_log(initialized, ledger_dir):
    result = initialized("audit", "checkpoint")
    assert result.exit_code == 0
    assert result.stdout.startswith(f"{ORIGIN}\n0\n{EMPTY_ROOT}\n\n{DASH} {ORIGIN} ")
    vkey = Verifier.parse((ledger_dir / "verifier.key").read_text())
    assert open_checkpoint(result.stdout, vkey) == Checkpoint(ORIGIN, 0, sha256(b""))


def test_audit_checkpoint_needs_the_signing_key(loaded, ledger_dir):
    (ledger_dir / "signing.key").unlink()
    one_line_error(
        loaded("audit", "checkpoint"),
        f"this ledger has no signing key ({ledger_dir / 'signing.key'} is missing), and "
        "it signs a checkpoint with every append: nothing was written; restore the key, "
        "or write on the operator's copy of the ledger",
    )


# --- audit prove / consistency ------------------------------------------------------------


def proof_line(hashes: list[bytes], **fields: int) -> str:
    head = "".join(f'"{k}":{v},' for k, v in fields.items())
    return "{" + head + '"hashes":[' + ",".join(f'"{b64(h)}"' for h in hashes) + "]}\n"


@pytest.mark.parametrize(
    ("index", "size"),
    [(0, None), (5, None), (N - 1, None), (5, 10), (0, 1), (7, 8), (8, 9), (31, 32)],
)
def test_audit_prove_prints_the_rfc_9162_inclusion_proof(loaded, ledger_dir, index, size):
    args = ["audit", "prove", str(index)] + ([] if size is None else ["--size", str(size)])
    result = loaded(*args)
    assert (result.exit_code, result.stderr) == (0, "")
    n = N if size is None else size
    d = leaves(ledger_dir)[:n]
    expected = path(index, d)
    assert result.stdout == proof_line(expected, leaf_index=index, tree_size=n)
    hashes = [
        base64.b64decode(h, validate=True) for h in json.loads(result.stdout)["hashes"]
    ]
    merkle.verify_inclusion(index, n, d[index], hashes, mth(d))


@pytest.mark.parametrize(
    ("old", "size"),
    [
        (1, None),
        (7, None),
        (8, None),
        (N, None),
        (7, 20),
        (20, 20),
        (3, 4),
        (1, 2),
        (16, 33),
    ],
)
def test_audit_consistency_prints_the_rfc_9162_consistency_proof(
    loaded, ledger_dir, old, size
):
    args = ["audit", "consistency", str(old)] + (
        [] if size is None else ["--size", str(size)]
    )
    result = loaded(*args)
    assert (result.exit_code, result.stderr) == (0, "")
    n = N if size is None else size
    d = leaves(ledger_dir)[:n]
    expected = proof(old, d)
    assert result.stdout == proof_line(expected, old_size=old, new_size=n)
    hashes = [
        base64.b64decode(h, validate=True) for h in json.loads(result.stdout)["hashes"]
    ]
    merkle.verify_consistency(old, n, mth(d[:old]), mth(d), hashes)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["prove", str(N)],
            f"leaf index {N} is not in a tree of {N} events (leaf indexes are "
            f"0-based: 0 to {N - 1}; position = index + 1)",
        ),
        (
            ["prove", "10", "--size", "10"],
            "leaf index 10 is not in a tree of 10 events (leaf "
            "indexes are 0-based: 0 to 9; position = index + 1)",
        ),
        (
            ["prove", "0", "--size", str(N + 1)],
            f"--size {N + 1}: the log has {N} events (sizes 0 to {N})",
        ),
        (
            ["consistency", str(N + 1)],
            f"old size {N + 1}: it must be between 1 and the new size {N}",
        ),
        (
            ["consistency", "8", "--size", "7"],
            "old size 8: it must be between 1 and the new size 7",
        ),
        (
            ["consistency", "1", "--size", str(N + 1)],
            f"--size {N + 1}: the log has {N} events (sizes 0 to {N})",
        ),
    ],
)
def test_audit_proofs_outside_the_log_are_one_line_errors(loaded, args, message):
    one_line_error(loaded("audit", *args), message)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["prove", "--", "-1"], "Invalid value for 'INDEX': -1 is not in the range x>=0."),
        (["prove", "x"], "Invalid value for 'INDEX': 'x' is not a valid integer range."),
        (["consistency", "0"], "Invalid value for 'OLD': 0 is not in the range x>=1."),
        (
            ["consistency", "1", "--size", "0"],
            "Invalid value for '--size': 0 is not in the range x>=1.",
        ),
    ],
)
def test_audit_proof_arguments_out_of_range_are_usage_errors(loaded, args, message):
    usage_error(loaded("audit", *args), message)


def test_audit_proofs_of_the_empty_log(initialized):
    one_line_error(
        initialized("audit", "prove", "0"),
        "a tree of 0 events has no leaves: there is nothing to prove",
    )
    one_line_error(
        initialized("audit", "consistency", "1"),
        "old size 1: it must be between 1 and the new size 0",
    )


def test_audit_prove_in_the_empty_tree_of_a_non_empty_log_does_not_call_the_log_empty(
    loaded,
):
    result = loaded("audit", "prove", "0", "--size", "0")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "the log is empty" not in result.stderr


# --- audit verify -------------------------------------------------------------------------


def test_audit_verify_reports_what_it_checked(loaded):
    result = loaded("audit", "verify")
    assert (result.exit_code, result.stderr) == (0, "")
    nodes = N + sum(N >> level for level in range(1, N.bit_length()))
    assert nodes == 78
    assert re.fullmatch(
        f"Verified {N} events, {nodes} tree nodes and 1 checkpoint in {TIME} s: "
        "the log is intact.\nThe newest checkpoint signed by the key covers every "
        "event.\n" + UNSIGNED,
        result.stdout,
    ), result.stdout


def test_audit_verify_of_the_empty_log(initialized):
    result = initialized("audit", "verify")
    assert result.exit_code == 0
    assert re.fullmatch(
        f"Verified 0 events, 0 tree nodes and 0 checkpoints in {TIME} s: the log is "
        "intact.\n",
        result.stdout,
    )


def test_audit_verify_with_a_trusted_checkpoint(loaded, ledger_dir, tmp_path):
    kept = tmp_path / "kept"
    kept.write_text(loaded("audit", "checkpoint").stdout)
    assert (
        loaded(
            "append",
            "-",
            input=jsonl(
                [
                    {
                        "type": "PartnerRegistered",
                        "partner": "NOR",
                        "name": "Norway",
                        "region": "Europe",
                        "notification_group": "NATO+",
                        "nato_member": True,
                        "actor": "state.pm-rsat",
                    }
                ]
            ),
        ).exit_code
        == 0
    )
    result = loaded("audit", "verify", "--trusted-checkpoint", str(kept))
    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(
        f"Verified {N + 1} events, 79 tree nodes and 3 checkpoints in {TIME} s: "
        "the log is intact.\nThe newest checkpoint signed by the key covers every "
        "event.\n" + UNSIGNED,
        result.stdout,
    ), result.stdout
    vkey = (ledger_dir / "verifier.key").read_text().strip()
    result = loaded("audit", "verify", "--trusted-checkpoint", str(kept), "--key", vkey)
    assert result.exit_code == 0, result.stderr


def test_audit_verify_refuses_a_trusted_checkpoint_under_another_key(loaded, tmp_path):
    kept = tmp_path / "kept"
    kept.write_text(loaded("audit", "checkpoint").stdout)
    other = Signer.generate("other.example/log").verifier
    one_line_error(
        loaded("audit", "verify", "--trusted-checkpoint", str(kept), "--key", str(other)),
        f"the trusted checkpoint {kept}: the note is not signed by other.example/log "
        f"(key id {other.id.hex()})",
    )


def test_audit_verify_refuses_a_malformed_key(loaded):
    one_line_error(
        loaded("audit", "verify", "--key", "garbage"),
        "--key: a verifier key has the form <name>+<8 hex digits>+<base64 key>, got "
        "'garbage'",
    )


# --- audit export -------------------------------------------------------------------------


def test_audit_export_writes_the_leaves_the_checkpoint_and_the_key(
    loaded, ledger_dir, tmp_path
):
    target = tmp_path / "export"
    result = loaded("audit", "export", str(target))
    root = mth(leaves(ledger_dir))
    assert (result.exit_code, result.stderr) == (0, "")
    assert (
        result.stdout == f"Exported {N} events to {target} (checkpoint root {b64(root)}).\n"
    )
    assert sorted(p.name for p in target.iterdir()) == [
        "checkpoint",
        "events.jsonl",
        "verifier.key",
    ]
    assert (target / "verifier.key").read_text() == (
        ledger_dir / "verifier.key"
    ).read_text()
    (note,) = sql(ledger_dir, "SELECT note FROM tlog_checkpoints ORDER BY id DESC LIMIT 1")[
        0
    ]
    assert (target / "checkpoint").read_text() == note
    lines = (target / "events.jsonl").read_bytes().split(b"\n")
    assert lines[-1] == b"" and len(lines) == N + 1
    assert [sha256(b"\x00" + line) for line in lines[:-1]] == leaves(ledger_dir)


def test_audit_export_into_an_empty_directory(loaded, tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    assert loaded("audit", "export", str(target)).exit_code == 0


def test_audit_export_refuses_a_non_empty_directory(loaded, tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    one_line_error(
        loaded("audit", "export", str(target)),
        f"{target} is not empty; choose a new or empty directory",
    )
    assert [p.name for p in target.iterdir()] == ["notes.txt"]


def test_audit_export_refuses_a_file(loaded, tmp_path):
    target = tmp_path / "export"
    target.write_text("x")
    usage_error(
        loaded("audit", "export", str(target)),
        f"Invalid value for 'DIRECTORY': Directory '{target}' is a file.",
    )


def test_a_refused_export_writes_no_checkpoint(run, ledger_dir, tmp_path):
    assert run("init", "--origin", ORIGIN, "--checkpoints", "manual").exit_code == 0
    assert run("append", "-", input=jsonl(EVERY_TYPE)).exit_code == 0
    target = tmp_path / "export"
    target.mkdir()
    (target / "notes.txt").write_text("mine\n")
    assert run("audit", "export", str(target)).exit_code == 1
    assert sql(ledger_dir, "SELECT count(*) FROM tlog_checkpoints") == [(0,)]


# --- audit verify-export ------------------------------------------------------------------


@pytest.fixture
def exported(loaded, tmp_path) -> Path:
    target = tmp_path / "export"
    assert loaded("audit", "export", str(target)).exit_code == 0
    return target


def test_verify_export_with_the_key_from_a_file(exported, ledger_dir, run):
    result = run(
        "audit", "verify-export", str(exported), "--key", str(ledger_dir / "verifier.key")
    )
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert result.stdout.startswith(f"Checkpoint of {ORIGIN}: {N} events, root ")
    assert sorted(p.name for p in exported.iterdir()) == [
        "checkpoint",
        "events.jsonl",
        "verifier.key",
    ]


def test_verify_export_without_a_key_trusts_the_exported_one_and_says_so(exported, run):
    result = run("audit", "verify-export", str(exported))
    assert result.exit_code == 0, result.stderr
    assert re.fullmatch(
        re.escape(
            f"Note: trusting the key in {exported / 'verifier.key'}; pass --key with the "
            "key the ledger's operator published to check it.\n"
        ),
        result.stderr,
    ), result.stderr


@pytest.mark.parametrize("missing", ["events.jsonl", "checkpoint"])
def test_verify_export_names_a_missing_file(exported, ledger_dir, run, missing):
    (exported / missing).unlink()
    key = (ledger_dir / "verifier.key").read_text().strip()
    one_line_error(
        run("audit", "verify-export", str(exported), "--key", key),
        f"{exported / missing} is missing; is {exported} an `audit export`?",
    )
    assert not (exported / "replica").exists()


def test_verify_export_without_a_key_needs_the_exported_key_file(exported, run):
    (exported / "verifier.key").unlink()
    one_line_error(
        run("audit", "verify-export", str(exported)),
        f"{exported / 'verifier.key'} is missing; pass --key with the log's verifier key",
    )


def test_verify_export_of_a_directory_that_does_not_exist(run, tmp_path):
    usage_error(
        run("audit", "verify-export", str(tmp_path / "nope")),
        f"Invalid value for 'DIRECTORY': Directory '{tmp_path / 'nope'}' does not exist.",
    )


def test_verify_export_refuses_a_malformed_key(exported, run):
    one_line_error(
        run("audit", "verify-export", str(exported), "--key", "x+y"),
        "--key: a verifier key has the form <name>+<8 hex digits>+<base64 key>, got 'x+y'",
    )
    assert not (exported / "replica").exists()


def test_verify_export_reads_a_key_file_whose_path_has_a_plus(
    exported, ledger_dir, run, tmp_path
):
    keys = tmp_path / "keys+2026"
    keys.mkdir()
    (keys / "verifier.key").write_text((ledger_dir / "verifier.key").read_text())
    result = run(
        "audit", "verify-export", str(exported), "--key", str(keys / "verifier.key")
    )
    assert result.exit_code == 0, result.stderr


def _signed_export_that_breaks_the_rules(ledger_dir: Path, target: Path) -> str:
    """An export signed with the ledger's own key whose event the rules refuse (a
    misbehaving operator): it verifies, but cannot be loaded into a replica."""
    signer = Signer.parse((ledger_dir / "signing.key").read_text())
    event = ev.decoder.decode(
        json.dumps({"type": "CaseClosed", "case": "NOPE", "actor": "x"})
    )
    line = tlog.leaf_line(1, ev.encoder.encode(event))
    target.mkdir()
    (target / "events.jsonl").write_bytes(line + b"\n")
    root = sha256(b"\x00" + line)
    (target / "checkpoint").write_text(signer.sign(Checkpoint(signer.name, 1, root).text()))
    return str(signer.verifier)


def test_verify_export_that_cannot_be_replayed_leaves_no_replica(
    loaded, ledger_dir, tmp_path
):
    target = tmp_path / "signed"
    key = _signed_export_that_breaks_the_rules(ledger_dir, target)
    result = loaded(
        "audit", "verify-export", str(target), "--key", key, "--into", str(target / "r")
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: line 1 (CaseClosed) of the export: recorded_at is missing: a recorded "
        "history carries it\n"
    )
    assert not (target / "r").exists()


def test_verify_export_into_an_empty_directory_leaves_it_empty_on_failure(
    loaded, ledger_dir, tmp_path
):
    target = tmp_path / "signed"
    key = _signed_export_that_breaks_the_rules(ledger_dir, target)
    into = tmp_path / "into"
    into.mkdir()
    result = loaded(
        "audit", "verify-export", str(target), "--key", key, "--into", str(into)
    )
    assert result.exit_code == 1
    assert list(into.iterdir()) == []


# --- init --from-export -------------------------------------------------------------------


def test_init_from_export_builds_a_replica_that_verifies(
    exported, ledger_dir, run, tmp_path
):
    replica = tmp_path / "replica"
    key = (ledger_dir / "verifier.key").read_text().strip()
    result = run(
        "--ledger", str(replica), "init", "--from-export", str(exported), "--key", key
    )
    assert result.exit_code == 0, result.stderr
    root = mth(leaves(ledger_dir))
    assert result.stdout == (
        f"Checkpoint of {ORIGIN}: {N} events, root {b64(root)}, signature verified.\n"
        f"events.jsonl: {N} events; their Merkle root matches.\n"
        f"Created a replica at {replica} with {N} events.\n"
        f"Its own verifier key: {(replica / 'verifier.key').read_text()}"
    )
    assert leaves(replica) == leaves(ledger_dir)
    assert (replica / "signing.key").stat().st_mode & 0o777 == 0o600
    result = run("--ledger", str(replica), "audit", "verify")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(
        f"Verified {N} events, 78 tree nodes and 2 checkpoints in "
    )
    result = run("--ledger", str(replica), "audit", "prove", "5")
    assert result.stdout == run("audit", "prove", "5").stdout


def test_init_from_export_keeps_the_checkpoint_policy(exported, ledger_dir, run, tmp_path):
    replica = tmp_path / "replica"
    key = (ledger_dir / "verifier.key").read_text().strip()
    result = run(
        "--ledger",
        str(replica),
        "init",
        "--from-export",
        str(exported),
        "--key",
        key,
        "--checkpoints",
        "manual",
    )
    assert result.exit_code == 0, result.stderr
    assert json.loads((replica / "ledger.json").read_text())["checkpoints"] == "manual"
