"""The monitor pages: the same findings as the CLI, on the state the banner names."""

from __future__ import annotations

import json

import pytest
from arms_ledger.cli.main import cli
from arms_ledger.projections.web.monitors import MONITORS
from click.testing import CliRunner

from tests.web.conftest import BEFORE_THE_ORDER


def test_the_index_links_every_monitor(live):
    page = live.get("/-/monitors").text
    for monitor in MONITORS:
        assert f'<a href="/-/monitors/{monitor.name}">{monitor.title}</a>' in page


@pytest.mark.parametrize("monitor", MONITORS, ids=lambda m: m.name)
def test_a_monitor_page_shows_what_the_cli_finds_at_the_replays_time(
    replay, demo_ledger, monitor
):
    cli_rows = json.loads(
        CliRunner()
        .invoke(
            cli,
            [
                "--ledger",
                str(demo_ledger),
                "audit",
                monitor.name,
                "--as-of",
                BEFORE_THE_ORDER,
                "--json",
            ],
        )
        .stdout
    )
    page = replay.get(f"/-/monitors/{monitor.name}")
    assert page.status_code == 200
    assert (
        f"{len(cli_rows)} finding(s), judged at {BEFORE_THE_ORDER}T00:00:00Z" in page.text
    )
    for row in cli_rows:
        events = " ".join(f"#{p}" for p in row["events"])
        assert f'<td class="col-events">{events}</td>' in page.text
