"""Documentation that runs (issue 18): every command block of README.md and docs/*.md
(a fence marked ``sh``, ``bash``, ``shell`` or ``console``) is executed, and so is every
example of the commands' help (which docs/cli.md shows), so the docs cannot drift from
the code.

The blocks of one page run in order in a fresh directory of their own, as a reader would
type them: one shell session per page (what a block exports, the next one has), with the
installed ``arms-ledger`` first on PATH and no ledger, actor or data directory of the
reader's. In a ``console`` block, each ``$ command`` runs and what it prints (stdout and
stderr, as a terminal shows them) must be the lines under it, exactly.

A block a test cannot run says so just above it, in an HTML comment the page does not show:

    <!-- docs: not run: the reason -->

and a block that needs files the reader is told come from elsewhere (an export from the
operator, a file of proposed events) gets them from a comment that makes them first:

    <!-- docs: given
    commands that make them
    -->

An unmarked block that fails fails the test, naming the page, the line and the error.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
COMMAND_LANGUAGES = {"sh", "bash", "shell", "console"}
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
# A mark: the last thing before the fence (its text cannot hold "-->").
MARK = re.compile(r"<!-- docs: (not run|given)((?:(?!-->).)*)-->\s*\Z", re.S)
BLOCK_TIMEOUT = 600  # seconds: a block runs a few commands, the demo at most


@dataclass
class Block:
    page: Path
    line: int
    language: str
    body: str
    not_run: str | None = None  # the reason
    given: str | None = None  # commands run first

    @property
    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """The command blocks of a page, with their marks."""
    text = page.read_text()
    found = []
    for fence in FENCE.finditer(text):
        language = fence.group(1)
        if language not in COMMAND_LANGUAGES:
            continue
        block = Block(page, text[: fence.start()].count("\n") + 1, language, fence.group(2))
        mark = MARK.search(text[: fence.start()].rstrip("\n")[-2000:])
        if mark is not None:
            kind, rest = mark.group(1), mark.group(2)
            if kind == "not run":
                block.not_run = rest.lstrip(":").strip()
            else:
                block.given = rest.strip()
        found.append(block)
    return found


ALL = [b for page in PAGES for b in blocks(page)]


def test_every_mark_gives_a_reason_or_commands():
    for block in ALL:
        if block.not_run is not None:
            assert len(block.not_run) > 10, f"{block.where}: say why it is not run"
        if block.given is not None:
            assert block.given, f"{block.where}: a 'given' mark holds commands"


def test_the_pages_have_command_blocks_that_run():
    # The test below is not vacuous: most blocks run.
    assert len([b for b in ALL if b.not_run is None]) >= 10


class Session:
    """One shell session over the blocks of a page: each runs in ``bash -e``, after
    the environment the previous ones exported."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.state = directory.parent / "state.sh"
        self.state.write_text("")
        home = directory.parent / "home"
        home.mkdir()
        bin_dir = str(Path(sys.executable).parent)
        self.env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("ARMS_LEDGER", "XDG_", "PYTEST", "COV_"))
        } | {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "COLUMNS": "200",
        }

    def run(self, script: str, merged: bool = False) -> subprocess.CompletedProcess:
        """Run ``script``; ``merged``: its stderr interleaved into its stdout, as a
        terminal shows them."""
        wrapped = (
            f"set -eo pipefail\nsource {shlex.quote(str(self.state))}\n"
            f"cd {shlex.quote(str(self.directory))}\n{script}\n"
            f"export -p > {shlex.quote(str(self.state))}\n"
        )
        return subprocess.run(
            ["bash", "-c", wrapped],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merged else subprocess.PIPE,
            text=True,
            timeout=BLOCK_TIMEOUT,
        )


def console_steps(body: str) -> list[tuple[str, str]]:
    """A console block's ``$ command`` lines (continued by a trailing backslash), each
    with the output printed under it."""
    steps: list[tuple[str, list[str]]] = []
    continued = False
    for line in body.splitlines():
        if continued:
            steps[-1] = (steps[-1][0] + "\n" + line, steps[-1][1])
            continued = line.endswith("\\")
        elif line.startswith("$ "):
            steps.append((line[2:], []))
            continued = line.endswith("\\")
        else:
            assert steps, f"output before any command: {line!r}"
            steps[-1][1].append(line)
    return [(command, "\n".join(out)) for command, out in steps]


def run_block(session: Session, block: Block) -> None:
    if block.given:
        result = session.run(block.given)
        assert result.returncode == 0, f"{block.where} (given): {result.stderr}"
    if block.language != "console":
        result = session.run(block.body)
        assert result.returncode == 0, (
            f"{block.where}: exit {result.returncode}\n{result.stderr[-2000:]}"
        )
        return
    for command, expected in console_steps(block.body):
        printed = session.run(command, merged=True).stdout
        assert printed.rstrip("\n") == expected.rstrip("\n"), (
            f"{block.where}: `{command}` printed something else"
        )


@pytest.mark.slow  # the demo ledger is built once per page (seconds each)
@pytest.mark.parametrize(
    "page",
    [p for p in PAGES if any(b.page == p and b.not_run is None for b in ALL)],
    ids=lambda p: p.name,
)
def test_the_command_blocks_of_a_page_run(page, tmp_path):
    directory = tmp_path / "work"
    directory.mkdir()
    session = Session(directory)
    for block in blocks(page):
        if block.not_run is None:
            run_block(session, block)


