"""Run a mapping: read the exports, build the contract's tables, check them, and publish them or append them.

Nothing is written unless every value was mapped and the result passes the contract: the tables are
built in a staging folder beside the destination and swapped into place only then. An append merges
the new extract into the existing folder (a row replaces the row with the same key; nothing is
deleted, but for registrations and assessments of presentations the extract lists that it no longer
holds and nothing names, when asked: ``retire``) and records the increment in the manifest's lineage.
"""

from __future__ import annotations

import csv
import hashlib
import secrets
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from waymark.models.data import read_manifest, staged_folder, write_manifest
from waymark.models.data.contract import TABLES
from waymark.models.data.findings import ContractViolation, Example, Finding, ValidationReport
from waymark.models.data.memo import Validation
from waymark.models.data.publish import MANIFEST
from waymark.models.data.sqltext import ident, literal
from waymark.models.data.validation import connect, validate_folder
from waymark.models.threads import duckdb_connect
from waymark.training.ingest.mapping.convert import (
    ACTIVITY_KEY,
    PSEUDONYM_FUNCTION,
    SQL_TYPES,
    create_views,
    joins_copy,
    out_sql,
    run,
    table_columns,
)
from waymark.training.ingest.mapping.coverage import (
    PROBLEM_KINDS,
    Coverage,
    loose_id,
    pseudonymised,
    shape,
    shape_sql,
    table_coverage,
    unused_columns,
)
from waymark.training.ingest.mapping.inputs import (
    InputStats,
    SourceFile,
    match_files,
    register_input,
)
from waymark.training.ingest.mapping.inputs import (
    unused_files as find_unused_files,
)
from waymark.training.ingest.mapping.pseudonyms import key_id, pseudonymiser
from waymark.training.ingest.mapping.schema import Mapping, MappingError

SOURCES_FILE = "sources.csv"
# presentations first (day numbers count from their start), assessments next (results find their
# presentation through them), then the rest in the contract's order.
_BUILD_ORDER = (
    "presentations",
    "assessments",
    *(t for t in TABLES if t not in {"presentations", "assessments"}),
)


class MappingDataError(Exception):
    """The exports hold values the mapping does not cover; nothing was written."""

    def __init__(self, coverage: Coverage) -> None:
        self.coverage = coverage
        lines = [i.text() for i in coverage.issues]
        super().__init__(
            f"{coverage.problems()} in mapping {coverage.mapping} ({PROBLEM_KINDS}); nothing was written\n"
            + "\n".join(f"  {line}" for line in lines)
        )


class AppendRefused(MappingError):
    """The destination cannot take this increment."""


@dataclass(frozen=True)
class ImportResult:
    """What an import read, and (unless a dry run) wrote."""

    coverage: Coverage
    written: dict[str, dict[str, int]] | None = None  # table -> added/replaced/unchanged/total
    # The contract's warnings on what was written, each example named in the exports (in_the_exports).
    warnings: tuple[Finding, ...] = ()
    timezone: str = "UTC"  # the zone times were read in and days counted in
    notes: tuple[str, ...] = ()  # what an append changed that the folder's earlier rows carry (relabelled)
    # A dry run's: the contract's refusal of the folder as the import would write it (None: it would pass)
    refused: ValidationReport | None = None


def table_key(table: str) -> tuple[str, ...]:
    """The columns that identify a row when an increment is merged."""
    return ACTIVITY_KEY if table == "activity" else TABLES[table].key


# --- reading and building ----------------------------------------------------------------------


def _connect(mapping: Mapping, secret: bytes | None, *, zone: str) -> duckdb.DuckDBPyConnection:
    con = connect()
    run(con, f"SET TimeZone = {literal(zone)}")
    if secret is not None:
        con.create_function(
            PSEUDONYM_FUNCTION, pseudonymiser(secret), ["VARCHAR"], "VARCHAR", side_effects=False
        )
    return con


def _starts_view(con: duckdb.DuckDBPyConnection, *, built: set[str], old: set[str]) -> None:
    parts = []
    if "presentations" in built:
        parts.append("SELECT module_id, presentation_id, start_date, length_days FROM wm_out_presentations")
    if "presentations" in old:
        parts.append(
            "SELECT module_id, presentation_id, start_date, length_days FROM t_presentations o "
            "WHERE NOT EXISTS "
            "(SELECT 1 FROM wm_new_presentation_keys n WHERE n.module_id = o.module_id "
            "AND n.presentation_id = o.presentation_id)"
        )
        keys = (
            "SELECT module_id, presentation_id FROM wm_out_presentations"
            if "presentations" in built
            else ("SELECT NULL::VARCHAR AS module_id, NULL::VARCHAR AS presentation_id WHERE FALSE")
        )
        run(con, f"CREATE OR REPLACE TEMP VIEW wm_new_presentation_keys AS {keys}")
    empty = (
        "SELECT NULL::VARCHAR AS module_id, NULL::VARCHAR AS presentation_id, NULL::DATE AS start_date, "
        "NULL::BIGINT AS length_days WHERE FALSE"
    )
    run(con, f"CREATE OR REPLACE TEMP VIEW wm_starts AS {' UNION ALL '.join(parts) or empty}")


def _assessments_view(con: duckdb.DuckDBPyConnection, *, built: set[str], old: set[str]) -> None:
    parts = []
    if "assessments" in built:
        parts.append("SELECT assessment_id, module_id, presentation_id FROM wm_out_assessments")
    if "assessments" in old:
        parts.append("SELECT assessment_id, module_id, presentation_id FROM t_assessments")
    empty = (
        "SELECT NULL::VARCHAR AS assessment_id, NULL::VARCHAR AS module_id, "
        "NULL::VARCHAR AS presentation_id WHERE FALSE"
    )
    union = " UNION ALL ".join(parts) or empty
    run(
        con,
        "CREATE OR REPLACE TEMP VIEW wm_assessment_presentations AS "
        f"SELECT DISTINCT ON (assessment_id) * FROM ({union})",
    )


def _build(
    con: duckdb.DuckDBPyConnection, mapping: Mapping, *, inputs: dict[str, InputStats], old: set[str]
) -> None:
    pseudonymised = frozenset(mapping.pseudonymise.columns if mapping.pseudonymise else ())
    columns = {name: list(stats.columns) for name, stats in inputs.items()}
    built: set[str] = set()
    problems = []
    for table in _BUILD_ORDER:
        if table == "assessments":
            _starts_view(con, built=built, old=old)
        if table not in mapping.tables:
            if table == "assessments":
                _assessments_view(con, built=built, old=old)
            continue
        try:
            create_views(
                con, table, spec=mapping.tables[table], input_columns=columns, pseudonymised=pseudonymised
            )
        except MappingError as exc:
            problems.append(str(exc))
            continue
        built.add(table)
        if table == "assessments":
            _assessments_view(con, built=built, old=old)
    if problems:
        raise MappingError(
            f"{mapping.name}: the mapping names columns the exports do not have\n  " + "\n  ".join(problems)
        )


def analyse(
    con: duckdb.DuckDBPyConnection, mapping: Mapping, *, sources: Sequence[Path], old: set[str]
) -> tuple[Coverage, dict[str, list[SourceFile]]]:
    """Register the inputs, build every table's views, and measure what the mapping covers."""
    matched = match_files(mapping, sources)
    inputs = {n: register_input(con, n, spec=mapping.inputs[n], files=matched[n]) for n in mapping.inputs}
    _build(con, mapping, inputs=inputs, old=old)
    tables = {
        t: table_coverage(con, mapping, table=t, inputs=inputs) for t in _BUILD_ORDER if t in mapping.tables
    }
    coverage = Coverage(
        mapping=mapping.name,
        inputs=inputs,
        tables=tables,
        unused_columns=unused_columns(mapping, inputs),
        unused_files=tuple(find_unused_files(matched, sources)),
    )
    return coverage, matched


