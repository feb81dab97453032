"""The overseer's monitors (``arms-ledger audit deadlines`` ...) through CliRunner on
the demo ledger (the fixture scenario): exact output, and the same answer on a replica
built from an export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from arms_ledger.cli.main import cli
from click.testing import CliRunner

from tests import stores

AT = ("--as-of", "2026-11-13")
NOTIFICATIONS = Path(__file__).resolve().parents[2] / "fixtures" / "dsca_notifications.csv"
OUTPUTS = (  # what must be byte-identical on the ledger and on a replica
    ("audit", "deadlines", *AT, "--json"),
    ("audit", "deadlines", "--within", "30", "--as-of", "2025-06-01"),
    ("audit", "retro", "--recorded-from", "915", "--csv"),
    ("audit", "retro", "--recorded-from", "2026-06-01", "--recorded-to", "2026-11-07"),
    ("audit", "bypasses", *AT),
    ("audit", "bypasses", *AT, "--csv"),
    ("audit", "reconcile", str(NOTIFICATIONS), *AT),
    ("audit", "reconcile", str(NOTIFICATIONS), "--json", "--known-at", "2026-11-13"),
    ("audit", "export-register", "--format", "sipri", *AT, "--csv"),
    ("audit", "export-register", "--format", "unroca", *AT),
)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, module_store) -> Path:
    """The demo ledger, on each store in turn."""
    return stores.kept_demo(tmp_path_factory.mktemp("monitors") / "ledger", module_store)


@pytest.fixture(autouse=True)
def store(module_store):
    with stores.using(module_store):
        yield module_store


def invoke(ledger: Path, *args: str):
    return CliRunner().invoke(cli, ["--ledger", str(ledger), *args])


def test_deadlines_at_the_end_of_the_scenario(scenario):
    result = invoke(scenario, "audit", "deadlines", "--within", "60", *AT)
    assert result.exit_code == 0, result.stderr
    assert result.stderr == "(replayed as of 2026-11-13T00:00:00Z)\n"
    assert (
        result.stdout
        == """\
6 overdue, 3 due within 60 days; judged at 2026-11-13T00:00:00Z, log position 917.
status   due         kind                    case      partner  detail                                                               events
-------  ----------  ----------------------  --------  -------  -------------------------------------------------------------------  ------
overdue  2022-06-06  eeum-annual-inventory   UP-B-JAV  UKR      annual inventory (last EEUM inventory or first delivery 2021-06-06)  #230
overdue  2023-09-13  eeum-initial-inventory  UP-B-JAX  UKR      initial inventory of 300 delivered 2023-06-15                        #383
overdue  2024-06-14  eeum-annual-inventory   UP-B-JAX  UKR      annual inventory (last EEUM inventory or first delivery 2023-06-15)  #383
overdue  2025-03-04  qme-certification       AE-B-THB  ARE      notification 25-15 to ARE without QME certification                  #595
overdue  2026-04-25  informal-review-open    SR-D-F35  SAU      informal review open more than 40 days (other)                       #821
overdue  2026-06-22  hold-open               SR-D-F35  SAU      hold by SFRC-ranking open more than 90 days                          #825
due      2026-11-20  review-period-ends      BE-D-F35  BEL      formal review of 26-61 (15 days, NATO+)                              #914
due      2026-12-01  eeum-annual-inventory   AE-B-JAV  ARE      annual inventory (last EEUM inventory or first delivery 2025-12-01)  #747
due      2027-01-12  offer-expires           DA-D-F35  DNK      offer (LOA) open: record OfferAccepted or OfferExpired               #908
"""  # noqa: E501 (the terminal table as printed)
    )


def test_deadlines_as_json_and_csv_name_the_events_and_the_checkpoint(scenario):
    found = json.loads(invoke(scenario, "audit", "deadlines", *AT, "--json").stdout)
    assert [r for r in found if r["kind"] == "offer-expires"] == [
        {
            "status": "due",
            "due": "2027-01-12T00:00:00Z",
            "kind": "offer-expires",
            "case": "DA-D-F35",
            "partner": "DNK",
            "platform": "f-35a",
            "detail": "offer (LOA) open: record OfferAccepted or OfferExpired",
            "events": [908],
            "checkpoint": 917,
            "judged_at": "2026-11-13T00:00:00Z",
        }
    ]
    csv = invoke(scenario, "audit", "deadlines", *AT, "--csv").stdout.splitlines()
    assert (
        csv[0] == "status,due,kind,case,partner,platform,detail,events,checkpoint,judged_at"
    )
    assert csv[7] == (
        "due,2026-11-20T00:00:00Z,review-period-ends,BE-D-F35,BEL,f-35a,"
        '"formal review of 26-61 (15 days, NATO+)",[914],917,2026-11-13T00:00:00Z'
    )


def test_deadlines_judged_in_the_past_see_only_that_past(scenario):
    result = invoke(scenario, "audit", "deadlines", "--as-of", "2019-03-01")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.splitlines()[0] == (
        "0 overdue, 2 due later; judged at 2019-03-01T00:00:00Z, log position 137."
    )


def test_retro_lists_the_past_rewritten_after_a_checkpoint(scenario):
    result = invoke(scenario, "audit", "retro", "--recorded-from", "915")
    assert result.exit_code == 0, result.stderr
    assert (
        result.stdout
        == """\
