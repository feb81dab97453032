"""Snapshots: the projector's state at points of the log, so that a replay of the past
(``--as-of``, ``--known-at``, ``--at-position``) starts from the nearest one and applies
only the events between, instead of replaying from the first event.

**What a snapshot is.** A snapshot ``S`` at effective time ``T_s`` over the log up to
position ``P_s`` holds the state (partners, platforms, policies, the cases not ended,
the queues) of the events ``{e : pos(e) <= P_s, holds_at(e, T_s)}`` applied in log
order. ``T_s`` None means every event (a snapshot of a prefix of the log).

**Why a replay from it equals a replay from zero.** A cut (as-of ``T >= T_s``, up to
position ``P >= P_s``; ``P`` from ``--at-position``, or the last position recorded at or
before ``--known-at``) selects ``{pos <= P, holds_at(e, T)}``: ``S``'s events, plus
``D1 = {pos <= P_s, T_s < effective <= T}`` and ``D2 = {P_s < pos <= P, holds_at(e, T)}``.
Applying ``D1`` then ``D2``, each in log order, gives the state of a replay from zero
because that state depends on which events were applied, not on the order events of
*different* streams came in (``ledger.domain.facts``: every fact is the latest in
(effective, position), spending the latest year, contributions a sum; the queues are
sorted by a key computed from the state), and the order *within* a stream is kept:

- a case's events are effective in log order (rule 2, ``rules._decide_case``: an event
  effective before the case's previous one is refused; a backdated event, recorded late
  with an early ``effective_at``, is still effective no earlier than the case's events
  recorded before it). So an event of ``S`` (effective <= ``T_s``) never comes after an
  event of ``D1`` of the same case (effective > ``T_s``) in the log, and ``D2`` comes after
  both;
- partner, platform and policy facts are folded by ``facts.newer`` (a maximum), so their
  order does not matter;
- the reference facts (``PartnerRegistered``, ``PlatformListed``) hold in every view and
  are in ``S`` whatever their ``effective_at``; a registration's notification group only
  counts once it is effective (``PartnerFacts.apply``), so ``D1`` applies those effective
  in ``(T_s, T]`` again, at ``T``: the registration itself is unchanged, the group fact is
  the maximum it would have been.

What does depend on the order events were applied in: the history tables
(``queue_changes``, whose old and new positions are those of the moment the event was
applied; ``audit_log``, ``event_flags``, ``deliveries``, ``end_use_checks``,
``eeum_designations``, which a snapshot does not hold) and ``cases`` (the ended cases are
not held either). A replay from a snapshot writes only the tables of ``ANSWERS`` and drops
the others (reading one fails at once instead of answering wrongly); a command that reads
anything else gets a full replay (``engine.read_models``' ``answers``).

**Finding D1** needs the events by effective time: the events table holds blobs, so this
reads the live read models' ``audit_log`` (``position``, ``effective_at``, indexed), which
must cover ``P_s``; the events themselves come from the log (``LogReader.at``) and are
checked against the cut there. ``D2`` is read from the log in order.

**Which snapshots exist** (``snapshots.db`` beside ``projections.db``, SQLite, each body
msgpack compressed: derived data, never code, never trusted over the log):

- *along effective time*, all at one position ``P_b`` (the live read models' position
  when they were built): at each month start that is at least ``EFFECTIVE_EVERY`` events (by
  effective time) after the previous one, and one of every event (``T_s`` None). They
  are built, in one pass over the log in effective order, when a replay finds none, and
  brought forward to the head (``refreshed``: only those the new events touch change)
  when it finds the log grown by more than ``STALE`` events since ``P_b``;
- *along the log*, every ``EVERY`` positions, of every event (``T_s`` None): they never
  go stale (the log only grows); a replay that needs them extends them to the head.

They are also made as the log grows: a rebuild captures its projector at each multiple
of ``EVERY`` (``AlongTheLog``), and a catch-up that passes one extends those along the
log and brings those along effective time forward when they are stale (``keep_up``).
A replay from a snapshot keeps no history (``Projector(history=False)``), and the
snapshot's open cases stay packed until an event touches one.

Each names the log position it was built up to and a digest of the log there (the
events at the first position and at ``P_s``); one whose log no longer matches discards
every snapshot (the ledger directory holds another log). One that cannot be read is
ignored, with a notice, and the replay starts from the first event.
"""

from __future__ import annotations

import hashlib
import sqlite3
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import msgspec
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.clock import effective, format_instant, instant
from arms_ledger.ledger.domain.facts import REFERENCE_TYPES, holds_at, position_of
from arms_ledger.ledger.domain.priority import Entry
from arms_ledger.ledger.errors import failure_kind
from arms_ledger.projections import schema
from arms_ledger.projections.loader import Nothing
from arms_ledger.projections.partners import PartnerState, Policies
from arms_ledger.projections.platforms import PlatformState
from arms_ledger.projections.projector import Projector
from arms_ledger.projections.queue import Queue
from arms_ledger.projections.runner import Cut
from arms_ledger.projections.source import LogReader, Recorded

__all__ = ["ANSWERS", "EVERY", "FILE", "STALE", "Snapshots", "replay"]

