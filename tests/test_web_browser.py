"""`evidence review` in a real browser: Debian's Chromium under Playwright (tests/browser.py).

The server is the real command (`evidence review --no-browser --port 0`) in its own process;
the page runs with its own Content-Security-Policy, except where axe-core must be injected.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from evidence.cli import cli
from tests import browser
from tests.test_web import HOSTILE_PMID, SLUG, fill

PAGES = ("/", f"/conditions/{SLUG}", f"/conditions/{SLUG}/handout")


@pytest.fixture(scope="module")
def chromium():
    with browser.launch() as b:
        yield b


class Server:
    """`evidence review` running in a subprocess, and the URL it printed."""

    def __init__(self, db: Path, *args: str):
        self.db = db
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "evidence", "review", SLUG, "--no-browser", "--port", "0", "--db", str(db), *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        self.line = self.proc.stderr.readline()
        found = re.search(r"http://127\.0\.0\.1:\d+/conditions/[a-z-]+\?token=[\w-]+", self.line)
        if not found:
            self.proc.kill()
            raise AssertionError(f"no URL in {self.line!r}: {self.proc.stderr.read()}")
        self.url = found.group(0)
        self.base = self.url.split("/conditions/")[0]

    def stop(self) -> tuple[int, str, str]:
        """Ctrl-C, as a user stops it."""
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=10)
        return self.proc.returncode, out, err


@pytest.fixture
def server(tmp_path):
    db = tmp_path / "evidence.db"
    fill(db).close()
    s = Server(db)
    yield s
    if s.proc.poll() is None:
        s.stop()


def cli_json(db: Path, *args: str):
    result = CliRunner().invoke(cli, [*args, "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def active_pmid(page) -> str | None:
    return page.evaluate("() => document.activeElement.closest('li[data-pmid]')?.dataset.pmid || null")


def row_pmids(page) -> list[str]:
    return page.eval_on_selector_all("#records li[data-pmid]", "els => els.map(e => e.dataset.pmid)")


def test_screen_with_the_keyboard_and_take_the_handout(chromium, server, tmp_path):
    errors: list[str] = []
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    screen = context.new_page()
    screen.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    screen.on("pageerror", lambda e: errors.append(str(e)))
    screen.on("dialog", lambda d: errors.append(f"dialog: {d.message}"))  # a hostile title's alert()
    screen.goto(server.url)
    assert "token=" not in screen.url  # traded for a cookie
    order = row_pmids(screen)
    assert len(order) == 15
    # The first unscreened study has focus; j moves on, k back, each showing its abstract.
    assert active_pmid(screen) == order[0]
    screen.keyboard.press("j")
    screen.wait_for_selector(f'#focus article[data-pmid="{order[1]}"]')
    assert active_pmid(screen) == order[1]
    screen.keyboard.press("k")
    screen.wait_for_selector(f'#focus article[data-pmid="{order[0]}"]')

    # The handout, open in another tab, shows the rule's choice until a person decides.
    handout = context.new_page()
    handout.goto(f"{server.base}/conditions/{SLUG}/handout")
    assert "picked by rule" in handout.inner_text("#handout-summary")

    # i includes and moves to the next unscreened study.
    screen.keyboard.press("i")
    screen.wait_for_selector(f'#records li[data-pmid="{order[0]}"][data-decision="include"]')
    screen.wait_for_selector(f'#focus article[data-pmid="{order[1]}"]')
    assert screen.inner_text("#screened-text").startswith("1 of 15 screened")
    # x opens the reason: pick the first from the list, Enter excludes.
    screen.keyboard.press("x")
    assert screen.evaluate("() => document.activeElement.id") == "reason-pick"
    screen.keyboard.press("ArrowDown")
    screen.keyboard.press("Enter")
    screen.wait_for_selector(f'#records li[data-pmid="{order[1]}"][data-decision="exclude"]')
    screen.wait_for_selector(f'#focus article[data-pmid="{order[2]}"]')
    assert screen.inner_text("#screened-text").startswith("2 of 15 screened · 1 included · 1 excluded")
    # Back to the excluded one: u undoes it.
    screen.keyboard.press("k")
    screen.wait_for_selector(f'#focus article[data-pmid="{order[1]}"][data-decision="exclude"]')
    screen.keyboard.press("u")
    screen.wait_for_selector(f'#records li[data-pmid="{order[1]}"][data-decision=""]')
    screen.wait_for_selector(f'#focus article[data-pmid="{order[1]}"][data-decision=""]')
    # n writes a note; Ctrl+Enter saves it.
    screen.keyboard.press("n")
    screen.keyboard.type("Ask about 97140")
    screen.keyboard.press("Control+Enter")
    screen.wait_for_function("() => document.getElementById('status').textContent.includes('Note saved')")
    # / searches.
    screen.keyboard.press("/")
    screen.keyboard.type("reflexology")
    screen.keyboard.press("Enter")
    screen.wait_for_url(re.compile(r"q=reflexology"))
    assert 0 < len(row_pmids(screen)) < 15

    # The handout tab followed the decisions: now only the included study.
    handout.wait_for_function(
        "() => document.getElementById('handout-summary').textContent.includes('1 study')"
    )
    frame = handout.frame_locator("#handout-frame")
    assert f"PMID: {order[0]}" in frame.locator("body").inner_text()
    with handout.expect_download() as info:
        handout.click('a[data-format="pdf"]')
    pdf = tmp_path / "handout.pdf"
    info.value.save_as(pdf)
    assert info.value.suggested_filename == f"{SLUG}.pdf"
    from pypdf import PdfReader

    text = " ".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert order[0] in text and order[1] not in text

    # The same decisions, through the CLI.
    decided = {d["pmid"]: d["decision"] for d in cli_json(server.db, "decisions", SLUG)}
    assert decided == {order[0]: "include"}
    actions = [(h["pmid"], h["action"]) for h in cli_json(server.db, "decisions", SLUG, "--history")]
    assert actions == [(order[0], "include"), (order[1], "exclude"), (order[1], "undo")]
    assert cli_json(server.db, "show", order[1])["note"] == "Ask about 97140"
    assert errors == []
    context.close()


def test_every_action_works_without_javascript(chromium, server):
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(server.url)
    first = page.get_attribute("#focus article", "data-pmid")
    page.click("button.include")
    page.wait_for_selector(f'#records li[data-pmid="{first}"][data-decision="include"]')
    second = page.get_attribute("#focus article", "data-pmid")
    assert second != first
    page.select_option("#reason-pick", "not about this condition")
    page.click("button.exclude")
    page.wait_for_selector(f'#records li[data-pmid="{second}"][data-decision="exclude"]')
    decided = {d["pmid"]: d for d in cli_json(server.db, "decisions", SLUG)}
    assert decided[first]["decision"] == "include"
    assert decided[second]["reason"] == "not about this condition"
    context.close()


def test_pages_pass_axe_and_fit_a_phone(chromium, server):
    # axe-core is injected as an inline script, which the page's own policy forbids.
    context = chromium.new_context(bypass_csp=True)
    page = context.new_page()
    page.goto(server.url)
    # Every page through axe at desktop width; on a phone, no page scrolls sideways and the
    # screening page (the one whose layout changes most) goes through axe again.
    for width, audited in ((1280, PAGES), (390, PAGES[1:2])):
        page.set_viewport_size({"width": width, "height": 850})
        for path in PAGES:
            page.goto(server.base + path)
            if path in audited:
                assert browser.blocking(browser.run_axe(page)) == [], (width, path)
            assert browser.horizontal_overflow(page) == 0, (width, path)
    context.close()


def test_the_page_policy_blocks_injected_script_and_hostile_text_stays_text(chromium, server):
    context = chromium.new_context()
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(server.url)
    page.goto(f"{server.base}/conditions/{SLUG}?pmid={HOSTILE_PMID}")
    assert '<script>alert("title")</script>' in page.inner_text("#rec-title")
    with pytest.raises(Exception, match="Content Security Policy"):
        page.add_script_tag(content="window.injected = true")
    assert page.evaluate("() => window.injected === undefined")
    assert dialogs == []
    context.close()


def test_ctrl_c_stops_the_server_cleanly(server):
    assert server.line.count("\n") == 1 and "Ctrl-C" in server.line
    code, out, err = server.stop()
    assert code == 0
    assert out == ""
    assert err.strip() == "evidence review stopped; every decision is saved."
