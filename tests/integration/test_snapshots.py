"""Replays from snapshots (projections.snapshots) equal replays from the first event.

The property: on random histories (those of ``test_projection_properties``: facts
backdated before facts recorded earlier, policies in both modes, cases along their
lifecycle), for a snapshot taken at a random effective time and log position and a
random cut at or after it (``--as-of``, ``--known-at``, ``--at-position``), the tables a
snapshot answers (``snapshots.ANSWERS`` and ``projection``) hold the rows of a replay from
the first event; also through ``snapshots.replay``, with snapshots built on part of the
history and the rest (backdated events among it) appended afterwards. Each property runs
on both event stores (the ``store`` fixture of tests/stores.py).
"""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain.clock import instant
from arms_ledger.ledger.domain.facts import holds_at
from arms_ledger.projections import diffs, engine, schema, snapshots
from arms_ledger.projections.projector import Projector
from arms_ledger.projections.runner import Cut
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.integration.test_projection_properties import (
    DAYS,
    START,
    append_accepted,
    histories,
)

TABLES = (*sorted(snapshots.ANSWERS), "projection")


def rows(conn: sqlite3.Connection) -> dict[str, list[tuple]]:
    """The tables a snapshot answers, ordered by their primary key."""
    out = {}
    for table in schema.TABLES:
        if table.name in TABLES:
            pk = (table.pk,) if isinstance(table.pk, str) else table.pk
            keys = ", ".join(f'"{k}"' for k in pk)
            out[table.name] = conn.execute(
                f'SELECT * FROM "{table.name}" ORDER BY {keys}'
            ).fetchall()
    return out


def assert_same(actual: sqlite3.Connection, expected: sqlite3.Connection) -> None:
    mine, theirs = rows(actual), rows(expected)
    for name in TABLES:
        if mine[name] != theirs[name]:
            raise AssertionError(
                f"{name} differs: only in the replay from a snapshot "
                f"{[r for r in mine[name] if r not in theirs[name]]}, only in the replay "
                f"from the first event {[r for r in theirs[name] if r not in mine[name]]}"
            )


def kinds(cut: Cut) -> str:
    given = (("as-of", cut.as_of), ("known-at", cut.known_at), ("at", cut.at_position))
    return " ".join(name for name, value in given if value is not None)


def from_zero(log, cut: Cut, path: Path) -> sqlite3.Connection:
    conn = engine.connect(path)
    engine.replay(log, conn, cut)
    return conn


def taken(log, as_of: datetime | None, position: int) -> snapshots.State:
    """A snapshot at (``as_of``, ``position``), made by a replay from the first event and
    put through its encoding."""
    projector = Projector(as_of=as_of)
    last = 0
    for page in log.pages(0, position):
        for n, stream, version, e in page:
            if holds_at(e, as_of):
                projector.apply_event(n, stream, version, e)
                last = n
    state = snapshots.capture(projector, log, as_of, position, last)
    projector.close()
    return snapshots._decode(snapshots._encode(state))


def day(n: int) -> datetime:
    return datetime(START.year, START.month, START.day, tzinfo=UTC) + timedelta(days=n)


days = st.integers(-30, DAYS + 60)


@st.composite
def cuts(
    draw, head: int, recorded: list[str | None]
) -> tuple[Cut, int, datetime | None, int]:
    """A cut, the position it reads up to, and a snapshot (as-of, position) before it."""
    kind = draw(st.sampled_from(("as-of", "known-at", "at-position", "as-of+position")))
    as_of = known_at = at_position = None
    if "as-of" in kind:
        as_of = day(draw(days))
    if kind == "known-at":
        known_at = instant(str(recorded[draw(st.integers(0, head - 1))]))
    if "position" in kind:
        at_position = draw(st.integers(1, head))
    cut = Cut(as_of=as_of, known_at=known_at, at_position=at_position)
    upto = at_position or head
    if known_at is not None:
        upto = sum(1 for r in recorded[:upto] if instant(str(r)) <= known_at)
    snap_position = draw(st.integers(0, upto))
    snap_as_of = None
    if as_of is not None:
        snap_as_of = as_of - timedelta(days=draw(st.integers(0, DAYS)))
    return cut, upto, snap_as_of, snap_position


