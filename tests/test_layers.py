"""The layers of DESIGN.md, enforced by reading each module's imports."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "evidence"

# module -> the evidence modules and third-party packages it may import (DESIGN.md "Layers").
ALLOWED = {
    "errors": set(),
    # Atomic writes, bounded reads, redaction: used by every layer, uses none but errors.
    "guards": {"errors"},
    "config": {"errors", "guards"},
    "queries": {"errors", "config", "guards"},
    "entrez": {"errors", "guards", "requests"},
    "pubmed": {"errors", "guards"},
    "medline": {"errors", "guards", "Bio"},
    "store": {"errors", "guards", "sqlite_utils", "sqlite3"},
    "grading": {"errors"},
    "relevance": {"errors", "queries"},
    # Keeps stored fits current: relevance's rules over a store it is handed (no SQL here).
    "fits": {"errors", "queries", "relevance"},
    "pipeline": {
        "errors", "guards", "config", "queries", "entrez", "pubmed", "medline", "store", "grading",
        "relevance", "fits",
    },
    # Not in DESIGN.md's table: picks the studies to export and counts them (README, "Layers").
    "curation": {
        "errors", "config", "queries", "store", "grading", "relevance", "fits", "pipeline", "__init__",
        "pandas",
    },
    "export": {"errors", "grading", "jinja2", "weasyprint", "export", "__init__"},
    # `evidence review`: everything below cli, never sqlite3; the only HTTP-serving code.
    "web": {
        "errors", "config", "queries", "entrez", "relevance", "pipeline", "store", "curation",
        "export", "web", "flask", "werkzeug", "waitress", "jinja2", "markupsafe",
    },
}
THIRD_PARTY = {
    "requests", "Bio", "sqlite_utils", "pandas", "click", "jinja2", "weasyprint", "lxml",
    "flask", "werkzeug", "waitress", "markupsafe", "sqlite3",
}
# Packages that serve or route HTTP: only the web layer may import them.
HTTP_SERVING = {"flask", "werkzeug", "waitress"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module == "evidence":
            names = [f"evidence.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "evidence":
                inner = parts[1] if len(parts) > 1 else "__init__"
                found.add("__init__" if inner.startswith("__") else inner)
            elif parts[0] in THIRD_PARTY:
                found.add(parts[0])
    return found


def modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        name = rel.parts[0].removesuffix(".py")
        if name in ("cli", "__main__", "__init__"):
            continue
        yield name, path


@pytest.mark.parametrize("name,path", list(modules()), ids=lambda v: str(v))
def test_module_imports_only_its_layers(name, path):
    allowed = ALLOWED.get(name)
    assert allowed is not None, f"{name} is not in DESIGN.md's layers: add it there and here"
    extra = imports_of(path) - allowed - {name}
    assert not extra, f"{path.name} imports {sorted(extra)}, outside its layer"


def test_only_cli_imports_click():
    users = [p.name for _, p in modules() if "click" in imports_of(p)]
    assert users == []


def test_only_web_serves_http():
    users = sorted({name for name, p in modules() if imports_of(p) & HTTP_SERVING})
    assert users == ["web"]


def test_web_knows_no_sql():
    """The review page reads and decides through the store's and curation's functions."""
    sql = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE)\b\s|\bFROM\s+\w+\s+(WHERE|JOIN)|\bcondition_records\b|\bdecision_log\b")
    for path in sorted((PACKAGE / "web").rglob("*.py")):
        assert "sqlite3" not in imports_of(path), f"{path.name} imports sqlite3"
        found = sql.search(path.read_text())
        assert not found, f"{path.name} holds SQL or a table name: {found.group(0)!r}"


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from evidence import cli; "
        "heavy = [m for m in ('pandas', 'sqlite_utils', 'weasyprint', 'requests', 'Bio', 'jinja2', 'flask', 'waitress') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
