"""evidence.medline on Biopython's three real MEDLINE fixtures, plus one synthetic record for the
fields none of them carries."""

from __future__ import annotations

import io

import pytest

from evidence import medline, pubmed
from evidence.errors import ParseError
from tests.conftest import EUTILS
from tests.test_pubmed import CASSETTES, RECORD_FILES, records_of

MEDLINE_FILES = [f"biopython__Medline_pubmed_result{i}.txt" for i in (1, 2, 3)]


def medline_records(name: str) -> list[dict]:
    with (EUTILS / name).open(encoding="utf-8") as stream:
        return list(medline.iter_medline(stream, name))


def by_pmid(name: str) -> dict[str, dict]:
    return {r["pmid"]: r for r in medline_records(name)}


@pytest.mark.parametrize("name", MEDLINE_FILES)
def test_every_fixture_gives_records_with_the_xml_keys(name):
    records = medline_records(name)
    text = (EUTILS / name).read_text(encoding="utf-8")
    assert [r["pmid"] for r in records] == [
        line[6:].strip() for line in text.splitlines() if line.startswith("PMID-")
    ]
    for rec in records:
        assert tuple(rec) == pubmed.RECORD_KEYS
        assert rec["title"] and rec["authors"] and rec["abstract"]
        assert rec["publication_type_ids"] == []
        assert all(s["category"] is None for s in rec["abstract_sections"])


def test_result1_values():
    (rec,) = medline_records("biopython__Medline_pubmed_result1.txt")
    assert rec["pmid"] == "12230038"
    assert rec["title"] == "The Bio* toolkits--a brief overview."
    assert rec["authors"] == [
        {
            "last_name": "Mangalam", "fore_name": "Harry", "initials": "H", "collective_name": None,
            "valid": True, "affiliations": ["tacg Informatics, Irvine, CA 92612, USA. hjm@tacgi.com"],
            "identifiers": [],
        }
    ]  # fmt: skip
    assert (rec["journal"], rec["journal_abbrev"]) == ("Briefings in bioinformatics", "Brief Bioinform")
    assert (rec["pub_date"], rec["year"], rec["volume"], rec["issue"], rec["pages"]) == (
        "2002 Sep", 2002, "3", "3", "296-302",
    )  # fmt: skip
    assert (rec["date_completed"], rec["date_revised"], rec["status"]) == ("2003-06-06", "2004-11-17", "MEDLINE")
    assert rec["doi"] is None and rec["pmcid"] is None and rec["article_date"] is None
    assert rec["mesh_terms"][0] == "Computational Biology"
    assert rec["mesh_major"] == ["Computational Biology", "Programming Languages", "Software"]
    # Unstructured: one section without a label, line breaks folded.
    (section,) = rec["abstract_sections"]
    assert section["label"] is None
    assert section["text"].startswith("Bioinformatics research is often difficult to do with commercial software. The Open Source")
    assert rec["abstract"] == section["text"]
    assert (rec["language"], rec["languages"], rec["publication_types"]) == ("eng", ["eng"], ["Journal Article"])


