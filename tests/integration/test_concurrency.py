"""Several processes appending to one ledger at once, on SQLite and on PostgreSQL.

Every writer is a process of its own (``spawn``) with its own ``Ledger``, as separate
``arms-ledger append`` commands (or offices) would be. A barrier starts them together.

The writer pools (eight spawned processes, thousands of appends) are marked slow; the race
of two ``arms-ledger append`` commands on one case takes a few seconds and stays in the
quick loop.
"""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
from arms_ledger.ledger.app import transparency
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.app.directory import create, open_ledger
from arms_ledger.ledger.domain.clock import instant
from arms_ledger.ledger.errors import BatchRefused
from arms_ledger.ledger.transparency import tlog
from arms_ledger.projections import engine

from tests.histories import EVERY_TYPE, decode, jsonl
from tests.integration.projection_tables import assert_same_read_models

WRITERS = 8
EVENTS_PER_WRITER = 500
BATCHES = (2, 10, 4, 20, 6, 8)  # events per append, in turn: 2 per case
# A writer that dies (say, on an import error in the spawned process) must fail the test,
# not hang it: the pool loses its task and the others would wait at the barrier forever.
BARRIER_TIMEOUT = 120  # seconds for every writer to be ready
RESULT_TIMEOUT = 600  # seconds for all the writers' work


def _case_events(writer: int, n: int) -> list[dict]:
    case = f"W{writer}-{n}"
    return [
        {
            "type": "CaseFiled",
            "case": case,
            "partner": "POL",
            "platform": "ah-64e",
            "quantity": 2,
            "estimated_value_usd": 1_000_000,
            "channel": "FMS",
            "actor": f"writer{writer}",
            "effective_at": "2025-01-01",
        },
        {
            "type": "CaseReviewCleared",
            "case": case,
            "office": "DSCA",
            "actor": f"writer{writer}",
            "rationale": "ok",
            "effective_at": "2025-01-02",
        },
    ]


