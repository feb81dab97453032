"""The reads by type stay flat as the log grows, whatever the planner's statistics.

The policies a catch-up reads (``Stored.policy_events``) and the thresholds the write
path reads (``Ledger._load_thresholds``) are each one range of the store's
``(topic, position)`` index: on SQLite the ``topic`` index (whose entries end with the
rowid), on PostgreSQL ``ledger_events_topic_position``. Here a ledger gets tens of
thousands of filler rows written behind its back, and the statements those two paths
actually run are EXPLAINed: on PostgreSQL first as loaded (never ANALYZEd, as after a
bulk load with autovacuum off; ``enable_seqscan`` as the server has it), then after
``ANALYZE``; on SQLite without and with ``sqlite_stat1``. A store made by an earlier
version gets the index when a ledger is opened for writing (``upgrade_store``).
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from arms_ledger.ledger.app.directory import open_ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import engine
from arms_ledger.projections.loader import Stored

from tests import stores
from tests.histories import EVERY_TYPE, decode

FILLER = 40_000  # rows of common types: enough that a scan of them costs more than a range
COMMON = (
    "EconomicContributionRecorded",
    "CaseFiled",
    "DefenseSpendingReported",
    "DeliveryRecorded",
)
DATA = Path(__file__).parents[1] / "data"


def fill(ledger_dir: Path, count: int = FILLER) -> None:
    """Copies of the log's events of common types after its head, straight into the
    store: the log grows without the tree (these tests read plans, not proofs), so
    nothing is appended through the ledger after this."""
    with stores.raw(ledger_dir) as db:
        head = db.execute("SELECT max(rowid) FROM stored_events").fetchone()[0]
        states = db.execute(
            "SELECT topic, state FROM stored_events WHERE topic IN (?, ?, ?, ?)", COMMON
        ).fetchall()
        assert {topic for topic, _ in states} == set(COMMON)
        db.executemany(
            "INSERT INTO stored_events (rowid, originator_id, originator_version, topic, "
            "state) VALUES (?, ?, ?, ?, ?)",
            [
                (head + i, f"filler:{i}", 1, *states[i % len(states)])
                for i in range(1, count + 1)
            ],
        )


def statements_by_type(ledger, run, by_type: bool = True) -> list[tuple[str, list]]:
    """The statements by topic (``by_type``, else all) the store's reader runs while
    ``run()`` runs: (sql, params)."""
    seen: list[tuple[str, list]] = []
    recorder = ledger.recorder
    select = recorder._select

    def spy(sql, params):
        if "topic" in sql or not by_type:
            seen.append((sql, list(params)))
        return select(sql, params)

    recorder._select = spy
    try:
        run()
    finally:
        del recorder._select
    return seen


def reads_by_type(ledger, ledger_dir: Path) -> list[tuple[str, list]]:
    """The policies a catch-up reads (``Stored.policy_events`` at the head), and the
    thresholds the write path reads in a process that has not read them yet."""
    loader = Stored(ledger.reader, sqlite3.connect(":memory:"), ledger.head())
    policies = statements_by_type(ledger, lambda: list(loader.policy_events()))
    fresh = open_ledger(ledger_dir)
    try:
        thresholds = statements_by_type(fresh, fresh._load_thresholds)
    finally:
        fresh.close()
    assert len(policies) == len(thresholds) == 1
    return policies + thresholds


def test_the_catch_up_after_a_partner_event_makes_that_policy_read(ledger, ledger_dir):
    ledger.append(decode(EVERY_TYPE))
    conn = engine.live(ledger.reader, ledger_dir)
    try:
        ledger.append(
            [
                ev.EconomicContributionRecorded(
                    partner="POL",
                    kind="advance-payment",
                    amount_usd=1_000,
                    description="one more",
                    actor="dsca",
                )
            ]
        )
        caught_up = statements_by_type(ledger, lambda: engine.catch_up(ledger.reader, conn))
    finally:
        conn.close()
    # as the catch-up's loader: at the position reached before the new event
    loader = Stored(ledger.reader, sqlite3.connect(":memory:"), ledger.head() - 1)
    policies = statements_by_type(ledger, lambda: list(loader.policy_events()))
    assert caught_up == policies


# --- the plans ----------------------------------------------------------------------------


def sqlite_plan(ledger_dir: Path, sql: str, params: list) -> list[str]:
    with closing(sqlite3.connect(ledger_dir / "events.db")) as db:
        return [row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def assert_sqlite_uses_the_index(ledger_dir: Path, sql: str, params: list) -> None:
    plan = sqlite_plan(ledger_dir, sql, params)
    reads = [step for step in plan if "stored_events" in step]
    assert reads, plan
    for step in reads:
        # topic=? and the position range, both in the index: never a SCAN of the table
        # or of an index, nor a range of rowids filtered by topic.
        assert step.startswith("SEARCH stored_events USING INDEX stored_events_topic (")
        assert "topic=?" in step and "rowid>?" in step, plan


def pg_nodes(plan: dict):
    yield plan
    for child in plan.get("Plans", ()):
        yield from pg_nodes(child)


def pg_plan(ledger_dir: Path, sql: str, params: list) -> list[dict]:
    with stores.raw(ledger_dir) as db:
        (plan,) = db.conn.execute(f"EXPLAIN (FORMAT JSON) {sql}", params).fetchone()
    return list(pg_nodes(plan[0]["Plan"]))


def assert_pg_uses_the_index(ledger_dir: Path, sql: str, params: list) -> None:
    nodes = pg_plan(ledger_dir, sql, params)
    kinds = [n["Node Type"] for n in nodes]
    assert "Seq Scan" not in kinds and "BitmapAnd" not in kinds, kinds
    reads = [n for n in nodes if "Index Name" in n]
    assert reads, kinds
    for node in reads:
        # the topic and the position range are both index conditions of the one index
        assert node["Index Name"] == "ledger_events_topic_position", node
        assert "topic" in node["Index Cond"], node
        assert "notification_id" in node["Index Cond"], node


def pg_has_statistics(ledger_dir: Path) -> bool:
    with stores.raw(ledger_dir) as db:
        return bool(
            db.conn.execute(
                "SELECT count(*) FROM pg_stats WHERE schemaname = %s "
                "AND tablename = 'ledger_events'",
                (db.schema,),
            ).fetchone()[0]
        )


def analyze(ledger_dir: Path) -> None:
    with stores.raw(ledger_dir) as db:
        db.execute("ANALYZE stored_events")


def assert_reads_by_type_use_the_index(store: str, ledger, ledger_dir: Path) -> None:
    """As loaded (no statistics), then after ANALYZE."""
    check = assert_sqlite_uses_the_index if store == "sqlite" else assert_pg_uses_the_index
    if store == "sqlite":
        with closing(sqlite3.connect(ledger_dir / "events.db")) as db:
            assert not db.execute(
                "SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'"
            ).fetchone()[0]
    else:
        assert not pg_has_statistics(ledger_dir)
    for sql, params in reads_by_type(ledger, ledger_dir):
        check(ledger_dir, sql, params)
    analyze(ledger_dir)
    if store != "sqlite":
        assert pg_has_statistics(ledger_dir)
    for sql, params in reads_by_type(ledger, ledger_dir):
        check(ledger_dir, sql, params)


def test_the_policy_and_threshold_reads_use_the_topic_position_index(
    store, ledger, ledger_dir
):
    ledger.append(decode(EVERY_TYPE))
    fill(ledger_dir)
    assert_reads_by_type_use_the_index(store, ledger, ledger_dir)


def test_the_reads_by_type_are_the_events_of_those_types_in_log_order(ledger):
    ledger.append(decode(EVERY_TYPE))
    every = list(ledger.read())
    policy = ("NotificationThresholdsSet", "PriorityPolicyAdopted")
    for types, after, upto in (
        (policy, 0, None),
        (policy, 1, None),
        (policy, 0, 1),
        (("CaseFiled", "CaseFiled", "SpendingReported"), 3, len(every) - 2),
        (("NoSuchType",), 0, None),
    ):
        want = [
            r
            for r in every
            if type(r.event).__name__ in types
            and r.position > after
            and (upto is None or r.position <= upto)
        ]
        got = ledger.reader.of_types(types, after=after, upto=upto)
        assert got == want, (types, after, upto)
        assert [r.position for r in got] == sorted({r.position for r in got})


def assert_stream_read_uses_the_primary_key(store, ledger_dir, sql, params) -> None:
    """A stream up to a position: a range of the primary key, the position a filter."""
    if store == "sqlite":
        plan = sqlite_plan(ledger_dir, sql, params)
        # (with statistics SQLite may sort the stream's rows itself: they are few)
        assert plan[0] == (
            "SEARCH stored_events USING INDEX sqlite_autoindex_stored_events_1 "
            "(originator_id=?)"
        ), plan
        assert set(plan[1:]) <= {"USE TEMP B-TREE FOR ORDER BY"}, plan
        return
    nodes = pg_plan(ledger_dir, sql, params)
    kinds = [n["Node Type"] for n in nodes]
    assert "Seq Scan" not in kinds and "BitmapAnd" not in kinds, kinds
    reads = [n for n in nodes if "Index Name" in n]
    assert [n["Index Name"] for n in reads] == ["ledger_events_pkey"], reads
    assert "notification_id" not in reads[0]["Index Cond"], reads


def test_the_catch_ups_read_of_a_stream_uses_the_primary_key(store, ledger, ledger_dir):
    ledger.append(decode(EVERY_TYPE))
    fill(ledger_dir)
    loader = Stored(ledger.reader, sqlite3.connect(":memory:"), ledger.head())
    for statistics in (False, True):
        if statistics:
            analyze(ledger_dir)
        (read,) = statements_by_type(
            ledger, lambda: list(loader.stream("case:PL-1")), by_type=False
        )
        assert_stream_read_uses_the_primary_key(store, ledger_dir, *read)


# --- stores made by an earlier version ----------------------------------------------------


def make_it_old(store: str, ledger_dir: Path) -> None:
    """The store as an earlier version left it: on PostgreSQL an index on ``topic``
    alone; on SQLite (whose earlier versions had this one's index) none at all."""
    with stores.raw(ledger_dir) as db:
        if store == "sqlite":
            db.execute("DROP INDEX stored_events_topic")
        else:
            db.execute(f'DROP INDEX "{db.schema}".ledger_events_topic_position')
            db.execute("CREATE INDEX ledger_events_topic ON stored_events (topic)")


def index_names(store: str, ledger_dir: Path) -> set[str]:
    with stores.raw(ledger_dir) as db:
        if store == "sqlite":
            rows = db.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' "
                "AND tbl_name = 'stored_events'"
            )
        else:
            rows = db.conn.execute(
                "SELECT indexname FROM pg_indexes WHERE schemaname = %s "
                "AND tablename = 'ledger_events'",
                (db.schema,),
            )
        return {name for (name,) in rows.fetchall()}


