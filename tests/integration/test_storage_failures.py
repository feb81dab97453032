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
from collections.abc import Iterator
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


def error_line(stderr: str) -> str:
    """The one error line a failed command ends with (progress lines may come before)."""
    assert "Traceback" not in stderr, stderr
    errors = [line for line in stderr.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and stderr.endswith(errors[0] + "\n"), stderr
    return errors[0]


def events_in(ledger: Path) -> int:
    return len(json.loads(run(ledger, "log", "--json").stdout))


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


@pytest.mark.parametrize(
    "how", ["truncated", pytest.param("foreign", marks=pytest.mark.slow)]
)
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_a_damaged_event_store_is_one_line_naming_it(copy, how, command):
    db = copy / "events.db"
    damage(db, how)
    before = digest(db)
    result = run(copy, *command, stdin=SUSPEND + "\n")
    assert result.returncode == 1
    reason = (
        "database disk image is malformed"
        if how == "truncated"
        else ("file is not a database")
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


def big_batch(count: int, name_length: int = 2000) -> str:
    return "\n".join(
        json.dumps(
            {
                "type": "PartnerRegistered",
                "partner": f"X{i:05d}",
                "name": "x" * name_length,
                "region": "Test",
                "notification_group": "other",
                "actor": "a",
            }
        )
        for i in range(count)
    )


@pytest.fixture
def small_disk(demo, tmp_path) -> Iterator[Path]:
    """A copy of the demo ledger on a file system with about 256 KiB to spare (a tmpfs;
    mounting one needs root, as CI has)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    used = sum(f.stat().st_size for f in demo.iterdir()) + 256 * 1024
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={used}", "tmpfs", str(mount)],
        capture_output=True,
        text=True,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {mounted.stderr.strip()}")
    try:
        shutil.copytree(demo, mount / "ledger")
        yield mount / "ledger"
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_is_one_line_and_the_batch_is_not_half_written(small_disk):
    ledger = small_disk
    head = events_in(ledger)
    result = run(ledger, "append", "-", stdin=big_batch(600))
    assert result.returncode == 1, result.stdout
    assert error_line(result.stderr) == (
        f"Error: the event store {ledger / 'events.db'}: database or disk is full — "
        "nothing was written; free space on that disk and run the command again"
    )
    assert events_in(ledger) == head
    assert run(ledger, "audit", "verify").returncode == 0


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="no RLIMIT_FSIZE")
def test_a_write_error_is_one_line_and_the_batch_is_not_half_written(copy):
    """A file-size limit makes SQLite's writes fail (EFBIG: a disk I/O error)."""
    db = copy / "events.db"
    run(copy, "log", "--limit", "1")  # settle the WAL into the file first
    head = events_in(copy)
    limit = db.stat().st_size + 4096

    def file_size_limit() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = run(copy, "append", "-", stdin=big_batch(300), preexec_fn=file_size_limit)
    assert result.returncode == 1, result.stdout
    assert error_line(result.stderr) == (
        f"Error: the event store {db}: disk I/O error — nothing was written; check the "
        "disk (full or failing) and run the command again"
    )
    assert events_in(copy) == head
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


@pytest.mark.slow
def test_a_server_that_goes_away_mid_batch_is_one_line_and_nothing_is_written(tmp_path):
    """PostgreSQL: while `append` holds the write lock, its database stops taking
    connections and its connection is terminated; the server is gone for it."""
    import uuid

    from tests import stores

    reason = stores.pg_unavailable()
    if reason is not None:
        if os.environ.get("ARMS_LEDGER_REQUIRE_PG"):
            pytest.fail(reason)
        pytest.skip(reason)
    import psycopg

    admin_url = stores.PG_URL.rsplit("/", 1)[0] + "/postgres"
    name = f"arms_ledger_gone_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        _append_while_the_server_goes(tmp_path / "ledger", admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def _append_while_the_server_goes(ledger: Path, admin_url: str, name: str) -> None:
    import threading
    import time

    import psycopg

    url = admin_url.rsplit("/", 1)[0] + f"/{name}"
    assert run(ledger, "--store", url, "init", "--checkpoints", "manual").returncode == 0
    batch = "\n".join(
        json.dumps(
            {
                "type": "PartnerRegistered",
                "partner": f"X{i:05d}",
                "name": f"Partner {i}",
                "region": "Test",
                "notification_group": "other",
                "actor": "a",
            }
        )
        for i in range(20_000)
    )
    killed: list[int] = []

    def take_the_server_away() -> None:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            deadline = time.monotonic() + 60
            while not killed and time.monotonic() < deadline:
                writers = admin.execute(
                    "SELECT l.pid FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
                    "WHERE d.datname = %s AND l.locktype = 'relation' "
                    "AND l.mode = 'ExclusiveLock' AND l.granted",
                    (name,),
                ).fetchall()
                if writers:
                    admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
                    for (pid,) in writers:
                        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
                        killed.append(pid)
                time.sleep(0.005)

    taker = threading.Thread(target=take_the_server_away)
    taker.start()
    result = run(ledger, "append", "-", stdin=batch)
    taker.join()
    assert killed, f"the writer never held the write lock: {result.stderr}"
    assert result.returncode == 1, result.stdout
    assert error_line(result.stderr).startswith(f"Error: the event store {url}: ")
    assert result.stderr.endswith(
        "— nothing was written; check that the server is up and run the command again\n"
    )
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    assert events_in(ledger) == 0
