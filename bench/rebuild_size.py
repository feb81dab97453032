"""Rebuild CPU and the size of the read models, on a kept ledger (issue 14, item 2).

Rebuilds the read models of a ledger made by ``bench.projections --keep DIR`` (e.g.
``DIR/large-16000-200000``) into a fresh file, in a child process, ``--repeat`` times,
and prints for each run the child's CPU time (every thread: the projector, the writer and
SQLite's sorter) and that of the rebuild's other processes (``audit_log``, the other
side's cases and queues), events per CPU-second of all of them and the rate two free
cores would allow, peak resident memory (the first process's, the largest other's, and
of all of them at once, sampled every 0.1 s), wall time, the sizes of
``projections.db`` and ``events.db`` and the rows of ``queue_changes``.
The child imports ``arms_ledger`` as this process finds it: to measure another commit,
put a copy of its packages first on ``PYTHONPATH`` (docs/benchmarks.md, "The lean
queue_changes").

    python -m bench.rebuild_size DIR/large-16000-200000 [--repeat 3] [--out FILE.db]

The rebuild makes the snapshots along the log on its way (``snapshots.AlongTheLog``,
into the temporary directory, dropped before each run): ``snapshots`` is how many,
``snapshots_cpu_s`` the CPU of making them (within ``cpu_s``); ``--no-snapshots`` makes
none.

``--catch-up`` then copies the ledger with the read models just built and times, in a
child, the catch-up after each of 10 appended ``CaseFiled`` on the longest queue (each
shifts the cases behind it; median).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import os, resource, sqlite3, sys, threading, time
from pathlib import Path
import arms_ledger.projections
from arms_ledger.ledger.app.directory import open_ledger
from arms_ledger.projections import engine, snapshots

def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0

def tree(pid):
    found = [pid]
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                for child in f.read().split():
                    found += tree(int(child))
    except OSError:
        pass
    return found

peak = [0.0]
def sample():  # the resident memory of the rebuild's processes together
    while True:
        peak[0] = max(peak[0], sum(rss_mb(p) for p in tree(os.getpid())))
        time.sleep(0.1)

threading.Thread(target=sample, daemon=True).start()
ledger = open_ledger(Path(sys.argv[1]))
out = Path(sys.argv[2])
snapshots.Snapshots(out.parent).discard()
if sys.argv[3] == "0":  # no snapshots made on the way: none wanted
    snapshots.EVERY = 10**15
taking = [0.0]
take = snapshots.AlongTheLog.take
def timed(self, *args):
    started = time.process_time()
    take(self, *args)
    taking[0] += time.process_time() - started
snapshots.AlongTheLog.take = timed
wall, cpu = time.perf_counter(), time.process_time()
count = engine.rebuild(ledger.reader, out)
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
made = snapshots.describe(out.parent)
size = (out.parent / snapshots.FILE).stat().st_size if made else 0
ledger.close()
conn = sqlite3.connect(out)
rows = conn.execute("SELECT count(*) FROM queue_changes").fetchone()[0]
conn.close()
code = Path(arms_ledger.projections.__file__).parent
others = resource.getrusage(resource.RUSAGE_CHILDREN)  # the rebuild's other processes
me = resource.getrusage(resource.RUSAGE_SELF)
print(count, cpu, wall, out.stat().st_size, rows, code, others.ru_utime + others.ru_stime,
      me.ru_maxrss / 1024, others.ru_maxrss / 1024, peak[0], len(made), taking[0], size)
"""


def rebuild_once(ledger: Path, out: Path, snapshots: bool = True) -> dict:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{out}{suffix}").unlink(missing_ok=True)
    found = subprocess.run(
        [sys.executable, "-c", CHILD, str(ledger), str(out), "1" if snapshots else "0"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    events, cpu, others = int(found[0]), float(found[1]), float(found[6])
    return {
        "events": events,
        "cpu_s": round(cpu, 2),
        "cpu_other_processes_s": round(others, 2),
        "cpu_all_s": round(cpu + others, 2),
        "events_per_cpu_s": round(events / (cpu + others)),
        # The wall time two free cores would allow: the first process's CPU, or half
        # of all of it if the others' is more.
        "events_per_s_two_cores": round(events / max(cpu, (cpu + others) / 2)),
        "wall_s": round(float(found[2]), 2),
        "peak_rss_mb": {
            "first": round(float(found[7])),
            "largest_other": round(float(found[8])),
            "all_at_once": round(float(found[9])),
        },
        "projections_mb": round(int(found[3]) / 1e6, 1),
        "events_mb": round((ledger / "events.db").stat().st_size / 1e6, 1),
        "queue_changes_rows": int(found[4]),
        "code": found[5],
        "snapshots": int(found[10]),
        "snapshots_cpu_s": round(float(found[11]), 2),
        "snapshots_mb": round(int(found[12]) / 1e6, 1),
    }


CATCH_UP = """
import statistics, sys, time
from pathlib import Path
from arms_ledger.ledger.app.directory import open_ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import engine
path = Path(sys.argv[1])
ledger = open_ledger(path)
conn = engine.live(ledger.reader, path)
platform, partner, cases = conn.execute(
    "SELECT platform, min(partner), count(*) FROM queue GROUP BY platform "
    "ORDER BY count(*) DESC, platform"
).fetchone()
times = []
for n in range(10):
    ledger.append([ev.CaseFiled(case=f"BENCH-{n}", partner=partner, platform=platform,
        quantity=1, estimated_value_usd=1_000_000, channel="FMS", actor="bench")])
    started = time.perf_counter()
    engine.catch_up(ledger.reader, conn)
    times.append(time.perf_counter() - started)
shifted = conn.execute(
    "SELECT count(*) FROM queue_changes WHERE change = 'shifted' AND event_position = "
    "(SELECT max(position) FROM audit_log)").fetchone()[0]
print(platform, cases, shifted, statistics.median(times))
"""


def catch_up_after_filing(ledger: Path, built: Path, work: Path) -> dict:
    copy = work / "catch-up"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(ledger, copy)
    shutil.copyfile(built, copy / "projections.db")
    found = subprocess.run(
        [sys.executable, "-c", CATCH_UP, str(copy)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    shutil.rmtree(copy)
    return {
        "platform": found[0],
        "queue": int(found[1]),
        "shifted": int(found[2]),
        "catch_up_ms": round(float(found[3]) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("ledger", type=Path, help="a ledger kept by bench.projections")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, help="where to build (default: a temp file)")
    parser.add_argument("--catch-up", action="store_true", help="time a catch-up too")
    parser.add_argument(
        "--no-snapshots",
        action="store_true",
        help="make no snapshots along the log on the way (else the rebuild makes them, "
        "into the temporary directory: their CPU is in cpu_s and snapshots_cpu_s)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = args.out or Path(tmp) / "projections.db"
        for _ in range(args.repeat):
            print(rebuild_once(args.ledger, out, not args.no_snapshots), flush=True)
        if args.catch_up:
            print(catch_up_after_filing(args.ledger, out, Path(tmp)), flush=True)


if __name__ == "__main__":
    main()
