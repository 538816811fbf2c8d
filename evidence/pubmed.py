"""PubMed XML (efetch answers, NLM baseline/update files) → plain records, one dict per article.

Pure: no network, no database. Every record has exactly the keys in `RECORD_KEYS`:

- `pmid` (str); `title` (str: ArticleTitle's inner text, or the VernacularTitle when
  ArticleTitle is empty; "" if neither); `vernacular_title` (str|None);
  `title_is_translation` (bool: PubMed shows a translated title in [brackets], kept in `title`).
  Titles and abstracts keep the sense of their markup: `<i>`/`<b>` are dropped, a `<sup>` or
  `<sub>` (and MathML scripts) become Unicode super/subscripts ("³He", "CO₂"), or NLM's own
  parentheses when a script has no Unicode form ("LE(min)"), and other MathML reads as its tokens.
- `abstract` (str|None: sections joined by "\\n", each "LABEL: text" when labelled);
  `abstract_sections` (list of {label, category, text}; `<Abstract>` only, not `<OtherAbstract>`);
  `copyright` (str|None: the abstract's CopyrightInformation, MEDLINE's CI)
- `authors` (list of {last_name, fore_name, initials, collective_name, valid, affiliations,
  identifiers}; a field absent in the XML is None; `valid` is False for ValidYN="N", which
  PubMed keeps to record a corrected name; `affiliations` a list of str; `identifiers` a list
  of {source, id}, e.g. {"source": "ORCID", "id": "0000-0002-1825-0097"})
- `journal`, `journal_abbrev` (MedlineTA, else ISOAbbreviation), `year` (int|None),
  `pub_date` (as PubMed shows it: "2016 Jun 1", "1990 Spring" or the MedlineDate verbatim),
  `volume`, `issue`, `pages`, `doi`, `pmcid` (str|None)
- `publication_types`, `publication_type_ids`, `mesh_terms`, `mesh_major`, `keywords`,
  `languages` (lists of str, languages as PubMed's ISO 639-2 codes: "eng", "ger");
  `language` (first language or None)
- `mesh_headings` (list of {descriptor, ui, major, qualifiers: [{name, ui, major}]}: every
  MeshHeading with its subheadings and major-topic flags, as MEDLINE's MH lines need them)
- `pub_model` (Article@PubModel: "Print", "Print-Electronic", "Electronic",
  "Electronic-Print", "Electronic-eCollection"; it decides PubMed's "Epub"/"Print" notes);
  `publication_status` (PubmedData's "ppublish", "epublish" or "aheadofprint")
- `history` (list of {status, date "YYYY-MM-DD", time "HH:MM"|None}: every PubMedPubDate,
  e.g. received, accepted, entrez, pubmed, medline: MEDLINE's PHST, EDAT, MHDA, CRDT)
- `issns` (list of {issn, type}: the journal's ISSNs, type "Print" or "Electronic", and
  MedlineJournalInfo's ISSNLinking as type "Linking")
- `article_ids` (list of {type, id}: all of PubmedData's ArticleIds: pubmed, doi, pii, pmc,
  mid, ...); `elocation_ids` (list of {type, id}: the article's valid ELocationIDs, doi, pii)
- `country` (the journal's country, MEDLINE's PL), `nlm_unique_id` (MEDLINE's JID),
  `owner` (MedlineCitation@Owner, MEDLINE's OWN), `citation_subsets` (list of str, MEDLINE's SB)
- `status` (MedlineCitation@Status), `date_revised`, `date_completed`, `article_date`
  ("YYYY-MM-DD" or None)
- `registry_numbers` (list of {bank, accession}), `retracted` (bool),
  `corrections` (list of {type, pmid, source}, every CommentsCorrections entry)

`<DeleteCitation>` blocks are not records: `iter_pubmed` hands their PMIDs to `on_delete`.
`<PubmedBookArticle>` (NCBI Bookshelf chapters) is skipped and counted in a log warning,
because its fields (book, editors, sections) do not fit the article record.
"""

from __future__ import annotations

import io
import logging
import re
import xml.etree.ElementTree as ET
import zlib
from datetime import date
from itertools import chain
from pathlib import Path
from typing import BinaryIO, Callable, Iterator
from xml.parsers import expat

from evidence.errors import ParseError

log = logging.getLogger(__name__)

RECORD_KEYS = (
    "pmid", "title", "vernacular_title", "title_is_translation",
    "abstract", "abstract_sections", "authors",
    "journal", "journal_abbrev", "year", "pub_date", "volume", "issue", "pages",
    "doi", "pmcid", "publication_types", "publication_type_ids",
    "mesh_terms", "mesh_major", "keywords", "language", "languages",
    "status", "date_revised", "date_completed", "article_date",
    "registry_numbers", "retracted", "corrections",
    "mesh_headings", "pub_model", "publication_status", "history", "issns", "article_ids",
    "elocation_ids", "country", "nlm_unique_id", "owner", "citation_subsets", "copyright",
)  # fmt: skip

ROOT_TAG = "PubmedArticleSet"
RETRACTED_PUBLICATION_UI = "D016441"

# A real PubMed file holds an article every few KB: this much without one is not PubMed data
# (e.g. a PubmedArticleSet of unknown elements), and reading on would only waste time.
_EMPTY_LIMIT = 8_000_000
# 64 KiB per read keeps the C parser busy without holding much of a 174 MB file in memory.
_CHUNK = 64 * 1024
# A real PubMed prolog (XML declaration + DOCTYPE) is under 300 bytes; anything this long
# before the root element is padding meant to exhaust us, or not PubMed at all.
_PROLOG_LIMIT = 64 * 1024
# When the root is wrong we keep reading only to quote NCBI's <ERROR> text, and not forever.
_WRONG_ROOT_LIMIT = 1024 * 1024
# Limits on what one piece of a file may hold, so that memory stays far under the README's
# 200 MB whatever the file. The parser holds a text, a comment or a run of whitespace whole
# before it reports it, and an article whole until it ends. In a real NLM baseline file
# (pubmed20n0014, 30,000 records) the longest text is 4 KB and the largest article 51 KB
# with 1,830 tags: these limits are 20 to 300 times that.
MAX_TEXT_BYTES = 1024 * 1024  # bytes between two '<': one text or whitespace run, or one tag
MAX_MARKUP_BYTES = 1024 * 1024  # one comment, CDATA section or processing instruction
MAX_ARTICLE_BYTES = 16 * 1024 * 1024  # from the end of one article to the end of the next
MAX_ARTICLE_TAGS = 500_000  # tags ('<') in that span: ~90 bytes of memory each once parsed
# A gzip file may inflate to this many times its size (NLM's baseline files: about 10) or to
# GZIP_FLOOR_BYTES, whichever is more; past that it is a decompression bomb.
GZIP_MAX_RATIO = 50
GZIP_FLOOR_BYTES = 64 * 1024 * 1024
_GZIP_MAGIC = b"\x1f\x8b"
# The elements iter_pubmed acts on when they end; it ignores every other one.
_TOP_LEVEL_TAGS = frozenset({"PubmedArticle", "DeleteCitation", "PubmedBookArticle", "ERROR"})

