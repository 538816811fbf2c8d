"""MEDLINE / .nbib text (PubMed's "Send to: Citation manager") → the same records as `evidence.pubmed`.

Read with `Bio.Medline`. The keys are those of `evidence.pubmed.RECORD_KEYS`; a field MEDLINE
text does not carry is None (or [] for lists): `publication_type_ids`, each section's
`category`, author `initials` when only FAU is given, and so on. Two things the text format
loses, and this parser cannot restore:
- where a collective author (CN) stood among the persons: collective names come last;
- whether a MeSH heading was major on the descriptor or on a qualifier: either marks it major.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Iterator, TextIO

from evidence.errors import ParseError
from evidence.guards import is_pmid

# MEDLINE's reference tags for CommentsCorrections, named as PubMed XML names their RefType.
CORRECTION_TAGS = {
    "RIN": "RetractionIn",
    "ROF": "RetractionOf",
    "PRIN": "PartialRetractionIn",
    "PROF": "PartialRetractionOf",
    "EIN": "ErratumIn",
    "EFR": "ErratumFor",
    "ECI": "ExpressionOfConcernIn",
    "ECF": "ExpressionOfConcernFor",
    "CRI": "CorrectedandRepublishedIn",
    "CRF": "CorrectedandRepublishedFrom",
    "RPI": "RepublishedIn",
    "RPF": "RepublishedFrom",
    "UIN": "UpdateIn",
    "UOF": "UpdateOf",
    "CIN": "CommentIn",
    "CON": "CommentOn",
    "SPIN": "SummaryForPatientsIn",
    "ORI": "OriginalReportIn",
}

_WS = re.compile(r"\s*[ \t\n\r]\s*")
_YEAR = re.compile(r"\b(\d{4})\b")
_CORRECTION_PMID = re.compile(r"\s*PMID:\s*(\d+)\s*$")
_DOI = re.compile(r"^(.*?)\s*\[doi\]$")
# A section label is an upper-case run ending in ": " at the start of the abstract or right
# after a sentence ends, as PubMed flattens structured abstracts ("BACKGROUND: ... METHODS: ...").
# Requiring the sentence boundary keeps "HIV: " or "95% CI: " mid-sentence from splitting.
_SECTION = re.compile(r"(?:^|(?<=[.?!)\]] ))([A-Z][A-Z0-9]*(?:[ ,&/-]+[A-Z0-9]+)*): ")
_MIN_LABEL = 3

# Limits on what one piece of MEDLINE text may hold, so memory stays far under the README's
# 200 MB whatever the file. Real records: a line is under 100 characters (NLM wraps at 80,
# authors' affiliations excepted), an abstract under 1,000 lines, a record under 1 MB. Bio.Medline
# holds a record whole, and joins continuation lines of MH and AD one by one (quadratic), so
# both the characters and the lines of one field are bounded.
MAX_LINE_CHARS = 1024 * 1024
MAX_FIELD_CHARS = 1024 * 1024
MAX_FIELD_LINES = 4_000
MAX_RECORD_CHARS = 16 * 1024 * 1024
MAX_BLANK_LINES = 100_000


def looks_like_medline(head: bytes) -> bool:
    """True when the bytes start (after blank lines) with a MEDLINE "PMID-" line."""
    text = head.lstrip(b"\xef\xbb\xbf").lstrip()
    return text.startswith(b"PMID-") or text.startswith(b"PMID -")


def iter_medline(stream: TextIO, source: str) -> Iterator[dict]:
    """Parse MEDLINE text into records with the keys of `evidence.pubmed.RECORD_KEYS`."""
    from Bio import Medline  # pulls in Bio's package init; only MEDLINE imports pay for it

    try:
        for number, raw in enumerate(Medline.parse(_bounded_lines(stream, source)), start=1):
            pmid = raw.get("PMID")
            if isinstance(pmid, str) and pmid.strip() and not is_pmid(pmid.strip()):
                raise ParseError(
                    f"{source}: record {number} has PMID {pmid.strip()!r}, which is not a PMID "
                    "(a whole number like 33984499, without a leading zero)."
                )
            if not isinstance(pmid, str) or not is_pmid(pmid.strip()):
                raise ParseError(
                    f"{source}: record {number} has no PMID line: not MEDLINE text "
                    "(expected lines like 'PMID- 12345678')."
                )
            yield _record(raw)
    except UnicodeDecodeError as err:
        raise ParseError(f"{source}: not text ({err.reason}): expected a MEDLINE/.nbib file.") from None
    except OSError as err:
        raise ParseError(f"{source}: cannot read it ({err}): check the file.") from None


def _bounded_lines(stream: TextIO, source: str) -> Iterator[str]:
    """The stream's lines, refusing any line, field, record or blank run past its limit."""
    field = record = field_lines = blanks = 0
    number = 0
    while True:
        line = stream.readline(MAX_LINE_CHARS + 1)
        if not line:
            return
        number += 1
        if number == 1:
            line = line.lstrip("\ufeff")  # a byte-order mark (Windows editors add one)
        if len(line) > MAX_LINE_CHARS:
            raise _too_large(source, f"line {number} is longer than {MAX_LINE_CHARS // 2**20} MB")
        if not line.strip():
            blanks += 1
            if blanks > MAX_BLANK_LINES:
                raise _too_large(source, f"more than {MAX_BLANK_LINES:,} blank lines in a row")
            if line in ("\n", "\r\n"):  # the end of a record, for Bio.Medline
                field = record = field_lines = 0
                yield line
                continue
        else:
            blanks = 0
        if line.startswith("      "):
            field += len(line)
            field_lines += 1
        else:
            field, field_lines = len(line), 1
        record += len(line)
        if field > MAX_FIELD_CHARS or field_lines > MAX_FIELD_LINES:
            raise _too_large(source, f"the field ending on line {number} is longer than "
                                     f"{MAX_FIELD_CHARS // 2**20} MB or {MAX_FIELD_LINES:,} lines")
        if record > MAX_RECORD_CHARS:
            raise _too_large(source, f"the record ending on line {number} is longer than "
                                     f"{MAX_RECORD_CHARS // 2**20} MB")
        yield line


