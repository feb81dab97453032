"""What a witness costs: cosigning a growing log, with and without HTTP.

A synthetic log (leaves ``leaf-N``, its tree kept in memory with ``merkle.Builder``,
signed by a fresh key) grows by ``--step`` leaves at a time; each new checkpoint is
sent to a witness with the consistency proof from the last one it cosigned, first
straight to ``Witness.add_checkpoint`` (the checks, the Ed25519 signatures, the state
written and fsynced), then over HTTP to ``witness.server`` on localhost (urllib, one
connection per request, as ``audit witness`` sends them). Then the offline check of a
receipt. Prints a table (wall and CPU time per request) and writes
bench/results/witness.json.

    python -m bench.witness [--requests 300] [--step 10]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import threading
import time
from pathlib import Path

from arms_ledger.ledger.app import witness, witnessing
from arms_ledger.ledger.transparency import merkle, receipt
from arms_ledger.ledger.transparency.cosignature import AddCheckpoint
from arms_ledger.ledger.transparency.merkle import Node
from arms_ledger.ledger.transparency.note import Checkpoint, Signer


class Log:
    def __init__(self, origin: str) -> None:
        self.signer = Signer.generate(origin)
        self.builder = merkle.Builder()
        self.nodes: dict[Node, bytes] = {}
        self.lines: list[bytes] = []

    def grow(self, n: int) -> None:
        for _ in range(n):
            line = b'{"position":%d,"x":0}' % (len(self.lines) + 1)
            self.lines.append(line)
            for level, index, h in self.builder.add(merkle.leaf_hash(line)):
                self.nodes[Node(level, index)] = h

    def note(self) -> str:
        size = self.builder.size
        return self.signer.sign(
            Checkpoint(self.signer.name, size, self.builder.root()).text()
        )

    def request(self, old: int) -> bytes:
        size = self.builder.size
        proof = (
            merkle.prove_consistency(old, size, lambda wanted: self.nodes)
            if 0 < old < size
            else []
        )
        return AddCheckpoint(old, proof, self.note()).body()


def run(requests: int, step: int, send) -> tuple[float, float]:
    """Wall and CPU seconds per request of ``requests`` checkpoints of a new log."""
    log, old = Log(f"bench.example/log{len(_logs)}"), 0
    register(log)
    wall, cpu = 0.0, 0.0
    for _ in range(requests):
        log.grow(step)
        body = log.request(old)
        w0, c0 = time.perf_counter(), time.process_time()
        status = send(body)
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
        assert status == 200, status
        old = log.builder.size
    return wall / requests, cpu / requests


_logs: list[Log] = []


def register(log: Log) -> None:
    _logs.append(log)
    witness.add_log(STATE, str(log.signer.verifier))
    served.logs = witness.read_logs(STATE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--step", type=int, default=10)
    args = parser.parse_args()
    global STATE, served
    with tempfile.TemporaryDirectory() as tmp:
        STATE = Path(tmp) / "w"
        witness.init(STATE, "bench.example/witness")
        served = witness.Witness(STATE)
        direct = run(args.requests, args.step, lambda b: served.add_checkpoint(b).status)
        server = witness.server(served, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/add-checkpoint"
        http = run(args.requests, args.step, lambda b: witnessing._post(url, b, 10)[0])
        server.shutdown()
        server.server_close()
        log = _logs[-1]
        size = log.builder.size
        index = size // 3
        proof = merkle.prove_inclusion(index, size, lambda wanted: log.nodes)
        made = receipt.Receipt(log.lines[index], index, proof, log.note()).text()
        c0 = time.process_time()
        for _ in range(args.requests):
            receipt.verify(receipt.parse(made), log.signer.verifier)
        checked = (time.process_time() - c0) / args.requests
    rows = [
        ("add-checkpoint, in process (checks, signature, fsync)", *direct),
        ("add-checkpoint over HTTP (client and server, one process)", *http),
        ("verify a receipt offline (CPU only)", checked, checked),
    ]
    print(f"{args.requests} requests, {args.step} leaves each, log size {size:,}")
    print(f"{'':62}{'wall ms':>10}{'CPU ms':>10}")
    for name, wall, cpu in rows:
        print(f"{name:62}{wall * 1000:>10.2f}{cpu * 1000:>10.2f}")
    out = Path(__file__).parent / "results" / "witness.json"
    out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "requests": args.requests,
                "step": args.step,
                "rows": [{"what": n, "wall_s": w, "cpu_s": c} for n, w, c in rows],
            },
            indent=2,
        )
        + "\n"
    )


STATE: Path
served: witness.Witness

if __name__ == "__main__":
    main()
