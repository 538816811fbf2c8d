"""Parse speed and peak memory: evidence.pubmed vs Biopython's Bio.Entrez.read on one NLM file.

    python bench/bench_parse.py [PATH] [--limit N]

PATH defaults to ../shared/data/pubmed20n0014.xml.gz (30,000 real records, 174 MB of XML).
Each measurement runs in its own child process, so each peak RSS (ru_maxrss) is that parser's
alone. Bio.Entrez.read builds the whole file in memory (DOMAIN.md measured 8 GB at 50,000
records), so it gets only the first N records (--limit, default 5,000): the file is cut after
the N-th </PubmedArticle> into a temporary file and closed. Ours runs on that same cut file
and on the whole file; compare per-record rates.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = ROOT.parent / "shared" / "data" / "pubmed20n0014.xml.gz"
END = b"</PubmedArticle>"


def peak_rss_mib() -> float:
    """This process's peak resident memory in MiB.

    Linux carries ru_maxrss across exec, so a child started while the parent was large would
    report the parent's peak; VmHWM belongs to the child's own address space. getrusage is the
    fallback elsewhere.
    """
    status = Path("/proc/self/status")
    if status.is_file():
        match = re.search(r"^VmHWM:\s+(\d+) kB", status.read_text(), re.M)
        if match:
            return int(match.group(1)) / 1024
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def run_ours(path: Path) -> dict:
    from evidence import pubmed

    deleted: list[str] = []
    started = time.perf_counter()
    with pubmed.open_pubmed_file(path) as stream:
        # reopen= as the import passes it: line breaks reach the parser as spaces.
        records = pubmed.iter_pubmed(
            stream, str(path), on_delete=deleted.extend, reopen=lambda: pubmed.open_pubmed_file(path)
        )
        count = sum(1 for _ in records)
    return {"records": count, "seconds": time.perf_counter() - started, "peak_rss_mib": peak_rss_mib()}


def run_biopython(path: Path) -> dict:
    import Bio.Entrez.Parser
    from Bio import Entrez

    def refuse(*args, **kwargs):
        raise RuntimeError("Bio.Entrez wanted to download a DTD; this benchmark stays offline.")

    Bio.Entrez.Parser.urlopen = refuse
    started = time.perf_counter()
    with path.open("rb") as stream:
        parsed = Entrez.read(stream)
    articles = parsed["PubmedArticle"] if isinstance(parsed, dict) else parsed
    return {"records": len(articles), "seconds": time.perf_counter() - started, "peak_rss_mib": peak_rss_mib()}


def cut_first_records(source: Path, limit: int, target: Path) -> int:
    """Write the first `limit` records of `source` as a complete PubmedArticleSet to `target`."""
    opener = gzip.open if source.read_bytes()[:2] == b"\x1f\x8b" else open
    seen = 0
    with opener(source, "rb") as stream, target.open("wb") as out:
        head = True
        while seen < limit:
            chunk = stream.read(1 << 20)
            if not chunk:
                break
            if head:
                # Biopython 1.88 refuses http:// DTD URLs; the DTD itself ships with Biopython.
                chunk = re.sub(rb'(<!DOCTYPE[^>]*")http://', rb"\1https://", chunk.lstrip(), count=1)
                head = False
            position = 0
            while seen < limit:
                found = chunk.find(END, position)
                if found < 0:
                    break
                position = found + len(END)
                seen += 1
            if seen >= limit:
                out.write(chunk[:position] + b"\n</PubmedArticleSet>\n")
                return seen
            out.write(chunk)
    return seen


def child(kind: str, path: Path) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(path)],
        capture_output=True, text=True, cwd=ROOT, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise SystemExit(f"{kind} on {path} failed:\n{done.stderr}")
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT)
    parser.add_argument("--limit", type=int, default=5000, help="records for Bio.Entrez.read")
    parser.add_argument("--child", choices=["ours", "bio"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = run_ours(args.path) if args.child == "ours" else run_biopython(args.path)
        print(json.dumps(result))
        return
    if not args.path.is_file():
        raise SystemExit(f"{args.path}: no such file: pass the path of a PubMed .xml or .xml.gz file.")
    with tempfile.TemporaryDirectory() as folder:
        cut = Path(folder) / "first.xml"
        kept = cut_first_records(args.path, args.limit, cut)
        rows = [
            ("evidence.pubmed, whole file", child("ours", args.path)),
            (f"evidence.pubmed, first {kept}", child("ours", cut)),
            (f"Bio.Entrez.read, first {kept}", child("bio", cut)),
        ]
    print(f"{args.path.name}: python {sys.version.split()[0]}")
    print(f"{'parser':34} {'records':>8} {'seconds':>8} {'records/s':>10} {'peak RSS MiB':>13}")
    for label, r in rows:
        rate = r["records"] / r["seconds"] if r["seconds"] else float("inf")
        print(f"{label:34} {r['records']:>8} {r['seconds']:>8.2f} {rate:>10.0f} {r['peak_rss_mib']:>13.1f}")


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    main()
