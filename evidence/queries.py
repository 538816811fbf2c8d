"""Condition files: load and validate `queries/*.toml`, compile a condition to a PubMed term.

A condition file is named `<slug>.toml` and holds:

    title       = "Low back pain"                       # required, one line
    description = "Pain in the lower back ..."          # optional, plain words for patients
    mesh        = [{heading = "Low Back Pain", ui = "D017116"}]
    text_words  = ["low back pain", "lumbago"]          # searched in title and abstract
    icd10       = ["M54.50", "M17.0-M17.9", "M75.x"]    # a code, a range, or a whole category
    term        = "..."                                 # raw PubMed term, not with the lists

A structured file (mesh and/or text_words) is compiled to

    (<condition block>) AND (<massage block>) NOT (<exclusions>) NOT (<humans filter>)

while a raw `term` is sent exactly as written: its author is in charge of it. Files whose
names start with `_` or `.` are not conditions (notes, editor backups).
"""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from evidence import config
from evidence.errors import ConditionError, UnknownConditionError
from evidence.guards import read_small_file

# A condition file is a few hundred bytes; this leaves room for long lists of text words.
MAX_CONDITION_BYTES = 1024 * 1024

# A text word made of these alone needs no quotes; anything else is sent as a quoted phrase.
_BARE_WORD = re.compile(r"^[A-Za-z0-9*]+$")


def _tiab(word: str) -> str:
    if _BARE_WORD.match(word):
        return f"{word}[tiab]"
    return f'"{word}"[tiab]'


