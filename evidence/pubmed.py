"""PubMed XML (efetch answers, NLM baseline/update files) → plain records, one dict per article.

Pure: no network, no database. Every record has exactly the keys in `RECORD_KEYS`:

- `pmid` (str); `title` (str: ArticleTitle's inner text with markup removed, or the
  VernacularTitle when ArticleTitle is empty; "" if neither); `vernacular_title` (str|None);
  `title_is_translation` (bool: PubMed shows a translated title in [brackets], kept in `title`)
- `abstract` (str|None: sections joined by "\\n", each "LABEL: text" when labelled);
  `abstract_sections` (list of {label, category, text}; `<Abstract>` only, not `<OtherAbstract>`)
- `authors` (list of {last_name, fore_name, initials, collective_name, valid}; None when absent;
  `valid` is False for ValidYN="N", which PubMed keeps to record a corrected name)
- `journal`, `journal_abbrev` (MedlineTA, else ISOAbbreviation), `year` (int|None),
  `pub_date` (as PubMed shows it: "2016 Jun 1", "1990 Spring" or the MedlineDate verbatim),
  `volume`, `issue`, `pages`, `doi`, `pmcid` (str|None)
- `publication_types`, `publication_type_ids`, `mesh_terms`, `mesh_major`, `keywords`,
  `languages` (lists of str); `language` (first language or None)
- `status` (MedlineCitation@Status), `date_revised`, `date_completed`, `article_date`
  ("YYYY-MM-DD" or None)
- `registry_numbers` (list of {bank, accession}), `retracted` (bool),
  `corrections` (list of {type, pmid, source}, every CommentsCorrections entry)

`<DeleteCitation>` blocks are not records: `iter_pubmed` hands their PMIDs to `on_delete`.
`<PubmedBookArticle>` (NCBI Bookshelf chapters) is skipped and counted in a log warning,
because its fields (book, editors, sections) do not fit the article record.
"""

from __future__ import annotations

import gzip
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


def open_pubmed_file(path: Path) -> BinaryIO:
    """Open a PubMed .xml or .xml.gz file for `iter_pubmed`; gzip is sniffed from its magic bytes."""
    path = Path(path)
    try:
        with path.open("rb") as probe:
            magic = probe.read(2)
        if magic == _GZIP_MAGIC:
            return gzip.open(path, "rb")  # type: ignore[return-value]
        return path.open("rb")
    except FileNotFoundError:
        raise ParseError(f"{path}: no such file: check the path.") from None
    except IsADirectoryError:
        raise ParseError(f"{path}: is a folder, not a PubMed XML file.") from None
    except OSError as err:
        raise ParseError(f"{path}: cannot read it ({err.strerror or err}): check its permissions.") from None


def parse_efetch(data: bytes, source: str = "efetch") -> list[dict]:
    """Parse one in-memory efetch answer into records; an empty PubmedArticleSet gives []."""
    return list(iter_pubmed(io.BytesIO(data), source))


def iter_pubmed(
    stream: BinaryIO,
    source: str,
    on_delete: Callable[[list[str]], None] | None = None,
) -> Iterator[dict]:
    """Stream records out of a PubmedArticleSet, in flat memory; raise ParseError on bad input.

    Records before a fault are yielded before the ParseError: a caller that must be
    all-or-nothing (one efetch batch) collects first, as `parse_efetch` does.
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
    for chunk in chain((head,), _chunks(stream, source)):
        fed += len(chunk)
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
                if cut > 0:
                    parser._setevents(events, ())
                    parser.feed(chunk[:cut])
                parser._setevents(events, ("end",))
                parser.feed(chunk[max(cut, 0):])
        except ET.ParseError as err:
            raise _xml_error(source, err) from None
        whole = len(root) - 1
        if whole >= 0 and any(event == "end" and elem is root[-1] for event, elem in events):
            whole += 1
        if whole > 0:
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
        raise _xml_error(source, err, at_end=True) from None
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
    for chunk in chain((head,), _chunks(stream, source)):
        fed += len(chunk)
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


def _chunks(stream: BinaryIO, source: str) -> Iterator[bytes]:
    while True:
        try:
            chunk = stream.read(_CHUNK)
        except (OSError, EOFError, zlib.error) as err:
            # gzip raises EOFError on a cut-off .gz, BadGzipFile (an OSError) on a damaged one.
            raise ParseError(
                f"{source}: cannot read it ({err}): the file is damaged or cut off; download it again."
            ) from None
        if not chunk:
            return
        if isinstance(chunk, str):
            raise ParseError(f"{source}: opened as text; open PubMed XML in binary mode ('rb').")
        yield chunk


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

    title = _text(article.find("ArticleTitle"))
    vernacular = _text(article.find("VernacularTitle"))
    sections = _abstract_sections(article)
    type_elems = _grandchildren(article, "PublicationTypeList", "PublicationType")
    publication_types = [_text(e) or "" for e in type_elems]
    publication_type_ids = [e.get("UI", "") for e in type_elems]
    corrections = _corrections(citation)
    languages = [t for t in (_text(e) for e in article.findall("Language")) if t]
    mesh_terms, mesh_major = _mesh(citation)
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
        "doi": _doi(article, pubmed_data),
        "pmcid": _article_id(pubmed_data, "pmc"),
        "publication_types": publication_types,
        "publication_type_ids": publication_type_ids,
        "mesh_terms": mesh_terms,
        "mesh_major": mesh_major,
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


def _is_translation(title: str | None) -> bool:
    # NLM brackets an English title translated from another language: "[Title]." or "[Title?]".
    return bool(title) and title.startswith("[") and title.rstrip(".").endswith("]")


def _abstract_sections(article: ET.Element) -> list[dict]:
    sections = []
    for part in _grandchildren(article, "Abstract", "AbstractText"):
        text = _text(part)
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


def _authors(article: ET.Element) -> list[dict]:
    return [
        {
            "last_name": _text(author.find("LastName")),
            "fore_name": _text(author.find("ForeName")),
            "initials": _text(author.find("Initials")),
            "collective_name": _text(author.find("CollectiveName")),
            "valid": author.get("ValidYN", "Y") != "N",
        }
        for author in _grandchildren(article, "AuthorList", "Author")
    ]


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


def _doi(article: ET.Element, pubmed_data: ET.Element | None) -> str | None:
    for location in article.findall("ELocationID"):
        if location.get("EIdType") == "doi" and location.get("ValidYN", "Y") != "N":
            doi = _text(location)
            if doi:
                return doi
    return _article_id(pubmed_data, "doi")


def _article_id(pubmed_data: ET.Element | None, id_type: str) -> str | None:
    # Only PubmedData's own list: ReferenceList entries carry ArticleIdLists of cited works.
    if pubmed_data is None:
        return None
    for article_id in _grandchildren(pubmed_data, "ArticleIdList", "ArticleId"):
        if article_id.get("IdType") == id_type:
            value = _text(article_id)
            if value:
                return value
    return None


def _mesh(citation: ET.Element) -> tuple[list[str], list[str]]:
    """Every heading's descriptor ("" when it has none), and those that are a major topic."""
    terms, major = [], []
    for heading in _grandchildren(citation, "MeshHeadingList", "MeshHeading"):
        descriptor = heading.find("DescriptorName")
        if descriptor is None:
            terms.append("")
            continue
        name = _text(descriptor) or ""
        terms.append(name)
        # A heading is a major topic when its descriptor or any one qualifier is.
        if descriptor.get("MajorTopicYN") == "Y" or any(
            q.get("MajorTopicYN") == "Y" for q in heading.findall("QualifierName")
        ):
            major.append(name)
    return terms, major


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
