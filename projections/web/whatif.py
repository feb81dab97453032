"""The web view's what-if page (``/-/whatif``, and ``/-/whatif.json``): a proposed
priority policy typed in a form, one platform's queue under the policy in force and
under the proposal, the before/after chart, the net effect by partner across every
queue, and the stability of the first places. Nothing is stored: the proposal is
computed, never appended (docs/web.md, "What if").

The comparison is ``projections.whatif.compare``: a replay of the served cut into a
temporary file, the proposal applied to it as one more ``PriorityPolicyAdopted``. The
stability is ``projections.whatif.stability`` on the served read models. The proposal
is made of the form's fields and the answers are tabulated by the same functions as
``arms-ledger whatif`` and ``arms-ledger stability`` (``projections.whatif``), so the
page says what they say. The read models do not hold the log, so ``arms-ledger serve``
hands the page a ``Source``: the log's reader, the served cut, and the command line's
way to name the log (its checkpoint). The comparison is pinned at
the log position the served read models reached (the banner's), so a live server's
what-if and its tables describe the same events.
"""

from __future__ import annotations

import asyncio
import shlex
import sqlite3
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlencode

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain import stability as st
from arms_ledger.ledger.domain.clock import format_instant
from arms_ledger.ledger.domain.priority import MODES
from arms_ledger.ledger.errors import Invalid, LedgerError, StorageError
from arms_ledger.projections import queries, whatif
from arms_ledger.projections.audit_queries import move
from arms_ledger.projections.engine import Cut
from arms_ledger.projections.source import LogReader
from arms_ledger.projections.web import charts
from arms_ledger.projections.web.metadata import DATABASE
from datasette.utils.asgi import NotFound, Response
from markupsafe import Markup

TOP = 3  # the first places whose stability the page reports

# The proposal's fields, as ``arms-ledger whatif``'s options: name, label, type, step.
NUMBERS: tuple[tuple[str, str, type, str], ...] = (
    ("investment", "Defense investment (I)", float, "0.01"),
    ("strategic", "Strategic value (S)", float, "0.01"),
    ("economic", "Economic contribution (E)", float, "0.01"),
    ("pct_gdp", "Target: defense spending, % of GDP", float, "0.1"),
    ("economic_usd", "Target: economic contribution, USD", int, "1"),
    ("tier1", "Tier 1 from score", float, "0.01"),
    ("tier2", "Tier 2 from score", float, "0.01"),
)
WEIGHTS = st.COMPONENTS  # the three weights: investment, strategic, economic
PROPOSAL_FIELDS = ("mode", *(name for name, *_ in NUMBERS))
# whatif's case columns but the platform, positions first.
CASE_COLUMNS = [
    "position_before",
    "position_after",
    "moved",
    *(
        c
        for c in whatif.CASE_COLUMNS
        if c not in ("platform", "position_before", "position_after", "moved")
    ),
]

# whatif's partner columns but entered and left: a policy changes no queue's membership.
PARTNER_COLUMNS = [c for c in whatif.PARTNER_COLUMNS if c not in ("entered", "left")]


class Source(NamedTuple):
    """What the page needs that the read models do not hold, from ``arms-ledger serve``."""

    reader: LogReader  # the log, for the comparison's replay
    cut: Cut  # the cut served (all None: live)
    log_named: Callable[[], dict[str, Any]]  # the log: origin, size, root (cli.whatif)


# Each Datasette's source, set by ``projections.web.datasette``; none: no what-if page.
SOURCES: weakref.WeakKeyDictionary[Any, Source] = weakref.WeakKeyDictionary()
# One comparison at a time: each replays the log, and a server must not run many at once.
_ONE_AT_A_TIME = threading.Lock()


def options(args: Mapping[str, str]) -> dict[str, Any] | None:
    """The options of ``arms-ledger whatif`` the form gives (blank: not given, the policy
    in force's), or None when the request names no proposal at all."""
    if not any(name in args for name in PROPOSAL_FIELDS):
        return None
    given: dict[str, Any] = {"weights": None, "policy": None, "name": None}
    given["mode"] = (args.get("mode") or "").strip() or None
    for name, _label, kind, _step in NUMBERS:
        text = (args.get(name) or "").strip()
        given[name] = _number(name, text, kind) if text else None
    return given


def _number(name: str, text: str, kind: type) -> float | int:
    try:
        return kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise Invalid(f"{name}: {text!r} is not {what}") from None


