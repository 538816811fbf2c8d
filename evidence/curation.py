"""Which studies go into an export, and the facts about the search that the handout states.

A person's decisions (include / exclude, per condition) win. With no decisions yet, the
default is the studies about massage for the condition (topic fit `direct`, then `partial`
when there are fewer than `MIN_ON_TOPIC`), of levels 1-3, strongest and newest first, never
retracted, concern-flagged or superseded ones. Case reports, background articles and
guidelines enter only by a person's `include`; a record that does not have massage for the
condition as a topic is never chosen by rule.
"""

from __future__ import annotations

import datetime as dt

from evidence import __version__, fits, relevance
from evidence.config import REFRESH_AFTER_DAYS
from evidence.queries import Condition

# Flags that keep a study out of any export as support, whatever a person decided.
NEVER_SUPPORT = {"retracted", "expression-of-concern", "superseded"}

# Ten: with a condition's whole PubMed term, its codes, diary and words box, ten studies with
# their citations, conclusions and notes fit the two printed pages a patient brings (measured
# for every shipped condition, tests/test_export_pdf.py). The CLI's --max default matches it.
DEFAULT_MAX = 10
# Fewer direct studies than this, and the default selection also takes partial ones.
MIN_ON_TOPIC = 3
# Levels the rule may choose: reviews, randomized trials, controlled or observational studies.
RULE_LEVELS = (1, 2, 3)

# Why a record is not in an export, in the words the handout's counts use.
OFF_TOPIC = "not about massage for this condition"
PARTIAL_NOT_NEEDED = "only partly about massage for this condition"
NOT_RULE_LEVEL = "case report or background article (shown only if a person includes it)"
NO_DESIGN = "guideline, or no study design stated"

_LIGHT_COLUMNS = "r.pmid, r.title, r.year, r.level, r.level_label, r.retracted, r.flags, r.fetched_at"


def usable(record: dict) -> bool:
    """A study that may be shown as support: graded by design, not retracted or superseded."""
    if record.get("retracted"):
        return False
    return not (set(record.get("flags") or []) & NEVER_SUPPORT)


def flag_reason(record: dict) -> str | None:
    """Why a study may never be shown as support (retracted, concern, superseded), or None."""
    flags = set(record.get("flags") or [])
    if record.get("retracted") or "retracted" in flags:
        return "retracted"
    if "expression-of-concern" in flags:
        return "expression of concern"
    if "superseded" in flags:
        return "older version of an updated review"
    return None


WITHDRAWN = "withdrawn from PubMed"


def _rule_reason(record: dict, take_partial: bool) -> str | None:
    """Why the rule would not choose this record, or None when it may."""
    if "withdrawn" in (record.get("flags") or []):
        return WITHDRAWN  # kept only for a person's decision or note; a person may include it
    fit = record.get("fit")
    if fit not in relevance.ON_TOPIC:
        return OFF_TOPIC
    if fit == "partial" and not take_partial:
        return PARTIAL_NOT_NEEDED
    level = record.get("level")
    if level is None:
        return NO_DESIGN
    if level not in RULE_LEVELS:
        return NOT_RULE_LEVEL
    return None


def ranked_records(store, condition: Condition, **filters) -> list[dict]:
    """A condition's records ranked fit, level, newest (as `list` shows them), fits current.

    Fits missing or stale (the condition's words or the record changed) are computed first;
    on a database that cannot be written they are computed for this answer only. `filters`
    are those of `Store.condition_records` (level, since, include_retracted, limit, fit, sort,
    first_run, columns).
    """
    computed, saved = fits.refresh_fit(store, condition)
    if not saved:
        # Read-only: apply the fresh fits, then filter, rank and cut here instead of in SQL.
        wanted_fits = set(filters.pop("fit", None) or relevance.FITS)
        limit = filters.pop("limit", None)
        sort = filters.pop("sort", "fit")
        rows = store.condition_records(condition.slug, sort="level", **filters)
        for row in rows:
            row.update(computed.get(row["pmid"], {}))
        rows = [r for r in rows if r.get("fit") in wanted_fits]
        if sort == "fit":
            rows.sort(key=lambda r: r.get("fit_rank") or 6)  # stable: level order kept within a fit
        return rows[:limit] if limit is not None else rows
    return store.condition_records(condition.slug, **filters)


