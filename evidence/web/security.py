"""Who may use the page: the access token, the Host check, CSRF tokens and response headers.

Modelled on jupyter-server: a random token in the printed URL (exchanged for a cookie on the
first visit), Host headers other than the loopback names refused, so a web page that
rebinds its own DNS name to 127.0.0.1 cannot reach us, and a CSRF token on every POST.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import secrets

LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})

# Scripts come only from our own files: no inline script, no other origin. Styles the same.
# The handout preview is the export's own self-contained HTML (inline <style>), served under
# its own policy by `handout_policy`.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-src 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)


def new_token() -> str:
    """A random access token (256 bits), new for every server."""
    return secrets.token_urlsafe(32)


def csrf_token(access_token: str) -> str:
    """The CSRF token that every POST must carry, derived from the access token."""
    return hmac.new(access_token.encode(), b"evidence review csrf", hashlib.sha256).hexdigest()


def same(given: str | None, expected: str) -> bool:
    """Compare a secret in constant time (a missing one never matches)."""
    return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def host_name(host_header: str) -> str:
    """The name in a Host header, without its port or IPv6 brackets, lowercased."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host


def is_loopback(host: str) -> bool:
    """Whether an address or name stays on this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def handout_policy(html: str) -> str:
    """A policy for the handout's own page: no script at all, its one inline <style> by hash."""
    start = html.find("<style>")
    end = html.find("</style>", start)
    styles = "'none'"
    if start != -1 and end != -1:
        digest = hashlib.sha256(html[start + len("<style>"):end].encode("utf-8")).digest()
        styles = f"'sha256-{base64.b64encode(digest).decode()}'"
    return (
        f"default-src 'none'; style-src {styles}; img-src data:; frame-ancestors 'self'; "
        "base-uri 'none'; form-action 'none'"
    )
