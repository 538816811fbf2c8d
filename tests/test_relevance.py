"""Topic fit: is a record about massage for the condition, or does it only mention either?"""

from __future__ import annotations

import dataclasses

import pytest

from evidence import queries, relevance
from evidence.queries import get_condition
from tests.test_export_citation import real_records

LBP = "low-back-pain"


@pytest.fixture(scope="module")
def lbp():
    return get_condition(LBP)


def fit_of(record: dict, condition) -> dict:
    return relevance.fit_record(record, condition)


def synthetic(title: str, abstract: str = "", **fields) -> dict:
    """A SYNTHETIC record: only the fields topic fit reads."""
    record = {
        "pmid": "99000500",
        "title": f"SYNTHETIC {title}",
        "abstract": abstract,
        "keywords": [],
        "mesh_terms": [],
        "mesh_major": [],
    }
    record.update(fields)
    return record


# -- real records ---------------------------------------------------------------------------


def test_a_review_of_massage_for_low_back_pain_is_direct(lbp):
    record = real_records("33984499")[0]  # myofascial release for low back pain, meta-analysis
    result = fit_of(record, lbp)
    assert result == {
        "fit": "direct",
        "fit_rank": 1,
        "fit_reason": "title: 'myofascial release', 'back pain'",
    }


def test_a_back_pain_review_that_never_names_massage_is_not_on_topic(lbp):
    record = real_records("36400559")[0]  # Back Pain: Differential Diagnosis and Management
    assert "Low Back Pain" in record["mesh_major"]
    result = fit_of(record, lbp)
    assert result["fit"] == "none"
    assert result["fit_reason"] == "title: 'Back Pain'; massage not mentioned"


def test_prostatic_massage_is_not_massage_therapy_even_under_the_mesh_heading_massage(lbp):
    record = real_records("420419")[0]  # prostatic massage, indexed under Massage as a major topic
    assert "Massage" in record["mesh_major"]
    result = fit_of(record, lbp)
    assert result["fit"] == "none"
    assert "massage only as 'prostatic massage' (not massage therapy)" in result["fit_reason"]


def test_massage_as_a_minor_mesh_term_is_only_a_mention(lbp):
    record = real_records("428877")[0]  # perinatal asphyxia; Massage a minor heading
    result = fit_of(record, lbp)
    assert "MeSH: 'Massage'" in result["fit_reason"]
    assert result["fit"] == "none"  # massage in passing, and nothing about back pain


def test_massage_in_the_abstract_of_a_survey_of_pain_care_is_not_about_back_pain(lbp):
    record = real_records("33896602")[0]  # manual therapy use among rural pain patients
    result = fit_of(record, lbp)
    assert result["fit"] == "none"
    assert result["fit_reason"] == "abstract: 'massage'; condition not mentioned"


def test_a_massage_trial_for_another_condition_is_only_a_mention(lbp):
    record = real_records("33984498")[0]  # foot reflexology for infant colic
    result = fit_of(record, lbp)
    assert (result["fit"], result["fit_rank"]) == ("mention", 4)
    assert result["fit_reason"] == "title: 'reflexology'; condition not mentioned"


# -- each rule, on SYNTHETIC records --------------------------------------------------------


@pytest.mark.parametrize(
    "title, abstract, fields, expected",
    [
        ("Massage for low back pain", "", {}, ("direct", 1)),
        ("Massage in primary care", "Adults with low back pain took part.", {}, ("partial", 2)),
        ("Exercise for low back pain", "The control group received massage.", {}, ("partial", 3)),
        ("Exercise in primary care", "Massage; low back pain.", {}, ("mention", 4)),
        ("Exercise in primary care", "Low back pain.", {"mesh_terms": ["Massage"]}, ("mention", 4)),
        ("Exercise in primary care", "A massage group.", {}, ("none", 5)),
        ("Exercise for low back pain", "", {}, ("none", 5)),
        ("A trial", "", {"mesh_major": ["Massage", "Low Back Pain"], "mesh_terms": ["Massage", "Low Back Pain"]},
         ("direct", 1)),
        ("A trial", "Low back pain.", {"mesh_major": ["Massage"], "mesh_terms": ["Massage"]}, ("partial", 2)),
        ("A trial", "", {"keywords": ["Massage", "Low back pain"]}, ("mention", 4)),
    ],
)
def test_the_scale_combines_where_each_topic_appears(lbp, title, abstract, fields, expected):
    result = fit_of(synthetic(title, abstract, **fields), lbp)
    assert (result["fit"], result["fit_rank"]) == expected, result["fit_reason"]


