"""Issue 13: what a hostile tester broke, one test per case (the drills that need a second
process, a mount or a server of their own are in tests/test_drills.py).

Every synthetic record here says SYNTHETIC in its title and has a PMID of 99000000 or more.
"""

from __future__ import annotations

import configparser
import errno
import json
import os
import re
import socket
import sqlite3
import stat
import threading
import time
from pathlib import Path

import pytest

from evidence import cli as cli_module
from evidence import entrez, guards, store as store_module
from evidence.entrez import Client
from evidence.errors import DISTRIBUTION, EntrezError
from tests.eutils_stub import EFETCH_HEAD, EFETCH_TAIL, EutilsStub, synthetic_articles
from tests.test_entrez import FakeTime
from tests.test_drills import (
    SLUG, TERM, _seed_db, assert_clean_failure, invoke, write_conditions,
)

ROOT = Path(__file__).resolve().parent.parent
EMAIL = "tests@example.org"
KEY = "SYNTH+KEY/7f3a=9c2e 5b1d"  # a key with characters that every encoding spells differently


def _env(work: Path, db: Path | None = None, **extra) -> dict:
    return {"EVIDENCE_QUERIES": str(work / "queries"), "EVIDENCE_DB": str(db or work / "evidence.db"), **extra}


# -- failing fast where retrying cannot help ------------------------------------------------


def test_a_name_that_does_not_resolve_fails_at_once_in_plain_words():
    client = Client("http://no-such-host.invalid/entrez/eutils/", EMAIL, rate=1000, backoff=0.01)
    started = time.monotonic()
    with pytest.raises(EntrezError) as failed:
        client.esearch("massage")
    assert str(failed.value) == (
        "Cannot reach no-such-host.invalid: the name does not resolve; check your connection "
        "or EVIDENCE_EUTILS_URL."
    )
    assert client.requests_sent == 1
    assert time.monotonic() - started < 5


@pytest.fixture
def tls_server(tmp_path):
    """A TLS server on 127.0.0.1 with a self-signed certificate, which no client trusts."""
    from tests.test_drills import tls_server as serving

    with serving(tmp_path) as url:
        yield url


def test_an_untrusted_certificate_fails_at_once(tls_server):
    client = Client(tls_server, EMAIL, rate=1000, backoff=0.01, timeout=(2, 2))
    with pytest.raises(EntrezError, match=r"^Cannot reach 127\.0\.0\.1 securely: its certificate is not trusted"):
        client.esearch("massage")
    assert client.requests_sent == 1


def test_https_to_a_plain_http_server_fails_at_once():
    with EutilsStub() as stub:
        client = Client(stub.url.replace("http://", "https://"), EMAIL, rate=1000, backoff=0.01)
        with pytest.raises(EntrezError, match=r"^Cannot reach 127\.0\.0\.1 securely: the TLS connection failed"):
            client.esearch("massage")
        assert client.requests_sent == 1


def test_a_failing_run_with_default_retries_ends_well_inside_a_minute():
    """Six retries waiting 1+2+4+8+16+32 s took 63 s of waits alone; the deadline cuts them."""
    fake = FakeTime()
    with EutilsStub() as stub:
        client = Client(stub.url, EMAIL, rate=1000, sleep=fake.sleep, clock=fake.clock)
        stub.faults += [("esearch", "status", 503)] * 10
        with pytest.raises(EntrezError, match="failed after"):
            client.esearch("massage")
    assert sum(fake.sleeps) <= entrez.DEFAULT_DEADLINE < 60
    assert len(fake.sleeps) >= 4  # backoff still rides out short outages


def test_a_connection_that_never_answers_ends_at_the_deadline():
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts (the kernel does), never answers
    try:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/entrez/eutils/"
        client = Client(url, EMAIL, rate=1000, backoff=0.2, timeout=(1.0, 1.5), deadline=2.5)
        started = time.monotonic()
        with pytest.raises(EntrezError, match="timeout"):
            client.esearch("massage")
        assert time.monotonic() - started < 4.5
    finally:
        silent.close()


