"""The what-if page (``/-/whatif``, ``/-/whatif.json``) with Datasette's in-process client
on the demo ledger: its numbers are ``arms-ledger whatif --json``'s and ``arms-ledger
stability --json``'s for the same proposal and cut, a bad proposal is a 400 with the
command's one line, and nothing is written."""

from __future__ import annotations

import hashlib
import json
import re
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from arms_ledger.cli.main import cli
from arms_ledger.ledger.app.directory import open_ledger
from arms_ledger.ledger.domain import events as ev
from arms_ledger.projections import engine
from arms_ledger.projections.web import charts
from click.testing import CliRunner
from markupsafe import escape

from tests.web.conftest import BEFORE_THE_ORDER, client, replay_into, served

ECONOMIC_HALF = {"investment": "0.25", "strategic": "0.25", "economic": "0.5"}
# (page parameters, the same proposal as whatif's options)
PROPOSALS = [
    (
        {"platform": "f-35a", "mode": "scored"} | ECONOMIC_HALF,
        ["--mode", "scored", "--weights", "0.25,0.25,0.5"],
    ),
    (
        {"platform": "m1a2-sepv3", "mode": "scored", "investment": "0.2"}
        | {"strategic": "0.5", "economic": "0.3", "tier1": "0.5", "tier2": "0.3"},
        ["--weights", "0.2,0.5,0.3", "--tier1", "0.5", "--tier2", "0.3"],
    ),
    (
        # Blank fields are the policy in force's, as options not given are.
        {"platform": "pac-3-mse", "mode": "fcfs", "investment": "", "pct_gdp": "3"},
        ["--mode", "fcfs", "--pct-gdp", "3"],
    ),
    (
        {"platform": "ah-64e", "economic_usd": "1000000000"},
        ["--economic-usd", "1000000000"],
    ),
]
IDS = ["economic-half", "strategic-and-tiers", "fcfs", "economic-target"]


def cli_json(ledger: Path, *args: str) -> dict[str, Any]:
    result = CliRunner().invoke(cli, ["--ledger", str(ledger), *args, "--json"])
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def cli_error(ledger: Path, *args: str) -> str:
    """The command's one-line refusal, without its ``Error: ``."""
    result = CliRunner().invoke(cli, ["--ledger", str(ledger), *args])
    assert (result.exit_code, result.stdout) == (1, ""), result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    return result.stderr.removeprefix("Error: ").rstrip("\n")


def stability_part(answer: dict[str, Any]) -> dict[str, Any]:
    """What ``stability --json`` says of the queue itself (not the log, the cut)."""
    return {k: v for k, v in answer.items() if k not in ("log", "cut")}


