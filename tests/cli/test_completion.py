"""Shell completion (cli/complete.py) through click's own machinery, as the shell calls
it: ``_ARMS_LEDGER_COMPLETE=bash_complete`` with COMP_WORDS and COMP_CWORD. The ids
offered come from the read models of the ledger the command line names; with no ledger
nothing is offered and nothing printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from arms_ledger.cli.main import cli
from click.testing import CliRunner

from tests import stores


@pytest.fixture(scope="module")
def demo(tmp_path_factory, module_store) -> Path:
    return stores.kept_demo(tmp_path_factory.mktemp("completion") / "ledger", module_store)


@pytest.fixture(autouse=True)
def store(module_store):
    with stores.using(module_store):
        yield module_store


def offered(words: str, ledger: Path | None) -> list[str]:
    """What bash is offered for the last word of ``words`` (a trailing space: a new
    word), on ``ledger`` (through $ARMS_LEDGER)."""
    parts = words.split()
    cword = len(parts) - (0 if words.endswith(" ") else 1)
    env = {
        "_ARMS_LEDGER_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(cword),
        "ARMS_LEDGER": str(ledger) if ledger is not None else None,
        "XDG_DATA_HOME": "/nonexistent",
    }
    result = CliRunner().invoke(cli, [], env=env, prog_name="arms-ledger")
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    lines = [line for line in result.stdout.splitlines() if line]  # none: one "\n"
    assert all(line.startswith(("plain,", "file,", "dir,")) for line in lines), lines
    return [line.split(",", 1)[1] for line in lines]


@pytest.mark.parametrize(
    ("words", "ids"),
    [
        ("arms-ledger queue f", ["f-15ia", "f-16-block-70", "f-35a"]),
        ("arms-ledger stability pac", ["pac-3-mse"]),
        ("arms-ledger cases --partner p", ["PHL", "POL", "PRT"]),  # any case
        ("arms-ledger cases --platform him", ["himars"]),
        ("arms-ledger audit diff --platform f-3", ["f-35a"]),
        ("arms-ledger whatif --platform javel", ["javelin"]),
        ("arms-ledger audit explain PL-B-A", ["PL-B-ABR", "PL-B-AHA"]),
        (
            "arms-ledger history case:PL-B",
            ["case:PL-B-ABR", "case:PL-B-AHA", "case:PL-B-M1A", "case:PL-B-PAC"],
        ),
        ("arms-ledger audit trail partner:PO", ["partner:POL"]),
        ("arms-ledger log --stream POL", ["POL"]),
        ("arms-ledger history nope:", []),
        ("arms-ledger case deliver PL-B-A", ["PL-B-ABR", "PL-B-AHA"]),
        ("arms-ledger partner assess PO", ["POL"]),
        ("arms-ledger platform capacity f-35", ["f-35a"]),
        ("arms-ledger case file X --platform him", ["himars"]),
        ("arms-ledger case file X --partner pol", ["POL"]),
        ("arms-ledger case file PL-B-A", []),  # a new case: no existing id
    ],
)
def test_the_ids_of_the_ledger_are_offered(demo, words, ids):
    assert offered(words, demo) == ids


def test_the_ledger_option_on_the_line_is_the_one_read(demo, tmp_path):
    words = f"arms-ledger --ledger {demo} queue pac"
    assert offered(words, tmp_path / "none") == ["pac-3-mse"]


def test_every_platform_is_offered_for_an_empty_word(demo):
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(demo / "projections.db")) as conn:
        platforms = [r[0] for r in conn.execute("SELECT platform FROM platforms")]
    assert offered("arms-ledger queue ", demo) == sorted(platforms)
    assert len(platforms) > 10


def test_without_a_ledger_nothing_is_offered_and_nothing_printed(tmp_path):
    assert offered("arms-ledger queue ", tmp_path / "none") == []
    assert offered("arms-ledger history case:", tmp_path / "none") == []


def test_damaged_read_models_offer_nothing(tmp_path):
    ledger = tmp_path / "ledger"
    ledger.mkdir()
    (ledger / "projections.db").write_bytes(b"not a database" * 100)
    assert offered("arms-ledger queue ", ledger) == []
    (ledger / "projections.db").unlink()
    (ledger / "projections.db").mkdir()
    assert offered("arms-ledger cases --partner ", ledger) == []


def test_options_are_offered_under_their_new_names_only(tmp_path):
    found = offered("arms-ledger log --", tmp_path)
    assert {"--acted-by", "--from", "--to", "--recorded-from", "--recorded-to"} <= set(
        found
    )
    assert not {"--actor", "--since", "--until", "--recorded-since"} & set(found)
    assert "--at-version" in offered("arms-ledger history X --", tmp_path)
    assert "--version" not in offered("arms-ledger history X --", tmp_path)
    assert "--dry-run" in offered("arms-ledger append --", tmp_path)


def test_the_installed_command_gives_its_shells_the_completion_script(tmp_path):
    exe = Path(sys.executable).parent / "arms-ledger"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARMS_LEDGER")}
    for shell, marker in (
        ("bash", "_arms_ledger_completion"),
        ("zsh", "#compdef arms-ledger"),
        ("fish", "complete --no-files --command arms-ledger"),
    ):
        script = subprocess.run(
            [str(exe)],
            env=env | {"_ARMS_LEDGER_COMPLETE": f"{shell}_source"},
            capture_output=True,
            text=True,
            check=True,
        )
        assert marker in script.stdout, shell
        assert script.stderr == ""
