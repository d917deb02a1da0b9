"""A synthetic folder copied with its activity changed from a day on: what a later run would hold."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from tests.contract_folder import write_csv

#: A source declared in both copies that records nothing before the day the copies differ from.
LATE_SOURCE = "placements"


def copied_with_activity(source: Path, dest: Path, *, from_day: int, later: bool) -> Path:
    """``source`` copied to ``dest`` with ``LATE_SOURCE`` declared in its ``sources`` table.

    With ``later`` the copy also holds, from ``from_day`` on, ``LATE_SOURCE`` rows (one for every
    fiftieth existing row, spread over every presentation); without it the copy's activity ends the
    day before ``from_day``. Each is what a run at a cut-off of ``from_day`` may not tell apart.
    """
    shutil.copytree(source, dest)
    write_csv(
        dest / "sources.csv",
        [["source", "label", "notice_given_on"], [LATE_SOURCE, "placement records", "2000-01-01"]],
    )
    whole = pq.read_table(dest / "activity")
    late = pc.greater_equal(whole["day"], from_day)
    if later:
        rows = whole.filter(late)
        rows = rows.take(np.arange(0, rows.num_rows, 50))
        named = pa.array([LATE_SOURCE] * rows.num_rows, whole.schema.field("source").type)
        renamed = rows.set_column(whole.schema.get_field_index("source"), "source", named)
        kept = pa.concat_tables([whole, renamed])
    else:
        kept = whole.filter(pc.invert(late))
    shutil.rmtree(dest / "activity")
    (dest / "activity").mkdir()
    pq.write_table(kept, dest / "activity" / "part-00000.parquet")
    return dest


def without_presentation(folder: Path, presentation_id: str) -> Path:
    """``folder`` with every row of presentations ``presentation_id`` (of any module) left out, in place.

    A folder whose activity ends at one week's cut-off in every presentation is a whole extract only
    when they all started together: with a later intake beside them, the week would be the later
    intake's latest and an earlier one of the rest, which scoring refuses.
    """
    for name in ("presentations", "registrations", "assessments"):
        path = folder / f"{name}.parquet"
        table = pq.read_table(path)
        pq.write_table(table.filter(pc.not_equal(table["presentation_id"], presentation_id)), path)
    kept_assessments = pq.read_table(folder / "assessments.parquet")["assessment_id"]
    results = pq.read_table(folder / "assessment_results.parquet")
    pq.write_table(
        results.filter(pc.is_in(results["assessment_id"], value_set=kept_assessments)),
        folder / "assessment_results.parquet",
    )
    activity = pq.read_table(folder / "activity")
    shutil.rmtree(folder / "activity")
    (folder / "activity").mkdir()
    kept = activity.filter(pc.not_equal(activity["presentation_id"], presentation_id))
    pq.write_table(kept, folder / "activity" / "part-00000.parquet")
    return folder
