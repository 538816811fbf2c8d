"""The `evidence` command: parses arguments, calls the library, renders. The only click user.

Data goes to stdout (only JSON with --json); progress, warnings and summaries to stderr.
Exit codes: 0 ok, 1 error (a clear one-line message), 2 usage, 130 interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import sys
from pathlib import Path

import click

from evidence import __version__, config
from evidence.errors import EvidenceError
from evidence.guards import atomic_write, is_pmid, printable, redact

log = logging.getLogger("evidence")


class EvidenceGroup(click.Group):
    """Turns library and OS errors into one line on stderr and exit code 1, never a traceback."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EvidenceError as exc:
            _fail(str(exc))
        except sqlite3.Error as exc:
            # A safety net: the store turns the errors it expects into StoreError already.
            _fail(f"database error ({exc}). Run 'evidence doctor' to check the database.")
        except KeyboardInterrupt:
            _interrupted()
        except BrokenPipeError:
            # The reader went away (evidence list | head): nothing more to say to anyone.
            _silence_stdout()
            sys.stderr.close()
            sys.exit(1)
        except OSError as exc:
            _fail(_os_error_words(exc))
        except RecursionError:
            _fail("the input is nested too deeply to read; check the file.")
        except MemoryError:
            _fail("out of memory; the input is too large. Nothing more was stored.")


def _fail(message: str) -> None:
    """Print one Error: line (the API key removed in any spelling) and exit 1."""
    text = " ".join(redact(message, config.api_key()).split())
    try:
        click.echo(f"Error: {text}", err=True)
    except OSError:
        pass
    _silence_stdout()
    sys.exit(1)


def _interrupted() -> None:
    try:
        click.echo(
            "Interrupted. Every batch already stored is kept; run the same command again to continue.",
            err=True,
        )
    except OSError:
        pass
    sys.exit(130)


def _os_error_words(exc: OSError) -> str:
    """One line for an OS error: what failed, on what, and (for the output) where."""
    why = exc.strerror or type(exc).__name__
    if exc.filename is None:
        # Writes to stdout carry no file name: `evidence list > /dev/full`.
        return f"cannot write the output: {why}."
    return f"{exc.filename}: {why}."


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so Python's final flush of what could not be written (a full
    disk, a closed pipe) neither fails again nor prints "Exception ignored"."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):
        return  # not a real file (CliRunner): nothing is flushed at exit
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, fd)
        os.close(null)
    except OSError:
        pass