def test_a_failed_fetch_is_recorded_and_shown_by_status(tmp_path):
    write_conditions(tmp_path / "queries", **{SLUG: TERM})
    env = _env(tmp_path, EVIDENCE_EUTILS_URL="http://no-such-host.invalid/entrez/eutils/")
    assert_clean_failure(invoke(["fetch", SLUG], env), says="the name does not resolve")
    shown = invoke(["status"], env)
    assert shown.exit_code == 0, shown.output
    assert f"{SLUG}: no records yet" in shown.stdout
    assert re.search(r"last run \S+ fetch error", shown.stdout), shown.stdout
    assert "error: Cannot reach no-such-host.invalid: the name does not resolve" in shown.stdout
    data = json.loads(invoke(["status", "--json"], env).stdout)
    assert data["conditions"][0]["last_run"]["outcome"] == "error"


# -- writes that destroy --------------------------------------------------------------------


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    target = tmp_path / "handout.pdf"
    target.write_bytes(b"the previous handout")
    target.chmod(0o640)

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(guards.os, "fsync", full_disk)
    with pytest.raises(OSError):
        guards.atomic_write(target, b"x" * 100_000)
    assert target.read_bytes() == b"the previous handout"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["handout.pdf"]  # no temporary left
    monkeypatch.undo()
    guards.atomic_write(target, b"the new handout")
    assert target.read_bytes() == b"the new handout"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640  # the file keeps its mode


def test_atomic_write_goes_through_a_symlink_and_never_replaces_a_device(tmp_path):
    real = tmp_path / "real.ris"
    real.write_bytes(b"old")
    link = tmp_path / "link.ris"
    link.symlink_to(real)
    guards.atomic_write(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    guards.atomic_write("/dev/null", b"into the void")
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)


def test_a_failed_export_leaves_the_previous_handout_and_no_empty_file(tmp_path, monkeypatch):
    db = _seed_db(tmp_path)
    env = _env(tmp_path, db)
    target = tmp_path / "handout.md"
    assert invoke(["export", SLUG, "--format", "md", "-o", str(target)], env).exit_code == 0
    before = target.read_bytes()

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(guards.os, "fsync", full_disk)
    line = assert_clean_failure(invoke(["export", SLUG, "--format", "ris", "-o", str(target), "--force"], env),
                                says="No space left on device")
    assert "unchanged" in line
    assert target.read_bytes() == before
    fresh = tmp_path / "fresh.ris"
    assert_clean_failure(invoke(["export", SLUG, "--format", "ris", "-o", str(fresh)], env))
    assert not fresh.exists()  # no 0-byte file that the next try would refuse to overwrite
    monkeypatch.undo()
    assert invoke(["export", SLUG, "--format", "ris", "-o", str(fresh)], env).exit_code == 0


# -- curated work removed without a word -------------------------------------------------------


def _deletion_file(path: Path, pmids: list[str]) -> Path:
    path.write_bytes(b'<?xml version="1.0"?>\n<PubmedArticleSet>\n<DeleteCitation>\n'
                     + b"".join(b'<PMID Version="1">' + p.encode() + b"</PMID>\n" for p in pmids)
                     + b"</DeleteCitation>\n</PubmedArticleSet>\n")
    return path


def test_a_deletion_that_touches_curated_work_says_so_and_keeps_it(tmp_path):
    db = _seed_db(tmp_path)
    env = _env(tmp_path, db)
    a, b, c = sorted(synthetic_articles(3))
    assert invoke(["include", SLUG, a, "--reason", "drill"], env).exit_code == 0
    assert invoke(["note", a, "SYNTHETIC note on a"], env).exit_code == 0
    assert invoke(["note", b, "SYNTHETIC note on b"], env).exit_code == 0
    result = invoke(["import", str(_deletion_file(tmp_path / "deleted.xml", [a, b, c]))], env)
    assert result.exit_code == 0, result.output
    warnings = [l for l in result.stderr.splitlines() if l.startswith("Warning: NLM deleted")]
    assert len(warnings) == 2, result.stderr
    assert f"PMID {a}" in warnings[0] and f"included it for {SLUG} and wrote a note on it" in warnings[0]
    assert f"PMID {b}" in warnings[1] and "wrote a note on it" in warnings[1]
    assert "withdrawn from PubMed" in warnings[0]
    # The decision and the note stay, with their record; the untouched record goes.
    decisions = json.loads(invoke(["decisions", SLUG, "--json"], env).stdout)
    assert [(d["pmid"], d["decision"]) for d in decisions] == [(a, "include")]
    listing = invoke(["list", SLUG], env).stdout
    assert re.search(rf"{a} .*\[withdrawn from PubMed\]", listing), listing
    assert c not in listing
    shown = invoke(["show", a], env).stdout
    assert shown.startswith("WITHDRAWN FROM PUBMED") and "SYNTHETIC note on a" in shown
    # The handout keeps the person's choice (no silent fall back to the rule) and says why.
    md = invoke(["export", SLUG, "--format", "md", "-o", "-"], env).stdout
    assert a in md and "Withdrawn from PubMed." in md
    assert "Wrote" not in md
    exported = invoke(["export", SLUG, "--format", "ris", "-o", str(tmp_path / "x.ris")], env)
    assert "curated selection" in exported.stderr
    # With no decision left, the rule never picks a withdrawn study (b has only a note).
    assert invoke(["undo", SLUG, "--all"], env).exit_code == 0
    ruled = invoke(["export", SLUG, "--format", "md", "-o", "-"], env)
    assert ruled.exit_code == 1 and "No studies to export" in ruled.stderr, ruled.output


