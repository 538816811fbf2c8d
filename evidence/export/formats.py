"""Citation files for a clinic's reference manager: RIS, MEDLINE (.nbib), BibTeX, CSL-JSON, CSV.

Each writer takes the records (keys in DESIGN.md and evidence/pubmed.py) and returns text.
They are written by hand, to the conventions each format's readers follow (see the README's
"Readers" table, which tests/test_readers.py checks with the readers themselves):

- RIS: the full journal title in `T2`, the abbreviation in `J2` and `JA` (Zotero reads `JO` as
  the abbreviation, so `JO` is not written); a group author is one `AU` line ending in a comma;
  `DA` is `YYYY/MM/DD/` (a season or range goes in the fourth part); the PMID in `AN`
  (accession number) and as "PMID: n" in `M2`, which Zotero files under Extra, where it
  reads PMIDs.
- MEDLINE: PubMed's own tags and order, as close as the record allows (MeSH with subheadings
  and stars, DEP, PHST, IS, AD, [pii] ids, every LA, the Epub part of SO).
- BibTeX for biblatex and classic BibTeX alike: `journal` (biber reads it as `journaltitle`),
  `shortjournal`,
  `year`/`month`/`day` (a `date` for a season or range), the PMID as `eprint` with
  `eprinttype = {pubmed}`, multi-word surnames braced (`{de Hoon}`).
- CSL-JSON: `language` as a BCP 47 tag or absent, seasons and ranges kept, no closing period
  on titles (a style adds its own).

Retracted records are not dropped from citation files (a clinic may need to find them),
but each format carries the retraction where it has a place for it.
"""

from __future__ import annotations

import csv
import io
import json
import re

from evidence.export.citation import (
    author_full,
    author_short,
    clean,
    finding,
    language_tag,
    people,
    source_line,
    title_of,
    vancouver,
)

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
_SEASONS = {"spring": 1, "summer": 2, "autumn": 3, "fall": 3, "winter": 4}


def _is_retracted(record: dict) -> bool:
    return bool(record.get("retracted")) or "retracted" in (record.get("flags") or [])


def split_pages(pages: str | None) -> tuple[str, str]:
    """`123-9` -> (`123`, `129`): MEDLINE abbreviates the last page; reference managers do not."""
    text = clean(pages)
    if not text:
        return "", ""
    first, _, last = text.partition(",")[0].partition("-")
    first, last = first.strip(), last.strip()
    if first.isdigit() and last.isdigit() and len(last) < len(first):
        last = first[: len(first) - len(last)] + last
    return first, last


def bare_title(record: dict) -> str:
    """The title without PubMed's closing period: a citation style adds its own punctuation."""
    title = title_of(record)
    return title[:-1] if title.endswith(".") and not title.endswith("..") else title


def _month(token: str) -> int | None:
    if token.isdigit():
        return int(token) if 1 <= int(token) <= 12 else None
    return _MONTHS.get(token[:3].lower()) if len(token) >= 3 else None


def parse_pub_date(record: dict) -> dict:
    """PubMed's date text as parts: {"start": [y, m, d], "end": [...] | None, "season", "text"}.

    `2016 Jun 1` -> start [2016, 6, 1]; `2021 Jan-Mar` -> start [2021, 1], end [2021, 3];
    `1998 Dec-1999 Jan` -> a range over two years; `1990 Spring` -> start [1990], season
    "Spring". Whatever else NLM wrote keeps its year and its text.
    """
    text = clean(record.get("pub_date"))
    year = record.get("year")
    tokens = text.split()
    if tokens and tokens[0][:4].isdigit():
        year = int(tokens[0][:4])
    out = {"start": [year] if year else [], "end": None, "season": None, "text": text}
    if not year or len(tokens) < 2:
        return out
    rest = " ".join(tokens[1:])
    match = re.fullmatch(r"([A-Za-z]+)(?: (\d{1,2}))?", rest)
    if match and match.group(1).lower() in _SEASONS and not match.group(2):
        out["season"] = match.group(1)
        return out
    if match and _month(match.group(1)):
        out["start"] = [year, _month(match.group(1))] + ([int(match.group(2))] if match.group(2) else [])
        return out
    # Ranges: "Jan-Mar", "Jun 7-13", "Dec-1999 Jan".
    match = re.fullmatch(r"([A-Za-z]+)(?: (\d{1,2}))?-(?:(\d{4}) )?([A-Za-z]+|\d{1,2})(?: (\d{1,2}))?", rest)
    if match:
        m1, d1, y2, second, d2 = match.groups()
        if _month(m1):
            start = [year, _month(m1)] + ([int(d1)] if d1 else [])
            if second.isdigit() and d1 and not y2:  # "Jun 7-13": days
                end = [year, _month(m1), int(second)]
            elif _month(second):
                end = [int(y2) if y2 else year, _month(second)] + ([int(d2)] if d2 else [])
            else:
                return out
            out["start"], out["end"] = start, end
    return out