def _drop_unregistered(con: duckdb.DuckDBPyConnection, mapping: Mapping, *, old: set[str]) -> tuple[str, ...]:
    """Leave out activity of registrations neither this import nor the folder holds, when asked; say how much.

    With ``unregistered = "drop"`` on the activity table, its rows are kept only where the student has a
    registration on that module presentation (this import's registrations, or the folder's on an
    append). A learning platform's log keyed by login records students opening modules they browsed
    but never took; the contract refuses such rows, and 40 of 634,000 had refused a whole import.
    """
    spec = mapping.tables.get("activity")
    if spec is None or spec.unregistered != "drop":
        return ()
    keys = "student_id, module_id, presentation_id"
    parts = [f"SELECT {keys} FROM wm_out_registrations"] if "registrations" in mapping.tables else []
    parts += [f"SELECT {keys} FROM t_registrations"] if "registrations" in old else []
    if not parts:
        return ()
    # copies on one key counted once, as create_views has it
    copies = spec.aggregate is not None and bool(spec.join) and joins_copy(con, spec)
    mapped = out_sql("activity", spec, columns=table_columns("activity", spec), copies=copies)
    run(con, f"CREATE OR REPLACE TEMP VIEW wm_every_activity AS {mapped}")
    run(con, f"CREATE OR REPLACE TEMP VIEW wm_registered AS {' UNION '.join(parts)}")
    # A row with an empty key is kept for the contract to refuse: that is a broken rule, not browsing.
    keyed = "a.student_id IS NOT NULL AND a.module_id IS NOT NULL AND a.presentation_id IS NOT NULL"
    run(
        con,
        "CREATE OR REPLACE TEMP VIEW wm_out_activity AS SELECT a.* FROM wm_every_activity a "
        f"WHERE NOT ({keyed}) OR EXISTS (SELECT 1 FROM wm_registered r WHERE r.student_id = a.student_id "
        "AND r.module_id = a.module_id AND r.presentation_id = a.presentation_id)",
    )
    row = con.execute(
        "SELECT count(*), count(DISTINCT (student_id, module_id, presentation_id)), "
        "(SELECT count(*) FROM wm_every_activity) "
        f"FROM wm_every_activity a ANTI JOIN wm_registered r USING (student_id, module_id, presentation_id) "
        f"WHERE {keyed}"
    ).fetchall()[0]
    rows, registrations, every = int(row[0]), int(row[1]), int(row[2])
    if not rows:
        return ()
    if rows == every:
        raise MappingError(
            f'tables.activity.unregistered = "drop" would leave out every activity row ({rows:,}): none '
            "names a student on a module presentation they are registered on. Check the join that gives "
            "activity its student, module and presentation (ids written as the registrations write them, "
            "in the same form: " + ID_FORMS + ")" + _which_keys(con, keyed=keyed) + "."
        )
    share = rows / every
    said = "under 1%" if share < 0.005 else f"{share:.0%}"  # 40 of 634,000 had read "0%"
    otherwise = _registered_otherwise(con)
    return (
        f"{_counted_rows(rows)} of activity ({said} of it) named a student on a module presentation "
        f"they have no registration on ({registrations:,} such pairs) and {'was' if rows == 1 else 'were'} "
        'left out (tables.activity.unregistered = "drop"). If that is more than browsing, check the join '
        "that gives activity its student, module and presentation"
        + _types_gone(con, keyed=keyed)
        + (
            f"; {_counted_rows(otherwise)} of the export's activity among them name a student registered on "
            "that module presentation once case, separators and leading zeros are ignored, so ids written in "
            f"another form more likely than browsing: {ID_FORMS}."
            if otherwise
            else f"; so large a share is more often ids written in another form: {ID_FORMS}."
            if share >= 0.1
            else "."
        ),
    )


def _registered_otherwise(con: duckdb.DuckDBPyConnection) -> int:
    """Rows of the export's activity the drop left out that name a registration once ids are compared loosely.

    Loosely: the student id as the export wrote it, against this import's registrations on the same
    module presentation, case, separators and leading zeros ignored (``loose_id``). A join's report
    counted such near matches, the drop did not: a log writing one group of students' numbers with a
    hyphen (20-00001 for 2000001) lost their activity under a note that called it browsing. Counted
    before any per-day aggregate, as the export's rows; against this import's registrations only (an
    appended folder keeps no id as written); 0 where the ids are not kept as written beside the mapped
    ones.
    """
    raw = ident("_raw:student_id")
    needed = {"student_id", "module_id", "presentation_id", "_raw:student_id"}
    for view in ("wm_m_activity", "wm_m_registrations"):
        try:
            have = {str(r[0]) for r in con.execute(f"DESCRIBE {ident(view)}").fetchall()}
        except duckdb.CatalogException:  # no registrations in this import (an append of activity alone)
            return 0
        if not needed <= have:
            return 0
    near = loose_id(f"g.{raw}")
    (n,) = con.execute(
        f"WITH gone AS (SELECT {loose_id(f'a.{raw}')} AS id, a.module_id, a.presentation_id, count(*) AS n "
        "FROM wm_m_activity a WHERE a.module_id IS NOT NULL AND a.presentation_id IS NOT NULL "
        f"AND a.{raw} IS NOT NULL AND NOT EXISTS (SELECT 1 FROM wm_registered r "
        "WHERE r.student_id = a.student_id AND r.module_id = a.module_id "
        "AND r.presentation_id = a.presentation_id) GROUP BY ALL), "
        f"registered AS (SELECT DISTINCT {near} AS id, g.module_id, g.presentation_id "
        f"FROM wm_m_registrations g WHERE g.{raw} IS NOT NULL) "
        "SELECT coalesce(sum(n), 0) FROM gone JOIN registered USING (id, module_id, presentation_id) "
        "WHERE id <> ''"
    ).fetchall()[0]
    return int(n)


def _share(count: int, n: int) -> str:
    """'all', 'none', or a percentage never rounded to either (40 of 634,000 had read "0%")."""
    if count in (0, n):
        return "all" if count else "none"
    share = count / n
    return "under 1%" if share < 0.005 else "over 99%" if share > 0.995 else f"{share:.0%}"