def test_a_refetch_does_not_download_a_deleted_pmid(tmp_path):
    write_conditions(tmp_path / "queries", **{SLUG: TERM})
    articles = synthetic_articles(4)
    pmids = sorted(articles)
    with EutilsStub(articles) as stub:
        stub.add_search(TERM, pmids)
        env = _env(tmp_path, EVIDENCE_EUTILS_URL=stub.url)
        assert invoke(["import", str(_deletion_file(tmp_path / "d.xml", [pmids[0]]))], env).exit_code == 0
        result = invoke(["fetch", SLUG], env)
        assert result.exit_code == 0, result.output
        fetched = [i for r in stub.requests_to("efetch") for i in r["params"]["id"].split(",")]
    assert pmids[0] not in fetched and len(fetched) == 3
    assert "not fetching 1 PMID that NLM deleted from PubMed" in result.stderr
    assert pmids[0] in result.stderr


# -- the secret in other spellings -------------------------------------------------------------


@pytest.mark.parametrize("spelling", [
    KEY,
    "SYNTH%2BKEY%2F7f3a%3D9c2e%205b1d",
    "SYNTH%2bKEY%2f7f3a%3d9c2e%205b1d",
    "SYNTH%2BKEY%2F7f3a%3D9c2e+5b1d",
    "SYNTH%2BKEY/7f3a%3D9c2e%205b1d",
], ids=["raw", "percent", "percent-lower", "form", "path"])
def test_redact_removes_every_spelling_of_the_key(spelling):
    text = f"GET /esearch.fcgi?db=pubmed&api_key={spelling}&term=x failed; echo: {spelling}."
    cleaned = guards.redact(text, KEY)
    assert "SYNTH" not in cleaned, cleaned
    assert cleaned.startswith("GET /esearch.fcgi?db=pubmed&api_key=***&term=x failed")


def test_a_one_letter_key_does_not_garble_messages():
    message = "database is a file; api_key=a was refused"
    assert guards.redact(message, "a") == "database is a file; api_key=*** was refused"
    long_key = "0123456789abcdef0123456789abcdef0123"
    assert guards.redact(f"x{long_key}y and {long_key}.", long_key) == f"x{long_key}y and ***."


def test_an_error_that_echoes_the_key_url_encoded_never_shows_it(tmp_path):
    write_conditions(tmp_path / "queries", **{SLUG: TERM})
    from urllib.parse import quote, quote_plus

    with EutilsStub(synthetic_articles(1)) as stub:
        stub.add_search(TERM, [])
        body = (f"<eSearchResult><ERROR>Invalid request /esearch.fcgi?api_key={quote(KEY, safe='')}"
                f"&amp;key2={quote_plus(KEY)}</ERROR></eSearchResult>")
        stub.faults += [("esearch", "status", 400, {}, body), ("esearch", "status", 401, {}, body)]
        env = _env(tmp_path, EVIDENCE_EUTILS_URL=stub.url, NCBI_API_KEY=KEY)
        failed = invoke(["fetch", SLUG], env)
        doctor = invoke(["doctor"], env)
    assert_clean_failure(failed, says="Invalid request")
    for result in (failed, doctor):
        assert "SYNTH" not in result.output, result.output
    assert "Invalid request" in doctor.stdout


# -- tracebacks -------------------------------------------------------------------------------


