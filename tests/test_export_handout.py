"""The handout's content rules, its safety against hostile record text, and its reading level."""

from __future__ import annotations

import ast
import copy
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest

import evidence.export
from evidence.export import render
from evidence.export.citation import finding, vancouver
from evidence.errors import ExportError
from evidence.export.handout import (
    CAUTION,
    NEGATIVE,
    TEMPLATES,
    build_handout,
    citation_parts,
    diagnosis_codes,
    excerpt,
    md_escape,
)
from tests.test_export_citation import real_records

# Ten real records of several designs: reviews, randomized trials, a cross-sectional study,
# a narrative review with no structured abstract, and a retracted paper.
TEN = [
    "33984499", "28786991", "33856845", "23121403", "33609634",
    "33984498", "34029674", "34090550", "33896602", "36400559",
]
SYNTHETIC_TITLE = "SYNTHETIC <script>alert(1)</script> & <b>x</b>"


def make_context(**changes) -> dict:
    """A context as the CLI builds it; the condition text is the shipped low-back-pain file's."""
    context = {
        "condition": {
            "slug": "low-back-pain",
            "title": "Low back pain",
            "description": (
                "Low back pain is pain, stiffness or tightness in the lower part of the back, "
                "below the ribs and above the legs. It is one of the most common reasons people "
                "visit a doctor. It can start suddenly or last for months."
            ),
            "icd10": ["M54.50", "M54.51", "M54.59"],
        },
        "search": {
            "term": '("Low Back Pain"[Mesh] OR "low back pain"[tiab]) AND ("Massage"[Mesh] '
            'OR massage[tiab] OR "myofascial release"[tiab]) NOT (animals[mh] NOT humans[mh])',
            "run_at": "2021-06-03T14:05:00+00:00",
            "hits": 1234,
            "database": "PubMed",
        },
        "counts": {
            "found": 14,
            "on_topic": 1,
            "by_fit": {"direct": 1, "partial": 0, "mention": 6, "none": 7},
            "included": 11,
            "excluded": 3,
            "excluded_reasons": {"not about massage therapy": 2, "animal study": 1},
            "retracted": 1,
            "superseded": 0,
            "by_level": {"Systematic review of studies": 3},
        },
        "selection": "curated",
        "generated_at": "2026-11-26T12:00:00",
        "tool_version": "0.1.0",
    }
    context.update(changes)
    return context


# Condition data as issue 10's condition files give it (`curation.export_context`), for five
# conditions whose handouts differ. Condition data, not citations: the ICD-10-CM codes and
# descriptions are the code set's (FY2026, checked with simple-icd-10-cm), the CPT words are
# our own, the safety lines are DOMAIN.md's.
CONDITIONS = {
    "constipation": {
        "slug": "constipation",
        "title": "Constipation",
        "description": (
            "Constipation means having bowel movements less often than usual, or stools that "
            "are hard and difficult to pass."
        ),
        "icd10": [
            {"code": "K59.00", "description": "Constipation, unspecified", "category": False},
            {"code": "K59.01", "description": "Slow transit constipation", "category": False},
            {"code": "K59.02", "description": "Outlet dysfunction constipation", "category": False},
            {"code": "K59.03", "description": "Drug induced constipation", "category": False},
            {"code": "K59.04", "description": "Chronic idiopathic constipation", "category": False},
            {"code": "K59.09", "description": "Other constipation", "category": False},
        ],
        "handout": {
            "diary": "stool",
            "letter": True,
            "provider": "a licensed massage therapist",
            "cpt": [{"code": "97124", "words": "massage, each 15 minutes"}],
            "safety": None,
        },
    },
    "insomnia": {
        "slug": "insomnia",
        "title": "Insomnia (trouble sleeping)",
        "description": (
            "Insomnia means having trouble falling asleep or staying asleep, or waking too early."
        ),
        "icd10": [
            {"code": "G47.00", "description": "Insomnia, unspecified", "category": False},
            {"code": "G47.09", "description": "Other insomnia", "category": False},
            {"code": "F51.01", "description": "Primary insomnia", "category": False},
            {"code": "F51.02", "description": "Adjustment insomnia", "category": False},
            {
                "code": "F51.09",
                "description": "Other insomnia not due to a substance or known physiological "
                "condition",
                "category": False,
            },
        ],
        # No [handout] table: the defaults apply except the diary.
        "handout": {"diary": "sleep"},
    },
    "lymphedema": {
        "slug": "lymphedema",
        "title": "Lymphedema",
        "description": (
            "Lymphedema is swelling, most often in an arm or a leg, caused by fluid that builds "
            "up under the skin."
        ),
        "icd10": [
            {"code": "I89.0", "description": "Lymphedema, not elsewhere classified",
             "category": False},
            {"code": "I97.2", "description": "Postmastectomy lymphedema syndrome",
             "category": False},
            {"code": "Q82.0", "description": "Hereditary lymphedema", "category": False},
        ],
        "handout": {
            "diary": "limb",
            "letter": True,
            "provider": "a certified lymphedema therapist",
            "cpt": [{"code": "97140", "words": "manual lymph drainage, each 15 minutes"}],
            "safety": (
                "Sudden swelling of one leg can be a blood clot: see a doctor before any massage."
            ),
        },
    },
    "labor-pain": {
        "slug": "labor-pain",
        "title": "Pain during labor",
        "description": "Labor pain is the pain a woman feels while giving birth.",
        "icd10": [],
        "handout": {
            "diary": "pain",
            "letter": False,
            "provider": "a partner, doula or midwife who has learned massage for labor",
            "cpt": [],
            "safety": None,
        },
    },
    "preterm-infants": {
        "slug": "preterm-infants",
        "title": "Babies born early (preterm infants)",
        "description": "A preterm baby is a baby born more than three weeks before the due date.",
        "icd10": [],
        "handout": {
            "diary": "baby",
            "letter": False,
            "provider": "your baby's nurses or a therapist trained in baby massage",
            "cpt": [],
            "safety": "Learn baby massage from your baby's care team before you start.",
        },
    },
}