def date_parts(record: dict) -> list[list[int]]:
    """CSL `date-parts`: `2016 Jun 1` -> [[2016, 6, 1]]; `2021 Jan-Mar` -> [[2021, 1], [2021, 3]].

    A season is CSL's month 21-24 (`1990 Spring` -> [[1990, 21]]): pandoc prints it, while it
    ignores CSL-JSON's separate "season" key.
    """
    parsed = parse_pub_date(record)
    if not parsed["start"]:
        return []
    if parsed["season"]:
        return [[parsed["start"][0], 20 + _SEASONS[parsed["season"].lower()]]]
    return [parsed["start"]] + ([parsed["end"]] if parsed["end"] else [])


def pubmed_url(record: dict) -> str:
    """The record's page on PubMed."""
    return f"https://pubmed.ncbi.nlm.nih.gov/{clean(record.get('pmid'))}/"


def _issn(record: dict) -> str:
    """One ISSN for formats that hold one: print, else electronic, else the linking ISSN."""
    by_type = {}
    for item in record.get("issns") or []:
        by_type.setdefault(item.get("type"), clean(item.get("issn")))
    return by_type.get("Print") or by_type.get("Electronic") or by_type.get("Linking") or ""


# --- RIS -------------------------------------------------------------------------------


def _ris_date(record: dict) -> str:
    """RIS `DA`: `YYYY/MM/DD/other`, unknown parts empty; a season or range goes in `other`."""
    parsed = parse_pub_date(record)
    start = parsed["start"]
    if not start:
        return ""
    if parsed["end"] or parsed["season"]:
        other = parsed["text"].split(" ", 1)[1] if " " in parsed["text"] else ""
        return f"{start[0]:04d}///{other}"
    month = f"{start[1]:02d}" if len(start) > 1 else ""
    day = f"{start[2]:02d}" if len(start) > 2 else ""
    return f"{start[0]:04d}/{month}/{day}/"


def _ris_author(author: dict) -> str:
    # Zotero (and EndNote) read an AU line with nothing after its comma as one name.
    if clean(author.get("collective_name")):
        return clean(author["collective_name"]) + ","
    return author_full(author)


def to_ris(records: list[dict]) -> str:
    """RIS, one `TY  - JOUR` … `ER  - ` block per record."""
    out: list[str] = []

    def tag(name: str, value) -> None:
        value = clean(str(value)) if value is not None else ""
        if value:
            out.append(f"{name}  - {value}")

    for r in records:
        tag("TY", "JOUR")
        for a in people(r):
            tag("AU", _ris_author(a))
        tag("TI", bare_title(r))
        tag("T2", r.get("journal") or r.get("journal_abbrev"))
        tag("J2", r.get("journal_abbrev"))
        tag("JA", r.get("journal_abbrev"))
        tag("PY", r.get("year"))
        tag("DA", _ris_date(r))
        tag("VL", r.get("volume"))
        tag("IS", r.get("issue"))
        start, end = split_pages(r.get("pages"))
        tag("SP", start)
        tag("EP", end)
        tag("SN", _issn(r))
        tag("DO", r.get("doi"))
        tag("AN", r.get("pmid"))
        tag("M2", f"PMID: {clean(r.get('pmid'))}")
        if r.get("pmcid"):
            tag("M2", f"PMCID: {clean(r['pmcid'])}")
        tag("UR", pubmed_url(r))
        tag("DP", "PubMed")
        tag("LA", language_tag(r.get("language")) or r.get("language"))
        tag("AB", r.get("abstract"))
        for word in list(r.get("keywords") or []) + list(r.get("mesh_terms") or []):
            tag("KW", word)
        if r.get("pmcid"):
            tag("N1", f"PMCID: {r['pmcid']} (free full text)")
        if _is_retracted(r):
            tag("N1", "RETRACTED: this article has been retracted.")
        if clean(r.get("note")):
            tag("N1", f"Note: {clean(r['note'])}")
        out.append("ER  - ")
        out.append("")
    return "\n".join(out)


