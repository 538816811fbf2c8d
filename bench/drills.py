"""Run the reliability and security drills of tests/test_drills.py at full size; print figures.

    python bench/drills.py [--seed N] [--quick]

One line per drill with its measured result and elapsed time, for the README.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import test_drills as drills  # noqa: E402


def _line(name: str, text: str, started: float) -> None:
    print(f"{name:<12} {text}  [{time.monotonic() - started:.1f} s]", flush=True)


def main() -> None:
    """Run every drill (or those named with --only) in a scratch folder and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="seed for the crash drill's kill moments")
    parser.add_argument("--quick", action="store_true", help="CI sizes instead of full sizes")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only these drills: " + ", ".join(DRILLS))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="evidence-drills-") as scratch:
        for name, drill in DRILLS.items():
            if not args.only or name in args.only:
                drill(Path(scratch) / name, args)


def crash(work: Path, args) -> None:
    records, kills = (2000, 20) if args.quick else (3000, 20)
    t = time.monotonic()
    c = drills.crash_drill(work, records=records, kills=kills, seed=args.seed)
    _line("crash", f"{c['recovered']}/{c['kills']} kills recovered ({c['killed_mid_run']} mid-run, "
          f"{c['exited_before_kill']} after exit; seed {c['seed']}), {c['records']} records, "
          f"uninterrupted {c['uninterrupted_s']:.1f} s, {c['lost']} rows lost, {c['duplicates']} duplicates, "
          f"integrity {'ok' if not c['integrity_failures'] else str(c['integrity_failures']) + ' FAILED'}", t)


def concurrent(work: Path, args) -> None:
    for same in (True, False):
        t = time.monotonic()
        f = drills.concurrency_drill(work / f"conc-{same}", records=2000 if not args.quick else 1000,
                                     same_condition=same)
        _line("concurrent", f"2 fetches, {'same condition' if same else 'two conditions'}: exits {f['exit_codes']}, "
              f"'locked' {f['locked_messages']}, {f['records']}/{f['expected_records']} records, "
              f"{f['duplicates']} duplicates, {f['requests']} requests, peak {f['peak_per_s']}/s (limit 3), "
              f"429s {f['http_429']}", t)


def first_open(work: Path, args) -> None:
    t = time.monotonic()
    r = drills.first_open_race(work, pairs=20 if not args.quick else 5)
    _line("first-open", f"{r['pairs'] - r['failed_pairs']}/{r['pairs']} pairs creating one new database at once "
          f"succeeded" + (f" (e.g. {r['errors'][0][0][:90]})" if r["errors"] else ""), t)


def network(work: Path, args) -> None:
    t = time.monotonic()
    modes = list(drills.FAULTS)
    ok = []
    for mode in modes:
        n = drills.network_drill(work / mode, mode)
        if (n["transient_exit"] == 0 and n["transient_complete"] and n["persistent_exit"] == 1
                and n["one_error_line"] and not n["traceback"] and n["resume_exit"] == 0
                and n["resume_complete"] and n["resume_fetched"] == 15):
            ok.append(mode)
    _line("network", f"{len(ok)}/{len(modes)} fault modes: once -> complete; past retries -> exit 1, one "
          f"Error: line, no traceback; rerun fetched only the missing 15/20"
          + (f"; FAILED {sorted(set(modes) - set(ok))}" if len(ok) < len(modes) else ""), t)


def fail_fast(work: Path, args) -> None:
    t = time.monotonic()
    quick = {"timeout": [1.0, 1.5], "deadline": 3.0, "backoff": 0.2} if args.quick else None
    f = drills.fail_fast_drill(work, silent_client=quick)
    bad = sorted(k for k, v in f.items() if not v["ok"])
    _line("fail-fast", "; ".join(f"{k}: exit {v['exit']} in {v['seconds']:.1f} s, {v['retries']} retries"
                                 for k, v in f.items())
          + " (default client; a failed run shows in status)" + (f"; FAILED {bad}" if bad else ""), t)


def bad_input(work: Path, args) -> None:
    _cases("bad input", drills.bad_input_cases, work)


def import_(work: Path, args) -> None:
    _cases("import", drills.import_drill, work)


def _cases(name: str, drill, work: Path) -> None:
    t = time.monotonic()
    res = drill(work)
    bad = sorted(k for k, v in res.items() if not v["ok"])
    _line(name, f"{len(res) - len(bad)}/{len(res)} cases: one Error: line, no traceback, data kept"
          + (f"; FAILED {bad}" if bad else ""), t)


