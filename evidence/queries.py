"""Condition files: load and validate `queries/*.toml`, compile a condition to a PubMed term.

A condition file is named `<slug>.toml` and holds:

    title       = "Low back pain"                       # required, one line
    description = "Pain in the lower back ..."          # optional, plain words for patients
    mesh        = [{heading = "Low Back Pain", ui = "D017116"}]
    text_words  = ["back pain", "backache", "labor pain~3"]   # title and abstract
    intervention_words = ["friction massage"]          # more massage techniques, this condition
    exclusions  = ["renal colic", {words = "perineal massage", field = "title"}]
    icd10       = [{code = "M54.50", description = "Low back pain, unspecified"},
                   {code = "M75.-", description = "Shoulder lesions"}]
    term        = "..."                                 # raw PubMed term, not with the lists

    [handout]                                           # what the handout shows (optional)
    diary    = "pain"                                   # pain, stool, sleep, limb, baby or mood
    letter   = true                                     # referral / medical-necessity section
    provider = "a licensed massage therapist"
    cpt      = [{code = "97124", words = "massage therapy, each 15 minutes"}]
    safety   = "Sudden swelling of one leg can be a blood clot: see a doctor first."

A text word is searched in title and abstract: a bare word as `word[tiab]`, anything else as
a quoted phrase; a `*` may end its last word (PubMed expands no `*` inside a phrase), and a
phrase ending in `~N` is a proximity search, `"labor pain"[tiab:~3]`: the words within N
words of each other, in any order (PubMed, since 2022).

ICD-10-CM codes follow the FY2027 code set (in force since 2026-10-01): a billable code, or a
category written with ICD-10-CM's dash (`M75.-`), which the handout labels "your doctor picks
the full code". Descriptions are the code set's own; tests/test_icd10.py checks both.

A structured file (mesh and/or text_words) is compiled to

    (<condition block>) AND (<massage block>) NOT (<exclusions>) NOT (<humans filter>)

while a raw `term` is sent exactly as written: its author is in charge of it. Files whose
names start with `_` or `.` are not conditions (notes, editor backups).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from evidence import config
from evidence.errors import ConditionError, UnknownConditionError
from evidence.guards import read_small_file

# A condition file is a few hundred bytes; this leaves room for long lists of text words.
MAX_CONDITION_BYTES = 1024 * 1024

# A text word made of these alone needs no quotes; anything else is sent as a quoted phrase.
_BARE_WORD = re.compile(r"^[A-Za-z0-9*]+$")
# "labor pain~3": the phrase, then the most words PubMed may find between its words.
_PROXIMITY = re.compile(r"^(?P<phrase>[^~]*?)\s*~\s*(?P<distance>[0-9]+)$")
# No PubMed documentation gives a ceiling; past a sentence's length proximity means nothing.
_MAX_DISTANCE = 20
_FIELD_TAGS = {"title/abstract": "tiab", "title": "ti"}


def parse_text_word(word: str) -> tuple[str, int | None]:
    """A validated text word as (phrase, proximity distance or None): "labor pain~3" -> 3."""
    match = _PROXIMITY.match(word)
    if match:
        return match.group("phrase"), int(match.group("distance"))
    return word, None


def _tiab(word: str, tag: str = "tiab") -> str:
    phrase, distance = parse_text_word(word)
    if distance is not None:
        return f'"{phrase}"[{tag}:~{distance}]'
    if _BARE_WORD.match(phrase):
        return f"{phrase}[{tag}]"
    return f'"{phrase}"[{tag}]'


def word_pattern(word: str) -> re.Pattern:
    """A regular expression that finds a text word in plain title or abstract text.

    Mirrors how PubMed reads it, closely enough to explain a hit: case-insensitive, whole
    words, a trailing `*` for any ending, a hyphen or space between words alike, and a
    proximity word (`labor pain~3`) as its words in any order with at most N words between.
    Topic fit and the review page use it, so their highlighting matches the search.
    """
    phrase, distance = parse_text_word(word)
    parts = [_word_regex(w) for w in phrase.split()]
    if distance is None:
        body = r"[\s-]+".join(parts)
    else:
        gap = rf"(?:[\s-]+\S+){{0,{distance}}}?[\s-]+"
        first, *rest = parts
        # Two-word phrases are the common case; longer ones accept either end first.
        body = f"(?:{first}{gap}{gap.join(rest)}|{gap.join(reversed(rest))}{gap}{first})"
    return re.compile(rf"(?<!\w){body}(?!\w)", re.I)


def _word_regex(word: str) -> str:
    if word.endswith("*"):
        return re.escape(word[:-1]) + r"\w*"
    return re.escape(word)


# Massage[mh] explodes by default in PubMed, which is what we want. Its parent "Therapy, Soft
# Tissue"[mh] is left out on purpose: it also holds Acupressure (D019050), pressure on
# acupoints, often self-applied or by wristband, which a patient asking about massage would not
# recognise as massage. Reflexotherapy[mh] is left out too: older records use it for needle and
# electrical "reflex" treatments; the words reflexology and reflexotherapy catch the
# foot-reflexology studies.
# Trials name many techniques without the word massage (a medical librarian's review of the
# Cochrane searches): those words are here. The lymph drainage variants are spelled out,
# because PubMed does not reliably expand a * inside a phrase ("manual lymph* drainage").
# The technique phrases that contain "massage" are redundant with massage*, but they keep the
# printed search readable to a therapist who looks for the technique by name.
# Topic fit (is a record about massage?) reads the same two lists, so the search and the fit
# rules cannot drift apart.
MASSAGE_MESH: tuple[str, ...] = ("Massage",)
MASSAGE_TEXT_WORDS: tuple[str, ...] = (
    "massage*",
    "myofascial release",
    "myofascial induction",
    "fascial manipulation",
    "manual lymph drainage",
    "manual lymphatic drainage",
    "lymphatic drainage",
    "lymph drainage",
    "decongestive",
    "Vodder",
    "soft tissue mobili*",
    "soft tissue release",
    "trigger point therap*",
    "trigger point release",
    "pressure release",
    "ischemic compression",
    "ischaemic compression",
    "neuromuscular therapy",
    "myotherapy",
    "transverse friction*",
    "deep friction*",
    "effleurage",
    "petrissage",
    "reflexology",
    "reflexotherapy",
    "zone therapy",
    "rolfing",
    "structural integration",
    "shiatsu",
    "tuina",
    "tui na",
    "Swedish massage",
    "deep tissue massage",
    "sports massage",
)
MASSAGE_TERM = " OR ".join(
    [f'"{h}"[mh]' for h in MASSAGE_MESH] + [_tiab(w) for w in MASSAGE_TEXT_WORDS]
)

# Procedures called massage that are not massage therapy. Text words, not MeSH alone, because
# NLM indexes prostatic-massage records under Massage itself. The spelling variants name the
# same procedures (fundal massage is uterine massage after birth). Eye, eyelid and gum
# massage are treatments of the eye or the gums, found by massage* in every condition.
EXCLUSION_MESH: tuple[str, ...] = ("Heart Massage",)
EXCLUSION_TEXT_WORDS: tuple[str, ...] = (
    "cardiac massage",
    "heart massage",
    "uterine massage",
    "fundal massage",
    "prostatic massage",
    "prostate massage",
    "carotid sinus massage",
    "carotid massage",
    "ocular massage",
    "eye massage",
    "eyelid massage",
    "lid massage",
    "gingival massage",
    "gum massage",
)
EXCLUSIONS_TERM = " OR ".join(
    [f'"{h}"[mh]' for h in EXCLUSION_MESH] + [_tiab(w) for w in EXCLUSION_TEXT_WORDS]
)

# Cochrane's humans-only filter. Written as "drop animal-only records" rather than
# "humans[mh]" so that records not yet indexed (no MeSH at all) are kept.
HUMANS_FILTER = "animals[mh] NOT humans[mh]"

# What a handout diary measures (DOMAIN.md): 0-10 pain and PEG; stool frequency and form;
# a sleep diary; limb circumference or the fit of clothes and shoes; a baby's feeding,
# weight gain and sleep; GAD-7 and PHQ-9 for anxiety and depression.
DIARY_KINDS: tuple[str, ...] = ("pain", "stool", "sleep", "limb", "baby", "mood")
# CPT codes with our own plain words: the AMA's descriptions are copyrighted.
DEFAULT_CPT: tuple[dict, ...] = (
    {"code": "97124", "words": "massage therapy, each 15 minutes"},
    {"code": "97140", "words": "hands-on (manual) therapy, each 15 minutes"},
)
DEFAULT_HANDOUT: dict = {
    "diary": "pain",
    "letter": True,
    "provider": "a licensed massage therapist",
    "cpt": DEFAULT_CPT,
    "safety": None,
}

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Descriptor UIs are D + 6 digits, or D + 9 digits for those created since 2016 (D000072716).
_MESH_UI = re.compile(r"^D[0-9]{6}(?:[0-9]{3})?$")
# A code as the code set writes it (X is a real placeholder character inside codes, upper
# case: M86.8X1), or a category or subcategory followed by ICD-10-CM's dash: M75.-, M75.0-.
_ICD_CODE = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?$")
_ICD_CATEGORY = re.compile(r"^[A-Z][0-9][0-9A-Z]\.(?:[0-9A-Z]{1,3})?-$")
_ICD_RANGE = re.compile(r"^[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?\s*[-\u2013\u2014]\s*[A-Z]")
_ICD_LOWER_X = re.compile(r"^([A-Z][0-9][0-9A-Z]\.[0-9A-Z]{0,3})x+$")
# CPT Category I codes are five digits; Category II and III end in F or T.
_CPT = re.compile(r"^[0-9]{4}[0-9FT]$")
# PubMed refuses a wildcard with fewer than 4 characters before it (NLM Tech Bull 2024;458:e5).
_WILDCARD_ROOT = 4
# Characters that would end a quoted phrase or open a search tag inside it.
_FORBIDDEN_IN_PHRASE = set('"[]')

_KEYS = (
    "title", "description", "mesh", "text_words", "intervention_words", "exclusions",
    "icd10", "term", "handout",
)
_HANDOUT_KEYS = ("diary", "letter", "provider", "cpt", "safety")
_TOML_TYPES = {
    str: "string",
    int: "integer",
    float: "float",
    bool: "boolean",
    list: "array",
    dict: "table",
}


@dataclass(frozen=True)
class Condition:
    """One condition file, validated. `term` is what goes to PubMed.

    `icd10` holds ``{"code", "description", "category"}`` dicts (category: a dash code such
    as M75.-); `exclusions` holds ``{"words", "field"}`` dicts (field "title/abstract" or
    "title"); `handout` holds diary, letter, provider, cpt and safety, defaults filled in.
    """

    slug: str
    title: str
    description: str
    mesh: tuple[dict, ...]  # each {"heading": ..., "ui": ...}
    text_words: tuple[str, ...]
    icd10: tuple[dict, ...]
    raw_term: str | None
    path: Path
    builtin: bool
    intervention_words: tuple[str, ...] = ()
    exclusions: tuple[dict, ...] = ()
    handout: dict = field(default_factory=lambda: _default_handout())

    @property
    def term(self) -> str:
        """The PubMed term: compiled from the lists, or the raw term as written."""
        return compile_term(self)

    def term_groups(self) -> list[tuple[str, str]]:
        """The term's parts, labelled for people, each with its piece of the term.

        The shared massage block and exclusions are named, not repeated (their piece is "");
        the condition's own words are given in full. A raw term is one group, as written.
        """
        if self.raw_term is not None:
            return [("Raw term, sent as written", self.raw_term)]
        groups = [("Condition: MeSH headings and text words", condition_block(self))]
        groups.append((
            f"Massage: the shared block (MeSH {', '.join(MASSAGE_MESH)} and "
            f"{len(MASSAGE_TEXT_WORDS)} technique words)", "",
        ))
        if self.intervention_words:
            groups.append(("Massage: this condition's own techniques", _own_massage(self)))
        groups.append((
            f"Left out: the shared list ({len(EXCLUSION_MESH) + len(EXCLUSION_TEXT_WORDS)} procedures called massage "
            "that are not massage therapy)", "",
        ))
        if self.exclusions:
            groups.append(("Left out: this condition's own", _own_exclusions(self)))
        groups.append(("Humans only: animal-only studies left out", HUMANS_FILTER))
        return groups

    def handout_parts(self) -> dict:
        """The handout parts as a fresh JSON-ready dict: diary, letter, provider, cpt, safety."""
        return handout_dict(self.handout)

    def to_dict(self) -> dict:
        """Plain JSON-ready fields, as `evidence conditions --json` prints them."""
        return {
            "slug": self.slug,
            "title": self.title,
            "description": self.description,
            "mesh": [dict(m) for m in self.mesh],
            "text_words": list(self.text_words),
            "intervention_words": list(self.intervention_words),
            "exclusions": [dict(e) for e in self.exclusions],
            "icd10": [dict(c) for c in self.icd10],
            "handout": handout_dict(self.handout),
            "term": self.term,
            "path": str(self.path),
            "builtin": self.builtin,
        }


def exclusion_words(condition: Condition) -> tuple[str, ...]:
    """The text words that mark "massage" that is not massage therapy, for this condition."""
    return EXCLUSION_TEXT_WORDS + tuple(e["words"] for e in condition.exclusions)


def _default_handout() -> dict:
    return {**DEFAULT_HANDOUT, "cpt": tuple(dict(c) for c in DEFAULT_CPT)}


def handout_dict(handout: dict) -> dict:
    """A condition's handout parts as a fresh JSON-ready dict (cpt as a list of dicts)."""
    return {**handout, "cpt": [dict(c) for c in handout.get("cpt") or ()]}


