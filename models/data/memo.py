"""Validate a data folder once: a later reader of the same bytes, under the same rules, skips the checks.

Validation reads every row of every table (seconds for millions of activity rows); the scoring job
reads the same unchanged folder week after week. After a folder passes (a reader's check, or the
check an import or generator runs before it publishes a folder: ``Validation``), a small memo is
written beside it: ``.<folder name>.waymark-validated.json`` in the folder's parent, holding the folder's
fingerprint (``folder_fingerprint``: sha256 over every file's path and bytes) and a digest of the
rules it passed (the contract and validation code, the sensitive terms in force, DuckDB's version).
A reader that finds both equal opens the folder's views without running the rules; any other
reader, or a changed byte anywhere in the folder, validates it again.

Beside the verdict, a memo keeps facts read from the same bytes that a later reader would only compute
again to the same value (``remember_fact``, ``recall``), each under a key naming how it is computed:
the scoring job keeps the last day of each presentation's activity, which otherwise scans the
whole activity table on every run of an unchanged folder.

Why beside the data, not in the service database: the memo is a fact about the folder's bytes, not
about one database, so it serves every database and backend that scores the folder and any other
reader that opts in, needs no schema change, and goes stale by itself when the folder is replaced
(a new fingerprint). It is never written inside the folder, whose every file the fingerprint covers.
Whoever can write beside the folder can change the folder itself, so the memo opens no new way for
unchecked data to be read. A parent folder that cannot be written to only means validating each time.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from waymark.models.data.contract import CONTRACT_VERSION, FEATURE_TABLES
from waymark.models.data.findings import ContractViolation, ValidationReport
from waymark.models.data.publish import folder_fingerprint
from waymark.models.data.sensitive import configured_terms
from waymark.models.data.validation import connect, open_views, validate_folder

SUFFIX = ".waymark-validated.json"
#: What a scoring read needs: the feature tables and the labels of the activity sources.
READ_TABLES = (*FEATURE_TABLES, "sources")
_RULE_FILES = (*sorted(Path(__file__).parent.glob("*.py")), *sorted(Path(__file__).parent.glob("*.toml")))
_ROLES = Path(__file__).parents[1] / "roles.py"  # which scope fits which relationship (the access rule)


def memo_path(folder: Path) -> Path:
    """Where the memo of ``folder`` is kept: a hidden file beside it, in its parent."""
    folder = folder.resolve()
    return folder.parent / f".{folder.name}{SUFFIX}"


def rules_digest() -> str:
    """sha256 of what a validation's verdict depends on besides the data: the rules in force."""
    digest = hashlib.sha256(f"contract {CONTRACT_VERSION}\nduckdb {duckdb.__version__}\n".encode())
    for path in (*_RULE_FILES, _ROLES):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    for term in configured_terms():
        digest.update(b"term\0" + term.text.encode())
    return digest.hexdigest()


def remembered(folder: Path, *, fingerprint: str) -> bool:
    """True when ``folder`` passed validation with this ``fingerprint`` under the rules in force now."""
    return _current(folder, fingerprint) is not None


def remember(folder: Path, *, fingerprint: str) -> bool:
    """Record that ``folder`` with ``fingerprint`` passed; False if the memo could not be written.

    Facts already remembered of the same bytes under the same rules (``recall``) are kept.
    """
    kept = _current(folder, fingerprint)
    memo = {
        "folder": str(folder.resolve()),
        "fingerprint": fingerprint,
        "rules": rules_digest(),
        "validated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "facts": {} if kept is None else kept.get("facts", {}),
    }
    return _write(memo_path(folder), memo)


def fact_key(name: str, computation: str) -> str:
    """The key a fact is remembered under: its name and a digest of how it is computed (``computation``).

    A fact computed another way (a changed query) has another key, so a memo never answers with a
    value the code in force would not compute.
    """
    return f"{name}:{hashlib.sha256(computation.encode()).hexdigest()[:16]}"


def recall(folder: Path, *, fingerprint: str, key: str) -> Any:
    """A fact about ``folder``'s bytes remembered under ``key`` (``remember_fact``); None if it is not.

    Only a memo of this ``fingerprint`` under the rules in force answers: a fact is of those bytes.
    """
    memo = _current(folder, fingerprint)
    return None if memo is None else memo.get("facts", {}).get(key)


