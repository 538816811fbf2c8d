"""Provisional evidence levels, read from a PubMed record's design alone.

Only a study's design can be read from PubMed; its quality needs a person. So the result is a
*provisional level*, never a grade. The mapping follows DOMAIN.md "Grading evidence by design"
(after OCEBM 2011 "treatment benefits" and SORT):

====================================================================  =====================
signal                                                                result
====================================================================  =====================
Retracted Publication, ``retracted`` True, or a RetractionIn          excluded: level None,
correction                                                            flag ``retracted``
Retraction of Publication / Published Erratum / Expression of         a notice about another
Concern (the record *is* a notice)                                    article: level None
Title starts "WITHDRAWN:" (how PubMed shows a withdrawn Cochrane      level None, flag
review)                                                               ``superseded``
Practice Guideline / Guideline                                        shown apart: level None,
                                                                      flag ``guideline``
Consensus Development Conference (and its NIH kind)                   shown apart with the
                                                                      guidelines: level None,
                                                                      flag ``guideline``
Cochrane review (journal, or DOI ``10.1002/14651858.CDnnnnnn.pubN``)  1
Systematic Review, Meta-Analysis (any "... Meta-Analysis")            1
Randomized Controlled Trial, Pragmatic Clinical Trial                 2
Controlled Clinical Trial, Clinical Trial and its named subtypes      3
("Clinical Trial, Phase III", ...), Observational Study,
Comparative Study
  ... a Clinical Trial alone, no control group or randomization       3, labelled "Non-randomized
  in its title or abstract                                            study"
Case Reports, also with a level-3 type such as Comparative Study      4
Review, Scoping Review, Editorial, Letter, Comment, News,              5 (background)
Newspaper Article
nothing of the above                                                  words, flag ``inferred``
Preprint (with any of the above)                                      flag ``preprint``: not
                                                                      peer reviewed
====================================================================  =====================

Decisions DOMAIN.md leaves open, and why:

* The highest level (lowest number) among the publication types wins.
* "Multicenter Study", "Clinical Study", "Validation Study", "Evaluation Study" say where or
  why a study ran, not how it was controlled: they lift nothing.
* Veterinary trials ("..., Veterinary") and "Clinical Trial Protocol" lift nothing: an animal
  trial is no evidence for a patient, and a protocol has no results. A Clinical Trial Protocol
  is labelled as a protocol.
* "News" and "Newspaper Article" are background (5). "Published Erratum" is not: it is a
  notice that fixes another article, so, like a retraction notice, it is not evidence at all.
* Cochrane: a DOI with ``.pubN`` is review version N. DOMAIN.md says a DOI without ``.pubN``
  is a protocol; that holds unless NLM indexed the record as a Systematic Review, Review or
  Meta-Analysis (the first version of an old review also lacks ``.pubN``), so indexing wins
  over the DOI's shape. A protocol gets level None, because a plan has no results and must
  not sit among reviews, not even as background. A Cochrane journal record whose DOI is not a
  CD number (editorials are ``ED...``) is graded by its publication types.
* Words are read only when the publication types give no signal, or give only "Review"
  (until 2019 NLM indexed systematic reviews as "Review", and publishers still send "Review"
  before indexing). A Review is lifted only to level 1, and only by its title, so a narrative
  review that mentions trials stays background.
* Title words decide before abstract words: an abstract mentions other studies ("a previous
  meta-analysis found ...") far more often than a title does. Abstract patterns are
  self-describing phrases ("were randomly assigned", "this cross-sectional study").
* "protocol for a systematic review" and similar are protocols (level None), which vetoes the
  design words beside them. "Scoping review" is background (5): it maps what exists and
  weighs no effect. A guideline is inferred from title words only when no design word is
  there, and not from "adherence to guidelines"-type phrases.
* Superseded (an UpdateIn correction, an older Cochrane version, a withdrawn review) keeps its
  level and gains a flag: whether to hide it is the reader's choice.
* A case report stays a case report: NLM adds Comparative Study to reports that compare two
  patients or two treatments in one patient, which made them "studies that compared groups".
  Only a randomized or review type (levels 1 and 2) outranks Case Reports.
* "Clinical Trial" says a study tested a treatment prospectively, not that it had a control
  group. Without a control signal (a type such as Controlled Clinical Trial or Comparative
  Study, or words such as control group, randomized, placebo, sham, usual care, wait-list,
  crossover) it keeps level 3 but is labelled a non-randomized study, never "compared groups".
* Consensus Development Conference statements weigh evidence and recommend, as guidelines do,
  so they are shown apart with them (flag ``guideline``) under their own label.
* A preprint keeps the level its design gives, flagged ``preprint``: not peer reviewed.
"""

