"""Fuzzing `arms-ledger append` (seeded, bounded): a mutated line is refused whole with one
line and nothing written, or accepted; never a traceback.

The lines are mutations of a valid history (tests/histories.py, every event type): a
character deleted, doubled or replaced (by a quote, a brace, a control or bidirectional
character, a digit), a key given twice, a number made huge, a time made absurd, a type
renamed, a line cut short. 3,000 of them, each its own append on one ledger.
"""

from __future__ import annotations

import json
import random
import re

import pytest
from arms_ledger.cli.main import cli
from click.testing import CliRunner

from tests.histories import EVERY_TYPE, jsonl

pytestmark = pytest.mark.slow

SEED = 2026
COUNT = 3_000
ODD = ['"', "{", "}", ",", ":", "\\", "\x00", "\x1b", "\u202e", "\n", "9", " ", "é", "\x85"]


def mutate(rng: random.Random, record: dict) -> str:
    line = json.dumps(record, ensure_ascii=False)
    kind = rng.randrange(9)
    i = rng.randrange(len(line))
    if kind == 0:
        return line[:i] + line[i + 1 :]
    if kind == 1:
        return line[:i] + rng.choice(ODD) + line[i:]
    if kind == 2:
        return line[:i] + rng.choice(ODD) + line[i + 1 :]
    if kind == 3:  # a key twice, the copy with another value
        key = rng.choice(sorted(record))
        return line[:-1] + f", {json.dumps(key)}: {json.dumps(rng.choice(ODD))}" + "}"
    if kind == 4:
        numbers = [k for k, v in record.items() if isinstance(v, int | float)]
        if numbers:
            record = record | {rng.choice(numbers): rng.choice([10**23, -1, 2**63, 1e308])}
        return json.dumps(record)
    if kind == 5:
        return json.dumps(
            record | {"effective_at": rng.choice(["0001-01-01", "9999-12-31"])}
        )
    if kind == 6:
        return json.dumps(
            record | {"type": record["type"] + rng.choice(["x", "\u202e", ""])}
        )
    if kind == 7:
        return line[: rng.randrange(1, len(line))]
    return json.dumps(record | {rng.choice(["extra", "recorded_at", "actor"]): "x y"})


def test_mutated_lines_are_refused_in_one_line_or_accepted(tmp_path, monkeypatch):
    monkeypatch.setenv("ARMS_LEDGER", str(tmp_path / "ledger"))
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--checkpoints", "manual"]).exit_code == 0
    half = len(EVERY_TYPE) // 2
    assert (
        runner.invoke(cli, ["append", "-"], input=jsonl(EVERY_TYPE[:half])).exit_code == 0
    )
    rng = random.Random(SEED)
    outcomes = {0: 0, 1: 0, 2: 0}
    head = len(json.loads(runner.invoke(cli, ["log", "--json"]).stdout))
    for n in range(COUNT):
        line = mutate(rng, dict(rng.choice(EVERY_TYPE)))
        result = runner.invoke(cli, ["append", "-"], input=line + "\n")
        assert result.exception is None or isinstance(result.exception, SystemExit), (
            n,
            line,
            result.exception,
        )
        assert "Traceback" not in result.output, (n, line)
        outcomes[result.exit_code] = outcomes.get(result.exit_code, 0) + 1
        if result.exit_code == 0:  # one event appended right after the last, or none
            found = re.search(r"at position (\d+)", result.stdout)
            if found:
                assert int(found.group(1)) == head + 1, (n, line, result.stdout)
                head += 1
            continue
        assert result.exit_code in (1, 2), (n, line, result.exit_code)
        message = result.stderr
        assert message.startswith("Error: ") and message.count("\n") == 1, (
            n,
            line,
            message,
        )
        assert "\x1b" not in message and "\u202e" not in message and "\x00" not in message
    after = len(json.loads(runner.invoke(cli, ["log", "--json"]).stdout))
    assert after == head  # refused appends wrote nothing
    assert outcomes[1] > COUNT // 2, outcomes
