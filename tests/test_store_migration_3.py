"""Migration 3: the fuller PubMed fields reach databases written before it, and are stored."""

from __future__ import annotations

import sqlite3

from evidence import store as store_module
from evidence.store import JSON_FIELDS_3, TEXT_FIELDS_3, Store
from tests.test_export_citation import real_record


def _as_schema_1(path) -> None:
    """Turn a fresh database into what schema 1 wrote: no migration-3 columns, user_version 1."""
    conn = sqlite3.connect(path)
    for name in TEXT_FIELDS_3 + JSON_FIELDS_3:
        conn.execute(f"ALTER TABLE records DROP COLUMN {name}")
    # Schema 1 hashed fewer fields, so no stored hash can equal one of today's.
    conn.execute("UPDATE records SET content_hash = 'a hash over the schema-1 fields'")
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def test_a_schema_1_database_gains_the_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    record = real_record("33984499")
    Store(path).save_records([record], source="test")
    _as_schema_1(path)
    conn = sqlite3.connect(path)
    assert "history" not in {r[1] for r in conn.execute("PRAGMA table_info(records)")}
    conn.close()

    store = Store(path)
    assert store.schema_version == store_module.SCHEMA_VERSION >= 3
    old = store.get_record("33984499")
    assert old["title"] == record["title"]
    assert old["history"] == [] and old["pub_model"] is None  # not known until refetched

    # The refetch fills them; it counts as an update, since the stored content changes.
    assert store.save_records([record], source="test") == (0, 1)
    fresh = store.get_record("33984499")
    for name in TEXT_FIELDS_3 + JSON_FIELDS_3:
        assert fresh[name] == record[name], name
    assert fresh["authors"][0]["affiliations"] == record["authors"][0]["affiliations"]
    assert store.save_records([record], source="test") == (0, 0)


def test_a_new_database_has_every_column_once(tmp_path):
    store = Store(tmp_path / "new.db")
    columns = [r[1] for r in store.conn.execute("PRAGMA table_info(records)")]
    assert len(columns) == len(set(columns))
    assert set(TEXT_FIELDS_3 + JSON_FIELDS_3) <= set(columns)
