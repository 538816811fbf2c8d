"""Fetch one condition, or import files: queries -> entrez -> pubmed -> grading -> store.

Every batch is graded and saved in one transaction, so an interrupted run leaves whole
batches and a rerun fetches only what is missing.
"""

from __future__ import annotations

import gc
import gzip
import marshal
import pickle
import time
import zlib
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from evidence import fits, grading, pubmed, relevance
from evidence import store as store_module
from evidence.config import REFRESH_AFTER_DAYS
from evidence.errors import EvidenceError, ParseError
from evidence.queries import Condition

try:
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the platform (setup.cfg): marshal then
    _orjson = None

# Records per transaction on import: large enough that commits cost little (STYLE.md point 7
# measured ~4x over row-by-row), small enough that a failure loses at most one batch.
IMPORT_BATCH = 1000

Progress = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class RunSummary:
    """What one fetch or import did: printed as a line, or as JSON with --json."""

    condition: str | None
    kind: str
    run_id: int
    term: str | None = None
    query_translation: str | None = None
    source: str | None = None
    found: int = 0
    new: int = 0
    updated: int = 0
    linked: int = 0
    failed: int = 0
    deleted: int = 0
    requests: int = 0
    seconds: float = 0.0
    outcome: str = "running"
    error: str | None = None
    missing: list[str] = field(default_factory=list)
    # Records this run linked to the condition for the first time that are about massage for
    # it (fit direct or partial): {pmid, title, year, fit, level_label}.
    new_on_topic: list[dict] = field(default_factory=list)
    # PMIDs NLM deleted that a person had decided on or noted: kept, flagged withdrawn
    # ({pmid, title, decisions: [{condition, decision}], note}, from store.curated).
    withdrawn: list[dict] = field(default_factory=list)
    # PMIDs the search found that NLM deleted: never fetched again.
    skipped_deleted: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def grade_records(records: Iterable[dict], rules: relevance.Rules | None = None) -> list[dict]:
    """Each record with its provisional level, label, reason and flags merged in.

    With a condition's relevance `rules`, also its topic fit for that condition.
    """
    if rules is None:
        return [{**record, **grading.grade(record)} for record in records]
    return [{**record, **grading.grade(record), **relevance.fit(record, rules)} for record in records]


