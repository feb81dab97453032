"""The monitor pages: the same findings as the CLI, on the state the banner names."""

from __future__ import annotations

import json

from arms_ledger.cli.main import cli
from arms_ledger.projections.web.monitors import MONITORS
from click.testing import CliRunner

from tests.web.conftest import BEFORE_THE_ORDER


def cli_json(ledger, *args: str) -> list[dict]:
    result = CliRunner().invoke(cli, ["--ledger", str(ledger), "audit", *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_the_index_links_every_monitor(live):
    page = live.get("/-/monitors").text
    for monitor in MONITORS:
        assert f'<a href="/-/monitors/{monitor.name}">{monitor.title}</a>' in page


def test_the_deadlines_page_shows_what_the_cli_finds_at_the_replays_time(
    replay, demo_ledger
):
    cli_rows = cli_json(demo_ledger, "deadlines", "--as-of", BEFORE_THE_ORDER)
    assert cli_rows
    page = replay.get("/-/monitors/deadlines")
    assert page.status_code == 200
    assert (
        f"{len(cli_rows)} finding(s), judged at {BEFORE_THE_ORDER}T00:00:00Z" in page.text
    )
    for row in cli_rows:
        events = " ".join(f"#{p}" for p in row["events"])
        assert f'<td class="col-events">{events}</td>' in page.text


def test_the_retro_page_shows_what_the_cli_finds(live, replay, demo_ledger):
    cli_rows = cli_json(demo_ledger, "retro", "--recorded-from", "915")
    assert [r["position"] for r in cli_rows] == [916, 917]
    page = live.get("/-/monitors/retro?from=915")
    assert page.status_code == 200
    assert "2 finding(s), between log positions 915 and 917." in page.text
    assert "f-35a DA-D-F35 4→7" in page.text
    assert "not a replay --as-of a time" in replay.get("/-/monitors/retro").text


def test_the_bypasses_page_shows_what_the_cli_finds(replay, demo_ledger):
    cli_rows = cli_json(demo_ledger, "bypasses", "--as-of", BEFORE_THE_ORDER)
    assert cli_rows
    page = replay.get("/-/monitors/bypasses")
    assert page.status_code == 200
    total = sum(r["skips"] for r in cli_rows)
    assert f"{total} skip(s) of a queue" in page.text
    for row in cli_rows:
        events = " ".join(f"#{p}" for p in row["events"])
        assert f'<td class="col-events">{events}</td>' in page.text


def test_the_reconcile_page_uses_the_shipped_notifications(replay, demo_ledger):
    from arms_ledger import fixtures

    cli_rows = cli_json(
        demo_ledger, "reconcile", str(fixtures.NOTIFICATIONS), "--as-of", BEFORE_THE_ORDER
    )
    page = replay.get("/-/monitors/reconcile")
    assert page.status_code == 200
    assert f"{len(cli_rows)} finding(s), " in page.text
    assert '<td class="col-detail">25-23: date 2025-04-02, published 2025-04-01</td>' in (
        page.text
    )


def test_the_register_pages_show_what_the_cli_writes(replay, demo_ledger):
    for fmt in ("sipri", "unroca"):
        cli_rows = cli_json(
            demo_ledger, "export-register", "--format", fmt, "--as-of", BEFORE_THE_ORDER
        )
        assert cli_rows
        page = replay.get(f"/-/monitors/register-{fmt}")
        assert page.status_code == 200
        assert f"{len(cli_rows)} finding(s), judged at " in page.text