class _ErrHandler(logging.Handler):
    """Log lines to the current stderr (click's, so CliRunner sees them), the API key removed."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(redact(self.format(record), config.api_key()), err=True)
        except OSError:
            pass


# A condition name longer than this cannot be a file name with ".toml" on common file systems
# (255 bytes), and no real one comes near it.
MAX_SLUG = 100


class SlugType(click.ParamType):
    """A condition name: its length and characters checked here, the rest by evidence.queries
    (which suggests close names for an unknown one)."""

    name = "slug"

    def convert(self, value, param, ctx):
        if len(value) > MAX_SLUG:
            self.fail(f"{printable(value[:24])!r}... is {len(value)} characters long; a condition "
                      f"name has at most {MAX_SLUG}. Run 'evidence conditions' to list them.", param, ctx)
        if not value.isprintable():
            self.fail(f"{printable(value)!r} holds control characters; a condition name is like "
                      "low-back-pain.", param, ctx)
        return value


class PmidType(click.ParamType):
    """A PMID: ASCII digits without a leading zero (evidence.guards.is_pmid)."""

    name = "pmid"

    def convert(self, value, param, ctx):
        if is_pmid(value):
            return value
        self.fail(f"{printable(value)[:40]!r} is not a PMID (a PMID is a number like 33984499).", param, ctx)


class DaysType(click.FloatRange):
    """A number of days from 0 to 100 years; nan, which passes every range check, is refused."""

    name = "days"

    def __init__(self):
        super().__init__(0, 36_500)

    def convert(self, value, param, ctx):
        days = super().convert(value, param, ctx)
        if days != days:  # nan
            self.fail(f"{value!r} is not a number of days.", param, ctx)
        return days


SLUG = SlugType()
PMID = PmidType()
# Bounds that keep every number inside SQLite's 64-bit integers, with room to spare.
YEAR = click.IntRange(0, 9999)
COUNT = click.IntRange(1, 1_000_000_000)

# Keyword arguments for every E-utilities client the CLI makes. Empty for users (NCBI's real
# pacing and backoff); tests shrink pacing and backoff here so the suite stays fast.
CLIENT_OPTIONS: dict = {}


def _emit_json(data) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2, default=str))


def _err(message: str) -> None:
    click.echo(message, err=True)


def db_option(f):
    return click.option(
        "--db",
        "db",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Database file (default: $EVIDENCE_DB, else data/evidence.db in a checkout or ~/.local/share/evidence/evidence.db).",
    )(f)


def json_option(f):
    return click.option("--json", "as_json", is_flag=True, help="Print JSON only, on stdout.")(f)


def queries_option(f):
    return click.option(
        "--queries",
        "queries_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Folder of extra condition files (default: $EVIDENCE_QUERIES).",
    )(f)


def open_store(db: Path | None, readonly: bool = False):
    from evidence.store import Store

    return Store(config.db_path(str(db) if db else None), readonly=readonly)


def get_condition(slug: str, queries_dir: Path | None):
    from evidence import queries

    return queries.get_condition(slug, config.extra_queries_dir(str(queries_dir) if queries_dir else None))


@click.group(cls=EvidenceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="evidence")
@click.option("-v", "--verbose", count=True, help="Show more on stderr (-vv for debug).")
def cli(verbose):
    """Gather PubMed research on massage therapy for a condition, and export a handout.

    \b
    Start with:
      evidence conditions
      evidence fetch low-back-pain
      evidence list low-back-pain
      evidence export low-back-pain --format pdf -o handout.pdf
    """
    handler = _ErrHandler()
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.handlers = [handler]
    log.propagate = False
    log.setLevel(max(logging.WARNING - 10 * verbose, logging.DEBUG))
    # Third-party loggers print request lines and redirect URLs at debug level (urllib3 logs
    # every request, a redirect's Location included): never shown, whatever -v says.
    logging.getLogger("urllib3").setLevel(logging.WARNING)


# -- conditions ---------------------------------------------------------------------------


@cli.command()
@queries_option
@json_option
def conditions(queries_dir, as_json):
    """List the conditions that can be fetched, with their MeSH, codes and handout parts.

    \b
    Example:
      evidence conditions
      evidence conditions --json
    """
    from evidence import queries

    found = queries.load_conditions(config.extra_queries_dir(str(queries_dir) if queries_dir else None))
    if as_json:
        _emit_json([c.to_dict() for c in found.values()])
        return
    width = max((len(s) for s in found), default=10)
    pad = " " * width
    for slug, c in found.items():
        mesh = "; ".join(m["heading"] for m in c.mesh) or ("(raw term)" if c.raw_term else "(text words only)")
        icd = ", ".join(i["code"] for i in c.icd10) or "-"
        mark = "" if c.builtin else "  [yours]"
        click.echo(f"{slug:<{width}}  {c.title}{mark}")
        click.echo(f"{pad}  MeSH: {mesh}  ICD-10-CM: {icd}")
        if c.intervention_words:
            click.echo(f"{pad}  Also massage: {', '.join(c.intervention_words)}")
        if c.exclusions:
            left_out = ", ".join(e["words"] + (" (title)" if e["field"] == "title" else "") for e in c.exclusions)
            click.echo(f"{pad}  Also left out: {left_out}")
        click.echo(f"{pad}  Handout: {_handout_words(c.handout)}")


def _handout_words(handout: dict) -> str:
    cpt = ", ".join(c["code"] for c in handout["cpt"])
    parts = [f"{handout['diary']} diary", "letter" + (f" (CPT {cpt})" if cpt else "") if handout["letter"] else "no letter",
             handout["provider"]]
    if handout.get("safety"):
        parts.append("safety line")
    return "; ".join(parts)


@cli.command()
@click.argument("slug", type=SLUG)
@queries_option
@click.option("--term-only", is_flag=True, help="Print only the PubMed term (for scripts).")
def query(slug, queries_dir, term_only):
    """Print a condition's PubMed search term, to paste into PubMed, and its parts.

    The term's groups come first (the condition's MeSH headings and words, the massage
    block, what is left out, the humans filter); the whole term is the last line.

    \b
    Example:
      evidence query low-back-pain
      evidence query low-back-pain --term-only
    """
    condition = get_condition(slug, queries_dir)
    if not term_only:
        for label, part in condition.term_groups():
            click.echo(label + (":" if part else ""))
            if part:
                click.echo(f"  {part}")
        click.echo("PubMed term (paste this into PubMed):")
    click.echo(condition.term)


# -- fetch and import ---------------------------------------------------------------------


@cli.command()
@click.argument("slugs", nargs=-1, type=SLUG)
@click.option("--all", "all_", is_flag=True, help="Fetch every condition.")
@click.option("--refresh", is_flag=True, help="Also refetch records not yet MEDLINE-indexed or fetched over --max-age days ago.")
@click.option("--max-age", default=float(config.REFRESH_AFTER_DAYS), show_default=True, type=DaysType(), help="With --refresh: days after which a record is fetched again.")
@click.option("--email", help="Your email, which NCBI asks for (default: $NCBI_EMAIL).")
@db_option
@queries_option
@json_option
def fetch(slugs, all_, refresh, max_age, email, db, queries_dir, as_json):
    """Fetch a condition's studies from PubMed into the database.

    Only records not cached yet are fetched; a rerun with nothing new sends one search.
    Set NCBI_API_KEY to go from 3 to 10 requests a second.

    \b
    Example:
      NCBI_EMAIL=you@example.org evidence fetch low-back-pain
      evidence fetch --all --refresh
    """
    from evidence import entrez, pipeline, queries

    extra = config.extra_queries_dir(str(queries_dir) if queries_dir else None)
    if all_:
        chosen = list(queries.load_conditions(extra).values())
    elif slugs:
        chosen = [queries.get_condition(s, extra) for s in slugs]
    else:
        raise click.UsageError("Name a condition (see 'evidence conditions'), or pass --all.")
    settings = config.ncbi_settings(email_opt=email)
    client = entrez.Client(
        settings.base_url, settings.email, settings.api_key, settings.tool,
        pace_file=config.pace_file(), log=_err, **CLIENT_OPTIONS,
    )
    store = open_store(db)
    summaries = []
    failed = False
    for condition in chosen:
        with _progress_bar(condition.slug) as progress:
            try:
                summary = pipeline.fetch_condition(
                    store, client, condition, refresh=refresh, max_age_days=max_age,
                    progress=progress, log=_err,
                )
            except EvidenceError as exc:
                if len(chosen) == 1:
                    raise
                _err(f"Error: {condition.slug}: {exc}")
                failed = True
                continue
        summaries.append(summary)
        _err(
            f"{condition.slug}: found {summary.found}, new {summary.new}, updated {summary.updated}, "
            f"failed {summary.failed}, requests {summary.requests}, {summary.seconds:.1f} s"
        )
        _report_new_on_topic(condition.slug, summary.new_on_topic)
    if as_json:
        _emit_json([s.to_dict() for s in summaries])
    if failed:
        sys.exit(1)


def _report_new_on_topic(slug: str, rows: list[dict], shown: int = 10) -> None:
    """Name the studies about massage for the condition that this run added."""
    if not rows:
        _err(f"{slug}: no new studies about massage for this condition.")
        return
    _err(f"{slug}: {_count(len(rows), 'new study', 'new studies')} about massage for this condition "
         f"(evidence list {slug} --new):")
    for r in rows[:shown]:
        _err(f"  {r['pmid']:<9} {r.get('year') or '':<4} {r['fit']:<7} {_cut(r.get('title') or '', 70)}")
    if len(rows) > shown:
        _err(f"  ... and {len(rows) - shown} more.")


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


class _progress_bar:
    """A progress bar on stderr for the fetch batches, drawn only when there is work."""

    def __init__(self, label: str):
        self.label = label
        self.bar = None

    def __enter__(self):
        return self.update

    def update(self, stage: str, done: int, total: int) -> None:
        if total == 0:
            return
        if self.bar is None:
            self.bar = click.progressbar(
                length=total, label=f"{self.label}: fetching {_records(total)}", file=sys.stderr,
                show_pos=True,
            )
            self.bar.__enter__()
        self.bar.update(done - self.bar.pos)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)
        return False


@cli.command(name="import")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--condition", "slug", type=SLUG, help="Link the imported records to this condition.")
@db_option
@queries_option
@json_option
def import_(files, slug, db, queries_dir, as_json):
    """Load PubMed XML or MEDLINE (.nbib) files into the database.

    Takes efetch answers, NLM baseline/update files (their deleted PMIDs are removed) and
    what PubMed's "Send to: Citation manager" saves.

    \b
    Example:
      evidence import pubmed-export.nbib --condition low-back-pain
      evidence import pubmed25n1300.xml.gz
    """
    import time

    from evidence import pipeline

    if slug:
        get_condition(slug, queries_dir)  # an unknown slug fails before anything is written
    for path in files:
        pipeline.sniff(path)  # so does a missing, unreadable or foreign file
    store = open_store(db)
    summaries = []
    for path in files:
        started = time.monotonic()
        size = path.stat().st_size if path.is_file() else 0

        def progress(records: int, nbytes: int, _start=started, _path=path) -> None:
            elapsed = max(time.monotonic() - _start, 1e-6)
            click.echo(
                f"\r{_path.name}: {_records(records)}, {records / elapsed:,.0f} records/s, "
                f"{nbytes / elapsed / 1e6:.1f} MB/s", err=True, nl=False,
            )

        try:
            summary = pipeline.import_file(store, path, condition=slug, progress=progress)
        except EvidenceError:
            click.echo("", err=True)  # the error gets its own line, not the progress line's end
            raise
        elapsed = time.monotonic() - started
        if summary.found:
            click.echo("", err=True)
        summaries.append(summary)
        for kept in summary.withdrawn:
            _err(_withdrawn_words(kept))
        rate = summary.found / elapsed if elapsed else 0
        linked = f", linked to {slug}" if slug else ""
        _err(
            f"{path}: {_records(summary.found)} ({summary.new} new, {summary.updated} updated, "
            f"{summary.deleted} deleted){linked}, {elapsed:.1f} s, {rate:,.0f} records/s, "
            f"{size / 1e6:.1f} MB"
        )
        if slug:
            _report_new_on_topic(slug, summary.new_on_topic)
    if as_json:
        _emit_json([s.to_dict() for s in summaries])


def _withdrawn_words(kept: dict) -> str:
    """The warning for a deleted PMID that a person had decided on or written a note about."""
    what = [f"{d['decision']}d it for {d['condition']}" for d in kept["decisions"]]
    if kept.get("note"):
        what.append("wrote a note on it")
    title = f" ({_cut(kept['title'], 60)})" if kept.get("title") else ""
    return (f"Warning: NLM deleted PMID {kept['pmid']}{title} from PubMed, but you "
            f"{' and '.join(what)}. Your decision and note are kept, and the study is shown as "
            "withdrawn from PubMed in list, show and export: decide whether to keep it.")


# -- browsing -----------------------------------------------------------------------------

LIST_FIELDS = (
    "pmid", "title", "abstract", "abstract_sections", "authors", "journal", "journal_abbrev",
    "year", "pub_date", "volume", "issue", "pages", "doi", "pmcid", "publication_types",
    "mesh_terms", "language", "status", "date_revised", "retracted", "corrections", "level",
    "level_label", "flags",
)
# In a condition's listing, after the record's own fields.
LISTING_FIELDS = ("fit", "fit_reason", "decision", "note")


def contract(record: dict) -> dict:
    """A record as DESIGN.md's JSON contract names it, plus curation and extra fields."""
    out = {k: record.get(k) for k in LIST_FIELDS}
    if "fit" in record:
        out.update({k: record.get(k) for k in LISTING_FIELDS})
    for key, value in record.items():
        if key not in out and key not in ("rank", "fit_rank"):
            out[key] = value
    return out


