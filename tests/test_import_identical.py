"""The fast import path stores exactly what the plain one stores.

A large file is imported by two processes (the parsing one grading, fitting and encoding
part of each batch, the storing one the rest) and indexed for search one batch at a time in
one statement; a small file is graded and saved row by row, with the full-text index kept by
triggers, as a fetch saves. Both must leave the same database: every row of every table,
content hashes and topic fits included, the same full-text index (every indexed word of
every record, at every position) and the same search results. And the speed-ups in the
pure code (grading's text checks, topic fit's key tests, the parser's whitespace rule) must
give what the plain code gives.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import random
import re
import sqlite3
import sys
from pathlib import Path

import pytest

from evidence import grading, pipeline, pubmed, queries, relevance
from evidence.store import Store
from tests.conftest import EUTILS
from tests.eutils_stub import EFETCH_HEAD, EFETCH_TAIL

_ARTICLE = re.compile(rb"<PubmedArticle[\s>].*?</PubmedArticle>", re.S)
_PMID = re.compile(rb"<PMID[^>]*>(\d+)</PMID>")
# Timestamps and process ids: they differ between any two runs, however alike.
VOLATILE = {
    "records": {"fetched_at"},
    "condition_records": {"added_at"},
    "runs": {"started_at", "finished_at", "pid", "source"},
    "deleted_pmids": {"deleted_at"},
}
# FTS5's segment pages: their layout depends on when the index flushed, not on what it
# holds. What it holds is compared word by word through fts5vocab instead.
LAYOUT_TABLES = {"records_fts_data", "records_fts_idx"}
SEARCHES = ["massage", "pain", "randomized AND trial", '"low back pain"', "aspirin OR surgery",
            "child*", "myofascial NOT release", "self-massage", "cancer", "infant"]  # fmt: skip


def real_articles() -> list[bytes]:
    """Every real <PubmedArticle> element in the fixtures (efetch answers, NLM excerpts,
    cassettes), in file order, repeats included."""
    from tests.eutils_stub import load_articles

    elements = []
    for path in sorted(EUTILS.iterdir()):
        if path.suffix == ".xml":
            elements += _ARTICLE.findall(path.read_bytes())
        elif path.suffix == ".yaml":
            elements += list(load_articles(path).values())
    return elements


def write_xml(path: Path, elements: list[bytes], extra: bytes = b"") -> Path:
    path.write_bytes(gzip.compress(EFETCH_HEAD + b"\n".join(elements) + b"\n" + extra + EFETCH_TAIL))
    return path


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> list[Path]:
    """Files that exercise every branch of a save: new, updated, unchanged, a PMID twice in
    one batch (two real versions of 23121403: a 2015 and a 2024 capture), deleted, and a
    deleted PMID that an older file brings back."""
    folder = tmp_path_factory.mktemp("identical")
    articles = real_articles()
    by_pmid: dict[bytes, list[bytes]] = {}
    for element in articles:
        by_pmid.setdefault(_PMID.search(element).group(1), []).append(element)
    versions = [v for v in by_pmid[b"23121403"]]
    assert len(set(versions)) >= 2, "the 2015 and 2024 captures of 23121403 differ"
    first = write_xml(folder / "first.xml.gz", articles + versions)
    later = write_xml(folder / "later.xml.gz", versions[::-1] + articles[:20])
    deleted = next(iter(p for p in by_pmid if p != b"23121403"))
    delete = write_xml(
        folder / "delete.xml.gz", articles[20:40],
        b'<DeleteCitation><PMID Version="1">' + deleted + b"</PMID></DeleteCitation>\n",
    )
    return [first, later, delete, first]


def import_all(db: Path, files: list[Path], parallel: bool) -> Store:
    store = Store(db)
    for path in files:
        # Small batches, so batches split repeats and the parsing process hands over some.
        summary = pipeline.import_file(
            store, path, condition="low-back-pain", batch_size=7, parallel=parallel
        )
        assert summary.outcome == "ok"
    return store


def table_rows(conn: sqlite3.Connection) -> dict[str, list]:
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    out = {}
    for table in tables:
        if table in LAYOUT_TABLES or table.startswith("sqlite_"):
            continue
        try:
            cursor = conn.execute(f"SELECT rowid, * FROM {table} ORDER BY rowid")
        except sqlite3.OperationalError:  # a WITHOUT ROWID table (FTS5's config): by its key
            cursor = conn.execute(f"SELECT * FROM {table} ORDER BY 1")
        names = [d[0] for d in cursor.description]
        volatile = VOLATILE.get(table, set())
        rows = []
        for row in cursor:
            values = dict(zip(names, row))
            for name in volatile:
                assert values[name] is not None or name == "finished_at", (table, name)
                values[name] = "(varies)"
            rows.append(values)
        out[table] = rows
    return out


def index_words(conn: sqlite3.Connection) -> list[tuple]:
    """Every (word, rowid, column, position) the full-text index holds."""
    conn.execute("CREATE VIRTUAL TABLE IF NOT EXISTS temp.words USING fts5vocab(main, records_fts, instance)")
    return conn.execute("SELECT term, doc, col, offset FROM temp.words ORDER BY 1, 2, 3, 4").fetchall()


def schema(conn: sqlite3.Connection) -> list[tuple]:
    # The fast path drops and recreates the insert trigger in each batch's transaction: the
    # same definition, written again at the end of sqlite_master.
    return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()


class Storer:
    """Stands in for what the parsing process reads of the storing one (whether it has taken
    every message sent), so that each way of splitting batches between the two processes is
    tested, not only the one this machine's timing happens to give."""

    def __init__(self, mode: str):
        self.mode = mode
        self.rng = random.Random(14)

    def ready(self, sent: int) -> bool:
        if self.mode == "mixed":
            return self.rng.random() < 0.3
        return self.mode == "storer finishes"