def _which_keys(con: duckdb.DuckDBPyConnection, *, keyed: str) -> str:
    """Which of student, module and presentation match the registrations on their own, and examples.

    A Spanish university put each teaching group in its module ids ("34500-A") while its learning
    platform's course served every group ("34500"); the refusal spoke of student id forms only.
    """
    n, students, modules, presentations = con.execute(
        "SELECT count(*), "
        "count(*) FILTER (WHERE student_id IN (SELECT student_id FROM wm_registered)), "
        "count(*) FILTER (WHERE module_id IN (SELECT module_id FROM wm_registered)), "
        "count(*) FILTER (WHERE (module_id, presentation_id) IN "
        "(SELECT (module_id, presentation_id) FROM wm_registered)) "
        f"FROM wm_every_activity a WHERE {keyed}"
    ).fetchall()[0]
    if not n:
        return ""
    said = [
        f"{share} {what}"
        for count, what in (
            (students, "name a registered student"),
            (modules, "a module some registration is on"),
            (presentations, "a module presentation some registration is on"),
        )
        for share in [_share(count, n)]
    ]
    out = f"; of the activity rows, {', '.join(said)}"
    for column, count in (("module_id", modules), ("presentation_id", presentations)):
        if count == 0:
            theirs = [
                str(r[0])
                for r in con.execute(
                    f"SELECT DISTINCT {column} FROM wm_every_activity a WHERE {keyed} ORDER BY 1 LIMIT 3"
                ).fetchall()
            ]
            ours = [
                str(r[0])
                for r in con.execute(
                    f"SELECT DISTINCT {column} FROM wm_registered ORDER BY 1 LIMIT 3"
                ).fetchall()
            ]
            out += (
                f" (the activity's {column} values are like {', '.join(map(repr, theirs))}; the "
                f"registrations' like {', '.join(map(repr, ours))})"
            )
            break
    return out


#: A kind of activity this share of whose rows were left out is named by the drop's note.
MOSTLY_GONE = 0.9


def _types_gone(con: duckdb.DuckDBPyConnection, *, keyed: str) -> str:
    """'; every row of assignment (4,012) among them', for activity types left out whole, or nearly.

    A Scottish university's VLE wrote the student number another way in its submission and discussion
    events only: the drop's note said 17% of activity, not that the folder now held no submission at all.
    """
    gone = con.execute(
        "SELECT activity_type, count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM wm_registered r "
        "WHERE r.student_id = a.student_id AND r.module_id = a.module_id "
        f"AND r.presentation_id = a.presentation_id) AND {keyed}) AS out, count(*) AS every "
        "FROM wm_every_activity a GROUP BY activity_type ORDER BY out DESC, activity_type"
    ).fetchall()
    named = [
        f"{'every row' if out == every else f'{out / every:.0%}'} of {kind} ({out:,})"
        for kind, out, every in gone
        if out and out >= MOSTLY_GONE * every
    ]
    return f"; among them {', '.join(named[:5])}" if named else ""


def _unpseudonymised(mapping: Mapping) -> tuple[str, ...]:
    """A note when a mapping writes student ids as the exports give them.

    A Swedish university's Ladok ids are personnummer, a birth date with a digit for legal gender: a
    mapping without ``[pseudonymise]`` wrote them into the folder, and so into the service database,
    the access log and MLflow, without a word.
    """
    if mapping.pseudonymise is not None and "student_id" in mapping.pseudonymise.columns:
        return ()
    if not any("student_id" in spec.columns for spec in mapping.tables.values()):
        return ()
    return (
        f"Mapping {mapping.name} does not pseudonymise student_id: student numbers are written as the "
        "exports give them, into the data folder and from there into the service database, the access "
        "log and MLflow. Where they are identity numbers, or carry a birth date or anything else about "
        'the student, add [pseudonymise] columns = ["student_id"] (docs/mapping.md).',
    )


#: Said by an append's dry run that pseudonymises without the secret.
BLIND_DRY_RUN = (
    "The contract's rules were not run: this append pseudonymises ids and no secret was given, so this "
    "extract's ids cannot be matched with the folder's (give the secret file to check them too)."
)

#: How one export's ids are brought to the records' form (docs/mapping.md), said where ids did not match.
ID_FORMS = (
    "case = \"upper\" on a column writes 21bcs0457 as the records' 21BCS0457, pad = 10 a spreadsheet's "
    '23000374 as 0023000374, replace = { "-" = "/" } ENG-2019-045 as ENG/2019/045, case = "lower" with '
    'prefix = "s" a platform\'s 2012345 and S2012345 as the records\' s2012345, strip_prefix = ["\'"] an '
    "Excel export's '2202310017 as 2202310017, and extract = '^0*(.+)$' an attendance system's zero-padded "
    "08871970K as the records' 8871970K"
)

#: Said with the contract's refusal of activity that names no registration.
UNREGISTERED_HINT = (
    "; if these students registered after the folder's records were imported, append the newer records "
    "first (dropping their activity would lose it). A platform's log keyed by login also records "
    "modules a student opened but never took: if these are such visits, give tables.activity "
    'unregistered = "drop" to leave them out, counted. Ids are compared as written, so a log writing '
    "them otherwise than the records matches none of them: " + ID_FORMS
)


def _hinted(con: duckdb.DuckDBPyConnection, report: ValidationReport, *, built: set[str]) -> ValidationReport:
    """The refusal, with what to do about activity of students not registered on the module."""

    def hinted(finding: Finding) -> Finding:
        if finding.table == "activity" and finding.rule == "reference_registrations":
            crossed = _cross_listed(con) if {"activity", "registrations"} <= built else 0
            return replace(
                finding, message=finding.message + _cross_listing_hint(crossed) + UNREGISTERED_HINT
            )
        if finding.rule == "reference_students" and {finding.table, "students"} <= built:
            zeros = _zeros_dropped(con, finding.table)
            if zeros:
                return replace(
                    finding,
                    message=f"{finding.message}; {_counted_rows(zeros)} of them match a student once "
                    "leading zeros are ignored, as the exports wrote the ids (1684918 for 001684918: a "
                    "column a spreadsheet saved as a number): give the id column pad = its width",
                )
        if finding.rule == "missing_file":  # the mapping writes the file: it says so with `empty`
            return replace(
                finding,
                message=f"{finding.message} (in a mapping that builds no {finding.table}, give the mapping "
                f'empty = ["{finding.table}"] and it writes that file)',
            )
        return finding

    return replace(report, findings=tuple(hinted(f) for f in report.findings))


def _cross_listed(con: duckdb.DuckDBPyConnection) -> int:
    """Activity rows of students not registered on their module who are on another of its presentation.

    A US university's class listed under two catalogue numbers (ECON 311 and STAT 311), its one Canvas
    course mapped to one of them: the other listing's students' activity was refused with advice to
    drop it, which would have dropped 48% of the course's activity.
    """
    (n,) = con.execute(
        "SELECT count(*) FROM wm_out_activity a WHERE NOT EXISTS (SELECT 1 FROM wm_out_registrations r "
        "WHERE r.student_id = a.student_id AND r.module_id = a.module_id "
        "AND r.presentation_id = a.presentation_id) AND EXISTS (SELECT 1 FROM wm_out_registrations r "
        "WHERE r.student_id = a.student_id AND r.presentation_id = a.presentation_id)"
    ).fetchall()[0]
    return int(n)


def _cross_listing_hint(rows: int) -> str:
    if not rows:
        return ""
    return (
        f"; {_counted_rows(rows)} of them are of students registered on another module of the same "
        "presentation: a course listed under two codes (cross-listed) with one platform course? Map both "
        "listings to one module_id in every table (values on module_id) rather than drop the activity"
    )


