"""Students, registrations, outcomes and assessment results of a synthetic chunk.

Latent ability and motivation drive engagement, submissions, scores and outcomes, with noise.
The injected disparity raises one group's chance of not completing *without* changing anything a
model can observe, so a model that never sees protected characteristics misses more of that
group's students who need support: its false negative rate for the group is higher. That is the
known answer fairness tests check for.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from waymark.training.ingest.synthetic_catalogue import (
    MODULES_WITH_B,
    PROGRAMME_WEIGHTS,
    PROGRAMMES,
    YEARS,
    Presentation,
)

EDUCATION = (
    "No formal qualifications",
    "Below A level",
    "A level or equivalent",
    "HE qualification",
    "Postgraduate qualification",
)
PROTECTED_VALUES = {
    "gender": (("female", "male", "other", None), (0.52, 0.45, 0.01, 0.02)),
    "age_band": (("under 21", "21-24", "25-34", "35 and over"), (0.5, 0.2, 0.18, 0.12)),
    "disability": (("Y", "N", None), (0.12, 0.85, 0.03)),
    "ethnicity": (("white", "asian", "black", "mixed", "other", None), (0.68, 0.13, 0.08, 0.05, 0.03, 0.03)),
}
IMD_BANDS = ("Q1 most deprived", "Q2", "Q3", "Q4", "Q5 least deprived")


def sigmoid(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    out: np.ndarray = 1.0 / (1.0 + np.exp(-x))
    return out


@dataclass(frozen=True)
class Disparity:
    """Extra log-odds of not completing for one group, invisible to the features."""

    attribute: str = "disability"
    group: str = "Y"
    log_odds: float = 0.0


@dataclass(frozen=True)
class People:
    """Students of a chunk, as columns."""

    ids: np.ndarray
    frame: pd.DataFrame  # the students table
    protected: pd.DataFrame  # the protected_characteristics table
    ability: np.ndarray
    motivation: np.ndarray
    in_disparity_group: np.ndarray
    no_activity: np.ndarray


def draw_people(
    rng: np.random.Generator, first: int, *, n: int, disparity: Disparity, no_activity_share: float
) -> People:
    """Draw ``n`` students numbered from ``first``."""
    ids = np.array([f"S{i:08d}" for i in range(first + 1, first + n + 1)])
    prog = rng.choice(len(PROGRAMMES), size=n, p=PROGRAMME_WEIGHTS / PROGRAMME_WEIGHTS.sum())
    part_time = rng.random(n) < 0.2
    protected = {k: _choice(rng, vals, probs=probs, n=n) for k, (vals, probs) in PROTECTED_VALUES.items()}
    imd = rng.integers(1, 6, size=n)
    imd_missing = rng.random(n) < 0.04
    bands = np.asarray(IMD_BANDS, dtype=object)[imd - 1]
    bands[imd_missing] = None
    protected["imd_band"] = bands
    edu = np.clip(np.round(rng.normal(2.0 + 0.25 * (imd - 3), 0.9)), 0, 4).astype(int)
    ability = rng.normal(0, 1, n) + 0.2 * (edu - 2)
    # A mild link between deprivation and observable engagement: something for the proxy check.
    motivation = 0.3 * ability + rng.normal(0, 0.95, n) + 0.06 * (imd - 3)
    names = list(PROGRAMMES)
    students = pd.DataFrame(
        {
            "student_id": ids,
            "programme_id": np.asarray(names)[prog],
            "school_id": np.asarray([PROGRAMMES[p][0] for p in names])[prog],
            "year_of_study": rng.choice([1, 2, 3, 4], size=n, p=[0.4, 0.3, 0.25, 0.05]),
            "study_mode": np.where(part_time, "part_time", "full_time"),
            "highest_education": np.asarray(EDUCATION)[edu],
            "num_prev_attempts": rng.choice([0, 1, 2], size=n, p=[0.86, 0.11, 0.03]),
            "credits": np.where(part_time, rng.choice([30, 60, 90], size=n), 120),
        }
    )
    prot = pd.DataFrame({"student_id": ids, **protected})
    group = (prot[disparity.attribute] == disparity.group).to_numpy(dtype=bool)
    return People(
        ids=ids,
        frame=students,
        protected=prot,
        ability=ability,
        motivation=motivation,
        in_disparity_group=group,
        no_activity=rng.random(n) < no_activity_share,
    )


def _choice(
    rng: np.random.Generator, values: tuple[str | None, ...], *, probs: tuple[float, ...], n: int
) -> np.ndarray:
    arr = np.asarray(values, dtype=object)
    return arr[rng.choice(len(values), size=n, p=np.asarray(probs))]


@dataclass(frozen=True)
class Enrolment:
    """Registrations of a chunk with their latent drivers and outcomes."""

    student: np.ndarray
    pres: np.ndarray
    registration_day: np.ndarray
    withdrawn: np.ndarray
    withdraw_day: np.ndarray
    taper_days: np.ndarray
    fails: np.ndarray
    final_result: np.ndarray
    slope: np.ndarray
    engagement: np.ndarray


def draw_enrolment(
    rng: np.random.Generator, people: People, *, pres: list[Presentation], disparity: Disparity
) -> Enrolment:
    """Registrations (core module, sometimes a second one), outcomes and engagement drivers."""
    index = {(p.module_id, p.academic_year, p.presentation_id[-1]): i for i, p in enumerate(pres)}
    n = len(people.ids)
    core = np.asarray([PROGRAMMES[p][1] for p in people.frame["programme_id"]])
    sister = np.asarray([_sister(p) for p in people.frame["programme_id"]])
    second = rng.random(n) < 0.3
    student = np.concatenate([np.arange(n), np.flatnonzero(second)])
    module = np.concatenate([core, sister[second]])
    year = np.asarray(YEARS)[rng.integers(0, len(YEARS), size=n)][student]
    b_term = (rng.random(student.size) < 0.35) & np.isin(module, MODULES_WITH_B)
    pres_idx = np.array(
        [index[(m, int(y), "B" if b else "J")] for m, y, b in zip(module, year, b_term, strict=True)]
    )
    return _outcomes(rng, people, student=student, pres_idx=pres_idx, pres=pres, disparity=disparity)


def _sister(programme: str) -> str:
    school = PROGRAMMES[programme][0]
    others = [m for p, (s, m) in PROGRAMMES.items() if s == school and p != programme]
    return others[0]


def _outcomes(
    rng: np.random.Generator,
    people: People,
    *,
    student: np.ndarray,
    pres_idx: np.ndarray,
    pres: list[Presentation],
    disparity: Disparity,
) -> Enrolment:
    k = student.size
    a, m = people.ability[student], people.motivation[student]
    prev = people.frame["num_prev_attempts"].to_numpy()[student]
    part = (people.frame["study_mode"].to_numpy() == "part_time")[student]
    hidden = disparity.log_odds * people.in_disparity_group[student]
    late = rng.random(k) < 0.08
    reg_day = np.where(late, rng.integers(1, 21, size=k), -rng.integers(3, 120, size=k))
    lengths = np.asarray([p.length_days for p in pres])[pres_idx]
    logit_w = (
        -1.55 - 0.9 * m - 0.35 * a + 0.45 * late + 0.3 * prev + 0.25 * part + hidden + rng.normal(0, 0.6, k)
    )
    withdrawn = rng.random(k) < sigmoid(logit_w)
    early = rng.random(k) < 0.12
    wday = np.where(
        early,
        -rng.integers(1, 40, size=k),
        np.round(rng.beta(1.1, 2.0, size=k) * (lengths - 20)).astype(int) + 5,
    )
    wday = np.maximum(wday, reg_day + 1)
    logit_f = -1.25 - 0.85 * a - 0.55 * m + 0.3 * prev + 0.2 * part + hidden + rng.normal(0, 0.6, k)
    fails = ~withdrawn & (rng.random(k) < sigmoid(logit_f))
    distinction = ~withdrawn & ~fails & (a + 0.3 * m + rng.normal(0, 0.5, k) > 1.25)
    result = np.where(
        withdrawn, "withdrawn", np.where(fails, "fail", np.where(distinction, "distinction", "pass"))
    )
    slope = rng.normal(0, 0.35, k) - 0.9 * fails
    engagement = np.exp(0.55 * m + rng.normal(0, 0.35, k)) * ~people.no_activity[student]
    return Enrolment(
        student=student,
        pres=pres_idx,
        registration_day=reg_day,
        withdrawn=withdrawn,
        withdraw_day=np.where(withdrawn, wday, 10_000),
        taper_days=rng.integers(14, 57, size=k),
        fails=fails,
        final_result=result,
        slope=slope,
        engagement=engagement,
    )


def registrations_frame(people: People, enr: Enrolment, *, pres: list[Presentation]) -> pd.DataFrame:
    """The registrations table of the contract."""
    return pd.DataFrame(
        {
            "student_id": people.ids[enr.student],
            "module_id": [pres[i].module_id for i in enr.pres],
            "presentation_id": [pres[i].presentation_id for i in enr.pres],
            "registration_day": enr.registration_day.astype("int64"),
            "unregistration_day": pd.Series(enr.withdraw_day, dtype="Int64").where(enr.withdrawn),
            "final_result": enr.final_result,
        }
    )


def draw_results(
    rng: np.random.Generator, people: People, *, enr: Enrolment, schedules: list[pd.DataFrame]
) -> pd.DataFrame:
    """Submissions and scores, presentation by presentation (vectorised within each)."""
    frames = []
    for p_idx in np.unique(enr.pres):
        rows = np.flatnonzero(enr.pres == p_idx)
        frames.append(_results_for(rng, people, enr=enr, rows=rows, schedule=schedules[p_idx]))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _results_for(
    rng: np.random.Generator, people: People, *, enr: Enrolment, rows: np.ndarray, schedule: pd.DataFrame
) -> pd.DataFrame:
    due = schedule["due_day"].to_numpy()[None, :]
    exam = (schedule["type"].to_numpy() == "exam")[None, :]
    quiz = (schedule["type"].to_numpy() == "quiz")[None, :]
    shape = (rows.size, due.shape[1])
    s = enr.student[rows]
    a, m = people.ability[s][:, None], people.motivation[s][:, None]
    fails = enr.fails[rows][:, None]
    wday, taper = enr.withdraw_day[rows][:, None], enr.taper_days[rows][:, None]
    in_taper = due > wday - taper
    length = due.max()
    logit = (
        2.3 + 1.0 * m + 0.5 * a - 1.6 * in_taper - 0.8 * fails + 1.5 * enr.slope[rows][:, None] * due / length
    )
    sits_exam = ~enr.withdrawn[rows][:, None] & (~fails | (rng.random((rows.size, 1)) < 0.6))
    submitted = np.where(exam, sits_exam, (rng.random(shape) < sigmoid(logit)) & (due < wday))
    offset = np.clip(np.round(rng.normal(-2.5, 3.5, shape)), -21, 30).astype(int)
    day = np.minimum(np.where(exam, due, due + offset), wday)
    score = np.clip(np.round(58 + 13 * a + 5 * m - 12 * fails + 8 * quiz + rng.normal(0, 11, shape)), 0, 100)
    unmarked = rng.random(shape) < 0.005
    r, c = np.nonzero(submitted)
    return pd.DataFrame(
        {
            "student_id": people.ids[s[r]],
            "assessment_id": schedule["assessment_id"].to_numpy()[c],
            "submitted_day": day[r, c].astype("int64"),
            "score": pd.Series(score[r, c], dtype="Float64").where(~unmarked[r, c]),
        }
    )
