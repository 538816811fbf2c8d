"""Topic fit: is a record about massage for this condition, or does it only mention either?

Pure rules over a record's own fields, in the spirit of `grading`: the search that linked a
record to a condition casts a wide net (a trial of exercise that used massage as its control,
a review of every back-pain treatment, a cardiac-surgery trial with a foot-massage arm), and a
patient's handout must show the studies *about* massage for the condition.

Each of the two topics, massage and the condition, is read where a study says what it is about:

========================  =============================================================
central                   the title, or a MeSH heading NLM marked as a major topic
mentioned                 the abstract, the author keywords, or a minor MeSH heading
absent                    none of these
========================  =============================================================

and the two combine into an ordered scale:

=========  ================================================================  ====
fit        when                                                              rank
=========  ================================================================  ====
direct     both central                                                      1
partial    massage central, the condition mentioned                          2
partial    the condition central, massage mentioned (often a comparator)     3
mention    both mentioned; or massage central and the condition absent       4
none       massage absent; or massage mentioned and the condition absent     5
=========  ================================================================  ====

Words are the search's own: the shared massage block (`queries.MASSAGE_MESH`,
`queries.MASSAGE_TEXT_WORDS`) plus a condition's `intervention_words`, and the condition's
MeSH headings and text words, with PubMed's trailing `*` read as "any ending". Massage words
inside an excluded phrase ("prostatic massage", "cardiac massage") do not count, and neither
does the MeSH heading Massage on such a record: NLM indexes prostatic massage under Massage.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache

from evidence import queries
from evidence.queries import Condition

# Bump when the rules below change meaning: every stored fit is then recomputed on next use.
RULES_VERSION = 1

FITS = ("direct", "partial", "mention", "none")
FIT_LABELS = {
    "direct": "About massage for this condition",
    "partial": "Partly about massage for this condition",
    "mention": "Mentions massage or the condition only in passing",
    "none": "Not about massage for this condition",
}
# Fits the default export may choose by rule, best first.
ON_TOPIC = ("direct", "partial")

CENTRAL, MENTIONED, ABSENT = 2, 1, 0


@dataclass(frozen=True)
class _Topic:
    """What counts as one topic: a compiled text pattern and MeSH headings (lower case)."""

    name: str
    pattern: _Words | None
    mesh: frozenset[str]


@dataclass(frozen=True)
class Rules:
    """A condition's fit rules, compiled once. `key` changes whenever the words change."""

    massage: _Topic
    condition: _Topic
    excluded: _Words | None
    key: str


def _compile(words) -> _Words | None:
    # Longest first, so the reason quotes "deep tissue massage" rather than "massage".
    alternatives = sorted({w.strip() for w in words if w and w.strip()}, key=len, reverse=True)
    if not alternatives:
        return None
    # queries.word_pattern reads a text word as the search does (wildcards, hyphens, ~N).
    singles = [re.compile(queries.word_pattern(w).pattern, re.IGNORECASE) for w in alternatives]
    pattern = re.compile("|".join(f"(?:{p.pattern})" for p in singles), re.IGNORECASE)
    keys = [_keys(w) for w in alternatives]
    if not all(keys):
        return _Words(pattern, None)
    # The longest piece first: the rarest, most often, so the test stops early.
    ordered = [tuple(sorted(k, key=lambda w: (-len(w), w))) for k in keys]
    return _Words(pattern, tuple(zip(ordered, singles)), _gates(ordered))


# A gate is a key or the start of one at least this long: "massag", "therap" (a shorter start,
# or a part inside a word, such as "ation", is in too many texts to rule any out).
_GATE_MIN = 5


def _gates(keys: list[tuple[str, ...]]) -> tuple[str, ...]:
    """For each word, one piece of text that every match of it holds, shared by as many words
    as can share one: a text that holds none of the few gates holds none of the words.

    A gate is one of the word's keys, or the start of one (every match holds its keys, so it
    holds their starts): "massage" for every massage phrase, "therap" for "zone therapy" and
    "trigger point therap*" alike. Chosen greedily: the gate most words hold, the longer on a
    tie; gates of _GATE_MIN letters or more first, and a word whose keys are all shorter
    ("tui na") gets one of them.
    """
    gate_of: dict[int, str] = {}
    for whole_keys_only in (False, True):
        candidates: dict[str, set[int]] = {}
        for i, word_keys in enumerate(keys):
            if i in gate_of:
                continue
            for key in word_keys:
                starts = [key] if whole_keys_only else [key[:end] for end in range(_GATE_MIN, len(key) + 1)]
                for start in starts:
                    candidates.setdefault(start, set()).add(i)
        while candidates:
            best = max(candidates, key=lambda c: (len(candidates[c]), len(c), c))
            for i in candidates.pop(best):
                gate_of.setdefault(i, best)
            candidates = {c: left for c, words in candidates.items() if (left := words - gate_of.keys())}
    return tuple(gate_of[i] for i in range(len(keys)))


