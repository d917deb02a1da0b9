"""Temporal evaluation, week by week, at the outreach team's capacity.

Capacity is a share of the week's population the team can contact (10% and 20%). Precision at
capacity is how many of those contacted needed support; recall is how many who needed support were
reached. Lead time is how many days before a withdrawal the student first entered the top 10%.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from waymark.models.capacity import top_share
from waymark.models.measured import ENDED_SHARE, PARTLY_ENDED_SHARE, SMALL_TEST_POSITIVES, SMALL_TEST_ROWS

CAPACITIES = (0.10, 0.20)
ECE_BINS = 10


def expected_calibration_error(label: np.ndarray, probability: np.ndarray, *, bins: int = ECE_BINS) -> float:
    """Share-weighted mean gap between predicted and observed rates over equal-width bins."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probability, edges[1:-1]), 0, bins - 1)
    total = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            total += inside.mean() * abs(probability[inside].mean() - label[inside].mean())
    return float(total)


def week_metrics(label: np.ndarray, probability: np.ndarray) -> dict[str, float]:
    """All metrics for one week's population."""
    both = 0 < label.sum() < label.size
    out = {
        "n": float(label.size),
        "positives": float(label.sum()),
        "auc": float(roc_auc_score(label, probability)) if both else math.nan,
        "pr_auc": float(average_precision_score(label, probability)) if both else math.nan,
        "brier": float(brier_score_loss(label, probability, pos_label=1)) if label.size else math.nan,
        "ece": expected_calibration_error(label, probability),
    }
    for share in CAPACITIES:
        chosen = top_share(probability, share)
        tag = f"{round(share * 100)}pct"
        hits = float(label[chosen].sum())
        out[f"precision_at_{tag}"] = hits / chosen.sum() if chosen.any() else math.nan
        out[f"recall_at_{tag}"] = hits / label.sum() if label.sum() else math.nan
    return out


def weekly_metrics(scored: pd.DataFrame) -> pd.DataFrame:
    """Metrics per prediction week.

    Parameters
    ----------
    scored
        One row per (registration, week) with ``week``, ``label`` and ``probability``.

    Returns
    -------
    pandas.DataFrame
        Indexed by week.
    """
    rows = {
        int(str(week)): week_metrics(g["label"].to_numpy(), g["probability"].to_numpy())
        for week, g in scored.groupby("week", sort=True)
    }
    return pd.DataFrame.from_dict(rows, orient="index").rename_axis("week")


def lead_time(scored: pd.DataFrame, share: float = 0.10) -> dict[str, float]:
    """Days from first entering the top ``share`` to leaving, over registrations left on a recorded day.

    Those are the registrations that ended without completing and have an unregistration day: the
    withdrawals, and any fail the data dates.

    Parameters
    ----------
    scored
        As for ``weekly_metrics``, plus ``outcome_day`` (withdrawal day, missing otherwise) and
        the registration keys.

    Returns
    -------
    dict
        withdrawals, share reached before withdrawing, median and mean lead days.
    """
    frame = scored.copy()
    frame["top"] = False
    for _, idx in frame.groupby("week").groups.items():
        frame.loc[idx, "top"] = top_share(frame.loc[idx, "probability"].to_numpy(), share)
    keys = ["student_id", "module_id", "presentation_id"]
    withdrew = frame[(frame["label"] == 1) & frame["outcome_day"].notna()]
    total = withdrew[keys].drop_duplicates().shape[0]
    flagged = withdrew[withdrew["top"] & (7 * withdrew["week"] <= withdrew["outcome_day"])]
    first = flagged.groupby(keys).agg(week=("week", "min"), outcome_day=("outcome_day", "first"))
    days = (first["outcome_day"].astype(float) - 7 * first["week"]).to_numpy()
    return {
        "withdrawals": float(total),
        "reached_before_withdrawal": float(len(days) / total) if total else math.nan,
        "median_lead_days": float(np.median(days)) if len(days) else math.nan,
        "mean_lead_days": float(np.mean(days)) if len(days) else math.nan,
    }


SUSPICIOUS_AUC = 0.98  # above this on a later cohort, an outcome has almost certainly leaked into the data


