"""The training pipeline: data -> features -> labels -> temporal split -> fit -> evaluate -> bundle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import Pipeline

from waymark.models import threads
from waymark.models.bundle import ModelBundle, from_pipeline
from waymark.models.calendar import data_date, days_into, ended_by, last_activity_day, unfinished, without
from waymark.models.data import LearningData, load_learning_data, presentation_name, read_manifest
from waymark.models.data.contract import OUTCOMES_PENDING_SHARE
from waymark.models.data.publish import is_uri, local_folder
from waymark.models.features import FEATURE_NAMES, KEYS, build_features, population
from waymark.models.targets import Target, labels
from waymark.models.uncertainty import interval_table, scored_coverage
from waymark.training.censoring import Censoring, censor, contact_days
from waymark.training.choice import GIVEN, GROUPED_CV, TEMPORAL, FamilyChoice, choose_by_grouped_cv
from waymark.training.evaluation import (
    chance_warnings,
    lead_time,
    leakage_warnings,
    long_presentation_warnings,
    small_test_warnings,
    weekly_metrics,
)
from waymark.training.fitting import (
    FitConfig,
    choose_family,
    fit,
    fit_subsets,
    margins,
    platt,
    sigmoid,
    unfitted,
)
from waymark.training.reweighting import Mitigation, MitigationRecord, Reweighting
from waymark.training.search import search_gbm
from waymark.training.split import (
    SplitError,
    TemporalSplit,
    default_test_from,
    few_of_a_year,
    same_students,
    temporal_split,
)

MIN_POSITIVES = 20
Progress = Callable[[str], None]


class TrainingConfigError(ValueError):
    """The run cannot go ahead as configured; the message says what to change."""


@dataclass(frozen=True, eq=False)
class TrainingOutcome:
    """What a run produced, ready to be tracked."""

    target: Target
    family: str
    config: FitConfig
    split: TemporalSplit
    bundle: ModelBundle
    validation: pd.DataFrame  # metrics per family and week where the family was chosen (see choice)
    test_weekly: pd.DataFrame  # metrics per week on the test presentations
    lead: dict[str, float]
    train_rows: pd.DataFrame  # keys, features, label (for lineage and the signature)
    test_scored: pd.DataFrame  # keys, label, outcome_day, probability
    folder: Path | str  # a local path, or a Hadoop URI the features were read from on Spark
    manifest: dict[str, object]
    choice: FamilyChoice  # how the family was settled, in words
    # Per test week: the intervals' grouped coverage beside their nominal level, and mean width
    # (models.uncertainty.scored_coverage).
    interval_coverage: pd.DataFrame
    warnings: tuple[str, ...] = ()  # suspiciously good results on the later cohort (leakage_warnings)
    censoring: Censoring | None = None  # what the intervention policy did (training.censoring)
    # The data's identity when it was taken before reading (a URI on Spark: models.spark.location);
    # None: ``folder_fingerprint(folder)`` when the run is tracked.
    fingerprint: str | None = None
    # The fairness policy's training-time mitigation and what it changed (training.reweighting); None: none.
    mitigation: MitigationRecord | None = None
    # Presentations whose outcomes are not known yet, left out of training and testing (calendar.unfinished).
    running: tuple[tuple[str, str], ...] = ()


def _in(frame: pd.DataFrame, presentations: tuple[tuple[str, str], ...]) -> np.ndarray:
    wanted = (
        pd.MultiIndex.from_tuples(presentations)
        if presentations
        else pd.MultiIndex.from_tuples([], names=["a", "b"])
    )
    return pd.MultiIndex.from_frame(frame[["module_id", "presentation_id"]]).isin(wanted)


def _check(rows: pd.DataFrame, mask: np.ndarray, *, where: str, target: Target) -> None:
    y = rows.loc[mask, "label"]
    positives, negatives = int(y.sum()), int((1 - y).sum())
    if min(positives, negatives) >= MIN_POSITIVES:
        return
    counts = (
        f"{positives:,} positive and {negatives:,} negative student-week rows for target {target.value} "
        f"(at least {MIN_POSITIVES} of each needed)"
    )
    if positives + negatives > 0 and min(positives, negatives) == 0:
        # which presentations: a Finnish college's default test set was one Monday's 11 starts over
        # Christmas, and the refusal named none of them nor --test-from
        keys = rows.loc[mask, ["module_id", "presentation_id"]].drop_duplicates()
        named = ", ".join(presentation_name(m, p) for m, p in keys.head(5).itertuples(index=False))
        more = f" and {len(keys) - 5:,} more" if len(keys) > 5 else ""
        raise TrainingConfigError(
            f"every row to {where} has the same outcome: {counts}, from {len(keys):,} presentation"
            f"{'s' if len(keys) != 1 else ''} ({named}{more}). A model needs both outcomes: "
            "check how the outcomes were mapped (registrations.final_result; a mapping that sends "
            "withdrawals and fails to pass, say), whether the presentations to test on had ended by "
            "the data's last date (their `presentations.length_days`), choose the presentations to test "
            "on with --test-from YYYY-MM-DD (those starting on or after it), or choose the other target"
        )
    raise TrainingConfigError(
        f"too few examples to {where}: {counts}. Use more students, a different --test-from, or "
        "the other target."
    )


def train_folder(
    folder: Path | str,
    *,
    target: Target,
    config: FitConfig | None = None,
    test_from: date | None = None,
    progress: Progress | None = None,
    exclude: frozenset[str] = frozenset(),
    interventions: pd.DataFrame | None = None,
    spark: Any = None,
    mitigation: Mitigation | None = None,
) -> TrainingOutcome:
    """Load the data folder ``folder`` and :func:`train` on it: the reading edge of the pipeline.

    Parameters
    ----------
    folder
        A data folder in the contract: a local path, or with ``spark`` also a Hadoop URI.
    target, config, test_from, progress
        As for :func:`train`.
    exclude
        Students who asked for erasure (CoP §12): left out of training and evaluation.
    interventions
        As for :func:`train`.
    spark
        A Spark session: the folder is validated and the features built on Spark (written as
        Parquet and read back); the fit, calibration and evaluation stay on this machine.
    mitigation
        As for :func:`train`.

    Returns
    -------
    TrainingOutcome
        The calibrated bundle and its temporal evaluation, with ``folder`` as its lineage (for a
        URI with its fingerprint from the store's metadata, ``models.spark.location.fingerprint``).

    Raises
    ------
    ValueError
        If ``folder`` is a URI and there is no ``spark`` session.
    """
    (progress or _quiet)("loading and validating data")
    features, fingerprint, last_days = None, None, None
    if spark is None:
        local = local_folder(folder)
        data, manifest = load_learning_data(local).without(exclude), read_manifest(local)
    else:
        from waymark.models.spark import location
        from waymark.models.spark.engine import SparkEngine, collect
        from waymark.models.spark.features import features_and_records
        from waymark.models.spark.partitions import without
        from waymark.models.spark.reading import load_tables

        if is_uri(folder):  # taken before reading, as scoring does; tracking cannot list a store
            fingerprint = location.fingerprint(folder, spark)
        (progress or _quiet)("validating and building weekly features on Spark")
        engine = SparkEngine(spark)
        tables = without(load_tables(folder, spark), exclude, engine=engine)
        data, features = features_and_records(tables, spark)
        # The records come back without activity (only the features read it): the data date, which
        # says which presentations had not ended, is read from it on Spark.
        last_days = collect(last_activity_day(tables["activity"], engine=engine))
        manifest = location.read_manifest(folder, spark)
    with threads.capped():  # BLAS and OpenMP get the usable cores, as DuckDB and LightGBM do
        outcome = train(
            data,
            target=target,
            folder=folder,
            manifest=manifest,
            config=config,
            test_from=test_from,
            progress=progress,
            interventions=interventions,
            features=features,
            mitigation=mitigation,
            last_days=last_days,
        )
    return outcome if fingerprint is None else replace(outcome, fingerprint=fingerprint)


def train(
    data: LearningData,
    *,
    target: Target,
    folder: Path | str,
    manifest: dict[str, object],
    config: FitConfig | None = None,
    test_from: date | None = None,
    progress: Progress | None = None,
    interventions: pd.DataFrame | None = None,
    features: pd.DataFrame | None = None,
    mitigation: Mitigation | None = None,
    last_days: pd.DataFrame | None = None,
) -> TrainingOutcome:
    """Train, choose, calibrate and evaluate a model for ``target`` on ``data``.

    Parameters
    ----------
    data
        The loaded learning data (students who asked for erasure already left out).
    target
        What to predict.
    folder
        The data folder ``data`` was read from: the run's lineage (its fingerprint and path).
    manifest
        That folder's manifest (its recommended test start and its source).
    config
        Seed, families and sizes; defaults when None.
    test_from
        First start date of the test presentations; when None, the manifest's recommendation, else
        ``default_test_from``.
    progress
        Called with a short description as each stage starts.
    interventions
        When outreach reached students (``student_id``, ``contacted_on``): handled in training as
        ``config.intervention_policy`` says (``training.censoring``). None: no outreach recorded.
    features
        ``build_features`` of every week of ``data`` when another engine built them (Spark); built
        here when None.
    mitigation
        The fairness policy's training-time mitigation (``training.reweighting``): the chosen family
        is fitted on the labels and weights it gives, then calibrated and evaluated on the rows' own
        labels, and compared on the test presentations with the same family fitted without it.
        None: no mitigation.
    last_days
        ``models.calendar.LAST_DAY_SQL``'s rows when another engine read the activity (Spark, whose
        ``data`` holds none): they date the data for ``models.calendar.unfinished``. None: read from
        ``data.activity``.

    Returns
    -------
    TrainingOutcome
        The calibrated bundle and its temporal evaluation.
    """
    config = config or FitConfig()
    say = progress or _quiet
    if mitigation is not None and config.intervention_policy == "weight":
        raise TrainingConfigError(
            "a fairness mitigation weighs the training rows itself, so it cannot be combined with "
            "intervention_policy 'weight'; use 'exclude_after_contact' or 'ignore'"
        )
    last_days = last_activity_day(data.activity) if last_days is None else last_days
    running = unfinished(data.tables(), last_days=last_days)
    dated = data_date(data.presentations, last_days)
    left_out = (
        f"{len(running)} {'presentation' if len(running) == 1 else 'presentations'} with outcomes not "
        f"known yet (not ended on the data's last date, {dated or 'unknown: there is no activity'}, "
        "the latest day any activity reaches, or "
        f"ended with more than {OUTCOMES_PENDING_SHARE:.0%} of their outcomes still empty): "
        + ", ".join(presentation_name(m, p) for m, p in running[["module_id", "presentation_id"]].to_numpy())
    )
    if len(running):
        say(f"leaving out {left_out}")
    counts = data.registrations.groupby(["module_id", "presentation_id"]).size()
    module_ids, presentation_ids = (counts.index.get_level_values(i).astype(str) for i in (0, 1))
    keys = zip(module_ids, presentation_ids, strict=True)
    sizes = dict(zip(keys, counts.astype(int).tolist(), strict=True))
    # A presentation nobody is registered on gives nothing to learn or test on; kept, a medical school's
    # blocks not yet started were listed as its test set and set the default test date.
    held = pd.MultiIndex.from_frame(data.presentations[["module_id", "presentation_id"]].astype(str)).isin(
        list(sizes)
    )
    if not held.all():
        empty = data.presentations.loc[~held, ["module_id", "presentation_id"]].to_numpy()
        named = ", ".join(presentation_name(m, p) for m, p in empty[:12]) + (
            ", ..." if len(empty) > 12 else ""
        )
        kind = "presentation" if len(empty) == 1 else "presentations"
        say(f"leaving out {len(empty)} {kind} with no registration: {named}")
    try:
        split = _split(
            without(data.presentations[held], running), test_from=test_from, manifest=manifest, sizes=sizes
        )
    except SplitError as exc:
        if not len(running):
            raise
        raise SplitError(f"{exc} Left out of training and testing: {left_out}.") from exc
    # The default test set only (--test-from and the manifest's are chosen): a note when it holds few of
    # a year's registrations; and one when many ended registrations have no outcome.
    defaulted = test_from is None and not isinstance(manifest.get("test_from"), str)
    data_warnings = tuple(
        filter(
            None,
            [
                few_of_a_year(split, sizes) if defaulted else None,
                same_students(split, data.registrations),
                _unlabelled(data, running, last_days=last_days),
            ],
        )
    )
    say("building weekly features")
    # One population of every week, shared by the features and the labels; the rows are then built once
    # and shared by the family choice, the fit, the calibration and the evaluation.
    pop = population(data.registrations, data.presentations)
    if features is None:
        features = build_features(data, pop=pop)
    elif len(features) != len(pop):
        raise ValueError(f"features hold {len(features)} rows for a population of {len(pop)}")
    rows = features.merge(
        labels(target, pop, tables=data.tables(), running=running), on=list(KEYS), how="inner"
    )
    train_mask, test_mask = _in(rows, split.train), _in(rows, split.test)
    weight, censoring = _censoring(
        data, rows, config=config, interventions=interventions, train_mask=train_mask
    )
    train_mask &= weight > 0
    _check(rows, train_mask, where="train on", target=target)
    _check(rows, test_mask, where="test on", target=target)
    x = rows[list(FEATURE_NAMES)].to_numpy(dtype=np.float64)
    y = rows["label"].to_numpy(dtype=np.int64)
    val_mask = _in(rows, split.validation) & train_mask
    if config.search:  # LightGBM's settings, searched on the validation presentations (training.search)
        say("searching LightGBM settings on the validation presentations")
        config, _ = search_gbm(
            config, rows.loc[train_mask], x=x[train_mask], y=y[train_mask], val_mask=val_mask[train_mask]
        )
    family, choice, validation = _choose(
        config, rows, x=x, y=y, split=split, train_mask=train_mask, val_mask=val_mask, say=say
    )
    fit_on = None
    if mitigation is not None:
        say(f"working out the fairness mitigation's weights: {mitigation.describe()}")
        fit_on = Reweighting(
            *mitigation.reweigh(
                rows.loc[train_mask, [*KEYS, "label"]],
                x=x[train_mask],
                estimator=lambda: unfitted(family, config),
            )
        )
    say(f"fitting {family} on all training presentations and calibrating out of fold")
    bundle = _calibrated(
        target,
        family,
        config=config,
        rows=rows.loc[train_mask],
        x=x[train_mask],
        weight=weight[train_mask] if config.intervention_policy == "weight" else None,
        fit_on=fit_on,
    )
    say("evaluating on the later presentations")
    scored = rows.loc[test_mask, [*KEYS, "label", "outcome_day"]].assign(
        probability=bundle.probability(x[test_mask])
    )
    test_weekly = weekly_metrics(scored)
    record = None
    if mitigation is not None and fit_on is not None:
        say(f"comparing with {family} fitted without the mitigation")
        plain = fit(family, config, x=x[train_mask], y=y[train_mask])
        record = MitigationRecord(
            description=mitigation.describe(),
            params=mitigation.params(),
            chosen=fit_on.chosen,
            comparison=mitigation.compare(
                rows.loc[test_mask, [*KEYS, "label"]],
                before=sigmoid(margins(plain, x[test_mask])),
                after=scored["probability"].to_numpy(),
            ),
        )
    test_features = rows.loc[test_mask, ["week", "label", *FEATURE_NAMES]].assign(
        ended=_ended(rows.loc[test_mask], data.presentations)
    )
    # The share of each week's test rows whose presentation had ended: logged, so that what is said of
    # the model's accuracy can leave those weeks out (``service.transparency.accuracy``).
    ended_share = test_features.groupby("week")["ended"].mean()
    test_weekly = test_weekly.assign(ended_share=ended_share.reindex(test_weekly.index).fillna(0.0))
    return TrainingOutcome(
        target=target,
        family=family,
        config=config,
        split=split,
        bundle=bundle,
        validation=validation,
        test_weekly=test_weekly,
        lead=lead_time(scored) if target is Target.NOT_COMPLETING else {},
        train_rows=rows.loc[train_mask, [*KEYS, *FEATURE_NAMES, "label"]],
        test_scored=scored,
        folder=folder,
        manifest=manifest,
        warnings=small_test_warnings(test_weekly)
        + data_warnings
        + long_presentation_warnings(rows.loc[train_mask, ["module_id", "presentation_id", "week"]])
        + chance_warnings(test_weekly)
        + leakage_warnings(test_weekly, test_features, feature_names=FEATURE_NAMES),
        choice=choice,
        censoring=censoring,
        interval_coverage=scored_coverage(bundle.uncertainty, scored),
        mitigation=record,
        running=tuple((str(m), str(p)) for m, p in running[["module_id", "presentation_id"]].to_numpy()),
    )


def _censoring(
    data: LearningData,
    rows: pd.DataFrame,
    *,
    config: FitConfig,
    interventions: pd.DataFrame | None,
    train_mask: np.ndarray,
) -> tuple[np.ndarray, Censoring]:
    """Each row's training weight under the intervention policy (0: left out); test rows keep 1."""
    if config.intervention_policy != "ignore" and interventions is None:
        raise TrainingConfigError(
            f"intervention_policy {config.intervention_policy!r} needs the record of outreach "
            "(--interventions FILE, or the service database); with none, use 'ignore'"
        )
    contacts = contact_days(
        interventions if interventions is not None else pd.DataFrame(columns=["student_id", "contacted_on"]),
        registrations=data.registrations,
        presentations=data.presentations,
    )
    kept, weights, done = censor(
        rows.loc[train_mask],
        contacts,
        policy=config.intervention_policy,
        features=list(FEATURE_NAMES),
        seed=config.seed,
    )
    weight = np.ones(len(rows))
    weight[np.flatnonzero(train_mask)] = np.where(kept, weights, 0.0)
    return weight, done


