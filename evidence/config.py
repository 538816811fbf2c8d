"""Settings, resolved in one place: command-line option > environment variable > default.

Nothing here touches the network or the database; reading a setting never has side effects.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from evidence.errors import ConfigError

NCBI_EUTILS_URL = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
TOOL_NAME = "evidence"
# NLM adds MeSH terms, publication types and retraction links after a record first appears;
# records fetched longer ago than this are stale, and `fetch --refresh` fetches them again.
REFRESH_AFTER_DAYS = 30

# The folder that holds `evidence/` when run from a source checkout (pip install -e .).
CHECKOUT = Path(__file__).resolve().parent.parent

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _checkout_data_dir() -> Path | None:
    if (CHECKOUT / "setup.cfg").is_file() and (CHECKOUT / "data").is_dir():
        return CHECKOUT / "data"
    return None


def default_db_path() -> Path:
    """`data/evidence.db` in a source checkout, else the user's data folder (XDG)."""
    data = _checkout_data_dir()
    if data is not None:
        return data / "evidence.db"
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "evidence" / "evidence.db"


def db_path(option: str | None = None) -> Path:
    """The database file: --db, then EVIDENCE_DB, then `default_db_path()`."""
    value = option or os.environ.get("EVIDENCE_DB")
    return Path(value).expanduser() if value else default_db_path()


def builtin_queries_dir() -> Path:
    """The `queries/` folder shipped with the program.

    In a checkout (pip install -e .) it is the repository's `queries/`; a regular install
    puts the same files under `<prefix>/share/evidence/queries` (setup.cfg, data_files).
    """
    here = CHECKOUT / "queries"
    if here.is_dir():
        return here
    return Path(sys.prefix) / "share" / "evidence" / "queries"


def pace_file() -> Path:
    """The file through which every `evidence` process of this user shares NCBI's rate limit."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "evidence" / "ncbi-pace"


def extra_queries_dir(option: str | None = None) -> Path | None:
    """A user's folder of extra condition files (EVIDENCE_QUERIES), read before the built-in ones."""
    value = option or os.environ.get("EVIDENCE_QUERIES")
    return Path(value).expanduser() if value else None


def eutils_url(option: str | None = None) -> str:
    """Base URL of the E-utilities: NCBI's, a mirror, or a test server (EVIDENCE_EUTILS_URL)."""
    value = option or os.environ.get("EVIDENCE_EUTILS_URL") or NCBI_EUTILS_URL
    if not value.startswith(("http://", "https://")):
        raise ConfigError(
            f"EVIDENCE_EUTILS_URL must start with http:// or https://, got {value!r}."
        )
    return value if value.endswith("/") else value + "/"


def email(option: str | None = None, required: bool = True) -> str | None:
    """The email NCBI asks every client to send: --email, then NCBI_EMAIL."""
    value = (option or os.environ.get("NCBI_EMAIL") or "").strip()
    if not value:
        if required:
            raise ConfigError("No email for NCBI: pass --email or set NCBI_EMAIL.")
        return None
    if not _EMAIL.match(value):
        source = "--email" if option else "NCBI_EMAIL"
        raise ConfigError(f"{source} does not look like an email address: {value!r}.")
    return value


def api_key(option: str | None = None) -> str | None:
    """The user's own NCBI API key (NCBI_API_KEY); raises the rate from 3 to 10 requests/s."""
    value = (option or os.environ.get("NCBI_API_KEY") or "").strip()
    return value or None


@dataclass(frozen=True)
class NcbiSettings:
    """What the E-utilities client needs. `repr` hides the key so it never reaches a log."""

    base_url: str
    email: str
    api_key: str | None = None
    tool: str = TOOL_NAME

    def __repr__(self) -> str:  # never show the key
        key = "set" if self.api_key else "unset"
        return f"NcbiSettings(base_url={self.base_url!r}, email={self.email!r}, api_key={key})"


def ncbi_settings(
    url: str | None = None, email_opt: str | None = None, key: str | None = None
) -> NcbiSettings:
    """Resolve everything the E-utilities client needs, or say what is missing."""
    return NcbiSettings(base_url=eutils_url(url), email=email(email_opt), api_key=api_key(key))
