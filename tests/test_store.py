"""The cache: schema, upserts keyed on PMID, batches, links, runs, curation, errors."""

from __future__ import annotations

import sqlite3

import pytest

from evidence.errors import NotCachedError, StoreError
from evidence import store as store_module
from evidence.store import APPLICATION_ID, SCHEMA_VERSION, Store


def synthetic(n: int, **extra) -> dict:
    """A SYNTHETIC record (PMID >= 99000000): store mechanics only, never a citation."""
    pmid = str(99000000 + n)
    record = {
        "pmid": pmid,
        "title": f"SYNTHETIC record {pmid} about massage",
        "abstract": "SYNTHETIC abstract text on shiatsu.",
        "abstract_sections": [{"label": None, "category": None, "text": "SYNTHETIC abstract text on shiatsu."}],
        "authors": [{"last_name": "Synthetic", "fore_name": "A", "initials": "A", "collective_name": None}],
        "journal": "SYNTHETIC Journal",
        "journal_abbrev": "Synth J",
        "year": 2000 + n % 20,
        "publication_types": ["Journal Article"],
        "mesh_terms": ["Massage"],
        "status": "MEDLINE",
        "retracted": False,
        "corrections": [],
        "level": 2,
        "level_label": "Randomized controlled trial",
        "flags": [],
    }
    record.update(extra)
    return record


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "cache.db")


def test_new_database_is_migrated(store):
    assert store.schema_version == SCHEMA_VERSION
    assert store.integrity_check() == "ok"
    assert {"records", "runs", "condition_records", "decisions", "notes"} <= set(store.db.table_names())


def test_upsert_counts_new_then_unchanged_then_updated(store):
    batch = [synthetic(i) for i in range(5)]
    assert store.save_records(batch, source="test", condition="c") == (5, 0)
    assert store.save_records(batch, source="test", condition="c") == (0, 0)
    changed = [synthetic(0, title="SYNTHETIC record retitled")] + batch[1:]
    assert store.save_records(changed, source="test", condition="c") == (0, 1)
    assert store.db["records"].count == 5
    assert store.db["condition_records"].count == 5
    assert store.get_record("99000000")["title"] == "SYNTHETIC record retitled"


def test_regrading_alone_is_not_an_update(store):
    store.save_records([synthetic(1)], source="test")
    assert store.save_records([synthetic(1, level=1, flags=["inferred"])], source="test") == (0, 0)


def test_record_round_trips_through_json_columns(store):
    record = synthetic(7, corrections=[{"type": "ErratumIn", "pmid": "99000099", "source": "SYNTHETIC"}],
                       retracted=True)
    store.save_records([record], source="test")
    back = store.get_record(record["pmid"])
    for key in ("title", "authors", "abstract_sections", "mesh_terms", "corrections", "year", "flags"):
        assert back[key] == record[key]
    assert back["retracted"] is True
    assert back["fetched_at"]


def test_failed_batch_writes_nothing(store):
    good = [synthetic(i) for i in range(3)]
    bad = good + [{"pmid": None}]
    with pytest.raises(Exception):
        store.save_records(bad, source="test", condition="c")
    assert store.db["records"].count == 0
    assert store.db["condition_records"].count == 0


def test_condition_records_ranked_by_level_then_year(store):
    store.save_records(
        [synthetic(1, level=2, year=2020), synthetic(2, level=1, year=2010), synthetic(3, level=1, year=2019),
         synthetic(4, level=None, level_label="Study design not stated", year=2024),
         synthetic(5, level=2, year=2022, retracted=True)],
        source="test", condition="c",
    )
    ranked = [r["pmid"] for r in store.condition_records("c")]
    assert ranked == ["99000003", "99000002", "99000001", "99000004"]
    with_retracted = store.condition_records("c", include_retracted=True)
    assert "99000005" in [r["pmid"] for r in with_retracted]
    assert [r["pmid"] for r in store.condition_records("c", level=[1])] == ["99000003", "99000002"]
    assert [r["pmid"] for r in store.condition_records("c", since=2020)] == ["99000001", "99000004"]


def test_deleted_pmids_are_removed_and_never_come_back(store):
    store.save_records([synthetic(1), synthetic(2)], source="test", condition="c")
    assert store.mark_deleted(["99000001"], source="update file") == 1
    assert store.cached_pmids(["99000001", "99000002"]) == {"99000002"}
    store.save_records([synthetic(1)], source="older baseline", condition="c")
    assert store.cached_pmids(["99000001"]) == set()
    assert store.count_condition("c") == 1


def test_stale_records_are_the_unindexed_and_the_old(store):
    store.save_records([synthetic(1), synthetic(2, status="Publisher")], source="test")
    assert store.stale_pmids(["99000001", "99000002"], max_age_days=30) == ["99000002"]
    store.execute("UPDATE records SET fetched_at = '2001-01-01T00:00:00+00:00' WHERE pmid = '99000001'")
    assert store.stale_pmids(["99000001", "99000002"], max_age_days=30) == ["99000002", "99000001"]


