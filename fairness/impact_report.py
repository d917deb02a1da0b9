"""The committee's impact evaluation: who was contacted, against whom, overall and by group.

Each student reached since the start date is compared as they stood in the last scoring run before
the first contact (their estimate and the features of that week); students never reached are the
possible comparisons, at every run. Outcomes come from the data folder (a registration completed
when its final result is pass or distinction; one still running is left out). By characteristic and
intersection the comparison is made within the group, under the audit's small-cell rules
(``fairness.disclosure``): a group whose contacted students, those of them who completed or did not,
or whose possible comparisons number fewer than the minimum is withheld, name and all. Protected
characteristics are read only here (``fairness.protected``), and only in aggregate.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from waymark.fairness.audit import group_labels
from waymark.fairness.disclosure import TOO_FEW, enough_students, published_share, rounded_count
from waymark.fairness.discontinuity import DiscontinuitySettings, discontinuity
from waymark.fairness.impact import Estimate, ImpactSettings, estimate
from waymark.fairness.policy import Policy
from waymark.fairness.protected import load_protected_characteristics
from waymark.models.data import folder_fingerprint, load_learning_data
from waymark.models.features import FEATURE_NAMES, KEYS, build_features

REGISTRATION = ["student_id", "module_id", "presentation_id"]
COMPLETED = ("pass", "distinction")
CANNOT_SHOW = (
    "This compares contacted students with students who were not contacted but looked the same to "
    "Waymark at the time: the same estimate and the same recorded activity and results. Staff also "
    "knew things Waymark does not (a conversation, a circumstance); if they chose whom to contact by "
    "those, the comparison cannot see it, and the difference may be partly theirs rather than "
    "outreach's.",
    "An interval is the range the figure could plausibly take given how few students it rests on. "
    "An interval that spans zero means this evaluation cannot tell whether outreach helped.",
    "Groups with too few contacted students, or too few who completed or did not, are not shown: "
    "their figures would be too uncertain to read and could identify students.",
    "Contacted students for whom no comparable student was found are left out and counted; the "
    "figures describe the contacted students who could be matched.",
    "Outcomes of presentations still running are not known yet; those students are not counted.",
    "The view at the capacity cut compares students just inside and just outside the number staff could "
    "contact from each module's list. It does not depend on what staff knew, but it speaks only for "
    "students near the cut, and only where staff worked down the list in order.",
)
NOT_FOLLOWED = (
    "staff did not work down the list in order closely enough for the students either side of the cut "
    "to differ in whether they were contacted"
)


def build_units(
    indicators: pd.DataFrame, contacts: pd.DataFrame, *, since: datetime, outcomes: pd.DataFrame
) -> tuple[pd.DataFrame, int]:
    """Each contacted student at their last run before contact, and every student not yet contacted.

    Each scoring run is its own comparison: a student contacted before the next run (their last run
    before their first contact) is contacted there, and every student not contacted by then is a
    possible comparison there, those contacted at a later run included. Taking as comparisons only
    students never contacted at all chooses them by their future (never contacted, so never needing
    it): a statistician's review found that, with outreach doing nothing and students' chances
    drifting over a term, the matched estimate said it lowered completion by 19 points. A student's
    rows after their first contact are no unit; a student first contacted before ``since`` is none.

    Returns
    -------
    tuple
        The units (``unit``, ``stratum`` = run, ``contacted``, ``completed``, ``estimate_logit``,
        ``order_logit`` (the list's order: the estimate, or its smoothed value), the keys) and how
        many contacted students had no indicator before their first contact.
    """
    start = pd.Timestamp(since).tz_convert(UTC)
    first = contacts.groupby("student_id")["contacted_at"].min()
    reached = set(first.index[first >= start])
    # merged rather than mapped: with no contact recorded, the empty times cannot be mapped as times
    first_contact = indicators[["student_id"]].merge(
        first.rename("first_contact"), left_on="student_id", right_index=True, how="left"
    )["first_contact"]
    before = indicators[first_contact.isna().to_numpy() | (indicators["run_at"] <= first_contact).to_numpy()]
    at_contact = before["student_id"].isin(reached) & (
        before["run_at"] == before.groupby("student_id")["run_at"].transform("max")
    )
    earlier = before["student_id"].isin(set(first.index) - reached)
    units = pd.concat(
        [before[at_contact].assign(contacted=True), before[~at_contact & ~earlier].assign(contacted=False)],
        ignore_index=True,
    )
    units = units.merge(outcomes, on=REGISTRATION, how="inner")
    p = units["probability"].clip(1e-4, 1 - 1e-4)
    order = units["priority"].fillna(units["probability"]) if "priority" in units.columns else p
    order = order.clip(1e-4, 1 - 1e-4)
    units = units.assign(
        unit=units[REGISTRATION].astype(str).agg("/".join, axis=1),
        stratum=units["run_id"],
        estimate_logit=np.log(p / (1 - p)),
        order_logit=np.log(order / (1 - order)),
    )
    return units, len(reached - set(before.loc[at_contact, "student_id"]))


def outcomes_of(folder: Path) -> pd.DataFrame:
    """``completed`` (0/1) for each registration whose final result is known."""
    registrations = load_learning_data(folder).registrations
    known = registrations[registrations["final_result"].notna()]
    return known[REGISTRATION].assign(completed=known["final_result"].isin(COMPLETED).astype(int))


def with_features(units: pd.DataFrame, folder: Path) -> tuple[pd.DataFrame, list[str]]:
    """The units with the features of their week, from the data folder (as of that week, leakage-free)."""
    features = build_features(load_learning_data(folder))
    joined = units.merge(features[[*KEYS, *FEATURE_NAMES]], on=list(KEYS), how="left")
    names = [n for n in FEATURE_NAMES if joined[n].dropna().std() > 0]  # constant features say nothing
    joined[names] = joined[names].astype(np.float64).fillna(joined[names].median())
    return joined, ["estimate_logit", *names]


def _number(value: float) -> float | None:
    return None if math.isnan(value) else round(float(value), 4)


def _counts_allow(units: pd.DataFrame, min_size: int) -> bool:
    """The small-cell rule: contacted, of them completed and not, and possible comparisons."""
    contacted = units.loc[units["contacted"]].drop_duplicates("unit")
    counts = [
        len(contacted),
        int(contacted["completed"].sum()),
        int((1 - contacted["completed"]).sum()),
        units.loc[~units["contacted"], "unit"].nunique(),
    ]
    return bool(np.all(enough_students(np.array(counts), min_size)))


def _published(result: Estimate, step: int) -> dict[str, Any]:
    # Completion rates are shares of counted students: on the step their rounded counts allow
    # (fairness.disclosure.published_share); four decimals beside counts rounded to 5 gave them back.
    matched = rounded_count(result.matched, step)
    contacted = rounded_count(result.contacted, step)
    return {
        "effect": [published_share(v, students=matched, step=step) for v in result.effect],
        "naive": [published_share(v, students=contacted, step=step) for v in result.naive],
        "contacted": contacted,
        "matched": matched,
        "comparison": rounded_count(result.comparison, step),
        "completed_contacted": published_share(result.completed_contacted, students=matched, step=step),
        "completed_comparison": published_share(result.completed_comparison, students=matched, step=step),
        "balance": {k: [_number(b), _number(a)] for k, (b, a) in result.balance.items()},
    }


def at_the_cut(units: pd.DataFrame, *, settings: ImpactSettings, policy: Policy) -> dict[str, Any]:
    """The capacity-cut view (``fairness.discontinuity``), withheld under the small-cell rule."""
    found = discontinuity(
        units,
        settings=DiscontinuitySettings(
            resamples=settings.resamples, confidence=settings.confidence, seed=settings.seed
        ),
    )
    counts = np.array([found.inside, found.outside, *found.cells])  # as _counts_allow: outcomes too
    if not np.all(enough_students(counts, policy.min_group_size)):
        return {"withheld": TOO_FEW}
    step = policy.count_rounding
    out: dict[str, Any] = {
        "followed": found.followed,
        "first_stage": [_number(v) for v in found.first_stage],
        "lists": found.lists,
        "inside": rounded_count(found.inside, step),
        "outside": rounded_count(found.outside, step),
    }
    if not found.followed:
        return {**out, "why": NOT_FOLLOWED}
    return {**out, "effect": [_number(v) for v in found.effect]}


def by_group(
    units: pd.DataFrame,
    labels: pd.DataFrame,
    *,
    covariates: list[str],
    settings: ImpactSettings,
    policy: Policy,
) -> list[dict[str, Any]]:
    """The comparison within each group of each characteristic and pair, small cells withheld."""
    out = []
    for attribute in labels.columns:
        groups = labels[attribute].reindex(units["student_id"]).to_numpy()
        withheld = 0
        for name in sorted({g for g in groups if isinstance(g, str)}):
            inside = units[groups == name]
            if not _counts_allow(inside, policy.min_group_size):
                withheld += 1  # not even its name is shown
                continue
            found = estimate(inside, covariates=covariates, settings=settings)
            out.append({"attribute": attribute, "group": name, **_published(found, policy.count_rounding)})
        if withheld:
            out.append({"attribute": attribute, "group": None, "withheld_groups": withheld, "why": TOO_FEW})
    return out


def evaluate_impact(
    indicators: pd.DataFrame,
    contacts: pd.DataFrame,
    *,
    folder: Path,
    since: datetime,
    policy: Policy,
    settings: ImpactSettings,
) -> dict[str, Any]:
    """The published impact evaluation (aggregate only, small cells withheld, counts rounded).

    Parameters
    ----------
    indicators
        ``run_id, run_at, student_id, module_id, presentation_id, week, probability`` of the runs
        since ``since`` (``service.impact.indicators_since``).
    contacts
        ``student_id, contacted_at``: when each student was first reached (``service.impact``).
    folder
        The data folder the outcomes, features and protected characteristics come from.
    since
        Contacts made from this time on are evaluated.
    policy
        The fairness policy (minimum group size, rounding, intersections).
    settings
        Matching and bootstrap settings.

    Returns
    -------
    dict
        The report, ready for JSON.
    """
    units, no_indicator = build_units(indicators, contacts, since=since, outcomes=outcomes_of(folder))
    units, covariates = with_features(units, folder)
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "since": since.isoformat(),
        "data_fingerprint": folder_fingerprint(folder),
        "settings": {**vars(settings), "min_group_size": policy.min_group_size},
        "contacted_without_indicator": no_indicator,
        "cannot_show": list(CANNOT_SHOW),
        "overall": None,
        "at_the_cut": None,
        "groups": [],
    }
    if not _counts_allow(units, policy.min_group_size):
        report["overall_withheld"] = TOO_FEW
        return report
    report["overall"] = _published(
        estimate(units, covariates=covariates, settings=settings), policy.count_rounding
    )
    report["at_the_cut"] = at_the_cut(units, settings=settings, policy=policy)
    protected = load_protected_characteristics(folder)
    if protected is not None and protected.attributes:
        labels = group_labels(protected, intersections=policy.intersections)
        report["groups"] = by_group(units, labels, covariates=covariates, settings=settings, policy=policy)
    return report


def render_html(report: dict[str, Any]) -> str:
    """impact.html: the report for people (the same figures as the JSON)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(__file__).with_name("templates")),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return env.get_template("impact.html.j2").render(report=report)


def headline(report: dict[str, Any]) -> dict[str, float]:
    """The overall figures as MLflow metrics (none when withheld)."""
    overall = report.get("overall") or {}
    names = ("effect", "effect_low", "effect_high")
    found = dict(zip(names, overall.get("effect") or (), strict=False))
    found["naive"] = (overall.get("naive") or [None])[0]
    return {k: float(v) for k, v in found.items() if v is not None}
