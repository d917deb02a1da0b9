"""The quality gate: how well a candidate ranks and calibrates on its later cohort, and against the champion.

Beside the fairness gate (``fairness.gate``), on the same scored test presentations. Each audited week
the candidate's AUC must reach the policy's minimum for that week and its expected calibration error
(ECE, 10 equal-width bands, as training reports it) must not exceed the maximum. When a champion is
being served, it is scored on the very same students and the candidate must not be worse than it by
more than the policy's tolerances (AUC lower, ECE higher). Every figure carries a bootstrap interval
over the week's students (the champion comparison is paired: both models on each resample), and the
policy's ``[gate] breach`` rule decides as it does for the fairness checks: with ``interval_outside``
a check fails only when the whole interval lies on the wrong side of its bound, and a point on the
wrong side with an interval reaching back is inconclusive (shown, not blocking). A failed check fails
the gate, which blocks promotion unless the committee records an override with its reason.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from waymark.fairness.disclosure import rounded_count
from waymark.fairness.gate import FAIL, INCONCLUSIVE, PASS
from waymark.fairness.policy import Policy

SKIPPED = "skipped"  # the champion comparison, when there is no champion to compare with
ECE_BANDS = 10
CHUNK = 100  # bootstrap resamples weighed at once (bounds memory on large cohorts)
Interval = tuple[float, float, float]  # point, low, high


@dataclass(frozen=True)
class WeekQuality:
    """One audited week: the candidate's figures, and the champion's on the same students."""

    week: int
    students: int  # registrations (rows), as AUC and ECE weigh them
    needed_support: int  # of those rows
    candidate: dict[str, Interval]  # "auc", "ece", "ece_beyond_chance"
    champion: dict[str, Interval] | None = None
    difference: dict[str, Interval] | None = None  # candidate minus champion, paired resamples


@dataclass(frozen=True)
class QualityCheck:
    """The outcome of one quality check over every audited week."""

    title: str
    status: str
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class QualityOutcome:
    """The quality gate: its status, its checks, the comparison table and what it compared with."""

    status: str
    checks: tuple[QualityCheck, ...]
    weeks: tuple[WeekQuality, ...]
    champion: str | None  # "version N" of the champion compared with, None when there was none
    champion_note: str  # what the comparison was made with, or why there was none


def weighted_auc(score: np.ndarray, positive: np.ndarray, *, weights: np.ndarray) -> np.ndarray:
    """ROC AUC under each row of ``weights`` (ties count a half; unit weights give ``roc_auc_score``).

    Parameters
    ----------
    score, positive
        One value per student: the estimate, and whether the outcome happened.
    weights
        Shape (resamples, students): how often each student is counted in each resample.

    Returns
    -------
    numpy.ndarray
        One AUC per resample, NaN where a resample holds only one outcome.
    """
    order = np.argsort(score, kind="stable")
    ranked, pos, w = score[order], positive[order].astype(bool), weights[:, order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])
    w_pos = np.add.reduceat(np.where(pos, w, 0.0), starts, axis=1)
    w_neg = np.add.reduceat(np.where(pos, 0.0, w), starts, axis=1)
    below = np.cumsum(w_neg, axis=1) - w_neg
    pairs = (w_pos * (below + 0.5 * w_neg)).sum(axis=1)
    total = w_pos.sum(axis=1) * w_neg.sum(axis=1)
    auc: np.ndarray = np.divide(pairs, total, out=np.full(pairs.shape, np.nan), where=total > 0)
    return auc


def _bands(probability: np.ndarray) -> np.ndarray:
    """The band (0 to ``ECE_BANDS`` - 1) of each estimate: equal widths over 0 to 1."""
    out: np.ndarray = np.clip(
        np.digitize(probability, np.linspace(0.0, 1.0, ECE_BANDS + 1)[1:-1]), 0, ECE_BANDS - 1
    )
    return out


def weighted_ece(probability: np.ndarray, positive: np.ndarray, *, weights: np.ndarray) -> np.ndarray:
    """Expected calibration error under each row of ``weights`` (10 equal-width bands).

    With unit weights this is ``training.evaluation.expected_calibration_error``: the share-weighted
    mean gap between the mean estimate and the observed rate in each band.
    """
    band = _bands(probability)
    gaps = np.zeros((probability.size, ECE_BANDS))
    gaps[np.arange(probability.size), band] = probability - positive
    ece: np.ndarray = np.abs(weights @ gaps).sum(axis=1) / weights.sum(axis=1)
    return ece


def ece_beyond_chance(probability: np.ndarray, positive: np.ndarray, *, weights: np.ndarray) -> np.ndarray:
    """ECE less what chance alone adds to it, under each row of ``weights`` (the quality gate's measure).

    ECE adds up the size of each band's gap between mean estimate and observed rate, so outcomes'
    chance alone makes it positive, the more so the fewer the rows: on 300 registrations a week,
    estimates exactly right averaged an ECE of 0.055 and failed a ceiling of 0.05 in 83 of 200 trials
    of a statistician's review. Here each band's squared gap loses its expected part under exactly
    right estimates (the variance of the band's observed rate, the sum of p(1 - p) over its
    rows, weighted, over the square of its size) before its root is taken (clipped at 0): a
    calibration error well beyond chance keeps nearly all its size; one within it comes out near 0.
    """
    band = _bands(probability)
    rows = np.arange(probability.size)
    members, gaps, spread = (np.zeros((probability.size, ECE_BANDS)) for _ in range(3))
    members[rows, band] = 1.0
    gaps[rows, band] = probability - positive
    spread[rows, band] = probability * (1.0 - probability)
    size = weights @ members
    with np.errstate(invalid="ignore", divide="ignore"):
        gap = (weights @ gaps) / size
        chance = ((weights**2) @ spread) / size**2
        beyond = np.sqrt(np.clip(np.nan_to_num(gap**2 - chance), 0.0, None))
    out: np.ndarray = (size * beyond).sum(axis=1) / weights.sum(axis=1)
    return out


def _measures(probability: np.ndarray, positive: np.ndarray, *, weights: np.ndarray) -> dict[str, np.ndarray]:
    return {
        "auc": weighted_auc(probability, positive, weights=weights),
        "ece": weighted_ece(probability, positive, weights=weights),
        "ece_beyond_chance": ece_beyond_chance(probability, positive, weights=weights),
    }


def _interval(values: np.ndarray, confidence: float) -> Interval:
    """Point (row 0, the cohort as it is) and percentile interval of the resamples (rows 1 on)."""
    rest = values[1:][~np.isnan(values[1:])]
    if math.isnan(values[0]) or rest.size == 0:
        return float(values[0]), math.nan, math.nan
    tail = (1 - confidence) / 2
    return float(values[0]), float(np.quantile(rest, tail)), float(np.quantile(rest, 1 - tail))


MEASURES = ("auc", "ece", "ece_beyond_chance")


def _resampled(
    models: dict[str, np.ndarray],
    positive: np.ndarray,
    *,
    students: np.ndarray,
    resamples: int,
    rng: np.random.Generator,
) -> dict[str, dict[str, np.ndarray]]:
    """Each model's AUC and ECE on the cohort (row 0) and on each bootstrap resample of its students.

    ``students`` gives each row's student as a code 0..n-1: students are drawn, and a drawn student's
    rows (one per module they study) all count as often as the student is drawn.
    """
    n = int(students.max()) + 1 if students.size else 0
    chunks: list[dict[str, dict[str, np.ndarray]]] = []
    for start in range(0, resamples + 1, CHUNK):
        size = min(CHUNK, resamples + 1 - start)
        drawn = rng.multinomial(n, np.full(n, 1.0 / n), size=size).astype(np.float64)
        weights = drawn[:, students]
        if start == 0:
            weights[0] = 1.0  # row 0 is the cohort itself: the point estimates
        chunks.append({name: _measures(p, positive, weights=weights) for name, p in models.items()})
    return {name: {m: np.concatenate([c[name][m] for c in chunks]) for m in MEASURES} for name in models}


def measure_week(
    week: int,
    frame: pd.DataFrame,
    *,
    resamples: int,
    confidence: float,
    rng: np.random.Generator,
) -> WeekQuality:
    """AUC and ECE with intervals for one week; the champion's and the paired difference when scored.

    ``frame`` holds one row per registration with ``student_id``, ``label`` and ``probability``, and
    ``champion_probability`` when the champion scored the same rows. ``students`` in the result counts
    registrations (rows), as the AUC and ECE weigh them.
    """
    positive = frame["label"].to_numpy(dtype=np.float64)
    models = {"candidate": frame["probability"].to_numpy(dtype=np.float64)}
    if "champion_probability" in frame:
        models["champion"] = frame["champion_probability"].to_numpy(dtype=np.float64)
    students = pd.factorize(frame["student_id"])[0]
    drawn = _resampled(models, positive, students=students, resamples=resamples, rng=rng)
    figures = {
        name: {m: _interval(v, confidence) for m, v in measured.items()} for name, measured in drawn.items()
    }
    difference = None
    if "champion" in drawn:
        difference = {
            m: _interval(drawn["candidate"][m] - drawn["champion"][m], confidence) for m in ("auc", "ece")
        }
    return WeekQuality(
        week=week,
        students=int(positive.size),
        needed_support=int(positive.sum()),
        candidate=figures["candidate"],
        champion=figures.get("champion"),
        difference=difference,
    )


def measure(scored: pd.DataFrame, *, policy: Policy) -> tuple[WeekQuality, ...]:
    """Every audited week of ``scored``, each resampled by student (``measure_week``).

    ``scored`` holds ``student_id``, ``week``, ``label``, ``probability`` and maybe the champion's.
    """
    rng = np.random.default_rng(policy.seed)
    return tuple(
        measure_week(
            int(str(week)), frame, resamples=policy.bootstrap_resamples, confidence=policy.confidence, rng=rng
        )
        for week, frame in scored.groupby("week", sort=True)
    )


def judge(value: Interval, *, bound: float, floor: bool, breach: str) -> str:
    """PASS, FAIL or INCONCLUSIVE for a figure that must stay at or above (``floor``) or below ``bound``."""
    point, low, high = value
    if math.isnan(point):
        return INCONCLUSIVE
    wrong_side = point < bound if floor else point > bound
    if not wrong_side:
        return PASS
    if breach == "point_outside":
        return FAIL
    evidence = high if floor else low  # the interval's end nearest the bound
    if math.isnan(evidence):
        return INCONCLUSIVE
    clear = evidence < bound if floor else evidence > bound
    return FAIL if clear else INCONCLUSIVE


def _fmt(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.3f}"


def _figure(value: Interval) -> str:
    return f"{_fmt(value[0])} (interval {_fmt(value[1])} to {_fmt(value[2])})"


def _reason(verdict: str, text: str) -> str:
    if verdict == INCONCLUSIVE:
        return f"{text}, but the interval reaches the bound: not clear"
    return text


def _check(title: str, findings: list[tuple[str, str]], *, passed: str) -> QualityCheck:
    """A check from the (verdict, reason) of each week that did not simply pass."""
    failed = tuple(r for v, r in findings if v == FAIL)
    if failed:
        return QualityCheck(title, FAIL, failed)
    unclear = tuple(_reason(v, r) for v, r in findings if v == INCONCLUSIVE)
    if unclear:
        return QualityCheck(title, INCONCLUSIVE, unclear)
    return QualityCheck(title, PASS, (passed,))


def too_few(w: WeekQuality, policy: Policy) -> bool:
    """Whether a week holds too few students who needed support, or who did not, to judge or publish.

    A conservatoire's test week of 12 registrations, 2 who needed support, passed the AUC floor on an
    interval of [1.0, 1.0], published beside "needed_support: 0" (2 rounded); the fairness audit's
    minimum group size applies to the whole week's figures too.
    """
    return min(w.needed_support, w.students - w.needed_support) < policy.min_group_size


def _too_few_said(w: WeekQuality, policy: Policy) -> tuple[str, str]:
    return (
        INCONCLUSIVE,
        f"week {w.week}: fewer than {policy.min_group_size} registrations who needed support, or who did "
        "not, to judge (not assessable)",
    )


def _floor_check(weeks: tuple[WeekQuality, ...], policy: Policy) -> QualityCheck:
    findings = []
    for w in weeks:
        bound = policy.quality.min_auc[w.week]
        verdict = judge(w.candidate["auc"], bound=bound, floor=True, breach=policy.breach)
        if too_few(w, policy):
            findings.append(_too_few_said(w, policy))
        elif math.isnan(w.candidate["auc"][0]):
            findings.append((verdict, f"week {w.week}: AUC not measurable (one outcome only that week)"))
        elif verdict != PASS:
            text = f"week {w.week}: AUC {_figure(w.candidate['auc'])} is below the minimum {bound:g}"
            findings.append((verdict, text))
    return _check(
        "AUC at least each week's minimum", findings, passed="every audited week reaches its minimum"
    )


def _ece_check(weeks: tuple[WeekQuality, ...], policy: Policy) -> QualityCheck:
    findings = []
    for w in weeks:
        bound = policy.quality.max_ece[w.week]
        beyond = w.candidate["ece_beyond_chance"]
        verdict = judge(beyond, bound=bound, floor=False, breach=policy.breach)
        if too_few(w, policy):
            findings.append(_too_few_said(w, policy))
        elif verdict != PASS:
            text = (
                f"week {w.week}: ECE {_figure(w.candidate['ece'])}, beyond what chance alone gives on "
                f"{w.students:,} registrations {_figure(beyond)}, is above the maximum {bound:g}"
            )
            findings.append((verdict, text))
    return _check(
        "ECE beyond chance at most each week's maximum",
        findings,
        passed="every audited week is within its maximum",
    )


def _champion_checks(
    weeks: tuple[WeekQuality, ...], policy: Policy, *, champion_note: str
) -> tuple[QualityCheck, ...]:
    q = policy.quality
    titles = (
        f"AUC no more than {q.champion_auc_tolerance:g} below the champion's, same students",
        f"ECE no more than {q.champion_ece_tolerance:g} above the champion's, same students",
    )
    if any(w.difference is None for w in weeks) or not weeks:
        return tuple(QualityCheck(t, SKIPPED, (champion_note,)) for t in titles)
    auc, ece = [], []
    for w in weeks:
        assert w.difference is not None and w.champion is not None  # noqa: S101  (checked above)
        if too_few(w, policy):
            auc.append(_too_few_said(w, policy))
            ece.append(_too_few_said(w, policy))
            continue
        verdict = judge(
            w.difference["auc"], bound=-q.champion_auc_tolerance, floor=True, breach=policy.breach
        )
        if verdict != PASS:
            auc.append((verdict, _behind(w, "auc", tolerance=q.champion_auc_tolerance)))
        verdict = judge(
            w.difference["ece"], bound=q.champion_ece_tolerance, floor=False, breach=policy.breach
        )
        if verdict != PASS:
            ece.append((verdict, _behind(w, "ece", tolerance=q.champion_ece_tolerance)))
    passed = "within the tolerance every audited week"
    return _check(titles[0], auc, passed=passed), _check(titles[1], ece, passed=passed)


def _behind(w: WeekQuality, metric: str, *, tolerance: float) -> str:
    """E.g. ``week 8: AUC 0.700 against the champion's 0.780, 0.080 lower (interval ...)``."""
    assert w.difference is not None and w.champion is not None  # noqa: S101  (only with a champion)
    sign, direction = (-1.0, "lower") if metric == "auc" else (1.0, "higher")
    point, ends = sign * w.difference[metric][0], sorted(sign * x for x in w.difference[metric][1:])
    return (
        f"week {w.week}: {metric.upper()} {_fmt(w.candidate[metric][0])} against the champion's "
        f"{_fmt(w.champion[metric][0])}, {_fmt(point)} {direction} "
        f"(interval {_fmt(ends[0])} to {_fmt(ends[1])}), more than the tolerance {tolerance:g}"
    )


def evaluate(
    weeks: tuple[WeekQuality, ...], policy: Policy, *, champion: str | None, champion_note: str
) -> QualityOutcome:
    """The quality gate: FAIL when any check fails (inconclusive and skipped checks do not block).

    Inconclusive, shown and not blocking, when no audited week holds enough students to judge
    (``too_few``): a PASS had been printed over weeks of 12 registrations.
    """
    checks = (
        _floor_check(weeks, policy),
        _ece_check(weeks, policy),
        *_champion_checks(weeks, policy, champion_note=champion_note),
    )
    judged = any(not too_few(w, policy) for w in weeks)
    status = FAIL if any(c.status == FAIL for c in checks) else PASS if judged else INCONCLUSIVE
    return QualityOutcome(status, checks, weeks, champion=champion, champion_note=champion_note)


def _triples(values: dict[str, Interval] | None) -> dict[str, dict[str, float | None]] | None:
    if values is None:
        return None
    return {
        m: {
            k: None if math.isnan(x) else round(x, 4)
            for k, x in zip(("point", "low", "high"), v, strict=True)
        }
        for m, v in values.items()
    }


def published(outcome: QualityOutcome, policy: Policy) -> dict[str, Any]:
    """The quality gate as the report shows it (counts rounded to the policy's multiple)."""
    q = policy.quality
    return {
        "status": outcome.status,
        "checks": [
            {"check": c.title, "status": c.status, "reasons": list(c.reasons)} for c in outcome.checks
        ],
        "champion": outcome.champion,
        "champion_note": outcome.champion_note,
        "thresholds": {
            "min_auc": {str(w): v for w, v in sorted(q.min_auc.items())},
            "max_ece": {str(w): v for w, v in sorted(q.max_ece.items())},
            "champion_auc_tolerance": q.champion_auc_tolerance,
            "champion_ece_tolerance": q.champion_ece_tolerance,
        },
        "weeks": [_week_published(w, policy) for w in outcome.weeks],
    }


def _week_published(w: WeekQuality, policy: Policy) -> dict[str, Any]:
    """One week's row; a week too small to judge (``too_few``) publishes no figure and no count of it."""
    withheld = too_few(w, policy)
    return {
        "week": w.week,
        "registrations": rounded_count(w.students, policy.count_rounding),  # a row each
        "needed_support": None if withheld else rounded_count(w.needed_support, policy.count_rounding),
        "min_auc": policy.quality.min_auc.get(w.week),
        "max_ece": policy.quality.max_ece.get(w.week),
        "candidate": None if withheld else _triples(w.candidate),
        "champion": None if withheld else _triples(w.champion),
        "difference": None if withheld else _triples(w.difference),
    }


def comparison_table(report: dict[str, Any]) -> pd.DataFrame:
    """The published comparison as one row per week and measure (the CSV kept with the audit)."""
    rows = []
    for w in report["weeks"]:
        for metric in ("auc", "ece"):
            row = {"week": w["week"], "measure": metric, "registrations": w["registrations"]}
            for who in ("candidate", "champion", "difference"):
                figures = (w[who] or {}).get(metric, {})
                row |= {f"{who}_{k}": figures.get(k) for k in ("point", "low", "high")}
            rows.append(row)
    return pd.DataFrame(rows)