# --- MEDLINE (.nbib) -------------------------------------------------------------------

# PubMed wraps MEDLINE lines near 88 characters; a continuation starts with 6 spaces.
_NBIB_WIDTH = 88
# Fields a MEDLINE reader joins back with spaces. Other fields (FAU, AU, PT, …) are lists,
# where a continuation line would become a new item, so those are never wrapped.
_NBIB_WRAPPED = {"TI", "AB", "CI", "AD", "TT", "JT", "SO", "MH", "OT"}
# MEDLINE's tags for CommentsCorrections, by PubMed XML's RefType ("Cites" has none).
_NBIB_CORRECTIONS = {
    "RetractionIn": "RIN", "RetractionOf": "ROF", "PartialRetractionIn": "PRIN",
    "PartialRetractionOf": "PROF", "ErratumIn": "EIN", "ErratumFor": "EFR",
    "ExpressionOfConcernIn": "ECI", "ExpressionOfConcernFor": "ECF",
    "CorrectedandRepublishedIn": "CRI", "CorrectedandRepublishedFrom": "CRF",
    "RepublishedIn": "RPI", "RepublishedFrom": "RPF", "UpdateIn": "UIN", "UpdateOf": "UOF",
    "CommentIn": "CIN", "CommentOn": "CON", "SummaryForPatientsIn": "SPIN",
    "OriginalReportIn": "ORI",
}  # fmt: skip
# ArticleIds MEDLINE writes on lines of their own (PMID, PMC, MID), not as AID.
_NOT_AID = {"pubmed", "pmc", "mid", "medline", "pmcid", "pmcpid", "pmpid"}
# PubMed's date lines, each from one PubStatus of the history.
_HISTORY_TAGS = (("EDAT", "pubmed"), ("MHDA", "medline"), ("CRDT", "entrez"))


_LAYOUT = re.compile(r"[ \t\n\r]+")


def _wrap(text: str, width: int) -> list[str]:
    """Greedy wrap at spaces, never inside a word: textwrap's result for one-space text, at a
    fifth of its time (it was most of the .nbib writer's time)."""
    lines, current = [], ""
    for word in text.split(" "):
        if not current:
            current = word
        elif len(current) + 1 + len(word) <= width:
            current += " " + word
        else:
            lines.append(current)
            current = word
    lines.append(current)
    return lines


def _nbib_date(value: str | None) -> str:
    digits = re.sub(r"\D", "", value or "")
    return digits if len(digits) == 8 else ""


def _nbib_stamp(entry: dict) -> str:
    """`2021/05/13 20:14`; PubMed writes 00:00 when the history gives no time."""
    return f"{clean(entry.get('date')).replace('-', '/')} {entry.get('time') or '00:00'}"


def _mesh_line(heading: dict) -> str:
    """`Aspirin/*administration & dosage/adverse effects`: a star marks a major topic."""
    text = ("*" if heading.get("major") else "") + clean(heading.get("descriptor"))
    for q in heading.get("qualifiers") or []:
        text += "/" + ("*" if q.get("major") else "") + clean(q.get("name"))
    return text