def condition_block(condition: Condition) -> str:
    """The condition's own headings and words, ORed."""
    parts = [f'"{m["heading"]}"[mh]' for m in condition.mesh]
    parts += [_tiab(word) for word in condition.text_words]
    return " OR ".join(parts)


def massage_block(condition: Condition) -> str:
    """The shared massage block, plus the condition's own technique words."""
    return " OR ".join(p for p in (MASSAGE_TERM, _own_massage(condition)) if p)


def exclusions_block(condition: Condition) -> str:
    """The shared exclusions, plus the condition's own."""
    return " OR ".join(p for p in (EXCLUSIONS_TERM, _own_exclusions(condition)) if p)


def _own_massage(condition: Condition) -> str:
    return " OR ".join(_tiab(word) for word in condition.intervention_words)


def _own_exclusions(condition: Condition) -> str:
    return " OR ".join(_tiab(e["words"], _FIELD_TAGS[e["field"]]) for e in condition.exclusions)


def compile_term(condition: Condition) -> str:
    """Combine a condition's block with the massage block, exclusions and humans filter."""
    if condition.raw_term is not None:
        return condition.raw_term
    return (
        f"({condition_block(condition)}) AND ({massage_block(condition)}) "
        f"NOT ({exclusions_block(condition)}) NOT ({HUMANS_FILTER})"
    )


