"""What if a proposed priority policy were adopted: the queues before and after.

``compare`` builds the read models of a cut of the log as a replay does (into a
temporary file, from the log through the ``LogReader``), takes every queue (before),
applies the proposal as one more ``PriorityPolicyAdopted`` to the same projector, and
takes the queues again (after). Every score, tier, position and estimated completion
comes from the projector and ``ledger.domain.priority``, as for an adopted policy;
nothing is written to the ledger or its read models.

The proposal takes effect at the cut's time (``--as-of``, else ``--known-at``), else at
the latest effective time of the events replayed: the latest time at which appending it
for real would put it in force after everything the log holds (a policy is in force
from its ``effective_at``, ties going to the later in the log). A proposal that is not
a valid policy is refused by the ledger's own rule (``rules.decide``).
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import format_instant, instant
from arms_ledger.ledger.domain.intake import normalize
from arms_ledger.ledger.domain.priority import Entry, score
from arms_ledger.ledger.domain.rules import decide
from arms_ledger.ledger.domain.stability import Stability, Vector, analyse
from arms_ledger.ledger.domain.streams import Stream
from arms_ledger.ledger.errors import LedgerError, storage
from arms_ledger.projections import queries, schema
from arms_ledger.projections.engine import PROJECTIONS_DB, REPLAY_SPACE, replay
from arms_ledger.projections.projector import Projector
from arms_ledger.projections.runner import Cut, connect
from arms_ledger.projections.source import LogReader

CASE_COLUMNS = (
    "platform",
    "case",
    "partner",
    "position_before",
    "position_after",
    "moved",
    "tier_before",
    "tier_after",
    "score_before",
    "score_after",
    "est_completion_before",
    "est_completion_after",
)
PARTNER_COLUMNS = ("partner", "cases", "moved_up", "moved_down", "net_moved")


class WhatIf(NamedTuple):
    """The outcome: the proposal as applied, and the rows of the comparison."""

    proposal: ev.PriorityPolicyAdopted  # normalized: effective_at and recorded_at set
    in_force: str | None  # the policy in force before (its id), None if none
    cases: list[dict]  # CASE_COLUMNS, by platform, position after, case
    partners: list[dict]  # PARTNER_COLUMNS, by partner


def proposal_hash(proposal: ev.PriorityPolicyAdopted) -> str:
    """sha256 of the proposal's canonical msgspec JSON, without the times the cut gives
    it (``effective_at``, ``recorded_at``): the same proposal has one hash."""
    bare = msgspec.structs.replace(proposal, effective_at=None, recorded_at=None)
    return hashlib.sha256(ev.encoder.encode(bare)).hexdigest()


class _NoWorld:
    """The world a policy's decision sees: it reads no other stream (the read side
    holds no write-side ``World``)."""

    def stream(self, key: str) -> Stream:
        return Stream(key=key)

    def thresholds_at(self, when: datetime) -> ev.Thresholds:
        return ev.DEFAULT_THRESHOLDS


def check(proposal: ev.PriorityPolicyAdopted) -> None:
    """Refuse a proposal the ledger would refuse (``rules.decide``, one line)."""
    decide(proposal, Stream(key=f"policy:{proposal.policy}"), _NoWorld())


Propose = Callable[[ev.PriorityPolicyAdopted | None], ev.PriorityPolicyAdopted]


def compare(
    log: LogReader, cut: Cut, propose: Propose, platform: str | None = None
) -> WhatIf:
    """The queues of the cut under the policy in force and under the proposal that
    ``propose`` makes of the policy in force (None before any)."""
    with _replayed(log, cut) as (conn, projector, upto):
        if platform is not None:
            queries.platform_exists(conn, platform)
        current = projector.policies.in_force
        proposal = propose(current)
        check(proposal)
        in_force = None if current is None else current.policy
        before = _queues(conn, platform)
        time = cut.as_of or cut.known_at or _last_effective(conn)
        applied = normalize(
            msgspec.structs.replace(proposal, effective_at=format_instant(time)), time
        )
        assert isinstance(applied, ev.PriorityPolicyAdopted)
        key = f"policy:{applied.policy}"
        version = (
            1
            + conn.execute(
                "SELECT count(*) FROM audit_log WHERE stream = ?", (key,)
            ).fetchone()[0]
        )
        conn.execute("BEGIN")
        projector.apply_event(upto + 1, key, version, applied)
        projector.flush(conn, upto + 1)
        conn.execute("COMMIT")
        after = _queues(conn, platform)
    cases = _case_rows(before, after)
    return WhatIf(applied, in_force, cases, _partner_rows(cases))


@contextmanager
def _replayed(
    log: LogReader, cut: Cut
) -> Iterator[tuple[sqlite3.Connection, Projector, int]]:
    """A replay of the cut into a temporary file, its projector, and the last position
    it read."""
    workdir = Path(tempfile.mkdtemp(prefix="arms-ledger-whatif-"))
    try:
        with storage(f"the what-if's read models in {workdir}", REPLAY_SPACE):
            conn = connect(workdir / PROJECTIONS_DB)
            try:
                head = log.head()
                projector = Projector(as_of=cut.as_of)
                replay(log, conn, cut, projector)
                upto = head if cut.at_position is None else cut.at_position
                yield conn, projector, upto
            finally:
                conn.close()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _last_effective(conn: sqlite3.Connection) -> datetime:
    """The latest effective time of the events replayed (canonical texts vary in width,
    so the candidates of the latest second are compared as instants)."""
    found = conn.execute(
        "SELECT effective_at FROM audit_log WHERE substr(effective_at, 1, 19) = "
        "(SELECT max(substr(effective_at, 1, 19)) FROM audit_log)"
    ).fetchall()
    if not found:
        raise LedgerError("the log selected is empty: there are no queues to compare")
    return max(instant(text) for (text,) in found)


def _queues(conn: sqlite3.Connection, platform: str | None) -> dict[tuple[str, str], dict]:
    """(platform, case): its queue row, for one platform or every one."""
    names = (
        [platform]
        if platform is not None
        else [r["platform"] for r in queries.rows(conn, "SELECT platform FROM platforms")]
    )
    return {(p, r["case"]): r for p in names for r in queries.queue(conn, p)}


def _case_rows(
    before: dict[tuple[str, str], dict], after: dict[tuple[str, str], dict]
) -> list[dict]:
    """One row per queued case; ``moved`` is positions gained (up is positive)."""
    assert before.keys() == after.keys(), "a policy changes no queue's membership"
    out = []
    for (platform, case), old in before.items():
        new = after[platform, case]
        out.append(
            {
                "platform": platform,
                "case": case,
                "partner": old["partner"],
                "position_before": old["position"],
                "position_after": new["position"],
                "moved": old["position"] - new["position"],
                "tier_before": old["tier"],
                "tier_after": new["tier"],
                "score_before": old["score"],
                "score_after": new["score"],
                "est_completion_before": old["est_completion_months"],
                "est_completion_after": new["est_completion_months"],
            }
        )
    out.sort(key=lambda r: (r["platform"], r["position_after"], r["case"]))
    return out


def _partner_rows(cases: list[dict]) -> list[dict]:
    """Per partner: its queued cases, how many moved up or down, the sum of moves."""
    found: dict[str, dict] = {}
    for row in cases:
        p = found.setdefault(
            row["partner"],
            {"partner": row["partner"], "cases": 0, "moved_up": 0, "moved_down": 0},
        )
        p["cases"] += 1
        p["moved_up"] += row["moved"] > 0
        p["moved_down"] += row["moved"] < 0
        p["net_moved"] = p.get("net_moved", 0) + row["moved"]
    return [found[k] for k in sorted(found)]


def stability(
    conn: sqlite3.Connection,
    platform: str,
    policy: ev.PriorityPolicyAdopted | None = None,
    in_force: bool = True,
    top: int = 1,
) -> Stability:
    """The stability of a platform's queue (``ledger.domain.stability``) under the
    policy in force in these read models, or under ``policy`` (with ``in_force``
    False: a proposal, whose order the analysis computes from the same facts)."""
    chosen = queries.adopted(conn) if in_force else policy
    queries.platform_exists(conn, platform)
    queued = queries.typed(
        schema.QUEUE,
        queries.rows(
            conn, "SELECT * FROM queue WHERE platform = ? ORDER BY position", (platform,)
        ),
    )
    facts = {
        r["partner"]: r
        for r in queries.rows(
            conn,
            "SELECT partner, pct_gdp, strategic, economic_usd FROM partners "
            "WHERE partner IN (SELECT partner FROM queue WHERE platform = ?)",
            (platform,),
        )
    }
    scores = {
        partner: score(r["pct_gdp"], r["strategic"], r["economic_usd"], chosen)
        for partner, r in facts.items()
    }
    components: dict[str, Vector] = {
        partner: (s.investment, s.strategic, s.economic) for partner, s in scores.items()
    }
    entries = [
        Entry(
            r["case"],
            r["partner"],
            r["priority_class"],
            r["override"],
            scores[r["partner"]].tier,
            scores[r["partner"]].score,
            r["filed_at"],
            instant(r["filed_at"]),
            r["stage"],
            r["quantity_left"],
        )
        for r in queued
    ]
    return analyse(entries, components, chosen, top)
