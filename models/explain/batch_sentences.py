"""The sentences of ``sentences``, built for many students at once: the scoring job's path.

Each describer takes the feature columns of the rows to describe (NumPy arrays) and, per row, the
" from <sources>" phrase of the sources its family was recorded from. The numbers are read back from
the features for the whole batch with NumPy (``np.rint`` rounds half to even, as Python's ``round``
does); each sentence is then one format over those columns. The words are those of ``sentences``,
which stays the reference for one student: tests/test_batch_sentences.py checks that both give the
same text for every family and branch, and that a scored cohort's explanations are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import cast

import numpy as np

from waymark.models.explain.sentences import (
    _CHANNEL_WHAT,
    _FAMILY_CHANNELS,
    CHANNEL_FAMILIES,
    COHORT_RATE,
    COMPARED_MARKS,
    EARLIER_RATE,
    MARKS_COUNT,
    NO_DUE,
    NO_DUE_OWN,
    NO_MARK,
    NO_MARK_BRIEF,
    NONE_EARLIER,
    ON_THE_SCALE,
    QUIET_SHARE,
    QUIET_TYPICAL_SINCE,
    QUIET_WEEKS,
    RATE_FROM_WEEK,
    SAME_RATE,
    _after_due,
    _compared_with,
    _in_quiet_weeks,
    _upper,
    _when_quiet,
    active_weeks,
    and_list,
    before_start,
    beside_cohort_rate,
    beside_cohort_rise,
    credits_text,
    higher_than,
    mark_texts,
    module_slowed,
)
from waymark.models.marks import PERCENT, MarkScale

Columns = Mapping[str, np.ndarray]  # feature name -> float64 values, one per row described
Texts = tuple[list[str], list[str]]  # (briefs, sentences), one each per row
BatchDescriber = Callable[[Columns, Sequence[str]], Texts]


class Taken(Mapping[str, np.ndarray]):
    """Some rows of a mapping of columns; a column is read and taken only when a describer asks for it."""

    def __init__(self, cols: Columns, rows: np.ndarray) -> None:
        self._cols, self._rows = cols, rows

    def __getitem__(self, name: str) -> np.ndarray:
        taken: np.ndarray = np.asarray(self._cols[name])[self._rows]
        return taken

    def __iter__(self) -> Iterator[str]:
        return iter(self._cols)

    def __len__(self) -> int:
        return len(self._cols)


def from_phrase(sources: Sequence[str]) -> str:
    """' from the learning platform and the library', or nothing when no source is named."""
    return f" from {and_list(sources)}" if sources else ""


def whole(values: np.ndarray) -> list[int]:
    """Python's ``round(x)`` of each value (half to even), as Python ints.

    Raises
    ------
    ValueError
        If a value is not a finite number (as ``round`` refuses one).
    """
    if not np.isfinite(values).all():
        raise ValueError("a feature value to describe is not a finite number")
    return cast(list[int], np.rint(values).astype(np.int64).tolist())


def _count(log_values: np.ndarray) -> np.ndarray:
    """Counts stored as log(1 + n), read back (``sentences.count`` for a column)."""
    counts: np.ndarray = np.rint(np.expm1(log_values))
    return counts


def _times(n: int, one: str, *, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _channel_counts(cols: Columns, family: str) -> tuple[list[int], list[int]]:
    channels = _FAMILY_CHANNELS[family]
    total = np.sum([_count(cols[f"ch_{ch}_total"]) for ch in channels], axis=0)
    recent = np.sum([_count(cols[f"ch_{ch}_last14"]) for ch in channels], axis=0)
    return whole(total), whole(recent)


def _recent_activity(cols: Columns, src: Sequence[str]) -> Texts:
    n_f = _count(cols["act_last14"])
    n, days = whole(n_f), whole(np.where(n_f == 0, 0.0, cols["act_active_days_last14"]))
    ever = (cols["act_any"] >= 1).tolist()
    since = whole(np.where(cols["act_any"] >= 1, cols["act_days_since_last"], 0.0))
    ratio = cols["act_recent_vs_own"].tolist()
    cohort = (cols[COHORT_RATE] if COHORT_RATE in cols else np.full(len(ratio), np.nan)).tolist()
    later = compares_own_rates(cols).tolist()
    # The ratio is smoothed: with nothing before, a first week's few actions had read as "1.5 times".
    earlier = cols[EARLIER_RATE] if EARLIER_RATE in cols else np.ones(len(ratio))
    none_before = ((earlier <= 0) & (cols["act_recent_vs_own"] > SAME_RATE[1])).tolist()
    quiet = _beside_quiet_cohort(cols, ever=ever, since=since)
    briefs, sentences = [], []
    for i, s in enumerate(src):
        if n[i] == 0:
            brief = f"no activity{s} in the last 14 days"
            if quiet[i]:
                extra = quiet[i]
            elif ever[i]:
                extra = f"; the last recorded activity was {since[i]} days ago"
            else:
                extra = "; none has been recorded yet"
            briefs.append(brief)
            sentences.append(f"No activity{s} in the last 14 days{extra}.")
            continue
        actions, active = _times(n[i], "action", many="actions"), _times(days[i], "day", many="days")
        brief = f"{actions}{s} on {active} of the last 14"
        briefs.append(brief)
        own = (NONE_EARLIER if none_before[i] else _own_rate(ratio[i], cohort[i])) if later[i] else ""
        sentences.append(brief[0].upper() + brief[1:] + own + ".")
    return briefs, sentences


def compares_own_rates(cols: Columns) -> np.ndarray:
    """Per row, ``sentences.compares_own_rate``: from ``RATE_FROM_WEEK`` weeks after the registration's week.

    Rows without ``reg_day`` count from the start.
    """
    weeks = np.asarray(cols["weeks_elapsed"], dtype=np.float64)
    compared: np.ndarray = weeks - np.maximum(np.floor(_reg_day(cols) / 7), 0) >= RATE_FROM_WEEK
    return compared


def _beside_quiet_cohort(cols: Columns, *, ever: list[bool], since: list[int]) -> list[str]:
    """Per row, ``sentences._beside_quiet_cohort`` where half its cohort or more is quiet, else ''."""
    if QUIET_SHARE not in cols:
        return [""] * len(ever)
    share = cols[QUIET_SHARE]
    typical_f = cols[QUIET_TYPICAL_SINCE] if QUIET_TYPICAL_SINCE in cols else np.full(len(share), np.nan)
    compared = (~np.isnan(typical_f)).tolist()
    typical = whole(np.where((share > 0) & ~np.isnan(typical_f), typical_f, 0.0))
    out = []
    for i, q in enumerate(share.tolist()):
        if q <= 0:
            out.append("")
            continue
        who = "every student" if q >= 1 else f"{math.floor(100 * q)}% of students"
        if not ever[i]:
            out.append(f", as for {who} on this module; none has been recorded yet for this student")
            continue
        said = f", as for {who} on this module; this student's last recorded activity was {since[i]} days ago"
        out.append(
            said + (f", against {typical[i]} for a typical student on this module" if compared[i] else "")
        )
    return out


def _own_rate(ratio: float, cohort: float) -> str:
    if SAME_RATE[0] <= ratio <= SAME_RATE[1]:
        return ", about the same weekly rate as this student's own earlier weeks"
    if ratio < SAME_RATE[0]:
        return (
            f", about {round(100 * ratio)}% of this student's own earlier weekly rate"
            + beside_cohort_rate(cohort)
        )
    return f", about {ratio:.1f} times this student's own earlier weekly rate" + beside_cohort_rise(cohort)


def own_weeks(cols: Columns) -> tuple[np.ndarray, np.ndarray]:
    """Per row, ``sentences.own_weeks`` (as floats) and whether the student registered after the start."""
    first = np.maximum(np.floor(_reg_day(cols) / 7), 0)
    weeks: np.ndarray = np.maximum(np.rint(cols["weeks_elapsed"]) - first, 1)
    return weeks, first > 0


def _reg_day(cols: Columns) -> np.ndarray:
    n = len(cols["weeks_elapsed"])
    return np.asarray(cols["reg_day"], dtype=np.float64) if "reg_day" in cols else np.zeros(n)


def _regularity(cols: Columns, src: Sequence[str]) -> Texts:
    weeks_f, late = own_weeks(cols)
    weeks = whole(weeks_f)
    active = whole(cols["act_weeks_active_share"] * weeks_f)
    days = whole(cols["act_active_days"])
    quiet = whole(cols[QUIET_WEEKS]) if QUIET_WEEKS in cols else [0] * len(days)
    pre = (cols["act_pre_start"] if "act_pre_start" in cols else np.zeros(len(days))).tolist()
    said = [
        active_weeks(s, active=a, weeks=w, registered_late=r)
        for s, a, w, r in zip(src, active, weeks, late.tolist(), strict=True)
    ]
    briefs = [brief for brief, _ in said]
    sentences = [
        f"{lead} ({_times(d, 'active day', many='active days')}{before_start(p, all_before=not a and not r)})"
        f"{_in_quiet_weeks(q, w)}."
        for (_, lead), w, d, q, p, a, r in zip(
            said, weeks, days, quiet, pre, active, late.tolist(), strict=True
        )
    ]
    return briefs, sentences


def _cohort(cols: Columns, src: Sequence[str]) -> Texts:
    pct = whole(100 * cols["act_total_pct"])
    briefs = [_compared_with(p, src="", on="the module") for p in pct]
    sentences = [
        _upper(_compared_with(p, src=s, on="this module")) + " at this point."
        for s, p in zip(src, pct, strict=True)
    ]
    return briefs, sentences


def _channels(family: str, what: tuple[str, str]) -> BatchDescriber:
    def describe(cols: Columns, src: Sequence[str]) -> Texts:
        total, recent = _channel_counts(cols, family)
        counted = [_times(t, what[0], many=what[1]) for t in total]
        briefs = [f"{c} so far, {r} in the last 14 days" for c, r in zip(counted, recent, strict=True)]
        share = cols[QUIET_SHARE].tolist() if QUIET_SHARE in cols else [0.0] * len(total)
        rates = (cols[COHORT_RATE] if COHORT_RATE in cols else np.full(len(total), np.nan)).tolist()
        sentences = [
            f"{c}{s} so far, {r} in the last 14 days{_when_quiet(q if r == 0 else 0.0) or module_slowed(m)}."
            for s, c, r, q, m in zip(src, counted, recent, share, rates, strict=True)
        ]
        return briefs, sentences

    return describe


def _submissions(cols: Columns, src: Sequence[str]) -> Texts:
    due, done, late = (whole(cols[c]) for c in ("asm_due", "asm_submitted", "asm_late"))
    early = whole(np.where(np.rint(cols["asm_due"]) == 0, cols["asm_early_submissions"], 0.0))
    next_done = (cols["asm_next_submitted"] >= 1).tolist()
    briefs, sentences = [], []
    for i in range(len(src)):
        if due[i] == 0:
            tail = (
                f"; {_times(early[i], 'assessment', many='assessments')} already submitted early"
                if early[i]
                else ""
            )
            briefs.append("no assessment due yet")
            sentences.append(NO_DUE_OWN + tail + ".")
            continue
        if due[i] == 1:
            said = "submitted" if done[i] else "not submitted"
            brief, sentence = f"the 1 assessment due so far {said}", f"The 1 assessment due so far was {said}"
        else:
            brief = f"{done[i]} of the {due[i]} assessments due so far submitted"
            were = "was" if done[i] == 1 else "were"
            sentence = f"{done[i]} of the {due[i]} assessments due so far {were} submitted"
        briefs.append(brief + (", the next already submitted" if next_done[i] else ""))
        sentence += _after_due(done[i], late[i], one=due[i] == 1)
        sentences.append(sentence + ("; the next one is already submitted" if next_done[i] else "") + ".")
    return briefs, sentences


def _results(cols: Columns, src: Sequence[str], *, marks: MarkScale = PERCENT) -> Texts:
    scored = (cols["asm_has_score"] >= 1).tolist()
    means = cols["asm_score_mean"].tolist()
    rows = len(means)
    compared = cols[COMPARED_MARKS] >= 1 if COMPARED_MARKS in cols else np.zeros(rows, dtype=bool)
    pct = whole(np.where((cols["asm_has_score"] >= 1) & compared, 100 * cols["asm_score_pct"], 0.0))
    briefs, sentences = [], []
    for ok, mark, p in zip(scored, means, pct, strict=True):
        if not ok:
            briefs.append(NO_MARK_BRIEF)
            sentences.append(NO_MARK + MARKS_COUNT + ".")
            continue
        brief, sentence = mark_texts(marks, mark)
        higher = f" ({higher_than(p)} marks on this module)" if p >= 5 else ""
        briefs.append(brief)
        sentences.append(f"{sentence}{higher}.")
    return briefs, sentences


def _registration(cols: Columns, src: Sequence[str]) -> Texts:
    missing = (cols["reg_day_missing"] >= 1).tolist()
    days = whole(np.where(cols["reg_day_missing"] >= 1, 0.0, cols["reg_day"]))
    briefs, sentences = [], []
    for gone, day in zip(missing, days, strict=True):
        if gone:
            briefs.append("registration date not recorded")
            sentences.append("The registration date is not recorded.")
        elif day == 0:
            briefs.append("registered on the first day")
            sentences.append("Registered on the day the module started.")
        else:
            span, when = _times(abs(day), "day", many="days"), "before" if day < 0 else "after"
            briefs.append(f"registered {span} {when} the start")
            sentences.append(f"Registered {span} {when} the module started.")
    return briefs, sentences


def _history(cols: Columns, src: Sequence[str]) -> Texts:
    attempts = whole(cols["prior_attempts"])
    studying = (cols["credits_missing"] < 1).tolist()
    credits = [credits_text(c) for c in np.where(cols["credits_missing"] < 1, cols["credits"], 0.0).tolist()]
    briefs, sentences = [], []
    for n, known, c in zip(attempts, studying, credits, strict=True):
        first = (
            "no earlier registration recorded"
            if n == 0
            else _times(n, "earlier registration", many="earlier registrations")
        )
        said = (
            "No earlier registration on this module is recorded for the student"
            if n == 0
            else f"The student has {first} on this module"
        )
        briefs.append(first)
        sentences.append(said + (f"; {c} credits are being studied" if known else "") + ".")
    return briefs, sentences


#: For every family ``sentences.DESCRIBE`` describes, its describer for a batch (the same words).
DESCRIBE_ALL: dict[str, BatchDescriber] = {
    "recent_activity": _recent_activity,
    "regularity": _regularity,
    "cohort_engagement": _cohort,
    **{family: _channels(family, what) for family, what in CHANNEL_FAMILIES.items()},
    "assessment_submissions": _submissions,
    "assessment_results": _results,
    "registration_timing": _registration,
    "study_history": _history,
}


def describe_all(family: str, cols: Columns, *, src: Sequence[str], marks: MarkScale = PERCENT) -> Texts:
    """Briefs and sentences of ``family`` for every row of ``cols`` (``src``: each row's from-phrase).

    Marks are said on ``marks``, the institution's scale (0 to 100 without it).
    """
    if not len(src):
        return [], []
    if family == ON_THE_SCALE:
        return _results(cols, src, marks=marks)
    return DESCRIBE_ALL[family](cols, src)


def describe_cohort_all(
    family: str, cols: Columns, *, src: Sequence[str], share: np.ndarray, marks: MarkScale = PERCENT
) -> list[str]:
    """``sentences.describe_cohort`` for every row of ``cols``, each with its cohort's ``share``."""
    if not len(src):
        return []
    absent = _nothing_yet(family, cols, rows=len(src))
    present = np.flatnonzero(~np.asarray(absent, dtype=bool))
    said = describe_all(family, Taken(cols, present), src=[src[i] for i in present.tolist()], marks=marks)[0]
    briefs = dict(zip(present.tolist(), said, strict=True))
    out = []
    for i, s in enumerate(src):
        every = share[i] >= 1
        part = f"{math.floor(100 * share[i])}% of students"
        if absent[i]:
            who = "anyone" if every else part
            out.append(_absence(family, s, who=who))
        else:
            who = "every student" if every else part
            out.append(f"The same for {who} on this module at this point: {briefs[i]}.")
    return out


def _nothing_yet(family: str, cols: Columns, *, rows: int) -> list[bool]:
    """Rows whose typical values of ``family`` are an absence (``sentences._nothing_yet``)."""
    if family in {"regularity", "cohort_engagement"}:
        return _flags(cols["act_total"] <= 0)
    if family == "recent_activity":
        return _flags(cols["act_last14"] <= 0)
    if family in _CHANNEL_WHAT:
        return [t == 0 for t in _channel_counts(cols, family)[0]]
    if family == "assessment_results":
        return _flags(cols["asm_has_score"] < 1)
    if family == "assessment_submissions":
        return _flags(cols["asm_due"] <= 0)
    return [False] * rows


def _flags(values: np.ndarray) -> list[bool]:
    return cast(list[bool], values.tolist())


def _absence(family: str, src: str, *, who: str) -> str:
    if family in {"regularity", "cohort_engagement"}:
        return f"No activity{src} has been recorded yet for {who} on this module."
    if family == "recent_activity":
        return f"No activity{src} in the last 14 days for {who} on this module."
    if family in _CHANNEL_WHAT:
        return f"No {_CHANNEL_WHAT[family]}{src} recorded yet for {who} on this module."
    if family == "assessment_results":
        return f"{NO_MARK} for {who} on this module{MARKS_COUNT}."
    return NO_DUE + "."
