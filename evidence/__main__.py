"""`python -m evidence` and the `evidence` console script: one entry point.

It imports the command inside a try, so a Ctrl-C while Python loads the program (the first
tens of milliseconds) ends with exit code 130 and one line, not a traceback.
"""

import sys


def main() -> None:
    """Load the command and run it."""
    try:
        from evidence.cli import main as run
    except KeyboardInterrupt:
        sys.stderr.write("Interrupted.\n")
        sys.exit(130)
    run()


if __name__ == "__main__":
    main()