# A run of layout whitespace becomes one space. A lone no-break or thin space ("75\xa0år") is
# content and stays; one padded by layout (pretty-printed MathML <mtext>) folds into the run.
_WS = re.compile(r"\s*[ \t\n\r]\s*")
# Whitespace that _WS keeps when it stands alone, and str.split would not.
_ODD_SPACE = re.compile(r"[^\S \t\n\r]")
_YEAR = re.compile(r"\b(\d{4})\b")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH_NUMBER = {name.lower(): i for i, name in enumerate(_MONTHS, start=1)}
# What expat says when the input ends inside an element, a tag, a character or a CDATA section.
_TRUNCATED = {
    expat.errors.codes[message]
    for message in (
        expat.errors.XML_ERROR_NO_ELEMENTS,
        expat.errors.XML_ERROR_UNCLOSED_TOKEN,
        expat.errors.XML_ERROR_PARTIAL_CHAR,
        expat.errors.XML_ERROR_UNCLOSED_CDATA_SECTION,
    )
}


# ---------------------------------------------------------------- opening and streaming


class _InflatingReader:
    """A .gz file, inflated by a thread a few MB ahead of the reader.

    zlib inflates with the GIL released, so the parser goes on meanwhile and the inflating
    (a seventh of parsing a modern file) runs on another core. The thread reads large blocks
    so that it needs the GIL back only a few times a MB: gzip.GzipFile reads 8 KB at a time,
    and in a thread beside a busy parser it would wait for the GIL after each one.

    It reads what GzipFile reads: members one after another, zero padding between and after
    them; zlib checks each header and each member's CRC-32 and length. A fault comes out of
    `read` where the data ends, as GzipFile's would: EOFError for a file cut short, zlib.error
    for damaged data, and ParseError past GZIP_MAX_RATIO times the file's size. The bytes
    before it are the same, perhaps fewer: what the inflate call that found the fault gave
    (up to _OUT) goes with it, so an import may keep one batch fewer of a damaged file.
    """

    # Measured on the 20,000-record modern corpus, parser alone: 1 MB reads hide inflating
    # (4.4 s, as for the same file unzipped); 256 KB reads waited for the GIL (5.2 s).
    _READ = 1024 * 1024  # compressed bytes a read
    _OUT = 4 * 1024 * 1024  # the most one inflate call gives
    _AHEAD = 2  # inflated blocks waiting for the reader: with the one read, ~12 MB at most

    def __init__(self, path: Path):
        import queue
        import threading

        try:
            # ISA-L inflates about 3x faster than zlib (0.26 against 0.77 s for the 267 MB of
            # the modern benchmark corpus), also with the GIL released, and checks the same.
            from isal import isal_zlib as inflating
        except ImportError:  # a platform without its wheel: zlib does the same work
            inflating = zlib
        self._zlib = inflating
        self._source = str(path)
        self._limit = max(GZIP_FLOOR_BYTES, GZIP_MAX_RATIO * path.stat().st_size)
        self._raw = path.open("rb")
        self._queue: queue.Queue = queue.Queue(maxsize=self._AHEAD)
        self._full = queue.Full
        self._stop = threading.Event()
        self._block = b""
        self._at = 0
        self._position = 0
        self._done = False
        self._thread = threading.Thread(target=self._inflate, name="evidence-gunzip", daemon=True)
        self._thread.start()

    def _inflate(self) -> None:
        try:
            inflated = 0
            inflater = None  # between members
            while True:
                data = self._raw.read(self._READ)
                if not data:
                    break
                while data:
                    if inflater is None:
                        data = data.lstrip(b"\0")  # padding after a member
                        if not data:
                            break
                        inflater = self._zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip, checked
                    try:
                        out = inflater.decompress(data, self._OUT)
                    except self._zlib.error as exc:  # isal's own class: raised as zlib's
                        raise zlib.error(str(exc)) from None
                    data = inflater.unconsumed_tail
                    if inflater.eof:
                        data = inflater.unused_data + data
                        inflater = None
                    if out:
                        inflated += len(out)
                        if inflated > self._limit:
                            raise ParseError(
                                f"{self._source}: inflates to more than {self._limit // 2**20:,} MB, "
                                f"over {GZIP_MAX_RATIO} times its size (NLM's files inflate about 10 "
                                "times): a decompression bomb or not a PubMed file; nothing more was "
                                "read from it."
                            )
                        if not self._put((out, self._raw.tell() - len(data))):
                            return
            if inflater is not None:
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            self._put(None)
        except BaseException as exc:  # handed to the reader, raised where the data ends
            self._put(exc)

    def _put(self, item) -> bool:
        """Queue an item; False once the reader has closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except self._full:
                continue
        return False

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(self._OUT), b""))
        while self._at >= len(self._block):
            if self._done:
                return b""
            item = self._queue.get()
            if item is None or isinstance(item, BaseException):
                self._done = True
                if item is None:
                    return b""
                raise item
            self._block, self._position = item
            self._at = 0
        out = self._block[self._at:self._at + size]
        self._at += len(out)
        return out

    def tell(self) -> int:
        """Compressed bytes read so far (for progress)."""
        return self._position

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._raw.close()

    def __enter__(self) -> "_InflatingReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_pubmed_file(path: Path) -> BinaryIO:
    """Open a PubMed .xml or .xml.gz file for `iter_pubmed`; gzip is sniffed from its magic bytes."""
    path = Path(path)
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
        if magic == _GZIP_MAGIC:
            return _InflatingReader(path)  # type: ignore[return-value]
        return path.open("rb")
    except FileNotFoundError:
        raise ParseError(f"{path}: no such file: check the path.") from None
    except IsADirectoryError:
        raise ParseError(f"{path}: is a folder, not a PubMed XML file.") from None
    except OSError as err:
        raise ParseError(f"{path}: cannot read it ({err.strerror or err}): check its permissions.") from None


def parse_efetch(data: bytes, source: str = "efetch") -> list[dict]:
    """Parse one in-memory efetch answer into records; an empty PubmedArticleSet gives []."""
    return list(iter_pubmed(io.BytesIO(data), source, reopen=lambda: io.BytesIO(data)))


def iter_pubmed(
    stream: BinaryIO,
    source: str,
    on_delete: Callable[[list[str]], None] | None = None,
    reopen: Callable[[], BinaryIO] | None = None,
) -> Iterator[dict]:
    """Stream records out of a PubmedArticleSet, in flat memory; raise ParseError on bad input.

    Records before a fault are yielded before the ParseError: a caller that must be
    all-or-nothing (one efetch batch) collects first, as `parse_efetch` does.

    `reopen`, when given, opens the same data again from its start. The parser then sees
    the line breaks after the root's start tag as spaces (faster, same records: see
    `_Flattener`), and a fault is found again in a second, exact pass, which gives its
    line and column in the file.
    """
    head, root_tag = _read_prolog(stream, source)
    if root_tag != ROOT_TAG:
        _refuse_wrong_root(head, stream, source, root_tag)
    parser = ET.XMLParser(target=ET.TreeBuilder())
    # Events cost a tuple and a Python loop step per element (~200 in a modern article; 8% of
    # parsing), so the parser reports almost none: "start" and "end" in the head (to find the
    # root), then "end" only in the last bit of each chunk. Every child of the root but the
    # last is whole (a later one has begun); the last is whole if its end came in that bit.
    # So every whole record is yielded before an error, as with an event per element. This
    # is XMLParser._setevents, private but exactly what XMLPullParser and iterparse call.
    # NCBI's <ERROR> is looked for where NCBI puts it: as the root, or right under it.
    events: list[tuple[str, ET.Element]] = []
    parser._setevents(events, ("start", "end"))  # the head: find the root
    root = None
    counts = {"PubmedArticle": 0, "DeleteCitation": 0, "PubmedBookArticle": 0}
    fed = 0
    # Bounds on any single text, markup run and article, checked on the bytes before the
    # parser holds them (a hostile file must be refused under the memory the README promises).
    guard = _SizeGuard(source)
    flatten = _Flattener() if reopen is not None else None
    references = _ReferenceSkipper(head, keep_lines=flatten is None)
    for chunk in chain((head,), _chunks(stream, source), (None,)):
        if chunk is None:  # the end: what the skipper held back
            chunk = references.rest()
        else:
            fed += len(chunk)
            guard.check(chunk)
            if root is not None:
                chunk = references.strip(chunk)
        if flatten is not None and root is not None:
            chunk = flatten(chunk)
        try:
            if root is None:
                parser.feed(chunk)
                root = events[0][1]
            else:
                events.clear()
                # Up to the chunk's last end tags without events, the rest with them. The
                # last "</" may be a tag cut off by the chunk's end: start at the one before.
                last = chunk.rfind(b"</")
                cut = chunk.rfind(b"</", 0, last) if last > 0 else -1
                # Fed as views of the chunk: slices would copy 64 KB twice per chunk.
                view = memoryview(chunk)
                if cut > 0:
                    parser._setevents(events, ())
                    parser.feed(view[:cut])
                parser._setevents(events, ("end",))
                parser.feed(view[max(cut, 0):])
        except ET.ParseError as err:
            raise _exact_error(source, err, reopen) from None
        whole = len(root) - 1
        if whole >= 0 and any(event == "end" and elem is root[-1] for event, elem in events):
            whole += 1
        if whole > 0:
            guard.article_ended()  # an article (or another child of the root) ended here
            finished = root[:whole]
            del root[:whole]  # and whatever else sits under the root: a file of millions of
            # unknown elements must not fill memory
            yield from _top_level(finished, counts, source, on_delete)
        if not any(counts.values()) and fed > _EMPTY_LIMIT:
            raise ParseError(
                f"{source}: {fed // 1_000_000} MB read and no PubmedArticle in it; "
                "is it a PubMed XML file? Nothing was imported from it."
            )
    try:
        parser.close()
    except ET.ParseError as err:
        raise _exact_error(source, err, reopen, at_end=True) from None
    yield from _top_level(list(root), counts, source, on_delete)
    if counts["PubmedBookArticle"]:
        log.warning(
            "%s: skipped %d PubmedBookArticle record(s): books are not parsed.",
            source, counts["PubmedBookArticle"],
        )


def _top_level(elements: list[ET.Element], counts: dict, source: str, on_delete) -> Iterator[dict]:
    """Records from whole children of the root; deletions to `on_delete`; NCBI's errors raised."""
    for elem in elements:
        tag = elem.tag
        if tag == "PubmedArticle":
            try:
                record = parse_article(elem)
            except ParseError as err:
                raise ParseError(f"{source}: {err}") from None
            counts[tag] += 1
            yield record
        elif tag == "DeleteCitation":
            counts[tag] += 1
            if on_delete is not None:
                on_delete([p for p in (_text(e) for e in elem.iter("PMID")) if p])
        elif tag == "PubmedBookArticle":
            counts[tag] += 1
        elif tag == "ERROR" and _text(elem):
            # An empty <ERROR/> (espell sends one) reports nothing.
            raise ParseError(f"{source}: NCBI answered with an error instead of records: {_text(elem)}")