class Tables(HTMLParser):
    """Each table's rows of cell texts, by the table's classes."""

    def __init__(self, html: str):
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._table: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            name = dict(attrs).get("class") or ""
            self._table = self.tables.setdefault(name.split()[-1], [])
        elif tag == "tr" and self._table is not None:
            self._table.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._table is not None:
            self._table[-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def text(value: Any) -> str:
    return "" if value is None else str(value)


def body(rows: list[dict[str, Any]], columns: list[str]) -> list[list[str]]:
    return [columns] + [[text(r[c]) for c in columns] for r in rows]


def page_url(params: dict[str, str], json_: bool = False) -> str:
    return "/-/whatif" + (".json" if json_ else "") + "?" + urlencode(params)


# --- the page's numbers are the commands' -------------------------------------------------


@pytest.mark.parametrize("params, options", PROPOSALS, ids=IDS)
def test_the_page_answers_what_whatif_and_stability_answer(
    live_with_log, demo_ledger, params, options
):
    answer = live_with_log.json(page_url(params, json_=True))
    whatif = cli_json(demo_ledger, "whatif", *options)
    assert {k: answer[k] for k in whatif} == whatif
    assert answer["cases"]  # every queue, as the command without --platform
    stability = cli_json(demo_ledger, "stability", params["platform"], *options)
    assert answer["stability"] == stability_part(stability)
    assert (answer["log"], answer["cut"]) == (stability["log"], stability["cut"])
    assert (answer["platform"], answer["position"]) == (params["platform"], 917)


@pytest.mark.parametrize("params, options", PROPOSALS, ids=IDS)
def test_the_html_shows_the_answers_numbers(live_with_log, params, options):
    answer = live_with_log.json(page_url(params, json_=True))
    page = live_with_log.get(page_url(params))
    assert page.status_code == 200
    tables = Tables(page.text).tables
    mine = [r for r in answer["cases"] if r["platform"] == params["platform"]]
    columns = [
        "position_before",
        "position_after",
        "moved",
        "case",
        "partner",
        "tier_before",
        "tier_after",
        "score_before",
        "score_after",
        "est_completion_before",
        "est_completion_after",
    ]
    assert tables["whatif-cases"] == body(mine, columns)
    partners = ["partner", "cases", "moved_up", "moved_down", "net_moved"]
    assert tables["whatif-partners"] == body(answer["partners"], partners)
    places = ["position", "case", "margin", "resolution", "flips_with", "flip_weights"]
    assert tables["whatif-places"] == body(answer["stability"]["places"], places)
    assert len(answer["stability"]["places"]) == 3
    pairs = [
        "position",
        "ahead",
        "behind",
        "decided_by",
        "margin",
        "resolution",
        "flip_weights",
        "region",
    ]
    assert tables["whatif-pairs"] == body(answer["stability"]["pairs"][:3], pairs)
    log = answer["log"]
    assert (
        f"{log['origin']}, 917 events, root {log['root']};\nthe live state, up to log "
        "position 917." in page.text
    )
    assert f"Proposal sha256 <code>{answer['proposal']['sha256']}</code>" in page.text


def test_the_economic_half_proposal_on_the_f35a_queue(live_with_log):
    """The worked example of docs/whatif.md, on the page: Finland up, Denmark down."""
    params = {"platform": "f-35a", "mode": "scored"} | ECONOMIC_HALF
    page = live_with_log.get(page_url(params)).text
    tables = Tables(page).tables
    assert tables["whatif-cases"][4:6] == [
        ["5", "4", "1", "FI-D-F35", "FIN", "2", "3", "0.472", "0.345", "8.6", "7.8"],
        ["4", "5", "-1", "DA-D-F35", "DNK", "2", "3", "0.474", "0.34", "5.5", "8.6"],
    ]
    assert tables["whatif-movers"] == [
        ["partner", "cases", "moved_up", "moved_down", "net_moved"],
        ["DNK", "1", "0", "1", "-1"],
        ["FIN", "1", "1", "0", "1"],
        ["ROU", "4", "1", "0", "1"],
        ["TWN", "3", "0", "1", "-1"],
    ]
    assert "Queues the proposal reorders:" in page
    assert re.search(r">f-35a</a> \(2 cases move\),\s*<a [^>]*>m1a2-sepv3</a>", page)
    assert "62f65c4201dfee1809df505bfd9d3c74ffe6a75fdb73f3dcf142a443fe8b2d47" in page
    title = (
        ">F-35A Lightning II (f-35a): the queue under america-first-2026 and under the "
        "proposal</text>"
    )
    assert title in page
    # On the left as it was; on the right with its move, in words and a sign.
    assert page.count(">FI-D-F35 (FIN)</text>") == 1
    assert page.count(">FI-D-F35 (FIN) \u25b2 up 1</text>") == 1
    assert (
        "arms-ledger whatif --mode scored --investment 0.25 --strategic 0.25 "
        "--economic 0.5 --json" in page
    )


def test_without_a_proposal_the_stability_is_under_the_policy_in_force(
    live_with_log, demo_ledger
):
    answer = live_with_log.json("/-/whatif.json?platform=f-35a")
    assert (answer["proposal"], answer["cases"], answer["partners"]) == (None, None, None)
    stability = cli_json(demo_ledger, "stability", "f-35a")
    assert answer["stability"] == stability_part(stability)
    assert answer["stability"]["policy"] == "america-first-2026"
    page = live_with_log.get("/-/whatif?platform=f-35a").text
    assert "Stability of the first 3 places</h2>" in page
    assert "Under the policy in force, america-first-2026\n(scored mode;" in page
    # The form starts from the policy in force.
    for name, value in (("investment", "0.4"), ("strategic", "0.3"), ("economic", "0.3")):
        assert f'name="{name}" min="0" max="1" step="any" value="{value}"' in page
    assert '<option value="scored" selected>' in page
    assert "whatif-cases" not in Tables(page).tables


def test_the_page_opens_on_the_longest_queue(live_with_log):
    page = live_with_log.get("/-/whatif")
    assert page.status_code == 200
    assert '<option value="f-35a" selected>f-35a: F-35A Lightning II (10 queued)' in (
        page.text
    )
    assert live_with_log.json("/-/whatif.json")["platform"] == "f-35a"


def test_a_replay_compares_as_of_its_cut(replay_with_log, demo_ledger):
    params = {"platform": "m1a2-sepv3", "mode": "scored"} | ECONOMIC_HALF
    answer = replay_with_log.json(page_url(params, json_=True))
    options = ["--weights", "0.25,0.25,0.5", "--as-of", BEFORE_THE_ORDER]
    whatif = cli_json(demo_ledger, "whatif", *options)
    assert {k: answer[k] for k in whatif} == whatif
    assert answer["cut"] == "as of 2026-02-05T00:00:00Z"
    assert answer["proposal"]["events"][0]["effective_at"] == "2026-02-05T00:00:00Z"
    assert answer["proposal"]["in_force_before"] == "fcfs-legacy"
    stability = cli_json(demo_ledger, "stability", "m1a2-sepv3", *options)
    assert answer["stability"] == stability_part(stability)
    page = replay_with_log.get(page_url(params)).text
    assert "A replay as of 2026-02-05T00:00:00Z (events effective at or before" in page
    assert "a replay as of 2026-02-05T00:00:00Z, up to log position" in page
    assert "--as-of 2026-02-05T00:00:00Z --json" in page


def test_the_comparison_is_pinned_where_the_read_models_are(ledger_copy, tmp_path):
    """A live server whose read models have not caught up yet compares the events they
    show (the banner's), not the log's newer ones."""
    ledger = open_ledger(ledger_copy)
    try:
        expedite = ev.decoder.decode(
            json.dumps(
                {
                    "type": "CaseReprioritized",
                    "case": "KU-B-AHE",
                    "priority_class": "expedited",
                    "authority": "USW(A&S)",
                    "actor": "usw-as",
                    "rationale": "a test",
                }
            )
        )
        ledger.append([expedite])  # the log only: the read models stay at 917
    finally:
        ledger.close()
    params = {"platform": "ah-64e"} | ECONOMIC_HALF
    read_models = ledger_copy / engine.PROJECTIONS_DB
    with served(ledger_copy, read_models, "Live read models", engine.Cut()) as c:
        answer = c.json(page_url(params, json_=True))
    pinned = cli_json(
        ledger_copy, "whatif", "--weights", "0.25,0.25,0.5", "--at-position", "917"
    )
    assert answer["position"] == 917
    assert (answer["cases"], answer["partners"]) == (pinned["cases"], pinned["partners"])
    first = next(r for r in answer["cases"] if r["position_after"] == 1)
    assert (first["platform"], first["case"]) == ("ah-64e", "PL-B-AHA")
    head = cli_json(ledger_copy, "whatif", "--weights", "0.25,0.25,0.5")
    assert head["cases"] != pinned["cases"]  # the expedite moved KU-B-AHE first


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "params, options",
    [
        (
            {"platform": "f-35a", "investment": "0.5", "strategic": "0.3"},
            ["whatif", "--investment", "0.5", "--strategic", "0.3"],
        ),
        (
            {"platform": "f-35a", "investment": "-0.2", "strategic": "0.6"}
            | {"economic": "0.6"},
            ["whatif", "--weights", "-0.2,0.6,0.6"],
        ),
        (
            {"platform": "f-35a", "tier1": "0.3", "tier2": "0.6"},
            ["whatif", "--tier1", "0.3", "--tier2", "0.6"],
        ),
        ({"platform": "f-35a", "pct_gdp": "0"}, ["whatif", "--pct-gdp", "0"]),
        ({"platform": "no-such-platform"}, ["whatif", "--platform", "no-such-platform"]),
        (
            {"platform": "f-35a", "economic": "0.4"},
            ["stability", "f-35a", "--economic", "0.4"],
        ),
    ],
    ids=["weights-sum", "negative-weight", "tiers", "target", "platform", "stability"],
)
def test_a_bad_proposal_is_a_400_with_the_commands_line(
    live_with_log, demo_ledger, params, options
):
    message = cli_error(demo_ledger, *options)
    answer = live_with_log.get(page_url(params, json_=True))
    assert answer.status_code == 400
    assert answer.json() == {"ok": False, "error": message, "status": 400}
    page = live_with_log.get(page_url(params))
    assert page.status_code == 400
    found = re.findall(r'<p class="message-error whatif-error">(.*?)</p>', page.text)
    assert found == [str(escape(message))]
    assert "Traceback" not in page.text
    assert Tables(page.text).tables == {}