from __future__ import annotations

import re
from functools import lru_cache

FLAGS: tuple[str, ...] = (
    "guideline",
    "retracted",
    "expression-of-concern",
    "erratum",
    "superseded",
    "inferred",
    "preprint",
)

LEVEL_LABELS: dict[int, str] = {
    1: "Systematic review of studies",
    2: "Randomized controlled trial",
    3: "Controlled or observational study",
    4: "Case report",
    5: "Background (review or opinion)",
}

GUIDELINE_LABEL = "Clinical practice guideline"
CONSENSUS_LABEL = "Consensus statement (experts' agreed view)"
NONRANDOMIZED_LABEL = "Non-randomized study"
RETRACTED_LABEL = "Retracted - do not use"
WITHDRAWN_LABEL = "Withdrawn - do not use"
RETRACTION_NOTICE_LABEL = "Retraction notice"
CORRECTION_NOTICE_LABEL = "Correction notice (fixes another article)"
CONCERN_NOTICE_LABEL = "Expression of concern notice"
COCHRANE_PROTOCOL_LABEL = "Cochrane protocol (a plan for a review, no results yet)"
PROTOCOL_LABEL = "Study protocol (a plan, no results yet)"
NOT_STATED_LABEL = "Study design not stated"

# MeSH publication-type UIs, so a record that carries only ids still grades. Names are matched
# too, because MEDLINE/.nbib records carry names without ids.
_TYPE_NAMES_BY_UI = {
    "D016441": "Retracted Publication",
    "D016440": "Retraction of Publication",
    "D016425": "Published Erratum",
    "D017065": "Practice Guideline",
    "D016431": "Guideline",
    "D000078182": "Systematic Review",
    "D017418": "Meta-Analysis",
    "D016449": "Randomized Controlled Trial",
    "D065007": "Pragmatic Clinical Trial",
    "D018848": "Controlled Clinical Trial",
    "D016430": "Clinical Trial",
    "D064888": "Observational Study",
    "D003160": "Comparative Study",
    "D002363": "Case Reports",
    "D016454": "Review",
    "D016421": "Editorial",
    "D016422": "Letter",
    "D016420": "Comment",
    "D016433": "News",
    "D016446": "Consensus Development Conference",
    "D016447": "Consensus Development Conference, NIH",
}

_LEVEL_BY_TYPE = {
    "systematic review": 1,
    "meta-analysis": 1,
    "randomized controlled trial": 2,
    "pragmatic clinical trial": 2,
    # Under Randomized Controlled Trial in MeSH's publication-type tree (V03.175.250.500.500.125).
    "equivalence trial": 2,
    "controlled clinical trial": 3,
    "clinical trial": 3,
    # Under Clinical Trial in the same tree, like the phases.
    "adaptive clinical trial": 3,
    "observational study": 3,
    "comparative study": 3,
    "case reports": 4,
    "review": 5,
    "scoping review": 5,
    "editorial": 5,
    "letter": 5,
    "comment": 5,
    "news": 5,
    "newspaper article": 5,
}
_GUIDELINE_TYPES = {"practice guideline", "guideline"}
_CONSENSUS_TYPES = {"consensus development conference", "consensus development conference, nih"}
# The types that say only "a clinical trial": no control group is implied.
_CLINICAL_TRIAL_ONLY = re.compile(r"^(?:adaptive )?clinical trial(?:, phase [iv]+)?$")
# Words that say a study had a comparison group. Not "compared with", "versus" or bare
# "control": single-arm studies compare with baseline ("pre versus post") and write "pain
# control". The look-behind keeps "non-randomized" and "uncontrolled" out.
_CONTROL_SIGNAL = re.compile(
    r"(?<![\w-])(?:controlled|controls|control (?:group|arm|condition|subject|participant)s?|"
    r"randomi[sz]\w*|randomly|placebo|sham|usual care|standard care|wait(?:ing)?[- ]?list|"
    r"cross-?over|comparison group|(?:two|three|four|2|3|4) (?:study )?groups)(?!\w)",
    re.I,
)
_NOTICE_TYPES = {
    "retraction of publication": RETRACTION_NOTICE_LABEL,
    "published erratum": CORRECTION_NOTICE_LABEL,
    "expression of concern": CONCERN_NOTICE_LABEL,
}
_PROTOCOL_TYPES = {"clinical trial protocol"}
_REVIEW_TYPES = {"systematic review", "meta-analysis", "review"}
# Opinion is background whatever its title says; only a plain "Review" may be lifted by words.
_OPINION_TYPES = {"editorial", "letter", "comment", "news", "newspaper article"}
_NOTHING_STATED = "No publication type, title or abstract words state a design"

