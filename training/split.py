"""Temporal split: train on earlier presentations, test on later ones. Never a random split."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd


class SplitError(ValueError):
    """The data cannot be split in time as asked."""


@dataclass(frozen=True)
class TemporalSplit:
    """Which presentations train, which validate the choice of model, and which test."""

    test_from: date
    train: tuple[tuple[str, str], ...]
    validation: tuple[tuple[str, str], ...]  # the latest training presentations
    test: tuple[tuple[str, str], ...]

    def describe(self) -> str:
        """One line for logs and reports."""
        validation = f", of which validation [{_names(self.validation)}]" if self.validation else ""
        test = f"test [{_names(self.test)}] (test from {self.test_from})"
        return f"train [{_names(self.train)}]{validation} -> {test}"


def _names(presentations: tuple[tuple[str, str], ...]) -> str:
    return ", ".join(f"{m} {p}" for m, p in presentations)


def temporal_split(presentations: pd.DataFrame, test_from: date) -> TemporalSplit:
    """Split presentations by start date.

    Presentations starting on or after ``test_from`` are the test set. Among the others, those
    starting on the latest training start date form the validation set used to choose between
    model families, so that choice is temporal too and never looks at the test set.

    Parameters
    ----------
    presentations
        The presentations table.
    test_from
        First start date of the test period.

    Returns
    -------
    TemporalSplit
        The split.

    Raises
    ------
    SplitError
        When either side is empty, with what to change.
    """
    starts = pd.to_datetime(presentations["start_date"]).dt.date
    keys = list(zip(presentations["module_id"], presentations["presentation_id"], strict=True))
    test = tuple(sorted(k for k, s in zip(keys, starts, strict=True) if s >= test_from))
    train_rows = [(k, s) for k, s in zip(keys, starts, strict=True) if s < test_from]
    if not test:
        raise SplitError(
            f"no presentation starts on or after {test_from}: there is no later presentation to "
            "test on. Pass an earlier --test-from, or add a later presentation to the data."
        )
    if not train_rows:
        raise SplitError(
            f"no presentation starts before {test_from}: nothing to train on. Pass a later --test-from."
        )
    train_starts = sorted({s for _, s in train_rows})
    cut = train_starts[-1] if len(train_starts) > 1 else None
    validation = tuple(sorted(k for k, s in train_rows if s == cut)) if cut else ()
    return TemporalSplit(test_from, tuple(sorted(k for k, _ in train_rows)), validation, test)


def default_test_from(presentations: pd.DataFrame, manifest: dict[str, object]) -> date:
    """The split the data folder recommends, else the start of the latest academic year (1 August)."""
    recommended = manifest.get("test_from")
    if isinstance(recommended, str):
        return date.fromisoformat(recommended)
    latest = pd.to_datetime(presentations["start_date"]).max().date()
    year = latest.year if latest.month >= 8 else latest.year - 1
    return date(year, 8, 1)
