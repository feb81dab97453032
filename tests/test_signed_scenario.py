"""The scenario replays with authority enforced: ``fixtures/scenario-signed.jsonl``
(``python -m fixtures.tools.sign_scenario``) loads into an empty ledger, every decision
checked against the directory it starts with, to the same state as the unsigned
scenario apart from the directory's own stream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest
from arms_ledger.cli.main import cli
from arms_ledger.cli.write import load_history
from arms_ledger.fixtures.tools.sign_scenario import SCENARIO, SIGNED, sign_scenario
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import authority
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.errors import BatchRefused
from click.testing import CliRunner

from tests import stores
from tests.test_fixtures import GOLDEN, streams_state


@pytest.fixture(autouse=True)
def store(module_store):
    with stores.using(module_store):
        yield module_store


@pytest.fixture(scope="module")
def signed(tmp_path_factory, module_store) -> Iterator[Ledger]:
    path = tmp_path_factory.mktemp("signed") / "ledger"
    with stores.using(module_store):
        ledger = create(path)
    ledger.path = path  # type: ignore[attr-defined]
    load_history(ledger, SIGNED)
    yield ledger
    ledger.close()


def signed_dir(ledger: Ledger) -> Path:
    return ledger.path  # type: ignore[attr-defined]


def test_the_signed_scenario_replays_to_the_scenarios_state(signed):
    state = streams_state(signed)
    directory = state.pop(authority.DIRECTORY)
    assert state == json.loads(GOLDEN.read_text())
    assert directory["version"] == len(SIGNED.read_bytes().splitlines()) - len(
        SCENARIO.read_bytes().splitlines()
    )


READ_MODELS = (
    ("partners", "--json"),
    ("cases", "--json"),
    ("backlog", "--json"),
    ("queue", "f-35a", "--json"),
    ("queue", "pac-3-mse", "--json"),
    ("audit", "flags", "--json"),
)


def shifted(value, by: int):
    """``value`` with every ``*_position`` (a log position) moved back ``by``."""
    if isinstance(value, list):
        return [shifted(v, by) for v in value]
    if isinstance(value, dict):
        return {
            k: v - by if k.endswith("_position") and isinstance(v, int) else shifted(v, by)
            for k, v in value.items()
        }
    return value


def test_the_read_models_are_the_scenarios_but_for_the_directorys_positions(
    signed, tmp_path_factory
):
    unsigned = tmp_path_factory.mktemp("unsigned") / "ledger"
    ledger = create(unsigned)
    try:
        load_history(ledger, SCENARIO)
    finally:
        ledger.close()
    head = len(SIGNED.read_bytes().splitlines()) - len(SCENARIO.read_bytes().splitlines())
    signed_path = signed_dir(signed)
    for command in READ_MODELS:
        expected = CliRunner().invoke(cli, ["--ledger", str(unsigned), *command])
        got = CliRunner().invoke(cli, ["--ledger", str(signed_path), *command])
        assert expected.exit_code == got.exit_code == 0, (command, got.stderr)
        assert shifted(json.loads(got.stdout), head) == json.loads(expected.stdout), command


def test_it_is_the_scenario_with_signatures_on_its_decisions():
    """Fails when the scenario changed and the copy was not made again (one command:
    ``python -m fixtures.tools.sign_scenario``, docs/fixtures.md)."""
    scenario = SCENARIO.read_bytes().splitlines()
    copy = SIGNED.read_bytes().splitlines()
    tail = [ev.decoder.decode(line) for line in copy[len(copy) - len(scenario) :]]
    assert [
        ev.encoder.encode(msgspec.structs.replace(e, signature=msgspec.UNSET)) for e in tail
    ] == scenario
    assert all(isinstance(e.signature, str) == e.DECISION for e in tail)
    head = [ev.decoder.decode(line) for line in copy[: len(copy) - len(scenario)]]
    assert all(isinstance(e, ev.DirectoryEvent) for e in head)
    assert isinstance(head[0], ev.AuthorityRootNamed)
    assert b"PRIVATE" not in SIGNED.read_bytes()


def test_the_signed_scenario_enforces_authority(signed):
    unsigned = ev.decoder.decode(
        json.dumps(
            {
                "type": "CaseReprioritized",
                "case": "PL-B-AHA",
                "priority_class": "deferred",
                "authority": "none",
                "actor": "usd-as.dsca",
                "rationale": "unsigned",
            }
        )
    )
    with pytest.raises(BatchRefused, match="is unsigned, and this ledger enforces"):
        signed.append([unsigned])


def test_whatif_proposes_unsigned_decisions_on_a_ledger_that_enforces(tmp_path: Path):
    """A proposal is hypothetical: what-if decides it by every rule but authority."""
    path = tmp_path / "ledger"
    ledger = create(path)
    try:
        load_history(ledger, SIGNED)
    finally:
        ledger.close()
    proposal = {
        "type": "CaseReprioritized",
        "case": "UP-B-PAC",
        "priority_class": "deferred",
        "authority": "none",
        "actor": "usw-as",
        "rationale": "unsigned proposal",
    }
    result = CliRunner().invoke(
        cli,
        ["--ledger", str(path), "whatif", "--events", "-", "--platform", "pac-3-mse"],
        input=json.dumps(proposal) + "\n",
    )
    assert result.exit_code == 0, result.stderr
    assert "UP-B-PAC" in result.stdout


def test_a_forged_decision_in_the_signed_scenario_is_refused(tmp_path: Path):
    lines = SIGNED.read_bytes().splitlines()
    copy, _ = sign_scenario(SCENARIO.read_bytes().splitlines())
    # A decision signed with another run's keys: not the keys its directory registers.
    at = next(i for i, line in enumerate(copy) if b'"type":"CaseReprioritized"' in line)
    forged = tmp_path / "forged.jsonl"
    forged.write_bytes(b"\n".join([*lines[:at], copy[at], *lines[at + 1 :]]) + b"\n")
    ledger = create(tmp_path / "ledger")
    try:
        with pytest.raises(Exception, match=r"which is not a key of \S+ in the directory"):
            load_history(ledger, forged)
        assert ledger.head() == 0
    finally:
        ledger.close()


def test_an_export_replays_into_a_replica_with_authority_enforced(signed, tmp_path):
    def run(*args: str):
        result = CliRunner().invoke(cli, list(args))
        assert result.exit_code == 0, (args, result.stderr)
        return result

    run("--ledger", str(signed_dir(signed)), "audit", "checkpoint")
    run("--ledger", str(signed_dir(signed)), "audit", "export", str(tmp_path / "export"))
    replica = tmp_path / "replica"
    run("audit", "verify-export", str(tmp_path / "export"), "--into", str(replica))
    verified = run("--ledger", str(replica), "audit", "verify").stdout.splitlines()
    decisions = sum(
        ev.decoder.decode(line).DECISION for line in SIGNED.read_bytes().splitlines()
    )
    assert verified[-1] == (
        f"0 of {decisions} decisions are unsigned; authority is enforced from position 1 "
        "(root ledger.root): every decision after it was checked when appended."
    )
