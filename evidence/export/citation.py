"""One record as a citation a clinician recognises, and the pieces of it a handout quotes.

Everything here reads a record (see DESIGN.md for its keys) and never rewrites what the
authors wrote: a finding is their conclusion, verbatim; a title is PubMed's title.
"""

from __future__ import annotations

import re

# PubMed's "Cite" lists every author (NLM, 2023), so `vancouver` does unless `max_authors`
# says otherwise: Citing Medicine lets a handout cut the list to "the first 3 (or 6), et al.".
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
# PubMed's ISO 639-2 (bibliographic) language codes: the English name PubMed's Cite prints
# for a non-English article ("German."), and the BCP 47 tag CSL and reference managers want.
LANGUAGES = {
    "afr": ("Afrikaans", "af"), "alb": ("Albanian", "sq"), "amh": ("Amharic", "am"),
    "ara": ("Arabic", "ar"), "arm": ("Armenian", "hy"), "aze": ("Azerbaijani", "az"),
    "ben": ("Bengali", "bn"), "bos": ("Bosnian", "bs"), "bul": ("Bulgarian", "bg"),
    "cat": ("Catalan", "ca"), "chi": ("Chinese", "zh"), "cze": ("Czech", "cs"),
    "dan": ("Danish", "da"), "dut": ("Dutch", "nl"), "eng": ("English", "en"),
    "epo": ("Esperanto", "eo"), "est": ("Estonian", "et"), "fin": ("Finnish", "fi"),
    "fre": ("French", "fr"), "geo": ("Georgian", "ka"), "ger": ("German", "de"),
    "gla": ("Scottish Gaelic", "gd"), "gre": ("Greek, Modern", "el"), "heb": ("Hebrew", "he"),
    "hin": ("Hindi", "hi"), "hrv": ("Croatian", "hr"), "hun": ("Hungarian", "hu"),
    "ice": ("Icelandic", "is"), "ind": ("Indonesian", "id"), "ita": ("Italian", "it"),
    "jpn": ("Japanese", "ja"), "kin": ("Kinyarwanda", "rw"), "kor": ("Korean", "ko"),
    "lat": ("Latin", "la"), "lav": ("Latvian", "lv"), "lit": ("Lithuanian", "lt"),
    "mac": ("Macedonian", "mk"), "mal": ("Malayalam", "ml"), "mao": ("Maori", "mi"),
    "may": ("Malay", "ms"), "nor": ("Norwegian", "no"), "per": ("Persian", "fa"),
    "pol": ("Polish", "pl"), "por": ("Portuguese", "pt"), "pus": ("Pushto", "ps"),
    "rum": ("Romanian", "ro"), "rus": ("Russian", "ru"), "san": ("Sanskrit", "sa"),
    "slo": ("Slovak", "sk"), "slv": ("Slovenian", "sl"), "spa": ("Spanish", "es"),
    "srp": ("Serbian", "sr"), "swe": ("Swedish", "sv"), "tha": ("Thai", "th"),
    "tur": ("Turkish", "tr"), "ukr": ("Ukrainian", "uk"), "urd": ("Urdu", "ur"),
    "vie": ("Vietnamese", "vi"), "wel": ("Welsh", "cy"),
    "mul": ("Multiple languages", None), "und": ("Undetermined", None),
}  # fmt: skip
# CommentsCorrections PubMed's Cite spells out after the ids' block, in these words.
_CITED_CORRECTIONS = {"ErratumIn": "Erratum in", "RetractionIn": "Retraction in"}

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


def source(record: dict, date: str | None = None) -> str:
    """`2016 Jun 1;12(6):CD000425`: date, volume, issue and pages as PubMed's Cite joins them.

    `date` replaces the publication date (PubMed leads with the electronic date of an
    article published electronically first; see `publication_dates`).
    """
    if date is None:
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


def language_name(code: str | None) -> str | None:
    """PubMed's English name of an ISO 639-2 language code ("ger" -> "German")."""
    entry = LANGUAGES.get(clean(code).lower())
    return entry[0] if entry else (clean(code) or None)


def language_tag(code: str | None) -> str | None:
    """The BCP 47 tag of a PubMed language code ("eng" -> "en"); None when there is none."""
    entry = LANGUAGES.get(clean(code).lower())
    return entry[1] if entry else None


def iso_to_pubmed_date(iso: str | None) -> str:
    """`2021-05-10` -> `2021 May 10`, the way PubMed prints a date."""
    text = clean(iso)
    try:
        year, month, day = (int(part) for part in text.split("-"))
        return f"{year} {_MONTHS[month - 1]} {day}"
    except (ValueError, IndexError):
        return text