def _too_large(source: str, what: str) -> ParseError:
    return ParseError(
        f"{source}: {what}; no PubMed record comes near that. Refused: it may be an attack or "
        "not MEDLINE text."
    )


def _record(raw: dict) -> dict:
    title = _clean(raw.get("TI"))
    vernacular = _clean(raw.get("TT"))
    sections = _split_abstract(_clean(raw.get("AB")))
    publication_types = _items(raw, "PT")
    corrections = _corrections(raw)
    languages = _items(raw, "LA")
    pub_date = _clean(raw.get("DP"))
    return {
        "pmid": raw["PMID"].strip(),
        "title": title or vernacular or "",
        "vernacular_title": vernacular,
        "title_is_translation": bool(title) and title.startswith("[") and title.rstrip(".").endswith("]"),
        "abstract": "\n".join(f"{s['label']}: {s['text']}" if s["label"] else s["text"] for s in sections)
        or None,
        "abstract_sections": sections,
        "authors": _authors(raw),
        "journal": _clean(raw.get("JT")),
        "journal_abbrev": _clean(raw.get("TA")),
        "year": _year(pub_date),
        "pub_date": pub_date,
        "volume": _clean(raw.get("VI")),
        "issue": _clean(raw.get("IP")),
        "pages": _clean(raw.get("PG")),
        "doi": _doi(raw),
        "pmcid": _clean(raw.get("PMC")),
        "publication_types": publication_types,
        "publication_type_ids": [],
        "mesh_terms": [_descriptor(h) for h in _items(raw, "MH")],
        "mesh_major": [_descriptor(h) for h in _items(raw, "MH") if "*" in h],
        "keywords": _items(raw, "OT"),
        "language": languages[0] if languages else None,
        "languages": languages,
        "status": _clean(raw.get("STAT")),
        "date_revised": _iso_date(raw.get("LR")),
        "date_completed": _iso_date(raw.get("DCOM")),
        "article_date": _iso_date(raw.get("DEP")),
        "registry_numbers": _registry_numbers(raw),
        "retracted": "Retracted Publication" in publication_types
        or any(c["type"] == "RetractionIn" for c in corrections),
        "corrections": corrections,
    }