def load_conditions(
    extra_dir: Path | None = None, builtin_dir: Path | None = None
) -> dict[str, Condition]:
    """Every condition, by slug: the user's folder first, so a user's file overrides a built-in."""
    extra, builtin = _dirs(extra_dir, builtin_dir)
    found: dict[str, Condition] = {}
    for folder, is_builtin in ((extra, False), (builtin, True)):
        if folder is None:
            continue
        for slug, path in _condition_files(folder).items():
            if slug not in found:
                found[slug] = _load_file(path, builtin=is_builtin)
    return dict(sorted(found.items()))


def get_condition(
    slug: str, extra_dir: Path | None = None, builtin_dir: Path | None = None
) -> Condition:
    """One condition by slug; reads only its own file, so a broken neighbour does not block it."""
    extra, builtin = _dirs(extra_dir, builtin_dir)
    if _SLUG.match(slug):
        for folder, is_builtin in ((extra, False), (builtin, True)):
            if folder is not None and (folder / f"{slug}.toml").is_file():
                return _load_file(folder / f"{slug}.toml", builtin=is_builtin)
    known: set[str] = set()
    for folder in (extra, builtin):
        if folder is not None:
            known.update(_condition_files(folder, check_names=False))
    raise UnknownConditionError(_unknown_message(slug, sorted(known)))


