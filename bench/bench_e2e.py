"""The whole OULAD pipeline through the real ``waymark`` commands, each stage timed, against the 90 s aim.

    python bench/bench_e2e.py [--oulad DIR] [--week 8] [--workdir DIR] [--aim 90] [--override-gate]

OULAD is read from ``--oulad`` or ``WAYMARK_OULAD_DIR`` (the official CSV release or the Parquet copy).
Every stage is the command a person would type, run as its own process (``python -m waymark ...``)
in a temporary folder with its own MLflow store (SQLite and local artifacts), its own SQLite service
database and development keys, as ``waymark demo`` keeps them:

    import             waymark data import-oulad OULAD --out data
    validate           waymark data validate data
    train              waymark train --data data   (target not_completing, seed 0)
    audit              waymark fairness audit --model models:/waymark-not-completing@candidate ...
    review and promote waymark model review ... --approve (as the demo's reviewer, the decision marked
                       as the benchmark's own, never a committee's), then waymark model promote
    score              waymark score --data data --week 8

It prints each stage's wall time, the total, and whether the total meets the aim. A stage that fails
stops the run and prints the end of its output. The audit must pass the fairness gate before anything
is approved; ``--override-gate`` records the approval with an override reason instead (for a smoke run
on a subset too small for the gate). The folder is removed afterwards unless ``--workdir`` is given.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODEL = "models:/waymark-not-completing@candidate"
REVIEWER = "demo-reviewer"
NOTE = "BENCHMARK DECISION made automatically by bench/bench_e2e.py; not a decision of any ethics committee"
OVERRIDE = "benchmark run of bench/bench_e2e.py in a throwaway folder: timing only, nothing is served"


def settings_env(workdir: Path) -> dict[str, str]:
    """The environment of every stage: stores and keys inside ``workdir``, as ``waymark demo`` keeps them."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_REGISTRY_URI"}  # the registry is the store's
    return {
        **env,
        "MLFLOW_TRACKING_URI": f"sqlite:///{workdir / 'mlflow.db'}",
        "WAYMARK_MLFLOW_ARTIFACTS": str(workdir / "mlartifacts"),
        "WAYMARK_DATABASE_URL": f"sqlite:///{workdir / 'waymark.db'}",
        "WAYMARK_ENV": "development",
        "WAYMARK_DEV_KEY_DIR": str(workdir / "dev-keys"),
    }


def run(stage: str, args: list[str], *, env: dict[str, str], log: Path) -> str:
    """Run ``waymark ARGS`` as its own process; its output, or exit with the end of it on failure."""
    done = subprocess.run(
        [sys.executable, "-m", "waymark", *args], env=env, capture_output=True, text=True, check=False
    )
    with log.open("a", encoding="utf-8") as f:
        f.write(f"$ waymark {' '.join(args)}\n{done.stdout}{done.stderr}\n")
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        sys.exit(f"stage {stage} failed (exit {done.returncode}): waymark {' '.join(args)}\n{tail}")
    return done.stdout


def stages(oulad: Path, workdir: Path, *, week: int, override_gate: bool) -> dict[str, float]:
    """Run every stage in ``workdir``; seconds of each, in order."""
    env = settings_env(workdir)
    data, log = workdir / "data", workdir / "bench_e2e.log"
    timed: dict[str, float] = {}

    def timed_run(stage: str, *commands: list[str]) -> list[str]:
        start = time.perf_counter()
        outputs = [run(stage, args, env=env, log=log) for args in commands]
        timed[stage] = time.perf_counter() - start
        print(f"  {stage:<20} {timed[stage]:7.1f} s", flush=True)
        return outputs

    timed_run("import", ["data", "import-oulad", str(oulad), "--out", str(data)])
    timed_run("validate", ["data", "validate", str(data)])
    timed_run("train", ["train", "--data", str(data)])
    audit = ["fairness", "audit", "--model", MODEL, "--data", str(data), "--out", str(workdir / "fairness")]
    (report,) = timed_run("audit", [*audit, "--format", "json"])
    audited = json.loads(report)
    gate = audited["gate"]
    # The committee reviews the version whose report it read, never an alias someone could move.
    version = f"models:/{audited['model']['name']}/{audited['model']['version']}"
    if gate != "pass" and not override_gate:
        sys.exit(
            f"the candidate's fairness gate is {gate!r}, so nothing is approved (--override-gate to go on)"
        )
    override = [] if gate == "pass" else ["--override-reason", OVERRIDE]
    review = ["model", "review", "--model", version, "--reviewer", REVIEWER, "--note", NOTE, "--approve"]
    timed_run("review and promote", [*review, *override], ["model", "promote", "--model", version])
    timed_run(f"score week {week}", ["score", "--data", str(data), "--week", str(week)])
    return timed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oulad", type=Path, default=os.environ.get("WAYMARK_OULAD_DIR"))
    parser.add_argument("--week", type=int, default=8)
    parser.add_argument(
        "--workdir", type=Path, help="Keep the stores and logs here (default: a temp folder)."
    )
    parser.add_argument("--aim", type=float, default=90.0, help="Seconds the whole pipeline should take.")
    parser.add_argument("--override-gate", action="store_true", help="Approve even if the gate did not pass.")
    args = parser.parse_args()
    if not args.oulad:
        sys.exit("set WAYMARK_OULAD_DIR or pass --oulad")
    print(
        f"OULAD end to end from {args.oulad} (cores: {os.cpu_count()}, WAYMARK_THREADS: "
        f"{os.environ.get('WAYMARK_THREADS', 'unset')})",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="waymark-e2e-") as tmp:
        workdir = (args.workdir or Path(tmp)).resolve()
        workdir.mkdir(parents=True, exist_ok=True)
        timed = stages(args.oulad.resolve(), workdir, week=args.week, override_gate=args.override_gate)
    total = sum(timed.values())
    verdict = "meets" if total <= args.aim else "misses"
    print(f"  {'total':<20} {total:7.1f} s: {verdict} the aim of {args.aim:.0f} s")


if __name__ == "__main__":
    main()
