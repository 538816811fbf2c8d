"""Run the real `evidence` command in its own process, so a drill can SIGKILL it for real.

    EVIDENCE_DRILL_CLIENT='{"rate": 20, "backoff": 0.01}' python tests/drill_cli.py fetch SLUG

With EVIDENCE_DRILL_PEAK=FILE it writes its peak memory there when it exits.
The JSON in EVIDENCE_DRILL_CLIENT becomes `evidence.cli.CLIENT_OPTIONS` (a list "timeout"
becomes the (connect, read) tuple requests expects). Without it this is exactly `evidence`.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

# Run from a checkout without `pip install -e .`: the package next to tests/ wins.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evidence import cli  # noqa: E402


def _report_peak_memory(path: str) -> None:
    """Write this process's peak RSS, and its children's, in MB, as JSON.

    VmHWM restarts at exec, so unlike the parent's wait4() figure it does not include the
    memory of the (large) pytest process that started us. Children (the parsing process of
    a large import) are forked from us: their peak starts at our size then, so the sum is
    an upper bound of what the command held at once.
    """
    import resource

    own = 0.0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    Path(path).write_text(json.dumps({"self_mb": own, "children_mb": children}))


def main() -> None:
    """Apply EVIDENCE_DRILL_CLIENT, then hand over to `evidence.cli.main()`."""
    peak_file = os.environ.get("EVIDENCE_DRILL_PEAK")
    if peak_file:
        import atexit

        atexit.register(_report_peak_memory, peak_file)
    raw = os.environ.get("EVIDENCE_DRILL_CLIENT")
    if raw:
        options = json.loads(raw)
        if isinstance(options.get("timeout"), list):
            options["timeout"] = tuple(options["timeout"])
        cli.CLIENT_OPTIONS = options
    cli.main()


if __name__ == "__main__":
    main()