def _refuse_wrong_root(head: bytes, stream: BinaryIO, source: str, root_tag: str) -> None:
    """Raise for a document whose root is not PubmedArticleSet, quoting NCBI's <ERROR> if it
    sent one (as the root or anywhere in the first MB)."""
    parser = ET.XMLParser(target=ET.TreeBuilder())
    events: list[tuple[str, ET.Element]] = []
    parser._setevents(events, ("start", "end"))
    root = None
    fed = 0
    guard = _SizeGuard(source)
    for chunk in chain((head,), _chunks(stream, source)):
        fed += len(chunk)
        guard.check(chunk)
        events.clear()
        try:
            parser.feed(chunk)
        except ET.ParseError as err:
            raise _xml_error(source, err) from None
        for event, elem in events:
            if event == "start":
                if root is None:
                    root = elem
                    parser._setevents(events, ("end",))
                continue
            if elem.tag == "ERROR" and _text(elem):
                # An empty <ERROR/> (espell sends one) reports nothing.
                raise ParseError(
                    f"{source}: NCBI answered with an error instead of records: {_text(elem)}"
                )
        if root is not None and len(root):
            # An element still being built stays reachable through the builder.
            root.clear()
        if fed > _WRONG_ROOT_LIMIT:
            break
    raise _wrong_root_error(source, root_tag)


class _Flattener:
    """Gives the parser each line break after the root's start tag as a space.

    NLM indents its XML: a modern article has some 150 runs of a line break and spaces
    between tags. Expat reports the line break and the spaces as two pieces of text, and
    the tree builder joins the two into each element's tail (a list, a string, both freed
    with the tree): 10% of parsing a modern article. As one run of spaces they are one
    piece (`iter_pubmed` on the 20,000-record modern corpus: 212 against 227 us an article).

    No record field changes. XML itself reads a line break in an attribute value as a space,
    and every text field is folded (`_fold`: any run of layout whitespace is one space).
    Only a carriage return would differ (XML reads CR LF as one line break, but CR and a
    space as two characters), so a chunk holding one, or following one, goes as it is.
    What does change is the parser's idea of lines and columns; `_exact_error` gives the
    file's instead.
    """

    __slots__ = ("after_cr",)

    def __init__(self) -> None:
        self.after_cr = False

    def __call__(self, chunk: bytes) -> bytes:
        if self.after_cr or b"\r" in chunk:
            self.after_cr = chunk.endswith(b"\r")
            return chunk
        return chunk.replace(b"\n", b" ")


