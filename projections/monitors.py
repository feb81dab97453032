"""The overseer's monitors (``ledger.domain.monitors``) over read models: the events of
``audit_log`` handed to the domain's rules, the rows they give, each naming the events
behind it and the checkpoint it was judged at.

The read models of a ledger, of a replay (``--as-of``, ``--known-at``,
``--at-position``) and of a replica built from an export hold the same ``audit_log``
for the same log, so a monitor gives the same answer on each. The CLI and the web view
both call these functions.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from datetime import date, datetime, timedelta
from typing import Any

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import monitors
from arms_ledger.ledger.domain.clock import format_instant, instant, now
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.projections import engine
from arms_ledger.projections.engine import Cut
from arms_ledger.projections.queries import one
from arms_ledger.projections.source import InMemoryLog


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


# --- retroactive changes -------------------------------------------------------------

RETRO_COLUMNS = (
    "position",
    "type",
    "stream",
    "actor",
    "effective_at",
    "recorded_at",
    "rationale",
    "queue_changes",
    "events",
    "earlier_checkpoint",
    "earlier_time",
    "checkpoint",
    "judged_at",
)


def position_at(conn: sqlite3.Connection, time: datetime) -> int:
    """The last log position recorded at or before ``time`` (0: none)."""
    found = one(
        conn,
        "SELECT max(position) AS p FROM audit_log WHERE recorded_at <= ?",
        (format_instant(time),),
    )
    return (found or {}).get("p") or 0


def recorded_time(conn: sqlite3.Connection, position: int) -> datetime | None:
    found = one(conn, "SELECT recorded_at FROM audit_log WHERE position = ?", (position,))
    return instant(found["recorded_at"]) if found else None


def _log(events: list[monitors.Logged]) -> InMemoryLog:
    """The whole log as a reader, from the audit log of read models that hold it all."""
    if any(p != n for n, (p, _) in enumerate(events, start=1)):
        raise LedgerError(
            "retroactive changes need the whole log up to a position: run them on the live "
            "read models or a replica"
        )
    return InMemoryLog(e for _, e in events)


def _queues(log: InMemoryLog, cut: Cut) -> dict[tuple[str, str], int]:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        engine.replay(log, conn, cut)
        return {
            (platform, case): position
            for platform, case, position in conn.execute(
                'SELECT platform, "case", position FROM queue'
            )
        }
    finally:
        conn.close()


def retro(
    conn: sqlite3.Connection,
    earlier: int,
    later: int | None = None,
    earlier_time: datetime | None = None,
) -> list[dict[str, Any]]:
    """The events recorded after log position ``earlier`` up to ``later`` (the head)
    that took effect before the earlier checkpoint's time (``earlier_time``, else the
    recorded time of its last event), each with the queue positions it changed in that
    past: the queues at its effective time as known at the earlier checkpoint and as
    known at the later one."""
    replayed = one(conn, "SELECT as_of FROM projection")
    if replayed and replayed["as_of"]:
        raise LedgerError(
            "retroactive changes need the log as recorded, not a replay --as-of a time: "
            "run them on the live read models or a replica"
        )
    events = logged(conn)
    log = _log(events)
    head = len(events)
    later = head if later is None else later
    for name, value in (("--recorded-from", earlier), ("--recorded-to", later)):
        if value > head:
            raise LedgerError(
                f"the log ends at position {head}; {name} {value} is beyond it"
            )
    if later < earlier:
        raise LedgerError(
            f"--recorded-to (position {later}) is before --recorded-from "
            f"(position {earlier})"
        )
    time = earlier_time or recorded_time(conn, earlier)
    if time is None:  # nothing was published at the earlier checkpoint
        return []
    found = monitors.retroactive(events, earlier, time, later)
    cache: dict[tuple[datetime, int], dict[tuple[str, str], int]] = {}

    def queues(at: datetime, upto: int) -> dict[tuple[str, str], int]:
        if (at, upto) not in cache:
            cache[(at, upto)] = _queues(log, Cut(as_of=at, at_position=upto))
        return cache[(at, upto)]

    checkpoint_fields = {
        "earlier_checkpoint": earlier,
        "earlier_time": format_instant(time),
        "checkpoint": later,
        "judged_at": format_instant(recorded_time(conn, later) or time),
    }
    out = []
    for position, e in found:
        at = instant(e.effective_at or "")
        changes = monitors.moved(queues(at, earlier), queues(at, later))
        out.append(
            {
                "position": position,
                "type": type(e).__name__,
                "stream": e.stream,
                "actor": e.actor,
                "effective_at": e.effective_at,
                "recorded_at": e.recorded_at,
                "rationale": e.rationale,
                "queue_changes": [
                    {"platform": p, "case": c, "before": b, "after": a}
                    for p, c, b, a in changes
                ],
                "events": [position],
            }
            | checkpoint_fields
        )
    return out


def changes_text(row: dict[str, Any]) -> str:
    """A retro row's queue changes as the tables show them: ``f-35a DA-D-F35 4→5``."""
    return "; ".join(
        f"{c['platform']} {c['case']} {c['before'] or '-'}→{c['after'] or '-'}"
        for c in row["queue_changes"]
    )


