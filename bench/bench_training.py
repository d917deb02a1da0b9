"""Train on the full OULAD (WAYMARK_OULAD_DIR) for both targets and print the later-cohort metrics.

    python bench/bench_training.py [--oulad DIR] [--weeks 4 8 16] [--search] [--monotone] [--no-ablation]
                                   [--hazard] [--targets T ...]

Imports OULAD to a temporary folder once, then trains each target in a fresh child process
(train 2013B + 2013J, test 2014B + 2014J; the model family, and with --search LightGBM's settings, are
chosen on 2013J, never on the test presentations). For the chosen model it prints, per week, the
validation AUC (fitted on 2013B, scored on 2013J) and on the test presentations AUC, PR-AUC, Brier,
ECE, recall and precision at 10% and 20% of the week's population, and the per-student intervals'
coverage beside their nominal level with their mean width; with the wall time and peak memory of each
run. Then, for not_completing, the ablation table: validation AUC by week with each feature family
removed (training.ablation), and with --hazard the discrete-time hazard framing (training.hazard)
beside the direct model on the same validation presentations. No demographic feature is used.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
from pathlib import Path
import numpy as np, pandas as pd
from waymark.training.ablation import family_ablation
from waymark.training.fitting import FitConfig
from waymark.training.pipeline import train_folder
from waymark.models.targets import Target
folder, target, options = Path(sys.argv[1]), Target(sys.argv[2]), json.loads(sys.argv[3])
config = FitConfig(search=options["search"], monotone=options["monotone"])
start = time.perf_counter()
outcome = train_folder(folder, target=target, config=config)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
table = lambda frame: {int(w): {k: float(v) for k, v in row.items()} for w, row in frame.iterrows()}
chosen = outcome.validation
if len(chosen):
    chosen = chosen[chosen["family"] == outcome.family].set_index("week")
coverage = getattr(outcome, "interval_coverage", None)  # per-student intervals (models.uncertainty)
ablation = {}
if options["ablation"] and target is Target.NOT_COMPLETING:
    rows = outcome.train_rows.reset_index(drop=True)
    wanted = pd.MultiIndex.from_tuples(outcome.split.validation)
    val = pd.MultiIndex.from_frame(rows[["module_id", "presentation_id"]]).isin(wanted)
    frame = family_ablation(outcome.family, outcome.config, rows=rows, val_mask=np.asarray(val))
    ablation = {name: {int(w): float(v) for w, v in row.items()} for name, row in frame.iterrows()}
hazard = {}
if options.get("hazard") and target is Target.NOT_COMPLETING:
    from dataclasses import replace
    from sklearn.metrics import roc_auc_score
    from waymark.models.data import load_learning_data
    from waymark.models.features import FEATURE_NAMES, KEYS, population
    from waymark.models.targets import labels
    from waymark.training.fitting import fit, margins, sigmoid
    from waymark.training.hazard import chance_from_hazards, person_periods
    data = load_learning_data(folder)
    pop = population(data.registrations, data.presentations)
    known = labels(target, pop, tables=data.tables())[[*KEYS, "outcome_day"]]
    rows = outcome.train_rows.merge(known, on=list(KEYS)).merge(pop[[*KEYS, "length_days"]], on=list(KEYS))
    wanted = pd.MultiIndex.from_tuples(outcome.split.validation)
    val = np.asarray(pd.MultiIndex.from_frame(rows[["module_id", "presentation_id"]]).isin(wanted))
    x = rows[list(FEATURE_NAMES)].to_numpy(np.float64)
    week, length = rows["week"].to_numpy(), rows["length_days"].to_numpy()
    periods = person_periods(x[~val], week=week[~val], length_days=length[~val],
                             label=rows["label"].to_numpy()[~val],
                             outcome_day=rows["outcome_day"].to_numpy(np.float64)[~val])
    # the block columns have no direction of their own: the hazard model is fitted without constraints
    model = fit("gbm", replace(outcome.config, monotone=False), x=periods.x, y=periods.y)
    direct = fit("gbm", replace(outcome.config, monotone=False), x=x[~val], y=rows["label"].to_numpy()[~val])
    scored = rows.loc[val, ["week", "label"]].assign(
        hazard=chance_from_hazards(lambda z: sigmoid(margins(model, z)), x[val], week=week[val],
                                   length_days=length[val]),
        direct=sigmoid(margins(direct, x[val])))
    for name in ("direct", "hazard"):
        hazard[name] = {int(w): float(roc_auc_score(g["label"], g[name]))
                        for w, g in scored.groupby("week") if g["label"].nunique() == 2}
    hazard["person_period_rows"] = {0: float(len(periods.y))}
print(json.dumps({
    "seconds": seconds,
    "peak_mb": peak,
    "family": outcome.family,
    "gbm_params": dict(outcome.config.gbm_params),
    "validation_means": outcome.validation.groupby("family")["auc"].mean().to_dict() if len(chosen) else {},
    "validation": table(chosen[["auc", "ece"]]) if len(chosen) else {},
    "weekly": table(outcome.test_weekly),
    "coverage": table(coverage) if coverage is not None else {},
    "lead": outcome.lead,
    "rows": len(outcome.train_rows),
    "ablation": ablation,
    "hazard": hazard,
}))
"""