def _parse_efetch(data: bytes) -> list[dict]:
    """`pubmed.parse_efetch` with the cyclic collector paused.

    Parsed records hold no reference cycles, and the collector would walk the growing tree
    again and again (~0.5 s per 20,000 records); reference counting still frees everything.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return pubmed.parse_efetch(data)
    finally:
        if collecting:
            gc.enable()


def refresh_superseded(store) -> int:
    """Mark older versions of Cochrane reviews superseded across the whole cache."""
    records = store.cochrane_records()
    if not records:
        return 0
    before = {r["pmid"]: list(r.get("flags") or []) for r in records}
    for r in records:
        # Start from the record's own flags (an UpdateIn notice already says superseded), so a
        # version that is no longer the older one loses the flag.
        r["flags"] = grading.grade(r)["flags"]
    grading.mark_superseded(records)
    for r in records:
        # Grading knows nothing of NLM's deletions: a withdrawn review stays withdrawn.
        if "withdrawn" in before[r["pmid"]] and "withdrawn" not in r["flags"]:
            r["flags"] = r["flags"] + ["withdrawn"]
    changed = {r["pmid"]: r["flags"] for r in records if r["flags"] != before[r["pmid"]]}
    store.set_flags(changed)
    return len(changed)


def fetch_condition(
    store,
    client,
    condition: Condition,
    *,
    refresh: bool = False,
    max_age_days: float = REFRESH_AFTER_DAYS,
    batch_size: int | None = None,
    progress: Progress | None = None,
    log: Callable[[str], None] | None = None,
) -> RunSummary:
    """Search PubMed for a condition and cache every record not cached yet.

    A rerun with nothing new sends only the search. With `refresh`, records not yet status
    MEDLINE or fetched more than `max_age_days` ago are fetched again.
    """
    started = time.monotonic()
    requests_before = client.requests_sent
    term = condition.term
    rules = relevance.rules_for(condition)
    run_id = store.start_run(condition.slug, "fetch", term=term, source=client.base_url)
    summary = RunSummary(condition=condition.slug, kind="fetch", run_id=run_id, term=term)

    def checkpoint(**extra) -> None:
        summary.requests = client.requests_sent - requests_before
        summary.seconds = round(time.monotonic() - started, 2)
        store.update_run(
            run_id, hits=summary.found, new=summary.new, updated=summary.updated,
            linked=summary.linked, failed=summary.failed, requests=summary.requests, **extra,
        )

    try:
        result = client.search_all(term)
        summary.found = result.count
        summary.query_translation = result.query_translation
        checkpoint(query_translation=result.query_translation)
        pmids = result.pmids
        cached = store.cached_pmids(pmids)
        summary.linked = store.link(condition.slug, sorted(cached), run_id)
        # NLM deleted these (<DeleteCitation>); the store would discard them anyway, so every
        # run would download them again for nothing.
        deleted = store.deleted(pmids)
        wanted = [p for p in pmids if p not in cached and p not in deleted]
        if refresh and cached:
            wanted += [p for p in store.stale_pmids(sorted(cached), max_age_days) if p not in deleted]
        if deleted:
            summary.skipped_deleted = sorted(deleted, key=int)
            if log:
                shown = ", ".join(summary.skipped_deleted[:5]) + (", ..." if len(deleted) > 5 else "")
                log(f"{condition.slug}: not fetching {len(deleted)} PMID{'s' if len(deleted) != 1 else ''} "
                    f"that NLM deleted from PubMed (a <DeleteCitation> you imported): {shown}")
        done = 0
        if progress:
            progress("fetch", 0, len(wanted))
        kwargs = {"batch_size": batch_size} if batch_size else {}
        for batch, records in client.fetch_batches(wanted, parse=_parse_efetch, **kwargs):
            asked = set(batch)
            records = [r for r in records if r["pmid"] in asked]
            new, updated = store.save_records(
                grade_records(records, rules), source="efetch", condition=condition.slug,
                run_id=run_id, fit_rules=rules.key,
            )
            summary.new += new
            summary.updated += updated
            missing = asked - {r["pmid"] for r in records}
            if missing:
                # NCBI answers deleted or withdrawn PMIDs with nothing: say so, do not retry.
                summary.failed += len(missing)
                summary.missing += sorted(missing)
                if log:
                    log(f"warning: NCBI returned no record for PMID {', '.join(sorted(missing))}")
            done += len(batch)
            checkpoint()
            if progress:
                progress("fetch", done, len(wanted))
        refresh_superseded(store)
        # Records already cached and newly linked were not refetched: give them a fit too.
        fits.refresh_fit(store, condition)
        summary.new_on_topic = fits.new_on_topic(store, condition, run_id)
    except BaseException as exc:
        # Any way out but success (an error, Ctrl-C, a bug) is recorded, so `status` never
        # shows a dead run as "running". Recording may itself fail (a full disk): the
        # original error is the one to report.
        interrupted = isinstance(exc, KeyboardInterrupt)
        summary.outcome = "interrupted" if interrupted else "error"
        summary.error = "interrupted by the user" if interrupted else (str(exc) or type(exc).__name__)
        try:
            checkpoint()
            store.finish_run(run_id, summary.outcome, error=summary.error)
        except EvidenceError:
            pass
        raise
    summary.outcome = "ok"
    checkpoint()
    store.finish_run(run_id, "ok")
    return summary


# Flags that make a study unfit to show as support; a recheck reports any a study newly gained.
_WARNING_FLAGS = {"retracted", "expression-of-concern"}


def recheck(store, client, condition: Condition, pmids: list[str]) -> dict:
    """Refetch chosen studies before an export (one request for up to 10,000), regrade, store.

    NLM adds retraction and concern notices after a record is cached. Returns `checked`,
    `newly_flagged` (PMIDs that gained a retraction or concern since last fetched) and
    `missing` (PMIDs PubMed no longer returns).
    """
    rules = relevance.rules_for(condition)
    before = {r["pmid"]: _warning_flags(r) for r in store.get_records(pmids)}
    run_id = store.start_run(condition.slug, "recheck", term=None, source=client.base_url)
    requests_before = client.requests_sent
    fetched: set[str] = set()
    updated = 0
    try:
        for batch, records in client.fetch_batches(pmids, batch_size=EFETCH_RECHECK, parse=_parse_efetch):
            records = [r for r in records if r["pmid"] in set(batch)]
            fetched.update(r["pmid"] for r in records)
            _, changed = store.save_records(
                grade_records(records, rules), source="efetch", condition=condition.slug,
                run_id=run_id, fit_rules=rules.key,
            )
            updated += changed
        refresh_superseded(store)
    except (EvidenceError, KeyboardInterrupt) as exc:
        store.finish_run(run_id, "error", error=str(exc) or "interrupted by the user")
        raise
    after = {r["pmid"]: _warning_flags(r) for r in store.get_records(pmids)}
    newly = sorted((p for p in pmids if after.get(p, set()) - before.get(p, set())), key=int)
    missing = sorted(set(pmids) - fetched, key=int)
    store.finish_run(
        run_id, "ok", hits=len(fetched), updated=updated, failed=len(missing),
        requests=client.requests_sent - requests_before,
    )
    return {"checked": len(pmids), "newly_flagged": newly, "missing": missing}


def _warning_flags(record: dict) -> set[str]:
    flags = set(record.get("flags") or ()) & _WARNING_FLAGS
    return flags | {"retracted"} if record.get("retracted") else flags


# A recheck sends the chosen studies in one request: efetch takes up to 10,000 ids by POST.
EFETCH_RECHECK = 10_000


def sniff(path: Path) -> str:
    """'xml' or 'medline' from a file's first bytes (gzip looked through), or ParseError."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(4096)
            if head[:2] == b"\x1f\x8b":
                raw.seek(0)
                with gzip.open(raw) as unzipped:
                    head = unzipped.read(4096)
    except FileNotFoundError:
        raise ParseError(f"{path}: no such file; nothing imported.") from None
    except IsADirectoryError:
        raise ParseError(f"{path}: is a folder, not a file; nothing imported.") from None
    except PermissionError:
        raise ParseError(f"{path}: permission denied; nothing imported.") from None
    except (OSError, EOFError, zlib.error) as exc:
        # zlib.error: a damaged deflate stream in the first 4 KB (not an OSError).
        raise ParseError(f"{path}: cannot read it as a gzip file ({exc}); nothing imported.") from None
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text.startswith(b"<"):
        return "xml"
    from evidence import medline

    if medline.looks_like_medline(head):
        return "medline"
    raise ParseError(
        f"{path}: not PubMed XML (.xml, .xml.gz) or MEDLINE text (.nbib, .txt); nothing imported."
    )