# Massage[mh] explodes by default in PubMed, which is what we want. Its parent "Therapy, Soft
# Tissue"[mh] is left out on purpose: it also holds Acupressure (D019050), pressure on
# acupoints, often self-applied or by wristband, which a patient asking about massage would not
# recognise as massage. Reflexotherapy[mh] is left out too: older records use it for needle and
# electrical "reflex" treatments; the word reflexology catches foot-reflexology studies.
# The technique phrases that contain "massage" are redundant with massage*, but they keep the
# printed search readable to a therapist who looks for the technique by name.
# Topic fit (is a record about massage?) reads the same two lists, so the search and the fit
# rules cannot drift apart.
MASSAGE_MESH: tuple[str, ...] = ("Massage",)
MASSAGE_TEXT_WORDS: tuple[str, ...] = (
    "massage*",
    "myofascial release",
    "manual lymph* drainage",
    "soft tissue mobili*",
    "trigger point therap*",
    "ischemic compression",
    "ischaemic compression",
    "reflexology",
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
# same procedures (fundal massage is uterine massage after birth).
_EXCLUSION_PARTS = (
    '"Heart Massage"[mh]',
    '"cardiac massage"[tiab]',
    '"heart massage"[tiab]',
    '"uterine massage"[tiab]',
    '"fundal massage"[tiab]',
    '"prostatic massage"[tiab]',
    '"prostate massage"[tiab]',
    '"carotid sinus massage"[tiab]',
    '"carotid massage"[tiab]',
)
EXCLUSIONS_TERM = " OR ".join(_EXCLUSION_PARTS)

# Cochrane's humans-only filter. Written as "drop animal-only records" rather than
# "humans[mh]" so that records not yet indexed (no MeSH at all) are kept.
HUMANS_FILTER = "animals[mh] NOT humans[mh]"

_SLUG = re.compile(r"^[a-z0-9][a-z0-9-]*$")
# Descriptor UIs are D + 6 digits, or D + 9 digits for those created since 2016 (D000072716).
_MESH_UI = re.compile(r"^D[0-9]{6}(?:[0-9]{3})?$")
_ICD_CODE = r"[A-Z][0-9][0-9A-Z](?:\.[0-9A-Z]{1,4})?"
_ICD10 = re.compile(rf"^(?:{_ICD_CODE}(?:-{_ICD_CODE})?|[A-Z][0-9][0-9A-Z]\.x)$")
# PubMed refuses a wildcard with fewer than 4 characters before it (NLM Tech Bull 2024;458:e5).
_WILDCARD_ROOT = 4
# Characters that would end a quoted phrase or open a search tag inside it.
_FORBIDDEN_IN_PHRASE = set('"[]')

_KEYS = ("title", "description", "mesh", "text_words", "icd10", "term")
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
    """One condition file, validated. `term` is what goes to PubMed."""

    slug: str
    title: str
    description: str
    mesh: tuple[dict, ...]  # each {"heading": ..., "ui": ...}
    text_words: tuple[str, ...]
    icd10: tuple[str, ...]
    raw_term: str | None
    path: Path
    builtin: bool

    @property
    def term(self) -> str:
        """The PubMed term: compiled from the lists, or the raw term as written."""
        return compile_term(self)

    def to_dict(self) -> dict:
        """Plain JSON-ready fields, as `evidence conditions --json` prints them."""
        return {
            "slug": self.slug,
            "title": self.title,
            "description": self.description,
            "mesh": [dict(m) for m in self.mesh],
            "text_words": list(self.text_words),
            "icd10": list(self.icd10),
            "term": self.term,
            "path": str(self.path),
            "builtin": self.builtin,
        }


def compile_term(condition: Condition) -> str:
    """Combine a condition's block with the massage block, exclusions and humans filter."""
    if condition.raw_term is not None:
        return condition.raw_term
    parts = [f'"{m["heading"]}"[mh]' for m in condition.mesh]
    parts += [_tiab(word) for word in condition.text_words]
    block = " OR ".join(parts)
    return f"({block}) AND ({MASSAGE_TERM}) NOT ({EXCLUSIONS_TERM}) NOT ({HUMANS_FILTER})"


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
    text_words = _text_words(path, data.get("text_words", []))
    icd10 = _icd10(path, data.get("icd10", []))
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
    for key in data:
        if key not in _KEYS:
            close = difflib.get_close_matches(key, _KEYS, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise ConditionError(
                f"{path}: {key}: unknown key; {hint}allowed keys are {', '.join(_KEYS)}"
            )


def _string(path: Path, data: dict, key: str, required: bool = False) -> str | None:
    if key not in data:
        if required:
            raise ConditionError(f'{path}: {key}: missing; add {key} = "..."')
        return None
    value = data[key]
    if not isinstance(value, str):
        raise _wrong_type(path, key, "a string", value)
    if required and not value.strip():
        raise ConditionError(f"{path}: {key}: is empty; give it some words")
    return value


def _array(path: Path, key: str, value: object) -> list:
    if not isinstance(value, list):
        raise _wrong_type(path, key, "an array", value)
    return value


def _phrase(path: Path, key: str, value: object, wildcards: bool) -> str:
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
    if "*" in value:
        if not wildcards:
            raise ConditionError(f"{path}: {key}: {value!r}: a MeSH heading takes no wildcard")
        for word in value.split():
            root = word.split("*", 1)[0]
            if "*" in word and len(root) < _WILDCARD_ROOT:
                raise ConditionError(
                    f"{path}: {key}: {value!r}: PubMed needs at least {_WILDCARD_ROOT} "
                    f"letters before a *; spell out {word!r}'s endings instead"
                )
    return value.strip()


def _mesh(path: Path, value: object) -> tuple[dict, ...]:
    items = []
    for i, item in enumerate(_array(path, "mesh", value)):
        key = f"mesh[{i}]"
        if not isinstance(item, dict):
            raise _wrong_type(path, key, 'a table {heading = "...", ui = "D......"}', item)
        for extra in item:
            if extra not in ("heading", "ui"):
                raise ConditionError(f"{path}: {key}.{extra}: unknown key; use heading and ui")
        for field in ("heading", "ui"):
            if field not in item:
                raise ConditionError(f'{path}: {key}.{field}: missing; add {field} = "..."')
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


def _text_words(path: Path, value: object) -> tuple[str, ...]:
    words = _array(path, "text_words", value)
    return tuple(
        _phrase(path, f"text_words[{i}]", word, wildcards=True) for i, word in enumerate(words)
    )


def _icd10(path: Path, value: object) -> tuple[str, ...]:
    codes = []
    for i, code in enumerate(_array(path, "icd10", value)):
        key = f"icd10[{i}]"
        if not isinstance(code, str):
            raise _wrong_type(path, key, "a string", code)
        if not _ICD10.match(code):
            raise ConditionError(
                f"{path}: {key}: {code!r} is not an ICD-10-CM code; write e.g. M54.50, "
                "a range M17.0-M17.9 (plain hyphen) or a category M75.x"
            )
        codes.append(code)
    return tuple(codes)


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
