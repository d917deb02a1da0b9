"""``waymark monitor``: the latest scoring run against training and the run before, and the list's stability.

Everything here is read from what runs stored (``run_summaries``, the indicators of kept runs) and is
aggregate: counts, shares and indices by feature, module presentation and source, never a student.
Groups of protected characteristics are compared by the fairness package (``fairness.monitoring``),
which the command line calls and whose aggregate result joins the report before it is stored.
"""

from __future__ import annotations

import math
import tomllib
from collections import defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import Engine, func, or_, select

from waymark.models import drift, stability
from waymark.service import decisions, objections
from waymark.service.db.engine import transaction
from waymark.service.db.schema import (
    Indicator,
    MonitoringReport,
    Publication,
    RunSummary,
    ScoringRun,
    estimates_withdrawn,
)

DEFAULT_POLICY = Path(__file__).with_name("monitoring_policy.toml")
Summaries = dict[tuple[str, str], dict[str, Any]]  # (module, presentation) -> kind -> summary


class MonitoringError(ValueError):
    """The monitor cannot run as asked; the message says why."""


@dataclass(frozen=True)
class MonitoringPolicy:
    """Thresholds and the smoothing choice (``monitoring_policy.toml``)."""

    psi_watch: float
    psi_flag: float
    min_rows: int
    coverage_drop_ratio: float
    coverage_min_share: float
    group_psi_flag: float
    shares: tuple[float, ...]
    turnover_flag: float
    smoothing: float
    history_runs: int


def load_policy(path: Path | None = None) -> MonitoringPolicy:
    """The monitoring policy in ``path`` (the packaged one when None).

    Raises
    ------
    MonitoringError
        If a section or value is missing or out of range (the message names it).
    """
    where = path or DEFAULT_POLICY
    try:
        raw = tomllib.loads(where.read_text(encoding="utf-8"))
        policy = MonitoringPolicy(
            psi_watch=float(raw["drift"]["watch"]),
            psi_flag=float(raw["drift"]["flag"]),
            min_rows=int(raw["drift"]["min_rows"]),
            coverage_drop_ratio=float(raw["coverage"]["drop_ratio"]),
            coverage_min_share=float(raw["coverage"]["min_share"]),
            group_psi_flag=float(raw["groups"]["flag"]),
            shares=tuple(float(s) for s in raw["stability"]["shares"]),
            turnover_flag=float(raw["stability"]["flag"]),
            smoothing=float(raw["stability"]["smoothing"]),
            history_runs=int(raw["stability"]["history_runs"]),
        )
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise MonitoringError(f"cannot read the monitoring policy {where}: {exc}") from exc
    except KeyError as exc:
        raise MonitoringError(f"the monitoring policy {where} lacks {exc.args[0]!r}") from exc
    if not 0 <= policy.smoothing < 1 or not policy.shares or not all(0 < s < 1 for s in policy.shares):
        raise MonitoringError(
            f"the monitoring policy {where}: stability.smoothing must be in [0, 1) and each of "
            "stability.shares between 0 and 1"
        )
    return policy


def runs_of(engine: Engine, target: str) -> list[ScoringRun]:
    """The complete runs for ``target`` up to the one served, newest first (the served one first).

    An earlier run of a version the committee has since rejected is left out, as from every history:
    neither the run before nor the list's stability is measured against estimates that reach no one.
    """
    with transaction(engine) as session:
        served = session.scalar(select(Publication.run_id).where(Publication.target == target))
        if served is None:
            raise MonitoringError(f"no scoring run is published for {target}: run `waymark score` first")
        return list(
            session.scalars(
                select(ScoringRun)
                .where(ScoringRun.target == target, ScoringRun.status == "complete", ScoringRun.id <= served)
                .where(
                    or_(
                        ScoringRun.id == served,
                        ~estimates_withdrawn(ScoringRun.model_name, ScoringRun.model_version),
                    )
                )
                .order_by(ScoringRun.id.desc())
            )
        )


def summaries_of(engine: Engine, run_id: int) -> Summaries:
    """A run's stored summaries by module presentation and kind."""
    out: Summaries = defaultdict(dict)
    with transaction(engine) as session:
        for row in session.scalars(select(RunSummary).where(RunSummary.run_id == run_id)):
            out[(row.module_id, row.presentation_id)][row.kind] = row.summary
    return dict(out)


