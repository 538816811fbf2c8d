"""Keep the stored topic fits of a condition current, and report the new on-topic studies.

Fits are derived data (evidence.relevance computes them): stored per condition and record so a
listing can rank by them in SQL, and recomputed here where the condition's words or the
record changed. Fetch and import call this after a run; reading commands before they rank.
Kept apart from `pipeline` so that reading commands load neither the XML parser nor grading.
"""

from __future__ import annotations

from evidence import relevance
from evidence.errors import StoreError
from evidence.queries import Condition


def refresh_fit(store, condition: Condition) -> tuple[dict[str, dict], bool]:
    """Compute the topic fit of a condition's records where it is missing or stale.

    Stale: computed before the condition's words or the record's text changed. Returns the
    fits computed, by PMID, and whether they were stored: a read-only database cannot keep
    them, and its reader applies them to what it shows.
    """
    rules = relevance.rules_for(condition)
    computed = {}
    rows = []
    for record in store.stale_fit(condition.slug, rules.key):
        result = relevance.fit(record, rules)
        computed[record["pmid"]] = result
        rows.append((record["pmid"], result["fit"], result["fit_rank"], result["fit_reason"], record["content_hash"]))
    if rows:
        try:
            store.save_fit(condition.slug, rows, rules.key)
        except StoreError:
            return computed, False
    return computed, True


def new_on_topic(store, condition: Condition, run_id: int) -> list[dict]:
    """The on-topic records a run linked to the condition for the first time, best first."""
    rows = store.condition_records(
        condition.slug, fit=relevance.ON_TOPIC, first_run=run_id,
        columns="r.pmid, r.title, r.year, r.level, r.level_label",
    )
    return [
        {k: r.get(k) for k in ("pmid", "title", "year", "fit", "level_label")} for r in rows
    ]
