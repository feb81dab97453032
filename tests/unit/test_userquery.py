"""A user's query reads the read models and does nothing else (no ledger needed)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.projections import userquery


@pytest.fixture
def conn(tmp_path: Path):
    db = sqlite3.connect(tmp_path / "projections.db", isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("CREATE TABLE partners (partner TEXT, score REAL)")
    db.execute("INSERT INTO partners VALUES ('POL', 0.75)")
    yield db
    db.close()


def refusal(conn, sql: str) -> str:
    with pytest.raises(LedgerError) as caught:
        userquery.run(conn, sql)
    return str(caught.value)


def test_a_select_and_a_recursive_query_read(conn):
    assert userquery.run(
        conn, "SELECT * FROM partners WHERE partner = :p", {"p": "POL"}
    ) == [{"partner": "POL", "score": 0.75}]
    found = userquery.run(
        conn,
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) "
        "SELECT count(*) AS n FROM r",
    )
    assert found == [{"n": 3}]
    assert userquery.run(conn, "PRAGMA table_info(partners)")[0]["name"] == "partner"


def test_attach_creates_no_file(conn, tmp_path):
    target = tmp_path / "elsewhere.db"
    assert refusal(conn, f"ATTACH DATABASE '{target}' AS x").startswith(
        f"the query was refused: attach {target} is not allowed"
    )
    assert not target.exists()


@pytest.mark.parametrize(
    ("sql", "what"),
    [
        ("PRAGMA journal_mode = DELETE", "pragma journal_mode"),
        ("PRAGMA query_only = OFF", "pragma query_only"),
        ("SELECT fts3_tokenizer('simple')", "function fts3_tokenizer"),
        ("SELECT load_extension('/tmp/x')", "function load_extension"),
        ("DELETE FROM partners", "delete partners"),
        ("UPDATE partners SET score = 1", "update partners"),
        ("INSERT INTO partners VALUES ('X', 1)", "insert partners"),
        ("DROP TABLE partners", "delete sqlite_master"),
        ("BEGIN", "transaction BEGIN"),
    ],
)
def test_what_would_write_or_reach_outside_is_refused_in_one_line(conn, sql, what):
    assert refusal(conn, sql) == (
        f"the query was refused: {what} is not allowed (queries only read the read "
        "models: SELECT, WITH, and functions that compute)"
    )
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("SELECT count(*) FROM partners").fetchone() == (1,)


def test_a_mistake_is_one_line_too(conn):
    assert refusal(conn, "SELECT * FROM nope") == "the query failed: no such table: nope"
    assert refusal(conn, "SELECT 1; SELECT 2") == (
        "the query failed: You can only execute one statement at a time."
    )


def test_the_connection_is_itself_again_after(conn):
    userquery.run(conn, "SELECT 1")
    conn.execute("INSERT INTO partners VALUES ('JPN', 0.5)")  # the projector still writes
