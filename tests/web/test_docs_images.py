"""The web view's page of the docs shows screenshots that exist, and every screenshot
kept in docs/screenshots/ is shown (tests/web/test_browser.py makes them)."""

from __future__ import annotations

import re

from tests.web.conftest import ROOT

DOCS = ROOT / "docs"


def test_the_docs_show_the_screenshots_that_exist():
    text = (DOCS / "web.md").read_text()
    shown = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", text)
    assert len(shown) >= 6
    for image in shown:
        path = DOCS / image
        assert path.is_file(), f"docs/web.md shows a missing image: {image}"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", image
    kept = {p.relative_to(DOCS).as_posix() for p in (DOCS / "screenshots").glob("*.png")}
    # Each is shown, or is the other width of one shown.
    widths = {re.sub(r"-\d+\.png$", "", image) for image in shown}
    assert {re.sub(r"-\d+\.png$", "", k) for k in kept} <= widths
    assert kept >= set(shown)
