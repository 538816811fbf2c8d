"""Screenshots of `evidence review` for README (docs/review-*.png), from a real run.

    python bench/review_screenshots.py [--out docs]

The database holds the real records of tests/fixtures/eutils (two NLM file excerpts) linked
to low-back-pain, with two decisions made as `evidence include` / `exclude` would make them.
The pages come from the real `evidence review` process, drawn by Debian's Chromium.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import browser  # noqa: E402
from tests.test_web import REVIEW, SLUG, TRIAL, fill  # noqa: E402
from tests.test_web_browser import Server  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs"))
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = Path(tempfile.mkdtemp()) / "evidence.db"
    store = fill(db, hostile=False)
    store.decide(SLUG, [REVIEW], "include", None)
    store.decide(SLUG, [TRIAL], "exclude", "not about this condition")
    store.close()
    server = Server(db)
    try:
        with browser.launch() as chromium:
            page = chromium.new_page(viewport={"width": 1280, "height": 800})
            page.goto(server.url)
            page.goto(f"{server.base}/")
            page.screenshot(path=str(out / "review-conditions.png"))
            page.goto(f"{server.base}/conditions/{SLUG}")
            page.wait_for_selector("#focus article")
            page.screenshot(path=str(out / "review-screening.png"))
            page.goto(f"{server.base}/conditions/{SLUG}/handout")
            page.wait_for_timeout(300)  # the preview frame
            page.screenshot(path=str(out / "review-handout.png"))
            phone = chromium.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=1)
            phone.goto(server.url)
            phone.wait_for_selector("#focus article")
            phone.evaluate("() => window.scrollTo(0, 0)")
            phone.screenshot(path=str(out / "review-phone.png"))
    finally:
        server.stop()
    for name in ("conditions", "screening", "handout", "phone"):
        print(out / f"review-{name}.png")


if __name__ == "__main__":
    main()