def select(store, condition: Condition, *, max_records: int | None = DEFAULT_MAX) -> tuple[list[dict], dict]:
    """The records to export, in display order, and the counts the handout reports.

    Every record linked to the condition is either included or excluded with a reason, so
    found = included + excluded (a PRISMA-style count).
    """
    # Decide on the light columns of every linked record (a condition may hold tens of
    # thousands), then read in full only the records the export shows.
    records = ranked_records(store, condition, include_retracted=True, columns=_LIGHT_COLUMNS)
    decided = any(r.get("decision") for r in records)
    fits = {name: 0 for name in relevance.FITS}
    for record in records:
        fits[record.get("fit") or "none"] += 1
    direct_candidates = sum(
        1 for r in records
        if r.get("fit") == "direct" and flag_reason(r) is None and _rule_reason(r, False) is None
    )
    take_partial = direct_candidates < MIN_ON_TOPIC

    reasons: dict[str, int] = {}
    chosen: list[dict] = []
    left_out: list[dict] = []
    for record in records:
        flagged = flag_reason(record)
        if decided:
            decision = record.get("decision")
            if decision == "exclude":
                reason = record.get("decision_reason") or "excluded (no reason given)"
            elif decision != "include":
                reason = "not chosen"
            else:
                reason = flagged
                if flagged:
                    left_out.append(_left_out(record, flagged))
        else:
            reason = flagged or _rule_reason(record, take_partial)
            if flagged and _rule_reason(record, take_partial) is None:
                # On topic and strong enough to be chosen: say why it is not.
                left_out.append(_left_out(record, flagged))
            if reason is None and max_records is not None and len(chosen) >= max_records:
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
        "on_topic": fits["direct"] + fits["partial"],
        "by_fit": fits,
        "included": len(chosen),
        "excluded": len(records) - len(chosen),
        "excluded_reasons": reasons,
        "retracted": sum(1 for r in records if flag_reason(r) == "retracted"),
        "superseded": sum(1 for r in records if "superseded" in (r.get("flags") or [])),
        "by_level": by_level,
    }
    full = store.get_records([r["pmid"] for r in chosen])
    for record, light in zip(full, chosen):
        for key in ("decision", "decision_reason", "fit", "fit_rank", "fit_reason"):
            record[key] = light.get(key)
    return full, {
        "counts": counts,
        "selection": "curated" if decided else "default",
        "left_out": left_out,
        "stale": stale_records(chosen),
    }


def _left_out(record: dict, reason: str) -> dict:
    return {"pmid": record["pmid"], "title": record.get("title") or "", "reason": reason}


def stale_records(records: list[dict], days: float = REFRESH_AFTER_DAYS) -> list[str]:
    """PMIDs of records fetched more than `days` ago: NLM may have retracted them since."""
    cutoff = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days)).replace(microsecond=0).isoformat()
    return [r["pmid"] for r in records if (r.get("fetched_at") or "") < cutoff]