def author_list(record: dict, max_authors: int | None = None) -> str:
    """`Brighton TA, Eikelboom JW, ..., Simes J; ASPIRE Investigators` as PubMed's Cite joins them.

    A group author is set off by "; " from its neighbours. With `max_authors`, a longer list
    keeps that many names and ends ", et al." (Citing Medicine's "first 3 (or 6), et al.").
    """
    authors = people(record)
    cut = max_authors is not None and len(authors) > max_authors
    if cut:
        authors = authors[:max_authors]
    text = ""
    for i, author in enumerate(authors):
        if i:
            group = clean(author.get("collective_name")) or clean(authors[i - 1].get("collective_name"))
            text += "; " if group else ", "
        text += author_short(author)
    if cut:
        text += ", et al"
    return text


def cite_title(record: dict) -> str:
    """The title as PubMed's Cite gives it: a translated title follows the original one.

    "Diagnostik, Therapie und Prophylaxe des Herpes zoster [Diagnosis, treatment and
    prophylaxis of herpes zoster]." when NLM translated the title into English.
    """
    title = title_of(record)
    vernacular = clean(record.get("vernacular_title"))
    if record.get("title_is_translation") and vernacular and vernacular != title:
        original = vernacular[:-1] if vernacular.endswith(".") else vernacular
        return f"{original} {title}"
    return title


def publication_dates(record: dict) -> tuple[str, str | None]:
    """The date a citation's source starts with, and PubMed's note on the other date.

    The article's PubModel decides: printed after an electronic version ("Epub 2012 Nov 4"),
    electronic first then printed ("Print 2023 Mar 28"), or electronic in a yearly
    collection ("eCollection 2018"); an article not yet in an issue is "Epub ahead of print".
    """
    pub_date = clean(record.get("pub_date")) or (str(record["year"]) if record.get("year") else "")
    electronic = iso_to_pubmed_date(record.get("article_date"))
    model = clean(record.get("pub_model"))
    if clean(record.get("publication_status")) == "aheadofprint":
        return pub_date, "Epub ahead of print"
    if model == "Print-Electronic" and electronic:
        return pub_date, f"Epub {electronic}"
    if model == "Electronic-Print" and electronic:
        return electronic, f"Print {pub_date}" if pub_date else None
    if model == "Electronic-eCollection" and electronic:
        return electronic, f"eCollection {pub_date}" if pub_date else None
    return pub_date, None


def source_line(record: dict) -> str:
    """MEDLINE's SO: `N Engl J Med. 2012 Nov 22;367(21):1979-87. doi: 10.1056/x. Epub 2012 Nov 4.`"""
    date, note = publication_dates(record)
    journal = clean(record.get("journal_abbrev")) or clean(record.get("journal"))
    parts = [_end(p) for p in (journal, source(record, date)) if p]
    doi = clean(record.get("doi"))
    if doi:
        parts.append(f"doi: {doi}.")
    if note:
        parts.append(_end(note))
    return " ".join(parts)


def vancouver(record: dict, max_authors: int | None = None) -> str:
    """The NLM citation PubMed's "Cite" gives, with doi:, PMID: and PMCID:.

    `Brighton TA, ..., Simes J; ASPIRE Investigators. Low-dose aspirin for preventing recurrent
    venous thromboembolism. N Engl J Med. 2012 Nov 22;367(21):1979-87. doi:
    10.1056/NEJMoa1210384. Epub 2012 Nov 4. PMID: 23121403.` Every author, unless
    `max_authors` shortens the list for a handout; a non-English article's languages before
    the doi ("German."); errata and retractions as "Erratum in: ..." before the PMID.
    """
    parts = []
    names = author_list(record, max_authors)
    if names:
        parts.append(names + ".")
    parts.append(_end(cite_title(record)))
    date, note = publication_dates(record)
    journal = clean(record.get("journal_abbrev")) or clean(record.get("journal"))
    if journal:
        parts.append(_end(journal))
    where = source(record, date)
    if where:
        parts.append(_end(where))
    languages = [c for c in record.get("languages") or ([record["language"]] if record.get("language") else [])]
    if languages and any(clean(c).lower() != "eng" for c in languages):
        parts.append(", ".join(language_name(c) or c for c in languages) + ".")
    doi = clean(record.get("doi"))
    if doi:
        parts.append(f"doi: {doi}.")
    if note:
        parts.append(_end(note))
    for c in record.get("corrections") or []:
        words = _CITED_CORRECTIONS.get(c.get("type"))
        if words and clean(c.get("source")):
            parts.append(f"{words}: {_end(clean(c['source']))}")
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