def _exact_error(
    source: str, err: ET.ParseError, reopen: Callable[[], BinaryIO] | None, at_end: bool = False
) -> ParseError:
    """The ParseError for a fault the parser met, with the file's line and column.

    After `_Flattener`, the parser's position is not the file's: the data is parsed again
    from its start, as it is, to the same fault (the same bytes break the same rule; only
    line breaks became spaces). Slow, but only on the way out of a broken file.
    """
    if reopen is None:
        return _xml_error(source, err, at_end)
    try:
        with reopen() as again:
            for _ in iter_pubmed(again, source):
                pass
    except ParseError as exact:
        return exact
    except (OSError, EOFError, zlib.error):
        pass  # the file went away or changed since: its fault without a position
    reason = expat.errors.messages.get(getattr(err, "code", None), "not well-formed")
    return ParseError(f"{source}: broken XML ({reason}): the file is corrupt; fetch it again.")


def _chunks(stream: BinaryIO, source: str) -> Iterator[bytes]:
    while True:
        try:
            chunk = stream.read(_CHUNK)
        except (OSError, EOFError, zlib.error) as err:
            # A cut-off .gz raises EOFError, damaged deflate data zlib.error.
            raise ParseError(
                f"{source}: cannot read it ({err}): the file is damaged or cut off; download it again."
            ) from None
        if not chunk:
            return
        if isinstance(chunk, str):
            raise ParseError(f"{source}: opened as text; open PubMed XML in binary mode ('rb').")
        yield chunk


class _ReferenceSkipper:
    """Takes each `<ReferenceList>...</ReferenceList>` out of the bytes before the parser sees them.

    A modern article cites dozens of works, a quarter of its tags, and no record field reads
    them: building and freeing their elements was a tenth of parsing a 2021 file. The list
    goes, leaving its line breaks and its last line's width in spaces (so an error's line
    and column are the file's), and the parser checks everything else.

    It works on bytes, which is exact for the XML PubMed writes: "<" cannot stand in text or
    in an attribute value, so outside comments, CDATA sections and processing instructions
    "<ReferenceList>" is that start tag and the next "</ReferenceList>" its end tag. So it
    steps aside (the parser gets every byte from there on) once any "<!" or "<?" appears
    after the root's start, and leaves to the parser any list it cannot vouch for: one whose
    end tag is not exactly "</ReferenceList>", and one that holds another "<ReferenceList"
    (nested, with attributes, or the next article's list when this one lost its end tag). A
    list cut by a chunk's end is held back until its end tag arrives; one with no end tag
    before "</PubmedData" or within MAX_TEXT_BYTES (a cited-work list runs to tens of KB)
    goes to the parser as it is.
    """

    OPEN = b"<ReferenceList>"
    CLOSE = b"</ReferenceList"
    NAME = b"ReferenceList"

    def __init__(self, head: bytes, keep_lines: bool = True):
        root = head.find(b"<" + ROOT_TAG.encode())
        # A comment or CDATA section may begin after the root's start tag in the head.
        self.active = root < 0 or not _has_opener(head[root + 1:])
        self.held = b""
        # Without keep_lines a list leaves nothing: when `_Flattener` has taken the line breaks
        # away, the parser's lines are not the file's anyway, and counting them cost ~3 us.
        self.keep_lines = keep_lines

    def strip(self, chunk: bytes) -> bytes:
        data = self.held + chunk if self.held else chunk
        self.held = b""
        if not self.active or _has_opener(data):
            self.active = False
            return data
        kept: list[bytes] = []
        pos = 0
        while True:
            start = data.find(self.OPEN, pos)
            if start < 0:
                # The chunk may end inside "<ReferenceList>": hold that part back.
                tail = data.rfind(b"<", max(pos, len(data) - len(self.OPEN) + 1))
                if tail >= 0 and self.OPEN.startswith(data[tail:]):
                    self.held = data[tail:]
                    kept.append(data[pos:tail])
                else:
                    kept.append(data[pos:] if pos else data)
                break
            end, nested = self._close(data, start)
            if end < 0 or end + len(self.CLOSE) == len(data):
                if len(data) - start > MAX_TEXT_BYTES or data.find(b"</PubmedData", start) >= 0:
                    kept.append(data[pos:])  # no end tag where it should be: the parser judges
                else:
                    self.held = data[start:]
                    kept.append(data[pos:start])
                break
            after = end + len(self.CLOSE) + 1
            if data[after - 1] != 0x3E or nested:  # ">"
                kept.append(data[pos:after])  # the parser takes this one as it is
            else:
                kept.append(data[pos:start])
                if self.keep_lines:
                    kept.append(self._blank(data, start, after))
            pos = after
        return b"".join(kept) if len(kept) > 1 else kept[0]

    @classmethod
    def _close(cls, data: bytes, start: int) -> tuple[int, bool]:
        """Where the first "</ReferenceList" after the list opened at `start` begins (-1: not in
        `data`), and whether a "<ReferenceList" comes before it (a list inside this one).

        One search for the name finds both: the list's bytes are scanned once, not twice (a
        scan is most of what skipping costs, ~15 us a modern record). The name elsewhere (in
        a cited title, say) is passed over.
        """
        nested = False
        at = data.find(cls.NAME, start + len(cls.OPEN))
        while at >= 0:
            if data[at - 1] == 0x2F and data[at - 2] == 0x3C:  # "</"
                return at - 2, nested
            if data[at - 1] == 0x3C:  # "<"
                nested = True
            at = data.find(cls.NAME, at + 1)
        return -1, nested

    @staticmethod
    def _blank(data: bytes, start: int, end: int) -> bytes:
        """What stands in for data[start:end]: its line breaks, then a space for each byte
        after the last one, so that the parser counts every later line and column as the
        file's (NLM's files put the end tag on a line of its own: a few spaces)."""
        last = data.rfind(b"\n", start, end)
        if last < 0:
            return b" " * (end - start)
        return b"\n" * data.count(b"\n", start, end) + b" " * (end - last - 1)

    def rest(self) -> bytes:
        held, self.held = self.held, b""
        return held


def _has_opener(data: bytes) -> bool:
    """Whether `data` holds "<!" or "<?" (a comment, CDATA, DOCTYPE or processing instruction).

    Found from the rare "!" and "?" with one-byte searches: a two-byte search stops at every
    "<" of XML and costs ~80 times as much (56 against 0.7 us on 64 KB of modern records),
    a tenth of parsing.
    """
    for mark in (b"!", b"?"):
        at = data.find(mark, 1)
        while at != -1:
            if data[at - 1] == 0x3C:  # "<"
                return True
            at = data.find(mark, at + 1)
    return False


