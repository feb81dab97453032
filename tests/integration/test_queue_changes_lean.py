"""The lean queue_changes (issue 14, item 2): the answers of schema 3, stored far smaller.

Schema 3 stored one ``queue_changes`` row per case an event moved (its runs expanded by
SQLite). Schema 4 stores a case's own changes (``queue_moves``) and the shifted cases as
runs (``queue_shifts``, cases by number in ``queue_cases``); ``queue_changes`` is a view.
Checked two ways:

- the scenario's answers (``queue_changes``, ``queue_changes_explained``, ``audit diff``
  and ``audit explain``, the web's canned queries and charts) equal those the schema-3
  code gave, kept in tests/data/queue-answers-schema-3.json (``audit diff``'s causes
  but in three cases, now defined by effective order: projections.diffs);
- on the generated histories of test_projection_properties, every row of the view equals
  the schema-3 expansion of the runs the projector made (``expand``, the old SQL's
  semantics, kept here as the reference), in a rebuild and in replays.
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from arms_ledger.cli.demo import SCENARIO
from arms_ledger.cli.write import load_history
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain.clock import instant, parse_instant
from arms_ledger.projections import audit_queries, diffs, engine, queries, runner
from arms_ledger.projections.state import (
    MAX_CASE_NUMBER,
    ProjectionState,
    member,
    member_number,
)
from arms_ledger.projections.views import CASE_BITS, case_changes
from arms_ledger.projections.web import canned, chartdata
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.integration.test_projection_properties import (
    SETTINGS,
    START,
    append_accepted,
    histories,
)

GOLDEN = Path(__file__).parent.parent / "data" / "queue-answers-schema-3.json"
DIFFS = (
    ("2025-06-01", "2026-02-06", None),
    ("2026-02-05T23:59:59Z", "2026-02-06", "f-35a"),
    ("2018-01-01", "2022-01-01", None),
    ("2024-01-01", "2026-12-31", None),
)
COLUMNS = (
    "id, event_position, event_type, platform, case, change, old_position, new_position"
)


# --- the reference: schema 3's rows of the projector's runs ----------------------------


def expand(runs: list[tuple], first_id: int = 1) -> list[tuple]:
    """Schema 3's ``queue_changes`` rows of runs (position, type, platform, change, old,
    new, cases): the k-th case of a run at old + k and new + k, ids in order."""
    out: list[tuple] = []
    for position, kind, platform, change, old, new, cases in runs:
        for k, case in enumerate(cases):
            out.append(
                (
                    first_id + len(out),
                    position,
                    kind,
                    platform,
                    case,
                    change,
                    None if old is None else old + k,
                    None if new is None else new + k,
                )
            )
    return out


@contextmanager
def runs_made() -> Iterator[list[tuple]]:
    """The runs of queue changes every projector writes while in the block, in order."""
    made: list[tuple] = []
    original = ProjectionState._queue_change_statements

    def recording(self: ProjectionState) -> list[tuple[str, list]]:
        made.extend(self.change_rows)
        return original(self)

    with mock.patch.object(ProjectionState, "_queue_change_statements", recording):
        yield made


def view_rows(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM queue_changes ORDER BY id").fetchall()


# --- the encoding -------------------------------------------------------------------------


EDGES = [1, 127, 128, 2047, 2048, 0xD7FF, 0xD800, 0xF7FE, 0xF7FF, 0xFFFF, MAX_CASE_NUMBER]


@pytest.mark.parametrize("number", EDGES)
def test_a_case_number_is_one_character_and_back(number):
    char = member(number)
    assert len(char) == 1 and not 0xD800 <= ord(char) <= 0xDFFF
    assert ord(char) not in (0xFFFE, 0xFFFF)
    assert member_number(char) == number


@pytest.mark.parametrize("number", [0, MAX_CASE_NUMBER + 1])
def test_a_case_number_out_of_range_is_refused(number):
    with pytest.raises(ValueError, match="a queue numbers its cases from 1 to"):
        member(number)


def test_the_view_reads_every_number_back(tmp_path):
    """Numbers around the surrogates, U+FFFE/U+FFFF and the largest, and a sample of
    the others (every 97th), through SQLite's text and the view's decoding."""
    numbers = sorted({*EDGES, *range(1, MAX_CASE_NUMBER + 1, 97)})
    listed = 3
    base = listed << CASE_BITS
    conn = engine.connect(tmp_path / "p.db")
    with runner.immediate(conn):
        runner.fresh(conn)
        conn.execute(
            "INSERT INTO audit_log (position, stream, version, type) "
            "VALUES (7, 'partner:POL', 1, 'PartnerRescored')"
        )
        conn.execute(
            "INSERT INTO platforms (platform, listed_position) VALUES ('f-35a', ?)",
            (listed,),
        )
        conn.executemany(
            "INSERT INTO queue_cases VALUES (?, 'f-35a', ?)",
            [(base + n, f"C{n}") for n in numbers],
        )
        conn.execute(
            "INSERT INTO queue_shifts VALUES (10, 7, 'f-35a', 2, 1, ?, ?)",
            (len(numbers), "".join(map(member, numbers))),
        )
    assert view_rows(conn) == [
        (10 + k, 7, "PartnerRescored", "f-35a", f"C{n}", "shifted", 2 + k, 1 + k)
        for k, n in enumerate(numbers)
    ]
    conn.close()


# --- the scenario: schema 3's answers -----------------------------------------------------


# The golden answers were computed on the scenario's first 911 events (before the
# monitors of issue 17 appended theirs).
SCHEMA_3_EVENTS = 911


@pytest.fixture(scope="module")
def scenario(tmp_path_factory) -> Iterator[tuple]:
    directory = tmp_path_factory.mktemp("lean") / "ledger"
    history = directory.parent / "scenario-911.jsonl"
    lines = SCENARIO.read_bytes().splitlines(keepends=True)[:SCHEMA_3_EVENTS]
    history.write_bytes(b"".join(lines))
    ledger = create(directory)
    try:
        load_history(ledger, history)
        yield ledger, directory
    finally:
        ledger.close()


def _without(row: dict, key: str, empty: object) -> dict:
    """``row`` without ``key``, which must hold ``empty``."""
    assert row[key] == empty, (key, row[key])
    return {k: v for k, v in row.items() if k != key}


def answers(ledger, directory: Path) -> dict:
    """What tests/data/queue-answers-schema-3.json holds, computed now."""
    rows = queries.rows
    with ExitStack() as stack:
        live = stack.enter_context(
            engine.read_models(ledger.reader, directory, engine.Cut())
        )
        out: dict = {
            "queue_changes": view_rows(live),
            "explained": live.execute(
                "SELECT * FROM queue_changes_explained ORDER BY id"
            ).fetchall(),
        }
        cases = [r[0] for r in live.execute('SELECT "case" FROM cases ORDER BY "case"')]
        # Schema 5 added the corrections (none in these histories) to both answers.
        out["explain"] = {
            c: _without(audit_queries.explain(live, c), "corrections", [])
            for c in cases[::10]
        }
        out["case_trail"] = {
            c: [
                _without(r, "correction", None)
                for r in rows(live, canned.CASE_TRAIL.sql, {"case": c})
            ]
            for c in cases[::7]
        }
        out["example"] = {q.name: canned.example(live, q) for q in canned.CANNED}
        adoptions = chartdata.policy_adoptions(live)
        out["comparison"] = {
            f"{p}@{a['position']}": chartdata.queue_comparison(live, p, a["position"])
            for a in adoptions
            for p in [r["platform"] for r in chartdata.queue_choices(live, a["position"])][
                :3
            ]
        }
        out["choices"] = {
            a["position"]: chartdata.queue_choices(live, a["position"]) for a in adoptions
        }
        out["diff"] = {}
        for t1, t2, platform in DIFFS:
            before, after, changes = stack.enter_context(
                diffs.sides(ledger.reader, directory, parse_instant(t1), parse_instant(t2))
            )
            out["diff"][f"{t1}..{t2} {platform}"] = audit_queries.diff(
                before, after, changes, platform
            )
    return json.loads(json.dumps(out, sort_keys=True, default=str))


def test_the_scenario_answers_as_schema_3_did(scenario):
    golden = json.loads(GOLDEN.read_text())
    found = answers(*scenario)
    assert {r[5] for r in found["queue_changes"]} == {"entered", "left", "moved", "shifted"}
    assert all(found["diff"].values()), "every diff names changes"
    for key in golden:
        if key != "diff":
            assert found[key] == golden[key], key
    # audit diff's causes now come from the events effective in (T1, T2] applied in
    # effective order (projections.diffs), not from the replay as of T2 in log order:
    # the same wherever the scenario's log is in effective order over the diff, and in
    # three cases of 2024..2026, whose events were recorded out of effective order
    # (#768 effective 2026-02-17 after #767 effective 02-18; #855 effective 02-12
    # recorded after #819 effective 03-18), otherwise.
    changed = {
        ("2024-01-01..2026-12-31 None", "f-16-block-70", "JO-D-F16"): [760, 807],
        ("2024-01-01..2026-12-31 None", "f-35a", "PL-D-F35"): [768],
        ("2024-01-01..2026-12-31 None", "f-35a", "EZ-D-F35"): [760],
    }
    was = {  # what schema 3's answer named
        ("2024-01-01..2026-12-31 None", "f-16-block-70", "JO-D-F16"): [760],
        ("2024-01-01..2026-12-31 None", "f-35a", "PL-D-F35"): [819],
        ("2024-01-01..2026-12-31 None", "f-35a", "EZ-D-F35"): [760, 778],
    }
    for span, rows in golden["diff"].items():
        assert len(found["diff"][span]) == len(rows), span
        for mine, theirs in zip(found["diff"][span], rows, strict=True):
            key = (span, mine["platform"], mine["case"])
            if key in changed:
                assert [c["position"] for c in theirs["caused_by"]] == was[key]
                assert [c["position"] for c in mine["caused_by"]] == changed[key]
                assert {k: v for k, v in mine.items() if k != "caused_by"} == {
                    k: v for k, v in theirs.items() if k != "caused_by"
                }
            else:
                assert mine == theirs, key


def case_rows(conn: sqlite3.Connection) -> list[tuple]:
    """Every case's rows through ``views.case_changes``, in id order."""
    out = []
    for (case,) in conn.execute('SELECT "case" FROM queue_cases'):
        sql = f"{case_changes(':case')} ORDER BY id"
        out += conn.execute(sql, {"case": case}).fetchall()
    return sorted(out)