def estimates_of(engine: Engine, run_id: int) -> pd.DataFrame:
    """One run's estimates: student, module, presentation, probability (for lists and group figures)."""
    with transaction(engine) as session:
        rows = session.execute(
            select(
                Indicator.student_id, Indicator.module_id, Indicator.presentation_id, Indicator.probability
            ).where(Indicator.run_id == run_id, objections.not_restricted(Indicator.student_id))
        ).all()
    return pd.DataFrame(rows, columns=[*stability.KEY, "probability"])


def left_out_since_scored(engine: Engine, run_id: int) -> bool:
    """Whether students of run ``run_id`` were left out after it was scored (a restriction, an erasure).

    Its group figures then differ from an earlier report's of the same run only by those students, and
    two reports side by side give back every characteristic of one who objected (a red team's
    finding): such a run's group figures are not published (``waymark monitor``). A run's indicators
    are never added to once it is complete, so fewer readable than it stored means someone left.
    """
    with transaction(engine) as session:
        stored = session.scalar(select(ScoringRun.students).where(ScoringRun.id == run_id)) or 0
        readable = session.scalar(
            select(func.count())
            .select_from(Indicator)
            .where(Indicator.run_id == run_id, objections.not_restricted(Indicator.student_id))
        )
    return int(readable or 0) < int(stored)


def audit_reference(engine: Engine, run_id: int) -> dict[str, Any] | None:
    """The group reference of the run's model: its latest audit's shares at the run's week (or nearest).

    None when the model version was never audited, or audited before the audit kept a reference.
    """
    with transaction(engine) as session:
        run = session.get(ScoringRun, run_id)
        week = session.scalar(select(func.max(Indicator.week)).where(Indicator.run_id == run_id))
        audited = run and decisions.latest_audit(session, run.model_name, version=run.model_version)
        report = decisions.audit_report(session, audited) if audited else None
    by_week = (report or {}).get("estimate_reference") or {}
    chosen = drift.reference_week(by_week, int(week or 0))
    return None if chosen is None else dict(by_week[chosen])


def _finite(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 4)


def _flag(kind: str, *, scope: str, name: str, value: float, threshold: float) -> dict[str, Any]:
    return {"kind": kind, "scope": scope, "name": name, "value": round(value, 4), "threshold": threshold}


