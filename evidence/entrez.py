"""NCBI E-utilities client: the only module that talks to the network.

Every request goes through `Client._send`, which applies NCBI's rules in one place: POST only
(the API key never lands in a URL), `tool` and `email` on every request, steady pacing under
the per-user rate, retries with exponential backoff for everything NCBI does when it is busy
(429, 5xx, dropped connections, errors and HTML pages inside HTTP 200, bodies cut short), and
an immediate, plain error for requests NCBI refuses outright.
"""

from __future__ import annotations

import calendar
import datetime as dt
import fcntl
import json
import os
import random
import re
import threading
import time
import xml.etree.ElementTree as ET
import xml.parsers.expat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence, TypeVar

import requests
from requests.adapters import HTTPAdapter

from evidence.errors import EntrezError, EvidenceError
from evidence.guards import is_pmid, redact

__all__ = ["Client", "SearchResult", "EFETCH_BATCH", "ESEARCH_CAP"]

T = TypeVar("T")

# NCBI's examples fetch PubMed in batches of 500; EDirect uses 1,000. 500 keeps one answer at
# about 3-10 MB, so a dropped connection or a 5xx retries half as much data, while a
# 5,000-record condition still needs only 10 requests (one second of quota with a key).
EFETCH_BATCH = 500
# efetch accepts up to 10,000 ids per request; more is refused by NCBI.
EFETCH_MAX = 10_000
# PubMed esearch returns at most the first 9,999 ids of a search: retstart may not pass 9,998
# and a larger retmax is clamped (NCBI's own error text). More hits must be split by date.
ESEARCH_CAP = 9_999

# NCBI's published limits, per user (IP or key), not per process.
RATE_WITHOUT_KEY = 3.0
RATE_WITH_KEY = 10.0
# NCBI counts requests as they arrive, and network jitter can bunch two sends together. Spacing
# sends 10% wider than 1/rate leaves 0.1 s of slack inside any one-second window.
PACE_MARGIN = 1.10

# Connect within 10 s or NCBI is unreachable. A 500-record efetch answer starts within a few
# seconds even when NCBI is busy; 30 s of silence means the connection was dropped on the way
# (a firewall or proxy that swallows packets), which waiting longer does not mend.
DEFAULT_TIMEOUT = (10.0, 30.0)
# Up to six retries waiting 1, 2, 4, 8, 16 s... ride out NCBI's usual short outages and 429
# bursts, all inside DEFAULT_DEADLINE.
DEFAULT_RETRIES = 6
DEFAULT_BACKOFF = 1.0
# No single wait longer than this: a longer outage is better reported than waited out.
DEFAULT_MAX_BACKOFF = 30.0
# One request, all its attempts and waits included, gives up after this many seconds, so a run
# against an NCBI that is down (or a connection that hangs) fails well inside a minute.
DEFAULT_DEADLINE = 40.0
# An efetch answer for 500 records is 3-20 MB; a body past this is not PubMed's, and holding
# it would break the memory bound the parsers keep.
MAX_ANSWER_BYTES = 64 * 1024 * 1024

# Statuses NCBI returns when it is busy or restarting: waiting and asking again works.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Up to 10% random extra on each backoff, so clients that failed together do not retry together.
JITTER = 0.10
# `<ERROR>` texts inside HTTP 200 that no retry can fix (the request itself is wrong).
PERMANENT_ERRORS = (
    "cannot be larger than 9998",
    "Empty term and query_key",
    "Invalid db name",
    "ID list is empty",
)

# Date slices for searches over the cap start before any PubMed publication date (the oldest
# are from the 18th century) and end past any issue date a journal announces in advance; the
# union check below warns if a record falls outside.
SLICE_FIRST_YEAR = 1700
SLICE_YEARS_AHEAD = 5

_ERROR_ELEMENT = re.compile(rb"<ERROR>(.*?)</ERROR>", re.S)
_SPACES = re.compile(r"\s+")
_TAGS = re.compile(r"<[^>]+>")