@cli.command(name="list")
@click.argument("slug", type=SLUG)
@click.option("--fit", "fits", multiple=True, type=click.Choice(["direct", "partial", "mention", "none"]),
              help="Only this topic fit (repeatable): direct, partial, mention, none.")
@click.option("--level", "levels", multiple=True, type=click.IntRange(1, 5), help="Only this level (repeatable).")
@click.option("--since", type=YEAR, help="Only studies published this year or later.")
@click.option("--new", "new_only", is_flag=True, help="Only studies the last fetch or import added.")
@click.option("--sort", type=click.Choice(["fit", "level"]), default="fit", show_default=True,
              help="fit: on-topic first, then level, then newest; level: level, then newest.")
@click.option("--limit", type=COUNT, help="At most this many (default: all for --json/--csv, 40 for the table).")
@click.option("--include-retracted", is_flag=True, help="Also show retracted studies (flagged).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV on stdout (for a spreadsheet).")
@db_option
@queries_option
@json_option
def list_(slug, fits, levels, since, new_only, sort, limit, include_retracted, as_csv, db, queries_dir, as_json):
    """List a condition's studies: about massage for it first, strongest evidence first.

    Topic fit: direct (massage and the condition in the title or as main MeSH topics),
    partial, mention (only in passing), none.

    \b
    Example:
      evidence list low-back-pain --fit direct --level 1 --level 2 --since 2015
      evidence list low-back-pain --new
      evidence list low-back-pain --json
    """
    from evidence import curation

    condition = get_condition(slug, queries_dir)
    store = open_store(db, readonly=True)
    table = not (as_json or as_csv)
    effective = limit if limit or not table else 40
    first_run = None
    if new_only:
        last = store.last_run(slug)
        first_run = last["id"] if last else -1
    records = curation.ranked_records(
        store, condition, level=levels or None, since=since, include_retracted=include_retracted,
        limit=effective + 1 if table else effective, fit=fits or None, sort=sort, first_run=first_run,
    )
    if as_json:
        _emit_json([contract(r) for r in records])
        return
    if as_csv:
        from evidence.export import formats

        click.echo(formats.to_csv(records), nl=False)
        return
    more = len(records) > effective
    records = records[:effective]
    if not records:
        if new_only:
            _err(f"No new studies for {slug} in its last fetch or import.")
        elif levels or since or fits:
            _err("No studies match these filters.")
        else:
            _err(f"No cached studies for {slug} match. Run 'evidence fetch {slug}' first.")
        return
    width = shutil.get_terminal_size((120, 20)).columns
    title_width = max(20, width - 76)
    click.echo(f"{'FIT':<7} {'LEVEL':<34} {'YEAR':<4} {'PMID':<9} {'JOURNAL':<14} TITLE")
    for r in records:
        label = (f"{r['level']} " if r.get("level") else "- ") + (r.get("level_label") or "")
        flags = ["withdrawn from PubMed" if f == "withdrawn" else f for f in r.get("flags") or []]
        title = r.get("title") or ""
        if flags:
            title = f"[{', '.join(flags)}] " + title
        if r.get("decision"):
            title = f"({r['decision']}d) " + title
        click.echo(
            f"{r.get('fit') or '-':<7} {_cut(label, 34):<34} {r.get('year') or '':<4} {r['pmid']:<9} "
            f"{_cut(r.get('journal_abbrev') or '', 14):<14} {_cut(title, title_width)}"
        )
    total = store.count_condition(slug)
    if more:
        _err(f"Showing {len(records)} of {total} cached studies; use --limit, --fit, --level or --since.")


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


