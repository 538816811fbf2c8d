"""The cache: the only module that knows table names and SQL.

`Store(path)` opens (or creates) the SQLite database and migrates it. Records are keyed by
PMID; a condition links to its PMIDs; every fetch or import is a run. Writes happen one
transaction per batch, so an interrupted fetch leaves whole batches or nothing.

Tables:
  records            one row per PMID: the parsed record, its provisional level, fetched_at
  records_fts        FTS5 index over title and abstract, kept in sync by triggers
  condition_records  condition slug <-> PMID, with the run that first and last saw it, and the
                     record's topic fit for that condition (fit, rank, reason, and the rules
                     and content hash it was computed from, so a stale fit is recomputed)
  runs               one row per fetch/import: term, hits, counts, requests, times, outcome
  decisions          a person's include/exclude per condition, with reason and time
  decision_log       every decision and undo, so curation can be reviewed
  notes              a person's note on a PMID
  deleted_pmids      PMIDs NLM deleted (<DeleteCitation>): never shown as live records
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import re
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote
from typing import Iterable, Iterator, NamedTuple

from evidence.errors import DISTRIBUTION, NotCachedError, StoreError
from evidence.guards import is_pmid, printable

log = logging.getLogger(__name__)

SCHEMA_VERSION = 6
# SQLite's header field for "which program's file is this" (PRAGMA application_id): "EVID".
# user_version alone says nothing: any program may set it to 1.
APPLICATION_ID = 0x45564944
# The tables every evidence database has had since schema 1; a file at user_version >= 1 with
# application_id 0 (written before the id was set) is ours only if it has them all.
OUR_TABLES = frozenset({"records", "runs", "condition_records", "decisions", "decision_log", "notes",
                        "deleted_pmids"})

# Waiting this long for another process's write lock beats failing a long fetch: batches
# commit in well under a second, so a wait this long only happens when something is stuck.
BUSY_TIMEOUT_MS = 60_000
# After this long waiting for the lock, say so: a silent minute looks like a hang.
LOCK_NOTICE_MS = 2_000
# Reading never needs the write lock (WAL); a read that waits this long is stuck behind
# another program's exclusive lock, and is better reported than waited out.
READ_TIMEOUT_MS = 5_000
# doctor calls the disk full below this much free space: a 500-record batch and its WAL
# need a few MB.
MIN_FREE_BYTES = 10 * 1024 * 1024

# Migration 3 added the fields PubMed's MEDLINE files and citation managers need; they go
# last, so the order of the older columns (and their place in content_hash) stays.
TEXT_FIELDS_3 = ("pub_model", "publication_status", "country", "nlm_unique_id", "owner", "copyright")
JSON_FIELDS_3 = ("mesh_headings", "history", "issns", "article_ids", "elocation_ids", "citation_subsets")
TEXT_FIELDS = (
    "title", "vernacular_title", "abstract", "journal", "journal_abbrev", "pub_date",
    "volume", "issue", "pages", "doi", "pmcid", "language", "status", "date_revised",
    "date_completed", "article_date",
) + TEXT_FIELDS_3
INT_FIELDS = ("year",)
BOOL_FIELDS = ("retracted", "title_is_translation")
JSON_FIELDS = (
    "abstract_sections", "authors", "publication_types", "publication_type_ids", "mesh_terms",
    "mesh_major", "keywords", "languages", "registry_numbers", "corrections",
) + JSON_FIELDS_3
# What grading adds. Kept apart from the parsed fields, whose hash alone tells an updated
# record from a plain refetch (a new grading rule is not an update from NLM).
GRADE_COLUMNS = ("level", "level_label", "level_reason", "flags")
PARSED_COLUMNS = ("pmid",) + TEXT_FIELDS + INT_FIELDS + BOOL_FIELDS + JSON_FIELDS
RECORD_COLUMNS = PARSED_COLUMNS + GRADE_COLUMNS + ("source", "fetched_at", "content_hash")
# A row as `encode_records` builds it, in any process: `save_encoded` appends the two columns
# only the storing process knows, the source and the time.
ENCODED_COLUMNS = PARSED_COLUMNS + GRADE_COLUMNS + ("content_hash",)
_INSERT_COLUMNS = ENCODED_COLUMNS + ("source", "fetched_at")
_UPSERT = (
    f"INSERT INTO records ({', '.join(_INSERT_COLUMNS)}) VALUES ({', '.join('?' * len(_INSERT_COLUMNS))}) "
    f"ON CONFLICT(pmid) DO UPDATE SET {', '.join(f'{c} = excluded.{c}' for c in _INSERT_COLUMNS[1:])}"
)
DECODE_JSON = JSON_FIELDS + ("flags",)
# A cached Cochrane review, by DOI or journal: the WHERE of a partial index and of the query it
# answers, word for word (SQLite uses a partial index only for a query that implies its WHERE).
_COCHRANE = "doi LIKE '10.1002/14651858.CD%' OR journal_abbrev = 'Cochrane Database Syst Rev'"
# Topic fit, per condition and record (evidence.relevance). `fit_rules` and `fit_content` are
# the rules key and the record's content hash it was computed from.
FIT_COLUMNS = (
    ("fit", "TEXT"), ("fit_rank", "INTEGER"), ("fit_reason", "TEXT"),
    ("fit_rules", "TEXT"), ("fit_content", "TEXT"),
)
# What topic fit reads from a record.
FIT_INPUTS = "r.pmid, r.title, r.abstract, r.keywords, r.mesh_terms, r.mesh_major, r.content_hash"

# One encoder for every column: json.dumps builds a new encoder per call, which showed up as
# a fifth of the store's time on a 30,000-record import. JSONEncoder.encode still builds its
# C encoder on every call (a record has ~20 JSON columns); built once here, without the
# circular-reference check a parsed record never needs, it gives the same text in 2/3 the time.
_json_text = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_c_encoder = (
    json.encoder.c_make_encoder(
        None, _json_text.default, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
    if json.encoder.c_make_encoder is not None
    else None
)
# orjson writes the same text as that encoder (UTF-8 as is, only `"`, `\` and control
# characters escaped, the same escapes; tests/test_store.py compares the two) in about a third
# of its time: 17 against 48 us a modern record, a tenth of what an import spends on one.
# (They differ on some floats, "1e-7" against "1e-07", and NaN; a record's JSON columns
# hold no floats.) Optional: without it (no wheel for the platform), the json module does the work.
try:
    from orjson import dumps as _orjson_dumps
except ImportError:  # pragma: no cover - depends on the platform
    _orjson_dumps = None


def _encode(value) -> str:
    if _orjson_dumps is not None:
        try:
            return _orjson_dumps(value).decode()
        except TypeError:
            pass  # a lone surrogate or an integer past 64 bits: the json module writes those
    if _c_encoder is None:  # a Python without the C accelerator
        return _json_text.encode(value)
    if isinstance(value, str):
        return json.encoder.encode_basestring(value)
    return "".join(_c_encoder(value, 0))


def now() -> str:
    """The current UTC time as ISO 8601 text, to the second."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()


def _days_ago(days: float) -> str:
    """A UTC time `days` ago, in the form `now()` writes, so the two compare as text."""
    return (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).replace(microsecond=0).isoformat()