class _SizeGuard:
    """Refuses a file whose single pieces are too large, before the parser holds them.

    Looks at each chunk with a few C-speed byte searches: the run since the last '<' (a text,
    a whitespace run or a tag), any comment, CDATA section or processing instruction (which
    may contain '<', and which expat 2.5 rescans from its start on every feed: a huge one
    spins the CPU), and the bytes and tags since the last article ended.
    """

    _OPENER = re.compile(rb"<!--|<!\[CDATA\[|<\?")
    _CLOSER = {b"<!--": b"-->", b"<![CDATA[": b"]]>", b"<?": b"?>"}
    _KIND = {b"-->": "comment", b"]]>": "CDATA section", b"?>": "processing instruction"}
    _OVERLAP = 8  # the longest opener less one: finds openers and closers split between chunks

    def __init__(self, source: str):
        self.source = source
        self.run = 0
        self.closer: bytes | None = None
        self.inside = 0
        self.tail = b""
        self.article_bytes = 0
        self.article_tags = 0
        # Chunks of the current span whose tags are not counted yet. A tag starts with "<",
        # so a span of at most MAX_ARTICLE_TAGS bytes cannot hold too many tags: counting
        # waits until a span is longer, which no real article is (counting every chunk was
        # 3% of the instructions of parsing a modern file).
        self.uncounted: list[bytes] = []

    def article_ended(self) -> None:
        self.article_bytes = self.article_tags = 0
        self.uncounted = []

    def check(self, chunk: bytes) -> None:
        first = chunk.find(b"<")
        if first < 0:
            self.run += len(chunk)
        else:
            self._limit(self.run + first, MAX_TEXT_BYTES, "a single text or tag")
            self.run = len(chunk) - chunk.rfind(b"<") - 1
        self._limit(self.run, MAX_TEXT_BYTES, "a single text or tag")
        self.article_bytes += len(chunk)
        if self.article_bytes <= MAX_ARTICLE_TAGS:
            self.uncounted.append(chunk)
        else:
            for earlier in self.uncounted:
                self.article_tags += earlier.count(b"<")
            self.uncounted = []
            self.article_tags += chunk.count(b"<")
        self._limit(self.article_bytes, MAX_ARTICLE_BYTES, "a single article")
        if self.article_tags > MAX_ARTICLE_TAGS:
            raise ParseError(
                f"{self.source}: a single article holds more than {MAX_ARTICLE_TAGS:,} tags; "
                "no PubMed record comes near that. Refused: it may be an attack or not PubMed."
            )
        self._markup(chunk)

    def _markup(self, chunk: bytes) -> None:
        data = self.tail + chunk
        if self.closer is None and not _has_opener(data):
            self.tail = chunk[-self._OVERLAP:]  # the usual case: plain elements only
            return
        pos = 0
        while True:
            if self.closer is None:
                found = self._OPENER.search(data, pos)
                if found is None:
                    break
                self.closer = self._CLOSER[found.group()]
                self.inside = 0
                pos = found.end()
            end = data.find(self.closer, pos)
            if end < 0:
                self.inside += len(data) - pos
                break
            self.inside += end - pos
            self._limit(self.inside, MAX_MARKUP_BYTES, f"a single {self._KIND[self.closer]}")
            pos = end + len(self.closer)
            self.closer = None
        if self.closer is not None:
            self._limit(self.inside, MAX_MARKUP_BYTES, f"a single {self._KIND[self.closer]}")
        self.tail = chunk[-self._OVERLAP:]

    def _limit(self, size: int, limit: int, what: str) -> None:
        if size > limit:
            raise ParseError(
                f"{self.source}: {what} is more than {limit // 2**20} MB; no PubMed record comes "
                "near that. Refused: it may be an attack or not PubMed."
            )


class _RootFound(Exception):
    def __init__(self, tag: str) -> None:
        self.tag = tag


class _Hostile(Exception):
    pass


def _read_prolog(stream: BinaryIO, source: str) -> tuple[bytes, str]:
    """Read up to the root element with a bare expat parser, rejecting entity declarations.

    ElementTree expands internal entities and cannot be told not to, so the prolog is checked
    first: PubMed's DOCTYPE only names an external DTD (never fetched) and declares nothing.
    Returns the bytes read (to be fed to the real parser) and the root element's name.
    """
    checker = expat.ParserCreate()

    def refuse_entity(name, is_parameter, *_):
        raise _Hostile(f"declares the entity {'%' if is_parameter else ''}{name}")

    def found_root(tag, _attrs):
        raise _RootFound(tag)

    checker.EntityDeclHandler = refuse_entity
    checker.UnparsedEntityDeclHandler = refuse_entity
    checker.StartElementHandler = found_root

    head = b""
    for chunk in _chunks(stream, source):
        if not head:
            # A 2015 efetch answer starts with a blank line, which expat refuses before <?xml.
            chunk = chunk.lstrip()
            if not chunk:
                continue
            _sniff_wrong_format(chunk, source)
        head += chunk
        try:
            checker.Parse(chunk, False)
        except _RootFound as found:
            return head, found.tag
        except _Hostile as why:
            raise ParseError(
                f"{source}: refused: its DOCTYPE {why} (PubMed XML declares none; "
                "this file may be an attack)."
            ) from None
        except expat.ExpatError as err:
            raise _not_xml_error(source, err) from None
        if len(head) > _PROLOG_LIMIT:
            raise ParseError(
                f"{source}: no root element in the first {_PROLOG_LIMIT // 1024} KiB: not PubMed XML."
            )
    if not head:
        raise ParseError(f"{source}: empty: expected PubMed XML; fetch it again.")
    raise ParseError(f"{source}: ends before its root element: the download was cut off; fetch it again.")


def _sniff_wrong_format(head: bytes, source: str) -> None:
    start = head[:200].lower()
    if start.startswith((b"<!doctype html", b"<html")):
        raise ParseError(
            f"{source}: an HTML page, not PubMed XML (NCBI may be down, or the request "
            "lacked retmode=xml): try again later."
        )
    if start.startswith((b"{", b"[")):
        snippet = head[:120].decode("utf-8", "replace").strip()
        raise ParseError(f"{source}: a JSON body, not PubMed XML: {snippet}")


def _not_xml_error(source: str, err: expat.ExpatError) -> ParseError:
    return ParseError(
        f"{source}: not XML ({expat.errors.messages.get(err.code, err)} at line {err.lineno}): "
        "expected a PubMed efetch answer or an NLM .xml/.xml.gz file."
    )


def _xml_error(source: str, err: ET.ParseError, at_end: bool = False) -> ParseError:
    line = err.position[0] if getattr(err, "position", None) else "?"
    if at_end and getattr(err, "code", None) in _TRUNCATED:
        return ParseError(
            f"{source}: the XML stops before its end (line {line}): the download was cut off; "
            "fetch it again."
        )
    return ParseError(f"{source}: broken XML ({err}): the file is corrupt; fetch it again.")


def _wrong_root_error(source: str, root_tag: str) -> ParseError:
    return ParseError(
        f"{source}: not PubMed XML: its root element is <{root_tag}>, "
        f"expected <{ROOT_TAG}> (efetch with db=pubmed&retmode=xml)."
    )


