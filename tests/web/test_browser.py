"""End to end, in a real headless browser: Debian's Chromium driven by Playwright against
``arms-ledger serve`` on the demo ledger. What a person would see is asserted, and each
page is saved as a screenshot in tests/artifacts/ (at 1280 and at 390 pixels wide for
the pages shown in docs/web.md; with ARMS_LEDGER_DOCS_SCREENSHOTS=1 they are also
written to docs/screenshots/).

Every page of the web view passes an accessibility audit: axe-core, from the npm
registry (installed once, pinned, into .cache/axe by ``npm install``), injected into
each page; no violation of impact serious or critical is allowed. Skipped when npm is
absent, unless ARMS_LEDGER_REQUIRE_AXE is set (.ci/run sets it): then it fails.

Skipped when /usr/bin/chromium is absent (``apt-get install -y chromium``; .ci/run
installs it). Playwright's own browser download is never used.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import pytest
from arms_ledger.projections.web import charts, monitors

from tests.web.conftest import BEFORE_THE_ORDER, ROOT, serving

CHROMIUM = Path("/usr/bin/chromium")
AXE_VERSION = "4.14.1"
AXE_CACHE = ROOT / ".cache" / "axe"
DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
# The widths of the screenshots: a laptop, and a phone.
WIDTHS = (1280, 390)
WEIGHTS = ("investment", "strategic", "economic")
# Headless as root, with no network and nothing phoning home.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.slow,
    # On the SQLite demo ledger only: the browser sees the read models (projections.db,
    # SQLite whatever the event store); serving a PostgreSQL ledger live is covered by
    # test_serve.py, and a second browser run would double the slowest tests.
    pytest.mark.parametrize("demo_ledger", ["sqlite"], indirect=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium "
        "(apt-get install -y chromium; .ci/run installs it)",
    ),
]


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def axe() -> str:
    """axe-core's script, installed from the npm registry when it is not yet there."""
    script = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
    package = script.parent / "package.json"
    if not script.exists() or json.loads(package.read_text())["version"] != AXE_VERSION:
        npm = shutil.which("npm")
        if npm is None:
            _cannot_audit(
                "npm is not installed: the accessibility audit needs axe-core from the "
                "npm registry (apt-get install -y npm)"
            )
        done = subprocess.run(
            [
                *(npm, "install", "--no-save", "--no-audit", "--no-fund"),
                *("--prefix", str(AXE_CACHE), f"axe-core@{AXE_VERSION}"),
            ],
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            _cannot_audit(
                f"npm install axe-core@{AXE_VERSION} failed: {done.stderr.strip()[-400:]}"
            )
    return script.read_text()


def _cannot_audit(reason: str) -> NoReturn:
    if os.environ.get("ARMS_LEDGER_REQUIRE_AXE"):
        pytest.fail(f"ARMS_LEDGER_REQUIRE_AXE is set but {reason}")
    pytest.skip(reason)


def screenshots(page, name: str, artifacts: Path, full_page: bool = True) -> None:
    """The page at each of WIDTHS, in tests/artifacts/ (and in docs/screenshots/ when
    ARMS_LEDGER_DOCS_SCREENSHOTS is set)."""
    size = page.viewport_size
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        shot = artifacts / f"{name}-{width}.png"
        page.screenshot(path=shot, full_page=full_page)
        if os.environ.get("ARMS_LEDGER_DOCS_SCREENSHOTS"):
            DOCS_SCREENSHOTS.mkdir(exist_ok=True)
            shutil.copy(shot, DOCS_SCREENSHOTS / shot.name)
    page.set_viewport_size(size)


@pytest.fixture
def page(browser, server):
    context = browser.new_context(
        base_url=server.url, viewport={"width": 1280, "height": 900}
    )
    opened = context.new_page()
    yield opened
    context.close()


def test_the_home_page(page, artifacts):
    from playwright.sync_api import expect

    page.goto("/")
    expect(page).to_have_title("arms-ledger: projections")
    expect(page.locator("h1")).to_have_text("arms-ledger")
    expect(page.locator(".arms-ledger-state")).to_have_text(
        "Live read models, up to log position 917, recorded 2026-11-10; every appending "
        "command updates them (reload to see)."
    )
    expect(page.locator("ul.arms-ledger-charts a")).to_have_text(
        [
            "Backlog over time",
            "A queue before and after a policy",
            "Partners' score components",
        ]
    )
    expect(page.locator("ul.arms-ledger-queries a")).to_have_count(8)
    screenshots(page, "home", artifacts)
    page.get_by_role("link", name="Queue of a platform").click()
    expect(page.locator("h1")).to_have_text("Queue of a platform")
    expect(page.locator("table.rows-and-columns tbody tr")).to_have_count(10)


def test_a_table_with_its_descriptions_sorted_and_faceted(page, artifacts):
    from playwright.sync_api import expect

    page.goto("/projections/partners")
    expect(page.locator("h1")).to_have_text("partners")
    expect(page.locator(".metadata-description")).to_have_text(
        "Partners with the facts in force, the three score components, score and tier "
        "under the priority policy in force."
    )
    descriptions = page.locator("dl.column-descriptions")
    expect(descriptions.locator("dt").first).to_have_text("partner")
    expect(descriptions.locator("dd").first).to_have_text(
        "ISO 3166-1 alpha-3 or organization code"
    )
    expect(descriptions.locator("dt")).to_have_count(30)
    expect(page.locator("h3").first).to_contain_text("48 rows sorted by score descending")
    first = page.locator("table.rows-and-columns tbody tr").first
    expect(first.locator("td.col-partner")).to_have_text("POL")
    expect(first.locator("td.col-score")).to_have_text("0.746")
    page.screenshot(path=artifacts / "table-partners.png")
    # A facet narrows the table: the one tier 1 partner.
    page.locator(".facet-info[data-column=tier] a", has_text="1").first.click()
    expect(page.locator("h3").first).to_contain_text("1 row where tier = 1")
    expect(page.locator("table.rows-and-columns tbody tr")).to_have_count(1)


def test_a_canned_query_with_a_parameter(page, artifacts):
    from playwright.sync_api import expect

    page.goto("/projections/platform_queue")
    field = page.locator("input[name=platform]")
    expect(field).to_have_attribute("list", "arms-ledger-platform")
    expect(page.locator("#arms-ledger-platform option[value='f-35a']")).to_have_count(1)
    field.fill("f-35a")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url("/projections/platform_queue?platform=f-35a")
    # Its title in plain words, the rows counted, the SQL one click away.
    expect(page.locator("h1")).to_have_text("Queue of a platform")
    expect(page.locator("h2.arms-ledger-rows")).to_have_text("10 rows")
    expect(page.locator("body")).not_to_contain_text("Custom SQL")
    expect(page.locator("#sql-query")).not_to_be_visible()
    rows = page.locator("table.rows-and-columns tbody tr")
    expect(rows).to_have_count(10)
    expect(rows.first.locator("td.col-case")).to_have_text("GY-D-F35")
    expect(rows.first.locator("td.col-priority_class")).to_have_text("expedited")
    expect(rows.nth(1).locator("td.col-case")).to_have_text("PL-D-F35")
    expect(rows.last.locator("td.col-case")).to_have_text("SZ-D-F35")
    expect(rows.last.locator("td.col-priority_class")).to_have_text("deferred")
    expect(rows.first.locator("td.col-override")).to_have_text("no")
    screenshots(page, "platform-queue", artifacts, full_page=False)
    page.get_by_text("The SQL behind this answer").click()
    expect(page.locator("#sql-query")).to_be_visible()


def test_queue_changes_in_a_date_range_with_date_fields(page):
    from playwright.sync_api import expect

    page.goto("/projections/queue_changes_between")
    expect(page.locator("input[name=from]")).to_have_attribute("type", "date")
    page.locator("input[name=from]").fill("2026-02-06")
    page.locator("input[name=to]").fill("2026-02-06")
    page.locator("input[name=platform]").fill("ah-64e")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("table.rows-and-columns tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.first.locator("td.col-case")).to_have_text("PL-B-AHA")
    expect(rows.first.locator("td.col-event_type")).to_have_text("PriorityPolicyAdopted")


def test_the_queue_chart(page, artifacts):
    from playwright.sync_api import expect

    page.goto("/")
    page.get_by_role("link", name="A queue before and after a policy").click()
    expect(page.locator("h1")).to_have_text("A queue before and after a policy")
    chart = page.locator("figure.chart svg")
    expect(chart).to_be_visible()
    expect(chart).to_contain_text(
        "F-35A Lightning II (f-35a): the queue just before and just after "
        "america-first-2026"
    )
    expect(chart).to_contain_text("just before")
    expect(chart.locator("text", has_text="SZ-D-F35 (CHE)")).to_have_count(2)
    expect(chart.locator("text", has_text="SZ-D-F35 (CHE) \u25bc down 8")).to_have_count(1)
    # The chart takes the width of the page.
    box = chart.bounding_box()
    assert box is not None and box["width"] > 1200
    screenshots(page, "chart-queue", artifacts, full_page=False)
    page.locator("select#chart-platform").select_option("ah-64e")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url("/-/charts/queue?policy=america-first-2026&platform=ah-64e")
    expect(chart).to_contain_text("AH-64E Apache (ah-64e)")
    data = page.locator("details.chart-data tbody tr")
    expect(data.first.locator("td")).to_have_text(["PL-B-AHA", "POL", "4", "1", "up 3"])
    expect(data.last.locator("td")).to_have_text(["EG-B-AHE", "EGY", "1", "4", "down 3"])


@pytest.mark.parametrize(
    "name, title",
    [
        ("backlog", "Backlog over time: open cases and their value, month by month"),
        ("scores", "Partners' scores, component by component"),
    ],
    ids=["backlog", "scores"],
)
def test_the_other_charts(page, artifacts, name, title):
    from playwright.sync_api import expect

    page.goto(f"/-/charts/{name}")
    chart = page.locator("figure.chart svg")
    expect(chart).to_be_visible()
    expect(chart).to_contain_text(title)
    box = chart.bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 300
    page.screenshot(path=artifacts / f"chart-{name}.png", full_page=True)


def test_the_whatif_page(page, artifacts):
    from playwright.sync_api import expect

    page.goto("/")
    page.get_by_role("link", name="What if a priority policy were adopted?").click()
    expect(page.locator("h1")).to_have_text("What if a priority policy were adopted?")
    expect(page.locator("select#whatif-platform")).to_have_value("f-35a")
    weights = {name: page.locator(f"#whatif-{name}") for name in WEIGHTS}
    sliders = {name: page.locator(f"#whatif-{name}-slider") for name in WEIGHTS}
    for name, value in zip(WEIGHTS, ("0.4", "0.3", "0.3"), strict=True):
        expect(weights[name]).to_have_value(value)  # the policy in force's
        expect(sliders[name]).to_have_value(value)
    expect(page.locator("#whatif-sum")).to_have_text("1")
    # Moving a slider moves its number, and the sum says when it is off.
    sliders["economic"].focus()
    for _ in range(20):
        page.keyboard.press("ArrowRight")
    expect(weights["economic"]).to_have_value("0.5")
    expect(page.locator("#whatif-sum")).to_have_text("1.2: the weights must add up to 1")
    for name, presses in (("investment", 15), ("strategic", 5)):
        sliders[name].focus()
        for _ in range(presses):
            page.keyboard.press("ArrowLeft")
    expect(weights["investment"]).to_have_value("0.25")
    expect(weights["strategic"]).to_have_value("0.25")
    expect(page.locator("#whatif-sum")).to_have_text("1")
    # A slider and its number are on one line.
    slider, number = sliders["economic"].bounding_box(), weights["economic"].bounding_box()
    assert slider is not None and number is not None
    assert abs(slider["y"] + slider["height"] / 2 - number["y"] - number["height"] / 2) < 4
    assert number["x"] > slider["x"] + slider["width"]
    page.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(
        "/-/whatif?platform=f-35a&mode=scored&investment=0.25&strategic=0.25"
        "&economic=0.5&pct_gdp=5&economic_usd=5000000000&tier1=0.7&tier2=0.45"
    )
    chart = page.locator("figure.chart svg")
    expect(chart).to_be_visible()
    expect(chart).to_contain_text(
        "F-35A Lightning II (f-35a): the queue under america-first-2026 and under the "
        "proposal"
    )
    box = chart.bounding_box()
    assert box is not None and box["width"] > 500 and box["height"] > 300
    rows = page.locator("table.whatif-cases tbody tr")
    expect(rows).to_have_count(10)
    expect(rows.nth(3).locator("td")).to_have_text(
        ["5", "4", "1", "FI-D-F35", "FIN", "2", "3", "0.472", "0.345", "8.6", "7.8"]
    )
    expect(page.locator("table.whatif-places tbody tr")).to_have_count(3)
    expect(page.locator(".whatif-named")).to_contain_text(
        "Proposal sha256 62f65c4201dfee1809df505bfd9d3c74ffe6a75fdb73f3dcf142a443fe8b2d47"
    )
    screenshots(page, "whatif", artifacts)
    # Typing a number moves its slider; a proposal the ledger refuses is one line.
    weights["investment"].fill("0.5")
    expect(sliders["investment"]).to_have_value("0.5")
    page.get_by_role("button", name="Compare").click()
    expect(page.locator(".whatif-error")).to_have_text(
        "refused by policy parameters: weights must add up to 1 (investment 0.5 + "
        "strategic 0.25 + economic 0.5 = 1.25)"
    )
    expect(page.locator("table.whatif-cases")).to_have_count(0)
    expect(weights["investment"]).to_have_value("0.5")


def test_money_and_booleans_are_words_and_choices_are_choices(page):
    from playwright.sync_api import expect

    page.goto("/projections/cases?_sort=case")
    first = page.locator("table.rows-and-columns tbody tr").first
    expect(first.locator("td.col-value_usd")).to_have_text("$72 M")
    expect(first.locator("td.col-value_usd span")).to_have_attribute("title", "$72,000,000")
    expect(first.locator("td.col-open")).to_have_text("no")
    expect(page.locator(".facet-info[data-column=platform]")).to_be_visible()
    page.goto("/projections/platforms")
    facet = page.locator(".facet-info[data-column=prioritized] li a")
    expect(facet).to_have_text(["no", "yes"])
    # The flags' kind is a choice among the kinds the domain defines, blank for all.
    page.goto("/projections/flags")
    kind = page.locator("select[name=kind]")
    expect(kind.locator("option")).to_have_text(
        [
            "all",
            "backdated-decision",
            "qme-not-certified",
            "correction",
            "out-of-sequence",
            "eeum-no-initial-inventory",
            "eeum-no-annual-inventory",
        ]
    )
    kind.select_option("out-of-sequence")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url("/projections/flags?kind=out-of-sequence")
    expect(page.locator("h2.arms-ledger-rows")).to_have_text("2 rows")
    expect(page.locator("select[name=kind]")).to_have_value("out-of-sequence")
    page.goto("/projections/holds_by_office")
    expect(page.locator("select[name=office] option")).to_have_count(5)
    # The JSON keeps the raw values.
    raw = page.request.get("/projections/cases.json?_shape=array&_sort=case&_size=1")
    assert raw.json()[0]["value_usd"] == 72_000_000 and raw.json()[0]["open"] == 0


def test_a_replay_warns(browser, demo_ledger, artifacts):
    from playwright.sync_api import expect

    with serving(demo_ledger, "--as-of", BEFORE_THE_ORDER) as replay:
        context = browser.new_context(
            base_url=replay.url, viewport={"width": 1280, "height": 900}
        )
        try:
            opened = context.new_page()
            opened.goto("/")
            banner = opened.get_by_role("alert")
            expect(banner).to_contain_text("Warning: A replay as of 2026-02-05T00:00:00Z")
            expect(banner).to_contain_text("Not the live state.")
            colour = banner.evaluate("e => getComputedStyle(e).backgroundColor")
            assert colour == "rgb(255, 244, 214)"  # amber, not the live banner's blue
            screenshots(opened, "replay-banner", artifacts, full_page=False)
        finally:
            context.close()


# The overlap of two boxes, in pixels (a hair's breadth is not an overlap).
OVERLAP = """(a, b) => Math.min(a.right, b.right) - Math.max(a.left, b.left) > 0.5
    && Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top) > 0.5"""
COLLISIONS = f"""svg => {{
    const overlap = {OVERLAP};
    const texts = [...svg.querySelectorAll("text")].filter(t => t.textContent.trim());
    const lines = [...svg.querySelectorAll(
        "g.mark-rule.role-mark line, g.mark-rule.role-mark path")];
    const found = [];
    const box = e => e.getBoundingClientRect();
    texts.forEach((t, i) => {{
        texts.slice(i + 1).forEach(u => {{
            if (overlap(box(t), box(u)))
                found.push(`"${{t.textContent}}" over "${{u.textContent}}"`);
        }});
        lines.forEach(l => {{
            const b = box(l);
            const widened = {{
                left: b.left - 1, right: b.right + 1, top: b.top, bottom: b.bottom}};
            if (overlap(box(t), widened)) found.push(`"${{t.textContent}}" across a rule`);
        }});
    }});
    return found;
}}"""


@pytest.mark.parametrize(
    "path",
    [
        *(f"/-/charts/{c.name}" for c in charts.CHARTS),
        "/-/charts/queue?policy=america-first-2026&platform=ah-64e",
        "/-/whatif?platform=f-35a&investment=0.25&strategic=0.25&economic=0.5",
    ],
)
def test_no_label_of_a_chart_collides(page, path):
    """No two texts of a chart overlap, and no text is crossed by a rule (a tier line,
    a policy's line): measured on the chart as the browser lays it out."""
    page.goto(path)
    chart = page.locator("figure.chart svg")
    assert chart.locator("text").count() > 10
    assert chart.evaluate(COLLISIONS) == []


def pages_of_the_web_view(page) -> list[str]:
    """Every page: the home page, the database, each table and view and its first row,
    each canned query (with the values the home page links), each chart, the what-if
    page (a proposal, a refusal), each monitor, and an error page."""
    page.goto("/")
    found = ["/", "/projections"]
    found += [
        urlsplit(a).path + (f"?{urlsplit(a).query}" if urlsplit(a).query else "")
        for a in page.locator("ul.arms-ledger-queries a").evaluate_all(
            "links => links.map(a => a.href)"
        )
    ]
    described = page.request.get("/projections.json").json()
    found += [f"/projections/{t['name']}" for t in described["tables"] if not t["hidden"]]
    found += [f"/projections/{v['name']}" for v in described["views"]]
    found += ["/-/charts", *(f"/-/charts/{c.name}" for c in charts.CHARTS)]
    found += [
        "/-/whatif",
        "/-/whatif?platform=f-35a&investment=0.25&strategic=0.25&economic=0.5",
        "/-/whatif?platform=f-35a&investment=0.5&strategic=0.25&economic=0.5",
    ]
    found += ["/-/monitors", *(f"/-/monitors/{m.name}" for m in monitors.MONITORS)]
    found += ["/projections?sql=select+1", "/projections/no-such-table"]
    return found


AUDIT = """async () => {
    const found = await axe.run(document, {resultTypes: ["violations"]});
    return found.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        targets: v.nodes.map(n => n.target.join(" ")).slice(0, 5),
    }));
}"""


def audited(page, axe: str, path: str) -> list[str]:
    """The serious and critical violations axe-core finds on the page at ``path``: the
    page, the rule, its impact and the elements (CSS selectors)."""
    page.goto(path)
    page.add_script_tag(content=axe)
    return [
        f"{path}: {v['id']} ({v['impact']}: {v['help']}) at " + ", ".join(v["targets"])
        for v in page.evaluate(AUDIT)
        if v["impact"] in ("serious", "critical")
    ]


def test_every_page_passes_the_accessibility_audit_and_fits_the_window(page, axe):
    """axe-core on every page of the web view: no violation of impact serious or
    critical. And no page is wider than the window, at 1280 pixels or on a phone (390),
    and at 1280 no table of a canned query needs scrolling (long cells wrap)."""
    paths = pages_of_the_web_view(page)
    rows: list[str] = []
    for path in list(paths):
        page.goto(path)
        link = page.locator("table.rows-and-columns tbody tr td.type-pk a").first
        if path.count("/") == 2 and link.count():
            row = link.get_attribute("href")
            assert row is not None
            rows.append(row)
    paths += rows
    assert len(paths) > 50, paths
    violations: list[str] = []
    clipped: list[str] = []
    for path in paths:
        violations += audited(page, axe, path)
        wide = page.evaluate("document.documentElement.scrollWidth")
        if wide > 1280:
            clipped.append(f"{path}: {wide} px wide")
        if "/projections/" in path and "?" in path:  # a canned query's answer
            over = page.evaluate(
                "Math.max(0, ...[...document.querySelectorAll('.table-wrapper')]"
                ".map(e => e.scrollWidth - e.clientWidth))"
            )
            if over > 0:
                clipped.append(f"{path}: its table scrolls by {over} px")
        page.set_viewport_size({"width": 390, "height": 900})  # a phone
        wide = page.evaluate("document.documentElement.scrollWidth")
        if wide > 390:
            clipped.append(f"{path}: {wide} px wide on a phone (390 px)")
        page.set_viewport_size({"width": 1280, "height": 900})
    assert violations == [], "\n".join(violations)
    assert clipped == [], "\n".join(clipped)


def test_the_sql_pages_of_allow_sql_pass_the_audit(browser, demo_ledger, axe):
    """With --allow-sql, the database page's SQL editor and an arbitrary query's answer
    pass the audit too (the editor is labelled for screen readers)."""
    with serving(demo_ledger, "--allow-sql") as open_sql:
        context = browser.new_context(
            base_url=open_sql.url, viewport={"width": 1280, "height": 900}
        )
        try:
            opened = context.new_page()
            found = [
                v
                for path in (
                    "/projections",
                    "/projections?sql=select+*+from+cases+limit+5",
                    "/projections/flags?kind=correction",
                )
                for v in audited(opened, axe, path)
            ]
            assert found == [], "\n".join(found)
            opened.goto("/projections?sql=select+count(*)+as+n+from+cases")
            assert opened.locator("h1").inner_text() == "A query of the read models"
            assert opened.locator("td.col-n").inner_text() == "55"
        finally:
            context.close()


def test_policies_close_in_time_do_not_collide(browser, demo_ledger):
    """The backlog chart's policy labels stack when policies are close in time: no two
    overlap, none is crossed by a policy's line (five policies, three within a season)."""
    series = [
        {
            "month": f"20{y}-{m:02d}",
            "open_cases": y + m,
            "value_usd": m,
            "value_billion_usd": m,
        }
        for y in range(18, 27)
        for m in range(1, 13)
    ]
    policies = [
        {"effective_at": f"{day}T00:00:00Z", "policy": name, "legal_basis": "E.O. 1"}
        for day, name in (
            ("2018-03-01", "fcfs-legacy"),
            ("2018-05-01", "interim-a"),
            ("2018-06-01", "interim-b"),
            ("2025-01-01", "america-first"),
            ("2026-01-01", "america-second"),
        )
    ]
    drawn = charts.svg(charts.backlog_chart(series, policies))
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        opened = context.new_page()
        opened.set_content(f'<figure class="chart">{drawn}</figure>')
        svg = opened.locator("figure svg")
        assert svg.locator("text", has_text="interim-a, E.O. 1").count() == 2
        assert svg.evaluate(COLLISIONS) == []
    finally:
        context.close()
