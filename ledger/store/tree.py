"""The stored Merkle tree and checkpoints: their tables and SQL, over a DB-API cursor.

The perfect subtrees of the RFC 9162 tree (``transparency.merkle``), one row each in
``tlog_nodes`` beside the events, written in the same transaction as the events they
cover: appending k events hashes O(k) nodes and reads O(log n). Checkpoints (C2SP signed
notes) in ``tlog_checkpoints``, kept forever, one per tree size and key. The formats and
the verification are ``transparency.tlog``'s; this module is the engine-neutral SQL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from arms_ledger.ledger import progress as reporting
from arms_ledger.ledger.domain.clock import format_instant, now
from arms_ledger.ledger.transparency import merkle
from arms_ledger.ledger.transparency.cosignature import CosignerKey
from arms_ledger.ledger.transparency.merkle import Node
from arms_ledger.ledger.transparency.note import Verifier
from arms_ledger.ledger.transparency.tlog import StoredCheckpoint, TamperedError, leaf_line

NODES = "tlog_nodes"
CHECKPOINTS = "tlog_checkpoints"

CREATE_STATEMENTS = [
    (
        f"CREATE TABLE IF NOT EXISTS {NODES} ("
        "level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, "
        "PRIMARY KEY (level, idx)) WITHOUT ROWID"
    ),
    (
        f"CREATE TABLE IF NOT EXISTS {CHECKPOINTS} ("
        "id INTEGER PRIMARY KEY, size INTEGER NOT NULL, note TEXT NOT NULL, "
        "verifier TEXT NOT NULL, stored_at TEXT NOT NULL, UNIQUE (size, verifier))"
    ),
]


class StoredTree:
    """The SQL of the tree and checkpoint tables, over a DB-API cursor.

    ``param`` is the driver's placeholder (``?`` for sqlite3, ``%s`` for psycopg);
    ``schema`` qualifies the table names (PostgreSQL).
    """

    def __init__(self, param: str = "?", schema: str = ""):
        self.p = param
        self.nodes_table = f"{schema}.{NODES}" if schema else NODES
        self.checkpoints_table = f"{schema}.{CHECKPOINTS}" if schema else CHECKPOINTS

    def size(self, c: Any) -> int:
        c.execute(
            f"SELECT idx FROM {self.nodes_table} WHERE level = 0 ORDER BY idx DESC LIMIT 1"
        )
        row = c.fetchone()
        return 0 if row is None else row[0] + 1

    def nodes(self, c: Any, wanted: Sequence[Node]) -> dict[Node, bytes]:
        if not wanted:
            return {}
        # OR of primary-key lookups: SQLite scans the table for (level, idx) IN (VALUES …)
        where = " OR ".join([f"(level = {self.p} AND idx = {self.p})"] * len(wanted))
        c.execute(
            f"SELECT level, idx, hash FROM {self.nodes_table} WHERE {where}",
            [x for n in wanted for x in n],
        )
        found = {Node(row[0], row[1]): bytes(row[2]) for row in c.fetchall()}
        missing = [n for n in wanted if n not in found]
        if missing:
            level, index = missing[0]
            raise TamperedError(
                f"the Merkle tree has no node at level {level}, index {index}; "
                "run `arms-ledger audit verify`"
            )
        return found

    def extend(
        self, c: Any, positions: Sequence[int], states: Sequence[bytes]
    ) -> merkle.Builder:
        """Add the leaves of newly inserted events (at ``positions``) to the tree."""
        size = self.size(c)
        expected = list(range(size + 1, size + 1 + len(positions)))
        if list(positions) != expected:
            raise TamperedError(
                f"the Merkle tree has {size} leaves but the new events are at positions "
                f"{positions[0]}…{positions[-1]}: the event store was changed behind the "
                "ledger's back; run `arms-ledger audit verify`"
            )
        frontier = merkle.frontier_nodes(size)
        stored = self.nodes(c, frontier)
        builder = merkle.Builder(size, [stored[n] for n in frontier])
        rows: list[tuple[int, int, bytes]] = []
        leaf = merkle.leaf_hash  # looked up once (a test counts the hashes through it)
        pairs = list(zip(positions, states, strict=True))
        for start in range(0, len(pairs), 1000):  # the progress told every 1,000
            chunk = pairs[start : start + 1000]
            rows.extend(builder.add_all([leaf(leaf_line(p, s)) for p, s in chunk]))
            if len(chunk) == 1000:
                reporting.advance(1000)
        try:
            c.executemany(
                f"INSERT INTO {self.nodes_table} (level, idx, hash) "
                f"VALUES ({self.p}, {self.p}, {self.p})",
                rows,
            )
        except Exception as error:
            # SQLite's, psycopg's or the library's: a node already there is no conflict
            # between writers (they hold the write lock), it was put there by hand.
            if not any(k.__name__ == "IntegrityError" for k in type(error).__mro__):
                raise
            raise TamperedError(
                f"the Merkle tree already holds nodes that events {positions[0]} to "
                f"{positions[-1]} complete: they were added behind the ledger's back; "
                "nothing was written; run `arms-ledger audit verify`"
            ) from None
        return builder

    def store_checkpoint(
        self, c: Any, note: str, size: int, verifier: Verifier | CosignerKey
    ) -> None:
        p = self.p
        c.execute(
            f"INSERT INTO {self.checkpoints_table} (size, note, verifier, stored_at) "
            f"VALUES ({p}, {p}, {p}, {p}) ON CONFLICT (size, verifier) DO NOTHING",
            (size, note, str(verifier), format_instant(now())),
        )

    def checkpoints(self, c: Any) -> list[StoredCheckpoint]:
        c.execute(
            f"SELECT id, size, note, verifier FROM {self.checkpoints_table} ORDER BY id"
        )
        return [StoredCheckpoint(*row) for row in c.fetchall()]

    def latest_checkpoint(self, c: Any, verifier: str) -> StoredCheckpoint | None:
        c.execute(
            f"SELECT id, size, note, verifier FROM {self.checkpoints_table} "
            f"WHERE verifier = {self.p} ORDER BY id DESC LIMIT 1",
            (verifier,),
        )
        row = c.fetchone()
        return None if row is None else StoredCheckpoint(*row)