def _writer(path: str, writer: int, barrier, catch_up: bool) -> list[tuple[int, str]]:
    """Append EVENTS_PER_WRITER events in batches; return what was acknowledged:
    (position, stream) per event, in the order the writer appended them."""
    ledger = open_ledger(Path(path))
    records = [r for n in range(EVENTS_PER_WRITER // 2) for r in _case_events(writer, n)]
    acknowledged = []
    barrier.wait()
    start, turn = 0, 0
    while start < len(records):
        batch = decode(records[start : start + BATCHES[turn % len(BATCHES)]])
        result = ledger.append(batch)
        assert not result.skipped
        acknowledged += [
            (p, e.stream) for p, e in zip(result.positions, batch, strict=True)
        ]
        if catch_up:  # as every appending command does
            engine.live(ledger.reader, Path(path)).close()
        start += len(batch)
        turn += 1
    ledger.close()
    return acknowledged


def _run_writers(ledger_dir: Path, catch_up: bool = False) -> list[list[tuple]]:
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(WRITERS, timeout=BARRIER_TIMEOUT)
        with context.Pool(WRITERS) as pool:
            return pool.starmap_async(
                _writer, [(str(ledger_dir), w, barrier, catch_up) for w in range(WRITERS)]
            ).get(timeout=RESULT_TIMEOUT)


@pytest.mark.slow
def test_eight_writers_lose_duplicate_and_reorder_nothing(ledger, ledger_dir):
    seed = ledger.append(decode(EVERY_TYPE[:18])).positions
    results = _run_writers(ledger_dir)
    records = list(ledger.read())
    total = len(seed) + WRITERS * EVENTS_PER_WRITER
    assert len(records) == total
    # positions are 1..n, each once (a gap or a repeat would break the Merkle tree)
    assert [r.position for r in records] == list(range(1, total + 1))
    # every acknowledged position holds the event the writer appended there
    by_position = {r.position: r for r in records}
    acknowledged = [a for result in results for a in result]
    assert (
        len(acknowledged)
        == len({a[0] for a in acknowledged})
        == WRITERS * EVENTS_PER_WRITER
    )
    for position, stream in acknowledged:
        assert by_position[position].stream == stream
    # each writer's events are in the log in the order it appended them
    for writer, result in enumerate(results):
        positions = [a[0] for a in result]
        assert positions == sorted(positions)
        assert {by_position[p].event.actor for p in positions} == {f"writer{writer}"}
    # each case's two events once each, in order; recorded_at strictly increasing
    versions: dict[str, list[int]] = {}
    for r in records[len(seed) :]:
        versions.setdefault(r.stream, []).append(r.version)
    assert len(versions) == WRITERS * EVENTS_PER_WRITER // 2
    assert all(v == [1, 2] for v in versions.values())
    stamps = [instant(r.event.recorded_at) for r in records]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    # the Merkle tree covers every event once, in log order; every checkpoint the writers
    # signed (one per append) verifies against it and they grow with the log
    report = transparency.verify(ledger)
    assert report.events == total
    sizes = [c.size for c in transparency.checkpoints(ledger)]
    appends = 1 + sum(len(_batches(EVENTS_PER_WRITER)) for _ in range(WRITERS))
    assert len(sizes) == appends and sizes == sorted(set(sizes)) and sizes[-1] == total


def _batches(events: int) -> list[int]:
    sizes, turn = [], 0
    while events > 0:
        sizes.append(min(events, BATCHES[turn % len(BATCHES)]))
        events -= sizes[-1]
        turn += 1
    return sizes


@pytest.mark.slow
def test_read_models_of_eight_writers_converge(ledger, ledger_dir, tmp_path):
    ledger.append(decode(EVERY_TYPE[:18]))
    _run_writers(ledger_dir, catch_up=True)
    live = engine.connect(ledger_dir / engine.PROJECTIONS_DB)
    engine.catch_up(ledger.reader, live)  # the last writer may have been overtaken
    engine.rebuild(ledger.reader, tmp_path / "rebuilt.db")
    rebuilt = engine.connect(tmp_path / "rebuilt.db")
    assert_same_read_models(live, rebuilt)
    queued = live.execute("SELECT count(*) FROM queue").fetchone()[0]
    assert queued == WRITERS * EVENTS_PER_WRITER // 2
    live.close()
    rebuilt.close()


# --- writers racing on the same streams ---------------------------------------------------


def test_two_appends_racing_on_one_case_one_wins_one_is_refused(
    ledger, ledger_dir, tmp_path
):
    """Two ``arms-ledger append`` processes clear the same case. A barrier (see
    tests/integration/racer.py) holds each one after it has decided its batch and before
    it writes, until both have decided: both read the case as filed and not yet cleared.
    One write lands; the store refuses the other (a conflict), whose decision is re-run on
    the winner's event and refused by rule 2. Without the conflict check both would
    append a clearance and the case would hold two."""
    ledger.append(decode(EVERY_TYPE[:18] + _case_events(0, 0)[:1]))
    clear = tmp_path / "clear.jsonl"
    clear.write_text(jsonl(_case_events(0, 0)[1:]))
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    command = [
        sys.executable,
        "-m",
        "tests.integration.racer",
        str(barrier),
        "2",
        "--ledger",
        str(ledger_dir),
        "append",
        str(clear),
    ]
    racers = [
        subprocess.Popen(
            command,
            cwd=Path(__file__).parents[2],  # where `tests` is importable
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outcomes = sorted((p.wait(timeout=120), *p.communicate()) for p in racers)
    (won, won_out, won_err), (lost, _, lost_err) = outcomes
    assert (won, lost) == (0, 1), (won_err, lost_err)
    # both decided before either wrote: one write landed, the other was refused by the
    # store and decided again (on the winner's event, which it then refused)
    attempts = sorted(
        p.name.split(".")[-1] for p in barrier.iterdir() if "ready" not in p.name
    )
    assert attempts == ["conflict", "written"]
    assert len(list(barrier.glob("ready.*"))) == 2
    assert "Appended 1 event" in won_out
    assert lost_err.count("\n") == 1 and "Traceback" not in lost_err, lost_err
    assert "refused by rule 2 (order)" in lost_err, lost_err
    cleared = [r for r in ledger.read() if r.stream == "case:W0-0"]
    assert [type(r.event).__name__ for r in cleared] == ["CaseFiled", "CaseReviewCleared"]


def _suspend(path: str, barrier) -> str:
    ledger = open_ledger(Path(path))
    barrier.wait()
    ledger.append(
        decode(
            [
                {
                    "type": "PartnerSuspended",
                    "partner": "POL",
                    "actor": "state.pm-rsat",
                    "rationale": "race",
                }
            ]
        )
    )
    ledger.close()
    return "suspended"


def _file(path: str, writer: int, barrier) -> str:
    ledger = open_ledger(Path(path))
    case = {**_case_events(writer, 0)[0]}
    del case["effective_at"]  # filed now, like the suspension
    barrier.wait()
    try:
        ledger.append(decode([case]))
    except BatchRefused as error:
        return str(error)
    finally:
        ledger.close()
    return "filed"


@pytest.mark.slow
def test_a_case_filed_while_its_partner_is_suspended_elsewhere_is_decided_on_the_new_state(
    ledger: Ledger, ledger_dir: Path, tmp_path: Path
):
    """Writers that read a stream they do not write (the partner) must not commit a
    decision the other writer's event made wrong: the log must always pass its own rules
    again, which is what a replica does with an export."""
    ledger.append(decode(EVERY_TYPE[:18]))
    for round_ in range(3):
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            barrier = manager.Barrier(WRITERS, timeout=BARRIER_TIMEOUT)
            with context.Pool(WRITERS) as pool:
                pending = [pool.apply_async(_suspend, (str(ledger_dir), barrier))]
                pending += [
                    pool.apply_async(_file, (str(ledger_dir), 100 * round_ + w, barrier))
                    for w in range(1, WRITERS)
                ]
                outcomes = [p.get(timeout=RESULT_TIMEOUT) for p in pending]
        assert outcomes[0] == "suspended"
        for outcome in outcomes[1:]:
            assert outcome == "filed" or "is suspended" in outcome, outcome
        # the log passes every rule again, in a replica made from its export
        export = tmp_path / f"export-{round_}"
        transparency.export(ledger, export)
        assert ledger.signer is not None
        checked = tlog.read_export(export, ledger.signer.verifier)
        replica = create(tmp_path / f"replica-{round_}", store="sqlite")
        try:
            assert transparency.import_export(replica, checked) == ledger.head()
        finally:
            replica.close()
        ledger.append(
            decode(
                [
                    {
                        "type": "PartnerReinstated",
                        "partner": "POL",
                        "actor": "state.pm-rsat",
                        "rationale": "next round",
                    }
                ]
            )
        )
