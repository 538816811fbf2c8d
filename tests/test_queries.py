"""Condition files: every built-in file loads and compiles; broken files say file, key, problem."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from evidence import queries
from evidence.errors import ConditionError, UnknownConditionError
from evidence.queries import (
    EXCLUSIONS_TERM,
    HUMANS_FILTER,
    MASSAGE_TERM,
    Condition,
    compile_term,
    get_condition,
    load_conditions,
)

BUILTIN = Path(__file__).resolve().parent.parent / "queries"
BUILTIN_FILES = sorted(p for p in BUILTIN.glob("*.toml") if not p.name.startswith("_"))

# DOMAIN.md, "Conditions studied for massage": slug -> MeSH UIs, typed out again on purpose so
# that a changed file cannot silently agree with itself.
DOMAIN_MESH = {
    "low-back-pain": {"D017116"},
    "neck-pain": {"D019547"},
    "shoulder-pain": {"D020069"},
    "fibromyalgia": {"D005356"},
    "tension-headache": {"D018781"},
    "migraine": {"D008881"},
    "knee-osteoarthritis": {"D020370"},
    "cancer-symptoms": {"D009369", "D000072716"},
    "postoperative-pain": {"D010149"},
    "muscle-soreness": {"D063806"},
    "anxiety-depression": {"D001007", "D003863", "D003866"},
    "lymphedema": {"D008209"},
    "constipation": {"D003248"},
    "labor-pain": {"D048949"},
    "plantar-fasciitis": {"D036981"},
    "carpal-tunnel": {"D002349"},
    "restless-legs": {"D012148"},
    "insomnia": {"D007319"},
    "circulation-edema": {"D004487", "D014689"},
    "preterm-infants": {"D007234"},
}
# Every UI with its heading as DOMAIN.md spells it.
DOMAIN_HEADINGS = {
    "D017116": "Low Back Pain",
    "D019547": "Neck Pain",
    "D020069": "Shoulder Pain",
    "D005356": "Fibromyalgia",
    "D018781": "Tension-Type Headache",
    "D008881": "Migraine Disorders",
    "D020370": "Osteoarthritis, Knee",
    "D009369": "Neoplasms",
    "D000072716": "Cancer Pain",
    "D010149": "Pain, Postoperative",
    "D063806": "Myalgia",
    "D001007": "Anxiety",
    "D003863": "Depression",
    "D003866": "Depressive Disorder",
    "D008209": "Lymphedema",
    "D003248": "Constipation",
    "D048949": "Labor Pain",
    "D036981": "Fasciitis, Plantar",
    "D002349": "Carpal Tunnel Syndrome",
    "D012148": "Restless Legs Syndrome",
    "D007319": "Sleep Initiation and Maintenance Disorders",
    "D004487": "Edema",
    "D014689": "Venous Insufficiency",
    "D007234": "Infant, Premature",
}
# DOMAIN.md's ICD-10-CM column; ranges use a plain hyphen where DOMAIN.md has an en dash.
DOMAIN_ICD10 = {
    "low-back-pain": {"M54.50", "M54.51", "M54.59"},
    "neck-pain": {"M54.2"},
    "shoulder-pain": {"M25.511", "M25.512", "M25.519", "M75.x"},
    "fibromyalgia": {"M79.7"},
    "tension-headache": {"G44.201", "G44.209", "G44.211", "G44.219", "G44.221", "G44.229"},
    "migraine": {"G43.x"},
    "knee-osteoarthritis": {"M17.0-M17.9"},
    "cancer-symptoms": set(),
    "postoperative-pain": {"G89.18"},
    "muscle-soreness": {"M79.10", "M79.11", "M79.12", "M79.18"},
    "anxiety-depression": set(),
    "lymphedema": {"I89.0", "I97.2"},
    "constipation": {"K59.00-K59.09"},
    "labor-pain": set(),
    "plantar-fasciitis": {"M72.2"},
    "carpal-tunnel": {"G56.00-G56.03"},
    "restless-legs": {"G25.81"},
    "insomnia": {"G47.00"},
    "circulation-edema": set(),
    "preterm-infants": set(),
}
# Words that would turn a description of the illness into a claim about treatment.
CLAIM_WORDS = re.compile(
    r"\b(help|helps|helped|relieve|relieves|relief|cure|cures|heal|heals|improve|improves|"
    r"reduce|reduces|effective|works|proven|benefit|benefits|treats|eases)\b",
    re.IGNORECASE,
)


def balance_problem(term: str) -> str | None:
    """An independent check: quotes pair up and parentheses nest, outside quoted text."""
    if term.count('"') % 2:
        return "odd number of quotes"
    depth = 0
    for i, piece in enumerate(term.split('"')):
        if i % 2:  # inside a quoted phrase
            continue
        for char in piece:
            depth += {"(": 1, ")": -1}.get(char, 0)
            if depth < 0:
                return "closing parenthesis without an opening one"
    return None if depth == 0 else "parenthesis left open"


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def approximate_grade(text: str) -> float:
    """Flesch-Kincaid grade with a vowel-group syllable count (textstat needs a download)."""

    def syllables(word: str) -> int:
        word = re.sub(r"[^a-z]", "", word.lower())
        count = len(re.findall(r"[aeiouy]+", word))
        if word.endswith("e") and not word.endswith(("le", "ee")) and count > 1:
            count -= 1
        return max(count, 1)

    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    words = re.findall(r"[A-Za-z'-]+", text)
    return (
        0.39 * len(words) / len(sentences)
        + 11.8 * sum(syllables(w) for w in words) / len(words)
        - 15.59
    )


@pytest.fixture
def builtin(tmp_path):
    """A small built-in folder of our own, so error tests never depend on the shipped files."""
    folder = tmp_path / "builtin"
    write(
        folder,
        "low-back-pain.toml",
        'title = "Low back pain"\n'
        'mesh = [{heading = "Low Back Pain", ui = "D017116"}]\n'
        'text_words = ["low back pain"]\n',
    )
    write(
        folder,
        "neck-pain.toml",
        'title = "Neck pain"\nmesh = [{heading = "Neck Pain", ui = "D019547"}]\n',
    )
    return folder


# --- every shipped file -------------------------------------------------------------------


def test_builtin_folder_has_files():
    assert len(BUILTIN_FILES) >= 20


@pytest.mark.parametrize("path", BUILTIN_FILES, ids=lambda p: p.stem)
def test_every_builtin_file_loads_and_compiles(path):
    condition = get_condition(path.stem, extra_dir=None, builtin_dir=BUILTIN)
    assert condition.slug == path.stem
    assert condition.builtin is True
    assert condition.path == path
    assert condition.raw_term is None, "built-in conditions use structured lists"
    term = condition.term
    assert balance_problem(term) is None, balance_problem(term)
    block = term.split(") AND (")[0]
    assert term == (
        f"{block}) AND ({MASSAGE_TERM}) NOT ({EXCLUSIONS_TERM}) NOT ({HUMANS_FILTER})"
    )
    for mesh in condition.mesh:
        assert f'"{mesh["heading"]}"[mh]' in block
    for word in condition.text_words:
        assert f'"{word}"[tiab]' in block or f"{word}[tiab]" in block
    # No wildcard with a root PubMed refuses (fewer than 4 letters).
    for root in re.findall(r"([A-Za-z-]*)\*", term):
        assert len(root) >= 4, root


@pytest.mark.parametrize("path", BUILTIN_FILES, ids=lambda p: p.stem)
def test_every_builtin_description_is_plain(path):
    condition = get_condition(path.stem, builtin_dir=BUILTIN)
    text = condition.description
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    assert 2 <= len(sentences) <= 3, sentences
    assert all(len(s.split()) <= 22 for s in sentences), sentences
    assert approximate_grade(text) <= 8.5
    assert not CLAIM_WORDS.search(text), CLAIM_WORDS.search(text).group(0)
    assert "\n" not in condition.title and condition.title.strip()


def test_domain_slugs_exist_with_their_mesh_and_icd10():
    conditions = load_conditions(builtin_dir=BUILTIN)
    for slug, uis in DOMAIN_MESH.items():
        assert slug in conditions, slug
        condition = conditions[slug]
        assert {m["ui"] for m in condition.mesh} == uis, slug
        for mesh in condition.mesh:
            assert mesh["heading"] == DOMAIN_HEADINGS[mesh["ui"]], slug
        assert set(condition.icd10) == DOMAIN_ICD10[slug], slug


def test_conditions_are_sorted_by_slug():
    slugs = list(load_conditions(builtin_dir=BUILTIN))
    assert slugs == sorted(slugs)


def test_defaults_come_from_config(monkeypatch, tmp_path):
    user = write(tmp_path / "mine", "my-knee.toml", 'title = "My knee"\nterm = "knee[tiab]"\n')
    monkeypatch.setenv("EVIDENCE_QUERIES", str(user.parent))
    conditions = load_conditions()
    assert "my-knee" in conditions and "low-back-pain" in conditions
    assert get_condition("low-back-pain").path == BUILTIN / "low-back-pain.toml"


# --- the shared blocks ----------------------------------------------------------------------


def test_massage_block_uses_massage_mesh_and_not_acupressure():
    assert '"Massage"[mh]' in MASSAGE_TERM
    assert "Soft Tissue" not in MASSAGE_TERM and "Acupressure" not in MASSAGE_TERM
    for text_word in (
        "massage*[tiab]",
        '"myofascial release"[tiab]',
        '"manual lymph* drainage"[tiab]',
        '"soft tissue mobili*"[tiab]',
        '"trigger point therap*"[tiab]',
        '"ischemic compression"[tiab]',
        "reflexology[tiab]",
        "shiatsu[tiab]",
        "tuina[tiab]",
        '"tui na"[tiab]',
        '"Swedish massage"[tiab]',
        '"deep tissue massage"[tiab]',
        '"sports massage"[tiab]',
    ):
        assert text_word in MASSAGE_TERM.split(" OR "), text_word


def test_exclusions_cover_procedures_that_are_not_massage_therapy():
    parts = EXCLUSIONS_TERM.split(" OR ")
    for part in (
        '"Heart Massage"[mh]',
        '"cardiac massage"[tiab]',
        '"uterine massage"[tiab]',
        '"prostatic massage"[tiab]',
        '"carotid sinus massage"[tiab]',
    ):
        assert part in parts, part
    assert HUMANS_FILTER == "animals[mh] NOT humans[mh]"
    for term in (MASSAGE_TERM, EXCLUSIONS_TERM, HUMANS_FILTER):
        assert balance_problem(term) is None


def test_compile_term_of_a_hand_made_condition(tmp_path):
    condition = Condition(
        slug="x",
        title="X",
        description="",
        mesh=({"heading": "Osteoarthritis, Knee", "ui": "D020370"},),
        text_words=("knee osteoarthritis", "gonarthros*"),
        icd10=(),
        raw_term=None,
        path=tmp_path / "x.toml",
        builtin=False,
    )
    assert compile_term(condition) == (
        '("Osteoarthritis, Knee"[mh] OR "knee osteoarthritis"[tiab] OR gonarthros*[tiab]) '
        f"AND ({MASSAGE_TERM}) NOT ({EXCLUSIONS_TERM}) NOT (animals[mh] NOT humans[mh])"
    )


def test_to_dict_has_the_documented_keys():
    condition = get_condition("cancer-symptoms", builtin_dir=BUILTIN)
    data = condition.to_dict()
    assert set(data) == {
        "slug", "title", "description", "mesh", "text_words", "icd10", "term", "path", "builtin",
    }
    assert data["mesh"][1] == {"heading": "Cancer Pain", "ui": "D000072716"}
    assert data["term"] == condition.term
    assert data["path"] == str(BUILTIN / "cancer-symptoms.toml")
    data["mesh"][0]["heading"] = "changed"
    assert condition.mesh[0]["heading"] == "Neoplasms"


# --- user folders and raw terms ---------------------------------------------------------------


def test_user_file_overrides_builtin_and_raw_term_is_kept_exactly(tmp_path, builtin):
    raw = '("low back pain"[tiab] AND massage[tiab])  AND 2020:2024[dp]'
    user = tmp_path / "user"
    write(user, "low-back-pain.toml", f"title = 'My back'\nterm = '{raw}'\n")
    write(user, "my-hands.toml", 'title = "My hands"\nterm = "hand pain[tiab]"\n')

    conditions = load_conditions(extra_dir=user, builtin_dir=builtin)

    assert list(conditions) == ["low-back-pain", "my-hands", "neck-pain"]
    back = conditions["low-back-pain"]
    assert (back.title, back.builtin, back.path) == ("My back", False, user / "low-back-pain.toml")
    assert back.term == raw
    assert back.description == "" and back.mesh == () and back.text_words == ()
    assert conditions["my-hands"].term == "hand pain[tiab]"
    assert conditions["my-hands"].to_dict()["builtin"] is False
    assert conditions["neck-pain"].builtin is True
    assert get_condition("low-back-pain", extra_dir=user, builtin_dir=builtin).term == raw
    assert get_condition("neck-pain", extra_dir=user, builtin_dir=builtin).builtin is True


def test_environment_folder_is_read_first(monkeypatch, tmp_path, builtin):
    user = tmp_path / "env"
    write(user, "neck-pain.toml", 'title = "Mine"\nterm = "neck[tiab]"\n')
    monkeypatch.setenv("EVIDENCE_QUERIES", str(user))
    assert load_conditions(builtin_dir=builtin)["neck-pain"].title == "Mine"
    assert get_condition("neck-pain", builtin_dir=builtin).term == "neck[tiab]"


def test_missing_user_folder_is_an_error(tmp_path, builtin):
    missing = tmp_path / "nowhere"
    with pytest.raises(ConditionError) as err:
        load_conditions(extra_dir=missing, builtin_dir=builtin)
    assert str(err.value) == (
        f"EVIDENCE_QUERIES folder not found: {missing}; create it or unset EVIDENCE_QUERIES."
    )


def test_underscore_and_other_files_are_not_conditions(tmp_path, builtin):
    write(builtin, "_massage.toml", "this is = not [even valid toml\n")
    write(builtin, "_notes.toml", 'title = "Notes"\nterm = "x"\n')
    write(builtin, "README.md", "# not a condition\n")
    assert list(load_conditions(extra_dir=None, builtin_dir=builtin)) == [
        "low-back-pain",
        "neck-pain",
    ]
    with pytest.raises(UnknownConditionError):
        get_condition("_notes", builtin_dir=builtin)
    with pytest.raises(UnknownConditionError):
        get_condition("notes", builtin_dir=builtin)


def test_builtin_folder_has_no_condition_starting_with_underscore():
    assert all(not slug.startswith("_") for slug in load_conditions(builtin_dir=BUILTIN))


# --- unknown slugs --------------------------------------------------------------------------


def test_unknown_slug_suggests_the_closest(builtin):
    with pytest.raises(UnknownConditionError) as err:
        get_condition("low-back", builtin_dir=builtin)
    assert str(err.value) == (
        "Unknown condition 'low-back': did you mean low-back-pain? "
        "Run 'evidence conditions' to list them."
    )


def test_unknown_slug_suggests_several_from_the_shipped_files():
    with pytest.raises(UnknownConditionError) as err:
        get_condition("pain", builtin_dir=BUILTIN)
    message = str(err.value)
    assert message.startswith("Unknown condition 'pain': did you mean ")
    assert message.endswith("? Run 'evidence conditions' to list them.")
    assert " or " in message


def test_unknown_slug_without_a_close_name(builtin):
    with pytest.raises(UnknownConditionError) as err:
        get_condition("zzzz", builtin_dir=builtin)
    assert str(err.value) == "Unknown condition 'zzzz'. Run 'evidence conditions' to list them."


def test_unknown_slug_never_reads_outside_the_folders(tmp_path, builtin):
    write(tmp_path, "secret.toml", 'title = "Secret"\nterm = "x"\n')
    with pytest.raises(UnknownConditionError):
        get_condition("../secret", builtin_dir=builtin)


def test_unknown_slug_is_a_condition_error(builtin):
    with pytest.raises(ConditionError):
        get_condition("Low-Back-Pain", builtin_dir=builtin)


# --- validation -----------------------------------------------------------------------------


def load_error(tmp_path: Path, name: str, text: str) -> tuple[Path, str]:
    folder = tmp_path / "broken"
    path = write(folder, name, text)
    with pytest.raises(ConditionError) as err:
        load_conditions(extra_dir=folder, builtin_dir=tmp_path / "broken")
    return path, str(err.value)


def test_unknown_key(tmp_path):
    path, message = load_error(
        tmp_path, "neck.toml", 'title = "Neck"\ntext_word = ["neck pain"]\n'
    )
    assert message == (
        f"{path}: text_word: unknown key; did you mean text_words? "
        "allowed keys are title, description, mesh, text_words, icd10, term"
    )


def test_missing_title(tmp_path):
    path, message = load_error(tmp_path, "neck.toml", 'text_words = ["neck pain"]\n')
    assert message == f'{path}: title: missing; add title = "..."'


def test_bad_toml(tmp_path):
    path, message = load_error(tmp_path, "neck.toml", 'title = "Neck\n')
    assert message.startswith(f"{path}: ")
    assert "line 1" in message and "\n" not in message


def test_not_utf8(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "neck.toml").write_bytes(b'title = "Nacken\xfc"\nterm = "x"\n')
    with pytest.raises(ConditionError) as err:
        load_conditions(builtin_dir=folder)
    assert str(err.value) == f"{folder / 'neck.toml'}: not UTF-8 text; save it as UTF-8"


@pytest.mark.parametrize(
    "text, key, problem",
    [
        ('title = 3\nterm = "x"\n', "title", "must be a string, got integer"),
        ('title = "T"\ndescription = ["a"]\nterm = "x"\n', "description",
         "must be a string, got array"),
        ('title = "T"\ntext_words = "neck pain"\n', "text_words", "must be an array, got string"),
        ('title = "T"\ntext_words = ["neck", 4]\n', "text_words[1]",
         "must be a string, got integer"),
        ('title = "T"\nmesh = ["Neck Pain"]\n', "mesh[0]",
         'must be a table {heading = "...", ui = "D......"}, got string'),
        ('title = "T"\nmesh = [{heading = "Neck Pain"}]\n', "mesh[0].ui",
         'missing; add ui = "..."'),
        ('title = "T"\nmesh = [{heading = "Neck Pain", ui = 19547}]\n', "mesh[0].ui",
         "must be a string, got integer"),
        ('title = "T"\nmesh = [{heading = "Neck Pain", ui = "D019547", tree = "C"}]\n',
         "mesh[0].tree", "unknown key; use heading and ui"),
        ('title = "T"\nterm = true\n', "term", "must be a string, got boolean"),
        ('title = "T"\nterm = "x"\nicd10 = "M54.2"\n', "icd10", "must be an array, got string"),
        ('title = "T"\nterm = "x"\nicd10 = [2020-01-01]\n', "icd10[0]",
         "must be a string, got date"),
    ],
)
def test_wrong_types(tmp_path, text, key, problem):
    path, message = load_error(tmp_path, "t.toml", text)
    assert message == f"{path}: {key}: {problem}"


@pytest.mark.parametrize(
    "text, key, problem",
    [
        ('title = "T"\n', "term",
         "no search given; add mesh and/or text_words, or a raw PubMed term"),
        ('title = "T"\nmesh = []\ntext_words = []\n', "term",
         "no search given; add mesh and/or text_words, or a raw PubMed term"),
        ('title = "T"\ntext_words = ["neck pain"]\nterm = "neck[tiab]"\n', "term",
         "give either term or mesh/text_words, not both; a raw term is sent as written, "
         "so the lists would be ignored"),
        ('title = "  "\nterm = "x"\n', "title", "is empty; give it some words"),
        ('title = """two\nlines"""\nterm = "x"\n', "title", "must be one line"),
        ('title = "T"\nterm = "   "\n', "term", "is empty; write a PubMed search term"),
        ('title = "T"\nterm = "(neck[tiab]"\n', "term",
         "1 '(' not closed; PubMed would misread it"),
        ('title = "T"\nterm = "neck[tiab])"\n', "term",
         "a ')' closes nothing; PubMed would misread it"),
        ("title = \"T\"\nterm = '\"neck pain[tiab]'\n", "term",
         "a double quote is not closed; PubMed would misread it"),
        ('title = "T"\nmesh = [{heading = "Neck Pain", ui = "D19547"}]\n', "mesh[0].ui",
         "'D19547' is not a MeSH descriptor UI; copy it from the MeSH Browser, e.g. D017116"),
        ('title = "T"\nmesh = [{heading = "Neck*", ui = "D019547"}]\n', "mesh[0].heading",
         "'Neck*': a MeSH heading takes no wildcard"),
        ('title = "T"\ntext_words = ["restless leg*"]\n', "text_words[0]",
         "'restless leg*': PubMed needs at least 4 letters before a *; "
         "spell out 'leg*''s endings instead"),
        ("title = \"T\"\ntext_words = ['\"neck pain\"[tiab]']\n", "text_words[0]",
         "'\"neck pain\"[tiab]' contains \" [ ]; write the plain words, "
         "the search tags and quotes are added for you"),
        ('title = "T"\ntext_words = [""]\n', "text_words[0]",
         "is empty; remove it or give some words"),
        ('title = "T"\nterm = "x"\nicd10 = ["M17.0\u2013M17.9"]\n', "icd10[0]",
         "'M17.0\u2013M17.9' is not an ICD-10-CM code; write e.g. M54.50, "
         "a range M17.0-M17.9 (plain hyphen) or a category M75.x"),
    ],
)
def test_invalid_values(tmp_path, text, key, problem):
    path, message = load_error(tmp_path, "t.toml", text)
    assert message == f"{path}: {key}: {problem}"


@pytest.mark.parametrize("name", ["Low-Back-Pain.toml", "low back pain.toml", "-neck.toml",
                                  "neck_pain.toml"])
def test_bad_file_name(tmp_path, name):
    path, message = load_error(tmp_path, name, 'title = "T"\nterm = "x"\n')
    assert message == (
        f"{path}: file name: {name!r} is not <slug>.toml; rename it with lowercase "
        "letters, digits and hyphens only, e.g. low-back-pain.toml"
    )


def test_valid_icd10_forms_load(tmp_path):
    folder = write(
        tmp_path / "ok",
        "t.toml",
        'title = "T"\nterm = "x"\nicd10 = ["M54.50", "G56.00-G56.03", "G43.x", "M79.7"]\n',
    ).parent
    assert load_conditions(builtin_dir=folder)["t"].icd10 == (
        "M54.50", "G56.00-G56.03", "G43.x", "M79.7",
    )


def test_a_broken_neighbour_does_not_block_get_condition(tmp_path, builtin):
    write(builtin, "broken.toml", "title = \n")
    assert get_condition("neck-pain", builtin_dir=builtin).title == "Neck pain"
    with pytest.raises(ConditionError, match=r"broken\.toml: "):
        load_conditions(builtin_dir=builtin)


# --- layering -------------------------------------------------------------------------------


def test_queries_imports_only_what_design_allows():
    tree = ast.parse(Path(queries.__file__).read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
    allowed = {"__future__", "difflib", "re", "tomllib", "dataclasses", "pathlib",
               "evidence", "evidence.errors", "evidence.config", "evidence.guards"}
    assert names <= allowed, names - allowed