def _batches(items: Iterator[dict], size: int) -> Iterator[list[dict]]:
    batch: list[dict] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# Files smaller than this import in one process: starting a parsing process costs more than
# it saves. Above it, a child process parses while this one stores, which uses both cores of
# a typical laptop.
PARALLEL_MIN_BYTES = 4_000_000


def _read_parts(
    path: Path, kind: str, batch_size: int, part_size: int, deletes: list[str]
) -> Iterator[tuple[list[dict], int, bool]]:
    """The file's records in parts of at most `part_size` that never straddle a batch of
    `batch_size`, each with the bytes of the file read so far and whether it ends a batch."""
    if kind == "xml":
        stream = pubmed.open_pubmed_file(path)  # a .gz's tell() is its compressed bytes read
        records = pubmed.iter_pubmed(
            stream, str(path), on_delete=deletes.extend, reopen=lambda: pubmed.open_pubmed_file(path)
        )
    else:
        from evidence import medline

        # utf-8-sig: a byte-order mark (Windows editors add one) is not part of the first tag.
        stream = open(path, encoding="utf-8-sig", errors="replace")
        records = medline.iter_medline(stream, str(path))

    def position() -> int:
        try:
            return stream.tell()
        except (OSError, ValueError):
            return 0

    with stream:
        part: list[dict] = []
        in_batch = 0
        for record in records:
            part.append(record)
            in_batch += 1
            if in_batch == batch_size or len(part) == part_size:
                yield part, position(), in_batch == batch_size
                in_batch %= batch_size
                part = []
        if part or in_batch:
            yield part, position(), True  # (an empty part only closes the last batch)