FILE = "snapshots.db"
EFFECTIVE, LOG = "effective", "log"  # the two kinds: along effective time, along the log
FORMAT = 2  # of the bodies; another format is discarded (1: cases without their ids)
# Snapshots along the log every EVERY positions; along effective time at month starts at
# least EFFECTIVE_EVERY events (by effective time) apart: a replay applies at most about
# that many events (and a month's), besides those recorded since they were built.
EVERY = 10_000
EFFECTIVE_EVERY = 5_000
# The snapshots along effective time are rebuilt once the log has grown by more than
# this since they were built (a replay would apply all those events).
STALE = 20_000
# The tables a replay from a snapshot writes (and ``projection``): the others are
# history tables that depend on the order events were applied in, or ``cases`` (ended
# cases are not kept).
ANSWERS = frozenset({"partners", "platforms", "policies", "queue"})
AT_ONCE = 5_000  # events asked of the log at once (LogReader.at)
# A catch-up extends the snapshots along the log (``keep_up``) only from one at most
# this many events behind the head: the extension applies them all.
REACH = 3 * EVERY
BUSY_TIMEOUT = 30.0  # seconds a replay waits for another process building snapshots


# --- the state, encoded ---------------------------------------------------------------


class PartnerPart(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """A partner as ``PartnerState.restore`` takes it back."""

    partner: str
    positions: tuple[int | None, int | None, int | None, int | None, int | None, int | None]
    economic_usd: int
    economic_contributions: int


class PlatformPart(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """A platform: the positions of the events that set its facts, in log order."""

    platform: str
    positions: list[int]


class QueuePart(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    platform: str
    mode: str
    entries: list[Entry]


class State(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """The projector's state after the events ``{pos <= position, holds_at(e, as_of)}``."""

    format: int
    as_of: datetime | None
    position: int
    last_applied: int  # the last of those events: the projection's position
    policies: list[int]  # positions of the policy events, in log order
    partners: list[PartnerPart]
    platforms: list[PlatformPart]
    cases: dict[str, bytes]  # CaseView.pack() of the cases not ended, by case id
    queues: list[QueuePart]
    events: list[tuple[int, bytes]]  # the events the positions above name (JSON)


_encode = msgspec.msgpack.Encoder().encode
_decode = msgspec.msgpack.Decoder(State).decode


def capture(
    projector: Projector, log: LogReader, as_of: datetime | None, position: int, last: int
) -> State:
    """The state of a projector built from nothing (``loader.Nothing``) up to ``position``
    at ``as_of``; ``last`` is the last position it applied. The events its facts name are
    read back from the log."""
    wanted: set[int] = set()
    partners = []
    for code, p in sorted(projector.partners.items()):
        positions = (
            p.registered_position,
            position_of(p.group),
            position_of(p.suspended),
            position_of(p.override),
            p.spending[1] if p.spending else None,
            position_of(p.strategic),
        )
        wanted.update(x for x in positions if x is not None)
        partners.append(
            PartnerPart(code, positions, p.economic_usd, p.economic_contributions)
        )
    platforms = []
    for slug, f in sorted(projector.platforms.items()):
        facts = (f.capacity, f.catalog, f.eeum, f.withdrawn)
        at = sorted(
            n for n in (f.listed_position, *map(position_of, facts)) if n is not None
        )
        wanted.update(at)
        platforms.append(PlatformPart(slug, at))
    policies = projector.policies
    wanted.update(policies.adopted)
    events = _read(log, sorted(wanted))
    return State(
        FORMAT,
        as_of,
        position,
        last,
        sorted(policies.adopted),
        partners,
        platforms,
        _cases(projector),
        [
            QueuePart(slug, q.mode, [q.entries[c] for c in q.ids])
            for slug, q in sorted(projector.queues.items())
        ],
        [(n, ev.encoder.encode(events[n])) for n in sorted(wanted)],
    )


def _cases(projector: Projector) -> dict[str, bytes]:
    """The projector's cases not ended, packed, by id: those it holds packed still (a
    restored snapshot's that no event touched) as they are."""
    cases = dict(projector.packed)
    cases.update((c, v.pack()) for c, v in projector.cases.items() if not v.ended)
    return dict(sorted(cases.items()))


def _read(log: LogReader, positions: Sequence[int]) -> dict[int, ev.Event]:
    """The events at ``positions``; every one must be there."""
    found: dict[int, ev.Event] = {}
    for i in range(0, len(positions), AT_ONCE):
        found.update(log.at(positions[i : i + AT_ONCE]))
    missing = [n for n in positions if n not in found]
    if missing:
        raise LookupError(f"the log has no event at position {missing[0]}")
    return found


# --- the loader of a restored projector -------------------------------------------------


class FromSnapshot(Nothing):
    """What a projector restored from a snapshot does not hold: cases that had ended,
    read back from the log as the snapshot saw them (``pos <= P_s``, in force at
    ``T_s``). Everything else the snapshot held is in the projector already."""

    def __init__(self, log: LogReader, position: int, as_of: datetime | None):
        self.log, self.position, self.as_of = log, position, as_of

    def stream(self, key: str) -> Iterable[Recorded]:
        return [
            r
            for r in self.log.stream(key, upto=self.position)
            if holds_at(r.event, self.as_of)
        ]


def restore(state: State, log: LogReader, as_of: datetime | None) -> Projector:
    """A projector holding ``state``, to apply the events of a cut at ``as_of``."""
    events = {n: ev.decoder.decode(blob) for n, blob in state.events}
    projector = Projector(
        FromSnapshot(log, state.position, state.as_of), as_of=as_of, history=False
    )
    policies = Policies()
    for n in state.policies:
        event = events[n]
        assert isinstance(event, ev.PolicyEvent), n
        policies.apply(event, n)
    projector._policies = policies
    in_force = policies.in_force
    for part in state.partners:
        partner = PartnerState.restore(
            part.partner,
            part.positions,
            (part.economic_usd, part.economic_contributions),
            events,
        )
        partner.as_of = as_of
        partner.rescore(in_force)
        projector.partners[part.partner] = partner
    for plat in state.platforms:
        platform = projector.platforms[plat.platform] = PlatformState(plat.platform)
        for n in plat.positions:
            platform.apply(events[n], n)
    projector.packed = dict(state.cases)  # unpacked when an event touches one
    for queued in state.queues:
        slug = queued.platform
        projector.queues[slug] = Queue(slug, queued.mode, queued.entries)
        projector._written[slug] = {}
        for entry in queued.entries:
            projector.queued(entry.partner)[entry.case] = slug
    return projector


# --- building -------------------------------------------------------------------------

MONTHS_SQL = (
    "SELECT substr(effective_at, 1, 7), count(*) FROM audit_log WHERE position <= ? "
    "GROUP BY 1 ORDER BY 1"
)
REFERENCE_SQL = f"type IN ({', '.join(repr(t.__name__) for t in REFERENCE_TYPES)})"


def boundaries(index: sqlite3.Connection, upto: int) -> list[datetime]:
    """Month starts at least ``EFFECTIVE_EVERY`` events (by effective time) apart, from
    the live read models' ``audit_log`` up to position ``upto``."""
    found: list[datetime] = []
    count = 0
    for month, n in index.execute(MONTHS_SQL, (upto,)):
        if count >= EFFECTIVE_EVERY:
            year, _, number = month.partition("-")
            found.append(datetime(int(year), int(number), 1, tzinfo=UTC))
            count = 0
        count += n
    return found


def between(
    log: LogReader,
    index: sqlite3.Connection,
    since: datetime | None,
    until: datetime | None,
    upto: int,
) -> Iterator[tuple[int, str, int, ev.Event]]:
    """The events up to position ``upto`` effective in (``since``, ``until``] (every
    reference fact too when ``since`` is None), in log order: their positions from the
    live read models' ``audit_log`` (its text bounds a second wider, the exact test made
    on the events themselves)."""
    # With a lower bound, the index by effective time finds the few events of the span;
    # "position <= ?" must not be used as an index term (unary +): SQLite would scan the
    # table by position (every event up to ``upto``) instead, 20-40 times slower at 1M.
    where, params = ["position <= ?" if since is None else "+position <= ?"], [upto]
    if since is not None:
        where.append("effective_at >= ?")
        params.append(format_instant(since.replace(microsecond=0))[:-1])  # type: ignore[arg-type]
    if until is not None:
        bound = format_instant(until.replace(microsecond=0) + timedelta(seconds=1))[:-1]
        if since is None:
            where.append(f"(effective_at < ? OR {REFERENCE_SQL})")
        else:
            where.append("effective_at < ?")
        params.append(bound)  # type: ignore[arg-type]
    rows = index.execute(
        "SELECT position, stream, version FROM audit_log WHERE "
        + " AND ".join(where)
        + " ORDER BY position",
        params,
    ).fetchall()
    for i in range(0, len(rows), AT_ONCE):
        chunk = rows[i : i + AT_ONCE]
        events = _read(log, [r[0] for r in chunk])
        for position, stream, version in chunk:
            e = events[position]
            at = effective(e)
            if since is None:
                if holds_at(e, until):
                    yield position, stream, version, e
            elif at > since and (until is None or at <= until):
                yield position, stream, version, e


def along_effective_time(
    log: LogReader, index: sqlite3.Connection, upto: int
) -> Iterator[State]:
    """The snapshots at ``boundaries`` and of every event, all over the log up to
    ``upto``: one pass over the events in effective order (by month), each step the
    delta of a replay from the previous snapshot."""
    projector = Projector(Nothing(), history=False)
    last = 0
    since: datetime | None = None
    try:
        for until in [*boundaries(index, upto), None]:
            projector.as_of = until
            for partner in projector.partners.values():
                partner.as_of = until
            for position, stream, version, e in between(log, index, since, until, upto):
                projector.apply_event(position, stream, version, e)
                last = max(last, position)
                if len(projector.audit_rows) >= AT_ONCE:
                    projector._clear_pending()  # the rows are not kept
            projector._clear_pending()
            yield capture(projector, log, until, upto, last)
            projector.pack_ended()
            since = until
    finally:
        projector.close()


def along_the_log(log: LogReader, start: State | None, upto: int) -> Iterator[State]:
    """Snapshots of every event at each multiple of ``EVERY`` after ``start`` (or the
    first event) up to ``upto``."""
    projector = Projector(history=False) if start is None else restore(start, log, None)
    last = 0 if start is None else start.last_applied
    try:
        for page in log.pages(0 if start is None else start.position, upto):
            for position, stream, version, e in page:
                projector.apply_event(position, stream, version, e)
                last = position
                if position % EVERY == 0:
                    projector._clear_pending()
                    yield capture(projector, log, None, position, last)
                    projector.pack_ended()
            projector._clear_pending()
    finally:
        projector.close()


# --- storage --------------------------------------------------------------------------

CREATE = """CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,         -- along 'effective' time, or along the 'log'
    as_of TEXT,                 -- effective time; NULL: every event
    position INTEGER NOT NULL,  -- the log position it was built up to
    digest TEXT NOT NULL,       -- of the log there (``digest``)
    format INTEGER NOT NULL,
    body BLOB NOT NULL          -- zlib(msgpack(State))
)"""


class Row(msgspec.Struct, frozen=True):
    id: int
    kind: str
    as_of: datetime | None
    position: int
    digest: str
    size: int


def digest(log: LogReader, position: int) -> str:
    """Of the log up to ``position``: its first event and the one there."""
    events = _read(log, sorted({1, position}))
    h = hashlib.sha256()
    for n in sorted(events):
        h.update(ev.encoder.encode(events[n]))
    return h.hexdigest()


class Snapshots:
    """The snapshots file of a ledger directory (``FILE``)."""

    def __init__(self, directory: Path):
        self.path = Path(directory) / FILE

    def connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(CREATE)
        except BaseException:
            conn.close()
            raise
        return conn

    def rows(self, conn: sqlite3.Connection) -> list[Row]:
        return [
            Row(i, kind, None if at is None else instant(at), position, d, size)
            for i, kind, at, position, d, size in conn.execute(
                "SELECT id, kind, as_of, position, digest, length(body) FROM snapshots "
                "WHERE format = ? ORDER BY position, as_of",
                (FORMAT,),
            )
        ]

    def load(self, conn: sqlite3.Connection, row: Row) -> State:
        (body,) = conn.execute(
            "SELECT body FROM snapshots WHERE id = ?", (row.id,)
        ).fetchone()
        state = _decode(zlib.decompress(body))
        if (state.format, state.as_of) != (FORMAT, row.as_of) or not (
            state.position == row.position
            or (row.kind == EFFECTIVE and state.position < row.position)
        ):
            raise ValueError(f"snapshot {row.id} does not hold what its row says")
        if state.position < row.position:  # brought forward by renaming (``refreshed``)
            state = msgspec.structs.replace(state, position=row.position)
        return state

    def put(
        self, conn: sqlite3.Connection, kind: str, states: Iterable[State], log: LogReader
    ) -> int:
        """Store ``states`` (in the caller's transaction); returns how many."""
        count = 0
        marks: dict[int, str] = {}
        for state in states:
            if state.position not in marks:
                marks[state.position] = digest(log, state.position)
            conn.execute(
                "INSERT INTO snapshots (kind, as_of, position, digest, format, body) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    kind,
                    None if state.as_of is None else format_instant(state.as_of),
                    state.position,
                    marks[state.position],
                    FORMAT,
                    zlib.compress(_encode(state), 1),
                ),
            )
            count += 1
        return count

    def discard(self) -> None:
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)


# --- a replay from a snapshot ---------------------------------------------------------

# What a snapshot that cannot be used raises: an unreadable file or body, a body that is
# not what it claims, or a state the events then do not fit.
DAMAGED = (
    sqlite3.DatabaseError,
    msgspec.MsgspecError,
    zlib.error,
    ValueError,
    LookupError,
    AssertionError,
    AttributeError,
    TypeError,
)


def replay(
    log: LogReader,
    directory: Path,
    conn: sqlite3.Connection,
    cut: Cut,
    notice: Callable[[str], None] | None = None,
    *,
    catch_up: Callable[[], None] | None = None,
    platform: str | None = None,
) -> int | None:
    """Build the tables of ``ANSWERS`` for ``cut`` into the empty database ``conn`` from
    the nearest snapshot, and drop the others; returns how many events were applied
    after it, or None when no snapshot serves (the caller replays from the first event).
    ``platform``: of ``queue``, only that platform's rows (the only ones read).

    Missing or stale snapshots are built first when the directory is writable (along
    effective time only for a cut up to the head, after ``catch_up`` brings the live
    read models there: their ``audit_log`` is the index by effective time)."""
    found = nearest(log, directory, cut, notice, catch_up=catch_up)
    if found is None:
        return None
    state, position = found
    try:
        projector, applied, last = project(state, log, directory, cut, position)
    except DAMAGED as error:
        unusable(Snapshots(directory), error, notice)
        return None
    _write(conn, cut, projector, last, _time(log, cut, position), platform=platform)
    return applied


def nearest(
    log: LogReader,
    directory: Path,
    cut: Cut,
    notice: Callable[[str], None] | None = None,
    *,
    catch_up: Callable[[], None] | None = None,
) -> tuple[State, int] | None:
    """The nearest snapshot a replay of ``cut`` may start from, and the last log
    position the cut reads; None when none serves (built first when missing or stale
    and the directory is writable, as ``replay`` says). Snapshots of another log, or
    that cannot be read, are discarded (``notice`` is told)."""
    say = notice or (lambda _: None)
    head = log.head()
    upto = head if cut.at_position is None else cut.at_position
    if not 0 < upto <= head:
        return None
    position = upto if cut.known_at is None else known_by(log, upto, cut.known_at)
    store = Snapshots(directory)
    # Built here only for a log long enough to be worth it (a shorter one replays from
    # the first event in well under a second), and where the ledger may be written.
    writable = head > EVERY and _writable(store.path)
    if not store.path.exists() and not writable:
        return None
    try:
        with closing(store.connect()) as snaps:
            row = _nearest(
                store, snaps, log, cut.as_of, position, head, writable, catch_up, notice
            )
            if row is None:
                return None
            if row.position > head or digest(log, row.position) != row.digest:
                say(
                    f"the snapshots in {store.path} are of another log; discarded, "
                    "replaying from the first event"
                )
                snaps.close()
                store.discard()
                return None
            return store.load(snaps, row), position
    except DAMAGED as error:
        unusable(store, error, notice)
        return None


def unusable(
    store: Snapshots, error: Exception, notice: Callable[[str], None] | None
) -> None:
    """A snapshot could not be used (one of ``DAMAGED``): say so, and discard the file
    unless it is only busy or cannot grow."""
    say = notice or (lambda _: None)
    if isinstance(error, sqlite3.OperationalError) and failure_kind(error) in (
        "locked",
        "full",
        "read-only",
        "io",
    ):  # the file is fine: busy (another process builds them), or cannot grow
        say(
            f"the snapshots in {store.path} cannot be used now ({error}); "
            "replaying from the first event"
        )
        return
    say(
        f"the snapshots in {store.path} could not be used ({error}); discarded, "
        "replaying from the first event"
    )
    store.discard()


def replay_from(
    state: State,
    log: LogReader,
    directory: Path,
    conn: sqlite3.Connection,
    cut: Cut,
    position: int,
) -> int:
    """Build the tables of ``ANSWERS`` for ``cut`` (which reads the log up to
    ``position``) into ``conn`` from ``state``; returns how many events were applied
    after it."""
    projector, applied, last = project(state, log, directory, cut, position)
    _write(conn, cut, projector, last, _time(log, cut, position))
    return applied


def project(
    state: State, log: LogReader, directory: Path, cut: Cut, position: int
) -> tuple[Projector, int, int]:
    """The projector restored from ``state`` with the events of ``cut`` after it
    applied: it, how many, and the projection's position. Nothing is written yet, so
    what a damaged snapshot raises (``DAMAGED``) leaves the replay's database as it
    was."""
    if (
        state.position > position
        or (state.as_of is None) != (cut.as_of is None)
        or (state.as_of is not None and cut.as_of is not None and cut.as_of < state.as_of)
    ):
        raise ValueError("the snapshot is not of an earlier part of the cut")
    projector = restore(state, log, cut.as_of)
    try:
        applied, last = _apply_delta(projector, log, directory, state, cut.as_of, position)
    finally:
        projector.close()
    return projector, applied, max(state.last_applied, last)


def _writable(path: Path) -> bool:
    import os

    if path.exists():
        return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
    return os.access(path.parent, os.W_OK)


def known_by(log: LogReader, upto: int, known_at: datetime) -> int:
    """The last position up to ``upto`` recorded at or before ``known_at`` (recorded
    times increase along the log): a binary search, one event read per step."""
    lo, hi = 0, upto  # recorded by known_at: every position <= lo; none > hi
    while lo < hi:
        mid = (lo + hi + 1) // 2
        recorded = _read(log, [mid])[mid].recorded_at
        if recorded is not None and instant(recorded) <= known_at:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _nearest(
    store: Snapshots,
    snaps: sqlite3.Connection,
    log: LogReader,
    as_of: datetime | None,
    position: int,
    head: int,
    writable: bool,
    catch_up: Callable[[], None] | None,
    notice: Callable[[str], None] | None = None,
) -> Row | None:
    """The snapshot a replay of (``as_of``, ``position``) starts from, built first if
    missing or stale and ``writable``."""
    best = _best(store.rows(snaps), as_of, position)
    if as_of is None:
        if writable and (best is None or position - best.position > EVERY):
            _extend(store, snaps, log, head)
            best = _best(store.rows(snaps), as_of, position)
    elif (
        writable
        and catch_up is not None
        and position == head
        and position - _built(store.rows(snaps)) > STALE
    ):
        if notice is not None and head > EVERY:
            notice(f"building the snapshots of replays in {store.path} (once)")
        catch_up()
        _along_effective_time(store, snaps, log)
        best = _best(store.rows(snaps), as_of, position)
    return best


def _built(rows: list[Row]) -> int:
    """The position the snapshots along effective time were built at (-inf if none)."""
    return max((r.position for r in rows if r.kind == EFFECTIVE), default=-(10**18))


def _best(rows: list[Row], as_of: datetime | None, position: int) -> Row | None:
    """Of the snapshots that serve the cut, the one with the fewest events after it:
    the latest position, then the latest effective time."""
    fits = [
        r
        for r in rows
        if r.position <= position
        and (r.as_of is None if as_of is None else r.as_of is not None and r.as_of <= as_of)
    ]
    return max(fits, key=lambda r: (r.position, r.as_of or 0), default=None)


def _extend(store: Snapshots, snaps: sqlite3.Connection, log: LogReader, head: int) -> None:
    """Snapshots of every event along the log, from the last there is to the head."""
    snaps.execute("BEGIN IMMEDIATE")
    try:
        snaps.execute("DELETE FROM snapshots WHERE format <> ?", (FORMAT,))  # unreadable
        every = [r for r in store.rows(snaps) if r.kind == LOG]
        start = max(every, key=lambda r: r.position, default=None)
        if start is None or start.position + EVERY <= head:
            state = None if start is None else store.load(snaps, start)
            store.put(snaps, LOG, along_the_log(log, state, head), log)
    except BaseException:
        snaps.execute("ROLLBACK")
        raise
    snaps.execute("COMMIT")


def _along_effective_time(
    store: Snapshots, snaps: sqlite3.Connection, log: LogReader
) -> None:
    """The snapshots along effective time at the live read models' position: those
    there are brought forward (``refreshed``), or, if none, built anew."""
    with closing(_index(store.path.parent)) as index:
        (upto,) = index.execute("SELECT position FROM projection").fetchone()
        snaps.execute("BEGIN IMMEDIATE")
        try:
            rows = [r for r in store.rows(snaps) if r.kind == EFFECTIVE]
            states: Iterable[State]
            renamed: list[int] = []
            if rows and len({r.position for r in rows}) == 1 and rows[0].position <= upto:
                found = list(refreshed(store, snaps, log, rows, index, upto))
                renamed = [x.id for x in found if isinstance(x, Row)]
                states = [x for x in found if isinstance(x, State)]
            else:
                states = along_effective_time(log, index, upto)
            snaps.execute(
                "DELETE FROM snapshots WHERE kind = ? AND id NOT IN "
                "(SELECT value FROM json_each(?))",
                (EFFECTIVE, msgspec.json.encode(renamed).decode()),
            )
            if renamed:  # the same state at the new position: the row only
                snaps.execute(
                    "UPDATE snapshots SET position = ?, digest = ? WHERE id IN "
                    "(SELECT value FROM json_each(?))",
                    (upto, digest(log, upto), msgspec.json.encode(renamed).decode()),
                )
            store.put(snaps, EFFECTIVE, states, log)
        except BaseException:
            snaps.execute("ROLLBACK")
            raise
        snaps.execute("COMMIT")


def refreshed(
    store: Snapshots,
    snaps: sqlite3.Connection,
    log: LogReader,
    rows: list[Row],
    index: sqlite3.Connection,
    upto: int,
) -> Iterator[State | Row]:
    """The snapshots along effective time of ``rows`` (all at one position P_b), brought
    to position ``upto``, and those of the month starts after the last of them: without
    the pass over the whole log that building them anew takes.

    A snapshot at T_s holds the events {pos <= P_b, in force at T_s}; at ``upto`` it
    holds those and the events after P_b in force at T_s (a replay's D2). When there are
    none (every event after P_b took effect after T_s, and none is a registration or
    listing, which hold at every time), it is the same state: its row is given back, to
    be renamed (only the row's position changes; ``Snapshots.load`` takes the row's);
    else it is restored and they are applied (``project``), and the new state given.
    The month starts after the last snapshot's time start from it (``project`` applies
    the events between, found by effective time)."""
    built = rows[0].position
    later = [e for page in log.pages(built, upto) for _, _, _, e in page]
    if any(type(e) in REFERENCE_TYPES for e in later):
        earliest = None  # a registration or a listing: every snapshot changes
    else:
        earliest = min((effective(e) for e in later), default=None)
    directory = store.path.parent
    last: State | Row | None = None
    timed = sorted((r for r in rows if r.as_of is not None), key=lambda r: r.as_of)  # type: ignore[arg-type,return-value]
    for row in timed:
        if later and (earliest is None or earliest <= row.as_of):  # type: ignore[operator]
            last = _moved(
                store.load(snaps, row), log, directory, Cut(as_of=row.as_of), upto
            )
        else:
            last = row
        yield last
    after = last.as_of if last is not None else None
    for until in boundaries(index, upto):
        if last is not None and after is not None and until > after:
            if isinstance(last, Row):
                last = msgspec.structs.replace(store.load(snaps, last), position=upto)
            last = _moved(last, log, directory, Cut(as_of=until), upto)
            yield last
    every = [r for r in rows if r.as_of is None]
    if every:
        yield _moved(store.load(snaps, every[0]), log, directory, Cut(), upto)


def _moved(state: State, log: LogReader, directory: Path, cut: Cut, upto: int) -> State:
    """The snapshot of ``cut`` at position ``upto``, from ``state`` (of an earlier part
    of it)."""
    projector, _, last = project(state, log, directory, cut, upto)
    try:
        return capture(projector, log, cut.as_of, upto, last)
    finally:
        projector.close()


def _index(directory: Path) -> sqlite3.Connection:
    """The live read models, read only: their ``audit_log`` indexes the log by effective
    time."""
    path = Path(directory) / "projections.db"
    if not path.exists():
        raise LookupError(f"no read models at {path} to find events by effective time")
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        version = conn.execute("SELECT schema_version FROM projection").fetchone()
        if version is None or version[0] != schema.SCHEMA_VERSION:
            raise LookupError(f"the read models at {path} are of another version")
    except BaseException:
        conn.close()
        raise
    return conn


def _apply_delta(
    projector: Projector,
    log: LogReader,
    directory: Path,
    state: State,
    as_of: datetime | None,
    position: int,
) -> tuple[int, int]:
    """Apply D1 (the events up to the snapshot's position effective after its time, up
    to ``as_of``) and D2 (the events after its position up to ``position`` in force at
    ``as_of``), in log order; returns how many and the last position applied."""
    applied = last = 0

    def apply(rows: Iterable[tuple[int, str, int, ev.Event]]) -> None:
        nonlocal applied, last
        for n, stream, version, e in rows:
            projector.apply_event(n, stream, version, e)
            applied += 1
            last = n
            if len(projector.audit_rows) >= AT_ONCE:
                projector._clear_pending()  # the history rows are not written

    if state.as_of is not None and (as_of is None or as_of > state.as_of):
        with closing(_index(directory)) as index:
            (covered,) = index.execute("SELECT position FROM projection").fetchone()
            if covered < state.position:
                raise LookupError(
                    f"the read models reach position {covered}, "
                    f"the snapshot {state.position}"
                )
            apply(between(log, index, state.as_of, as_of, state.position))
    apply(
        (n, s, v, e)
        for page in log.pages(state.position, position)
        for n, s, v, e in page
        if holds_at(e, as_of)
    )
    projector._clear_pending()
    return applied, last


def _time(log: LogReader, cut: Cut, position: int) -> str | None:
    """The replay's time, as ``engine.replay`` sets it: the as-of time, else the
    knowledge cut, else the recorded time of the last event read."""
    time = cut.as_of or cut.known_at
    if time is None and position:
        recorded = _read(log, [position])[position].recorded_at
        time = None if recorded is None else instant(recorded)
    return None if time is None else format_instant(time)


def _write(
    conn: sqlite3.Connection,
    cut: Cut,
    projector: Projector,
    last: int,
    time: str | None,
    tables: frozenset[str] | None = None,
    platform: str | None = None,
) -> None:
    """The tables of ``ANSWERS`` (or ``tables``, of those) from the projector's state;
    the others dropped (and of ``queue`` only ``platform``'s rows, if given)."""
    tables = ANSWERS if tables is None else tables
    conn.execute("BEGIN")
    schema.drop(conn)
    for table in schema.TABLES:
        if table.name in tables or table is schema.PROJECTION:
            _create(conn, table)
    conn.execute(
        "INSERT INTO projection (id, schema_version, position, as_of, known_at, "
        "at_position, time) VALUES (1, ?, ?, ?, ?, ?, ?)",
        (
            schema.SCHEMA_VERSION,
            last,
            None if cut.as_of is None else format_instant(cut.as_of),
            None if cut.known_at is None else format_instant(cut.known_at),
            cut.at_position,
            time,
        ),
    )
    up = schema.upsert_sql
    if "partners" in tables:
        rows = [p.row() for p in projector.partners.values()]
        conn.executemany(up(schema.PARTNERS), rows)
    if "platforms" in tables:
        rows = [p.row() for p in projector.platforms.values()]
        conn.executemany(up(schema.PLATFORMS), rows)
    if "policies" in tables:
        conn.executemany(up(schema.POLICIES), projector.policies.rows())
    if "queue" in tables:
        for slug, q in projector.queues.items():
            if platform is not None and slug != platform:
                continue
            units = projector.platform(slug).units_per_month
            conn.executemany(up(schema.QUEUE), q.rows(units))
    conn.execute("COMMIT")


def _create(conn: sqlite3.Connection, table: schema.Table) -> None:
    """``table`` as ``schema.create`` makes it, without sqlite-utils (whose import, 70 ms
    or more, a replay from a snapshot does without): the same columns, types and key."""
    schema.create_table(conn, table)
    for index in table.indexes:
        cols = ", ".join(f'"{c}"' for c in index)
        name = f"idx_{table.name}_{'_'.join(index)}"
        conn.execute(f'CREATE INDEX "{name}" ON "{table.name}" ({cols})')


def build(
    log: LogReader,
    directory: Path,
    catch_up: Callable[[], None],
    notice: Callable[[str], None] | None = None,
) -> list[Row]:
    """Bring the snapshots up to the head (``arms-ledger snapshots``): those along
    effective time anew unless they are at the head, those along the log extended;
    snapshots of another log are discarded first. Returns them all."""
    store = Snapshots(directory)
    head = log.head()
    if head:
        catch_up()
        try:
            with closing(store.connect()) as snaps:
                rows = store.rows(snaps)
                if rows and (
                    max(r.position for r in rows) > head
                    or digest(log, rows[-1].position) != rows[-1].digest
                ):
                    raise ValueError("they are of another log")
        except DAMAGED as error:
            if notice is not None:
                notice(f"the snapshots in {store.path} were discarded ({error})")
            store.discard()
        with closing(store.connect()) as snaps:
            if _built(store.rows(snaps)) != head:
                _along_effective_time(store, snaps, log)
            _extend(store, snaps, log, head)
    return describe(directory)


def describe(directory: Path) -> list[Row]:
    """The snapshots there are (none if the file is missing)."""
    store = Snapshots(directory)
    if not store.path.exists():
        return []
    with closing(store.connect()) as snaps:
        return store.rows(snaps)


# --- made as the log grows ------------------------------------------------------------


class AlongTheLog:
    """The snapshots along the log a pass over it in log order makes as it goes (a
    rebuild's projector, ``rebuild._project_all``): after the event at each multiple of
    ``EVERY`` that has none yet, the projector's state is captured and stored, in a
    transaction of its own. ``usable`` is None where none can be made (a short log, a
    directory that cannot be written); snapshots of another log are discarded first."""

    def __init__(self, log: LogReader, directory: Path, head: int):
        self.log, self.store = log, Snapshots(directory)
        self.have: set[int] = set()
        self.made = 0
        self.usable = head > EVERY and _writable(self.store.path)
        if not self.usable:
            return
        try:
            with closing(self.store.connect()) as snaps:
                rows = self.store.rows(snaps)
                if rows and (
                    max(r.position for r in rows) > head
                    or digest(log, rows[-1].position) != rows[-1].digest
                ):
                    raise ValueError("they are of another log")
                self.have = {r.position for r in rows if r.kind == LOG}
        except DAMAGED:
            self.store.discard()

    def wants(self, position: int) -> bool:
        return self.usable and position % EVERY == 0 and position not in self.have

    def take(self, projector: Projector, position: int, last: int) -> None:
        """Capture ``projector`` (every event up to ``position`` applied, ``last`` the
        last) if a snapshot is wanted there; a failure to store it only stops making
        them (the pass goes on: snapshots are a cache)."""
        if not self.wants(position):
            return
        try:
            state = capture(projector, self.log, None, position, last)
            with closing(self.store.connect()) as snaps:
                snaps.execute("BEGIN IMMEDIATE")
                try:
                    self.store.put(snaps, LOG, [state], self.log)
                except BaseException:
                    snaps.execute("ROLLBACK")
                    raise
                snaps.execute("COMMIT")
        except DAMAGED:
            self.usable = False
            return
        self.have.add(position)
        self.made += 1


class Share(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """Side 1's share of a split rebuild's state at a position (``rebuild.Partition``):
    its cases not ended and the queues of its platforms. Side 0 holds the rest."""

    cases: dict[str, bytes]
    queues: list[QueuePart]


_decode_share = msgspec.msgpack.Decoder(Share).decode


class SplitAlongTheLog:
    """The snapshots along the log of a rebuild split between two processes
    (``rebuild.Partition``), each holding part of the state. At each position
    ``along`` wants, side 0 keeps its whole state (partners, platforms and policies are
    complete on both sides; the cases and queues are its own) and side 1 its
    ``Share``, each in a file of its own beside the read models being built; once both
    are done, ``store`` merges the two at each position into one snapshot, the one a
    pass in one process makes. A side that cannot keep its part stops keeping any:
    positions the other side alone has are not stored."""

    def __init__(self, along: AlongTheLog, build: Path):
        self.along = along
        self.files = [Path(f"{build}-snapshots{side}") for side in (0, 1)]
        self.discard()

    def wants(self, position: int) -> bool:
        return self.along.wants(position)

    def take(
        self,
        side: int,
        projector: Projector,
        position: int,
        mine: Callable[[str], bool],
    ) -> None:
        """Keep ``side``'s part at ``position`` (every event up to it applied);
        ``mine(platform)``: whether side 1 holds that platform's queue."""
        if not self.wants(position):
            return
        try:
            if side == 0:
                body = _encode(capture(projector, self.along.log, None, position, position))
            else:
                queues = [
                    QueuePart(slug, q.mode, [q.entries[c] for c in q.ids])
                    for slug, q in sorted(projector.queues.items())
                    if mine(slug)
                ]
                body = _encode(Share(_cases(projector), queues))
            with closing(sqlite3.connect(self.files[side])) as kept:
                kept.execute(
                    "CREATE TABLE IF NOT EXISTS part (position INTEGER PRIMARY KEY, body)"
                )
                kept.execute("INSERT INTO part VALUES (?, ?)", (position, body))
                kept.commit()
        except DAMAGED:
            self.along.usable = False

    def store(self) -> int:
        """Merge the two sides' parts into snapshots (one transaction); returns how
        many. The parts' files are removed."""
        made = 0
        try:
            if not all(f.exists() for f in self.files):
                return 0
            with (
                closing(sqlite3.connect(self.files[0])) as zero,
                closing(sqlite3.connect(self.files[1])) as one,
                closing(self.along.store.connect()) as snaps,
            ):
                snaps.execute("BEGIN IMMEDIATE")
                try:
                    for position, body in zero.execute(
                        "SELECT position, body FROM part ORDER BY position"
                    ):
                        found = one.execute(
                            "SELECT body FROM part WHERE position = ?", (position,)
                        ).fetchone()
                        if found is None:
                            continue
                        state, share = _decode(body), _decode_share(found[0])
                        cases = state.cases | share.cases
                        queues = {q.platform: q for q in state.queues}
                        queues.update((q.platform, q) for q in share.queues)
                        merged = msgspec.structs.replace(
                            state,
                            cases=dict(sorted(cases.items())),
                            queues=[queues[slug] for slug in sorted(queues)],
                        )
                        made += self.along.store.put(snaps, LOG, [merged], self.along.log)
                except BaseException:
                    snaps.execute("ROLLBACK")
                    raise
                snaps.execute("COMMIT")
        except DAMAGED:
            return 0
        finally:
            self.discard()
        self.along.made += made
        return made

    def discard(self) -> None:
        for path in self.files:
            for suffix in ("", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)


def keep_up(log: LogReader, directory: Path, before: int, head: int) -> int:
    """After a catch-up from position ``before`` to ``head`` (the live read models are
    there): when it passed a multiple of ``EVERY``, extend the snapshots along the log to
    the head if the last of them is at most ``REACH`` events behind (the extension
    restores it and applies the events since), and bring those along effective time
    forward if they are more than ``STALE`` events behind (``refreshed``: those no new
    event is in force at are only renamed). With none, or farther behind, they are left
    to a rebuild or the next replay of the past. Returns how many were made."""
    if head // EVERY == before // EVERY or head <= EVERY:
        return 0
    store = Snapshots(directory)
    if not store.path.exists() or not _writable(store.path):
        return 0
    try:
        with closing(store.connect()) as snaps:
            rows = store.rows(snaps)
            along = [r.position for r in rows if r.kind == LOG]
            made = 0
            if along and max(along) <= head and head - max(along) <= REACH:
                _extend(store, snaps, log, head)
                made += len([r for r in store.rows(snaps) if r.kind == LOG]) - len(along)
            timed = {r.position for r in rows if r.kind == EFFECTIVE}
            if len(timed) == 1 and head - min(timed) > STALE:
                _along_effective_time(store, snaps, log)
                made += 1
            return made
    except DAMAGED as error:
        if isinstance(error, sqlite3.OperationalError) and failure_kind(error) in (
            "locked",
            "full",
            "read-only",
            "io",
        ):
            return 0
        store.discard()
        return 0
