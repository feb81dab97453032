from __future__ import annotations

import json
from pathlib import Path

import pytest
from arms_ledger.cli.main import cli
from click.testing import CliRunner


@pytest.fixture
def run(ledger_dir: Path, monkeypatch):
    """Invoke ``arms-ledger`` on the test's own ledger (through $ARMS_LEDGER)."""
    monkeypatch.setenv("ARMS_LEDGER", str(ledger_dir))
    monkeypatch.delenv("ARMS_LEDGER_ACTOR", raising=False)
    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(cli, list(args), input=input)

    return invoke


def registration(code: str = "POL", name: str = "Poland") -> dict:
    """A PartnerRegistered event, as a user writes it."""
    return {
        "type": "PartnerRegistered",
        "partner": code,
        "name": name,
        "region": "Europe",
        "nato_member": True,
        "notification_group": "NATO+",
        "actor": "dsca",
    }


def line(event: dict) -> str:
    """One JSON Lines record."""
    return json.dumps(event) + "\n"


def one_line_error(result, message: str) -> None:
    """The command failed with exactly one line, ``Error: message``, and printed nothing."""
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: {message}\n",
    )