def test_a_251_character_condition_name_is_a_usage_error(tmp_path):
    write_conditions(tmp_path / "queries", **{SLUG: TERM})
    long = "a" * 251
    for args in (["list", long], ["fetch", long], ["include", long, "99000000"], ["export", long, "--format", "md"]):
        assert_clean_failure(invoke(args, _env(tmp_path)), exit_code=2)
    line = assert_clean_failure(invoke(["query", long], _env(tmp_path)), exit_code=2)
    assert "251 characters long; a condition name has at most 100" in line


def test_a_300_character_output_name_is_one_line(tmp_path):
    db = _seed_db(tmp_path)
    target = tmp_path / ("h" * 300 + ".md")
    assert_clean_failure(invoke(["export", SLUG, "--format", "md", "-o", str(target)], _env(tmp_path, db)),
                         says="File name too long")


@pytest.mark.parametrize("pmid", ["²", "٣٤", "0123", "0", "1234567890", "12 3", "-5"])
def test_show_refuses_what_is_not_a_pmid(tmp_path, pmid):
    db = _seed_db(tmp_path)
    assert_clean_failure(invoke(["show", pmid], _env(tmp_path, db)), exit_code=2, says="not a PMID")


@pytest.mark.parametrize("days", ["nan", "inf", "1e10", "-1"])
def test_max_age_out_of_range_is_refused_before_any_run_starts(tmp_path, days):
    db = _seed_db(tmp_path)
    assert_clean_failure(invoke(["fetch", SLUG, "--refresh", "--max-age", days], _env(tmp_path, db)), exit_code=2)
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM runs WHERE outcome = 'running'").fetchone()[0] == 0
    finally:
        conn.close()


def test_a_run_that_fails_in_an_unexpected_way_is_not_left_running(tmp_path, monkeypatch):
    db = _seed_db(tmp_path)
    from evidence import pipeline

    class Broken(Exception):
        pass

    def broken(*args, **kwargs):
        raise Broken("SYNTHETIC failure")

    with EutilsStub(synthetic_articles(3)) as stub:
        stub.add_search(TERM, sorted(synthetic_articles(3)))
        monkeypatch.setattr(store_module.Store, "stale_pmids", broken)
        store = store_module.Store(db)
        client = Client(stub.url, EMAIL, rate=1000)
        condition = cli_module.get_condition(SLUG, tmp_path / "queries")
        with pytest.raises(Broken):
            pipeline.fetch_condition(store, client, condition, refresh=True)
    assert store.runs(SLUG, limit=1)[0]["outcome"] == "error"


@pytest.mark.parametrize("args", [
    ["list", SLUG, "--since", str(2**64)], ["list", SLUG, "--limit", str(2**64)],
    ["search", "massage", "--limit", str(2**64)], ["export", SLUG, "--format", "md", "--max", str(2**64)],
])
def test_numbers_beyond_64_bits_are_usage_errors(tmp_path, args):
    db = _seed_db(tmp_path)
    assert_clean_failure(invoke(args, _env(tmp_path, db)), exit_code=2)


def test_a_condition_file_nested_100000_deep_is_one_line(tmp_path):
    folder = write_conditions(tmp_path / "queries", **{SLUG: TERM})
    (folder / "deep.toml").write_text('title = "SYNTHETIC deep"\nterm = "x"\nmesh = ' + "[" * 100_000 + "]" * 100_000 + "\n")
    assert_clean_failure(invoke(["query", "deep"], _env(tmp_path)), says="deep.toml: nested too deeply")


# -- databases ------------------------------------------------------------------------------


def _foreign_db(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)")
    conn.execute("INSERT INTO accounts (owner) VALUES ('SYNTHETIC')")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()
    return path


def test_another_programs_sqlite_file_at_user_version_1_is_named_and_left_alone(tmp_path):
    write_conditions(tmp_path / "queries", **{SLUG: TERM})
    foreign = _foreign_db(tmp_path / "other.db")
    before = foreign.read_bytes()
    env = _env(tmp_path, foreign)
    for args in (["list", SLUG], ["status"], ["include", SLUG, "99000000"]):
        assert_clean_failure(invoke(args, env), says="SQLite database of another program")
    doctor = invoke(["doctor", "--offline"], env)
    assert doctor.exit_code == 1 and "Traceback" not in doctor.output
    assert re.search(r"^\[FAIL\] database: .*another program", doctor.stdout, re.M), doctor.stdout
    assert foreign.read_bytes() == before


