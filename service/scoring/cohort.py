"""Which registrations are scored, at which week, and their features."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import pandas as pd

from waymark.models.calendar import data_date, days_into, last_activity_day, running_on
from waymark.models.data import LearningData, attempts_of
from waymark.models.features import build_features

PRESENTATION = ["module_id", "presentation_id"]
#: Where each student sits (for scopes): read from ``students``, stored beside each indicator.
PLACEMENT = ("student_id", "programme_id", "school_id")
REGISTRATION = ["student_id", *PRESENTATION]
#: Registrations that may have left by the data date (SQL over ``registrations``): ``departed`` decides.
MAY_HAVE_LEFT = "unregistration_day IS NOT NULL OR final_result IS NOT NULL"
#: The column ``scored_weeks`` adds: the day of each presentation the data date falls on, when the run
#: scores the latest week the data reaches (NaN for a chosen week: a point in the past).
DATA_DAY = "data_day"


class CohortError(ValueError):
    """The data cannot be scored as asked; the message says why."""


@dataclass(frozen=True, eq=False)
class Cohort:
    """Features of the scored registrations, with where each student sits and what date the data runs to."""

    features: pd.DataFrame  # keys + features
    placement: pd.DataFrame  # student_id -> programme_id, school_id
    as_of: pd.DataFrame  # module_id, presentation_id, week, as_of (ISO date)
    withdrawn: int = 0  # registrations left out: recorded as having left by the data date (``departed``)
    past_week: PastWeek | None = None  # days the data hold past a scored week, not yet scored


@dataclass(frozen=True)
class PastWeek:
    """Days the data hold past the end of the week a run scored, in a later week not yet whole.

    An extract taken on a Friday of a Monday-to-Sunday calendar is scored at the week before, and
    nothing had said that five days more were in it (a reviewer's finding).
    """

    reaches: date  # the data date the weeks were chosen by
    days: int  # the most days past a scored week's last day, over ``presentations``
    ends: date  # the soonest last day of such a later week: the date ``--as-of`` would state
    presentations: tuple[str, ...]  # "module (presentation)" of each with such days


def past_week(chosen: pd.DataFrame) -> PastWeek | None:
    """The days the data reach past each presentation's scored week (``scored_weeks`` without a week).

    Only where the presentation has a later whole week to score: the days after a presentation's last
    whole week are never scored, and a run of ended presentations would otherwise be told to wait for
    a week that never comes. None where no presentation has such days, or nothing dates the data.
    """
    into = pd.to_numeric(chosen[DATA_DAY]).to_numpy(dtype="float64")
    weeks = chosen["week"].to_numpy(dtype="int64")
    past = into - (7 * weeks - 1)
    later = 7 * (weeks + 1) <= chosen["length_days"].to_numpy(dtype="int64")
    found = (past >= 1) & later  # NaN (no data date) compares False
    if not found.any():
        return None
    rows = chosen[found]
    starts = pd.to_datetime(rows["start_date"]).dt.normalize()
    reached = starts + pd.to_timedelta(past[found] + 7 * weeks[found] - 1, unit="D")
    ends = starts + pd.to_timedelta(7 * (weeks[found] + 1) - 1, unit="D")
    return PastWeek(
        reaches=reached.max().date(),
        days=int(past[found].max()),
        ends=ends.min().date(),
        presentations=tuple(f"{r.module_id} ({r.presentation_id})" for r in rows.itertuples()),
    )


def current_presentations(
    presentations: pd.DataFrame,
    folder_manifest: dict[str, object],
    *,
    last_days: Callable[[], pd.DataFrame] | None = None,
    open_keys: Callable[[], pd.DataFrame] | None = None,
    as_of: date | None = None,
) -> pd.DataFrame:
    """The presentations to score (``as_of``: the data date stated for the extract, see ``stated``).

    Those from the folder's recommended test start when its manifest has one (a backtest, the
    demo). Otherwise those running on the data date (``models.calendar``): however the calendar
    staggers its starts, every presentation under way is scored, and one that has not started yet
    (next term's, already registered) or had ended is not. When none of those has an outcome still
    unknown (a folder of past presentations, every outcome known), or no activity dates the data,
    those running on the latest start date: the last intake, staggered starts included.
    ``last_days`` gives ``LAST_DAY_SQL``'s rows over the folder's whole activity and ``open_keys``
    ``OPEN_OUTCOMES_SQL``'s over its registrations (None: taken as some); they are asked only when
    the manifest recommends nothing.
    """
    pres = presentations.assign(start=pd.to_datetime(presentations["start_date"]).dt.date)
    recommended = folder_manifest.get("test_from")
    if recommended:
        chosen = pres[pres["start"] >= date.fromisoformat(str(recommended))]
        return chosen if len(chosen) else pres[pres["start"] == max(pres["start"])]
    day = as_of if as_of is not None else None if last_days is None else data_date(presentations, last_days())
    if day is not None:
        now: pd.DataFrame = pres[running_on(presentations, day).to_numpy()]
        if len(now) and (open_keys is None or _any_of(now, open_keys())):
            return now
    last_intake: pd.DataFrame = pres[running_on(presentations, max(pres["start"])).to_numpy()]
    return last_intake


def _any_of(presentations: pd.DataFrame, keys: pd.DataFrame) -> bool:
    """Whether any of ``presentations`` is among ``keys`` (module_id, presentation_id)."""
    as_text = {"module_id": str, "presentation_id": str}
    return bool(len(presentations[PRESENTATION].astype(as_text).merge(keys.astype(as_text), on=PRESENTATION)))


NOTHING_TO_SCORE = (
    "no registration is in the population at the chosen week (every student has left, registered "
    "later, or has a pass or fail recorded already): nothing to score"
)


FIRST_WEEK = (
    "no presentation chosen has a whole first week on {day} (in its first days, or not begun; week 1 "
    "reads seven days): nothing to score until one has"
)


def activity_cutoff(week: int | None) -> int | None:
    """The first day of the presentations' calendar a run at ``week`` never reads (None: the latest week).

    Features at week w read activity before day 7w (``models.features.population``), and so do the
    run's source coverage and summaries: scoring a chosen week of a presentation that has run further
    (a backtest, a re-run) reads only what a run on that week would have had.
    """
    return None if week is None else 7 * week


def scored_weeks(
    chosen: pd.DataFrame,
    week: int | None,
    *,
    last_day: Callable[[], pd.DataFrame],
    data_day: Callable[[], date | None] | None = None,
    as_of: date | None = None,
    backtest: bool = False,
) -> pd.DataFrame:
    """The week scored per presentation: as asked, or the latest week the data reaches.

    ``as_of``, the data date stated for the extract (``stated``), stands in for the one the
    activity gives when it is set. A chosen week is scored as of its cut-off, but published now: its
    ``DATA_DAY`` is the data date's, so that who has left by then is not listed (``departed``), unless
    the run is a ``backtest`` (a folder whose manifest recommends a test start: the demo, a past
    cohort scored as if at that week).

    ``last_day`` gives ``LAST_DAY_SQL``'s rows (module_id, presentation_id, last_day) over the
    activity the run reads. ``data_day`` gives the folder's data date (``models.calendar.data_date``
    over its whole activity), which a chosen week must reach; None: the date ``last_day``'s rows reach,
    which a run at a chosen week has read only up to that week's cut-off.

    Raises
    ------
    CohortError
        If a chosen week is past the end of a presentation, or past the data date (``_reached``).
    """
    if week is not None:
        too_short = chosen[chosen["length_days"] < 7 * week]
        if len(too_short):
            which = "presentation" if len(too_short) == 1 else "presentations"
            raise CohortError(
                f"week {week} is past the end of {which} "
                + ", ".join(f"{r.module_id} ({r.presentation_id})" for r in too_short.itertuples())
                + ": choose an earlier --week"
            )
        day = as_of if as_of is not None else data_day() if data_day else data_date(chosen, last_day())
        _reached(chosen, week, day=day)
        if day is not None:
            _one_point_in_time(chosen, week, latest=_latest_weeks(chosen, day, last=None))
        now = float("nan") if backtest or day is None else days_into(chosen, day).astype("float64").to_numpy()
        return chosen.assign(week=week, **{DATA_DAY: now})
    last = last_day().astype({"module_id": str, "presentation_id": str})
    keys = chosen.astype({"module_id": str, "presentation_id": str})
    # Each presentation stands where the data date puts it in its own calendar: the extract reaches that
    # date for all of them, so a quiet last day (or no activity yet) does not hold one back a week. The
    # same date a chosen week is held to (``_reached``). Week 1 when nothing dates the data at all.
    day = as_of if as_of is not None else data_date(keys, last.dropna())
    weeks = _latest_weeks(keys, day, last=last)
    on_day = days_into(chosen, day) if day is not None else pd.Series(float("nan"), index=chosen.index)
    scored = chosen.assign(week=weeks.to_numpy(), **{DATA_DAY: on_day.astype("float64").to_numpy()})
    if day is None:
        return scored
    # A presentation in its first days is not scored until its first week is whole: week 1 reads seven
    # days, and a US university's second 8-week session, five days in, was scored as week 1 and published
    # "as of" a day the data never reached, its students reading as quieter than any the model had seen.
    # One not begun at all reads nothing either (a reviewer: it was week 1 before, and now 0).
    begun = weeks.to_numpy() >= 1
    if not begun.any():
        raise CohortError(FIRST_WEEK.format(day=day))
    return scored[begun]


def _latest_weeks(chosen: pd.DataFrame, day: date | None, *, last: pd.DataFrame | None) -> pd.Series:
    """Per presentation: the latest week whose days the data reaches on ``day``, within the presentation.

    Without a data date, the week each one's own last day of activity (``last``'s rows) reaches.
    """
    if day is not None:
        reached = (pd.Timestamp(day) - pd.to_datetime(chosen["start_date"]).dt.normalize()).dt.days
        days = reached.astype("float64").reset_index(drop=True)
    elif last is not None:
        out = chosen.astype({"module_id": str, "presentation_id": str}).merge(
            last, on=PRESENTATION, how="left"
        )
        days = pd.to_numeric(out["last_day"]).astype("float64")
    else:
        days = pd.Series(0.0, index=range(len(chosen)))
    # Week W reads days up to 7W - 1: the latest week whose days the data reaches, within the presentation.
    lengths = chosen["length_days"].astype("float64").reset_index(drop=True)
    reached_days = days.fillna(0).clip(upper=lengths - 1)
    # Week 1 when nothing dates the data; with a data date, 0 for one in its first six days.
    weeks: pd.Series = ((reached_days + 1) // 7).clip(lower=0 if day is not None else 1).astype("int64")
    return weeks


def _one_point_in_time(chosen: pd.DataFrame, week: int, *, latest: pd.Series) -> None:
    """Refuse a chosen week that is the latest of some presentations and an earlier one of others.

    Such a run would publish, as the current picture, some presentations as they stand and others as
    they stood weeks or a year ago (a two-year module's week 7, beside a semester's), indicating
    students who have since left. A week earlier than every presentation's latest (a backtest, a
    re-run) is one point in the past for all of them and is scored.
    """
    behind = latest.to_numpy() > week
    if not behind.any() or behind.all():
        return
    rows = chosen.reset_index(drop=True)
    earlier = ", ".join(
        f"{r.module_id} ({r.presentation_id}), at week {int(latest[i])}"
        for i, r in enumerate(rows.itertuples())
        if behind[i]
    )
    now = ", ".join(
        f"{r.module_id} ({r.presentation_id})" for i, r in enumerate(rows.itertuples()) if not behind[i]
    )
    raise CohortError(
        f"week {week} is where {now} stand, but an earlier week of {earlier}: one run would publish "
        "those as they stood then beside the others as they stand now. Score without --week (each "
        "presentation at the latest week its data reaches)"
    )


#: Days a chosen week may read past the data date: a weekend with no activity anywhere in the folder.
QUIET_DAYS = 2


def _reached(chosen: pd.DataFrame, week: int, *, day: date | None) -> None:
    """Refuse a chosen week whose days the folder's activity does not reach.

    Week W reads activity up to day 7W-1 of each presentation. If the data date (the latest day any
    activity reaches) is earlier, the days after it would read as days without activity: a late
    extract would make every student look less engaged, and no sentence would say why. A folder with
    no activity has no data date (``day`` None) and is not checked.
    """
    if day is None:
        return
    short = chosen[days_into(chosen, day).to_numpy() < 7 * week - 1 - QUIET_DAYS]
    if len(short):
        names = ", ".join(f"{r.module_id} ({r.presentation_id})" for r in short.itertuples())
        raise CohortError(
            f"week {week} reads activity up to day {7 * week - 1} of {names}, but the folder's activity "
            f"reaches only {day.isoformat()}: the days after it would count as days without activity. "
            "Import the latest extract, choose an earlier --week, or score without --week (each "
            "presentation at the latest week its data reaches)"
        )


def stated(as_of: date, *, reached: date | None) -> date:
    """``as_of``, the last day an extract covers as its institution states it, checked against its activity.

    A folder says nothing of the day it was exported, so the data date is otherwise the latest day any
    activity reaches: an extract taken during a break everyone shares (a reading week, a winter
    closure) would be dated before the break and scored a week or two behind. Stated, the date counts
    for every presentation. It cannot be earlier than the activity (``reached``): that is a mistyped date.
    """
    if reached is not None and reached > as_of:
        raise CohortError(
            f"--as-of {as_of.isoformat()} is earlier than the latest day the folder's activity reaches "
            f"({reached.isoformat()}): give the last day the extract covers, or leave --as-of out"
        )
    if as_of > date.today():
        raise CohortError(
            f"--as-of {as_of.isoformat()} is in the future: give the last day the extract covers"
        )
    if reached is not None and (as_of - reached).days > LONGEST_BREAK_DAYS:
        raise CohortError(
            f"--as-of {as_of.isoformat()} is {(as_of - reached).days} days after the latest day the folder's "
            f"activity reaches ({reached.isoformat()}), longer than a break everyone shares in term "
            f"({LONGEST_BREAK_DAYS} days): the days between would read as days without activity for every "
            "student. Check the date, or import the latest extract"
        )
    return as_of


#: The most days a stated data date may lie past the latest activity (``stated``): a winter closure.
LONGEST_BREAK_DAYS = 28


def week_groups(chosen: pd.DataFrame) -> list[pd.DataFrame]:
    """The chosen presentations grouped by their scored week, earliest week first."""
    return [group for _, group in chosen.groupby("week", sort=True)]


def as_of_dates(chosen: pd.DataFrame) -> pd.DataFrame:
    """module_id, presentation_id, week and the date the scored week's data runs to (ISO text)."""
    start = pd.to_datetime(chosen["start_date"])
    cutoff = pd.to_timedelta(7 * chosen["week"] - 1, unit="D")
    return chosen[[*PRESENTATION, "week"]].assign(as_of=(start + cutoff).dt.date.map(date.isoformat))