# Each property runs once per store (tests/stores.py), fewer examples on PostgreSQL
# (every append a round trip); the read models and snapshots are SQLite on both.
EXAMPLES = {"sqlite": 40, "postgresql": 12}


@pytest.mark.slow
def test_a_replay_from_any_snapshot_equals_a_replay_from_the_first_event(store):
    """Once per store; see ``any_snapshot``."""
    any_snapshot(EXAMPLES[store])()


def any_snapshot(max_examples: int):
    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(histories(), st.data())
    def check(history, data):
        """A snapshot taken at a random (as-of, position) by a replay from the first
        event, then a random cut after it: its tables equal a replay from zero's."""
        replay_from_any_snapshot(history, data)

    return check


def replay_from_any_snapshot(history, data) -> None:
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        ledger = create(tmp / "ledger")
        try:
            append_accepted(ledger, history)
            log = ledger.reader
            engine.live(log, tmp / "ledger").close()  # the index by effective time
            recorded = [r[3].recorded_at for p in log.pages(0, log.head()) for r in p]
            for k in range(3):
                cut, upto, as_of, position = data.draw(cuts(log.head(), recorded))
                event(f"cut: {kinds(cut)}")
                state = taken(log, as_of, position)
                mine = engine.connect(tmp / f"snap{k}.db")
                theirs = from_zero(log, cut, tmp / f"zero{k}.db")
                try:
                    snapshots.replay_from(state, log, tmp / "ledger", mine, cut, upto)
                    assert_same(mine, theirs)
                finally:
                    mine.close()
                    theirs.close()
        finally:
            ledger.close()


@pytest.mark.slow
def test_snapshots_built_then_events_appended(store):
    """Once per store; see ``built_then_appended``."""
    built_then_appended(round(EXAMPLES[store] * 3 / 4))()


def built_then_appended(max_examples: int):
    @settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(history=histories(), data=st.data())
    def check(history, data):
        """Snapshots built (along the log and effective time, every few events) on part
        of the history; the rest appended (backdated events among it), and the snapshots
        brought forward to the head (``snapshots.refreshed``) or not; replays of random
        cuts through ``snapshots.replay`` equal replays from the first event."""
        with pytest.MonkeyPatch.context() as patch:
            snapshots_then_appended(history, data, patch)

    return check


def snapshots_then_appended(history, data, patch) -> None:
    every = data.draw(st.integers(2, 12))
    patch.setattr(snapshots, "EVERY", every)
    patch.setattr(snapshots, "EFFECTIVE_EVERY", every)
    patch.setattr(snapshots, "STALE", 10**9)  # never rebuilt here
    split = data.draw(st.integers(1, len(history)))
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        directory = tmp / "ledger"
        ledger = create(directory)
        try:
            append_accepted(ledger, history[:split])
            log = ledger.reader
            snapshots.build(log, directory, lambda: engine.live(log, directory).close())
            append_accepted(ledger, history[split:])
            engine.live(log, directory).close()
            if not log.head():
                return
            if data.draw(st.booleans()):  # brought forward to the head (refreshed)
                before = snapshots.describe(directory)
                snapshots.build(log, directory, lambda: engine.live(log, directory).close())
                after = snapshots.describe(directory)
                event(f"refreshed: {len(before)} -> {len(after)} snapshots")
                if any(r.kind == snapshots.EFFECTIVE for r in before):
                    effective = {r.position for r in after if r.kind == snapshots.EFFECTIVE}
                    assert effective == {log.head()}
            recorded = [r[3].recorded_at for p in log.pages(0, log.head()) for r in p]
            for k in range(3):
                cut = data.draw(cuts(log.head(), recorded))[0]
                mine = engine.connect(tmp / f"snap{k}.db")
                theirs = from_zero(log, cut, tmp / f"zero{k}.db")
                try:
                    applied = snapshots.replay(log, directory, mine, cut)
                    event(f"{kinds(cut)}: from a snapshot {applied is not None}")
                    if applied is not None:
                        assert_same(mine, theirs)
                finally:
                    mine.close()
                    theirs.close()
        finally:
            ledger.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as patch:
        yield patch


# --- the CLI on the fixture scenario (917 events; snapshots every 50 here) -------------