def to_nbib(records: list[dict]) -> str:
    """MEDLINE text as PubMed's "Send to: Citation manager" writes it (PMID- …, TI  - …)."""
    blocks = []
    for r in records:
        lines: list[str] = []

        def tag(name: str, value) -> None:
            # Layout whitespace folds; a no-break space ("75\xa0år") is text and stays.
            value = _LAYOUT.sub(" ", str(value)).strip() if value is not None else ""
            if not value:
                return
            head = f"{name:<4}- "
            if name not in _NBIB_WRAPPED:
                lines.append(head + value)
                return
            wrapped = _wrap(value, _NBIB_WIDTH - len(head))
            lines.append(head + wrapped[0])
            lines.extend("      " + w for w in wrapped[1:])

        tag("PMID", r.get("pmid"))
        tag("OWN", r.get("owner"))
        tag("STAT", r.get("status"))
        tag("DCOM", _nbib_date(r.get("date_completed")))
        tag("LR", _nbib_date(r.get("date_revised")))
        tag("PUBM", r.get("pub_model"))
        for issn in r.get("issns") or []:
            tag("IS", f"{clean(issn.get('issn'))} ({clean(issn.get('type'))})")
        tag("VI", r.get("volume"))
        tag("IP", r.get("issue"))
        tag("DP", r.get("pub_date") or r.get("year"))
        tag("TI", title_of(r))
        tag("PG", r.get("pages"))
        # LID lines are the article's ELocationIDs; a DOI found only in the ArticleIdList is
        # an AID line, as PubMed writes it. A record cached before ids were kept has neither.
        elocations = r.get("elocation_ids")
        if elocations is None or (not elocations and not r.get("article_ids") and r.get("doi")):
            elocations = [{"type": "doi", "id": r["doi"]}] if r.get("doi") else []
        for item in elocations:
            tag("LID", f"{clean(item.get('id'))} [{clean(item.get('type'))}]")
        tag("AB", r.get("abstract"))
        tag("CI", r.get("copyright"))
        for a in people(r):
            if clean(a.get("collective_name")):
                tag("CN", a["collective_name"])
            else:
                tag("FAU", author_full(a))
                tag("AU", author_short(a))
            for ident in a.get("identifiers") or []:
                source = clean(ident.get("source"))
                tag("AUID", f"{source}: {clean(ident.get('id'))}" if source else ident.get("id"))
            for affiliation in a.get("affiliations") or []:
                tag("AD", affiliation)
        for language in r.get("languages") or ([r["language"]] if r.get("language") else []):
            tag("LA", language)
        for number in r.get("registry_numbers") or []:
            tag("SI", f"{clean(number.get('bank'))}/{clean(number.get('accession'))}")
        for pt in r.get("publication_types") or []:
            tag("PT", pt)
        tag("TT", r.get("vernacular_title"))
        tag("DEP", _nbib_date(r.get("article_date")))
        tag("PL", r.get("country"))
        tag("TA", r.get("journal_abbrev"))
        tag("JT", r.get("journal"))
        tag("JID", r.get("nlm_unique_id"))
        tag("SB", " ".join(r.get("citation_subsets") or []))
        for c in r.get("corrections") or []:
            name = _NBIB_CORRECTIONS.get(c.get("type"))
            if name and (clean(c.get("source")) or c.get("pmid")):
                text = clean(c.get("source"))
                if text and not text.endswith("."):
                    text += "."
                tag(name, f"{text} PMID: {c['pmid']}" if c.get("pmid") else text)
        headings = r.get("mesh_headings")
        if headings:
            for heading in headings:
                tag("MH", _mesh_line(heading))
        else:  # a record cached before the headings were kept
            for mh in r.get("mesh_terms") or []:
                tag("MH", ("*" if mh in (r.get("mesh_major") or []) else "") + mh)
        tag("PMC", r.get("pmcid"))
        for item in r.get("article_ids") or []:
            if item.get("type") == "mid":
                tag("MID", item.get("id"))
        for kw in r.get("keywords") or []:
            tag("OT", kw)
        history = r.get("history") or []
        for name, status in _HISTORY_TAGS:
            stamps = [_nbib_stamp(h) for h in history if h.get("status") == status]
            if stamps:
                tag(name, stamps[0])
        for entry in history:
            tag("PHST", f"{_nbib_stamp(entry)} [{clean(entry.get('status'))}]")
        aids = [i for i in r.get("article_ids") or [] if i.get("type") not in _NOT_AID]
        if not aids and r.get("doi"):
            aids = [{"type": "doi", "id": r["doi"]}]
        for item in aids:
            tag("AID", f"{clean(item.get('id'))} [{clean(item.get('type'))}]")
        tag("PST", r.get("publication_status"))
        tag("SO", source_line(r))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


# --- BibTeX ----------------------------------------------------------------------------

