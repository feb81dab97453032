"""Progress bars: what drawing them costs a long append and a rebuild (issue 18).

Generates a history of ``--events`` events (``fixtures.tools.generate``, seeded), then
``--repeat`` times, with stderr a terminal (a pseudo-terminal: the bars are drawn) and
with stderr not a terminal (nothing drawn, nobody listens): creates a ledger, appends
the whole history in one ``arms-ledger append`` (reading, deciding, storing, the read
models), then runs ``arms-ledger rebuild``, each in a new process. Reports the median CPU
time (user + system, of the command and its children) of each. Prints a table and
writes bench/results/progress.json.

    python -m bench.progress [--events 100000] [--repeat 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pty
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

from bench.startup import executable
from fixtures.tools.generate import generate


def cpu_of(argv: list[str], terminal: bool) -> float:
    """CPU seconds of one run; with ``terminal``, its stderr is a pseudo-terminal
    (drained as a terminal would be)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    if terminal:
        master, slave = pty.openpty()
        drained = threading.Thread(target=_drain, args=(master,), daemon=True)
        drained.start()
        try:
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=slave)
        finally:
            os.close(slave)
            drained.join(timeout=5)
            os.close(master)
    else:
        subprocess.run(
            argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:
        pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", default="bench/results/progress.json")
    args = parser.parse_args()
    command = executable()
    work = Path(tempfile.mkdtemp(prefix="bench-progress-"))
    history = work / "events.jsonl"
    with history.open("wb") as out:
        for i, line in enumerate(generate(open_cases=16_000, events=args.events)):
            if i == args.events:
                break
            out.write(line + b"\n")
    times: dict[tuple[str, bool], list[float]] = {}
    for n in range(args.repeat):
        for terminal in (False, True):
            ledger = work / f"ledger-{n}-{terminal}"
            subprocess.run(
                [command, "--ledger", str(ledger), "init"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            base = [command, "--ledger", str(ledger)]
            for name, extra in (
                ("append", ["append", str(history)]),
                ("rebuild", ["rebuild"]),
            ):
                times.setdefault((name, terminal), []).append(
                    cpu_of(base + extra, terminal)
                )
    rows = []
    print(f"{args.events:,} events, median of {args.repeat}, CPU seconds")
    print(f"{'command':10} {'no terminal':>12} {'terminal':>12} {'difference':>11}")
    for name in ("append", "rebuild"):
        off = statistics.median(times[(name, False)])
        on = statistics.median(times[(name, True)])
        print(f"{name:10} {off:12.2f} {on:12.2f} {100 * (on - off) / off:+10.1f}%")
        rows.append(
            {
                "command": name,
                "no_terminal_cpu_s": off,
                "terminal_cpu_s": on,
                "runs": {
                    "no_terminal": times[(name, False)],
                    "terminal": times[(name, True)],
                },
            }
        )
    Path(args.out).write_text(
        json.dumps(
            {
                "events": args.events,
                "repeat": args.repeat,
                "python": sys.version.split()[0],
                "machine": platform.machine(),
                "results": rows,
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