def _keys(word: str) -> frozenset[str]:
    """Lower-case pieces of text that every match of the word holds (empty when none is safe)."""
    phrase, _ = queries.parse_text_word(word.strip())
    parts = re.split(r"[\s-]+", phrase)
    literals = {(p[:-1] if p.endswith("*") else p).lower() for p in parts}
    literals.discard("")
    # Under re.IGNORECASE an ASCII letter also matches four other letters, which _fold maps
    # back; a non-ASCII one matches letters whose lower case differs, so it gets no key.
    if not literals or not all(k.isascii() for k in literals):
        return frozenset()
    return frozenset(literals)


_CASE_TWINS = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})
_TWINS = tuple(chr(c) for c in _CASE_TWINS)


@lru_cache(maxsize=8)  # the same title and abstract are folded for each topic
def _fold(text: str) -> str:
    """`text` lower-cased so that the key of any re.I match of an ASCII word is a substring."""
    if text.isascii() or not any(map(text.__contains__, _TWINS)):
        return text.lower()
    return text.translate(_CASE_TWINS).lower()


class _Words:
    """A compiled alternation of words that searches only for the words a text can hold.

    Most titles and abstracts hold no massage or condition word, and a substring test rules
    a text out for a small part of what the regex search costs; of the ~40 words of the
    massage block a text that holds any usually holds one or two, and searching for those
    alone costs a fraction of the whole alternation (fit was the largest part of grading a
    modern record). Same match as the pattern alone: the leftmost, and at one place the
    first word in the pattern's order.
    """

    __slots__ = ("pattern", "words", "_gates", "_checks")

    def __init__(
        self,
        pattern: re.Pattern,
        words: tuple[tuple[tuple[str, ...], re.Pattern], ...] | None,
        gates: tuple[str, ...] = (),
    ):
        self.pattern = pattern
        # Per word, in the pattern's order: the pieces of text all of which any match of it
        # holds, and the word's own pattern (None: no key is safe, search with `pattern`).
        self.words = words
        # Per word, a gate: a piece of text every match of it holds, most shared by several
        # words (`_gates`). The gates a text holds are found once, and a word is looked at
        # only when its gate is among them (then for its keys, then with its pattern).
        self._gates = tuple(sorted(set(gates)))
        self._checks = tuple(
            (gate, tuple(k for k in keys if k != gate), single) for gate, (keys, single) in zip(gates, words or ())
        )

    @property
    def keys(self) -> tuple[tuple[str, ...], ...] | None:
        return tuple(keys for keys, _ in self.words) if self.words is not None else None

    def search(self, text: str) -> re.Match | None:
        if self.words is None:
            return self.pattern.search(text)
        holds = _fold(text).__contains__
        # One pass in C finds the gates the text holds: none rules out most texts; the keys
        # are checked only for the words whose gate is there.
        present = set(filter(holds, self._gates))
        if not present:
            return None
        best = None
        for gate, rest, single in self._checks:
            if gate in present and (not rest or all(map(holds, rest))):
                found = single.search(text)
                if found is not None and (best is None or found.start() < best.start()):
                    best = found
        return best

    def sub(self, replacement: str, text: str) -> str:
        return self.pattern.sub(replacement, text)


def rules_for(condition: Condition) -> Rules:
    """The compiled fit rules of a condition (cached per distinct set of words)."""
    intervention = tuple(getattr(condition, "intervention_words", ()) or ())
    headings = tuple(m["heading"] for m in condition.mesh)
    return _rules(
        tuple(queries.MASSAGE_MESH),
        tuple(queries.MASSAGE_TEXT_WORDS) + intervention,
        headings,
        tuple(condition.text_words),
        tuple(queries.exclusion_words(condition)),
    )


@lru_cache(maxsize=256)
def _rules(massage_mesh, massage_words, condition_mesh, condition_words, excluded) -> Rules:
    key_text = "\x1f".join(
        [str(RULES_VERSION)]
        + ["|".join(sorted(part)) for part in (massage_mesh, massage_words, condition_mesh, condition_words, excluded)]
    )
    return Rules(
        massage=_Topic("massage", _compile(massage_words), frozenset(h.lower() for h in massage_mesh)),
        condition=_Topic("condition", _compile(condition_words), frozenset(h.lower() for h in condition_mesh)),
        excluded=_compile(excluded),
        key=hashlib.sha1(key_text.encode("utf-8")).hexdigest()[:16],
    )