@cli.command()
@click.argument("pmid", type=PMID)
@db_option
@json_option
def show(pmid, db, as_json):
    """Show one cached study in full.

    \b
    Example:
      evidence show 33984499
    """
    from evidence.export import citation

    record = open_store(db, readonly=True).get_record(pmid)
    record["fits"] = _fits(record)
    if as_json:
        _emit_json(contract(record))
        return
    if record.get("retracted"):
        click.echo("RETRACTED: this article was retracted. Do not use it as support.")
    if "withdrawn" in (record.get("flags") or []):
        click.echo("WITHDRAWN FROM PUBMED: NLM deleted this record; your decision and note on it are kept.")
    click.echo(citation.vancouver(record))
    click.echo("")
    level = f"Level {record['level']}: " if record.get("level") else ""
    click.echo(f"{level}{record.get('level_label') or ''}  ({record.get('level_reason') or ''})")
    if record.get("flags"):
        click.echo("Flags: " + ", ".join(record["flags"]))
    for f in record["fits"]:
        click.echo(f"Topic fit for {f['condition']}: {f['fit']} ({f['fit_reason']})")
    click.echo(f"Status: {record.get('status') or '-'}; revised {record.get('date_revised') or '-'}; "
               f"fetched {record.get('fetched_at')}")
    if record.get("publication_types"):
        click.echo("Publication types: " + "; ".join(record["publication_types"]))
    if record.get("mesh_terms"):
        click.echo("MeSH: " + "; ".join(record["mesh_terms"]))
    # PubMed lists an article's references as CommentsCorrections of type "Cites": count them,
    # and show the entries that comment on, correct or retract this record.
    cites = [c for c in record.get("corrections") or [] if c.get("type") == "Cites"]
    for c in record.get("corrections") or []:
        if c.get("type") != "Cites":
            click.echo(f"{c.get('type')}: {c.get('source') or ''} PMID {c.get('pmid') or '-'}")
    if cites:
        click.echo(f"References listed in PubMed: {len(cites)}")
    click.echo("")
    for section in record.get("abstract_sections") or []:
        label = section.get("label")
        click.echo((f"{label}: " if label else "") + section.get("text", ""))
        click.echo("")
    if not record.get("abstract_sections"):
        click.echo("(no abstract)")
    if record.get("note"):
        click.echo(f"Note: {record['note']}")