def test_result2_sections_ids_and_names():
    records = by_pmid("biopython__Medline_pubmed_result2.txt")
    scop = records["16403221"]
    assert [s["label"] for s in scop["abstract_sections"]] == ["BACKGROUND", "RESULTS", "CONCLUSION"]
    assert scop["abstract"].startswith("BACKGROUND: Benchmarking algorithms")
    assert "\nCONCLUSION: The modules make the analysis" in scop["abstract"]
    assert (scop["doi"], scop["pmcid"], scop["article_date"]) == ("10.1186/1471-2105-7-10", "PMC1373603", "2006-01-10")
    assert (scop["pub_date"], scop["year"], scop["date_revised"]) == ("2006", 2006, None)
    assert scop["authors"][2] == {
        "last_name": "Saqi", "fore_name": "Mansoor A S", "initials": "MA", "collective_name": None, "valid": True,
        "affiliations": [], "identifiers": [],
    }  # fmt: skip
    # The old format writes the first author's affiliation before the authors.
    assert scop["authors"][0]["affiliations"] == [
        "Bioinformatics, Institute of Cell and Molecular Science, School of Medicine and "
        "Dentistry, Queen Mary, University of London, London EC1 6BQ, UK. j.a.casbon@qmul.ac.uk"
    ]
    assert scop["issns"] == [{"issn": "1471-2105", "type": "Electronic"}]
    assert scop["history"] == [
        {"status": "received", "date": "2005-06-17", "time": None},
        {"status": "accepted", "date": "2006-01-10", "time": None},
        {"status": "aheadofprint", "date": "2006-01-10", "time": None},
    ]
    assert scop["article_ids"] == [
        {"type": "pubmed", "id": "16403221"},
        {"type": "pii", "id": "1471-2105-7-10"},
        {"type": "doi", "id": "10.1186/1471-2105-7-10"},
        {"type": "pmc", "id": "PMC1373603"},
    ]
    assert (scop["pub_model"], scop["publication_status"], scop["country"], scop["nlm_unique_id"]) == (
        "Electronic", "epublish", "England", "100965194",
    )  # fmt: skip
    assert (scop["owner"], scop["citation_subsets"]) == ("NLM", ["IM"])
    diagram = records["16377612"]
    assert [s["label"] for s in diagram["abstract_sections"]] == ["SUMMARY", "AVAILABILITY", "SUPPLEMENTARY INFORMATION"]
    assert diagram["doi"] == "10.1093/bioinformatics/btk021"
    assert diagram["title"] == "GenomeDiagram: a python package for the visualization of large-scale genomic data."
    cluster = records["14871861"]
    assert {k: v for k, v in cluster["authors"][0].items() if k != "affiliations"} == {
        "last_name": "de Hoon", "fore_name": "M J L", "initials": "MJ", "collective_name": None, "valid": True,
        "identifiers": [],
    }  # fmt: skip
    assert cluster["publication_types"] == ["Comparative Study", "Evaluation Studies", "Journal Article", "Validation Studies"]
    # Text before the first label stays, as a section without a label.
    pdb = records["14630660"]["abstract_sections"]
    assert [s["label"] for s in pdb] == [None, "AVAILABILITY"]
    assert pdb[0]["text"].endswith("the parser performs some sanity checking to detect obvious errors.")
    assert records["14630660"]["mesh_major"][:2] == ["Database Management Systems", "Databases, Protein"]


def test_result3_wrapped_mesh_and_doi_from_lid():
    (rec,) = medline_records("biopython__Medline_pubmed_result3.txt")
    assert rec["pmid"] == "23039619"
    assert rec["doi"] == "10.1118/1.4748329"
    assert [s["label"] for s in rec["abstract_sections"]] == ["PURPOSE", "METHODS", "RESULTS", "CONCLUSIONS"]
    assert rec["abstract_sections"][1]["text"].startswith("Two transducers, six scanning paths")
    # "High-Intensity Focused Ultrasound Ablation/adverse effects/instrumentation/*methods"
    # wraps over two lines and is major through its qualifier.
    assert "High-Intensity Focused Ultrasound Ablation" in rec["mesh_terms"]
    assert rec["mesh_major"] == ["High-Intensity Focused Ultrasound Ablation"]
    assert len(rec["mesh_terms"]) == 8
    assert [a["last_name"] for a in rec["authors"]] == ["Qiao", "Shen", "Bai", "Chen"]
    assert (rec["date_completed"], rec["date_revised"]) == ("2012-12-05", None)
    # The wrapped AD line belongs to the author above it, and only to that one.
    assert [a["affiliations"] for a in rec["authors"]] == [
        ["School of Biomedical Engineering, Shanghai Jiao Tong University, Shanghai, People's Republic of China."],
        [], [], [],
    ]  # fmt: skip
    assert rec["mesh_headings"][1] == {
        "descriptor": "High-Intensity Focused Ultrasound Ablation", "ui": None, "major": False,
        "qualifiers": [
            {"name": "adverse effects", "ui": None, "major": False},
            {"name": "instrumentation", "ui": None, "major": False},
            {"name": "methods", "ui": None, "major": True},
        ],
    }  # fmt: skip
    assert rec["issns"] == [{"issn": "0094-2405", "type": "Print"}, {"issn": "0094-2405", "type": "Linking"}]
    assert rec["elocation_ids"] == [{"type": "doi", "id": "10.1118/1.4748329"}]