def _zeros_dropped(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Rows of ``table`` whose student id, as the export wrote it, matches a student only without zeros.

    Validation compares pseudonyms, where no leading zero is left to ignore: a US university's
    demographics file, its ids saved by a spreadsheet without their zeros, was refused whole with no
    word of why under a mapping that pseudonymises, as every ready mapping does.
    """
    raw = ident("_raw:student_id")
    mapped, students = ident("wm_m_" + table), ident("wm_m_students")
    for view in (mapped, students):
        if "_raw:student_id" not in {str(r[0]) for r in con.execute(f"DESCRIBE {view}").fetchall()}:
            return 0
    (n,) = con.execute(
        f"SELECT count(*) FROM {mapped} a WHERE a.{raw} IS NOT NULL "
        f"AND NOT EXISTS (SELECT 1 FROM {students} b WHERE b.{raw} = a.{raw}) "
        f"AND regexp_replace(a.{raw}, '^0+', '') IN (SELECT regexp_replace({raw}, '^0+', '') FROM {students})"
    ).fetchall()[0]
    return int(n)


def _counted_rows(n: int) -> str:
    return "1 row" if n == 1 else f"{n:,} rows"


# --- the existing folder (append) ---------------------------------------------------------------


def _chosen_zone(manifest: dict[str, Any]) -> str | None:
    """The zone the folder's days were counted in, when a mapping chose it.

    A folder written before the manifest said so (no ``timezone_chosen``) counts as chosen unless UTC,
    the zone of a mapping that names none.
    """
    zone = manifest.get("timezone")
    chosen = manifest.get("timezone_chosen", zone not in (None, "UTC"))
    return str(zone) if zone and chosen else None


def _zone(mapping: Mapping, *, out: Path, append: bool) -> str:
    """The zone this import counts days in: the mapping's, or the folder's on an append naming none."""
    if "timezone" in mapping.model_fields_set or not append or not (out / MANIFEST).is_file():
        return mapping.timezone
    return _chosen_zone(read_manifest(out)) or mapping.timezone


def _open_existing(
    con: duckdb.DuckDBPyConnection, out: Path, *, key: str | None, check_key: bool, mapping: Mapping
) -> set[str]:
    if not (out / MANIFEST).is_file():
        raise AppendRefused(f"{out} is not a Waymark data folder (no {MANIFEST}); import into it first")
    report = validate_folder(out, con=con)
    if not report.ok:
        raise ContractViolation(report)
    manifest = read_manifest(out)
    old_zone = _chosen_zone(manifest)
    if old_zone and "timezone" in mapping.model_fields_set and mapping.timezone != old_zone:
        raise AppendRefused(
            f"{out} counts days in the time zone {old_zone}; mapping {mapping.name} would count this "
            f"extract's in {mapping.timezone}, so an evening's activity could fall on another day than "
            f"the folder's: give --timezone {old_zone} (or set timezone in the mapping)"
        )
    old_key = manifest.get("pseudonym_key")
    if check_key and old_key != key:
        raise AppendRefused(
            f"{out} was written with {'pseudonyms from another secret' if old_key and key else 'other ids'}: "
            f"its pseudonym key is {old_key or 'none'}, this import's is {key or 'none'}; the same students "
            "would not match (use the secret the folder was made with)"
        )
    return set(report.tables_present)


def _refuse_to_lose(out: Path, mapping: Mapping) -> None:
    """Refuse an import (not an append) that would replace what other imports wrote into ``out``.

    Importing again with the mapping that made a folder refreshes it; replacing a folder that later
    appends, or other mappings, filled (a platform's log added to the records) would lose them unseen.
    """
    if not (out / MANIFEST).is_file():
        return
    increments = read_manifest(out).get("increments", [])
    others = [
        i for i in increments if i.get("mode") == "append" or i.get("mapping") not in {None, mapping.name}
    ]
    if not others:
        return
    made = sorted({f"{i.get('mapping')} ({i.get('mode')}, {str(i.get('at', ''))[:10]})" for i in others})
    raise AppendRefused(
        f"{out} holds what this import would replace and not write again: {len(others)} earlier "
        f"increment(s) from {'; '.join(made)}. Give --append to add this extract to the folder (with "
        "--retire-missing registrations to remove registrations it no longer lists), or --replace to "
        "replace the folder with this import alone"
    )


def _builders(out: Path, table: str) -> set[str]:
    """The mappings whose imports and appends wrote rows of ``table`` into ``out``.

    A folder made without a mapping (the OULAD import, the synthetic cohort) names its first import too.
    """
    increments = read_manifest(out).get("increments", [])
    made = {str(i.get("mapping")) for i in increments if table in i.get("rows", {})}
    if not increments or increments[0].get("mode") == "append":  # made by no mapping, then appended to
        made.add("its first import (by no mapping)")
    return made


def _shared(out: Path, mapping: Mapping, *, old: set[str]) -> frozenset[str]:
    """The retirable tables of the folder whose rows other mappings than ``mapping`` built too."""
    if not old or not (out / MANIFEST).is_file():
        return frozenset()
    return frozenset(t for t in RETIRABLE if t in old and _builders(out, t) - {mapping.name})


def _refuse_to_retire_others(out: Path, mapping: Mapping, *, retire: frozenset[str]) -> None:
    """Refuse to retire a table whose rows other mappings built too: this extract never lists those.

    A university's weekly records append, asked to retire assessments, removed 21 platform tests
    another mapping had added (not due yet, so no result named them): the records never held them.
    """
    for table in sorted(retire):
        if others := sorted(_builders(out, table) - {mapping.name}):
            raise AppendRefused(
                f"--retire-missing {table}: {out}'s {table} also come from {', '.join(others)}, whose rows "
                f"this extract of mapping {mapping.name} never lists, so retiring would remove them: "
                "--retire-missing retires only a table one mapping builds. Append without it"
            )


def _refuse_to_empty_columns(
    con: duckdb.DuckDBPyConnection, mapping: Mapping, *, out: Path, tables: list[str]
) -> None:
    """Refuse an append that would replace rows whole without columns the folder holds for them.

    An append replaces a keyed row whole: a university's scholarship mapping, giving one protected
    characteristic for 60 recipients, emptied their gender, nationality and disability, and the
    audit's "not recorded" gender group became exactly the means-tested students.
    """
    for table in tables:
        key = table_key(table)
        if not key:
            continue
        given = {str(r[0]) for r in con.execute(f"DESCRIBE {ident('wm_out_' + table)}").fetchall()}
        held = [
            str(r[0])
            for r in con.execute(f"DESCRIBE {ident('t_' + table)}").fetchall()
            if not str(r[0]).startswith("_") and str(r[0]) not in given
        ]
        if not held:
            continue
        holding = " OR ".join(f"o.{ident(c)} IS NOT NULL" for c in held)
        replaced = con.execute(
            f"SELECT count(*) FROM {ident('wm_out_' + table)} n JOIN {ident('t_' + table)} o "
            f"ON {_same_key(table)} WHERE {holding}"
        ).fetchall()[0][0]
        if replaced:
            raise AppendRefused(
                f"{table}: mapping {mapping.name} gives {', '.join(sorted(given - set(key))) or 'no column'} "
                f"but not {', '.join(held)}, which {out}'s {table} holds for {replaced:,} of the rows this "
                "append would replace: an append replaces a row whole, so those values would be emptied. "
                f"Give every column of {table} in one mapping (join its inputs there, or in the export), "
                f"or leave {table} out of this one. A column given for some students only reads the others "
                "as not recorded: export it for every student"
            )


# --- writing ------------------------------------------------------------------------------------


def _same_key(table: str) -> str:
    """SQL: the new row ``n`` and the earlier row ``o`` have the same key (as an increment merges them)."""
    return " AND ".join(f"n.{ident(k)} IS NOT DISTINCT FROM o.{ident(k)}" for k in table_key(table))


#: Tables an extract can list whole for each presentation it holds (a records system's registrations,
#: the assessments set), whose earlier rows of those presentations an append may retire.
RETIRABLE = ("registrations", "assessments")


@dataclass(frozen=True)
class _Retiring:
    """Which tables an append retires rows of, and what the folder and the extract hold besides."""

    tables: frozenset[str] = frozenset()
    old: frozenset[str] = frozenset()  # the folder's tables
    built: frozenset[str] = frozenset()  # the tables this extract builds
    shared: frozenset[str] = frozenset()  # tables whose earlier rows other mappings built too: never absent

    def listed(self, table: str) -> str:
        """SQL: the earlier row ``o`` is of a presentation this extract lists.

        Listed by its presentations table when it builds one: a presentation none of whose
        registrations are left is still listed.
        """
        source = "presentations" if "presentations" in self.built else table
        return (
            f"EXISTS (SELECT 1 FROM {ident('wm_out_' + source)} p WHERE p.module_id IS NOT DISTINCT FROM "
            "o.module_id AND p.presentation_id IS NOT DISTINCT FROM o.presentation_id)"
        )

    def absent(self, table: str) -> str:
        """SQL: the earlier row ``o`` is of a presentation this extract lists, and the extract lacks it."""
        new = ident("wm_out_" + table)
        match = _same_key(table)
        return f"{self.listed(table)} AND NOT EXISTS (SELECT 1 FROM {new} n WHERE {match})"

    def depended_on(self, table: str) -> str:
        """SQL: activity or results in the folder or this extract still name the earlier row ``o``."""
        parts = []
        if table == "registrations":
            parts += [
                f"EXISTS (SELECT 1 FROM {activity} a WHERE a.student_id = o.student_id "
                "AND a.module_id = o.module_id AND a.presentation_id = o.presentation_id)"
                for activity in self._views("activity")
            ]
        on = (
            "r.assessment_id = o.assessment_id"
            if table == "assessments"
            else "r.student_id = o.student_id AND EXISTS (SELECT 1 FROM wm_assessment_presentations x "
            "WHERE x.assessment_id = r.assessment_id AND x.module_id = o.module_id "
            "AND x.presentation_id = o.presentation_id)"
        )
        parts += [
            f"EXISTS (SELECT 1 FROM {r} r WHERE {on})"
            for by_assessment in ("assessment_results", "extensions")
            for r in self._views(by_assessment)
        ]
        return " OR ".join(parts) or "FALSE"

    def _views(self, table: str) -> list[str]:
        """The views holding ``table``'s rows: the folder's, and this extract's."""
        return [
            prefix + table for prefix, held in (("t_", self.old), ("wm_out_", self.built)) if table in held
        ]

    def retired(self, table: str) -> str:
        """SQL: the earlier row ``o`` is retired (absent, and nothing still names it)."""
        if table not in self.tables:
            return "FALSE"
        return f"{self.absent(table)} AND NOT ({self.depended_on(table)})"

    def ended(self) -> str:
        """SQL: the unregistration day of the earlier registration ``o``, ended where it is held.

        A held registration (absent from the extract, its activity or results kept) ends the day after
        the last of them, unless the folder already gives it a day: an Australian university's records
        delete an enrolment withdrawn before the census date, while the platform keeps its activity, and
        12 of 24 such students stayed on worklists, ranked 2nd of 86 and 3rd of 70.
        """
        if "registrations" not in self.tables:
            return "o.unregistration_day"
        days = [
            f"SELECT a.day AS d FROM {activity} a WHERE a.student_id = o.student_id "
            "AND a.module_id = o.module_id AND a.presentation_id = o.presentation_id"
            for activity in self._views("activity")
        ] + [
            f"SELECT r.submitted_day AS d FROM {results} r JOIN wm_assessment_presentations x "
            "ON x.assessment_id = r.assessment_id WHERE r.student_id = o.student_id "
            "AND x.module_id = o.module_id AND x.presentation_id = o.presentation_id"
            for results in self._views("assessment_results")
        ]
        if not days:
            return "o.unregistration_day"
        last = f"(SELECT max(d) FROM ({' UNION ALL '.join(days)}))"
        held = f"{self.absent('registrations')} AND ({self.depended_on('registrations')})"
        return (
            f"CASE WHEN o.unregistration_day IS NULL AND {held} "
            f"THEN CAST(greatest({last} + 1, o.registration_day) AS BIGINT) ELSE o.unregistration_day END"
        )


def _merged_sql(table: str, *, old: set[str], retiring: _Retiring | None = None) -> str:
    new = ident("wm_out_" + table)
    if table not in old:
        return f"SELECT * FROM {new}"
    match = _same_key(table)
    old_columns = "o.* EXCLUDE (_file, _row)"
    if retiring and table == "registrations" and table in retiring.tables:
        old_columns = f"o.* EXCLUDE (_file, _row) REPLACE ({retiring.ended()} AS unregistration_day)"
    retired = f" AND NOT ({retiring.retired(table)})" if retiring and table in retiring.tables else ""
    return (
        f"SELECT * FROM {new} UNION ALL BY NAME SELECT {old_columns} FROM {ident('t_' + table)} o "
        f"WHERE NOT EXISTS (SELECT 1 FROM {new} n WHERE {match}){retired}"
    )


def _late_rows(con: duckdb.DuckDBPyConnection, *, key: str) -> int:
    """Activity rows this append adds on days its presentation's activity in the folder had reached.

    A Moodle app syncing offline actions days after they were made: 915 of a Kenyan university's rows
    arrived dated on or before a run already published, whose "last 14 days" had counted without them.
    Each presentation and source against its own last day: a later week of an earlier term is not
    late, nor is a source the folder did not hold yet (a Vietnamese university's Moodle appended after
    its QR attendance had 616,139 of its rows called late).
    """
    (late,) = con.execute(
        "SELECT count(*) FROM wm_out_activity n JOIN (SELECT module_id, presentation_id, source, "
        "max(day) AS reached FROM t_activity GROUP BY module_id, presentation_id, source) r "
        "ON r.module_id = n.module_id AND r.presentation_id = n.presentation_id AND r.source = n.source "
        f"WHERE n.day <= r.reached AND NOT EXISTS (SELECT 1 FROM t_activity o WHERE {key})"
    ).fetchall()[0]
    return int(late)


def _changes(
    con: duckdb.DuckDBPyConnection, table: str, *, old: set[str], retiring: _Retiring | None = None
) -> dict[str, int]:
    new = ident("wm_out_" + table)
    total = con.execute(f"SELECT count(*) FROM {new}").fetchall()[0]
    if table not in old:
        return {"added": int(total[0]) if total else 0, "replaced": 0, "unchanged": 0}
    columns = [r[0] for r in con.execute(f"DESCRIBE {new}").fetchall()]
    old_columns = {r[0] for r in con.execute(f"DESCRIBE {ident('t_' + table)}").fetchall()}
    key = _same_key(table)
    same = " AND ".join(
        f"n.{ident(c)} IS NOT DISTINCT FROM o.{ident(c)}" if c in old_columns else f"n.{ident(c)} IS NULL"
        for c in columns
    )
    row = con.execute(
        f"SELECT count(*) FILTER (WHERE NOT matched), count(*) FILTER (WHERE matched AND NOT same), "
        f"count(*) FILTER (WHERE same) FROM (SELECT "
        f"EXISTS (SELECT 1 FROM {ident('t_' + table)} o WHERE {key}) AS matched, "
        f"EXISTS (SELECT 1 FROM {ident('t_' + table)} o WHERE {same}) AS same FROM {new} n)"
    ).fetchall()[0]
    added, replaced, unchanged = (int(v) for v in row) if row else (0, 0, 0)
    out = {"added": added, "replaced": replaced, "unchanged": unchanged}
    if table == "activity" and replaced:  # a day's actions are only ever added to by a later log
        # and how many of them fall on the first day the import holds of their presentation: an
        # increment cut part-way through a local day (at midnight UTC, 18:00 in Chicago) lowers that day
        first = (
            f"(SELECT min(x.day) FROM {new} x WHERE x.module_id = n.module_id "
            "AND x.presentation_id = n.presentation_id)"
        )
        lowered = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE n.day = {first}) FROM {new} n "
            f"WHERE EXISTS (SELECT 1 FROM {ident('t_activity')} o WHERE {key} AND n.count < o.count)"
        ).fetchall()[0]
        out["lowered"], out["lowered_first"] = int(lowered[0]), int(lowered[1])
    if table == "activity" and added:  # new days on or before the date the folder already reached
        out["late"] = _late_rows(con, key=key)
    retiring = retiring or _Retiring()
    if table in RETIRABLE and table not in retiring.shared:  # earlier rows of its presentations it lacks
        counted = con.execute(
            f"SELECT count(*) FILTER (WHERE {retiring.absent(table)}), "
            f"count(*) FILTER (WHERE {retiring.retired(table)}) FROM {ident('t_' + table)} o"
        ).fetchall()[0]
        out["absent"], out["retired"] = int(counted[0]), int(counted[1])
        if table in retiring.tables:  # absent rows kept because activity or results still name them
            out["held"] = out["absent"] - out["retired"]
        if table == "registrations" and table in retiring.tables and out["held"]:  # ended by this append
            (ended,) = con.execute(
                f"SELECT count(*) FILTER (WHERE o.unregistration_day IS NULL AND {retiring.absent(table)} "
                f"AND ({retiring.depended_on(table)})) FROM {ident('t_' + table)} o"
            ).fetchall()[0]
            out["ended"] = int(ended)
    return out


