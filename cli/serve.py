"""``arms-ledger serve``: the read models as a read-only web view (Datasette).

Datasette and uvicorn are imported only when serving, so the other commands start as
fast as before.
"""

from __future__ import annotations

import ipaddress
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from arms_ledger.cli import whatif
from arms_ledger.cli.env import Env, pass_env
from arms_ledger.cli.options import time_options
from arms_ledger.ledger.app import boundary
from arms_ledger.ledger.app.application import Ledger
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.projections import engine
from arms_ledger.projections.engine import Cut

if TYPE_CHECKING:  # Datasette is imported only when serving
    from arms_ledger.projections.web.whatif import Source


class _Stopped(Exception):
    """SIGTERM: stop serving, clean up, exit 0 (as Ctrl-C does)."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stopped


def listen(host: str, port: int) -> socket.socket:
    """A listening socket, or an error that says how to get one."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise LedgerError(
            f"cannot serve on host {host!r}: {error.strerror}; give an address such as "
            "127.0.0.1 to --host"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as error:
        sock.close()
        raise LedgerError(
            f"cannot serve on {host}:{port}: {error.strerror}; choose another --port, or "
            "stop what is using it"
        ) from None
    sock.set_inheritable(True)
    return sock


# The Host names a server bound to the loopback answers to (any port).
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


@click.command("serve")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on; anything but loopback exposes the ledger.",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8001,
    show_default=True,
    help="The port to listen on.",
)
@click.option(
    "--allow-sql",
    is_flag=True,
    help="Also allow arbitrary read-only SQL (off: tables, canned queries, charts).",
)
@time_options
@pass_env
def serve_command(env: Env, host: str, port: int, allow_sql: bool, cut: Cut) -> None:
    """Serve the read models as a read-only web view (Datasette) until Ctrl-C.

    Every table and column described, faceted and exportable (JSON, CSV); canned
    queries (a platform's queue, a case's full audit trail, expedites, deferrals and
    overrides, queue changes and their causes, backlog, oversight flags, holds,
    partners' scores); charts of the backlog over time, a queue before and after a
    policy, and the partners' score components; a what-if page (a proposed priority
    policy typed in a form, computed against the state served, never stored). Live, it
    shows what the last appending command wrote (reload to see); with --as-of,
    --known-at or --at-position, a replay built into a temporary file, removed when the
    server stops.

    \b
    Example:
      arms-ledger serve                            # then open http://127.0.0.1:8001/
      arms-ledger serve --as-of 2026-02-05 --port 8002
    """
    import uvicorn
    from arms_ledger.projections import web

    env.ledger  # noqa: B018 (a missing ledger fails before anything else)
    sock = listen(host, port)
    workdir = Path(tempfile.mkdtemp(prefix="arms-ledger-serve-"))
    try:
        path, caption, immutable = _read_models(env, cut, workdir)
        ds = web.datasette(
            path,
            caption=caption,
            immutable=immutable,
            allow_sql=allow_sql,
            log=whatif_source(env.ledger, cut, env.path),
            hosts=LOOPBACK_NAMES | {host.lower()} if _is_loopback(host) else None,
        )
        if not _is_loopback(host):
            click.echo(
                f"Warning: listening on {host}: anyone who can reach it can read "
                "the ledger's read models.",
                err=True,
            )
        shown = caption[0].lower() + caption[1:]
        click.echo(
            f"Serving {shown} at {_url(host, port)} (read-only; Ctrl-C stops).", err=True
        )
        _run(uvicorn.Config(ds.app(), log_level="warning", lifespan="on"), sock)
        click.echo("Stopped.", err=True)
    finally:
        sock.close()
        shutil.rmtree(workdir, ignore_errors=True)


def _read_models(env: Env, cut: Cut, workdir: Path) -> tuple[Path, str, bool]:
    """What to serve: (the read models' file, its caption, whether it is immutable).
    The live file, caught up, if it can be written; as it is, if it is current;
    otherwise (a cut, or no write access) a replay built into ``workdir``."""
    live = env.path / engine.PROJECTIONS_DB
    if cut.live and env.read_models_writable():
        env.catch_up()
        return live, "Live read models", False
    if (
        cut.live
        and not Path(f"{live}-wal").exists()
        and boundary.read_models_position(env.path) == env.ledger.head()
    ):
        return live, "Live read models (read-only)", True
    caption = (
        f"A replay {cut.describe()}"
        if not cut.live
        else "Live read models (replayed: no write access to the ledger)"
    )
    return _replay(env, cut, workdir), caption, True


def whatif_source(ledger: Ledger, cut: Cut, path: Path | None = None) -> Source:
    """What the web view's what-if page needs beyond the read models: the log (and,
    when the ledger at ``path`` names witnesses, whether they vouch for it), the cut
    served, and ``arms-ledger whatif``'s own ways to name the log, make a proposal of
    options and tabulate a stability (so the page says what the commands say)."""
    from arms_ledger.ledger.app import witnessing
    from arms_ledger.projections.web.whatif import Source

    def log_named() -> dict:
        named = whatif.log_named(ledger)
        return named if path is None else named | witnessing.status(ledger, path)

    return Source(reader=ledger.reader, cut=cut, log_named=log_named)


def _run(config: Any, sock: socket.socket) -> None:
    """Serve on ``sock`` until Ctrl-C or SIGTERM."""
    import uvicorn

    previous = signal.signal(signal.SIGTERM, _stop)
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except (KeyboardInterrupt, _Stopped):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)


def _replay(env: Env, cut: Cut, workdir: Path) -> Path:
    """The read models of the cut, built into one file in ``workdir``."""
    path = workdir / engine.PROJECTIONS_DB
    conn = engine.connect(path)
    try:
        engine.replay(env.ledger.reader, conn, cut)
        conn.execute("PRAGMA journal_mode = DELETE")  # one file, served immutable
    finally:
        conn.close()
    return path


COMMANDS = (serve_command,)
