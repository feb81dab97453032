"""The lean event_flags (issue 14): schema 7's flags, stored smaller.

Schema 7 stored every ``event_flags`` row whole, an out-of-sequence flag's sentence
(about 146 bytes) included. Schema 8 stores ``raised_flags`` (no rowid; the kind by its
number; an out-of-sequence flag's ``oversight.Skipped``, not its sentence) and
``event_flags`` is a view that takes the stream and effective time from ``audit_log`` and
words the sentence in SQL from ``oversight.SKIPPED``. Checked three ways:

- the scenario's flags, every column, equal those schema 7's code gave (kept in
  tests/data/event-flags-schema-7.json);
- the SQL sentence equals ``oversight.skipped_text`` and schema 7's wording (``old_text``,
  kept here as the reference) for every shape of ``Skipped``;
- on the generated histories of test_projection_properties, every out-of-sequence row of
  the view (a rebuild's, and a catch-up's in transactions of 3 events) is the row schema
  7 made of the same call (``flagged``).
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import msgspec
import pytest
from arms_ledger.cli.demo import SCENARIO
from arms_ledger.cli.write import load_history
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import oversight
from arms_ledger.projections import audit, engine
from arms_ledger.projections.views import SKIPPED_TEXT
from hypothesis import given, settings

from tests.integration.test_projection_properties import (
    SETTINGS,
    append_accepted,
    histories,
)

GOLDEN = Path(__file__).parent.parent / "data" / "event-flags-schema-7.json"


def old_text(
    e: ev.Event, platform: str, position: int, cases: list[str], stages: list[str]
) -> str | None:
    """Schema 7's ``oversight.out_of_sequence``, verbatim: the reference."""
    if not isinstance(e, (ev.DeliveryRecorded, ev.OfferIssued)):
        return None
    if e.bypass_reason is not msgspec.UNSET:
        return None
    count = sum(oversight.waiting(e, s) for s in stages)
    if not count:
        return None
    first = []
    for case, stage in zip(cases, stages, strict=True):
        if oversight.waiting(e, stage):
            first.append(case)
            if len(first) == 3:
                break
    what = "delivery" if isinstance(e, ev.DeliveryRecorded) else "offer"
    shown = ", ".join(first) + (f" and {count - 3} more" if count > 3 else "")
    return (
        f"{what} to position {position} of the {platform} queue while {count} "
        f"case(s) ahead still wait ({shown}), with no bypass_reason"
    )


def flag_rows(conn: sqlite3.Connection) -> list[list]:
    rows = conn.execute("SELECT * FROM event_flags ORDER BY event_position, kind")
    return [list(r) for r in rows]


def test_the_scenario_flags_are_schema_7s(tmp_path):
    ledger = create(tmp_path / "ledger")
    try:
        load_history(ledger, SCENARIO)
        with engine.read_models(ledger.reader, tmp_path / "ledger", engine.Cut()) as conn:
            found = flag_rows(conn)
    finally:
        ledger.close()
    golden = json.loads(GOLDEN.read_text())
    assert {r[1] for r in golden} >= {"out-of-sequence", "backdated-decision"}
    assert found == golden


def _sql_text(s: oversight.Skipped) -> str:
    conn = sqlite3.connect(":memory:")
    conn.execute(
        "CREATE TABLE f (offer INTEGER, queue_position INTEGER, platform TEXT, "
        "waiting INTEGER, shown TEXT)"
    )
    conn.execute("INSERT INTO f VALUES (?, ?, ?, ?, ?)", s)
    return conn.execute(f"SELECT {SKIPPED_TEXT} FROM f").fetchone()[0]


@pytest.mark.parametrize("waiting", [1, 2, 3, 4, 12, 1000])
@pytest.mark.parametrize("offer", [False, True])
def test_the_sql_sentence_is_python_s_and_schema_7_s(waiting, offer):
    cases = [f"XX-D-{n:04d}" for n in range(waiting)]
    stage = "filed" if offer else "offered"
    kind = ev.OfferIssued if offer else ev.DeliveryRecorded
    e = mock.Mock(spec=kind, bypass_reason=msgspec.UNSET)
    s = oversight.skipped(e, "c-130j", waiting + 1, cases, [stage] * waiting)
    assert s is not None and s.waiting == waiting
    text = old_text(e, "c-130j", waiting + 1, cases, [stage] * waiting)
    assert oversight.skipped_text(s) == text
    assert (
        oversight.out_of_sequence(e, "c-130j", waiting + 1, cases, [stage] * waiting)
        == text
    )
    assert _sql_text(s) == text


@contextmanager
def flagged() -> Iterator[dict[int, list]]:
    """The ``event_flags`` row schema 7 made of each out-of-sequence flag the projector
    raises while in the block, by position."""
    made: dict[int, list] = {}
    real = audit.out_of_sequence

    def record(position, e, partner, platform, at, cases, stages):
        row = real(position, e, partner, platform, at, cases, stages)
        text = old_text(e, platform, at, cases, stages)
        assert (row is None) == (text is None)
        if text is not None:
            stream = f"case:{e.case}"
            made[position] = [
                position,
                "out-of-sequence",
                stream,
                partner,
                e.effective_at,
                text,
            ]
        return row

    with mock.patch.object(audit, "out_of_sequence", record):
        yield made


def out_of_sequence_rows(conn: sqlite3.Connection) -> dict[int, list]:
    return {r[0]: r for r in flag_rows(conn) if r[1] == "out-of-sequence"}


@pytest.mark.slow
@settings(SETTINGS)
@given(histories())
def test_generated_histories_flag_as_schema_7_did(history):
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        ledger = create(tmp / "ledger")
        try:
            half = len(history) // 2
            chunked = engine.connect(tmp / "chunked.db")
            with flagged() as made:
                append_accepted(ledger, history[:half])
                engine.catch_up(ledger.reader, chunked, commit_every=3)
                append_accepted(ledger, history[half:])
                engine.catch_up(ledger.reader, chunked, commit_every=3)
            assert out_of_sequence_rows(chunked) == made
            caught_up = flag_rows(chunked)
            chunked.close()

            with flagged() as made:
                engine.rebuild(ledger.reader, tmp / "rebuilt.db")
            rebuilt = engine.connect(tmp / "rebuilt.db")
            assert out_of_sequence_rows(rebuilt) == made
            assert flag_rows(rebuilt) == caught_up
            rebuilt.close()
        finally:
            ledger.close()
