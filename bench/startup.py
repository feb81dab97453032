"""Start-up: how long the installed ``arms-ledger`` takes to answer, as a user runs it.

Builds the demo ledger once (``arms-ledger demo --keep``), catches its read models up,
then runs each command below in a new process (the ``arms-ledger`` script beside this
Python, as installed) ``--repeat`` times after one unmeasured warm-up run, and reports the
median wall time and the median CPU time (user + system, of the child) beside the target.
Prints a table and writes bench/results/startup.json.

    python -m bench.startup [--repeat 15] [--out bench/results/startup.json]

The read commands are run on a current ledger (the catch-up finds nothing to do), which is
how a read command usually starts.
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
from pathlib import Path
from typing import Any

# (label, arguments after `arms-ledger --ledger LEDGER`, target wall ms: issue 14 item 5;
# --version has none of its own)
COMMANDS: tuple[tuple[str, list[str], int | None], ...] = (
    ("--help", ["--help"], 80),
    ("--version", ["--version"], None),
    ("queue f-35a", ["queue", "f-35a"], 150),
    ("queue (every queue's length)", ["queue"], 150),
    ("partners", ["partners"], 150),
)


def executable() -> str:
    """The installed command of this virtualenv (not the one first on PATH)."""
    beside = Path(sys.executable).with_name("arms-ledger")
    if beside.exists():
        return str(beside)
    found = shutil.which("arms-ledger")
    if found is None:
        sys.exit("arms-ledger is not installed: pip install -e .")
    return found


def run_once(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds of one run (the child's own user + system time)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env=env)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def measure(argv: list[str], env: dict[str, str], repeat: int) -> tuple[float, float]:
    """Median wall and median CPU milliseconds over ``repeat`` runs, after a warm-up."""
    run_once(argv, env)
    runs = [run_once(argv, env) for _ in range(repeat)]
    return (
        statistics.median(r[0] for r in runs) * 1000,
        statistics.median(r[1] for r in runs) * 1000,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--out", type=Path, default=Path("bench/results/startup.json"))
    args = parser.parse_args()
    command = executable()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARMS_LEDGER")}
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Path(tmp) / "demo"
        subprocess.run(
            [command, "demo", "--keep", str(ledger)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for label, rest, target in COMMANDS:
            wall, cpu = measure([command, "--ledger", str(ledger), *rest], env, args.repeat)
            rows.append(
                {
                    "command": f"arms-ledger {label}",
                    "target_wall_ms": target,
                    "wall_ms": round(wall, 1),
                    "cpu_ms": round(cpu, 1),
                    "met": None if target is None else wall <= target,
                }
            )
    print("| command | target wall | wall (median) | CPU (median) |")
    print("|---|---:|---:|---:|")
    for row in rows:
        limit = row["target_wall_ms"]
        print(
            f"| `{row['command']}` | {'—' if limit is None else f'≤ {limit} ms'} | "
            f"{row['wall_ms']:.0f} ms{' (missed)' if row['met'] is False else ''} | "
            f"{row['cpu_ms']:.0f} ms |"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "repeat": args.repeat,
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
