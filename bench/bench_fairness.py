"""Fairness audit speed on the full OULAD: quiet, beside a competing CPU-bound process, and beside Fairlearn.

    python bench/bench_fairness.py [--oulad DIR] [--resamples 1000] [--fairlearn-boot 200]
    python bench/bench_fairness.py --synthetic 1500 --resamples 50 --fairlearn-boot 5   # smoke run

Imports OULAD (or generates a synthetic cohort), trains a logistic candidate, scores its test
cohort at weeks 4, 8 and 16, then prints:
  1. Waymark's audit path against Fairlearn's MetricFrame bootstrap on the same rows and attribute
     (week 8, imd_band; point estimates checked equal), time per resample of each
     (``--fairlearn-boot 0`` skips Fairlearn's part);
  2. the whole audit (every characteristic and pair x weeks x capacities of the default policy,
     ``--resamples`` resamples), quiet: wall and CPU time, and how many tables it computed;
  3. the same audit while a competing process multiplies matrices on every core (started and
     stopped by this script; NumPy's BLAS with one thread per core): wall and CPU time, the ratio
     contended / quiet, and how many cores the competitor used meanwhile;
  4. the proxy check (a cross-validated logistic model per characteristic), quiet.
The audit's threads follow ``models.threads.cores()`` (``WAYMARK_THREADS`` overrides it). The
first audit (step 1) also compiles the one-pass kernel, so steps 2-3 time no compilation.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame, false_negative_rate, false_positive_rate, selection_rate
from sklearn.metrics import precision_score, roc_auc_score

from waymark.fairness.audit import audit_cohorts, group_labels
from waymark.fairness.policy import load_policy
from waymark.fairness.protected import load_protected_characteristics
from waymark.fairness.run import proxy_check
from waymark.models import threads
from waymark.models.bundle import ModelBundle
from waymark.models.capacity import top_share
from waymark.models.data import load_learning_data
from waymark.models.features import KEYS, build_features, population
from waymark.models.targets import Target, labels
from waymark.training.fitting import FitConfig
from waymark.training.ingest.oulad import import_oulad
from waymark.training.ingest.synthetic import SynthConfig, generate
from waymark.training.pipeline import train_folder

WEEKS = (4, 8, 16)
ATTRIBUTE = "imd_band"

# A competing CPU-bound process: NumPy matrix products on every core, until it is stopped.
COMPETITOR = """
import numpy as np
a = np.random.default_rng(0).random((1500, 1500))
a @ a
print("ready", flush=True)
while True:
    a @ a
