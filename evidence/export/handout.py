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
# The reasons `curation.select` gives for a chosen study it does not show, in plain words.
LEFT_OUT_WORDS = {
    "retracted": "The journal retracted it.",
    "expression of concern": "The journal raised concerns about it.",
    "older version of an updated review": "A newer version of this review replaces it.",
}
# Plain words for the other flags, shown beside a study in the table.
FLAG_NOTES = {
    "guideline": "A guideline.",
    "superseded": "A newer version exists.",
    "erratum": "Has a published correction.",
    "inferred": "Type read from its words.",
    "withdrawn": "Withdrawn from PubMed.",
}
# Plain words for a study that is not squarely about massage for the condition.
# Short: they sit in the narrow type-of-study column, and a longer one adds a line to its row.
FIT_NOTES = {
    "partial": "Partly on topic.",
    "mention": "Only in passing.",
    "none": "Not on this topic.",
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
# Words with which authors report that something did not work, may harm, or is uncertain. A
# shortened quotation keeps every sentence that says so (`excerpt`).
NEGATIVE = re.compile(
    CAUTION.pattern
    + r"|\b(no|not|nor|without)\s+(\w+\s+){0,3}?(significant|significantly|statistically|"
    r"effect|effects|difference|differences|benefit|benefits|improvement|change|evidence|"
    r"effective|superior|better|reduc\w*|impact)\b"
    r"|\b(did|does|do|was|were|is|are)\s+not\b|\bfailed\s+to\b|\bnon-?significant\w*"
    r"|\b(harm|harms|harmful|adverse|side[-\s]effects?|worse|worsen\w*|unclear|uncertain\w*"
    r"|inconsistent|conflicting|caution)\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"“(\[]?[A-Z0-9])")
# A table row quotes the conclusion's opening; the key message quotes it whole.
TABLE_FINDING_CHARS = 180
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
    """A quotation of whole sentences that never drops a negative finding.

    Sentences are kept in order while they fit in `limit`; a sentence that reports no effect,
    harm, low certainty or too little evidence (`NEGATIVE`) is kept whatever its length, so a
    shortened conclusion cannot turn "helps X, but no effect on Y" into "helps X". Each gap
    is marked " […]".
    """
    if len(text) <= limit:
        return text
    kept: list[str] = []
    skipped = False
    size = 0
    for sentence in sentences(text):
        fits = size + len(sentence) + 1 <= limit
        if fits or NEGATIVE.search(sentence) or not kept:
            if skipped and kept:
                kept.append("[…]")
            kept.append(sentence)
            size += len(sentence) + 1
            skipped = False
        else:
            skipped = True
    quote = " ".join(kept)
    return quote + " […]" if skipped else quote


def _count_message(shown: list[dict], context: dict) -> str:
    """Records found, how many study massage for the condition, and how many this sheet shows."""
    counts = context.get("counts") or {}
    found, on_topic = counts.get("found"), counts.get("on_topic")
    topic = _lower_first(clean((context.get("condition") or {}).get("title")) or "this problem")
    tally: dict = {}
    for r in shown:
        tally[kind_key(r)] = tally.get(kind_key(r), 0) + 1
    parts = [
        f"{tally[key]} {KINDS[key][0 if tally[key] == 1 else 1]}"
        for key in ("guideline", 1, 2, 3, 4, 5, None)
        if tally.get(key)
    ]
    said = []
    if isinstance(found, int):
        said.append(f"{_source_words(context)} {_records(found)}.")
        if isinstance(on_topic, int):
            said.append(_on_topic_words(on_topic, topic))
    if parts:
        what = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        said.append(f"This sheet shows {len(shown)}: {what}.")
    else:
        said.append("This sheet shows none.")
    if context.get("selection") == "default":
        said.append(
            "A fixed rule chose it. No person has checked it yet." if len(shown) == 1
            else "A fixed rule chose them, strongest and newest first. No person has checked them yet."
        )
    return " ".join(said)


def _source_words(context: dict) -> str:
    """Where the records came from: a search that ran, imported files, or both."""
    searched = bool((context.get("search") or {}).get("run_at"))
    imported = bool(context.get("imports"))
    if searched and imported:
        return "The search and the imported files gave"
    if imported:
        return "The imported files hold"
    if searched:
        return "The search returned"
    return "We have"


def _on_topic_words(n: int, topic: str) -> str:
    if n == 0:
        return f"None of them study massage for {topic}."
    verb = "studies" if n == 1 else "study"
    if n < 3:
        return f"Only {n} of them {verb} massage for {topic}."
    return f"{n:,} of them {verb} massage for {topic}."


def _records(n: int) -> str:
    return f"{n:,} {'record' if n == 1 else 'records'}"


def on_topic(record: dict) -> bool:
    """A study about massage for the condition (topic fit direct or partial): quotable."""
    return record.get("fit") in ("direct", "partial")


def _message(lead: str, record: dict | None = None, quote: str | None = None) -> dict:
    """A key message: our lead sentence, then optionally who said what, in their words."""
    said = attribution(record) if record else {"said_by": None, "who": None}
    return {"lead": lead, **said, "quote": quote, "pmid": record["pmid"] if record else None}


def _strongest_message(shown: list[dict]) -> dict | None:
    with_finding = [r for r in shown if finding(r) and on_topic(r)]
    if not with_finding:
        return None
    best = min(with_finding, key=_rank)
    return _message(
        "Here is what the strongest study says, in its authors' own words.",
        best,
        excerpt(finding(best), KEY_QUOTE_CHARS),
    )


def _caution_message(shown: list[dict]) -> dict | None:
    reviews = sorted((r for r in shown if kind_key(r) in (1, "guideline") and on_topic(r)), key=_rank)
    for r in reviews:
        said = [s for s in sentences(finding(r) or "") if CAUTION.search(s)]
        if said:
            return _message(
                "The research is often weak, small or short-term. A review says so.",
                r,
                excerpt(" ".join(said), KEY_QUOTE_CHARS),
            )
    return None


# A citation's identifiers, each kept whole on one line (a DOI broken across lines is copied
# broken). A DOI ends before the sentence's closing period.
_IDENTIFIER = re.compile(r"doi: \S+?(?=\.?(?:\s|$))|PMID: \d+|PMCID: PMC\d+")


def _id_parts(text: str) -> list[dict]:
    parts, at = [], 0
    for match in _IDENTIFIER.finditer(text):
        if match.start() > at:
            parts.append({"text": text[at : match.start()], "kind": "text"})
        parts.append({"text": match.group(0), "kind": "id"})
        at = match.end()
    if at < len(text):
        parts.append({"text": text[at:], "kind": "text"})
    return parts


def citation_parts(citation: str, title: str | None = None) -> list[dict]:
    """A citation cut into parts of kind `text`, `title` and `id` (`doi: …`, `PMID: …`).

    Joining the parts' `text` gives the citation back unchanged. The page shows the title in
    bold (it is the row's heading) and never breaks inside an identifier.
    """
    at = citation.find(title) if title else -1
    if at < 0:
        return _id_parts(citation)
    end = at + len(title)
    return [
        *_id_parts(citation[:at]),
        {"text": citation[at:end], "kind": "title"},
        *_id_parts(citation[end:]),
    ]


def _study_row(r: dict) -> dict:
    said = finding(r)
    notes = [FLAG_NOTES[f] for f in r.get("flags") or [] if f in FLAG_NOTES and f != "guideline"]
    if r.get("fit") in FIT_NOTES:
        notes.append(FIT_NOTES[r["fit"]])
    pmcid = clean(r.get("pmcid"))
    citation = vancouver(r, max_authors=3)  # Citing Medicine allows "first 3, et al."
    return {
        "pmid": clean(r.get("pmid")),
        "level": r.get("level"),
        "kind": clean(r.get("level_label")) or KINDS[kind_key(r)][0].capitalize(),
        "notes": notes,
        "year": r.get("year") or "",
        "short_title": short_title(r),
        "title": title_of(r),
        "finding": excerpt(said) if said else None,
        "citation": citation,
        "citation_parts": citation_parts(citation, title_of(r)),
        # A person's own note on the study (`evidence note`), shown as theirs.
        "note": clean(r.get("note")) or None,
        "finding_ref": None,
        "free_full_text": bool(pmcid),
        "pubmed_url": f"https://pubmed.ncbi.nlm.nih.gov/{clean(r.get('pmid'))}/",
        "pmc_url": f"https://pmc.ncbi.nlm.nih.gov/articles/{pmcid}/" if pmcid else None,
    }


def _without_repeats(rows: list[dict], messages: list[dict]) -> list[dict]:
    """Rows whose quotation a key point already gives whole point to it instead.

    The strongest study's conclusion is quoted in the key points and again in the table;
    printed once, it leaves room for ten studies on two pages.
    """
    for number, message in enumerate(messages, start=1):
        quote = message.get("quote") or ""
        for row in rows:
            if row["pmid"] == message.get("pmid") and row.get("finding") and row["finding"] in quote:
                row["finding"] = None
                row["finding_ref"] = f"Its authors' words are in key point {number} above."
    return rows


def _count_lines(context: dict) -> list[dict]:
    """The PRISMA-style counts, each as our words plus an optional record-derived detail."""
    counts = context.get("counts") or {}
    lines = []
    if "found" in counts:
        lines.append({"text": f"Records found: {counts['found']:,}.", "detail": None})
    by_fit = counts.get("by_fit") or {}
    if "on_topic" in counts:
        detail = None
        if by_fit:
            detail = (
                f"direct: {by_fit.get('direct', 0)}; partial: {by_fit.get('partial', 0)}; "
                f"in passing: {by_fit.get('mention', 0)}; not about it: {by_fit.get('none', 0)}."
            )
        lines.append({"text": f"About massage for this problem: {counts['on_topic']:,}.", "detail": detail})
    if "included" in counts:
        lines.append({"text": f"Shown on this sheet: {counts['included']}.", "detail": None})
    if "excluded" in counts:
        reasons = counts.get("excluded_reasons") or {}
        detail = "; ".join(f"{why}: {n}" for why, n in sorted(reasons.items()))
        lines.append(
            {
                "text": f"Not shown: {counts['excluded']:,}.",
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
        lines.append({"text": "Shown, by type of study:", "detail": detail + "."})
    return lines


# Imported files named on the sheet; more are counted, so the doctor's box stays short.
IMPORTS_NAMED = 3


def _imports_line(context: dict) -> dict | None:
    """`Records imported from:` and the files with their dates, for records that came from files."""
    latest: dict[str, str | None] = {}
    for i in context.get("imports") or []:
        name = Path(str(i.get("file") or "")).name
        latest.pop(name, None)  # a file imported again counts once, at its latest date
        latest[name] = i.get("imported_at")
    if not latest:
        return None
    files = [f"{name} ({_date_words(when) or 'date not recorded'})" for name, when in latest.items()]
    named = files[-IMPORTS_NAMED:]
    more = len(files) - len(named)
    detail = ", ".join(named) + (f", and {more} more {'file' if more == 1 else 'files'}" if more else "")
    return {"text": "Records imported from:", "detail": detail + "."}


def _as_of(context: dict) -> str:
    search = context.get("search") or {}
    ran = _date_words(search.get("run_at"))
    if ran:
        return f"This sheet shows research found as of {ran}."
    dates = [_date_words(i.get("imported_at")) for i in context.get("imports") or []]
    dates = [d for d in dates if d]
    if dates:
        return f"This sheet shows research from files imported on {dates[-1]}."
    return "The date of the search was not recorded."


def _left_out_rows(records: list[dict], context: dict) -> list[dict]:
    """Studies not shown though chosen or strong enough, each with the reason in plain words."""
    rows = [
        {"short_title": short_title(r, 70), "pmid": clean(r.get("pmid")), "reason": is_left_out(r)}
        for r in records
        if is_left_out(r)
    ]
    seen = {row["pmid"] for row in rows}
    for x in context.get("left_out") or []:
        pmid = clean(x.get("pmid"))
        if pmid in seen:
            continue
        seen.add(pmid)
        rows.append({
            "short_title": short_title({"title": x.get("title")}, 70),
            "pmid": pmid,
            "reason": LEFT_OUT_WORDS.get(x.get("reason"), clean(x.get("reason")).capitalize() + "."),
        })
    return rows


# --- the parts that depend on the condition ----------------------------------------------

# What the condition file's [handout] table gives when it says nothing (SHARED_INTERFACES).
DEFAULT_PROVIDER = "a licensed massage therapist"
DEFAULT_CPT = (
    # Our own words: the AMA's descriptions of CPT codes are copyrighted.
    {"code": "97124", "words": "massage, each 15 minutes"},
    {"code": "97140", "words": "manual (hands-on) therapy, each 15 minutes"},
)
CATEGORY_NOTE = "your doctor picks the full code"

# One diary per kind of condition: each measures its own thing (DOMAIN.md). Only pain has the
# 0-10 scale and the PEG items (pain, enjoyment of life, general activity), whose change of
# about 2 points is the one with a published threshold; the others make no such claim.
DIARIES = {
    "pain": {
        "heading": "Your pain diary",
        "intro": "Fill this in daily for a week or two before your visit.",
        "scale": list(range(11)),
        "scale_low": "0 = no pain",
        "scale_high": "10 = worst pain you can imagine",
        "change": "A drop of about 2 points, or a third, is a change that matters.",
        "note": None,
        "columns": [
            "Date",
            "Pain on average (0-10)",
            "Pain kept me from enjoying life (0-10)",
            "Pain kept me from daily tasks (0-10)",
            "How often, how long",
            "What set it off",
            "What I tried, did it help",
        ],
        "rows": 4,
        "goal": "like how far you can walk",
    },
    "stool": {
        "heading": "Your stool diary",
        "intro": "Fill this in daily for a week or two before your visit.",
        "note": None,
        "columns": [
            "Date",
            "How many times I passed stool",
            "Stool: hard, normal, soft or watery",
            "Had to strain? (yes or no)",
            "Belly pain or bloating",
            "What I ate, drank or took",
            "What I tried, did it help",
        ],
        "rows": 4,
        "goal": "like how many times a week you pass stool",
    },
    "sleep": {
        "heading": "Your sleep diary",
        "intro": "Fill this in each morning for a week or two before your visit.",
        "note": None,
        "columns": [
            "Date",
            "Time I went to bed",
            "Minutes to fall asleep",
            "Times I woke up in the night",
            "Time I got up",
            "How well I slept: poor, fair or good",
            "What I tried, did it help",
        ],
        "rows": 4,
        "goal": "like how long it takes you to fall asleep",
    },
    "limb": {
        "heading": "Your swelling diary",
        "intro": "Once a week, measure around the arm or leg with a soft tape. "
        "Measure at the same spots, at the same time of day.",
        "note": "You can also write how your clothes, rings or shoes fit.",
        "columns": [
            "Date",
            "Arm or leg",
            "Around it at spot 1",
            "Around it at spot 2",
            "Around it at spot 3",
            "How clothes, rings or shoes fit",
            "Heavy, tight or sore?",
        ],
        "rows": 4,
        "goal": "like the size of your arm or leg",
    },
    "baby": {
        "heading": "Your baby's diary",
        "intro": "Fill this in daily. Your baby's care team can help you.",
        "note": None,
        "columns": [
            "Date",
            "Feeds: how many, how long",
            "Weight, if weighed",
            "Hours of sleep",
            "Wet and dirty diapers",
            "Massage: who gave it, how long",
            "Notes",
        ],
        "rows": 4,
        "goal": "like weight gain",
    },
    "mood": {
        "heading": "Your mood diary",
        "intro": "Fill this in daily for a week or two before your visit.",
        "note": "Ask your doctor about two short, free forms: the GAD-7 for worry and the "
        "PHQ-9 for low mood. Filled in now and later, they show if you are getting better.",
        "columns": [
            "Date",
            "How I felt today, in a few words",
            "Hours of sleep",
            "What made it better or worse",
            "What I tried, did it help",
        ],
        "rows": 4,
        "goal": "like your score on the GAD-7 or PHQ-9",
    },
}

# Words on this sheet that a patient may not know, each in plain words. A word is explained
# only when it is on the sheet (our words, a study's type, a title or a quote).
GLOSSARY = (
    ("Provisional", r"\bprovisional\b", "a first guess that a person should check."),
    ("Randomized", r"\brandomi[sz]ed\b", "put into groups by chance, like a coin toss."),
    ("Systematic review", r"\bsystematic review|\breviews? of (many )?studies\b",
     "a study of all the studies on one question."),
    ("Observational study", r"\bobservational\b",
     "a study that does not choose who has which care."),
    ("Case report", r"\bcase reports?\b", "the story of one or a few patients."),
    ("Guideline", r"\bguidelines?\b", "advice for doctors from experts who studied the research."),
    ("Retracted", r"\bretract", "taken back by the journal. Do not use it."),
    ("Referral", r"\breferral\b", "a note from your doctor to someone who can give you care."),
    ("Letter of medical necessity", r"\bmedical necessity\b",
     "a letter to your insurer about why you need this care."),
    ("ICD-10-CM", r"\bICD-10-CM\b", "the code for a health problem, used on a form or bill."),
    ("CPT", r"\bCPT\b", "the code for a service, used on a bill."),
    ("GAD-7 and PHQ-9", r"\bGAD-7\b|\bPHQ-9\b", "short forms that measure worry and low mood."),
)


def _handout_parts(condition: dict) -> dict:
    """The condition's [handout] table with SHARED_INTERFACES.md's defaults filled in."""
    given = condition.get("handout") or {}
    diary = given.get("diary") or "pain"
    if diary not in DIARIES:
        raise ExportError(
            f"Unknown diary {diary!r} for {condition.get('slug') or 'this condition'}: "
            f"use one of {', '.join(DIARIES)} in the condition file's [handout] table."
        )
    cpt = given.get("cpt")
    return {
        "diary": diary,
        "letter": bool(given.get("letter", True)),
        "provider": clean(given.get("provider")) or DEFAULT_PROVIDER,
        "cpt": [
            {"code": clean(c.get("code")), "words": clean(c.get("words")) or None}
            for c in (DEFAULT_CPT if cpt is None else cpt)
        ],
        "safety": clean(given.get("safety")) or None,
    }


def diagnosis_codes(condition: dict) -> list[dict]:
    """The condition's ICD-10-CM codes as `{code, description, note}` rows for the sheet.

    A category in dash notation (`M75.-`) is not a code a claim accepts: it carries the note
    that the doctor picks the full code. A bare code string (condition files before the
    `icd10` tables) is shown as it is, without a description.
    """
    rows = []
    for item in condition.get("icd10") or []:
        if isinstance(item, str):
            item = {"code": item}
        code = clean(item.get("code"))
        if not code:
            continue
        category = bool(item.get("category")) or code.endswith("-")
        rows.append(
            {
                "code": code,
                "description": clean(item.get("description")) or None,
                "note": CATEGORY_NOTE if category else None,
            }
        )
    return rows


def _diary(kind: str) -> dict:
    diary = {"kind": kind, "scale": None, "scale_low": None, "scale_high": None, "change": None}
    diary.update({k: v for k, v in DIARIES[kind].items() if k != "goal"})
    diary["list_intro"] = "Each day, write down:"
    diary["row_height"] = None  # the stylesheet's, unless the PDF has room for taller rows
    return diary


def _questions(parts: dict) -> dict:
    baby = parts["diary"] == "baby"
    items = [
        "What is my main problem?" if not baby else "What is my baby's main problem?",
        "What do I need to do?",
        "Why is it important to do this?",
        "Is massage safe for my baby?" if baby else "Is massage safe for me?",
        f"Should I see {parts['provider']}?"
        if not baby
        else f"Can {parts['provider']} show me how to do it?",
    ]
    if parts["letter"]:
        items.append("Can you write a letter to my insurer about why I need this care?")
    return {"heading": "Questions to ask", "items": items}


def _end_sentence(text: str) -> str:
    return text if text.endswith((".", "?", "!")) else text + "."


def _care(parts: dict, codes: list[dict]) -> dict:
    return {
        "heading": "Who gives this care",
        "provider": parts["provider"],
        "provider_line": _end_sentence(parts["provider"][:1].upper() + parts["provider"][1:]),
        # Labels only for lists the sheet shows: the words box explains what is on the sheet.
        "codes_heading": "Codes for the referral",
        "codes_intro": "Your doctor will pick the right codes." if codes or parts["cpt"] else None,
        "icd10_label": "Diagnosis (ICD-10-CM):" if codes else None,
        "icd10": codes,
        "cpt_label": "Service (CPT):" if parts["cpt"] else None,
        "cpt": parts["cpt"],
    }


def _letter(parts: dict, codes: list[dict]) -> dict | None:
    if not parts["letter"]:
        return None
    goal = DIARIES[parts["diary"]]["goal"]
    return {
        "heading": "What a referral or letter of medical necessity needs",
        "items": [
            "The diagnosis and its code.",
            "What you cannot do now.",
            f"Goals you can measure, {goal}.",
            "The plan: minutes per visit, visits per week, number of weeks.",
            "A date to check your progress, and your doctor's signature.",
        ],
        "note": "Your insurer may not pay for massage just to stay well.",
    }


def _strings(value) -> list[str]:
    """Every string in a nested model of dicts and lists."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return [s for v in value for s in _strings(v)]
    return []


def _words_on(model: dict) -> dict:
    """The "words on this sheet" box: each hard word the sheet uses, in plain words."""
    text = " ".join(_strings(model))
    return {
        "heading": "Words on this sheet",
        "items": [
            {"term": term, "meaning": meaning}
            for term, pattern, meaning in GLOSSARY
            if re.search(pattern, text, re.IGNORECASE)
        ],
    }


def build_handout(records: list[dict], context: dict) -> dict:
    """The handout's whole content, as plain data the templates lay out."""
    condition = context.get("condition") or {}
    search = context.get("search") or {}
    shown = [r for r in records if not is_left_out(r)]
    left_out = _left_out_rows(records, context)
    topic = clean(condition.get("title")) or "this condition"
    parts = _handout_parts(condition)
    codes = diagnosis_codes(condition)

    messages: list[dict] = []
    if shown:
        messages.append(_message(_count_message(shown, context)))
        for extra in (_strongest_message(shown), _caution_message(shown)):
            if extra:
                messages.append(extra)
    elif isinstance((context.get("counts") or {}).get("found"), int):
        messages.append(_message(_count_message(shown, context)))
    else:
        messages.append(_message("We found no studies to show on this topic yet."))

    term = clean(search.get("term"))
    database = clean(search.get("database")) or "PubMed"
    hits = search.get("hits")
    ran = _date_words(search.get("run_at"))
    generated = _date_words(context.get("generated_at"))
    version = clean(context.get("tool_version"))
    title = f"Massage therapy for {_lower_first(topic)}: what research says"
    model = {
        "title": title,
        "lang": "en",
        # Document metadata (the PDF's Title, Author, Subject and language): a screen reader
        # announces the title and reads in the right language; a clinic's system files by them.
        "author": f"evidence {version}".strip(),
        "subject": f"PubMed studies on massage therapy for {_lower_first(topic)}",
        "topic": topic,
        "description": clean(condition.get("description")) or None,
        "as_of": _as_of(context),
        "purpose": (
            "Bring this sheet to your doctor. It lists studies on massage for this problem. "
            "It is not advice."
        ),
        "safety_label": "Safety:",
        "safety": parts["safety"],
        "key_heading": "Key points",
        "key_messages": messages[:3],
        "table_heading": "The studies",
        "table_intro": "Strongest first. Words in quotes are the authors' own words.",
        "legend": (
            "Type of study (provisional): our first guess from how a study was set up, not how "
            "well it was done. Level 1 is the strongest, level 5 the weakest."
        ),
        "columns": {
            "kind": "Type of study (provisional)",
            "study": "The study, where to find it, and what its authors said",
        },
        "no_finding": "The study has no line in its summary that says what it found.",
        "free_full_text": "Free full text",
        "note_label": "Note:",
        "studies": _without_repeats([_study_row(r) for r in shown], messages[:3]),
        "no_studies": "No studies to list.",
        "left_out_heading": "Left out",
        "left_out_intro": "We left out these studies. Do not use them as support.",
        "left_out": left_out,
        "doctor": {
            "heading": "For the doctor: how to run this search again",
            "term_label": f"{database} search:" if term else "",
            "term": term or None,
            "term_missing": (
                "No PubMed search was run for this sheet: its records came from imported files."
                if context.get("imports")
                else "The search words were not recorded."
            ),
            "imports": _imports_line(context),
            "link_text": f"Open this search in {database}",
            "link": (
                f"https://pubmed.ncbi.nlm.nih.gov/?term={quote_plus(term)}"
                if term and database == "PubMed"
                else None
            ),
            # On paper a link cannot be clicked, and a search URL is hundreds of characters
            # nobody types: print the site's address and say to paste the search.
            "print_link_intro": "On paper: go to",
            "print_link": "https://pubmed.ncbi.nlm.nih.gov/",
            "print_link_outro": "and paste in the search above.",
            "ran": (
                f"Run on {ran}" + (f": {hits:,} results." if isinstance(hits, int) else ".")
                if ran
                else ("" if context.get("imports") else "Date of the search: not recorded.")
            ),
            "counts": _count_lines(context),
            "selection": (
                "A person picked these studies."
                if context.get("selection") == "curated"
                # One short sentence: the first key point already says how the rule chose.
                else "A fixed rule, not a person, chose these studies."
            ),
            "levels": (
                "Levels come from the publication type alone, not from how well a study was done."
            ),
        },
        "diary": _diary(parts["diary"]),
        "questions": _questions(parts),
        "care": _care(parts, codes),
        "letter": _letter(parts, codes),
        "disclaimer": (
            "This is a summary of research, not medical advice. "
            "Talk with your doctor about what is right for you."
        ),
        "footer": " ".join(
            p
            for p in (
                f"Made on {generated}" if generated else "Made",
                f"with evidence {version}." if version else "with evidence.",
            )
        ),
    }
    model["words"] = _words_on(model)
    return model


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
    return html_page(build_handout(records, context))


def html_page(model: dict) -> str:
    """The HTML page of a handout model (`build_handout`), which the PDF may have adjusted."""
    css = (TEMPLATES / "handout.css").read_text(encoding="utf-8")
    return _template("handout.html.j2", "html").render(h=model, css=css)


def render_markdown(records: list[dict], context: dict) -> str:
    """The handout as Markdown, from the same content model as the HTML."""
    return _template("handout.md.j2", "md").render(h=build_handout(records, context))


# PDF/UA-1: a tagged PDF (headings, lists, tables and reading order marked up, as in the
# HTML) with its title shown in the window and its language set, so a screen reader reads
# it as the page is laid out instead of guessing. WeasyPrint 61+ names it "pdf/ua-1".
PDF_VARIANT = "pdf/ua-1"
# The sheet a patient brings is one or two pages; the export says when it is longer.
PAGES_MAX = 2


# "Fill this in daily for a week or two": a diary grid grows to two weeks where the last page
# has room, and never by so much that it starts another page. Room to spare after that makes
# the rows taller, up to 0.35 in (34 CSS px), easier to write in by hand.
DIARY_ROWS_MAX = 14
DIARY_ROW_MAX_PX = 0.35 * 96


class PDF(bytes):
    """A PDF's bytes, with its number of pages (`pages`), its diary's rows (`diary_rows`) and
    their height in CSS px when the PDF made them taller (`diary_row_height`)."""

    pages: int = 0
    diary_rows: int = 0
    diary_row_height: float | None = None


def render_pdf(records: list[dict], context: dict) -> PDF:
    """The handout as a tagged (PDF/UA-1) US Letter PDF, drawn from the HTML.

    WeasyPrint, because it prints the very HTML template the browser shows, with real CSS
    paged media (@page size and margins, page-break rules, repeated table headers): one
    template, no second layout to keep in step, and no browser to install. Title, author
    and language come from the page's <title>, <meta name="author"> and <html lang>.
    """
    try:
        import weasyprint
    except ImportError as err:  # pragma: no cover - weasyprint is a hard dependency
        raise ExportError("PDF export needs WeasyPrint: pip install weasyprint.") from err

    model = build_handout(records, context)
    diary = model["diary"]

    def layout():
        html = html_page(model)
        return weasyprint.HTML(string=html, base_url=str(TEMPLATES)).render(pdf_variant=PDF_VARIANT)

    # WeasyPrint logs font-subsetting notices as warnings; they say nothing to a patient, and
    # stderr is where our own warnings go.
    quiet = logging.getLogger("weasyprint"), logging.getLogger("fontTools")
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.ERROR)
    try:
        document, height = layout(), None
        rows = diary["rows"]
        space = _diary_space(document)
        if space:
            # A short sheet leaves most of its last page blank under a four-day grid: fill it
            # (a second layout, only then), unless that would cost a page after all.
            free, row = space
            more = min(DIARY_ROWS_MAX - rows, int(free // row))
            if rows + more == DIARY_ROWS_MAX:
                # Keep 2 px of the room unused: the second layout must not round onto a page.
                taller = min(DIARY_ROW_MAX_PX, row + (free - more * row - 2) / DIARY_ROWS_MAX)
                height = taller if taller >= row + 1 else None
            if more or height:
                diary["rows"] = rows + more
                diary["row_height"] = f"{height:.1f}px" if height else None
                fuller = layout()
                if len(fuller.pages) == len(document.pages):
                    document, rows = fuller, rows + more
                else:
                    height = None
        pdf = PDF(document.write_pdf(pdf_variant=PDF_VARIANT))
        pdf.pages = len(document.pages)
        pdf.diary_rows, pdf.diary_row_height = rows, height
        return pdf
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


def _diary_space(document) -> tuple[float, float] | None:
    """The room left under the footer of the last page and the height of a diary row (CSS
    px), or None when the diary is not on the last page or the layout is not known."""
    # WeasyPrint's laid-out boxes of the last page: not a public API, so a WeasyPrint that
    # lays pages out otherwise gets the four-row grid, never an error.
    page = getattr(document.pages[-1], "_page_box", None)
    if page is None or not hasattr(page, "margin_height"):
        return None
    bottom = page.margin_height() - page.margin_bottom
    footer = row = None
    for box in _boxes(page):
        element = getattr(box, "element", None)
        if element is None:
            continue
        if box.element_tag == "footer":
            footer = box
        elif box.element_tag == "tr" and element.get("class") == "day":
            row = box
    if footer is None or row is None or row.margin_height() <= 0:
        return None
    return bottom - (footer.position_y + footer.margin_height()), row.margin_height()


def _boxes(box):
    yield box
    for child in getattr(box, "children", None) or ():
        yield from _boxes(child)
