"""A rebuild in two processes (issue 14, item 3) builds exactly the read models of one.

A log longer than ``rebuild.SPLIT_AFTER`` is rebuilt by two processes: this one projects
every read model but ``audit_log``, a forked one makes ``audit_log`` and its indexes from
the stored rows it is sent, and its table is copied in at the end. Here the split is
forced (``SPLIT_AFTER = 0``) and its file compared with a one-process rebuild's, table for
table, view for view and schema entry for schema entry, on the scenario and on a
generated history, on both stores; a second process that fails fails the rebuild in one
line and leaves nothing behind.
"""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from arms_ledger.cli.demo import SCENARIO
from arms_ledger.cli.write import load_history
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import engine, rebuild
from hypothesis import given, settings

from fixtures.tools.generate import generate
from tests.integration.projection_tables import assert_same_read_models
from tests.integration.test_projection_properties import (
    SETTINGS,
    append_accepted,
    histories,
)


def build(log, path: Path, *, split: bool, monkeypatch) -> int:
    """``engine.rebuild`` into ``path``, by two processes or by one."""
    monkeypatch.setattr(rebuild, "SPLIT_AFTER", 0 if split else 10**12)
    return engine.rebuild(log, path)


def schema_of(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute(
        "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name"
    ).fetchall()


def assert_split_equals_one_process(log, tmp: Path, monkeypatch) -> int:
    head = log.head()
    assert build(log, tmp / "one.db", split=False, monkeypatch=monkeypatch) == head
    assert build(log, tmp / "two.db", split=True, monkeypatch=monkeypatch) == head
    one, two = sqlite3.connect(tmp / "one.db"), sqlite3.connect(tmp / "two.db")
    try:
        assert_same_read_models(two, one)
        assert schema_of(two) == schema_of(one)
        assert two.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        count = two.execute("SELECT count(*) FROM audit_log").fetchone()[0]
        assert count == head
    finally:
        one.close()
        two.close()
    # Nothing of the second process is left beside the file.
    assert sorted(p.name for p in tmp.iterdir() if "two.db" in p.name) == ["two.db"]
    return head


def test_the_scenario(ledger_dir, tmp_path, monkeypatch):
    ledger = create(ledger_dir)
    try:
        load_history(ledger, SCENARIO)
        assert assert_split_equals_one_process(ledger.reader, tmp_path, monkeypatch) > 0
    finally:
        ledger.close()


@pytest.mark.slow
def test_a_generated_history(ledger_dir, tmp_path, monkeypatch):
    """Ten thousand generated events: queues that shift, partners rescored, cases
    ended and put aside, several batches of the writer and several pages."""
    ledger = create(ledger_dir)
    try:
        lines = generate(open_cases=300, events=10_000, with_recorded_at=True)
        ledger.import_history([ev.decoder.decode(line) for line in lines])
        assert ledger.head() >= 10_000
        monkeypatch.setattr(rebuild, "FLUSH_EVENTS", 2_500)
        assert_split_equals_one_process(ledger.reader, tmp_path, monkeypatch)
    finally:
        ledger.close()


@pytest.mark.slow
def test_generated_histories(monkeypatch):
    """Hypothesis' histories (backdated facts, policy changes, every case event)."""

    @settings(SETTINGS, max_examples=10)
    @given(histories())
    def check(history):
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            ledger = create(tmp / "ledger")
            try:
                append_accepted(ledger, history)
                assert_split_equals_one_process(ledger.reader, tmp, monkeypatch)
            finally:
                ledger.close()

    check()


def failing_audit_log(path: str, pages) -> None:
    """A process that fails as a full disk would."""
    pages.recv_bytes()
    raise sqlite3.OperationalError("database or disk is full")


def test_a_failing_second_process_fails_the_rebuild(ledger_dir, tmp_path, monkeypatch):
    ledger = create(ledger_dir)
    try:
        load_history(ledger, SCENARIO)
        target = tmp_path / "projections.db"
        build(ledger.reader, target, split=False, monkeypatch=monkeypatch)
        before = target.read_bytes()
        monkeypatch.setattr(rebuild, "_make_audit_log", failing_audit_log)
        with pytest.raises(sqlite3.OperationalError, match="database or disk is full"):
            build(ledger.reader, target, split=True, monkeypatch=monkeypatch)
        assert target.read_bytes() == before  # the live read models untouched
        left = sorted(p.name for p in tmp_path.iterdir() if p.name != "ledger")
        assert left == ["projections.db"]
    finally:
        ledger.close()