def _fits(record: dict) -> list[dict]:
    """The record's topic fit for each condition it is linked to, computed now from its text."""
    from evidence import queries, relevance
    from evidence.errors import ConditionError

    fits = []
    for slug in record.get("conditions") or []:
        try:
            condition = queries.get_condition(slug)
        except ConditionError:
            continue  # a condition file the user has since removed
        result = relevance.fit_record(record, condition)
        fits.append({"condition": slug, "fit": result["fit"], "fit_reason": result["fit_reason"]})
    return fits


@cli.command()
@click.argument("text")
@click.option("--condition", "slug", type=SLUG, help="Only this condition's studies.")
@click.option("--limit", default=20, show_default=True, type=COUNT)
@db_option
@queries_option
@json_option
def search(text, slug, limit, db, queries_dir, as_json):
    """Search cached titles and abstracts, best match first.

    \b
    Example:
      evidence search "myofascial release"
      evidence search 'massage AND (anxiety OR depression)' --condition anxiety-depression
    """
    if slug:
        get_condition(slug, queries_dir)  # an unknown condition is named, not "No matches"
    results = open_store(db, readonly=True).search(text, condition=slug, limit=limit)
    if as_json:
        _emit_json([contract(r) for r in results])
        return
    if not results:
        _err("No matches.")
    for r in results:
        click.echo(f"{r['pmid']}  {r.get('year') or ''}  {r.get('level_label') or ''}  {r.get('title')}")
        click.echo(f"    {r.get('snippet')}")


@cli.command()
@db_option
@json_option
def status(db, as_json):
    """Show each condition's last run and counts, and the database.

    \b
    Example:
      evidence status
    """
    store = open_store(db, readonly=True)
    conditions = store.conditions_summary(config.REFRESH_AFTER_DAYS)
    last_runs = store.last_runs()
    for c in conditions:
        c["last_run"] = last_runs.pop(c["condition"], None)
    # A condition whose every fetch failed has no records, but its failed runs must show.
    for condition, run in last_runs.items():
        conditions.append({"condition": condition, "records": 0, "retracted": 0, "stale": 0,
                           "not_indexed": 0, "by_level": {}, "last_run": run})
    conditions.sort(key=lambda c: c["condition"])
    info = {
        "database": str(store.path),
        "size_bytes": store.path.stat().st_size,
        "schema_version": store.schema_version,
        **store.totals(),
        "conditions": conditions,
    }
    if as_json:
        _emit_json(info)
        return
    click.echo(f"Database: {info['database']} ({info['size_bytes'] / 1e6:.1f} MB, {_records(info['records'])})")
    for c in conditions:
        run = c["last_run"] or {}
        levels = ", ".join(
            (f"level {k}: {v}" if k != "none" else f"no level: {v}")
            for k, v in sorted(c.get("by_level", {}).items())
        )
        if c["records"]:
            click.echo(f"{c['condition']}: {_records(c['records'])} ({levels}); retracted {c['retracted'] or 0}; "
                       f"stale {c['stale'] or 0} (not yet indexed {c['not_indexed'] or 0})")
        else:
            click.echo(f"{c['condition']}: no records yet")
        if run:
            click.echo(f"    last run {run.get('started_at')} {run.get('kind')} {run.get('outcome')}: "
                       f"{run.get('hits') if run.get('hits') is not None else '-'} hits")
            if run.get("outcome") != "ok" and run.get("error"):
                click.echo(f"    error: {_cut(printable(run['error']), 300)}")


@cli.command()
@click.argument("slug", type=SLUG)
@click.option("--by", type=click.Choice(["decade", "year"]), default="decade", show_default=True)
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV on stdout (for a spreadsheet).")
@db_option
@queries_option
@json_option
def summary(slug, by, as_csv, db, queries_dir, as_json):
    """Count a condition's studies by level and decade or year.

    \b
    Example:
      evidence summary low-back-pain
      evidence summary low-back-pain --by year --csv > counts.csv
    """
    from evidence import curation

    condition = get_condition(slug, queries_dir)
    table = curation.level_year_table(open_store(db, readonly=True), condition, by=by)
    if table.empty:
        _err(f"No cached studies for {slug}. Run 'evidence fetch {slug}' first.")
        if as_json:
            _emit_json({})
        return
    if as_json:
        _emit_json({kind: {str(k): int(v) for k, v in row.items()} for kind, row in table.iterrows()})
    elif as_csv:
        click.echo(table.to_csv(), nl=False)
    else:
        click.echo(table.to_string())


