"""One vocabulary (cli/options.py): the renamed options work under their new names, and
their old spellings still work as hidden aliases, with one warning line on stderr,
absent from --help."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from arms_ledger.cli.main import cli
from arms_ledger.cli.options import Renamed
from click.testing import CliRunner

from tests import stores

# (the command, the arguments under the new names, the same under the old ones, the
# warnings the old ones print)
RENAMED = [
    (
        ("log", "--limit", "3", "--json"),
        ("--acted-by", "usd-as.dsca"),
        ("--actor", "usd-as.dsca"),
        [("--actor", "--acted-by")],
    ),
    (
        ("log", "--json"),
        ("--from", "2026-02-05", "--to", "2026-02-06"),
        ("--since", "2026-02-05", "--until", "2026-02-06"),
        [("--since", "--from"), ("--until", "--to")],
    ),
    (
        ("log", "--json"),
        ("--recorded-from", "2026-11-07", "--recorded-to", "2026-11-10T00:00:00Z"),
        ("--recorded-since", "2026-11-07", "--recorded-until", "2026-11-10T00:00:00Z"),
        [("--recorded-since", "--recorded-from"), ("--recorded-until", "--recorded-to")],
    ),
    (
        ("history", "PL-B-AHA", "--json"),
        ("--at-version", "3"),
        ("--version", "3"),
        [("--version", "--at-version")],
    ),
    (
        ("audit", "retro", "--json"),
        ("--recorded-from", "911", "--recorded-to", "916"),
        ("--from", "911", "--to", "916"),
        [("--from", "--recorded-from"), ("--to", "--recorded-to")],
    ),
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory, module_store) -> Path:
    return stores.kept_demo(tmp_path_factory.mktemp("vocabulary") / "ledger", module_store)


@pytest.fixture(autouse=True)
def store(module_store):
    with stores.using(module_store):
        yield module_store


def invoke(ledger: Path, *args: str):
    return CliRunner().invoke(cli, ["--ledger", str(ledger), *args])


def warning(old: str, new: str) -> str:
    return f"Warning: {old} is now {new}; {old} will be removed in a later release.\n"


@pytest.mark.parametrize(("command", "new", "old", "warnings"), RENAMED)
def test_the_old_spellings_do_what_the_new_ones_do_and_say_so(
    demo, command, new, old, warnings
):
    now = invoke(demo, *command, *new)
    assert (now.exit_code, now.stderr) == (0, "")
    assert now.stdout not in ("", "[]\n")  # the filter selects something
    before = invoke(demo, *command, *old)
    assert (before.exit_code, before.stdout) == (0, now.stdout)
    assert before.stderr == "".join(warning(o, n) for o, n in warnings)


def test_the_new_names_select_what_they_say(demo):
    import json

    rows = json.loads(invoke(demo, "log", "--acted-by", "usasac", "--json").stdout)
    assert rows and {r["actor"] for r in rows} == {"usasac"}
    rows = json.loads(
        invoke(demo, "log", "--from", "2026-02-05", "--to", "2026-02-06", "--json").stdout
    )
    assert rows and all(
        "2026-02-05" <= r["effective_at"][:10] <= "2026-02-06" for r in rows
    )
    everything = json.loads(invoke(demo, "log", "--json").stdout)
    rows = json.loads(invoke(demo, "log", "--recorded-from", "2026-11-10", "--json").stdout)
    assert rows == [r for r in everything if r["recorded_at"] >= "2026-11-10"]
    assert [r["position"] for r in rows] == [916, 917]
    rows = json.loads(
        invoke(demo, "history", "PL-B-AHA", "--at-version", "2", "--json").stdout
    )
    assert [r["version"] for r in rows] == [1, 2]


def test_given_both_spellings_the_new_one_wins(demo):
    import json

    result = invoke(
        demo, "history", "PL-B-AHA", "--version", "5", "--at-version", "2", "--json"
    )
    assert [r["version"] for r in json.loads(result.stdout)] == [1, 2]
    assert result.stderr == warning("--version", "--at-version")


def test_a_required_option_may_be_given_by_its_old_spelling(demo):
    result = invoke(demo, "audit", "retro", "--from", "915")
    assert result.exit_code == 0, result.stderr
    missing = invoke(demo, "audit", "retro")
    assert missing.exit_code == 2
    assert "Missing option '--recorded-from'." in missing.stderr


def test_an_old_spelling_without_its_value_is_a_usage_error(demo):
    result = invoke(demo, "log", "--since")
    assert result.exit_code == 2
    assert "Option '--since' requires an argument." in result.stderr


def test_a_bad_value_under_an_old_spelling_names_the_new_option(demo):
    result = invoke(demo, "log", "--since", "yesterday")
    assert result.exit_code == 2
    assert "--from" in result.stderr.splitlines()[-1]


def commands(group: click.Group, path: tuple[str, ...] = ()):
    with click.Context(group) as ctx:
        for name in group.list_commands(ctx):
            command = group.get_command(ctx, name)
            assert command is not None
            yield (*path, name), command
            if isinstance(command, click.Group):
                yield from commands(command, (*path, name))


def renamed_options() -> list[tuple[tuple[str, ...], Renamed]]:
    return [
        (path, p)
        for path, command in commands(cli)
        for p in command.params
        if isinstance(p, Renamed) and p.old
    ]


def test_every_rename_is_tested_here():
    tested = {
        (command[0] if command[0] != "audit" else f"audit {command[1]}", old)
        for command, _, _, warnings in RENAMED
        for old, _ in warnings
    }
    found = {(" ".join(path), old) for path, p in renamed_options() for old in p.old}
    assert found == tested


@pytest.mark.parametrize(
    ("path", "option"),
    renamed_options(),
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else v.name,
)
def test_the_old_spellings_are_not_in_help(path, option):
    text = CliRunner().invoke(cli, [*path, "--help"], terminal_width=100).stdout
    assert option.opts[0] in text
    for old in option.old:
        # an old spelling may be another option's new name (audit retro's --from is
        # log's): then it is not this command's
        assert not any(
            line.split()[0].rstrip(",") == old
            for line in text.splitlines()
            if line.startswith("  -")
        )


@pytest.mark.parametrize(
    ("args", "last_line"),
    [
        (
            ("history", "PL-B-AHA", "--versio", "2"),
            "Error: No such option '--versio'. Did you mean '--at-version'?",
        ),
        (
            ("log", "--sinc", "2026-01-01"),
            "Error: No such option '--sinc'. (Did you mean one of: '--json', '--nl'?)",
        ),
        (
            ("log", "--recorded-untl", "2026-01-01"),
            "Error: No such option '--recorded-untl'. "
            "(Did you mean one of: '--recorded-from', '--recorded-to'?)",
        ),
        (("audit", "retro", "--fro", "915"), "Error: No such option '--fro'."),
    ],
)
def test_a_mistyped_option_is_never_pointed_to_an_old_spelling(demo, args, last_line):
    result = invoke(demo, *args)
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == last_line