QUESTIONS = [
    ("queue", "m1a2-sepv3", "--as-of", "2026-02-05"),
    ("queue", "m1a2-sepv3", "--as-of", "2024-07-19T12:00:00Z"),
    ("queue", "--as-of", "2025-03-01"),
    ("queue", "f-35a", "--known-at", "2023-07-24"),
    ("queue", "f-35a", "--at-position", "437"),
    ("queue", "pac-3-mse", "--at-position", "900", "--json"),
    ("partners", "--as-of", "2025-06-30", "--json"),
    ("partners", "--known-at", "2026-01-01", "--csv"),
    (
        "audit",
        "diff",
        "--from",
        "2026-02-05T23:59:59Z",
        "--to",
        "2026-02-06",
        "--platform",
        "m1a2-sepv3",
    ),
]


@pytest.fixture
def scenario(tmp_path, monkeypatch) -> Path:
    """The demo ledger, with snapshots every 50 events (it has 917)."""
    from arms_ledger.cli.main import cli
    from click.testing import CliRunner

    path = tmp_path / "ledger"
    result = CliRunner().invoke(cli, ["demo", "--keep", str(path)])
    assert result.exit_code == 0, result.stderr
    monkeypatch.setenv("ARMS_LEDGER", str(path))
    monkeypatch.setattr(snapshots, "EVERY", 50)
    monkeypatch.setattr(snapshots, "EFFECTIVE_EVERY", 50)
    return path


def run(*args: str):
    from arms_ledger.cli.main import cli
    from click.testing import CliRunner

    return CliRunner().invoke(cli, list(args))


def used(monkeypatch) -> list[int]:
    """The number of events applied after a snapshot, one per replay from a snapshot."""
    counts: list[int] = []
    project = snapshots.project

    def counted(*args, **kwargs):
        found = project(*args, **kwargs)
        counts.append(found[1])
        return found

    monkeypatch.setattr(snapshots, "project", counted)
    from_snapshot = diffs.from_snapshot

    def counted_diff(*args, **kwargs):  # audit diff: the events of (T1, T2]
        found = from_snapshot(*args, **kwargs)
        counts.append(len(found[2]))
        return found

    monkeypatch.setattr(diffs, "from_snapshot", counted_diff)
    return counts


def test_the_cli_answers_the_same_from_snapshots(scenario, monkeypatch):
    expected = {}
    with monkeypatch.context() as without:
        without.setattr(snapshots, "ANSWERS", frozenset())  # every replay from zero
        for args in QUESTIONS:
            result = run(*args)
            assert result.exit_code == 0, result.stderr
            expected[args] = result.stdout
        assert not (scenario / snapshots.FILE).exists()
    counts = used(monkeypatch)
    for args in QUESTIONS:
        result = run(*args)
        assert (result.exit_code, result.stdout) == (0, expected[args]), args
    assert len(counts) == len(QUESTIONS)  # audit diff too
    assert max(counts) < 200, counts  # never the whole log
    kinds = {r.kind for r in snapshots.describe(scenario)}
    assert kinds == {snapshots.EFFECTIVE, snapshots.LOG}


def test_the_snapshots_command_builds_lists_and_drops(scenario):
    result = run("snapshots", "--json")
    assert result.exit_code == 0, result.stderr
    import json

    listed = json.loads(result.stdout)
    assert listed and {r["position"] for r in listed} >= {50, 900, 917}
    assert any(r["as_of"] == "every event" and r["position"] == 917 for r in listed)
    assert run("snapshots", "--drop").stdout == "Dropped the snapshots.\n"
    assert not (scenario / snapshots.FILE).exists()


def test_a_replay_uses_the_same_table_types_as_a_replay_from_zero(scenario, tmp_path):
    from arms_ledger.ledger.app.directory import open_ledger

    ledger = open_ledger(scenario)
    try:
        log = ledger.reader
        cut = Cut(as_of=instant("2025-03-01T00:00:00Z"))
        mine = engine.connect(tmp_path / "snap.db")
        theirs = from_zero(log, cut, tmp_path / "zero.db")
        assert snapshots.replay(log, scenario, mine, cut, catch_up=lambda: None) is not None
        for name in TABLES:
            info = f'PRAGMA table_info("{name}")'
            assert mine.execute(info).fetchall() == theirs.execute(info).fetchall(), name
        assert_same(mine, theirs)
        dropped = mine.execute("SELECT name FROM sqlite_master WHERE name = 'audit_log'")
        assert dropped.fetchall() == []  # not answered: not there to be read wrongly
    finally:
        ledger.close()


