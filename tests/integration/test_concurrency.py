"""Several processes appending to one SQLite ledger at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from ledger.application import open_ledger
from ledger.decision import instant
from tests.histories import EVERY_TYPE, decode

WRITERS = 4
CASES_PER_WRITER = 25


def _writer(path: str, writer: int) -> list[int]:
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
