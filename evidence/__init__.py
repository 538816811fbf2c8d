"""Gather PubMed research on massage therapy for one condition, grade it, export a handout."""

# _signal (the C module), not signal: signal imports enum, which takes milliseconds in which
# a Ctrl-C would still raise inside an import. os and sys are loaded already.
import _signal
import os as _os
import sys as _sys

__version__ = "0.1.0"


def _interrupted_while_loading(signum, frame):  # pragma: no cover - timing dependent
    _os.write(2, b"Interrupted.\n")
    _os._exit(130)


# Run as the `evidence` command, a Ctrl-C while Python loads the program (the first tens of
# milliseconds) exits quietly with 130 instead of a traceback from inside an import;
# evidence.__main__ restores Python's own handler once the command can clean up after itself.
# Imported as a library, the package leaves signals alone.
#
# The test is slicing and comparing only, no call: Python acts on a Ctrl-C at a call, and one
# that came in before the handler is set would raise here (os.path.basename, a Python function,
# once did in tests/test_drills.py). From the signal() call on, a pending one finds the handler.
_command = _sys.argv[0] if _sys.argv else ""
if _command[-8:] == "evidence" and _command[-9:-8] in ("", "/", _os.sep):
    _signal.signal(_signal.SIGINT, _interrupted_while_loading)
del _command
