"""`evidence review`: the local screening page, and the only code that knows HTTP serving.

A sibling of the CLI: it reads and decides through the same store and curation functions
(a decision made here shows in `evidence decisions`, and the reverse), renders the handout
with the same export code, and fetches with the same polite E-utilities client. It knows no
SQL. `serve` runs it; `create_app` builds the Flask app that tests drive with its client.
"""

from __future__ import annotations

from evidence.web.app import ReviewSettings, create_app
from evidence.web.server import serve

__all__ = ["ReviewSettings", "create_app", "serve"]
