"""What enforcing authority costs on the write path: loading the fixture scenario
(911 events, 245 decisions) into a fresh SQLite ledger as it is, and its signed copy
(944 events: the directory's 33, then every decision signed) into a ledger that then
enforces authority; and one decision's check alone (canonical bytes, the key found in
the directory, the Ed25519 verification). CPU time of this process, best of
``--repeat``; prints a table.

    python -m bench.authority [--repeat 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from arms_ledger.cli.write import load_history
from arms_ledger.fixtures.tools.sign_scenario import SCENARIO, SIGNED
from arms_ledger.ledger.app.directory import create
from arms_ledger.ledger.domain import authority
from arms_ledger.ledger.domain import events as ev


def load(path: Path, history: Path) -> float:
    ledger = create(path, checkpoints="manual", store="sqlite")
    try:
        start = time.process_time()
        load_history(ledger, history)
        return time.process_time() - start
    finally:
        ledger.close()


def check_one(repeat: int) -> float:
    lines = SIGNED.read_bytes().splitlines()
    events = [ev.decoder.decode(line) for line in lines]
    head = [e for e in events if isinstance(e, ev.DirectoryEvent)]
    directory = authority.fold_directory(tuple(head))
    decisions = [e for e in events if e.DECISION and not isinstance(e, ev.DirectoryEvent)]
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        for e in decisions:
            authority.check(e, directory)
        best = min(best, (time.process_time() - start) / len(decisions))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, history in (
            ("scenario, unsigned", SCENARIO),
            ("signed, enforced", SIGNED),
        ):
            best = min(
                load(Path(tmp) / f"{name[:4]}{i}", history) for i in range(args.repeat)
            )
            rows.append((f"load {name}", f"{best:.3f} s"))
    rows.append(("one decision's check", f"{check_one(args.repeat) * 1e6:.0f} µs"))
    print(f"| what | CPU time (best of {args.repeat}) |")
    print("|---|---|")
    for what, value in rows:
        print(f"| {what} | {value} |")


if __name__ == "__main__":
    main()
