"""Temporal split: train on earlier presentations, test on later ones. Never a random split.

No calendar is assumed: unless the data folder's manifest or ``--test-from`` says otherwise, the
presentations starting on the latest start date with outcomes known are the test set (going back
until they hold a quarter of a main intake), whatever month or year that is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from waymark.models.data import presentation_name

Key = tuple[str, str]


class SplitError(ValueError):
    """The data cannot be split in time as asked."""


#: Presentations a side of the split printed by ``summary`` names one by one.
SHOWN_PER_SIDE = 40


@dataclass(frozen=True)
class TemporalSplit:
    """Which presentations train, which validate the choice of model, and which test."""

    test_from: date
    train: tuple[Key, ...]
    validation: tuple[Key, ...]  # the latest training presentations (empty: one training start date)
    test: tuple[Key, ...]
    starts: Mapping[Key, date] = field(default_factory=dict, compare=False)
    basis: str = ""  # where test_from came from: --test-from, the manifest, or the data's latest start

    def describe(self) -> str:
        """One line for logs and reports: every presentation on each side, grouped by start date."""
        validation = f", of which validation [{self._by_start(self.validation)}]" if self.validation else ""
        basis = f", {self.basis}" if self.basis else ""
        test = f"test [{self._by_start(self.test)}] (test from {self.test_from}{basis})"
        return f"train [{self._by_start(self.train)}]{validation} -> {test}"

    def summary(self, *, shown: int = SHOWN_PER_SIDE) -> str:
        """``describe``, with a side of more than ``shown`` presentations as a count and its starts.

        A rolling intake's split, one presentation per student's module, had printed as one line of
        30,000 characters (a Finnish college; a medical school's, 9,000).
        """
        validation = (
            f", of which validation [{self._counted(self.validation, shown)}]" if self.validation else ""
        )
        basis = f", {self.basis}" if self.basis else ""
        test = f"test [{self._counted(self.test, shown)}] (test from {self.test_from}{basis})"
        return f"train [{self._counted(self.train, shown)}]{validation} -> {test}"

    def _counted(self, presentations: tuple[Key, ...], shown: int) -> str:
        if len(presentations) <= shown:
            return self._by_start(presentations)
        said = f"{len(presentations):,} presentations"
        if not self.starts:
            return said
        dates = sorted({self.starts[k] for k in presentations})
        return f"{said} starting {dates[0]}" + (f" to {dates[-1]}" if dates[-1] != dates[0] else "")

    def start_rows(self) -> list[list[str]]:
        """Each presentation's start for JSON: ``[module_id, presentation_id, "YYYY-MM-DD"]``.

        Rows rather than "module/presentation" keys, which ids holding slashes would make ambiguous.
        """
        return [[m, p, d.isoformat()] for (m, p), d in sorted(self.starts.items())]

    def _by_start(self, presentations: tuple[Key, ...]) -> str:
        if not self.starts:
            return ", ".join(presentation_name(m, p) for m, p in presentations)
        dates = sorted({self.starts[k] for k in presentations})
        return "; ".join(
            f"{d}: " + ", ".join(presentation_name(m, p) for m, p in presentations if self.starts[m, p] == d)
            for d in dates
        )


def start_dates(presentations: pd.DataFrame) -> dict[Key, date]:
    """Each presentation's start date, by (module_id, presentation_id)."""
    starts = pd.to_datetime(presentations["start_date"]).dt.date
    keys = zip(presentations["module_id"], presentations["presentation_id"], strict=True)
    return dict(zip(keys, starts, strict=True))


def temporal_split(
    presentations: pd.DataFrame,
    test_from: date,
    *,
    basis: str = "",
    sizes: Mapping[Key, int] | None = None,
) -> TemporalSplit:
    """Split presentations by start date.

    Presentations starting on or after ``test_from`` are the test set. Among the others, those
    starting on the latest training start date form the validation set used to choose between
    model families, so that choice is temporal too and never looks at the test set. Given
    ``sizes`` (registrations per presentation), the validation set goes back, as the default test
    set does (``latest_holding``), to the latest training start from which the presentations hold a
    quarter of a main intake: a six-week summer session starting last had been a college's whole
    validation set. When every training presentation starts on the same date there is no
    validation set (the family is then chosen by grouped cross-validation inside the training
    period).

    Parameters
    ----------
    presentations
        The presentations table.
    test_from
        First start date of the test period.
    basis
        Where ``test_from`` came from, for the description.

    Returns
    -------
    TemporalSplit
        The split.

    Raises
    ------
    SplitError
        When either side is empty, with what to change.
    """
    starts = start_dates(presentations)
    test = tuple(sorted(k for k, s in starts.items() if s >= test_from))
    train = tuple(sorted(k for k, s in starts.items() if s < test_from))
    if not test:
        raise SplitError(
            f"no presentation starts on or after {test_from}: there is no later presentation to "
            f"test on ({_dates_held(starts)}). Pass an earlier --test-from, or leave it out to test on the "
            "presentations that start last."
        )
    if not train:
        raise SplitError(
            f"no presentation starts before {test_from}: nothing to train on ({_dates_held(starts)}). "
            "Pass a later --test-from, or leave it out to test on the presentations that start last."
        )
    train_starts = sorted({starts[k] for k in train})
    validation: tuple[Key, ...] = ()
    if len(train_starts) > 1:
        on_date = {d: sum((sizes or {}).get(k, 0) for k in train if starts[k] == d) for d in train_starts}
        first = latest_holding(on_date)[0]
        validation = tuple(k for k in train if starts[k] >= first)
    return TemporalSplit(test_from, train, validation, test, starts=starts, basis=basis)


def _dates_held(starts: Mapping[Key, date]) -> str:
    dates = sorted(set(starts.values()))
    shown = ", ".join(str(d) for d in dates[:12]) + (", ..." if len(dates) > 12 else "")
    return f"the presentations start on {shown}"


#: The default test set holds at least this share of a typical intake's registrations (the median over
#: start dates): the presentations starting on the latest date alone can be one small summer module
#: (another institution's were 27 students beside intakes of hundreds).
MIN_TEST_SHARE = 0.25


def default_test_from(
    presentations: pd.DataFrame, manifest: Mapping[str, object], *, sizes: Mapping[Key, int] | None = None
) -> tuple[date, str]:
    """The first test start date when none is given, and where it came from.

    The data folder's recommendation (its manifest's ``test_from``) when it has one; else the latest
    start date in the data, so the presentations that start last are the test set. Given ``sizes``
    (registrations per presentation), the latest start date from which the presentations starting
    then or later hold at least ``MIN_TEST_SHARE`` of a main intake's registrations (``_main_intake``),
    always leaving an earlier date to train on.

    Raises
    ------
    SplitError
        When every presentation starts on the same date: nothing is later than anything else.
    """
    recommended = manifest.get("test_from")
    if isinstance(recommended, str):
        return date.fromisoformat(recommended), "recommended by the data folder's manifest"
    starts = start_dates(presentations)
    dates = sorted(set(starts.values()))
    if len(dates) < 2:
        raise SplitError(
            "a temporal test needs presentations starting on at least two dates: every presentation "
            f"in the data starts on {dates[0] if dates else 'no date'}, so there is no later cohort to "
            "test the model on. Add the presentations of an earlier or a later intake (with their "
            "outcomes) to the data folder, then train again."
        )
    on_date = {d: sum((sizes or {}).get(k, 0) for k, s in starts.items() if s == d) for d in dates}
    day, held, typical = latest_holding(on_date)
    if day == dates[-1]:
        return day, "the latest start date of a presentation whose outcomes are known"
    if held >= MIN_TEST_SHARE * typical:
        return day, (
            f"the latest start date from which the presentations hold at least a quarter of a main "
            f"intake's registrations ({held:,}, against {typical:,.0f}, the intake of a typical "
            f"registration; those starting on the latest, {dates[-1]}, alone hold "
            f"{on_date[dates[-1]]:,})"
        )
    return day, (
        "the second start date in the data: the later starts together hold less than a quarter of a "
        "main intake's registrations, and the earliest is kept to train on"
    )


#: Days of start dates counted as a year of intakes, ending on the latest start date.
YEAR_DAYS = 365


def few_of_a_year(split: TemporalSplit, sizes: Mapping[Key, int]) -> str | None:
    """A note when the test presentations hold under a quarter of a year's registrations, else None.

    With monthly rolling starts a main intake is one month, and the default test set was one month
    of an online university's intakes (330 registrations of the 1,660 of a year): every fairness
    comparison was withheld, and six months confirmed four characteristics. The default is kept (with
    one or two intakes a year, going back further would train on older intakes); the note says how
    many a year holds and what to pass.
    """
    last = max(split.starts.values())
    year = sum(n for k, n in sizes.items() if k in split.starts and (last - split.starts[k]).days < YEAR_DAYS)
    held = sum(sizes.get(k, 0) for k in split.test)
    if year <= 0 or held >= MIN_TEST_SHARE * year:
        return None
    return (
        f"the test presentations hold {held:,} registrations, {held / year:.0%} of the {year:,} starting "
        f"in the year to {last}. With frequent start dates (monthly or rolling intakes), an earlier "
        "--test-from holds several intakes, and gives the fairness audit more students in each group "
        "(docs/training.md, Temporal evaluation)"
    )


#: The share of the test presentations' students also in training above which the test is said to be of
#: the same students (a university's later years share some; a semester after the first, nearly all).
SAME_STUDENTS_SHARE = 0.9


def same_students(split: TemporalSplit, registrations: pd.DataFrame) -> str | None:
    """A note when nearly every student of the test presentations is in the training ones, else None.

    A French university's one ended year, split by default into its first semester for training and
    its second for testing: all 1,240 test students had been trained on, and the model card said the
    figures were measured on a later cohort. They are of later presentations of the same people,
    which says less of how the model does for students it has never seen.
    """
    keys = pd.MultiIndex.from_frame(registrations[["module_id", "presentation_id"]].astype(str))
    trained = set(registrations.loc[keys.isin(list(split.train)), "student_id"].astype(str))
    tested = set(registrations.loc[keys.isin(list(split.test)), "student_id"].astype(str))
    if not tested or len(tested & trained) < SAME_STUDENTS_SHARE * len(tested):
        return None
    return (
        f"{len(tested & trained):,} of the test presentations' {len(tested):,} students "
        f"({len(tested & trained) / len(tested):.0%}) are in the training presentations too: the test "
        "figures are of later presentations of the same students, not of a later cohort, and say less of "
        "how the model does for students it has never seen. Test on a later intake when the data holds one "
        "(--test-from)"
    )


def latest_holding(on_date: Mapping[date, int]) -> tuple[date, int, float]:
    """The latest start date from which the presentations hold a quarter of a main intake.

    Of two or more start dates (registrations on each), the latest such that it and the later ones
    hold at least ``MIN_TEST_SHARE`` of a main intake's registrations (``_main_intake``), never the
    earliest (something must come before); the second when none does. Without sizes (all 0), the
    latest. Returns that date, the registrations from it on, and the main intake's.
    """
    dates = sorted(on_date)
    typical = _main_intake(list(on_date.values()))
    if typical <= 0:
        return dates[-1], 0, typical
    held = 0
    for day in reversed(dates[1:]):
        held += on_date[day]
        if held >= MIN_TEST_SHARE * typical:
            return day, held, typical
    return dates[1], held, typical


def _main_intake(sizes: list[int]) -> float:
    """The registrations of the start date a typical registration starts on (a weighted median).

    Not the median over start dates: at an open-entry college most start dates are late-start
    sections of a few students each, and a quarter of their median was reached by the last two
    of them, which became the whole test set. Weighted by registrations, the main intakes count.
    """
    ordered = sorted(sizes)
    total = sum(ordered)
    if total <= 0:
        return 0.0
    seen = 0
    for size in ordered:
        seen += size
        if 2 * seen >= total:
            return float(size)
    return float(ordered[-1])
