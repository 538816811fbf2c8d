"""`evidence review` on a condition of 3,000 records: the screening page and a decision round
trip over real HTTP, beside the same ranking through `evidence list` in the same run.

    python bench/bench_review.py [FILE.xml.gz] [--records 3000] [--runs 15]

Builds a database holding the first --records records of an NLM baseline file (default: the
2020 file 14 beside this checkout, see shared/data/README.md) imported with
`evidence import --condition low-back-pain`, or as many SYNTHETIC records (PMID >= 99000000)
when that file is missing. Then starts the real `evidence review --no-browser` and times, as
a browser would ask them (keep-alive connection, cookie): the screening page, the focused
record alone (what j/k fetch), and decisions (POST include, exclude, undo; JSON answers).
Targets on the project's 2-core machine: page under 0.3 s, decision round trip under 50 ms.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT = ROOT.parent / "shared" / "data" / "pubmed20n0014.xml.gz"
EVIDENCE = [sys.executable, "-m", "evidence"]
SLUG = "low-back-pain"
PAGE_TARGET = 0.3
DECISION_TARGET = 0.050


def build(db: Path, source: Path, records: int, env: dict) -> str:
    """The database, from the real file's first records or SYNTHETIC ones; says which."""
    sys.path.insert(0, str(ROOT))
    from tests.eutils_stub import load_articles, synthetic_articles

    if source.is_file():
        articles = list(load_articles(source).values())[:records]
        label = f"first {len(articles):,} records of {source.name}"
    else:
        articles = list(synthetic_articles(records).values())
        label = f"{len(articles):,} SYNTHETIC records ({source} not found)"
    xml = Path(db.parent) / "records.xml.gz"
    with gzip.open(xml, "wb") as f:
        f.write(b'<?xml version="1.0" ?>\n<PubmedArticleSet>\n' + b"\n".join(articles) + b"\n</PubmedArticleSet>\n")
    subprocess.run(EVIDENCE + ["import", str(xml), "--condition", SLUG], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return label


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        out.append(time.perf_counter() - started)
    return out


def line(name: str, times: list[float], target: float | None = None) -> str:
    median = statistics.median(times)
    verdict = ""
    if target is not None:
        verdict = f"  target {target * 1000:.0f} ms: {'PASS' if median <= target else 'FAIL'}"
    return f"{name:<58} median {median * 1000:7.1f} ms  best {min(times) * 1000:7.1f} ms{verdict}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT))
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    import requests

    tmp = Path(tempfile.mkdtemp())
    db = tmp / "bench.db"
    env = dict(os.environ, EVIDENCE_DB=str(db), COLUMNS="120")
    env.pop("EVIDENCE_QUERIES", None)
    server = None
    try:
        label = build(db, Path(args.file), args.records, env)
        print(f"database: {label}, linked to {SLUG}; machine: {os.cpu_count()} cores; {args.runs} runs each")
        run = lambda cmd: subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL,  # noqa: E731
                                         stderr=subprocess.DEVNULL)
        print(line("python -c pass (baseline)", timed(lambda: run([sys.executable, "-c", "pass"]), args.runs)))
        print(line(f"evidence list {SLUG}  (40 rows)", timed(lambda: run(EVIDENCE + ["list", SLUG]), args.runs)))
        print(line(f"evidence list {SLUG} --json  (all rows)",
                   timed(lambda: run(EVIDENCE + ["list", SLUG, "--json", "--include-retracted"]), args.runs)))

        server = subprocess.Popen(EVIDENCE + ["review", SLUG, "--no-browser", "--port", "0"], env=env,
                                  stderr=subprocess.PIPE, text=True)
        url = re.search(r"http://\S+", server.stderr.readline()).group(0)
        base = url.split("/conditions/")[0]
        http = requests.Session()  # one keep-alive connection with the cookie, like a browser tab
        page = http.get(url)
        page.raise_for_status()
        csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text).group(1)
        rows = len(re.findall(r'<li class="row"', page.text))
        pmids = re.findall(r'<li class="row" data-pmid="(\d+)"', page.text)

        def get(path):
            response = http.get(base + path)
            response.raise_for_status()
            return response

        print(line(f"review: screening page, {rows:,} rows ({len(page.content) / 1e6:.1f} MB)",
                   timed(lambda: get(f"/conditions/{SLUG}"), args.runs), PAGE_TARGET))
        print(line("review: screening page, search 'massage'",
                   timed(lambda: get(f"/conditions/{SLUG}?q=massage"), args.runs)))
        print(line("review: focused record alone (j/k)",
                   timed(lambda: get(f"/conditions/{SLUG}/records/{pmids[len(pmids) // 2]}"), args.runs)))
        headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
        picks = iter(pmids * 3)

        def decide(decision):
            form = {"pmid": next(picks), "decision": decision}
            if decision == "exclude":
                form["reason_pick"] = "not about this condition"
            response = http.post(f"{base}/conditions/{SLUG}/decide", data=form, headers=headers)
            response.raise_for_status()

        print(line("review: decision round trip, include (POST, JSON)", timed(lambda: decide("include"), args.runs),
                   DECISION_TARGET))
        print(line("review: decision round trip, exclude with reason", timed(lambda: decide("exclude"), args.runs),
                   DECISION_TARGET))

        def undo():
            response = http.post(f"{base}/conditions/{SLUG}/undo", data={"pmid": next(picks)}, headers=headers)
            response.raise_for_status()

        print(line("review: undo round trip", timed(undo, args.runs), DECISION_TARGET))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
