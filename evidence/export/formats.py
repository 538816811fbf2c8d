"""Citation files for a clinic's reference manager: RIS, MEDLINE (.nbib), BibTeX, CSL-JSON, CSV.

Each writer takes the records (keys in DESIGN.md) and returns text. They are written by hand
rather than with a library so that every field keeps PubMed's spelling, and so that the
tests can read them back with independent readers (rispy, Bio.Medline, bibtexparser).
Retracted records are not dropped from citation files (a clinic may need to find them),
but each format carries the retraction where it has a place for it.
"""

from __future__ import annotations

import csv
import io
import json
import re
import textwrap

from evidence.export.citation import (
    author_full,
    author_short,
    clean,
    finding,
    people,
    source,
    title_of,
    vancouver,
)

_MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}


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


def date_parts(record: dict) -> list[list[int]]:
    """CSL `date-parts` from PubMed's date text: `2016 Jun 1` -> [[2016, 6, 1]].

    A MedlineDate range such as `2021 Jan-Mar` becomes a CSL range: [[2021, 1], [2021, 3]].
    """
    tokens = clean(record.get("pub_date")).split()
    year = record.get("year")
    if tokens and tokens[0][:4].isdigit():
        year = int(tokens[0][:4])
    if not year:
        return []
    if len(tokens) < 2:
        return [[year]]
    months = []
    for name in tokens[1].split("-"):
        key = name[:3].lower()
        if key in _MONTHS:
            months.append(_MONTHS[key])
        elif name.isdigit() and 1 <= int(name) <= 12:
            months.append(int(name))
    if not months:
        return [[year]]
    if len(months) > 1:
        return [[year, months[0]], [year, months[-1]]]
    if len(tokens) >= 3 and tokens[2].isdigit():
        return [[year, months[0], int(tokens[2])]]
    return [[year, months[0]]]


def pubmed_url(record: dict) -> str:
    """The record's page on PubMed."""
    return f"https://pubmed.ncbi.nlm.nih.gov/{clean(record.get('pmid'))}/"


# --- RIS -------------------------------------------------------------------------------


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
            tag("AU", author_full(a))
        tag("TI", title_of(r))
        tag("T2", r.get("journal"))
        tag("JO", r.get("journal"))
        tag("JA", r.get("journal_abbrev"))
        tag("PY", r.get("year"))
        tag("DA", r.get("pub_date"))
        tag("VL", r.get("volume"))
        tag("IS", r.get("issue"))
        start, end = split_pages(r.get("pages"))
        tag("SP", start)
        tag("EP", end)
        tag("DO", r.get("doi"))
        tag("AN", r.get("pmid"))
        tag("UR", pubmed_url(r))
        tag("LA", r.get("language"))
        tag("AB", r.get("abstract"))
        for word in list(r.get("keywords") or []) + list(r.get("mesh_terms") or []):
            tag("KW", word)
        if r.get("pmcid"):
            tag("N1", f"PMCID: {r['pmcid']} (free full text)")
        if _is_retracted(r):
            tag("N1", "RETRACTED: this article has been retracted.")
        out.append("ER  - ")
        out.append("")
    return "\n".join(out)


# --- MEDLINE (.nbib) -------------------------------------------------------------------

# PubMed wraps MEDLINE lines near 88 characters; a continuation starts with 6 spaces.
_NBIB_WIDTH = 88
# Fields a MEDLINE reader joins back with spaces. Other fields (FAU, AU, PT, …) are lists,
# where a continuation line would become a new item, so those are never wrapped.
_NBIB_WRAPPED = {"TI", "AB", "JT", "SO", "MH", "OT"}


def _nbib_date(value: str | None) -> str:
    digits = re.sub(r"\D", "", value or "")
    return digits if len(digits) == 8 else ""


