"""The installed entry point, in a subprocess, as a user runs it (once per store: the
subprocesses get their PostgreSQL schema through $ARMS_LEDGER_STORE)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import stores

EXECUTABLE = Path(sys.executable).parent / "arms-ledger"


@pytest.mark.skipif(not EXECUTABLE.exists(), reason="arms-ledger is not installed here")
def test_installed_command_runs_the_demo_and_reports_errors(tmp_path, store):
    demo = subprocess.run([EXECUTABLE, "demo"], capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.startswith("Loaded 917 events from fixtures/scenario.jsonl.\n")
    env = {"ARMS_LEDGER": str(tmp_path / "l"), "PATH": str(EXECUTABLE.parent)}
    if store != "sqlite":  # a schema of its own, not the demo's
        env["ARMS_LEDGER_STORE"] = stores.new_pg_store()
        env |= {k: v for k, v in os.environ.items() if k.startswith("PG")}
    assert (
        subprocess.run([EXECUTABLE, "init"], env=env, capture_output=True).returncode == 0
    )
    meta = json.loads((tmp_path / "l" / "ledger.json").read_text())
    assert meta["store"].split(":")[0] == store
    bad = subprocess.run(
        [EXECUTABLE, "append", "-"],
        input='{"type":"Nope","actor":"x"}\n',
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: line 1 (Nope): unknown event type 'Nope'")
    assert "Traceback" not in bad.stderr