def _load_file(path: Path, builtin: bool = False) -> Condition:
    """Read and validate one condition file; every problem names the file and the key."""
    path = Path(path)
    slug = path.name[: -len(".toml")] if path.name.endswith(".toml") else path.name
    if not path.name.endswith(".toml") or not _SLUG.match(slug):
        raise _bad_name(path)
    # Read through guards: a FIFO or a /dev/zero link named *.toml must neither hang nor fill
    # memory, and a byte-order mark (Windows editors add one) is not TOML's business.
    raw = read_small_file(path, MAX_CONDITION_BYTES, ConditionError)
    try:
        data = tomllib.loads(raw.decode("utf-8-sig"))
    except tomllib.TOMLDecodeError as exc:
        raise ConditionError(f"{path}: {exc}") from None
    except UnicodeDecodeError:
        raise ConditionError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except RecursionError:
        raise ConditionError(f"{path}: nested too deeply to read; a condition file is flat") from None

    _check_keys(path, data)
    title = _string(path, data, "title", required=True)
    if "\n" in title:
        raise ConditionError(f"{path}: title: must be one line")
    description = _string(path, data, "description") or ""
    mesh = _mesh(path, data.get("mesh", []))
    text_words = _words(path, "text_words", data.get("text_words", []))
    intervention_words = _words(path, "intervention_words", data.get("intervention_words", []))
    exclusions = _exclusions(path, data.get("exclusions", []))
    icd10 = _icd10(path, data.get("icd10", []))
    handout = _handout(path, data.get("handout", {}))
    raw_term = _raw_term(path, data)

    structured = "mesh" in data or "text_words" in data
    if raw_term is not None and structured:
        raise ConditionError(
            f"{path}: term: give either term or mesh/text_words, not both; "
            "a raw term is sent as written, so the lists would be ignored"
        )
    if raw_term is None and not (mesh or text_words):
        raise ConditionError(
            f"{path}: term: no search given; add mesh and/or text_words, or a raw PubMed term"
        )
    for key in ("intervention_words", "exclusions"):
        if raw_term is not None and data.get(key):
            raise ConditionError(
                f"{path}: {key}: a raw term is sent as written, so {key} would be ignored; "
                "write them into the term, or use mesh/text_words instead of term"
            )
    return Condition(
        slug=slug,
        title=title,
        description=description,
        mesh=mesh,
        text_words=text_words,
        icd10=icd10,
        raw_term=raw_term,
        path=path,
        builtin=builtin,
        intervention_words=intervention_words,
        exclusions=exclusions,
        handout=handout,
    )


