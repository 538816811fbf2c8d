"""The review pages and their actions: conditions, screening, handout, decisions, fetches.

Every page is rendered on the server from the templates in `evidence/templates/` (review*.j2)
and works without JavaScript: each action is a plain form that POSTs and is redirected back.
`review.js` only adds keys and saves a page load per decision, by asking for JSON instead.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, redirect, render_template, request, url_for
from jinja2 import StrictUndefined
from werkzeug.exceptions import BadRequest, Forbidden, HTTPException, NotFound

from evidence import config, curation, queries, relevance
from evidence import export as exporter
from evidence.errors import (
    ConfigError,
    EvidenceError,
    ExportError,
    NotCachedError,
    StoreError,
    UnknownConditionError,
)
from evidence.export.citation import vancouver
from evidence.store import Store
from evidence.web import highlight, security
from evidence.web.jobs import FetchJobs

log = logging.getLogger("evidence.web")

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# Our own script and stylesheet, the only files served besides pages.
STATIC = {"review.js": "text/javascript; charset=utf-8", "review.css": "text/css; charset=utf-8"}
# Rows on one screening page: most conditions' searches hold fewer, so they screen on one
# page; a search of tens of thousands is split. 3,000 rows render in about 0.1 s
# (bench/bench_review.py).
PAGE_SIZE = 3000
# Longest note and reason kept: a paragraph, not a paper.
MAX_NOTE = 5000
MAX_REASON = 500
# Larger request bodies are refused (413) before they are read: no form here needs more.
MAX_BODY = 64 * 1024
MIME = {
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
    "md": "text/markdown; charset=utf-8",
    "ris": "application/x-research-info-systems; charset=utf-8",
    "nbib": "application/x-inst-for-scientific-info; charset=utf-8",
    "bibtex": "application/x-bibtex; charset=utf-8",
    "csl-json": "application/vnd.citationstyles.csl+json; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
}
FORMAT_NAMES = {
    "pdf": "Handout, PDF", "html": "Handout, web page", "md": "Handout, Markdown",
    "ris": "RIS (EndNote, Zotero, Mendeley)", "nbib": "MEDLINE .nbib (PubMed format)",
    "bibtex": "BibTeX", "csl-json": "CSL-JSON", "csv": "CSV spreadsheet",
}
FITS = relevance.FITS
LEVELS = ("1", "2", "3", "4", "5", "none")
_PMID = re.compile(r"^[1-9][0-9]{0,8}$")


@dataclass
class ReviewSettings:
    """What one review server needs: its database, its token and who may call it."""

    db_path: Path
    token: str
    queries_dir: Path | None = None
    # Cookies are shared by every port of a host, so each server names its own.
    cookie_name: str = "evidence-review"
    allowed_hosts: frozenset[str] = security.LOOPBACK_NAMES
    # Keyword arguments for the E-utilities client of fetches started here (the CLI's).
    client_options: dict = field(default_factory=dict)


class _ReviewFlask(Flask):
    # Flask escapes only templates named *.html; ours are *.j2, and record text must always
    # be escaped, whatever a template is called.
    jinja_options = {**Flask.jinja_options, "undefined": StrictUndefined, "trim_blocks": True,
                     "lstrip_blocks": True}

    def select_jinja_autoescape(self, filename: str | None) -> bool:
        return True


def create_app(settings: ReviewSettings) -> Flask:
    """The review app, ready for a WSGI server or Flask's test client."""
    app = _ReviewFlask("evidence.web", template_folder=str(TEMPLATES), static_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY, JSON_SORT_KEYS=False)
    app.extensions["evidence"] = settings
    jobs = FetchJobs(settings.db_path, settings.client_options)
    app.extensions["evidence_jobs"] = jobs
    csrf = security.csrf_token(settings.token)
    static = {name: (TEMPLATES / name).read_bytes() for name in STATIC}

    @app.context_processor
    def _globals():
        return {"csrf_token": csrf}

    # -- who may ask ----------------------------------------------------------------------

    @app.before_request
    def _guard():
        name = security.host_name(request.host or "")
        if name not in settings.allowed_hosts:
            raise Forbidden(
                "This server answers only at the address 'evidence review' printed "
                "(127.0.0.1 or localhost). Open that URL."
            )
        token = request.args.get("token")
        if token is not None:
            if not security.same(token, settings.token):
                raise Forbidden(_TOKEN_HELP)
            if request.method == "GET":
                # Trade the token for a cookie and drop it from the address bar and history.
                args = {k: v for k, v in request.args.items(multi=True) if k != "token"}
                target = request.path + ("?" + urlencode(args) if args else "")
                response = redirect(target, code=303)
                _set_cookie(response)
                return response
        elif not (
            security.same(request.cookies.get(settings.cookie_name), settings.token)
            or security.same(_header_token(), settings.token)
        ):
            raise Forbidden(_TOKEN_HELP)
        if request.method not in ("GET", "HEAD"):
            _check_csrf()
        return None

    def _header_token() -> str | None:
        value = request.headers.get("Authorization", "")
        return value[6:].strip() if value.lower().startswith("token ") else None

    def _set_cookie(response: Response) -> None:
        response.set_cookie(
            settings.cookie_name, settings.token, httponly=True, samesite="Strict", path="/"
        )

    def _check_csrf() -> None:
        origin = request.headers.get("Origin")
        if origin and origin not in (f"http://{request.host}", f"https://{request.host}"):
            raise Forbidden("This request came from another site's page, so it was refused.")
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            raise Forbidden("This request came from another site's page, so it was refused.")
        given = request.headers.get("X-CSRF-Token") or request.form.get("csrf_token")
        if not security.same(given, csrf):
            raise Forbidden(
                "This form is missing its security token (CSRF), so nothing was changed. "
                "Reload the page and try again."
            )

    @app.after_request
    def _headers(response: Response) -> Response:
        response.headers.setdefault("Content-Security-Policy", security.CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Not "no-referrer": with it Chromium sends "Origin: null" on our own form POSTs, which
        # the CSRF check must refuse. Other sites get no Referer; links out say noreferrer too.
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
        response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
        # Private data behind a token: no cache keeps a copy.
        response.headers["Cache-Control"] = "no-store"
        return response

    # -- the store, one connection per request (SQLite's connections are per thread) ------

    def store() -> Store:
        if "store" not in g:
            g.store = Store(settings.db_path)
        return g.store

    @app.teardown_request
    def _close(exc):
        opened = g.pop("store", None)
        if opened is not None:
            opened.close()

    def condition_of(slug: str):
        return queries.get_condition(slug, settings.queries_dir)

    def pmid_of(slug: str) -> str:
        pmid = (request.form.get("pmid") or "").strip()
        if not _PMID.match(pmid):
            raise BadRequest(f"{pmid!r} is not a PMID (a PMID is a number like 33984499).")
        if not store().is_linked(slug, pmid):
            raise NotFound(f"PMID {pmid} is not one of the studies of {slug}.")
        return pmid

    # -- pages ----------------------------------------------------------------------------

    @app.get("/")
    def conditions():
        found = queries.load_conditions(settings.queries_dir)
        summary = curation.screening_overview(store(), found.values())
        latest = jobs.latest_by_slug()
        rows = []
        for slug, c in found.items():
            counts = summary.get(slug, {})
            rows.append({
                "slug": slug, "title": c.title, "records": counts.get("records", 0),
                "screened": counts.get("screened", 0), "included": counts.get("included", 0),
                "excluded": counts.get("excluded", 0), "on_topic": counts.get("on_topic"),
                "last_fetch": (counts.get("last_fetch") or "")[:10] or None,
                "job": latest[slug].to_dict() if slug in latest else None,
            })
        try:
            need_email = not config.email(required=False)
        except ConfigError:  # a malformed NCBI_EMAIL: the form asks for a good one
            need_email = True
        return render_template(
            "review_conditions.html.j2", rows=rows, need_email=need_email,
            selected=request.args.get("fetch"),
            running=any(r["job"] and r["job"]["state"] in ("starting", "fetching") for r in rows),
        )

    @app.get("/conditions/<slug>")
    def screen(slug):
        condition = condition_of(slug)
        records = curation.screening_records(store(), condition)
        counts = curation.screening_counts(records)
        filters = _filters(request.args)
        shown = curation.filter_screening(store(), condition, records, **filters)
        wanted = request.args.get("pmid")
        after = request.args.get("after")
        focus_index = _focus_index(shown, wanted, after)
        page = _page(request.args.get("page"), focus_index, len(shown))
        start = page * PAGE_SIZE
        rows = shown[start:start + PAGE_SIZE]
        if focus_index is None or not start <= focus_index < start + PAGE_SIZE:
            focus_index = start if rows else None  # a page asked for: its first row
        focus = record_view(condition, shown[focus_index]) if focus_index is not None else None
        query = _filter_query(filters)
        return render_template(
            "review_screen.html.j2", condition=condition, counts=counts, rows=[_row(r) for r in rows], focus=focus,
            filters=filters, query=query, shown=len(shown), page=page,
            pages=max(1, -(-len(shown) // PAGE_SIZE)), start=start,
            fits=FITS, levels=LEVELS, reasons=curation.EXCLUDE_REASONS,
            has_fit=any(r.get("fit") for r in records[:50]),
            here=request.full_path.rstrip("?"),
        )

    @app.get("/conditions/<slug>/records/<pmid>")
    def record_fragment(slug, pmid):
        """The focused record's panel alone, for the page's script to swap in."""
        condition = condition_of(slug)
        if not _PMID.match(pmid) or not store().is_linked(slug, pmid):
            raise NotFound(f"PMID {pmid} is not one of the studies of {slug}.")
        decided = {d["pmid"]: d for d in store().decisions(slug)}.get(pmid, {})
        light = {"pmid": pmid, "decision": decided.get("decision"), "decision_reason": decided.get("reason")}
        return render_template(
            "review_record.html.j2", condition=condition, focus=record_view(condition, light),
            reasons=curation.EXCLUDE_REASONS, here=request.args.get("next") or url_for("screen", slug=slug),
        )

    def record_view(condition, light: dict) -> dict:
        record = store().get_record(light["pmid"])
        pattern = _pattern(condition)
        sections = [
            {"label": s.get("label"), "text": highlight.highlight(s.get("text"), pattern)}
            for s in record.get("abstract_sections") or []
        ]
        if not sections and record.get("abstract"):
            sections = [{"label": None, "text": highlight.highlight(record["abstract"], pattern)}]
        return {
            **record,
            "decision": light.get("decision"),
            "decision_reason": light.get("decision_reason"),
            "fit": record.get("fit") or light.get("fit"),
            "fit_reason": record.get("fit_reason") or light.get("fit_reason"),
            "title_html": highlight.highlight(record.get("title") or "(no title)", pattern),
            "sections": sections,
            "citation": vancouver(record),
            "pubmed_url": f"https://pubmed.ncbi.nlm.nih.gov/{record['pmid']}/",
            "doi_url": f"https://doi.org/{record['doi']}" if record.get("doi") else None,
        }

    @app.get("/conditions/<slug>/handout")
    def handout(slug):
        condition = condition_of(slug)
        records, facts = curation.select(store(), condition)
        return render_template(
            "review_handout.html.j2", condition=condition, records=records, facts=facts,
            formats=[(fmt, FORMAT_NAMES[fmt], exporter.FORMATS[fmt]) for fmt in exporter.FORMATS],
        )

    @app.get("/conditions/<slug>/handout.html")
    def handout_html(slug):
        """The handout exactly as `evidence export --format html` writes it, for the preview."""
        data = _export(slug, "html")
        html = data.decode("utf-8")
        response = Response(data, mimetype="text/html", content_type=MIME["html"])
        response.headers["Content-Security-Policy"] = security.handout_policy(html)
        response.headers["X-Frame-Options"] = "SAMEORIGIN"
        return response

    @app.get("/conditions/<slug>/export/<fmt>")
    def download(slug, fmt):
        if fmt not in exporter.FORMATS:
            raise NotFound(f"No export format {fmt!r}: choose one of {', '.join(exporter.FORMATS)}.")
        data = _export(slug, fmt)
        response = Response(data, content_type=MIME[fmt])
        response.headers["Content-Disposition"] = (
            f'attachment; filename="{slug}{exporter.FORMATS[fmt]}"'
        )
        return response

    def _export(slug: str, fmt: str) -> bytes:
        condition = condition_of(slug)
        records, facts = curation.select(store(), condition)
        if not records:
            raise ExportError(
                f"No studies to export for {slug}: fetch it from the conditions page, "
                "or include some studies."
            )
        return exporter.render(fmt, records, curation.export_context(store(), condition, facts))

    @app.get("/static/<name>")
    def static_file(name):
        if name not in STATIC:
            raise NotFound(f"No file {name!r} here.")
        return Response(static[name], content_type=STATIC[name])

    # -- actions (POST, CSRF-checked in _guard) --------------------------------------------

    @app.post("/conditions/<slug>/decide")
    def decide(slug):
        condition_of(slug)
        pmid = pmid_of(slug)
        decision = request.form.get("decision")
        if decision not in ("include", "exclude"):
            raise BadRequest("Choose include or exclude.")
        picked = request.form.get("reason_pick") or None
        if picked and picked not in curation.EXCLUDE_REASONS:
            raise BadRequest(f"{picked!r} is not one of the reasons offered: pick one from the list.")
        reason = curation.exclude_reason(picked, _limited("reason_text", MAX_REASON))
        if decision == "exclude" and not reason:
            raise BadRequest("Say why this study is left out: pick a reason or type one.")
        store().decide(slug, [pmid], decision, reason)
        return _done(slug, pmid, f"PMID {pmid} {decision}d.", advance=True)

    @app.post("/conditions/<slug>/undo")
    def undo(slug):
        condition_of(slug)
        pmid = pmid_of(slug)
        removed = store().undo_decisions(slug, [pmid])
        return _done(slug, pmid, f"PMID {pmid}: decision undone." if removed else f"PMID {pmid} had no decision.")

    @app.post("/conditions/<slug>/note")
    def note(slug):
        condition_of(slug)
        pmid = pmid_of(slug)
        text = (_limited("text", MAX_NOTE) or "").strip()
        store().set_note(pmid, text)
        return _done(slug, pmid, f"Note {'saved' if text else 'removed'} for PMID {pmid}.")

    def _limited(name: str, limit: int) -> str | None:
        value = request.form.get(name)
        if value is not None and len(value) > limit:
            raise BadRequest(f"The {name.replace('_', ' ')} is longer than {limit} characters: shorten it.")
        return value

    def _done(slug: str, pmid: str, message: str, advance: bool = False):
        if _wants_json():
            counts = store().screening_summary(slug).get(slug, {})
            decided = {d["pmid"]: d for d in store().decisions(slug)}.get(pmid, {})
            return jsonify({
                "pmid": pmid, "decision": decided.get("decision"), "reason": decided.get("reason"),
                "message": message,
                "counts": {"total": counts.get("records", 0), "screened": counts.get("screened", 0),
                           "included": counts.get("included", 0), "excluded": counts.get("excluded", 0)},
            })
        target = _local(request.form.get("next")) or url_for("screen", slug=slug)
        target = re.sub(r"([?&])(pmid|after)=[^&]*&?", r"\1", target).rstrip("?&")
        joiner = "&" if "?" in target else "?"
        return redirect(f"{target}{joiner}{'after' if advance else 'pmid'}={pmid}", code=303)

    @app.post("/fetch")
    def fetch():
        condition = condition_of((request.form.get("slug") or "").strip())
        email = (request.form.get("email") or "").strip() or None
        job = jobs.start(condition, refresh=request.form.get("refresh") == "1", email=email)
        if _wants_json():
            return jsonify(job.to_dict()), 202
        return redirect(url_for("conditions") + f"#c-{condition.slug}", code=303)

    @app.get("/fetches.json")
    def fetches():
        return jsonify({"jobs": [job.to_dict() for job in jobs.all()]})

    # -- errors: a clear page (or JSON for the script), never a traceback ------------------

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        return _error(exc.code or 500, exc.name, exc.description or "")

    @app.errorhandler(EvidenceError)
    def _evidence_error(exc: EvidenceError):
        if isinstance(exc, (UnknownConditionError, NotCachedError)):
            return _error(404, "Not Found", str(exc))
        if isinstance(exc, ExportError):
            return _error(409, "Nothing to export", str(exc))
        if isinstance(exc, StoreError):
            return _error(503, "Database unavailable", str(exc))
        if isinstance(exc, ConfigError):
            return _error(400, "Bad Request", str(exc))
        return _error(400, "Bad Request", str(exc))

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        log.exception("evidence review: unexpected error on %s %s", request.method, request.path)
        return _error(500, "Internal Server Error",
                      "Something went wrong on this page; nothing was changed by it. "
                      "The terminal running 'evidence review' shows the details.")

    def _error(code: int, title: str, message: str):
        if _wants_json():
            return jsonify({"error": message, "status": code}), code
        return render_template("review_error.html.j2", code=code, title=title, message=message), code

    return app


_TOKEN_HELP = (
    "This page needs the access token. Open the full URL that 'evidence review' printed in "
    "its terminal (it ends in ?token=...)."
)


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _local(target: str | None) -> str | None:
    """A return address only if it stays on this server (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    return target


_STATES = {"include": "Included", "exclude": "Excluded"}


def _row(r: dict) -> tuple:
    """One list row's text, worked out here: a template loop over 3,000 rows is the page's
    main cost, and plain values keep it to escaping (bench/bench_review.py)."""
    decision = r.get("decision") or ""
    title = r.get("title") or "(no title)"
    return (
        r["pmid"], decision, _STATES.get(decision, ""), r.get("fit") or "",
        f"Level {r['level']}" if r.get("level") else "No level", r.get("year") or "",
        r.get("journal_abbrev") or r.get("journal") or "",
        f"[retracted] {title}" if r.get("retracted") else title,
    )


def _filters(args) -> dict:
    fits = [f for f in args.getlist("fit") if f in FITS]
    levels = [v for v in args.getlist("level") if v in LEVELS]
    status = args.get("status") if args.get("status") in curation.SCREEN_STATUSES else None
    decision = args.get("decision") if args.get("decision") in ("include", "exclude") else None
    search = (args.get("q") or "").strip()[:200] or None
    return {"fit": fits, "level": levels, "status": status, "decision": decision, "search": search}


def _filter_query(filters: dict) -> str:
    """The filters as a query string prefix ("a=1&b=2&" or ""), for the rows' links."""
    pairs = [("fit", f) for f in filters["fit"]] + [("level", v) for v in filters["level"]]
    for key, name in (("status", "status"), ("decision", "decision"), ("search", "q")):
        if filters[key]:
            pairs.append((name, filters[key]))
    return urlencode(pairs) + "&" if pairs else ""


def _focus_index(rows: list[dict], wanted: str | None, after: str | None) -> int | None:
    """Which row has focus: the one asked for, else the first unscreened one (after `after`
    when given, wrapping round), else the first."""
    if not rows:
        return None
    index = {r["pmid"]: i for i, r in enumerate(rows)}
    if wanted in index:
        return index[wanted]
    begin = index[after] + 1 if after in index else 0
    order = list(range(begin, len(rows))) + list(range(0, begin))
    for i in order:
        if not rows[i].get("decision"):
            return i
    return index.get(after, 0)


def _page(value: str | None, focus_index: int | None, count: int) -> int:
    pages = max(1, -(-count // PAGE_SIZE))
    if value and value.isdigit():
        return min(int(value) - 1, pages - 1) if int(value) >= 1 else 0
    return (focus_index or 0) // PAGE_SIZE


def _pattern(condition):
    # re caches compiled patterns, so compiling per request costs a dictionary look-up.
    return highlight.compile_words(curation.highlight_words(condition))
