"""The read commands through CliRunner on the fixture scenario: exact output, replays."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from arms_ledger.cli.main import cli
from click.testing import CliRunner

from tests import stores


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, module_store) -> Path:
    """The demo ledger, once per store (its tests run once per store)."""
    return stores.kept_demo(tmp_path_factory.mktemp("scenario") / "ledger", module_store)


@pytest.fixture
def run(scenario, monkeypatch):
    monkeypatch.setenv("ARMS_LEDGER", str(scenario))

    def invoke(*args: str):
        return CliRunner().invoke(cli, list(args))

    return invoke


def test_queue_in_scored_mode(run):
    result = run("queue", "m1a2-sepv3")
    assert result.exit_code == 0
    assert (
        result.stdout
        == """\
Queue of m1a2-sepv3: 4 case(s), scored mode (america-first-2026).
position  case      partner  priority_class  override  tier   score  stage        quantity_left  est_completion_months
--------  --------  -------  --------------  --------  ----  ------  -----------  -------------  ---------------------
       1  PL-B-ABR  POL      normal             false     1   0.746  delivering              80                    6.7
       2  AT-B-ABR  AUS      normal             false     3  0.4292  delivering              20                    8.3
       3  TW-B-ABR  TWN      normal             false     3   0.423  delivering              28                   10.7
       4  RO-B-ABR  ROU      normal             false     3  0.4226  implemented             54                   15.2
"""  # noqa: E501 (the terminal table as printed)
    )


def test_queue_as_of_before_the_executive_order_is_fcfs(run):
    result = run("queue", "m1a2-sepv3", "--as-of", "2026-02-05", "--json")
    assert result.exit_code == 0
    assert result.stderr == "(replayed as of 2026-02-05T00:00:00Z)\n"
    rows = json.loads(result.stdout)
    assert [(r["position"], r["case"], r["tier"], r["score"]) for r in rows] == [
        (1, "TW-B-ABR", None, None),
        (2, "AT-B-ABR", None, None),
        (3, "PL-B-ABR", None, None),
        (4, "RO-B-ABR", None, None),
    ]
    assert set(rows[0]) >= {
        "position",
        "case",
        "partner",
        "tier",
        "score",
        "stage",
        "quantity_left",
        "est_completion_months",
    }


def test_audit_diff_names_the_policy_that_moved_each_case(run):
    result = run(
        "audit",
        "diff",
        "--from",
        "2026-02-05T23:59:59Z",
        "--to",
        "2026-02-06",
        "--platform",
        "m1a2-sepv3",
    )
    assert result.exit_code == 0
    table, _, events = result.stdout.partition("\n\nThe events:\n")
    assert (
        table
        == """\
platform    case      partner  change  before  after  caused by
----------  --------  -------  ------  ------  -----  ---------
m1a2-sepv3  PL-B-ABR  POL      up           3      1  #760
m1a2-sepv3  RO-B-ABR  ROU      up           4      2  #760
m1a2-sepv3  TW-B-ABR  TWN      down         1      3  #760
m1a2-sepv3  AT-B-ABR  AUS      down         2      4  #760"""
    )
    assert events.startswith(
        "  #760 PriorityPolicyAdopted effective 2026-02-06 by usd-as.dsca: E.O. 14383"
    )


def test_audit_explain_names_the_event_behind_each_component(run):
    result = run("audit", "explain", "PL-B-AHA", "--json")
    assert result.exit_code == 0
    found = json.loads(result.stdout)
    assert (found["position"], found["queue_length"], found["mode"]) == (1, 4, "scored")
    set_by = {
        c["component"].strip(): (c["event_position"], c["event_type"])
        for c in found["components"]
    }
    assert set_by["1. priority class"] == (295, "CaseFiled")
    assert set_by["4. score"] == (760, "PriorityPolicyAdopted")
    assert set_by["investment I"] == (827, "DefenseSpendingReported")
    assert set_by["strategic S"] == (768, "StrategicValueAssessed")
    assert set_by["5. filed"] == (295, "CaseFiled")
    assert set_by["capacity"] == (45, "ProductionCapacitySet")