_COCHRANE_DOI = re.compile(r"10\.1002/14651858\.(CD\d{6})(?:\.pub(\d+))?\b", re.I)
_COCHRANE_ANY_DOI = re.compile(r"10\.1002/14651858\.", re.I)
_COCHRANE_JOURNALS = {"cochrane database syst rev", "cochrane database of systematic reviews"}

_UNINDEXED_STATUSES = {"publisher", "in-process", "in-data-review", ""}

# A hyphen or letter before "randomized" makes it "non-randomized" or "quasi-randomized".
_RANDOMIZED = r"(?<![\w-])randomi[sz]ed"
_W = r"(?:[\w-]+[ ]){0,4}?"  # up to four words between the parts of a design phrase

def _words(*parts: str) -> re.Pattern:
    return _compile_i("".join(parts))


def _compile_i(source: str) -> re.Pattern:
    """`re.compile(source, re.I)`, told which characters a match can start with.

    Python's regex engine skips ahead to a pattern's possible first characters only when the
    pattern begins with them; one that begins with "\\b" or a look-behind, as a design phrase
    does, is tried at every character of the text. A look-ahead of those characters first
    (worked out from the parsed pattern, so it is exactly right) makes each search 25-45%
    faster on an abstract and changes no match.
    """
    first = _first_characters(source)
    if first:
        source = f"(?=[{''.join(map(re.escape, sorted(first)))}])(?:{source})"
    return re.compile(source, re.I)


def _first_characters(source: str) -> set[str] | None:
    """Every character a match of `source` can start with; None when that is not a short
    list of plain characters (a class such as \\w, a pattern that can match nothing)."""
    try:
        from re import _constants as c
        from re import _parser
    except ImportError:  # a Python without this private parser: search without the hint
        return None

    def of_sequence(items) -> tuple[set[str], bool] | None:
        found: set[str] = set()
        for op, av in items:
            one = of_item(op, av)
            if one is None:
                return None
            chars, can_be_empty = one
            found |= chars
            if not can_be_empty:
                return found, False
        return found, True

    def of_item(op, av) -> tuple[set[str], bool] | None:
        if op == c.LITERAL:
            return {chr(av)}, False
        if op in (c.AT, c.ASSERT, c.ASSERT_NOT):
            return set(), True  # consumes nothing: the next item starts the match
        if op == c.IN:
            chars = set()
            for kind, value in av:
                if kind == c.LITERAL:
                    chars.add(chr(value))
                elif kind == c.RANGE and value[1] - value[0] < 16:
                    chars.update(map(chr, range(value[0], value[1] + 1)))
                else:
                    return None
            return chars, False
        if op == c.BRANCH:
            found, can_be_empty = set(), False
            for branch in av[1]:
                one = of_sequence(branch)
                if one is None:
                    return None
                found |= one[0]
                can_be_empty |= one[1]
            return found, can_be_empty
        if op == c.SUBPATTERN:
            return of_sequence(av[3])
        if op in (c.MAX_REPEAT, c.MIN_REPEAT):
            one = of_sequence(av[2])
            return None if one is None else (one[0], one[1] or av[0] == 0)
        return None

    try:
        result = of_sequence(_parser.parse(source, re.I))
    except Exception:  # a Python whose private parser works otherwise: no hint
        return None
    if result is None or result[1] or not result[0]:
        return None
    return result[0]