def _subset(data: LearningData, chosen: pd.DataFrame) -> LearningData:
    """The data of some presentations only (cheap: a presentation-id filter before the exact join)."""

    def keep(frame: pd.DataFrame) -> pd.DataFrame:
        near = frame[frame["presentation_id"].isin(chosen["presentation_id"].unique())]
        return near.merge(chosen[PRESENTATION], on=PRESENTATION, how="inner")

    assessments = keep(data.assessments)
    results = data.assessment_results[
        data.assessment_results["assessment_id"].isin(assessments["assessment_id"])
    ]
    registrations = keep(data.registrations)
    students = data.students[data.students["student_id"].isin(registrations["student_id"])]
    return LearningData(
        presentations=keep(data.presentations),
        students=students,
        registrations=registrations,
        assessments=assessments,
        assessment_results=results,
        activity=keep(data.activity),
        extensions=None
        if data.extensions is None
        else data.extensions[data.extensions["assessment_id"].isin(assessments["assessment_id"])],
        # a student's earlier attempts count whichever presentations are scored together
        attempts=data.attempts
        if data.attempts is not None
        else attempts_of(data.registrations, data.presentations),
    )


def build_cohort(
    data: LearningData,
    week: int | None,
    *,
    data_day: Callable[[], date | None] | None = None,
    as_of: date | None = None,
    backtest: bool = False,
) -> Cohort:
    """Features for every registration in the population of ``data``'s presentations at their week.

    ``data`` holds the presentations to score only (see ``load_learning_data(choose=...)``);
    ``data_day``, the folder's data date, and ``backtest``, as ``scored_weeks`` takes them.
    """
    chosen = scored_weeks(
        data.presentations,
        week,
        last_day=lambda: last_activity_day(data.activity),
        data_day=data_day,
        as_of=as_of,
        backtest=backtest,
    )
    groups = week_groups(chosen)
    whole = len(groups) == 1 and len(chosen) == len(data.presentations)  # none left for its first days
    parts = [
        build_features(data if whole else _subset(data, group), [int(group["week"].iloc[0])])
        for group in groups
    ]
    features = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    features, withdrawn = without_departed(features, departed(data.registrations, chosen, backtest=backtest))
    if features.empty:
        raise CohortError(NOTHING_TO_SCORE)
    placement = data.students.reindex(columns=list(PLACEMENT))
    return Cohort(
        features,
        placement,
        as_of_dates(chosen),
        withdrawn,
        past_week=past_week(chosen) if week is None else None,
    )


