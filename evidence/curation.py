"""Which studies go into an export, and the facts about the search that the handout states.

A person's decisions (include / exclude, per condition) win. With no decisions yet, the
default is the strongest current studies: by level, then newest, never retracted,
concern-flagged or superseded ones.
"""

from __future__ import annotations

import datetime as dt

from evidence import __version__
from evidence.queries import Condition

# Flags that keep a study out of any export as support, whatever a person decided.
NEVER_SUPPORT = {"retracted", "expression-of-concern", "superseded"}

DEFAULT_MAX = 10


def usable(record: dict) -> bool:
    """A study that may be shown as support: graded by design, not retracted or superseded."""
    if record.get("retracted"):
        return False
    return not (set(record.get("flags") or []) & NEVER_SUPPORT)


def _why_left_out(record: dict, decided: bool) -> str | None:
    """None when the record is a candidate for the export, else the reason it is left out."""
    flags = set(record.get("flags") or [])
    if decided:
        decision = record.get("decision")
        if decision == "exclude":
            return record.get("decision_reason") or "excluded (no reason given)"
        if decision != "include":
            return "not chosen"
    if record.get("retracted") or "retracted" in flags:
        return "retracted"
    if "expression-of-concern" in flags:
        return "expression of concern"
    if "superseded" in flags:
        return "older version of an updated review"
    if not decided and record.get("level") is None:
        return "guideline, or no study design stated"
    return None


def select(store, condition: Condition, *, max_records: int | None = DEFAULT_MAX) -> tuple[list[dict], dict]:
    """The records to export, in display order, and the counts the handout reports.

    Every record linked to the condition is either included or excluded with a reason, so
    found = included + excluded (a PRISMA-style count).
    """
    # Decide on the light columns of every linked record (a condition may hold tens of
    # thousands), then read in full only the records the export shows.
    records = store.condition_records(
        condition.slug, include_retracted=True,
        columns="r.pmid, r.year, r.level, r.level_label, r.retracted, r.flags",
    )
    decided = any(r.get("decision") for r in records)
    reasons: dict[str, int] = {}
    chosen: list[dict] = []
    for record in records:
        reason = _why_left_out(record, decided)
        # A person's choice is exported whole; the rule's choice stops at max_records.
        if reason is None and not decided and max_records is not None and len(chosen) >= max_records:
            reason = f"not among the {max_records} strongest and newest"
        if reason is None:
            chosen.append(record)
        else:
            reasons[reason] = reasons.get(reason, 0) + 1
    by_level: dict[str, int] = {}
    for record in chosen:
        label = record.get("level_label") or "Study design not stated"
        by_level[label] = by_level.get(label, 0) + 1
    counts = {
        "found": len(records),
        "included": len(chosen),
        "excluded": len(records) - len(chosen),
        "excluded_reasons": reasons,
        "retracted": sum(1 for r in records if _why_left_out(r, False) == "retracted"),
        "superseded": sum(1 for r in records if "superseded" in (r.get("flags") or [])),
        "by_level": by_level,
    }
    full = store.get_records([r["pmid"] for r in chosen])
    for record, light in zip(full, chosen):
        record["decision"], record["decision_reason"] = light.get("decision"), light.get("decision_reason")
    return full, {"counts": counts, "selection": "curated" if decided else "default"}


def export_context(store, condition: Condition, counts_and_selection: dict) -> dict:
    """Everything the handout states besides the studies: condition, search, counts.

    The condition carries its ICD-10-CM codes as ``{code, description, category}`` (category:
    a dash code such as M75.-, "your doctor picks the full code") and its handout parts
    (diary kind, letter, provider, CPT codes with our words, safety line), as the file
    declares them or with the defaults.
    """
    run = store.last_search(condition.slug) or {}
    return {
        "condition": {
            "slug": condition.slug,
            "title": condition.title,
            "description": condition.description,
            "icd10": [dict(code) for code in condition.icd10],
            "handout": condition.handout_parts(),
        },
        "search": {
            "term": run.get("term") or condition.term,
            "run_at": run.get("finished_at") or run.get("started_at"),
            "hits": run.get("hits"),
            "database": "PubMed",
        },
        **counts_and_selection,
        "generated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "tool_version": __version__,
    }


def level_year_table(store, condition: Condition, *, by: str = "decade"):
    """A pandas table: studies by provisional level (rows) and publication year or decade.

    Retracted studies are a row of their own, so the table accounts for every cached study.
    """
    import pandas as pd

    rows = store.condition_records(
        condition.slug, include_retracted=True, columns="r.pmid, r.year, r.level, r.level_label, r.retracted, r.flags"
    )
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame(rows)
    frame["kind"] = [
        "Retracted" if r["retracted"] else (f"{r['level']} {r['level_label']}" if r["level"] else r["level_label"])
        for r in rows
    ]
    years = frame["year"].astype("Int64")
    if by == "decade":
        frame["when"] = (years // 10 * 10).astype("string").fillna("no year").str.replace(r"^(\d+)$", r"\1s", regex=True)
    else:
        frame["when"] = years.astype("string").fillna("no year")
    table = pd.crosstab(frame["kind"], frame["when"], margins=True, margins_name="Total")
    table.index.name = "Provisional level"
    table.columns.name = "Decade" if by == "decade" else "Year"
    return table