HEADER = (
    "  week  val AUC |   AUC  PR-AUC  Brier    ECE  rec@10% prec@10% rec@20% prec@20% "
    "| coverage (nominal) width"
)


def _week_line(week: int, r: dict[str, dict[str, dict[str, float]]]) -> str | None:
    m, v, c = (r[k].get(str(week)) for k in ("weekly", "validation", "coverage"))
    if not m:
        return None
    val = f"{v['auc']:.3f}" if v else "    -"
    line = (
        f"  {week:>4}    {val} | {m['auc']:.3f}   {m['pr_auc']:.3f}  {m['brier']:.3f}  {m['ece']:.3f}"
        f"    {m['recall_at_10pct']:.3f}    {m['precision_at_10pct']:.3f}   {m['recall_at_20pct']:.3f}"
        f"    {m['precision_at_20pct']:.3f} |"
    )
    # Interval coverage on the test presentations (filled in when training reports it).
    if c:
        line += f"    {c['coverage']:.3f} ({c['nominal']:.2f})   {c['mean_width']:.3f}"
    else:
        line += "        -"
    return line


def _ablation(ablation: dict[str, dict[str, float]], weeks: list[int]) -> None:
    if not ablation:
        return
    names = list(ablation)
    print("  validation AUC (fit 2013B, scored 2013J) with each feature family removed; change against all")
    print(f"  {'family removed':<28}" + "".join(f"  week {w:>2}        " for w in weeks) + "  mean of weeks")
    base = ablation[names[0]]
    base_mean = sum(base.values()) / len(base)
    for name in names:
        row = ablation[name]
        cells = "".join(
            f"  {row[str(w)]:.3f} ({row[str(w)] - base[str(w)]:+.3f})" if str(w) in row else "  -"
            for w in weeks
        )
        mean = sum(row.values()) / len(row)
        print(f"  {name:<28}{cells}  {mean:.3f} ({mean - base_mean:+.3f})")


def _report(target: str, r: dict, weeks: list[int]) -> None:  # type: ignore[type-arg]
    val = ", ".join(f"{k} {v:.3f}" for k, v in r["validation_means"].items())
    params = ", ".join(f"{k}={v}" for k, v in r["gbm_params"].items()) or "the defaults"
    print(
        f"{target}: chosen family {r['family']} (validation mean AUC: {val}); LightGBM settings: {params}; "
        f"{r['rows']:,} training rows; wall {r['seconds']:.0f} s, peak memory {r['peak_mb']:.0f} MB"
    )
    print(HEADER)
    for w in weeks:
        line = _week_line(w, r)
        if line:
            print(line)
    if r["lead"]:
        lead = r["lead"]
        print(
            f"  withdrawals reached in the top 10% before withdrawing: "
            f"{lead['reached_before_withdrawal']:.0%}, median lead {lead['median_lead_days']:.0f} days"
        )
    _ablation(r["ablation"], weeks)
    _hazard(r.get("hazard", {}), weeks)


def _hazard(hazard: dict[str, dict[str, float]], weeks: list[int]) -> None:
    if not hazard:
        return
    rows = int(hazard["person_period_rows"]["0"])
    print(
        f"  validation AUC (fit 2013B, scored 2013J): the hazard framing ({rows:,} person-period rows) "
        "beside the direct model"
    )
    print(f"  {'model':<28}" + "".join(f"  week {w:>2}" for w in weeks) + "  mean of weeks")
    for name in ("direct", "hazard"):
        row = hazard[name]
        cells = "".join(f"    {row[str(w)]:.3f}" if str(w) in row else "        -" for w in weeks)
        print(f"  {name:<28}{cells}    {sum(row.values()) / len(row):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--oulad", default=os.environ.get("WAYMARK_OULAD_DIR"))
    parser.add_argument("--weeks", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--search", action="store_true", help="search LightGBM settings on validation")
    parser.add_argument("--monotone", action="store_true", help="fix the direction of what a student does")
    parser.add_argument("--no-ablation", action="store_true", help="skip the feature-family ablation")
    parser.add_argument(
        "--hazard", action="store_true", help="compare the hazard framing (training.hazard) on validation"
    )
    parser.add_argument("--targets", nargs="+", default=["not_completing", "next_assessment_nonsubmission"])
    args = parser.parse_args()
    if not args.oulad:
        sys.exit("set WAYMARK_OULAD_DIR or pass --oulad")
    from waymark.training.ingest.oulad import import_oulad

    options = json.dumps(
        {
            "search": args.search,
            "monotone": args.monotone,
            "ablation": not args.no_ablation,
            "hazard": args.hazard,
        }
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "oulad"
        import_oulad(Path(args.oulad), data)
        for target in args.targets:
            done = subprocess.run(
                [sys.executable, "-c", CHILD, str(data), target, options],
                check=True,
                capture_output=True,
                text=True,
            )
            _report(target, json.loads(done.stdout.strip().splitlines()[-1]), args.weeks)


if __name__ == "__main__":
    main()