def condition_context(slug: str, **changes) -> dict:
    """`make_context` with one of CONDITIONS in place of low back pain."""
    return make_context(condition=copy.deepcopy(CONDITIONS[slug]), **changes)


def synthetic_record(pmid: str = "99000010", **changes) -> dict:
    """A copy of a real record's shape with a SYNTHETIC title, for hostile-text tests."""
    record = real_records("23121403")[0]
    record.update({"pmid": pmid, "title": SYNTHETIC_TITLE, "doi": None, "pmcid": None, **changes})
    return record


class _Text(HTMLParser):
    """The visible text of an HTML page, split into blocks; elements of class `rec` dropped."""

    BLOCKS = {"p", "li", "td", "th", "h1", "h2", "h3", "div", "code", "footer", "header"}
    VOID = {"br", "meta", "link", "img", "hr", "input"}

    def __init__(self, drop_records: bool):
        super().__init__(convert_charrefs=True)
        self.drop_records = drop_records
        self.stack: list[tuple[str, bool]] = []
        self.blocks: list[str] = [""]
        self.tags: list[str] = []

    def _hidden(self) -> bool:
        return any(hidden for _, hidden in self.stack)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag in self.VOID:
            if tag == "br" and not self._hidden():
                self.blocks[-1] += " "
            return
        classes = (dict(attrs).get("class") or "").split()
        hidden = tag in ("style", "title", "script") or (self.drop_records and "rec" in classes)
        self.stack.append((tag, hidden))
        if tag in self.BLOCKS:
            self.blocks.append("")

    def handle_endtag(self, tag):
        while self.stack:
            open_tag, _ = self.stack.pop()
            if open_tag == tag:
                break
        if tag in self.BLOCKS:
            self.blocks.append("")

    def handle_data(self, data):
        if not self._hidden():
            self.blocks[-1] += data


def html_blocks(html: str, drop_records: bool) -> tuple[list[str], list[str]]:
    parser = _Text(drop_records)
    parser.feed(html)
    blocks = [" ".join(b.split()) for b in parser.blocks]
    return [b for b in blocks if b], parser.tags


def our_prose(html: str) -> str:
    """Our own words: record-derived parts removed, each heading or cell read as a sentence."""
    blocks, _ = html_blocks(html, drop_records=True)
    # A heading, table cell or list item is read on its own; end it like a sentence so the
    # formulas do not glue a page of headings into one 200-word sentence.
    return " ".join(b if b[-1] in ".?!:" else b + "." for b in blocks)


def with_fit(records: list[dict]) -> list[dict]:
    """Records with their real topic fit for low back pain, as `curation.select` gives them."""
    from evidence import queries, relevance

    condition = queries.get_condition("low-back-pain")
    return [{**r, **relevance.fit_record(r, condition)} for r in records]