def _dicts(cursor: sqlite3.Cursor) -> list[dict]:
    """A cursor's rows as dicts keyed by column name."""
    cols = [d[0] for d in cursor.description]
    return [dict(zip(cols, row)) for row in cursor]


def _parsed_values(record: dict) -> list:
    pmid = str(record.get("pmid") or "")
    if not is_pmid(pmid):
        raise StoreError(
            f"A record has no valid PMID ({record.get('pmid')!r}: a PMID is a whole number like "
            "33984499, without a leading zero); its batch was not saved."
        )
    get = record.get
    values = [pmid, get("title") or ""]  # PubMed can ship an empty title
    values += [get(name) for name in TEXT_FIELDS[1:]]
    year = get("year")
    values.append(int(year) if year is not None else None)
    values += [1 if get(name) else 0 for name in BOOL_FIELDS]
    # Many lists are empty (a new record has no MeSH yet): "[]" is what encoding [] gives.
    values += [_encode(value) if (value := get(name)) else "[]" for name in JSON_FIELDS]
    return values


def content_hash(record: dict) -> str:
    """A stable hash of a record's parsed content (grading excluded)."""
    return _hash(_parsed_values(record))


def _hash(values: list) -> str:
    return hashlib.sha1("\x1f".join(map(str, values)).encode("utf-8")).hexdigest()


def _encoded_row(record: dict) -> tuple:
    """A record's values in ENCODED_COLUMNS order."""
    values = _parsed_values(record)
    digest = _hash(values)
    level = record.get("level")
    values += [
        int(level) if level is not None else None,
        record.get("level_label"),
        record.get("level_reason"),
        _encode(record.get("flags") or []),
        digest,
    ]
    return tuple(values)


class Encoded(NamedTuple):
    """A batch of graded records as `records` rows and topic fits, for `Store.save_encoded`.

    Pure data (picklable), so a parsing process can build it while another one writes.
    """

    rows: list[tuple]  # ENCODED_COLUMNS; the PMID first, the content hash last
    fits: list[tuple]  # (pmid, fit, fit_rank, fit_reason, content_hash) of records with a fit


def encode_records(records: Iterable[dict]) -> Encoded:
    """Encode graded records (JSON columns, content hash) without touching the database.

    Raises StoreError for a record without a valid PMID, as `save_records` does.
    """
    rows, fits = [], []
    for record in records:
        row = _encoded_row(record)
        rows.append(row)
        if record.get("fit"):
            fits.append((row[0], record["fit"], record.get("fit_rank"), record.get("fit_reason"), row[-1]))
    return Encoded(rows, fits)


