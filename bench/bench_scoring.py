"""Scoring, explaining and publishing a whole cohort with ``waymark score``'s code, beside shap.

    python bench/bench_scoring.py [--students 66000] [--week 8] [--oulad DIR] [--no-synthetic]

A gradient-boosted model is trained on a separate 8,000-student synthetic cohort, audited with a
permissive test policy (the bench measures speed, not governance), approved as a test decision and
promoted. Then ``service.scoring.score`` runs end to end on a cohort whose current presentations
hold about 40,000 registrations (``--students 66000``): champion load with hash check, validation,
week-8 features, scores, exact contributions, factors, what-could-change, intervals, and atomic
publication into SQLite. It runs twice on the same folder: the first run validates it, the second
finds it unchanged and reuses that validation (``models.data.memo``), as a weekly run on unchanged
data would. Each stage's time comes from the job's own progress messages, a stage lasting until
the next message. Each run starts after a full garbage collection, as a weekly run in a fresh
process would (otherwise the first run's leftovers are collected during the second run's champion load):

    champion      loading the approved champion, with its hash check
    validation    the folder's fingerprint, and validating every table (or finding it validated)
    reading       reading the scored presentations' tables into frames
    features      building their features at the week
    scores        estimates and exact contributions (and which sources each module records)
    sentences     factors, strengths, context, what could change, intervals, the rows to store
    publication   writing the rows and run summaries, and the pointer swap

shap's TreeExplainer explains a sample of the same rows of the same model in the same run. With
``--oulad`` the same is done for the OULAD test presentations, training on the earlier ones.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import time
import warnings
from pathlib import Path

import shap

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import itertools

from sqlalchemy import Engine

from tests.champion import govern, register, settings_in
from waymark.models.data import load_learning_data, read_manifest
from waymark.service.db.engine import make_engine, upgrade
from waymark.service.scoring import load_champion, score
from waymark.service.scoring.cohort import build_cohort, current_presentations
from waymark.training.ingest.oulad import import_oulad
from waymark.training.ingest.synthetic import SynthConfig, generate

SHAP_SAMPLE = 2000
NAME = "waymark-not-completing"


STAGES = (
    ("loading the champion", "champion"),
    ("validating data", "validation"),
    ("reading data", "reading"),
    ("building features", "features"),
    ("scoring and explaining", "scores"),
    ("choosing factors", "sentences"),
    ("writing run", "publication"),
)


def _stage(message: str) -> str:
    return next((name for prefix, name in STAGES if message.startswith(prefix)), message)


def _one_run(folder: Path, engine: Engine, week: int) -> None:
    # `waymark score` runs in a fresh process each week: the previous run's leftovers in this one are
    # collected before the clock starts, not by the collector in the middle of the next run's first stage.
    gc.collect()
    marks: list[tuple[str, float]] = []
    start = time.perf_counter()
    summary = score(
        folder, engine, model_name=NAME, week=week, progress=lambda m: marks.append((m, time.perf_counter()))
    )
    total = time.perf_counter() - start
    marks.append(("done", time.perf_counter()))
    for (message, t0), (_, t1) in itertools.pairwise(marks):
        print(f"  {t1 - t0:7.2f} s  {_stage(message):<12} {message}")
    print(
        f"  {total:7.2f} s  total for {summary.students:,} registrations = "
        f"{summary.students / total:,.0f} per second"
    )


def _timed_score(folder: Path, root: Path, week: int) -> None:
    settings = settings_in(root)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    print(" run 1 (the folder is validated):")
    _one_run(folder, engine, week)
    print(" run 2 (the same folder, unchanged: its validation is reused):")
    _one_run(folder, engine, week)
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
    parser.add_argument("--oulad", type=Path, help="an OULAD copy: also score its test presentations")
    parser.add_argument("--no-synthetic", action="store_true", help="only the OULAD cohort")
    parser.add_argument("--train-students", type=int, default=8000, help="the synthetic training cohort")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if not args.no_synthetic:
            generate(root / "train", SynthConfig(students=args.train_students, seed=4))
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