def test_new_and_migrated_databases_carry_the_application_id(tmp_path):
    db = _seed_db(tmp_path)
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == store_module.APPLICATION_ID
    # A database written before the id existed: schema 1, application id 0.
    conn.execute("PRAGMA application_id = 0")
    conn.execute("PRAGMA user_version = 1")
    conn.close()
    env = _env(tmp_path, db)
    assert invoke(["list", SLUG], env).exit_code == 0  # read as it is
    assert invoke(["include", SLUG, sorted(synthetic_articles(3))[0]], env).exit_code == 0
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA application_id").fetchone()[0] == store_module.APPLICATION_ID
    assert conn.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION
    conn.close()


def test_a_locked_database_says_it_is_waiting_and_doctor_reports_the_lock(tmp_path, monkeypatch):
    db = _seed_db(tmp_path)
    env = _env(tmp_path, db)
    pmid = sorted(synthetic_articles(3))[0]
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 1500)
    monkeypatch.setattr(store_module, "LOCK_NOTICE_MS", 300)
    holder = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    try:
        doctor = invoke(["doctor", "--offline"], env)
        assert re.search(r"^\[warn\] writable: .*locked by another program", doctor.stdout, re.M), doctor.stdout
        started = time.monotonic()
        failed = invoke(["include", SLUG, pmid], env)
        assert time.monotonic() - started < 5
        assert "Waiting for the database" in failed.stderr
        assert_clean_failure(failed, says="locked")
        # Released while we wait: the command goes on.
        threading.Timer(0.6, holder.execute, ["ROLLBACK"]).start()
        done = invoke(["include", SLUG, pmid], env)
        assert done.exit_code == 0, done.output
        assert done.stderr.count("Waiting for the database") == 1
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()


# -- smaller ones -----------------------------------------------------------------------------


def test_summary_json_with_no_data_prints_json(tmp_path):
    write_conditions(tmp_path / "queries", **{SLUG: TERM, "drill-empty": "nothing"})
    db = _seed_db(tmp_path)
    result = invoke(["summary", "drill-empty", "--json"], _env(tmp_path, db))
    assert result.exit_code == 0
    assert json.loads(result.stdout) == {}


def test_search_names_an_unknown_condition(tmp_path):
    db = _seed_db(tmp_path)
    assert_clean_failure(invoke(["search", "SYNTHETIC", "--condition", "bogus"], _env(tmp_path, db)),
                         says="Unknown condition 'bogus'")


def test_a_byte_order_mark_is_accepted_in_condition_and_nbib_files(tmp_path):
    folder = write_conditions(tmp_path / "queries", **{SLUG: TERM})
    (folder / "bom.toml").write_bytes(b'\xef\xbb\xbftitle = "SYNTHETIC with BOM"\nterm = "massage"\n')
    assert invoke(["query", "bom", "--term-only"], _env(tmp_path)).stdout.strip() == "massage"
    nbib = tmp_path / "bom.nbib"
    nbib.write_bytes(b"\xef\xbb\xbfPMID- 99000001\nTI  - SYNTHETIC record with a byte-order mark.\n\n")
    result = invoke(["import", str(nbib)], _env(tmp_path))
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC record with a byte-order mark" in invoke(["show", "99000001"], _env(tmp_path)).stdout


ESCAPES = "\x1b]0;owned\x07\x1b[2J\x1b[31m\x9b1m\x07\x08"


def test_terminal_escape_sequences_never_reach_the_terminal_or_the_markdown(tmp_path):
    write_conditions(tmp_path / "queries", **{SLUG: TERM})
    nbib = tmp_path / "escapes.nbib"
    nbib.write_text(f"PMID- 99000001\nTI  - SYNTHETIC {ESCAPES}escape title.\nAB  - SYNTHETIC{ESCAPES} "
                    "abstract.\nPT  - Randomized Controlled Trial\nDP  - 2020\n\n", encoding="utf-8")
    xml = tmp_path / "escapes.xml"
    xml.write_bytes(EFETCH_HEAD + synthetic_articles(1, start=99_000_002)["99000002"].replace(
        b"SYNTHETIC record", b"SYNTHETIC &#155;31m record") + EFETCH_TAIL)
    env = _env(tmp_path)
    for path in (nbib, xml):
        assert invoke(["import", str(path), "--condition", SLUG], env).exit_code == 0
    outputs = [invoke(args, env).output for args in (
        ["show", "99000001"], ["show", "99000002"], ["list", SLUG], ["list", SLUG, "--json"],
        ["search", "SYNTHETIC"], ["export", SLUG, "--format", "md", "-o", "-"],
        ["export", SLUG, "--format", "ris", "-o", "-"])]
    assert "escape title" in outputs[0] and "99000002" in outputs[2]
    for text in outputs:
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", text), repr(text[:400])


