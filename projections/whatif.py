"""What if a proposal were adopted: the queues before and after, and how stable they are.

``compare`` builds the read models of a cut of the log as a replay does (into a
temporary file, from the log through the ``LogReader``), takes every queue (before),
applies the proposal (a ``PriorityPolicyAdopted``, other proposed events, or both) to
the same projector as the next events of the log, and takes the queues again (after).
Every score, tier, position and estimated completion comes from the projector and
``ledger.domain.priority``, as for adopted events; nothing is written to the ledger or
its read models.

The proposal takes effect at the cut's time (``--as-of``, else ``--known-at``), else at
the latest effective time of the events replayed: the latest time at which appending it
for real would put it in force after everything the log holds (a fact is in force from
its ``effective_at``, ties going to the later in the log). Each proposed event is
decided by the ledger's own rules (``rules.decide``) against the streams the cut holds
and the proposed events before it, as an append would decide it.

``stability`` is ``ledger.domain.stability`` over a queue of the read models.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any, NamedTuple

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.authority import DIRECTORY
from arms_ledger.ledger.domain.clock import format_instant, instant
from arms_ledger.ledger.domain.facts import holds_at
from arms_ledger.ledger.domain.intake import complete_correction, normalize
from arms_ledger.ledger.domain.priority import Entry, score
from arms_ledger.ledger.domain.records import Recorded
from arms_ledger.ledger.domain.rules import decide
from arms_ledger.ledger.domain.stability import (
    COMPONENTS,
    Stability,
    Vector,
    analyse,
    region,
)
from arms_ledger.ledger.domain.streams import Stream, fold
from arms_ledger.ledger.domain.world import Overlay
from arms_ledger.ledger.errors import BatchRefused, Invalid, LedgerError, storage
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
PARTNER_COLUMNS = (
    "partner",
    "cases",
    "moved_up",
    "moved_down",
    "net_moved",
    "entered",
    "left",
)


PROPOSER = "whatif"  # the actor and default policy id of a proposal
RATIONALE = "a what-if proposal, not adopted"


class WhatIf(NamedTuple):
    """The outcome: the proposal as applied, and the rows of the comparison."""

    policy: ev.PriorityPolicyAdopted | None  # the policy proposed, None if none
    proposed: list[ev.Event]  # everything proposed, as applied (the policy first)
    in_force: str | None  # the policy in force before (its id), None if none
    cases: list[dict]  # CASE_COLUMNS, by platform, position after, case
    partners: list[dict]  # PARTNER_COLUMNS, by partner


def from_options(given: dict[str, Any]) -> Propose:
    """The proposal the options make of the policy in force: what is not given is the
    policy in force's (the defaults before any); the mode is ``scored`` unless given."""

    def propose(current: ev.PriorityPolicyAdopted | None) -> ev.PriorityPolicyAdopted:
        base = current or ev.PriorityPolicyAdopted(
            actor=PROPOSER, policy=PROPOSER, mode="scored"
        )
        weights = msgspec.structs.asdict(base.weights)
        if given["weights"] is not None:
            weights = dict(zip(weights, given["weights"], strict=True))
        weights |= {k: given[k] for k in weights if given[k] is not None}
        targets = msgspec.structs.asdict(base.targets)
        targets |= {k: given[k] for k in targets if given[k] is not None}
        tiers = msgspec.structs.asdict(base.tiers)
        tiers |= {k: given[k] for k in tiers if given[k] is not None}
        fields = {
            "policy": given["policy"] or PROPOSER,
            "mode": given["mode"] or "scored",
            "name": given["name"],
            "weights": weights,
            "targets": targets,
            "tiers": tiers,
        }
        return convert({k: v for k, v in fields.items() if v is not None}, "the options")

    return propose


def convert(fields: dict[str, Any], where: str) -> ev.PriorityPolicyAdopted:
    fields = {"actor": PROPOSER, "policy": PROPOSER, "rationale": RATIONALE} | fields
    try:
        proposal = msgspec.convert(fields, ev.PriorityPolicyAdopted)
    except msgspec.ValidationError as error:
        raise Invalid(f"{where}: not a priority policy: {error}") from None
    untimed(proposal, where)
    return proposal


def untimed(event: ev.Event, where: str = "a proposal") -> None:
    """Refuse a proposed event that gives its own times: the cut gives them."""
    for field in ("effective_at", "recorded_at"):
        if getattr(event, field) is not None:
            raise Invalid(
                f"{where} gives {field}: what is proposed takes effect at the cut's "
                "time (--as-of, --known-at, else the log's last effective time); "
                "remove it"
            )


