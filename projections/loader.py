"""Where the projector's state comes from when it is not in memory yet.

``Nothing`` when building from the first event; ``Stored`` when catching up an existing
projection: the rows of the projection database and the few events of the log that set
them, as of the position reached (through a ``source.LogReader``). ``Ended`` is where a
rebuild puts the cases that ended aside.

What a catch-up loads does not grow with the log: a partner comes back from its row and
the few events that set its facts (not its whole stream), and a partner event that moves
none of its cases in a queue rewrites their rows in place without loading the queue.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from arms_ledger.ledger.domain.priority import completion_months, sort_key
from arms_ledger.projections import schema
from arms_ledger.projections.partners import POSITIONS, PartnerState
from arms_ledger.projections.queue import QueueRow, resorted, runs_of
from arms_ledger.projections.source import LogReader, Recorded

POLICY_TYPES = ("PriorityPolicyAdopted", "NotificationThresholdsSet")
QUEUE_COLUMNS = ", ".join(f'"{c}"' for c in schema.QUEUE.names)
assert QueueRow._fields == tuple(schema.QUEUE.names), "QueueRow is the queue table's row"

# A partner's new sort fields in force: (override, tier, score).
SortFields = tuple[bool, int, float]


class Loader(Protocol):
    """Where state not yet in memory comes from."""

    def stream(self, key: str) -> Iterable[Recorded]: ...

    def partner(self, code: str) -> PartnerState: ...

    def policy_events(self) -> Iterable[Recorded]: ...

    def queue(self, platform: str) -> list[QueueRow]: ...

    def partner_queued(self, partner: str) -> dict[str, str]: ...

    def partners(self) -> list[str]: ...

    def queued_platforms(self) -> list[str]: ...

    def rescore_in_place(
        self,
        platform: str,
        cases: list[str],
        fields: SortFields,
        mode: str,
        units_per_month: Callable[[], float | None],
    ) -> list[tuple] | None: ...

    def next_change_id(self) -> int: ...

    def case_numbers(self, cases: list[str]) -> dict[str, int]: ...

    def next_case_number(self, base: int, last: int) -> int: ...


class Nothing:
    """The loader of a projection built from the first event: there is nothing yet."""

    def stream(self, key: str) -> Iterable[Recorded]:
        return ()

    def partner(self, code: str) -> PartnerState:
        return PartnerState(code)

    def policy_events(self) -> Iterable[Recorded]:
        return ()

    def queue(self, platform: str) -> list[QueueRow]:
        return []

    def partner_queued(self, partner: str) -> dict[str, str]:
        return {}

    def partners(self) -> list[str]:
        return []

    def queued_platforms(self) -> list[str]:
        return []

    def rescore_in_place(
        self,
        platform: str,
        cases: list[str],
        fields: SortFields,
        mode: str,
        units_per_month: Callable[[], float | None],
    ) -> list[tuple] | None:
        return None

    def next_change_id(self) -> int:
        return 1

    def case_numbers(self, cases: list[str]) -> dict[str, int]:
        return {}

    def next_case_number(self, base: int, last: int) -> int:
        return base + 1


class Rescore:
    """A partner's new sort fields, applied to the queue rows of its cases."""

    def __init__(self, fields: SortFields, mode: str):
        self.override, self.tier, self.score = fields
        self.mode = mode
        self.scored = mode == "scored"

    def key(self, row: QueueRow) -> tuple:
        """The row's sort key as stored."""
        return sort_key(row.entry(), self.mode)

    def new_key(self, row: QueueRow) -> tuple:
        entry = row.entry()._replace(
            override=self.override, tier=self.tier, score=self.score
        )
        return sort_key(entry, self.mode)

    def row(self, row: QueueRow) -> QueueRow:
        return row._replace(
            override=self.override,
            tier=self.tier if self.scored else None,
            score=self.score if self.scored else None,
        )


