"""Every failure at the storage boundary is one line, a non-zero exit and nothing written
(issue 13, item 3), through the installed command on real, damaged SQLite files.

The event store's failures name events.db and say to restore it or start a replica from an
export; the read models are derived from the log alone, so a damaged projections.db is
rebuilt (with a note on stderr) and the command answers as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ARMS_LEDGER = str(Path(sys.executable).with_name("arms-ledger"))
SUSPEND = json.dumps(
    {"type": "PartnerSuspended", "partner": "POL", "actor": "a", "rationale": "test"}
)
DAMAGED_STORE = (
    "restore the store from a backup, or start a replica from an export with "
    "`arms-ledger init --from-export`"
)


def run(ledger: Path, *args: str, stdin: str = "", **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [ARMS_LEDGER, "--ledger", str(ledger), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "ledger"
    assert run(path, "demo", "--keep", str(path)).returncode == 0
    return path


@pytest.fixture
def copy(demo, tmp_path) -> Path:
    target = tmp_path / "ledger"
    shutil.copytree(demo, target)
    return target


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def damage(db: Path, how: str) -> None:
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    if how == "truncated":
        os.truncate(db, 40_000)
    else:
        db.write_bytes(b"this is not a database, it only has its name" * 1000)


COMMANDS = [
    ("log", "--limit", "1"),
    ("audit", "verify"),
    ("queue",),
    ("history", "POL"),
    ("rebuild",),
    ("append", "-"),
]


@pytest.mark.parametrize("how", ["truncated", "foreign"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_a_damaged_event_store_is_one_line_naming_it(copy, how, command):
    db = copy / "events.db"
    damage(db, how)
    before = digest(db)
    result = run(copy, *command, stdin=SUSPEND + "\n")
    assert result.returncode == 1
    reason = "database disk image is malformed" if how == "truncated" else (
        "file is not a database"
    )
    assert result.stderr == f"Error: the event store {db}: {reason} — {DAMAGED_STORE}\n"
    assert digest(db) == before


def test_damaged_read_models_are_rebuilt_and_answer_as_before(demo, copy):
    expected = run(demo, "partners", "--json")
    projections = copy / "projections.db"
    damage(projections, "foreign")
    result = run(copy, "partners", "--json")
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        f"(the read models {projections} were damaged (file is not a database); "
        "rebuilt from the log)\n"
    )
    assert result.stdout == expected.stdout


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="no RLIMIT_FSIZE")
def test_a_full_disk_is_one_line_and_the_batch_is_not_half_written(copy):
    """The file-size limit stands in for a full disk: SQLite gets EFBIG, as it would
    ENOSPC, and reports the database full."""
    db = copy / "events.db"
    run(copy, "log", "--limit", "1")  # settle the WAL into the file first
    head = len(json.loads(run(copy, "log", "--json").stdout))
    limit = db.stat().st_size + 4096

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    batch = "\n".join(
        json.dumps(
            {
                "type": "PartnerRegistered",
                "partner": f"X{i:04d}",
                "name": "x" * 2000,
                "region": "Test",
                "notification_group": "other",
                "actor": "a",
            }
        )
        for i in range(300)
    )
    result = run(copy, "append", "-", stdin=batch, preexec_fn=small_disk)
    assert result.returncode == 1, result.stdout
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("Error: ")
    assert "nothing was written; free space on that disk and run the command again" in (
        result.stderr
    )
    assert len(json.loads(run(copy, "log", "--json").stdout)) == head
    assert run(copy, "audit", "verify").returncode == 0


@pytest.mark.slow
def test_a_store_locked_by_another_process_is_one_line(copy):
    """Another process holds the write lock past the store's lock timeout (30 s)."""
    holder = sqlite3.connect(copy / "events.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        result = run(copy, "append", "-", stdin=SUSPEND + "\n")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.returncode == 1
    assert result.stderr == (
        f"Error: the event store {copy / 'events.db'}: database is locked — another "
        "process holds it; run the command again when that one is done\n"
    )
    assert '"PartnerSuspended"' not in run(copy, "log", "--json", "--limit", "1000").stdout
