"""The transparency log: what the Merkle tree costs the append path, and what audits cost.

Loads a generated history (``fixtures.tools.generate``, seeded) into fresh ledgers, in
batches of 1,000 events, with the tree maintained as always: once signing a checkpoint after
every batch, once with ``--checkpoints manual``. Then on the loaded ledger: ``verify``
(every leaf, node and checkpoint), ``export``, the offline check of the export
(``read_export``), and the median latency of an inclusion and a consistency proof and of
signing a checkpoint. Prints a table and writes bench/results/tlog.json.

    python -m bench.tlog [--open-cases 4000] [--events 100000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import msgspec
from arms_ledger.ledger.app import transparency
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.transparency import tlog

from fixtures.tools.generate import generate

BATCH = 1000


def load(path: Path, events: Sequence[ev.Event], checkpoints: str) -> float:
    """Seconds to append the history in batches of BATCH through ``Ledger.append`` (the
    full write path: decisions, store, tree, and a checkpoint per batch if asked)."""
    ledger = create(path, checkpoints=checkpoints)
    started = time.perf_counter()
    for i in range(0, len(events), BATCH):
        ledger.append(events[i : i + BATCH])
    took = time.perf_counter() - started
    ledger.close()
    return took


def median_ms(fn, repeat: int = 50) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--open-cases", type=int, default=4000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench/results/tlog.json"))
    args = parser.parse_args()
    lines = generate(open_cases=args.open_cases, events=args.events, with_recorded_at=True)
    events = [  # the ledger stamps recorded_at itself
        msgspec.structs.replace(ev.decoder.decode(line), recorded_at=None) for line in lines
    ]
    n = len(events)
    row: dict[str, float | int] = {"events": n}
    with tempfile.TemporaryDirectory() as tmp:
        for policy in ("append", "manual"):
            took = [
                load(Path(tmp) / f"{policy}{r}", events, policy) for r in range(args.repeat)
            ]
            row[f"append_{policy}_events_per_s"] = round(n / statistics.median(took))
        from arms_ledger.ledger.app.directory import open_ledger

        path = Path(tmp) / "append0"
        ledger = open_ledger(path)
        verify = [transparency.verify(ledger).seconds for _ in range(args.repeat)]
        row["verify_s"] = round(statistics.median(verify), 2)
        started = time.perf_counter()
        transparency.export(ledger, Path(tmp) / "export")
        row["export_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        assert ledger.signer is not None
        tlog.read_export(Path(tmp) / "export", ledger.signer.verifier)
        row["read_export_s"] = round(time.perf_counter() - started, 2)
        rnd = random.Random(2026)
        row["inclusion_proof_ms"] = median_ms(
            lambda: transparency.prove_inclusion(ledger, rnd.randrange(n))
        )
        row["consistency_proof_ms"] = median_ms(
            lambda: transparency.prove_consistency(ledger, rnd.randrange(1, n))
        )
        row["sign_checkpoint_ms"] = median_ms(lambda: transparency.sign_checkpoint(ledger))
        ledger.close()
    for key, value in row.items():
        print(f"{key:28} {value:,}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {"python": platform.python_version(), "repeat": args.repeat, "results": [row]},
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