def _bad_name(path: Path) -> ConditionError:
    return ConditionError(
        f"{path}: file name: {path.name!r} is not <slug>.toml; rename it with lowercase "
        "letters, digits and hyphens only, e.g. low-back-pain.toml"
    )


def _dirs(extra_dir: Path | None, builtin_dir: Path | None) -> tuple[Path | None, Path]:
    extra = Path(extra_dir) if extra_dir is not None else config.extra_queries_dir()
    builtin = Path(builtin_dir) if builtin_dir is not None else config.builtin_queries_dir()
    if extra is not None and not extra.is_dir():
        raise ConditionError(
            f"EVIDENCE_QUERIES folder not found: {extra}; create it or unset EVIDENCE_QUERIES."
        )
    if not builtin.is_dir():
        raise ConditionError(
            f"Built-in queries folder not found: {builtin}; reinstall evidence from its checkout."
        )
    # Pointing EVIDENCE_QUERIES at the built-in folder must not relabel built-ins as the user's.
    if extra is not None and extra.resolve() == builtin.resolve():
        extra = None
    return extra, builtin


def _condition_files(folder: Path, check_names: bool = True) -> dict[str, Path]:
    files = {}
    for path in sorted(folder.iterdir()):
        if not path.name.endswith(".toml") or path.name.startswith(("_", ".")):
            continue
        slug = path.name[: -len(".toml")]
        if not _SLUG.match(slug):
            if check_names:
                raise _bad_name(path)
            continue
        files[slug] = path
    return files


