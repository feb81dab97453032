"""The storage boundary through the CLI (issue 13, items 1, 2, 4 and 7): a wiped,
shortened, rolled-back or forked log is refused on open; reads write nothing and need no
signing key; verify-export is a pure check; the machine's clock is compared with the
log's last stamp. Each case: the exact one line on stderr, the exit code, and that
nothing was written."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from arms_ledger.ledger.domain import clock
from arms_ledger.ledger.store.postgres import Location

from tests import stores
from tests.cli.conftest import one_line_error
from tests.histories import EVERY_TYPE, jsonl

ORIGIN = "dsca.example/fms-queue"
N = len(EVERY_TYPE)
NEW_PARTNER = {
    "type": "PartnerRegistered",
    "partner": "ZZA",
    "name": "Zed",
    "region": "Europe",
    "notification_group": "NATO+",
    "nato_member": True,
    "actor": "state.pm-rsat",
}
RECOVER = (
    "restore the store from a backup that holds them, or start again from an export "
    "with `arms-ledger init --from-export DIR`"
)


@pytest.fixture
def loaded(run):
    assert run("init", "--origin", ORIGIN).exit_code == 0
    result = run("append", "-", input=jsonl(EVERY_TYPE))
    assert result.exit_code == 0, result.stderr
    return run


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` and its bytes."""
    return {
        str(p.relative_to(directory)): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def root_of_kept(ledger_dir: Path) -> str:
    text = (ledger_dir / "checkpoint").read_text().split("\n")
    return text[2]


def where(ledger_dir: Path) -> str:
    meta = json.loads((ledger_dir / "ledger.json").read_text())
    if meta["store"] == "sqlite":
        return f"the event store {ledger_dir / 'events.db'}"
    return f"the PostgreSQL event store (schema {Location(meta['store']).schema})"


def store_rows(ledger_dir: Path) -> tuple[int, int, int]:
    with stores.raw(ledger_dir) as db:
        return tuple(
            db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("stored_events", "tlog_nodes", "tlog_checkpoints")
        )


# --- 1. the ledger knows how long its log is ----------------------------------------------


def test_the_directory_keeps_the_newest_checkpoint(loaded, ledger_dir):
    kept = (ledger_dir / "checkpoint").read_text()
    assert kept.split("\n")[:2] == [ORIGIN, str(N)]
    latest = loaded("audit", "latest")
    assert (latest.exit_code, latest.stdout, latest.stderr) == (0, kept, "")


def test_an_emptied_store_is_refused_on_open_and_nothing_is_written(loaded, ledger_dir):
    position = N
    with stores.raw(ledger_dir) as db:
        for table in ("stored_events", "tlog_nodes", "tlog_checkpoints"):
            db.execute(f"DELETE FROM {table}")
    message = (
        f"{where(ledger_dir)} is empty, but the ledger signed a checkpoint of {N} events "
        f"(root {root_of_kept(ledger_dir)}) and its read models reached position "
        f"{position}: it was emptied, shortened or rolled back; {RECOVER}"
    )
    before = snapshot(ledger_dir)
    for args in (("audit", "verify"), ("log",), ("queue",), ("audit", "latest")):
        one_line_error(loaded(*args), message)
    one_line_error(loaded("append", "-", input=jsonl(EVERY_TYPE[:1])), message)
    assert store_rows(ledger_dir) == (0, 0, 0)
    assert snapshot(ledger_dir) == before


def test_a_missing_sqlite_store_is_refused_and_not_created(loaded, ledger_dir, store):
    if store != "sqlite":
        pytest.skip("SQLite only: the file")
    root = root_of_kept(ledger_dir)
    for name in ("events.db", "events.db-wal", "events.db-shm"):
        (ledger_dir / name).unlink(missing_ok=True)
    message = (
        f"the event store {ledger_dir / 'events.db'} is missing; the ledger signed a "
        f"checkpoint of {N} events (root {root}) and its read models reached position "
        f"{N}; restore the store from a backup, or start again from an export with "
        "`arms-ledger init --from-export DIR`"
    )
    before = snapshot(ledger_dir)
    for args in (("audit", "verify"), ("log",), ("history", "partner:POL")):
        one_line_error(loaded(*args), message)
    one_line_error(loaded("append", "-", input=jsonl(EVERY_TYPE[:1])), message)
    assert not (ledger_dir / "events.db").exists()
    assert snapshot(ledger_dir) == before
    (ledger_dir / "events.db").write_bytes(b"")  # truncated to zero bytes
    one_line_error(loaded("log"), message.replace("is missing", "is empty (0 bytes)"))
    assert (ledger_dir / "events.db").read_bytes() == b""


def test_a_rolled_back_sqlite_store_is_refused(loaded, ledger_dir, store, tmp_path):
    if store != "sqlite":
        pytest.skip("SQLite only: a file restored from a backup")
    backup = tmp_path / "backup.db"
    shutil.copy(ledger_dir / "events.db", backup)  # the WAL is checkpointed on close
    result = loaded("append", "-", input=jsonl([NEW_PARTNER]))
    assert result.exit_code == 0, result.stderr
    for name in ("events.db-wal", "events.db-shm"):
        (ledger_dir / name).unlink(missing_ok=True)
    shutil.copy(backup, ledger_dir / "events.db")
    message = (
        f"{where(ledger_dir)} holds {N} events, but the ledger signed a checkpoint of "
        f"{N + 1} events (root {root_of_kept(ledger_dir)}) and its read models reached "
        f"position {N + 1}: it was emptied, shortened or rolled back; {RECOVER}"
    )
    before = snapshot(ledger_dir)
    one_line_error(loaded("audit", "verify"), message)
    one_line_error(loaded("append", "-", input=jsonl(EVERY_TYPE[:1])), message)
    assert snapshot(ledger_dir) == before

    # Without the kept checkpoint, the read models still know: they are ahead of the log.
    (ledger_dir / "checkpoint").unlink()
    one_line_error(
        loaded("queue"),
        f"{where(ledger_dir)} ends at position {N}, but the read models in "
        f"{ledger_dir / 'projections.db'} reached position {N + 1}: the store was emptied "
        "or rolled back; restore it from a backup, then run `arms-ledger rebuild`",
    )


def test_a_rolled_back_postgresql_store_is_refused(loaded, ledger_dir, store):
    """A restored older backup, emulated in the ledger's own schema: each table copied
    (CREATE TABLE … AS) before an append, then truncated and filled back from the copy."""
    if store != "postgresql":
        pytest.skip("PostgreSQL only: tables restored from a backup")
    from psycopg.sql import SQL, Identifier

    schema = Location(json.loads((ledger_dir / "ledger.json").read_text())["store"]).schema
    tables = ("ledger_events", "tlog_nodes", "tlog_checkpoints")
    with stores.raw(ledger_dir) as db:
        for t in tables:
            db.conn.execute(
                SQL("CREATE TABLE {} AS SELECT * FROM {}").format(
                    Identifier(schema, f"backup_{t}"), Identifier(schema, t)
                )
            )
    earlier = store_rows(ledger_dir)
    result = loaded("append", "-", input=jsonl([NEW_PARTNER]))
    assert result.exit_code == 0, result.stderr
    assert store_rows(ledger_dir) != earlier
    with stores.raw(ledger_dir) as db:  # the backup restored, in one transaction
        for t in tables:
            db.conn.execute(SQL("TRUNCATE {}").format(Identifier(schema, t)))
            db.conn.execute(
                SQL("INSERT INTO {} SELECT * FROM {}").format(
                    Identifier(schema, t), Identifier(schema, f"backup_{t}")
                )
            )
    assert store_rows(ledger_dir) == earlier
    message = (
        f"{where(ledger_dir)} holds {N} events, but the ledger signed a checkpoint of "
        f"{N + 1} events (root {root_of_kept(ledger_dir)}) and its read models reached "
        f"position {N + 1}: it was emptied, shortened or rolled back; {RECOVER}"
    )
    before = snapshot(ledger_dir)
    for args in (("audit", "verify"), ("log",), ("queue",), ("audit", "latest")):
        one_line_error(loaded(*args), message)
    one_line_error(loaded("append", "-", input=jsonl(EVERY_TYPE[:1])), message)
    one_line_error(loaded("audit", "checkpoint"), message)
    assert store_rows(ledger_dir) == earlier
    assert snapshot(ledger_dir) == before


def test_a_forked_store_is_refused(loaded, ledger_dir, tmp_path, monkeypatch):
    """Another history of the same length, under the same key (a second ledger made from
    the same events in another order would do; here: one leaf changed, tree rebuilt)."""
    from arms_ledger.ledger.transparency import merkle, tlog

    with stores.raw(ledger_dir) as db:
        rows = db.execute(
            "SELECT rowid, state FROM stored_events ORDER BY rowid"
        ).fetchall()
        first = bytes(rows[0][1]).replace(b'"actor":"', b'"actor":"X', 1)
        db.execute("UPDATE stored_events SET state = ? WHERE rowid = 1", (first,))
        db.execute("DELETE FROM tlog_nodes")
        db.execute("DELETE FROM tlog_checkpoints")
        builder = merkle.Builder()
        states = [first] + [bytes(s) for _, s in rows[1:]]
        db.executemany(
            "INSERT INTO tlog_nodes (level, idx, hash) VALUES (?, ?, ?)",
            [
                n
                for p, s in enumerate(states, start=1)
                for n in builder.add(merkle.leaf_hash(tlog.leaf_line(p, s)))
            ],
        )
    forged = base64.b64encode(builder.root()).decode()
    one_line_error(
        loaded("log"),
        f"{where(ledger_dir)} holds another history: its first {N} events have root "
        f"{forged}, but the ledger signed a checkpoint of {N} events (root "
        f"{root_of_kept(ledger_dir)}) and its read models reached position {N}; {RECOVER}",
    )


# --- 2. reads need no write access ---------------------------------------------------

READS = [
    ("log",),
    ("log", "--json"),
    ("history", "partner:POL"),
    ("queue",),
    ("partners",),
    ("cases",),
    ("backlog",),
    ("query", "SELECT count(*) AS n FROM cases"),
    ("queue", "--at-position", "10"),
    ("audit", "trail", "partner:POL"),
    ("audit", "flags"),
    ("audit", "verify"),
    ("audit", "latest"),
    ("audit", "prove", "3"),
    ("audit", "consistency", "5"),
]


@pytest.mark.parametrize("args", READS, ids=lambda a: " ".join(a))
def test_reads_write_nothing_and_need_no_signing_key(loaded, ledger_dir, args):
    (ledger_dir / "signing.key").unlink()  # a read never reads it
    before = snapshot(ledger_dir)
    result = loaded(*args)
    assert result.exit_code == 0, result.stderr
    assert snapshot(ledger_dir) == before  # byte for byte, and no file created


def test_export_of_a_ledger_without_its_signing_key_writes_only_the_target(
    loaded, ledger_dir, tmp_path
):
    (ledger_dir / "signing.key").unlink()
    before = snapshot(ledger_dir)
    result = loaded("audit", "export", str(tmp_path / "export"))
    assert result.exit_code == 0, result.stderr
    assert snapshot(ledger_dir) == before
    assert (tmp_path / "export" / "checkpoint").read_text() == (
        ledger_dir / "checkpoint"
    ).read_text()


def test_append_without_the_signing_key_stops_in_one_line(loaded, ledger_dir):
    (ledger_dir / "signing.key").unlink()
    before = (snapshot(ledger_dir), store_rows(ledger_dir))
    one_line_error(
        loaded("append", "-", input=jsonl(EVERY_TYPE[:1])),
        f"this ledger has no signing key ({ledger_dir / 'signing.key'} is missing), and "
        "it signs a checkpoint with every append: nothing was written; restore the key, "
        "or write on the operator's copy of the ledger",
    )
    assert (snapshot(ledger_dir), store_rows(ledger_dir)) == before


def _nobody_can_run(python: Path) -> bool:
    try:
        return (
            subprocess.run(
                [
                    "setpriv",
                    "--reuid=nobody",
                    "--regid=nogroup",
                    "--clear-groups",
                    str(python),
                    "-c",
                    "pass",
                ],
                capture_output=True,
                timeout=30,
            ).returncode
            == 0
        )
    except (OSError, subprocess.SubprocessError):
        return False


@pytest.mark.slow
def test_reads_as_a_user_without_write_access(loaded, ledger_dir, store, tmp_path):
    """The installed command, run as ``nobody`` on a copy owned by root, mode 0555/0444."""
    if store != "sqlite":
        pytest.skip("SQLite only: the files")
    if os.geteuid() != 0:
        pytest.skip("needs root, to run as another user")
    venv = Path(sys.prefix)
    if not _nobody_can_run(venv / "bin" / "python"):
        pytest.skip(f"user nobody cannot run {venv / 'bin' / 'python'}")
    copy = Path(tempfile_dir()) / "ro-ledger"
    copy.parent.chmod(0o755)
    shutil.copytree(ledger_dir, copy)
    (copy / "signing.key").unlink()
    for p in [copy, *copy.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    before = snapshot(copy)
    try:
        for args in READS:
            result = subprocess.run(
                [
                    "setpriv",
                    "--reuid=nobody",
                    "--regid=nogroup",
                    "--clear-groups",
                    str(venv / "bin" / "arms-ledger"),
                    "--ledger",
                    str(copy),
                    *args,
                ],
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 0, (args, result.stderr)
        assert snapshot(copy) == before
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@contextmanager
def read_only_copy(ledger_dir: Path) -> Iterator[Path]:
    """A copy of the ledger directory owned by root, mode 0555/0444, without its signing
    key, that ``nobody`` can read (its store shared, on PostgreSQL); skips where the
    installed command cannot be run as ``nobody``."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run as another user")
    if not _nobody_can_run(Path(sys.prefix) / "bin" / "python"):
        pytest.skip(f"user nobody cannot run {Path(sys.prefix) / 'bin' / 'python'}")
    copy = Path(tempfile_dir()) / "ro-ledger"
    copy.parent.chmod(0o755)
    shutil.copytree(ledger_dir, copy)
    (copy / "signing.key").unlink()
    for p in [copy, *copy.rglob("*")]:
        p.chmod(0o555 if p.is_dir() else 0o444)
    try:
        yield copy
    finally:
        shutil.rmtree(copy.parent, ignore_errors=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def as_nobody(ledger: Path, *args: str) -> list[str]:
    return [
        *NOBODY,
        str(Path(sys.prefix) / "bin" / "arms-ledger"),
        "--ledger",
        str(ledger),
        *args,
    ]


@pytest.mark.slow
def test_serve_as_a_user_without_write_access(loaded, ledger_dir, store):
    """``serve`` as ``nobody`` on a read-only copy: it answers, and writes nothing."""
    rows = store_rows(ledger_dir)
    with read_only_copy(ledger_dir) as copy:
        before = snapshot(copy)
        port = free_port()
        process = subprocess.Popen(
            as_nobody(copy, "serve", "--port", str(port)),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 10
            while True:
                if process.poll() is not None:
                    _, stderr = process.communicate()
                    pytest.fail(f"serve exited with {process.returncode}: {stderr}")
                try:
                    with urllib.request.urlopen(url + "/-/versions.json", timeout=2):
                        break
                except (urllib.error.URLError, ConnectionError):
                    if time.monotonic() > deadline:
                        pytest.fail(f"serve did not answer at {url} within 10 s")
                    time.sleep(0.1)
            for path in ("/", "/projections/cases"):
                with urllib.request.urlopen(url + path, timeout=10) as response:
                    assert response.status == 200, path
                    assert response.read()
        finally:
            process.terminate()
            _, stderr = process.communicate(timeout=30)
        assert process.returncode == 0, stderr
        assert "Serving live read models (read-only)" in stderr
        assert snapshot(copy) == before  # byte for byte, and no file created
    assert store_rows(ledger_dir) == rows


def test_export_as_a_user_without_write_access(loaded, ledger_dir, store):
    """``audit export`` as ``nobody`` from a read-only copy, into a directory it can
    write: the export verifies, and the ledger's directory is unchanged."""
    rows = store_rows(ledger_dir)
    with read_only_copy(ledger_dir) as copy:
        before = snapshot(copy)
        out = copy.parent / "out"
        out.mkdir()
        shutil.chown(out, "nobody", "nogroup")
        export = out / "export"
        result = subprocess.run(
            as_nobody(copy, "audit", "export", str(export)),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert (result.returncode, result.stderr) == (0, ""), result.stderr
        assert result.stdout.startswith(f"Exported {N} events to {export} ")
        assert snapshot(copy) == before
        key = (copy / "verifier.key").read_text().strip()
        verified = loaded("audit", "verify-export", str(export), "--key", key)
        assert verified.exit_code == 0, verified.stderr
        assert "signature verified" in verified.stdout
        assert (export / "checkpoint").read_text() == (copy / "checkpoint").read_text()
    assert store_rows(ledger_dir) == rows


def tempfile_dir() -> str:
    import tempfile

    return tempfile.mkdtemp(prefix="arms-ledger-ro-", dir="/tmp")


def test_read_models_that_cannot_be_caught_up_are_replayed(loaded, ledger_dir, monkeypatch):
    """Behind the log and not writable: replayed into a temporary directory, said so."""
    from arms_ledger.cli import env as env_module

    result = loaded("queue", "--json")
    expected = result.stdout
    monkeypatch.setattr(env_module.Env, "read_models_writable", lambda self: False)
    import sqlite3

    with sqlite3.connect(ledger_dir / "projections.db") as conn:
        conn.execute("UPDATE projection SET position = position - 1")
    conn.close()
    before = snapshot(ledger_dir)
    result = loaded("queue", "--json")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == expected
    assert result.stderr == (
        f"(the read models in {ledger_dir / 'projections.db'} cannot be caught up here "
        "(no write access); replaying the log into a temporary directory)\n"
    )
    assert snapshot(ledger_dir) == before


# --- 4. verify-export is a pure check ------------------------------------------------


def test_verify_export_writes_nothing_and_is_repeatable(loaded, ledger_dir, tmp_path):
    export = tmp_path / "export"
    assert loaded("audit", "export", str(export)).exit_code == 0
    key = (ledger_dir / "verifier.key").read_text().strip()
    before = snapshot(export)
    first = loaded("audit", "verify-export", str(export), "--key", key)
    second = loaded("audit", "verify-export", str(export), "--key", key)
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert first.stdout == second.stdout != ""
    assert first.stderr == second.stderr == ""
    assert snapshot(export) == before


def test_a_replica_from_verify_export_is_read_only_and_keeps_the_origin(
    loaded, ledger_dir, tmp_path
):
    export = tmp_path / "export"
    assert loaded("audit", "export", str(export)).exit_code == 0
    key = (ledger_dir / "verifier.key").read_text().strip()
    replica = tmp_path / "replica"
    result = loaded(
        "audit", "verify-export", str(export), "--key", key, "--into", str(replica)
    )
    assert result.exit_code == 0, result.stderr
    assert not (replica / "signing.key").exists()
    assert (replica / "verifier.key").read_text() == f"{key}\n"
    meta = json.loads((replica / "ledger.json").read_text())
    assert (meta["origin"], meta["checkpoints"], meta["store"]) == (
        ORIGIN,
        "replica",
        "sqlite",
    )
    assert (replica / "checkpoint").read_text() == (export / "checkpoint").read_text()
    before = snapshot(replica)
    refused = (
        f"the ledger at {replica} is a read-only replica of {ORIGIN}: it cannot be "
        "appended to or signed; start a ledger of your own with "
        "`arms-ledger init --from-export DIR`"
    )
    one_line_error(
        loaded("--ledger", str(replica), "append", "-", input=jsonl(EVERY_TYPE[:1])),
        refused,
    )
    one_line_error(loaded("--ledger", str(replica), "audit", "checkpoint"), refused)
    for args in (("queue",), ("audit", "verify"), ("audit", "latest")):
        result = loaded("--ledger", str(replica), *args)
        assert result.exit_code == 0, result.stderr
    assert (
        loaded("--ledger", str(replica), "audit", "latest").stdout
        == (export / "checkpoint").read_text()
    )
    assert snapshot(replica) == before


# --- 7. clocks ----------------------------------------------------------------------


def last_stamp(ledger_dir: Path) -> str:
    with stores.raw(ledger_dir) as db:
        state = db.execute(
            "SELECT state FROM stored_events ORDER BY rowid DESC LIMIT 1"
        ).fetchone()[0]
    return json.loads(bytes(state))["recorded_at"]


@pytest.mark.parametrize(
    ("offset", "text"),
    [
        (timedelta(days=3 * 365 + 1), "1,095 days ahead of"),
        (-timedelta(hours=3), "3 hours behind"),
        (-timedelta(days=40), "40 days behind"),
    ],
)
def test_append_refuses_a_clock_far_from_the_last_stamp(
    loaded, ledger_dir, monkeypatch, offset, text
):
    last = last_stamp(ledger_dir)
    at = datetime.fromisoformat(last).astimezone(UTC).replace(microsecond=0) + offset
    monkeypatch.setattr(clock, "now", lambda: at)
    before = (snapshot(ledger_dir), store_rows(ledger_dir))
    line = jsonl([NEW_PARTNER])
    shown = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    one_line_error(
        loaded("append", "-", input=line),
        f"this machine's clock ({shown}) is {text} the log's last stamp ({last}); "
        "nothing was written: set the clock right, or pass --allow-clock-skew (or set "
        "ARMS_LEDGER_ALLOW_CLOCK=1) to stamp by it anyway",
    )
    assert (snapshot(ledger_dir), store_rows(ledger_dir)) == before
    result = loaded("append", "--allow-clock-skew", "-", input=line)
    assert result.exit_code == 0, result.stderr
    stamp = last_stamp(ledger_dir)
    assert stamp > last
    if offset > timedelta(0):
        assert stamp.startswith(shown[:19])  # stamped by the clock, as asked


def test_reads_warn_of_a_clock_behind_the_last_stamp(loaded, ledger_dir, monkeypatch):
    last = last_stamp(ledger_dir)
    at = datetime.fromisoformat(last).astimezone(UTC).replace(microsecond=0) - timedelta(
        days=2
    )
    monkeypatch.setattr(clock, "now", lambda: at)
    result = loaded("log", "--json")
    assert result.exit_code == 0
    shown = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert result.stderr == (
        f"Warning: this machine's clock ({shown}) is 2 days behind the log's last stamp "
        f"({last}); times judged now (deadlines, --as-of defaults) use this clock.\n"
    )


def test_a_clock_within_the_thresholds_is_silent(loaded, ledger_dir, monkeypatch):
    last = last_stamp(ledger_dir)
    at = datetime.fromisoformat(last).astimezone(UTC) + timedelta(days=300)
    monkeypatch.setattr(clock, "now", lambda: at)
    line = jsonl([NEW_PARTNER])
    result = loaded("append", "-", input=line)
    assert (result.exit_code, result.stderr) == (0, "")
