"""Biopython's `Bio.Entrez.read` as an independent reference for `evidence.pubmed`.

Both parse every real PubMed XML fixture; the PMIDs, titles, abstract sections, author counts,
publication types and MeSH descriptor names must agree. Where the two legitimately differ in
form, the reference side is brought to our conventions, and each such step says why:

- Markup: Biopython (escape=False) keeps inline tags (<i>, <sup>, MathML <math> without the
  mml: prefix) as raw text inside its strings; we render them (<i> dropped, <sup>/<sub> and
  MathML scripts as Unicode scripts, "³He"). So a string of Biopython's that holds tags is read
  back as an XML fragment and rendered by `pubmed._rich_text`: what is compared is that both
  parsers hand the renderer the same text and markup. The rendering itself is tested on known
  values in tests/test_pubmed.py. Strings without tags get the same whitespace folding.
- Empty ArticleTitle: Biopython gives "", our `title` falls back to VernacularTitle, so the
  reference takes VernacularTitle when its ArticleTitle is empty.
- Abstract sections: we drop an AbstractText with no text; none of the fixtures has one, so
  the section lists must match one for one, label included (Biopython: `.attributes`).
- Container shape: with the 2015 DTD Bio returns a list of articles, with newer ones a dict
  holding "PubmedArticle"; both are accepted.

Offline: every DTD these fixtures name (pubmed_150101 … 250101) ships with Biopython 1.88.
Biopython refuses http:// DTD URLs outright (the 2015 capture and the NLM excerpts use them),
so the reference gets the DOCTYPE's URL rewritten to https:// — the DTD itself is read from
Biopython's own folder, never fetched. `urlopen` is replaced so a missing DTD fails the test
instead of reaching the internet. The 2015 capture's leading blank line is stripped for
Biopython too, which expat also rejects.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as xml_escape

import pytest

from evidence import pubmed
from tests.test_pubmed import CASSETTES, RECORD_FILES, fixture_bytes

Entrez = pytest.importorskip("Bio.Entrez")
EntrezParser = pytest.importorskip("Bio.Entrez.Parser")

# A tag starts with a letter right after "<": "p<0.05" in an abstract is text, not a tag.
_TAG = re.compile(r"</?[A-Za-z][\w:.-]*(?:\s[^<>]*)?/?>")
# The same whitespace folding as evidence.pubmed (see its _WS).
_WS = re.compile(r"\s*[ \t\n\r]\s*")
_DOCTYPE_HTTP = re.compile(rb'(<!DOCTYPE[^>]*")http://')


def plain(value) -> str:
    text = str(value)
    if not _TAG.search(text):
        return _WS.sub(" ", text).strip()
    # Text between tags is raw ("p<0.05", "&"): escape it so the fragment parses as XML.
    pieces, last = [], 0
    for tag in _TAG.finditer(text):
        pieces.append(xml_escape(text[last : tag.start()]))
        pieces.append(tag.group(0))
        last = tag.end()
    pieces.append(xml_escape(text[last:]))
    fragment = ET.fromstring("<fragment>" + "".join(pieces) + "</fragment>")
    return pubmed._rich_text(fragment) or ""


@pytest.fixture(autouse=True)
def no_dtd_downloads(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("Bio.Entrez tried to download a DTD; a test must stay offline.")

    monkeypatch.setattr(EntrezParser, "urlopen", refuse)


def biopython_articles(raw: bytes) -> list:
    data = _DOCTYPE_HTTP.sub(rb"\1https://", raw.lstrip(), count=1)
    parsed = Entrez.read(io.BytesIO(data))
    return list(parsed["PubmedArticle"]) if isinstance(parsed, dict) else list(parsed)


def reference(article) -> dict:
    citation = article["MedlineCitation"]
    art = citation["Article"]
    return {
        "pmid": str(citation["PMID"]),
        "title": plain(art.get("ArticleTitle", "")) or plain(art.get("VernacularTitle", "")),
        "sections": [
            (s.attributes.get("Label") or None, plain(s))
            for s in art.get("Abstract", {}).get("AbstractText", [])
        ],
        "authors": len(art.get("AuthorList", [])),
        "publication_types": [str(t) for t in art.get("PublicationTypeList", [])],
        "mesh_terms": [str(h["DescriptorName"]) for h in citation.get("MeshHeadingList", [])],
    }


def ours(rec: dict) -> dict:
    return {
        "pmid": rec["pmid"],
        "title": rec["title"],
        "sections": [(s["label"], s["text"]) for s in rec["abstract_sections"]],
        "authors": len(rec["authors"]),
        "publication_types": rec["publication_types"],
        "mesh_terms": rec["mesh_terms"],
    }


@pytest.mark.parametrize("name", [n for n in RECORD_FILES if not n.endswith(".gz")] + CASSETTES)
def test_same_fields_as_biopython(name):
    raw = fixture_bytes(name)
    mine = [ours(r) for r in pubmed.parse_efetch(raw, name)]
    theirs = [reference(a) for a in biopython_articles(raw)]
    assert [r["pmid"] for r in mine] == [r["pmid"] for r in theirs]
    for a, b in zip(mine, theirs):
        assert a == b, a["pmid"]


def test_the_comparison_sees_markup_and_mathml():
    # Guards the guard: the files with markup must really reach Biopython with tags in them.
    (article,) = biopython_articles(fixture_bytes("biopython__pubmed6.xml"))
    assert "<i>" in str(article["MedlineCitation"]["Article"]["ArticleTitle"])
    (article,) = biopython_articles(fixture_bytes("biopython__pubmed7.xml"))
    assert "<math" in str(article["MedlineCitation"]["Article"]["Abstract"]["AbstractText"][0])