def _unknown_message(slug: str, known: list[str]) -> str:
    lowered = slug.strip().lower().replace("_", "-").replace(" ", "-")
    close = difflib.get_close_matches(lowered, known, n=3, cutoff=0.6)
    # Substrings catch a short word that difflib scores low ("back" in "low-back-pain").
    if len(lowered) >= 3:
        close += [k for k in known if lowered in k and k not in close]
    close = close[:3]
    if not close:
        return f"Unknown condition {slug!r}. Run 'evidence conditions' to list them."
    names = close[0] if len(close) == 1 else ", ".join(close[:-1]) + " or " + close[-1]
    return (
        f"Unknown condition {slug!r}: did you mean {names}? "
        "Run 'evidence conditions' to list them."
    )


def _type_name(value: object) -> str:
    for kind, name in _TOML_TYPES.items():
        if type(value) is kind:
            return name
    return type(value).__name__.replace("_", "-")


def _wrong_type(path: Path, key: str, expected: str, value: object) -> ConditionError:
    return ConditionError(f"{path}: {key}: must be {expected}, got {_type_name(value)}")


def _check_keys(path: Path, data: dict) -> None:
    _check_table_keys(path, data, _KEYS)


def _check_table_keys(path: Path, data: dict, allowed: tuple[str, ...], prefix: str = "") -> None:
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConditionError(
                f"{path}: {prefix}{key}: unknown key; {hint}allowed keys are {', '.join(allowed)}"
            )


def _string(path: Path, data: dict, key: str, required: bool = False, label: str = "") -> str | None:
    label = label or key
    if key not in data:
        if required:
            raise ConditionError(f'{path}: {label}: missing; add {key} = "..."')
        return None
    value = data[key]
    if not isinstance(value, str):
        raise _wrong_type(path, label, "a string", value)
    if required and not value.strip():
        raise ConditionError(f"{path}: {label}: is empty; give it some words")
    return value


def _one_line(path: Path, data: dict, key: str, label: str, required: bool = False) -> str | None:
    value = _string(path, data, key, required=required, label=label)
    if value is None:
        return None
    if not value.strip():
        raise ConditionError(f"{path}: {label}: is empty; give it some words or remove it")
    if "\n" in value.strip():
        raise ConditionError(f"{path}: {label}: must be one line")
    return value.strip()


def _array(path: Path, key: str, value: object) -> list:
    if not isinstance(value, list):
        raise _wrong_type(path, key, "an array", value)
    return value


def _phrase(path: Path, key: str, value: object, wildcards: bool, proximity: bool = False) -> str:
    if not isinstance(value, str):
        raise _wrong_type(path, key, "a string", value)
    if not value.strip():
        raise ConditionError(f"{path}: {key}: is empty; remove it or give some words")
    bad = sorted(_FORBIDDEN_IN_PHRASE & set(value))
    if bad:
        raise ConditionError(
            f"{path}: {key}: {value!r} contains {' '.join(bad)}; write the plain words, "
            "the search tags and quotes are added for you"
        )
    text = " ".join(value.split())
    if "~" in text:
        text = _proximity(path, key, value, text, proximity)
    if "*" in text:
        if not wildcards:
            raise ConditionError(f"{path}: {key}: {value!r}: a MeSH heading takes no wildcard")
        words = text.split()
        for i, word in enumerate(words):
            root = word.split("*", 1)[0]
            if "*" in word and len(root) < _WILDCARD_ROOT:
                raise ConditionError(
                    f"{path}: {key}: {value!r}: PubMed needs at least {_WILDCARD_ROOT} "
                    f"letters before a *; spell out {word!r}'s endings instead"
                )
            if "*" in word[:-1] or ("*" in word and i < len(words) - 1):
                raise ConditionError(
                    f"{path}: {key}: {value!r}: a * may only end the last word; PubMed does "
                    "not reliably expand one inside a phrase, so spell the variants out"
                )
    return text