def test_wildcards_hyphens_and_case_match_as_pubmed_reads_text_words(lbp):
    result = fit_of(synthetic("MASSAGES and Low-Back Pain"), lbp)
    assert result["fit"] == "direct"
    assert result["fit_reason"] == "title: 'MASSAGES', 'Back Pain'"


def test_the_reason_quotes_the_longest_technique_name(lbp):
    result = fit_of(synthetic("Deep tissue massage for low back pain"), lbp)
    assert "'Deep tissue massage'" in result["fit_reason"]


def test_an_excluded_phrase_does_not_hide_real_massage_in_the_same_record(lbp):
    record = synthetic(
        "Massage therapy for low back pain after cardiac surgery",
        "Cardiac massage was not used.",
        mesh_major=["Massage"], mesh_terms=["Massage"],
    )
    assert fit_of(record, lbp)["fit"] == "direct"


def test_proximity_words_match_a_few_words_apart_in_either_order():
    pattern = relevance._compile(["labor pain~3"])
    assert pattern.search("pain during active labor")
    assert pattern.search("labor and delivery pain")
    assert not pattern.search("labor was long and the ward was quiet that night; pain")


def test_a_raw_term_condition_judges_massage_only(tmp_path):
    (tmp_path / "tmd.toml").write_text('title = "Jaw pain"\nterm = "jaw AND massage"\n')
    condition = get_condition("tmd", tmp_path)
    result = fit_of(synthetic("Massage for the jaw"), condition)
    assert (result["fit"], result["fit_rank"]) == ("partial", 2)
    assert "condition words not known (raw search term)" in result["fit_reason"]


def test_the_rules_key_changes_with_the_words(lbp):
    first = relevance.rules_for(lbp)
    assert relevance.rules_for(lbp).key == first.key
    changed = dataclasses.replace(lbp, text_words=lbp.text_words + ("backache",))
    assert relevance.rules_for(changed).key != first.key


def test_fit_reads_the_very_massage_words_the_search_sends(lbp):
    for word in queries.MASSAGE_TEXT_WORDS:
        probe = word.replace("*", "s")
        result = fit_of(synthetic(f"{probe} for low back pain"), lbp)
        assert result["fit"] == "direct", (word, result)


def test_gates_are_starts_of_keys_that_every_match_holds_and_few():
    words = ["massage therapy", "zone therapy", "trigger point therap*", "tui na", "tuina", "massage*"]
    compiled = relevance._compile(words)
    for (keys, _), (gate, rest, _) in zip(compiled.words, compiled._checks):
        assert any(key.startswith(gate) for key in keys), (gate, keys)
        assert gate not in rest  # a gate that is a whole key is not looked for twice
    # "therap" serves both therapy phrases, "massage" both massage ones: four gates, not six.
    assert set(compiled._gates) == {"massage", "therap", "tui", "tuina"}


def test_a_text_without_a_gate_is_ruled_out_and_one_with_it_is_searched():
    compiled = relevance._compile(["trigger point therap*", "zone therapy"])
    assert compiled.search("SYNTHETIC: no such words here") is None
    assert compiled.search("SYNTHETIC: zone therapy and trigger point therapies").group(0) == "zone therapy"
    assert compiled.search("SYNTHETIC: a therapy of the zone") is None  # the gate alone is not a match