def _split_abstract(abstract: str | None) -> list[dict]:
    """Split a flattened MEDLINE abstract into {label, category, text} sections at "LABEL: "."""
    if not abstract:
        return []
    starts = [m for m in _SECTION.finditer(abstract) if len(m.group(1)) >= _MIN_LABEL]
    if not starts:
        return [{"label": None, "category": None, "text": abstract}]
    sections = []
    lead = abstract[: starts[0].start()].strip()
    if lead:
        sections.append({"label": None, "category": None, "text": lead})
    for match, following in zip(starts, starts[1:] + [None]):
        end = following.start() if following else len(abstract)
        text = abstract[match.end() : end].strip()
        sections.append({"label": match.group(1), "category": None, "text": text})
    return sections


def _clean(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, list):
        value = " ".join(value)
    text = _WS.sub(" ", value).strip()
    return text or None


def _items(raw: dict, key: str) -> list[str]:
    value = raw.get(key) or []
    if isinstance(value, str):
        value = [value]
    return [t for t in (_clean(v) for v in value) if t]


def _authors(raw: dict) -> list[dict]:
    full, short = _items(raw, "FAU"), _items(raw, "AU")
    authors = []
    # FAU and AU come in pairs for persons; old records have only AU.
    for i in range(max(len(full), len(short))):
        fau = full[i] if i < len(full) else None
        au = short[i] if i < len(short) else None
        authors.append(_person(fau, au))
    for name in _items(raw, "CN"):
        authors.append(
            {"last_name": None, "fore_name": None, "initials": None, "collective_name": name, "valid": True}
        )
    return authors


def _person(fau: str | None, au: str | None) -> dict:
    last = fore = initials = None
    if fau:
        last, _, fore = (part.strip() for part in fau.partition(","))
        fore = fore or None
    if au:
        if last and au.startswith(last + " "):
            initials = au[len(last) + 1 :].strip() or None
        elif last is None:
            head, _, tail = au.rpartition(" ")
            last, initials = (head, tail) if head and tail.isupper() else (au, None)
    return {"last_name": last, "fore_name": fore, "initials": initials, "collective_name": None, "valid": True}


def _year(pub_date: str | None) -> int | None:
    match = _YEAR.search(pub_date or "")
    return int(match.group(1)) if match else None


def _iso_date(value) -> str | None:
    value = _clean(value)
    if not value or len(value) < 8 or not value[:8].isdigit():
        return None
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:8])).isoformat()
    except ValueError:
        return None


def _doi(raw: dict) -> str | None:
    for value in _items(raw, "LID") + _items(raw, "AID"):
        match = _DOI.match(value)
        if match and match.group(1):
            return match.group(1)
    return None


def _descriptor(heading: str) -> str:
    return heading.split("/", 1)[0].lstrip("*").strip()


def _registry_numbers(raw: dict) -> list[dict]:
    numbers = []
    for value in _items(raw, "SI"):
        bank, _, accession = value.partition("/")
        if accession:
            numbers.append({"bank": bank, "accession": accession})
    return numbers


def _corrections(raw: dict) -> list[dict]:
    corrections = []
    for tag, ref_type in CORRECTION_TAGS.items():
        for text in _rejoin(raw.get(tag)):
            match = _CORRECTION_PMID.search(text)
            corrections.append(
                {
                    "type": ref_type,
                    "pmid": match.group(1) if match else None,
                    "source": (text[: match.start()] if match else text).strip() or None,
                }
            )
    return corrections


def _rejoin(value) -> list[str]:
    """Undo Bio.Medline's split of a wrapped reference line: each reference ends with its PMID."""
    if not value:
        return []
    if isinstance(value, str):
        value = [value]
    joined, buffer = [], []
    for piece in value:
        buffer.append(piece.strip())
        if _CORRECTION_PMID.search(piece):
            joined.append(" ".join(buffer))
            buffer = []
    if buffer:
        joined.append(" ".join(buffer))
    return joined
