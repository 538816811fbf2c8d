"""Citation files read back by independent readers and compared with the source records."""

from __future__ import annotations

import csv
import io
import json

import pytest

from evidence.errors import ExportError
from evidence.export import FORMATS, TEXT_FORMATS, render
from evidence.export.citation import finding, vancouver
from evidence.export.formats import defuse, split_pages
from tests.test_export_citation import real_records
from tests.test_pubmed import record

# Collective names (23121403, 34092174, 38534005), markup titles (30108519, 29963580),
# non-ASCII names (36987902, 38833988, 38914053), no DOI (428877, 419320), MedlineDate
# (34092084, 419320), no authors (34097092), a retraction (33104149), PMC ids (2930949).
TRICKY = [
    "23121403", "34092174", "38534005", "30108519", "29963580", "36987902", "38833988",
    "38914053", "428877", "419320", "34092084", "34097092", "33104149", "2930949", "33984499",
]
CONTEXT: dict = {}


@pytest.fixture
def records():
    return real_records(*TRICKY)


def persons(record):
    return [a for a in record["authors"] if a.get("last_name") or a.get("collective_name")]


def family_names(record):
    return [a["collective_name"] or a["last_name"] for a in persons(record)]


def text(fmt, records):
    return render(fmt, records, CONTEXT).decode("utf-8-sig")


def test_formats_and_suffixes():
    assert FORMATS["bibtex"] == ".bib" and FORMATS["csl-json"] == ".json"
    assert TEXT_FORMATS == set(FORMATS) - {"pdf"}


def test_unknown_format_says_which_exist():
    with pytest.raises(ExportError, match=r"Unknown export format 'docx': choose one of .*ris"):
        render("docx", [], CONTEXT)


def test_ris_follows_what_zotero_and_endnote_read():
    body = text("ris", real_records("23121403"))
    lines = body.splitlines()
    # A group is one AU line ending in a comma (Zotero then keeps it as one name).
    assert "AU  - ASPIRE Investigators," in lines and "AU  - Brighton, Timothy A" in lines
    # The full title in T2, the abbreviation in J2 and JA; no JO, which Zotero reads as the
    # abbreviation (and then drops the real one).
    assert "T2  - The New England journal of medicine" in lines
    assert "J2  - N Engl J Med" in lines and "JA  - N Engl J Med" in lines
    assert not any(line.startswith("JO  -") for line in lines)
    assert "DA  - 2012/11/22/" in lines and "PY  - 2012" in lines
    # The PMID as an accession number, and as "PMID: n" in M2, which Zotero puts in Extra.
    assert "AN  - 23121403" in lines and "M2  - PMID: 23121403" in lines
    assert "LA  - en" in lines and "SN  - 1533-4406" in lines
    assert "TI  - Low-dose aspirin for preventing recurrent venous thromboembolism" in lines


def test_ris_dates_keep_seasons_and_ranges_in_the_fourth_part():
    season = record("biopython__pubmed1.xml", "12091962")
    assert "DA  - 1990///Spring" in text("ris", [season]).splitlines()
    assert "DA  - 2021///Jan-Mar" in text("ris", real_records("34092084")).splitlines()
    assert "DA  - 1985/08//" in text("ris", real_records("2930949")).splitlines()


def test_ris_expands_medline_page_ranges():
    assert split_pages("1979-87") == ("1979", "1987")
    assert split_pages("259-65") == ("259", "265")
    assert split_pages("e26224") == ("e26224", "")
    assert split_pages("1116-1122") == ("1116", "1122")


def test_nbib_has_the_lines_of_pubmeds_own_medline_files():
    from Bio import Medline

    body = text("nbib", real_records("23121403"))
    lines = body.splitlines()
    for line in (
        "OWN - NLM", "IS  - 1533-4406 (Electronic)", "IS  - 0028-4793 (Linking)",
        "DEP - 20121104", "PL  - United States", "JID - 0255562", "SB  - AIM IM",
        "MH  - Aspirin/*administration & dosage/adverse effects/therapeutic use",
        "MH  - Venous Thromboembolism/epidemiology/*prevention & control",
        "EDAT- 2012/11/06 06:00", "MHDA- 2012/12/10 06:00", "CRDT- 2012/11/06 06:00",
        "PHST- 2012/11/04 00:00 [aheadofprint]", "AID - 10.1056/NEJMoa1210384 [doi]",
        "PST - ppublish", "CIN - N Engl J Med. 2012 Nov 22;367(21):2039-41. PMID: 23121404",
    ):  # fmt: skip
        assert line in lines, line
    # The group stands where PubMed lists it: after the twelfth person.
    assert lines.index("CN  - ASPIRE Investigators") == lines.index("AU  - Simes J") + 1
    assert lines[lines.index("AU  - Brighton TA") + 1].startswith("AD  - Department of Haematology")
    (entry,) = Medline.parse(io.StringIO(body))
    assert entry["SO"] == (
        "N Engl J Med. 2012 Nov 22;367(21):1979-87. doi: 10.1056/NEJMoa1210384. Epub 2012 Nov 4."
    )