@pytest.fixture(scope="module")
def plain(files, tmp_path_factory):
    store = import_all(tmp_path_factory.mktemp("plain") / "plain.db", files, parallel=False)
    yield store
    store.close()


@pytest.fixture(scope="module", params=["as timed", "storer finishes", "parser finishes", "mixed"])
def both(request, plain, files, tmp_path_factory):
    mode = request.param
    child_main = pipeline._child_main

    def child_with_stand_in(path, kind, batch_size, rules, sender, storer, receiver):
        # Runs in the forked parsing process.
        child_main(path, kind, batch_size, rules, sender, storer if mode == "as timed" else Storer(mode), receiver)

    patch = pytest.MonkeyPatch()
    patch.setattr(pipeline, "_child_main", child_with_stand_in)
    patch.setattr(pipeline, "FINISH_CHUNK", 3)
    try:
        fast = import_all(tmp_path_factory.mktemp("fast") / "fast.db", files, parallel=True)
    finally:
        patch.undo()
    yield plain, fast
    fast.close()


def test_every_row_of_every_table_is_the_same(both):
    plain, fast = both
    rows_plain, rows_fast = table_rows(plain.conn), table_rows(fast.conn)
    assert rows_plain.keys() == rows_fast.keys()
    for table in rows_plain:
        assert rows_plain[table] == rows_fast[table], table
    # It means something only if the files made every kind of save happen.
    runs = rows_plain["runs"]
    assert [r["outcome"] for r in runs] == ["ok"] * 4
    assert runs[0]["new"] > 40 and runs[1]["updated"] >= 1 and runs[2]["deleted"] == 1
    assert len(rows_plain["deleted_pmids"]) == 1
    fits = {r["fit"] for r in rows_plain["condition_records"]}
    assert {"direct", "none"} <= fits and None not in fits


def test_full_text_index_holds_the_same_words_and_answers_the_same(both):
    plain, fast = both
    for store in both:
        store.conn.execute("INSERT INTO records_fts (records_fts) VALUES ('integrity-check')")
    words = index_words(plain.conn)
    assert len(words) > 5_000
    assert index_words(fast.conn) == words
    hits = 0
    for text in SEARCHES:
        found = answers(plain, text)
        assert answers(fast, text) == found, text
        hits += len(found)
    assert hits > 30


def answers(store: Store, text: str) -> list[tuple]:
    return [(r["pmid"], r["rank"], r["snippet"]) for r in store.search(text, limit=1000)]


def test_schema_is_the_same_and_the_insert_trigger_is_back(both):
    plain, fast = both
    assert schema(fast.conn) == schema(plain.conn)
    assert any(name == "records_ai" for _, name, _, _ in schema(fast.conn))


def test_a_new_record_saved_later_by_a_fetch_is_indexed(both, tmp_path):
    """The trigger the bulk path dropped for a batch is back: a plain save indexes again."""
    _, fast = both
    fast.save_records([{"pmid": "99000900", "title": "SYNTHETIC zyxwvut trial", "abstract": None}],
                      source="test")
    assert [r["pmid"] for r in fast.search("zyxwvut")] == ["99000900"]


# -- the pure speed-ups give what the plain code gives ---------------------------------------


def every_fixture_record() -> list[dict]:
    records = []
    for element in real_articles():
        records += pubmed.parse_efetch(EFETCH_HEAD + element + EFETCH_TAIL)
    return records


TWINS = {"i": "\u0131", "s": "\u017f", "k": "\u212a"}


def variants(record: dict) -> list[dict]:
    """A record as it is, shouted, and with the letters re.I also matches to ASCII ones."""
    def twisted(text):
        return text.translate(str.maketrans(TWINS)) if isinstance(text, str) else text

    fields = ("title", "abstract")
    return [
        record,
        {**record, **{f: (record.get(f) or "").upper() for f in fields}},
        {**record, **{f: twisted(record.get(f)) for f in fields}},
        {**record, "keywords": [twisted(k) for k in record.get("keywords") or []]},
    ]


