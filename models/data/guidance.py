"""Warnings about a data folder as a whole: files that will not be read, tables whose absence matters later.

None of these breaks the contract, so none makes validation fail; each names what will happen
(a file ignored, an audit refused, a group of features left empty) and what to do about it.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from waymark.models.data.contract import TABLES
from waymark.models.data.findings import Finding
from waymark.models.data.publish import MANIFEST

# Files Waymark itself writes into a data folder beside the contract tables.
WAYMARK_FILES = frozenset({MANIFEST, "directory.csv"})
TABLE_SUFFIXES = (".csv", ".parquet")
_SHORTEST_GUESSED = 4  # a shorter name (a, res) is not matched to a table by its first letters
# The raw OULAD files, which `waymark data import-oulad` converts (lower-cased stems).
_OULAD_FILES = frozenset(
    {"studentinfo", "studentvle", "vle", "courses", "studentassessment", "studentregistration"}
)


def folder_warnings(
    folder: Path, row_counts: dict[str, int], *, located: set[str], entries: Iterable[str] | None = None
) -> list[Finding]:
    """Warnings about ``folder``: unrecognised files, a missing audit table, no assessments or activity.

    Parameters
    ----------
    folder
        The data folder.
    row_counts
        Rows per table that was read.
    located
        Names of the tables whose files were found (read or not).
    entries
        The names in ``folder`` (listed here if None; given for a folder that is not on this machine).

    Returns
    -------
    list of Finding
        Findings of severity ``warning``.
    """
    names = unrecognised_entries(folder) if entries is None else unrecognised_names(entries)
    out = [_unrecognised(name) for name in names]
    if "protected_characteristics" not in located:
        out.append(_no_protected_characteristics())
    out += _assessment_warnings(row_counts, located=located)
    if row_counts.get("activity", -1) == 0:
        msg = (
            f"{_empty('activity', located)}: every activity feature will be empty, so indicators rest on "
            "registrations and assessments alone. Add the activity extract if one exists"
        )
        out.append(Finding("activity", "no_activity", msg, severity="warning"))
    return out


def known_entries() -> frozenset[str]:
    """Names a data folder may hold: each contract table's files and folder, and Waymark's own files."""
    tables = {f"{name}{suffix}" for name in TABLES for suffix in TABLE_SUFFIXES} | set(TABLES)
    return frozenset(tables | WAYMARK_FILES)


def unrecognised_entries(folder: Path) -> list[str]:
    """Entries of ``folder`` that no reader will open (hidden entries, such as staging folders, aside)."""
    return unrecognised_names(p.name for p in folder.iterdir())


def unrecognised_names(names: Iterable[str]) -> list[str]:
    """The names among ``names`` that no reader will open, hidden ones aside, sorted."""
    known = known_entries()
    return sorted(name for name in names if not name.startswith(".") and name not in known)


def closest_table(name: str) -> str | None:
    """The contract table ``name`` was most likely meant to be, if any looks close."""
    stem = Path(name).stem.lower() if "." in name else name.lower()
    if stem in TABLES:
        return stem
    close = difflib.get_close_matches(stem, list(TABLES), n=1, cutoff=0.6)
    if close:
        return close[0]
    prefixed = [t for t in TABLES if t.startswith(stem) or stem.startswith(t)]
    return prefixed[0] if len(stem) >= _SHORTEST_GUESSED and prefixed else None


def _unrecognised(name: str) -> Finding:
    stem = name.split(".", 1)[0]
    table = closest_table(name)
    head = f"{name} is not a contract table, so it is not read"
    if stem.lower() in _OULAD_FILES:
        advice = "it looks like a raw OULAD file: convert the OULAD folder with `waymark data import-oulad`"
    elif table == stem:
        advice = (
            f"a table is {table}.csv, {table}.parquet or a folder {table}/ of Parquet parts; "
            f"save it in one of those forms"
        )
    elif table is not None:
        advice = f"did you mean {table}? Rename it to {table}.csv (or {table}.parquet)"
    else:
        advice = (
            "the tables are " + ", ".join(TABLES) + "; move the file out of the data folder if it is not one"
        )
    return Finding("(folder)", "unrecognised_file", f"{head}; {advice}", severity="warning")


def _no_protected_characteristics() -> Finding:
    msg = (
        "no protected_characteristics table: nothing is lost for features (they never use it), but "
        "the fairness audit needs it before any model can be approved. Add protected_characteristics.csv "
        "(student_id and one column per characteristic) before running `waymark fairness audit`"
    )
    return Finding("protected_characteristics", "missing_table", msg, severity="warning")


def _empty(table: str, located: set[str]) -> str:
    """How a table with no rows came to have none: an empty file, or no file at all."""
    return f"{table} has no rows" if table in located else f"{table} has no file in the folder"


def _assessment_warnings(row_counts: dict[str, int], *, located: set[str]) -> list[Finding]:
    if row_counts.get("assessments", -1) == 0:
        msg = (
            f"{_empty('assessments', located)}: every assessment feature (submissions, lateness, "
            "scores) will be empty, and explanations will not mention marked work. Add the "
            "presentations' assessments if any are set"
        )
        return [Finding("assessments", "no_assessments", msg, severity="warning")]
    if row_counts.get("assessments", 0) > 0 and row_counts.get("assessment_results", -1) == 0:
        msg = (
            f"{_empty('assessment_results', located)}: assessments are declared but no submission or mark is "
            "recorded, so assessment features will be empty and explanations will not mention marked "
            "work. Add the results if any work has been submitted"
        )
        return [Finding("assessment_results", "no_results", msg, severity="warning")]
    return []
