"""Import the Open University Learning Analytics Dataset (OULAD) into the data contract.

Kuzilek J., Hlosta M., Zdrahal Z. "Open University Learning Analytics dataset", Scientific Data
4:170171 (2017), doi:10.1038/sdata.2017.171. Licence: CC BY 4.0.

Reads the official CSV release ("?" marks a missing value) or the Parquet copy (numbers stored as
DOUBLE, studentVle partitioned Hive-style as ``studentVle_ds/code_module=*/code_presentation=*``).

Mapping decisions (see docs/data-contract.md):

- presentations: ``2013B`` starts 1 February, ``2013J`` 1 October (OULAD gives no exact dates).
- students: OULAD records education, earlier attempts and credits per registration; the contract
  keeps one row per student, so the values of the student's *earliest* registration are used.
  Taking a later one would leak: a 2014 row counts the 2013 attempt the model is predicting.
- protected_characteristics: gender, region, imd_band, age_band, disability of the student's
  latest registration; imd_band "10-20" is corrected to "10-20%". Audit only.
- assessments: TMA -> coursework, CMA -> quiz, Exam -> exam.
- assessment_results: is_banked is dropped (a banked result keeps its recorded day).
- activity: studentVle joined to vle for activity_type; source "vle"; every row kept as it is
  (OULAD has repeated rows for a student, site and day; they are not merged).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from waymark.models.data import staged_folder, write_manifest
from waymark.models.data.memo import Validation
from waymark.models.data.sqltext import ident, literal
from waymark.models.threads import duckdb_connect

OULAD_TABLES: dict[str, tuple[str, ...]] = {
    "courses": ("code_module", "code_presentation", "module_presentation_length"),
    "assessments": ("code_module", "code_presentation", "id_assessment", "assessment_type", "date", "weight"),
    "vle": ("id_site", "code_module", "code_presentation", "activity_type"),
    "studentInfo": (
        "code_module",
        "code_presentation",
        "id_student",
        "gender",
        "region",
        "highest_education",
        "imd_band",
        "age_band",
        "num_of_prev_attempts",
        "studied_credits",
        "disability",
        "final_result",
    ),
    "studentRegistration": (
        "code_module",
        "code_presentation",
        "id_student",
        "date_registration",
        "date_unregistration",
    ),
    "studentAssessment": ("id_assessment", "id_student", "date_submitted", "is_banked", "score"),
    "studentVle": ("code_module", "code_presentation", "id_student", "id_site", "date", "sum_click"),
}
CITATION = (
    "Kuzilek J., Hlosta M., Zdrahal Z. Open University Learning Analytics dataset. "
    "Sci. Data 4:170171 (2017). doi:10.1038/sdata.2017.171. CC BY 4.0"
)


class OuladSourceError(Exception):
    """The OULAD source folder is missing a table or a column."""


@dataclass(frozen=True)
class ImportSummary:
    """What an import wrote."""

    rows: dict[str, int]
    total_count: int  # sum of activity counts (OULAD sum_click)


def _register_sources(con: duckdb.DuckDBPyConnection, src: Path) -> None:
    for name, columns in OULAD_TABLES.items():
        con.execute(
            f"CREATE OR REPLACE TEMP VIEW {ident('src_' + name)} AS SELECT * FROM {_reader(src, name)}"
        )
        have = {r[0] for r in con.execute(f"DESCRIBE {ident('src_' + name)}").fetchall()}
        missing = [c for c in columns if c not in have]
        if missing:
            raise OuladSourceError(f"OULAD table {name} in {src} has no column(s) {', '.join(missing)}")


def _reader(src: Path, name: str) -> str:
    csv_path, pq_path, ds = src / f"{name}.csv", src / f"{name}.parquet", src / f"{name}_ds"
    if csv_path.is_file():
        return f"read_csv({literal(csv_path)}, header=true, nullstr='?', all_varchar=true)"
    if pq_path.is_file():
        return f"read_parquet({literal(pq_path)})"
    if ds.is_dir():
        return f"read_parquet({literal(str(ds) + '/**/*.parquet')}, hive_partitioning=true)"
    raise OuladSourceError(
        f"OULAD table {name} not found in {src}: expected {name}.csv (official release), "
        f"{name}.parquet or a folder {name}_ds/ of Parquet parts"
    )


def _int(col: str) -> str:
    return f"CAST(CAST({col} AS DOUBLE) AS BIGINT)"


def _student(col: str = "id_student") -> str:
    return f"CAST({_int(col)} AS VARCHAR)"


_ORDER = (
    "CAST(substr(code_presentation, 1, 4) AS INTEGER) * 2 "
    "+ CASE WHEN right(code_presentation, 1) = 'J' THEN 1 ELSE 0 END"
)

# OULAD's last day is day ``module_presentation_length`` itself (4,374 activity rows fall on it, and
# DDD's exams are due on it), so its presentations run one day longer than that number in the contract's
# counting (days 0 to length_days - 1).
_QUERIES: dict[str, str] = {
    "presentations": f"""
        SELECT code_module AS module_id, code_presentation AS presentation_id,
               make_date(CAST(substr(code_presentation, 1, 4) AS INTEGER),
                         CASE right(code_presentation, 1) WHEN 'B' THEN 2 ELSE 10 END, 1)
                   AS start_date,
               {_int("module_presentation_length")} + 1 AS length_days
        FROM src_courses ORDER BY 1, 2""",
    "students": f"""
        SELECT {_student()} AS student_id, highest_education,
               {_int("num_of_prev_attempts")} AS num_prev_attempts,
               {_int("studied_credits")} AS credits
        FROM src_studentInfo
        QUALIFY row_number() OVER (PARTITION BY id_student ORDER BY {_ORDER}, code_module) = 1
        ORDER BY {_int("id_student")}""",
    "registrations": f"""
        SELECT {_student("r.id_student")} AS student_id, r.code_module AS module_id,
               r.code_presentation AS presentation_id,
               {_int("r.date_registration")} AS registration_day,
               {_int("r.date_unregistration")} AS unregistration_day,
               lower(i.final_result) AS final_result
        FROM src_studentRegistration r LEFT JOIN src_studentInfo i
          ON i.id_student = r.id_student AND i.code_module = r.code_module
         AND i.code_presentation = r.code_presentation""",
    "assessments": f"""
        SELECT CAST({_int("id_assessment")} AS VARCHAR) AS assessment_id,
               code_module AS module_id, code_presentation AS presentation_id,
               CASE assessment_type WHEN 'TMA' THEN 'coursework' WHEN 'CMA' THEN 'quiz'
                    WHEN 'Exam' THEN 'exam' ELSE lower(assessment_type) END AS type,
               {_int("date")} AS due_day, CAST(weight AS DOUBLE) AS weight
        FROM src_assessments""",
    "assessment_results": f"""
        SELECT {_student()} AS student_id, CAST({_int("id_assessment")} AS VARCHAR)
                   AS assessment_id,
               {_int("date_submitted")} AS submitted_day, CAST(score AS DOUBLE) AS score
        FROM src_studentAssessment""",
    "activity": f"""
        SELECT {_student("s.id_student")} AS student_id, s.code_module AS module_id,
               s.code_presentation AS presentation_id, {_int("s.date")} AS day,
               'vle' AS source, coalesce(v.activity_type, 'unknown') AS activity_type,
               {_int("s.sum_click")} AS count
        FROM src_studentVle s LEFT JOIN src_vle v ON {_int("v.id_site")} = {_int("s.id_site")}""",
    "protected_characteristics": f"""
        SELECT {_student()} AS student_id, gender, region,
               CASE imd_band WHEN '10-20' THEN '10-20%' ELSE imd_band END AS imd_band,
               age_band, disability
        FROM src_studentInfo
        QUALIFY row_number() OVER (PARTITION BY id_student ORDER BY {_ORDER} DESC,
                                   code_module DESC) = 1
        ORDER BY {_int("id_student")}""",
}


def import_oulad(src: Path, out: Path, *, memory_limit: str = "6GB") -> ImportSummary:
    """Import OULAD from ``src`` into the contract folder ``out``.

    The result is validated before it is published; on any error ``out`` is left as it was.

    Parameters
    ----------
    src
        Folder of the official CSV release or of the Parquet copy.
    out
        Destination data folder.
    memory_limit
        DuckDB memory limit; larger joins spill to disk.

    Returns
    -------
    ImportSummary
        Rows written per table and the total activity count.
    """
    if not src.is_dir():
        raise OuladSourceError(f"{src} is not a folder")
    con = duckdb_connect()
    con.execute(f"SET memory_limit = {literal(memory_limit)}")
    _register_sources(con, src)
    rows: dict[str, int] = {}
    passed = Validation()
    with staged_folder(out, passed) as stage:
        for table, query in _QUERIES.items():
            target = stage / f"{table}.parquet"
            con.execute(f"COPY ({query}) TO {literal(target)} (FORMAT parquet)").fetchall()
            counted = con.execute(f"SELECT count(*) FROM read_parquet({literal(target)})")
            rows[table] = int(_one(counted))
        total = int(
            _one(
                con.execute(
                    f"SELECT coalesce(sum(count), 0) FROM read_parquet({literal(stage / 'activity.parquet')})"
                )
            )
        )
        write_manifest(
            stage,
            "oulad",
            details={
                "citation": CITATION,
                "licence": "CC BY 4.0",
                "source_folder": str(src),
                "rows": rows,
                "activity_total_count": total,
                # OULAD's own convention: 2013 presentations train, 2014 ones test.
                "test_from": "2014-01-01",
            },
        )
    passed.remember(out)  # checked before it was published: its first reader need not check it again
    return ImportSummary(rows, total)


def _one(cursor: duckdb.DuckDBPyConnection) -> int:
    row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def demo_relationships(folder: Path, out: Path) -> int:
    """Write an access.csv for a demo on OULAD, which names no staff: one module leader per module.

    These relationships are invented for a demonstration (``modlead-<module>``); a real deployment
    loads its own from the student records system.
    """
    con = duckdb_connect()
    source = (folder / "presentations.parquet").as_posix()
    modules = con.sql(f"SELECT DISTINCT module_id FROM read_parquet('{source}') ORDER BY 1").fetchall()
    lines = ["staff_id,relationship,scope_type,scope_id"]
    lines += [f"modlead-{m},module_leader,module,{m}" for (m,) in modules]
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return len(modules)
