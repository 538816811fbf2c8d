"""Fetch benchmark: search_all + fetch_batches against the loopback stand-in, real pacing.

    python bench/bench_fetch.py                 # 5,000 SYNTHETIC records, rate 10 (dummy key)
    python bench/bench_fetch.py -n 20000 --rate 3 --batch 1000

Prints the records fetched, requests sent against the minimum (1 search + ceil(N/batch)
fetches; more than one search when N passes the 9,999 cap), the peak request rate the stand-in
saw in any one-second window, and the elapsed time. No network beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evidence.entrez import EFETCH_BATCH, ESEARCH_CAP, Client  # noqa: E402
from tests.eutils_stub import EutilsStub, synthetic_articles, synthetic_dates  # noqa: E402

# Not a real key: it only switches the client (and the stand-in's limit) to 10 requests/s.
DUMMY_KEY = "bench-dummy-key"


def count_records(body: bytes) -> int:
    """Records in one efetch answer, counted without a full parse."""
    return body.count(b"</PubmedArticle>")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--records", type=int, default=5000)
    parser.add_argument("--rate", type=float, default=10.0,
                        help="requests/s; above 3 the dummy key is sent (default 10)")
    parser.add_argument("--batch", type=int, default=EFETCH_BATCH)
    args = parser.parse_args(argv)

    articles = synthetic_articles(args.records)
    ids = list(articles)
    key = DUMMY_KEY if args.rate > 3 else None
    with EutilsStub(articles, enforce_rate=True) as stub:
        stub.add_search("bench", ids, synthetic_dates(ids))
        lines: list[str] = []
        client = Client(stub.url, "bench@example.org", api_key=key, rate=args.rate,
                        log=lines.append)
        started = time.monotonic()
        found = client.search_all("bench")
        search_requests = client.requests_sent
        fetched = 0
        for _, body in client.fetch_batches(found.pmids, batch_size=args.batch):
            fetched += count_records(body)
        elapsed = time.monotonic() - started
        rejected = sum(1 for r in stub.log if r["status"] == 429)
        peak = stub.peak_rate()

    fetches = math.ceil(args.records / args.batch)
    # Past the cap: one search for the count, then at least ceil(N/9,999) date slices.
    searches = 1 if args.records <= ESEARCH_CAP else 1 + math.ceil(args.records / ESEARCH_CAP)
    minimum = searches + fetches
    print(f"records fetched:   {fetched:,} of {args.records:,} SYNTHETIC "
          f"(search found {found.count:,})")
    print(f"requests sent:     {client.requests_sent} = {search_requests} esearch + "
          f"{client.requests_sent - search_requests} efetch (minimum {minimum} = {searches} "
          f"esearch + {fetches} efetch of {args.batch}); 429s: {rejected}")
    print(f"peak rate at stub: {peak} requests in a 1-second window (limit {args.rate:g}/s)")
    print(f"elapsed:           {elapsed:.2f} s ({fetched / elapsed:,.0f} records/s)")
    for line in lines:
        print(f"  log: {line}")
    return 0 if fetched == args.records and rejected == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
