"""Every test runs with its own environment: no real database, no user's key, no NCBI."""

from __future__ import annotations

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
EUTILS = FIXTURES / "eutils"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path, monkeypatch):
    """Point every setting at the test's own folder, so no test reads or writes a user's data."""
    for name in ("NCBI_API_KEY", "EVIDENCE_QUERIES", "EVIDENCE_EUTILS_URL"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("EVIDENCE_DB", str(tmp_path / "evidence.db"))
    monkeypatch.setenv("NCBI_EMAIL", "tests@example.org")
    # An unreachable URL: a test that forgets to start a loopback server fails fast.
    monkeypatch.setenv("EVIDENCE_EUTILS_URL", "http://127.0.0.1:9/entrez/eutils/")
    yield


@pytest.fixture
def eutils_fixture():
    """Read one of the real E-utilities fixtures as bytes."""

    def read(name: str) -> bytes:
        return (EUTILS / name).read_bytes()

    return read