2 event(s) recorded after log position 915 (taken 2026-11-07T14:01:45.160896Z) took effect before it; checkpoint 917.
event                        stream       effective   recorded    actor        queue positions changed then
---------------------------  -----------  ----------  ----------  -----------  ------------------------------------------------------------------------------
#916 StrategicValueAssessed  partner:DNK  2026-09-01  2026-11-10  usd-as.dsca  f-35a FI-D-F35 5→4; f-35a RO-D-F35 6→5; f-35a GR-D-F35 7→6; f-35a DA-D-F35 4→7
#917 StrategicValueAssessed  partner:DNK  2026-10-15  2026-11-10  usd-as.dsca  none
"""  # noqa: E501 (the terminal table as printed)
    )
    found = json.loads(
        invoke(scenario, "audit", "retro", "--recorded-from", "915", "--json").stdout
    )
    assert {k: found[0][k] for k in ("position", "events", "earlier_checkpoint")} == {
        "position": 916,
        "events": [916],
        "earlier_checkpoint": 915,
    }
    assert found[0]["queue_changes"][-1] == {
        "platform": "f-35a",
        "case": "DA-D-F35",
        "before": 4,
        "after": 7,
    }
    assert found[0]["checkpoint"] == 917


def test_retro_between_checkpoints_without_backdating_finds_nothing(scenario):
    result = invoke(
        scenario, "audit", "retro", "--recorded-from", "911", "--recorded-to", "913"
    )
    assert result.stdout == (
        "No event recorded after log position 911 up to log position 913 took effect "
        "before it.\n"
    )


def test_retro_takes_a_checkpoint_file(scenario, tmp_path):
    note = tmp_path / "checkpoint"
    signed = invoke(scenario, "audit", "checkpoint")
    assert signed.exit_code == 0, signed.stderr
    note.write_text(signed.stdout)
    result = invoke(scenario, "audit", "retro", "--recorded-from", str(note))
    assert result.stdout == (
        "No event recorded after log position 917 up to the end of the log took effect "
        "before it.\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--recorded-from", "918"),
            "the log ends at position 917; --recorded-from 918 is beyond it",
        ),
        (
            ("--recorded-from", "900", "--recorded-to", "800"),
            "--recorded-to (position 800) is before --recorded-from (position 900)",
        ),
    ],
)
def test_retro_refuses_bad_checkpoints_in_one_line(scenario, args, message):
    result = invoke(scenario, "audit", "retro", *args)
    assert (result.exit_code, result.stdout, result.stderr) == (
        1,
        "",
        f"Error: {message}\n",
    )


def test_bypasses_by_code_actor_and_office(scenario):
    result = invoke(scenario, "audit", "bypasses", *AT)
    assert result.exit_code == 0, result.stderr
    assert (
        result.stdout
        == """\