def test_a_case_s_rows_are_the_view_s(scenario):
    """``views.case_changes`` (a case's runs found by platform) gives, case by case, the
    view's rows."""
    ledger, directory = scenario
    with engine.read_models(ledger.reader, directory, engine.Cut()) as live:
        assert case_rows(live) == view_rows(live)
        sql = case_changes(":case")
        assert live.execute(sql, {"case": "nothing"}).fetchall() == []


def test_case_trail_reads_its_corrections_by_stream(scenario):
    """The canned case_trail finds each row's corrections through its stream's events
    (``audit_log`` by stream, ``event_flags`` by key), never by a scan of every flag
    per row (8.5 s for a case of f-35a at a million events, 290,000 flags)."""
    ledger, directory = scenario
    with engine.read_models(ledger.reader, directory, engine.Cut()) as live:
        plan = live.execute(
            f"EXPLAIN QUERY PLAN {canned.CASE_TRAIL.sql}", {"case": "DA-D-F35"}
        ).fetchall()
    details = [row[-1] for row in plan]
    assert [d for d in details if d.startswith("SCAN")] == ["SCAN changes"], details
    # raised_flags (schema 8) has no rowid: its key is the table's B-tree.
    assert any(d.startswith("SEARCH f USING PRIMARY KEY") for d in details), details