def huge(work: Path, args) -> None:
    t = time.monotonic()
    h = drills.huge_file_drill(work)
    _line("huge files", "; ".join(f"{k}: exit {v['exit']}, peak {v['peak_rss_mb']:.0f} MB, {v['seconds']:.1f} s"
                                  for k, v in h.items()) + " (210 MB each, limit 200 MB)", t)


def bombs(work: Path, args) -> None:
    t = time.monotonic()
    mb = 1 << 20
    sizes = (dict(inflate=512 * mb, comment=256 * mb, abstract=96 * mb, title=128 * mb, nbib_title=64 * mb)
             if args.quick else
             dict(inflate=4096 * mb, comment=4096 * mb, abstract=320 * mb, title=3072 * mb, nbib_title=240 * mb))
    b = drills.bomb_drill(work, **sizes)
    names = {"gzip-whitespace": "inflate", "comment": "comment", "abstract": "abstract", "title": "title",
             "nbib-title": "nbib_title"}
    _line("bombs", "; ".join(f"{k} ({sizes[names[k]] // mb:,} MB, file {v['file_mb']:g} MB): exit {v['exit']}, "
                             f"peak {v['peak_rss_mb']} MB, {v['seconds']:.1f} s" for k, v in b.items())
          + " (limit 200 MB)" + ("" if all(v["ok"] for v in b.values()) else
                                 f"; FAILED {sorted(k for k, v in b.items() if not v['ok'])}"), t)


def mounts(work: Path, args) -> None:
    if not drills.can_unshare():
        print("mounts       skipped: no mount namespace here (unshare --mount)")
        return
    t = time.monotonic()
    m = drills.mount_drill(work)
    bad = sorted(k for k, v in m.items() if not v["ok"])
    ro = m["read-only-mount"]
    _line("mounts", f"read-only mount: {ro['reads_ok']}/5 reading commands ok, writing one and doctor say why; "
          f"read-only file: doctor FAIL; disk full during export: old handout kept, no file left; "
          f"disk full during fetch: {(m['full-disk-fetch']['line'] or ['-'])[0][:60]}...; doctor FAIL disk"
          + (f"; FAILED {bad}" if bad else f" ({len(m)}/{len(m)} ok)"), t)


def tracebacks(work: Path, args) -> None:
    t = time.monotonic()
    r = drills.traceback_drill(work, moments_ms=range(0, 55, 5), repeats=3 if args.quick else 10)
    full_ok = sum(v["ok"] for v in r["dev_full"].values())
    sig = r["sigint"]
    odd = "; ".join(f"{k}: exit {v['exit']} in {v['seconds']} s, peak {v['peak_mb']} MB" for k, v in r["queries"].items())
    _line("tracebacks", f"> /dev/full: {full_ok}/{len(r['dev_full'])} commands one line; Ctrl-C at 0-50 ms: "
          f"{sig['runs']} runs of {sig['command']}, {sig['in_evidence_code']} tracebacks in evidence's code "
          f"({sig['tracebacks'] - sig['in_evidence_code']} inside Python's own start-up); FIFO and /dev/zero "
          f"condition files: {odd}", t)


def secrets(work: Path, args) -> None:
    t = time.monotonic()
    s = drills.secrets_drill(work)
    _line("secrets", f"{s['runs']} runs of {len(s['commands'])} commands with -vv "
          f"({sum(1 for v in s['codes'].values() if v)} failing): key sent in {s['key_sent']}/{s['requests']} "
          f"requests (0 in URLs: {s['key_in_url'] == 0}), found in any spelling in {len(s['leaks'])} "
          f"outputs/files of {s['files_searched']} files searched", t)


def doctor(work: Path, args) -> None:
    t = time.monotonic()
    d = drills.doctor_drill(work)
    _line("doctor", ", ".join(f"{k} -> {v.exit_code}" + ("" if v.exception is None or isinstance(v.exception, SystemExit)
                                                         else f" ({type(v.exception).__name__})")
                              for k, v in d.items()), t)


DRILLS = {
    "crash": crash, "concurrent": concurrent, "first-open": first_open, "network": network,
    "fail-fast": fail_fast, "bad-input": bad_input, "import": import_, "huge": huge, "bombs": bombs,
    "mounts": mounts, "tracebacks": tracebacks, "secrets": secrets, "doctor": doctor,
}


if __name__ == "__main__":
    main()
