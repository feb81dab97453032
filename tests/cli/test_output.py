"""Tables fit the terminal (issue 18): fitted to $COLUMNS or the terminal's width, not
fitted (cells cut at 60) when piped, and --wide shows every cell whole."""

from __future__ import annotations

import os
import types

import pytest
from arms_ledger.cli.output import fit, table

from tests.cli.conftest import line, one_line_error, registration

ROWS = [
    {"case": "PL-B-AHA", "stage": "offered", "units": 96, "note": "x" * 80},
    {"case": "JP-D-QAA", "stage": "filed", "units": 1200, "note": "short"},
]


def test_piped_a_table_is_not_fitted_and_cuts_cells_at_60():
    lines = table(ROWS, list(ROWS[0])).splitlines()
    assert lines[2] == "PL-B-AHA  offered     96  " + "x" * 59 + "…"
    assert lines[3] == "JP-D-QAA  filed     1200  short"


def test_a_table_fits_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    assert table(ROWS, list(ROWS[0])).splitlines() == [
        "case      stage    units  note",
        "--------  -------  -----  --------------",
        "PL-B-AHA  offered     96  xxxxxxxxxxxxx…",
        "JP-D-QAA  filed     1200  short",
    ]


def test_numbers_are_never_cut_and_columns_not_below_six(monkeypatch):
    assert fit([10, 50, 5], 30, [False, False, True]) == [10, 11, 5]
    assert fit([30, 30, 30], 20, [False, False, False]) == [6, 6, 6]
    assert fit([3, 4], 100, [False, False]) == [3, 4]


def test_the_commands_fit_their_tables_and_wide_shows_everything(run, monkeypatch):
    long = registration() | {"name": "Republic of Poland, " * 5}
    assert run("init").exit_code == 0
    assert run("append", "-", input=line(long)).exit_code == 0
    monkeypatch.setenv("COLUMNS", "50")
    fitted = run("log").stdout.splitlines()
    assert max(len(x) for x in fitted) <= 50
    wide = run("log", "--wide").stdout
    assert "Republic of Poland, " * 5 in wide
    assert max(len(x) for x in wide.splitlines()) > 100


def test_an_enum_error_lists_the_allowed_values(run):
    assert run("init").exit_code == 0
    bad = registration() | {"notification_group": "NATO"}
    one_line_error(
        run("append", "-", input=line(bad)),
        "line 1 (PartnerRegistered): $.notification_group: 'NATO' is not one of: "
        "NATO+, other. Nothing was appended.",
    )


class _Terminal:
    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 1


@pytest.mark.parametrize(("columns", "width"), [(100, 100), (0, None)])
def test_on_a_terminal_the_width_is_its_own_unless_unknown(monkeypatch, columns, width):
    from arms_ledger.cli import output

    monkeypatch.setattr(output, "sys", types.SimpleNamespace(stdout=_Terminal()))
    monkeypatch.setattr(
        output.os, "get_terminal_size", lambda fd: os.terminal_size((columns, 24))
    )
    assert output.terminal_width() == width
    monkeypatch.setenv("COLUMNS", "72")  # $COLUMNS comes first
    assert output.terminal_width() == 72
