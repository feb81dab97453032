"""Issue 19, item 9: input that costs too much is refused in one short line, and nothing
is written: deep nesting (was RecursionError), an offset that leaves the range of dates
once converted to UTC (was OverflowError), a 10 MB field name (was echoed whole)."""

from __future__ import annotations

import json

import pytest

from tests.cli.conftest import one_line_error

CLOSE = {"type": "CaseClosed", "case": "PL-B-AHA", "actor": "usasac"}


@pytest.fixture
def initialized(run, ledger):
    """An empty ledger: these lines are refused before any rule looks at a case."""
    return run


def test_deep_nesting_is_one_line(initialized):
    run = initialized
    deep = json.dumps(CLOSE)[:-1] + ', "reference": ' + "[" * 100_000 + "]" * 100_000 + "}"
    one_line_error(
        run("append", "-", input=deep + "\n"),
        "line 1: Expected `str | null`, got `array` - at `$.reference` (`arms-ledger "
        "schema TYPE` shows the fields of each type). Nothing was appended.",
    )
    nested_type = '{"type": ' + "[" * 100_000 + "]" * 100_000 + "}"
    result = run("append", "-", input=nested_type + "\n")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 400, result.stderr
    assert run("log", "--json").stdout == "[]\n"


@pytest.mark.parametrize("when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_an_offset_beyond_the_range_of_dates_is_one_line(initialized, when):
    line = json.dumps(CLOSE | {"effective_at": when})
    one_line_error(
        initialized("append", "-", input=line + "\n"),
        f"line 1 (CaseClosed): effective_at {when!r} is outside the range of dates once "
        "converted to UTC. Nothing was appended.",
    )


def test_a_huge_field_name_is_not_echoed_whole(initialized):
    line = json.dumps(CLOSE)[:-1] + ', "' + "x" * 10_000_000 + '": 1}'
    result = initialized("append", "-", input=line + "\n")
    assert (result.exit_code, result.stdout) == (1, "")
    assert result.stderr.startswith(
        "Error: line 1 (CaseClosed): Object contains unknown field `xxxx"
    )
    assert result.stderr.endswith(
        "… (10,000,032 characters) (`arms-ledger schema TYPE` shows the fields of each "
        "type). Nothing was appended.\n"
    )
    assert len(result.stderr) < 400