class Read(NamedTuple):
    """What the served read models say, in one snapshot."""

    position: int  # the log position they reached
    platforms: list[dict[str, Any]]  # platform, name, queued: those with a queue
    platform: str | None  # the one shown
    name: str | None  # its name
    in_force: ev.PriorityPolicyAdopted | None
    proposal: ev.PriorityPolicyAdopted | None  # as the options make it, checked
    stability: st.Stability | None
    error: str | None  # the one line refusing the request


def read(conn: sqlite3.Connection, args: Mapping[str, str], source: Source) -> Read:
    """The form's choices, the proposal checked by the ledger's rule, and the stability
    of the platform's queue under it (under the policy in force without one)."""
    conn.execute("BEGIN")  # one snapshot: a live catch-up cannot land in between
    try:
        position = conn.execute("SELECT position FROM projection").fetchone()[0]
        platforms = queries.rows(
            conn,
            'SELECT p.platform, p.name, count(q."case") AS queued FROM platforms p '
            "JOIN queue q ON q.platform = p.platform GROUP BY p.platform "
            "ORDER BY queued DESC, p.platform",
        )
        in_force = queries.adopted(conn)
        platform = args.get("platform") or (platforms[0]["platform"] if platforms else None)
        found = Read(position, platforms, platform, None, in_force, None, None, None)
        if platform is None:
            return found
        try:
            queries.platform_exists(conn, platform)
            name = queries.one(
                conn, "SELECT name FROM platforms WHERE platform = ?", (platform,)
            )
            found = found._replace(name=name["name"] if name else platform)
            given = options(args)
            proposal = None if given is None else whatif.from_options(given)(in_force)
            if proposal is not None:
                whatif.check(proposal)
            analysed = whatif.stability(
                conn, platform, proposal, in_force=proposal is None, top=TOP
            )
        except LedgerError as error:
            return found._replace(error=str(error))
        return found._replace(proposal=proposal, stability=analysed)
    finally:
        conn.execute("ROLLBACK")


class Compared(NamedTuple):
    log: dict[str, Any]
    found: whatif.WhatIf | None  # None: no proposal was given


def compared(source: Source, args: Mapping[str, str], position: int) -> Compared:
    """The log named, and the comparison under the proposal (in a worker thread: it
    replays the log), pinned at the position the served read models reached."""
    given = options(args)
    with _ONE_AT_A_TIME:
        log = source.log_named()
        if given is None:
            return Compared(log, None)
        cut = msgspec.structs.replace(source.cut, at_position=position)
        return Compared(log, whatif.compare(source.reader, cut, whatif.from_options(given)))


def answer(source: Source, got: Read, done: Compared | None) -> dict[str, Any]:
    """The page's answer as data: what ``arms-ledger whatif --json`` gives (log, cut,
    proposal, cases of every queue, partners), the platform and the position it was
    pinned at, and the stability as ``arms-ledger stability --json`` gives it."""
    out: dict[str, Any] = {
        "log": None if done is None else done.log,
        "cut": source.cut.describe(),
        "position": got.position,
        "platform": got.platform,
        "proposal": None,
        "cases": None,
        "partners": None,
        "stability": None,
    }
    found = None if done is None else done.found
    if found is not None:
        out["proposal"] = whatif.proposal_document(found)
        out["cases"], out["partners"] = found.cases, found.partners
    if got.stability is not None and got.platform is not None:
        policy = got.proposal or got.in_force
        out["stability"] = whatif.stability_document(
            got.platform, got.stability, policy, got.proposal
        )
    return out


async def whatif_page(datasette: Any, request: Any) -> Response:
    source = SOURCES.get(datasette)
    if source is None:
        raise NotFound(
            "The what-if page needs the log, not only its read models: "
            "`arms-ledger serve` serves it."
        )
    args = {k: request.args.get(k) for k in request.args}
    db = datasette.get_database(DATABASE)
    got: Read = await db.execute_fn(lambda conn: read(conn, args, source))
    status, error, done = 200, got.error, None
    if error is not None:
        status = 400
    elif got.platform is not None:
        try:
            done = await asyncio.to_thread(compared, source, args, got.position)
        except StorageError as failure:
            status, error = 500, str(failure)
        except LedgerError as refused:
            status, error = 400, str(refused)
    data = answer(source, got, done)
    if request.url_vars.get("json"):
        if error is not None:
            return Response.json({"ok": False, "error": error, "status": status}, status)
        return Response.json(data)
    context = await _context(source, args, got, data, error)
    return Response.html(
        await datasette.render_template(
            "arms_ledger_whatif.html", context, request=request
        ),
        status=status,
    )