def test_nbib_writes_pii_ids_every_language_and_the_vernacular_title():
    lines = text("nbib", real_records("33984499")).splitlines()
    assert "LID - S0965-2299(21)00078-9 [pii]" in lines and "LID - 10.1016/j.ctim.2021.102737 [doi]" in lines
    assert "AID - S0965-2299(21)00078-9 [pii]" in lines and "PST - aheadofprint" in lines
    assert "CI  - Copyright © 2021 The Authors. Published by Elsevier Ltd.. All rights reserved." in lines
    bilingual = text("nbib", real_records("36987902")).splitlines()
    assert bilingual.count("LA  - eng") == 1 and "LA  - nor" in bilingual
    assert any(line.startswith("TT  - Pasienter over 75\xa0år") for line in bilingual)
    assert any(line.startswith("AUID- ORCID: ") for line in bilingual)


def test_nbib_wraps_long_lines_with_six_spaces():
    body = text("nbib", real_records("33984499"))
    lines = body.splitlines()
    assert max(len(line) for line in lines) <= 88
    assert any(line.startswith("      ") and line.strip() for line in lines)
    assert body.startswith("PMID- 33984499\n")


def test_nbib_separates_records_with_one_blank_line(records):
    body = text("nbib", records)
    assert body.count("\n\nPMID- ") == len(records) - 1


def _delatex(value: str) -> str:
    from pylatexenc.latex2text import LatexNodes2Text

    return LatexNodes2Text().latex_to_text(value)


def test_bibtex_is_biblatex_data_with_bibtex_fallbacks():
    body = text("bibtex", real_records("23121403"))
    assert "author = {Brighton, Timothy A and " in body and " and {ASPIRE Investigators}}" in body
    for field in (
        "title = {{Low-dose aspirin for preventing recurrent venous thromboembolism}}",
        "journal = {The New England journal of medicine}", "shortjournal = {N Engl J Med}",
        "year = {2012}", "month = nov", "day = {22}", "pages = {1979--1987}",
        "eprint = {23121403}", "eprinttype = {pubmed}", "langid = {english}",
    ):  # fmt: skip
        assert f"  {field}" in body, field
    assert "pmid = " not in body  # not in biblatex's data model: biber drops it


def test_bibtex_braces_surnames_of_several_words():
    body = text("bibtex", real_records("33984498"))
    assert "{Isler Dalgic}, Ayse" in body or "{Isler Dalgic}, A" in body


def test_bibtex_dates_for_seasons_and_ranges():
    season = text("bibtex", [record("biopython__pubmed1.xml", "12091962")])
    assert "  year = {1990}" in season and "  date = {1990-21}" in season  # ISO 8601-2 spring
    ranged = text("bibtex", real_records("34092084"))
    assert "  month = jan" in ranged and "  date = {2021-01/2021-03}" in ranged


def test_bibtex_without_authors_has_one_empty_name_for_pybtex():
    from pybtex.database import parse_string
    from pybtex.plugin import find_plugin

    body = text("bibtex", real_records("34097092"))
    assert "  author = {{}}," in body
    data = parse_string(body, "bibtex")
    (entry,) = find_plugin("pybtex.style.formatting", "unsrt")().format_bibliography(data)
    assert entry.text.render_as("text").startswith("Mitteilungen der DGN. Der Nervenarzt, 92(6):624–639")


def test_bibtex_escapes_latex_specials_in_a_synthetic_title():
    import bibtexparser

    title = "SYNTHETIC 50% {braces} & $x_1$ #tag ~tilde ^hat \\back"
    record = {"pmid": "99000002", "title": title, "authors": [], "year": 2024}
    body = text("bibtex", [record])
    assert "\\%" in body and "\\&" in body and "\\_" in body and "\\{braces\\}" in body
    library = bibtexparser.parse_string(body)
    assert not library.failed_blocks
    # pylatexenc reads \textasciicircum{} as U+02C6, the spacing circumflex.
    assert _delatex(library.entries[0]["title"]).replace("\u02c6", "^") == title


def test_bibtex_keys_stay_unique_for_a_repeated_pmid():
    import bibtexparser

    twice = real_records("2930949", "2930949")
    library = bibtexparser.parse_string(text("bibtex", twice))
    keys = [e.key for e in library.entries]
    assert len(set(keys)) == 2, keys


