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
import http.client
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

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
        url = urlsplit(re.search(r"http://\S+", server.stderr.readline()).group(0))
        # One keep-alive connection with the cookie, like a browser tab. http.client sends a
        # request's headers and body in one write, as browsers do; a client that writes them
        # apart (urllib3) adds the Nagle / delayed-ACK wait of TCP to every POST it times.
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        cookie = ""

        def ask(method: str, path: str, form: dict | None = None, headers: dict | None = None) -> bytes:
            nonlocal cookie
            body = urlencode(form).encode() if form is not None else None
            sent = {"Cookie": cookie, **(headers or {})}
            if body is not None:
                sent["Content-Type"] = "application/x-www-form-urlencoded"
            conn.request(method, path, body=body, headers=sent)
            response = conn.getresponse()
            data = response.read()
            if response.getheader("Set-Cookie"):
                cookie = response.getheader("Set-Cookie").split(";")[0]
            if response.status >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {response.status}")
            return data

        ask("GET", f"{url.path}?{url.query}")  # trades the token for the cookie
        page = ask("GET", url.path).decode()
        csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page).group(1)
        rows = len(re.findall(r'<li class="row"', page))
        pmids = re.findall(r'<li class="row" data-pmid="(\d+)"', page)

        print(line(f"review: screening page, {rows:,} rows ({len(page.encode()) / 1e6:.1f} MB)",
                   timed(lambda: ask("GET", f"/conditions/{SLUG}"), args.runs), PAGE_TARGET))
        print(line("review: screening page, search 'massage'",
                   timed(lambda: ask("GET", f"/conditions/{SLUG}?q=massage"), args.runs)))
        print(line("review: focused record alone (j/k)",
                   timed(lambda: ask("GET", f"/conditions/{SLUG}/records/{pmids[len(pmids) // 2]}"), args.runs)))
        headers = {"Accept": "application/json", "X-CSRF-Token": csrf}
        picks = iter(pmids * 3)

        def decide(decision):
            form = {"pmid": next(picks), "decision": decision}
            if decision == "exclude":
                form["reason_pick"] = "not about this condition"
            ask("POST", f"/conditions/{SLUG}/decide", form, headers)

        print(line("review: decision round trip, include (POST, JSON)", timed(lambda: decide("include"), args.runs),
                   DECISION_TARGET))
        print(line("review: decision round trip, exclude with reason", timed(lambda: decide("exclude"), args.runs),
                   DECISION_TARGET))
        print(line("review: undo round trip",
                   timed(lambda: ask("POST", f"/conditions/{SLUG}/undo", {"pmid": next(picks)}, headers), args.runs),
                   DECISION_TARGET))
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
