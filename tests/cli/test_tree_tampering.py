"""Issue 19, item 5: tree and checkpoint tampering that used to slip or crash. A node
above the tree's top level, or past a level's width, is named by `audit verify`, and an
append that would complete such a node is refused as tampering (not retried as another
writer's conflict); checkpoints deleted from the store of a ledger that signs every
append are reported. SQLite: the tests edit events.db."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.cli.conftest import line, one_line_error, registration


def partner(code: str) -> str:
    return line(registration(code, f"Partner {code}"))


@pytest.fixture
def five(store, run, ledger_dir: Path):
    """A SQLite ledger of five events (tree: 5 leaves, 2 nodes at level 1, 1 at 2)."""
    if store != "sqlite":
        pytest.skip("SQLite only: the test edits events.db")
    assert run("init").exit_code == 0
    codes = ("POL", "DEU", "FRA", "ITA", "ESP")
    assert run("append", "-", input="".join(partner(c) for c in codes)).exit_code == 0
    return run


def edit(ledger_dir: Path, *statements: str) -> None:
    db = sqlite3.connect(ledger_dir / "events.db")
    with db:
        for sql in statements:
            db.execute(sql)
    db.close()


def test_a_node_above_the_top_level(five, ledger_dir):
    edit(ledger_dir, "INSERT INTO tlog_nodes VALUES (7, 0, zeroblob(32))")
    one_line_error(
        five("audit", "verify"),
        "the Merkle tree has a node at level 7, above the top level (2) that 5 leaves "
        "make: it was added behind the ledger's back",
    )


def test_a_node_past_a_level_and_the_append_it_blocks(five, ledger_dir):
    # the 6th event completes node 2 of level 1: put one there first
    edit(ledger_dir, "INSERT INTO tlog_nodes VALUES (1, 2, zeroblob(32))")
    one_line_error(
        five("audit", "verify"),
        "the Merkle tree has a node 2 at level 1, past the 2 that 5 leaves make: it was "
        "added behind the ledger's back",
    )
    one_line_error(
        five("append", "-", input=partner("NLD")),
        "the Merkle tree already holds nodes that events 6 to 6 complete: they were "
        "added behind the ledger's back; nothing was written; run `arms-ledger audit "
        "verify`",
    )
    assert len(json.loads(five("log", "--json").stdout)) == 5


def test_deleted_checkpoints_are_reported(five, ledger_dir):
    assert five("append", "-", input=partner("NLD")).exit_code == 0
    edit(ledger_dir, "DELETE FROM tlog_checkpoints")
    one_line_error(
        five("audit", "verify"),
        f"the checkpoint kept in {ledger_dir / 'checkpoint'} (size 6) is missing from "
        "the store, which keeps every checkpoint this ledger signs: checkpoints were "
        "deleted from it",
    )