def _write_table(
    con: duckdb.DuckDBPyConnection, table: str, *, stage: Path, old: set[str], retiring: _Retiring
) -> int:
    target = stage / f"{table}.parquet"
    merged = _merged_sql(table, old=old, retiring=retiring)
    run(con, f"COPY ({merged} ORDER BY ALL) TO {literal(target)} (FORMAT parquet)")
    row = con.execute(f"SELECT count(*) FROM read_parquet({literal(target)})").fetchall()[0]
    return int(row[0]) if row else 0


def _count_old(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return int(con.execute(f"SELECT count(*) FROM {ident('t_' + table)}").fetchall()[0][0])


def _write_empty(con: duckdb.DuckDBPyConnection, table: str, *, stage: Path) -> int:
    columns = ", ".join(
        f"CAST(NULL AS {SQL_TYPES[c.kind]}) AS {ident(c.name)}" for c in TABLES[table].columns if c.required
    )
    run(
        con,
        f"COPY (SELECT {columns} WHERE FALSE) TO {literal(stage / (table + '.parquet'))} (FORMAT parquet)",
    )
    return 0


def _carry_over(out: Path, stage: Path, *, rewritten: set[str], link: bool = False) -> None:
    """Copy what the increment does not rewrite: other tables, access.csv, anything else but the manifest.

    With ``link`` (a dry run's temporary folder, read and removed) each is linked rather than copied.
    """
    for entry in out.iterdir():
        stem = entry.name.split(".")[0]
        if entry.name == MANIFEST or stem in rewritten or entry.name == SOURCES_FILE:
            continue
        if link:
            (stage / entry.name).symlink_to(entry.resolve())
        elif entry.is_dir():
            shutil.copytree(entry, stage / entry.name)
        else:
            shutil.copy2(entry, stage / entry.name)


#: The sources table's columns, as an import writes them.
SOURCE_COLUMNS = ("label", "notice_given_on", "counts_as")


def _read_labels(path: Path) -> dict[str, dict[str, str]]:
    """The sources table an earlier import wrote: source -> its columns, '' where not given."""
    if not path.is_file():
        return {}
    con = duckdb_connect()
    rel = con.sql(f"SELECT * FROM read_csv({literal(path)}, header = true, all_varchar = true)")
    given = ", ".join(f"coalesce({c}, '')" if c in rel.columns else "''" for c in SOURCE_COLUMNS)
    rows = con.execute(f"SELECT source, {given} FROM rel").fetchall()  # DuckDB reads ``rel`` by its name
    return {str(s): dict(zip(SOURCE_COLUMNS, map(str, values), strict=True)) for s, *values in rows}


def relabelled(old: dict[str, dict[str, str]], mapping: Mapping) -> tuple[str, ...]:
    """What an append renames: each source the folder already names that the mapping names otherwise.

    The new name applies to the source's earlier rows too. An art school appended Canvas (from
    January) to a folder of Moodle (the autumn) under one source, and every sentence about the autumn
    then said "the learning platform (Canvas)": the import says so, with what to do if that is wrong.
    """
    notes = []
    for source, spec in mapping.source_rows().items():
        before = old.get(source, {}).get("label", "")
        if before and spec.label and spec.label != before:
            notes.append(
                f"Source {source!r} was named {before!r} and is now {spec.label!r}, for its earlier rows "
                "too. If another system now records this activity (a new platform), import it under a "
                "source of its own instead (in a copy of the mapping: "
                f'{source}_new, with counts_as = "{source}" and notice_given_on), so that each is named as '
                "it is, and note that a student's rate "
                "against their own earlier weeks then compares the two systems' counts."
            )
    return tuple(notes)


def _merged_labels(old: dict[str, dict[str, str]], mapping: Mapping) -> dict[str, dict[str, str]]:
    """The mapping's [sources] over the folder's: a value it does not give is kept."""
    out = dict(old)
    for source, spec in mapping.source_rows().items():
        given = {
            "label": spec.label,
            "notice_given_on": spec.notice_given_on.isoformat() if spec.notice_given_on else "",
            "counts_as": spec.counts_as or "",
        }
        kept = out.get(source, dict.fromkeys(SOURCE_COLUMNS, ""))
        out[source] = {c: given[c] or kept[c] for c in SOURCE_COLUMNS}
    return out


def _write_labels(stage: Path, labels: dict[str, dict[str, str]]) -> None:
    with (stage / SOURCES_FILE).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["source", *SOURCE_COLUMNS])
        writer.writerows((s, *(row[c] for c in SOURCE_COLUMNS)) for s, row in sorted(labels.items()))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _increment(
    mapping: Mapping,
    matched: dict[str, list[SourceFile]],
    *,
    changes: dict[str, dict[str, int]],
    append: bool,
) -> dict[str, Any]:
    return {
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mapping": mapping.name,
        # what the mapping said, not only its name: a Spanish university relabelled 2,777 outcomes
        # with a changed mapping of the same name, and nothing recorded it
        "mapping_sha256": hashlib.sha256(mapping.model_dump_json().encode("utf-8")).hexdigest(),
        "mode": "append" if append else "import",
        "files": {f.shown: _sha256(f.path) for files in matched.values() for f in files},
        "rows": changes,
    }


