"""The fixed teaching catalogue of synthetic cohorts: schools, programmes, modules, calendars."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

SCHOOLS = ("sci", "eng", "hum", "soc")
# programme -> (school, core module, sources its modules record)
PROGRAMMES: dict[str, tuple[str, str]] = {
    "P-BIO": ("sci", "BIO101"),
    "P-CHM": ("sci", "CHM102"),
    "P-CMP": ("eng", "CMP103"),
    "P-MEC": ("eng", "MEC104"),
    "P-HIS": ("hum", "HIS105"),
    "P-LIT": ("hum", "LIT106"),
    "P-ECO": ("soc", "ECO107"),
    "P-PSY": ("soc", "PSY108"),
}
PROGRAMME_WEIGHTS = np.array([0.14, 0.10, 0.18, 0.10, 0.10, 0.10, 0.14, 0.14])
# Which sources each school's modules record (data coverage differs between modules).
SCHOOL_SOURCES = {
    "sci": ("vle", "lecture_capture", "library", "quiz", "attendance"),
    "eng": ("vle", "lecture_capture", "library", "quiz"),
    "hum": ("vle", "library", "attendance"),
    "soc": ("vle", "lecture_capture", "library", "quiz"),
}
MODULES_WITH_B = ("BIO101", "CMP103", "ECO107", "PSY108")
# Academic years: the earlier one trains, the later one tests (temporal evaluation).
YEARS = (2024, 2025)


@dataclass(frozen=True)
class Presentation:
    """One run of a module."""

    module_id: str
    presentation_id: str
    start: date
    length_days: int
    academic_year: int
    school: str


def _monday_on_or_after(d: date) -> date:
    return d + timedelta(days=(7 - d.weekday()) % 7)


def presentations() -> list[Presentation]:
    """All presentations: J (October) in both years, B (February) for some modules."""
    out = []
    for prog, (school, module) in PROGRAMMES.items():
        del prog
        for k, year in enumerate(YEARS):
            start_j = _monday_on_or_after(date(year, 10, 1))
            out.append(Presentation(module, f"{year}J", start_j, 262 + 7 * (k % 2), year, school))
            if module in MODULES_WITH_B:
                start_b = _monday_on_or_after(date(year + 1, 2, 1))
                out.append(Presentation(module, f"{year + 1}B", start_b, 234 + 7 * (k % 2), year, school))
    return out


def presentations_frame(pres: list[Presentation]) -> pd.DataFrame:
    """The presentations table of the contract."""
    return pd.DataFrame(
        {
            "module_id": [p.module_id for p in pres],
            "presentation_id": [p.presentation_id for p in pres],
            "start_date": [p.start.isoformat() for p in pres],
            "length_days": [p.length_days for p in pres],
        }
    )


def assessment_schedule(p: Presentation) -> pd.DataFrame:
    """Coursework, quizzes (where the module has them) and an exam, spread over the presentation."""
    length = p.length_days
    rows: list[tuple[str, str, int, float]] = []
    for k, (frac, weight) in enumerate(zip((0.10, 0.30, 0.50, 0.70), (10.0, 10.0, 15.0, 15.0), strict=True)):
        rows.append((f"C{k + 1}", "coursework", round(frac * length), weight))
    if "quiz" in SCHOOL_SOURCES[p.school]:
        for k, frac in enumerate((0.18, 0.42, 0.62)):
            rows.append((f"Q{k + 1}", "quiz", round(frac * length), 2.0))
    rows.append(("X", "exam", length - 6, 44.0))
    return pd.DataFrame(
        {
            "assessment_id": [f"{p.module_id}-{p.presentation_id}-{r[0]}" for r in rows],
            "module_id": p.module_id,
            "presentation_id": p.presentation_id,
            "type": [r[1] for r in rows],
            "due_day": [r[2] for r in rows],
            "weight": [r[3] for r in rows],
        }
    )