def _split(
    presentations: pd.DataFrame,
    *,
    test_from: date | None,
    manifest: dict[str, object],
    sizes: dict[tuple[str, str], int] | None = None,
) -> TemporalSplit:
    if test_from is not None:
        return temporal_split(presentations, test_from, basis="set by --test-from", sizes=sizes)
    default, basis = default_test_from(presentations, manifest, sizes=sizes)
    return temporal_split(presentations, default, basis=basis, sizes=sizes)


#: At or above this share of the registrations of ended presentations without an outcome, training warns.
UNLABELLED_WARNING = 0.05


def _unlabelled(data: LearningData, running: pd.DataFrame, *, last_days: pd.DataFrame | None) -> str | None:
    """A warning when many registrations of ended presentations have no outcome, else None.

    They are left out of training and testing, never guessed. A Spanish university that mapped "No
    presentado" (did not sit the exam, its commonest way of not completing) to empty left out 52% of
    its non-completions without a word, and the measured AUC rose as the students it exists to find
    left the test set. Ended is by the calendar (a presentation's last day before the data's last
    date): an Italian university's semesters that ended 18 months before, held out whole with more than
    ``OUTCOMES_PENDING_SHARE`` of their outcomes empty, were neither counted nor said to have ended
    (735 of 3,868 said, where 1,794 of 7,264 were so).
    """
    registrations = data.registrations
    keys = pd.MultiIndex.from_frame(registrations[["module_id", "presentation_id"]].astype(str))
    held = keys.isin(pd.MultiIndex.from_frame(running[["module_id", "presentation_id"]].astype(str)))
    day = data_date(data.presentations, last_activity_day(data.activity) if last_days is None else last_days)
    if day is None:  # no activity to date the data: ended is what is not held out
        ended_mask = ~held
    else:
        presentations = data.presentations
        over = presentations.loc[ended_by(presentations, day) & (days_into(presentations, day) > 0)]
        ended_mask = keys.isin(pd.MultiIndex.from_frame(over[["module_id", "presentation_id"]].astype(str)))
    ended = registrations[ended_mask]
    if ended.empty:
        return None
    # An empty outcome with a leaving day is a leave, a deferral or a drop before a census date, left
    # without a label on purpose: a US university's 809 pre-census drops had been told to map to fail.
    unlabelled = (ended["final_result"].isna() & ended["unregistration_day"].isna()).to_numpy()
    empty = int(unlabelled.sum())
    if empty < UNLABELLED_WARNING * len(ended):
        return None
    left = int(ended["final_result"].isna().sum()) - empty
    gone = (
        f"; {left:,} more with a leaving day and no outcome (a leave, a deferral, a drop before a census "
        "date) are left out as mapped and not counted here"
        if left
        else ""
    )
    whole = ended[held[ended_mask] & unlabelled]  # the empty ones held out
    kept_out = len(whole[["module_id", "presentation_id"]].drop_duplicates())
    held_out = (
        f" ({len(whole):,} of them on {kept_out} "
        f"{'presentation' if kept_out == 1 else 'presentations'} held out whole, "
        f"with more than {OUTCOMES_PENDING_SHARE:.0%} of their outcomes empty)"
        if len(whole)
        else ""
    )
    return (
        f"{empty:,} of the {len(ended):,} registrations on presentations that had ended by the data's last "
        f"date ({empty / len(ended):.0%}) have no outcome and no leaving day{held_out} and are left out of "
        "training and testing: if some are students who did not sit or did not finish "
        '(a "did not sit" or "no presentado" mapped to empty), map them to fail, or the model never '
        "learns from them and the test set no longer holds them; if their results can still come (an exam "
        "sat at a later sitting, results withheld for a reason that is not the student's study), leave "
        f"them empty and tell the committee what the outcome means{gone}"
    )