@pytest.mark.parametrize(
    "params, message",
    [
        ({"investment": "a lot"}, "investment: 'a lot' is not a number"),
        ({"economic_usd": "5e9"}, "economic_usd: '5e9' is not a whole number"),
        (
            {"mode": "random"},
            "the options: not a priority policy: Invalid enum value 'random' - at `$.mode`",
        ),
    ],
    ids=["weight", "target", "mode"],
)
def test_what_is_not_a_number_is_a_400_in_one_line(live_with_log, params, message):
    answer = live_with_log.get(page_url({"platform": "f-35a"} | params, json_=True))
    assert (answer.status_code, answer.json()["error"]) == (400, message)
    page = live_with_log.get(page_url({"platform": "f-35a"} | params))
    assert page.status_code == 400
    assert re.findall(r'<p class="message-error whatif-error">(.*?)</p>', page.text) == [
        str(escape(message))
    ]
    name, value = next(iter(params.items()))
    if name != "mode":  # what was typed stays in the form, to be corrected
        assert re.search(rf'name="{name}"[^>]* value="{value}"', page.text)


def test_markup_in_a_parameter_is_text(live_with_log):
    page = live_with_log.get(page_url({"platform": "<script>alert(1)</script>"}))
    assert page.status_code == 400
    assert "<script>alert(1)" not in page.text
    assert "no platform &#39;&lt;script&gt;alert(1)&lt;/script&gt;&#39; in the ledger" in (
        page.text
    )


