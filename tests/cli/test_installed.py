"""The installed entry point, in a subprocess, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXECUTABLE = Path(sys.executable).parent / "arms-ledger"


@pytest.mark.skipif(not EXECUTABLE.exists(), reason="arms-ledger is not installed here")
def test_installed_command_runs_the_demo_and_reports_errors(tmp_path):
    demo = subprocess.run([EXECUTABLE, "demo"], capture_output=True, text=True)
    assert demo.returncode == 0, demo.stderr
    assert demo.stdout.startswith("Loaded 911 events from fixtures/scenario.jsonl.\n")
    env = {"ARMS_LEDGER": str(tmp_path / "l"), "PATH": str(EXECUTABLE.parent)}
    assert subprocess.run([EXECUTABLE, "init"], env=env, capture_output=True).returncode == 0
    bad = subprocess.run(
        [EXECUTABLE, "append", "-"], input='{"type":"Nope","actor":"x"}\n',
        env=env, capture_output=True, text=True,
    )
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: line 1 (Nope): unknown event type 'Nope'")
    assert "Traceback" not in bad.stderr