def _import_sqlite_utils():
    """sqlite_utils, imported without pandas and numpy unless something imported them already.

    sqlite-utils imports both when installed, only to accept their values in inserts, which
    this module never passes. Without them, creating a database costs ~0.4 s and ~50 MB
    less (an import into a new database: a third of its memory).
    """
    import sys

    blocked = [name for name in ("pandas", "numpy") if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # `import name` raises ImportError
    try:
        import sqlite_utils
    finally:
        for name in blocked:
            del sys.modules[name]
    return sqlite_utils


def row_to_record(row: sqlite3.Row | dict) -> dict:
    """A `records` row as the record dict of the JSON contract."""
    record = _printable_row(row)
    for name in DECODE_JSON:
        if name in record:
            record[name] = _printable_json(json.loads(record[name])) if record[name] else []
    for name in BOOL_FIELDS:
        if name in record:
            record[name] = bool(record[name])
    record.pop("content_hash", None)
    record.pop("rowid", None)
    return record


def _printable_row(row) -> dict:
    """A row with control characters dropped from its text: record text (from a file anyone can
    write) must never carry a terminal escape sequence to a screen or into a Markdown file."""
    out = dict(row)
    for key, value in out.items():
        if type(value) is str and not value.isprintable():
            out[key] = printable(value)
    return out


def _printable_json(value):
    if type(value) is str:
        return printable(value)
    if type(value) is list:
        return [_printable_json(v) for v in value]
    if type(value) is dict:
        return {k: _printable_json(v) for k, v in value.items()}
    return value


class Store:
    """The SQLite cache. Opening it creates and migrates the schema."""

    def __init__(self, path: Path | str, *, readonly: bool = False):
        self.path = Path(path)
        self.readonly = readonly
        if not readonly:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"Cannot create the folder for the database {self.path}: {exc.strerror}. "
                    "Pass --db or set EVIDENCE_DB to a writable path."
                ) from None
        elif not self.path.exists():
            raise StoreError(f"No database at {self.path}: run 'evidence fetch' or 'evidence import' first.")
        try:
            self.conn = self._connect_readonly() if readonly else self._connect()
            self._db = None
            self._migrate_when_free(readonly)
        except sqlite3.DatabaseError as exc:
            raise self._open_error(exc) from None

    def _upgrade_for_reading(self, version: int) -> None:
        try:
            Store(self.path).close()
        except StoreError as exc:
            raise StoreError(
                f"{self.path} was written by an older evidence (schema {version}, this one uses "
                f"{SCHEMA_VERSION}) and must be upgraded once, which needs write access: {exc}"
            ) from None

    def _connect(self) -> sqlite3.Connection:
        # SQLite's own busy wait is kept short: _Transaction waits in steps, saying so.
        conn = sqlite3.connect(str(self.path), timeout=LOCK_NOTICE_MS / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {min(LOCK_NOTICE_MS, BUSY_TIMEOUT_MS)}")
        return conn

    def _connect_readonly(self) -> sqlite3.Connection:
        """A read-only connection, which also works where nothing may be written.

        A WAL database needs its -shm file; on a read-only mount where it cannot be created,
        SQLite opens the file only as immutable, which is safe there: nothing can change it.
        """
        uri = "file:" + quote(str(self.path.absolute()))
        timeout = min(READ_TIMEOUT_MS, BUSY_TIMEOUT_MS)
        conn = sqlite3.connect(uri + "?mode=ro", uri=True, timeout=timeout / 1000, isolation_level=None)
        conn.execute(f"PRAGMA busy_timeout = {timeout}")
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.OperationalError as exc:
            if "unable to open" not in str(exc) or not self._cannot_write_folder() or self._wal_pending():
                raise
            conn.close()
        return sqlite3.connect(uri + "?immutable=1", uri=True, isolation_level=None)

    def _cannot_write_folder(self) -> bool:
        folder = self.path.absolute().parent
        return read_only_mount(folder) or not os.access(folder, os.W_OK)

    def _wal_pending(self) -> bool:
        wal = Path(str(self.path) + "-wal")
        try:
            return wal.stat().st_size > 0
        except OSError:
            return False

    def _open_error(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "not a database" in text or "malformed" in text:
            return StoreError(
                f"{self.path} is not an evidence database or is corrupt ({text}). "
                "Move it aside, or pass --db to use another file."
            )
        if "full" in text:
            return StoreError(
                f"The disk holding the database {self.path} is full ({text}); the last batch was "
                "not saved, every earlier one is kept. Free some space, then run the command again."
            )
        if "locked" in text or "busy" in text:
            return StoreError(
                f"The database {self.path} is locked by another program ({text}). "
                "Wait for it to finish, or close it, then try again."
            )
        if "readonly" in text or "read-only" in text:
            return StoreError(
                f"The database {self.path} is read-only ({text}): list, show and export work, "
                "fetch, import and curation do not. Make it writable, or pass --db / set "
                "EVIDENCE_DB to a writable copy."
            )
        if "unable to open" in text:
            return StoreError(
                f"Cannot open the database {self.path} ({text}). "
                "Check its permissions, or pass --db / set EVIDENCE_DB to a writable path."
            )
        return StoreError(f"Database error in {self.path}: {text}.")

    @property
    def db(self):
        """The same connection as a sqlite-utils Database, for migrations and inspection.

        Imported on first use only: sqlite-utils imports pandas when it is installed, which
        costs ~0.4 s, and reading commands (list, search, status) must start fast.
        """
        if self._db is None:
            self._db = _import_sqlite_utils().Database(self.conn)
        return self._db

    # -- schema ---------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return self.conn.execute("PRAGMA user_version").fetchone()[0]

    @property
    def application_id(self) -> int:
        return self.conn.execute("PRAGMA application_id").fetchone()[0]

    def _migrate_when_free(self, readonly: bool) -> None:
        """Migrate, waiting while another process creates or migrates the same file.

        Switching a new file to WAL answers "locked" at once, without SQLite's busy wait, so
        two first runs started together would fail; the migration is one transaction, so
        trying again is safe.
        """
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        while True:
            try:
                self._migrate(readonly)
                return
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _foreign(self, why: str) -> StoreError:
        return StoreError(
            f"{self.path} is a SQLite database of another program ({why}); evidence will not "
            "read or write it. Pass --db or set EVIDENCE_DB to another file."
        )

    def _header(self) -> tuple[int, int, set[str]]:
        """user_version, application_id and table names, read in one snapshot: read apart,
        another process's first migration could commit between them."""
        self.conn.execute("BEGIN")
        try:
            version = self.conn.execute("PRAGMA user_version").fetchone()[0]
            app = self.conn.execute("PRAGMA application_id").fetchone()[0]
            tables = {r[0] for r in self.conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")}
        finally:
            if self.conn.in_transaction:
                try:
                    self.conn.execute("ROLLBACK")  # nothing was written; only ends the snapshot
                except sqlite3.Error:
                    pass
        return version, app, tables

    def _check_ours(self, version: int, app: int, tables: set[str]) -> None:
        """Refuse a SQLite file that another program wrote, whatever its user_version says."""
        if app == APPLICATION_ID:
            return
        if app != 0:
            raise self._foreign(f"its application id is {app:#010x}, not evidence's")
        if version == 0:
            if tables:
                # Never add our tables to another program's database.
                raise self._foreign(f"tables: {', '.join(sorted(tables)[:5])}")
            return
        missing = OUR_TABLES - tables
        if missing:
            raise self._foreign(
                f"user_version {version} but no {', '.join(sorted(missing)[:3])} table"
            )

    def _migrate(self, readonly: bool) -> None:
        version, app, tables = self._header()
        self._check_ours(version, app, tables)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer version of evidence (schema {version}, "
                f"this one knows {SCHEMA_VERSION}). Upgrade evidence: pip install -U {DISTRIBUTION}."
            )
        if version == SCHEMA_VERSION:
            return
        if version == 0 and readonly:
            raise StoreError(
                f"{self.path} holds no evidence data yet: run 'evidence fetch' or 'evidence import' first."
            )
        if readonly:
            # A database of an older evidence: upgrade it once through a writable connection,
            # or a reading command would ask for columns it does not have yet.
            self._upgrade_for_reading(version)
            return
        # WAL lets readers (list, status) run while a fetch writes, and makes two writers
        # queue on the busy timeout instead of failing. It cannot change inside a transaction.
        self.conn.execute("PRAGMA journal_mode = WAL")
        # One transaction: a crash leaves the old schema, and a second process starting at the
        # same moment waits, then finds the work done.
        with self.transaction():
            if self.schema_version < 1:
                self._migration_1()
            if self.schema_version < 2:
                self._migration_2()
            if self.schema_version < 3:
                self._migration_3()
            if self.schema_version < 4:
                self._migration_4()
            if self.schema_version < 5:
                self._migration_5()
            if self.schema_version < 6:
                self._migration_6()
            self.conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _migration_4(self) -> None:
        """Mark the file as evidence's (new databases and ones written before the id existed)."""
        self.conn.execute(f"PRAGMA application_id = {APPLICATION_ID}")

    def _migration_1(self) -> None:
        columns = {"pmid": str}
        columns.update({name: str for name in TEXT_FIELDS})
        columns.update({name: int for name in INT_FIELDS + BOOL_FIELDS})
        columns.update({name: str for name in JSON_FIELDS})
        columns.update({"level": int, "level_label": str, "level_reason": str, "flags": str})
        columns.update({"source": str, "fetched_at": str, "content_hash": str})
        self.db["records"].create(columns, pk="pmid", not_null={"title"}, if_not_exists=True)
        self.db["records"].create_index(["level", "year"], if_not_exists=True)
        self.db["records"].create_index(["doi"], if_not_exists=True)
        # The full-text index, written out rather than through sqlite-utils' enable_fts, which
        # commits (executescript) and so cannot sit inside the migration's transaction. The
        # update trigger fires only when the text changes: a refetch that stamps fetched_at
        # must not rewrite the index.
        for statement in (
            "CREATE VIRTUAL TABLE records_fts USING fts5(title, abstract, content='records', "
            "content_rowid='rowid', tokenize='porter')",
            "CREATE TRIGGER records_ai AFTER INSERT ON records BEGIN "
            "INSERT INTO records_fts (rowid, title, abstract) VALUES (new.rowid, new.title, new.abstract); END",
            "CREATE TRIGGER records_ad AFTER DELETE ON records BEGIN "
            "INSERT INTO records_fts (records_fts, rowid, title, abstract) "
            "VALUES ('delete', old.rowid, old.title, old.abstract); END",
            "CREATE TRIGGER records_au AFTER UPDATE OF title, abstract ON records BEGIN "
            "INSERT INTO records_fts (records_fts, rowid, title, abstract) "
            "VALUES ('delete', old.rowid, old.title, old.abstract); "
            "INSERT INTO records_fts (rowid, title, abstract) VALUES (new.rowid, new.title, new.abstract); END",
        ):
            self.conn.execute(statement)
        self.db["runs"].create(
            {
                "id": int, "condition": str, "kind": str, "term": str, "query_translation": str,
                "source": str, "hits": int, "new": int, "updated": int, "linked": int,
                "failed": int, "deleted": int, "requests": int, "started_at": str,
                "finished_at": str, "outcome": str, "error": str, "pid": int,
            },
            pk="id", if_not_exists=True,
        )
        self.db["runs"].create_index(["condition", "started_at"], if_not_exists=True)
        self.db["condition_records"].create(
            {"condition": str, "pmid": str, "first_run": int, "last_run": int, "added_at": str},
            pk=("condition", "pmid"), if_not_exists=True,
        )
        self.db["condition_records"].create_index(["pmid"], if_not_exists=True)
        self.db["decisions"].create(
            {"condition": str, "pmid": str, "decision": str, "reason": str, "decided_at": str},
            pk=("condition", "pmid"), if_not_exists=True,
        )
        self.db["decision_log"].create(
            {"id": int, "condition": str, "pmid": str, "action": str, "reason": str, "at": str},
            pk="id", if_not_exists=True,
        )
        self.db["notes"].create({"pmid": str, "text": str, "updated_at": str}, pk="pmid", if_not_exists=True)
        self.db["deleted_pmids"].create(
            {"pmid": str, "deleted_at": str, "source": str}, pk="pmid", if_not_exists=True
        )

    def _migration_2(self) -> None:
        # Topic fit per condition and record. NULL rules mean "not computed yet": the next
        # read or fetch of the condition computes it.
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(condition_records)")}
        for column, kind in FIT_COLUMNS:
            if column not in have:
                self.conn.execute(f"ALTER TABLE condition_records ADD COLUMN {column} {kind}")
        self.conn.execute(
            "CREATE INDEX IF NOT EXISTS idx_condition_records_fit ON condition_records (condition, fit_rank)"
        )

    def _migration_3(self) -> None:
        """Fuller PubMed fields for citation files: MeSH with subheadings, history, ISSNs, ids.

        Rows cached before it get NULL (read as None or []) until their next fetch fills them.
        """
        have = {row[1] for row in self.conn.execute("PRAGMA table_info(records)")}
        for name in TEXT_FIELDS_3 + JSON_FIELDS_3:
            # A database migrated by migration 1 of this version already has them.
            if name not in have:
                self.conn.execute(f"ALTER TABLE records ADD COLUMN {name} TEXT")

    def _migration_5(self) -> None:
        # Answers "is any fit of this condition stale?" from the index alone (stale_fit).
        self.conn.execute(
            "CREATE INDEX IF NOT EXISTS idx_condition_records_rules ON condition_records (condition, fit_rules)"
        )

    def _migration_6(self) -> None:
        # Every import and fetch ends by looking for the cached Cochrane reviews (superseded
        # versions): without this index that read every row, 35 ms for 20,000 modern records
        # and growing with the cache. The index holds those reviews only.
        self.conn.execute(f"CREATE INDEX IF NOT EXISTS idx_records_cochrane ON records (pmid) WHERE {_COCHRANE}")

    # -- transactions ---------------------------------------------------------------------

    def transaction(self):
        """A write transaction that takes the write lock up front (BEGIN IMMEDIATE)."""
        return _Transaction(self)

    def execute(self, sql: str, params: Iterable = ()) -> sqlite3.Cursor:
        try:
            return self.conn.execute(sql, tuple(params))
        except sqlite3.OperationalError as exc:
            raise self._open_error(exc) from None

    # -- records --------------------------------------------------------------------------

    def save_records(
        self,
        records: list[dict],
        *,
        source: str,
        condition: str | None = None,
        run_id: int | None = None,
        fit_rules: str | None = None,
    ) -> tuple[int, int]:
        """Upsert one batch in one transaction, linking it to `condition`. Returns (new, updated).

        A record NLM deleted is not brought back. Unchanged records only get a new fetched_at.
        With `fit_rules` (the relevance rules key), the records' `fit`, `fit_rank` and
        `fit_reason` are stored for `condition` in the same transaction.
        """
        return self.save_encoded(
            encode_records(records), source=source, condition=condition, run_id=run_id,
            fit_rules=fit_rules,
        )

    def save_encoded(
        self,
        batch: Encoded,
        *,
        source: str,
        condition: str | None = None,
        run_id: int | None = None,
        fit_rules: str | None = None,
        bulk_index: bool = False,
    ) -> tuple[int, int]:
        """`save_records` for a batch `encode_records` built (maybe in another process).

        `bulk_index` indexes the batch's new records for full-text search in one statement
        instead of one trigger call per row (about a third less of the store's time on a
        large import); same index, same transaction, so an interruption still leaves whole
        batches and an index that matches them.
        """
        rows, fits = batch
        if not rows:
            return 0, 0
        stamp = now()
        tail = (source, stamp)
        new = updated = 0
        with self.transaction():
            pmids = [row[0] for row in rows]
            existing = dict(self._select_in("SELECT pmid, content_hash FROM records", pmids))
            deleted = {r[0] for r in self._select_in("SELECT pmid FROM deleted_pmids", pmids)}
            changed, touched, rewritten = [], [], []
            for row in rows:
                pmid = row[0]
                if pmid in deleted:
                    continue
                if pmid not in existing:
                    new += 1
                    changed.append(row + tail)
                elif existing[pmid] != row[-1]:
                    updated += 1
                    changed.append(row + tail)
                    rewritten.append(pmid)
                else:
                    touched.append((stamp, source, pmid))
                existing[pmid] = row[-1]  # a PMID twice in one batch counts once
            if rewritten:
                # New text, new fit: every condition's fit of these records is stale now (the
                # one being fetched gets its new fit below).
                self.conn.executemany(
                    "UPDATE condition_records SET fit_rules = NULL WHERE pmid = ? AND fit_rules IS NOT NULL",
                    [(pmid,) for pmid in rewritten],
                )
            if bulk_index and new:
                self._upsert_indexing_new_rows(changed, new)
            else:
                self.conn.executemany(_UPSERT, changed)
            self.conn.executemany(
                "UPDATE records SET fetched_at = ?, source = ? WHERE pmid = ?", touched
            )
            if condition:
                self._link(condition, [p for p in pmids if p not in deleted], run_id, stamp)
                if fit_rules:
                    self._save_fit(condition, [f for f in fits if f[0] not in deleted], fit_rules)
        return new, updated

    def _upsert_indexing_new_rows(self, changed: list[tuple], new: int) -> None:
        """Upsert rows with the insert trigger off, then index the new ones in one statement.

        Inside the caller's transaction: the trigger is dropped and created again from its
        own stored text, so a crash or an error rolls all of it back. Updates of rows cached
        before keep their update trigger.
        """
        trigger = self._insert_trigger_sql()
        if trigger is None:
            self.conn.executemany(_UPSERT, changed)
            return
        # A PMID twice in the batch: one row at its first place (the rowid the per-row path
        # gives it) with its last values (what the second upsert leaves). Without the insert
        # trigger, an update of a row not yet indexed would make the index delete words it
        # never held.
        once = {}
        for row in changed:
            once[row[0]] = row
        (before,) = self.conn.execute("SELECT coalesce(max(rowid), 0) FROM records").fetchone()
        self.conn.execute("DROP TRIGGER records_ai")
        self.conn.executemany(_UPSERT, once.values())
        # New rows take rowids above the largest one, in order: FTS5 wants ascending rowids.
        indexed = self.conn.execute(
            "INSERT INTO records_fts (rowid, title, abstract) "
            "SELECT rowid, title, abstract FROM records WHERE rowid > ? ORDER BY rowid",
            [before],
        ).rowcount
        if indexed != new:
            # SQLite picks rowids at random only once the largest possible one is taken.
            raise StoreError(
                f"{self.path}: {new} new records but {indexed} indexed for search; nothing of "
                "this batch was saved. Run 'evidence doctor' and report this."
            )
        self.conn.execute(trigger)

    def _insert_trigger_sql(self) -> str | None:
        row = self.conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'records_ai'"
        ).fetchone()
        return row[0] if row else None

    def _save_fit(self, condition: str, rows: list[tuple], rules: str) -> None:
        self.conn.executemany(
            "UPDATE condition_records SET fit = ?, fit_rank = ?, fit_reason = ?, fit_rules = ?, "
            "fit_content = ? WHERE condition = ? AND pmid = ?",
            [(fit, rank, reason, rules, content, condition, pmid) for pmid, fit, rank, reason, content in rows],
        )

    def save_fit(self, condition: str, rows: list[tuple], rules: str) -> None:
        """Store topic fits: rows of (pmid, fit, fit_rank, fit_reason, content_hash).

        On a store opened read-only, the fits are written through a short-lived writable
        connection when the file allows it (they are derived data, kept so the next read is
        fast); StoreError when it does not.
        """
        if not rows:
            return
        if self.readonly:
            writer = Store(self.path)
            try:
                writer.save_fit(condition, rows, rules)
            finally:
                writer.close()
            return
        try:
            with self.transaction():
                self._save_fit(condition, rows, rules)
        except sqlite3.OperationalError as exc:
            raise self._open_error(exc) from None

    def stale_fit(self, condition: str, rules: str) -> list[dict]:
        """A condition's records whose fit is missing or was computed by other rules.

        A record saved with new text has its fits cleared in the same transaction
        (`save_encoded`), so "computed by these rules" also means "from this text". Returns
        the fields topic fit reads, decoded, plus `content_hash`.
        """
        # The common answer, nothing stale, from two index counts (a few ms on 30,000).
        (current,) = self.conn.execute(
            "SELECT count(*) FROM condition_records WHERE condition = ? AND fit_rules = ?",
            [condition, rules],
        ).fetchone()
        if current == self.count_condition(condition):
            return []
        cursor = self.conn.execute(
            f"SELECT {FIT_INPUTS} FROM condition_records cr JOIN records r ON r.pmid = cr.pmid "
            "WHERE cr.condition = ? AND cr.fit_rules IS NOT ?",
            [condition, rules],
        )
        out = []
        for row in _dicts(cursor):
            digest = row.pop("content_hash")
            out.append({**row_to_record(row), "content_hash": digest})
        return out

    def _link(self, condition: str, pmids: list[str], run_id: int | None, stamp: str) -> int:
        before = self.conn.total_changes
        self.conn.executemany(
            "INSERT INTO condition_records (condition, pmid, first_run, last_run, added_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(condition, pmid) DO UPDATE SET last_run = excluded.last_run",
            [(condition, p, run_id, run_id, stamp) for p in pmids],
        )
        return self.conn.total_changes - before

    def link(self, condition: str, pmids: list[str], run_id: int | None = None) -> int:
        """Link cached PMIDs to a condition (no fetch needed). Returns rows touched."""
        if not pmids:
            return 0
        with self.transaction():
            cached = [r[0] for r in self._select_in("SELECT pmid FROM records", pmids)]
            return self._link(condition, cached, run_id, now())

    def curated(self, pmids: list[str]) -> list[dict]:
        """Of these PMIDs, those a person decided on or wrote a note about:
        [{pmid, title, decisions: [{condition, decision}], note}], by PMID."""
        found: dict[str, dict] = {}
        for pmid, condition, decision in self._select_in("SELECT pmid, condition, decision FROM decisions", pmids):
            found.setdefault(pmid, {"pmid": pmid, "decisions": [], "note": None})["decisions"].append(
                {"condition": condition, "decision": decision})
        for pmid, text in self._select_in("SELECT pmid, text FROM notes", pmids):
            found.setdefault(pmid, {"pmid": pmid, "decisions": [], "note": None})["note"] = text
        titles = dict(self._select_in("SELECT pmid, title FROM records", list(found)))
        for pmid, entry in found.items():
            entry["title"] = printable(titles.get(pmid) or "")
        return [found[p] for p in sorted(found, key=int)]

    def mark_deleted(self, pmids: list[str], source: str) -> int:
        """Record NLM's <DeleteCitation> PMIDs; they stop being live records. Returns how many were cached.

        A record a person decided on or wrote a note about is kept, with its decision, note and
        condition links, and flagged `withdrawn`, so the study shows as withdrawn from PubMed
        where it was chosen instead of vanishing from a curated handout.
        """
        if not pmids:
            return 0
        with self.transaction():
            cached = [r[0] for r in self._select_in("SELECT pmid FROM records", pmids)]
            kept = {e["pmid"] for e in self.curated(cached)}
            stamp = now()
            self.conn.executemany(
                "INSERT OR REPLACE INTO deleted_pmids (pmid, deleted_at, source) VALUES (?, ?, ?)",
                [(p, stamp, source) for p in pmids],
            )
            for pmid, flags in self._select_in("SELECT pmid, flags FROM records", sorted(kept)):
                marked = json.loads(flags) if flags else []
                if "withdrawn" not in marked:
                    self.conn.execute("UPDATE records SET flags = ? WHERE pmid = ?",
                                      [_encode(marked + ["withdrawn"]), pmid])
            gone = [p for p in pmids if p not in kept]
            for chunk in _chunks(gone, 500):
                marks = ", ".join("?" * len(chunk))
                self.conn.execute(f"DELETE FROM records WHERE pmid IN ({marks})", chunk)
                self.conn.execute(f"DELETE FROM condition_records WHERE pmid IN ({marks})", chunk)
        return len(cached)

    def _select_in(self, sql: str, pmids: list[str]) -> list[tuple]:
        """Run `sql WHERE pmid IN (...)` over any number of PMIDs."""
        out: list[tuple] = []
        # Old SQLite builds cap bound parameters at 999; stay below it.
        for chunk in _chunks(pmids, 900):
            marks = ", ".join("?" * len(chunk))
            out += self.conn.execute(f"{sql} WHERE pmid IN ({marks})", chunk).fetchall()
        return out

    def cached_pmids(self, pmids: list[str]) -> set[str]:
        """Which of these PMIDs are already cached."""
        return {r[0] for r in self._select_in("SELECT pmid FROM records", pmids)}

    def deleted(self, pmids: list[str]) -> set[str]:
        """Which of these PMIDs NLM deleted."""
        return {r[0] for r in self._select_in("SELECT pmid FROM deleted_pmids", pmids)}

    def stale_pmids(self, pmids: list[str], max_age_days: float) -> list[str]:
        """Cached PMIDs worth refetching: not yet status MEDLINE, or fetched too long ago."""
        cutoff = _days_ago(max_age_days)
        stale: set[str] = set()
        for chunk in _chunks(pmids, 900):
            marks = ", ".join("?" * len(chunk))
            stale.update(
                r[0] for r in self.conn.execute(
                    f"SELECT pmid FROM records WHERE pmid IN ({marks}) AND "
                    "(coalesce(status, '') != 'MEDLINE' OR fetched_at < ?)",
                    [*chunk, cutoff],
                )
            )
        return sorted(stale, key=int, reverse=True)

    def get_record(self, pmid: str) -> dict:
        """One cached record, or NotCachedError."""
        rows = _dicts(self.conn.execute("SELECT * FROM records WHERE pmid = ?", [pmid]))
        if not rows:
            raise NotCachedError(
                f"PMID {pmid} is not in the database {self.path}: fetch its condition or import it first."
            )
        record = row_to_record(rows[0])
        note = self.conn.execute("SELECT text FROM notes WHERE pmid = ?", [pmid]).fetchone()
        record["note"] = note[0] if note else None
        record["conditions"] = [
            r[0] for r in self.conn.execute(
                "SELECT condition FROM condition_records WHERE pmid = ? ORDER BY condition", [pmid]
            )
        ]
        return record

    def get_records(self, pmids: list[str]) -> list[dict]:
        """Cached records in the order of `pmids` (those not cached are left out), with notes."""
        found: dict[str, dict] = {}
        for chunk in _chunks(pmids, 900):
            marks = ", ".join("?" * len(chunk))
            cursor = self.conn.execute(
                f"SELECT r.*, n.text AS note FROM records r LEFT JOIN notes n ON n.pmid = r.pmid "
                f"WHERE r.pmid IN ({marks})", chunk,
            )
            for row in _dicts(cursor):
                found[row["pmid"]] = row_to_record(row)
        return [found[p] for p in pmids if p in found]

    def iter_records(self, sql_where: str = "", params: Iterable = ()) -> Iterator[dict]:
        cursor = self.conn.execute(f"SELECT * FROM records {sql_where}", tuple(params))
        cols = [d[0] for d in cursor.description]
        for row in cursor:
            yield row_to_record(dict(zip(cols, row)))

    def condition_records(
        self,
        condition: str,
        *,
        level: Iterable[int] | None = None,
        since: int | None = None,
        include_retracted: bool = False,
        limit: int | None = None,
        columns: str = "r.*",
        fit: Iterable[str] | None = None,
        sort: str = "fit",
        first_run: int | None = None,
    ) -> list[dict]:
        """A condition's records, ranked.

        `sort="fit"`: topic fit first (direct, partial, mention, none, not computed), then
        level (none last), newest year, PMID. `sort="level"`: the same without fit.
        `fit` keeps only those fits; `first_run` only records first linked by that run.
        """
        where = ["cr.condition = ?"]
        params: list = [condition]
        if level:
            levels = list(level)
            where.append(f"r.level IN ({', '.join('?' * len(levels))})")
            params += levels
        if since is not None:
            where.append("r.year >= ?")
            params.append(since)
        if not include_retracted:
            where.append("r.retracted = 0")
        if fit:
            fits = list(fit)
            where.append(f"cr.fit IN ({', '.join('?' * len(fits))})")
            params += fits
        if first_run is not None:
            where.append("cr.first_run = ?")
            params.append(first_run)
        if sort not in ("fit", "level"):
            raise ValueError(f"unknown sort {sort!r}")
        order = "cr.fit_rank IS NULL, cr.fit_rank, " if sort == "fit" else ""
        sql = (
            f"SELECT {columns}, cr.fit AS fit, cr.fit_rank AS fit_rank, cr.fit_reason AS fit_reason, "
            "d.decision AS decision, d.reason AS decision_reason, "
            "n.text AS note FROM condition_records cr JOIN records r ON r.pmid = cr.pmid "
            "LEFT JOIN decisions d ON d.condition = cr.condition AND d.pmid = cr.pmid "
            "LEFT JOIN notes n ON n.pmid = cr.pmid "
            f"WHERE {' AND '.join(where)} "
            f"ORDER BY {order}r.level IS NULL, r.level, r.year IS NULL, r.year DESC, CAST(r.pmid AS INTEGER) DESC"
        )
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return [row_to_record(row) for row in _dicts(self.conn.execute(sql, params))]

    def count_condition(self, condition: str) -> int:
        return self.conn.execute(
            "SELECT count(*) FROM condition_records WHERE condition = ?", [condition]
        ).fetchone()[0]

    def cochrane_records(self) -> list[dict]:
        """Every cached Cochrane review (by journal or DOI), for marking superseded versions."""
        return list(self.iter_records(f"WHERE {_COCHRANE}"))  # idx_records_cochrane answers it

    def set_flags(self, updates: dict[str, list[str]]) -> None:
        """Write new flags for some PMIDs (e.g. superseded Cochrane versions)."""
        if not updates:
            return
        with self.transaction():
            self.conn.executemany(
                "UPDATE records SET flags = ? WHERE pmid = ?",
                [(json.dumps(flags), pmid) for pmid, flags in updates.items()],
            )

    def search(self, text: str, *, condition: str | None = None, limit: int = 20) -> list[dict]:
        """Full-text search over titles and abstracts, best match first, with a snippet."""
        where = "records_fts MATCH ?"
        params: list = [_fts_query(text)]
        join = ""
        if condition:
            join = "JOIN condition_records cr ON cr.pmid = r.pmid AND cr.condition = ?"
            params.insert(0, condition)
        sql = (
            "SELECT r.*, snippet(records_fts, -1, '[', ']', '…', 12) AS snippet, "
            "bm25(records_fts, 5.0, 1.0) AS rank "
            f"FROM records_fts JOIN records r ON r.rowid = records_fts.rowid {join} "
            f"WHERE {where} ORDER BY rank LIMIT ?"
        )
        params.append(limit)
        try:
            cursor = self.conn.execute(sql, params)
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc):
                raise StoreError(
                    f"Cannot understand the search {text!r} ({exc}). Use plain words, "
                    'put a phrase in "double quotes", and use AND, OR, NOT in capitals.'
                ) from None
            raise self._open_error(exc) from None
        return [row_to_record(row) for row in _dicts(cursor)]

    # -- runs -----------------------------------------------------------------------------

    def start_run(self, condition: str | None, kind: str, **fields) -> int:
        """Record the start of a fetch or import; returns its id."""
        with self.transaction():
            cursor = self.conn.execute(
                "INSERT INTO runs (condition, kind, term, source, started_at, outcome, pid) "
                "VALUES (?, ?, ?, ?, ?, 'running', ?)",
                [condition, kind, fields.get("term"), fields.get("source"), now(), os.getpid()],
            )
            return cursor.lastrowid

    def update_run(self, run_id: int, **fields) -> None:
        """Set counts or other fields of a run (committed at once, so a crash keeps them)."""
        allowed = {
            "term", "query_translation", "source", "hits", "new", "updated", "linked", "failed",
            "deleted", "requests", "outcome", "error", "finished_at",
        }
        bad = set(fields) - allowed
        if bad:
            raise ValueError(f"unknown run fields: {sorted(bad)}")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction():
            self.conn.execute(f"UPDATE runs SET {sets} WHERE id = ?", [*fields.values(), run_id])

    def finish_run(self, run_id: int, outcome: str, **fields) -> None:
        self.update_run(run_id, outcome=outcome, finished_at=now(), **fields)

    def runs(self, condition: str | None = None, limit: int = 20) -> list[dict]:
        sql = "SELECT * FROM runs"
        params: list = []
        if condition:
            sql += " WHERE condition = ?"
            params.append(condition)
        sql += " ORDER BY id DESC LIMIT ?"
        params.append(limit)
        rows = _dicts(self.conn.execute(sql, params))
        for row in rows:
            if row["outcome"] == "running" and not _pid_alive(row.get("pid")):
                row["outcome"] = "interrupted"
        return rows

    def imports(self, condition: str) -> list[dict]:
        """The finished imports that linked records to a condition, oldest first."""
        return _dicts(self.conn.execute(
            "SELECT * FROM runs WHERE condition = ? AND kind = 'import' AND outcome = 'ok' ORDER BY id",
            [condition],
        ))

    def last_run(self, condition: str) -> dict | None:
        """The newest finished fetch or import of a condition, if any."""
        rows = _dicts(self.conn.execute(
            "SELECT * FROM runs WHERE condition = ? AND outcome = 'ok' AND kind IN ('fetch', 'import') "
            "ORDER BY id DESC LIMIT 1",
            [condition],
        ))
        return rows[0] if rows else None

    def last_runs(self) -> dict[str, dict]:
        """Each condition's latest run (failed ones included), by condition."""
        rows = _dicts(self.conn.execute(
            "SELECT * FROM runs WHERE id IN (SELECT max(id) FROM runs WHERE condition IS NOT NULL "
            "GROUP BY condition) ORDER BY condition"
        ))
        for row in rows:
            if row["outcome"] == "running" and not _pid_alive(row.get("pid")):
                row["outcome"] = "interrupted"
        return {row["condition"]: row for row in rows}

    def last_search(self, condition: str) -> dict | None:
        """The last finished fetch of a condition (its term, date and hits), if any."""
        cursor = self.conn.execute(
            "SELECT * FROM runs WHERE condition = ? AND kind = 'fetch' AND hits IS NOT NULL "
            "ORDER BY id DESC LIMIT 1",
            [condition],
        )
        rows = _dicts(cursor)
        return rows[0] if rows else None

    # -- curation -------------------------------------------------------------------------

    def decide(self, condition: str, pmids: list[str], decision: str, reason: str | None) -> None:
        """Include or exclude PMIDs for a condition; raises NotCachedError for unknown PMIDs."""
        pmids = list(dict.fromkeys(pmids))  # a PMID named twice is one decision, logged once
        missing = sorted(set(pmids) - self.cached_pmids(pmids), key=int)
        if missing:
            raise NotCachedError(
                f"Not in the database: PMID {', '.join(missing)}. Fetch or import it first "
                "(evidence show PMID tells what is cached)."
            )
        stamp = now()
        with self.transaction():
            self._link(condition, pmids, None, stamp)
            self.conn.executemany(
                "INSERT OR REPLACE INTO decisions (condition, pmid, decision, reason, decided_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [(condition, p, decision, reason, stamp) for p in pmids],
            )
            self.conn.executemany(
                "INSERT INTO decision_log (condition, pmid, action, reason, at) VALUES (?, ?, ?, ?, ?)",
                [(condition, p, decision, reason, stamp) for p in pmids],
            )

    def undo_decisions(self, condition: str, pmids: list[str] | None = None) -> int:
        """Forget decisions (all of a condition's, or some PMIDs'); logged. Returns how many."""
        stamp = now()
        with self.transaction():
            if pmids is None:
                pmids = [r[0] for r in self.conn.execute(
                    "SELECT pmid FROM decisions WHERE condition = ?", [condition])]
            removed = 0
            for pmid in pmids:
                cursor = self.conn.execute(
                    "DELETE FROM decisions WHERE condition = ? AND pmid = ?", [condition, pmid]
                )
                if cursor.rowcount:
                    removed += 1
                    self.conn.execute(
                        "INSERT INTO decision_log (condition, pmid, action, reason, at) "
                        "VALUES (?, ?, 'undo', NULL, ?)", [condition, pmid, stamp],
                    )
        return removed

    def decisions(self, condition: str) -> list[dict]:
        cursor = self.conn.execute(
            "SELECT d.*, r.title, r.year, r.level_label FROM decisions d "
            "LEFT JOIN records r ON r.pmid = d.pmid WHERE d.condition = ? "
            "ORDER BY d.decision, d.decided_at, d.pmid",
            [condition],
        )
        return [_printable_row(row) for row in _dicts(cursor)]

    def decision_history(self, condition: str) -> list[dict]:
        return _dicts(self.conn.execute(
            "SELECT * FROM decision_log WHERE condition = ? ORDER BY id", [condition]
        ))

    def set_note(self, pmid: str, text: str) -> None:
        if not self.cached_pmids([pmid]):
            raise NotCachedError(f"PMID {pmid} is not in the database: fetch or import it first.")
        with self.transaction():
            if text:
                self.conn.execute(
                    "INSERT OR REPLACE INTO notes (pmid, text, updated_at) VALUES (?, ?, ?)",
                    [pmid, text, now()],
                )
            else:
                self.conn.execute("DELETE FROM notes WHERE pmid = ?", [pmid])

    # -- status ---------------------------------------------------------------------------

    def conditions_summary(self, stale_after_days: float) -> list[dict]:
        """Per linked condition: records cached, counts by level, retracted, stale.

        Stale: worth refetching with --refresh (not yet MEDLINE-indexed, or fetched more than
        `stale_after_days` ago), since NLM adds MeSH, types and retractions later.
        """
        cutoff = _days_ago(stale_after_days)
        cursor = self.conn.execute(
            "SELECT cr.condition, count(*) AS records, "
            "sum(r.retracted) AS retracted, "
            "sum(CASE WHEN coalesce(r.status, '') != 'MEDLINE' THEN 1 ELSE 0 END) AS not_indexed, "
            "sum(CASE WHEN coalesce(r.status, '') != 'MEDLINE' OR r.fetched_at < ? THEN 1 ELSE 0 END) AS stale, "
            "min(r.fetched_at) AS oldest_fetch "
            "FROM condition_records cr JOIN records r ON r.pmid = cr.pmid GROUP BY cr.condition "
            "ORDER BY cr.condition",
            [cutoff],
        )
        out = {row["condition"]: row for row in _dicts(cursor)}
        cursor = self.conn.execute(
            "SELECT cr.condition, r.level, count(*) FROM condition_records cr "
            "JOIN records r ON r.pmid = cr.pmid WHERE r.retracted = 0 GROUP BY cr.condition, r.level"
        )
        for condition, level, count in cursor:
            out[condition].setdefault("by_level", {})[str(level) if level else "none"] = count
        return list(out.values())

    def totals(self) -> dict:
        return {
            "records": self.conn.execute("SELECT count(*) FROM records").fetchone()[0],
            "runs": self.conn.execute("SELECT count(*) FROM runs").fetchone()[0],
            "deleted": self.conn.execute("SELECT count(*) FROM deleted_pmids").fetchone()[0],
        }

    def integrity_check(self) -> str:
        """SQLite's integrity check: "ok", or what is wrong (a damaged file included)."""
        try:
            return self.conn.execute("PRAGMA integrity_check").fetchone()[0]
        except sqlite3.DatabaseError as exc:
            return str(exc)

    def close(self) -> None:
        self.conn.close()

    # -- screening (evidence review) ------------------------------------------------------

    def screening_summary(
        self, condition: str | None = None, *, on_topic: Iterable[str] = ()
    ) -> dict[str, dict]:
        """Per condition with linked records (or just `condition`): how many, how many with a
        stored fit in `on_topic`, how many decided, included, excluded, and when its last fetch
        ran (`last_fetch`, None if only imported)."""
        where, params = ("WHERE cr.condition = ? ", [condition]) if condition else ("", [])
        fits = list(on_topic) or [""]
        out = {
            row["condition"]: row
            for row in _dicts(self.conn.execute(
                "SELECT cr.condition, count(*) AS records, "
                f"coalesce(sum(cr.fit IN ({', '.join('?' * len(fits))})), 0) AS on_topic, "
                "count(d.pmid) AS screened, "
                "coalesce(sum(d.decision = 'include'), 0) AS included, "
                "coalesce(sum(d.decision = 'exclude'), 0) AS excluded "
                "FROM condition_records cr LEFT JOIN decisions d "
                f"ON d.condition = cr.condition AND d.pmid = cr.pmid {where}GROUP BY cr.condition",
                fits + params,
            ))
        }
        for condition_, last in self.conn.execute(
            "SELECT condition, max(coalesce(finished_at, started_at)) FROM runs "
            f"WHERE kind = 'fetch' {'AND condition = ? ' if condition else ''}GROUP BY condition",
            params,
        ):
            if condition_ in out:
                out[condition_]["last_fetch"] = last
        for row in out.values():
            row.setdefault("last_fetch", None)
        return out

    def is_linked(self, condition: str, pmid: str) -> bool:
        """Whether a PMID is one of a condition's records."""
        return self.conn.execute(
            "SELECT 1 FROM condition_records WHERE condition = ? AND pmid = ?", [condition, pmid]
        ).fetchone() is not None

    def search_pmids(self, text: str, *, condition: str | None = None) -> set[str]:
        """Every PMID whose title or abstract matches a search (the syntax of `search`)."""
        where, params = "", [_fts_query(text)]
        if condition:
            where = " AND r.pmid IN (SELECT pmid FROM condition_records WHERE condition = ?)"
            params.append(condition)
        try:
            # The full-text match first, as a set: joined the other way round, SQLite ran the
            # MATCH once per linked record (0.15 s for 3,000 instead of a few ms).
            cursor = self.conn.execute(
                "SELECT r.pmid FROM records r WHERE r.rowid IN "
                f"(SELECT rowid FROM records_fts WHERE records_fts MATCH ?){where}", params,
            )
            return {row[0] for row in cursor}
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise self._open_error(exc) from None
            raise StoreError(
                f"Cannot understand the search {text!r} ({exc}). Use plain words, "
                'put a phrase in "double quotes", and use AND, OR, NOT in capitals.'
            ) from None


class _Transaction:
    def __init__(self, store: Store):
        self.store = store
        self.outer = False

    def __enter__(self):
        conn = self.store.conn
        if conn.in_transaction:  # nested: the outer one commits
            return self
        self.outer = True
        # SQLite waits LOCK_NOTICE_MS at a time; between waits we say that we are waiting, so a
        # database held by another program never looks like a hang, and give up at BUSY_TIMEOUT_MS.
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        told = False
        while True:
            try:
                conn.execute("BEGIN IMMEDIATE")
                return self
            except sqlite3.OperationalError as exc:
                text = str(exc)
                if ("locked" not in text and "busy" not in text) or time.monotonic() >= deadline:
                    raise self.store._open_error(exc) from None
                if not told:
                    log.warning(
                        "Waiting for the database %s: another program is writing to it "
                        "(giving up after %.0f s)...", self.store.path, BUSY_TIMEOUT_MS / 1000,
                    )
                    told = True

    def __exit__(self, exc_type, exc, tb):
        if not self.outer:
            return False
        conn = self.store.conn
        if exc_type is None:
            try:
                conn.execute("COMMIT")
                return False
            except sqlite3.Error as error:
                # A full disk or an I/O error may already have rolled the transaction back;
                # a second ROLLBACK would only hide the real error behind "no transaction".
                self._rollback()
                raise self.store._open_error(error) from None
        self._rollback()
        if isinstance(exc, sqlite3.OperationalError):
            raise self.store._open_error(exc) from None
        return False

    def _rollback(self) -> None:
        conn = self.store.conn
        if conn.in_transaction:
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass


_HYPHENATED = re.compile(r'(?<!["\w])(\w+(?:-\w+)+)(?![\w"])')


def _fts_query(text: str) -> str:
    """A user's search as FTS5 syntax: hyphenated words ("self-massage") become phrases.

    FTS5 reads `self-massage` as a column filter and fails; as the phrase "self-massage" it
    matches the words the tokenizer made of the same text. Quoted parts are left alone.
    """
    parts = text.split('"')
    for i in range(0, len(parts), 2):  # outside quotes only
        parts[i] = _HYPHENATED.sub(r'"\1"', parts[i])
    return '"'.join(parts)


def read_only_mount(path: Path) -> bool:
    """True when `path` lies on a file system mounted read-only."""
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def free_bytes(path: Path) -> int | None:
    """Bytes an ordinary user may still write on the file system holding `path`."""
    try:
        info = os.statvfs(path)
    except OSError:
        return None
    return info.f_bavail * info.f_frsize


def write_blocker(path: Path) -> str | None:
    """Why the database at `path` cannot be written (in plain words), or None if it can."""
    path = Path(path).absolute()
    folder = path.parent
    if read_only_mount(folder):
        return "the disk holding it is mounted read-only"
    if path.exists() and not os.access(path, os.W_OK):
        return "the file is read-only"
    if not os.access(folder, os.W_OK):
        return f"its folder {folder} is read-only (SQLite writes a journal beside it)"
    return None


def is_locked(path: Path, wait_ms: int = 200) -> bool:
    """True when another connection holds the database's write lock right now."""
    try:
        conn = sqlite3.connect(str(path), timeout=wait_ms / 1000, isolation_level=None)
    except sqlite3.Error:
        return False
    try:
        conn.execute(f"PRAGMA busy_timeout = {wait_ms}")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError as exc:
        return "locked" in str(exc) or "busy" in str(exc)
    finally:
        conn.close()


def inspect_database(path: Path) -> dict:
    """What `evidence doctor` reports about a database file, without changing it.

    Keys: exists, error (why it cannot be used, or None), integrity, schema_version, current
    (schema is this program's), records, size_bytes, read_only (why it cannot be written, or
    None), free_bytes, locked.
    """
    path = Path(path)
    facts: dict = {"exists": path.exists(), "error": None, "integrity": None, "schema_version": None,
                   "current": False, "records": None, "size_bytes": None, "read_only": None,
                   "free_bytes": free_bytes(path.absolute().parent), "locked": False}
    if not facts["exists"]:
        return facts
    facts["size_bytes"] = path.stat().st_size
    facts["read_only"] = write_blocker(path)
    try:
        store = Store(path, readonly=True)
    except StoreError as exc:
        facts["error"] = str(exc)
        return facts
    try:
        facts["integrity"] = store.integrity_check()
        facts["schema_version"] = store.schema_version
        facts["current"] = facts["schema_version"] == SCHEMA_VERSION and store.application_id == APPLICATION_ID
        if facts["integrity"] == "ok":
            facts["records"] = store.totals()["records"]
    except (sqlite3.Error, StoreError) as exc:
        facts["error"] = str(exc)
    finally:
        store.close()
    if facts["read_only"] is None:
        facts["locked"] = is_locked(path)
    return facts


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