def _read_batches(path: Path, kind: str, batch_size: int, deletes: list[str]) -> Iterator[tuple[list[dict], int]]:
    """The file's records in batches, each with the bytes of the file read so far."""
    for batch, position, _ in _read_parts(path, kind, batch_size, batch_size, deletes):
        yield batch, position


def finish_batch(records: list[dict], rules: relevance.Rules | None) -> store_module.Encoded:
    """Grade a batch, give it its topic fit, and encode it as rows: the pure half of storing."""
    return store_module.encode_records(grade_records(records, rules))


# Records in a part: packed as one (`_Parsed`), and finished at a time in the parsing process
# between looks at whether the storing process waits. Small, so that a part is packed while
# its records are still in the processor's cache and neither process waits long for the
# other; 25 against 100 took 20,000 modern records from 5.40-5.81 to 5.16-5.41 s (and 9.4-9.9
# against 9.9-10.5 CPU-seconds), the real 2021 update file from 5.62-5.65 to 5.38-5.43 s;
# 10 did no better than 25, and the 1970s file did not change.
FINISH_CHUNK = 25
# Parts in one message at most (up to 100 records), and messages the storing process may
# have unread: one to work on next while it works on one, each small, so that it never waits
# for a message being encoded, and ends soon after the parsing process (measured on 20,000
# modern records: one-at-a-time messages of up to a batch left it waiting 0.8 s, and 0.45 s
# of work after the parser's end; three unread messages of two parts were slower still).
MESSAGE_PARTS = 4
UNREAD_MESSAGES = 2


class _StorerState:
    """What the parsing process knows of the storing one: how many messages it has taken.

    A number in shared memory, no lock, written by the storing process only.
    """

    def __init__(self, context):
        self._received = context.Value("q", 0, lock=False)

    def ready(self, sent: int) -> bool:
        """Whether it has room for another message: fewer than UNREAD_MESSAGES unread."""
        return sent - self._received.value < UNREAD_MESSAGES

    def took_one(self) -> None:
        self._received.value += 1


class _Sender:
    """Sends the parsing process's messages from a thread, so that parsing goes on while a
    message waits in the pipe for the storing process to read it.

    The message is encoded by the caller; the thread only writes, with the GIL released,
    and needs it back once per message. One message waits for the thread at most: `send`
    blocks while another does, so memory stays bounded when storing is the slower half. A
    failed write (the storing process died) is raised by the next `send` or by `close`.
    """

    def __init__(self, connection):
        import queue
        import threading

        self._connection = connection
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._full = queue.Full
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="evidence-sender", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (data := self._queue.get()) is not None:
            try:
                self._connection.send_bytes(data)
            except OSError as exc:
                self._error = exc
                return

    def send(self, message: tuple) -> None:
        self._put(_encode(message))

    def _put(self, item: bytes | None) -> None:
        # A thread that failed takes nothing more from the queue: look again every 0.1 s
        # rather than wait forever for room (the parent was killed: end, do not linger).
        while True:
            if self._error is not None:
                raise self._error
            try:
                self._queue.put(item, timeout=0.1)
                return
            except self._full:
                continue

    def close(self) -> None:
        """Wait until every message is written, then close the pipe."""
        try:
            self._put(None)
            self._thread.join()
        finally:
            self._connection.close()
        if self._error is not None:
            raise self._error