SELF_TEST = """# A page

<!-- docs: not run: it would take an hour on a large ledger -->
```sh
false
```

<!-- docs: given
echo made > given.txt
-->
```sh
test "$(cat given.txt)" = made
export SEEN=yes
```

```console
$ echo "$SEEN" && arms-ledger --version >/dev/null
yes
```

```sh
arms-ledger no-such-command
```
"""


def test_an_unmarked_block_that_fails_fails_the_test(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(SELF_TEST)
    found = blocks(page)
    assert [(b.line, b.not_run is not None, bool(b.given)) for b in found] == [
        (4, True, False),
        (11, False, True),
        (16, False, False),
        (21, False, False),
    ]
    directory = tmp_path / "work"
    directory.mkdir()
    session = Session(directory)
    for block in found[1:3]:  # a given file, an export carried over, a console output
        run_block(session, block)
    with pytest.raises(AssertionError, match=r"page\.md:21: exit 2"):
        run_block(session, found[3])
    wrong = Block(page, 30, "console", "$ echo no\nyes\n")
    with pytest.raises(AssertionError, match="printed something else"):
        run_block(session, wrong)


# --- the examples of the commands' help (docs/cli.md) -----------------------------------

# Files an example names, made before it runs (by the command's path).
# The public notifications the repository ships (docs/monitors.md), where the reconcile
# example finds them: in a checkout's fixtures/.
NOTIFICATIONS = ROOT / "fixtures" / "dsca_notifications.csv"
HELP_GIVEN: dict[tuple[str, ...], str] = {
    (): "export ARMS_LEDGER=./own\n"
    + "printf '%s\\n' '"
    + json.dumps(
        {
            "type": "PartnerRegistered",
            "partner": "POL",
            "name": "Poland",
            "region": "Europe",
            "notification_group": "NATO+",
            "actor": "state.pm-rsat",
        }
    )
    + "' > events.jsonl",
    ("append",): "export ARMS_LEDGER=./demo-ledger\n"
    + "printf '%s\\n' '"
    + json.dumps(
        {
            "type": "CaseReprioritized",
            "case": "UP-B-PAC",
            "priority_class": "expedited",
            "authority": "E.O. 14383",
            "actor": "usd-as",
            "rationale": "air defense",
        }
    )
    + "' > cases.jsonl",
    ("audit", "verify-export"): "arms-ledger audit latest > checkpoint-2026-10-01\n"
    "arms-ledger audit export ./export > /dev/null\n"
    "cp ./export/verifier.key verifier.key",
    ("whatif",): "printf '%s\\n' '"
    + json.dumps(
        {
            "mode": "scored",
            "weights": {"investment": 0.5, "strategic": 0.25, "economic": 0.25},
        }
    )
    + "' > proposal.json\ncp cases.jsonl reprioritize.jsonl",
    ("audit", "reconcile"): f"mkdir -p fixtures && cp {NOTIFICATIONS} fixtures/",
    ("audit", "retro"): "arms-ledger audit latest > checkpoint-2026-10-01",
    # A policy that names the demo's log and asks no witness (the demo has none).
    ("audit", "verify-receipt"): "printf 'log %s\\nquorum none\\n' "
    '"$(cat ./demo-ledger/verifier.key)" > witnesses.policy\n'
    "cp ./demo-ledger/verifier.key verifier.key",
}
HELP_NOT_RUN = {
    ("serve",): "serve runs until Ctrl-C; tests/web serves the same read models",
    ("witness", "serve"): "runs until Ctrl-C; tests/cli/test_witnesses.py serves three",
    ("audit", "witness"): "needs witnesses listening; tests/cli/test_witnesses.py runs "
    "it against three on localhost",
}


def help_examples() -> list[tuple[tuple[str, ...], list[str]]]:
    """Each command's path and the example commands of its help (a trailing backslash
    continues a line), in the order of docs/cli.md."""
    from arms_ledger.cli.main import cli

    from tests.test_docs import commands

    found = []
    for path, command in commands(cli):
        examples: list[str] = []
        continued = False
        for line in (command.help or "").splitlines():
            text = line.strip()
            if continued:
                examples[-1] += "\n" + text
            elif text.startswith(("arms-ledger ", "echo ")):
                examples.append(text)
            else:
                continue
            continued = text.endswith("\\")
        if examples:
            found.append((path, examples))
    return found


def test_every_help_example_runs_or_says_why_not():
    paths = {path for path, _ in help_examples()}
    assert len(paths) >= 10
    assert set(HELP_GIVEN) <= paths and set(HELP_NOT_RUN) <= paths


@pytest.mark.slow  # the demo ledger, then some thirty commands
def test_the_examples_of_the_help_run(tmp_path):
    directory = tmp_path / "work"
    directory.mkdir()
    session = Session(directory)
    setup = session.run(
        "arms-ledger demo --keep ./demo-ledger > /dev/null\n"
        "export ARMS_LEDGER=./demo-ledger ARMS_LEDGER_ACTOR=dsca.docs"
    )
    assert setup.returncode == 0, setup.stderr
    for path, examples in help_examples():
        if path in HELP_NOT_RUN:
            continue
        if path in HELP_GIVEN:
            given = session.run(HELP_GIVEN[path])
            assert given.returncode == 0, (path, given.stderr)
        for example in examples:
            result = session.run(example)
            assert result.returncode == 0, (
                f"the help of `arms-ledger {' '.join(path)}`: `{example}` exited "
                f"{result.returncode}: {result.stderr[-1000:]}"
            )
