"""Take erased students out of a data folder Waymark wrote (``waymark data erase``).

An erasure processed by the DPO removes a student from Waymark's database and keeps them out of every
later training, audit and scoring run. The data folder an import wrote still holds their rows: a
pseudonymised copy of the institution's records, with the audit-only protected characteristics
among them. This rewrites the folder without any row naming those students, in every Parquet table
(``student_id``) and in the CSV files kept beside them (a directory's ``student_id``, a staff
relationship file's ``scope_id`` of scope ``student``), and publishes it the way an import does: the
folder is replaced only when the result passes the contract, so a failure leaves it as it was. The
manifest counts the students removed and when, never who.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from waymark.models.data.findings import ContractViolation
from waymark.models.data.publish import MANIFEST, read_manifest, staged_folder
from waymark.models.data.validation import validate_folder


@dataclass(frozen=True)
class Erased:
    """What was taken out of the folder: rows per file (relative path), and how many students."""

    rows: dict[str, int] = field(default_factory=dict)
    students: int = 0

    @property
    def changed(self) -> bool:
        """Whether any row was removed (the folder is untouched otherwise)."""
        return any(self.rows.values())


def erase_from_folder(
    folder: Path, students: frozenset[str], *, pseudonym: Callable[[str], str] | None = None
) -> Erased:
    """Rewrite ``folder`` without any row naming one of ``students``; unchanged when none is in it.

    ``pseudonym``: the data imports' keyed hash. The CSV files kept beside the tables (a directory, a
    staff relationship file) hold student numbers as the institution writes them, which this turns
    into the pseudonyms the tables (and ``students``) use before comparing.

    Raises
    ------
    ContractViolation
        When the folder without them breaks the contract (it is then left as it was).
    """
    found = _present(folder, students, pseudonym=pseudonym)
    if not found:
        return Erased()
    rows: dict[str, int] = {}

    def valid(stage: Path) -> None:
        report = validate_folder(stage)
        if not report.ok:
            raise ContractViolation(report)

    with staged_folder(folder, check=valid) as stage:
        for path in sorted(folder.rglob("*")):
            target = stage / path.relative_to(folder)
            if path.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            elif path.name == MANIFEST:
                continue
            elif path.suffix == ".parquet":
                rows[str(path.relative_to(folder))] = _parquet(path, target, students=found)
            elif path.suffix == ".csv":
                rows[str(path.relative_to(folder))] = _csv(path, target, students=found, pseudonym=pseudonym)
            else:
                shutil.copy2(path, target)
        manifest = read_manifest(folder)
        done = {"at": datetime.now(UTC).isoformat(timespec="seconds"), "students": len(found)}
        manifest["erasures_applied"] = [*manifest.get("erasures_applied", []), done]
        (stage / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return Erased({k: v for k, v in rows.items() if v}, len(found))


def _present(
    folder: Path, students: frozenset[str], *, pseudonym: Callable[[str], str] | None
) -> frozenset[str]:
    """The students of ``students`` that some table or file of the folder names."""
    if not students:
        return frozenset()
    seen: set[str] = set()
    for path in folder.rglob("*.parquet"):
        names = set(pq.read_schema(path).names)
        if "student_id" in names or {"scope_type", "scope_id"} <= names:
            who = _who(pq.read_table(path, columns=sorted(names & WHO_COLUMNS)).to_pandas())
            seen.update(set(who) & students)
    for path in folder.rglob("*.csv"):
        frame = _read_csv(path)
        seen.update(set(_who(frame)) & students)
        if pseudonym is not None:
            seen.update(set(_who(frame, pseudonym=pseudonym)) & students)
    return frozenset(seen)


#: The columns that name a student: a student id, or a relationship scoped to one student.
WHO_COLUMNS = {"student_id", "scope_type", "scope_id"}


def _parquet(path: Path, target: Path, *, students: frozenset[str]) -> int:
    table = pq.read_table(path)
    if not (
        {"student_id"} <= set(table.column_names) or {"scope_type", "scope_id"} <= set(table.column_names)
    ):
        shutil.copy2(path, target)
        return 0
    who = _who(table.select(sorted(set(table.column_names) & WHO_COLUMNS)).to_pandas())
    kept = table.filter(pa.array(~who.isin(students).to_numpy()))
    pq.write_table(kept, target)
    return int(table.num_rows - kept.num_rows)


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def _who(frame: pd.DataFrame, *, pseudonym: Callable[[str], str] | None = None) -> pd.Series:
    """The student each row names ("" for none): its student id, or a relationship scoped to one student.

    With ``pseudonym``, an id is its pseudonym (a file of student numbers as the institution writes them).
    """
    who = pd.Series("", index=frame.index, dtype=object)
    if "student_id" in frame.columns:
        who = frame["student_id"].astype("string").fillna("").str.strip()
    if {"scope_type", "scope_id"} <= set(frame.columns):
        scoped = frame["scope_type"].astype("string").fillna("").str.strip().eq("student")
        who = who.where(~scoped, frame["scope_id"].astype("string").fillna("").str.strip())
    if pseudonym is not None:
        who = who.map(lambda v: pseudonym(v) if v else v)
    return who.astype(object)


def _csv(
    path: Path, target: Path, *, students: frozenset[str], pseudonym: Callable[[str], str] | None
) -> int:
    frame = _read_csv(path)
    # a number as the institution writes it, or already a pseudonym: either names the student
    gone = _who(frame).isin(students)
    if pseudonym is not None:
        gone |= _who(frame, pseudonym=pseudonym).isin(students)
    if not gone.any():
        shutil.copy2(path, target)
        return 0
    frame[~gone].to_csv(target, index=False)
    return int(gone.sum())


def rows_naming(
    folder: Path, student: str, *, pseudonym: Callable[[str], str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every row of the folder's tables and files that names ``student``, by file (relative path).

    Found as ``erase_from_folder`` finds them: a Parquet table's ``student_id`` (or a relationship
    scoped to the student), and a CSV file's as written or, with ``pseudonym``, as its pseudonym.
    Values are as JSON holds them (dates as ISO text, missing values as null).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix == ".parquet":
            frame = pq.read_table(path).to_pandas()
            if not WHO_COLUMNS & set(frame.columns):
                continue
            mine = _who(frame).eq(student)
        elif path.suffix == ".csv":
            frame = _read_csv(path)
            mine = _who(frame).eq(student)
            if pseudonym is not None:
                mine |= _who(frame, pseudonym=pseudonym).eq(student)
        else:
            continue
        if mine.any():
            rows = json.loads(frame[mine.to_numpy()].to_json(orient="records", date_format="iso"))
            out[str(path.relative_to(folder))] = rows
    return out