# Every pattern below carries keys: lower-case words, at least one of which is in any text it
# can match. Most titles and abstracts hold none of a pattern's keys, and `in` on the folded
# text rules a pattern out for a fraction of a search's cost (searches were ~70% of grading).
_PROTOCOL_TITLE = [
    (("protocol",), _words(
        r"\bprotocol (?:for|of) (?:an? |the )?", _W,
        r"(?:systematic|meta-?analys|scoping|umbrella|review|trial|randomi[sz]ed|study|cohort)",
        r"[\w-]*(?: review| trial| study)?(?: and meta-?analys[ie]s)?",
    )),
    (("protocol",), _words(r"\b(?:study|trial|review) protocol\b")),
    (("rationale",), _words(r"\b(?:rationale and design|design and rationale)\b")),
]
_PROTOCOL_ABSTRACT = [
    (("protocol",), _words(r"\bthis is (?:a|the) protocol\b")),
    (("protocol",), _words(
        r"\bthis (?:study |trial |review )?protocol (?:describes|will|outlines|presents)\b"
    )),
    (("protocol",), _words(
        r"\bwe (?:describe|present|report) (?:the|a|our) (?:study |trial |review )?protocol\b"
    )),
]

# (level, keys, pattern): every matching pattern counts, the lowest level wins.
_TITLE_WORDS = [
    (1, ("systematic",), _words(r"\bsystematic (?:literature )?review")),
    (1, ("analy",), _words(r"\bmeta-?analy(?:sis|ses|tic)\b")),
    (1, ("umbrella",), _words(r"\bumbrella review\b")),
    (1, ("overview",), _words(r"\boverview of (?:systematic )?reviews\b")),
    (2, ("randomi",), _words(_RANDOMIZED, r"\b(?:,? (?:[\w-]+,? ){0,3}?(?:trial|study)\b)?")),
    (2, ("pragmatic",), _words(r"\bpragmatic (?:clinical )?trial\b")),
    (3, ("randomi",), _words(r"\b(?:non-?|quasi-)randomi[sz]ed\b")),
    (3, ("experiment",), _words(r"\bquasi-?experiment(?:al)?\b")),
    (3, ("trial",), _words(
        r"\b(?:controlled|clinical|pilot|feasibility|open-label|single-arm|cross-?over) trial\b"
    )),
    (3, ("cohort",), _words(
        r"\b(?:(?:prospective|retrospective|population-based) )?cohort study\b",
        r"|\b(?:prospective|retrospective) cohort\b",
    )),
    (3, ("control",), _words(r"\bcase-?control\b")),
    (3, ("sectional",), _words(r"\bcross-?sectional\b")),
    (3, ("observational",), _words(r"\bobservational (?:study|analysis)\b")),
    (3, ("review",), _words(r"\b(?:chart|medical records?|record) review\b")),
    (3, ("study",), _words(r"\b(?:longitudinal|prospective|retrospective|comparative) study\b")),
    (4, ("case",), _words(r"\bcase reports?\b|\bcase series\b")),
    (4, ("case",), _words(r"\b(?:an?|one) (?:rare |unusual |unique |atypical )?case of\b")),
    (4, ("case",), _words(r"\breport of (?:a|an|one|two|three|four|five) (?:[\w-]+ )?cases?\b")),
    (5, ("review",), _words(r"(?<!peer )(?<!peer-)\breview\b")),
    (5, ("editor", "commentary"), _words(r"\b(?:editorial|commentary|letter to the editor)\b")),
]
# Self-describing phrases only: an abstract also talks about other people's studies.
_THIS = r"\b(?:an?|this|the present|our) "
# "analysis" alone is in a fifth of all abstracts; these are in every match, and rarely elsewhere.
_REVIEW_KEYS = ("systematic review", "meta-analysis", "metaanalysis")
_ABSTRACT_WORDS = [
    (1, _REVIEW_KEYS, _words(r"\b(?:this|the present|our) (?:systematic review|meta-?analysis)\b")),
    (1, _REVIEW_KEYS, _words(
        r"\bwe (?:conducted|performed|undertook|carried out) an? (?:updated )?",
        r"(?:systematic review|meta-?analysis)\b",
    )),
    (1, _REVIEW_KEYS, _words(
        r"\b(?:systematic review|meta-?analysis) (?:was|were) ",
        r"(?:conducted|performed|undertaken|carried out)\b",
    )),
    (2, ("randomi",), _words(r"\b(?:were|was) (?:randomly )?", _RANDOMIZED, r"\b")),
    (2, ("randomly",), _words(r"\brandomly (?:assigned|allocated|divided|distributed)\b")),
    (2, ("randomi",), _words(_THIS, _W, _RANDOMIZED, " ", _W, r"(?:trial|study)\b")),
    (3, ("cohort", "control", "sectional", "observational", "randomi", "experimental"), _words(
        _THIS, _W,
        r"(?:cohort|case-?control|cross-?sectional|observational|non-?randomi[sz]ed|",
        r"quasi-experimental) (?:study|design|analysis|survey|trial)\b",
    )),
    (3, ("trial",), _words(
        r"\b(?:this|the present|our) (?:controlled|clinical|pilot|open-label|single-arm) trial\b"
    )),
    (4, ("case",), _words(
        r"\bwe (?:report|describe|present) (?:a|an|the|one|two|three) (?:[\w-]+ ){0,3}?cases?\b"
    )),
    # How case reports open: "A 45-year-old woman presented with ..."
    (4, ("-old",), _words(
        r"\ban? \d{1,3}-(?:year|month|week|day)-old ",
        r"(?:man|woman|boy|girl|male|female|patient)\b",
    )),
]
_GUIDELINE_KEYS = ("guideline",)
_GUIDELINE_TITLE = _compile_i(r"\b(?:(?:clinical )?practice )?guidelines?\b(?!-)")
_GUIDELINE_ABOUT = _compile_i(
    r"\b(?:adherence|compliance|concordance|conformity|conformance|implementation|adoption|"
    r"uptake|awareness|knowledge|use|according|attitudes?) (?:to|with|of|towards?) (?:the )?"
    r"(?:[\w-]+ ){0,4}?guidelines?\b"
)
# Under re.I these four match an ASCII letter, yet str.lower() leaves them (or, for U+0130,
# turns it into two characters), so `_fold` maps them first. Python's regex engine names no
# others (tests/test_grading.py asks it).
_CASE_TWINS = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
# translate() is slow on non-ASCII text and few texts hold a twin: look for one first.
_TWINS = tuple(chr(c) for c in _CASE_TWINS)
_WITHDRAWN = re.compile(r"\s*WITHDRAWN\s*:")
_NOT_LOWER_OR_SPACE = re.compile(r"[^a-z ]")
_LEADING_THE = re.compile(r"^the ")
_PUB_SUFFIX = re.compile(r"\.pub\d+", re.I)