def proposal_hash(proposed: Sequence[ev.Event]) -> str:
    """sha256 of the proposal's canonical msgspec JSON (an array of its events, the
    policy first), without the times the cut gives them (``effective_at``,
    ``recorded_at``): the same proposal has one hash whatever the cut."""
    bare = [
        msgspec.structs.replace(e, effective_at=None, recorded_at=None) for e in proposed
    ]
    return hashlib.sha256(ev.encoder.encode(bare)).hexdigest()


class _NoWorld:
    """The world a policy's decision sees: it reads no other stream (the read side
    holds no write-side ``World``)."""

    def stream(self, key: str) -> Stream:
        return Stream(key=key)

    def thresholds_at(self, when: datetime) -> ev.Thresholds:
        return ev.DEFAULT_THRESHOLDS

    def event_at(self, position: int) -> ev.Event | None:
        return None


def check(proposal: ev.PriorityPolicyAdopted) -> None:
    """Refuse a proposal the ledger would refuse (``rules.decide``, one line)."""
    decide(proposal, Stream(key=f"policy:{proposal.policy}"), _NoWorld())


Propose = Callable[[ev.PriorityPolicyAdopted | None], ev.PriorityPolicyAdopted]


def compare(
    log: LogReader,
    cut: Cut,
    propose: Propose | None,
    platform: str | None = None,
    events: Sequence[ev.Event] = (),
) -> WhatIf:
    """The queues of the cut as they are and after the proposal: the policy that
    ``propose`` makes of the policy in force (None before any; ``propose`` None: no
    policy proposed), then ``events``, each decided by the ledger's rules against the
    cut's streams and the proposal's events before it, as an append would decide them.
    A refused event raises ``BatchRefused`` (its index in ``events``)."""
    with _replayed(log, cut) as (conn, projector, upto):
        if platform is not None:
            queries.platform_exists(conn, platform)
        current = projector.policies.in_force
        proposal = None if propose is None else propose(current)
        if proposal is None and not events:
            raise Invalid(
                "nothing is proposed: give a policy (options or --file) or --events"
            )
        time = cut.as_of or cut.known_at or _last_effective(conn)
        world = _world(log, cut, upto)
        applied: list[tuple[ev.Event, int]] = []
        if proposal is not None:
            applied.append(_decided(proposal, time, world))
        for index, event in enumerate(events):
            try:
                applied.append(_decided(event, time, world))
            except LedgerError as error:
                raise BatchRefused(index, type(event).__name__, error) from None
        before = _queues(conn, platform)
        conn.execute("BEGIN")
        for offset, (event, version) in enumerate(applied, 1):
            projector.apply_event(upto + offset, event.stream, version, event)
        projector.flush(conn, upto + len(applied))
        conn.execute("COMMIT")
        after = _queues(conn, platform)
    cases = _case_rows(before, after)
    in_force = None if current is None else current.policy
    return WhatIf(proposal, [e for e, _ in applied], in_force, cases, _partner_rows(cases))


def _decided(event: ev.Event, time: datetime, world: Overlay) -> tuple[ev.Event, int]:
    """The proposed event as appended at ``time`` (its effective and recorded time),
    decided by the rules and applied to ``world``, with its stream version."""
    untimed(event)
    event = normalize(
        msgspec.structs.replace(event, effective_at=format_instant(time)), time
    )
    # A correction takes effect when the event it corrects did, as appended.
    event = complete_correction(event, False, world)
    decide(event, world.stream(event.stream), world)
    version = world.stream(event.stream).version + 1
    world.apply(event)
    return event, version