def test_csl_json_items_match_the_records(records):
    items = json.loads(text("csl-json", records))
    assert len(items) == len(records)
    for item, r in zip(items, records):
        assert item["type"] == "article-journal"
        assert item["PMID"] == r["pmid"] and item["id"] == f"pmid{r['pmid']}"
        # A style adds its own period: PubMed's closing one would be doubled.
        assert item["title"] == r["title"].removesuffix(".")
        assert item.get("DOI") == r["doi"]
        assert item.get("PMCID") == r["pmcid"]
        assert [a.get("family") or a.get("literal") for a in item.get("author", [])] == (
            family_names(r)
        )
        assert item["issued"]["date-parts"][0][0] == r["year"]
        assert item["container-title-short"] == r["journal_abbrev"]


def test_csl_json_language_is_a_bcp47_tag_or_absent():
    by = {i["PMID"]: i for i in json.loads(text("csl-json", real_records("23121403", "428877", "34096929")))}
    assert (by["23121403"]["language"], by["428877"]["language"], by["34096929"]["language"]) == ("en", "de", "nl")
    record_ = real_records("23121403")[0]
    record_["language"] = "und"  # PubMed's "undetermined" has no tag
    assert "language" not in json.loads(text("csl-json", [record_]))[0]
    assert by["428877"]["original-title"] == "Pathophysiologie und Therapie der perinatalen Asphyxie bei reifen Neugeborenen"


def test_csl_json_keeps_a_season_as_csl_month_21_to_24():
    (item,) = json.loads(text("csl-json", [record("biopython__pubmed1.xml", "12091962")]))
    assert item["issued"] == {"date-parts": [[1990, 21]]}


def test_csl_json_dates_read_pubmed_date_text():
    by = {i["PMID"]: i for i in json.loads(text("csl-json", real_records("23121403", "34092084")))}
    assert by["23121403"]["issued"] == {"date-parts": [[2012, 11, 22]]}
    assert by["34092084"]["issued"] == {"date-parts": [[2021, 1], [2021, 3]]}


def test_csv_rows_match_the_records(records):
    rows = list(csv.DictReader(io.StringIO(text("csv", records))))
    assert len(rows) == len(records)
    for row, r in zip(rows, records):
        assert row["pmid"] == r["pmid"]
        assert row["title"] == r["title"]
        assert row["doi"] == (r["doi"] or "")
        assert row["citation"] == vancouver(r)
        assert row["finding"] == (finding(r) or "")
        for name in family_names(r):
            assert name in row["authors"]
    retracted = next(row for row in rows if row["pmid"] == "33104149")
    assert "retracted" in retracted["flags"]


@pytest.mark.parametrize("start", ["\t", "\r"])
def test_csv_neutralises_a_leading_tab_or_carriage_return(start):
    # Record text loses leading whitespace on the way; a raw cell keeps it and is quoted.
    assert defuse(start + "=1+1") == "'" + start + "=1+1"
    record = {"pmid": "99000004", "title": start + "=SUM(1)", "authors": []}
    row = next(csv.DictReader(io.StringIO(text("csv", [record]))))
    assert row["title"] == "'=SUM(1)"


def test_csv_leaves_ordinary_cells_alone():
    assert defuse("Low back pain.") == "Low back pain."
    assert defuse(2021) == "2021" and defuse(None) == ""


def test_csv_starts_with_a_byte_order_mark_for_excel():
    assert render("csv", real_records("2930949"), CONTEXT).startswith(b"\xef\xbb\xbf")


@pytest.mark.parametrize("start", ["=", "+", "-", "@"])
def test_csv_neutralises_formula_injection(start):
    title = f'{start}HYPERLINK("http://127.0.0.1/x","SYNTHETIC click")'
    record = {"pmid": "99000003", "title": title, "authors": [{"collective_name": "=1+1"}]}
    row = next(csv.DictReader(io.StringIO(text("csv", [record]))))
    assert row["title"] == "'" + title
    assert row["authors"] == "'=1+1"
    assert row["citation"] == "'" + vancouver(record)
    for value in row.values():
        assert not value.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_every_text_format_is_utf8_and_keeps_non_ascii_names():
    recs = real_records("36987902")
    for fmt in TEXT_FORMATS - {"html", "md"}:
        body = text(fmt, recs)
        assert "Bruserud" in body and ("Øyvind" in body or "Bruserud Ø" in body), fmt


def test_citation_files_mark_a_retraction():
    recs = real_records("33104149")
    assert "RETRACTED" in text("ris", recs)
    assert "RETRACTED" in text("bibtex", recs)
    assert json.loads(text("csl-json", recs))[0]["note"] == "RETRACTED"
    assert "PT  - Retracted Publication" in text("nbib", recs)