# -- curation -----------------------------------------------------------------------------


@cli.command()
@click.argument("slug", type=SLUG)
@click.argument("pmids", nargs=-1, required=True, type=PMID)
@click.option("--reason", help="Why (shown in the handout's count).")
@db_option
@queries_option
def include(slug, pmids, reason, db, queries_dir):
    """Include studies in a condition's handout.

    \b
    Example:
      evidence include low-back-pain 33984499 --reason "review of myofascial release"
    """
    _decide(slug, pmids, "include", reason, db, queries_dir)


@cli.command()
@click.argument("slug", type=SLUG)
@click.argument("pmids", nargs=-1, required=True, type=PMID)
@click.option("--reason", required=True, help="Why it is left out (e.g. 'not massage').")
@db_option
@queries_option
def exclude(slug, pmids, reason, db, queries_dir):
    """Exclude studies from a condition's handout, with a reason.

    \b
    Example:
      evidence exclude low-back-pain 420419 --reason "prostatic massage, not massage therapy"
    """
    _decide(slug, pmids, "exclude", reason, db, queries_dir)


def _decide(slug, pmids, decision, reason, db, queries_dir):
    from evidence import curation

    get_condition(slug, queries_dir)
    pmids = list(dict.fromkeys(pmids))  # a PMID named twice is one decision
    store = open_store(db)
    store.decide(slug, pmids, decision, reason)
    _err(f"{slug}: {decision}d {_studies(len(pmids))}.")
    if decision == "include":
        for record in store.get_records(pmids):
            why = curation.flag_reason(record)
            if why:
                _err(f"warning: PMID {record['pmid']} is flagged '{why}': the handout lists it under "
                     "'Left out' and never shows it as support.")


def _studies(n: int) -> str:
    return _count(n, "study", "studies")


def _records(n: int) -> str:
    return _count(n, "record", "records")


@cli.command()
@click.argument("slug", type=SLUG)
@click.argument("pmids", nargs=-1, type=PMID)
@click.option("--all", "all_", is_flag=True, help="Forget every decision for this condition.")
@db_option
@queries_option
def undo(slug, pmids, all_, db, queries_dir):
    """Forget include/exclude decisions.

    \b
    Example:
      evidence undo low-back-pain 33984499
      evidence undo low-back-pain --all
    """
    get_condition(slug, queries_dir)
    if not pmids and not all_:
        raise click.UsageError("Name the PMIDs to undo, or pass --all.")
    removed = open_store(db).undo_decisions(slug, None if all_ else list(dict.fromkeys(pmids)))
    _err(f"{slug}: {removed} decision{'s' if removed != 1 else ''} undone.")


@cli.command()
@click.argument("slug", type=SLUG)
@click.option("--history", is_flag=True, help="Every decision and undo, oldest first.")
@db_option
@queries_option
@json_option
def decisions(slug, history, db, queries_dir, as_json):
    """Show the include/exclude decisions for a condition.

    \b
    Example:
      evidence decisions low-back-pain
      evidence decisions low-back-pain --history
    """
    get_condition(slug, queries_dir)
    store = open_store(db, readonly=True)
    rows = store.decision_history(slug) if history else store.decisions(slug)
    if as_json:
        _emit_json(rows)
        return
    if not rows:
        _err(f"No decisions for {slug}: an export picks the strongest current studies.")
    for r in rows:
        when = r.get("decided_at") or r.get("at")
        action = r.get("decision") or r.get("action")
        click.echo(f"{when}  {action:<8} {r['pmid']:<9} {r.get('reason') or ''}  {_cut(r.get('title') or '', 60)}")


@cli.command()
@click.argument("pmid", type=PMID)
@click.argument("text")
@db_option
def note(pmid, text, db):
    """Attach a note to a study (an empty text removes it).

    \b
    Example:
      evidence note 33984499 "Ask about the 6-week follow-up"
    """
    open_store(db).set_note(pmid, text)
    _err(f"Note {'saved' if text else 'removed'} for PMID {pmid}.")


# -- export -------------------------------------------------------------------------------


@cli.command()
@click.argument("slug", type=SLUG)
@click.option("--format", "fmt", required=True,
              type=click.Choice(["pdf", "html", "md", "ris", "nbib", "bibtex", "csl-json", "csv"]),
              help="Handout (pdf, html, md) or citation file.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True),
              help="File to write ('-' for stdout; default: SLUG.<suffix> in this folder).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option("--max", "max_records", default=10, show_default=True, type=COUNT,
              help="With no decisions: at most this many of the strongest studies.")
@click.option("--recheck", is_flag=True,
              help="First refetch the chosen studies from PubMed (one request) and drop any newly retracted.")
