"""The fairness audit measures exactly the training run's test presentations, whatever their ids.

An institution's module ids may hold spaces ("BIO 101") or slashes, and a large one has hundreds of
presentations: the list is kept in the run's parameters as JSON in parts (MLflow cuts one value at
6,000 characters) and read back whole (``models.registry.pairs_params``).
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import mlflow
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from tests.champion import candidate
from waymark.fairness.policy import load_policy
from waymark.fairness.run import audit_model
from waymark.models.registry import configure, pairs_params, params_pairs, run
from waymark.models.settings import Settings
from waymark.models.targets import Target
from waymark.training.pipeline import train_folder
from waymark.training.tracking import log_and_register


def test_many_presentations_with_odd_ids_survive_the_run_parameters(mlflow_store: Settings) -> None:
    pairs = tuple((f"MOD {i:04d}/A", f"2024 SPR {i}") for i in range(400))  # about 12,000 characters
    kept = pairs_params("test_presentations", pairs)
    assert len(kept) > 2 and all(len(v) <= 6000 for v in kept.values())
    with mlflow.start_run() as started:
        mlflow.log_params(kept)
    assert params_pairs(run(started.info.run_id).params, "test_presentations") == pairs
    assert params_pairs({}, "test_presentations") is None
    assert params_pairs(pairs_params("x", ()), "x") == ()


@pytest.fixture(scope="module")
def spaced_dir(synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic cohort with a space in every module id ("BIO101" becomes "BIO 101")."""
    out = tmp_path_factory.mktemp("spaced") / "data"
    shutil.copytree(synth_dir, out)
    for path in [*out.glob("*.parquet"), *(out / "activity").glob("*.parquet")]:
        table = pq.read_table(path)
        if "module_id" not in table.column_names:
            continue
        column = table.column("module_id").cast(pa.string())
        spaced = pc.replace_substring_regex(column, pattern=r"^([A-Z]+)", replacement=r"\1 ")
        table = table.set_column(table.column_names.index("module_id"), "module_id", spaced)
        pq.write_table(table, path)
    return out


def test_an_audit_measures_every_test_presentation_when_module_ids_hold_spaces(
    spaced_dir: Path, mlflow_store: Settings
) -> None:
    configure(mlflow_store)
    trained = train_folder(spaced_dir, target=Target.NOT_COMPLETING, config=candidate("logistic", seed=3))
    assert trained.split.test and all(" " in m for m, _ in trained.split.test)
    version = log_and_register(trained, "spaced-ids", settings=mlflow_store).version
    policy = dataclasses.replace(load_policy(), bootstrap_resamples=50, intersections=False)
    audited = audit_model(f"models:/spaced-ids/{version}", spaced_dir, policy=policy)
    assert set(audited.test_presentations) == {f"{m} ({p})" for m, p in trained.split.test}
    assert audited.quality is not None
    scored = trained.test_scored
    for week in audited.quality.weeks:  # every test student of the week, not those of some modules
        assert week.needed_support == int(scored.loc[scored["week"] == week.week, "label"].sum())
