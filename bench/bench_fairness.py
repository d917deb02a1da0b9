"""Fairness audit speed on the full OULAD, beside Fairlearn's MetricFrame bootstrap, in one run.

    python bench/bench_fairness.py [--oulad DIR] [--fairlearn-boot 200]

Imports OULAD, trains a logistic candidate (2013 -> 2014), scores the 2014 cohort at week 8 and
then, on the same rows and the same attribute (imd_band), times:
  - Waymark's audit path with 1,000 student resamples (selection rate, FNR, FPR, precision, AUC,
    ECE, calibration gap; intervals for every metric, difference and ratio),
  - Fairlearn's MetricFrame with n_boot resamples of selection rate, FNR, FPR, precision and AUC,
and prints the time per resample of each and their ratio. Point estimates are checked equal.
Finally it times the whole audit (every characteristic and pair, weeks 4/8/16, both capacities).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate
from sklearn.metrics import precision_score, roc_auc_score

from waymark.fairness.audit import audit_cohorts, group_labels
from waymark.fairness.policy import load_policy
from waymark.fairness.protected import load_protected_characteristics
from waymark.models.capacity import top_share
from waymark.models.data import load_learning_data
from waymark.models.features import KEYS, build_features, population
from waymark.models.targets import Target, labels
from waymark.training.fitting import FitConfig
from waymark.training.ingest.oulad import import_oulad
from waymark.training.pipeline import train_folder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--oulad", default=os.environ.get("WAYMARK_OULAD_DIR"))
    parser.add_argument("--fairlearn-boot", type=int, default=200)
    args = parser.parse_args()
    if not args.oulad:
        sys.exit("set WAYMARK_OULAD_DIR or pass --oulad")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "oulad"
        import_oulad(Path(args.oulad), folder)
        outcome = train_folder(folder, target=Target.NOT_COMPLETING, config=FitConfig(families=("logistic",)))
        data = load_learning_data(folder)
        protected = load_protected_characteristics(folder)
        assert protected is not None
        features = build_features(data, [4, 8, 16])
        test = {f"{m}/{p}" for m, p in outcome.split.test}
        features = features[(features["module_id"] + "/" + features["presentation_id"]).isin(test)]
        pop = population(data.registrations, data.presentations, weeks=[4, 8, 16])
        rows = features.merge(labels(Target.NOT_COMPLETING, pop, tables=data.tables()), on=list(KEYS))
        rows["probability"] = outcome.bundle.probability(outcome.bundle.matrix(rows))
        scored = rows[[*KEYS, "label", "probability"]]
        table = group_labels(protected, intersections=True)

        week8 = scored[scored["week"] == 8].reset_index(drop=True)
        one = dataclasses.replace(load_policy(), weeks=(8,), capacities=(0.10,), bootstrap_resamples=1000)
        start = time.perf_counter()
        ours = audit_cohorts(week8, table[["imd_band"]], policy=one)
        ours_s = time.perf_counter() - start

        groups = table["imd_band"].reindex(week8["student_id"]).to_numpy()
        selected = top_share(week8["probability"].to_numpy(), 0.10).astype(int)
        metrics = {
            "selection_rate": selection_rate,
            "false_negative_rate": false_negative_rate,
            "false_positive_rate": false_positive_rate,
            "precision": partial(precision_score, zero_division=0),
        }
        start = time.perf_counter()
        frame = MetricFrame(
            metrics=metrics,
            y_true=week8["label"],
            y_pred=selected,
            sensitive_features=groups,
            n_boot=args.fairlearn_boot,
            ci_quantiles=[0.025, 0.975],
            random_state=0,
        )
        scores = MetricFrame(
            metrics={"auc": roc_auc_score},
            y_true=week8["label"],
            y_pred=week8["probability"],
            sensitive_features=groups,
            n_boot=args.fairlearn_boot,
            ci_quantiles=[0.025, 0.975],
            random_state=0,
        )
        fairlearn_s = time.perf_counter() - start
        for group in ours[0].groups:
            if not group.suppressed and {"false_negative_rate", "auc"} <= group.metrics.keys():
                fl = frame.by_group.loc[group.group, "false_negative_rate"]
                assert np.isclose(group.metrics["false_negative_rate"][0], fl), group.group
                assert np.isclose(group.metrics["auc"][0], scores.by_group.loc[group.group, "auc"]), (
                    group.group
                )
        per_ours, per_fl = ours_s / 1000, fairlearn_s / args.fairlearn_boot
        print(
            f"OULAD 2014 cohort at week 8: {len(week8):,} registrations; attribute imd_band "
            f"({table['imd_band'].nunique()} groups); point estimates equal Fairlearn's"
        )
        print(f"Waymark audit, 1,000 resamples: {ours_s:.2f} s = {1000 * per_ours:.2f} ms per resample")
        print(
            f"Fairlearn MetricFrame, n_boot={args.fairlearn_boot}: {fairlearn_s:.1f} s = "
            f"{1000 * per_fl:.1f} ms per resample"
        )
        print(f"Waymark is {per_fl / per_ours:.0f} times faster per resample")
        full = dataclasses.replace(load_policy(), bootstrap_resamples=1000)
        start = time.perf_counter()
        audits = audit_cohorts(scored, table, policy=full)
        print(
            f"Whole audit ({len(table.columns)} characteristics and pairs x weeks {full.weeks} x capacities "
            f"{full.capacities}, 1,000 resamples): {time.perf_counter() - start:.1f} s "
            f"for {len(audits)} tables"
        )


if __name__ == "__main__":
    main()