@click.option("--email", help="With --recheck: your email, which NCBI asks for (default: $NCBI_EMAIL).")
@db_option
@queries_option
def export(slug, fmt, output, force, max_records, recheck, email, db, queries_dir):
    """Export a handout (pdf, html, md) or a citation file.

    \b
    Example:
      evidence export low-back-pain --format pdf -o handout.pdf
      evidence export low-back-pain --format ris -o - > studies.ris
    """
    from evidence import curation, export as exporter
    from evidence.errors import ExportError

    condition = get_condition(slug, queries_dir)
    suffix = exporter.FORMATS[fmt]
    target = output or f"{slug}{suffix}"
    if target == "-" and fmt not in exporter.TEXT_FORMATS:
        raise ExportError(f"{fmt} is binary: write it to a file with -o PATH, not to stdout.")
    if target != "-":
        try:
            exists = os.path.lexists(target) and not Path(target).is_dir()
            if Path(target).is_dir():
                raise ExportError(f"{target} is a folder: give a file name with -o PATH.")
        except OSError as exc:
            raise ExportError(f"Cannot write {target}: {exc.strerror}.") from None
        if exists and not force:
            raise ExportError(f"{target} exists: pass --force to overwrite it, or choose another -o PATH.")
    store = open_store(db, readonly=not recheck)
    records, facts = curation.select(store, condition, max_records=max_records)
    if recheck and records:
        records, facts = _recheck(store, condition, records, email, max_records)
    elif facts["stale"]:
        _err(f"warning: {_count(len(facts['stale']), 'chosen study was', 'chosen studies were')} "
             f"last fetched over {config.REFRESH_AFTER_DAYS} days ago; NLM may have retracted or "
             "corrected them since. Pass --recheck to refetch them first.")
    if not records:
        raise ExportError(
            f"No studies to export for {slug}: run 'evidence fetch {slug}' or include some with 'evidence include'."
        )
    context = curation.export_context(store, condition, facts)
    if fmt == "pdf" and len(records) >= PDF_PROGRESS_MIN:
        with _Elapsed(f"Rendering a PDF of {_studies(len(records))}; this can take a minute"):
            data = exporter.render(fmt, records, context)
    else:
        data = exporter.render(fmt, records, context)
    if target == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        # Whole or not at all: a full disk or an interruption leaves the previous file as it was.
        atomic_write(target, data)
    except OSError as exc:
        raise ExportError(
            f"Cannot write {target}: {exc.strerror or exc}. Nothing was written; "
            "any earlier file of that name is unchanged."
        ) from None
    counts = facts["counts"]
    _err(f"Wrote {target}: {_studies(counts['included'])} ({facts['selection']} selection) "
         f"of {_records(counts['found'])}, {counts['on_topic']:,} about massage for "
         f"this condition.")
    _warn_long_pdf(data)


def _warn_long_pdf(data) -> None:
    from evidence.curation import DEFAULT_MAX
    from evidence.export.handout import PAGES_MAX

    pages = getattr(data, "pages", 0)
    if pages > PAGES_MAX:
        _err(f"warning: the handout has {pages} pages, not {PAGES_MAX}: include fewer studies "
             f"(the default selection takes {DEFAULT_MAX}) for a sheet that prints on two.")



# A PDF takes about 30 ms a study to lay out: past this many, say that it is working.
PDF_PROGRESS_MIN = 100