def _manifest_details(
    out: Path,
    mapping: Mapping,
    *,
    increment: dict[str, Any],
    key: str | None,
    append: bool,
    rows: dict[str, int],
) -> dict[str, Any]:
    previous = read_manifest(out) if append else {}
    chosen, old = "timezone" in mapping.model_fields_set, _chosen_zone(previous)
    # the zone days are counted in, and whether a mapping chose it (appends must then keep it); a
    # mapping that left it unset (UTC) keeps, and was read in, the zone an earlier mapping chose
    zone = (
        {"timezone": mapping.timezone, "timezone_chosen": chosen}
        if chosen or old is None
        else {"timezone": old, "timezone_chosen": True}
    )
    kept = {
        k: v for k, v in previous.items() if k not in {"contract_version", "source", "created_at", "tables"}
    }
    # an append adds its mapping's words to the folder's (a second registrations mapping had replaced them)
    words = dict(previous.get("outcome_words", {}))
    for outcome, said in outcome_words(mapping).items():
        words[outcome] = list(dict.fromkeys([*words.get(outcome, []), *said]))
    return {
        **kept,
        "mapping": mapping.name,
        "mapping_description": mapping.description,
        **({"outcome_words": words} if words else {}),
        **zone,
        "pseudonym_key": key,
        "rows": {**previous.get("rows", {}), **rows},
        "increments": [*previous.get("increments", []), increment],
    }