def _where(topic: _Topic, title: str, abstract: str, keywords: str, major: dict, minor: dict):
    """(strength, place, quoted words) for one topic in one record.

    `major` and `minor` map lower-cased MeSH headings to NLM's spelling, for the reason text.
    """
    if topic.pattern is not None:
        found = topic.pattern.search(title)
        if found:
            return CENTRAL, "title", found.group(0)
    hit = sorted(topic.mesh & major.keys())
    if hit:
        return CENTRAL, "MeSH major topic", major[hit[0]]
    if topic.pattern is not None:
        for place, text in (("abstract", abstract), ("keywords", keywords)):
            found = topic.pattern.search(text)
            if found:
                return MENTIONED, place, found.group(0)
    hit = sorted(topic.mesh & minor.keys())
    if hit:
        return MENTIONED, "MeSH", minor[hit[0]]
    return ABSENT, None, None


def _by_lower(names) -> dict[str, str]:
    return {str(n).lower(): str(n) for n in names or () if n}


def fit(record: dict, rules: Rules) -> dict:
    """The record's topic fit for one condition: `{"fit", "fit_rank", "fit_reason"}`."""
    title = " ".join(str(record.get("title") or "").split())
    abstract = str(record.get("abstract") or "")
    keywords = " ; ".join(str(k) for k in record.get("keywords") or [])
    major = _by_lower(record.get("mesh_major"))
    minor = {k: v for k, v in _by_lower(record.get("mesh_terms")).items() if k not in major}

    excluded_seen = None
    massage_title, massage_abstract, massage_keywords = title, abstract, keywords
    massage_major, massage_minor = major, minor
    if rules.excluded is not None:
        found = rules.excluded.search(title) or rules.excluded.search(abstract)
        if found:
            excluded_seen = found.group(0)
            massage_title = rules.excluded.sub(" ", title)
            massage_abstract = rules.excluded.sub(" ", abstract)
            massage_keywords = rules.excluded.sub(" ", keywords)
            pattern = rules.massage.pattern
            if pattern is None or not (
                pattern.search(massage_title) or pattern.search(massage_abstract)
            ):
                # Massage appears only inside an excluded phrase: the MeSH heading Massage on
                # this record is that procedure, not massage therapy.
                massage_major, massage_minor = {}, {}
    m_strength, m_place, m_words = _where(
        rules.massage, massage_title, massage_abstract, massage_keywords, massage_major, massage_minor
    )
    has_condition_words = rules.condition.pattern is not None or bool(rules.condition.mesh)
    if has_condition_words:
        c_strength, c_place, c_words = _where(rules.condition, title, abstract, keywords, major, minor)
    else:
        c_strength, c_place, c_words = ABSENT, None, None

    if not has_condition_words:
        # A raw-term condition names no words to look for: only massage can be judged.
        name, rank = {CENTRAL: ("partial", 2), MENTIONED: ("mention", 4)}.get(m_strength, ("none", 5))
    else:
        name, rank = _combine(m_strength, c_strength)
    reason = _reason(m_place, m_words, c_place, c_words, excluded_seen, has_condition_words)
    return {"fit": name, "fit_rank": rank, "fit_reason": reason}


def _combine(massage: int, condition: int) -> tuple[str, int]:
    if massage == CENTRAL and condition == CENTRAL:
        return "direct", 1
    if massage == CENTRAL and condition == MENTIONED:
        return "partial", 2
    if massage == MENTIONED and condition == CENTRAL:
        return "partial", 3
    if massage == MENTIONED and condition == MENTIONED or massage == CENTRAL:
        return "mention", 4
    return "none", 5


def _reason(m_place, m_words, c_place, c_words, excluded, has_condition_words) -> str:
    """Plain words, like a level's reason: `title: 'myofascial release', 'low back pain'`."""
    places: dict[str, list[str]] = {}
    for place, words in ((m_place, m_words), (c_place, c_words)):
        if place:
            places.setdefault(place, []).append(f"'{words}'")
    parts = [f"{place}: {', '.join(words)}" for place, words in places.items()]
    if not m_place:
        parts.append(
            f"massage only as '{excluded}' (not massage therapy)" if excluded else "massage not mentioned"
        )
    if not c_place:
        parts.append("condition not mentioned" if has_condition_words else "condition words not known (raw search term)")
    return "; ".join(parts)


def fit_record(record: dict, condition: Condition) -> dict:
    """`fit()` with the condition's rules: the convenient form for one record."""
    return fit(record, rules_for(condition))

