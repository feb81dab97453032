"""A witness (C2SP tlog-witness): cosigns a log's checkpoints only as the log grows.

It holds its own Ed25519 key and a state directory, independent of any ledger::

    witness.key    PRIVATE+KEY+<name>+<id>+base64(0x04 ‖ seed), mode 0600
    witness.vkey   its verifier key, <name>+<id>+base64(0x04 ‖ public key)
    logs           the logs it accepts: lines 'log <the log's verifier key>' ('#' comments)
    state/<h>      for each log, the newest checkpoint it cosigned (h = SHA-256 of the
                   origin, hex), the log's note with this witness's cosignature line
    evidence/      conflicting signed checkpoints: a split view or a rewritten history

``add_checkpoint`` answers one request as the spec says (status, content type, body);
the check of the old size and the write of the new state happen under one lock (a thread
lock and an flock on ``state/.lock``, so two processes on one directory cannot roll it
back). Every state file is written to a temporary file, flushed to disk and renamed into
place, then the directory is flushed: a witness that crashes keeps either the old or the
new state, never neither. ``server`` serves it over HTTP (the standard library's
``http.server``: one POST route, a few hundred bytes each way; no framework needed).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import NamedTuple

from arms_ledger.ledger.app.keyfile import read_private
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.ledger.transparency import merkle
from arms_ledger.ledger.transparency.cosignature import Cosigner, parse_add_checkpoint
from arms_ledger.ledger.transparency.note import (
    Checkpoint,
    NoteError,
    Verifier,
    open_note,
    parse_note,
)

KEY_FILE = "witness.key"
VKEY_FILE = "witness.vkey"
LOGS_FILE = "logs"
STATE = "state"
EVIDENCE = "evidence"
MAX_BODY = 1 << 16
SIZE_TYPE = "text/x.tlog.size"


class Response(NamedTuple):
    status: int
    content_type: str
    body: bytes


def _text(status: int, message: str) -> Response:
    return Response(status, "text/plain; charset=utf-8", f"{message}\n".encode())


def write_atomically(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path``: a temporary file, flushed, renamed, directory flushed."""
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def init(path: Path, name: str) -> Cosigner:
    """A new witness in ``path`` (new or empty): its key, and no log accepted yet."""
    if path.exists() and any(path.iterdir()):
        raise LedgerError(f"{path} is not empty; a witness needs a directory of its own")
    try:
        cosigner = Cosigner.generate(name)
    except NoteError as error:
        raise LedgerError(f"--name: {error}") from None
    path.mkdir(parents=True, exist_ok=True)
    os.chmod(path, 0o700)
    (path / STATE).mkdir()
    (path / EVIDENCE).mkdir()
    write_atomically(path / KEY_FILE, f"{cosigner}\n".encode(), 0o600)
    write_atomically(path / VKEY_FILE, f"{cosigner.key}\n".encode())
    write_atomically(
        path / LOGS_FILE,
        b"# The logs this witness cosigns: 'log <verifier key>' lines "
        b"(arms-ledger witness add-log).\n",
    )
    return cosigner


def read_logs(path: Path) -> dict[str, list[Verifier]]:
    """The accepted logs' keys by origin (the key's name)."""
    logs: dict[str, list[Verifier]] = {}
    try:
        text = (path / LOGS_FILE).read_text()
    except OSError as error:
        raise LedgerError(
            f"cannot read {path / LOGS_FILE}: {error.strerror}; is {path} a witness "
            "(`arms-ledger witness init`)?"
        ) from None
    for number, line in enumerate(text.split("\n"), start=1):
        fields = line.split()
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0] != "log" or len(fields) not in (2, 3):
            raise LedgerError(f"{path / LOGS_FILE} line {number}: expected 'log <vkey>'")
        try:
            verifier = Verifier.parse(fields[1])
        except NoteError as error:
            raise LedgerError(f"{path / LOGS_FILE} line {number}: {error}") from None
        logs.setdefault(verifier.name, []).append(verifier)
    return logs


def add_log(path: Path, vkey: str) -> Verifier:
    try:
        verifier = Verifier.parse(vkey)
    except NoteError as error:
        raise LedgerError(f"VKEY: {error}") from None
    logs = read_logs(path)
    if verifier in logs.get(verifier.name, []):
        raise LedgerError(f"the witness already accepts {verifier}")
    text = (path / LOGS_FILE).read_text()
    write_atomically(path / LOGS_FILE, f"{text}log {verifier}\n".encode())
    return verifier


def read_key(path: Path) -> Cosigner:
    key_file = path / KEY_FILE
    try:
        text = read_private(
            key_file,
            power="cosign checkpoints in this witness's name",
            if_read="give the witness a new key in a new state directory "
            "(`arms-ledger witness init`) and its logs the new key",
        )
    except OSError as error:
        raise LedgerError(
            f"cannot read {key_file}: {error.strerror}; is {path} a witness "
            "(`arms-ledger witness init`)?"
        ) from None
    try:
        return Cosigner.parse(text)
    except NoteError as error:
        raise LedgerError(f"{key_file}: {error}") from None