def feature_drift(
    latest: Summaries, previous: Summaries | None, *, policy: MonitoringPolicy, same_model: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """PSI of each feature against training (this run and the previous one), overall and by module.

    Overall figures pool the module presentations compared with the same reference week. The
    previous run's PSI against training is its own (at the reference week it used most), so a growing
    drift shows; against the previous run directly only with the same model and reference week.
    Modules are not judged one by one here: each differs from the pooled training data by design (on
    the synthetic cohorts most modules would be flagged); a module's own changes show in its estimates
    and coverage against the previous run.
    """
    rows, flags = [], []
    now, before = _pool_features(latest), _pool_features(previous or {})
    # The previous run's own drift from training, for each feature at the reference week it used most.
    then = {name: (week, pair) for (week, name), pair in sorted(before.items(), key=lambda kv: sum(kv[1][0]))}
    for (week, name), (actual, expected) in sorted(now.items()):
        psi = drift.psi(expected, actual)
        earlier_week, earlier = then.get(name, (None, None))
        comparable = earlier is not None and same_model and earlier_week == week
        rows.append(
            {
                "reference_week": week,
                "feature": name,
                "psi_training": _finite(psi),
                "psi_training_previous": _finite(drift.psi(earlier[1], earlier[0])) if earlier else None,
                "psi_previous": _finite(drift.psi(earlier[0], actual)) if earlier and comparable else None,
            }
        )
        if psi >= policy.psi_flag:
            flags.append(
                _flag("feature", scope="all modules", name=name, value=psi, threshold=policy.psi_flag)
            )
    return rows, flags


def _pool_features(runs: Summaries) -> dict[tuple[int, str], tuple[list[int], list[float]]]:
    pooled: dict[tuple[int, str], tuple[list[int], list[float]]] = {}
    for kinds in runs.values():
        summary = kinds.get("features", {})
        week = summary.get("reference_week")
        for name, actual in summary.get("counts", {}).items():
            counts, expected = pooled.get((week, name), ([], summary["expected"][name]))
            merged = list(actual) if not counts else [a + b for a, b in zip(counts, actual, strict=True)]
            pooled[(week, name)] = (merged, expected)
    return pooled


#: What a module presentation's row shows only with at least the disclosure minimum of students: with
#: fewer, its mean and bands of estimates, or its weekly shares active, come close to each student's own.
WITHHELD = "fewer students than the disclosure minimum"
ESTIMATE_FIGURES = ("mean", "previous_mean", "psi_training", "psi_previous", "shares")
COVERAGE_FIGURES = ("weekly_share", "latest_share", "baseline_share")
TURNOVER_FIGURES = ("turnover", "turnover_smoothed")


def _withheld(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {**row, **dict.fromkeys(names), "withheld": WITHHELD}


def estimate_drift(
    latest: Summaries,
    previous: Summaries | None,
    *,
    policy: MonitoringPolicy,
    min_students: int,
    hidden: frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The estimates' distribution by module presentation and overall: PSI against training and last run."""
    rows, flags = [], []
    scopes: list[tuple[str, list[dict[str, Any]], list[dict[str, Any]]]] = [
        (
            "all modules",
            [k["estimates"] for k in latest.values()],
            [k["estimates"] for k in (previous or {}).values()],
        )
    ]
    for key, kinds in sorted(latest.items()):
        earlier = (previous or {}).get(key, {}).get("estimates")
        scopes.append((f"{key[0]}/{key[1]}", [kinds["estimates"]], [earlier] if earlier else []))
    for scope, now, before in scopes:
        row = _estimate_row(scope, now, before=before)
        small = scope != "all modules" and (row["rows"] < min_students or scope in hidden)
        rows.append(_withheld(row, ESTIMATE_FIGURES) if small else row)
        if small or (sum(s["rows"] for s in now) < policy.min_rows and scope != "all modules"):
            continue
        for against in ("psi_training", "psi_previous"):
            if row[against] is not None and row[against] >= policy.psi_flag:
                flags.append(
                    _flag(
                        f"estimates ({against[4:]})",
                        scope=scope,
                        name="estimate",
                        value=row[against],
                        threshold=policy.psi_flag,
                    )
                )
    return rows, flags


def _estimate_row(scope: str, now: list[dict[str, Any]], *, before: list[dict[str, Any]]) -> dict[str, Any]:
    counts = drift.pooled(now, "counts") if now else []
    with_reference = [s for s in now if s.get("expected")]
    expected = (
        [sum(s["expected"][i] * s["rows"] for s in with_reference) for i in range(len(counts))]
        if with_reference
        else []
    )
    earlier = drift.pooled(before, "counts") if before else []
    rows = sum(s["rows"] for s in now)
    return {
        "scope": scope,
        "rows": rows,
        "mean": _finite(sum(s["mean"] * s["rows"] for s in now) / rows) if rows else None,
        "previous_mean": _finite(sum(s["mean"] * s["rows"] for s in before) / sum(s["rows"] for s in before))
        if before
        else None,
        "psi_training": _finite(drift.psi(expected, counts)) if expected else None,
        "psi_previous": _finite(drift.psi(earlier, counts)) if earlier else None,
        "shares": [round(float(s), 4) for s in drift.shares(counts)],
    }


def coverage_drift(
    latest: Summaries,
    previous: Summaries | None,
    *,
    policy: MonitoringPolicy,
    min_students: int,
    hidden: frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Share of each module presentation's students active from each source, week by week; drops flagged.

    The latest week's share is compared with the previous run's latest week for the same module
    presentation and source, else with the mean of the three weeks before it in this run.
    """
    rows, flags = [], []
    for (module, pres), kinds in sorted(latest.items()):
        summary = kinds["coverage"]
        registered = max(summary["registered"], 1)
        small = summary["registered"] < min_students or f"{module}/{pres}" in hidden
        earlier = (previous or {}).get((module, pres), {}).get("coverage")
        for source, active in sorted(summary["active"].items()):
            shares = [a / registered for a in active]
            baseline = _baseline(shares, earlier, source=source)
            row = {
                "module": f"{module}/{pres}",
                "source": source,
                "weekly_share": [round(s, 4) for s in shares],
                "latest_share": _finite(shares[-1]) if shares else None,
                "baseline_share": _finite(baseline),
            }
            rows.append(_withheld(row, COVERAGE_FIGURES) if small else row)
            dropped = (
                not small
                and shares
                and baseline >= policy.coverage_min_share
                and shares[-1] < policy.coverage_drop_ratio * baseline
            )
            if dropped:
                flags.append(
                    _flag("coverage", scope=row["module"], name=source, value=shares[-1], threshold=baseline)
                )
    return rows, flags


def _baseline(shares: list[float], earlier: dict[str, Any] | None, *, source: str) -> float:
    if earlier and earlier["active"].get(source):
        return float(earlier["active"][source][-1] / max(earlier["registered"], 1))
    before = shares[-4:-1]
    return sum(before) / len(before) if before else float("nan")


def list_stability(
    runs: list[pd.DataFrame],
    *,
    policy: MonitoringPolicy,
    min_students: int,
    hidden: frozenset[str] = frozenset(),
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Turnover of each module presentation's list since the previous run, with and without smoothing.

    ``runs`` are estimates oldest first (the latest last). Smoothing is the policy's; with it off the
    smoothed figures are shown for a weight of 0.5, as what it would change (docs/monitoring.md).
    The flag judges the list staff see: the smoothed order's turnover when the policy smooths it.
    """
    if len(runs) < 2:  # a turnover needs two runs
        return [], []
    weight = policy.smoothing or 0.5
    smooth = stability.smoothed(runs, weight)
    rows: list[dict[str, Any]] = []
    flags: list[dict[str, Any]] = []
    latest = runs[-1]
    scopes = latest["module_id"].astype(str) + "/" + latest["presentation_id"].astype(str)
    sizes: dict[str, int] = {str(k): int(v) for k, v in scopes.value_counts().items()}
    for share in policy.shares:
        raw = stability.turnover_by_module(runs[-2], runs[-1], share=share).to_dict("records")
        steadied = stability.turnover_by_module(smooth[-2], smooth[-1], share=share, score="smoothed")
        for r, s in zip(raw, steadied.to_dict("records"), strict=True):
            row: dict[str, Any] = {
                "module": f"{r['module_id']}/{r['presentation_id']}",
                "share": share,
                "listed": int(r["listed"]),
                "turnover": _finite(r["turnover"]),
                "turnover_smoothed": _finite(s["turnover"]),
            }
            small = sizes[row["module"]] < min_students or row["module"] in hidden
            rows.append(_withheld(row, TURNOVER_FIGURES) if small else row)
            judged = not small and share == policy.shares[0] and sizes[row["module"]] >= policy.min_rows
            # with smoothing on, staff see the smoothed order: its turnover is the one judged
            seen = row["turnover_smoothed"] if policy.smoothing else row["turnover"]
            if judged and seen is not None and seen >= policy.turnover_flag:
                name = f"top {share:.0%}" + (" (smoothed order)" if policy.smoothing else "")
                value, threshold = seen, policy.turnover_flag
                flags.append(
                    _flag("list turnover", scope=row["module"], name=name, value=value, threshold=threshold)
                )
        delays = stability.entry_delays(runs, share, weight=weight)
        rows.append(
            {
                "module": "all modules",
                "share": share,
                "smoothing_weight": weight,
                **{k: _finite(v) for k, v in delays.items()},
            }
        )
    return rows, flags


def withheld_modules(summaries: list[Summaries], *, min_students: int) -> frozenset[str]:
    """The module presentations ("module/presentation") whose figures are withheld in the report.

    Those with fewer scored students than ``min_students`` in a run they are in, and then enough
    beside them that the figures for all modules, less those shown, never give one back: in every
    run, the withheld modules are none, or at least two holding ``min_students`` together, else the
    smallest shown one is withheld too (complementary suppression, as ``withheld_groups`` does for
    groups). A module in one run only is not withheld for that: a run without it does not hold it.
    """
    runs = [
        {
            f"{m}/{p}": n
            for (m, p), kinds in run.items()
            if (n := int(kinds.get("estimates", {}).get("rows", 0)))
        }
        for run in summaries
    ]
    hidden = {g for run in runs for g, n in run.items() if n < min_students}
    changed = True
    while changed:
        changed = False
        for run in runs:
            withheld = [g for g in run if g in hidden]
            shown = sorted((g for g in run if g not in hidden), key=lambda g: (run[g], g))
            if withheld and shown and (len(withheld) == 1 or sum(run[g] for g in withheld) < min_students):
                hidden.add(shown[0])
                changed = True
    return frozenset(hidden)


def build_report(
    runs: list[ScoringRun],
    *,
    summaries: list[Summaries],
    estimates: list[pd.DataFrame],
    policy: MonitoringPolicy,
    min_students: int,
) -> dict[str, Any]:
    """The report of the latest run (``runs[0]``) against training and ``runs[1]``; aggregate only.

    ``summaries`` are those of ``runs[0]`` and, when there is one, ``runs[1]``; ``estimates`` the
    estimates of the runs read for stability, oldest first. A module presentation with fewer than
    ``min_students`` (the fairness policy's ``min_group_size``: one disclosure rule) keeps its row
    and count, but not its figures (``withheld``), and is never flagged.
    """
    latest, previous = runs[0], runs[1] if len(runs) > 1 else None
    before = summaries[1] if len(summaries) > 1 else None
    same_model = previous is not None and previous.bundle_sha256 == latest.bundle_sha256
    features, f_flags = feature_drift(summaries[0], before, policy=policy, same_model=same_model)
    hidden = withheld_modules(summaries, min_students=min_students)
    estimates_rows, e_flags = estimate_drift(
        summaries[0], before, policy=policy, min_students=min_students, hidden=hidden
    )
    coverage, c_flags = coverage_drift(
        summaries[0], before, policy=policy, min_students=min_students, hidden=hidden
    )
    turnover, t_flags = list_stability(estimates, policy=policy, min_students=min_students, hidden=hidden)
    return {
        "run": _run(latest),
        "previous_run": _run(previous) if previous else None,
        "reference": "recorded"
        if any(k.get("features", {}).get("reference_week") is not None for k in summaries[0].values())
        else "none",
        "policy": asdict(policy),
        "min_students": min_students,
        "features": features,
        "estimates": estimates_rows,
        "coverage": coverage,
        "stability": turnover,
        "groups": None,
        "flags": [*f_flags, *e_flags, *c_flags, *t_flags],
    }


def _run(run: ScoringRun) -> dict[str, Any]:
    return {
        "id": run.id,
        "model": run.model_name,
        "version": run.model_version,
        "data_as_of": run.data_as_of,
        "students": run.students,
    }


def monitor(engine: Engine, *, target: str, policy: MonitoringPolicy, min_students: int) -> dict[str, Any]:
    """The report for the run served for ``target`` (before any group figures are added).

    Raises
    ------
    MonitoringError
        If no run is published for ``target`` or the served run stored no summaries.
    """
    runs = runs_of(engine, target)
    compared = [summaries_of(engine, r.id) for r in runs[:2]]
    if not compared[0]:
        raise MonitoringError(
            f"run {runs[0].id} stored no summaries (it was scored before monitoring existed): score again"
        )
    if len(compared) > 1 and not compared[1]:
        compared = compared[:1]
        runs = runs[:1]
    read = runs[: policy.history_runs]
    # The list's figures are recomputed from the runs' estimates at each report: with a student left
    # out since (an objection, an erasure), two reports of one run would give back their module and
    # whether they were listed (a reviewer's finding, beside the red team's on group figures).
    left = [r.id for r in read if left_out_since_scored(engine, r.id)]
    history = [] if left else [estimates_of(engine, r.id) for r in reversed(read)]
    kept = [h for h in history if len(h)]
    report = build_report(runs, summaries=compared, estimates=kept, policy=policy, min_students=min_students)
    if left:
        report["stability_withheld"] = STABILITY_WITHHELD.format(runs=", ".join(str(r) for r in left))
    return report


#: Why a report has no figures of the list's stability (``monitor``).
STABILITY_WITHHELD = (
    "No figures of the outreach list's stability in this report: students were left out of run {runs} "
    "after it was scored (an objection or an erasure), and the list's figures beside an earlier "
    "report's would say which module they are on and whether they were listed. They return once no "
    "run the figures read has changed since it was scored."
)


def store(engine: Engine, report: dict[str, Any], *, target: str) -> int:
    """Keep a report (with any group figures) for the committee page and ``/metrics``; returns its id."""
    with transaction(engine) as session:
        row = MonitoringReport(
            target=target,
            run_id=report["run"]["id"],
            previous_run_id=(report["previous_run"] or {}).get("id"),
            flags=len(report["flags"]),
            report=report,
            at=datetime.now(UTC),
        )
        session.add(row)
        session.flush()
        return row.id


def latest_report(engine: Engine) -> dict[str, Any] | None:
    """The most recent stored report, with when it was made."""
    with transaction(engine) as session:
        row = session.scalar(select(MonitoringReport).order_by(MonitoringReport.id.desc()))
        if row is None:
            return None
        return {**row.report, "made_at": row.at.isoformat(), "target": row.target}
