"""The printed handout: two US Letter pages for ten studies, record text printed as text."""

from __future__ import annotations

import io
import re

import pytest

from evidence.export import render
from tests.test_export_citation import real_records
from tests.test_export_handout import SYNTHETIC_TITLE, TEN, make_context, synthetic_record

LETTER = (612, 792)  # points


def pdf_text(pdf: bytes) -> tuple[int, str, list]:
    from pypdf import PdfReader

    reader = PdfReader(io.BytesIO(pdf))
    text = " ".join(page.extract_text() or "" for page in reader.pages)
    return len(reader.pages), " ".join(text.split()), reader.pages


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
    for words in ("PMID: 36400559", "Questions to ask", "97124", "not medical advice"):
        assert words in text, words


def test_pdf_lists_every_study_pmid(ten_pdf):
    _, text, _ = pdf_text(ten_pdf)
    assert set(re.findall(r"PMID: (\d+)", text)) == set(TEN)


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