def _world(log: LogReader, cut: Cut, upto: int) -> Overlay:
    """The streams the cut selects, as the rules see them: the events up to ``upto``,
    recorded by ``known_at``, in force at ``as_of`` (what the replay applied)."""

    def selected(found: list[Recorded]) -> list[ev.Event]:
        return [
            r.event
            for r in found
            if (cut.known_at is None or instant(r.event.recorded_at) <= cut.known_at)
            and holds_at(r.event, cut.as_of)
        ]

    def load_stream(key: str) -> Stream:
        if key == DIRECTORY:  # a proposal is not signed: it is decided as if by
            return Stream(key)  # a ledger that does not enforce authority
        return fold(Stream(key), selected(log.stream(key, upto)))

    def load_thresholds() -> list[ev.NotificationThresholdsSet]:
        found = selected(log.of_types(["NotificationThresholdsSet"], upto=upto))
        return [e for e in found if isinstance(e, ev.NotificationThresholdsSet)]

    def load_event(position: int) -> ev.Event | None:
        return log.at([position]).get(position)

    return Overlay(load_stream, load_thresholds, load_event, lambda: upto)


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
    """One row per case queued before or after; ``moved`` is positions gained (up is
    positive), None for a case that enters or leaves the queue (its other position is
    None)."""
    out = []
    for platform, case in before.keys() | after.keys():
        old, new = before.get((platform, case)), after.get((platform, case))
        either = old or new
        assert either is not None
        out.append(
            {
                "platform": platform,
                "case": case,
                "partner": either["partner"],
                "position_before": old and old["position"],
                "position_after": new and new["position"],
                "moved": old["position"] - new["position"] if old and new else None,
                "tier_before": old and old["tier"],
                "tier_after": new and new["tier"],
                "score_before": old and old["score"],
                "score_after": new and new["score"],
                "est_completion_before": old and old["est_completion_months"],
                "est_completion_after": new and new["est_completion_months"],
            }
        )
    out.sort(
        key=lambda r: (
            r["platform"],
            r["position_after"] is None,  # those that leave last, in their old order
            r["position_after"] or r["position_before"],
            r["case"],
        )
    )
    return out


def _partner_rows(cases: list[dict]) -> list[dict]:
    """Per partner: its cases queued before or after, how many moved up or down, the
    sum of moves, how many enter and leave a queue."""
    found: dict[str, dict] = {}
    for row in cases:
        p = found.setdefault(row["partner"], dict.fromkeys(PARTNER_COLUMNS, 0))
        p["partner"] = row["partner"]
        p["cases"] += 1
        moved = row["moved"]
        if moved is not None:
            p["moved_up"] += moved > 0
            p["moved_down"] += moved < 0
            p["net_moved"] += moved
        p["entered"] += row["position_before"] is None
        p["left"] += row["position_after"] is None
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


# --- stability, as rows -------------------------------------------------------------

PAIR_COLUMNS = (
    "position",
    "ahead",
    "behind",
    "decided_by",
    "margin",
    "resolution",
    "flip_weights",
    "region",
)
PLACE_COLUMNS = ("position", "case", "margin", "resolution", "flips_with", "flip_weights")


def _weights_text(weights: tuple[float, float, float] | None) -> str | None:
    return None if weights is None else ",".join(f"{w:.4f}" for w in weights)


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def pair_rows(found: Stability) -> list[dict[str, Any]]:
    return [
        {
            "position": k,
            "ahead": p.ahead,
            "behind": p.behind,
            "decided_by": p.decided_by,
            "margin": _round(p.margin),
            "resolution": _round(p.resolution),
            "flip_weights": _weights_text(p.flip_weights),
            "region": None if p.difference is None else region(p.difference),
            "difference": p.difference,  # JSON only: ahead's components minus behind's
        }
        for k, p in enumerate(found.pairs, 1)
    ]


def place_rows(found: Stability) -> list[dict[str, Any]]:
    rows = []
    for place in found.places:
        near = place.nearest
        rows.append(
            {
                "position": place.position,
                "case": place.case,
                "margin": None if near is None else _round(near.margin),
                "resolution": None if near is None else _round(near.resolution),
                "flips_with": None
                if near is None
                else near.behind
                if near.ahead == place.case
                else near.ahead,
                "flip_weights": None if near is None else _weights_text(near.flip_weights),
            }
        )
    return rows


# --- the answers as data (``--json``, and the web page's ``/-/whatif.json``) -------------


def proposal_document(found: WhatIf) -> dict[str, Any]:
    """The proposal of a comparison: its hash, its events as applied, and the policy in
    force before it."""
    return {
        "sha256": proposal_hash(found.proposed),
        "events": [
            msgspec.to_builtins(msgspec.structs.replace(e, recorded_at=None))
            for e in found.proposed
        ],
        "in_force_before": found.in_force,
    }


def stability_document(
    platform: str,
    found: Stability,
    policy: ev.PriorityPolicyAdopted | None,
    proposal: ev.PriorityPolicyAdopted | None,
) -> dict[str, Any]:
    """A queue's stability under ``policy`` (the proposal, if any, else the policy in
    force)."""
    return {
        "platform": platform,
        "policy": None if policy is None else policy.policy,
        "proposal_sha256": None if proposal is None else proposal_hash([proposal]),
        "mode": found.mode,
        "weights": dict(zip(COMPONENTS, found.weights, strict=True)),
        "norm": "weight moved: half the sum of the absolute weight changes",
        "pairs": pair_rows(found),
        "places": place_rows(found),
    }