def _ended(rows: pd.DataFrame, presentations: pd.DataFrame) -> np.ndarray:
    """Whether each row's cut-off falls at or after its presentation's last day (the whole run seen)."""
    length = presentations.assign(
        module_id=presentations["module_id"].astype(str),
        presentation_id=presentations["presentation_id"].astype(str),
    ).set_index(["module_id", "presentation_id"])["length_days"]
    keys = pd.MultiIndex.from_arrays([rows["module_id"].astype(str), rows["presentation_id"].astype(str)])
    return (7 * rows["week"].to_numpy() >= length.reindex(keys).to_numpy()).astype(bool)


def _quiet(_message: str) -> None:
    pass


def _calibrated(
    target: Target,
    family: str,
    *,
    config: FitConfig,
    rows: pd.DataFrame,
    x: np.ndarray,
    weight: np.ndarray | None = None,
    fit_on: Reweighting | None = None,
) -> ModelBundle:
    """``family`` fitted on the training ``rows`` (features ``x``), Platt-calibrated out of fold.

    The fold fits also give the jackknife variance behind each indicator's interval (``models.uncertainty``).
    With ``fit_on`` (a mitigation's), the fits use its labels and weights; the calibration still uses
    the rows' own labels (weighted by ``weight``, the intervention policy's, when given).
    """
    y = rows["label"].to_numpy(dtype=np.int64)
    students = rows["student_id"].to_numpy()
    fit_y, fit_w = (y, weight) if fit_on is None else (fit_on.labels, fit_on.weights)
    # The final fit and the fold fits are independent: fitted side by side (training.fitting.fit_subsets).
    folds = list(GroupKFold(n_splits=config.cv_folds).split(x, fit_y, students))
    pipeline, *fold_fits = fit_subsets(
        family, config, x=x, y=fit_y, weight=fit_w, subsets=[None, *(train_idx for train_idx, _ in folds)]
    )
    folded, oof = _fold_margins(fold_fits, [held_idx for _, held_idx in folds], x=x)
    a, b = platt(oof, y, weight=weight)
    table = interval_table(sigmoid(a * oof + b), folded, slope=a)
    return from_pipeline(
        target.value,
        family,
        pipeline=pipeline,
        feature_names=FEATURE_NAMES,
        calibration=(a, b),
        uncertainty=table,
    )


