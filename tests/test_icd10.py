"""Every ICD-10-CM code in every condition file, checked against the real code set.

The files follow FY2027 (in force since 2026-10-01). `simple-icd-10-cm` ships the FY2026 code
set (its April 2026 update) inside its wheel; the FY2027 changes that touch plantar fasciitis
are laid on top here, from DOMAIN.md ("FY2027 changes that touch this table"): M72.2 became a
heading, and M67.A01, M67.A02 and M67.A09 were added. Their descriptions are the FY2027 order
file's. So a code that stops being billable, a heading, a range or a wrong description fails
here, loudly, as does a new release of the package (it is pinned in setup.cfg).
"""

from __future__ import annotations

import socket
import warnings
from pathlib import Path

import pytest

from evidence.queries import load_conditions

BUILTIN = Path(__file__).resolve().parent.parent / "queries"


def _import_offline():
    """Import the code set with the network refused: it must read only its own files."""
    real = socket.socket.connect

    def refuse(*args, **kwargs):
        raise AssertionError("simple_icd_10_cm tried to reach the network")

    socket.socket.connect = refuse
    try:
        # Its loader uses importlib.resources calls Python deprecates: its concern, not ours.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import simple_icd_10_cm
    finally:
        socket.socket.connect = real
    return simple_icd_10_cm


cm = _import_offline()

# FY2027 additions: code -> (description, billable).
FY2027_ADDED = {
    "M67.A": ("Plantar fasciitis", False),
    "M67.A01": ("Plantar fasciitis, right foot", True),
    "M67.A02": ("Plantar fasciitis, left foot", True),
    "M67.A09": ("Plantar fasciitis, unspecified foot", True),
}
# FY2027: billable codes that became headings (their children are new codes).
FY2027_NOW_HEADINGS = {"M72.2"}


def fy2027(code: str) -> tuple[str, bool] | None:
    """(description, billable) of a code or heading in the FY2027 code set, or None."""
    if code in FY2027_ADDED:
        return FY2027_ADDED[code]
    # B20 names both a block and its one category: a category is what a code file lists.
    if not cm.is_valid_item(code) or not cm.is_category_or_subcategory(code):
        return None
    billable = cm.is_leaf(code) and code not in FY2027_NOW_HEADINGS
    return cm.get_description(code), billable


def code_problem(entry: dict) -> str | None:
    """Why a condition file's ICD-10-CM entry is wrong for FY2027, or None if it is right."""
    code, description = entry["code"], entry["description"]
    if entry["category"]:
        heading = code[:-1].rstrip(".")
        found = fy2027(heading)
        if found is None:
            return f"{code}: {heading} is not in the FY2027 code set"
        if found[1]:
            return f"{code}: {heading} is billable itself; list it without the dash"
    else:
        found = fy2027(code)
        if found is None:
            return f"{code}: not in the FY2027 code set"
        if not found[1]:
            return f"{code}: a heading, not billable in FY2027; list its codes or write {code}-"
    if description != found[0]:
        return f"{code}: description {description!r}, the code set says {found[0]!r}"
    return None


def all_entries() -> list[tuple[str, dict]]:
    return [
        (slug, entry)
        for slug, condition in load_conditions(builtin_dir=BUILTIN).items()
        for entry in condition.icd10
    ]


def test_the_package_holds_the_code_set_the_overlay_expects():
    """FY2026: if this fails, the package moved on; recheck FY2027_ADDED and the pin."""
    assert not cm.is_valid_item("M67.A01"), "the package now has FY2027 codes"
    assert cm.is_leaf("M72.2") and cm.get_description("M72.2") == "Plantar fascial fibromatosis"
    # Earlier years' changes DOMAIN.md names are in it already.
    assert not cm.is_leaf("M54.5") and cm.is_leaf("M54.50")
    assert not cm.is_leaf("M79.1") and not cm.is_leaf("G20") and not cm.is_leaf("G35")


@pytest.mark.parametrize(
    "slug, entry", all_entries(), ids=[f"{s}-{e['code']}" for s, e in all_entries()]
)
def test_every_code_is_billable_in_fy2027_or_a_dash_category(slug, entry):
    assert code_problem(entry) is None, f"{slug}: {code_problem(entry)}"


def test_plantar_fasciitis_uses_the_fy2027_codes():
    codes = [e["code"] for s, e in all_entries() if s == "plantar-fasciitis"]
    assert codes == ["M67.A01", "M67.A02", "M67.A09"]
    assert all(e["code"] not in ("M72.2", "M54.51") for _, e in all_entries())


def test_some_conditions_use_dash_categories():
    categories = {e["code"] for _, e in all_entries() if e["category"]}
    assert {"G80.-", "G35.-", "M26.62-"} <= categories


@pytest.mark.parametrize(
    "entry, problem",
    [
        # Billable until 2026-09-30, a heading since.
        ({"code": "M72.2", "description": "Plantar fascial fibromatosis", "category": False},
         "M72.2: a heading, not billable in FY2027; list its codes or write M72.2-"),
        # The headings inside the range M17.0-M17.9 that DOMAIN.md warns about.
        ({"code": "M17.1", "description": "Unilateral primary osteoarthritis of knee",
          "category": False},
         "M17.1: a heading, not billable in FY2027; list its codes or write M17.1-"),
        ({"code": "M54.5", "description": "Low back pain", "category": False},
         "M54.5: a heading, not billable in FY2027; list its codes or write M54.5-"),
        ({"code": "M75.-", "description": "Shoulder pain", "category": True},
         "M75.-: description 'Shoulder pain', the code set says 'Shoulder lesions'"),
        ({"code": "M79.7-", "description": "Fibromyalgia", "category": True},
         "M79.7-: M79.7 is billable itself; list it without the dash"),
        ({"code": "M99.99", "description": "SYNTHETIC", "category": False},
         "M99.99: not in the FY2027 code set"),
        ({"code": "U99.9-", "description": "SYNTHETIC", "category": True},
         "U99.9-: U99.9 is not in the FY2027 code set"),
        # A block (a range of categories) is no category.
        ({"code": "M70-M79", "description": "Other soft tissue disorders", "category": False},
         "M70-M79: not in the FY2027 code set"),
        ({"code": "M67.A01", "description": "Plantar fasciitis of the right foot", "category": False},
         "M67.A01: description 'Plantar fasciitis of the right foot', "
         "the code set says 'Plantar fasciitis, right foot'"),
    ],
)
def test_the_check_catches_what_a_claim_would_reject(entry, problem):
    assert code_problem(entry) == problem


def test_the_check_accepts_right_entries():
    for entry in (
        {"code": "M67.A09", "description": "Plantar fasciitis, unspecified foot", "category": False},
        {"code": "M75.-", "description": "Shoulder lesions", "category": True},
        {"code": "M72.2-", "description": "Plantar fascial fibromatosis", "category": True},
        {"code": "B20", "description": "Human immunodeficiency virus [HIV] disease", "category": False},
    ):
        assert code_problem(entry) is None, entry
