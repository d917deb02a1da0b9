"""Which activity sources each module presentation records, and how sentences name them.

A source is recorded for a module presentation at week W when anybody on it has a row from that source
before the cut-off (7·W), as ``src_<source>_recorded`` says of the built-in sources; the same rule
covers any other source, whose activity falls into the 'other' channel. A family fed only by sources a
module does not record says nothing about its students: that is coverage, never disengagement.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import pandas as pd

from waymark.models.data import source_label
from waymark.models.data.contract import DEFAULT_SOURCE_LABELS
from waymark.models.data.notice import Labels, parts_of, parts_on
from waymark.models.features.catalogue import (
    ALL_SOURCES_FAMILIES,
    CHANNEL_FAMILY,
    SOURCES,
    source_channels,
)
from waymark.models.features.query import Engine, query

PRESENTATION = ["module_id", "presentation_id"]
#: Without the activity table, the 'other' channel's sources can only be named together.
OTHER = "other sources"
#: The first day of each source on each module presentation: one aggregate, on either engine.
FIRST_DAY_SQL = (
    "SELECT module_id, presentation_id, source, min(day) AS first_day FROM activity "
    "WHERE module_id IS NOT NULL AND presentation_id IS NOT NULL AND source IS NOT NULL "
    "GROUP BY ALL"
)

#: How many students have any activity in each week of each module presentation (week b: days 7b to
#: 7b + 6 of its calendar, from its start), on either engine. A week with nobody active has no row;
#: a row counting 0 is not activity (as for the features' active weeks).
ACTIVE_BY_WEEK_SQL = (
    "SELECT module_id, presentation_id, CAST(floor(day / 7) AS BIGINT) AS b, "
    "count(DISTINCT student_id) AS active FROM activity "
    "WHERE module_id IS NOT NULL AND presentation_id IS NOT NULL AND student_id IS NOT NULL AND day >= 0 "
    "AND count > 0 GROUP BY ALL"
)


@dataclass(frozen=True, eq=False)
class SourceCoverage:
    """What the activity says of each module presentation as a whole, and the sources' labels.

    ``first_day``: the first day each source appears on it (``FIRST_DAY_SQL``); ``active_by_week``:
    how many of its students were active in each week (``ACTIVE_BY_WEEK_SQL``), None when not read.
    """

    first_day: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=[*PRESENTATION, "source", "first_day"])
    )
    labels: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SOURCE_LABELS))
    active_by_week: pd.DataFrame | None = None

    @classmethod
    def of(cls, activity: pd.DataFrame, labels: Mapping[str, str]) -> SourceCoverage:
        """From an activity table (student_id, keys, source, day, count) and the folder's labels."""
        return cls.from_first_days(first_days(activity), labels, active=active_by_week(activity))

    @classmethod
    def from_first_days(
        cls, rows: pd.DataFrame, labels: Mapping[str, str], *, active: pd.DataFrame | None = None
    ) -> SourceCoverage:
        """From ``FIRST_DAY_SQL``'s rows and ``ACTIVE_BY_WEEK_SQL``'s (``active``), on any engine."""
        typed = rows.astype({"module_id": str, "presentation_id": str, "source": str, "first_day": "int64"})
        weekly = (
            None
            if active is None
            else active.astype(
                {"module_id": str, "presentation_id": str, "b": "int64", "active": "int64"}
            ).sort_values([*PRESENTATION, "b"], ignore_index=True)
        )
        kept = labels if isinstance(labels, Labels) else dict(labels)
        return cls(typed.sort_values([*PRESENTATION, "source"], ignore_index=True), kept, weekly)

    @cached_property
    def known(self) -> tuple[str, ...]:
        """Every source worth naming in coverage: those the activity holds or the folder labels.

        Built-in sources first, in their order, then the others by name. A built-in source the
        activity never holds and the folder does not label itself is not one this institution
        records, so it is never named, not even as not recorded. With neither (no activity read, no
        labels of the folder's own) every built-in source is named.
        """
        seen = set(self.first_day["source"])
        declared = {s for s, label in self.labels.items() if DEFAULT_SOURCE_LABELS.get(s) != label}
        named = (seen | declared) or set(SOURCES)
        return (*(s for s in SOURCES if s in named), *sorted(named - set(SOURCES)))

    def label(self, source: str) -> str:
        """How a sentence names ``source``."""
        return OTHER if source == OTHER else source_label(self.labels, source)

    def names(self, source: str) -> tuple[str, ...]:
        """How a sentence listing sources names ``source``: the names its label was joined from."""
        return (OTHER,) if source == OTHER else parts_of(self.labels, source)


