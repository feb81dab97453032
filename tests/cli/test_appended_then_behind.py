"""Issue 19, item 3: exit codes tell the truth. When the read models fail after the
events were stored, `append` says at which positions they were appended, warns in one
line that the read models are behind and how to catch up, and exits 0: a retry would
append the batch again."""

from __future__ import annotations

import json

from tests.cli.conftest import registration

REGISTER = registration()
WARNING = (
    "Warning: the events were appended, but the read models could not be brought up to "
    "date: the read models {db}: unable to open database file — check that it exists and "
    "that you may read it; once that is fixed, `arms-ledger rebuild` (or any appending "
    "command) brings them up to date\n"
)


def test_append_reports_the_positions_and_warns_when_the_read_models_fail(run, ledger_dir):
    assert run("init").exit_code == 0
    db = ledger_dir / "projections.db"
    db.mkdir()  # the read models cannot be opened: what a broken file system gives
    result = run("append", "-", input=json.dumps(REGISTER) + "\n")
    assert (result.exit_code, result.stdout) == (0, "Appended 1 event at position 1.\n")
    assert result.stderr == WARNING.format(db=db)
    second = dict(REGISTER, partner="DEU", name="Germany")
    result = run("append", "--json", "-", input=json.dumps(second) + "\n")
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {"appended": 1, "positions": [2], "skipped": []}
    assert result.stderr == WARNING.format(db=db)
    db.rmdir()
    assert [p["partner"] for p in json.loads(run("partners", "--json").stdout)] == [
        "DEU",
        "POL",
    ]