@pytest.fixture(scope="module")
def ten():
    return with_fit(real_records(*TEN))


@pytest.fixture(scope="module")
def html(ten):
    return render("html", ten, make_context()).decode("utf-8")


def test_handout_states_condition_date_and_disclaimer(html):
    text = " ".join(html_blocks(html, drop_records=False)[0])
    assert "Low back pain is pain, stiffness or tightness" in text
    assert "as of June 3, 2021" in text
    assert "This is a summary of research, not medical advice." in text


def test_key_messages_are_at_most_three_and_built_by_rule(ten):
    model = build_handout(ten, make_context())
    messages = model["key_messages"]
    assert 1 <= len(messages) <= 3
    # 1: the counts, from the context and the records' own levels: records, not studies.
    levels = [r["level"] for r in ten]
    assert messages[0]["lead"].startswith(
        "The search returned 14 records. Only 1 of them studies massage for low back pain. "
        "This sheet shows 10:"
    )
    assert f"{levels.count(1)} reviews of many studies" in messages[0]["lead"]
    assert f"{levels.count(2)} randomized trials" in messages[0]["lead"]
    # 2: the strongest ON-TOPIC study's own conclusion, quoted and attributed. Two other
    # level-1 reviews on the sheet (tuberculosis, vocational rehabilitation) are off topic.
    assert messages[1]["pmid"] == "33984499"
    strongest = next(r for r in ten if r["pmid"] == "33984499")
    assert messages[1]["quote"] == finding(strongest)
    assert messages[1]["who"] == f"{strongest['authors'][0]['last_name']} et al."
    assert messages[1]["said_by"] == f"The authors of a {strongest['year']} review of many studies"
    # Nothing is quoted from a study that is not about massage for the condition.
    on_topic = {r["pmid"] for r in ten if r["fit"] in ("direct", "partial")}
    assert {m["pmid"] for m in messages} - {None} <= on_topic


def test_a_review_that_says_its_evidence_is_weak_is_quoted_when_on_topic():
    recs = with_fit(real_records("33984499", "33856845"))
    # Fit set by hand: the rule under test is which sentence is quoted, not topic fit, and
    # no real on-topic review in the fixtures calls its evidence weak.
    recs[1]["fit"] = "direct"
    messages = build_handout(recs, make_context())["key_messages"]
    cautious = next(r for r in recs if r["pmid"] == messages[2]["pmid"])
    assert cautious["level"] == 1
    assert messages[2]["quote"] in finding(cautious)
    assert CAUTION.search(messages[2]["quote"])


def test_no_caution_message_when_no_review_says_so():
    recs = with_fit(real_records("34090550", "33984498"))  # two trials, no review, off topic
    messages = build_handout(recs, make_context())["key_messages"]
    assert len(messages) == 1
    assert all("weak" not in m["lead"] for m in messages)


def test_default_selection_says_a_rule_picked_the_studies():
    model = build_handout(with_fit(real_records("34090550")), make_context(selection="default"))
    assert "A fixed rule chose it. No person has checked it yet." in model["key_messages"][0]["lead"]
    assert model["doctor"]["selection"] == "A fixed rule, not a person, chose these studies."


def test_fewer_than_three_on_topic_studies_is_said_plainly_and_never_padded():
    lead = build_handout(with_fit(real_records("33984499")), make_context())["key_messages"][0]["lead"]
    assert "Only 1 of them studies massage for low back pain." in lead
    context = make_context(counts={"found": 40, "on_topic": 0, "included": 0, "excluded": 40})
    lead = build_handout([], context)["key_messages"][0]["lead"]
    assert lead == (
        "The search returned 40 records. None of them study massage for low back pain. "
        "This sheet shows none."
    )
    context = make_context(counts={"found": 1200, "on_topic": 35, "included": 10, "excluded": 1190})
    lead = build_handout(with_fit(real_records("33984499")), context)["key_messages"][0]["lead"]
    assert lead.startswith("The search returned 1,200 records. 35 of them study massage for low back pain.")


