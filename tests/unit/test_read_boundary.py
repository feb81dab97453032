"""The read side reads the log through its own port, over any LogReader."""

from __future__ import annotations

import ast
import sqlite3
from pathlib import Path

import pytest
from arms_ledger.fixtures import SCENARIO
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import engine
from arms_ledger.projections.source import InMemoryLog, LogReader

from tests.integration.projection_tables import assert_same_read_models

PROJECTIONS = Path(__file__).parents[2] / "projections"
FORBIDDEN = (
    "arms_ledger.ledger.app",
    "arms_ledger.ledger.store",
    "arms_ledger.cli",
    "eventsourcing",
)


def imported(tree: ast.AST) -> list[str]:
    """Every module an import statement names, at any depth (function-local too)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.append(node.module)
            found += [f"{node.module}.{alias.name}" for alias in node.names]
    return found


def test_the_read_side_imports_neither_the_application_nor_the_store():
    modules = sorted(PROJECTIONS.rglob("*.py"))
    assert len(modules) > 10
    wrong = [
        f"{path.relative_to(PROJECTIONS.parent)} imports {name}"
        for path in modules
        for name in imported(ast.parse(path.read_text(), str(path)))
        if any(name == f or name.startswith(f"{f}.") for f in FORBIDDEN)
    ]
    assert wrong == []


def scenario() -> list[ev.Event]:
    return [
        ev.decoder.decode(line) for line in Path(str(SCENARIO)).read_bytes().splitlines()
    ]


def built(log: LogReader, tmp_path: Path, name: str) -> sqlite3.Connection:
    conn = engine.connect(tmp_path / name)
    engine.catch_up(log, conn)
    return conn


def test_catch_up_over_an_in_memory_log_equals_a_rebuild(tmp_path):
    """Appending a piece at a time and catching up after each (the ``Stored`` loader
    reading back through the port) gives the read models a rebuild gives."""
    events = scenario()
    assert len(events) > 500
    log = InMemoryLog()
    incremental = engine.connect(tmp_path / "incremental.db")
    for start in range(0, len(events), 97):
        log.append(*events[start : start + 97])
        engine.catch_up(log, incremental, commit_every=40)
    assert engine.rebuild(log, tmp_path / "rebuilt.db") == len(events)
    rebuilt = engine.connect(tmp_path / "rebuilt.db")
    assert_same_read_models(incremental, rebuilt)
    assert incremental.execute("SELECT position FROM projection").fetchone() == (
        len(events),
    )


def test_a_replay_at_a_position_equals_the_read_models_of_that_prefix(tmp_path):
    events = scenario()
    prefix = InMemoryLog(events[:300])
    replayed = engine.connect(tmp_path / "replay.db")
    assert engine.replay(InMemoryLog(events), replayed, engine.Cut(at_position=300)) == 300
    live = built(prefix, tmp_path, "prefix.db")
    partners = "SELECT * FROM partners ORDER BY partner"
    assert replayed.execute(partners).fetchall() == live.execute(partners).fetchall()
    queue = "SELECT * FROM queue ORDER BY platform, position"
    assert replayed.execute(queue).fetchall() == live.execute(queue).fetchall()


def test_in_memory_log_reads_as_the_port_says():
    events = scenario()[:50]
    log = InMemoryLog(events)
    assert log.head() == 50
    pages = list(log.pages(10, 35, size=10))
    assert [[row[0] for row in page] for page in pages] == [
        list(range(11, 21)),
        list(range(21, 31)),
        list(range(31, 36)),
    ]
    assert log.at([1, 50, 51]) == {1: events[0], 50: events[49]}
    key = events[0].stream
    assert [r.version for r in log.stream(key)] == list(
        range(1, 1 + sum(e.stream == key for e in events))
    )
    assert all(r.position is not None and r.position <= 5 for r in log.stream(key, upto=5))
    found = log.of_types(["PartnerRegistered"], after=1, upto=40)
    assert found and all(
        type(r.event) is ev.PartnerRegistered and 1 < (r.position or 0) <= 40 for r in found
    )


@pytest.mark.parametrize("upto", [0, 3])
def test_an_empty_stretch_of_log_has_no_pages(upto):
    assert list(InMemoryLog().pages(0, upto)) == []