class _Elapsed:
    """Says what is running on stderr, then the seconds it has taken: every second on a
    terminal (on one line), and once at the end in a log or a pipe."""

    def __init__(self, label: str):
        self.label = label
        self.done = None
        self.thread = None
        self.started = 0.0

    def __enter__(self):
        import threading
        import time

        self.started = time.monotonic()
        _err(f"{self.label}...")
        if sys.stderr.isatty():
            self.done = threading.Event()

            def tick():
                while not self.done.wait(1.0):
                    click.echo(f"\r{time.monotonic() - self.started:.0f} s", err=True, nl=False)

            self.thread = threading.Thread(target=tick, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        import time

        if self.done is not None:
            self.done.set()
            self.thread.join()
            click.echo("\r", err=True, nl=False)
        if exc[0] is None:
            _err(f"Done in {time.monotonic() - self.started:.1f} s.")
        return False


def _recheck(store, condition, records, email, max_records):
    """Refetch the chosen studies before an export; say which NLM has retracted since."""
    from evidence import curation, entrez, pipeline

    settings = config.ncbi_settings(email_opt=email)
    client = entrez.Client(
        settings.base_url, settings.email, settings.api_key, settings.tool,
        pace_file=config.pace_file(), log=_err, **CLIENT_OPTIONS,
    )
    result = pipeline.recheck(store, client, condition, [r["pmid"] for r in records])
    for pmid in result["newly_flagged"]:
        _err(f"warning: PMID {pmid} is now flagged by PubMed (retraction or concern): left out of this export.")
    for pmid in result["missing"]:
        _err(f"warning: PubMed returned no record for PMID {pmid}: it may have been withdrawn.")
    _err(f"Rechecked {_studies(result['checked'])} against PubMed: "
         f"{len(result['newly_flagged'])} newly flagged.")
    return curation.select(store, condition, max_records=max_records)


# -- review -------------------------------------------------------------------------------


@cli.command()
@click.argument("slug", required=False)
@click.option("--port", type=click.IntRange(0, 65535),
              help="Port to listen on (default: 8765, or the next free one; 0 picks any free port).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but this machine's loopback lets others reach the page (with the token).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser; only print the URL.")
@db_option
@queries_option
def review(slug, port, host, no_browser, db, queries_dir):
    """Screen studies and build the handout in your browser (a local web page).

    Prints the page's address, with its access token, on one line; Ctrl-C stops it.
    Decisions made there are the same as 'include' / 'exclude' here.

    \b
    Example:
      evidence review low-back-pain
      evidence review --port 8800 --no-browser
    """
    from evidence import web

    if slug:
        get_condition(slug, queries_dir)  # an unknown slug fails before the server starts
    web.serve(
        config.db_path(str(db) if db else None),
        queries_dir=config.extra_queries_dir(str(queries_dir) if queries_dir else None),
        slug=slug, host=host, port=port, open_browser=not no_browser,
        client_options=CLIENT_OPTIONS, announce=_err,
    )


# -- doctor -------------------------------------------------------------------------------


@cli.command()
@click.option("--offline", is_flag=True, help="Skip the check that the E-utilities URL answers.")
@db_option
@json_option
def doctor(offline, db, as_json):
    """Check the database, the settings and the NCBI connection.

    \b
    Example:
      evidence doctor
      evidence doctor --offline --json
    """
    checks = _doctor_checks(db, offline)
    if as_json:
        _emit_json(checks)
    else:
        for check in checks:
            mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[check["status"]]
            click.echo(f"[{mark}] {check['name']}: {check['detail']}")
    if any(c["status"] == "fail" for c in checks):
        sys.exit(1)


def _doctor_checks(db, offline: bool) -> list[dict]:
    from evidence import entrez
    from evidence.store import MIN_FREE_BYTES, SCHEMA_VERSION, BUSY_TIMEOUT_MS, inspect_database

    checks = []
    key = config.api_key()

    def add(name, status, detail):
        checks.append({"name": name, "status": status, "detail": redact(detail, key)})

    path = config.db_path(str(db) if db else None)
    facts = inspect_database(path)
    if not facts["exists"]:
        add("database", "warn", f"{path} does not exist yet; 'evidence fetch' or 'evidence import' creates it.")
    elif facts["error"]:
        add("database", "fail", facts["error"])
    elif facts["integrity"] != "ok":
        add("database", "fail", f"{path}: integrity check failed ({facts['integrity']}). "
            "Restore a backup or move it aside.")
    elif not facts["current"]:
        add("database", "warn", f"{path}: schema {facts['schema_version']}, this evidence uses "
            f"{SCHEMA_VERSION}; any write command migrates it.")
    else:
        add("database", "ok", f"{path}: integrity ok, schema {facts['schema_version']}, "
            f"{facts['records']} records, {facts['size_bytes'] / 1e6:.1f} MB.")
    if facts["exists"] and not facts["error"]:
        if facts["read_only"]:
            add("writable", "fail", f"{path} cannot be written: {facts['read_only']}. list, show and "
                "export work; fetch, import, include, exclude and note do not. Make it writable, "
                "or pass --db / set EVIDENCE_DB to a writable copy.")
        elif facts["locked"]:
            add("writable", "warn", f"{path} is locked by another program right now: commands that "
                f"write wait for it (up to {BUSY_TIMEOUT_MS // 1000} s). Close the other program "
                "if that does not pass.")
        else:
            add("writable", "ok", f"{path} can be written.")
    free = facts["free_bytes"]
    folder = path.absolute().parent
    if free is not None:
        if free < MIN_FREE_BYTES:
            add("disk", "fail", f"the disk holding {folder} is full ({free / 1e6:.1f} MB free): "
                "a fetch or import cannot save. Free some space.")
        else:
            add("disk", "ok", f"{free / 1e9:,.1f} GB free on the disk holding {folder}.")
    try:
        email = config.email(required=False)
        if email:
            add("email", "ok", f"NCBI_EMAIL is {email}.")
        else:
            add("email", "fail", "No email for NCBI: pass --email to fetch, or set NCBI_EMAIL.")
    except EvidenceError as exc:
        email = None
        add("email", "fail", str(exc))
    add("api key", "ok" if key else "warn",
        "NCBI_API_KEY is set (not shown): up to 10 requests a second." if key
        else "NCBI_API_KEY is not set: up to 3 requests a second. Get a free key in your NCBI account settings.")
    try:
        url = config.eutils_url()
    except EvidenceError as exc:
        add("e-utilities", "fail", str(exc))
        return checks
    if offline:
        add("e-utilities", "warn", f"{url}: not checked (--offline).")
        return checks
    client = entrez.Client(url, email or "doctor@invalid.example", key, config.TOOL_NAME,
                           max_retries=0, timeout=(5.0, 15.0))
    try:
        client.esearch("massage", retmax=0)
        add("e-utilities", "ok", f"{url} answers.")
    except EvidenceError as exc:
        add("e-utilities", "fail", f"{url} does not answer: {exc}")
    return checks


def main() -> None:
    """Console-script entry point: every way out is an exit code and at most one line."""
    try:
        result = cli.main(prog_name="evidence", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        code = exc.exit_code
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        # Ctrl-C while click parses the arguments, before a command runs.
        code = 130
        try:
            click.echo("Interrupted.", err=True)
        except OSError:
            pass
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BrokenPipeError:
        _silence_stdout()
        code = 1
    except OSError as exc:
        # Raised outside a command (click printing --help or a usage error to a full disk).
        _silence_stdout()
        code = 1
        try:
            click.echo(f"Error: {_os_error_words(exc)}", err=True)
        except OSError:
            pass
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        _silence_stdout()
        code = code or 1
    except OSError as exc:
        _silence_stdout()
        if not code:
            try:
                click.echo(f"Error: {_os_error_words(exc)}", err=True)
            except OSError:
                pass
            code = 1
    sys.exit(code)


if __name__ == "__main__":
    main()