def test_a_shortened_conclusion_keeps_its_negative_findings():
    # 33984499's conclusion: two sentences, the second "…significant effect on reducing back
    # disability…, but no significant effect on reducing pain intensity…". A 240-character
    # cut used to keep the first sentence alone.
    said = finding(real_records("33984499")[0])
    quote = excerpt(said, 240)
    assert "no significant effect on reducing pain intensity" in quote
    assert quote == said  # both sentences are whole; nothing was dropped
    long = "Massage helped a little. " * 12 + "It did not reduce pain at six months."
    quote = excerpt(long, 100)
    assert quote.endswith("[…] It did not reduce pain at six months.")
    assert quote.startswith("Massage helped a little.")


def test_negative_words_cover_how_abstracts_report_no_effect():
    for said in (
        "There was no significant difference between groups.",
        "Massage was not superior to usual care.",
        "The intervention did not reduce pain.",
        "Adverse events were rare.",
        "The evidence is insufficient to draw conclusions.",
        "Results were non-significant at follow-up.",
    ):
        assert NEGATIVE.search(said), said
    assert not NEGATIVE.search("Massage reduced pain intensity compared with usual care.")


def test_caution_words_match_what_reviews_write():
    for said in (
        "The certainty of evidence was very low.",
        "Larger studies are needed to further examine these connections.",
        "Only short-term effects were assessed.",
        "Further high-quality research is required.",
    ):
        assert CAUTION.search(said), said
    assert not CAUTION.search("Massage reduced pain intensity compared with usual care.")


def test_table_lists_each_study_with_finding_and_full_citation(ten, html):
    model = build_handout(ten, make_context())
    text = " ".join(html_blocks(html, drop_records=False)[0])
    assert [s["pmid"] for s in model["studies"]] == TEN
    for row, record in zip(model["studies"], ten):
        assert row["citation"] == vancouver(record, max_authors=3)
        assert row["citation"] in text
        said = finding(record)
        if said and row["finding"] is None:
            # Quoted whole in a key point already: the row points there instead.
            assert row["finding_ref"].startswith("Its authors' words are in key point")
            assert any(m["pmid"] == row["pmid"] and m["quote"] == said for m in model["key_messages"])
        elif said:
            # Whole sentences of the authors' own words, in order; gaps marked […].
            position = 0
            for part in row["finding"].split(" […]"):
                part = part.strip()
                if part:
                    position = said.index(part, position) + len(part)
        else:
            assert row["finding"] is None
    assert "The study has no line in its summary" in text  # 36400559 has none
    assert "Free full text" in html and "PMCID: PMC5546677" in html  # 28786991


def test_citation_parts_give_the_citation_back_with_identifiers_whole(ten):
    for record in ten:
        citation = vancouver(record, max_authors=3)
        parts = citation_parts(citation, record["title"])
        assert "".join(p["text"] for p in parts) == citation
        ids = [p["text"] for p in parts if p["kind"] == "id"]
        assert f"PMID: {record['pmid']}" in ids
        if record.get("doi"):
            assert f"doi: {record['doi']}" in ids  # whole, without the closing period
        if record.get("pmcid"):
            assert f"PMCID: {record['pmcid']}" in ids
        assert [p["text"] for p in parts if p["kind"] == "title"] == [record["title"]]
    # A title the citation does not hold verbatim is simply not marked.
    assert all(p["kind"] != "title" for p in citation_parts("A. B. PMID: 1.", "SYNTHETIC"))


def test_html_never_breaks_inside_an_identifier(ten, html):
    spans = re.findall(r'<span class="id">(.*?)</span>', html)
    for record in ten:
        assert f"PMID: {record['pmid']}" in spans
        if record.get("doi"):
            assert f"doi: {record['doi']}" in spans
    css = (TEMPLATES / "handout.css").read_text(encoding="utf-8")
    # The rules that broke DOIs mid-identifier and the search term mid-word.
    assert "anywhere" not in css and "break-all" not in css
    assert re.search(r"\.id \{[^}]*display: inline-block", css)


def test_retracted_and_concern_flagged_studies_never_appear_as_support():
    recs = with_fit(real_records("33984499", "33104149", "34090550"))  # 33104149: a real retraction
    concern = with_fit(real_records("33609634"))[0]
    concern["flags"] = list(concern.get("flags") or []) + ["expression-of-concern"]
    model = build_handout(recs + [concern], make_context())
    shown = [s["pmid"] for s in model["studies"]]
    assert shown == ["33984499", "34090550"]
    assert {m["pmid"] for m in model["key_messages"]} <= {None, *shown}
    assert "This sheet shows 2:" in model["key_messages"][0]["lead"]
    left = {x["pmid"]: x["reason"] for x in model["left_out"]}
    assert left == {
        "33104149": "The journal retracted it.",
        "33609634": "The journal raised concerns about it.",
    }


