"""Small guards every layer may use: whole-file writes, bounded reads, secrets and control bytes.

- `atomic_write`: a file is replaced whole or not at all (temporary file, then rename), so a
  full disk or a crash never leaves a cut-off handout or a 0-byte file behind.
- `read_small_file`: reads a small text file (a condition file), refusing FIFOs, devices and
  files over a size limit, so a `/dev/zero` link or a named pipe can neither hang nor fill memory.
- `redact`: removes a secret (the NCBI API key) from text in every spelling a URL or a form
  gives it, without touching ordinary words.
- `printable`: drops control characters (terminal escape sequences) from text shown to a person.
- `is_pmid`: the one rule for what a PMID looks like.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from urllib.parse import quote, quote_plus

from evidence.errors import EvidenceError

# A PMID is a positive whole number written in ASCII digits without a leading zero. PubMed's
# are 8 digits today; 9 leaves room for decades and stays far inside SQLite's 64-bit integers.
_PMID = re.compile(r"[1-9][0-9]{0,8}")

# C0 controls (ESC starts every terminal escape sequence) and C1 controls (U+009B is a
# one-character CSI to some terminals), and DEL. Tab and newline are layout, and stay.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

# A secret shorter than this is redacted only where it is the value of an api_key parameter:
# as free text, a one-letter "key" would otherwise turn every "a" of every message into ***.
_MIN_FREE_TEXT_SECRET = 8
_ALNUM = "A-Za-z0-9"


def is_pmid(text: object) -> bool:
    """True for a PMID: ASCII digits, no leading zero, at most 9 digits."""
    return isinstance(text, str) and _PMID.fullmatch(text) is not None


def printable(text: str) -> str:
    """`text` without control characters (tab and newline kept): safe for a terminal or Markdown."""
    if text.isprintable():
        return text
    return _CONTROL.sub("", text)


def redact(text: str, secret: str | None, mask: str = "***") -> str:
    """`text` with `secret` replaced by `mask` in its raw, percent-encoded and form-encoded forms.

    A long secret is replaced wherever it stands as a whole token; a short one (a mistyped key)
    only where it is the value of an `api_key` or `api-key` parameter.
    """
    if not text or not secret:
        return text
    forms = _spellings(secret)
    alternatives = "|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True))
    # The parameter form: api_key=KEY, "api_key": "KEY", api-key: KEY (any case, any encoding).
    text = re.sub(
        rf"(?i)(api(?:_|-|%5F|%2D)?key[\"']?\s*(?:=|:|%3D)\s*[\"']?)(?:{alternatives})(?![{_ALNUM}])",
        lambda m: m.group(1) + mask,
        text,
    )
    if len(secret) >= _MIN_FREE_TEXT_SECRET:
        text = re.sub(rf"(?<![{_ALNUM}])(?:{alternatives})(?![{_ALNUM}])", mask, text)
    return text


def _spellings(secret: str) -> set[str]:
    forms = {secret, quote(secret, safe=""), quote_plus(secret), quote(secret), json.dumps(secret)[1:-1]}
    # Percent-encoding may use lower-case hex digits (%2f) as well as upper-case (%2F).
    forms |= {re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), f) for f in forms}
    return {f for f in forms if f}


def read_small_file(path: Path, limit: int, error: type[EvidenceError]) -> bytes:
    """The bytes of a regular file of at most `limit` bytes, else `error` saying why not.

    Opened without blocking, so a FIFO cannot hang us, and read no further than the limit, so
    a device that never ends (/dev/zero) cannot fill memory.
    """
    path = Path(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{path}: cannot read it: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise error(f"{path}: is {_kind(info.st_mode)}, not a regular file; remove it or replace it with a file")
        if info.st_size > limit:
            raise error(f"{path}: is {info.st_size:,} bytes, more than the {limit:,} such a file may hold")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            total += len(chunk)
            if total > limit:  # it grew while we read it
                raise error(f"{path}: is more than the {limit:,} bytes such a file may hold")
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{path}: cannot read it: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def atomic_write(path: Path | str, data: bytes) -> None:
    """Write `data` to `path` whole or not at all; raises OSError, leaving any old file as it was.

    The bytes go to a temporary file in the same folder, are flushed to disk, and the file is
    renamed over the target (atomic on POSIX). A symlink is written through to the file it
    names; a device or FIFO (-o /dev/stdout) is written directly, since renaming over it would
    replace the device itself.
    """
    import tempfile  # only writers pay for it, not `evidence --help`

    target = Path(os.path.realpath(path))
    try:
        old = os.stat(target)
    except FileNotFoundError:
        old = None
    if old is not None and not stat.S_ISREG(old.st_mode):
        if stat.S_ISDIR(old.st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        with open(target, "wb") as special:
            special.write(data)
        return
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=".evidence-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
            # mkstemp makes the file private (0600); give it the mode the file had, or the
            # mode a new file gets (0666 less the umask), as a plain open() would.
            os.fchmod(handle.fileno(), stat.S_IMODE(old.st_mode) if old else 0o666 & ~_umask())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise
    _sync_folder(target.parent)


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _sync_folder(folder: Path) -> None:
    """Make the rename itself durable; a folder that cannot be opened or synced is no error."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