def first_days(activity: Any, *, engine: Engine | None = None) -> Any:
    """``FIRST_DAY_SQL`` over ``activity`` on ``engine`` (DuckDB over a pandas frame when None)."""
    columns = [*PRESENTATION, "source", "day"]
    narrow = activity[columns] if isinstance(activity, pd.DataFrame) else activity.select(*columns)
    return query(FIRST_DAY_SQL, engine, activity=narrow)


def active_by_week(activity: Any, *, engine: Engine | None = None) -> Any:
    """``ACTIVE_BY_WEEK_SQL`` over ``activity`` on ``engine`` (DuckDB over a pandas frame when None)."""
    columns = ["student_id", *PRESENTATION, "day", "count"]
    narrow = activity[columns] if isinstance(activity, pd.DataFrame) else activity.select(*columns)
    return query(ACTIVE_BY_WEEK_SQL, engine, activity=narrow)


def recorded_sources(features: pd.DataFrame, coverage: SourceCoverage | None) -> list[tuple[str, ...]]:
    """For each row of ``features``, the sources its module presentation records before the cut-off.

    Without ``coverage`` the built-in sources are read from ``src_<source>_recorded`` and any other
    activity (the 'other' channel) is one source called ``OTHER``.
    """
    if coverage is None:
        return _from_features(features)
    order = {s: i for i, s in enumerate(coverage.known)}
    ordered: dict[int, tuple[str, ...]] = {}  # rows of one module and week share one list: sorted once
    out = []
    for found in _seen_before_cutoff(features, coverage.first_day):
        if id(found) not in ordered:
            ordered[id(found)] = tuple(sorted(found, key=lambda s: order.get(s, len(order))))
        out.append(ordered[id(found)])
    return out


#: Per row, each joined source label's parts its module presentation records: ((kind, parts), ...).
KindParts = tuple[tuple[str, tuple[str, ...]], ...]


def kind_parts(features: pd.DataFrame, coverage: SourceCoverage | None) -> list[KindParts]:
    """For each row, the parts of each joined label (``Labels.parts``) its module records before the cut-off.

    A university declared its lecture videos and its attendance app both as attendance: every student
    read "electronic attendance check-ins and online lecture videos watched" of classroom courses with
    no videos, and of online courses with no app. Empty where the module records every part (or the
    labels do not say which module records which: ``Labels.seen``).
    """
    labels = None if coverage is None else coverage.labels
    if not isinstance(labels, Labels) or labels.seen is None or labels.seen.empty:
        return [()] * len(features)
    named: dict[int, KindParts] = {}  # once per module and week, as above
    out = []
    for here in _seen_before_cutoff(features, labels.seen):
        if id(here) not in named:
            found = ((kind, parts_on(labels, here, kind=kind)) for kind in sorted(labels.parts))
            named[id(here)] = tuple((kind, parts) for kind, parts in found if parts is not None)
        out.append(named[id(here)])
    return out


def _seen_before_cutoff(features: pd.DataFrame, first: pd.DataFrame) -> list[list[str]]:
    """For each row, the sources ``first`` (keys, source, first_day) holds on its module before its cut-off.

    Worked out once per module presentation and week; each of its rows gets the same list object.
    """
    by_group: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for module, pres, source, day in first[[*PRESENTATION, "source", "first_day"]].to_numpy():
        by_group.setdefault((str(module), str(pres)), []).append((str(source), int(day)))
    keys = features[[*PRESENTATION, "week"]]
    group = keys.groupby([*PRESENTATION, "week"], sort=False).ngroup().to_numpy()
    found = [
        [s for s, day in by_group.get((str(module), str(pres)), []) if day < 7 * int(week)]
        for module, pres, week in keys.drop_duplicates().itertuples(index=False)
    ]
    return [found[g] for g in group.tolist()]


def _from_features(features: pd.DataFrame) -> list[tuple[str, ...]]:
    flags = pd.DataFrame({s: features[f"src_{s}_recorded"] >= 1 for s in SOURCES})
    group = features.groupby([*PRESENTATION, "week"], sort=False)["ch_other_total"]
    flags[OTHER] = group.transform("max").to_numpy() > 0
    names = list(flags.columns)
    return [tuple(n for n, on in zip(names, row, strict=True) if on) for row in flags.to_numpy()]


def family_sources(family: str, recorded: Sequence[str]) -> tuple[str, ...] | None:
    """The recorded sources that feed ``family``; None when the family is not built from activity."""
    if family in ALL_SOURCES_FAMILIES:
        return tuple(recorded)
    channels = {ch for ch, fam in CHANNEL_FAMILY.items() if fam == family}
    if not channels:
        return None
    return tuple(s for s in recorded if set(_channels(s)) & channels)


def _channels(source: str) -> tuple[str, ...]:
    return ("other",) if source == OTHER else source_channels(source)