def export_context(store, condition: Condition, counts_and_selection: dict) -> dict:
    """Everything the handout states besides the studies: condition, search, counts.

    The condition carries its ICD-10-CM codes as ``{code, description, category}`` (category:
    a dash code such as M75.-, "your doctor picks the full code") and its handout parts
    (diary kind, letter, provider, CPT codes with our words, safety line), as the file
    declares them or with the defaults.
    """
    run = store.last_search(condition.slug) or {}
    imports = [
        {"file": r["source"], "imported_at": r.get("finished_at") or r.get("started_at"), "records": r.get("hits")}
        for r in store.imports(condition.slug)
    ]
    return {
        "condition": {
            "slug": condition.slug,
            "title": condition.title,
            "description": condition.description,
            "icd10": [dict(code) for code in condition.icd10],
            "handout": condition.handout_parts(),
        },
        # Only a search that ran: a PubMed term nobody ran is not "the search" of this sheet.
        "search": {
            "term": run.get("term"),
            "run_at": run.get("finished_at") or run.get("started_at"),
            "hits": run.get("hits"),
            "database": "PubMed",
        } if run else {},
        "imports": imports,
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


# -- screening (evidence review) ----------------------------------------------------------
# Kept below the rest of the module (imports included) while issue 9 rewrites the part above.

from collections.abc import Iterable  # noqa: E402

# What a screening list shows of each record: light enough to rank tens of thousands at once.
_SCREEN_COLUMNS = (
    "r.pmid, r.title, r.year, r.journal, r.journal_abbrev, r.level, r.level_label, r.flags, r.retracted"
)

# The reasons a screener picks from when leaving a study out (free text may add to them).
EXCLUDE_REASONS = (
    "not about massage therapy",
    "not about this condition",
    "not a study in people",
    "not a study (comment, letter or news)",
    "duplicate or older version",
)

SCREEN_STATUSES = ("unscreened", "screened")


def screening_records(store, condition: Condition) -> list[dict]:
    """Every record of a condition, ranked as `evidence list` ranks them, retracted ones too.

    Light columns only (PMID, title, year, journal, level, flags) plus the topic fit, the
    decision, its reason and the note: the screening list shows these, and the counts cover
    them all. Missing or stale fits are computed first, as for `list`.
    """
    return ranked_records(store, condition, include_retracted=True, columns=_SCREEN_COLUMNS)


def screening_overview(store, conditions: Iterable[Condition]) -> dict[str, dict]:
    """Per condition with records: records, on topic (direct or partial fit), screened,
    included, excluded, and the time of its last fetch. Stale fits are computed first."""
    summary = store.screening_summary(on_topic=relevance.ON_TOPIC)
    saved_any = False
    for condition in conditions:
        if condition.slug not in summary:
            continue
        computed, saved = fits.refresh_fit(store, condition)
        if computed and saved:
            saved_any = True
        elif computed:  # a read-only database: count the fits as computed for this answer
            rows = ranked_records(store, condition, include_retracted=True, columns="r.pmid")
            summary[condition.slug]["on_topic"] = sum(r.get("fit") in relevance.ON_TOPIC for r in rows)
    return store.screening_summary(on_topic=relevance.ON_TOPIC) if saved_any else summary


def screening_counts(records: list[dict]) -> dict:
    """How many records a condition has, how many are decided, included and excluded."""
    included = sum(1 for r in records if r.get("decision") == "include")
    excluded = sum(1 for r in records if r.get("decision") == "exclude")
    return {"total": len(records), "screened": included + excluded, "included": included, "excluded": excluded}


def filter_screening(
    store,
    condition: Condition,
    records: list[dict],
    *,
    fit: Iterable[str] = (),
    level: Iterable[str] = (),
    status: str | None = None,
    decision: str | None = None,
    search: str | None = None,
) -> list[dict]:
    """The records a screener asked for, in their ranked order.

    `fit` and `level` keep records with one of these values (level "none": no design
    signal); `status` is "unscreened" or "screened"; `decision` "include" or "exclude";
    `search` a full-text search of titles and abstracts (the syntax of `evidence search`).
    """
    fits = set(fit)
    levels = set(level)
    matching = store.search_pmids(search, condition=condition.slug) if search else None
    out = []
    for r in records:
        if fits and r.get("fit") not in fits:
            continue
        if levels and (str(r["level"]) if r.get("level") else "none") not in levels:
            continue
        decided = r.get("decision")
        if status == "unscreened" and decided or status == "screened" and not decided:
            continue
        if decision and decided != decision:
            continue
        if matching is not None and r["pmid"] not in matching:
            continue
        out.append(r)
    return out


def exclude_reason(picked: str | None, text: str | None) -> str | None:
    """One reason from a picked reason and free text ("picked: text"), or None if neither."""
    parts = [p.strip() for p in (picked, text) if p and p.strip()]
    return ": ".join(parts) or None


def highlight_words(condition: Condition) -> dict[str, tuple[str, ...]]:
    """The words a screener's eye looks for: the massage block's and the condition's own.

    PubMed-style truncation (`massage*`) is kept; a condition given only as a raw term
    has no condition words.
    """
    from evidence.queries import MASSAGE_TEXT_WORDS

    own = tuple(condition.text_words) + tuple(m["heading"] for m in condition.mesh)
    extra = tuple(getattr(condition, "intervention_words", ()) or ())
    return {"massage": tuple(MASSAGE_TEXT_WORDS) + extra, "condition": own}
