"""Issue 19, item 2: an event forged at the tail, with the Merkle nodes it completes, by
someone with write access to the store and no key. On a ledger that signs every append
(on SQLite, where its key is the only one), `audit verify` names the events its key never
signed and fails, and the next append refuses to sign a checkpoint over them; on a ledger
whose checkpoints are signed by hand, `audit verify` says how many events are unsigned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli.conftest import line, one_line_error, registration


def partner(code: str) -> str:
    return line(registration(code, f"Partner {code}"))


def forge_at_the_tail(run, ledger_dir: Path, code: str) -> None:
    """Append as a writer without the key would: the event and its tree nodes, no
    checkpoint (the key put aside, the ledger told it signs by hand), then put back."""
    meta = ledger_dir / "ledger.json"
    info = json.loads(meta.read_text())
    key = ledger_dir / "signing.key"
    aside = ledger_dir.parent / "key-aside"
    key.rename(aside)
    meta.write_text(json.dumps(info | {"checkpoints": "manual"}))
    assert run("append", "-", input=partner(code)).exit_code == 0
    meta.write_text(json.dumps(info))
    aside.rename(key)


@pytest.fixture
def sqlite_only(store):
    if store != "sqlite":
        pytest.skip("SQLite only: on a shared PostgreSQL log other offices' keys sign")


def test_verify_and_append_refuse_an_unsigned_tail(sqlite_only, run, ledger_dir):
    assert run("init").exit_code == 0
    assert run("append", "-", input=partner("POL") + partner("DEU")).exit_code == 0
    forge_at_the_tail(run, ledger_dir, "ZZZ")
    one_line_error(
        run("audit", "verify"),
        "1 event(s) at positions 3 to 3 lie after the newest checkpoint signed by the "
        "ledger's key, and this ledger signs one with every append: they were written "
        "without the key (or restored from elsewhere)",
    )
    one_line_error(
        run("append", "-", input=partner("FRA")),
        "the log holds 1 event(s) after the newest checkpoint this ledger signed "
        "(positions 3 to 3), which its key never signed: written without the key, or "
        "restored from elsewhere; nothing was written, and no checkpoint is signed over "
        "them; `arms-ledger audit verify` shows the log",
    )
    assert len(json.loads(run("log", "--json").stdout)) == 3  # nothing was written


def test_a_ledger_signed_by_hand_says_how_many_events_are_unsigned(run):
    assert run("init", "--checkpoints", "manual").exit_code == 0
    assert run("append", "-", input=partner("POL")).exit_code == 0
    assert run("audit", "checkpoint").exit_code == 0
    assert run("append", "-", input=partner("DEU") + partner("FRA")).exit_code == 0
    result = run("audit", "verify")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[1] == (
        "2 event(s) after the newest checkpoint signed by the key (positions 2 to 3) are "
        "not signed by it: `arms-ledger audit checkpoint` signs them (on a shared "
        "PostgreSQL log, other offices sign theirs with their own keys)."
    )
    assert run("audit", "checkpoint").exit_code == 0
    result = run("audit", "verify")
    assert result.stdout.splitlines()[1] == (
        "The newest checkpoint signed by the key covers every event."
    )


def test_verify_holds_the_stored_checkpoints_to_the_key_given(run, ledger_dir, tmp_path):
    """Issue 19, item 5: `verify --key K` checks the stored checkpoints of the ledger's
    name against K, not against the key the ledger holds."""
    assert run("init", "--origin", "example.gov/fms").exit_code == 0
    assert run("append", "-", input=partner("POL")).exit_code == 0
    other = tmp_path / "other"
    assert run("--ledger", str(other), "init", "--origin", "example.gov/fms").exit_code == 0
    impostor = (other / "verifier.key").read_text().strip()
    result = run("audit", "verify", "--key", impostor)
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith("Error: stored checkpoint 1 (size 1): its key "), (
        result.stderr
    )
    own = (ledger_dir / "verifier.key").read_text().strip()
    assert run("audit", "verify", "--key", own).exit_code == 0
