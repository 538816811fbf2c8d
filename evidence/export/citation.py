"""One record as a citation a clinician recognises, and the pieces of it a handout quotes.

Everything here reads a record (see DESIGN.md for its keys) and never rewrites what the
authors wrote: a finding is their conclusion, verbatim; a title is PubMed's title.
"""

from __future__ import annotations

import re

# PubMed's "Cite" (NLM style) lists six authors, then "et al.".
MAX_AUTHORS = 6

# Labels authors use for the concluding section when NLM has not set NlmCategory.
_CONCLUSION_LABEL = re.compile(
    r"^\s*(authors'?\s+)?(conclusions?|interpretations?|implications?)\b", re.IGNORECASE
)
_SPACE = re.compile(r"\s+")


def clean(text: str | None) -> str:
    """Collapse runs of whitespace (PubMed XML keeps its indentation inside text)."""
    return _SPACE.sub(" ", text or "").strip()


def author_short(author: dict) -> str:
    """`Furlan AD` for a person, the name itself for a group (`ASPIRE Investigators`)."""
    collective = clean(author.get("collective_name"))
    if collective:
        return collective
    last = clean(author.get("last_name"))
    initials = clean(author.get("initials")).replace(".", "").replace(" ", "")
    if not initials and author.get("fore_name"):
        initials = "".join(part[0] for part in clean(author["fore_name"]).split() if part)
    return f"{last} {initials}".strip()


def author_full(author: dict) -> str:
    """`Furlan, Andrea D` for a person (as MEDLINE's FAU and RIS's AU write it), a group as is."""
    collective = clean(author.get("collective_name"))
    if collective:
        return collective
    last = clean(author.get("last_name"))
    fore = clean(author.get("fore_name")) or clean(author.get("initials"))
    return f"{last}, {fore}" if fore else last


def people(record: dict) -> list[dict]:
    """The record's authors that carry a name at all (PubMed has empty Author elements)."""
    return [
        a
        for a in record.get("authors") or []
        if clean(a.get("collective_name")) or clean(a.get("last_name"))
    ]


def first_author_tag(record: dict) -> str:
    """`Smith et al.`, `Smith and Jones`, `Smith`, or `` when PubMed lists no author."""
    authors = people(record)
    names = [
        clean(a.get("collective_name")) or clean(a.get("last_name")) for a in authors
    ]
    if not names:
        return ""
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]} and {names[1]}"
    return f"{names[0]} et al."


def _end(text: str) -> str:
    """Close a citation element with a period unless it already ends a sentence."""
    text = text.strip()
    return text if text.endswith((".", "?", "!")) else text + "."


def title_of(record: dict) -> str:
    """The record's title, or a bracketed note (never an invented title) when PubMed has none."""
    return clean(record.get("title")) or "[No title in PubMed]"


def source(record: dict) -> str:
    """`2016 Jun 1;12(6):CD000425`: date, volume, issue and pages as PubMed's Cite joins them."""
    date = clean(record.get("pub_date")) or (str(record["year"]) if record.get("year") else "")
    volume = clean(record.get("volume"))
    issue = clean(record.get("issue"))
    pages = clean(record.get("pages"))
    text = date
    if volume or issue:
        text += ";" + volume + (f"({issue})" if issue else "")
    if pages:
        text += ":" + pages
    return text


def vancouver(record: dict) -> str:
    """The NLM/Vancouver citation PubMed's "Cite" gives, with doi:, PMID: and PMCID:.

    `Furlan AD, Giraldo M. Massage for low-back pain. Cochrane Database Syst Rev.
    2015 Sep 1;2015(9):CD001929. doi: 10.1002/14651858.CD001929.pub3. PMID: 26329399;
    PMCID: PMC8734598.`
    """
    names = [author_short(a) for a in people(record)]
    parts = []
    if names:
        shown = names[:MAX_AUTHORS]
        parts.append(", ".join(shown) + (", et al." if len(names) > MAX_AUTHORS else "."))
    parts.append(_end(title_of(record)))
    journal = clean(record.get("journal_abbrev")) or clean(record.get("journal"))
    if journal:
        parts.append(_end(journal))
    where = source(record)
    if where:
        parts.append(_end(where))
    doi = clean(record.get("doi"))
    if doi:
        parts.append(f"doi: {doi}.")
    ids = f"PMID: {clean(record.get('pmid'))}"
    pmcid = clean(record.get("pmcid"))
    if pmcid:
        ids += f"; PMCID: {pmcid}"
    parts.append(ids + ".")
    return " ".join(parts)


def short_title(record: dict, width: int = 90) -> str:
    """The title cut at a word boundary to at most `width` characters, marked with "…"."""
    title = title_of(record)
    if len(title) <= width:
        return title
    cut = title[: width - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.-–") + "…"


def is_conclusion(section: dict) -> bool:
    """True for the section that says what the study found, however it is labelled."""
    if (section.get("category") or "").upper() == "CONCLUSIONS":
        return True
    return bool(_CONCLUSION_LABEL.match(section.get("label") or ""))


def finding(record: dict) -> str | None:
    """The authors' conclusion section, verbatim; None when the abstract has none."""
    texts = [
        clean(s.get("text"))
        for s in record.get("abstract_sections") or []
        if is_conclusion(s) and clean(s.get("text"))
    ]
    return " ".join(texts) or None