# SYNTHETIC: no MEDLINE fixture has a collective author, a translated title, registry numbers or
# correction links. Every PMID here is >= 99000000; NCT00000000 is below ClinicalTrials.gov's
# first number, so it names no real trial. The RIN line wraps, as PubMed wraps long lines.
SYNTHETIC = """
PMID- 99000010
STAT- Publisher
DP  - 2021 Jan-Mar
TI  - [SYNTHETIC translated title].
TT  - SYNTHETIC Titel.
AB  - SYNTHETIC abstract without sections; HIV: a label-like word mid-sentence stays.
FAU - SYNTHETIC, Person
AU  - SYNTHETIC P
CN  - SYNTHETIC Study Group
LA  - ger
SI  - ClinicalTrials.gov/NCT00000000
PT  - Journal Article
PT  - Retracted Publication
MH  - *SYNTHETIC Heading
OT  - SYNTHETIC keyword
RIN - SYNTHETIC J. 2021 Jun 6;12(3):45-67. A very long reference that PubMed wraps onto
      another line. PMID: 99000011
EIN - SYNTHETIC J. 2021;1:1. PMID: 99000012
CIN - SYNTHETIC J. 2021;1:2.
"""


def test_synthetic_fields_without_a_real_fixture():
    (rec,) = list(medline.iter_medline(io.StringIO(SYNTHETIC), "synthetic"))
    assert rec["title"] == "[SYNTHETIC translated title]."
    assert rec["title_is_translation"] is True and rec["vernacular_title"] == "SYNTHETIC Titel."
    assert (rec["year"], rec["pub_date"], rec["status"], rec["language"]) == (2021, "2021 Jan-Mar", "Publisher", "ger")
    assert rec["authors"][-1] == {
        "last_name": None, "fore_name": None, "initials": None, "collective_name": "SYNTHETIC Study Group", "valid": True,
        "affiliations": [], "identifiers": [],
    }  # fmt: skip
    assert rec["authors"][0]["initials"] == "P"
    assert rec["registry_numbers"] == [{"bank": "ClinicalTrials.gov", "accession": "NCT00000000"}]
    assert rec["abstract_sections"] == [
        {"label": None, "category": None, "text": "SYNTHETIC abstract without sections; HIV: a label-like word mid-sentence stays."}
    ]
    assert rec["retracted"] is True
    assert rec["corrections"] == [
        {
            "type": "RetractionIn",
            "pmid": "99000011",
            "source": "SYNTHETIC J. 2021 Jun 6;12(3):45-67. A very long reference that PubMed wraps onto another line.",
        },
        {"type": "ErratumIn", "pmid": "99000012", "source": "SYNTHETIC J. 2021;1:1."},
        {"type": "CommentIn", "pmid": None, "source": "SYNTHETIC J. 2021;1:2."},
    ]
    assert (rec["mesh_terms"], rec["mesh_major"], rec["keywords"]) == (
        ["SYNTHETIC Heading"], ["SYNTHETIC Heading"], ["SYNTHETIC keyword"],
    )  # fmt: skip


def test_retraction_link_alone_marks_a_record_retracted():
    text = "PMID- 99000013\nTI  - SYNTHETIC retracted record.\nROF - SYNTHETIC J. 2020. PMID: 99000014\n"
    (rec,) = list(medline.iter_medline(io.StringIO(text), "synthetic"))
    assert rec["retracted"] is False  # ROF: this record is the notice, not the retracted paper
    text = text.replace("ROF -", "RIN -")
    (rec,) = list(medline.iter_medline(io.StringIO(text), "synthetic"))
    assert rec["retracted"] is True


def test_looks_like_medline():
    for name in MEDLINE_FILES:
        assert medline.looks_like_medline((EUTILS / name).read_bytes()[:64])
    assert not medline.looks_like_medline((EUTILS / "biopython__pubmed1.xml").read_bytes()[:64])
    assert not medline.looks_like_medline(b"")
    assert not medline.looks_like_medline(b"\x1f\x8b\x08\x00")


@pytest.mark.parametrize(
    "path_or_text, message",
    [
        ("biopython__pubmed1.xml", "record 1 has no PMID line: not MEDLINE text"),
        ("biopython__esearch1.xml", "record 1 has no PMID line"),
    ],
)
def test_wrong_text_raises_parse_error(path_or_text, message):
    with (EUTILS / path_or_text).open(encoding="utf-8") as stream:
        with pytest.raises(ParseError, match=f"^{path_or_text}: {message}"):
            list(medline.iter_medline(stream, path_or_text))


