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


def test_ris_reads_back_with_rispy(records):
    import rispy

    entries = rispy.loads(text("ris", records))
    assert len(entries) == len(records)
    for entry, r in zip(entries, records):
        assert entry["type_of_reference"] == "JOUR"
        assert entry["accession_number"] == r["pmid"]
        assert entry["title"] == r["title"]
        assert entry.get("doi") == r["doi"]
        assert entry.get("authors", []) == [
            a["collective_name"] or f"{a['last_name']}, {a['fore_name'] or a['initials']}"
            for a in persons(r)
        ]
        assert entry["urls"] == [f"https://pubmed.ncbi.nlm.nih.gov/{r['pmid']}/"]
        assert entry.get("year") == str(r["year"])


def test_ris_expands_medline_page_ranges():
    assert split_pages("1979-87") == ("1979", "1987")
    assert split_pages("259-65") == ("259", "265")
    assert split_pages("e26224") == ("e26224", "")
    assert split_pages("1116-1122") == ("1116", "1122")


def test_nbib_reads_back_with_bio_medline(records):
    from Bio import Medline

    entries = list(Medline.parse(io.StringIO(text("nbib", records))))
    assert len(entries) == len(records)
    for entry, r in zip(entries, records):
        assert entry["PMID"] == r["pmid"]
        assert entry["TI"] == r["title"]
        people = [a for a in persons(r) if not a["collective_name"]]
        groups = [a["collective_name"] for a in persons(r) if a["collective_name"]]
        assert entry.get("FAU", []) == [
            f"{a['last_name']}, {a['fore_name']}" if a["fore_name"] else a["last_name"]
            for a in people
        ]
        assert entry.get("CN", []) == groups
        if r["doi"]:
            assert entry["LID"] == f"{r['doi']} [doi]"
            assert f"{r['doi']} [doi]" in entry["AID"]
        else:
            assert "LID" not in entry
        assert entry["DP"] == r["pub_date"]
        if r["abstract"]:
            assert entry["AB"] == " ".join(r["abstract"].split())
        assert entry.get("PMC") == r["pmcid"]
        assert entry.get("PT", []) == r["publication_types"]


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


def test_bibtex_reads_back_with_bibtexparser(records):
    import bibtexparser

    from bibtexparser.middlewares import SeparateCoAuthors

    library = bibtexparser.parse_string(
        text("bibtex", records), append_middleware=[SeparateCoAuthors()]
    )
    assert not library.failed_blocks
    assert len(library.entries) == len(records)
    for entry, r in zip(library.entries, records):
        assert entry.entry_type == "article"
        assert entry.key == f"pmid{r['pmid']}"
        assert entry["pmid"] == r["pmid"]
        assert _delatex(entry["title"]) == r["title"]
        assert entry["title"].startswith("{") and entry["title"].endswith("}")
        if r["doi"]:
            assert _delatex(entry["doi"]) == r["doi"]
        else:
            assert "doi" not in entry
        # A group is one braced name; a person is "Last, First".
        authors = entry["author"] if "author" in entry else []
        assert [
            _delatex(a) if a.startswith("{") else _delatex(a).split(",")[0] for a in authors
        ] == family_names(r)


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
        assert item["title"] == r["title"]
        assert item.get("DOI") == r["doi"]
        assert item.get("PMCID") == r["pmcid"]
        assert [a.get("family") or a.get("literal") for a in item.get("author", [])] == (
            family_names(r)
        )
        assert item["issued"]["date-parts"][0][0] == r["year"]


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
