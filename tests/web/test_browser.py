"""End to end, in a real headless browser: Debian's Chromium driven by Playwright against
``arms-ledger serve`` on the demo ledger. What a person would see is asserted, and each
page is saved as a screenshot in tests/artifacts/.

Skipped when /usr/bin/chromium is absent (``apt-get install -y chromium``; .ci/run
installs it). Playwright's own browser download is never used.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
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
    page.screenshot(path=artifacts / "home.png", full_page=True)
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
    page.get_by_role("button", name="Run SQL").click()
    expect(page).to_have_url("/projections/platform_queue?platform=f-35a")
    rows = page.locator("table.rows-and-columns tbody tr")
    expect(rows).to_have_count(10)
    expect(rows.first.locator("td.col-case")).to_have_text("GY-D-F35")
    expect(rows.first.locator("td.col-priority_class")).to_have_text("expedited")
    expect(rows.nth(1).locator("td.col-case")).to_have_text("PL-D-F35")
    expect(rows.last.locator("td.col-case")).to_have_text("SZ-D-F35")
    expect(rows.last.locator("td.col-priority_class")).to_have_text("deferred")
    page.screenshot(path=artifacts / "platform-queue.png")


def test_queue_changes_in_a_date_range_with_date_fields(page):
    from playwright.sync_api import expect

    page.goto("/projections/queue_changes_between")
    expect(page.locator("input[name=from]")).to_have_attribute("type", "date")
    page.locator("input[name=from]").fill("2026-02-06")
    page.locator("input[name=to]").fill("2026-02-06")
    page.locator("input[name=platform]").fill("ah-64e")
    page.get_by_role("button", name="Run SQL").click()
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
    page.screenshot(path=artifacts / "chart-queue.png")
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
    page.screenshot(path=artifacts / "whatif.png", full_page=True)
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