_LATEX = {
    "\\": r"\textbackslash{}",
    "{": r"\{",
    "}": r"\}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
_LATEX_RE = re.compile("|".join(re.escape(k) for k in _LATEX))
_BIB_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
# biblatex's `langid` (babel/polyglossia names) for the languages PubMed lists most.
_LANGIDS = {
    "eng": "english", "ger": "german", "fre": "french", "spa": "spanish", "ita": "italian",
    "dut": "dutch", "dan": "danish", "nor": "norsk", "swe": "swedish", "fin": "finnish",
    "pol": "polish", "por": "portuguese", "rus": "russian", "cze": "czech", "hun": "hungarian",
    "tur": "turkish", "gre": "greek", "jpn": "japanese", "chi": "chinese", "kor": "korean",
}  # fmt: skip


def latex_escape(text: str | None) -> str:
    """Escape LaTeX's special characters; non-ASCII stays UTF-8 (biber and bibtex8 read it)."""
    return _LATEX_RE.sub(lambda m: _LATEX[m.group()], clean(text))


def _bib_author(a: dict) -> str:
    # A group name in braces, or BibTeX splits "ASPIRE Investigators" into a first and last name.
    if clean(a.get("collective_name")):
        return "{" + latex_escape(a["collective_name"]) + "}"
    last = latex_escape(a.get("last_name"))
    # A surname of several words ("de Hoon") is one name: unbraced, BibTeX reads "de" as a
    # particle and biblatex prints "Hoon MJL de".
    if " " in last:
        last = "{" + last + "}"
    fore = latex_escape(a.get("fore_name")) or latex_escape(a.get("initials"))
    return f"{last}, {fore}" if fore else last


def bibtex_keys(records: list[dict]) -> list[str]:
    """`pmid12345678` per record, with a suffix when one PMID appears twice."""
    seen: dict[str, int] = {}
    keys = []
    for r in records:
        base = "pmid" + re.sub(r"\W", "", clean(r.get("pmid")))
        n = seen.get(base, 0)
        seen[base] = n + 1
        keys.append(base if n == 0 else f"{base}-{n + 1}")
    return keys


def _bib_dates(record: dict) -> list[tuple[str, str]]:
    """year/month/day, which BibTeX and biber both read; a `date` for a season or range."""
    parsed = parse_pub_date(record)
    start = parsed["start"]
    if not start:
        return []
    fields = [("year", str(start[0]))]
    if parsed["season"]:
        # ISO 8601-2 seasons, as biblatex and pandoc read them: 21 spring … 24 winter.
        fields.append(("date", f"{start[0]:04d}-{20 + _SEASONS[parsed['season'].lower()]}"))
        return fields
    if len(start) > 1:
        fields.append(("month", _BIB_MONTHS[start[1] - 1]))
    if parsed["end"]:
        iso = lambda parts: "-".join(f"{p:02d}" if i else f"{p:04d}" for i, p in enumerate(parts))  # noqa: E731
        fields.append(("date", f"{iso(start)}/{iso(parsed['end'])}"))
    elif len(start) > 2:
        fields.append(("day", str(start[2])))
    return fields


def to_bibtex(records: list[dict]) -> str:
    """@article entries that biblatex (biber), classic BibTeX, pybtex and pandoc all read."""
    entries = []
    for key, r in zip(bibtex_keys(records), records):
        start, end = split_pages(r.get("pages"))
        pages = f"{start}--{end}" if end else start
        note = []
        if r.get("pmcid"):
            note.append(f"PMCID: {clean(r['pmcid'])}")
        if _is_retracted(r):
            note.append("RETRACTED")
        if clean(r.get("note")):
            note.append(f"Note: {clean(r['note'])}")
        authors = " and ".join(_bib_author(a) for a in people(r))
        journal = latex_escape(r.get("journal") or r.get("journal_abbrev"))
        fields = [
            # "{}" is an empty name: pybtex's standard styles need an author to format an
            # article, and biber, bibtexparser and pandoc read "{}" as no author.
            ("author", authors or "{}"),
            ("title", "{" + latex_escape(bare_title(r)) + "}"),
            # biber maps `journal` to biblatex's `journaltitle` (its tool output shows it);
            # writing both makes biber warn on every entry, and BibTeX and pybtex need `journal`.
            ("journal", journal),
            ("shortjournal", latex_escape(r.get("journal_abbrev"))),
            *_bib_dates(r),
            ("volume", latex_escape(r.get("volume"))),
            ("number", latex_escape(r.get("issue"))),
            ("pages", latex_escape(pages)),
            ("issn", latex_escape(_issn(r))),
            ("doi", latex_escape(r.get("doi"))),
            ("eprint", latex_escape(r.get("pmid"))),
            ("eprinttype", "pubmed"),
            ("langid", _LANGIDS.get(clean(r.get("language")).lower(), "")),
            ("note", latex_escape("; ".join(note))),
        ]
        body = []
        for name, value in fields:
            if not value:
                continue
            # A month is BibTeX's macro (jan …), unbraced, so styles print its name.
            body.append(f"  {name} = {value}" if name == "month" else f"  {name} = {{{value}}}")
        entries.append(f"@article{{{key},\n" + ",\n".join(body) + "\n}\n")
    return "\n".join(entries)


# --- CSL-JSON --------------------------------------------------------------------------


def _csl_author(a: dict) -> dict:
    if clean(a.get("collective_name")):
        return {"literal": clean(a["collective_name"])}
    given = clean(a.get("fore_name")) or clean(a.get("initials"))
    item = {"family": clean(a.get("last_name"))}
    if given:
        item["given"] = given
    return item


def _csl_issued(record: dict) -> dict:
    parts = date_parts(record)
    return {"date-parts": parts} if parts else {}


def to_csl_items(records: list[dict]) -> list[dict]:
    """CSL-JSON items (type article-journal), as Zotero, Mendeley and pandoc read them."""
    items = []
    for r in records:
        vernacular = clean(r.get("vernacular_title"))
        item = {
            "id": f"pmid{clean(r.get('pmid'))}",
            "type": "article-journal",
            "title": bare_title(r),
            "original-title": vernacular.rstrip(".") if vernacular and vernacular != clean(r.get("title")) else "",
            "container-title": clean(r.get("journal")) or clean(r.get("journal_abbrev")),
            "container-title-short": clean(r.get("journal_abbrev")),
            "author": [_csl_author(a) for a in people(r)],
            "issued": _csl_issued(r),
            "volume": clean(r.get("volume")),
            "issue": clean(r.get("issue")),
            "page": clean(r.get("pages")),
            "ISSN": _issn(r),
            "DOI": clean(r.get("doi")),
            "PMID": clean(r.get("pmid")),
            "PMCID": clean(r.get("pmcid")),
            "URL": pubmed_url(r),
            "abstract": clean(r.get("abstract")),
            # CSL wants BCP 47 ("en"); PubMed's "eng" would stop pandoc title-casing.
            "language": language_tag(r.get("language")) or "",
        }
        # A person's note (`evidence note`) travels with the citation, after any retraction.
        notes = ["RETRACTED"] if _is_retracted(r) else []
        if clean(r.get("note")):
            notes.append(f"Note: {clean(r['note'])}")
        item["note"] = "; ".join(notes)
        items.append({k: v for k, v in item.items() if v not in ("", [], {}, None)})
    return items


def to_csl_json(records: list[dict]) -> str:
    """A JSON array of CSL items."""
    return json.dumps(to_csl_items(records), ensure_ascii=False, indent=2) + "\n"


# --- CSV -------------------------------------------------------------------------------

CSV_COLUMNS = [
    "pmid",
    "title",
    "authors",
    "journal",
    "year",
    "doi",
    "pmcid",
    "level",
    "level_label",
    "flags",
    "fit",
    "fit_reason",
    "finding",
    "citation",
    "note",
]
# A spreadsheet runs a cell that starts with one of these as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def defuse(value) -> str:
    """The cell as text, with a leading quote when a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def to_csv(records: list[dict]) -> str:
    """One row per record; cells that look like formulas are neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for r in records:
        row = [
            clean(r.get("pmid")),
            title_of(r),
            "; ".join(author_short(a) for a in people(r)),
            clean(r.get("journal")),
            r.get("year") or "",
            clean(r.get("doi")),
            clean(r.get("pmcid")),
            r.get("level") if r.get("level") is not None else "",
            clean(r.get("level_label")),
            "; ".join(r.get("flags") or []),
            clean(r.get("fit")),
            clean(r.get("fit_reason")),
            finding(r) or "",
            vancouver(r),
            clean(r.get("note")),
        ]
        writer.writerow([defuse(cell) for cell in row])
    return buffer.getvalue()
