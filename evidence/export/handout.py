"""The handout a patient brings to a primary-care visit: one content model, three renderings.

`build_handout` decides every word the handout says. The templates in `evidence/templates/`
only lay that model out, so HTML, Markdown and PDF cannot drift apart. Our own sentences are
plain strings; anything that comes from a record (a title, the authors' conclusion, a
citation) or from the search (the PubMed term, codes) is kept in its own field, and the HTML
marks it with the class `rec`, so a reading-level check can measure our prose alone.

Key messages are built by rule from the included studies, never written by hand: a count,
the strongest study's own conclusion, and the reviews' own words about weak evidence. The
handout never gives advice or claims a benefit in its own words.
"""

from __future__ import annotations

import functools
import logging
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import quote_plus

from evidence.errors import ExportError
from evidence.export.citation import (
    clean,
    finding,
    first_author_tag,
    short_title,
    title_of,
    vancouver,
)

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"

# Flags that mean a study must never be shown as support, with the reason the handout gives.
LEFT_OUT_REASONS = {
    "retracted": "The journal retracted it.",
    "expression-of-concern": "The journal raised concerns about it.",
}
# Plain words for the other flags, shown beside a study in the table.
FLAG_NOTES = {
    "guideline": "A guideline.",
    "superseded": "A newer version exists.",
    "erratum": "Has a published correction.",
    "inferred": "Type read from its words.",
    "withdrawn": "Withdrawn from PubMed.",
}
# Singular and plural plain names for each provisional level, used when counting studies.
KINDS = {
    "guideline": ("guideline", "guidelines"),
    1: ("review of many studies", "reviews of many studies"),
    2: ("randomized trial", "randomized trials"),
    3: ("study that compared groups", "studies that compared groups"),
    4: ("case report", "case reports"),
    5: ("background article", "background articles"),
    None: ("article of another kind", "articles of other kinds"),
}
# Words with which authors say their evidence is weak, short or incomplete. A key message
# quotes such a sentence from a review, so the handout never has to say it in its own words.
CAUTION = re.compile(
    r"\b("
    r"(very\s+)?low[-\s](quality|certainty)|low\s+(level|grade)\s+of\s+evidence"
    r"|poor[-\s](methodological\s+)?quality|methodological(ly)?\s+(weak|flaw|limitation)\w*"
    r"|(certainty|quality)\s+of\s+(the\s+)?evidence\s+(was|is|were|are|remains?)\s+"
    r"(very\s+|rated\s+(as\s+)?)?(low|poor|weak|limited)"
    r"|(limited|insufficient|inconclusive|weak|scarce|sparse)\s+(evidence|data)"
    r"|evidence\s+(is|was|remains)\s+(limited|insufficient|inconclusive|weak|scarce|sparse)"
    r"|lack\s+of\s+(high[-\s]quality\s+)?(evidence|data|studies|trials)"
    r"|short[-\s]term|risk\s+of\s+bias|small\s+sample|limiting"
    r"|(more|further|larger|additional|future|well[-\s]designed|high[-\s]quality|rigorous)"
    r"\s+(\w+\s+){0,2}(research|studies|trials|rcts|investigations?)"
    r"\s+(is|are|should|would|will)?\s*"
    r"(needed|required|warranted|necessary|should|needs)"
    r"|needs?\s+(for\s+)?(more|further|larger|additional)"
    r"|(more|further)\s+(research|studies|trials)"
    r")",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(\[]?[A-Z0-9])")
# A table row quotes the conclusion's opening; the key message quotes it whole.
TABLE_FINDING_CHARS = 240
KEY_QUOTE_CHARS = 420


def _date_words(value: str | None) -> str | None:
    """`2021-06-03T10:00:00Z` -> `June 3, 2021`; None when the date is missing or unreadable."""
    if not value:
        return None
    try:
        when = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return f"{when:%B} {when.day}, {when.year}"


def is_left_out(record: dict) -> str | None:
    """Why a record must not appear as support (retracted, expression of concern), or None."""
    flags = set(record.get("flags") or [])
    if record.get("retracted"):
        flags.add("retracted")
    for flag, reason in LEFT_OUT_REASONS.items():
        if flag in flags:
            return reason
    return None


def kind_key(record: dict):
    """The key into `KINDS`: "guideline", a level 1-5, or None."""
    if "guideline" in (record.get("flags") or []):
        return "guideline"
    level = record.get("level")
    return level if level in KINDS else None


def _rank(record: dict) -> tuple:
    # Strongest first: a lower level number, then a guideline, then newer.
    key = kind_key(record)
    order = {"guideline": 1.5, None: 9}.get(key, key)
    return (order, -(record.get("year") or 0))


def _lower_first(text: str) -> str:
    """`Low back pain` -> `low back pain`, but an acronym (`ADHD`) keeps its capitals."""
    if text[:1].isupper() and text[1:2].islower():
        return text[0].lower() + text[1:]
    return text


def _article(words: str) -> str:
    """"a" or "an" for the spoken start of `words` (years like 1800-1899 start with "eight")."""
    first = words.split()[0] if words.split() else ""
    if first[:1].isdigit():
        return "an" if first.startswith(("8", "18", "11")) and len(first) == 4 else "a"
    return "an" if first[:1].lower() in "aeiou" else "a"


def attribution(record: dict) -> dict:
    """Who said it: `The authors of a 2021 review …` (our words) and `Chen et al.` (theirs)."""
    noun = KINDS[kind_key(record)][0]
    what = f"{record['year']} {noun}" if record.get("year") else noun
    return {"said_by": f"The authors of {_article(what)} {what}", "who": first_author_tag(record)}


def sentences(text: str) -> list[str]:
    """Split an abstract section into sentences, keeping each one verbatim."""
    return [s for s in _SENTENCE_END.split(clean(text)) if s]


def excerpt(text: str, limit: int = TABLE_FINDING_CHARS) -> str:
    """The opening of a quotation, whole sentences where they fit, marked " […]" when cut."""
    if len(text) <= limit:
        return text
    kept = ""
    for sentence in sentences(text):
        if len(kept) + len(sentence) + 1 > limit:
            break
        kept = f"{kept} {sentence}".strip()
    if not kept:
        kept = text[:limit].rsplit(" ", 1)[0]
    return kept + " […]"


def _count_message(shown: list[dict], context: dict) -> str:
    found = (context.get("counts") or {}).get("found")
    tally: dict = {}
    for r in shown:
        tally[kind_key(r)] = tally.get(kind_key(r), 0) + 1
    parts = []
    for key in ("guideline", 1, 2, 3, 4, 5, None):
        if tally.get(key):
            n = tally[key]
            parts.append(f"{n} {KINDS[key][0 if n == 1 else 1]}")
    what = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    opening = f"We found {_studies(found)}. " if isinstance(found, int) else ""
    if context.get("selection") == "default":
        return (
            f"{opening}A fixed rule picked the {_studies(len(shown))} with the strongest "
            f"design, newest first: {what}. No person has checked this list yet."
        )
    return f"{opening}We chose {len(shown)}: {what}."


def _studies(n: int) -> str:
    return f"{n} {'study' if n == 1 else 'studies'}"


def _message(lead: str, record: dict | None = None, quote: str | None = None) -> dict:
    """A key message: our lead sentence, then optionally who said what, in their words."""
    said = attribution(record) if record else {"said_by": None, "who": None}
    return {"lead": lead, **said, "quote": quote, "pmid": record["pmid"] if record else None}


def _strongest_message(shown: list[dict]) -> dict | None:
    with_finding = [r for r in shown if finding(r)]
    if not with_finding:
        return None
    best = min(with_finding, key=_rank)
    return _message(
        "Here is what the strongest study says, in its authors' own words.",
        best,
        excerpt(finding(best), KEY_QUOTE_CHARS),
    )


def _caution_message(shown: list[dict]) -> dict | None:
    reviews = sorted((r for r in shown if kind_key(r) in (1, "guideline")), key=_rank)
    for r in reviews:
        said = [s for s in sentences(finding(r) or "") if CAUTION.search(s)]
        if said:
            return _message(
                "The research is often weak, small or short-term. A review says so.",
                r,
                excerpt(" ".join(said), KEY_QUOTE_CHARS),
            )
    return None


def _study_row(r: dict) -> dict:
    said = finding(r)
    notes = [FLAG_NOTES[f] for f in r.get("flags") or [] if f in FLAG_NOTES and f != "guideline"]
    pmcid = clean(r.get("pmcid"))
    return {
        "pmid": clean(r.get("pmid")),
        "level": r.get("level"),
        "kind": clean(r.get("level_label")) or KINDS[kind_key(r)][0].capitalize(),
        "notes": notes,
        "year": r.get("year") or "",
        "short_title": short_title(r),
        "title": title_of(r),
        "finding": excerpt(said) if said else None,
        "citation": vancouver(r),
        "free_full_text": bool(pmcid),
        "pubmed_url": f"https://pubmed.ncbi.nlm.nih.gov/{clean(r.get('pmid'))}/",
        "pmc_url": f"https://pmc.ncbi.nlm.nih.gov/articles/{pmcid}/" if pmcid else None,
    }


def _count_lines(context: dict) -> list[dict]:
    """The PRISMA-style counts, each as our words plus an optional record-derived detail."""
    counts = context.get("counts") or {}
    lines = []
    if "found" in counts:
        lines.append({"text": f"Records saved for this topic: {counts['found']}.", "detail": None})
    if "included" in counts:
        lines.append({"text": f"Included: {counts['included']}.", "detail": None})
    if "excluded" in counts:
        reasons = counts.get("excluded_reasons") or {}
        detail = "; ".join(f"{why}: {n}" for why, n in sorted(reasons.items()))
        lines.append(
            {
                "text": f"Excluded: {counts['excluded']}.",
                "detail": f"Reasons: {detail}." if detail else None,
            }
        )
    flagged = [
        f"{counts[k]} {words}"
        for k, words in (("retracted", "retracted"), ("superseded", "replaced by a newer version"))
        if counts.get(k) is not None
    ]
    if flagged:
        lines.append({"text": "Flagged: " + ", ".join(flagged) + ".", "detail": None})
    by_level = counts.get("by_level") or {}
    if by_level:
        detail = "; ".join(f"{label}: {n}" for label, n in by_level.items())
        lines.append({"text": "By type of study:", "detail": detail + "."})
    return lines


def build_handout(records: list[dict], context: dict) -> dict:
    """The handout's whole content, as plain data the templates lay out."""
    condition = context.get("condition") or {}
    search = context.get("search") or {}
    shown = [r for r in records if not is_left_out(r)]
    left_out = [
        {"short_title": short_title(r, 70), "pmid": clean(r.get("pmid")), "reason": is_left_out(r)}
        for r in records
        if is_left_out(r)
    ]
    topic = clean(condition.get("title")) or "this condition"
    as_of = _date_words(search.get("run_at"))
    icd10 = [clean(c) for c in condition.get("icd10") or [] if clean(c)]

    messages: list[dict] = []
    if shown:
        messages.append(_message(_count_message(shown, context)))
        for extra in (_strongest_message(shown), _caution_message(shown)):
            if extra:
                messages.append(extra)
    else:
        messages.append(_message("We found no studies to show on this topic yet."))

    term = clean(search.get("term"))
    database = clean(search.get("database")) or "PubMed"
    hits = search.get("hits")
    ran = _date_words(search.get("run_at"))
    generated = _date_words(context.get("generated_at"))
    return {
        "title": f"Massage therapy for {_lower_first(topic)}: what research says",
        "topic": topic,
        "description": clean(condition.get("description")) or None,
        "as_of": (
            f"This sheet shows research found as of {as_of}."
            if as_of
            else "The date of the search was not recorded."
        ),
        "purpose": (
            "Bring this sheet to your doctor. It lists studies on massage for this problem. "
            "It is not advice."
        ),
        "key_heading": "Key points",
        "key_messages": messages[:3],
        "table_heading": "The studies",
        "table_intro": (
            "Strongest type of study first. The words in quotes are the authors' own words."
        ),
        "columns": {
            "kind": "Type of study",
            "year": "Year",
            "study": "Study, what the authors said, and where to find it",
        },
        "no_finding": "No summary sentence in the abstract.",
        "free_full_text": "Free full text",
        "studies": [_study_row(r) for r in shown],
        "no_studies": "No studies to list.",
        "left_out_heading": "Left out",
        "left_out_intro": "We left out these studies. Do not use them as support.",
        "left_out": left_out,
        "doctor": {
            "heading": "For the doctor: how to rerun this search",
            "term_label": f"{database} search:",
            "term": term or None,
            "term_missing": "The search words were not recorded.",
            "link_text": f"Open this search in {database}",
            "link": (
                f"https://pubmed.ncbi.nlm.nih.gov/?term={quote_plus(term)}"
                if term and database == "PubMed"
                else None
            ),
            "ran": (
                f"Run on {ran}" + (f": {hits:,} results." if isinstance(hits, int) else ".")
                if ran
                else "Date of the search: not recorded."
            ),
            "counts": _count_lines(context),
            "selection": (
                "A person picked these studies."
                if context.get("selection") == "curated"
                else (
                    "No person has picked studies yet. "
                    "A fixed rule chose the strongest and newest."
                )
            ),
            "levels": (
                "Levels are provisional, a first guess. They come from the study design only, "
                "not from how well a study was done."
            ),
        },
        "diary": {
            "heading": "Your symptom diary",
            "intro": (
                "Fill this in for a week or two before your visit. "
                "Circle or write a number from 0 to 10."
            ),
            "scale_low": "0 = no pain",
            "scale_high": "10 = worst pain you can imagine",
            "scale": list(range(11)),
            "change": "A drop of about 2 points, or about a third, is a change that matters.",
            "columns": [
                "Date",
                "Pain on average (0-10)",
                "Pain got in the way of enjoying life (0-10)",
                "Pain got in the way of daily tasks (0-10)",
                "How often, how long",
                "What set it off",
                "What I tried, did it help",
            ],
            "rows": 4,
        },
        "questions": {
            "heading": "Questions to ask",
            "items": [
                "What is my main problem?",
                "What do I need to do?",
                "Why is it important to do this?",
                "Is massage safe for me?",
                "Would a referral to a licensed massage therapist help?",
                "Can you document medical necessity for my insurer?",
            ],
        },
        "letter": {
            "heading": "What a referral or letter of medical necessity needs",
            "items": [
                {"text": text, "codes": codes}
                for text, codes in (
                    ("The diagnosis and its ICD-10-CM code.", icd10),
                    ("What you cannot do now because of it (your limits).", []),
                    ("Goals you can measure, like how far you can walk.", []),
                    ("The plan: minutes per visit, visits per week, and number of weeks.", []),
                    # Codes only: the AMA's descriptions of CPT codes are copyrighted.
                    ("Service codes (CPT):", ["97124", "97140"]),
                    ("A date to check your progress again.", []),
                    ("Your doctor's signature and the date.", []),
                )
            ],
            "note": "Most insurers do not pay for massage for upkeep or general wellness.",
        },
        "disclaimer": (
            "This is a summary of research, not medical advice. "
            "Talk with your doctor about what is right for you."
        ),
        "footer": " ".join(
            p
            for p in (
                f"Made on {generated}" if generated else "Made",
                f"with evidence {clean(context.get('tool_version'))}."
                if context.get("tool_version")
                else "with evidence.",
            )
        ),
    }


# --- rendering -------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~!{}])")
_MD_LINE_START = re.compile(r"^([#+=>-]|\d+[.)])")


def md_escape(value) -> str:
    """Record text as literal Markdown: specials backslash-escaped, one line, no block marker."""
    text = _MD_SPECIAL.sub(r"\\\1", clean(str(value) if value is not None else ""))
    return _MD_LINE_START.sub(lambda m: "\\" + m.group(0), text)


def md_fence(text) -> str:
    """A code fence longer than any run of backticks in `text`, so the text cannot close it."""
    runs = [len(m) for m in re.findall(r"`+", str(text))]
    return "`" * max(3, max(runs, default=0) + 1)


@functools.lru_cache(maxsize=None)
def _environment(kind: str):
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        # HTML escapes every value (record text can hold "<script>"); Markdown escapes by filter.
        autoescape=(kind == "html"),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md_escape
    env.filters["fence"] = md_fence
    return env


def _template(name: str, kind: str):
    import jinja2

    try:
        return _environment(kind).get_template(name)
    except jinja2.TemplateNotFound as err:
        raise ExportError(
            f"Handout template {name} is missing from {TEMPLATES}: reinstall evidence."
        ) from err


def render_html(records: list[dict], context: dict) -> str:
    """The handout as one self-contained HTML page (styles inline, print-ready)."""
    css = (TEMPLATES / "handout.css").read_text(encoding="utf-8")
    model = build_handout(records, context)
    return _template("handout.html.j2", "html").render(h=model, css=css)


def render_markdown(records: list[dict], context: dict) -> str:
    """The handout as Markdown, from the same content model as the HTML."""
    return _template("handout.md.j2", "md").render(h=build_handout(records, context))


def render_pdf(records: list[dict], context: dict) -> bytes:
    """The handout as a US Letter PDF, drawn from the HTML.

    WeasyPrint, because it prints the very HTML template the browser shows, with real CSS
    paged media (@page size and margins, page-break rules, repeated table headers): one
    template, no second layout to keep in step, and no browser to install.
    """
    try:
        import weasyprint
    except ImportError as err:  # pragma: no cover - weasyprint is a hard dependency
        raise ExportError("PDF export needs WeasyPrint: pip install weasyprint.") from err
    html = render_html(records, context)
    # WeasyPrint logs font-subsetting notices as warnings; they say nothing to a patient, and
    # stderr is where our own warnings go.
    quiet = logging.getLogger("weasyprint"), logging.getLogger("fontTools")
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        return weasyprint.HTML(string=html, base_url=str(TEMPLATES)).write_pdf()
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)