def test_audit_flags_judged_at_a_time(run):
    result = run("audit", "flags", "--known-at", "2026-10-28")
    assert result.exit_code == 0
    assert (
        result.stdout
        == """\
9 oversight flag(s), deadlines judged at 2026-10-28T00:00:00Z.
kind                       stream         effective_at  detail
-------------------------  -------------  ------------  ------------------------------------------------------------------------------------------
backdated-decision         partner:SAU    2026-02-12    StrategicValueAssessed recorded 2026-03-30, 46 days after it took effect
backdated-decision         case:IS-D-KC4  2026-03-02    CaseReprioritized recorded 2026-04-14, 43 days after it took effect
backdated-decision         platform:nvd   2026-05-07    EEUMDesignationChanged recorded 2026-06-22, 46 days after it took effect
eeum-no-annual-inventory   case:UP-B-JAV  2021-06-06    no EEUM inventory since 2021-06-06 (more than 365 days)
eeum-no-annual-inventory   case:UP-B-JAX  2023-06-15    no EEUM inventory since 2023-06-15 (more than 365 days)
eeum-no-initial-inventory  case:UP-B-JAX  2023-06-15    delivery of 300 javelin on 2023-06-15: no initial inventory within 90 days
out-of-sequence            case:FI-D-F35  2026-09-29    delivery to position 5 of the f-35a queue while 4 case(s) ahead still wait (GY-D-F35, PL-…
out-of-sequence            case:DA-D-F35  2026-10-19    offer to position 4 of the f-35a queue while 1 case(s) ahead still wait (SR-D-F35), with …
qme-not-certified          case:AE-B-THB  2025-03-04    notification 25-15 to ARE without QME certification
"""  # noqa: E501 (the terminal table as printed)
    )


def test_a_flag_waits_for_its_deadline(run):
    # UP-B-JAX's 300 Javelins were delivered 2023-06-15: the initial inventory was due
    # within 90 days, so the flag appears once those days are over.
    def kinds(at: str) -> list[str]:
        result = run("audit", "flags", "--as-of", at, "--json")
        return [f["kind"] for f in json.loads(result.stdout) if f["case"] == "UP-B-JAX"]

    assert kinds("2023-09-12") == []
    assert kinds("2023-09-14") == ["eeum-no-initial-inventory"]


def test_backlog_by_stage(run):
    result = run("backlog", "--by", "stage")
    assert (
        result.stdout
        == """\
stage                 cases  quantity_left     value_usd
--------------------  -----  -------------  ------------
implemented              22           2331  108850000000
delivering               17            901   66195000000
congressional-review      1             48   23000000000
offered                   1             16    4100000000
notified                  2            111    2750000000
filed                     3            230    1318000000

46 open case(s) worth $206,213,000,000.
"""
    )


def test_cases_filters(run):
    result = run("cases", "--partner", "TUR", "--csv")
    lines = result.stdout.splitlines()
    assert lines[0].startswith("case,partner,platform,channel,mde,stage,open,")
    assert [line.split(",")[0] for line in lines[1:]] == ["TK-D-F16"]


def test_audit_trail_lists_every_event_of_a_stream(run):
    result = run("audit", "trail", "TK-D-F16", "--json")
    events = json.loads(result.stdout)
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    held = [e for e in events if e["type"] in ("HoldPlaced", "HoldLifted")]
    assert held and all(e["actor"] and e["rationale"] for e in held)


def test_query_is_read_only_and_takes_parameters(run, scenario):
    result = run(
        "query",
        "SELECT partner, tier FROM partners WHERE partner = :p",
        "-p",
        "p",
        "POL",
        "--json",
    )
    assert json.loads(result.stdout) == [{"partner": "POL", "tier": 1}]
    refused = run("query", "DELETE FROM queue")
    assert refused.exit_code == 1
    assert refused.stderr == (
        "Error: the query was refused: delete queue is not allowed (queries only read "
        "the read models: SELECT, WITH, and functions that compute)\n"
    )
    with sqlite3.connect(scenario / "projections.db") as db:
        assert db.execute("SELECT count(*) FROM queue").fetchone()[0] == 44