OUTCOME_WORDS_SHOWN = 12  # an export's words per outcome the committee is shown
WORD_SHOWN = 60  # characters of each


def outcome_words(mapping: Mapping) -> dict[str, list[str]]:
    """The export's own words each outcome was mapped from, by ``final_result`` value ({} if none).

    What "not completing" means at an institution is what it mapped to fail and withdrawn: the model
    card and committee report said "not completing the module" whatever that was (a Chilean
    university's "Postergación", a French one's "AJAC"). Read from the mapping's value maps and globs
    (``*`` for a ``default``), each rule of ``otherwise`` in turn; a mapping that passes its outcomes
    through (``keep_unmapped``) or reads them without a map gives none.
    """
    table = mapping.tables.get("registrations")
    rule = table.columns.get("final_result") if table is not None else None
    words: dict[str, list[str]] = {}
    for step in rule.chain() if rule is not None else []:
        pairs = [*step.values.items(), *step.patterns.items()]
        pairs += [("(any other value)", step.default)] if step.default else []
        for word, outcome in pairs:
            shown = word[:WORD_SHOWN] or "(an empty cell)"
            if outcome and shown not in words.setdefault(outcome, []):
                words[outcome].append(shown)
    return {
        k: v[:OUTCOME_WORDS_SHOWN] + (["..."] if len(v) > OUTCOME_WORDS_SHOWN else [])
        for k, v in words.items()
    }


def import_mapped(
    mapping: Mapping,
    sources: Sequence[Path],
    *,
    out: Path,
    secret: bytes | None = None,
    dry_run: bool = False,
    append: bool = False,
    retire: frozenset[str] = frozenset(),
    replace_folder: bool = False,
) -> ImportResult:
    """Import exports into a data folder as ``mapping`` says.

    Parameters
    ----------
    mapping
        A checked mapping (``load_mapping``).
    sources
        Export files, or folders holding them.
    out
        The data folder to write (or, with ``append``, to merge into).
    secret
        The pseudonymisation key, when the mapping pseudonymises ids.
    dry_run
        Measure coverage only; write nothing.
    append
        Merge into the existing folder instead of replacing it.
    retire
        On an append, the tables (of ``RETIRABLE``) whose earlier rows of a presentation this extract
        lists, and which it no longer holds, are removed: a registration deleted in the records system.
        Otherwise they are kept, and counted as ``absent``.
    replace_folder
        Without ``append``, replace a folder holding what this mapping did not write there (appended
        extracts, other mappings' imports); refused otherwise.

    Returns
    -------
    ImportResult
        The coverage, and what was written per table.

    Raises
    ------
    MappingError
        When the mapping names files or columns the exports do not have, or an append is refused.
    MappingDataError
        When values are left unmapped (nothing written).
    ContractViolation
        When the result (or, for an append, the existing folder) breaks the contract (nothing written).
    """
    if mapping.pseudonymise is not None and secret is None:
        if not dry_run:
            raise MappingError(f"mapping {mapping.name} pseudonymises ids: a secret is needed")
        secret = secrets.token_bytes(32)  # a dry run writes nothing, so any key measures the same coverage
        key = None
    else:
        key = key_id(secret) if secret is not None and mapping.pseudonymise is not None else None
    if retire and not append:
        raise MappingError("--retire-missing retires rows an append's extract no longer holds: give --append")
    if append and replace_folder:
        raise MappingError("--replace replaces the folder and --append adds to it: give one of them")
    if unbuilt := sorted(retire - set(mapping.tables)):
        raise MappingError(
            f"--retire-missing {', '.join(unbuilt)}: mapping {mapping.name} does not build "
            f"{'it' if len(unbuilt) == 1 else 'them'}, so this extract lists none of its rows"
        )
    if unknown := sorted(retire - set(RETIRABLE)):
        raise MappingError(
            f"--retire-missing {', '.join(unknown)}: only {' and '.join(RETIRABLE)} can be retired (an "
            "extract lists them whole for each presentation it holds)"
        )
    if not append and not replace_folder:  # a dry run says so too, before anyone relies on it
        _refuse_to_lose(out, mapping)
    zone = _zone(mapping, out=out, append=append)
    con = _connect(mapping, secret, zone=zone)
    old = (
        _open_existing(con, out, key=key, check_key=key is not None or not dry_run, mapping=mapping)
        if append
        else set()
    )
    if retire and old:
        _refuse_to_retire_others(out, mapping, retire=retire & old)
    coverage, matched = analyse(con, mapping, sources=sources, old=old)
    earlier = _read_labels(out / SOURCES_FILE) if append else {}
    notes = relabelled(earlier, mapping)  # said by the dry run too, while there is time to change course
    notes += _unpseudonymised(mapping)
    # A dry run without the secret hashes ids with a throwaway key: the folder's rows, hashed with the
    # real one, match none of this extract's, so nothing that joins the two can be checked.
    blind = append and mapping.pseudonymise is not None and key is None
    notes += _drop_unregistered(con, mapping, old=set() if blind else old)
    if dry_run and (blind or not coverage.ok):
        said = (BLIND_DRY_RUN,) if blind and coverage.ok else ()
        return ImportResult(coverage, timezone=zone, notes=notes + said)
    if not coverage.ok:
        raise MappingDataError(coverage)
    tables = [t for t in _BUILD_ORDER if t in mapping.tables]
    if not blind:
        _refuse_to_empty_columns(con, mapping, out=out, tables=[t for t in tables if t in old])
    retiring = _Retiring(retire, frozenset(old), frozenset(mapping.tables), _shared(out, mapping, old=old))
    changes = {t: _changes(con, t, old=old, retiring=retiring) for t in tables}
    empty = [t for t in mapping.empty if t not in old]
    # A table the increment leaves as it was keeps its file, byte for byte.
    rewrite = [
        t
        for t in tables
        if t not in old
        or changes[t]["added"]
        + changes[t]["replaced"]
        + changes[t].get("retired", 0)
        + changes[t].get("ended", 0)
        > 0
    ]
    staging = _Staging(
        mapping, out=out, old=old, append=append, key=key, earlier=earlier, matched=matched, retiring=retiring
    )
    passed = Validation()
    try:
        if dry_run:  # the contract's rules on the folder as the import would write it, in a private temp
            with tempfile.TemporaryDirectory(prefix="waymark-dry-run-") as folder:
                staging.write(
                    con, Path(folder), tables=tables, rewrite=rewrite, empty=empty, changes=changes, link=True
                )
                passed(Path(folder))
        else:
            with staged_folder(out, passed) as stage:
                rows = staging.write(con, stage, tables=tables, rewrite=rewrite, empty=empty, changes=changes)
    except ContractViolation as exc:  # nothing was published; say where each row came from
        named = in_the_exports(con, exc.report, tables=set(rewrite), masked=pseudonymised(mapping))
        traced = _hinted(con, named, built=set(rewrite))
        traced = replace(traced, folder=f"{out} (as this import would write it)")
        if dry_run:
            return ImportResult(coverage, None, traced.warnings, timezone=zone, notes=notes, refused=traced)
        raise ContractViolation(traced) from None
    checked = passed.report
    # Named as the exports wrote them, as a refusal's examples are.
    warned = (
        in_the_exports(con, checked, tables=set(rewrite), masked=pseudonymised(mapping)).warnings
        if checked is not None
        else ()
    )
    if dry_run:
        return ImportResult(coverage, None, warned, timezone=zone, notes=notes)
    passed.remember(out)  # checked before it was published: its first reader need not check it again
    written = {t: {**changes[t], "total": rows[t]} for t in tables}
    return ImportResult(coverage, written, warned, timezone=zone, notes=notes)