def test_doctor_section_gives_the_exact_term_date_and_counts(html):
    context = make_context()
    term = context["search"]["term"]
    assert '<code class="term rec">' in html
    import html as html_lib

    code = re.search(r'<code class="term rec">(.*?)</code>', html, re.S).group(1)
    assert html_lib.unescape(code) == term
    text = " ".join(html_blocks(html, drop_records=False)[0])
    assert "Run on June 3, 2021: 1,234 results." in text
    assert "Records found: 14." in text
    assert "About massage for this problem: 1. direct: 1; partial: 0; in passing: 6; not about it: 7." in text
    assert "Not shown: 3. Reasons: animal study: 1; not about massage therapy: 2." in text
    assert "Levels come from the publication type alone" in text
    # On paper the link cannot be clicked: the address to paste the search into is printed.
    assert re.search(
        r'<span class="print-only"> On paper: go to <span class="rec url">'
        r"https://pubmed.ncbi.nlm.nih.gov/</span> and paste in the search above.</span>",
        html,
    )


def test_fill_in_parts_diary_questions_and_letter(html):
    # No [handout] table in the context: SHARED_INTERFACES.md's defaults apply.
    text = " ".join(html_blocks(html, drop_records=False)[0])
    assert html.count('class="box"') == 11  # 0 to 10
    for words in (
        "Your pain diary",
        "Pain on average (0-10)",
        "enjoying life (0-10)",
        "daily tasks (0-10)",
        "A drop of about 2 points",
        "How often",
        "What set it off",
        "What I tried",
        "What is my main problem?",
        "What do I need to do?",
        "Why is it important to do this?",
        "Is massage safe for me?",
        "Should I see a licensed massage therapist?",
        "Can you write a letter to my insurer about why I need this care?",
        "A licensed massage therapist.",
        "M54.50 M54.51 M54.59",
        "97124 massage, each 15 minutes",
        "97140 manual (hands-on) therapy, each 15 minutes",
        "What a referral or letter of medical necessity needs",
        "minutes per visit, visits per week, number of weeks",
        "signature",
        "Your insurer may not pay for massage just to stay well.",
    ):
        assert words in text, words
    assert "Safety:" not in text


def test_markdown_and_html_come_from_the_same_model(ten):
    context = make_context()
    md = render("md", ten, context).decode("utf-8")
    model = build_handout(ten, context)
    for message in model["key_messages"]:
        assert message["lead"] in md
    for row in model["studies"]:
        assert md_escape(row["citation"]) in md
    assert context["search"]["term"] in md  # inside a code fence, verbatim
    assert model["disclaimer"] in md


def test_html_shows_a_synthetic_script_title_as_text():
    record = synthetic_record()
    html = render("html", [record], make_context()).decode("utf-8")
    blocks, tags = html_blocks(html, drop_records=False)
    assert "script" not in tags
    ours = render("html", real_records("23121403"), make_context()).decode("utf-8")
    assert tags.count("b") == html_blocks(ours, drop_records=False)[1].count("b")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;x&lt;/b&gt;" in html
    assert any(SYNTHETIC_TITLE in b for b in blocks)


def test_markdown_escapes_record_text():
    title = "SYNTHETIC *bold* _it_ [link](http://127.0.0.1/) <b>x</b> | `c`"
    record = synthetic_record(title=title)
    md = render("md", [record], make_context()).decode("utf-8")
    assert (
        "SYNTHETIC \\*bold\\* \\_it\\_ \\[link\\](http://127.0.0.1/) "
        "\\<b\\>x\\</b\\> \\| \\`c\\`"
    ) in md
    assert "<b>x</b>" not in md


def test_markdown_escape_neutralises_block_markers_and_fences():
    assert md_escape("# SYNTHETIC heading") == "\\# SYNTHETIC heading"
    assert md_escape("1. SYNTHETIC list") == "\\1. SYNTHETIC list"
    assert md_escape("- SYNTHETIC\nitem") == "\\- SYNTHETIC item"
    context = make_context(search={"term": "massage[tiab] ``` SYNTHETIC", "run_at": None})
    md = render("md", [], context).decode("utf-8")
    assert "````text\nmassage[tiab] ``` SYNTHETIC\n````" in md