def bare(rules: relevance.Rules) -> relevance.Rules:
    """The same rules with every key test off: each text is searched with the regex alone."""
    def plain(words):
        return None if words is None else relevance._Words(words.pattern, None)

    return dataclasses.replace(
        rules,
        massage=dataclasses.replace(rules.massage, pattern=plain(rules.massage.pattern)),
        condition=dataclasses.replace(rules.condition, pattern=plain(rules.condition.pattern)),
        excluded=plain(rules.excluded),
    )


def test_topic_fit_key_tests_change_no_fit_for_any_condition():
    records = [v for r in every_fixture_record() for v in variants(r)]
    extra = [
        "SYNTHETIC LOWER BACK PAIN and Myofascial Release", "SYNTHETIC carotid sinus maſſage",
        "SYNTHETIC tui na for lumbago", "SYNTHETIC labour and pain were long", "SYNTHETIC \u212aNEE",
    ]
    records += [{"pmid": "99000901", "title": t, "abstract": t, "keywords": [t]} for t in extra]
    tested = skipped = 0
    for slug in queries.load_conditions():
        rules = relevance.rules_for(queries.get_condition(slug))
        assert rules.massage.pattern.keys, slug  # the key tests are on
        fast = [relevance.fit(r, rules) for r in records]
        assert fast == [relevance.fit(r, bare(rules)) for r in records], slug
        tested += len(records)
        skipped += sum(f["fit"] == "none" for f in fast)
    assert tested > 1000 and skipped > 100


@pytest.mark.parametrize("word, holds", [
    ("massage*", ("massage",)), ("manual lymph* drainage", ("drainage", "lymph", "manual")),
    ("labor pain~3", ("labor", "pain")), ("tui na", ("tui", "na")), ("ſtretch", None),
])  # fmt: skip
def test_topic_fit_keys_are_pieces_every_match_holds(word, holds):
    words = relevance._compile([word])
    if holds is None:
        assert words.keys is None  # a non-ASCII word gets no key: searched every time
    else:
        assert set(words.keys[0]) == set(holds)


def test_grading_text_shortcut_is_split_and_join():
    # The shortcut rests on this: no printable character but the space is whitespace.
    assert [c for c in range(sys.maxunicode + 1) if chr(c).isspace() and chr(c).isprintable()] == [32]
    rng = random.Random(14)
    alphabet = ["a", "B", " ", "\n", "\t", "\r", "\xa0", "\u2009", "\x85", "\u2028", "é", "\u0130"]
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9)))
        assert grading._text(text) == " ".join(text.split()), repr(text)
    for record in every_fixture_record():
        for name in ("title", "abstract", "journal", "doi"):
            assert grading._text(record.get(name)) == " ".join(str(record.get(name) or "").split())


def test_grading_fold_lowers_and_maps_the_case_twins():
    for text in ["Plain ASCII", "Zürich", "maſſage", "\u212aNEE", "\u0130stanbul", "ıi"]:
        assert grading._fold(text) == text.translate(grading._CASE_TWINS).lower()


def test_parser_text_rule_on_random_whitespace():
    """pubmed._text against the _WS rule it implements, on every mix of layout and odd spaces."""
    import xml.etree.ElementTree as ET

    rng = random.Random(14)
    alphabet = ["a", "b", " ", "\t", "\n", "\r", "\xa0", "\u2009", "\x0b", "\x0c", "\x85", "\u2028", "é"]
    for _ in range(20_000):
        raw = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10)))
        leaf = ET.Element("x")
        leaf.text = raw
        assert pubmed._text(leaf) == (pubmed._WS.sub(" ", raw).strip() or None), repr(raw)


@pytest.mark.parametrize("chunk", [997, 65536])
def test_parser_yields_every_whole_record_before_a_cut(monkeypatch, chunk):
    """iter_pubmed asks the XML parser for almost no events (an end tag's event only near
    each chunk's end), yet a file cut anywhere yields exactly the records whose end tag came
    before the cut, then the error: as with an event for every element."""
    monkeypatch.setattr(pubmed, "_CHUNK", chunk)
    articles = [a for a in real_articles() if b"<PubmedBookArticle" not in a]
    data = EFETCH_HEAD + b"\n".join(articles) + b"\n" + EFETCH_TAIL
    end = b"</PubmedArticle>"
    cuts = set(range(len(EFETCH_HEAD) + 1, len(data), 7919))
    ends = list(re.finditer(re.escape(end), data))
    for found in ends[::4]:
        # Just before, inside, at and just after an end tag, and into the next start tag.
        cuts |= {found.start() - 1, found.start() + 5, found.end(), found.end() + 3, found.end() + 9}
    # Into the root's end tag: "</PubmedArticle>\n</Pub".
    cuts |= set(range(ends[-1].end(), len(data)))
    for cut in sorted(cuts):
        got = []
        with pytest.raises(pubmed.ParseError):
            for record in pubmed.iter_pubmed(io.BytesIO(data[:cut]), "cut"):
                got.append(record["pmid"])
        whole = data[:cut].count(end)
        assert len(got) == whole, (cut, len(got), whole)
    everything = [r["pmid"] for r in pubmed.iter_pubmed(io.BytesIO(data), "whole")]
    assert len(everything) == data.count(end) > 50
