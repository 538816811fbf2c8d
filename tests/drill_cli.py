"""Run the real `evidence` command in its own process, so a drill can SIGKILL it for real.

    EVIDENCE_DRILL_CLIENT='{"rate": 20, "backoff": 0.01}' python tests/drill_cli.py fetch SLUG

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


def main() -> None:
    """Apply EVIDENCE_DRILL_CLIENT, then hand over to `evidence.cli.main()`."""
    raw = os.environ.get("EVIDENCE_DRILL_CLIENT")
    if raw:
        options = json.loads(raw)
        if isinstance(options.get("timeout"), list):
            options["timeout"] = tuple(options["timeout"])
        cli.CLIENT_OPTIONS = options
    cli.main()


if __name__ == "__main__":
    main()
