"""Fetches started from the conditions page, each in its own thread, with their progress.

A fetch here is the CLI's fetch: the same pipeline function, the same E-utilities client with
NCBI's pacing (shared with every other `evidence` process through the pace file), so a page
cannot ask NCBI faster than `evidence fetch` would.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evidence import config, entrez, pipeline
from evidence.errors import ConfigError, EvidenceError
from evidence.queries import Condition
from evidence.store import Store


@dataclass
class FetchJob:
    """One fetch's state, as the page shows it."""

    id: int
    slug: str
    refresh: bool
    state: str = "starting"  # starting, fetching, done, failed
    done: int = 0
    total: int = 0
    message: str = ""
    started: float = field(default_factory=time.time)

    def to_dict(self) -> dict:
        return asdict(self)


class FetchJobs:
    """The fetches this server started; at most one running per condition."""

    def __init__(self, db_path: Path, client_options: dict | None = None):
        self.db_path = db_path
        self.client_options = dict(client_options or {})
        self._jobs: dict[int, FetchJob] = {}
        self._lock = threading.Lock()
        self._next_id = 1

    def start(self, condition: Condition, *, refresh: bool, email: str | None) -> FetchJob:
        """Start fetching a condition in a thread; ConfigError when NCBI's settings are missing
        or it is being fetched already."""
        settings = config.ncbi_settings(email_opt=email or None)
        with self._lock:
            for job in self._jobs.values():
                if job.slug == condition.slug and job.state in ("starting", "fetching"):
                    raise ConfigError(f"{condition.slug} is being fetched already: wait for it to finish.")
            job = FetchJob(id=self._next_id, slug=condition.slug, refresh=refresh)
            self._next_id += 1
            self._jobs[job.id] = job
        thread = threading.Thread(
            target=self._run, args=(job, condition, settings), name=f"fetch-{condition.slug}", daemon=True
        )
        thread.start()
        return job

    def _run(self, job: FetchJob, condition: Condition, settings) -> None:
        def progress(stage: str, done: int, total: int) -> None:
            job.state, job.done, job.total = "fetching", done, total

        def log(line: str) -> None:
            job.message = line

        try:
            client = entrez.Client(
                settings.base_url, settings.email, settings.api_key, settings.tool,
                pace_file=config.pace_file(), log=log, **self.client_options,
            )
            store = Store(self.db_path)  # its own connection: SQLite's are per thread
            try:
                summary = pipeline.fetch_condition(
                    store, client, condition, refresh=job.refresh, progress=progress, log=log
                )
            finally:
                store.close()
        except EvidenceError as exc:
            job.state, job.message = "failed", str(exc)
            return
        except Exception as exc:  # a thread's error must reach the page, not vanish
            job.state, job.message = "failed", f"The fetch stopped: {type(exc).__name__}: {exc}"
            return
        job.state = "done"
        job.message = (
            f"found {summary.found}, new {summary.new}, updated {summary.updated}, "
            f"failed {summary.failed}, {summary.seconds:.1f} s"
        )

    def all(self) -> list[FetchJob]:
        """Every fetch started, newest first."""
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.id, reverse=True)

    def latest_by_slug(self) -> dict[str, FetchJob]:
        """The newest fetch of each condition."""
        out: dict[str, FetchJob] = {}
        for job in self.all():
            out.setdefault(job.slug, job)
        return out
