"""Condition files: every built-in file loads and compiles; broken files say file, key, problem."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from evidence import queries
from evidence.errors import ConditionError, UnknownConditionError
from evidence.queries import (
    DEFAULT_HANDOUT,
    DIARY_KINDS,
    EXCLUSIONS_TERM,
    HUMANS_FILTER,
    MASSAGE_TERM,
    MASSAGE_TEXT_WORDS,
    Condition,
    compile_term,
    exclusions_block,
    get_condition,
    load_conditions,
    massage_block,
    word_pattern,
)

BUILTIN = Path(__file__).resolve().parent.parent / "queries"
BUILTIN_FILES = sorted(p for p in BUILTIN.glob("*.toml") if not p.name.startswith("_"))

# DOMAIN.md, "Conditions studied for massage": slug -> MeSH UIs, typed out again on purpose so
# that a changed file cannot silently agree with itself. The new conditions' UIs come from
# DOMAIN.md, the fixtures (D009209, D006679) or NLM's MeSH (D009103, D020521, D009128,
# D013705, D000163, D017439), D010300 from NLM's 2020 baseline file (pubmed20n0014, 21
# records); tennis-elbow uses text words only, the UI of Tennis Elbow unconfirmed.
DOMAIN_MESH = {
    "low-back-pain": {"D017116", "D001416"},
    "neck-pain": {"D019547", "D014911"},
    "shoulder-pain": {"D020069"},
    "fibromyalgia": {"D005356"},
    "tension-headache": {"D018781"},
    "migraine": {"D008881"},
    "knee-osteoarthritis": {"D020370"},
    "cancer-symptoms": {"D009369", "D000072716"},
    "postoperative-pain": {"D010149"},
    "muscle-soreness": {"D063806"},
    "anxiety-depression": {"D001007", "D001008", "D003863", "D003866"},
    "lymphedema": {"D008209"},
    "constipation": {"D003248"},
    "labor-pain": {"D048949"},
    "plantar-fasciitis": {"D036981"},
    "carpal-tunnel": {"D002349"},
    "restless-legs": {"D012148"},
    "insomnia": {"D007319"},
    "circulation-edema": {"D004487", "D014689"},
    "preterm-infants": {"D007234", "D007230"},
    "myofascial-pain": {"D009209"},
    "infant-colic": {"D003085"},
    "dysmenorrhea": {"D004412"},
    "hemodialysis": {"D006435"},
    "tennis-elbow": set(),
    "scars-burns": {"D002921", "D017439", "D002056"},
    "stroke": {"D020521", "D009128"},
    "cerebral-palsy": {"D002547"},
    "hiv": {"D000163", "D006679"},
    "parkinsons": {"D010300"},
    "multiple-sclerosis": {"D009103"},
    "tmd": {"D013705"},
}
# Every UI with its heading as DOMAIN.md (or NLM's MeSH) spells it.
DOMAIN_HEADINGS = {
    "D017116": "Low Back Pain",
    "D001416": "Back Pain",
    "D019547": "Neck Pain",
    "D014911": "Whiplash Injuries",
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
    "D001008": "Anxiety Disorders",
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
    "D007230": "Infant, Low Birth Weight",
    "D009209": "Myofascial Pain Syndromes",
    "D003085": "Colic",
    "D004412": "Dysmenorrhea",
    "D006435": "Renal Dialysis",
    "D002921": "Cicatrix",
    "D017439": "Cicatrix, Hypertrophic",
    "D002056": "Burns",
    "D020521": "Stroke",
    "D009128": "Muscle Spasticity",
    "D002547": "Cerebral Palsy",
    "D000163": "Acquired Immunodeficiency Syndrome",
    "D006679": "HIV Seropositivity",
    "D009103": "Multiple Sclerosis",
    "D013705": "Temporomandibular Joint Disorders",
    "D010300": "Parkinson Disease",
}
# DOMAIN.md's ICD-10-CM column (FY2027), and the codes chosen for the new conditions.
# tests/test_icd10.py checks every one against the code set itself.
DOMAIN_ICD10 = {
    "low-back-pain": {"M54.50", "M54.59", "M54.40", "M54.41", "M54.42"},
    "neck-pain": {"M54.2"},
    # DOMAIN.md's nine billable codes, given as their three subcategories (the side decides
    # the code, which the doctor picks): listed whole they pushed ten studies onto a third page.
    "shoulder-pain": {"M25.51-", "M75.0-", "M75.4-"},
    "fibromyalgia": {"M79.7"},
    "tension-headache": {"G44.201", "G44.209", "G44.211", "G44.219", "G44.221", "G44.229"},
    "migraine": {"G43.909", "G43.919", "G43.009", "G43.109", "G43.709"},
    # DOMAIN.md's eleven billable codes, given as their category in dash notation (the doctor
    # picks the code): listed whole they pushed a sheet of eight studies onto a third page.
    "knee-osteoarthritis": {"M17.-"},
    "cancer-symptoms": {"G89.3"},
    "postoperative-pain": {"G89.18", "G89.28"},
    "muscle-soreness": {"M79.10", "M79.12", "M79.18"},
    "anxiety-depression": {"F41.1", "F41.9", "F32.A"},
    "lymphedema": {"I89.0", "I97.2", "Q82.0"},
    "constipation": {"K59.00", "K59.01", "K59.02", "K59.03", "K59.04", "K59.09"},
    "labor-pain": set(),
    "plantar-fasciitis": {"M67.A01", "M67.A02", "M67.A09"},
    "carpal-tunnel": {"G56.00", "G56.01", "G56.02", "G56.03"},
    "restless-legs": {"G25.81"},
    "insomnia": {"G47.00", "G47.09", "F51.01", "F51.02", "F51.09"},
    "circulation-edema": {"R60.0", "R60.9", "I87.2"},
    "preterm-infants": set(),
    "myofascial-pain": {"M79.18", "M79.12"},
    "infant-colic": {"R10.83"},
    "dysmenorrhea": {"N94.4", "N94.5", "N94.6"},
    "hemodialysis": {"N18.6", "Z99.2"},
    "tennis-elbow": {"M77.10", "M77.11", "M77.12"},
    "scars-burns": {"L90.5", "L91.0"},
    "stroke": {"I69.-"},
    "cerebral-palsy": {"G80.-"},
    "hiv": {"B20", "Z21"},
    "parkinsons": {"G20.-"},
    "multiple-sclerosis": {"G35.-"},
    "tmd": {"M26.60-", "M26.62-", "M79.11"},
}
# The groups each compiled term must hold (DOMAIN.md's search findings), in PubMed syntax.
GROUPS = {
    "low-back-pain": ['"Back Pain"[mh]', '"Low Back Pain"[mh]', '"back pain"[tiab]',
                      "backache[tiab]", "sciatica[tiab]", '"lumbosacral pain"[tiab]'],
    "neck-pain": ['"Neck Pain"[mh]', '"Whiplash Injuries"[mh]', "whiplash[tiab]",
                  '"neck disorder*"[tiab]', '"cervicogenic headache"[tiab]',
                  '"cervical radiculopathy"[tiab]'],
    "shoulder-pain": ['"Shoulder Pain"[mh]', '"frozen shoulder"[tiab]',
                      '"shoulder impingement"[tiab]'],
    "fibromyalgia": ['"Fibromyalgia"[mh]', "fibromyalgia[tiab]"],
    "tension-headache": ['"Tension-Type Headache"[mh]', '"tension-type headache"[tiab]'],
    "migraine": ['"Migraine Disorders"[mh]', "migraine*[tiab]"],
    "knee-osteoarthritis": ['"Osteoarthritis, Knee"[mh]', '"knee OA"[tiab]',
                            '"knee osteoarthritis"[tiab:~2]'],
    "cancer-symptoms": ['"Neoplasms"[mh]', '"Cancer Pain"[mh]', "cancer*[tiab]"],
    "postoperative-pain": ['"Pain, Postoperative"[mh]', '"postoperative pain"[tiab]'],
    "muscle-soreness": ['"Myalgia"[mh]', '"delayed onset muscle soreness"[tiab]'],
    "anxiety-depression": ['"Anxiety"[mh]', '"Anxiety Disorders"[mh]', '"Depression"[mh]',
                           '"Depressive Disorder"[mh]', '"anxiety disorder*"[tiab]',
                           '"major depression"[tiab]'],
    "lymphedema": ['"Lymphedema"[mh]', "lymphedema[tiab]", "lymphoedema[tiab]"],
    "constipation": ['"Constipation"[mh]', "constipation[tiab]"],
    "labor-pain": ['"Labor Pain"[mh]', '"labor pain"[tiab:~3]', '"labour pain"[tiab:~3]',
                   '"labour pain*"[tiab]', "counterpressure[tiab]", '"perineal massage"[ti]'],
    "plantar-fasciitis": ['"Fasciitis, Plantar"[mh]', '"plantar fasciitis"[tiab]'],
    "carpal-tunnel": ['"Carpal Tunnel Syndrome"[mh]', '"carpal tunnel"[tiab]'],
    "restless-legs": ['"Restless Legs Syndrome"[mh]', '"restless legs"[tiab]'],
    "insomnia": ['"Sleep Initiation and Maintenance Disorders"[mh]', "insomnia[tiab]"],
    "circulation-edema": ['"Edema"[mh]', '"Venous Insufficiency"[mh]', '"leg swelling"[tiab]',
                          '"macular edema"[tiab]'],
    "preterm-infants": ['"Infant, Premature"[mh]', '"Infant, Low Birth Weight"[mh]',
                        '"low birth weight"[tiab]', '"low birthweight"[tiab]', "VLBW[tiab]",
                        "prematurity[tiab]", '"tactile kinesthetic stimulation"[tiab]',
                        '"breast massage"[ti]'],
    "myofascial-pain": ['"Myofascial Pain Syndromes"[mh]', '"trigger point*"[tiab]'],
    "infant-colic": ['"Colic"[mh]', '"infantile colic"[tiab]', '"renal colic"[tiab]'],
    "dysmenorrhea": ['"Dysmenorrhea"[mh]', "dysmenorrhoea[tiab]", '"menstrual pain"[tiab]'],
    "hemodialysis": ['"Renal Dialysis"[mh]', "hemodialysis[tiab]", "haemodialysis[tiab]"],
    "tennis-elbow": ['"tennis elbow"[tiab]', '"lateral epicondylitis"[tiab]', "Cyriax[tiab]"],
    "scars-burns": ['"Cicatrix"[mh]', '"Burns"[mh]', '"hypertrophic scar*"[tiab]',
                    '"scar mobilization"[tiab]'],
    "stroke": ['"Stroke"[mh]', '"Muscle Spasticity"[mh]', "hemiplegi*[tiab]",
               '"stroke patient*"[tiab]'],
    "cerebral-palsy": ['"Cerebral Palsy"[mh]', '"cerebral palsy"[tiab]'],
    "hiv": ['"Acquired Immunodeficiency Syndrome"[mh]', "HIV[tiab]",
            '"human immunodeficiency virus"[tiab]'],
    "parkinsons": ['"Parkinson Disease"[mh]', "parkinson*[tiab]"],
    "multiple-sclerosis": ['"Multiple Sclerosis"[mh]', '"multiple sclerosis"[tiab]'],
    "tmd": ['"Temporomandibular Joint Disorders"[mh]', "temporomandibular[tiab]",
            '"jaw pain"[tiab]'],
}
# DOMAIN.md, "Massage in MeSH" and the librarian's technique list: every one in the shared block.
MASSAGE_WORDS = [
    "massage*[tiab]", '"myofascial release"[tiab]', '"soft tissue mobili*"[tiab]',
    '"trigger point therap*"[tiab]', '"ischemic compression"[tiab]', "reflexology[tiab]",
    "shiatsu[tiab]", "tuina[tiab]", '"tui na"[tiab]', '"Swedish massage"[tiab]',
    '"deep tissue massage"[tiab]', '"sports massage"[tiab]',
    "reflexotherapy[tiab]", '"zone therapy"[tiab]', "rolfing[tiab]",
    '"structural integration"[tiab]', "effleurage[tiab]", "petrissage[tiab]",
    '"neuromuscular therapy"[tiab]', "myotherapy[tiab]", '"transverse friction*"[tiab]',
    '"deep friction*"[tiab]', '"pressure release"[tiab]', '"trigger point release"[tiab]',
    '"myofascial induction"[tiab]', '"fascial manipulation"[tiab]',
    '"soft tissue release"[tiab]', '"manual lymph drainage"[tiab]',
    '"manual lymphatic drainage"[tiab]', '"lymphatic drainage"[tiab]',
    '"lymph drainage"[tiab]', "decongestive[tiab]", "Vodder[tiab]",
]
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


def test_builtin_folder_has_thirty_conditions_or_more():
    assert len(BUILTIN_FILES) >= 30
    assert set(DOMAIN_MESH) == {p.stem for p in BUILTIN_FILES}


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
        f"{block}) AND ({massage_block(condition)}) NOT ({exclusions_block(condition)}) "
        f"NOT ({HUMANS_FILTER})"
    )
    assert massage_block(condition).startswith(MASSAGE_TERM)
    assert exclusions_block(condition).startswith(EXCLUSIONS_TERM)
    for mesh in condition.mesh:
        assert f'"{mesh["heading"]}"[mh]' in block
    for word in condition.text_words:
        phrase, _, distance = word.partition("~")
        if distance:
            assert f'"{phrase}"[tiab:~{distance}]' in block
        else:
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
        assert {c["code"] for c in condition.icd10} == DOMAIN_ICD10[slug], slug


@pytest.mark.parametrize("slug", sorted(GROUPS))
def test_each_compiled_term_holds_its_groups(slug):
    term = get_condition(slug, builtin_dir=BUILTIN).term
    condition_part, rest = term.split(") AND (", 1)
    massage_part, rest = rest.split(") NOT (", 1)
    excluded_part = rest.rsplit(") NOT (", 1)[0]
    for piece in GROUPS[slug]:
        assert piece in term, piece
    # Each group sits in its own part of the term, not merely somewhere in it.
    for piece in GROUPS[slug]:
        where = "[ti]" in piece or piece in excluded_part.split(" OR ")
        if where:
            assert piece in excluded_part.split(" OR "), piece
        elif piece in massage_part.split(" OR "):
            assert piece not in MASSAGE_TERM.split(" OR "), f"{piece} is shared, not {slug}'s"
        else:
            assert piece in condition_part.split(" OR ") or f"({piece}" in condition_part, piece


def test_no_noisy_bare_text_words():
    """Bare depression, anxiety, swelling and stroke match trials of anything (DOMAIN.md)."""
    noisy = {"depression", "anxiety", "swelling", "stroke", "aids", "burn*"}
    for condition in load_conditions(builtin_dir=BUILTIN).values():
        words = {w.lower() for w in condition.text_words}
        assert not words & noisy, (condition.slug, words & noisy)


def test_no_phrase_relies_on_a_wildcard_inside_it():
    words = list(MASSAGE_TEXT_WORDS)
    for condition in load_conditions(builtin_dir=BUILTIN).values():
        words += [*condition.text_words, *condition.intervention_words]
        words += [e["words"] for e in condition.exclusions]
    for word in words:
        assert "*" not in word[:-1], word
    assert "manual lymph* drainage" not in MASSAGE_TEXT_WORDS


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
    assert "Reflexotherapy" not in MASSAGE_TERM  # the heading holds needle treatments
    for text_word in MASSAGE_WORDS:
        assert text_word in MASSAGE_TERM.split(" OR "), text_word


def test_exclusions_cover_procedures_that_are_not_massage_therapy():
    parts = EXCLUSIONS_TERM.split(" OR ")
    for part in (
        '"Heart Massage"[mh]',
        '"cardiac massage"[tiab]',
        '"uterine massage"[tiab]',
        '"prostatic massage"[tiab]',
        '"carotid sinus massage"[tiab]',
        '"ocular massage"[tiab]',
        '"eyelid massage"[tiab]',
        '"lid massage"[tiab]',
        '"gingival massage"[tiab]',
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
        text_words=("knee osteoarthritis", "gonarthros*", "knee osteoarthritis~2"),
        icd10=(),
        raw_term=None,
        path=tmp_path / "x.toml",
        builtin=False,
        intervention_words=("Cyriax", "deep friction massage"),
        exclusions=({"words": "perineal massage", "field": "title"},
                    {"words": "renal colic", "field": "title/abstract"}),
    )
    assert compile_term(condition) == (
        '("Osteoarthritis, Knee"[mh] OR "knee osteoarthritis"[tiab] OR gonarthros*[tiab] '
        'OR "knee osteoarthritis"[tiab:~2]) '
        f'AND ({MASSAGE_TERM} OR Cyriax[tiab] OR "deep friction massage"[tiab]) '
        f'NOT ({EXCLUSIONS_TERM} OR "perineal massage"[ti] OR "renal colic"[tiab]) '
        "NOT (animals[mh] NOT humans[mh])"
    )
    assert condition.handout == DEFAULT_HANDOUT


def test_term_groups_name_the_shared_blocks_and_give_the_own_words():
    labor = get_condition("labor-pain", builtin_dir=BUILTIN)
    groups = dict(labor.term_groups())
    assert len(groups) == 6
    labels = list(groups)
    assert labels[0] == "Condition: MeSH headings and text words"
    assert groups[labels[0]].startswith('"Labor Pain"[mh] OR ')
    assert groups["Massage: this condition's own techniques"] == (
        'counterpressure[tiab] OR "counter-pressure"[tiab] OR "sacral pressure"[tiab]'
    )
    assert groups["Left out: this condition's own"] == '"perineal massage"[ti]'
    assert f"and {len(MASSAGE_TEXT_WORDS)} technique words" in labels[1]
    # Every piece of the term is in a group (the shared ones by name).
    for label, part in groups.items():
        assert part in labor.term
    neck = get_condition("neck-pain", builtin_dir=BUILTIN)
    assert len(neck.term_groups()) == 4


def test_to_dict_has_the_documented_keys():
    condition = get_condition("cancer-symptoms", builtin_dir=BUILTIN)
    data = condition.to_dict()
    assert set(data) == {
        "slug", "title", "description", "mesh", "text_words", "intervention_words",
        "exclusions", "icd10", "handout", "term", "path", "builtin",
    }
    assert data["mesh"][1] == {"heading": "Cancer Pain", "ui": "D000072716"}
    assert data["icd10"] == [
        {"code": "G89.3", "description": "Neoplasm related pain (acute) (chronic)", "category": False},
    ]
    assert data["handout"]["safety"] == (
        "If you have or had cancer, ask your care team before any massage."
    )
    assert data["handout"]["cpt"][0] == {"code": "97124", "words": "massage therapy, each 15 minutes"}
    data["handout"]["cpt"][0]["words"] = "changed"
    assert condition.handout["cpt"][0]["words"] == "massage therapy, each 15 minutes"
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
        "allowed keys are title, description, mesh, text_words, intervention_words, exclusions, "
        "icd10, term, handout"
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
         'must be a table {code = "M54.50", description = "..."}, got date'),
        ('title = "T"\nterm = "x"\nicd10 = ["M54.50"]\n', "icd10[0]",
         'must be a table {code = "M54.50", description = "..."}, got string'),
        ('title = "T"\nterm = "x"\nicd10 = [{code = 5450, description = "x"}]\n', "icd10[0].code",
         "must be a string, got integer"),
        ('title = "T"\nterm = "x"\nhandout = "pain"\n', "handout",
         "must be a table ([handout]), got string"),
        ('title = "T"\nterm = "x"\n[handout]\nletter = "no"\n', "handout.letter",
         "must be true or false, got string"),
        ('title = "T"\nterm = "x"\n[handout]\ncpt = "97124"\n', "handout.cpt",
         "must be an array, got string"),
        ('title = "T"\nterm = "x"\n[handout]\ncpt = ["97124"]\n', "handout.cpt[0]",
         'must be a table {code = "97124", words = "..."}, got string'),
        ('title = "T"\ntext_words = ["x"]\nexclusions = [3]\n', "exclusions[0]",
         'must be a string, or a table {words = "...", field = "title"}, got integer'),
        ('title = "T"\ntext_words = ["x"]\nintervention_words = "Cyriax"\n', "intervention_words",
         "must be an array, got string"),
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
        ('title = "T"\nterm = "x"\nicd10 = [{code = "M17.0\u2013M17.9", description = "x"}]\n',
         "icd10[0].code", "'M17.0\u2013M17.9': a range is no code, and may span headings; list "
         "each billable code, or write the category with a dash, e.g. M17.-"),
        ('title = "T"\nterm = "x"\nicd10 = [{code = "M17.0-M17.9", description = "x"}]\n',
         "icd10[0].code", "'M17.0-M17.9': a range is no code, and may span headings; list "
         "each billable code, or write the category with a dash, e.g. M17.-"),
        ('title = "T"\nterm = "x"\nicd10 = [{code = "M75.x", description = "x"}]\n',
         "icd10[0].code", "'M75.x': x is no wildcard in ICD-10-CM (X is a real character inside "
         "codes); write the category as M75.- and your doctor picks the full code"),
        ('title = "T"\nterm = "x"\nicd10 = [{code = "m54.50", description = "x"}]\n',
         "icd10[0].code", "'m54.50' is not an ICD-10-CM code; write a billable code such as "
         "M54.50, or a category with a dash such as M75.-"),
        ('title = "T"\nterm = "x"\nicd10 = [{code = "M54.50"}]\n', "icd10[0].description",
         'missing; add description = "..."'),
        ('title = "T"\nterm = "x"\nicd10 = [{code = "M54.50", description = " "}]\n',
         "icd10[0].description", "is empty; give it some words"),
        ('title = "T"\nterm = "x"\nicd10 = [{code = "M54.50", description = "x", note = "y"}]\n',
         "icd10[0].note", "unknown key; allowed keys are code, description"),
        ('title = "T"\nterm = "x"\nicd10 = [{code = "M54.2", description = "a"}, '
         '{code = "M54.2", description = "b"}]\n', "icd10[1].code",
         "M54.2 is listed twice; keep one"),
        ('title = "T"\nterm = "x"\n[handout]\ndairy = "pain"\n', "handout.dairy",
         "unknown key; did you mean diary? allowed keys are diary, letter, provider, cpt, safety"),
        ('title = "T"\nterm = "x"\n[handout]\ndiary = "bowel"\n', "handout.diary",
         "'bowel' is not a diary kind; use one of pain, stool, sleep, limb, baby, mood"),
        ('title = "T"\nterm = "x"\n[handout]\nprovider = ""\n', "handout.provider",
         "is empty; give it some words or remove it"),
        ('title = "T"\nterm = "x"\n[handout]\nsafety = """one\ntwo"""\n', "handout.safety",
         "must be one line"),
        ('title = "T"\nterm = "x"\n[handout]\ncpt = [{code = "9712", words = "x"}]\n',
         "handout.cpt[0].code", "'9712' is not a CPT code; write five characters, e.g. 97124"),
        ('title = "T"\nterm = "x"\n[handout]\ncpt = [{code = "97124"}]\n',
         "handout.cpt[0].words", 'missing; add words = "..."'),
        ('title = "T"\ntext_words = ["labor pain~3x"]\n', "text_words[0]",
         "'labor pain~3x': write proximity as the words, then ~ and a number at the end, "
         "e.g. 'labor pain~3'"),
        ('title = "T"\ntext_words = ["labor~3 pain"]\n', "text_words[0]",
         "'labor~3 pain': write proximity as the words, then ~ and a number at the end, "
         "e.g. 'labor pain~3'"),
        ('title = "T"\ntext_words = ["labor~3"]\n', "text_words[0]",
         "'labor~3': proximity needs two or more words before the ~"),
        ('title = "T"\ntext_words = ["labor pain*~3"]\n', "text_words[0]",
         "'labor pain*~3': PubMed takes no * in a proximity search; "
         "list the word's endings as separate words"),
        ('title = "T"\ntext_words = ["labor pain~21"]\n', "text_words[0]",
         "'labor pain~21': ~21 is too far apart to mean anything; use a number from 0 to 20"),
        ('title = "T"\nmesh = [{heading = "Labor Pain~3", ui = "D048949"}]\n', "mesh[0].heading",
         "'Labor Pain~3': ~ (proximity) works only in text words and exclusions"),
        ('title = "T"\ntext_words = ["manual lymph* drainage"]\n', "text_words[0]",
         "'manual lymph* drainage': a * may only end the last word; PubMed does not reliably "
         "expand one inside a phrase, so spell the variants out"),
        ('title = "T"\ntext_words = ["x"]\nexclusions = [{words = "perineal massage", field = "abstract"}]\n',
         "exclusions[0].field", "'abstract' is not a field; use 'title/abstract' or 'title'"),
        ('title = "T"\ntext_words = ["x"]\nexclusions = [{field = "title"}]\n',
         "exclusions[0].words", 'missing; add words = "..."'),
        ('title = "T"\ntext_words = ["x"]\nexclusions = [{words = "x", tag = "ti"}]\n',
         "exclusions[0].tag", "unknown key; use words and field"),
        ('title = "T"\nterm = "x[tiab]"\nintervention_words = ["Cyriax"]\n', "intervention_words",
         "a raw term is sent as written, so intervention_words would be ignored; write them "
         "into the term, or use mesh/text_words instead of term"),
        ('title = "T"\nterm = "x[tiab]"\nexclusions = ["renal colic"]\n', "exclusions",
         "a raw term is sent as written, so exclusions would be ignored; write them "
         "into the term, or use mesh/text_words instead of term"),
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
        'title = "T"\nterm = "x"\nicd10 = [\n'
        '  {code = "M54.50", description = "Low back pain, unspecified"},\n'
        '  {code = "M75.-", description = "Shoulder lesions"},\n'
        '  {code = "M26.62-", description = "Arthralgia of temporomandibular joint"},\n'
        '  {code = "M86.8X1", description = "SYNTHETIC: X inside a code is a real character"},\n'
        '  {code = "B20", description = "Human immunodeficiency virus [HIV] disease"},\n'
        "]\n",
    ).parent
    assert load_conditions(builtin_dir=folder)["t"].icd10 == (
        {"code": "M54.50", "description": "Low back pain, unspecified", "category": False},
        {"code": "M75.-", "description": "Shoulder lesions", "category": True},
        {"code": "M26.62-", "description": "Arthralgia of temporomandibular joint", "category": True},
        {"code": "M86.8X1", "description": "SYNTHETIC: X inside a code is a real character",
         "category": False},
        {"code": "B20", "description": "Human immunodeficiency virus [HIV] disease", "category": False},
    )


def test_text_words_intervention_words_and_exclusions_load(tmp_path):
    folder = write(
        tmp_path / "ok",
        "t.toml",
        'title = "T"\ntext_words = ["labor  pain ~ 3", "labour pain*"]\n'
        'intervention_words = ["counter-pressure"]\n'
        'exclusions = ["renal colic", {words = "perineal massage", field = "title"}, '
        '{words = "breast massage", field = "title/abstract"}]\n',
    ).parent
    condition = load_conditions(builtin_dir=folder)["t"]
    assert condition.text_words == ("labor pain~3", "labour pain*")
    assert condition.intervention_words == ("counter-pressure",)
    assert condition.exclusions == (
        {"words": "renal colic", "field": "title/abstract"},
        {"words": "perineal massage", "field": "title"},
        {"words": "breast massage", "field": "title/abstract"},
    )
    assert condition.term.startswith('("labor pain"[tiab:~3] OR "labour pain*"[tiab]) AND (')
    assert ' OR "counter-pressure"[tiab]) NOT (' in condition.term
    assert condition.term.endswith(
        ' OR "renal colic"[tiab] OR "perineal massage"[ti] OR "breast massage"[tiab]) '
        "NOT (animals[mh] NOT humans[mh])"
    )


def test_handout_defaults_and_partial_tables(tmp_path):
    folder = tmp_path / "ok"
    write(folder, "none.toml", 'title = "T"\nterm = "x"\n')
    write(folder, "some.toml", 'title = "T"\nterm = "x"\n[handout]\ndiary = "stool"\n')
    write(
        folder, "all.toml",
        'title = "T"\nterm = "x"\n[handout]\ndiary = "baby"\nletter = false\n'
        'provider = "a parent"\ncpt = []\nsafety = "A baby\'s massage is learned from the care team."\n',
    )
    found = load_conditions(builtin_dir=folder)
    assert found["none"].handout == {
        "diary": "pain", "letter": True, "provider": "a licensed massage therapist",
        "cpt": ({"code": "97124", "words": "massage therapy, each 15 minutes"},
                {"code": "97140", "words": "hands-on (manual) therapy, each 15 minutes"}),
        "safety": None,
    }
    assert found["some"].handout == {**found["none"].handout, "diary": "stool"}
    assert found["all"].handout_parts() == {
        "diary": "baby", "letter": False, "provider": "a parent", "cpt": [],
        "safety": "A baby's massage is learned from the care team.",
    }
    # The defaults are not shared between conditions: changing one's leaves the other's alone.
    found["none"].handout["cpt"][0]["words"] = "changed"
    assert found["some"].handout["cpt"][0]["words"] == "massage therapy, each 15 minutes"


# --- the handout parts each shipped file declares ------------------------------------------


@pytest.mark.parametrize("path", BUILTIN_FILES, ids=lambda p: p.stem)
def test_every_builtin_file_declares_its_handout_parts(path):
    """Declared in the file, not left to defaults or hard-coded per slug."""
    with path.open("rb") as handle:
        table = tomllib.load(handle)["handout"]
    assert {"diary", "letter", "provider", "cpt"} <= set(table), path.stem
    assert table["diary"] in DIARY_KINDS
    if not table["letter"]:
        assert table["cpt"] == [], "no letter, so no service codes to quote"
    for cpt in table["cpt"]:
        assert cpt["code"] in {"97124", "97140"}
        assert "each 15 minutes" in cpt["words"]


@pytest.mark.parametrize(
    "slug, diary, letter, provider, safety",
    [
        ("low-back-pain", "pain", True, "a licensed massage therapist", None),
        ("constipation", "stool", True, "a licensed massage therapist", None),
        ("insomnia", "sleep", True, "a licensed massage therapist", None),
        ("lymphedema", "limb", True, "a certified lymphedema therapist", "blood clot"),
        ("circulation-edema", "limb", True, "a licensed massage therapist", "blood clot"),
        ("anxiety-depression", "mood", True, "a licensed massage therapist", None),
        ("labor-pain", "pain", False, "a birth partner, doula or midwife", None),
        ("preterm-infants", "baby", False, "a nurse, or a parent shown how by the baby's care team",
         "care team"),
        ("infant-colic", "baby", False, "a parent, shown how by the baby's care team", "care team"),
        ("cancer-symptoms", "pain", True,
         "a licensed massage therapist who knows how to work with people with cancer", "care team"),
    ],
)
def test_handout_parts_follow_domain(slug, diary, letter, provider, safety):
    handout = get_condition(slug, builtin_dir=BUILTIN).handout
    assert (handout["diary"], handout["letter"], handout["provider"]) == (diary, letter, provider)
    if safety is None:
        assert handout["safety"] is None
    else:
        assert safety in handout["safety"]


def test_lymphedema_is_billed_as_manual_therapy_only():
    cpt = get_condition("lymphedema", builtin_dir=BUILTIN).handout["cpt"]
    assert [c["code"] for c in cpt] == ["97140"]
    assert "manual lymph drainage" in cpt[0]["words"]


# --- word_pattern: the same words, read in plain text ----------------------------------------


@pytest.mark.parametrize(
    "word, text, found",
    [
        ("labor pain~3", "Pain during labor was scored", True),
        ("labor pain~3", "labor pain", True),
        ("labor pain~3", "pain in the first stage of labor", False),  # four words between
        ("labor pain~3", "laboratory pain", False),
        ("labor pain~3", "labour pain", False),
        ("massage*", "Self-massage for constipation", True),
        ("massage*", "massaged twice a day", True),
        ("massage*", "premassage baseline", False),
        ("soft tissue mobili*", "soft-tissue mobilisation", True),
        ("back pain", "LOW BACK PAIN", True),
        ("back pain", "backpain", False),
        ("HIV", "HIV-infected adults", True),
        ("HIV", "archival", False),
    ],
)
def test_word_pattern(word, text, found):
    assert bool(word_pattern(word).search(text)) is found


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


# --- what the handout receives ----------------------------------------------------------------


def test_export_context_carries_codes_and_handout_parts_as_shared_interfaces_says():
    from evidence.curation import export_context

    class NoRuns:
        def last_search(self, slug):
            return None

        def imports(self, slug):
            return []

    lymphedema = get_condition("lymphedema", builtin_dir=BUILTIN)
    condition = export_context(NoRuns(), lymphedema, {})["condition"]
    assert set(condition) == {"slug", "title", "description", "icd10", "handout"}
    assert condition["icd10"][0] == {
        "code": "I89.0", "description": "Lymphedema, not elsewhere classified", "category": False,
    }
    assert set(condition["handout"]) == {"diary", "letter", "provider", "cpt", "safety"}
    assert condition["handout"]["diary"] == "limb"
    assert condition["handout"]["cpt"] == [{
        "code": "97140",
        "words": "hands-on (manual) therapy, such as manual lymph drainage, each 15 minutes",
    }]
    stroke = export_context(NoRuns(), get_condition("stroke", builtin_dir=BUILTIN), {})
    assert stroke["condition"]["icd10"] == [
        {"code": "I69.-", "description": "Sequelae of cerebrovascular disease", "category": True},
    ]
    # A fresh copy: the handout code may change it without touching the condition.
    condition["handout"]["cpt"].clear()
    assert lymphedema.handout["cpt"]
