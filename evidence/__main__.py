"""`python -m evidence` and the `evidence` console script: one entry point.

The command loads under a quiet Ctrl-C handler (see evidence/__init__.py), so a Ctrl-C in the
first tens of milliseconds ends with exit code 130 and one line, not a traceback; Python's
own handler comes back before the command runs, so an interrupted fetch records itself.
"""

import signal
import sys


def main() -> None:
    """Load the command and run it."""
    try:
        from evidence.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    run()


if __name__ == "__main__":
    main()