async def _context(
    source: Source,
    args: Mapping[str, str],
    got: Read,
    data: dict[str, Any],
    error: str | None,
) -> dict[str, Any]:
    platform = got.platform
    cases = [r for r in data["cases"] or [] if r["platform"] == platform]
    svg = None
    if cases and data["proposal"] is not None:
        rows = [
            {
                "case": r["case"],
                "partner": r["partner"],
                "before": r["position_before"],
                "after": r["position_after"],
                "move": move(r["position_before"], r["position_after"]),
            }
            for r in cases
        ]
        policy = data["proposal"]["events"][0]  # the page proposes a policy alone
        proposal = policy | {"sha256": data["proposal"]["sha256"]}
        before = data["proposal"]["in_force_before"]
        chart = charts.whatif_chart(rows, platform or "", got.name or "", before, proposal)
        svg = Markup(await asyncio.to_thread(charts.svg, chart))
    stability = data["stability"]
    return {
        "error": error,
        "form": _form(args, got),
        "data": data,
        "platform": platform,
        "name": got.name,
        "cases": cases,
        "case_columns": CASE_COLUMNS,
        "partner_columns": PARTNER_COLUMNS,
        "reordered": _reordered(data["cases"] or [], args),
        "movers": [p for p in data["partners"] or [] if p["moved_up"] or p["moved_down"]],
        "svg": svg,
        "places": [] if stability is None else stability["places"],
        "pairs": [] if stability is None else stability["pairs"][:TOP],
        "top": TOP,
        "in_force": got.in_force,
        "json_url": "/-/whatif.json" + (f"?{urlencode(_shown(args))}" if args else ""),
        "command": _command(source.cut, args) if data["proposal"] else None,
    }


def _shown(args: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in args.items() if v is not None}


def _form(args: Mapping[str, str], got: Read) -> dict[str, Any]:
    """The form's fields: what was typed, else the policy in force's values (the
    defaults before any)."""
    policy = got.in_force
    parts = (
        (ev.Weights(), ev.Targets(), ev.Tiers())
        if policy is None
        else (policy.weights, policy.targets, policy.tiers)
    )
    current = {k: v for part in parts for k, v in msgspec.structs.asdict(part).items()}
    typed = any(name in args for name in PROPOSAL_FIELDS)
    numbers = [
        {
            "name": name,
            "label": label,
            "step": step,
            "weight": name in WEIGHTS,
            "value": args.get(name) or "" if typed else _text(current[name]),
            "in_force": _text(current[name]),
        }
        for name, label, _kind, step in NUMBERS
    ]
    mode = (args.get("mode") or "scored") if typed or policy is None else policy.mode
    return {
        "platforms": [
            {
                "value": p["platform"],
                "label": f"{p['platform']}: {p['name']} ({p['queued']} queued)",
                "selected": p["platform"] == got.platform,
            }
            for p in got.platforms
        ],
        "platform_listed": any(p["platform"] == got.platform for p in got.platforms),
        "modes": [{"value": m, "selected": m == mode} for m in MODES],
        "numbers": numbers,
        "policy": None if got.in_force is None else got.in_force.policy,
    }


def _text(value: float) -> str:
    """A number as typed: every digit of it (no exponent), 5.0 as 5."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _reordered(cases: list[dict[str, Any]], args: Mapping[str, str]) -> list[dict]:
    """The queues the proposal reorders: how many cases move on each, and a link."""
    moved: dict[str, int] = {}
    for r in cases:
        if r["moved"]:
            moved[r["platform"]] = moved.get(r["platform"], 0) + 1
    return [
        {
            "platform": p,
            "moved": n,
            "href": "/-/whatif?" + urlencode(_shown(args) | {"platform": p}),
        }
        for p, n in sorted(moved.items())
    ]


def _command(cut: Cut, args: Mapping[str, str]) -> str:
    """The same comparison from the command line."""
    words = ["arms-ledger", "whatif"]
    for name in PROPOSAL_FIELDS:
        value = (args.get(name) or "").strip()
        if value:
            words += [f"--{name.replace('_', '-')}", shlex.quote(value)]
    for name in ("as_of", "known_at"):
        value = getattr(cut, name)
        if value is not None:
            words += [f"--{name.replace('_', '-')}", format_instant(value)]
    if cut.at_position is not None:
        words += ["--at-position", str(cut.at_position)]
    return " ".join([*words, "--json"])