def test_snapshots_of_another_log_are_discarded(scenario, tmp_path):
    """A ledger directory holding another log (here: the demo's first 599 events and a
    different 600th) with the snapshots of the first: a snapshot of the common prefix
    still serves; one past it is of another log, and then all are discarded, with a
    notice, and the replay starts from the first event."""
    from arms_ledger.ledger.app.directory import open_ledger

    assert run("snapshots").exit_code == 0
    other = tmp_path / "other"
    source = open_ledger(scenario)
    try:
        events = [r[3] for page in source.reader.pages(0, 601) for r in page]
    finally:
        source.close()
    ledger = create(other)
    try:
        ledger.import_history(events[:599] + events[600:601])
        assert ledger.head() == 600
        (other / snapshots.FILE).write_bytes((scenario / snapshots.FILE).read_bytes())
        notices: list[str] = []
        log = ledger.reader
        prefix = engine.connect(tmp_path / "prefix.db")
        assert snapshots.replay(log, other, prefix, Cut(at_position=560)) == 10
        assert_same(prefix, from_zero(log, Cut(at_position=560), tmp_path / "zero.db"))
        conn = engine.connect(tmp_path / "replay.db")
        cut = Cut(at_position=600)
        assert snapshots.replay(log, other, conn, cut, notices.append) is None
        assert notices == [
            f"the snapshots in {other / snapshots.FILE} are of another log; discarded, "
            "replaying from the first event"
        ]
        assert not (other / snapshots.FILE).exists()
    finally:
        ledger.close()


@pytest.mark.parametrize("damage", ["body", "file"])
def test_a_damaged_snapshot_is_ignored_with_a_notice(scenario, damage):
    assert run("snapshots").exit_code == 0
    path = scenario / snapshots.FILE
    if damage == "body":
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE snapshots SET body = x'789c03000000000001'")
        conn.close()
    else:
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        path.write_bytes(b"not a database" * 100)
    args = ("queue", "m1a2-sepv3", "--as-of", "2026-02-05", "--json")
    result = run(*args)
    assert result.exit_code == 0, result.stderr
    notice, replayed = result.stderr.splitlines()
    assert notice.startswith(f"(the snapshots in {path} could not be used (")
    assert notice.endswith("); discarded, replaying from the first event)")
    assert replayed == "(replayed as of 2026-02-05T00:00:00Z)"
    assert result.stdout == run(*args).stdout  # and again, from new snapshots