# ---------------------------------------------------------------- one article → record


def parse_article(elem: ET.Element) -> dict:
    """Turn one `<PubmedArticle>` element into a record with exactly `RECORD_KEYS`."""
    # Lookups use find/findall with a bare tag, which the C accelerator answers itself; a path
    # ("A/B") or iterfind goes through ElementPath in Python (with _text's fast path, this
    # function went from ~110 to ~55 µs per baseline record).
    citation = elem.find("MedlineCitation")
    if citation is None:
        raise ParseError("a PubmedArticle without MedlineCitation: not PubMed XML as NLM writes it.")
    article = citation.find("Article")
    if article is None:
        article = ET.Element("Article")
    pubmed_data = elem.find("PubmedData")
    journal = article.find("Journal")
    issue = journal.find("JournalIssue") if journal is not None else None
    pub_date = issue.find("PubDate") if issue is not None else None

    title = _rich_text(article.find("ArticleTitle"))
    vernacular = _rich_text(article.find("VernacularTitle"))
    sections = _abstract_sections(article)
    type_elems = _grandchildren(article, "PublicationTypeList", "PublicationType")
    publication_types = [_text(e) or "" for e in type_elems]
    publication_type_ids = [e.get("UI", "") for e in type_elems]
    corrections = _corrections(citation)
    languages = [t for t in (_text(e) for e in article.findall("Language")) if t]
    mesh_headings = _mesh_headings(citation)
    journal_info = citation.find("MedlineJournalInfo")
    article_ids = _article_ids(pubmed_data)
    elocation_ids = _elocation_ids(article)
    return {
        "pmid": _text(citation.find("PMID")) or "",
        "title": title or vernacular or "",
        "vernacular_title": vernacular,
        "title_is_translation": _is_translation(title),
        "abstract": _join_sections(sections),
        "abstract_sections": sections,
        "authors": _authors(article),
        "journal": _text(journal.find("Title")) if journal is not None else None,
        "journal_abbrev": _journal_abbrev(citation, journal),
        "year": _year(pub_date, article),
        "pub_date": _pub_date(pub_date),
        "volume": _text(issue.find("Volume")) if issue is not None else None,
        "issue": _text(issue.find("Issue")) if issue is not None else None,
        "pages": _pages(article),
        "doi": _first_id(elocation_ids, "doi") or _first_id(article_ids, "doi"),
        "pmcid": _first_id(article_ids, "pmc"),
        "publication_types": publication_types,
        "publication_type_ids": publication_type_ids,
        "mesh_terms": [h["descriptor"] for h in mesh_headings],
        # A heading is a major topic when its descriptor or any one qualifier is.
        "mesh_major": [
            h["descriptor"] for h in mesh_headings
            if h["major"] or any(q["major"] for q in h["qualifiers"])
        ],
        "keywords": [
            t for t in (_text(e) for e in _grandchildren(citation, "KeywordList", "Keyword")) if t
        ],
        "language": languages[0] if languages else None,
        "languages": languages,
        "status": citation.get("Status"),
        "date_revised": _iso_date(citation.find("DateRevised")),
        "date_completed": _iso_date(citation.find("DateCompleted")),
        "article_date": _article_date(article),
        "registry_numbers": _registry_numbers(article),
        "retracted": _is_retracted(publication_types, publication_type_ids, corrections),
        "corrections": corrections,
        "mesh_headings": mesh_headings,
        "pub_model": article.get("PubModel"),
        "publication_status": _text(pubmed_data.find("PublicationStatus")) if pubmed_data is not None else None,
        "history": _history(pubmed_data),
        "issns": _issns(journal, journal_info),
        "article_ids": article_ids,
        "elocation_ids": elocation_ids,
        "country": _text(journal_info.find("Country")) if journal_info is not None else None,
        "nlm_unique_id": _text(journal_info.find("NlmUniqueID")) if journal_info is not None else None,
        "owner": citation.get("Owner"),
        "citation_subsets": [t for t in (_text(e) for e in citation.findall("CitationSubset")) if t],
        "copyright": _text(_find_grandchild(article, "Abstract", "CopyrightInformation")),
    }


def _grandchildren(parent: ET.Element, child_tag: str, tag: str) -> list[ET.Element]:
    """What `parent.findall(f"{child_tag}/{tag}")` gives, in the same order."""
    return [grandchild for child in parent.findall(child_tag) for grandchild in child.findall(tag)]


def _find_grandchild(parent: ET.Element, child_tag: str, tag: str) -> ET.Element | None:
    """What `parent.find(f"{child_tag}/{tag}")` gives."""
    for child in parent.findall(child_tag):
        found = child.find(tag)
        if found is not None:
            return found
    return None


def _text(elem: ET.Element | None) -> str | None:
    """All inner text (own text, children's text and tails), markup dropped, spaces collapsed."""
    if elem is None:
        return None
    raw = elem.text if len(elem) == 0 else "".join(elem.itertext())
    # The commonest case (~70 fields a record: names, ids, dates), ahead of _fold's call: a
    # printable text holds no whitespace but " ", and without a double or outer one it is clean.
    if raw and raw.isprintable() and "  " not in raw and raw[0] != " " and raw[-1] != " ":
        return raw
    return _fold(raw)


def _fold(raw: str | None) -> str | None:
    """Collapse layout whitespace to single spaces and strip; None for nothing left."""
    if not raw:
        return None
    # The rule is _WS's; these paths give its result without its regex, which tries a match
    # at every character (~47 µs on a 1,500-character abstract). No printable character but
    # " " is whitespace, so a printable text needs at most split and join, and most texts
    # (names, dates, ids) not even that.
    if raw.isprintable():
        if "  " not in raw and raw[0] != " " and raw[-1] != " ":
            return raw
        return " ".join(raw.split()) or None
    if _ODD_SPACE.search(raw) is None:
        # Layout whitespace only: split and join collapse it exactly as _WS does.
        return " ".join(raw.split()) or None
    # A no-break or thin space: the pieces between layout characters, each stripped of the
    # odd spaces next to layout (those belong to the run), joined by one space.
    for layout in "\t\n\r":
        if layout in raw:
            raw = raw.replace(layout, " ")
    return " ".join(filter(None, map(str.strip, raw.split(" ")))) or None


# ---------------------------------------------------------------- markup that carries meaning

_MATHML = "{http://www.w3.org/1998/Math/MathML}"
_SUPERSCRIPT = str.maketrans("0123456789+-−=()ni", "⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁻⁼⁽⁾ⁿⁱ")
_SUBSCRIPT = str.maketrans(
    "0123456789+-−=()aehijklmnoprstuvx", "₀₁₂₃₄₅₆₇₈₉₊₋₋₌₍₎ₐₑₕᵢⱼₖₗₘₙₒₚᵣₛₜᵤᵥₓ"
)
# An accent MathML puts over a letter (the dot of V̇O₂) as the combining mark Unicode puts there.
_ACCENTS = {".": "\u0307", "˙": "\u0307", "¯": "\u0304", "‾": "\u0304", "^": "\u0302", "~": "\u0303",
            "→": "\u20d7", "¨": "\u0308"}