@dataclass(frozen=True)
class _Staging:
    """What writing a staged folder needs besides the connection: the mapping, the folder, the lineage."""

    mapping: Mapping
    out: Path
    old: set[str]
    append: bool
    key: str | None
    earlier: dict[str, dict[str, str]]
    matched: dict[str, list[SourceFile]]
    retiring: _Retiring = _Retiring()

    def write(
        self,
        con: duckdb.DuckDBPyConnection,
        stage: Path,
        *,
        tables: list[str],
        rewrite: list[str],
        empty: list[str],
        changes: dict[str, dict[str, int]],
        link: bool = False,
    ) -> dict[str, int]:
        """Write the tables, the labels and the manifest into ``stage``; each table's rows.

        With ``link`` the folder's tables an append leaves as they were are linked, not copied.
        """
        mapping, old = self.mapping, self.old
        rows = {t: _write_table(con, t, stage=stage, old=old, retiring=self.retiring) for t in rewrite}
        rows |= {t: _count_old(con, t) for t in tables if t not in rewrite}
        rows |= {t: _write_empty(con, t, stage=stage) for t in empty}
        if self.append:
            _carry_over(self.out, stage, rewritten={*rewrite, *empty}, link=link)
        labels = _merged_labels(self.earlier, mapping)
        if labels:
            _write_labels(stage, labels)
        increment = _increment(mapping, self.matched, changes=changes, append=self.append)
        details = _manifest_details(
            self.out, mapping, increment=increment, key=self.key, append=self.append, rows=rows
        )
        write_manifest(stage, f"mapping:{mapping.name}", details=details)
        return rows


def _converted(written: object, value: object) -> object:
    """``written`` (the export's text) where a rule made ``value`` of it otherwise; else None.

    A number written otherwise but equal ("70" read as 70.0) is not said again.
    """
    if written is None or value is None or str(written) == str(value):
        return None
    try:
        if float(str(written)) == float(str(value)):
            return None
    except ValueError:
        pass
    return written


#: Ids a traced row shows as read beside as written, where they differ (never a student's: the pseudonym).
READ_AS_SHOWN = frozenset({"module_id", "presentation_id", "assessment_id"})


def in_the_exports(
    con: duckdb.DuckDBPyConnection,
    report: ValidationReport,
    *,
    tables: set[str],
    masked: frozenset[str] = frozenset(),
) -> ValidationReport:
    """``report`` with each example of a table this import built named as the exports wrote it.

    The contract's rules run on the staged folder, whose rows name a staging file that is gone once
    the import is refused, and pseudonyms the records team cannot search for. An example whose key
    matches a mapped row (``wm_m_<table>``) is given that row's export file and row, and its key as
    written there; one that matches none (a row the folder already held, on an append) is left as
    it was. An example with the offending value is traced to the export row holding it (a
    registration has many activity rows), and one with no key keeps its row in the mapped table,
    named as such rather than by the staging file.
    """

    def traced(finding: Finding) -> Finding:
        if finding.table not in tables or not finding.examples:
            return finding
        staged = ident("wm_m_" + finding.table)
        have = {str(r[0]) for r in con.execute(f"DESCRIBE {staged}").fetchall()}
        examples = []
        # Examples alike (five activity rows of one unknown registration) are traced to as many
        # different export rows, not five times to the first: the n-th alike takes the n-th match.
        alike: Counter[str] = Counter()
        for ex in finding.examples:
            key = {k: v for k, v in (ex.key or {}).items() if k in have}
            if not key:  # nothing to trace it by: named as the mapped table, not the staging file
                examples.append(replace(ex, file=f"{finding.table} as mapped from the exports"))
                continue
            conditions = [
                f"{ident(k)} IS NULL" if v is None else f"CAST({ident(k)} AS VARCHAR) = {literal(str(v))}"
                for k, v in key.items()
            ]
            if finding.column in have and finding.column not in key and ex.value is not None:
                # the offending value too: the registration's rows are many, the one at fault is this
                conditions.append(f"CAST({ident(finding.column)} AS VARCHAR) = {literal(str(ex.value))}")
            # As the export wrote each id; a module or presentation read from it otherwise (a part of a
            # course id, a pattern's value) with what it was read as. A student's id only as written.
            written = [
                shape_sql(ident(f"_raw:{k}") if f"_raw:{k}" in have else ident(k))
                if k in masked  # an id the mapping pseudonymises: by its shape (coverage.pseudonymised)
                else f"{ident(f'_raw:{k}')} || CASE WHEN {ident(k)} IS DISTINCT FROM {ident(f'_raw:{k}')} "
                f"THEN ' (read as ' || coalesce(CAST({ident(k)} AS VARCHAR), 'nothing') || ')' ELSE '' END"
                if f"_raw:{k}" in have and k in READ_AS_SHOWN
                else ident(f"_raw:{k}")
                if f"_raw:{k}" in have
                else ident(k)
                for k in key
            ]
            where = " AND ".join(conditions)
            # the offending value as the export wrote it, where a rule converted it (never an id the
            # mapping pseudonymises: that one is named by its shape)
            source = f"_raw:{finding.column}"
            readable = finding.column in have and source in have and finding.column not in masked
            typed = ident(source) if readable else "NULL"
            found = con.execute(
                f"SELECT _file, _row, {typed}, {', '.join(written)} FROM {staged} WHERE {where} "
                f"ORDER BY _file, _row LIMIT 1 OFFSET {alike[where]}"
            ).fetchall()
            alike[where] += 1
            if not found:  # no (further) mapped row: a row the folder already held, on an append
                examples.append(ex)
                continue
            file, row, as_typed, *raw = found[0]
            value = shape(str(ex.value)) if finding.column in masked and ex.value is not None else ex.value
            named = dict(zip(key, raw, strict=True))
            examples.append(Example(str(file), int(row), named, value, _converted(as_typed, value)))
        return replace(finding, examples=tuple(examples))

    return replace(
        report,
        findings=tuple(traced(f) for f in report.findings),
        warnings=tuple(traced(f) for f in report.warnings),
    )
