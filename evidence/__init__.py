"""Gather PubMed research on massage therapy for one condition, grade it, export a handout."""

__version__ = "0.1.0"
