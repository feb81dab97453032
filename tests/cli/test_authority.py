"""Officials' keys and authority through the CLI: keygen, init --authority-root,
append --sign-key / ARMS_LEDGER_SIGN_KEY, signatures made elsewhere, and audit verify's
count of unsigned decisions (docs/authority.md)."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from tests.histories import signed

NOT_RUN = "Nothing was appended."


def keygen(run, name: str, path: Path) -> str:
    result = run("keygen", name, str(path))
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"Wrote the signing key of {name} to {path} (mode 0600)."
    assert lines[1].startswith(f"Public key: {name}+")
    return lines[1].removeprefix("Public key: ")


def line(record: dict) -> str:
    return json.dumps(record) + "\n"


def policy(actor: str, day: str = "2024-01-01", **extra) -> dict:
    return {
        "type": "PriorityPolicyAdopted",
        "policy": "america-first-2026",
        "mode": "scored",
        "actor": actor,
        "rationale": "E.O. 14383",
        "effective_at": day,
        **extra,
    }


@pytest.fixture
def enforced(run, tmp_path, monkeypatch):
    """A ledger whose root has given dsca.director a key and adopt-policy."""
    monkeypatch.delenv("ARMS_LEDGER_SIGN_KEY", raising=False)
    keys = tmp_path / "keys"
    keys.mkdir()
    keygen(run, "ledger.root", keys / "root.key")
    director = keygen(run, "dsca.director", keys / "director.key")
    keygen(run, "dsca.clerk", keys / "clerk.key")
    result = run("init", "--authority-root", str(keys / "root.key"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1].startswith(
        "Authority is enforced: every decision is signed by its actor; root ledger.root+"
    )
    directory = [
        {
            "type": "OfficialKeyRegistered",
            "official": "dsca.director",
            "key": director,
            "actor": "ledger.root",
            "rationale": "appointed",
            "effective_at": "2020-01-01",
        },
        {
            "type": "AuthorityGranted",
            "official": "dsca.director",
            "authority": "adopt-policy",
            "actor": "ledger.root",
            "rationale": "appointed",
            "effective_at": "2020-01-01",
        },
    ]
    result = run(
        "append",
        "--sign-key",
        str(keys / "root.key"),
        "-",
        input="".join(map(line, directory)),
    )
    assert result.stdout == "Appended 2 events at positions 2-3.\n", result.output
    return keys


def test_keygen_writes_a_private_key_and_prints_only_the_public_key(run, tmp_path):
    path = tmp_path / "a.key"
    public = keygen(run, "dsca.director", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().startswith("PRIVATE+KEY+dsca.director+")
    assert public.startswith("dsca.director+")
    result = run("keygen", "dsca.director", str(path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: {path} exists; a key file is never overwritten (the key in it may be "
        "registered): choose a new file\n"
    )


def test_a_decision_signed_with_sign_key_is_appended(run, enforced):
    result = run(
        "append",
        "--sign-key",
        str(enforced / "director.key"),
        "-",
        input=line(policy("dsca.director")),
    )
    assert result.stdout == "Appended 1 event at position 4.\n", result.output


def test_the_key_file_may_come_from_the_environment(run, enforced, monkeypatch):
    monkeypatch.setenv("ARMS_LEDGER_SIGN_KEY", str(enforced / "director.key"))
    result = run("append", "-", input=line(policy("dsca.director")))
    assert result.stdout == "Appended 1 event at position 4.\n", result.output


def test_an_unsigned_decision_is_refused(run, enforced):
    result = run("append", "-", input=line(policy("dsca.director")))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: line 1 (PriorityPolicyAdopted) refused by authority: "
        "PriorityPolicyAdopted by dsca.director is unsigned, and this ledger enforces "
        "authority: sign it with the actor's key (append --sign-key, or "
        f'ARMS_LEDGER_SIGN_KEY) or give its "signature". {NOT_RUN}\n'
    )


def test_a_signature_made_elsewhere_is_taken_and_a_forged_one_refused(run, enforced):
    from arms_ledger.ledger.app.officials import read_key

    director = read_key(enforced / "director.key")
    good = signed(policy("dsca.director"), director)
    forged = good | {"mode": "fcfs"}
    result = run("append", "-", input=line(forged))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: line 1 (PriorityPolicyAdopted) refused by authority: the signature of "
        f"PriorityPolicyAdopted does not verify with dsca.director's key "
        f"{director.verifier.id.hex()}: the event is not what dsca.director signed. "
        f"{NOT_RUN}\n"
    )
    result = run("append", "-", input=line(good))
    assert result.stdout == "Appended 1 event at position 4.\n", result.output


def test_a_decision_out_of_its_actors_authority_is_refused(run, enforced):
    result = run(
        "append",
        "--sign-key",
        str(enforced / "director.key"),
        "-",
        input=line(
            {
                "type": "CaseReprioritized",
                "case": "C-1",
                "priority_class": "expedited",
                "authority": "AECA",
                "actor": "dsca.director",
                "rationale": "ally at war",
                "effective_at": "2024-01-01",
            }
        ),
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: line 1 (CaseReprioritized) refused by authority: dsca.director does not "
        "hold the authority reprioritize on 2024-01-01, which CaseReprioritized needs; a "
        f"holder of grant-authority grants it with AuthorityGranted. {NOT_RUN}\n"
    )


def test_a_grant_by_one_without_grant_authority_is_refused(run, enforced):
    grant = {
        "type": "AuthorityGranted",
        "official": "dsca.director",
        "authority": "reprioritize",
        "actor": "dsca.director",
        "rationale": "self-promotion",
        "effective_at": "2024-01-01",
    }
    result = run(
        "append", "--sign-key", str(enforced / "director.key"), "-", input=line(grant)
    )
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: line 1 (AuthorityGranted) refused by authority: dsca.director does not "
        "hold the authority grant-authority on 2024-01-01, which AuthorityGranted needs; "
        f"a holder of grant-authority grants it with AuthorityGranted. {NOT_RUN}\n"
    )


def directory_change(run, keys: Path, record: dict) -> None:
    record = {"actor": "ledger.root", "rationale": "change", **record}
    result = run("append", "--sign-key", str(keys / "root.key"), "-", input=line(record))
    assert result.exit_code == 0, result.output


def test_a_revoked_key_is_refused_from_its_revocation(run, enforced):
    from arms_ledger.ledger.app.officials import read_key

    director = read_key(enforced / "director.key")
    directory_change(
        run,
        enforced,
        {
            "type": "OfficialKeyRevoked",
            "official": "dsca.director",
            "key": str(director.verifier),
            "effective_at": "2024-06-01",
        },
    )
    sign = ("append", "--sign-key", str(enforced / "director.key"), "-")
    result = run(*sign, input=line(policy("dsca.director", "2024-06-01")))
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: line 1 (PriorityPolicyAdopted) refused by authority: "
        "PriorityPolicyAdopted is signed with dsca.director's key "
        f"{director.verifier.id.hex()}, which is not in force on 2024-06-01 (not yet "
        f"registered, revoked or rotated). {NOT_RUN}\n"
    )
    result = run(*sign, input=line(policy("dsca.director", "2024-05-31")))
    assert result.stdout == "Appended 1 event at position 5.\n", result.output


def test_after_rotation_the_old_key_is_refused_and_the_new_one_taken(run, enforced):
    from arms_ledger.ledger.app.officials import read_key

    old = read_key(enforced / "director.key")
    new = keygen(run, "dsca.director", enforced / "director-2025.key")
    directory_change(
        run,
        enforced,
        {
            "type": "OfficialKeyRotated",
            "official": "dsca.director",
            "key": new,
            "replaces": str(old.verifier),
            "effective_at": "2025-01-01",
        },
    )
    with_old = ("append", "--sign-key", str(enforced / "director.key"), "-")
    with_new = ("append", "--sign-key", str(enforced / "director-2025.key"), "-")
    result = run(*with_old, input=line(policy("dsca.director", "2025-01-01")))
    assert result.exit_code == 1
    assert result.stderr.endswith(
        f"which is not in force on 2025-01-01 (not yet registered, revoked or rotated). "
        f"{NOT_RUN}\n"
    )
    result = run(*with_new, input=line(policy("dsca.director", "2024-12-31")))
    assert result.exit_code == 1
    assert "which is not in force on 2024-12-31" in result.stderr
    result = run(*with_old, input=line(policy("dsca.director", "2024-12-31")))
    assert result.stdout == "Appended 1 event at position 5.\n", result.output
    result = run(*with_new, input=line(policy("dsca.director", "2025-01-02")))
    assert result.stdout == "Appended 1 event at position 6.\n", result.output


def test_audit_verify_counts_unsigned_decisions(run):
    result = run("init")
    assert result.exit_code == 0
    result = run("append", "-", input=line(policy("dsca.director")))
    assert result.exit_code == 0, result.output
    result = run("audit", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "1 of 1 decisions are unsigned; this ledger does not enforce authority (no root "
        "named: `arms-ledger init --authority-root KEYFILE`)."
    )


def test_audit_verify_says_where_authority_is_enforced_from(run, enforced):
    result = run("audit", "verify")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == (
        "0 of 3 decisions are unsigned; authority is enforced from position 1 (root "
        "ledger.root): every decision after it was checked when appended."
    )


def test_a_key_file_others_can_read_is_refused(run, enforced):
    key = enforced / "director.key"
    key.chmod(0o644)
    result = run("append", "--sign-key", str(key), "-", input=line(policy("dsca.director")))
    assert result.exit_code == 1
    assert result.stderr.startswith(
        f"Error: {key} can be read by other users (mode 0644): whoever reads it can sign "
        "decisions in its official's name; nothing was written;"
    )


def test_the_typed_commands_sign_with_the_environments_key(run, enforced, monkeypatch):
    adopt = (
        "policy",
        "adopt",
        "america-first-2026",
        "--mode",
        "scored",
        "--actor",
        "dsca.director",
        "--rationale",
        "E.O. 14383",
    )
    result = run(*adopt)
    assert result.exit_code == 1
    assert "PriorityPolicyAdopted by dsca.director is unsigned" in result.stderr
    monkeypatch.setenv("ARMS_LEDGER_SIGN_KEY", str(enforced / "director.key"))
    result = run(*adopt)
    assert result.stdout == (
        "Appended PriorityPolicyAdopted to policy:america-first-2026 at position 4.\n"
    ), result.output


def test_a_signed_correction_is_taken_with_what_the_ledger_derives_unsigned(run, enforced):
    # The ledger fills a correction's of, was and effective_at after it is signed; the
    # signed message leaves them out (docs/authority.md), so a signed correction holds.
    from tests.histories import EVERY_TYPE

    grant = {
        "type": "AuthorityGranted",
        "official": "dsca.director",
        "authority": "correct-records",
        "actor": "ledger.root",
        "rationale": "appointed",
        "effective_at": "2020-01-01",
    }
    result = run("append", "--sign-key", str(enforced / "root.key"), "-", input=line(grant))
    assert result.stdout == "Appended 1 event at position 4.\n", result.output
    facts = [
        next(r for r in EVERY_TYPE if r["type"] == "PartnerRegistered"),
        next(r for r in EVERY_TYPE if r["type"] == "PlatformListed"),
        next(r for r in EVERY_TYPE if r["type"] == "CaseFiled"),
    ]
    result = run("append", "-", input="".join(map(line, facts)))
    assert result.stdout == "Appended 3 events at positions 5-7.\n", result.output
    correction = {
        "type": "EventCorrected",
        "case": "PL-1",
        "corrects": 7,
        "corrected": {"quantity": 3},
        "actor": "dsca.director",
        "rationale": "typed 4 for 3",
    }
    unsigned = run("append", "-", input=line(correction))
    assert unsigned.exit_code == 1
    assert "EventCorrected by dsca.director is unsigned" in unsigned.stderr
    result = run(
        "append", "--sign-key", str(enforced / "director.key"), "-", input=line(correction)
    )
    assert result.stdout == "Appended 1 event at position 8.\n", result.output
    shown = json.loads(run("log", "--json").stdout)[-1]
    assert (shown["of"], shown["was"]) == ("CaseFiled", {"quantity": 4})


def test_a_dry_run_checks_authority_and_signatures_as_an_append_does(
    run, enforced, ledger_dir
):
    from tests.cli.test_dry_run import state

    before = state(ledger_dir)
    unsigned = run("append", "--dry-run", "-", input=line(policy("dsca.director")))
    assert unsigned.exit_code == 1
    assert unsigned.stderr == run("append", "-", input=line(policy("dsca.director"))).stderr
    assert "is unsigned, and this ledger enforces authority" in unsigned.stderr
    clerk = run(
        "append",
        "--dry-run",
        "--sign-key",
        str(enforced / "clerk.key"),
        "-",
        input=line(policy("dsca.clerk")),
    )
    assert clerk.exit_code == 1
    assert clerk.stderr.startswith(
        "Error: line 1 (PriorityPolicyAdopted) refused by authority"
    )
    signed = run(
        "append",
        "--dry-run",
        "--sign-key",
        str(enforced / "director.key"),
        "-",
        input=line(policy("dsca.director")),
    )
    assert signed.stdout == (
        "Would append 1 event at position 4; nothing was written (--dry-run).\n"
    ), signed.output
    assert state(ledger_dir) == before