"""


def _prepare(
    args: argparse.Namespace, tmp: Path
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, ModelBundle]:
    """Scored test rows (weeks 4/8/16), the group table, the features and the trained bundle."""
    folder = tmp / "data"
    if args.synthetic:
        generate(folder, SynthConfig(students=args.synthetic, seed=5))
    else:
        import_oulad(Path(args.oulad), folder)
    outcome = train_folder(folder, target=Target.NOT_COMPLETING, config=FitConfig(families=("logistic",)))
    data = load_learning_data(folder)
    protected = load_protected_characteristics(folder)
    if protected is None:
        sys.exit(f"{folder} has no protected characteristics to audit")
    features = build_features(data, list(WEEKS))
    test = {f"{m}/{p}" for m, p in outcome.split.test}
    features = features[(features["module_id"] + "/" + features["presentation_id"]).isin(test)]
    pop = population(data.registrations, data.presentations, weeks=list(WEEKS))
    rows = features.merge(labels(Target.NOT_COMPLETING, pop, tables=data.tables()), on=list(KEYS))
    rows["probability"] = outcome.bundle.probability(outcome.bundle.matrix(rows))
    return (
        rows[[*KEYS, "label", "probability"]],
        group_labels(protected, intersections=True),
        rows,
        outcome.bundle,
    )


def _timed(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """``work()``'s result, its wall time and this process's CPU time (all threads), in seconds."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def _cpu_seconds(pid: int) -> float:
    """CPU time a process has used so far (user + system), from /proc; NaN where unreadable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _competitor() -> Iterator[subprocess.Popen[str]]:
    """A second Python process multiplying matrices on every core, stopped on leaving the block."""
    env = {k: v for k, v in os.environ.items() if k not in {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS"}}
    proc = subprocess.Popen([sys.executable, "-c", COMPETITOR], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "ready":
            sys.exit("the competing process did not start")
        time.sleep(1.0)  # let its BLAS threads reach full speed
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _versus_fairlearn(scored: pd.DataFrame, table: pd.DataFrame, *, boot: int) -> None:
    """Step 1: one attribute at week 8, Waymark's 1,000 resamples against Fairlearn's ``boot``."""
    attribute = ATTRIBUTE if ATTRIBUTE in table.columns else str(table.columns[0])
    week8 = scored[scored["week"] == 8].reset_index(drop=True)
    one = dataclasses.replace(load_policy(), weeks=(8,), capacities=(0.10,), bootstrap_resamples=1000)
    audit_cohorts(week8.head(200), table[[attribute]], policy=one)  # compiles (or loads) the kernel
    ours, ours_s, _ = _timed(lambda: audit_cohorts(week8, table[[attribute]], policy=one))
    print(
        f"Cohort at week 8: {len(week8):,} registrations; attribute {attribute} "
        f"({table[attribute].nunique()} groups)"
    )
    print(f"Waymark audit, 1,000 resamples: {ours_s:.2f} s = {ours_s:.2f} ms per resample")
    if boot <= 0:
        return
    groups = table[attribute].reindex(week8["student_id"]).to_numpy()
    selected = top_share(week8["probability"].to_numpy(), 0.10).astype(int)
    metrics = {
        "selection_rate": selection_rate,
        "false_negative_rate": false_negative_rate,
        "false_positive_rate": false_positive_rate,
        "precision": partial(precision_score, zero_division=0),
    }
    common: dict[str, Any] = {
        "y_true": week8["label"],
        "sensitive_features": groups,
        "n_boot": boot,
        "ci_quantiles": [0.025, 0.975],
        "random_state": 0,
    }
    start = time.perf_counter()
    frame = MetricFrame(metrics=metrics, y_pred=selected, **common)
    scores = MetricFrame(metrics={"auc": roc_auc_score}, y_pred=week8["probability"], **common)
    fairlearn_s = time.perf_counter() - start
    for group in ours[0].groups:
        if not group.suppressed and {"false_negative_rate", "auc"} <= group.metrics.keys():
            fl = frame.by_group.loc[group.group, "false_negative_rate"]
            assert np.isclose(group.metrics["false_negative_rate"][0], fl), group.group
            assert np.isclose(group.metrics["auc"][0], scores.by_group.loc[group.group, "auc"]), group.group
    per_ours, per_fl = ours_s / 1000, fairlearn_s / boot
    print("Point estimates equal Fairlearn's")
    print(f"Fairlearn MetricFrame, n_boot={boot}: {fairlearn_s:.1f} s = {1000 * per_fl:.1f} ms per resample")
    print(f"Waymark is {per_fl / per_ours:.0f} times faster per resample")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--oulad", default=os.environ.get("WAYMARK_OULAD_DIR"))
    parser.add_argument("--synthetic", type=int, default=0, help="a synthetic cohort of N students instead")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--fairlearn-boot", type=int, default=200, help="0 skips the comparison")
    args = parser.parse_args()
    if not args.oulad and not args.synthetic:
        sys.exit("set WAYMARK_OULAD_DIR, pass --oulad, or pass --synthetic N for a smoke run")
    with tempfile.TemporaryDirectory() as tmp:
        scored, table, features, bundle = _prepare(args, Path(tmp))
        print(f"Data: {'synthetic, ' + str(args.synthetic) + ' students' if args.synthetic else args.oulad}")
        print(f"Threads: {threads.cores()} (models.threads.cores(); the machine has {os.cpu_count()} CPUs)")
        _versus_fairlearn(scored, table, boot=args.fairlearn_boot)

        policy = dataclasses.replace(load_policy(), bootstrap_resamples=args.resamples)
        setting = (
            f"{len(table.columns)} characteristics and pairs x weeks {policy.weeks} x capacities "
            f"{policy.capacities}, {args.resamples:,} resamples"
        )
        audits, quiet_s, quiet_cpu = _timed(lambda: audit_cohorts(scored, table, policy=policy))
        print(
            f"Whole audit, quiet ({setting}): {quiet_s:.2f} s wall, {quiet_cpu:.2f} s CPU, "
            f"{len(audits)} tables computed"
        )
        with _competitor() as rival:
            rival_cpu = _cpu_seconds(rival.pid)
            again, busy_s, busy_cpu = _timed(lambda: audit_cohorts(scored, table, policy=policy))
            rival_cores = (_cpu_seconds(rival.pid) - rival_cpu) / busy_s
        assert repr(again) == repr(audits), "the contended audit differs from the quiet one"
        print(
            f"Whole audit, beside a CPU-bound process (NumPy matrix products on every core): "
            f"{busy_s:.2f} s wall, {busy_cpu:.2f} s CPU, {len(again)} tables, same results; "
            f"the competitor used {rival_cores:.2f} cores meanwhile"
        )
        print(
            f"Contended / quiet: {busy_s / quiet_s:.2f}x wall, {busy_cpu / quiet_cpu:.2f}x CPU "
            f"(aims: quiet <= 20 s, contended <= 2x quiet)"
        )
        proxies, proxy_s, proxy_cpu = _timed(
            lambda: proxy_check(
                features, table[[c for c in table.columns if " x " not in c]], bundle=bundle, policy=policy
            )
        )
        print(
            f"Proxy check, quiet ({len(proxies)} characteristics x 5 folds): {proxy_s:.2f} s wall, "
            f"{proxy_cpu:.2f} s CPU"
        )


if __name__ == "__main__":
    main()
