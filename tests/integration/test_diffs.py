"""``audit diff``'s replay (projections.diffs): the queues as of T1 and T2 and the queue
changes the events effective in between made, in effective order.

- From a snapshot it answers what it answers from the first event: both sides' tables
  and every change, on random histories (backdated facts among them), on both stores.
- Its causes equal those the replay as of T2 in log order named before (schema 3's
  query over ``queue_changes``) whenever the two orders apply the same events before
  each one (no event effective in (T1, T2] recorded after one effective later, or before
  one in force at T1): the only histories where the old answer did not depend on the
  order events were recorded in. Where they differ, the scenario's three cases are
  spelled out in test_queue_changes_lean.
"""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain.clock import effective, instant
from arms_ledger.ledger.domain.facts import holds_at, is_reference
from arms_ledger.projections import audit_queries, diffs, engine, queries, snapshots
from arms_ledger.projections.runner import Cut
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.integration import test_snapshots
from tests.integration.test_projection_properties import append_accepted, histories
from tests.integration.test_snapshots import day, days

EXAMPLES = {"sqlite": 30, "postgresql": 10}


def assert_same(actual: sqlite3.Connection, expected: sqlite3.Connection) -> None:
    """The tables of ``diffs.TABLES`` and ``projection`` hold the same rows."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(test_snapshots, "TABLES", (*sorted(diffs.TABLES), "projection"))
        test_snapshots.assert_same(actual, expected)


def sides(log, directory: Path, tmp: Path, t1, t2, *, snapshot: bool, name: str):
    before = engine.connect(tmp / f"{name}-before.db")
    after = engine.connect(tmp / f"{name}-after.db")
    changes = diffs.between(log, directory, before, after, t1, t2, snapshot=snapshot)
    return before, after, changes


def old_causes(log, tmp: Path, t1: datetime, t2: datetime, name: str) -> dict:
    """The causes as ``audit diff`` named them before: from the ``queue_changes`` of a
    replay as of T2 from the first event, in log order."""
    conn = engine.connect(tmp / f"{name}-old.db")
    engine.replay(log, conn, Cut(as_of=t2))
    found: dict[tuple[str, str], list[dict]] = {}
    for c in queries.rows(
        conn,
        """SELECT platform, "case", event_position AS position, event_type AS type,
                  change, effective_at, actor, rationale
           FROM queue_changes_explained ORDER BY event_position""",
    ):
        if instant(c["effective_at"]) > t1:
            found.setdefault((c.pop("platform"), c.pop("case")), []).append(c)
    conn.close()
    return {
        key: audit_queries._dedupe(
            [c for c in causes if c["change"] != "shifted"] or causes
        )
        for key, causes in found.items()
    }


def orders_agree(log, t1: datetime, t2: datetime) -> bool:
    """Whether the replay as of T2 in log order applies, before each event, the same
    events as ``diffs`` does (registrations and listings aside)."""
    logged = [
        (n, e)
        for page in log.pages(0, log.head())
        for n, _, _, e in page
        if holds_at(e, t2) and not is_reference(e)
    ]
    ours = [x for x in logged if effective(x[1]) <= t1] + sorted(
        (x for x in logged if effective(x[1]) > t1), key=lambda x: (effective(x[1]), x[0])
    )
    return [n for n, _ in ours] == [n for n, _ in logged]


def diff_property(max_examples: int):
    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(histories(), st.data())
    def check(history, data):
        every = data.draw(st.integers(2, 12))
        split = data.draw(st.integers(1, len(history)))
        with (
            pytest.MonkeyPatch.context() as patch,
            tempfile.TemporaryDirectory() as folder,
        ):
            patch.setattr(snapshots, "EVERY", every)
            patch.setattr(snapshots, "EFFECTIVE_EVERY", every)
            patch.setattr(snapshots, "STALE", 10**9)  # never rebuilt here
            tmp = Path(folder)
            directory = tmp / "ledger"
            ledger = create(directory)
            try:
                append_accepted(ledger, history[:split])
                log = ledger.reader
                if log.head():
                    snapshots.build(
                        log, directory, lambda: engine.live(log, directory).close()
                    )
                append_accepted(ledger, history[split:])  # backdated events among them
                engine.live(log, directory).close()
                if not log.head():
                    return
                t1 = day(data.draw(days))
                t2 = t1 + timedelta(days=data.draw(st.integers(0, 900)))
                used = snapshots.nearest(log, directory, Cut(as_of=t1)) is not None
                event(f"from a snapshot: {used}")
                mine = sides(log, directory, tmp, t1, t2, snapshot=True, name="snap")
                theirs = sides(log, directory, tmp, t1, t2, snapshot=False, name="zero")
                try:
                    assert mine[2].runs == theirs[2].runs
                    assert_same(mine[0], theirs[0])
                    assert_same(mine[1], theirs[1])
                    for conn, t in ((mine[0], t1), (mine[1], t2)):  # = engine.replay
                        full = engine.connect(tmp / "full.db")
                        engine.replay(log, full, Cut(as_of=t))
                        assert_same(conn, full)
                        full.close()
                        (tmp / "full.db").unlink()
                    found = audit_queries.diff(mine[0], mine[1], mine[2])
                    assert found == audit_queries.diff(*theirs)
                    agree = orders_agree(log, t1, t2)
                    event(f"log order = effective order: {agree}")
                    if agree:
                        old = old_causes(log, tmp, t1, t2, "old")
                        for change in found:
                            key = (change["platform"], change["case"])
                            assert change["caused_by"] == old.get(key, []), change
                finally:
                    for conn in (*mine[:2], *theirs[:2]):
                        conn.close()
            finally:
                ledger.close()

    return check


@pytest.mark.slow
def test_a_diff_from_a_snapshot_equals_one_from_the_first_event(store):
    """Both sides, every change and the causes, from a snapshot and from the first
    event; the causes as before where the two orders agree. Once per store."""
    diff_property(EXAMPLES[store])()


def test_the_two_sides_are_the_queues_as_of_each_time(ledger_dir, tmp_path):
    """A small history: the sides are the replays as of T1 and T2, and the case
    filed last entered, caused by its filing (and what else took effect then)."""
    from tests.integration.test_projection_properties import TWO_QUEUES

    ledger = create(ledger_dir)
    try:
        append_accepted(ledger, TWO_QUEUES)
        log = ledger.reader
        filed = [
            (n, e)
            for page in log.pages(0, log.head())
            for n, _, _, e in page
            if type(e).__name__ == "CaseFiled"
        ]
        n, last = filed[-1]
        t2 = effective(last)
        t1 = t2 - timedelta(microseconds=1)
        before, after, changes = sides(
            log, ledger_dir, tmp_path, t1, t2, snapshot=True, name="s"
        )
        try:
            found = audit_queries.diff(before, after, changes)
            entered = [c for c in found if c["case"] == getattr(last, "case", None)]
            assert len(entered) == 1 and entered[0]["change"] == "entered"
            assert n in [c["position"] for c in entered[0]["caused_by"]]
            assert all(
                instant(c["effective_at"]) == t2 for row in found for c in row["caused_by"]
            ), found
            for conn, t in ((before, t1), (after, t2)):
                full = engine.connect(tmp_path / "full.db")
                engine.replay(log, full, Cut(as_of=t))
                assert_same(conn, full)
                full.close()
                (tmp_path / "full.db").unlink()
        finally:
            before.close()
            after.close()
    finally:
        ledger.close()
