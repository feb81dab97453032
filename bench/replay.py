"""Replays of the past from snapshots (issue 14 item 1): ``queue P --as-of T``,
``--known-at T``, ``--at-position N`` and ``audit diff`` over one month, with and without
snapshots, on generated ledgers of ``--sizes`` events.

For each size it loads a ledger (``fixtures.tools.generate``, seeded, as
``bench.catchup``; reused from ``--keep DIR``), drops its snapshots and times
``arms-ledger snapshots`` building them (wall; their bytes on disk), then runs each
command in a new process (the installed ``arms-ledger``) ``--repeat`` times and reports
the median wall and CPU time (user + system, of the child). Without snapshots is the
same question answered in this process by a replay from the first event
(``engine.read_models`` without ``answers``), timed once (``--no-full`` skips it: at a
million events each takes minutes). Prints a table and writes bench/results/replay.json.

    python -m bench.replay [--sizes 100000,1000000] [--keep DIR] [--repeat 3] [--no-full]
                           [--reuse-snapshots]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from arms_ledger.ledger.app.directory import open_ledger
from arms_ledger.ledger.domain.clock import instant
from arms_ledger.projections import audit_queries, diffs, engine, queries, snapshots
from arms_ledger.projections.runner import Cut

from bench.catchup import ledger_at

PLATFORM = "f-35a"
AS_OF = "2018-02-01"
MONTH_BEFORE = "2018-01-01"
OPEN_PER_EVENT = 0.016  # open cases per event, as bench.catchup's 16,000 at 1M
TARGET_S = 0.5  # each queue replay, wall
DIFF_TARGET_S = 1.0  # audit diff over one month, one platform
READ_TARGET_S = 1.0  # a read of the web (Datasette's time limit)


def script() -> str:
    return str(Path(sys.executable).with_name("arms-ledger"))


def child(args: list[str]) -> tuple[float, float, subprocess.CompletedProcess]:
    """Wall and CPU seconds of one run of ``arms-ledger`` with ``args``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([script(), *args], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode:
        raise SystemExit(f"arms-ledger {' '.join(args)} failed: {done.stderr.strip()}")
    return wall, cpu, done


def questions(path: Path) -> list[tuple[str, list[str], Cut | None]]:
    """(label, arguments, the cut of the full replay to compare) for one ledger."""
    ledger = open_ledger(path)
    try:
        log = ledger.reader
        head = log.head()
        middle = head // 2
        known = log.at([middle])[middle].recorded_at
    finally:
        ledger.close()
    assert known is not None
    return [
        (f"queue {PLATFORM} --as-of {AS_OF}", ["queue", PLATFORM, "--as-of", AS_OF], None),
        (
            f"queue {PLATFORM} --known-at (event {middle:,})",
            ["queue", PLATFORM, "--known-at", known],
            None,
        ),
        (
            f"queue {PLATFORM} --at-position {middle:,}",
            ["queue", PLATFORM, "--at-position", str(middle)],
            None,
        ),
        (
            f"audit diff --from {MONTH_BEFORE} --to {AS_OF} --platform {PLATFORM}",
            [
                "audit",
                "diff",
                "--from",
                MONTH_BEFORE,
                "--to",
                AS_OF,
                "--platform",
                PLATFORM,
            ],
            None,
        ),
    ]


def full(path: Path, args: list[str]) -> float:
    """The same question by replays from the first event, in this process (wall s)."""
    ledger = open_ledger(path)
    log = ledger.reader
    started = time.perf_counter()
    try:
        if args[0] == "audit":
            t1, t2 = instant(args[3]), instant(args[5])
            with tempfile.TemporaryDirectory() as tmp:
                before = engine.connect(Path(tmp) / "before.db")
                after = engine.connect(Path(tmp) / "after.db")
                changes = diffs.between(
                    log, path, before, after, t1, t2, platform=PLATFORM, snapshot=False
                )
                audit_queries.diff(before, after, changes, PLATFORM)
                before.close()
                after.close()
        else:
            option, value = args[2], args[3]
            cut = {
                "--as-of": lambda: Cut(as_of=instant(value)),
                "--known-at": lambda: Cut(known_at=instant(value)),
                "--at-position": lambda: Cut(at_position=int(value)),
            }[option]()
            with engine.read_models(log, path, cut) as conn:
                queries.queue(conn, PLATFORM)
    finally:
        ledger.close()
    return time.perf_counter() - started


# Reads of a case's queue changes (issue 14 item 2: Datasette's limit is 1 s), in this
# process on the live read models: (label, SQL, parameters of the case).
def reads(case: str) -> list[tuple[str, str, dict[str, str]]]:
    from arms_ledger.projections.views import case_changes
    from arms_ledger.projections.web.canned import CASE_TRAIL

    return [
        (
            "one case's rows of the view queue_changes",
            'SELECT * FROM queue_changes WHERE "case" = :case ORDER BY id',
            {"case": case},
        ),
        (
            "one case's rows by views.case_changes",
            f"{case_changes(':case')} ORDER BY id",
            {"case": case},
        ),
        ("canned query case_trail", CASE_TRAIL.sql, {"case": case}),
        (
            "Datasette's queue_changes page (sorted by id, 101 rows)",
            "SELECT * FROM queue_changes ORDER BY id DESC LIMIT 101",
            {},
        ),
    ]


def time_reads(path: Path, repeat: int) -> list[dict[str, Any]]:
    """Wall and CPU of each of ``reads``, best of ``repeat`` (one run if over 5 s), on a
    case of the middle of the platform's queue (the rows of the first two compared)."""
    import sqlite3

    db = path / engine.PROJECTIONS_DB
    conn = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    try:
        (n,) = conn.execute(
            "SELECT count(*) FROM queue WHERE platform = ?", (PLATFORM,)
        ).fetchone()
        (case,) = conn.execute(
            'SELECT "case" FROM queue WHERE platform = ? AND position = ?',
            (PLATFORM, max(1, n // 2)),
        ).fetchone()
        out, found = [], []
        for label, sql, params in reads(case):
            walls, cpus = [], []
            for _ in range(repeat):
                started, cpu = time.perf_counter(), time.process_time()
                rows = conn.execute(sql, params).fetchall()
                walls.append(time.perf_counter() - started)
                cpus.append(time.process_time() - cpu)
                if walls[-1] > 5:  # far over its target: once is enough
                    break
            found.append(rows)
            out.append(
                {
                    "read": f"{label} ({case})" if params else label,
                    "rows": len(rows),
                    "wall_s": round(min(walls), 3),
                    "cpu_s": round(min(cpus), 3),
                }
            )
        assert found[0] == found[1], "views.case_changes differs from the view"
    finally:
        conn.close()
    return out


def measure(
    path: Path, repeat: int, with_full: bool, rebuild: bool = True
) -> dict[str, Any]:
    if rebuild or not snapshots.describe(path):
        snapshots.Snapshots(path).discard()
    wall, cpu, _ = child(["--ledger", str(path), "snapshots"])  # (building what is missing)
    found = snapshots.describe(path)
    out: dict[str, Any] = {
        "build_s": round(wall, 2),
        "build_cpu_s": round(cpu, 2),
        "snapshots": len(found),
        "snapshot_bytes": sum(r.size for r in found),
        "file_bytes": (path / snapshots.FILE).stat().st_size,
        "questions": [],
    }
    out["reads"] = time_reads(path, repeat)
    for label, args, _ in questions(path):
        argv = ["--ledger", str(path), *args]
        runs = [child(argv) for _ in range(repeat)]
        from_zero = full(path, args) if with_full else None
        out["questions"].append(
            {
                "question": label,
                "wall_s": round(statistics.median(r[0] for r in runs), 3),
                "cpu_s": round(statistics.median(r[1] for r in runs), 3),
                "full_replay_wall_s": None if from_zero is None else round(from_zero, 2),
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--keep", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-full", action="store_true")
    parser.add_argument(
        "--reuse-snapshots",
        action="store_true",
        help="keep the snapshots a ledger has (the build time is then of none)",
    )
    parser.add_argument("--out", type=Path, default=Path("bench/results/replay.json"))
    args = parser.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-replay-"))
    results: dict[str, Any] = {}
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            path = ledger_at(work, "sqlite", "large", round(size * OPEN_PER_EVENT), size)
            results[str(size)] = measure(
                path, args.repeat, not args.no_full, not args.reuse_snapshots
            )
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    machine = f"{platform.python_implementation()} {platform.python_version()}, "
    machine += f"{os.cpu_count()} CPUs, {platform.machine()}"
    print(
        f"\n{machine}; snapshots every {snapshots.EVERY:,} events along the log, "
        f"{snapshots.EFFECTIVE_EVERY:,} along effective time\n"
    )
    print(
        f"{'events':>10}  {'question':<62} {'wall s':>7} {'CPU s':>7} {'target':>8} "
        f"{'from zero s':>11}"
    )
    for label, r in results.items():
        for q in r["questions"]:
            zero = q["full_replay_wall_s"]
            target = (
                f"<= {DIFF_TARGET_S if q['question'].startswith('audit') else TARGET_S}"
            )
            print(
                f"{int(label):>10,}  {q['question']:<62} {q['wall_s']:>7.3f} "
                f"{q['cpu_s']:>7.3f} {target:>8} "
                f"{'-' if zero is None else f'{zero:.1f}':>11}"
            )
        for q in r["reads"]:
            print(
                f"{int(label):>10,}  {q['read'][:62]:<62} {q['wall_s']:>7.3f} "
                f"{q['cpu_s']:>7.3f} {'<= ' + str(READ_TARGET_S):>8} {'':>11}"
            )
        print(
            f"{'':>10}  built {r['snapshots']} snapshots in {r['build_s']} s wall, "
            f"{r['file_bytes']:,} bytes on disk"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "machine": machine,
                "measured": datetime.now(UTC).isoformat(timespec="seconds"),
                "every": snapshots.EVERY,
                "effective_every": snapshots.EFFECTIVE_EVERY,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
