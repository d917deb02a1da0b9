"""Loading staff relationships (``waymark access import``) and training attestations.

The file is the whole truth: the import replaces every relationship in one transaction, or, when any
row breaks a rule, changes nothing and names each broken row.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, cast

import pandas as pd
from sqlalchemy import Engine, delete, insert, select

from waymark.models.ids import UNSEEN_SAID, unseen_in
from waymark.models.roles import RELATIONSHIP_SCOPES, Role
from waymark.service.db.engine import erasure_barrier, transaction
from waymark.service.db.schema import (
    AccessGrant,
    Indicator,
    ProcessingRestriction,
    TrainingAttestation,
    TrainingExclusion,
)
from waymark.service.spreadsheet import separator_said

COLUMNS = ("staff_id", "relationship", "scope_type", "scope_id")
#: Optional: the days a relationship holds, both included, written YYYY-MM-DD (empty: no bound).
DAYS = ("valid_from", "valid_until")
#: Optional: the one presentation of a module a module relationship holds (empty: every presentation).
PRESENTATION = "presentation_id"
#: What tells one relationship from another: a module relationship's presentation is part of it.
RELATIONSHIP = (*COLUMNS, PRESENTATION)
_DAY_WORDS = ("valid", "until", "from", "start", "end_", "_end", "expir", "date")
#: Headings a presentation goes by in records systems (compared without case, spaces or punctuation):
#: Banner's term code and CRN, PeopleSoft's STRM and class number, UK occurrences and intakes.
_PRESENTATION_HEADINGS = frozenset(
    {
        "presentation",
        "presentationcode",
        "presentationid",
        "section",
        "sectionid",
        "sectionnumber",
        "sectioncode",
        "term",
        "termcode",
        "termid",
        "semester",
        "session",
        "sessioncode",
        "occurrence",
        "occurrencecode",
        "offering",
        "offeringid",
        "intake",
        "cohort",
        "strm",
        "crn",
        "classnbr",
        "classnumber",
        "academicperiod",
    }
)


def _days_like(name: str) -> bool:
    return any(w in name for w in _DAY_WORDS)


def _presentation_like(name: str) -> bool:
    """A heading a presentation goes by (Section, term_code, STRM; not terminated or term_time_only)."""
    return re.sub(r"[^a-z]+", "", name) in _PRESENTATION_HEADINGS


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


class ImportRefused(ValueError):
    """The file breaks a rule; nothing was changed."""


def _read(path: Path, columns: tuple[str, ...], *, optional: tuple[str, ...] = ()) -> pd.DataFrame:
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise ImportRefused(f"{path}: cannot be read as CSV ({exc})") from exc
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ImportRefused(
            f"{path}: missing column(s) {', '.join(missing)}; expected {','.join(columns)}"
            + separator_said([str(c) for c in frame.columns])
        )
    # A day column headed otherwise (valid_to, Valid_Until) had been ignored, and every relationship
    # loaded with no end (a red team's finding): a column that looks like one is refused, named.
    # So is one that looks like a module relationship's presentation (Section, presentation): the
    # instructor of one section would have read every section's students.
    for like, what, headed in (
        (_days_like, "the days a relationship holds", " and ".join(DAYS) + " (YYYY-MM-DD)"),
        (_presentation_like, "the presentation a module relationship holds", PRESENTATION),
    ):
        looks = [str(c) for c in frame.columns if c not in (*columns, *optional) and like(str(c).lower())]
        if optional and looks:
            raise ImportRefused(
                f"{path}: column(s) {', '.join(looks)} look like {what} (headed {headed}): rename them, "
                "or remove them; nothing was changed"
            )
    for name in optional:  # absent: empty, no bound
        if name not in frame.columns:
            frame[name] = ""
    # composed (NFC), as the importer reads every cell: a module code saved decomposed matched nothing
    out: pd.DataFrame = frame[[*columns, *optional]].apply(lambda s: s.str.strip().str.normalize("NFC"))
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, str]]:
    return cast(list[dict[str, str]], frame.to_dict("records"))


def _day(written: str) -> date | None:
    """A day written YYYY-MM-DD (None when empty); ValueError otherwise."""
    if not written:
        return None
    if not _DAY.fullmatch(written):  # 2026-W49-7 is an ISO day too, which the data contract refuses
        raise ValueError(written)
    return date.fromisoformat(written)


def _unseen(frame: pd.DataFrame, path: Path) -> list[str]:
    """Lines whose ids hold a character no id holds (``models.ids``), read before any pseudonym hides it.

    A tutee's student number with an invisible direction mark became a pseudonym no sign-in makes.
    """
    out = []
    for line, row in zip(frame.index + 2, _records(frame), strict=True):
        found = next((f for c in (*COLUMNS, PRESENTATION) if (f := unseen_in(row[c]))), None)
        if found:
            out.append(f"{path.name} line {line}: {UNSEEN_SAID.format(found=found)}")
    return out


def _problems(frame: pd.DataFrame, path: Path) -> list[str]:
    out = []
    # the file's own line: a row after a duplicate dropped keeps its place (its index, from 0)
    for line, row in zip(frame.index + 2, _records(frame), strict=True):
        where, rel = f"{path.name} line {line}", row["relationship"]
        try:
            days = [_day(row[name]) for name in DAYS]
        except ValueError:
            out.append(f"{where}: valid_from and valid_until are days written YYYY-MM-DD, or empty")
            continue
        if days[0] and days[1] and days[0] > days[1]:
            out.append(f"{where}: valid_from {days[0]} is after valid_until {days[1]}")
        elif any(not row[c] or len(row[c]) > 64 for c in COLUMNS) or len(row[PRESENTATION]) > 64:
            out.append(f"{where}: every field needs a value of at most 64 characters")
        elif row[PRESENTATION] and row["scope_type"] != "module":
            out.append(
                f"{where}: presentation_id narrows a module relationship to one presentation of it; a "
                f"{row['scope_type']} relationship holds none (leave it empty)"
            )
        elif rel not in RELATIONSHIP_SCOPES:
            out.append(f"{where}: relationship {rel!r} is not one of {', '.join(RELATIONSHIP_SCOPES)}")
        elif row["scope_type"] not in RELATIONSHIP_SCOPES[rel]:
            out.append(
                f"{where}: a {rel} relationship has scope_type "
                f"{' or '.join(repr(t) for t in RELATIONSHIP_SCOPES[rel])}, not {row['scope_type']!r}"
            )
    return out


def import_grants(
    engine: Engine,
    path: Path,
    *,
    pseudonym: Callable[[str], str] | None = None,
    known: frozenset[str] | None = None,
    strict: bool = True,
) -> int:
    """Replace every staff relationship with those in ``path``; returns how many were loaded.

    A relationship to a student whose erasure was processed (a personal tutor's) is not loaded: the
    institution's export may still list it, and erasure removed it (CoP §12). With ``pseudonym`` the
    file gives student numbers, each replaced by its pseudonym as the data imports replaced it (a file
    whose student ids already are pseudonyms ``known`` holds, and none once replaced, is kept as
    written: the secret may be set for every command). With ``known`` (the students Waymark holds;
    empty or None: not checked) and ``strict``, a file none of whose student relationships names a
    known student is refused: it would load and match nobody.
    """
    frame = _read(path, COLUMNS, optional=(*DAYS, PRESENTATION))
    if unseen := _unseen(frame, path):
        raise ImportRefused("nothing was imported:\n" + "\n".join(unseen[:20]))
    tutees = frame["scope_type"] == "student"
    if pseudonym is not None:
        written = frame.loc[tutees, "scope_id"]
        mapped = written.map(lambda v: pseudonym(v) if v else v)
        if not (known and written.isin(known).any() and not mapped.isin(known).any()):
            frame.loc[tutees, "scope_id"] = mapped
    frame = frame.drop_duplicates()
    tutees = frame["scope_type"] == "student"
    problems = _problems(frame, path)
    if not problems:
        problems = _overlapping(frame, path) or _whole_and_one(frame, path)
    if problems:
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        raise ImportRefused("nothing was imported:\n" + "\n".join(shown))
    if strict and known and tutees.any() and not frame.loc[tutees, "scope_id"].isin(known).any():
        first = written.iloc[0] if pseudonym is not None else frame.loc[tutees, "scope_id"].iloc[0]
        why = (
            "The secret was given: if it is the data imports' own, the file and the data imports write "
            "student numbers in different forms (leading zeros, case, separators). Bring the data mapping's "
            "exports to the records system's form, which sign-in gives too (pad, case, prefix, replace: "
            "docs/bring-your-own-data.md, One form for every student number), and import the data again"
            if pseudonym is not None
            else "If the data imports pseudonymised student numbers, give the same secret (--secret-file) "
            "so that these are replaced by the same pseudonyms"
        )
        raise ImportRefused(
            f"nothing was imported: no student relationship in {path.name} ({int(tutees.sum()):,} in all) "
            f"names a student Waymark holds (for example {first!r}, as the file writes it). {why}"
        )
    with transaction(engine) as session:
        erasure_barrier(session)  # an erasure processed meanwhile is seen here, not undone
        erased = set(session.scalars(select(TrainingExclusion.student_id)))
        frame = frame[~((frame["scope_type"] == "student") & frame["scope_id"].isin(erased))]
        session.execute(delete(AccessGrant))
        if len(frame):
            rows = [{**r, **{d: _day(r[d]) for d in DAYS}} for r in _records(_periods(frame))]
            session.execute(insert(AccessGrant), rows)
    return len(frame)


def _spans(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows with their days as dates, an open bound as the earliest or latest day there is."""
    first = frame["valid_from"].map(lambda d: _day(d) or date.min)
    last = frame["valid_until"].map(lambda d: _day(d) or date.max)
    return frame.assign(_first=first, _last=last).sort_values([*RELATIONSHIP, "_first"], kind="stable")


def _overlapping(frame: pd.DataFrame, path: Path) -> list[str]:
    """A relationship listed for days that overlap (its days valid): which would hold is not ours to guess.

    A relationship may hold several periods (a clinical supervisor with the same student in an autumn
    and a spring block), one row each; a period with no days holds always, so it overlaps any other.
    """
    spans = _spans(frame)
    rows = cast(list[dict[str, Any]], spans.to_dict("records"))
    for (line, earlier), (later_line, later) in itertools.pairwise(zip(spans.index + 2, rows, strict=True)):
        same = all(earlier[c] == later[c] for c in RELATIONSHIP)
        if same and later["_first"] <= earlier["_last"]:
            lines = sorted((line, later_line))
            return [
                f"{path.name} lines {lines[0]} and {lines[1]}: the relationship {later['relationship']} of "
                f"{later['staff_id']} to {later['scope_type']} {later['scope_id']}{_of(later)} is listed for "
                f"days that overlap ({_said(earlier)}; {_said(later)}): give each period it holds once, "
                "without overlap"
            ]
    return []


def _whole_and_one(frame: pd.DataFrame, path: Path) -> list[str]:
    """A module relationship listed both on every presentation and on one: the one would mean nothing.

    Rows naming presentations added to an older file that gives the module alone would load, and the
    instructor would read every section still.
    """
    modules = frame[frame["scope_type"] == "module"]
    for (staff, rel, module), rows in modules.groupby(["staff_id", "relationship", "scope_id"], sort=True):
        whole, one = rows[rows[PRESENTATION] == ""], rows[rows[PRESENTATION] != ""]
        if len(whole) and len(one):
            lines = (int(whole.index[0]) + 2, int(one.index[0]) + 2)
            return [
                f"{path.name} lines {min(lines)} and {max(lines)}: the {rel} relationship of {staff} to "
                f"module {module} is listed on every presentation of it and on presentation "
                f"{one[PRESENTATION].iloc[0]}: list the presentations it holds one by one, or the module "
                "alone"
            ]
    return []


def _of(row: dict[str, Any]) -> str:
    return f" (presentation {row[PRESENTATION]})" if row[PRESENTATION] else ""


def _said(row: dict[str, Any]) -> str:
    start = f"from {row['valid_from']}" if row["valid_from"] else "from always"
    end = f"until {row['valid_until']}" if row["valid_until"] else "until further notice"
    return f"{start} {end}"


def _periods(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows numbered by ``period``, from 0 in order of their first day within each relationship."""
    spans = _spans(frame)
    return spans.assign(period=spans.groupby(list(RELATIONSHIP)).cumcount()).drop(columns=["_first", "_last"])


def scored_students(engine: Engine) -> frozenset[str]:
    """Students of any scored batch, and those whose objection stands: the students relationships can name."""
    query = select(Indicator.student_id).union(select(ProcessingRestriction.student_id))
    with transaction(engine) as session:
        return frozenset(str(s) for s in session.scalars(query))


def unknown_tutees(engine: Engine, known: frozenset[str]) -> list[str]:
    """The students named by loaded student relationships who are not in ``known``, sorted."""
    with transaction(engine) as session:
        named = session.scalars(
            select(AccessGrant.scope_id).where(AccessGrant.scope_type == "student").distinct()
        )
        return sorted(str(s) for s in named if s not in known)


def import_attestations(engine: Engine, path: Path) -> int:
    """Record training attestations (CSV ``staff_id,expires_on`` with ISO dates)."""
    frame = _read(path, ("staff_id", "expires_on"))
    rows = []
    for line, row in enumerate(_records(frame), start=2):
        staff, expires = row["staff_id"], row["expires_on"]
        try:
            day = date.fromisoformat(expires)
        except ValueError as exc:
            raise ImportRefused(
                f"{path.name} line {line}: expires_on {expires!r} is not a date like 2027-09-30"
            ) from exc
        rows.append({"staff_id": staff, "expires_at": datetime.combine(day, time.max, tzinfo=UTC)})
    with transaction(engine) as session:
        session.execute(
            delete(TrainingAttestation).where(TrainingAttestation.staff_id.in_([r["staff_id"] for r in rows]))
        )
        if rows:
            session.execute(insert(TrainingAttestation), rows)
    return len(rows)


def examples(engine: Engine) -> dict[str, str | None]:
    """One staff member per relationship, and as ``student`` a personal tutor's tutee (demo sign-in help)."""
    with transaction(engine) as session:
        found = {
            rel: session.scalar(select(AccessGrant.staff_id).where(AccessGrant.relationship == rel).limit(1))
            for rel in RELATIONSHIP_SCOPES
        }
        tutee = select(AccessGrant.scope_id).where(AccessGrant.relationship == Role.PERSONAL_TUTOR).limit(1)
        return {**found, "student": session.scalar(tutee)}