def test_empty_selection_still_renders_a_useful_handout():
    html = render("html", [], make_context(search={})).decode("utf-8")
    text = " ".join(html_blocks(html, drop_records=False)[0])
    assert "This sheet shows none." in text
    assert "The date of the search was not recorded." in text
    assert "The search words were not recorded." in text


def reading_grades(prose: str) -> dict:
    """The four formulas' figures for `prose` (Dale-Chall as its raw score)."""
    import textstat

    return {
        "Flesch-Kincaid": textstat.flesch_kincaid_grade(prose),
        "SMOG": textstat.smog_index(prose),
        "Coleman-Liau": textstat.coleman_liau_index(prose),
        # textstat 0.7.4 counts every word not on the Dale-Chall list of 3,000 familiar
        # words as hard, its plurals ("studies", "words") and numerals included, so it reads
        # higher than the hand count; a raw score below 7.0 is grade 8 or below.
        "Dale-Chall": textstat.dale_chall_readability_score(prose),
    }


# Dale-Chall's raw score to school grade (Chall and Dale 1995): 6.0-6.9 is grades 7-8.
DALE_CHALL_GRADE_8 = 6.9


def test_textstat_dale_chall_works_offline():
    import textstat

    # Its list of familiar words ships inside the package (no download at run time).
    assert textstat.dale_chall_readability_score("The cat sat on the mat.") < 5
    assert textstat.dale_chall_readability_score(
        "Pharmacokinetic heterogeneity necessitates individualized dosing algorithms."
    ) > 9


def test_reading_level_of_our_own_prose_is_grade_8_or_below(html):
    import textstat

    prose = our_prose(html)
    # Sanity: the record-derived parts are really gone, and our prose is really there.
    assert "myofascial" not in prose and "Chen Z" not in prose and "[tiab]" not in prose
    assert "What is my main problem?" in prose and "not medical advice" in prose
    assert textstat.lexicon_count(prose) > 250
    grades = reading_grades(prose)
    print("reading grade:", grades)
    assert grades["Flesch-Kincaid"] <= 8, (grades, prose)
    assert grades["SMOG"] <= 8, (grades, prose)
    assert grades["Coleman-Liau"] <= 8, (grades, prose)
    assert grades["Dale-Chall"] <= DALE_CHALL_GRADE_8, (grades, prose)


@pytest.mark.parametrize("slug", sorted(CONDITIONS))
def test_reading_level_holds_for_every_kind_of_handout(ten, slug):
    html = render("html", ten, condition_context(slug)).decode("utf-8")
    grades = reading_grades(our_prose(html))
    print(slug, grades)
    assert grades["Flesch-Kincaid"] <= 8 and grades["SMOG"] <= 8, grades
    assert grades["Coleman-Liau"] <= 8, grades
    assert grades["Dale-Chall"] <= DALE_CHALL_GRADE_8, grades


def test_reading_level_check_would_catch_hard_prose(html):
    # The same measures on the record-derived text (titles, quotes, citations, the search)
    # fail: they are not too lax to notice hard text.
    blocks, _ = html_blocks(html, drop_records=False)
    ours, _ = html_blocks(html, drop_records=True)
    theirs = " ".join(b for b in blocks if b not in set(ours))
    grades = reading_grades(theirs)
    assert grades["Flesch-Kincaid"] > 8, grades
    assert grades["Dale-Chall"] > DALE_CHALL_GRADE_8, grades


def test_export_package_keeps_to_its_layer():
    allowed = {"evidence.errors", "evidence.grading", "evidence.export", "jinja2"}
    banned = {"evidence.store", "evidence.cli", "click", "sqlite_utils", "requests"}
    package = Path(evidence.export.__file__).parent
    for path in package.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not any(name == b or name.startswith(b + ".") for b in banned), (path, name)
                top = name.split(".")[0]
                assert (
                    name in allowed
                    or name.startswith("evidence.export")
                    or top in ("weasyprint", "__future__")
                    or top in _stdlib()
                ), (path, name)