def test_snapshots_being_built_elsewhere_are_waited_for_then_left_alone(
    scenario, monkeypatch
):
    """Another process holds the file (building): the replay starts from the first
    event, says why, and leaves the file alone."""
    assert run("snapshots").exit_code == 0
    monkeypatch.setattr(snapshots, "BUSY_TIMEOUT", 0.05)
    monkeypatch.setattr(snapshots, "STALE", -1)  # so the replay wants to build them
    path = scenario / snapshots.FILE
    other = sqlite3.connect(path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        args = ("queue", "m1a2-sepv3", "--as-of", "2026-02-05", "--json")
        result = run(*args)
        assert result.exit_code == 0, result.stderr
        assert result.stderr.splitlines()[-2] == (
            f"(the snapshots in {path} cannot be used now (database is locked); "
            "replaying from the first event)"
        )
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert path.exists() and snapshots.describe(scenario)


def test_a_rebuild_makes_the_snapshots_along_the_log(scenario, monkeypatch):
    """A rebuild captures its projector at every multiple of EVERY (a page ends there):
    the same states a pass along the log from the first event makes. Split between two
    processes (``rebuild.Partition``), each keeps its part and the two are merged."""
    from arms_ledger.ledger.app.directory import open_ledger
    from arms_ledger.projections import rebuild

    monkeypatch.setattr(rebuild, "SPLIT_AFTER", 100)  # also with audit_log made apart
    ledger = open_ledger(scenario)
    try:
        log = ledger.reader
        raw = log.raw_pages  # (``pages`` reads through it) pages of 50 events, as EVERY
        monkeypatch.setattr(
            log, "raw_pages", lambda after, upto, size=0: raw(after, upto, 50)
        )
        assert not (scenario / snapshots.FILE).exists()
        engine.rebuild(log, scenario / engine.PROJECTIONS_DB)
        made = snapshots.describe(scenario)
        assert [r.position for r in made] == list(range(50, 917, 50))
        assert {r.kind for r in made} == {snapshots.LOG}
        expected = list(snapshots.along_the_log(log, None, log.head()))
        with snapshots.Snapshots(scenario).connect() as snaps:
            store = snapshots.Snapshots(scenario)
            got = [store.load(snaps, r) for r in made]
        assert [snapshots._encode(s) for s in got] == [
            snapshots._encode(s) for s in expected
        ]
        assert not list(scenario.glob("*-snapshots*"))  # the sides' parts are gone
        engine.rebuild(log, scenario / engine.PROJECTIONS_DB)  # none twice
        assert snapshots.describe(scenario) == made
    finally:
        ledger.close()


def test_a_catch_up_past_a_multiple_of_every_extends_them(scenario, monkeypatch):
    """Appending past a multiple of EVERY extends the snapshots along the log in the
    catch-up that follows, when the last one is within REACH, and brings those along
    effective time forward when more than STALE behind; never from none."""
    from arms_ledger.cli.main import cli
    from click.testing import CliRunner

    monkeypatch.setattr(snapshots, "STALE", 60)

    events = scenario / "more.jsonl"
    lines = [
        '{"type": "EconomicContributionRecorded", "partner": "SAU", '
        f'"kind": "advance-payment", "amount_usd": {1000 + i}, "description": "more", '
        '"effective_at": "2026-03-01T00:00:00Z", "actor": "dsca.ofm"}'
        for i in range(40)
    ]
    events.write_text("\n".join(lines) + "\n")
    result = CliRunner().invoke(cli, ["append", str(events)])
    assert result.exit_code == 0, result.stderr
    assert not (scenario / snapshots.FILE).exists()  # none to extend
    assert run("snapshots").exit_code == 0
    assert max(r.position for r in snapshots.describe(scenario)) == 957
    before = [r for r in snapshots.describe(scenario) if r.kind == snapshots.LOG]
    assert before[-1].position == 950
    result = CliRunner().invoke(cli, ["append", str(events)])  # to 997: none passed
    assert result.exit_code == 0, result.stderr
    after = [r for r in snapshots.describe(scenario) if r.kind == snapshots.LOG]
    assert [r.position for r in after] == [*(r.position for r in before)]
    result = CliRunner().invoke(cli, ["append", str(events)])  # to 1037: passes 1000
    assert result.exit_code == 0, result.stderr
    after = [r for r in snapshots.describe(scenario) if r.kind == snapshots.LOG]
    assert [r.position for r in after] == [*(r.position for r in before), 1000]
    timed = [r for r in snapshots.describe(scenario) if r.kind == snapshots.EFFECTIVE]
    assert timed and {r.position for r in timed} == {1037}  # 80 events behind: forward
    for args in QUESTIONS:  # and they answer as replays from the first event
        mine = run(*args)
        with monkeypatch.context() as without:
            without.setattr(snapshots, "ANSWERS", frozenset())
            theirs = run(*args)
        assert (mine.exit_code, mine.stdout) == (0, theirs.stdout), args


def test_a_case_packs_again_after_an_event():
    """``CaseView.pack`` keeps its bytes until the case's next event: a snapshot captured
    after it holds the case as it is then, not as the last capture packed it."""
    from arms_ledger.ledger.domain import events as ev
    from arms_ledger.projections.cases import CaseView

    filed = ev.CaseFiled(
        case="PL-D-X",
        partner="POL",
        platform="himars",
        quantity=18,
        estimated_value_usd=1_500_000_000,
        channel="FMS",
        actor="dsca.cwd.jsmith",
        effective_at="2026-01-01T00:00:00Z",
    )
    view = CaseView.filed(filed, 1)
    first = view.pack()
    assert view.pack() is first  # kept
    assert CaseView.unpack(first).pack() == first
    cleared = ev.CaseReviewCleared(
        case="PL-D-X",
        office="DSCA",
        actor="dsca.cwd.jsmith",
        effective_at="2026-01-02T00:00:00Z",
    )
    view.apply(cleared, 2)
    again = view.pack()
    assert again != first
    assert CaseView.unpack(again) == view
