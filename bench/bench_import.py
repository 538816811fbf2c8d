"""Import a real NLM baseline file into a fresh database: `evidence import` against the obvious
alternative (Bio.Entrez.read on the file, then sqlite-utils insert_all), in the same run.

    python bench/bench_import.py [FILE.xml.gz] [--bio-records 5000]

Each side runs in its own child process, so each peak RSS (ru_maxrss) is its own. Ours
imports the whole file (parsing in a child process of its own for large files: its peak is
added to the storing process's) and reports peak memory at every 10,000 records, to show it
stays flat as the file grows. Bio.Entrez.read builds the whole file in memory (about 70 KB
a record), so --bio-records N runs it on only the first N records, cut byte-for-byte from
the same file, when the machine lacks the memory; by default it reads the whole file.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = HERE.parent.parent / "shared" / "data" / "pubmed20n0014.xml.gz"


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_ours(path: str, db: str) -> dict:
    from evidence import pipeline
    from evidence.store import Store

    marks = []
    store = Store(db)
    started = time.perf_counter()

    def progress(records: int, nbytes: int) -> None:
        if records % 10_000 == 0:
            marks.append({"records": records, "peak_mb": round(peak_mb(), 1),
                          "seconds": round(time.perf_counter() - started, 2)})

    summary = pipeline.import_file(store, Path(path), progress=progress)
    elapsed = time.perf_counter() - started
    parser_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"records": summary.found, "seconds": elapsed, "peak_mb": peak_mb() + parser_mb,
            "store_mb": peak_mb(), "parser_mb": parser_mb, "marks": marks}


def run_bio(path: str, db: str) -> dict:
    import sqlite_utils
    from Bio import Entrez

    started = time.perf_counter()
    with open(path, "rb") as handle:
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
            "authors": json.dumps([
                {"last_name": str(a.get("LastName", "")), "fore_name": str(a.get("ForeName", ""))}
                for a in art.get("AuthorList", [])
            ]),
            "journal": str(art["Journal"].get("Title", "")),
            "publication_types": json.dumps([str(p) for p in art.get("PublicationTypeList", [])]),
            "mesh_terms": json.dumps([str(m["DescriptorName"]) for m in citation.get("MeshHeadingList", [])]),
        })
    db_ = sqlite_utils.Database(db)
    db_["records"].insert_all(rows, pk="pmid", replace=True)
    elapsed = time.perf_counter() - started
    return {"records": len(rows), "seconds": elapsed, "peak_mb": peak_mb()}


def cut_first(path: Path, n: int, out: Path) -> int:
    """Write the XML prolog and the first n <PubmedArticle> elements of `path`, byte for byte."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        data = handle.read()
    start = data.index(b"<PubmedArticle>")
    end = start
    count = 0
    pattern = re.compile(rb"</PubmedArticle>")
    for match in pattern.finditer(data, start):
        count += 1
        end = match.end()
        if count == n:
            break
    # Biopython refuses the baseline's http:// DTD URL ("Expected secure URL to NCBI") and
    # ships the DTD itself; the https form of the same URL lets it use its own copy.
    prolog = data[:start].replace(b"http://dtd.nlm.nih.gov", b"https://dtd.nlm.nih.gov")
    out.write_bytes(prolog + data[start:end] + b"\n</PubmedArticleSet>\n")
    return count


def child(mode: str, path: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, path, os.path.join(tmp, "bench.db")],
            capture_output=True, text=True, check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT))
    parser.add_argument("--bio-records", type=int, default=0,
                        help="records Bio.Entrez.read gets (default 0: the whole file; ~2 GB for 30,000)")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "FILE", "DB"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, path, db = args.child
        result = run_ours(path, db) if mode == "ours" else run_bio(path, db)
        print(json.dumps(result))
        return
    path = Path(args.file)
    if not path.exists():
        sys.exit(f"{path} not found: pass an NLM baseline file (see shared/data/README.md).")
    ours = child("ours", str(path))
    with tempfile.TemporaryDirectory() as tmp:
        bio_file = Path(tmp) / "first.xml"
        cut_first(path, args.bio_records or 10**9, bio_file)
        bio = child("bio", str(bio_file))
    cpu = platform.processor() or platform.machine()
    print(f"machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}")
    print(f"file: {path.name}")
    print(f"{'':<40} {'records':>8} {'seconds':>8} {'records/s':>10} {'peak MB':>8}")
    for name, r in (("evidence import (parse + grade + store)", ours),
                    ("Bio.Entrez.read + sqlite-utils insert_all", bio)):
        rate = r["records"] / r["seconds"]
        print(f"{name:<40} {r['records']:>8,} {r['seconds']:>8.1f} {rate:>10,.0f} {r['peak_mb']:>8.0f}")
    ratio = (ours["records"] / ours["seconds"]) / (bio["records"] / bio["seconds"])
    print(f"speed ratio (ours / alternative, records/s): {ratio:.1f}x")
    print(f"our peak memory: {ours['store_mb']:.0f} MB storing + {ours['parser_mb']:.0f} MB parsing process")
    print("storing process's peak as the file grows: " + ", ".join(
        f"{m['records']:,} records {m['peak_mb']:.0f} MB" for m in ours["marks"]))


if __name__ == "__main__":
    main()
