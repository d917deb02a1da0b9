"""Synthetic cohorts in the data contract, at any size, deterministic for a seed.

Students are generated in fixed-size chunks, each from its own random stream
(``default_rng([seed, chunk])``), and written as they are made: memory stays bounded whatever the
cohort size, and the same seed always gives the same files.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from waymark.models.data import staged_folder, write_manifest
from waymark.training.ingest.synthetic_access import fixed_relationships, tutees_and_placements
from waymark.training.ingest.synthetic_activity import (
    Registrations,
    activity_table,
    build_profiles,
    draw_activity,
)
from waymark.training.ingest.synthetic_catalogue import (
    YEARS,
    assessment_schedule,
    presentations,
    presentations_frame,
)
from waymark.training.ingest.synthetic_directory import COLUMNS as DIRECTORY_COLUMNS
from waymark.training.ingest.synthetic_directory import directory_frame
from waymark.training.ingest.synthetic_people import (
    Disparity,
    draw_enrolment,
    draw_people,
    draw_results,
    registrations_frame,
)

CHUNK_STUDENTS = 20_000  # part of the definition of a seed's output: do not change lightly

_SCHEMAS = {
    "students": pa.schema(
        [
            ("student_id", pa.string()),
            ("programme_id", pa.string()),
            ("school_id", pa.string()),
            ("year_of_study", pa.int64()),
            ("study_mode", pa.string()),
            ("highest_education", pa.string()),
            ("num_prev_attempts", pa.int64()),
            ("credits", pa.int64()),
        ]
    ),
    "registrations": pa.schema(
        [
            ("student_id", pa.string()),
            ("module_id", pa.string()),
            ("presentation_id", pa.string()),
            ("registration_day", pa.int64()),
            ("unregistration_day", pa.int64()),
            ("final_result", pa.string()),
        ]
    ),
    "assessment_results": pa.schema(
        [
            ("student_id", pa.string()),
            ("assessment_id", pa.string()),
            ("submitted_day", pa.int64()),
            ("score", pa.float64()),
        ]
    ),
    "protected_characteristics": pa.schema(
        [
            ("student_id", pa.string()),
            ("gender", pa.string()),
            ("age_band", pa.string()),
            ("disability", pa.string()),
            ("ethnicity", pa.string()),
            ("imd_band", pa.string()),
        ]
    ),
}


@dataclass(frozen=True)
class SynthConfig:
    """Parameters of a synthetic cohort."""

    students: int = 2_000
    seed: int = 0
    disparity: Disparity = field(default_factory=Disparity)
    no_activity_share: float = 0.03


@dataclass(frozen=True)
class SynthSummary:
    """Row counts of what was written."""

    rows: dict[str, int]

    @property
    def total_rows(self) -> int:
        """All rows written, over every table."""
        return sum(self.rows.values())


def generate(out: Path, config: SynthConfig, *, check: Callable[[Path], None] | None = None) -> SynthSummary:
    """Write a synthetic cohort to ``out`` (atomically: the folder appears complete or not at all).

    Parameters
    ----------
    out
        Destination folder (new, empty, or an earlier Waymark data folder).
    config
        Cohort size, seed and injected disparity.
    check
        Called on the finished staging folder before publication; raise to refuse it.

    Returns
    -------
    SynthSummary
        Row counts per table.
    """
    if config.students < 1:
        raise ValueError("--students must be at least 1")
    pres = presentations()
    schedules = [assessment_schedule(p) for p in pres]
    profiles = build_profiles(pres, [s["due_day"].to_numpy() for s in schedules])
    lengths = np.asarray([p.length_days for p in pres])
    rows: dict[str, int] = {}
    with staged_folder(out, check) as stage, _Writers(stage) as writers:
        _write(stage / "presentations.parquet", presentations_frame(pres), rows=rows, name="presentations")
        _write(
            stage / "assessments.parquet",
            pd.concat(schedules, ignore_index=True),
            rows=rows,
            name="assessments",
        )
        access = _CsvWriter(
            stage / "access.csv", header=("staff_id", "relationship", "scope_type", "scope_id")
        )
        access.write(fixed_relationships())
        directory = _CsvWriter(stage / "directory.csv", header=DIRECTORY_COLUMNS)
        (stage / "activity").mkdir()
        for chunk, first in enumerate(range(0, config.students, CHUNK_STUDENTS)):
            rng = np.random.default_rng([config.seed, chunk])
            n = min(CHUNK_STUDENTS, config.students - first)
            people = draw_people(
                rng, first, n=n, disparity=config.disparity, no_activity_share=config.no_activity_share
            )
            enr = draw_enrolment(rng, people, pres=pres, disparity=config.disparity)
            writers.write("students", people.frame)
            writers.write("protected_characteristics", people.protected)
            writers.write("registrations", registrations_frame(people, enr, pres=pres))
            writers.write("assessment_results", draw_results(rng, people, enr=enr, schedules=schedules))
            regs = Registrations(
                student=enr.student,
                pres=enr.pres,
                registration_day=enr.registration_day,
                engagement=enr.engagement,
                slope=enr.slope,
                withdraw_day=enr.withdraw_day,
                taper_days=enr.taper_days,
            )
            parts = draw_activity(rng, regs, profiles=profiles, lengths=lengths)
            table = activity_table(parts, regs, student_ids=pa.array(people.ids), pres=pres)
            pq.write_table(table, stage / "activity" / f"part-{chunk:05d}.parquet", store_schema=False)
            rows["activity"] = rows.get("activity", 0) + table.num_rows
            access.write(tutees_and_placements(rng, people.frame, chunk=chunk))
            directory.write(directory_frame(np.random.default_rng([config.seed, chunk, 1]), people.ids))
        rows.update(writers.rows)
        rows["access"], rows["directory"] = access.rows, directory.rows
        access.close()
        directory.close()
        # The earlier academic year trains, the later one tests.
        details = {"generator": _describe(config), "rows": rows, "test_from": f"{YEARS[-1]}-08-01"}
        write_manifest(stage, "synthetic", details=details)
    return SynthSummary(rows)


def _describe(config: SynthConfig) -> dict[str, Any]:
    described = asdict(config)
    described["chunk_students"] = CHUNK_STUDENTS
    return described


def _write(path: Path, frame: pd.DataFrame, *, rows: dict[str, int], name: str) -> None:
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, store_schema=False)
    rows[name] = len(frame)


class _Writers:
    """One Parquet writer per streamed table; a row group per chunk."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.rows: dict[str, int] = dict.fromkeys(_SCHEMAS, 0)
        self._open: dict[str, pq.ParquetWriter] = {}

    def write(self, name: str, frame: pd.DataFrame) -> None:
        schema = _SCHEMAS[name]
        if name not in self._open:
            self._open[name] = pq.ParquetWriter(self.folder / f"{name}.parquet", schema, store_schema=False)
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        self._open[name].write_table(table)
        self.rows[name] += table.num_rows

    def __enter__(self) -> _Writers:
        return self

    def __exit__(self, *exc: object) -> None:
        for writer in self._open.values():
            writer.close()


class _CsvWriter:
    """A CSV beside the data (access.csv, directory.csv), streamed."""

    def __init__(self, path: Path, *, header: tuple[str, ...]) -> None:
        self._fh = path.open("w", encoding="utf-8", newline="")
        self._csv = csv.writer(self._fh)
        self._csv.writerow(header)
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        self._csv.writerows(frame.itertuples(index=False, name=None))
        self.rows += len(frame)

    def close(self) -> None:
        self._fh.close()