def _proximity(path: Path, key: str, value: str, text: str, allowed: bool) -> str:
    if not allowed:
        raise ConditionError(
            f"{path}: {key}: {value!r}: ~ (proximity) works only in text words and exclusions"
        )
    match = _PROXIMITY.match(text)
    if not match:
        raise ConditionError(
            f"{path}: {key}: {value!r}: write proximity as the words, then ~ and a number "
            "at the end, e.g. 'labor pain~3'"
        )
    phrase, distance = match.group("phrase"), int(match.group("distance"))
    if len(phrase.split()) < 2:
        raise ConditionError(
            f"{path}: {key}: {value!r}: proximity needs two or more words before the ~"
        )
    if "*" in phrase:
        raise ConditionError(
            f"{path}: {key}: {value!r}: PubMed takes no * in a proximity search; "
            "list the word's endings as separate words"
        )
    if distance > _MAX_DISTANCE:
        raise ConditionError(
            f"{path}: {key}: {value!r}: ~{distance} is too far apart to mean anything; "
            f"use a number from 0 to {_MAX_DISTANCE}"
        )
    return f"{phrase}~{distance}"


def _mesh(path: Path, value: object) -> tuple[dict, ...]:
    items = []
    for i, item in enumerate(_array(path, "mesh", value)):
        key = f"mesh[{i}]"
        if not isinstance(item, dict):
            raise _wrong_type(path, key, 'a table {heading = "...", ui = "D......"}', item)
        for extra in item:
            if extra not in ("heading", "ui"):
                raise ConditionError(f"{path}: {key}.{extra}: unknown key; use heading and ui")
        for name in ("heading", "ui"):
            if name not in item:
                raise ConditionError(f'{path}: {key}.{name}: missing; add {name} = "..."')
        heading = _phrase(path, f"{key}.heading", item["heading"], wildcards=False)
        ui = item["ui"]
        if not isinstance(ui, str):
            raise _wrong_type(path, f"{key}.ui", "a string", ui)
        if not _MESH_UI.match(ui):
            raise ConditionError(
                f"{path}: {key}.ui: {ui!r} is not a MeSH descriptor UI; copy it from "
                "the MeSH Browser, e.g. D017116"
            )
        items.append({"heading": heading, "ui": ui})
    return tuple(items)


def _words(path: Path, key: str, value: object) -> tuple[str, ...]:
    words = []
    for i, word in enumerate(_array(path, key, value)):
        words.append(_phrase(path, f"{key}[{i}]", word, wildcards=True, proximity=True))
    return tuple(words)


def _exclusions(path: Path, value: object) -> tuple[dict, ...]:
    items = []
    for i, item in enumerate(_array(path, "exclusions", value)):
        key = f"exclusions[{i}]"
        if isinstance(item, str):
            item = {"words": item}
        elif not isinstance(item, dict):
            raise _wrong_type(
                path, key, 'a string, or a table {words = "...", field = "title"}', item
            )
        for extra in item:
            if extra not in ("words", "field"):
                raise ConditionError(f"{path}: {key}.{extra}: unknown key; use words and field")
        if "words" not in item:
            raise ConditionError(f'{path}: {key}.words: missing; add words = "..."')
        words = _phrase(path, f"{key}.words", item["words"], wildcards=True, proximity=True)
        where = item.get("field", "title/abstract")
        if where not in _FIELD_TAGS:
            raise ConditionError(
                f"{path}: {key}.field: {where!r} is not a field; use "
                + " or ".join(repr(f) for f in _FIELD_TAGS)
            )
        items.append({"words": words, "field": where})
    return tuple(items)


