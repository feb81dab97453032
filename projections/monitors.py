"""The overseer's monitors (``ledger.domain.monitors``) over read models: the events of
``audit_log`` handed to the domain's rules, the rows they give, each naming the events
behind it and the checkpoint it was judged at.

The read models of a ledger, of a replay (``--as-of``, ``--known-at``,
``--at-position``) and of a replica built from an export hold the same ``audit_log``
for the same log, so a monitor gives the same answer on each. The CLI and the web view
both call these functions.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Any

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import monitors
from arms_ledger.ledger.domain.clock import format_instant, instant, now
from arms_ledger.projections.queries import one


def logged(conn: sqlite3.Connection) -> list[monitors.Logged]:
    """Every event of the read models' audit log with its position, in log order."""
    out = []
    for row in conn.execute(
        "SELECT position, type, actor, rationale, reference, effective_at, recorded_at, "
        "idempotency_key, payload FROM audit_log ORDER BY position"
    ):
        fields = msgspec.json.decode(row[8])
        fields.update(
            type=row[1],
            actor=row[2],
            rationale=row[3],
            reference=row[4],
            effective_at=row[5],
            recorded_at=row[6],
            idempotency_key=row[7],
        )
        out.append((row[0], msgspec.convert(fields, ev.LedgerEvent)))
    return out


class Checkpoint(msgspec.Struct, frozen=True):
    """What a monitor judged: the log up to ``position`` (the tree size of a signed
    checkpoint of it), at ``time``."""

    position: int
    time: datetime

    @property
    def fields(self) -> dict[str, Any]:
        return {"checkpoint": self.position, "judged_at": format_instant(self.time)}


def checkpoint(conn: sqlite3.Connection) -> Checkpoint:
    """The log position the read models reached, and the time they are judged at: a
    replay's own time, else now."""
    found = one(conn, "SELECT position, time FROM projection")
    position = found["position"] if found else 0
    time = found["time"] if found and found["time"] else None
    return Checkpoint(position, instant(time) if time else now().replace(microsecond=0))


def _events(positions: tuple[int, ...]) -> str:
    return " ".join(f"#{p}" for p in positions)


# --- statutory clocks ---------------------------------------------------------------

DEADLINE_COLUMNS = (
    "status",
    "due",
    "kind",
    "case",
    "partner",
    "platform",
    "detail",
    "events",
    "checkpoint",
    "judged_at",
)


def deadlines(
    conn: sqlite3.Connection, within_days: int | None = None
) -> tuple[Checkpoint, list[dict[str, Any]]]:
    """What is overdue, and what falls due (within ``within_days``), at the read models'
    checkpoint."""
    cp = checkpoint(conn)
    within = None if within_days is None else timedelta(days=within_days)
    found = monitors.deadlines(logged(conn), cp.time, within)
    return cp, [
        {
            "status": j.status,
            "due": format_instant(j.deadline.due),
            "kind": j.deadline.kind,
            "case": j.deadline.case,
            "partner": j.deadline.partner,
            "platform": j.deadline.platform,
            "detail": j.deadline.detail,
            "events": list(j.deadline.positions),
        }
        | cp.fields
        for j in found
    ]


def events_text(row: dict[str, Any]) -> str:
    """A row's events as the tables show them: ``#12 #40``."""
    return _events(tuple(row["events"]))