def test_an_earlier_versions_store_gains_the_index_when_opened_for_writing(
    store, ledger, ledger_dir
):
    ledger.append(decode(EVERY_TYPE))
    ledger.close()
    fill(ledger_dir)
    make_it_old(store, ledger_dir)
    index = "stored_events_topic" if store == "sqlite" else "ledger_events_topic_position"
    before = index_names(store, ledger_dir)
    assert index not in before

    reader = open_ledger(ledger_dir, write=False)  # reads never write: read as it is
    try:
        assert not reader.recorder.has_topic_index()
        assert [type(r.event).__name__ for r in reader.read(types=["CaseFiled"])]
    finally:
        reader.close()
    assert index_names(store, ledger_dir) == before

    upgraded = open_ledger(ledger_dir)
    try:
        assert upgraded.recorder.has_topic_index()
        assert upgraded.recorder.upgrade_store() is False  # once is enough
        after = index_names(store, ledger_dir)
        assert index in after
        assert "ledger_events_topic" not in after  # replaced, not kept beside it
        assert_reads_by_type_use_the_index(store, upgraded, ledger_dir)
    finally:
        upgraded.close()


@pytest.mark.parametrize("store", ["sqlite"], indirect=True)
def test_the_format_2_ledger_in_tests_data_reads_by_type_through_the_index(store, tmp_path):
    ledger_dir = tmp_path / "ledger"
    shutil.copytree(DATA / "ledger-format-2", ledger_dir)
    (ledger_dir / "signing.key").chmod(
        0o600
    )  # git keeps no modes; an operator's is private
    assert json.loads((ledger_dir / "ledger.json").read_text())["format"] == 2
    ledger = open_ledger(ledger_dir)
    try:
        assert ledger.recorder.upgrade_store() is False  # it has it already
        sql_seen = statements_by_type(
            ledger, lambda: ledger.reader.of_types(("NotificationThresholdsSet",))
        )
        for sql, params in sql_seen:
            assert_sqlite_uses_the_index(ledger_dir, sql, params)
    finally:
        ledger.close()