class _BadAnswer(Exception):
    """An answer that is not data: retried like a 5xx unless `permanent`."""

    def __init__(self, reason: str, permanent: bool = False):
        super().__init__(reason)
        self.permanent = permanent


@dataclass
class SearchResult:
    """Every PMID of one PubMed search, with NCBI's count and how the search was split."""

    term: str
    count: int
    pmids: list[str]  # unique, sorted as integers, newest (largest) first
    query_translation: str
    # (mindate, maxdate, count) of each non-empty date slice when the search was split; [] otherwise
    slices: list[tuple[str, str, int]] = field(default_factory=list)


class Client:
    """A polite E-utilities client for PubMed: pacing, retries and batching in one place."""

    def __init__(
        self,
        base_url: str,
        email: str,
        api_key: str | None = None,
        tool: str = "evidence",
        *,
        rate: float | None = None,
        timeout: tuple[float, float] = DEFAULT_TIMEOUT,
        max_retries: int = DEFAULT_RETRIES,
        backoff: float = DEFAULT_BACKOFF,
        max_backoff: float = DEFAULT_MAX_BACKOFF,
        deadline: float = DEFAULT_DEADLINE,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        pace_file: Path | None = None,
        log: Callable[[str], None] | None = None,
    ):
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        if max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.email = email
        self._api_key = api_key or None
        self.tool = tool
        self.rate = float(rate) if rate else (RATE_WITH_KEY if self._api_key else RATE_WITHOUT_KEY)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.deadline = deadline
        self.pace_file = Path(pace_file) if pace_file else None
        self.requests_sent = 0
        self._interval = PACE_MARGIN / self.rate
        self._sleep = sleep
        self._clock = clock
        self._log_line = log
        self._last_send: float | None = None
        self._pace_lock = threading.Lock()
        self._random = random.Random()
        self._session = requests.Session()
        # Retries are ours (they must pace and log); urllib3's own would bypass both.
        self._session.mount("http://", HTTPAdapter(max_retries=0))
        self._session.mount("https://", HTTPAdapter(max_retries=0))

    def __repr__(self) -> str:  # never show the key
        key = "set" if self._api_key else "unset"
        return (
            f"Client(base_url={self.base_url!r}, email={self.email!r}, api_key={key}, "
            f"rate={self.rate:g})"
        )

    # ---- public calls -------------------------------------------------------------------

    def esearch(self, term: str, **params) -> dict:
        """One esearch page: {"count", "ids", "query_translation", "retstart", "retmax"}."""
        form = {"db": "pubmed", "term": term, "retmax": ESEARCH_CAP}
        form.update(params)
        return self._send("esearch", form, self._read_esearch)

    def search_all(self, term: str, *, datetype: str = "pdat") -> SearchResult:
        """Every PMID of a search, split into publication-date slices past PubMed's 9,999 cap."""
        sent_before = self.requests_sent
        first = self.esearch(term)
        count = first["count"]
        if count <= ESEARCH_CAP:
            pmids = _sorted_unique(self._rest_of_pages(term, first, {}))
            if len(pmids) != count:
                self._log(
                    f"Warning: PubMed counted {count:,} records but returned {len(pmids):,} PMIDs."
                )
            return SearchResult(term, count, pmids, first["query_translation"], [])

        self._log(
            f"The search has {count:,} hits, more than the {ESEARCH_CAP:,} one request returns: "
            f"splitting it by {datetype} date."
        )
        # The first page holds real hits too; keeping them can only make the union more complete.
        ids: set[str] = set(first["ids"])
        slices: list[tuple[str, str, int]] = []
        lo = dt.date(SLICE_FIRST_YEAR, 1, 1)
        hi = dt.date(dt.date.today().year + SLICE_YEARS_AHEAD, 12, 31)
        self._collect_slice(term, datetype, lo, hi, ids, slices)
        pmids = _sorted_unique(ids)
        self._log(
            f"Collected {len(pmids):,} PMIDs from {len(slices)} date slices in "
            f"{self.requests_sent - sent_before} requests."
        )
        if len(pmids) != count:
            self._log(
                f"Warning: PubMed counted {count:,} records but the date slices hold "
                f"{len(pmids):,} PMIDs; NCBI's counts can drift while it indexes, and records "
                f"without a {datetype} date fall outside every slice."
            )
        return SearchResult(term, count, pmids, first["query_translation"], slices)

    def efetch(
        self, pmids: Sequence[str], parse: Callable[[bytes], T] | None = None
    ) -> T | bytes:
        """Fetch PubMed XML for these PMIDs (one POST); return `parse(body)`, or the body."""
        ids = [str(p).strip() for p in pmids]
        if not ids:
            raise ValueError("efetch needs at least one PMID")
        if len(ids) > EFETCH_MAX:
            raise ValueError(f"efetch takes at most {EFETCH_MAX:,} PMIDs per request")
        # Anything else makes NCBI answer 400 for the whole batch.
        bad = [p for p in ids if not is_pmid(p)]
        if bad:
            raise EntrezError(f"Not a PMID: {bad[0]!r}. A PMID is a whole number such as 23121403.")
        form = {"db": "pubmed", "id": ",".join(ids), "retmode": "xml"}
        return self._send("efetch", form, lambda body: _read_efetch(body, parse))

    def fetch_batches(
        self,
        pmids: Sequence[str],
        batch_size: int = EFETCH_BATCH,
        parse: Callable[[bytes], T] | None = None,
    ) -> Iterator[tuple[list[str], T | bytes]]:
        """Fetch PMIDs `batch_size` at a time, yielding (the batch's PMIDs, its parsed answer)."""
        if not 1 <= batch_size <= EFETCH_MAX:
            raise ValueError(f"batch_size must be between 1 and {EFETCH_MAX:,}")
        ids = [str(p) for p in pmids]
        for start in range(0, len(ids), batch_size):
            batch = ids[start : start + batch_size]
            yield batch, self.efetch(batch, parse)

    # ---- the one function that sends requests -------------------------------------------

    def _send(self, endpoint: str, params: dict, check: Callable[[bytes], T]) -> T:
        """POST one E-utilities request, pacing and retrying; return `check(body)`.

        Retried: 429, 5xx, resets, timeouts, answers cut off or not data. Not retried, since
        waiting cannot mend them: a host name that does not resolve, a TLS certificate or
        protocol failure, any other 4xx. Every attempt and wait fits in `self.deadline`.
        """
        form = dict(params)
        form["tool"] = self.tool
        form["email"] = self.email
        if self._api_key:
            form["api_key"] = self._api_key
        url = f"{self.base_url}{endpoint}.fcgi"
        attempts = self.max_retries + 1
        reason = ""
        deadline = self._clock() + self.deadline
        tried = 0
        for attempt in range(attempts):
            retry_after: float | None = None
            self._pace()
            self.requests_sent += 1
            tried += 1
            # The last attempt may not read past the deadline either.
            remaining = max(deadline - self._clock(), 1.0)
            timeout = (min(self.timeout[0], remaining), min(self.timeout[1], remaining))
            try:
                with self._session.post(url, data=form, timeout=timeout, stream=True) as response:
                    body = _read_body(response)
            except requests.exceptions.ConnectTimeout:
                reason = f"no connection within {timeout[0]:g} s (timeout)"
            except requests.exceptions.Timeout:
                reason = f"no answer within {timeout[1]:g} s (timeout)"
            except (
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ):
                reason = "the answer was cut off mid-way"
            except requests.exceptions.ConnectionError as exc:
                hopeless = _hopeless(exc, self.base_url)
                if hopeless:
                    raise EntrezError(self._scrub(hopeless)) from None
                if _caused_by(exc, "ReadTimeoutError"):
                    reason = f"no answer within {timeout[1]:g} s (timeout)"
                else:
                    reason = f"connection failed or was reset ({_cause_name(exc)})"
            except requests.exceptions.RequestException as exc:
                raise EntrezError(
                    self._scrub(f"Cannot reach NCBI {endpoint} at {url}: {_cause_name(exc)}. "
                                "Check EVIDENCE_EUTILS_URL.")
                ) from None
            except _TooLarge as exc:
                raise EntrezError(self._scrub(f"NCBI {endpoint} refused: {exc}")) from None
            else:
                status = response.status_code
                if status == 200:
                    expected = response.headers.get("Content-Length")
                    if (
                        expected
                        and expected.isdigit()
                        and not response.headers.get("Content-Encoding")
                        and len(body) < int(expected)
                    ):
                        reason = "the answer was cut off mid-way"
                    else:
                        try:
                            return check(body.lstrip())
                        except _BadAnswer as exc:
                            if exc.permanent:
                                raise EntrezError(
                                    self._scrub(f"NCBI {endpoint} refused the request: {exc}")
                                ) from None
                            reason = str(exc)
                elif status in RETRY_STATUSES:
                    reason = f"HTTP {status} {response.reason or ''}".rstrip()
                    if status == 429:
                        retry_after = _retry_after(response.headers.get("Retry-After"))
                else:
                    message = _ncbi_message(body)
                    raise EntrezError(
                        self._scrub(
                            f"NCBI {endpoint} refused the request: HTTP {status} "
                            f"{response.reason or ''}".rstrip()
                            + (f": {message.rstrip('.')}" if message else "")
                            + ". Check the search term and settings; retrying will not help."
                        )
                    ) from None
            if attempt + 1 >= attempts:
                break
            delay = self._backoff_delay(attempt, retry_after)
            if self._clock() + delay >= deadline:
                break  # the next try would start past the deadline: report now
            self._log(
                f"NCBI {endpoint}: {reason}; retry {attempt + 1} of {self.max_retries} "
                f"in {delay:.3g} s."
            )
            self._sleep(delay)
        raise EntrezError(
            self._scrub(
                f"NCBI {endpoint} failed after {tried} attempt{'s' if tried != 1 else ''}: {reason}. "
                "Try again later; records already stored are kept."
            )
        )

    def _backoff_delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds to wait before retry `attempt + 1`: NCBI's Retry-After, else exponential."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff)
        base = self.backoff * 2**attempt
        return min(self.max_backoff, base * (1 + self._random.uniform(0, JITTER)))

    def _pace(self) -> None:
        """Wait until the next send keeps every one-second window under `rate` requests."""
        if self.pace_file is not None:
            try:
                self.pace_file.parent.mkdir(parents=True, exist_ok=True)
                self._pace_shared()
                return
            except OSError as exc:
                # A cache folder we cannot write must not stop a fetch: pace this process alone.
                self._log(f"warning: cannot share pacing through {self.pace_file} ({exc.strerror}); "
                          "pacing this process only")
                self.pace_file = None
        with self._pace_lock:
            now = self._clock()
            if self._last_send is not None:
                due = self._last_send + self._interval
                if now < due:
                    self._sleep(due - now)
                    now = max(self._clock(), due)
            self._last_send = now

    def _pace_shared(self) -> None:
        """Like `_pace`, with the last send time in a locked file shared by every process."""
        # flock (not lockf) locks per open file, so it also separates threads of one process.
        # Wall-clock time because each process has its own monotonic clock.
        with self._pace_lock:
            fd = os.open(self.pace_file, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                try:
                    last = float(os.pread(fd, 64, 0).decode("ascii").strip() or 0)
                except ValueError:
                    last = 0.0
                now = time.time()
                # A last time in the future (clock set back) must not stall us for long.
                due = min(last + self._interval, now + self._interval)
                if now < due:
                    self._sleep(due - now)
                    now = max(time.time(), due)
                stamp = repr(now).encode("ascii")
                os.ftruncate(fd, 0)
                os.pwrite(fd, stamp, 0)
            finally:
                os.close(fd)  # also releases the lock

    # ---- answers ------------------------------------------------------------------------

    def _read_esearch(self, body: bytes) -> dict:
        _check_common(body)
        try:
            root = ET.fromstring(body)
        except ET.ParseError as exc:
            raise _BadAnswer(f"the esearch answer is not readable XML ({exc})") from None
        _check_error_elements(root)
        if root.tag != "eSearchResult":
            raise _BadAnswer(f"the answer is <{root.tag}>, not an esearch result")
        missing = [t for t in ("Count", "RetMax", "RetStart") if root.findtext(t) is None]
        if missing:
            raise _BadAnswer(f"the esearch answer has no <{missing[0]}>")
        count = _int(root.findtext("Count"), "Count")
        ids = [(e.text or "").strip() for e in root.iterfind("IdList/Id")]
        translation = root.findtext("QueryTranslation") or ""
        self._check_error_list(root, count)
        return {
            "count": count,
            "ids": ids,
            "query_translation": translation,
            "retstart": _int(root.findtext("RetStart"), "RetStart"),
            "retmax": _int(root.findtext("RetMax"), "RetMax"),
        }

    def _check_error_list(self, root: ET.Element, count: int) -> None:
        """Decide what an esearch <ErrorList> means.

        PhraseNotFound alone is not a failure: it is how PubMed says one phrase of the term has
        no records (esearch8.xml: Count 0, PhraseNotFound, "No items found."). With Count 0 the
        search really has no hits; with hits, PubMed searched without that phrase, so we keep the
        results and warn. FieldNotFound means the term uses a field tag PubMed does not know: a
        broken term that no retry fixes. Anything else is an answer we cannot trust: retried.
        """
        errors = root.find("ErrorList")
        if errors is None or len(errors) == 0:
            return
        phrases = [(e.text or "").strip() for e in errors if e.tag == "PhraseNotFound"]
        fields = [(e.text or "").strip() for e in errors if e.tag == "FieldNotFound"]
        other = [e.tag for e in errors if e.tag not in ("PhraseNotFound", "FieldNotFound")]
        if other:
            raise _BadAnswer(f"esearch reported an error ({other[0]})")
        if fields:
            raise _BadAnswer(
                f"PubMed does not know the search field(s) {', '.join(fields)}; fix the term",
                permanent=True,
            )
        if phrases and count > 0:
            self._log(
                f"Warning: PubMed found nothing for {', '.join(repr(p) for p in phrases)} and "
                "searched without it; check the term."
            )

    # ---- helpers ------------------------------------------------------------------------

    def _collect_slice(
        self,
        term: str,
        datetype: str,
        lo: dt.date,
        hi: dt.date,
        ids: set[str],
        slices: list[tuple[str, str, int]],
    ) -> None:
        mindate, maxdate = f"{lo:%Y/%m/%d}", f"{hi:%Y/%m/%d}"
        window = {"datetype": datetype, "mindate": mindate, "maxdate": maxdate}
        page = self.esearch(term, **window)
        count = page["count"]
        if count <= ESEARCH_CAP:
            ids.update(self._rest_of_pages(term, page, window))
            if count:
                slices.append((mindate, maxdate, count))
            return
        halves = _split_dates(lo, hi)
        if halves is None:
            raise EntrezError(
                f"PubMed has {count:,} records for this search with {datetype} date {mindate} "
                f"alone, more than the {ESEARCH_CAP:,} one search can return; narrow the term."
            )
        for a, b in halves:
            self._collect_slice(term, datetype, a, b, ids, slices)

    def _rest_of_pages(self, term: str, first: dict, params: dict) -> list[str]:
        """All ids of a search under the cap: a server that returns fewer than asked (a
        mirror or proxy with a smaller retmax) is paged with retstart, never cut short."""
        ids = list(first["ids"])
        count = first["count"]
        while len(ids) < count:
            page = self.esearch(term, retstart=len(ids), **params)
            if not page["ids"]:
                break  # the count drifted while paging: the caller's check reports it
            ids += page["ids"]
        return ids

    def _scrub(self, text: str) -> str:
        """Remove the API key, in any URL or form spelling, from text headed for an error or a log."""
        return redact(text, self._api_key)

    def _log(self, line: str) -> None:
        if self._log_line is not None:
            self._log_line(self._scrub(line))


class _TooLarge(Exception):
    """An answer larger than MAX_ANSWER_BYTES: refused, not retried."""


def _read_body(response) -> bytes:
    """The whole body of a streamed response, refusing one past MAX_ANSWER_BYTES."""
    declared = response.headers.get("Content-Length")
    if declared and declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise _TooLarge(f"its answer would be {int(declared) / 1e6:,.0f} MB, more than the "
                        f"{MAX_ANSWER_BYTES // 2**20} MB a PubMed answer can be")
    body = bytearray()
    for chunk in response.iter_content(chunk_size=1 << 20):
        body += chunk
        if len(body) > MAX_ANSWER_BYTES:
            raise _TooLarge(f"its answer is more than the {MAX_ANSWER_BYTES // 2**20} MB a PubMed "
                            "answer can be")
    return bytes(body)


def _causes(exc: BaseException) -> list[BaseException]:
    """An exception and everything behind it: causes, contexts and urllib3's `reason`."""
    seen: list[BaseException] = []
    todo = [exc]
    while todo:
        current = todo.pop()
        if not isinstance(current, BaseException) or any(current is s for s in seen):
            continue
        seen.append(current)
        todo += [current.__cause__, current.__context__, getattr(current, "reason", None)]
        todo += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
    return seen


def _caused_by(exc: BaseException, name: str) -> bool:
    return any(type(c).__name__ == name for c in _causes(exc))


def _hopeless(exc: BaseException, base_url: str) -> str | None:
    """Words for a connection failure that no retry mends, or None for one worth retrying."""
    import socket
    import ssl
    from urllib.parse import urlsplit

    host = urlsplit(base_url).hostname or base_url
    causes = _causes(exc)
    if any(isinstance(c, socket.gaierror) for c in causes) or _caused_by(exc, "NameResolutionError"):
        return (f"Cannot reach {host}: the name does not resolve; check your connection or "
                "EVIDENCE_EUTILS_URL.")
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message or "certificate verify failed"
            return (f"Cannot reach {host} securely: its certificate is not trusted ({why}). "
                    "Check the computer's date and time, a proxy that intercepts HTTPS, or "
                    "EVIDENCE_EUTILS_URL.")
    for cause in causes:
        if isinstance(cause, ssl.SSLError):
            why = getattr(cause, "reason", None) or "handshake failed"
            return (f"Cannot reach {host} securely: the TLS connection failed ({str(why).lower().replace('_', ' ')}). "
                    "Check that EVIDENCE_EUTILS_URL starts with http:// or https:// as the server "
                    "expects, or a proxy in the way.")
    if isinstance(exc, requests.exceptions.SSLError):
        return (f"Cannot reach {host} securely: the TLS connection failed. Check "
                "EVIDENCE_EUTILS_URL, or a proxy in the way.")
    return None


def _check_common(body: bytes) -> None:
    """Reject answers that are not data whatever the endpoint: empty, HTML, <ERROR>."""
    if not body:
        raise _BadAnswer("the answer was empty")
    head = body[:1024].lower()
    if b"<html" in head or b"<!doctype html" in head:
        raise _BadAnswer("NCBI sent an HTML page instead of XML (maintenance or block page)")


def _check_error_elements(root: ET.Element) -> None:
    for element in root.iter("ERROR"):
        text = _one_line(element.text or "")
        if text:
            raise _BadAnswer(
                f"NCBI answered with an error: {text}",
                permanent=any(p in text for p in PERMANENT_ERRORS),
            )


def _read_efetch(body: bytes, parse: Callable[[bytes], T] | None) -> T | bytes:
    """Check that an efetch body is a whole PubmedArticleSet, then parse it."""
    _check_common(body)
    found = _ERROR_ELEMENT.search(body)
    if found:
        text = _one_line(found.group(1).decode("utf-8", "replace"))
        raise _BadAnswer(
            f"NCBI answered with an error: {text}",
            permanent=any(p in text for p in PERMANENT_ERRORS),
        )
    if b"<PubmedArticleSet" not in body[:2048]:
        raise _BadAnswer("the efetch answer is not a PubmedArticleSet")
    tail = body.rstrip()[-64:]
    if not (tail.endswith(b"</PubmedArticleSet>") or tail.endswith(b"<PubmedArticleSet/>")):
        raise _BadAnswer("the efetch answer was cut off mid-way (no closing </PubmedArticleSet>)")
    if parse is None:
        # Callers that keep raw bytes still must not get broken XML; expat checks it without
        # building a tree, and does not fetch the DTD.
        checker = xml.parsers.expat.ParserCreate()
        try:
            checker.Parse(body, True)
        except xml.parsers.expat.ExpatError as exc:
            raise _BadAnswer(f"the efetch answer is not readable XML ({exc})") from None
        return body
    try:
        return parse(body)
    except EvidenceError as exc:
        raise _BadAnswer(f"the efetch answer could not be read ({_one_line(str(exc))})") from None


def _split_dates(lo: dt.date, hi: dt.date) -> tuple[tuple[dt.date, dt.date], ...] | None:
    """Halve a date range by years, then months, then days; None for a single day."""
    if lo.year < hi.year:
        mid = (lo.year + hi.year) // 2
        return (lo, dt.date(mid, 12, 31)), (dt.date(mid + 1, 1, 1), hi)
    if lo.month < hi.month:
        mid = (lo.month + hi.month) // 2
        last = calendar.monthrange(lo.year, mid)[1]
        return (lo, dt.date(lo.year, mid, last)), (dt.date(lo.year, mid + 1, 1), hi)
    if lo.day < hi.day:
        mid = (lo.day + hi.day) // 2
        return (lo, dt.date(lo.year, lo.month, mid)), (dt.date(lo.year, lo.month, mid + 1), hi)
    return None


def _sorted_unique(ids) -> list[str]:
    return [str(i) for i in sorted({int(i) for i in ids if str(i).strip()}, reverse=True)]


def _int(text: str | None, tag: str) -> int:
    try:
        return int((text or "").strip())
    except ValueError:
        raise _BadAnswer(f"the esearch answer has a non-numeric <{tag}>") from None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header; NCBI sends seconds (the HTTP-date form is ignored)."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


def _ncbi_message(body: bytes) -> str:
    """NCBI's own words from an error body: JSON "error", an <ERROR> element, or the text."""
    text = body.decode("utf-8", "replace").strip()
    if not text:
        return ""
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        inner = data.get("esearchresult") if isinstance(data.get("esearchresult"), dict) else data
        message = inner.get("error") or inner.get("ERROR")
        if message:
            return _one_line(str(message))
    found = _ERROR_ELEMENT.search(body)
    if found:
        return _one_line(found.group(1).decode("utf-8", "replace"))
    return _one_line(_TAGS.sub(" ", text))[:200]


def _one_line(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _cause_name(exc: BaseException) -> str:
    """The innermost exception's class name: says what failed without echoing any request."""
    seen = exc
    while seen.__context__ is not None and seen.__context__ is not seen:
        seen = seen.__context__
    names = [type(exc).__name__]
    if seen is not exc:
        names.append(type(seen).__name__)
    return " / ".join(names)