def remember_fact(folder: Path, *, fingerprint: str, key: str, value: Any) -> bool:
    """Keep ``value`` (JSON) under ``key`` in the memo of a folder that passed with ``fingerprint``.

    A fact is a result read from the folder's bytes that a later reader of the same bytes would
    compute again to the same value (the last day of each presentation's activity). Nothing is kept
    unless the memo is of this fingerprint under the rules in force, and the folder still has that
    fingerprint after the fact was read from it (so a folder changed while it was read is never
    remembered with a value of other bytes). Returns whether the fact was kept.
    """
    memo = _current(folder, fingerprint)
    if memo is None or not os.access(memo_path(folder).parent, os.W_OK):  # before hashing every byte again
        return False
    if folder_fingerprint(folder) != fingerprint:
        return False
    memo["facts"] = {**memo.get("facts", {}), key: value}
    return _write(memo_path(folder), memo)


def _current(folder: Path, fingerprint: str) -> dict[str, Any] | None:
    """The memo of ``folder`` if it is of ``fingerprint`` under the rules in force now, else None."""
    try:
        memo = json.loads(memo_path(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        isinstance(memo, dict)
        and memo.get("fingerprint") == fingerprint
        and memo.get("rules") == rules_digest()
        and isinstance(memo.get("facts", {}), dict)
    ):
        return memo
    return None


def _write(path: Path, memo: dict[str, Any]) -> bool:
    """Replace the memo at ``path`` whole; False if it could not be written."""
    staging = path.with_name(f"{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        staging.write_text(json.dumps(memo, indent=2) + "\n", encoding="utf-8")
        os.replace(staging, path)  # readers see the old memo or the new one, never half of one
    except OSError:
        with contextlib.suppress(OSError):
            staging.unlink()
        return False
    return True


class Validation:
    """A ``staged_folder`` check that runs the contract's rules and keeps the passing folder's fingerprint.

    An import or generator that checks its staged folder with one, and calls ``remember`` on the
    published folder, spares that folder's first reader the same checks (the staged files are the
    published ones: a rename, not a copy)::

        passed = Validation()
        with staged_folder(out, passed) as stage:
            ...  # write the tables
        passed.remember(out)
    """

    def __init__(self) -> None:
        self.fingerprint: str | None = None
        self.report: ValidationReport | None = None  # the passing folder's report, its warnings too

    def __call__(self, stage: Path) -> None:
        """Validate ``stage``; raises ``ContractViolation`` if any rule is broken."""
        con = connect()
        try:
            report = validate_folder(stage, con=con)
        finally:
            con.close()
        if not report.ok:
            raise ContractViolation(report)
        self.report = report
        self.fingerprint = folder_fingerprint(stage)

    def remember(self, out: Path) -> bool:
        """Write the memo of ``out`` (published from the checked stage); False if none passed or it failed."""
        return self.fingerprint is not None and remember(out, fingerprint=self.fingerprint)


def open_valid(
    folder: Path, *, fingerprint: str, tables: tuple[str, ...] = READ_TABLES
) -> tuple[duckdb.DuckDBPyConnection, ValidationReport | None]:
    """A connection holding ``folder``'s typed views, validated now unless a memo says it passed already.

    Parameters
    ----------
    folder
        A data folder in the contract.
    fingerprint
        ``folder_fingerprint(folder)``, taken by the caller before reading (it also records it).
    tables
        The tables whose views the caller reads (``READ_TABLES`` unless said otherwise).

    Returns
    -------
    tuple
        The connection (views of ``tables``, or of every table when validated now) and the
        validation report, or None when the memo was used and nothing was checked.

    Raises
    ------
    ContractViolation
        If the folder was validated now and broke a rule; no memo is written.

    Notes
    -----
    The memo is written only if the folder's fingerprint is still ``fingerprint`` after the
    checks, so a folder changed while it was being checked is never remembered as passing.
    """
    if remembered(folder, fingerprint=fingerprint):
        con = connect()
        if open_views(folder, con=con, tables=tables):
            return con, None
        con.close()
    con = connect()
    report = validate_folder(folder, con=con)
    if not report.ok:
        raise ContractViolation(report)
    if folder_fingerprint(folder) == fingerprint:
        remember(folder, fingerprint=fingerprint)
    return con, report