def test_search_finds_words_with_snippet_and_rejects_bad_syntax(store):
    store.save_records([synthetic(1, title="SYNTHETIC reflexology trial"), synthetic(2)], source="test",
                       condition="c")
    hits = store.search("reflexology")
    assert [h["pmid"] for h in hits] == ["99000001"]
    assert "[reflexology]" in hits[0]["snippet"].lower()
    # FTS is kept in sync on update
    store.save_records([synthetic(1, title="SYNTHETIC tuina trial")], source="test")
    assert store.search("reflexology") == []
    assert [h["pmid"] for h in store.search("tuina", condition="c")] == ["99000001"]
    with pytest.raises(StoreError, match="Cannot understand the search"):
        store.search('"unbalanced')


def test_search_takes_hyphenated_words_as_phrases(store):
    store.save_records([synthetic(1, title="SYNTHETIC self-massage trial"), synthetic(2)], source="test")
    assert [h["pmid"] for h in store.search("self-massage")] == ["99000001"]
    assert [h["pmid"] for h in store.search('"self-massage" AND trial')] == ["99000001"]


def test_runs_record_counts_and_outcome(store):
    run = store.start_run("c", "fetch", term="SYNTHETIC[tiab]")
    store.update_run(run, hits=3, new=2, requests=4)
    store.finish_run(run, "ok")
    row = store.runs("c")[0]
    assert (row["hits"], row["new"], row["requests"], row["outcome"]) == (3, 2, 4, "ok")
    assert store.last_search("c")["term"] == "SYNTHETIC[tiab]"


def test_a_run_left_running_by_a_dead_process_reads_as_interrupted(store):
    run = store.start_run("c", "fetch")
    store.execute("UPDATE runs SET pid = 999999999 WHERE id = ?", [run])
    assert store.runs("c")[0]["outcome"] == "interrupted"


def test_decisions_are_kept_logged_and_undone(store):
    store.save_records([synthetic(1), synthetic(2)], source="test", condition="c")
    store.decide("c", ["99000001"], "include", "strong")
    store.decide("c", ["99000002"], "exclude", "not massage")
    rows = {r["pmid"]: r for r in store.decisions("c")}
    assert rows["99000002"]["reason"] == "not massage"
    # a refetch keeps decisions
    store.save_records([synthetic(1, title="SYNTHETIC updated")], source="test", condition="c")
    assert len(store.decisions("c")) == 2
    assert store.undo_decisions("c", ["99000001"]) == 1
    assert [r["pmid"] for r in store.decisions("c")] == ["99000002"]
    assert [h["action"] for h in store.decision_history("c")] == ["include", "exclude", "undo"]
    with pytest.raises(NotCachedError, match="99000042"):
        store.decide("c", ["99000042"], "include", None)


def test_notes(store):
    store.save_records([synthetic(1)], source="test")
    store.set_note("99000001", "SYNTHETIC note")
    assert store.get_record("99000001")["note"] == "SYNTHETIC note"
    store.set_note("99000001", "")
    assert store.get_record("99000001")["note"] is None


def test_unknown_pmid_is_a_clear_error(store):
    with pytest.raises(NotCachedError, match="PMID 99000404 is not in the database"):
        store.get_record("99000404")


def test_corrupt_file_is_a_clear_error(tmp_path):
    path = tmp_path / "corrupt.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match="not an evidence database or is corrupt"):
        Store(path)
    assert path.read_bytes() == b"this is not sqlite" * 100


def test_newer_schema_is_refused_untouched(tmp_path):
    path = tmp_path / "newer.db"
    conn = sqlite3.connect(path)
    # A later evidence marks its files with the same application id.
    conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer version of evidence.*pip install -U massage-evidence"):
        Store(path)


def test_unwritable_folder_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="Cannot create the folder"):
        Store(blocker / "sub" / "cache.db")


def test_readonly_open_of_a_missing_file_says_how_to_fill_it(tmp_path):
    with pytest.raises(StoreError, match="evidence fetch"):
        Store(tmp_path / "missing.db", readonly=True)


def test_locked_database_waits_then_reports(tmp_path, monkeypatch):
    import evidence.store as store_module

    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_MS", 200)
    path = tmp_path / "locked.db"
    first = Store(path)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        second = Store(path)
        with pytest.raises(StoreError, match="locked"):
            second.save_records([synthetic(1)], source="test")
    finally:
        blocker.execute("ROLLBACK")
    assert first.save_records([synthetic(1)], source="test") == (1, 0)


