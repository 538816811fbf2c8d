"""A real browser for tests: Debian's Chromium driven by Playwright, and axe-core in the page.

Playwright's own browser download does not work where this project is built, so it drives
the system Chromium (`EVIDENCE_CHROMIUM`, default /usr/bin/chromium). axe-core comes from npm
(`.ci/run` installs it into `.cache/node`; `EVIDENCE_AXE` names another axe.min.js).

When either is missing, the tests that need them skip, unless `EVIDENCE_REQUIRE_BROWSER=1`
(CI sets it), where a missing browser fails the test instead of hiding it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
AXE_DEFAULT = ROOT / ".cache" / "node" / "node_modules" / "axe-core" / "axe.min.js"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts,
# which this machine's closed network refuses; as root it needs --no-sandbox.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
# axe-core impacts that fail a page: a screen-reader or keyboard user is blocked or misled.
BLOCKING_IMPACTS = ("serious", "critical")


def _missing(what: str):
    if os.environ.get("EVIDENCE_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{what} (EVIDENCE_REQUIRE_BROWSER=1)")
    pytest.skip(what)


def chromium_path() -> str:
    """The system Chromium, or skip (fail under EVIDENCE_REQUIRE_BROWSER=1)."""
    path = os.environ.get("EVIDENCE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        _missing(f"no Chromium at {path}: apt-get install chromium")
    return path


def axe_source() -> str:
    """The text of axe.min.js, or skip (fail under EVIDENCE_REQUIRE_BROWSER=1)."""
    path = Path(os.environ.get("EVIDENCE_AXE") or AXE_DEFAULT)
    if not path.is_file():
        _missing(f"no axe-core at {path}: npm install --prefix .cache/node axe-core@4")
    return path.read_text(encoding="utf-8")


@contextlib.contextmanager
def launch():
    """A headless Chromium under Playwright; yields the Browser."""
    executable = chromium_path()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _missing("Playwright for Python is not installed: pip install -e '.[test]'")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            browser.close()


def run_axe(page, *, tags: tuple[str, ...] = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")) -> list[dict]:
    """Run axe-core on the page as it is now; returns its violations (each with `impact`)."""
    page.add_script_tag(content=axe_source())
    result = page.evaluate(
        "async (tags) => await axe.run(document, {runOnly: {type: 'tag', values: tags}})",
        list(tags),
    )
    return result["violations"]


def blocking(violations: list[dict]) -> list[str]:
    """The serious and critical violations, one readable line each, for an assert message."""
    return [
        f"{v['id']} ({v['impact']}): {v['help']} -> "
        + "; ".join(n["target"][0] if n.get("target") else "?" for n in v["nodes"][:3])
        for v in violations
        if v.get("impact") in BLOCKING_IMPACTS
    ]


def horizontal_overflow(page) -> int:
    """How many CSS pixels the page is wider than the viewport (0 when nothing scrolls sideways)."""
    return page.evaluate(
        "() => Math.max(document.documentElement.scrollWidth, document.body.scrollWidth)"
        " - window.innerWidth"
    )
