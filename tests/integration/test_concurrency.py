"""Several processes appending to one SQLite ledger at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from ledger.application import open_ledger
from ledger.decision import instant
from projections import engine
from tests.histories import EVERY_TYPE, decode
from tests.integration.projection_tables import assert_same_read_models

WRITERS = 4
CASES_PER_WRITER = 25


def _writer(path: str, writer: int, catch_up: bool = False) -> list[int]:
    ledger = open_ledger(Path(path))
    positions = []
    for n in range(CASES_PER_WRITER):
        case = f"W{writer}-{n}"
        records = [
            {"type": "CaseFiled", "case": case, "partner": "POL", "platform": "ah-64e",
             "quantity": 2, "estimated_value_usd": 1_000_000, "channel": "FMS",
             "actor": f"writer{writer}", "effective_at": "2025-01-01"},
            {"type": "CaseReviewCleared", "case": case, "office": "DSCA",
             "actor": f"writer{writer}", "rationale": "ok", "effective_at": "2025-01-02"},
        ]
        positions += ledger.append(decode(records)).positions
        if catch_up:  # as every appending command does
            engine.live(ledger, Path(path)).close()
    ledger.close()
    return positions


def test_concurrent_writers_lose_nothing_and_keep_order(ledger, ledger_dir):
    ledger.append(decode(EVERY_TYPE[:18]))
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS) as pool:
        results = pool.starmap(_writer, [(str(ledger_dir), w) for w in range(WRITERS)])
    acknowledged = sorted(p for positions in results for p in positions)
    records = list(ledger.read())
    assert len(records) == 18 + WRITERS * CASES_PER_WRITER * 2
    assert acknowledged == [r.position for r in records[18:]]
    # each case's two events are in order, once each
    per_case: dict[str, list[int]] = {}
    for r in records[18:]:
        per_case.setdefault(r.stream, []).append(r.version)
    assert all(v == [1, 2] for v in per_case.values())
    stamps = [instant(r.event.recorded_at) for r in records]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
    # the Merkle tree covers every event once, in log order, and every checkpoint the
    # writers signed (one per append) is a prefix of it
    report = ledger.verify()
    assert report.events == len(records)
    sizes = [c.size for c in ledger.checkpoints()]
    assert len(sizes) == 1 + WRITERS * CASES_PER_WRITER and sizes == sorted(set(sizes))


def test_concurrent_catch_ups_apply_every_event_once(ledger, ledger_dir, tmp_path):
    ledger.append(decode(EVERY_TYPE[:18]))
    context = multiprocessing.get_context("spawn")
    with context.Pool(WRITERS) as pool:
        pool.starmap(_writer, [(str(ledger_dir), w, True) for w in range(WRITERS)])
    live = engine.connect(ledger_dir / engine.PROJECTIONS_DB)
    engine.catch_up(ledger, live)  # the last writer may have been overtaken
    engine.rebuild(ledger, tmp_path / "rebuilt.db")
    rebuilt = engine.connect(tmp_path / "rebuilt.db")
    assert_same_read_models(live, rebuilt)
    queued = live.execute("SELECT count(*) FROM queue").fetchone()[0]
    assert queued == WRITERS * CASES_PER_WRITER