def test_reading_commands_do_not_import_sqlite_utils(tmp_path):
    """sqlite-utils imports pandas (~0.4 s): list, search and status must not pay for it."""
    import subprocess
    import sys

    Store(tmp_path / "cache.db").save_records([synthetic(1)], source="test", condition="c")
    code = (
        "import sys; from evidence.store import Store; "
        f"s = Store({str(tmp_path / 'cache.db')!r}, readonly=True); s.condition_records('c'); s.search('shiatsu'); "
        "s.conditions_summary(30); print('sqlite_utils' in sys.modules, 'pandas' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_another_programs_database_is_never_written(tmp_path):
    path = tmp_path / "other.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE invoices (id INTEGER)")
    conn.commit()
    conn.close()
    for readonly in (False, True):
        with pytest.raises(StoreError, match="another program"):
            Store(path, readonly=readonly)
    tables = sqlite3.connect(path).execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    assert tables == [("invoices",)]


def test_reading_an_empty_file_says_how_to_fill_it(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).close()
    with pytest.raises(StoreError, match="holds no evidence data yet"):
        Store(path, readonly=True)
    assert Store(path).schema_version == SCHEMA_VERSION


# ------------------------------------------------------------ JSON columns: orjson or json

def _json_module_text(value) -> str:
    """What the json module writes for a column, as the store wrote it before orjson."""
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _real_records() -> list[dict]:
    from pathlib import Path

    from evidence import pubmed

    eutils = Path(__file__).parent / "fixtures" / "eutils"
    records = []
    for path in sorted(eutils.glob("*.xml")):
        data = path.read_bytes()
        if b"<PubmedArticle>" in data:
            try:
                records += pubmed.parse_efetch(data)
            except Exception:
                continue  # a fixture that is deliberately broken
    return records


def test_json_columns_are_the_json_modules_text_for_every_real_record():
    from evidence import store as store_module

    if store_module._orjson_dumps is None:
        pytest.skip("orjson is not installed here: the json module writes every column")
    records = _real_records()
    assert len(records) > 40
    compared = 0
    for record in records:
        for name in store_module.JSON_FIELDS:
            value = record.get(name)
            if value:
                assert store_module._encode(value) == _json_module_text(value), (record["pmid"], name)
                compared += 1
    assert compared > 500


@pytest.mark.parametrize("text", [
    "".join(map(chr, range(0x100))),  # every control character, quote, backslash, DEL, Latin-1
    "\u2028\u2029\ufeff\ud7ff\ue000\uffff\U0010ffff",  # separators JavaScript minds, edges
    "Søren Kierkegaard, Œuvres, 東京, 𝛼-level",
])
def test_json_columns_escape_text_as_the_json_module_does(text):
    from evidence import store as store_module

    value = [text, {"affiliation": text, "n": 3, "empty": None, "yes": True}]
    assert store_module._encode(value) == _json_module_text(value)


@pytest.mark.parametrize("value", [["lone \ud800 surrogate"], [2**64], {"k": [2**70]}])
def test_what_orjson_refuses_the_json_module_writes(value):
    from evidence import store as store_module

    assert store_module._encode(value) == _json_module_text(value)


def test_without_orjson_the_json_module_writes_the_same_columns(monkeypatch):
    from evidence import store as store_module

    records = _real_records()[:200]
    with_orjson = [store_module.encode_records(records).rows]
    monkeypatch.setattr(store_module, "_orjson_dumps", None)
    assert [store_module.encode_records(records).rows] == with_orjson


# ------------------------------------------------------------ the Cochrane reviews' index

def test_cochrane_reviews_are_found_through_their_own_index(store):
    store.save_records([
        synthetic(1, doi="10.1002/14651858.CD001929.pub3"),
        synthetic(2, journal_abbrev="Cochrane Database Syst Rev", doi=None),
        synthetic(3, doi="10.1002/14651858.cd004444"),  # LIKE ignores case, as before
        synthetic(4, doi="10.1016/j.synthetic.2020.01.001"),
    ], source="test")
    assert sorted(r["pmid"] for r in store.cochrane_records()) == ["99000001", "99000002", "99000003"]
    plan = store.conn.execute(f"EXPLAIN QUERY PLAN SELECT * FROM records WHERE {store_module._COCHRANE}").fetchall()
    assert any("idx_records_cochrane" in row[-1] for row in plan), plan


def test_a_schema_5_database_gets_the_cochrane_index(tmp_path):
    path = tmp_path / "old.db"
    Store(path).save_records([synthetic(1, doi="10.1002/14651858.CD001929")], source="test")
    conn = sqlite3.connect(path)
    conn.execute("DROP INDEX idx_records_cochrane")
    conn.execute("PRAGMA user_version = 5")
    conn.commit()
    conn.close()
    again = Store(path)
    assert again.schema_version == SCHEMA_VERSION == 6
    names = {r[0] for r in again.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    assert "idx_records_cochrane" in names
    assert [r["pmid"] for r in again.cochrane_records()] == ["99000001"]