19 skip(s) of a queue: 17 with a bypass reason, 2 without (flagged); "other" in 2 of 17 (11.8%); judged at 2026-11-13T00:00:00Z, log position 917.
code               actor     office  skips  events
-----------------  --------  ------  -----  ------------------------
partner-not-ready  dsca.cwd  dsca        2  #244 #437
partner-not-ready  usasac    usasac      2  #587 #702
funding            usasac    usasac      1  #736
export-licence     usasac    usasac      2  #814 #901
production-lot     afsac     afsac       3  #734 #871 #890
production-lot     usasac    usasac      5  #554 #580 #600 #689 #728
other              afsac     afsac       2  #889 #909
uncoded            afsac     afsac       1  #904
uncoded            dsca.cwd  dsca        1  #908
"""  # noqa: E501 (the terminal table as printed)
    )
    csv = invoke(scenario, "audit", "bypasses", *AT, "--csv").stdout.splitlines()
    assert csv[0] == "code,actor,office,skips,events,checkpoint,judged_at"
    assert csv[-1] == "uncoded,dsca.cwd,dsca,1,[908],917,2026-11-13T00:00:00Z"


def test_the_uncoded_skips_are_oversight_flags(scenario):
    result = invoke(scenario, "audit", "flags", *AT, "--json")
    found = [f for f in json.loads(result.stdout) if f["kind"] == "out-of-sequence"]
    assert [(f["event_position"], f["detail"]) for f in found] == [
        (
            904,
            "delivery to position 5 of the f-35a queue while 4 case(s) ahead still wait "
            "(GY-D-F35, PL-D-F35, SR-D-F35 and 1 more), with no bypass_reason",
        ),
        (
            908,
            "offer to position 4 of the f-35a queue while 1 case(s) ahead still wait "
            "(SR-D-F35), with no bypass_reason",
        ),
    ]


def test_reconcile_with_the_public_notifications(scenario):
    result = invoke(scenario, "audit", "reconcile", str(NOTIFICATIONS), *AT, "--json")
    assert result.exit_code == 0, result.stderr
    found = json.loads(result.stdout)
    kinds = [f["kind"] for f in found]
    assert kinds.count("recorded-not-published") == 23
    assert [f for f in found if f["kind"] != "recorded-not-published"] == [
        {
            "kind": "published-not-recorded",
            "partner": "NOR",
            "cases": [],
            "line": 8,
            "detail": "2022-07-15 Norway: AMRAAM and related equipment (approximate value) "
            "($950,000,000)",
            "events": [],
            "checkpoint": 917,
            "judged_at": "2026-11-13T00:00:00Z",
        },
        {
            "kind": "differs",
            "partner": "PHL",
            "cases": ["RP-D-F16"],
            "line": 23,
            "detail": "25-23: date 2025-04-02, published 2025-04-01",
            "events": [605],
            "checkpoint": 917,
            "judged_at": "2026-11-13T00:00:00Z",
        },
        {
            "kind": "threshold-splitting",
            "partner": "KWT",
            "cases": ["KU-B-JV1", "KU-B-JV2"],
            "line": None,
            "detail": "2 javelin cases filed within 365 days, each below the major defense "
            "equipment threshold of $14,000,000, together $18,000,000",
            "events": [912, 915],
            "checkpoint": 917,
            "judged_at": "2026-11-13T00:00:00Z",
        },
    ]
    table = invoke(scenario, "audit", "reconcile", str(NOTIFICATIONS), *AT).stdout
    assert table.splitlines()[0] == (
        "20 published notification(s) match the ledger; 26 finding(s); judged at "
        "2026-11-13T00:00:00Z, log position 917."
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("date,purchaser\n", "has no column transmittal, description, estimated_value_usd"),
        (
            "transmittal,date,purchaser,description,estimated_value_usd\n,2024-13-01,Poland,x,1\n",
            "line 2: date '2024-13-01' is not YYYY-MM-DD",
        ),
        (
            "transmittal,date,purchaser,description,estimated_value_usd\n,2024-01-01,Poland,x,1.5B\n",
            "line 2: estimated_value_usd '1.5B' is not a whole number of dollars",
        ),
    ],
)
def test_reconcile_refuses_a_bad_file_in_one_line(scenario, tmp_path, content, message):
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    result = invoke(scenario, "audit", "reconcile", str(bad))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert message in result.stderr


def test_export_register_unroca_by_year_category_and_importer(scenario):
    result = invoke(
        scenario, "audit", "export-register", "--format", "unroca", *AT, "--csv"
    )
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "year,category,final_importer,number_of_items,state_of_origin,description,"
        "events,checkpoint,judged_at",
        "2018,VII missiles and missile launchers,Ukraine,210,United States,Javelin,[124],"
        "917,2026-11-13T00:00:00Z",
        "2019,VII missiles and missile launchers,United Arab Emirates,300,United States,"
        "Javelin,[178],917,2026-11-13T00:00:00Z",
    ]
    assert len(lines) == 39
    table = invoke(scenario, "audit", "export-register", "--format", "unroca", *AT)
    assert table.stdout.splitlines()[0] == (
        "38 row(s) of the unroca register; judged at 2026-11-13T00:00:00Z, "
        "log position 917."
    )


def test_export_register_sipri_orders(scenario):
    result = invoke(
        scenario, "audit", "export-register", "--format", "sipri", *AT, "--json"
    )
    found = {r["case"]: r for r in json.loads(result.stdout)}
    assert len(found) == 46
    assert found["TW-D-F16"] == {
        "recipient": "Taiwan (TECRO)",
        "supplier": "United States",
        "designation": "F-16 Block 70/72",
        "description": "Aircraft",
        "number_ordered": 66,
        "year_of_order": 2020,
        "number_delivered": 10,
        "years_of_delivery": "2025; 2026",
        "status": "delivery in progress",
        "case": "TW-D-F16",
        "events": [210, 751, 889, 909],
        "checkpoint": 917,
        "judged_at": "2026-11-13T00:00:00Z",
    }


def test_export_register_needs_a_format(scenario):
    result = invoke(scenario, "audit", "export-register")
    assert result.exit_code == 2
    assert "Missing option '--format'" in result.stderr


def test_a_replica_from_an_export_gives_the_same_answers(scenario, tmp_path):
    export, replica = tmp_path / "export", tmp_path / "replica"
    assert invoke(scenario, "audit", "export", str(export)).exit_code == 0
    built = CliRunner().invoke(
        cli, ["audit", "verify-export", str(export), "--into", str(replica)]
    )
    assert built.exit_code == 0, built.stderr
    for args in OUTPUTS:
        here, there = invoke(scenario, *args), invoke(replica, *args)
        assert here.exit_code == 0, here.stderr
        assert (there.stdout, there.stderr) == (here.stdout, here.stderr)


EEUM_FLAG = {
    "eeum-no-initial-inventory": "eeum-initial-inventory",
    "eeum-no-annual-inventory": "eeum-annual-inventory",
}


@pytest.mark.parametrize(
    "at", ["2021-09-01", "2022-06-07", "2023-09-14", "2024-06-15", "2026-11-13"]
)
def test_overdue_eeum_deadlines_are_the_eeum_flags(scenario, at):
    """One EEUM rule (oversight.eeum_clocks): what `audit deadlines` lists overdue is what
    `audit flags` flags, case by case and kind by kind, at each time."""
    deadlines = invoke(scenario, "audit", "deadlines", "--as-of", at, "--json")
    flags = invoke(scenario, "audit", "flags", "--as-of", at, "--json")
    assert deadlines.exit_code == 0 and flags.exit_code == 0, deadlines.stderr
    overdue = sorted(
        (d["case"], d["kind"])
        for d in json.loads(deadlines.stdout)
        if d["status"] == "overdue" and d["kind"].startswith("eeum-")
    )
    flagged = sorted(
        (f["case"], EEUM_FLAG[f["kind"]])
        for f in json.loads(flags.stdout)
        if f["kind"] in EEUM_FLAG
    )
    assert overdue == flagged
    if at == "2026-11-13":
        assert overdue == [
            ("UP-B-JAV", "eeum-annual-inventory"),
            ("UP-B-JAX", "eeum-annual-inventory"),
            ("UP-B-JAX", "eeum-initial-inventory"),
        ]