class _Parsed:
    """A parsed part of a batch not sent yet, finished up to `done` (in `parts`).

    Its records are packed (`_pack`) as soon as they are parsed, while they are still in the
    processor's cache, and the dicts go then; they come back (`records`) only if this process
    finishes the part itself. Packed after waiting their turn, up to a batch later, the same
    records cost the parsing process more (paired imports of 20,000 modern records: 5.87
    against 6.05 s, mean of 8).
    """

    __slots__ = ("packed", "count", "position", "ends_batch", "parts", "done", "_records")

    def __init__(self, records: list[dict], position: int, ends_batch: bool):
        self.packed = _pack(records)  # bytes; or the records themselves, when not packed
        self.count = len(records)
        self.position = position
        self.ends_batch = ends_batch
        self.parts: list[store_module.Encoded] = []
        self.done = 0
        self._records: list[dict] | None = None

    def records(self) -> list[dict]:
        if self._records is None:
            self._records = _unpack(self.packed)
        return self._records

    def rest(self) -> list[dict] | bytes:
        """The records not finished here, as a message carries them."""
        return self.packed if self.done == 0 else _pack(self.records()[self.done:])


def _child_main(path: Path, kind: str, batch_size: int, rules, sender, storer, receiver=None) -> None:
    """In the parsing process: send ("parts", [(finished, raw rest, position, ends batch),
    ...]) messages, then ("deleted", pmids) and ("done",), or ("error", message) after the
    parts before it.

    Grading, topic fit and encoding (`finish_batch`) go to whichever process has time. The
    records go out in parts of FINISH_CHUNK, MESSAGE_PARTS to a message, raw for the storing
    process to finish, whenever that process has room (fewer than UNREAD_MESSAGES unread):
    the next message waits in the pipe while it works, and it starts on the first part
    instead of the first batch. While it is behind, this one parses up to a batch
    ahead, and only then finishes the oldest part before sending it. So parsing never waits for
    finishing, and the two cores share the pure work whatever the records are like: modern
    ones leave parsing the larger half, short 1970s ones storing.
    """
    if receiver is not None:
        # The fork copied the storing process's end of the pipe: with it open here, a send
        # after that process died would wait forever instead of failing.
        receiver.close()
    deletes: list[str] = []
    pending: deque[_Parsed] = deque()
    sent = 0
    part_size = min(FINISH_CHUNK, batch_size)
    ahead = -(-batch_size // part_size)  # parts in a batch
    sending = _Sender(sender)

    def ship(keep: int) -> None:
        """Send parsed parts, oldest first, while the storer has room; while it has none and
        more than `keep` parts are in hand, finish them, oldest first, and send them when
        all are finished."""
        nonlocal sent
        while pending and (len(pending) > keep or storer.ready(sent)):
            unfinished = next((p for p in pending if p.done < p.count), None)
            if unfinished is not None and not storer.ready(sent):
                chunk = unfinished.records()[unfinished.done:unfinished.done + part_size]
                unfinished.parts.append(finish_batch(chunk, rules))
                unfinished.done += part_size
                continue
            parts = [pending.popleft() for _ in range(min(MESSAGE_PARTS, len(pending)))]
            sending.send(("parts", [
                (tuple(_joined(p.parts)), p.rest(), p.position, p.ends_batch)
                for p in parts
            ]))
            sent += 1

    # Parsed records hold no reference cycles, so the cyclic collector only costs time here
    # (~40 us a record, a quarter of parsing); reference counting still frees everything.
    gc.disable()
    try:
        error = None
        try:
            for records, position, ends_batch in _read_parts(path, kind, batch_size, part_size, deletes):
                pending.append(_Parsed(records, position, ends_batch))
                ship(keep=ahead)
        except (EvidenceError, OSError, EOFError) as exc:
            # The parts parsed before the fault are sent first, as one process would store them.
            error = str(exc) if isinstance(exc, EvidenceError) else f"{path}: cannot read it ({exc})."
        ship(keep=0)
        if error:
            sending.send(("error", error))
        else:
            sending.send(("deleted", deletes))
            sending.send(("done",))
        sending.close()
    except KeyboardInterrupt:
        pass  # the parent reports the interruption
    except (EvidenceError, OSError, EOFError) as exc:
        message = str(exc) if isinstance(exc, EvidenceError) else f"{path}: cannot read it ({exc})."
        try:
            sending.send(("error", message))
            sending.close()
        except OSError:
            pass  # the parent is gone: nothing to tell
    finally:
        sender.close()


def _encode(message: tuple) -> bytes:
    """A message for the storing process: marshal, not pickle, for plain data.

    Records are dicts, lists, strings and numbers, which marshal writes in ~57% of pickle's
    time (17 against 30 us a modern record): a tenth of what the parsing process spends
    besides parsing. Anything marshal refuses goes by pickle.
    """
    try:
        return b"M" + marshal.dumps(message)
    except ValueError:
        return b"P" + pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def _pack(records: list[dict]) -> list[dict] | bytes:
    """Raw records for a message: JSON by orjson where it can, else as they are (for marshal).

    The parsing process is the busier one on modern records, and orjson writes a part of them
    in two thirds of marshal's time (11.7 against 17.3 us a record); the storing process,
    which has time, reads it back in a little more (26 against 22 us). Records are dicts,
    lists, strings, whole numbers, booleans and None, which JSON carries exactly.
    """
    if not records or _orjson is None:
        return records
    try:
        return _orjson.dumps(records)
    except TypeError:  # a lone surrogate, an integer past 64 bits: marshal carries those
        return records


def _unpack(rest: list[dict] | bytes) -> list[dict]:
    return _orjson.loads(rest) if type(rest) is bytes else rest


def _receive(receiver) -> tuple:
    data = receiver.recv_bytes()
    body = memoryview(data)[1:]  # a slice of bytes would copy the whole message
    return marshal.loads(body) if data[:1] == b"M" else pickle.loads(body)


def _joined(parts: list[store_module.Encoded]) -> store_module.Encoded:
    rows: list[tuple] = []
    fits: list[tuple] = []
    for part in parts:
        rows += part.rows
        fits += part.fits
    return store_module.Encoded(rows, fits)


def _read_batches_in_child(
    path: Path, kind: str, batch_size: int, deletes: list[str], rules: relevance.Rules | None
) -> Iterator[tuple[store_module.Encoded, int, int]]:
    """(encoded batch, records in it, bytes read) from a child process that parses.

    The pipe holds little more than one message, so the child waits while this process
    stores: memory stays bounded. If this process dies, the child's next send fails and it
    exits.
    """
    import multiprocessing

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    storer = _StorerState(context)
    child = context.Process(
        target=_child_main, args=(path, kind, batch_size, rules, sender, storer, receiver), daemon=True
    )
    child.start()
    sender.close()
    parts: list[store_module.Encoded] = []  # of the batch being received
    try:
        while True:
            try:
                message = _receive(receiver)
            except EOFError:
                raise ParseError(f"{path}: the parsing process stopped unexpectedly.") from None
            storer.took_one()
            if message[0] == "parts":
                for finished, rest, position, ends_batch in message[1]:
                    parts.append(store_module.Encoded(*finished))
                    rest = _unpack(rest)
                    if rest:
                        parts.append(finish_batch(rest, rules))
                    if ends_batch:
                        batch = _joined(parts)
                        parts = []
                        yield batch, len(batch.rows), position
            elif message[0] == "deleted":
                deletes.extend(message[1])
            elif message[0] == "error":
                raise ParseError(message[1])
            else:
                return
    finally:
        receiver.close()
        if child.is_alive():
            child.terminate()
        child.join(5)


def _read_batches_here(
    path: Path, kind: str, batch_size: int, deletes: list[str], rules: relevance.Rules | None
) -> Iterator[tuple[list[dict], int, int]]:
    """(graded records, records in it, bytes read), all in this process."""
    for batch, position in _read_batches(path, kind, batch_size, deletes):
        yield grade_records(batch, rules), len(batch), position


def _parallel_ok(path: Path, kind: str) -> bool:
    import multiprocessing

    if kind != "xml" or "fork" not in multiprocessing.get_all_start_methods():
        return False
    try:
        return path.stat().st_size >= PARALLEL_MIN_BYTES
    except OSError:
        return False


def import_file(
    store,
    path: Path,
    *,
    condition: Condition | str | None = None,
    batch_size: int = IMPORT_BATCH,
    progress: Callable[[int, int], None] | None = None,
    parallel: bool | None = None,
) -> RunSummary:
    """Load one PubMed XML (.xml/.xml.gz) or MEDLINE (.nbib/.txt) file into the cache.

    Whole batches land or none of a batch does; on a broken file the error says how many
    records were stored before it. `<DeleteCitation>` PMIDs stop being live records.
    `parallel` (default: for XML files over PARALLEL_MIN_BYTES) parses in a child process.
    """
    path = Path(path)
    started = time.monotonic()
    kind = sniff(path)
    slug = condition if isinstance(condition, str) or condition is None else condition.slug
    if isinstance(condition, str):
        from evidence import queries
        from evidence.errors import UnknownConditionError

        try:
            condition = queries.get_condition(condition)
        except UnknownConditionError:
            condition = None  # a bare link with no condition file: no words to judge fit by
    rules = relevance.rules_for(condition) if condition else None
    run_id = store.start_run(slug, "import", source=str(path))
    summary = RunSummary(condition=slug, kind="import", run_id=run_id, source=str(path))
    deletes: list[str] = []
    if parallel is None:
        parallel = _parallel_ok(path, kind)
    # Two processes: the child parses, grading and encoding go to whichever one has time,
    # and this one writes each batch with its new records indexed in one statement. In one
    # process: each batch graded, then saved row by row, as a fetch saves.
    reader = _read_batches_in_child if parallel else _read_batches_here
    save = store.save_encoded if parallel else store.save_records
    extra = {"bulk_index": True} if parallel else {}
    # As in the parsing process: records hold no cycles, and the collector would walk every
    # live batch again and again (measured: a fifth of a baseline import's time).
    collecting = gc.isenabled()
    gc.disable()
    try:
        for batch, count, position in reader(path, kind, batch_size, deletes, rules):
            new, updated = save(
                batch, source=f"import:{path.name}", condition=slug, run_id=run_id,
                fit_rules=rules.key if rules else None, **extra,
            )
            summary.found += count
            summary.new += new
            summary.updated += updated
            store.update_run(run_id, hits=summary.found, new=summary.new, updated=summary.updated)
            if progress:
                progress(summary.found, position)
        if deletes:
            # Said before the deletion, which keeps these but flags them withdrawn.
            summary.withdrawn = store.curated(deletes)
            summary.deleted = store.mark_deleted(deletes, source=str(path))
    except KeyboardInterrupt:
        try:
            store.finish_run(run_id, "interrupted", error="interrupted by the user")
        except EvidenceError:
            pass
        raise
    except (EvidenceError, OSError, EOFError) as exc:
        if not isinstance(exc, EvidenceError):
            exc = f"{path}: cannot read it ({exc})."
        summary.outcome = "error"
        stored = f"{summary.found} record{'' if summary.found == 1 else 's'}"
        summary.error = f"{exc} {stored} from this file {'was' if summary.found == 1 else 'were'} stored before the error."
        try:
            store.finish_run(run_id, "error", error=summary.error)
        except EvidenceError:
            pass  # a full disk fails this too; the error above is the one to report
        raise ParseError(summary.error) from None
    finally:
        if collecting:
            gc.enable()
    summary.outcome = "ok"
    summary.seconds = round(time.monotonic() - started, 2)
    refresh_superseded(store)
    if condition:
        fits.refresh_fit(store, condition)
        summary.new_on_topic = fits.new_on_topic(store, condition, run_id)
    store.finish_run(run_id, "ok", deleted=summary.deleted)
    return summary