def _icd10(path: Path, value: object) -> tuple[dict, ...]:
    items = []
    seen: set[str] = set()
    for i, item in enumerate(_array(path, "icd10", value)):
        key = f"icd10[{i}]"
        if not isinstance(item, dict):
            raise _wrong_type(
                path, key, 'a table {code = "M54.50", description = "..."}', item
            )
        _check_table_keys(path, item, ("code", "description"), prefix=f"{key}.")
        code = _string(path, item, "code", required=True, label=f"{key}.code").strip()
        _check_icd_code(path, f"{key}.code", code)
        if code in seen:
            raise ConditionError(f"{path}: {key}.code: {code} is listed twice; keep one")
        seen.add(code)
        description = _one_line(path, item, "description", f"{key}.description", required=True)
        items.append({"code": code, "description": description, "category": code.endswith("-")})
    return tuple(items)


def _check_icd_code(path: Path, key: str, code: str) -> None:
    if _ICD_CODE.match(code) or _ICD_CATEGORY.match(code):
        return
    lower_x = _ICD_LOWER_X.match(code)
    if lower_x:
        raise ConditionError(
            f"{path}: {key}: {code!r}: x is no wildcard in ICD-10-CM (X is a real character "
            f"inside codes); write the category as {lower_x.group(1)}- and your doctor picks "
            "the full code"
        )
    if _ICD_RANGE.match(code):
        raise ConditionError(
            f"{path}: {key}: {code!r}: a range is no code, and may span headings; list "
            "each billable code, or write the category with a dash, e.g. M17.-"
        )
    raise ConditionError(
        f"{path}: {key}: {code!r} is not an ICD-10-CM code; write a billable code such as "
        "M54.50, or a category with a dash such as M75.-"
    )


def _handout(path: Path, value: object) -> dict:
    if not isinstance(value, dict):
        raise _wrong_type(path, "handout", "a table ([handout])", value)
    _check_table_keys(path, value, _HANDOUT_KEYS, prefix="handout.")
    handout = _default_handout()
    if "diary" in value:
        diary = _string(path, value, "diary", label="handout.diary")
        if diary not in DIARY_KINDS:
            raise ConditionError(
                f"{path}: handout.diary: {diary!r} is not a diary kind; use one of "
                + ", ".join(DIARY_KINDS)
            )
        handout["diary"] = diary
    if "letter" in value:
        if not isinstance(value["letter"], bool):
            raise _wrong_type(path, "handout.letter", "true or false", value["letter"])
        handout["letter"] = value["letter"]
    if "provider" in value:
        handout["provider"] = _one_line(path, value, "provider", "handout.provider")
    if "cpt" in value:
        handout["cpt"] = _cpt(path, value["cpt"])
    if "safety" in value:
        handout["safety"] = _one_line(path, value, "safety", "handout.safety")
    return handout


def _cpt(path: Path, value: object) -> tuple[dict, ...]:
    items = []
    for i, item in enumerate(_array(path, "handout.cpt", value)):
        key = f"handout.cpt[{i}]"
        if not isinstance(item, dict):
            raise _wrong_type(path, key, 'a table {code = "97124", words = "..."}', item)
        _check_table_keys(path, item, ("code", "words"), prefix=f"{key}.")
        code = _string(path, item, "code", required=True, label=f"{key}.code").strip()
        if not _CPT.match(code):
            raise ConditionError(
                f"{path}: {key}.code: {code!r} is not a CPT code; write five characters, "
                "e.g. 97124"
            )
        words = _one_line(path, item, "words", f"{key}.words", required=True)
        items.append({"code": code, "words": words})
    return tuple(items)


def _raw_term(path: Path, data: dict) -> str | None:
    term = _string(path, data, "term")
    if term is None:
        return None
    if not term.strip():
        raise ConditionError(f"{path}: term: is empty; write a PubMed search term")
    problem = _unbalanced(term)
    if problem:
        raise ConditionError(f"{path}: term: {problem}; PubMed would misread it")
    return term


def _unbalanced(term: str) -> str | None:
    """Say what is unbalanced in a PubMed term, or None. Parentheses inside quotes are text."""
    depth = 0
    quoted = False
    for char in term:
        if char == '"':
            quoted = not quoted
        elif quoted:
            continue
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return "a ')' closes nothing"
    if quoted:
        return "a double quote is not closed"
    if depth:
        return f"{depth} '(' not closed"
    return None