# --- read-only ----------------------------------------------------------------------------


def snapshot(ledger: Path) -> dict[str, str]:
    return {
        str(p.relative_to(ledger)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(ledger.rglob("*"))
        if p.is_file()
    }


def head(ledger: Path) -> int:
    app = open_ledger(ledger, write=False)
    try:
        return app.reader.head()
    finally:
        app.close()


def test_nothing_is_written(ledger_copy, tmp_path, monkeypatch):
    """The log, the read models and every file of the ledger's directory are unchanged
    byte for byte by what-ifs, and their replays are removed."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    read_models = ledger_copy / engine.PROJECTIONS_DB
    with served(ledger_copy, read_models, "Live read models", engine.Cut()) as c:
        # Serving live read models read-only opens them (SQLite may add its -wal and
        # -shm files, as for any page): what the what-if does is measured from here.
        assert c.get("/").status_code == 200
        before = (head(ledger_copy), snapshot(ledger_copy))
        for params, _ in PROPOSALS:
            assert c.get(page_url(params)).status_code == 200
            assert c.get(page_url(params, json_=True)).status_code == 200
        assert c.get(page_url({"investment": "0.9"})).status_code == 400
        assert c.get("/-/whatif").status_code == 200
        assert (head(ledger_copy), snapshot(ledger_copy)) == before
    assert list(scratch.iterdir()) == []  # each comparison's replay is removed


def test_a_read_only_replica_serves_the_page(demo_ledger, tmp_path):
    """An overseer's replica (verify-export --into), served as ``serve`` serves read
    models it may not write (immutable): the page works, writes nothing, and says what
    the ledger it was exported from says."""
    export, replica = tmp_path / "export", tmp_path / "replica"
    run = CliRunner().invoke
    assert (
        run(cli, ["--ledger", str(demo_ledger), "audit", "export", str(export)]).exit_code
        == 0
    )
    key = (demo_ledger / "verifier.key").read_text().strip()
    made = run(
        cli, ["audit", "verify-export", str(export), "--key", key, "--into", str(replica)]
    )
    assert made.exit_code == 0, made.stderr
    assert run(cli, ["--ledger", str(replica), "rebuild"]).exit_code == 0
    before = snapshot(replica)
    params = {"platform": "f-35a"} | ECONOMIC_HALF
    read_models = replica / engine.PROJECTIONS_DB
    with served(
        replica, read_models, "Live read models (read-only)", engine.Cut(), immutable=True
    ) as c:
        answer = c.json(page_url(params, json_=True))
    assert snapshot(replica) == before
    whatif = cli_json(demo_ledger, "whatif", "--weights", "0.25,0.25,0.5")
    assert {k: answer[k] for k in whatif} == whatif


# --- where the page is, and is not --------------------------------------------------------


def test_the_page_is_linked_from_the_menu_and_the_home_page(live_with_log, live):
    home = live_with_log.get("/").text
    assert '<a href="/-/whatif">What if a priority policy were adopted?</a>' in home
    assert '<li><a href="/-/whatif">What if</a></li>' in home
    # Without the log (read models alone), no page and no links to it.
    bare = live.get("/").text
    assert "/-/whatif" not in bare
    missing = live.get("/-/whatif")
    assert missing.status_code == 404
    assert "The what-if page needs the log, not only its read models" in missing.text


@pytest.mark.usefixtures("store")
def test_an_empty_ledger_has_nothing_to_compare(tmp_path):
    path = tmp_path / "ledger"
    assert CliRunner().invoke(cli, ["--ledger", str(path), "init"]).exit_code == 0
    assert CliRunner().invoke(cli, ["--ledger", str(path), "rebuild"]).exit_code == 0
    with served(path, path / engine.PROJECTIONS_DB, "Live read models", engine.Cut()) as c:
        page = c.get("/-/whatif")
        assert page.status_code == 200
        assert "No platform has a queue (at this time): nothing to compare." in page.text
        assert c.json("/-/whatif.json")["platform"] is None


def test_the_chart_is_the_queue_charts_style(live_with_log):
    """The what-if chart is the queue chart (``charts.slope_chart``): the same marks,
    encodings and sizes; only the title and the two columns' names differ."""
    rows = [
        {"case": "A", "partner": "AAA", "before": 1, "after": 2, "move": "down 1"},
        {"case": "B", "partner": "BBB", "before": 2, "after": 1, "move": "up 1"},
    ]
    policy = {
        "policy": "p",
        "position": 1,
        "effective_at": "2026-01-01T00:00:00Z",
        "legal_basis": None,
        "mode": "scored",
    }
    proposal = {
        "mode": "scored",
        "weights": {"investment": 0.25, "strategic": 0.25, "economic": 0.5},
        "effective_at": "2026-01-01T00:00:00Z",
        "sha256": "0" * 64,
    }
    queue = charts.queue_chart(rows, "x", "X", policy).to_dict()
    whatif = charts.whatif_chart(rows, "x", "X", "p", proposal).to_dict()
    assert queue["title"]["text"] != whatif["title"]["text"]
    heads = len(queue["layer"]) - 1  # the last layer: the two columns' heads
    assert [spec["layer"][heads]["data"]["values"][0]["t"] for spec in (queue, whatif)] == [
        "just before",
        "in force",
    ]
    for spec in (queue, whatif):
        del spec["title"], spec["layer"][heads]["data"]
        spec.pop("datasets", None)
    assert queue == whatif


def test_a_replay_served_as_read_models_alone_has_no_page(demo_ledger, tmp_path):
    path = replay_into(demo_ledger, tmp_path / "r", engine.Cut(at_position=500))
    with client(path, "A replay at log position 500", immutable=True) as c:
        assert c.get("/-/whatif.json").status_code == 404


def test_the_form_as_it_opens_is_the_policy_in_force(live_with_log):
    """Submitted unchanged, the form proposes the policy in force again: nothing moves,
    no score changes (and every number it shows can be read back)."""
    page = live_with_log.get("/-/whatif?platform=f-35a").text
    fields = dict(
        re.findall(r'<input type="number" [^>]*name="(\w+)"[^>]* value="([^"]*)"', page)
    )
    assert fields == {
        "investment": "0.4",
        "strategic": "0.3",
        "economic": "0.3",
        "pct_gdp": "5",
        "economic_usd": "5000000000",
        "tier1": "0.7",
        "tier2": "0.45",
    }
    answer = live_with_log.json(
        page_url({"platform": "f-35a", "mode": "scored"} | fields, json_=True)
    )
    assert answer["cases"]
    assert all(r["moved"] == 0 for r in answer["cases"])
    assert all(r["score_before"] == r["score_after"] for r in answer["cases"])