def _rich_text(elem: ET.Element | None) -> str | None:
    """Like `_text`, but a superscript, subscript or MathML formula keeps its sense.

    Dropping the tags of `<sup>3</sup>He` gives "3He", and MathML's prescripts come after
    their base in document order, so a tag-stripped "³He/¹²⁹Xe MRI" reads "He 3 / Xe 129 MRI".
    """
    if elem is None:
        return None
    if len(elem) == 0:
        return _fold(elem.text)
    parts: list[str] = []
    _inline(elem, parts)
    return _fold("".join(parts))


def _local(tag) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _inline(elem: ET.Element, parts: list[str]) -> None:
    """Append an inline element's content (not its tail) to `parts`."""
    if elem.text:
        parts.append(elem.text)
    for child in elem:
        name = _local(child.tag)
        if child.tag.startswith(_MATHML) or name == "math":
            parts.append(_math(child))
        elif name in ("sup", "sub"):
            inner: list[str] = []
            _inline(child, inner)
            parts.append(_script(_fold("".join(inner)) or "", name == "sup"))
        else:
            _inline(child, parts)
        if child.tail:
            parts.append(child.tail)


def _script(text: str, sup: bool) -> str:
    """Unicode super/subscript when every character has one, else NLM's "(...)" convention."""
    if not text:
        return ""
    table = _SUPERSCRIPT if sup else _SUBSCRIPT
    converted = text.translate(table)
    if all(a != b or a in "⁰¹²³⁴⁵⁶⁷⁸⁹₀₁₂₃₄₅₆₇₈₉" for a, b in zip(text, converted)):
        return converted
    return f"({text})"


def _math(elem: ET.Element) -> str:
    """A MathML element as plain text: tokens in reading order, scripts as `_script` makes them.

    Whitespace between MathML elements is layout; only token elements hold text.
    """
    name = _local(elem.tag)
    kids = [k for k in elem if _local(k.tag) not in ("annotation", "annotation-xml")]
    if name in ("mi", "mn", "mo", "mtext", "ms"):
        text = "".join(elem.itertext())
        # A token of only spaces (<mtext> </mtext>) is a space; a padded token is its text.
        return " " if text and not text.strip() else " ".join(text.split())
    if name == "mspace":
        return " "
    if name in ("none", "mprescripts", "malignmark", "maligngroup"):
        return ""
    rendered = [_math(k) for k in kids]
    if name == "msup" and len(rendered) == 2:
        return rendered[0] + _script(rendered[1].strip(), True)
    if name == "msub" and len(rendered) == 2:
        return rendered[0] + _script(rendered[1].strip(), False)
    if name == "msubsup" and len(rendered) == 3:
        return rendered[0] + _script(rendered[1].strip(), False) + _script(rendered[2].strip(), True)
    if name == "mmultiscripts" and rendered:
        names = [_local(k.tag) for k in kids]
        split = names.index("mprescripts") if "mprescripts" in names else len(kids)
        post, pre = rendered[1:split], rendered[split + 1 :]
        out = ""
        for i in range(0, len(pre) - 1, 2):
            out += _script(pre[i].strip(), False) + _script(pre[i + 1].strip(), True)
        out += rendered[0]
        for i in range(0, len(post) - 1, 2):
            out += _script(post[i].strip(), False) + _script(post[i + 1].strip(), True)
        return out
    if name in ("mover", "munder", "munderover") and rendered:
        base, marks = rendered[0], [r.strip() for r in rendered[1:]]
        if name == "mover" and len(marks) == 1 and marks[0] in _ACCENTS and len(base) == 1:
            return base + _ACCENTS[marks[0]]
        return base + "".join(marks)
    if name == "mfrac" and len(rendered) == 2:
        num, den = (r.strip() for r in rendered)
        num = num if len(num) <= 1 or num.isalnum() else f"({num})"
        den = den if len(den) <= 1 or den.isalnum() else f"({den})"
        return f"{num}/{den}"
    if name == "msqrt":
        inner = "".join(rendered).strip()
        return "√" + (inner if len(inner) <= 1 or inner.isalnum() else f"({inner})")
    if name == "mroot" and len(rendered) == 2:
        return _script(rendered[1].strip(), True) + "√(" + rendered[0].strip() + ")"
    if name == "mfenced":
        return elem.get("open", "(") + elem.get("separators", ",")[:1].join(rendered) + elem.get("close", ")")
    if name == "semantics":
        return rendered[0] if rendered else ""
    return "".join(rendered)


def _is_translation(title: str | None) -> bool:
    # NLM brackets an English title translated from another language: "[Title]." or "[Title?]".
    return bool(title) and title.startswith("[") and title.rstrip(".").endswith("]")


def _abstract_sections(article: ET.Element) -> list[dict]:
    sections = []
    for part in _grandchildren(article, "Abstract", "AbstractText"):
        text = _rich_text(part)
        if text is None:
            continue
        sections.append(
            {"label": part.get("Label") or None, "category": part.get("NlmCategory") or None, "text": text}
        )
    return sections


def _join_sections(sections: list[dict]) -> str | None:
    if not sections:
        return None
    return "\n".join(f"{s['label']}: {s['text']}" if s["label"] else s["text"] for s in sections)


_AUTHOR_FIELDS = frozenset({"LastName", "ForeName", "Initials", "CollectiveName", "Identifier"})


def _authors(article: ET.Element) -> list[dict]:
    authors = []
    for author in _grandchildren(article, "AuthorList", "Author"):
        # One pass over the author's children, with _text's clean-field test written out:
        # names and ORCIDs are nearly all clean, and a call per field was a third of this.
        last = fore = initials = collective = None
        affiliations, identifiers = [], []
        for child in author:
            tag = child.tag
            if tag == "AffiliationInfo":
                for e in child:
                    if e.tag == "Affiliation":
                        text = _text(e)
                        if text:
                            affiliations.append(text)
                continue
            if tag not in _AUTHOR_FIELDS:
                continue
            raw = child.text
            if raw and raw.isprintable() and "  " not in raw and raw[0] != " " and raw[-1] != " " and not len(child):
                value = raw
            else:
                value = _text(child)
            if tag == "LastName":
                last = value
            elif tag == "ForeName":
                fore = value
            elif tag == "Initials":
                initials = value
            elif tag == "Identifier":
                if value:
                    identifiers.append({"source": child.get("Source"), "id": value})
            else:
                collective = value
        authors.append(
            {
                "last_name": last,
                "fore_name": fore,
                "initials": initials,
                "collective_name": collective,
                "valid": author.get("ValidYN", "Y") != "N",
                "affiliations": affiliations,
                "identifiers": identifiers,
            }
        )
    return authors