def grade(record: dict) -> dict:
    """Give a record its provisional level, plain-words label, reason and flags (no mutation).

    Returns ``{"level": int | None, "level_label": str, "level_reason": str, "flags": list}``.
    """
    types = _publication_types(record)
    title = _text(record.get("title"))
    flags = _correction_flags(record, types)

    retraction = _retraction_reason(record, types)
    if retraction:
        return _result(None, RETRACTED_LABEL, retraction, flags | {"retracted"})
    for name, label in _NOTICE_TYPES.items():
        if name in types:
            return _result(None, label, f"Publication type: {types[name]}", flags)
    if _WITHDRAWN.match(title):
        return _result(
            None, WITHDRAWN_LABEL, "Title starts with WITHDRAWN: (no longer current)",
            flags | {"superseded"},
        )
    guideline = [types[n] for n in _GUIDELINE_TYPES if n in types]
    if guideline:
        return _result(
            None, GUIDELINE_LABEL, f"Publication type: {sorted(guideline)[0]}",
            flags | {"guideline"},
        )
    consensus = [types[n] for n in _CONSENSUS_TYPES if n in types]
    if consensus:
        return _result(
            None, CONSENSUS_LABEL, f"Publication type: {sorted(consensus)[0]}",
            flags | {"guideline"},
        )
    cochrane = _cochrane_grade(record, types)
    if cochrane:
        return _result(cochrane[0], cochrane[1], cochrane[2], flags)
    protocol = [types[n] for n in _PROTOCOL_TYPES if n in types]
    if protocol:
        return _result(None, PROTOCOL_LABEL, f"Publication type: {protocol[0]}", flags)

    level, type_name = _level_from_types(types)
    only_review = level == 5 and not set(types) & _OPINION_TYPES
    if level is None or only_review:
        words = _grade_from_words(record, title, reviews_only=level == 5)
        if words:
            word_level, label, reason = words
            extra = {"inferred", "guideline"} if label == GUIDELINE_LABEL else {"inferred"}
            return _result(word_level, label, reason, flags | extra)
    if level is None:
        return _result(None, NOT_STATED_LABEL, _NOTHING_STATED, flags)
    if level == 3 and "case reports" in types:
        return _result(
            4, LEVEL_LABELS[4],
            f"Publication type: {types['case reports']} ({type_name} does not lift a case report)",
            flags,
        )
    if level == 3 and _clinical_trial_only(types) and not _says_controlled(record, title):
        return _result(
            3, NONRANDOMIZED_LABEL,
            f"Publication type: {type_name}; no control group or randomization stated",
            flags,
        )
    return _result(level, LEVEL_LABELS[level], f"Publication type: {type_name}", flags)


