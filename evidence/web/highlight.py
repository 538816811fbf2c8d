"""Marks the words a screener looks for (massage techniques, the condition) in record text.

The text is escaped piece by piece and only our own <mark> elements are added, so a title
holding "<script>" still shows as text.
"""

from __future__ import annotations

import re

from markupsafe import Markup, escape


def _word(word: str) -> str:
    """One search word or phrase as a regex: PubMed's `*` is any word ending, and the words
    of a phrase may be split by spaces or hyphens ("soft-tissue mobilisation")."""
    parts = [re.escape(p).replace(r"\*", r"\w*") for p in re.split(r"[\s-]+", word.strip()) if p]
    return r"[\s-]+".join(parts)


def compile_words(groups: dict[str, tuple[str, ...]]) -> re.Pattern | None:
    """One case-insensitive pattern with a named group per kind of word (longest words first)."""
    alternatives = []
    for kind, words in groups.items():
        patterns = sorted({_word(w) for w in words if w.strip("* ")}, key=len, reverse=True)
        if patterns:
            alternatives.append(rf"(?P<{kind}>\b(?:{'|'.join(patterns)})\b)")
    if not alternatives:
        return None
    return re.compile("|".join(alternatives), re.IGNORECASE)


def highlight(text: str | None, pattern: re.Pattern | None) -> Markup:
    """`text` escaped, with each matching word wrapped in <mark class="KIND">."""
    text = text or ""
    if pattern is None:
        return escape(text)
    out = []
    last = 0
    for match in pattern.finditer(text):
        out.append(escape(text[last:match.start()]))
        out.append(Markup('<mark class="{}">{}</mark>').format(match.lastgroup, match.group(0)))
        last = match.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)