def test_weasyprint_is_imported_only_inside_the_pdf_function():
    package = Path(evidence.export.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert not any(n.startswith("weasyprint") for n in names), path


def _stdlib() -> set[str]:
    import sys

    return set(sys.stdlib_module_names)


def test_records_are_not_changed_by_rendering(ten):
    before = copy.deepcopy(ten)
    render("html", ten, make_context())
    render("md", ten, make_context())
    assert ten == before


# --- the parts that depend on the condition ------------------------------------------------


def condition_html(slug: str, records=None) -> str:
    records = real_records(*TEN) if records is None else records
    return render("html", records, condition_context(slug)).decode("utf-8")


def visible_text(html: str) -> str:
    return " ".join(html_blocks(html, drop_records=False)[0])


DIARY_HEADINGS = {
    "constipation": "Your stool diary",
    "insomnia": "Your sleep diary",
    "lymphedema": "Your swelling diary",
    "labor-pain": "Your pain diary",
    "preterm-infants": "Your baby's diary",
}


@pytest.mark.parametrize("slug", sorted(CONDITIONS))
def test_each_condition_gets_the_diary_that_measures_its_own_thing(slug):
    html = condition_html(slug, records=real_records("34090550"))
    text = visible_text(html)
    kind = CONDITIONS[slug]["handout"]["diary"]
    assert DIARY_HEADINGS[slug] in text
    assert f'class="diary diary-{kind}"' in html
    pain = kind == "pain"
    # Only a pain diary prints the 0-10 scale, the PEG items and the 2-point change.
    assert html.count('class="box"') == (11 if pain else 0)
    assert ("enjoying life (0-10)" in text) is pain
    assert ("A drop of about 2 points" in text) is pain
    expected = {
        "stool": ["How many times I passed stool", "Stool: hard, normal, soft or watery"],
        "sleep": ["Time I went to bed", "Minutes to fall asleep", "Times I woke up"],
        "limb": ["Around it at spot 1", "How clothes, rings or shoes fit"],
        "baby": ["Feeds: how many, how long", "Weight, if weighed", "Hours of sleep"],
        "pain": ["Pain on average (0-10)"],
    }[kind]
    for column in expected:
        assert column in text, column


def test_mood_diary_names_the_free_questionnaires():
    context = make_context(condition={"slug": "anxiety-depression", "title": "Anxiety",
                                      "handout": {"diary": "mood"}})
    model = build_handout(real_records("34090550"), context)
    assert model["diary"]["heading"] == "Your mood diary"
    assert "GAD-7" in model["diary"]["note"] and "PHQ-9" in model["diary"]["note"]
    assert model["diary"]["scale"] is None and model["diary"]["change"] is None
    assert "GAD-7 and PHQ-9" in [w["term"] for w in model["words"]["items"]]


@pytest.mark.parametrize("slug", sorted(CONDITIONS))
def test_letter_section_and_insurer_question_only_where_the_condition_says(slug):
    text = visible_text(condition_html(slug, records=real_records("34090550")))
    letter = CONDITIONS[slug]["handout"].get("letter", True)
    assert ("What a referral or letter of medical necessity needs" in text) is letter
    assert ("write a letter to my insurer" in text) is letter
    assert ("Letter of medical necessity:" in text) is letter  # the words box follows


def test_lymphedema_handout_names_its_therapist_service_and_safety_line():
    html = condition_html("lymphedema")
    text = visible_text(html)
    assert "Should I see a certified lymphedema therapist?" in text
    assert "Who gives this care A certified lymphedema therapist." in text
    assert "97140 manual lymph drainage, each 15 minutes" in text
    assert "97124" not in text  # the file's own CPT list replaces the defaults
    safety = (
        "Safety: Sudden swelling of one leg can be a blood clot: see a doctor before any massage."
    )
    assert safety in text
    # On page one, before the key points, where a patient reads first.
    assert text.index(safety) < text.index("Key points")
    for code, description in (
        ("I89.0", "Lymphedema, not elsewhere classified"),
        ("I97.2", "Postmastectomy lymphedema syndrome"),
        ("Q82.0", "Hereditary lymphedema"),
    ):
        assert f"{code} {description}" in text


def test_baby_handout_asks_about_the_baby_and_prints_no_codes():
    text = visible_text(condition_html("preterm-infants"))
    assert "What is my baby's main problem?" in text
    assert "Is massage safe for my baby?" in text
    assert "Can your baby's nurses or a therapist trained in baby massage show me how" in text
    assert "ICD-10-CM" not in text and "CPT" not in text and "Service (CPT)" not in text
    assert "Safety: Learn baby massage from your baby's care team before you start." in text


def test_every_code_carries_its_description_and_a_category_is_labelled():
    condition = copy.deepcopy(CONDITIONS["constipation"])
    category = {"code": "M75.-", "description": "Shoulder lesions", "category": True}
    condition["icd10"].append(category)
    model = build_handout(real_records("34090550"), make_context(condition=condition))
    rows = {c["code"]: c for c in model["care"]["icd10"]}
    assert rows["K59.04"] == {
        "code": "K59.04", "description": "Chronic idiopathic constipation", "note": None,
    }
    assert rows["M75.-"]["note"] == "your doctor picks the full code"
    html = render("html", real_records("34090550"), make_context(condition=condition)).decode()
    text = visible_text(html)
    assert "M75.- Shoulder lesions (your doctor picks the full code)" in text
    for item in CONDITIONS["constipation"]["icd10"]:
        assert f"{item['code']} {item['description']}" in text
    # Plain code strings (condition files before issue 10's tables) still print; a dash is
    # still a category.
    assert diagnosis_codes({"icd10": ["M54.50", "M75.-"]}) == [
        {"code": "M54.50", "description": None, "note": None},
        {"code": "M75.-", "description": None, "note": "your doctor picks the full code"},
    ]


def test_defaults_apply_when_the_condition_file_has_no_handout_table():
    model = build_handout(real_records("34090550"), make_context())
    assert model["diary"]["kind"] == "pain"
    assert model["letter"] is not None
    assert model["care"]["provider"] == "a licensed massage therapist"
    assert [c["code"] for c in model["care"]["cpt"]] == ["97124", "97140"]
    assert all(c["words"] for c in model["care"]["cpt"])  # our words, never bare codes
    assert model["safety"] is None


def test_an_unknown_diary_is_a_clear_error():
    context = make_context(condition={"slug": "x", "title": "X", "handout": {"diary": "mod"}})
    with pytest.raises(ExportError) as err:
        build_handout([], context)
    assert str(err.value) == (
        "Unknown diary 'mod' for x: use one of pain, stool, sleep, limb, baby, mood "
        "in the condition file's [handout] table."
    )


def test_words_box_explains_the_words_the_sheet_uses_and_no_others(html):
    model = build_handout(real_records(*TEN), make_context())
    terms = [w["term"] for w in model["words"]["items"]]
    for term in ("Provisional", "Randomized", "Systematic review", "Retracted", "Referral",
                 "Letter of medical necessity", "ICD-10-CM", "CPT"):
        assert term in terms, term
    assert "GAD-7 and PHQ-9" not in terms and "Case report" not in terms
    assert "Words on this sheet" in visible_text(html)
    baby = build_handout(real_records("34090550"), condition_context("preterm-infants"))
    baby_terms = [w["term"] for w in baby["words"]["items"]]
    assert "Letter of medical necessity" not in baby_terms and "CPT" not in baby_terms


def test_table_says_type_of_study_is_provisional_with_a_legend_before_it(html):
    text = visible_text(html)
    assert "Type of study (provisional) The study, where to find it" in text
    legend = "Type of study (provisional): our first guess from how a study was set up"
    assert text.index(legend) < text.index("Type of study (provisional) The study")


class _Children(HTMLParser):
    """The tags of <body>'s direct children."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.depth, self.children = 0, []

    def handle_starttag(self, tag, attrs):
        if tag in _Text.VOID:
            return
        if self.depth == 1:
            self.children.append(tag)
        self.depth += 1 if self.depth or tag == "body" else 0

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1


def test_every_block_sits_in_a_landmark(html):
    parser = _Children()
    parser.feed(html)
    assert parser.children == ["header", "main", "footer"]
    assert html.count("<main>") == 1
    for labelled in re.findall(r'aria-labelledby="([\w-]+)"', html):
        assert f'id="{labelled}"' in html, labelled


@pytest.mark.parametrize("slug", sorted(CONDITIONS))
def test_markdown_carries_the_same_condition_parts(slug):
    md = render("md", real_records("34090550"), condition_context(slug)).decode("utf-8")
    model = build_handout(real_records("34090550"), condition_context(slug))
    assert f"## {model['diary']['heading']}" in md
    assert ("☐10" in md) is (model["diary"]["kind"] == "pain")
    assert ("## What a referral" in md) is (model["letter"] is not None)
    for code in model["care"]["icd10"]:
        assert f"`{code['code']}` {md_escape(code['description'])}" in md
    if model["safety"]:
        assert f"**Safety:** {model['safety']}" in md
