"""A catch-up that keeps what it loaded for the next one (``runner.Kept``, issue 14 item 3).

A writer appending batch after batch passes one ``Kept`` to each ``catch_up``: the next one
reuses the projector when the read models are still at the position it reached, so a case
is folded from its stream once, not once per batch. Whatever the history, the read models
end as a rebuild's; a catch-up by someone else in between, or one that fails, makes the
next one start afresh.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from arms_ledger.cli.demo import SCENARIO
from arms_ledger.cli.write import load_history
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import engine, runner
from hypothesis import given, settings

from tests.integration.projection_tables import assert_same_read_models
from tests.integration.test_projection_properties import (
    POLICY_FLIP,
    SETTINGS,
    TWO_QUEUES,
    append_accepted,
    histories,
)


def assert_a_rebuild_equals(projected, ledger, tmp: Path, count: int) -> None:
    """A rebuild of the whole log (in ``tmp``) has exactly the rows of ``projected``."""
    assert engine.rebuild(ledger.reader, tmp / "rebuilt.db") == count
    rebuilt = engine.connect(tmp / "rebuilt.db")
    try:
        assert_same_read_models(projected, rebuilt)
    finally:
        rebuilt.close()


def kept_catch_ups_equal_a_rebuild(history: list[dict]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        ledger = create(tmp / "ledger")
        conn = engine.connect(tmp / "kept.db")
        kept = runner.Kept()
        try:
            kept_count = append_accepted(
                ledger,
                history,
                after_each=lambda: engine.catch_up(ledger.reader, conn, kept=kept),
            )
            assert kept.projector is not None or kept_count == 0
            assert_a_rebuild_equals(conn, ledger, tmp, kept_count)
        finally:
            conn.close()
            ledger.close()


@pytest.mark.parametrize("history", [POLICY_FLIP, TWO_QUEUES], ids=["policy", "queues"])
def test_examples(history):
    kept_catch_ups_equal_a_rebuild(history)


@pytest.mark.slow
def test_generated_histories():
    @settings(SETTINGS, max_examples=40)
    @given(histories())
    def check(history):
        kept_catch_ups_equal_a_rebuild(history)

    check()


def contribution(n: int) -> ev.Event:
    return ev.EconomicContributionRecorded(
        partner="POL",
        kind="advance-payment",
        amount_usd=1_000_000 + n,
        description="test",
        actor="test",
    )


def test_someone_elses_catch_up_in_between_starts_afresh(ledger_dir, tmp_path):
    ledger = create(ledger_dir)
    try:
        load_history(ledger, SCENARIO)
        mine = engine.connect(tmp_path / "projections.db")
        theirs = engine.connect(tmp_path / "projections.db")
        kept = runner.Kept()
        engine.catch_up(ledger.reader, mine, kept=kept)
        first = kept.projector
        assert first is not None and kept.position == ledger.head()
        ledger.append([contribution(1)])
        engine.catch_up(ledger.reader, mine, kept=kept)
        assert kept.projector is first  # still at its position: kept
        ledger.append([contribution(2)])
        engine.catch_up(ledger.reader, theirs)  # another catch-up moves them on
        ledger.append([contribution(3)])
        engine.catch_up(ledger.reader, mine, kept=kept)
        assert kept.projector is not first and kept.position == ledger.head()
        assert_a_rebuild_equals(mine, ledger, tmp_path, ledger.head())
        mine.close()
        theirs.close()
    finally:
        ledger.close()


def test_a_failed_catch_up_keeps_nothing(ledger_dir, tmp_path):
    ledger = create(ledger_dir)
    try:
        load_history(ledger, SCENARIO)
        conn = engine.connect(tmp_path / "projections.db")
        kept = runner.Kept()
        engine.catch_up(ledger.reader, conn, kept=kept)
        ledger.append([contribution(1)])

        def fail(position: int) -> None:
            raise RuntimeError("stopped")

        with pytest.raises(RuntimeError):
            engine.catch_up(ledger.reader, conn, kept=kept, progress=fail)
        assert kept.projector is None
        engine.catch_up(ledger.reader, conn, kept=kept)
        assert_a_rebuild_equals(conn, ledger, tmp_path, ledger.head())
        conn.close()
    finally:
        ledger.close()