def _journal_abbrev(citation: ET.Element, journal: ET.Element | None) -> str | None:
    abbrev = _text(_find_grandchild(citation, "MedlineJournalInfo", "MedlineTA"))
    if abbrev is None and journal is not None:
        abbrev = _text(journal.find("ISOAbbreviation"))
    return abbrev


def _year(pub_date: ET.Element | None, article: ET.Element) -> int | None:
    candidates = []
    if pub_date is not None:
        candidates += [_text(pub_date.find("Year")), _text(pub_date.find("MedlineDate"))]
    candidates.append(_text(_find_grandchild(article, "ArticleDate", "Year")))
    for value in candidates:
        match = _YEAR.search(value or "")
        if match:
            return int(match.group(1))
    return None


def _pub_date(pub_date: ET.Element | None) -> str | None:
    if pub_date is None:
        return None
    medline_date = _text(pub_date.find("MedlineDate"))
    if medline_date:
        return medline_date
    parts = [_text(pub_date.find("Year")), _month_name(_text(pub_date.find("Month")))]
    day = _text(pub_date.find("Day"))
    parts.append(day.lstrip("0") or day if day else None)
    parts.append(_text(pub_date.find("Season")))
    return " ".join(p for p in parts if p) or None


def _month_name(month: str | None) -> str | None:
    """PubMed shows "Jun" whether the XML says "Jun", "June" or "06"."""
    number = _month_number(month)
    return _MONTHS[number - 1] if number else month


def _month_number(month: str | None) -> int | None:
    if not month:
        return None
    if month.isdigit():
        number = int(month)
        return number if 1 <= number <= 12 else None
    return _MONTH_NUMBER.get(month[:3].lower())


def _iso_date(elem: ET.Element | None) -> str | None:
    if elem is None:
        return None
    try:
        return date(
            int(_text(elem.find("Year")) or ""),
            _month_number(_text(elem.find("Month"))) or 0,
            int(_text(elem.find("Day")) or ""),
        ).isoformat()
    except ValueError:
        return None


def _article_date(article: ET.Element) -> str | None:
    dates = article.findall("ArticleDate")
    electronic = [d for d in dates if d.get("DateType", "Electronic") == "Electronic"]
    return _iso_date((electronic or dates or [None])[0])


def _pages(article: ET.Element) -> str | None:
    pagination = article.find("Pagination")
    if pagination is None:
        return None
    medline_pgn = _text(pagination.find("MedlinePgn"))
    if medline_pgn:
        return medline_pgn
    start, end = _text(pagination.find("StartPage")), _text(pagination.find("EndPage"))
    if start and end:
        return f"{start}-{end}"
    return start


def _first_id(ids: list[dict], id_type: str) -> str | None:
    """The first id of a type in `_article_ids` or `_elocation_ids` (valid, not empty).

    The DOI is the first valid ELocationID of type doi, else PubmedData's ArticleId.
    """
    for entry in ids:
        if entry["type"] == id_type:
            return entry["id"]
    return None


def _mesh_headings(citation: ET.Element) -> list[dict]:
    """Every MeshHeading: descriptor ("" when it has none), its UI, and its qualifiers."""
    headings = []
    for heading in _grandchildren(citation, "MeshHeadingList", "MeshHeading"):
        descriptor = None
        qualifiers = []
        for child in heading:
            if child.tag == "DescriptorName":
                descriptor = child
            elif child.tag == "QualifierName":
                # MeSH names are plain text: split/join does _text's work without the call.
                qualifiers.append(
                    {"name": " ".join((child.text or "").split()), "ui": child.get("UI"),
                     "major": child.get("MajorTopicYN") == "Y"}
                )  # fmt: skip
        headings.append(
            {
                "descriptor": " ".join((descriptor.text or "").split()) if descriptor is not None else "",
                "ui": descriptor.get("UI") if descriptor is not None else None,
                "major": descriptor is not None and descriptor.get("MajorTopicYN") == "Y",
                "qualifiers": qualifiers,
            }
        )
    return headings


def _history(pubmed_data: ET.Element | None) -> list[dict]:
    if pubmed_data is None:
        return []
    history = []
    for entry in _grandchildren(pubmed_data, "History", "PubMedPubDate"):
        # Numbers only, so findtext and int() do what _text would, for a sixth of the time.
        try:
            day = date(
                int(entry.findtext("Year") or ""), int(entry.findtext("Month") or ""),
                int(entry.findtext("Day") or ""),
            ).isoformat()  # fmt: skip
        except ValueError:
            day = _iso_date(entry)  # a month written as a name
            if day is None:
                continue
        hour, minute = entry.findtext("Hour"), entry.findtext("Minute")
        time = None
        if hour is not None and hour.strip().isdigit() and (minute is None or minute.strip().isdigit()):
            time = f"{int(hour):02d}:{int(minute or 0):02d}"
        history.append({"status": entry.get("PubStatus"), "date": day, "time": time})
    return history


def _issns(journal: ET.Element | None, journal_info: ET.Element | None) -> list[dict]:
    issns = []
    if journal is not None:
        for issn in journal.findall("ISSN"):
            value = _text(issn)
            if value:
                issns.append({"issn": value, "type": issn.get("IssnType")})
    linking = _text(journal_info.find("ISSNLinking")) if journal_info is not None else None
    if linking:
        issns.append({"issn": linking, "type": "Linking"})
    return issns


def _article_ids(pubmed_data: ET.Element | None) -> list[dict]:
    # Only PubmedData's own list: ReferenceList entries carry ArticleIdLists of cited works.
    if pubmed_data is None:
        return []
    return [
        {"type": e.get("IdType"), "id": value}
        for e in _grandchildren(pubmed_data, "ArticleIdList", "ArticleId")
        if (value := _text(e))
    ]


def _elocation_ids(article: ET.Element) -> list[dict]:
    return [
        {"type": e.get("EIdType"), "id": value}
        for e in article.findall("ELocationID")
        if e.get("ValidYN", "Y") != "N" and (value := _text(e))
    ]


def _registry_numbers(article: ET.Element) -> list[dict]:
    numbers = []
    for bank in _grandchildren(article, "DataBankList", "DataBank"):
        name = _text(bank.find("DataBankName"))
        for accession in _grandchildren(bank, "AccessionNumberList", "AccessionNumber"):
            value = _text(accession)
            if value:
                numbers.append({"bank": name, "accession": value})
    return numbers


def _corrections(citation: ET.Element) -> list[dict]:
    return [
        {
            "type": entry.get("RefType"),
            "pmid": _text(entry.find("PMID")),
            "source": _text(entry.find("RefSource")),
        }
        for entry in _grandchildren(citation, "CommentsCorrectionsList", "CommentsCorrections")
    ]


def _is_retracted(types: list[str], type_ids: list[str], corrections: list[dict]) -> bool:
    return (
        "Retracted Publication" in types
        or RETRACTED_PUBLICATION_UI in type_ids
        or any(c["type"] == "RetractionIn" for c in corrections)
    )
