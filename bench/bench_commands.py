"""Whole-command timings on a large real database, beside `python -c pass` in the same run.

    python bench/bench_commands.py [FILE.xml.gz] [--runs 7] [--db PATH]

Builds (once) a database holding every record of an NLM baseline file linked to one
condition (`evidence import FILE --condition low-back-pain`), then runs each command as a
user would, in a fresh process, and reports the median wall time of --runs runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT = HERE.parent.parent / "shared" / "data" / "pubmed20n0014.xml.gz"
EVIDENCE = [sys.executable, "-m", "evidence"]

COMMANDS = [
    ("python -c pass (baseline)", [sys.executable, "-c", "pass"]),
    ("evidence --help", EVIDENCE + ["--help"]),
    ("evidence list low-back-pain", EVIDENCE + ["list", "low-back-pain"]),
    ("evidence list low-back-pain --level 1 --since 1980", EVIDENCE + ["list", "low-back-pain", "--level", "1", "--since", "1980"]),
    ("evidence list low-back-pain --json --limit 100", EVIDENCE + ["list", "low-back-pain", "--json", "--limit", "100"]),
    ("evidence search massage", EVIDENCE + ["search", "massage"]),
    ("evidence search 'randomized AND pain' --condition low-back-pain",
     EVIDENCE + ["search", "randomized AND pain", "--condition", "low-back-pain"]),
    ("evidence status", EVIDENCE + ["status"]),
]


def timed(cmd: list[str], env: dict, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT))
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--db", help="reuse this database (built if missing)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    db = Path(args.db) if args.db else Path(tmp) / "bench.db"
    env = dict(os.environ, EVIDENCE_DB=str(db), COLUMNS="120")
    env.pop("EVIDENCE_QUERIES", None)
    try:
        if not db.exists():
            started = time.perf_counter()
            subprocess.run(EVIDENCE + ["import", args.file, "--condition", "low-back-pain"], env=env,
                           check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            print(f"built {db} in {time.perf_counter() - started:.1f} s")
        count = subprocess.run(EVIDENCE + ["status", "--json"], env=env, capture_output=True, text=True,
                               check=True).stdout
        import json

        info = json.loads(count)
        print(f"database: {info['records']:,} records, {info['size_bytes'] / 1e6:.0f} MB; "
              f"machine: {os.cpu_count()} cores; median of {args.runs} runs")
        base = None
        for name, cmd in COMMANDS:
            seconds = timed(cmd, env, args.runs)
            base = base or seconds
            print(f"{name:<66} {seconds:6.3f} s  ({seconds / base:4.1f}x python -c pass)")
    finally:
        if not args.db:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
