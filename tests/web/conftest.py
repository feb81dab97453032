"""Fixtures of the web view's tests: the demo ledger (built once), Datasette's in-process
client on the live read models and on a replay, and the real ``arms-ledger serve`` in a
subprocess on a free port."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from arms_ledger.cli.serve import whatif_source
from arms_ledger.ledger.app.directory import open_ledger
from arms_ledger.ledger.domain.clock import parse_instant
from arms_ledger.projections import engine, web
from arms_ledger.projections.web.whatif import SOURCES, Source

from tests import stores

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
BEFORE_THE_ORDER = "2026-02-05"  # the day before E.O. 14383 took effect


@pytest.fixture(scope="session", params=stores.PARAMS)
def demo_ledger(request, tmp_path_factory) -> Path:
    """The demo ledger, once per store: the web view's tests run once per store."""
    return stores.kept_demo(tmp_path_factory.mktemp("web") / "ledger", request.param)


class Client:
    """Datasette's in-process client, on an event loop of its own."""

    def __init__(self, ds: Any):
        self.ds = ds
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(ds.invoke_startup())

    def get(self, path: str) -> Any:
        return self.loop.run_until_complete(self.ds.client.get(path))

    def json(self, path: str) -> Any:
        response = self.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    def close(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


@contextmanager
def client(
    path: Path,
    caption: str,
    *,
    immutable: bool,
    allow_sql: bool = False,
    log: Source | None = None,
):
    c = Client(
        web.datasette(
            path, caption=caption, immutable=immutable, allow_sql=allow_sql, log=log
        )
    )
    try:
        yield c
    finally:
        c.close()


@contextmanager
def served(
    ledger_path: Path,
    read_models: Path,
    caption: str,
    cut: engine.Cut,
    immutable: bool | None = None,
):
    """Datasette's client on ``read_models`` with the log at ``ledger_path`` at hand,
    as ``arms-ledger serve`` serves them (the what-if page); ``immutable`` as serve
    says (by default: a replay is)."""
    ledger = open_ledger(ledger_path, write=False)
    try:
        with client(
            read_models,
            caption,
            immutable=not cut.live if immutable is None else immutable,
            log=whatif_source(ledger, cut),
        ) as c:
            try:
                yield c
            finally:
                # Nothing keeps the closed ledger until the interpreter's shutdown
                # (the Datasette lives on in reference cycles).
                SOURCES.pop(c.ds, None)
    finally:
        ledger.close()


def replay_into(ledger_path: Path, directory: Path, cut: engine.Cut) -> Path:
    """Read models of a replay in ``directory``, as ``serve --as-of`` builds them."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / engine.PROJECTIONS_DB
    ledger = open_ledger(ledger_path)
    conn = engine.connect(path)
    try:
        engine.replay(ledger.reader, conn, cut)
        conn.execute("PRAGMA journal_mode = DELETE")
    finally:
        conn.close()
        ledger.close()
    return path


@pytest.fixture(scope="session")
def live(demo_ledger) -> Iterator[Client]:
    with client(
        demo_ledger / engine.PROJECTIONS_DB, "Live read models", immutable=False
    ) as c:
        yield c


@pytest.fixture(scope="session")
def replay_db(demo_ledger, tmp_path_factory) -> Path:
    cut = engine.Cut(as_of=parse_instant(BEFORE_THE_ORDER))
    return replay_into(demo_ledger, tmp_path_factory.mktemp("replay"), cut)


@pytest.fixture(scope="session")
def replay(replay_db) -> Iterator[Client]:
    with client(replay_db, "A replay as of 2026-02-05T00:00:00Z", immutable=True) as c:
        yield c


@pytest.fixture(scope="session")
def live_with_log(demo_ledger) -> Iterator[Client]:
    """The live read models with the log at hand: the what-if page is served."""
    with served(
        demo_ledger, demo_ledger / engine.PROJECTIONS_DB, "Live read models", engine.Cut()
    ) as c:
        yield c


@pytest.fixture(scope="session")
def replay_with_log(demo_ledger, replay_db) -> Iterator[Client]:
    """The replay as of the day before the order, with the log at hand."""
    cut = engine.Cut(as_of=parse_instant(BEFORE_THE_ORDER))
    with served(demo_ledger, replay_db, f"A replay {cut.describe()}", cut) as c:
        yield c


# --- the real server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server(NamedTuple):
    url: str
    port: int
    process: subprocess.Popen

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(self.url + path, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    def stop(self) -> tuple[int, str]:
        """SIGTERM, as a service manager stops it; returns the exit code and stderr."""
        self.process.terminate()
        _, stderr = self.process.communicate(timeout=60)
        return self.process.returncode, stderr


@contextmanager
def serving(
    ledger: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """``arms-ledger serve`` in a subprocess until it answers; stopped after."""
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cli",
            "--ledger",
            str(ledger),
            "serve",
            "--port",
            str(port),
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    server = Server(f"http://127.0.0.1:{port}", port, process)
    try:
        _wait_until_it_answers(server)
        yield server
    finally:
        if process.poll() is None:
            server.stop()


def _wait_until_it_answers(server: Server) -> None:
    deadline = time.monotonic() + 120  # a bound on the wait, not a test of speed
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            _, stderr = server.process.communicate()
            pytest.fail(f"serve exited with {server.process.returncode}: {stderr}")
        try:
            with urllib.request.urlopen(server.url + "/-/versions.json", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.1)
    pytest.fail(f"serve did not answer at {server.url}")


@pytest.fixture(scope="session")
def server(demo_ledger) -> Iterator[Server]:
    """The live web view of the demo ledger, shared by the browser tests."""
    with serving(demo_ledger) as s:
        yield s


@pytest.fixture
def ledger_copy(demo_ledger, tmp_path) -> Path:
    """A copy of the demo ledger (and of its store) that a test may append to."""
    return stores.copy_ledger(demo_ledger, tmp_path / "ledger")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
