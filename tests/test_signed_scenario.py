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
from arms_ledger.cli.write import load_history
from arms_ledger.fixtures.tools.sign_scenario import SCENARIO, SIGNED, sign_scenario
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import authority
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.errors import BatchRefused

from tests import stores
from tests.test_fixtures import GOLDEN, streams_state


@pytest.fixture(autouse=True)
def store(module_store):
    with stores.using(module_store):
        yield module_store


@pytest.fixture(scope="module")
def signed(tmp_path_factory, module_store) -> Iterator[Ledger]:
    with stores.using(module_store):
        ledger = create(tmp_path_factory.mktemp("signed") / "ledger")
    load_history(ledger, SIGNED)
    yield ledger
    ledger.close()


def test_the_signed_scenario_replays_to_the_scenarios_state(signed):
    state = streams_state(signed)
    directory = state.pop(authority.DIRECTORY)
    assert state == json.loads(GOLDEN.read_text())
    assert directory["version"] == len(SIGNED.read_bytes().splitlines()) - len(
        SCENARIO.read_bytes().splitlines()
    )


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
