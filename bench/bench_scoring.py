"""Scoring, explaining and publishing a whole cohort with ``waymark score``'s code, beside shap.

    python bench/bench_scoring.py [--students 66000] [--oulad DIR]

A gradient-boosted model is trained on a separate 8,000-student synthetic cohort, audited with a
permissive test policy (the bench measures speed, not governance), approved as a test decision and
promoted. Then ``service.scoring.score`` runs end to end on a cohort whose current presentations
hold about 40,000 registrations (``--students 66000``): champion load with hash check, validation,
week-8 features, scores, exact contributions, factors, what-could-change, intervals, and atomic
publication into SQLite. Stage times come from the job's own progress messages. shap's
TreeExplainer explains a sample of the same rows of the same model in the same run. With
``--oulad`` the same is done for the OULAD test presentations, training on the earlier ones.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import shap

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from tests.champion import govern, register, settings_in
from waymark.models.data import load_learning_data, read_manifest
from waymark.service.db.engine import make_engine, upgrade
from waymark.service.scoring import load_champion, score
from waymark.service.scoring.cohort import build_cohort, current_presentations
from waymark.training.ingest.oulad import import_oulad
from waymark.training.ingest.synthetic import SynthConfig, generate

SHAP_SAMPLE = 2000
NAME = "waymark-not-completing"


def _timed_score(folder: Path, root: Path, week: int) -> None:
    settings = settings_in(root)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    marks: list[tuple[str, float]] = []
    start = time.perf_counter()
    summary = score(
        folder, engine, model_name=NAME, week=week, progress=lambda m: marks.append((m, time.perf_counter()))
    )
    total = time.perf_counter() - start
    marks.append(("done", time.perf_counter()))
    for (label, t0), (_, t1) in itertools.pairwise(marks):
        print(f"  {t1 - t0:7.2f} s  {label}")
    print(
        f"  {total:7.2f} s  total for {summary.students:,} registrations = "
        f"{summary.students / total:,.0f} per second"
    )
    model = load_champion(engine, NAME)
    manifest = read_manifest(folder)
    data = load_learning_data(folder, choose=lambda pres: current_presentations(pres, manifest))
    cohort = build_cohort(data, week)
    x = model.bundle.matrix(cohort.features)[:SHAP_SAMPLE]
    explainer = shap.TreeExplainer(model.bundle.booster)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        explainer.shap_values(x)
    shap_s = time.perf_counter() - t0
    print(
        f"  shap.TreeExplainer on {len(x):,} of the same rows: "
        f"{len(x) / shap_s:,.0f} rows/s (contributions only)"
    )


def _govern(train_folder: Path, root: Path) -> None:
    settings = settings_in(root)
    version = register(train_folder, settings, NAME, "gbm", seed=0)
    govern(train_folder, settings, NAME, version, root / "fairness")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--students", type=int, default=66_000)
    parser.add_argument("--week", type=int, default=8)
    parser.add_argument("--oulad", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "train", SynthConfig(students=8000, seed=4))
        generate(root / "cohort", SynthConfig(students=args.students, seed=3))
        _govern(root / "train", root / "synth-store")
        print(f"synthetic cohort ({args.students:,} students generated), week {args.week}:")
        _timed_score(root / "cohort", root / "synth-store", args.week)
        if args.oulad:
            import_oulad(args.oulad, root / "oulad")
            _govern(root / "oulad", root / "oulad-store")
            print(f"OULAD test presentations, week {args.week}:")
            _timed_score(root / "oulad", root / "oulad-store", args.week)


if __name__ == "__main__":
    main()
