"""MEDLINE / .nbib text (PubMed's "Send to: Citation manager") → the same records as `evidence.pubmed`.

Read with `Bio.Medline`, plus one pass over each record's lines in order, which Bio.Medline's
dict of lists loses: which AD (affiliation) and AUID (ORCID) lines follow which author, and
where a collective author (CN) stands among the persons. The keys are those of
`evidence.pubmed.RECORD_KEYS`; a field MEDLINE text does not carry is None (or [] for lists):
`publication_type_ids`, each section's `category`, MeSH and qualifier UIs, author `initials`
when only FAU is given, and so on. An old record's single AD line, written before its
authors, belongs to the first author (NLM recorded the first author's affiliation only).
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
# A section label is an upper-case run ending in ": " at the start of the abstract or right
# after a sentence ends, as PubMed flattens structured abstracts ("BACKGROUND: ... METHODS: ...").
# Requiring the sentence boundary keeps "HIV: " or "95% CI: " mid-sentence from splitting.
_SECTION = re.compile(r"(?:^|(?<=[.?!)\]] ))([A-Z][A-Z0-9]*(?:[ ,&/-]+[A-Z0-9]+)*): ")
_MIN_LABEL = 3
# "10.1016/x [doi]": one LID or AID value; Bio.Medline joins repeated LID lines with a space.
_TAGGED_ID = re.compile(r"(\S+) \[([\w-]+)\]")
# "1533-4406 (Electronic)"; Bio.Medline joins repeated IS lines with a space.
_ISSN = re.compile(r"(\S+) \(([A-Za-z]+)\)")
# "2021/05/13 20:14 [entrez]", or without the time in old records.
_PHST = re.compile(r"^(\d{4})/(\d{2})/(\d{2})(?: (\d{2}):(\d{2}))? \[([^\]]+)\]$")
# The author tags whose order matters, and what continues a wrapped AD line.
_AUTHOR_TAGS = ("FAU", "AU", "CN", "AD", "AUID")
_CONTINUATION = "      "

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

    # Bounded first (limits on every line, field and record), then author lines kept.
    lines = _Lines(_bounded_lines(stream, source))
    try:
        for number, raw in enumerate(Medline.parse(lines), start=1):
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
            yield _record(raw, lines.take())
    except UnicodeDecodeError as err:
        raise ParseError(f"{source}: not text ({err.reason}): expected a MEDLINE/.nbib file.") from None
    except OSError as err:
        raise ParseError(f"{source}: cannot read it ({err}): check the file.") from None


class _Lines:
    """The stream's lines for Bio.Medline, keeping the author lines read since the last `take()`.

    Bio.Medline yields a record when it reads the blank line after it, so at that moment the
    kept lines are exactly that record's. Only author lines (and an AD's continuations) are
    kept: the rest Bio.Medline holds already, and a huge file must not be held twice.
    """

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.kept: list[str] = []

    def __iter__(self):
        tag = ""
        for line in self.stream:
            if not line.startswith(_CONTINUATION):
                tag = line[:4].rstrip()
            if tag in _AUTHOR_TAGS:
                self.kept.append(line)
            yield line

    def take(self) -> list[str]:
        kept, self.kept = self.kept, []
        return kept


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


def _record(raw: dict, lines: list[str] | None = None) -> dict:
    title = _clean(raw.get("TI"))
    vernacular = _clean(raw.get("TT"))
    sections = _split_abstract(_clean(raw.get("AB")))
    publication_types = _items(raw, "PT")
    corrections = _corrections(raw)
    languages = _items(raw, "LA")
    pub_date = _clean(raw.get("DP"))
    mesh_headings = [_mesh_heading(h) for h in _items(raw, "MH")]
    pmid = raw["PMID"].strip()
    return {
        "pmid": pmid,
        "title": title or vernacular or "",
        "vernacular_title": vernacular,
        "title_is_translation": bool(title) and title.startswith("[") and title.rstrip(".").endswith("]"),
        "abstract": "\n".join(f"{s['label']}: {s['text']}" if s["label"] else s["text"] for s in sections)
        or None,
        "abstract_sections": sections,
        "authors": _authors(raw, lines),
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
        "mesh_terms": [h["descriptor"] for h in mesh_headings],
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
        "mesh_headings": mesh_headings,
        "pub_model": _clean(raw.get("PUBM")),
        "publication_status": _clean(raw.get("PST")),
        "history": _history(raw),
        "issns": [{"issn": m.group(1), "type": m.group(2)} for m in _ISSN.finditer(_clean(raw.get("IS")) or "")],
        "article_ids": _article_ids(raw, pmid),
        "elocation_ids": _tagged_ids(raw, "LID"),
        "country": _clean(raw.get("PL")),
        "nlm_unique_id": _clean(raw.get("JID")),
        "owner": _clean(raw.get("OWN")),
        "citation_subsets": (_clean(raw.get("SB")) or "").split(),
        "copyright": _clean(raw.get("CI")),
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


def _author_lines(lines: list[str]) -> list[tuple[str, str]]:
    """(tag, value) for the author tags, in file order, wrapped AD lines joined."""
    pairs: list[tuple[str, str]] = []
    tag = ""
    for line in lines:
        if line.startswith(_CONTINUATION):
            if tag == "AD" and line.strip():
                pairs[-1] = ("AD", pairs[-1][1] + " " + line.strip())
            continue
        tag = line[:4].rstrip()
        if tag in _AUTHOR_TAGS and line[4:6] == "- ":
            pairs.append((tag, line[6:].strip()))
    return [(t, _clean(v) or "") for t, v in pairs]


def _authors(raw: dict, lines: list[str] | None) -> list[dict]:
    if lines is None:
        lines = []
    authors: list[dict] = []
    pending_fau: str | None = None
    orphan_affiliations: list[str] = []
    for tag, value in _author_lines(lines):
        if tag == "FAU":
            if pending_fau is not None:  # a FAU without its AU
                authors.append(_person(pending_fau, None))
            pending_fau = value
        elif tag == "AU":
            authors.append(_person(pending_fau, value))
            pending_fau = None
        elif tag == "CN":
            if pending_fau is not None:
                authors.append(_person(pending_fau, None))
                pending_fau = None
            authors.append(_group(value))
        else:
            if pending_fau is not None:
                authors.append(_person(pending_fau, None))
                pending_fau = None
            if not authors:
                if tag == "AD":
                    orphan_affiliations.append(value)
                continue
            if tag == "AD":
                authors[-1]["affiliations"].append(value)
            else:
                source, _, identifier = value.partition(":")
                authors[-1]["identifiers"].append(
                    {"source": source.strip(), "id": identifier.strip()} if identifier else {"source": None, "id": value}
                )
    if pending_fau is not None:
        authors.append(_person(pending_fau, None))
    if not authors and not lines:
        # Called without the record's lines: fall back on Bio.Medline's lists.
        full, short = _items(raw, "FAU"), _items(raw, "AU")
        for i in range(max(len(full), len(short))):
            authors.append(_person(full[i] if i < len(full) else None, short[i] if i < len(short) else None))
        authors += [_group(name) for name in _items(raw, "CN")]
    if orphan_affiliations and authors:
        authors[0]["affiliations"] = orphan_affiliations + authors[0]["affiliations"]
    return authors


def _group(name: str) -> dict:
    return {
        "last_name": None, "fore_name": None, "initials": None, "collective_name": name,
        "valid": True, "affiliations": [], "identifiers": [],
    }  # fmt: skip


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
    return {
        "last_name": last, "fore_name": fore, "initials": initials, "collective_name": None,
        "valid": True, "affiliations": [], "identifiers": [],
    }  # fmt: skip


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
    for item in _tagged_ids(raw, "LID") + _tagged_ids(raw, "AID"):
        if item["type"] == "doi":
            return item["id"]
    return None


def _tagged_ids(raw: dict, key: str) -> list[dict]:
    """LID or AID values ("S0965-2299(21)00078-9 [pii]") as {type, id}, in file order."""
    return [
        {"type": m.group(2), "id": m.group(1)}
        for value in _items(raw, key)
        for m in _TAGGED_ID.finditer(value)
    ]


def _article_ids(raw: dict, pmid: str) -> list[dict]:
    """PubMed XML's ArticleIdList as MEDLINE spreads it: the PMID, AID lines, PMC and MID."""
    ids = [{"type": "pubmed", "id": pmid}] + _tagged_ids(raw, "AID")
    for key, id_type in (("PMC", "pmc"), ("MID", "mid")):
        ids += [{"type": id_type, "id": value} for value in _items(raw, key)]
    return ids


def _history(raw: dict) -> list[dict]:
    history = []
    for value in _items(raw, "PHST"):
        match = _PHST.match(value)
        if not match:
            continue
        year, month, day, hour, minute, status = match.groups()
        try:
            iso = date(int(year), int(month), int(day)).isoformat()
        except ValueError:
            continue
        history.append({"status": status, "date": iso, "time": f"{hour}:{minute}" if hour else None})
    return history


def _descriptor(heading: str) -> str:
    return heading.split("/", 1)[0].lstrip("*").strip()


def _mesh_heading(heading: str) -> dict:
    """ "Aspirin/*administration & dosage/adverse effects" -> descriptor, major, qualifiers."""
    descriptor, *qualifiers = (part.strip() for part in heading.split("/"))
    return {
        "descriptor": descriptor.lstrip("*").strip(),
        "ui": None,
        "major": descriptor.startswith("*"),
        "qualifiers": [
            {"name": q.lstrip("*").strip(), "ui": None, "major": q.startswith("*")} for q in qualifiers if q
        ],
    }


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