def _auc_by_column(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each column's AUC as a score for ``y`` (Mann-Whitney, ties averaged), folded to at least 0.5."""
    positives = int(y.sum())
    negatives = len(y) - positives
    if positives == 0 or negatives == 0:
        return np.full(x.shape[1], np.nan)
    ranks = rankdata(x, axis=0)
    auc = (ranks[y == 1].sum(axis=0) - positives * (positives + 1) / 2) / (positives * negatives)
    folded: np.ndarray = np.maximum(auc, 1 - auc)
    return folded


def small_test_warnings(test_weekly: pd.DataFrame) -> tuple[str, ...]:
    """One warning naming the weeks whose test cohort is too small to judge the model on, if any.

    ``test_weekly`` is ``weekly_metrics``' frame (``n`` and ``positives`` per week). Found on a
    rolling-start college's data: the default test set was one monthly intake of 14 students, and its
    AUC of 0.24 at week 2 and 1.000 from week 11 were printed without a word.
    """
    small = test_weekly[
        (test_weekly["n"] < SMALL_TEST_ROWS) | (test_weekly["positives"] < SMALL_TEST_POSITIVES)
    ]
    if small.empty:
        return ()
    weeks = [int(str(w)) for w in small.index]
    named = f"week {weeks[0]}" if len(weeks) == 1 else f"weeks {_spans(weeks)}"
    return (
        f"{named}: the test set holds {_range(small['n'])} registrations, {_range(small['positives'])} of "
        f"them with the outcome the model estimates (fewer than {SMALL_TEST_ROWS}, or than "
        f"{SMALL_TEST_POSITIVES}): "
        "figures this small say little about the model. Hold more later presentations with an earlier "
        "--test-from (rolling or monthly intakes need several)",
    )


#: A training presentation with more than this many times the median weeks of the others, and at
#: least ``LONG_SHARE`` of the training rows, is named (``long_presentation_warnings``).
LONG_FACTOR = 2.0
LONG_SHARE = 0.2


def long_presentation_warnings(trained: pd.DataFrame) -> tuple[str, ...]:
    """A warning per training presentation far longer than the typical one that makes much of the rows.

    ``trained``: the training rows' keys (module_id, presentation_id, week). A Nigerian university's
    semester that a strike extended to 48 weeks, against 16 or 17 for every other, made 47% of the
    training rows, and its weeks after the 17th were in no other presentation; training said nothing.
    """
    if trained.empty:
        return ()
    by = trained.groupby(["module_id", "presentation_id"], sort=True)["week"]
    keys = [f"{m} {p}" for m, p in by.max().index.to_list()]
    last, rows = by.max().to_numpy(dtype=np.int64), by.size().to_numpy()
    out = []
    for k, (name, weeks) in enumerate(zip(keys, last.tolist(), strict=True)):
        others = np.delete(last, k)
        share = rows[k] / len(trained)
        if not len(others) or weeks <= LONG_FACTOR * float(np.median(others)) or share < LONG_SHARE:
            continue
        beyond = int(others.max())
        unique = (
            f"; its weeks {beyond + 1} to {weeks} are in no other presentation trained on"
            if beyond < weeks
            else ""
        )
        out.append(
            f"{name}: {weeks} weeks against a median of {float(np.median(others)):g} for the others, and "
            f"{share:.0%} of the training rows{unique}. If its calendar was extended by a pause (a strike, a "
            "closure), its weeks are counted through it and the model learns mostly from that one "
            'presentation: tell the committee (docs/bring-your-own-data.md, "A semester suspended and '
            'resumed")'
        )
    return tuple(out)


#: At or below this on a later cohort large enough to judge, the model ranks no better than chance.
CHANCE_AUC = 0.55


def chance_warnings(test_weekly: pd.DataFrame) -> tuple[str, ...]:
    """One warning naming the weeks whose test AUC is at chance level on a test cohort large enough.

    Found on an art school's data: a candidate with test AUC 0.45 to 0.51 at every week was trained
    and registered without a word (the audit's quality gate would stop it later, after the committee's
    time). Weeks too small to judge are left to ``small_test_warnings``.
    """
    judged = test_weekly[
        (test_weekly["n"] >= SMALL_TEST_ROWS) & (test_weekly["positives"] >= SMALL_TEST_POSITIVES)
    ]
    weak = judged[judged["auc"].astype(float) <= CHANCE_AUC]
    if weak.empty:
        return ()
    weeks = [int(str(w)) for w in weak.index]
    named = f"week {weeks[0]}" if len(weeks) == 1 else f"weeks {_spans(weeks)}"
    aucs = weak["auc"].astype(float)
    said = f"{aucs.min():.2f}" if aucs.min() == aucs.max() else f"{aucs.min():.2f} to {aucs.max():.2f}"
    return (
        f"{named}: test AUC {said}, no better than chance (at most {CHANCE_AUC}): the model does not "
        "rank the later students by the outcome. Check the outcome's mapping (a value mapped the wrong "
        "way round), that the later presentations' activity was imported, and that their ids match "
        "the training presentations' (the audit's quality gate judges the weeks it audits against its "
        "floors)",
    )


def _range(values: pd.Series) -> str:
    low, high = int(values.min()), int(values.max())
    return f"{low:,}" if low == high else f"{low:,} to {high:,}"


def _spans(weeks: list[int]) -> str:
    """E.g. ``2 to 9, 12``: runs of consecutive weeks."""
    runs: list[list[int]] = []
    for w in weeks:
        if runs and w == runs[-1][-1] + 1:
            runs[-1].append(w)
        else:
            runs.append([w])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]} to {r[-1]}" for r in runs)


#: A flag of a value not recorded that alone ranks the later cohort this well says more of the mapping
#: than of the students: whether a registration's day was recorded should not tell its outcome.
MISSING_AUC = 0.75