def cochrane_review(record: dict) -> tuple[str, int] | None:
    """The Cochrane review a record is a version of, as (CD number, version), from its DOI.

    ``10.1002/14651858.CD001929.pub3`` gives ``("CD001929", 3)``; a DOI without ``.pubN`` is
    version 1. Returns None for a record that is not a Cochrane CD-numbered article.
    """
    match = _COCHRANE_DOI.search(_text(record.get("doi")))
    if not match:
        return None
    return match.group(1).upper(), int(match.group(2) or 1)


def mark_superseded(records: list[dict]) -> None:
    """Flag "superseded" on every Cochrane record whose review has a newer version in ``records``.

    The records carry ``grade()`` output already; their ``flags`` lists are replaced in place.
    """
    newest: dict[str, int] = {}
    versions = []
    for record in records:
        review = cochrane_review(record)
        versions.append(review)
        if review:
            newest[review[0]] = max(newest.get(review[0], 0), review[1])
    for record, review in zip(records, versions):
        if review and review[1] < newest[review[0]]:
            record["flags"] = _ordered_flags(set(record.get("flags") or ()) | {"superseded"})


def sort_key(record: dict) -> tuple:
    """Rank records: level 1, guidelines, levels 2-5, then ungraded, retracted last; newest first.

    Guidelines sit right after level-1 reviews: they weigh evidence as a review does, and a
    doctor looks for them early, but they carry recommendations, so reviews lead. Within a
    group the newest year comes first, then the lower PMID. Uses the record's own grade if it
    has one, else grades it.
    """
    graded = record if "level" in record else {**record, **grade(record)}
    flags = set(graded.get("flags") or ())
    level = graded.get("level")
    if "retracted" in flags:
        group = 9.0
    elif "guideline" in flags and level is None:
        group = 1.5
    elif isinstance(level, int) and level in LEVEL_LABELS:
        group = float(level)
    else:
        group = 8.0
    year = _year(graded.get("year"))
    pmid = str(graded.get("pmid") or "")
    pmid_number = int(pmid) if pmid.isdigit() else float("inf")
    return (group, year is None, -(year or 0), pmid_number, pmid)


def _publication_types(record: dict) -> dict[str, str]:
    """Lower-cased publication type name -> the name as given, from names and MeSH UIs."""
    names = _as_list(record.get("publication_types"))
    ids = _as_list(record.get("publication_type_ids"))
    names += [_TYPE_NAMES_BY_UI.get(ui.strip(), "") for ui in ids]
    types: dict[str, str] = {}
    for name in names:
        clean = " ".join(name.split())
        if clean:
            types.setdefault(clean.lower(), clean)
    return types


def _as_list(value) -> list[str]:
    # A MEDLINE reader may hand over a bare string for a single value.
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return [str(item) for item in value if item is not None]


def _text(value) -> str:
    if not value:
        return ""
    text = str(value)
    # The parser's text is already one line of single spaces (an abstract joins its sections
    # with "\n"): then split and join would only copy it. No printable character but " " is
    # whitespace, so these checks find exactly the texts that split and join leave as they are.
    flat = text.replace("\n", " ") if "\n" in text else text
    if flat.isprintable() and "  " not in flat and flat[0] != " " and flat[-1] != " ":
        return flat
    return " ".join(text.split())


def _corrections(record: dict) -> list[dict]:
    return [c for c in record.get("corrections") or () if isinstance(c, dict)]


def _clinical_trial_only(types: dict[str, str]) -> bool:
    """True when every level-3 type is a plain Clinical Trial (or a phase of one)."""
    level_3 = [name for name in types if _type_level(name) == 3]
    return bool(level_3) and all(_CLINICAL_TRIAL_ONLY.match(name) for name in level_3)


def _says_controlled(record: dict, title: str) -> bool:
    return bool(_CONTROL_SIGNAL.search(f"{title} {_text(record.get('abstract'))}"))


