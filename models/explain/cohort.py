"""Explained indicators for a whole cohort: estimate, interval, factors, strengths, what could change."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from waymark.models.bundle import ModelBundle
from waymark.models.contributions import Contributions, contributions
from waymark.models.data import ensure_feature_safe
from waymark.models.explain.batch_sentences import (
    Taken,
    compares_own_rates,
    describe_all,
    describe_cohort_all,
    from_phrase,
    own_weeks,
    whole,
)
from waymark.models.explain.change import STEPS, smallest_change
from waymark.models.explain.coverage import (
    KindParts,
    SourceCoverage,
    family_sources,
    kind_parts,
    recorded_sources,
)
from waymark.models.explain.families import CONTEXT_FAMILIES, FACTOR_FAMILIES, family_columns, family_sums
from waymark.models.explain.sentences import (
    COHORT_RATE,
    COMPARED_MARKS,
    QUIET_SHARE,
    QUIET_TYPICAL_SINCE,
    QUIET_WEEKS,
    SAME_RATE,
    counted_channels,
    tenths,
)
from waymark.models.explain.typical import (
    NEARLY_ALL,
    Quiet,
    Standing,
    cohort_standing,
    in_small_cohort,
    quiet_stretch,
    quiet_weeks,
)
from waymark.models.features.catalogue import FAMILIES, KEYS, MIN_COHORT
from waymark.models.marks import PERCENT, MarkScale
from waymark.models.uncertainty import intervals

THRESHOLD = 0.05  # contributions (log-odds) smaller than this are not worth a sentence
TOP = 3
#: Not a feature: the mark a student's average mark is weighed against to decide which side of an
#: explanation it may be said on (``typical_marks``).
TYPICAL_MARK = "cohort_typical_mark"
#: The middle of the mark scale (scores are 0 to 100 by the data contract): what a mark is weighed
#: against where too few of the cohort, and of the whole run, have one to compare with. Not a pass
#: mark: institutions differ.
MIDDLE_MARK = 50.0
#: The cohort comparison's middle ("more activity than about 50% of students"): strengths at or
#: above it, factors at or below it (``_sides``).
MIDDLE_RANK = 50


@dataclass(frozen=True, eq=False)
class ExplainedCohort:
    """One row per student with everything an indicator record holds."""

    indicators: pd.DataFrame
    contributions: Contributions


def percent(p: float) -> str:
    """An estimate in words: never "100%" or "0%", which would read as a certainty, not an estimate."""
    shown = round(100 * p)
    return "over 99%" if shown >= 100 else "under 1%" if shown <= 0 else f"{shown}%"


def explain_cohort(
    bundle: ModelBundle,
    features: pd.DataFrame,
    *,
    sources: SourceCoverage | None = None,
    marks: MarkScale | None = None,
    progress: Callable[[str], None] | None = None,
) -> ExplainedCohort:
    """Score and explain every row of ``features`` (keys plus the model's features).

    Parameters
    ----------
    bundle
        The model.
    features
        Keys plus the model's features.
    sources
        Which sources each module presentation records and their labels (``SourceCoverage.of``);
        without it, the built-in sources' flags in ``features`` and their built-in names.
    marks
        The scale marks are said on (``WAYMARK_MARK_SCALE``); 0 to 100 without it.
    progress
        Told when the scores and contributions are done and factors, sentences and what could
        change begin (the scoring job's stages).

    Returns
    -------
    ExplainedCohort
        ``indicators`` has the keys, ``probability``, ``lower``, ``upper``, ``factors``,
        ``strengths``, ``context`` (lists of dicts), ``what_could_change`` (dict or None) and
        ``coverage`` and ``engagement`` (dicts); ``contributions`` holds the exact contributions behind them.
    """
    features = ensure_feature_safe(features, "features to score").reset_index(drop=True)
    x = bundle.matrix(features)
    probability = bundle.probability(x)
    contrib = contributions(bundle, x)
    if progress is not None:
        progress(f"choosing factors and wording sentences for {len(features):,} registrations")
    cols = family_columns(bundle.feature_names)
    sums = family_sums(contrib.values, cols)
    group = features.groupby(["module_id", "presentation_id", "week"], sort=False).ngroup().to_numpy()
    quiet = _quiet(features, group)
    values = _Values(
        features.assign(
            **{
                COMPARED_MARKS: compared_marks(features, group),
                TYPICAL_MARK: typical_marks(features, group),
                QUIET_SHARE: quiet.share,
                QUIET_TYPICAL_SINCE: quiet.typical_since,
                QUIET_WEEKS: _quiet_weeks(features, group=group, sources=sources),
                COHORT_RATE: cohort_rates(features, group),
            }
        ),
        marks=marks or PERCENT,
    )
    said = _Said(
        sources or SourceCoverage(), recorded_sources(features, sources), kind_parts(features, sources)
    )
    standing = cohort_standing(x, group=group, columns=cols, quiet=quiet)
    own = family_sums(contrib.values, cols, own={f: standing[f].own for f in cols})
    factors, strengths, context = _statements(
        values, sums, own=own, standing=standing, said=said, group=group
    )
    # In a quiet stretch a typical peer is quiet too: the only change recent activity could show is the
    # number of days since the student last worked, which is past and not something to act on.
    untried = {"recent_activity": quiet.quiet}
    lower, upper = intervals(bundle.uncertainty, probability)
    out = features[list(KEYS)].copy()
    out["probability"], out["lower"], out["upper"] = probability, lower, upper
    changes = _changes(
        bundle,
        x,
        probability=probability,
        group=group,
        values=values,
        sums=sums,
        cols=cols,
        factors=factors,
        said=said,
        untried=untried,
    )
    out = out.assign(
        factors=_objects(factors),
        strengths=_objects(strengths),
        context=_objects(context),
        what_could_change=_objects(changes),
        coverage=_objects(_coverage(values, said)),
        engagement=_objects(_engagement(values)),
    )
    return ExplainedCohort(out, contrib)


def _quiet_weeks(features: pd.DataFrame, *, group: np.ndarray, sources: SourceCoverage | None) -> np.ndarray:
    """``typical.quiet_weeks`` from the activity's weekly counts; none known without them (0 each)."""
    if sources is None or sources.active_by_week is None:
        return np.zeros(len(features), dtype=np.int64)
    return quiet_weeks(features, group=group, active=sources.active_by_week)


def compared_marks(features: pd.DataFrame, group: np.ndarray) -> np.ndarray:
    """1.0 where a student's marks were compared with at least ``MIN_COHORT`` students' of their cohort.

    ``asm_score_pct`` is neutral below that (``models.features.assessments``), and a sentence then
    says the mark without comparing it (``sentences.COMPARED_MARKS``).
    """
    if "asm_has_score" not in features.columns:
        return np.zeros(len(features))
    marked = np.bincount(group, weights=features["asm_has_score"].to_numpy(dtype=np.float64) >= 1)
    return np.asarray(marked[group] >= MIN_COHORT, dtype=np.float64)


def typical_marks(features: pd.DataFrame, group: np.ndarray) -> np.ndarray:
    """Per row: its cohort's typical mark, the median of the average marks of those with one.

    Where fewer than ``MIN_COHORT`` of the cohort have a mark (``compared_marks``), marks are not
    compared with it (the median would be one of a few named students' own): the median of every
    average mark in the run stands in, where at least ``MIN_COHORT`` students have one, else the middle
    of the mark scale, ``MIDDLE_MARK``. A Philippine university's grades, converted to percentages from
    65 (a 5.00, a fail) up, were never below 50, so a failed mid-term in a small section was never a
    concern.
    """
    if not {"asm_has_score", "asm_score_mean"} <= set(features.columns) or not len(features):
        return np.full(len(features), MIDDLE_MARK)
    marked = features["asm_has_score"].to_numpy(dtype=np.float64) >= 1
    marks = np.where(marked, features["asm_score_mean"].to_numpy(dtype=np.float64), np.nan)
    run_wide = float(np.nanmedian(marks)) if marked.sum() >= MIN_COHORT else MIDDLE_MARK
    middle = np.full(len(features), run_wide)
    median, _ = _cohort_median(marks, group)
    typical: np.ndarray = np.where(compared_marks(features, group) >= 1, median, middle)
    return typical


def cohort_rates(features: pd.DataFrame, group: np.ndarray) -> np.ndarray:
    """Per row: its cohort's median ratio of recent activity to each student's own earlier weekly rate.

    Over the students the ratio is said for (``compares_own_rates``, with earlier activity); NaN
    where fewer than ``MIN_COHORT`` of the cohort have one (the median would be a few named
    students' own) or the ratio is not a feature.
    """
    nothing = np.full(len(features), np.nan)
    if not {"act_recent_vs_own", "act_any", "weeks_elapsed"} <= set(features.columns) or not len(features):
        return nothing
    timing = [c for c in ("weeks_elapsed", "reg_day") if c in features.columns]
    said = (features["act_any"].to_numpy(dtype=np.float64) >= 1) & compares_own_rates(
        {c: features[c].to_numpy(dtype=np.float64) for c in timing}
    )
    ratios = np.where(said, features["act_recent_vs_own"].to_numpy(dtype=np.float64), np.nan)
    median, counted = _cohort_median(ratios, group)
    out: np.ndarray = np.where(counted >= MIN_COHORT, median, np.nan)
    return out


def _typical_count(values: _Values, family: str, *, group: np.ndarray) -> np.ndarray:
    """Per row: the median count of its cohort for a family counted by channel (NaN if not, or too few)."""
    if not counted_channels(family):
        return np.full(values.rows, np.nan)
    median, counted = _cohort_median(_channel_total(values, family), group)
    return np.where(counted >= MIN_COHORT, np.round(median), np.nan)


def _channel_total(values: _Values, family: str) -> np.ndarray:
    """Per row: the count a family counted by channel says, summed over its channels (as its sentence)."""
    total: np.ndarray = np.sum(
        [np.round(np.expm1(values[f"ch_{ch}_total"])) for ch in counted_channels(family)], axis=0
    )
    return total


def _cohort_median(values: np.ndarray, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the median of its cohort's values (NaN left out), and how many values it was taken over."""
    by_group = pd.Series(values).groupby(group)
    size = len(np.bincount(group))
    median = by_group.median().reindex(range(size)).to_numpy()
    counted = by_group.count().reindex(range(size)).fillna(0).to_numpy()
    return median[group], counted[group]


def _quiet(features: pd.DataFrame, group: np.ndarray) -> Quiet:
    """The rows' quiet stretches (``typical.quiet_stretch``); none where recent activity is not a feature."""
    if not {"act_last14", "act_any", "act_days_since_last"} <= set(features.columns):
        return Quiet.none(len(features))
    return quiet_stretch(
        last14=features["act_last14"].to_numpy(dtype=np.float64),
        ever=features["act_any"].to_numpy(dtype=np.float64) >= 1,
        since=features["act_days_since_last"].to_numpy(dtype=np.float64),
        group=group,
    )


class _Values(Mapping[str, np.ndarray]):
    """The features of every row as float64 columns, each read once when first asked for."""

    def __init__(self, features: pd.DataFrame, *, marks: MarkScale = PERCENT) -> None:
        self._features = features
        #: the scale marks are said on (``WAYMARK_MARK_SCALE``)
        self.marks = marks
        self._columns: dict[str, np.ndarray] = {}
        self.rows = len(features)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._columns:
            self._columns[name] = self._features[name].to_numpy(dtype=np.float64)
        return self._columns[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._features.columns)

    def __len__(self) -> int:
        return len(self._features.columns)

    def at(self, rows: np.ndarray) -> Taken:
        """The columns of ``rows`` only."""
        return Taken(self, rows)


def _objects(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


@dataclass(frozen=True, eq=False)
class _Said:
    """What each row's module records, and the labels each family's sentence names (cached per module)."""

    sources: SourceCoverage
    recorded: list[tuple[str, ...]]
    #: per row, the parts of a joined label its module records (``coverage.kind_parts``); none: all
    parts: list[KindParts] | None = None
    _labels: dict[tuple[tuple[str, ...], KindParts, str], tuple[str, ...] | None] = field(
        default_factory=dict
    )
    _coverage: dict[tuple[tuple[str, ...], KindParts], tuple[list[str], list[str]]] = field(
        default_factory=dict
    )

    def _parts(self, i: int) -> KindParts:
        return self.parts[i] if self.parts else ()

    def names(self, i: int, source: str) -> tuple[str, ...]:
        """How row ``i``'s sentences name ``source``: by the parts of its label its module records."""
        return dict(self._parts(i)).get(source) or self.sources.names(source)

    def label(self, i: int, source: str) -> str:
        """How row ``i``'s coverage names ``source`` (``names``, joined)."""
        here = dict(self._parts(i)).get(source)
        return " and ".join(here) if here else self.sources.label(source)

    def labels(self, i: int, family: str) -> tuple[str, ...] | None:
        """Labels of the recorded sources ``family`` is built from; None when it is not built from any.

        An empty tuple means the module records none of its sources: the family says nothing.
        """
        key = (self.recorded[i], self._parts(i), family)
        if key not in self._labels:
            fed = family_sources(family, self.recorded[i])
            self._labels[key] = (
                None if fed is None else tuple(dict.fromkeys(n for s in fed for n in self.names(i, s)))
            )
        return self._labels[key]

    @cached_property
    def codes(self) -> tuple[np.ndarray, list[tuple[str, ...]]]:
        """A code per row for the sources its module records (and the parts named), and each code's row."""
        kinds: dict[tuple[tuple[str, ...], KindParts], int] = {}
        code = np.fromiter(
            (kinds.setdefault((r, self._parts(i)), len(kinds)) for i, r in enumerate(self.recorded)),
            np.int64,
            len(self.recorded),
        )
        return code, [r for r, _ in kinds]

    def phrases(self, family: str) -> tuple[np.ndarray, np.ndarray]:
        """Per row: whether ``family`` says nothing (none of its sources recorded), and its from-phrase."""
        code, kinds = self.codes
        first = [int(np.argmax(code == c)) for c in range(len(kinds))]
        labels = [self.labels(i, family) for i in first]
        silent = np.array([named == () for named in labels], dtype=bool)
        phrase = np.array([from_phrase(named or ()) for named in labels], dtype=object)
        return silent[code], phrase[code]

    def coverage(self, i: int) -> tuple[list[str], list[str]]:
        """Labels of the sources recorded for row ``i``'s module, and of those that are not."""
        recorded = self.recorded[i]
        key = (recorded, self._parts(i))
        if key not in self._coverage:
            missing = [s for s in self.sources.known if s not in recorded]
            self._coverage[key] = (
                [self.label(i, s) for s in recorded],
                [self.sources.label(s) for s in missing],
            )
        return self._coverage[key]


def _statements(
    values: _Values,
    sums: dict[str, np.ndarray],
    *,
    own: dict[str, np.ndarray],
    standing: dict[str, Standing],
    said: _Said,
    group: np.ndarray,
) -> tuple[list[list[dict[str, Any]]], list[list[dict[str, Any]]], list[list[dict[str, Any]]]]:
    """Each row's factors, strengths and context, decided and worded a family at a time for all rows.

    A family says nothing when it is fed only by sources the module does not record. Where the row
    stands apart from its cohort, its own contribution (``own``: without the features whose value
    nearly all its cohort share) decides, when it moves the estimate the same way as the whole
    family's: at least ``THRESHOLD``, an actionable family is a candidate
    factor (raising) or strength (lowering), the ``TOP`` largest each, ties in family order; a fixed
    one is context. A family the row shares with nearly all its cohort, whose contribution (``sums``)
    is at least ``THRESHOLD``, is a cohort-wide fact, said once (and where the row is apart in a
    family that is shared, a quiet stretch, the fact is said unless the row's own sentence is).
    Where a family moves nearly every estimate of a cohort the same way, only what it adds beyond the
    cohort's typical contribution is the row's (``_beyond_cohort``).
    """
    described = [f for f in (*FACTOR_FAMILIES, *CONTEXT_FAMILIES) if f in sums]
    n = values.rows
    value = np.column_stack([own[f] for f in described]) if described else np.zeros((n, 0))
    whole_family = np.column_stack([sums[f] for f in described]) if described else value
    phrase: dict[str, np.ndarray] = {}
    heard = np.zeros((n, len(described)), dtype=bool)
    for j, f in enumerate(described):
        silent, phrase[f] = said.phrases(f)
        heard[:, j] = ~silent
    # A family's own part says which way it moves this student's estimate only where the whole family
    # agrees: otherwise what the student shares with the cohort outweighs it, and it is not theirs to say.
    speaks = heard & ~(np.abs(value) < THRESHOLD) & (np.sign(value) == np.sign(whole_family))
    apart = np.column_stack([standing[f].apart for f in described]) if described else speaks
    actionable = np.array([FAMILIES[f].actionable for f in described], dtype=bool)
    own_part = _beyond_cohort(value, group)
    candidate = speaks & apart & actionable & own_part
    # A strength is something the student did: no count of none ("0 uses of study resources so far"),
    # no mark below the cohort's typical one ("Average mark on marked work so far: 19."), and no mark
    # above it is a factor (``_sides``).
    sides = [_sides(values, f, group=group) for f in described]
    raises = np.column_stack([r for r, _ in sides]) if described else speaks
    lowers = np.column_stack([w for _, w in sides]) if described else speaks
    # The cohort's, not the row's: said as context, on a side its words allow as a factor's are ("active
    # in 5 of the 5 weeks" was said to move a German university's estimates up).
    alike = speaks & apart & actionable & ~own_part & np.where(value > 0, raises, lowers)
    up = _top(np.where(candidate & raises & (value > 0), -value, np.inf))
    down = _top(np.where(candidate & lowers & (value < 0), value, np.inf))
    fixed = speaks & apart & ~actionable
    chosen = fixed.copy()
    for top in (up, down):
        for k in range(top.shape[1]):
            rows = np.flatnonzero(top[:, k] >= 0)
            chosen[rows, top[rows, k]] = True
    # A row apart in a shared family (a quiet stretch it is quiet in) hears the fact unless it says its own.
    shared = np.column_stack([standing[f].shared for f in described]) if described else value
    facts = heard & ~(np.abs(whole_family) < THRESHOLD) & (shared > 0) & ~chosen & ~alike
    sentence = [
        _sentences(values, f, rows=np.flatnonzero(chosen[:, j]), phrase=phrase[f])
        for j, f in enumerate(described)
    ]
    factors = _ranked(up, described, value=value, sentence=sentence)
    strengths = _ranked(down, described, value=value, sentence=sentence)
    context: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for j, f in enumerate(described):
        for i in np.flatnonzero(fixed[:, j]).tolist():
            context[i].append(_context(f, sentence[j][i]))
        rows = np.flatnonzero(alike[:, j])
        briefs = (
            describe_all(f, values.at(rows), src=phrase[f][rows].tolist(), marks=values.marks)[0]
            if rows.size
            else []
        )
        typical = _typical_count(values, f, group=group) if rows.size else np.zeros(0)
        for i, brief in zip(rows.tolist(), briefs, strict=True):
            way = "up" if value[i, j] > 0 else "down"
            # Beside the module's typical count, the student's own stays readable: a Turkish university's
            # holiday week moved every attendance estimate up alike, and a student three sessions from
            # failing on attendance read only "3 attendances so far, 0 in the last 14 days".
            beside = (
                ""
                if np.isnan(typical[i])
                else f"; a typical student on this module: {typical[i]:,.0f} so far"
            )
            context[i].append(
                _context(
                    f,
                    f"Not listed as the student's own: it moves nearly every estimate on this "
                    f"module {way} alike, by about as much whatever each student did ({brief}{beside}).",
                )
            )
    cohort_facts: dict[int, list[dict[str, Any]]] = {}
    for j, f in enumerate(described):
        rows = np.flatnonzero(facts[:, j])
        share = standing[f].shared[rows]
        texts = describe_cohort_all(
            f, values.at(rows), src=phrase[f][rows].tolist(), share=share, marks=values.marks
        )
        for i, text in zip(rows.tolist(), texts, strict=True):
            cohort_facts.setdefault(i, []).append(_context(f, text))
    for i, found in cohort_facts.items():
        context[i] += _once(found)
    return factors, strengths, context


def _beyond_cohort(value: np.ndarray, group: np.ndarray) -> np.ndarray:
    """Per row and family: whether the contribution is the row's own rather than its cohort's.

    A contribution weighs the student against the students the model was trained on. Where a family
    moves at least ``NEARLY_ALL`` of a cohort's estimates the same way (a medical school's clinical
    placements, where everybody practised far more than the pre-clinical years the model also learned
    from: "1031 practice quiz actions so far" raised 29 of 30 students' estimates on every placement),
    it speaks of the cohort, not of each student: there a row's family is its own only where it moves
    the estimate at least ``THRESHOLD`` further than the cohort's median contribution does, the same
    way. Elsewhere, and in a cohort of fewer than ``MIN_COHORT``, every contribution is the row's. A
    family left out so is said as context, with the way it moves the cohort's estimates.
    """
    if not value.size:
        return np.ones(value.shape, dtype=bool)
    frame = pd.DataFrame(value)
    size = len(np.bincount(group))
    median = frame.groupby(group).median().reindex(range(size)).to_numpy()[group]
    raised = frame.gt(0).groupby(group).mean().reindex(range(size)).to_numpy()[group]
    lowered = frame.lt(0).groupby(group).mean().reindex(range(size)).to_numpy()[group]
    one_way = np.maximum(raised, lowered) >= NEARLY_ALL
    beyond = np.sign(value) * (value - median) >= THRESHOLD
    out: np.ndarray = in_small_cohort(group)[:, None] | ~one_way | beyond
    return out


def _sides(values: _Values, family: str, *, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether ``family`` may be said as a factor, and whether as a strength.

    A model's contribution can fall on the side the sentence's own words contradict: "0 uses of study
    resources so far", "in 0 of the 8 weeks" or "the 1 assessment due so far was not submitted" read
    as in the student's favour, or "activity in 8 of the 8 weeks" and "more activity than about 70% of
    students" as moving the estimate up. So each family is a strength only where its words say
    something the student did, and a factor only where they leave room for less than that, judged on
    the values the sentence says (rounded as it rounds them):

    - a family counted by channel: a strength only where the student has any of what it counts and,
      in a cohort of at least ``MIN_COHORT``, at least the cohort's median count, a factor only at most
      that median (a count as a concern reads as too little: a medical school's students with more
      practice quiz actions than most of their placement read theirs as raising the estimate);
    - regularity: a strength only with at least half the weeks the module was not quiet in active
      (a university's student "active in 5 of the 13 weeks" was listed as a strength at 97%) and, in a
      cohort of at least ``MIN_COHORT``, no more weeks without activity than the cohort's median (an
      Israeli university's student back from reserve duty read "in 6 of the 11 weeks" as a strength
      where most of the module were active in 10), a factor
      only with some week without and, in a cohort of at least ``MIN_COHORT``, more weeks without
      activity than the cohort's median (a college's students "active in 20 of the 23 weeks" read the
      three weeks of a Christmas break most of their module also spent away as raising the estimate);
    - recent activity: a strength only with activity in the last 14 days not said to be below the
      student's own earlier rate, nor above it by no more than the cohort's own typical rise, a factor
      only where it is not said to be above it, nor to be at least the cohort's own typical share of its
      earlier rate (said only where the sentence compares them, ``compares_own_rates``,
      ``beside_cohort_rate``, ``beside_cohort_rise``);
    - cohort engagement: a strength only with some activity and at least the middle of the cohort, a
      factor only at most the middle;
    - submissions: before any is due, a strength only with work already submitted early, never a
      factor ("No assessment recorded for this module has been due yet." says nothing of the student: a
      medical school's week-1 placement students read it as raising their estimates); once any is due, a
      strength only with everything due submitted, none after its due day (an institution's students who
      missed a 20% assignment read "2 of the 3 assessments due so far were submitted" as a strength, the
      two being a quiz and work worth nothing; a nursing school's who missed a must-pass test of weight
      0 read "1 of the 2"; a law school's read "submitted after its due day" as one), a factor only
      with something not submitted or submitted after its due day;
    - results: a strength only with a mark at least the cohort's typical mark (``TYPICAL_MARK``), a
      factor only with a mark not above it. "No mark counts yet" is never a factor: with
      nothing due it says nothing of the student, with work submitted and not marked yet neither, and
      with work not submitted the submissions family says it (a university's students who had missed
      their one quiz read both as two of their three factors).

    Every other family may be said on either side.
    """
    either = np.ones(values.rows, dtype=bool)
    if counted_channels(family):
        total = _channel_total(values, family)
        median, counted = _cohort_median(total, group)
        compared = counted >= MIN_COHORT
        return ~compared | (total <= median), (total > 0) & (~compared | (total >= median))
    if family == "regularity":
        weeks, _ = own_weeks(values)
        active = np.round(values["act_weeks_active_share"] * weeks)
        open_weeks = weeks - np.round(values[QUIET_WEEKS]) if QUIET_WEEKS in values else weeks
        missed = weeks - active
        median, counted = _cohort_median(missed, group)
        beyond = (counted < MIN_COHORT) | (missed > median)
        within = (counted < MIN_COHORT) | (missed <= median)
        return (active < weeks) & beyond, (active > 0) & (2 * active >= open_weeks) & within
    if family == "recent_activity":
        recent = np.round(values["act_last14"]) > 0
        compared, ratio = compares_own_rates(values), values["act_recent_vs_own"]
        # "about 71% of this student's own earlier weekly rate, when students on this module were typically
        # at about 12% of theirs" is no concern of the student's (a nursing school's placement weeks).
        cohort = values[COHORT_RATE] if COHORT_RATE in values else np.full(values.rows, np.nan)
        beside = (
            (ratio < SAME_RATE[0])
            & (cohort < SAME_RATE[0])
            & (np.round(100 * ratio) >= np.round(100 * cohort))
        )
        concern = ~recent | ~(compared & ((ratio > SAME_RATE[1]) | beside))
        # "about 2.4 times this student's own earlier weekly rate, when students on this module were
        # typically at about 2.4 times theirs" (weeks of a strike in the earlier rate) is not the student's
        said_ratio, said_cohort = (np.array([tenths(v) for v in x.tolist()]) for x in (ratio, cohort))
        risen_alike = (ratio > SAME_RATE[1]) & (said_cohort > SAME_RATE[1]) & (said_ratio <= said_cohort)
        return concern, recent & ~(compared & ((ratio < SAME_RATE[0]) | risen_alike))
    if family == "cohort_engagement":
        pct = np.round(100 * values["act_total_pct"])
        return pct <= MIDDLE_RANK, (pct >= MIDDLE_RANK) & (values["act_total"] > 0)
    if family == "assessment_submissions":
        due, submitted = np.round(values["asm_due"]), np.round(values["asm_submitted"])
        late = np.round(values["asm_late"])
        none_due = due <= 0
        early = np.round(values["asm_early_submissions"]) > 0
        # Nothing due missed, whatever its weight: "1 of the 2 assessments due so far was submitted" read as
        # a strength where the one missed was a must-pass test of weight 0 (a nursing school's).
        none_missed = (submitted >= due) & (values["asm_weight_missed"] <= 0)
        some_due = ~none_due & ((submitted < due) | (late > 0))
        # Nothing late either: "The 1 assessment due so far was submitted after its due day." was a
        # strength for 157 of a law school's students and a factor for 84.
        return some_due, (none_due & early) | (~none_due & (submitted > 0) & none_missed & (late <= 0))
    if family == "assessment_results":
        marked = values["asm_has_score"] >= 1
        mark, typical = values["asm_score_mean"], values[TYPICAL_MARK]
        return marked & (mark <= typical), marked & (mark >= typical)
    return either, either


def _top(keys: np.ndarray) -> np.ndarray:
    """Per row, the columns of the ``TOP`` smallest finite keys, ties in column order; -1 past the last."""
    order = np.argsort(keys, axis=1, kind="stable")[:, :TOP]
    return np.where(np.isfinite(np.take_along_axis(keys, order, axis=1)), order, -1)


def _sentences(values: _Values, family: str, *, rows: np.ndarray, phrase: np.ndarray) -> dict[int, str]:
    """The sentence of ``family`` for each of ``rows``, by row."""
    said = describe_all(family, values.at(rows), src=phrase[rows].tolist(), marks=values.marks)[1]
    return dict(zip(rows.tolist(), said, strict=True))


def _ranked(
    top: np.ndarray, described: list[str], *, value: np.ndarray, sentence: list[dict[int, str]]
) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = [[] for _ in range(len(top))]
    titles = [FAMILIES[f].title for f in described]
    for k in range(top.shape[1]):
        rows = np.flatnonzero(top[:, k] >= 0)
        columns = top[rows, k]
        contribution = value[rows, columns].tolist()  # Python floats, read in one step
        for i, j, c in zip(rows.tolist(), columns.tolist(), contribution, strict=True):
            out[i].append(
                {
                    "family": described[j],
                    "title": titles[j],
                    "sentence": sentence[j][i],
                    "contribution": round(c, 4),
                }
            )
    return out


def _context(family: str, sentence: str) -> dict[str, Any]:
    return {"family": family, "title": FAMILIES[family].title, "sentence": sentence}


def _once(facts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each cohort-wide fact once, even when several families say it."""
    out: list[dict[str, Any]] = []
    for fact in facts:
        if all(fact["sentence"] != kept["sentence"] for kept in out):
            out.append(fact)
    return out


def _changes(
    bundle: ModelBundle,
    x: np.ndarray,
    *,
    probability: np.ndarray,
    group: np.ndarray,
    values: _Values,
    sums: dict[str, np.ndarray],
    cols: dict[str, np.ndarray],
    factors: list[list[dict[str, Any]]],
    said: _Said,
    untried: dict[str, np.ndarray],
) -> list[dict[str, Any] | None]:
    tried = [f for f in FACTOR_FAMILIES if f in sums]
    candidate = np.zeros((values.rows, len(tried)), dtype=bool)
    for i, found in enumerate(factors):
        for item in found:
            candidate[i, tried.index(item["family"])] = True
    for family, rows in untried.items():  # per row: the family is not tried for it
        if family in tried:
            candidate[rows, tried.index(family)] = False
    # What could change is said with another student's values ("like that of a typical student on this
    # module (an average mark of 48)"): in a cohort of fewer than MIN_COHORT they would be one of a few
    # named students' own, so nothing is said there.
    candidate[in_small_cohort(group)] = False

    def differs(f: int, rows: np.ndarray, *, peers: np.ndarray) -> np.ndarray:
        # A peer whose values read as the student's own offers no change anyone could make ("if this
        # were like that of another student (active in 3 of the 8 weeks)" to a student active in 3 of
        # 8): the model weighed values the words do not say, so the next best is looked for.
        family = tried[f]
        src = said.phrases(family)[1][rows].tolist()
        theirs = describe_all(family, values.at(peers), src=src, marks=values.marks)[0]
        mine = describe_all(family, values.at(rows), src=src, marks=values.marks)[0]
        return np.array([a != b for a, b in zip(theirs, mine, strict=True)], dtype=bool)

    best = smallest_change(
        bundle,
        x,
        probability=probability,
        group=group,
        sums=[sums[f] for f in tried],
        columns=[cols[f] for f in tried],
        candidate=candidate,
        eligible=lendable(tried, marked=values["asm_has_score"] >= 1),
        differs=differs,
    )
    out: list[dict[str, Any] | None] = [None] * values.rows
    for f, family in enumerate(tried):
        rows = np.flatnonzero(best.family == f)
        if not len(rows):
            continue
        # The peer's values, named by the sources this student's module records.
        _, phrase = said.phrases(family)
        peers = describe_all(
            family, values.at(best.peer[rows]), src=phrase[rows].tolist(), marks=values.marks
        )[0]
        title = FAMILIES[family].title
        for i, peer in zip(rows.tolist(), peers, strict=True):
            now, then = float(probability[i]), float(best.probability[i])
            out[i] = {
                "family": family,
                "title": title,
                "sentence": (
                    f"{title}: if this were like that of {STEPS[int(best.step[i])][1]} ({peer}), "
                    f"the estimate would be about {percent(then)} rather than {percent(now)}."
                ),
                "estimate_after": round(then, 4),
            }
    return out


def lendable(tried: list[str], *, marked: np.ndarray) -> list[np.ndarray | None]:
    """Per family tried, the rows whose values what could change may borrow (None: any row).

    Marks only from students with a mark: "if this were like that of a typical student on this module
    (no mark counted yet)" was offered to a student with a low one.
    """
    return [marked if family == "assessment_results" else None for family in tried]


def _coverage(values: _Values, said: _Said) -> list[dict[str, Any]]:
    activity = (values["act_any"] >= 1).tolist()
    marked = (values["asm_has_score"] >= 1).tolist()
    out = []
    for i in range(values.rows):
        recorded, missing = said.coverage(i)
        out.append(
            {
                "sources_recorded": list(recorded),
                "sources_not_recorded": list(missing),
                "activity_recorded_for_student": activity[i],
                "marked_work_available": marked[i],
            }
        )
    return out


def _engagement(values: _Values) -> list[dict[str, int]]:
    """The minimal summary a placement supervisor may see: counts, no factors, no estimate."""
    days, due, submitted = (whole(values[c]) for c in ("act_active_days_last14", "asm_due", "asm_submitted"))
    return [
        {"active_days_last_14": d, "assessments_due_so_far": a, "assessments_submitted": s}
        for d, a, s in zip(days, due, submitted, strict=True)
    ]
