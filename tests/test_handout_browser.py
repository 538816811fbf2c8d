"""The HTML handout in a real browser: Debian's Chromium with axe-core (tests/browser.py).

No serious or critical axe-core violation and no sideways scrolling on a 320- and
390-pixel phone or a 1280-pixel screen, and type a patient can read on screen and on paper.
Set EVIDENCE_LOOK_DIR to a folder to keep a full-page screenshot of every page tested.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from evidence.export import render
from tests import browser
from tests.test_export_citation import real_records
from tests.test_export_handout import CONDITIONS, TEN, condition_context, make_context

WIDTHS = (320, 390, 1280)
PT = 96 / 72  # CSS pixels per point


@pytest.fixture(scope="module")
def chromium():
    with browser.launch() as b:
        yield b


@pytest.fixture(scope="module")
def ten_html():
    return render("html", real_records(*TEN), make_context()).decode("utf-8")


def open_page(chromium, html: str, width: int, media: str = "screen"):
    page = chromium.new_page(viewport={"width": width, "height": 900})
    page.emulate_media(media=media)
    page.set_content(html)
    return page


def keep_screenshot(page, name: str) -> None:
    folder = os.environ.get("EVIDENCE_LOOK_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=True)


@pytest.mark.parametrize("width", WIDTHS)
def test_no_serious_violation_and_no_sideways_scroll(chromium, ten_html, width):
    page = open_page(chromium, ten_html, width)
    try:
        assert browser.horizontal_overflow(page) <= 0
        assert browser.blocking(browser.run_axe(page)) == []
        # On a phone the rows are laid out as blocks; the table keeps its meaning.
        tree = page.locator(".studies").aria_snapshot()
        assert "- table" in tree and 'columnheader "Type of study (provisional)"' in tree
        keep_screenshot(page, f"handout-{width}")
    finally:
        page.close()


@pytest.mark.parametrize("slug", sorted(CONDITIONS))
def test_each_kind_of_handout_passes_on_a_phone(chromium, slug):
    html = render("html", real_records(*TEN), condition_context(slug)).decode("utf-8")
    page = open_page(chromium, html, 390)
    try:
        assert browser.horizontal_overflow(page) <= 0
        assert browser.blocking(browser.run_axe(page)) == []
        # On a phone the diary is a list of what to write down, not a grid to squint at.
        assert page.locator("table.log").is_hidden()
        assert page.locator(".log-list").is_visible()
        keep_screenshot(page, f"handout-{slug}-390")
    finally:
        page.close()


# The smallest text under each selector, in CSS pixels.
SMALLEST_TEXT = """(selector) => {
  let smallest = Infinity;
  for (const root of document.querySelectorAll(selector)) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
      const node = walker.currentNode;
      if (!node.textContent.trim() || !node.parentElement.checkVisibility()) continue;
      smallest = Math.min(smallest, parseFloat(getComputedStyle(node.parentElement).fontSize));
    }
  }
  return smallest;
}"""
# Smallest size allowed on screen (px) and on paper (pt): what a patient reads at 16 px and
# 10 pt; the studies table at one size per row (8.5 pt), the words box and the codes 8.5 pt, so
# that ten studies and a condition's whole search fit two pages; the part for the doctor 7.5 pt
# (the PubMed term, in a narrow face: 1,500 characters that must be printed exactly).
TYPE_FLOORS = {
    "header, .purpose, .safety, .key, .fill section:not(.words), .diary, footer .disclaimer": (16, 10),
    ".studies td": (14, 8.5),
    ".words, .codes-part": (16, 8.5),
    ".doctor": (14, 7.5),
}


def test_type_is_patient_sized_and_links_are_underlined(chromium, ten_html):
    page = open_page(chromium, ten_html, 1280)
    try:
        screen = {sel: page.evaluate(SMALLEST_TEXT, sel) for sel in TYPE_FLOORS}
        page.emulate_media(media="print")
        paper = {sel: page.evaluate(SMALLEST_TEXT, sel) / PT for sel in TYPE_FLOORS}
        for selector, (px, pt) in TYPE_FLOORS.items():
            assert screen[selector] >= px, (selector, screen[selector])
            assert paper[selector] >= pt - 0.01, (selector, paper[selector])
        # A link is told from the text around it by its underline, not by colour alone.
        decorations = page.eval_on_selector_all(
            "main a", "links => links.map(a => getComputedStyle(a).textDecorationLine)"
        )
        assert decorations and set(decorations) == {"underline"}
    finally:
        page.close()