def _fold_margins(
    fold_fits: list[Pipeline], held_out: list[np.ndarray], *, x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Every fold fit's margins for every row, and each row's out-of-fold margin (no student in both)."""
    folded = np.empty((len(x), len(fold_fits)))
    oof = np.empty(len(x))
    for k, (fold_fit, held_idx) in enumerate(zip(fold_fits, held_out, strict=True)):
        folded[:, k] = margins(fold_fit, x)
        oof[held_idx] = folded[held_idx, k]
    return folded, oof


def _choose(
    config: FitConfig,
    rows: pd.DataFrame,
    *,
    x: np.ndarray,
    y: np.ndarray,
    split: TemporalSplit,
    train_mask: np.ndarray,
    val_mask: np.ndarray,
    say: Progress,
) -> tuple[str, FamilyChoice, pd.DataFrame]:
    """How the family is settled: given, by temporal validation, or by grouped cross-validation."""
    if len(config.families) == 1:
        return config.families[0], FamilyChoice(GIVEN, config.families), pd.DataFrame()
    fit_mask = train_mask & ~val_mask
    fit_y = y[fit_mask]
    if val_mask.any() and min(int(fit_y.sum()), int((1 - fit_y).sum())) >= MIN_POSITIVES:
        first = min(split.starts[k] for k in split.validation)
        say(f"choosing a model family on the validation presentations ({', '.join(config.families)})")
        detail = f"fitted on the presentations starting before {first}, compared on those starting from then"
        validation = rows.loc[val_mask, [*KEYS, "label"]]
        family, table = choose_family(
            config, x[fit_mask], y_fit=fit_y, validation=validation, x_val=x[val_mask]
        )
        return family, FamilyChoice(TEMPORAL, config.families, detail), table
    say(f"choosing a model family by grouped cross-validation ({', '.join(config.families)})")
    family, table, grouped_by = choose_by_grouped_cv(
        config, rows.loc[train_mask], x=x[train_mask], y=y[train_mask]
    )
    why = (
        f"every training presentation starts on {split.starts[split.train[0]]}"
        if not split.validation
        else "the presentations before the validation presentations hold too few examples to fit on"
    )
    detail = (
        f"{why}, so the families were compared inside the training period, {config.cv_folds} folds "
        f"grouped by {grouped_by} (none on both sides of a fold)"
    )
    return family, FamilyChoice(GROUPED_CV, config.families, detail, grouped_by), table