# --- out-of-sequence deliveries and offers -------------------------------------------

BYPASS_COLUMNS = (
    "code",
    "actor",
    "office",
    "skips",
    "events",
    "checkpoint",
    "judged_at",
)


def bypasses(conn: sqlite3.Connection) -> tuple[Checkpoint, list[dict[str, Any]]]:
    """Deliveries and offers that went past cases waiting ahead in their queue: the
    coded ones and the flagged uncoded ones, by code, actor and office."""
    cp = checkpoint(conn)
    flagged = [
        r[0]
        for r in conn.execute(
            "SELECT event_position FROM event_flags WHERE kind = 'out-of-sequence'"
        )
    ]
    groups = monitors.by_code(monitors.skips(logged(conn), flagged))
    return cp, [
        {
            "code": g.code,
            "actor": g.actor,
            "office": g.office,
            "skips": len(g.positions),
            "events": list(g.positions),
        }
        | cp.fields
        for g in groups
    ]


def bypass_summary(rows: list[dict[str, Any]]) -> str:
    """How many skips, coded and not, and how often "other" was the code."""
    total = sum(r["skips"] for r in rows)
    uncoded = sum(r["skips"] for r in rows if r["code"] == monitors.UNCODED)
    other = sum(r["skips"] for r in rows if r["code"] == "other")
    coded = total - uncoded
    share = f" ({100 * other / coded:.1f}%)" if coded else ""
    return (
        f"{total} skip(s) of a queue: {coded} with a bypass reason, {uncoded} without "
        f'(flagged); "other" in {other} of {coded}{share}'
    )


# --- reconciliation with the public record -------------------------------------------

RECONCILE_COLUMNS = (
    "kind",
    "partner",
    "cases",
    "line",
    "detail",
    "events",
    "checkpoint",
    "judged_at",
)
CSV_FIELDS = ("transmittal", "date", "purchaser", "description", "estimated_value_usd")


def published(conn: sqlite3.Connection, text: str, name: str) -> list[monitors.Published]:
    """The rows of a CSV of public 36(b) notifications (columns ``CSV_FIELDS``, others
    ignored), each purchaser resolved to a partner by its code or its registered name.
    A bad row is one ``LedgerError`` naming its line."""
    names: dict[str, str] = {}
    for code, payload in conn.execute(
        "SELECT substr(stream, 9), payload FROM audit_log WHERE type = 'PartnerRegistered'"
    ):
        names[code.lower()] = code
        names[msgspec.json.decode(payload)["name"].lower()] = code
    reader = csv.DictReader(io.StringIO(text))
    missing = [f for f in CSV_FIELDS if f not in (reader.fieldnames or ())]
    if missing:
        raise LedgerError(
            f"{name} has no column {', '.join(missing)}; the header needs "
            f"{', '.join(CSV_FIELDS)}"
        )
    out = []
    for row in reader:
        line = reader.line_num
        try:
            day = date.fromisoformat((row["date"] or "").strip())
        except ValueError:
            raise LedgerError(
                f"{name} line {line}: date {row['date']!r} is not YYYY-MM-DD"
            ) from None
        value = (row["estimated_value_usd"] or "").strip().replace(",", "")
        if not value.isdigit():
            raise LedgerError(
                f"{name} line {line}: estimated_value_usd {row['estimated_value_usd']!r} "
                "is not a whole number of dollars"
            )
        purchaser = (row["purchaser"] or "").strip()
        out.append(
            monitors.Published(
                line,
                (row["transmittal"] or "").strip() or None,
                day,
                names.get(purchaser.lower()),
                purchaser,
                (row["description"] or "").strip(),
                int(value),
            )
        )
    return out


def reconcile(
    conn: sqlite3.Connection, text: str, name: str
) -> tuple[Checkpoint, int, list[dict[str, Any]]]:
    """The findings of reconciling the ledger with a CSV of public notifications, and
    of threshold splitting; and how many published rows matched exactly."""
    cp = checkpoint(conn)
    rows = published(conn, text, name)
    h = monitors.fold(logged(conn), cp.time)
    found = monitors.reconcile(h, rows)
    unmatched = sum(f.line is not None for f in found)
    return (
        cp,
        len(rows) - unmatched,
        [
            {
                "kind": f.kind,
                "partner": f.partner,
                "cases": list(f.cases),
                "line": f.line,
                "detail": f.detail,
                "events": list(f.positions),
            }
            | cp.fields
            for f in (*found, *monitors.splitting(h))
        ],
    )


# --- the public registers ------------------------------------------------------------

REGISTER_FORMATS = ("sipri", "unroca")


def register(conn: sqlite3.Connection, fmt: str) -> tuple[Checkpoint, list[dict[str, Any]]]:
    """Orders and deliveries in the shape of the SIPRI trade register or the UN Register."""
    cp = checkpoint(conn)
    events = logged(conn)
    h = monitors.fold(events, cp.time)
    build = monitors.sipri_register if fmt == "sipri" else monitors.unroca_register
    return cp, [
        r.fields | {"events": list(r.positions)} | cp.fields for r in build(events, h)
    ]