def _missing_warnings(
    features: pd.DataFrame, *, feature_names: tuple[str, ...], skipped: set[int]
) -> list[str]:
    """Warnings for a not-recorded flag (``*_missing``) that alone ranks a week's test cohort well.

    A French school followed the resit recipe, and its rattrapage rows, kept as the last, carried no
    registration date: "registration day not recorded" was true of every student who failed the first
    session and reached AUC 0.915 alone, the model's week 2 AUC 0.920 against 0.711 with the date read
    from the first row; below 0.98, nothing was said.
    """
    flags = [n for n in feature_names if n.endswith("_missing")]
    worst: dict[str, tuple[float, int]] = {}
    for week, rows in features.groupby("week", sort=True):
        if int(str(week)) in skipped or not flags:
            continue
        aucs = _auc_by_column(rows[flags].to_numpy(dtype=np.float64), rows["label"].to_numpy())
        for name, auc in zip(flags, aucs, strict=True):
            if not math.isnan(auc) and auc > MISSING_AUC and auc > worst.get(name, (0.0, 0))[0]:
                worst[name] = (float(auc), int(str(week)))
    return [
        f"feature {name} (a value not recorded) alone reaches AUC {auc:.3f} on the later cohort (week "
        f"{week}): whether a value was recorded should not tell the outcome. Check the mapping leaves it "
        "empty only where the records do, not on rows the outcome made (a resit's row kept as the last, "
        "without the enrolment date)"
        for name, (auc, week) in sorted(worst.items())
        if auc <= SUSPICIOUS_AUC  # above it, the warning before names it
    ]


def leakage_warnings(
    test_weekly: pd.DataFrame, features: pd.DataFrame, *, feature_names: tuple[str, ...]
) -> tuple[str, ...]:
    """Warnings when the later cohort is predicted suspiciously well, by the model or one feature alone.

    ``features`` holds ``week``, ``label`` and the features of the test rows. An AUC above
    ``SUSPICIOUS_AUC`` on students the model never saw usually means the target's mapping lets the
    outcome into the data (a withdrawal date that stops activity, a mark recorded only for finishers).
    A week too small to judge (``small_test_warnings`` names it) is not read: a conservatoire's test
    cohort of 12 with 2 outcomes reached AUC 1.000 by chance, and 19 warnings blamed the mapping.
    Nor is a week that, for most test registrations, comes after their presentation's last day (an
    ``ended`` column in ``features``): there the whole run is seen and the outcome is all but
    settled (an online university's 8-week modules at week 8, AUC 0.993, and a warning telling the
    team to fix a mapping that was right); one note names such weeks instead.
    """
    small = {
        int(str(w))
        for w in test_weekly.index[
            (test_weekly["n"] < SMALL_TEST_ROWS) | (test_weekly["positives"] < SMALL_TEST_POSITIVES)
        ]
    }
    late: list[int] = []
    partly: dict[int, float] = {}
    if "ended" in features:
        ended = features.groupby("week")["ended"].mean()
        late = sorted(
            int(str(w)) for w, share in ended.items() if share >= ENDED_SHARE and int(str(w)) not in small
        )
        partly = {
            int(str(w)): float(share)
            for w, share in ended.items()
            if PARTLY_ENDED_SHARE <= share < ENDED_SHARE and int(str(w)) not in small
        }
        small |= set(late)
    out = [
        f"week {int(str(week))}: test AUC {float(auc):.3f} is above {SUSPICIOUS_AUC}; check that the "
        "target's mapping does not let the outcome into the features"
        for week, auc in test_weekly["auc"].items()
        if not math.isnan(float(auc)) and float(auc) > SUSPICIOUS_AUC and int(str(week)) not in small
    ]
    worst: dict[str, tuple[float, int]] = {}
    for week, rows in features.groupby("week", sort=True):
        if int(str(week)) in small:
            continue
        aucs = _auc_by_column(rows[list(feature_names)].to_numpy(dtype=np.float64), rows["label"].to_numpy())
        for name, auc in zip(feature_names, aucs, strict=True):
            if not math.isnan(auc) and auc > SUSPICIOUS_AUC and auc > worst.get(name, (0.0, 0))[0]:
                worst[name] = (float(auc), int(str(week)))
    out += [
        f"feature {name} alone reaches AUC {auc:.3f} on the later cohort (week {week}); check what it "
        "records after the outcome is known"
        for name, (auc, week) in sorted(worst.items())
    ]
    out += _missing_warnings(features, feature_names=feature_names, skipped=small)
    if late:
        named = f"week {late[0]}" if len(late) == 1 else f"weeks {_spans(late)}"
        out.append(
            f"{named}: most test registrations' presentations have ended by the cut-off, so their outcome "
            "is all but known and the figures say little about early warning (not checked for leakage); "
            "read the earlier weeks"
        )
    out += [
        f"week {week}: {share:.0%} of test registrations' presentations have ended by the cut-off (short "
        "sessions at their last week, say): their outcome is all but known, so this week's figures are "
        "higher than early warning alone would reach"
        for week, share in sorted(partly.items())
    ]
    return tuple(out)