def test_the_scenario_rows_are_the_runs_expanded(scenario, tmp_path):
    ledger, _ = scenario
    with runs_made() as made:
        assert engine.rebuild(ledger.reader, tmp_path / "rebuilt.db") == ledger.head()
    conn = engine.connect(tmp_path / "rebuilt.db")
    assert view_rows(conn) == expand(made)
    stored = conn.execute(
        "SELECT (SELECT count(*) FROM queue_moves), (SELECT count(*) FROM queue_shifts)"
    ).fetchone()
    conn.close()
    assert stored[0] + stored[1] < len(expand(made))  # fewer rows than schema 3 stored


# --- generated histories ------------------------------------------------------------------


@pytest.mark.slow
@settings(SETTINGS)
@given(histories(), st.integers(0, 2000), st.integers(1, 400))
def test_generated_histories_answer_as_schema_3_did(history, start, days):
    """A rebuild's view rows are schema 3's rows of the projector's runs; so are a
    replay's, caught up in transactions of 3 events (``audit diff``'s causes against
    schema 3's query: test_diffs)."""
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        ledger = create(tmp / "ledger")
        try:
            half = len(history) // 2
            chunked = engine.connect(tmp / "chunked.db")
            with runs_made() as made:  # ids and numbers loaded back after the first half
                append_accepted(ledger, history[:half])
                engine.catch_up(ledger.reader, chunked, commit_every=3)
                append_accepted(ledger, history[half:])
                engine.catch_up(ledger.reader, chunked, commit_every=3)
            assert view_rows(chunked) == expand(made)
            chunked.close()

            with runs_made() as made:
                engine.rebuild(ledger.reader, tmp / "rebuilt.db")
            rebuilt = engine.connect(tmp / "rebuilt.db")
            assert view_rows(rebuilt) == expand(made)
            assert case_rows(rebuilt) == view_rows(rebuilt)
            rebuilt.close()

            until = instant(f"{START + timedelta(days=start + days)}T00:00:00Z")
            with (
                runs_made() as made,
                engine.read_models(
                    ledger.reader, tmp / "ledger", engine.Cut(as_of=until)
                ) as after,
            ):
                assert view_rows(after) == expand(made)
        finally:
            ledger.close()