def _correction_flags(record: dict, types: dict[str, str]) -> set[str]:
    kinds = {c.get("type") for c in _corrections(record)}
    flags = {"preprint"} if "preprint" in types else set()
    if "ExpressionOfConcernIn" in kinds or "expression of concern" in types:
        flags.add("expression-of-concern")
    if "ErratumIn" in kinds:
        flags.add("erratum")
    if "UpdateIn" in kinds:
        flags.add("superseded")
    return flags


def _retraction_reason(record: dict, types: dict[str, str]) -> str | None:
    if "retracted publication" in types:
        return f"Publication type: {types['retracted publication']}"
    for correction in _corrections(record):
        if correction.get("type") == "RetractionIn":
            notice = correction.get("pmid")
            return f"Retraction notice: PMID {notice}" if notice else "Retraction notice in PubMed"
    if record.get("retracted") is True:
        return "Record marked retracted"
    return None


def _is_cochrane_journal(record: dict) -> bool:
    for key in ("journal_abbrev", "journal"):
        name = _NOT_LOWER_OR_SPACE.sub("", _text(record.get(key)).lower())
        name = _LEADING_THE.sub("", name)
        if name in _COCHRANE_JOURNALS:
            return True
    return False


def _cochrane_grade(record: dict, types: dict[str, str]) -> tuple[int | None, str, str] | None:
    doi = _text(record.get("doi"))
    review = cochrane_review(record)
    if review is None:
        # A Cochrane DOI that is no CD number (an ED... editorial) is graded by its types.
        if not _is_cochrane_journal(record) or _COCHRANE_ANY_DOI.search(doi):
            return None
        if set(types) & _OPINION_TYPES:
            return None
        if _says_protocol(record):
            return None, COCHRANE_PROTOCOL_LABEL, "Cochrane journal; the text says protocol"
        return 1, LEVEL_LABELS[1], "Cochrane review (journal)"
    number, version = review
    has_pub = _PUB_SUFFIX.search(doi) is not None
    if _says_protocol(record):
        return None, COCHRANE_PROTOCOL_LABEL, f"Cochrane {number}: the text says protocol"
    if not has_pub and not set(types) & _REVIEW_TYPES:
        return None, COCHRANE_PROTOCOL_LABEL, f"Cochrane DOI without .pubN ({doi})"
    return 1, LEVEL_LABELS[1], f"Cochrane review {number}, version {version} (DOI {doi})"


def _says_protocol(record: dict) -> bool:
    title = _text(record.get("title"))
    abstract = _text(record.get("abstract"))
    return _first_match(title, _present(title, _PROTOCOL_TITLE_KEYS), _PROTOCOL_TITLE) is not None or (
        _first_match(abstract, _present(abstract, _PROTOCOL_ABSTRACT_KEYS), _PROTOCOL_ABSTRACT) is not None
    )


def _level_from_types(types: dict[str, str]) -> tuple[int | None, str | None]:
    """The best level any publication type gives, and every type that gives it."""
    levels = {given: _type_level(name) for name, given in types.items()}
    found = [level for level in levels.values() if level is not None]
    if not found:
        return None, None
    best = min(found)
    return best, ", ".join(sorted(given for given, level in levels.items() if level == best))


def _type_level(name: str) -> int | None:
    if "veterinary" in name:
        return None
    if name in _LEVEL_BY_TYPE:
        return _LEVEL_BY_TYPE[name]
    if name.endswith("meta-analysis"):  # Network Meta-Analysis and any later kinds
        return 1
    if name.startswith("clinical trial,"):  # Clinical Trial, Phase I ... IV
        return 3
    return None