def to_nbib(records: list[dict]) -> str:
    """MEDLINE text as PubMed's "Send to: Citation manager" writes it (PMID- …, TI  - …)."""
    blocks = []
    for r in records:
        lines: list[str] = []

        def tag(name: str, value) -> None:
            value = clean(str(value)) if value is not None else ""
            if not value:
                return
            head = f"{name:<4}- "
            if name not in _NBIB_WRAPPED:
                lines.append(head + value)
                return
            wrapped = textwrap.wrap(
                value,
                width=_NBIB_WIDTH - len(head),
                break_long_words=False,
                break_on_hyphens=False,
            )
            lines.append(head + wrapped[0])
            lines.extend("      " + w for w in wrapped[1:])

        tag("PMID", r.get("pmid"))
        tag("STAT", r.get("status"))
        tag("LR", _nbib_date(r.get("date_revised")))
        tag("VI", r.get("volume"))
        tag("IP", r.get("issue"))
        tag("DP", r.get("pub_date") or r.get("year"))
        tag("TI", title_of(r))
        tag("PG", r.get("pages"))
        if r.get("doi"):
            tag("LID", f"{clean(r['doi'])} [doi]")
        tag("AB", r.get("abstract"))
        for a in people(r):
            if clean(a.get("collective_name")):
                tag("CN", a["collective_name"])
            else:
                tag("FAU", author_full(a))
                tag("AU", author_short(a))
        tag("LA", r.get("language"))
        for pt in r.get("publication_types") or []:
            tag("PT", pt)
        tag("TA", r.get("journal_abbrev"))
        tag("JT", r.get("journal"))
        for mh in r.get("mesh_terms") or []:
            tag("MH", mh)
        for kw in r.get("keywords") or []:
            tag("OT", kw)
        tag("PMC", r.get("pmcid"))
        if r.get("doi"):
            tag("AID", f"{clean(r['doi'])} [doi]")
        tag("SO", _nbib_source(r))
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + ("\n" if blocks else "")


def _nbib_source(r: dict) -> str:
    journal = clean(r.get("journal_abbrev")) or clean(r.get("journal"))
    text = ". ".join(p for p in (journal, source(r)) if p)
    if r.get("doi"):
        text += f". doi: {clean(r['doi'])}"
    return text + "." if text else ""


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


def latex_escape(text: str | None) -> str:
    """Escape LaTeX's special characters; non-ASCII stays UTF-8 (biber and bibtex8 read it)."""
    return _LATEX_RE.sub(lambda m: _LATEX[m.group()], clean(text))


def _bib_author(a: dict) -> str:
    # A group name in braces, or BibTeX splits "ASPIRE Investigators" into a first and last name.
    if clean(a.get("collective_name")):
        return "{" + latex_escape(a["collective_name"]) + "}"
    return latex_escape(author_full(a))


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


def to_bibtex(records: list[dict]) -> str:
    """BibTeX @article entries; titles in double braces so BibTeX keeps their case."""
    entries = []
    for key, r in zip(bibtex_keys(records), records):
        start, end = split_pages(r.get("pages"))
        pages = f"{start}--{end}" if end else start
        note = [f"PMID: {clean(r.get('pmid'))}"]
        if r.get("pmcid"):
            note.append(f"PMCID: {clean(r['pmcid'])}")
        if _is_retracted(r):
            note.append("RETRACTED")
        fields = [
            ("author", " and ".join(_bib_author(a) for a in people(r))),
            ("title", "{" + latex_escape(title_of(r)) + "}"),
            ("journal", latex_escape(r.get("journal"))),
            ("year", str(r["year"]) if r.get("year") else ""),
            ("volume", latex_escape(r.get("volume"))),
            ("number", latex_escape(r.get("issue"))),
            ("pages", latex_escape(pages)),
            ("doi", latex_escape(r.get("doi"))),
            ("pmid", latex_escape(r.get("pmid"))),
            ("note", latex_escape("; ".join(note))),
        ]
        body = ",\n".join(f"  {name} = {{{value}}}" for name, value in fields if value)
        entries.append(f"@article{{{key},\n{body}\n}}\n")
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


def to_csl_items(records: list[dict]) -> list[dict]:
    """CSL-JSON items (type article-journal), as Zotero, Mendeley and pandoc read them."""
    items = []
    for r in records:
        item = {
            "id": f"pmid{clean(r.get('pmid'))}",
            "type": "article-journal",
            "title": title_of(r),
            "container-title": clean(r.get("journal")),
            "container-title-short": clean(r.get("journal_abbrev")),
            "author": [_csl_author(a) for a in people(r)],
            "issued": {"date-parts": date_parts(r)},
            "volume": clean(r.get("volume")),
            "issue": clean(r.get("issue")),
            "page": clean(r.get("pages")),
            "DOI": clean(r.get("doi")),
            "PMID": clean(r.get("pmid")),
            "PMCID": clean(r.get("pmcid")),
            "URL": pubmed_url(r),
            "abstract": clean(r.get("abstract")),
            "language": clean(r.get("language")),
        }
        if _is_retracted(r):
            item["note"] = "RETRACTED"
        items.append({k: v for k, v in item.items() if v not in ("", [], {"date-parts": []})})
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
