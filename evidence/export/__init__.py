"""Exports: the handout a patient brings (HTML, PDF, Markdown) and citation-manager files.

`render(fmt, records, context)` is the one entry point; records arrive graded and in display
order, and `context` describes the condition, the search and its counts (see `render`).
"""

from __future__ import annotations

from evidence.errors import ExportError

FORMATS: dict[str, str] = {
    "html": ".html",
    "pdf": ".pdf",
    "md": ".md",
    "ris": ".ris",
    "nbib": ".nbib",
    "bibtex": ".bib",
    "csl-json": ".json",
    "csv": ".csv",
}
TEXT_FORMATS: set[str] = set(FORMATS) - {"pdf"}


def render(fmt: str, records: list[dict], context: dict) -> bytes:
    """Render records in one format as bytes (UTF-8 for text formats).

    `context` holds "condition" {slug, title, description, icd10}, "search" {term, run_at,
    hits, database}, "counts" {found, included, excluded, excluded_reasons, retracted,
    superseded, by_level}, "selection" ("curated" or "default"), "generated_at" and
    "tool_version". Only the handout formats read it.
    """
    from evidence.export import formats, handout

    writers = {
        "html": handout.render_html,
        "md": handout.render_markdown,
        "ris": lambda recs, ctx: formats.to_ris(recs),
        "nbib": lambda recs, ctx: formats.to_nbib(recs),
        "bibtex": lambda recs, ctx: formats.to_bibtex(recs),
        "csl-json": lambda recs, ctx: formats.to_csl_json(recs),
        "csv": lambda recs, ctx: formats.to_csv(recs),
    }
    if fmt == "pdf":
        return handout.render_pdf(records, context or {})
    if fmt not in writers:
        raise ExportError(
            f"Unknown export format {fmt!r}: choose one of {', '.join(sorted(FORMATS))}."
        )
    text = writers[fmt](records, context or {})
    # A byte-order mark lets Excel detect UTF-8 in a CSV; other formats stay plain UTF-8.
    return text.encode("utf-8-sig" if fmt == "csv" else "utf-8")