class Witness:
    """The witness of one state directory."""

    def __init__(self, path: Path, clock=time.time):
        self.path = path
        self.cosigner = read_key(path)
        self.logs = read_logs(path)
        self.clock = clock
        self._lock = threading.Lock()
        (path / STATE).mkdir(exist_ok=True)
        (path / EVIDENCE).mkdir(exist_ok=True)

    def _state_file(self, origin: str) -> Path:
        return self.path / STATE / hashlib.sha256(origin.encode()).hexdigest()

    def latest(self, origin: str) -> tuple[str, Checkpoint] | None:
        """The newest checkpoint cosigned for ``origin``, as stored."""
        try:
            note = self._state_file(origin).read_text()
        except FileNotFoundError:
            return None
        checkpoint = Checkpoint.parse(parse_note(note)[0])
        if checkpoint.origin != origin:
            raise LedgerError(f"{self._state_file(origin)} holds another log's state")
        return note, checkpoint

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock, open(self.path / STATE / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def add_checkpoint(self, body: bytes) -> Response:
        try:
            request = parse_add_checkpoint(body)
            text, _ = parse_note(request.note)
            checkpoint = Checkpoint.parse(text)
        except NoteError as error:
            return _text(400, f"malformed request: {error}")
        keys = self.logs.get(checkpoint.origin)
        if not keys:
            return _text(404, f"unknown log {checkpoint.origin}")
        if not any(_signed(request.note, key) for key in keys):
            return _text(
                403, f"the checkpoint is not signed by a key of {checkpoint.origin}"
            )
        if request.old > checkpoint.size:
            return _text(
                400, f"old size {request.old} is above the checkpoint's {checkpoint.size}"
            )
        with self._locked():
            return self._add(request.old, request.proof, request.note, text, checkpoint)

    def _add(
        self, old: int, proof: list[bytes], note: str, text: str, checkpoint: Checkpoint
    ) -> Response:
        kept = self.latest(checkpoint.origin)
        size, root = (0, b"") if kept is None else (kept[1].size, kept[1].root)
        if kept is not None and checkpoint.size == size and checkpoint.root != root:
            self._evidence(kept[0], note, "two roots for one size")
            return _text(409, f"a checkpoint of size {size} with another root was cosigned")
        if old != size:
            return Response(409, SIZE_TYPE, f"{size}\n".encode())
        if old == 0 and proof:
            return _text(400, "the proof must be empty when the old size is 0")
        if old:
            try:
                merkle.verify_consistency(
                    old, checkpoint.size, root, checkpoint.root, proof
                )
            except merkle.ProofError as error:
                assert kept is not None
                self._evidence(kept[0], note, f"not consistent: {error}")
                return _text(422, f"the consistency proof does not verify: {error}")
        line = self.cosigner.cosign(text, int(self.clock()))
        own = [
            s for s in note.split("\n") if not s.startswith(f"\u2014 {self.cosigner.name} ")
        ]
        write_atomically(
            self._state_file(checkpoint.origin), ("\n".join(own) + line).encode()
        )
        return Response(200, "text/plain; charset=utf-8", line.encode())

    def _evidence(self, cosigned: str, offered: str, reason: str) -> None:
        """Keep both signed checkpoints: the one cosigned, and the one conflicting."""
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(self.clock()))
        digest = hashlib.sha256(offered.encode()).hexdigest()[:12]
        body = (
            f"# {reason}\n# the checkpoint this witness cosigned:\n{cosigned}"
            f"# the conflicting checkpoint it was offered:\n{offered}"
        )
        write_atomically(self.path / EVIDENCE / f"{stamp}-{digest}", body.encode())


def _signed(note: str, key: Verifier) -> bool:
    try:
        open_note(note, key)
    except NoteError:
        return False
    return True


# --- HTTP ---------------------------------------------------------------------------------


def server(witness: Witness, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving) answering ``POST /add-checkpoint``."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the spec recommends

        def do_POST(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if self.path != "/add-checkpoint":
                self._answer(_text(404, f"no such endpoint {self.path}"))
            elif not 0 < length <= MAX_BODY:
                self._answer(_text(413 if length else 411, "a body of 1 to 65536 bytes"))
            else:
                self._answer(witness.add_checkpoint(self.rfile.read(length)))

        def do_GET(self) -> None:
            self._answer(_text(404, "POST /add-checkpoint"))

        def _answer(self, response: Response) -> None:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(response.body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the status lines are the client's to report

    return ThreadingHTTPServer((host, port), Handler)