def test_binary_file_raises_parse_error(tmp_path):
    path = tmp_path / "binary.nbib"
    path.write_bytes(bytes(range(128, 256)) * 8)
    with path.open(encoding="utf-8") as stream:
        with pytest.raises(ParseError, match=r"binary\.nbib: not text .*expected a MEDLINE/\.nbib file\."):
            list(medline.iter_medline(stream, "binary.nbib"))


def test_same_record_in_both_formats_agrees():
    """Core fields must agree for a PMID present as both XML and MEDLINE in the fixtures."""
    xml = {r["pmid"]: r for name in RECORD_FILES + CASSETTES for r in records_of(name)}
    text = {r["pmid"]: r for name in MEDLINE_FILES for r in medline_records(name)}
    shared = sorted(set(xml) & set(text))
    if not shared:
        pytest.skip("no PMID is in both an XML and a MEDLINE fixture today (PROVENANCE.md)")
    for pmid in shared:
        for key in ("title", "journal", "journal_abbrev", "year", "pub_date", "volume", "issue",
                    "pages", "doi", "pmcid", "publication_types", "mesh_terms", "language"):  # fmt: skip
            assert xml[pmid][key] == text[pmid][key], (pmid, key)
        assert [a["last_name"] for a in xml[pmid]["authors"]] == [a["last_name"] for a in text[pmid]["authors"]]


# SYNTHETIC: the shape of a current PubMed MEDLINE record (two LID lines, which Bio.Medline
# joins into one string, a group author between persons, AUID and several AD lines, PHST
# with times), which none of the three old Biopython fixtures has.
SYNTHETIC_CURRENT = """PMID- 99000020
OWN - NLM
STAT- Publisher
IS  - 0000-0000 (Electronic)
IS  - 0000-0001 (Linking)
DP  - 2021 May 10
TI  - SYNTHETIC current record.
LID - S0000-0000(21)00000-0 [pii]
LID - 10.99999/synthetic.1 [doi]
FAU - SYNTHETIC, First
AU  - SYNTHETIC F
AUID- ORCID: 0000-0000-0000-0000
AD  - SYNTHETIC Department One, a long affiliation that PubMed wraps onto a second line
      because it is long.
AD  - SYNTHETIC Department Two.
CN  - SYNTHETIC Group
FAU - SYNTHETIC, Second
AU  - SYNTHETIC S
LA  - eng
LA  - ger
PT  - Journal Article
PHST- 2021/02/22 00:00 [received]
PHST- 2021/05/13 20:14 [entrez]
AID - S0000-0000(21)00000-0 [pii]
AID - 10.99999/synthetic.1 [doi]
PST - aheadofprint
"""


def test_current_record_shape_keeps_order_ids_and_history():
    (rec,) = list(medline.iter_medline(io.StringIO(SYNTHETIC_CURRENT), "synthetic"))
    assert [a["collective_name"] or a["last_name"] for a in rec["authors"]] == [
        "SYNTHETIC", "SYNTHETIC Group", "SYNTHETIC",
    ]  # fmt: skip
    first = rec["authors"][0]
    assert first["affiliations"] == [
        "SYNTHETIC Department One, a long affiliation that PubMed wraps onto a second line because it is long.",
        "SYNTHETIC Department Two.",
    ]
    assert first["identifiers"] == [{"source": "ORCID", "id": "0000-0000-0000-0000"}]
    assert rec["authors"][2]["affiliations"] == []
    # Bio.Medline joins the two LID lines; the DOI must not swallow the pii before it.
    assert rec["doi"] == "10.99999/synthetic.1"
    assert rec["elocation_ids"] == [
        {"type": "pii", "id": "S0000-0000(21)00000-0"}, {"type": "doi", "id": "10.99999/synthetic.1"},
    ]  # fmt: skip
    assert rec["languages"] == ["eng", "ger"]
    assert rec["history"] == [
        {"status": "received", "date": "2021-02-22", "time": "00:00"},
        {"status": "entrez", "date": "2021-05-13", "time": "20:14"},
    ]
    assert rec["publication_status"] == "aheadofprint"