def _grade_from_words(
    record: dict, title: str, reviews_only: bool
) -> tuple[int | None, str, str] | None:
    """Infer a level from title, then abstract, words; None when no words say anything."""
    status = _text(record.get("status")).lower()
    why = "(not yet indexed)" if status in _UNINDEXED_STATUSES else "(no design publication type)"
    abstract = _text(record.get("abstract"))
    title_keys = _present(title, _TITLE_KEYS)

    match = _first_match(title, title_keys, _PROTOCOL_TITLE)
    if match:
        return None, PROTOCOL_LABEL, f"Title words: '{match.group(0)}' {why}"
    # A Review is lifted by its title alone, so its abstract is never read (nor folded). The
    # abstract's keys are looked for as late as they are needed: most titles that state a
    # design spare the abstract its other keys.
    if not reviews_only:
        match = _first_match(abstract, _present(abstract, _PROTOCOL_ABSTRACT_KEYS), _PROTOCOL_ABSTRACT)
        if match:
            return None, PROTOCOL_LABEL, f"Abstract words: '{match.group(0)}' {why}"

    found = _best_words(title, title_keys, _TITLE_WORDS)
    if found and (not reviews_only or found[0] == 1):
        level, words = found
        return level, LEVEL_LABELS[level], f"Title words: '{words}' {why}"
    if reviews_only:
        return None
    guideline = _search(title, title_keys, _GUIDELINE_KEYS, _GUIDELINE_TITLE)
    if guideline and not _GUIDELINE_ABOUT.search(title):
        return None, GUIDELINE_LABEL, f"Title words: '{guideline.group(0)}' {why}"
    found = _best_words(abstract, _present(abstract, _ABSTRACT_WORDS_KEYS), _ABSTRACT_WORDS)
    if found:
        level, words = found
        return level, LEVEL_LABELS[level], f"Abstract words: '{words}' {why}"
    return None


def _best_words(text: str, present: frozenset[str], patterns) -> tuple[int, str] | None:
    best: tuple[int, int, str] | None = None
    for level, keys, pattern in patterns:
        if best is not None and level > best[0]:
            # Each list rises in level: nothing after a higher level can beat what is found.
            break
        match = _search(text, present, keys, pattern)
        if match and (best is None or (level, match.start()) < best[:2]):
            best = (level, match.start(), match.group(0).strip())
    return (best[0], best[2]) if best else None


def _first_match(text: str, present: frozenset[str], patterns) -> re.Match | None:
    for keys, pattern in patterns:
        match = _search(text, present, keys, pattern)
        if match:
            return match
    return None


def _search(text: str, present: frozenset[str], keys: tuple[str, ...], pattern: re.Pattern) -> re.Match | None:
    """`pattern.search(text)`, skipped when the text holds none of the pattern's keys.

    `present` is what `_present` found: the keys, of all the patterns a text is searched
    with, that the folded text holds.
    """
    if present.isdisjoint(keys):
        return None
    return pattern.search(text)


def _present(text: str, keys: tuple[str, ...]) -> frozenset[str]:
    """The keys the folded text holds, each looked for once, all in one call that runs in C.

    Patterns share keys (the three self-describing review phrases all have "systematic
    review", "meta-analysis" and "metaanalysis"), and most texts hold none: a real 2021 update
    file's records, mostly without a design publication type, were searched with 29 patterns
    each, and a Python call per key (a memo dict's __missing__) cost more than the scans.
    """
    if not text:
        return frozenset()
    return frozenset(filter(_fold(text).__contains__, keys))


def _keys_of(*tables) -> tuple[str, ...]:
    """Every key of some pattern tables ((keys, pattern) or (level, keys, pattern) rows)."""
    return tuple(sorted({key for table in tables for row in table for key in row[-2]}))


_PROTOCOL_TITLE_KEYS = _keys_of(_PROTOCOL_TITLE)
_PROTOCOL_ABSTRACT_KEYS = _keys_of(_PROTOCOL_ABSTRACT)
_TITLE_KEYS = _keys_of(_PROTOCOL_TITLE, _TITLE_WORDS, [(_GUIDELINE_KEYS, _GUIDELINE_TITLE)])
_ABSTRACT_WORDS_KEYS = _keys_of(_ABSTRACT_WORDS)


@lru_cache(maxsize=8)  # an abstract's keys are looked for in two steps, the protocol's and the words'
def _fold(text: str) -> str:
    """`text` lower-cased so that a key in any re.I match of it is a substring of the result."""
    if text.isascii() or not any(map(text.__contains__, _TWINS)):
        return text.lower()
    return text.translate(_CASE_TWINS).lower()


def _result(level: int | None, label: str, reason: str, flags: set[str]) -> dict:
    return {
        "level": level, "level_label": label, "level_reason": reason, "flags": _ordered_flags(flags)
    }


def _ordered_flags(flags: set[str]) -> list[str]:
    return [flag for flag in FLAGS if flag in flags]


def _year(value) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value or "").strip()
    return int(text[:4]) if text[:4].isdigit() else None