def test_a_large_pdf_export_says_it_is_working(tmp_path, monkeypatch):
    db = _seed_db(tmp_path)
    monkeypatch.setattr(cli_module, "PDF_PROGRESS_MIN", 3)
    result = invoke(["export", SLUG, "--format", "pdf", "-o", str(tmp_path / "h.pdf")], _env(tmp_path, db))
    assert result.exit_code == 0, result.output
    lines = result.stderr.splitlines()
    assert lines[0] == "Rendering a PDF of 3 studies; this can take a minute..."
    assert re.match(r"Done in \d+\.\d s\.", lines[1]) and lines[2].startswith("Wrote")


def test_include_the_same_pmid_twice_logs_once_and_says_1_study(tmp_path):
    db = _seed_db(tmp_path)
    pmid = sorted(synthetic_articles(3))[0]
    result = invoke(["include", SLUG, pmid, pmid, "--reason", "drill"], _env(tmp_path, db))
    assert result.stderr.strip() == f"{SLUG}: included 1 study."
    history = json.loads(invoke(["decisions", SLUG, "--history", "--json"], _env(tmp_path, db)).stdout)
    assert [h["pmid"] for h in history] == [pmid]
    exported = invoke(["export", SLUG, "--format", "ris", "-o", str(tmp_path / "one.ris")], _env(tmp_path, db))
    assert "1 study (curated selection)" in exported.stderr and "1 studies" not in exported.stderr


def test_undo_refuses_what_is_not_a_pmid(tmp_path):
    db = _seed_db(tmp_path)
    assert_clean_failure(invoke(["undo", SLUG, "abc"], _env(tmp_path, db)), exit_code=2, says="not a PMID")


@pytest.mark.parametrize("bad", ["0123", "0", "²"])
def test_invalid_pmids_are_not_imported(tmp_path, bad):
    write_conditions(tmp_path / "queries", **{SLUG: TERM})
    xml = tmp_path / "bad.xml"
    xml.write_bytes(EFETCH_HEAD + synthetic_articles(1)["99000000"].replace(
        b">99000000</PMID>", f">{bad}</PMID>".encode(), 1) + EFETCH_TAIL)
    nbib = tmp_path / "bad.nbib"
    nbib.write_text(f"PMID- {bad}\nTI  - SYNTHETIC bad PMID.\n\n", encoding="utf-8")
    for path in (xml, nbib):
        assert_clean_failure(invoke(["import", str(path)], _env(tmp_path)), says="not a PMID|no valid PMID")
    conn = sqlite3.connect(tmp_path / "evidence.db")
    try:
        assert conn.execute("SELECT count(*) FROM records").fetchone()[0] == 0
    finally:
        conn.close()


# -- the name -------------------------------------------------------------------------------


def test_every_upgrade_hint_names_the_distribution_in_setup_cfg():
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    assert parser["metadata"]["name"] == DISTRIBUTION == "massage-evidence"
    assert parser["options.entry_points"]["console_scripts"].strip().startswith("evidence =")
    sources = "\n".join(p.read_text() for p in (ROOT / "evidence").rglob("*.py"))
    hints = re.findall(r"pip install -U [\w{}-]+", sources)
    assert hints and all(h == "pip install -U {DISTRIBUTION}" for h in hints), hints
    readme = (ROOT / "README.md").read_text()
    assert not re.search(r"pip install (-U )?evidence\b", readme)


def test_one_record_is_never_1_records(tmp_path):
    write_conditions(tmp_path / "queries", **{SLUG: TERM})
    source = tmp_path / "one.xml"
    source.write_bytes(EFETCH_HEAD + synthetic_articles(1)["99000000"] + EFETCH_TAIL)
    imported = invoke(["import", str(source), "--condition", SLUG], _env(tmp_path))
    status = invoke(["status"], _env(tmp_path))
    for text in (imported.stderr, status.stdout):
        assert not re.search(r"\b1 (records|studies)\b", text), text
    assert re.search(r"one\.xml: 1 record \(1 new", imported.stderr), imported.stderr
    assert f"{SLUG}: 1 record (" in status.stdout
