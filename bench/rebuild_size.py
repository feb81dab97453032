"""Rebuild CPU and the size of the read models, on a kept ledger (issue 14, item 2).

Rebuilds the read models of a ledger made by ``bench.projections --keep DIR`` (e.g.
``DIR/large-16000-200000``) into a fresh file, in a child process, ``--repeat`` times,
and prints for each run the child's CPU time (every thread: the projector, the writer and
SQLite's sorter), wall time, the sizes of ``projections.db`` and ``events.db`` and the
rows of ``queue_changes``. The child imports ``arms_ledger`` as this process finds it:
to measure another commit, put a copy of its packages first on ``PYTHONPATH``
(docs/benchmarks.md, "The lean queue_changes").

    python -m bench.rebuild_size DIR/large-16000-200000 [--repeat 3] [--out FILE.db]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import sqlite3, sys, time
from pathlib import Path
import arms_ledger.projections
from arms_ledger.ledger.app.directory import open_ledger
from arms_ledger.projections import engine
ledger = open_ledger(Path(sys.argv[1]))
out = Path(sys.argv[2])
wall, cpu = time.perf_counter(), time.process_time()
count = engine.rebuild(ledger.reader, out)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
ledger.close()
conn = sqlite3.connect(out)
rows = conn.execute("SELECT count(*) FROM queue_changes").fetchone()[0]
conn.close()
print(count, cpu, wall, out.stat().st_size, rows, Path(arms_ledger.projections.__file__).parent)
"""


def rebuild_once(ledger: Path, out: Path) -> dict:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    found = subprocess.run(
        [sys.executable, "-c", CHILD, str(ledger), str(out)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    return {
        "events": int(found[0]),
        "cpu_s": round(float(found[1]), 2),
        "wall_s": round(float(found[2]), 2),
        "projections_mb": round(int(found[3]) / 1e6, 1),
        "events_mb": round((ledger / "events.db").stat().st_size / 1e6, 1),
        "queue_changes_rows": int(found[4]),
        "code": found[5],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ledger", type=Path, help="a ledger kept by bench.projections")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help="where to build (default: a temp file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "projections.db"
        for _ in range(args.repeat):
            print(rebuild_once(args.ledger, out), flush=True)


if __name__ == "__main__":
    main()
