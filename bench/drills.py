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
    """Run every drill in a scratch folder and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, help="seed for the crash drill's kill moments")
    parser.add_argument("--quick", action="store_true", help="CI sizes instead of full sizes")
    args = parser.parse_args()
    records, kills = (2000, 20) if args.quick else (3000, 20)
    with tempfile.TemporaryDirectory(prefix="evidence-drills-") as scratch:
        work = Path(scratch)

        t = time.monotonic()
        c = drills.crash_drill(work / "crash", records=records, kills=kills, seed=args.seed)
        _line("crash", f"{c['recovered']}/{c['kills']} kills recovered ({c['killed_mid_run']} mid-run, "
              f"{c['exited_before_kill']} after exit; seed {c['seed']}), {c['records']} records, "
              f"uninterrupted {c['uninterrupted_s']:.1f} s, {c['lost']} rows lost, {c['duplicates']} duplicates, "
              f"integrity {'ok' if not c['integrity_failures'] else str(c['integrity_failures']) + ' FAILED'}", t)

        for same in (True, False):
            t = time.monotonic()
            f = drills.concurrency_drill(work / f"conc-{same}", records=2000 if not args.quick else 1000,
                                         same_condition=same)
            _line("concurrent", f"2 fetches, {'same condition' if same else 'two conditions'}: exits {f['exit_codes']}, "
                  f"'locked' {f['locked_messages']}, {f['records']}/{f['expected_records']} records, "
                  f"{f['duplicates']} duplicates, {f['requests']} requests, peak {f['peak_per_s']}/s (limit 3), "
                  f"429s {f['http_429']}", t)
        t = time.monotonic()
        r = drills.first_open_race(work / "race", pairs=20 if not args.quick else 5)
        _line("first-open", f"{r['pairs'] - r['failed_pairs']}/{r['pairs']} pairs creating one new database at once "
              f"succeeded" + (f" (e.g. {r['errors'][0][0][:90]})" if r["errors"] else ""), t)

        t = time.monotonic()
        modes = list(drills.FAULTS)
        ok = []
        for mode in modes:
            n = drills.network_drill(work / f"net-{mode}", mode)
            if (n["transient_exit"] == 0 and n["transient_complete"] and n["persistent_exit"] == 1
                    and n["one_error_line"] and not n["traceback"] and n["resume_exit"] == 0
                    and n["resume_complete"] and n["resume_fetched"] == 15):
                ok.append(mode)
        _line("network", f"{len(ok)}/{len(modes)} fault modes: once -> complete; past retries -> exit 1, one "
              f"Error: line, no traceback; rerun fetched only the missing 15/20"
              + (f"; FAILED {sorted(set(modes) - set(ok))}" if len(ok) < len(modes) else ""), t)

        for name, drill in (("bad input", drills.bad_input_cases), ("import", drills.import_drill)):
            t = time.monotonic()
            res = drill(work / name.replace(" ", "-"))
            bad = sorted(k for k, v in res.items() if not v["ok"])
            _line(name, f"{len(res) - len(bad)}/{len(res)} cases: one Error: line, no traceback, data kept"
                  + (f"; FAILED {bad}" if bad else ""), t)

        t = time.monotonic()
        h = drills.huge_file_drill(work / "huge")
        _line("huge files", "; ".join(f"{k}: exit {v['exit']}, peak {v['peak_rss_mb']:.0f} MB, {v['seconds']:.1f} s"
                                      for k, v in h.items()) + " (210 MB each, limit 200 MB)", t)

        t = time.monotonic()
        s = drills.secrets_drill(work / "secrets")
        _line("secrets", f"{s['runs']} runs of {len(s['commands'])} commands with -vv "
              f"({sum(1 for v in s['codes'].values() if v)} failing): key sent in {s['key_sent']}/{s['requests']} "
              f"requests (0 in URLs: {s['key_in_url'] == 0}), found in {len(s['leaks'])} outputs/files "
              f"of {s['files_searched']} files searched", t)

        t = time.monotonic()
        d = drills.doctor_drill(work / "doctor")
        _line("doctor", ", ".join(f"{k} -> {v.exit_code}" + ("" if v.exception is None or isinstance(v.exception, SystemExit)
                                                             else f" ({type(v.exception).__name__})")
                                  for k, v in d.items()), t)


if __name__ == "__main__":
    main()
