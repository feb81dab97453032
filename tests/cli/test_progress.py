"""Progress (issue 18): a long append, rebuild, replay, verify and export draw their
phases as bars on stderr when it is a terminal, each up to 100%; otherwise nothing
appears on stderr and stdout is the same."""

from __future__ import annotations

import io
import re
import types
from pathlib import Path

import pytest
from arms_ledger.cli import progress as cli_progress
from arms_ledger.ledger import progress

from fixtures.tools import generate as g

EVENTS = 3000


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(scope="module")
def history(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("history") / "events.jsonl"
    lines = g.generate(seed=2026, partners=20, open_cases=300, events=EVENTS)
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path


@pytest.fixture
def terminal(monkeypatch) -> Terminal:
    """stderr is a terminal; every phase is drawn, however short."""
    fake = Terminal()
    monkeypatch.setattr(cli_progress, "sys", types.SimpleNamespace(stderr=fake))
    monkeypatch.setattr(cli_progress, "DELAY", 0.0)
    monkeypatch.setattr(cli_progress, "REDRAW", 0.0)
    return fake


def phases(drawn: str) -> dict[str, list[int]]:
    """Each phase's label and the percentages it showed, in order."""
    shown: dict[str, list[int]] = {}
    for label, percent in re.findall(r"([A-Z][a-zA-Z ]+?) +\[[#-]+\] +(\d+)%", drawn):
        shown.setdefault(label, []).append(int(percent))
    return shown


def appended(run, history: Path):
    assert run("init").exit_code == 0
    lines = history.read_bytes().splitlines()
    return run("append", "-", input=b"\n".join(lines).decode() + "\n"), len(lines)


def test_an_append_draws_every_phase_up_to_100_percent(run, history, terminal):
    result, count = appended(run, history)
    assert result.exit_code == 0
    assert result.stdout == f"Appended {count} events at positions 1-{count}.\n"
    assert result.stderr == ""  # the bars went to the terminal
    shown = phases(terminal.getvalue())
    assert list(shown) == ["Reading", "Deciding", "Storing", "Updating the read models"]
    for label, percents in shown.items():
        assert percents == sorted(percents), label
        assert percents[-1] == 100, label
    assert len(set(shown["Deciding"])) > 2  # it moves along, not only 0 and 100


def test_without_a_terminal_nothing_is_drawn(run, history, terminal, monkeypatch):
    monkeypatch.setattr(cli_progress, "sys", types.SimpleNamespace(stderr=io.StringIO()))
    result, count = appended(run, history)
    assert (result.exit_code, result.stderr) == (0, "")
    assert result.stdout == f"Appended {count} events at positions 1-{count}.\n"
    assert terminal.getvalue() == ""


def test_silent_draws_nothing(run, history, terminal):
    assert run("init").exit_code == 0
    assert run("append", "--silent", str(history)).exit_code == 0
    assert terminal.getvalue() == ""


def test_rebuild_replay_verify_and_export_draw_their_phases(
    run, history, terminal, tmp_path
):
    assert appended(run, history)[0].exit_code == 0
    steps = {
        ("rebuild",): ["Building the read models", "Indexing the read models"],
        ("cases", "--at-position", "2000"): ["Replaying the log"],
        ("audit", "verify"): [
            "Checking the events",
            "Checking the Merkle tree",
            "Checking the checkpoints",
        ],
        ("audit", "export", str(tmp_path / "export")): ["Exporting the events"],
    }
    for args, expected in steps.items():
        terminal.seek(0)
        terminal.truncate()
        result = run(*args)
        assert result.exit_code == 0, result.output
        shown = phases(terminal.getvalue())
        assert list(shown) == expected, args
        assert all(percents[-1] == 100 for percents in shown.values()), shown


def test_nobody_listening_costs_nothing_and_phases_nest_nowhere():
    with progress.phase("Anything", 10):
        progress.advance(5)  # nobody listens: nothing happens
        progress.reach(7)
    assert not progress.active()
