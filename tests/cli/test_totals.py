"""Issue 19, item 1: no valid log can make the read side fail. Amounts are bounded
(``MAX_USD``), and so is what they add up to: a partner's economic contributions total at
most ``MAX_TOTAL_USD`` (the rules refuse the contribution that would pass it), and a log
that holds more anyway (forged or damaged) is refused by the read side in one line."""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime

import pytest
from arms_ledger.ledger.domain import events as ev
from arms_ledger.ledger.domain.intake import normalize
from arms_ledger.ledger.domain.values import MAX_TOTAL_USD, MAX_USD
from arms_ledger.ledger.errors import LedgerError
from arms_ledger.projections import engine
from arms_ledger.projections.source import InMemoryLog

from tests.cli.conftest import one_line_error, registration

WHEN = datetime(2026, 3, 1, tzinfo=UTC)
REGISTER = registration()


def contribution(amount: int) -> dict:
    return {
        "type": "EconomicContributionRecorded",
        "partner": "POL",
        "kind": "co-production",
        "amount_usd": amount,
        "description": "F-35 wing assemblies",
        "actor": "dsca",
    }


def lines(*events: dict) -> str:
    return "".join(json.dumps(e) + "\n" for e in events)


def test_contributions_up_to_the_limit_and_not_past_it(run, ledger):
    full = MAX_TOTAL_USD // MAX_USD
    result = run("append", "-", input=lines(REGISTER, *[contribution(MAX_USD)] * full))
    assert result.exit_code == 0, result.stderr
    partners = json.loads(run("partners", "--json").stdout)
    assert partners[0]["economic_usd"] == MAX_TOTAL_USD
    one_line_error(
        run("append", "-", input=lines(contribution(1))),
        "line 1 (EconomicContributionRecorded) refused by the limit on totals: partner "
        "POL's economic contributions would total $1,000,000,000,000,001, beyond the "
        "$1,000,000,000,000,000 the ledger totals. Nothing was appended.",
    )


def test_a_log_past_the_limit_is_refused_by_the_read_side_in_one_line(tmp_path):
    given = [REGISTER] + [contribution(MAX_USD)] * (MAX_TOTAL_USD // MAX_USD + 1)
    events = [normalize(ev.decoder.decode(json.dumps(e)), WHEN) for e in given]
    log = InMemoryLog(events)  # what no append accepts: a forged or damaged log
    conn = sqlite3.connect(tmp_path / "projections.db")
    with pytest.raises(LedgerError) as refused:
        engine.catch_up(log, conn)
    assert str(refused.value) == (
        f"the event at log position {len(events)} makes partner POL's economic "
        "contributions total $1,001,000,000,000,000, beyond the "
        "$1,000,000,000,000,000 the ledger totals: no log the rules accept holds it; "
        "`arms-ledger audit verify` checks the log"
    )