def departed(registrations: pd.DataFrame, weeks: pd.DataFrame, *, backtest: bool = False) -> pd.DataFrame:
    """The keys of registrations whose students have left by the data date: not scored.

    Those recorded as withdrawn with no day (the population keeps them in every week, as training
    does, since it cannot say from when they left; by the data date they have gone), and, when the run
    scores a week (``weeks``' ``DATA_DAY``), those whose day of leaving falls between that week's
    cut-off and the data date: the records already say they have gone, and a list made now should not
    send staff to them (a chosen week's list too: a university's re-run of week 6 at week 10 listed 25
    students who had locked their enrolment since, 9 in the top 5 of their class). Only a backtest's
    chosen week (``scored_weeks``) scores who had not left by its cut-off, as a run then would have.

    Outside a ``backtest`` (whose presentations have ended, their outcomes known, and are scored as
    they stood), so are registrations whose outcome is already recorded while their presentation
    runs: an outcome decided before the end (a Saudi university's students barred for absence,
    محروم, on day 40) leaves nothing to estimate, and the barred student had read 12% beside the
    course they had been barred from.
    """
    regs = registrations[[*REGISTRATION, "final_result", "unregistration_day"]].astype(
        {"module_id": str, "presentation_id": str}
    )
    withdrawn = regs["final_result"].eq("withdrawn").fillna(False).to_numpy(dtype=bool)
    undated = withdrawn & regs["unregistration_day"].isna().to_numpy(dtype=bool)
    on = weeks[[*PRESENTATION, DATA_DAY, "length_days"]].astype({"module_id": str, "presentation_id": str})
    placed = regs[PRESENTATION].merge(on, on=PRESENTATION, how="left")
    day = placed[DATA_DAY].to_numpy(dtype="float64")
    # running on the data date: an ended presentation is scored as it stood (a folder of past ones)
    runs = day < pd.to_numeric(placed["length_days"]).astype("float64").to_numpy()
    left = pd.to_numeric(regs["unregistration_day"]).astype("float64").to_numpy() <= day
    # (a withdrawal is decided by its day, above: one recorded ahead of its day is not yet gone)
    decided = regs["final_result"].notna().to_numpy(dtype=bool) & ~withdrawn & runs & (not backtest)
    gone: pd.DataFrame = regs.loc[undated | left | decided, REGISTRATION].astype(str)
    return gone.reset_index(drop=True)


def without_departed(features: pd.DataFrame, gone: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``features`` without the rows of the registrations ``gone`` names (``departed``), and how many went."""
    if features.empty or gone.empty:
        return features, 0
    keys = pd.MultiIndex.from_frame(gone[REGISTRATION])
    left = pd.MultiIndex.from_frame(features[REGISTRATION].astype(str)).isin(keys)
    return features[~left].reset_index(drop=True), int(left.sum())
