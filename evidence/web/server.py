"""Serving the review app: waitress on 127.0.0.1, one line with the URL, the browser, Ctrl-C.

waitress, not Flask's development server: a production WSGI server, pure Python with no
dependencies of its own, that queues requests to a fixed pool of threads (our store and
curation code is synchronous, so threads fit it) and bounds what a request may send.
"""

from __future__ import annotations

import errno
import ipaddress
import os
import signal
import sys
import tempfile
import threading
import webbrowser
from html import escape
from pathlib import Path
from typing import Callable

from evidence.errors import ConfigError
from evidence.web import security
from evidence.web.app import MAX_BODY, ReviewSettings, create_app

# Jupyter's habit of a fixed default port (so a bookmark of the page without its token
# finds the server), with the next few tried when another server holds it.
DEFAULT_PORT = 8765
PORT_TRIES = 10
# Page requests are short; a fetch runs in a thread of its own, so four request threads
# never wait on NCBI. SQLite serialises the writes.
THREADS = 4


def serve(
    db_path: Path,
    *,
    queries_dir: Path | None = None,
    slug: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    open_browser: bool = True,
    client_options: dict | None = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve the review pages until Ctrl-C (or SIGTERM); prints the URL, with its token, as one line."""
    from waitress.server import create_server

    host = _check_host(host, announce)
    settings = ReviewSettings(
        db_path=Path(db_path), token=security.new_token(), queries_dir=queries_dir,
        allowed_hosts=security.LOOPBACK_NAMES | {host}, client_options=dict(client_options or {}),
    )
    app = create_app(settings)
    server = None
    candidates = [port] if port is not None else range(DEFAULT_PORT, DEFAULT_PORT + PORT_TRIES)
    for candidate in candidates:
        try:
            server = create_server(
                app, host=host, port=candidate, threads=THREADS, ident="evidence",
                max_request_body_size=MAX_BODY, expose_tracebacks=False,
                clear_untrusted_proxy_headers=True,
            )
            break
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise ConfigError(f"Cannot listen on {host} port {candidate}: {exc.strerror}.") from None
            if port is not None:
                raise ConfigError(
                    f"Port {port} is in use (another 'evidence review'?): pass another --port, "
                    "or --port 0 for any free one."
                ) from None
    if server is None:
        raise ConfigError(
            f"Ports {DEFAULT_PORT}-{DEFAULT_PORT + PORT_TRIES - 1} are all in use: pass --port N, "
            "or --port 0 for any free one."
        )
    actual = server.effective_port
    settings.cookie_name = f"evidence-review-{actual}"
    url_host = f"[{host}]" if ":" in host else host
    url = f"http://{url_host}:{actual}{f'/conditions/{slug}' if slug else '/'}?token={settings.token}"
    opener = None
    try:
        # Inside the try: a Ctrl-C right after the URL appears must stop as cleanly as later.
        _stop_on_sigterm()
        announce(f"evidence review: {url}  (Ctrl-C stops it)")
        opener = _open_browser(url) if open_browser else None
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()
        if opener:
            opener.unlink(missing_ok=True)
    announce("evidence review stopped; every decision is saved.")


def _check_host(host: str, announce: Callable[[str], None]) -> str:
    """The address to listen on: one IP address of this machine; loopback unless asked."""
    if host == "localhost":
        return "127.0.0.1"  # one socket: waitress would open one per address localhost names
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(f"--host must be an IP address such as 127.0.0.1, not {host!r}.") from None
    if address.is_unspecified:
        raise ConfigError(
            f"--host {host} would open the page to every network this machine is on: "
            "name one address of this machine instead."
        )
    if not address.is_loopback:
        announce(
            f"Warning: listening on {host}, not only on this machine: anyone who can reach it "
            "and has the token can read and change your decisions."
        )
    return str(address)


def _open_browser(url: str) -> Path | None:
    """Open the page in the user's browser through a private redirect file, as Jupyter does,
    so the token never shows in another user's process list. Returns the file to delete."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return None  # no desktop to open it on; the printed URL is the way in
    fd, name = tempfile.mkstemp(prefix="evidence-review-", suffix=".html")  # mode 0600
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(
            f'<!DOCTYPE html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url={escape(url)}">'
            f'<title>evidence review</title><p><a href="{escape(url)}">Open evidence review</a></p>'
        )
    path = Path(name)
    threading.Thread(target=webbrowser.open, args=(path.as_uri(),), kwargs={"new": 2}, daemon=True).start()
    return path


def _stop_on_sigterm() -> None:
    """Stop on SIGTERM as on Ctrl-C (a service manager or `kill`), closing the server cleanly."""
    if threading.current_thread() is not threading.main_thread():
        return

    def stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