class Stored:
    """Loads state as of ``position`` from the log and the projection database."""

    def __init__(self, log: LogReader, conn: sqlite3.Connection, position: int):
        self.log, self.conn, self.position = log, conn, position

    def stream(self, key: str) -> Iterable[Recorded]:
        return self.log.stream(key, upto=self.position)

    def partner(self, code: str) -> PartnerState:
        """From its row and the few events that set its facts: a partner's stream grows
        with the log (spending reports, contributions), this does not."""
        row = self.conn.execute(
            f"SELECT {', '.join(POSITIONS)}, economic_usd, economic_contributions "
            "FROM partners WHERE partner = ?",
            (code,),
        ).fetchone()
        if row is None:  # no event of it yet
            return PartnerState(code)
        positions = tuple(row[:-2])
        events = self.log.at(sorted({p for p in positions if p is not None}))
        return PartnerState.restore(code, positions, (row[-2], row[-1]), events)

    def policy_events(self) -> Iterable[Recorded]:
        return self.log.of_types(POLICY_TYPES, upto=self.position)

    def queue(self, platform: str) -> list[QueueRow]:
        return self._queue_rows("platform = ?", [platform])

    def _queue_rows(self, where: str, params: Sequence) -> list[QueueRow]:
        rows = self.conn.execute(
            f"SELECT {QUEUE_COLUMNS} FROM queue WHERE {where} ORDER BY position", params
        )
        return list(map(QueueRow._make, rows))

    def partner_queued(self, partner: str) -> dict[str, str]:
        return dict(
            self.conn.execute(
                'SELECT "case", platform FROM queue WHERE partner = ?', (partner,)
            ).fetchall()
        )

    def partners(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT partner FROM partners")]

    def queued_platforms(self) -> list[str]:
        return [r[0] for r in self.conn.execute("SELECT DISTINCT platform FROM queue")]

    def rescore_in_place(
        self,
        platform: str,
        cases: list[str],
        fields: SortFields,
        mode: str,
        units_per_month: Callable[[], float | None],
    ) -> list[tuple] | None:
        """A partner's new sort ``fields`` for its ``cases`` in a queue that is not
        loaded, applied to the stored rows directly: the rows that change are written
        now (later loads in this transaction read them), and the queue changes are
        returned as ``Queue.end_runs`` would give them (without its prefix). None,
        changing nothing, if the stored rows lack a case: the caller loads the queue.

        Usually none of them passes a neighbour: then only their own rows change, and
        that is all this reads. Otherwise it reads the queue's rows and re-sorts them
        (``queue.resorted``); only the rows between the first and last place that
        changed are rewritten.
        """
        marks = ", ".join("?" for _ in cases)
        own = self._queue_rows(f'"case" IN ({marks})', cases)
        if len(own) != len(cases):
            return None
        rescore = Rescore(fields, mode)
        if self._none_passes(platform, own, rescore):
            self._write([new for new in map(rescore.row, own) if new not in own])
            return []
        rows = self.queue(platform)
        mine = set(cases)
        others = [r for r in rows if r.case not in mine]
        order = resorted(others, own, rescore.key, rescore.new_key)
        changes, updates = _renumbered(order, rows, own, rescore, units_per_month)
        self._write(updates)
        changes.sort(key=lambda c: (c[3], c[2]))
        return runs_of(changes)

    def next_change_id(self) -> int:
        """The id the next queue_changes row gets: one past the last move or the last
        case of the last run of shifts."""
        found = self.conn.execute(
            "SELECT max(coalesce((SELECT max(id) FROM queue_moves), 0), "
            "coalesce((SELECT id + cases - 1 FROM queue_shifts ORDER BY id DESC LIMIT 1), "
            "0))"
        ).fetchone()
        return found[0] + 1

    def case_numbers(self, cases: list[str]) -> dict[str, int]:
        """The numbers (queue_cases) of those of ``cases`` that were in a queue."""
        found: dict[str, int] = {}
        for start in range(0, len(cases), 500):
            chunk = cases[start : start + 500]
            marks = ", ".join("?" for _ in chunk)
            found.update(
                self.conn.execute(
                    f'SELECT "case", number FROM queue_cases WHERE "case" IN ({marks})',
                    chunk,
                ).fetchall()
            )
        return found

    def next_case_number(self, base: int, last: int) -> int:
        """The next number of a platform's queue, whose numbers are base + 1 .. last."""
        found = self.conn.execute(
            "SELECT max(number) FROM queue_cases WHERE number > ? AND number <= ?",
            (base, last),
        ).fetchone()
        return (found[0] or base) + 1

    def _none_passes(self, platform: str, own: list[QueueRow], rescore: Rescore) -> bool:
        """Each block of the partner's cases in a row stays between its neighbours."""
        at = {r.position for r in own}
        neighbour = f"SELECT {QUEUE_COLUMNS} FROM queue WHERE platform = ? AND position = ?"
        for row in own:
            k = rescore.new_key(row)
            for other_at, ahead in ((row.position - 1, True), (row.position + 1, False)):
                if other_at in at:
                    continue
                found = self.conn.execute(neighbour, (platform, other_at)).fetchone()
                if found is None:
                    continue
                other = rescore.key(QueueRow._make(found))
                if (other >= k) if ahead else (other <= k):
                    return False
        return True

    def _write(self, rows: list[QueueRow]) -> None:
        self.conn.executemany(schema.upsert_sql(schema.QUEUE), rows)


def _renumbered(
    order: list[tuple[QueueRow, bool]],
    rows: list[QueueRow],
    own: list[QueueRow],
    rescore: Rescore,
    units_per_month: Callable[[], float | None],
) -> tuple[list[tuple], list[QueueRow]]:
    """The changes (case, kind, old, new) and the rows to write of a queue re-sorted
    into ``order``: positions and cumulative quantities change only between the first
    and the last place one of the partner's cases left or took."""
    moved = [p for p, (r, _) in enumerate(order, start=1) if r.position != p]
    lo, hi = (moved[0], moved[-1]) if moved else (1, 0)
    cumulative = rows[lo - 2].cumulative_quantity if lo > 1 else 0
    units = units_per_month() if moved else None
    mine = {r.case for r in own}
    updates = [
        new
        for new in map(rescore.row, own)
        if not lo <= new.position <= hi and new not in own
    ]
    changes = []
    for position in range(lo, hi + 1):
        stored, own_key_changed = order[position - 1]
        cumulative += stored.quantity_left
        if stored.position != position:
            kind = "moved" if own_key_changed else "shifted"
            changes.append((stored.case, kind, stored.position, position))
        row = rescore.row(stored) if stored.case in mine else stored
        new = row._replace(
            position=position,
            cumulative_quantity=cumulative,
            est_completion_months=completion_months(cumulative, units),
        )
        if new != stored:
            updates.append(new)
    return changes, updates


class Ended:
    """Cases put aside, packed (``CaseView.pack``), in a private temporary SQLite file
    (deleted when closed): {case: packed}."""

    def __init__(self) -> None:
        self.conn = sqlite3.connect("", isolation_level=None)  # "": a temporary file
        self.conn.execute("PRAGMA journal_mode = OFF")
        self.conn.execute("PRAGMA synchronous = OFF")
        self.conn.execute(
            'CREATE TABLE ended ("case" TEXT PRIMARY KEY, packed BLOB) WITHOUT ROWID'
        )

    def put(self, items: list[tuple[str, bytes]]) -> None:
        self.conn.executemany("INSERT OR REPLACE INTO ended VALUES (?, ?)", items)

    def get(self, case: str) -> bytes | None:
        row = self.conn.execute(
            'SELECT packed FROM ended WHERE "case" = ?', (case,)
        ).fetchone()
        return None if row is None else row[0]

    def close(self) -> None:
        self.conn.close()