def test_query_tables_describes_every_column(run):
    described = json.loads(run("query", "--tables", "--json").stdout)
    assert described["queue"]["columns"]["est_completion_months"].startswith("cumulative")
    assert "oversight_flags" in described


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ("queue", "nope"),
            1,
            "Error: no platform 'nope' in the ledger; `arms-ledger queue` lists the "
            "queues\n",
        ),
        (
            ("queue", "--at-position", "5000"),
            1,
            "Error: the log ends at position 917; --at-position 5000 is beyond it\n",
        ),
        (
            ("audit", "explain", "XX-1"),
            1,
            "Error: no case 'XX-1' in the ledger (at this time); `arms-ledger cases` lists "
            "them\n",
        ),
        (("query",), 2, "Error: give a SQL query (or --tables to see what there is)\n"),
    ],
)
def test_bad_requests_get_one_line(run, args, code, message):
    result = run(*args)
    assert result.exit_code == code
    assert result.stderr.splitlines()[-1] + "\n" == message


def test_a_bad_time_is_a_usage_error(run):
    result = run("queue", "--as-of", "2026-13-01")
    assert result.exit_code == 2
    assert result.stderr.splitlines()[-1] == (
        "Error: Invalid value for --as-of: --as-of '2026-13-01' is not an RFC 3339 date "
        "or datetime; use e.g. 2026-02-06 or 2026-02-06T14:30:00Z"
    )


def test_replays_leave_the_live_read_models_alone(run, scenario):
    db = scenario / "projections.db"
    before = db.read_bytes()
    assert run("queue", "f-35a", "--known-at", "2025-01-01").exit_code == 0
    assert run("partners", "--at-position", "100").exit_code == 0
    assert db.read_bytes() == before


@pytest.mark.usefixtures("store")
def test_appending_brings_the_read_models_up_to_date(tmp_path, monkeypatch):
    ledger = tmp_path / "copy"
    assert CliRunner().invoke(cli, ["demo", "--keep", str(ledger)]).exit_code == 0
    monkeypatch.setenv("ARMS_LEDGER", str(ledger))
    monkeypatch.setenv("ARMS_LEDGER_ACTOR", "usasac")
    result = CliRunner().invoke(cli, ["case", "deliver", "PL-B-ABR", "--quantity", "80"])
    assert result.stdout == "Appended DeliveryRecorded to case:PL-B-ABR at position 918.\n"
    with sqlite3.connect(ledger / "projections.db") as db:  # read directly: no catch-up
        assert db.execute("SELECT position FROM projection").fetchone() == (918,)
        queue = db.execute(
            "SELECT \"case\", position FROM queue WHERE platform = 'm1a2-sepv3' "
            "ORDER BY position"
        ).fetchall()
        changes = db.execute(
            'SELECT "case", change, old_position, new_position FROM queue_changes '
            "WHERE event_position = 918"
        ).fetchall()
    assert queue == [("AT-B-ABR", 1), ("TW-B-ABR", 2), ("RO-B-ABR", 3)]
    assert changes == [
        ("PL-B-ABR", "left", 1, None),
        ("AT-B-ABR", "shifted", 2, 1),
        ("TW-B-ABR", "shifted", 3, 2),
        ("RO-B-ABR", "shifted", 4, 3),
    ]


def test_rebuild_gives_the_same_read_models(run, scenario):
    def dump() -> list:
        with sqlite3.connect(scenario / "projections.db") as db:
            return [
                db.execute(f'SELECT * FROM "{t}" ORDER BY 1, 2').fetchall()
                for t in ("partners", "cases", "queue", "queue_changes", "audit_log")
            ]

    before = dump()
    result = run("rebuild")
    assert result.stdout == "Rebuilt the read models from 917 events.\n"
    assert dump() == before


def test_query_is_read_only_for_real(run, scenario, tmp_path):
    target = tmp_path / "elsewhere.db"
    attach = run("query", f"ATTACH DATABASE '{target}' AS x")
    assert attach.exit_code == 1
    assert attach.stderr == (
        f"Error: the query was refused: attach {target} is not allowed (queries only "
        "read the read models: SELECT, WITH, and functions that compute)\n"
    )
    assert not target.exists()
    for sql, what in (
        ("PRAGMA journal_mode = DELETE", "pragma journal_mode"),
        ("SELECT fts3_tokenizer('simple')", "function fts3_tokenizer"),
        ("DELETE FROM partners", "delete partners"),
    ):
        result = run("query", sql)
        assert result.exit_code == 1
        assert result.stderr.startswith(f"Error: the query was refused: {what} is not")
    with sqlite3.connect(scenario / "projections.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert db.execute("SELECT count(*) FROM partners").fetchone()[0] > 0
