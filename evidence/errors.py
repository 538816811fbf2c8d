"""Every error the library raises on purpose. Only `evidence.cli` turns them into exit codes."""

# The name this program is published under (setup.cfg); the command stays `evidence`. Every
# hint that says how to install or upgrade names it: "evidence" on PyPI is another project.
DISTRIBUTION = "massage-evidence"


class EvidenceError(Exception):
    """Base class: a problem the user can fix, reported as one line."""


class ConfigError(EvidenceError):
    """A setting is missing or invalid."""


class ConditionError(EvidenceError):
    """A condition file is broken, or a condition slug is unknown."""


class UnknownConditionError(ConditionError):
    """No condition file has this slug."""


class EntrezError(EvidenceError):
    """NCBI E-utilities failed, after retries, or answered with an error."""


class ParseError(EvidenceError):
    """A PubMed XML or MEDLINE file is corrupt, hostile or not PubMed at all."""


class StoreError(EvidenceError):
    """The database cannot be opened, is locked, corrupt or from a newer version."""


class NotCachedError(EvidenceError):
    """A PMID is not in the database."""


class ExportError(EvidenceError):
    """An export cannot be written."""
