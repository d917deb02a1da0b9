"""Audit a registered candidate: score its own temporal test cohort, then measure it by group."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from waymark.fairness.audit import NOT_RECORDED, AttributeAudit, audit_cohorts, group_labels
from waymark.fairness.gate import CheckResult, evaluate
from waymark.fairness.mitigation import MitigationRow, equalised_fnr
from waymark.fairness.monitoring import group_estimate_shares
from waymark.fairness.policy import Policy
from waymark.fairness.protected import load_protected_characteristics, protected_characteristics_on_spark
from waymark.fairness.quality import QualityOutcome
from waymark.fairness.quality import evaluate as evaluate_quality
from waymark.fairness.quality import measure as measure_quality
from waymark.fairness.strata import WithinModules, within_modules
from waymark.models import registry, threads
from waymark.models.bundle import ModelBundle
from waymark.models.calendar import TYPED_LAST_DAY_SQL, data_date, last_activity_day, unfinished
from waymark.models.data import (
    ProtectedFrame,
    folder_fingerprint,
    load_learning_data,
    memo,
    presentation_name,
)
from waymark.models.data.publish import is_uri, local_folder
from waymark.models.features import KEYS, build_features, population
from waymark.models.registry import LoadedModel, load_bundle
from waymark.models.targets import Target, labels


class AuditError(ValueError):
    """The audit cannot run (no protected characteristics, no test cohort, ...)."""


@dataclass(frozen=True)
class ProxyResult:
    """How well the model's features predict one characteristic (cross-validated AUC)."""

    attribute: str
    auc: float
    warning: bool
    # With three groups or more: the group the features tell apart best from the rest, and that AUC.
    # The average over groups hid a near-perfect proxy of one (an admission route whose students
    # alone had a weekly session: 0.997 for them, 0.693 on average, under the warning).
    group: str | None = None
    group_auc: float = math.nan
    # With a warning: the features that tell the characteristic (or its group named above) apart best,
    # each with its own AUC read either way. A Saudi university's report said only "1.00" for sex:
    # card readers on the women's campus alone were the cause, and nothing named them.
    features: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, eq=False)
class AuditOutcome:
    """Everything the report needs."""

    model: LoadedModel
    run_id: str
    test_presentations: tuple[str, ...]
    data_fingerprint: str
    policy: Policy
    audits: list[AttributeAudit]
    gate: str
    checks: list[CheckResult]
    proxies: list[ProxyResult]
    attributes: tuple[str, ...]
    mitigation: list[MitigationRow]
    training_warnings: tuple[str, ...] = ()  # suspiciously good results the training run recorded
    family_choice: str = ""  # how the training run settled its model family
    # the fairness policy's training-time mitigation the run applied, in words ("": none)
    training_mitigation: str = ""
    intervention_policy: str = "ignore"  # how training handled registrations outreach reached first
    # the export's own words each outcome was mapped from ({} where the import did not say)
    outcome_words: dict[str, list[str]] = field(default_factory=dict)
    test_modules: tuple[str, ...] = ()  # the modules of the test presentations: what scoring can say of
    # week -> characteristic -> group -> share of estimates per bin (shown groups only): the reference
    # the monitor compares a scoring run's groups with (``fairness.monitoring``)
    estimate_reference: dict[str, Any] = field(default_factory=dict)
    # the quality gate (``fairness.quality``): AUC and ECE by week, and against the champion
    quality: QualityOutcome | None = None
    # each published calibration gap difference, also within modules (``fairness.strata``)
    calibration_within_modules: list[WithinModules] = field(default_factory=list)
    # the policy's weeks with no test row (no test presentation runs that long): neither gate judges them
    unaudited_weeks: tuple[int, ...] = ()
    # who trained the version, as its training run's `trained_by` tag names them (WAYMARK_OPERATOR):
    # the committee's approvals refuse them (``service.decisions``)
    trained_by: str = ""


def audit_model(
    uri: str,
    folder: Path | str,
    *,
    policy: Policy,
    exclude: frozenset[str] = frozenset(),
    champion: LoadedModel | None = None,
    spark: Any = None,
) -> AuditOutcome:
    """Audit the model version ``uri`` on the data in ``folder`` under ``policy``.

    ``exclude`` names students whose erasure was processed (CoP §12): they are left out entirely.
    ``champion`` is the model being served (loaded after its recorded hash was checked), scored on
    the candidate's own test presentations for the quality gate's comparison; None when there is none.
    ``spark``, a Spark session, validates the folder and builds the features on Spark; the
    protected characteristics are still read here alone, and every measure is computed here. With
    ``spark`` ``folder`` may also be a Hadoop URI: the protected characteristics then come from the
    same validation on Spark (``fairness.protected``), and the data's fingerprint from the store's
    metadata (``models.spark.location``).

    Threads: the whole audit runs with BLAS, OpenMP and numba limited to ``models.threads.cores()``
    (DuckDB and LightGBM read the same number), so it never starts more threads than the process
    may use. LightGBM scores the cohort in one call, so OpenMP's short spin-wait after it happens
    once, not per resample, and needs no ``OMP_WAIT_POLICY``; the bootstrap uses no OpenMP at all
    (``fairness.audit``) and the proxy check runs one thread per fit (``proxy_check``).
    """
    with threads.capped():
        return _audit_model(uri, folder, policy=policy, exclude=exclude, champion=champion, spark=spark)


def _audit_model(
    uri: str,
    folder: Path | str,
    *,
    policy: Policy,
    exclude: frozenset[str],
    champion: LoadedModel | None,
    spark: Any = None,
) -> AuditOutcome:
    loaded = load_bundle(uri)
    run_id = registry.resolve(uri).tags.get("run_id", "")
    training = registry.run(run_id)
    test = _test_presentations(training.params)
    if not test:
        raise AuditError(f"{uri} records no test presentations; was it trained by `waymark train`?")
    fingerprint, protected, tables = _read(folder, spark=spark)
    if protected is None or not protected.attributes:
        raise AuditError(f"{folder} has no protected_characteristics table: a fairness audit is impossible")
    scored, features = _score(
        loaded, folder, test=test, weeks=policy.weeks, exclude=exclude, spark=spark, tables=tables
    )
    group_table = group_labels(protected, intersections=policy.intersections)
    audits = audit_cohorts(scored, group_table, policy=policy)
    gate, checks = evaluate(audits, policy)
    quality = _quality(scored, features, loaded=loaded, champion=champion, policy=policy)
    proxies = proxy_check(
        features, group_table[list(protected.attributes)], bundle=loaded.bundle, policy=policy
    )
    return AuditOutcome(
        model=loaded,
        run_id=run_id,
        trained_by=training.tags.get(registry.TRAINED_BY_TAG, ""),
        test_presentations=tuple(presentation_name(m, p) for m, p in test),
        test_modules=tuple(sorted({str(m) for m, _ in test})),
        data_fingerprint=fingerprint or folder_fingerprint(local_folder(folder)),
        policy=policy,
        audits=audits,
        gate=gate,
        checks=checks,
        proxies=proxies,
        attributes=protected.attributes,
        mitigation=_mitigation(scored, group_table, attributes=protected.attributes, policy=policy),
        training_warnings=tuple(training.tags.get(registry.WARNINGS_TAG, "").splitlines()),
        family_choice=training.tags.get(registry.FAMILY_CHOICE_TAG, ""),
        training_mitigation=training.tags.get(registry.MITIGATION_TAG, ""),
        intervention_policy=training.params.get("config_intervention_policy", "ignore"),
        outcome_words=_outcome_words(training.tags.get(registry.OUTCOME_WORDS_TAG, "")),
        estimate_reference={
            str(week): group_estimate_shares(
                scored[scored["week"] == week],
                group_table,
                min_size=policy.min_group_size,
                rounding=policy.count_rounding,
            )
            for week in sorted(scored["week"].unique())
        },
        quality=quality,
        calibration_within_modules=within_modules(
            scored, group_table, audits=audits, min_size=policy.min_group_size
        ),
        unaudited_weeks=tuple(w for w in policy.weeks if w not in set(scored["week"].astype(int))),
    )


def _outcome_words(tag: str) -> dict[str, list[str]]:
    """The training run's ``OUTCOME_WORDS_TAG`` read back ({} when absent or not what it should be)."""
    try:
        read = json.loads(tag) if tag else {}
    except ValueError:
        return {}
    if not isinstance(read, dict):
        return {}
    return {str(k): [str(w) for w in v] for k, v in read.items() if isinstance(v, list)}


def _test_presentations(params: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """The training run's test presentations, whole ids (``registry.pairs_params``).

    A run from before the parts were kept recorded ``module/presentation`` joined by spaces: read as
    it was, which splits an id with a space in it.
    """
    kept = registry.params_pairs(params, "test_presentations")
    if kept is not None:
        return kept
    older = params.get("test_presentations", "").split()
    return tuple((m, p) for m, _, p in (t.partition("/") for t in older))


def _of(frame: pd.DataFrame, presentations: tuple[tuple[str, str], ...]) -> pd.Series:
    """Per row of ``frame``: whether its module_id and presentation_id are one of ``presentations``."""
    keys = pd.MultiIndex.from_frame(frame[["module_id", "presentation_id"]].astype(str))
    return pd.Series(keys.isin(list(presentations)), index=frame.index)


def _read(folder: Path | str, *, spark: Any) -> tuple[str | None, ProtectedFrame | None, Any]:
    """The data's fingerprint, its protected characteristics, and its feature tables on Spark.

    A local path: the characteristics read on DuckDB (``load_protected_characteristics``), None for
    the other two (the fingerprint is taken when the outcome is made, the tables by ``_score``). A
    URI on Spark: the fingerprint from the store's metadata, taken first, then one validation on
    Spark for both the characteristics and the feature tables.
    """
    if spark is None or not is_uri(folder):
        return None, load_protected_characteristics(local_folder(folder)), None
    from waymark.models.spark.location import fingerprint
    from waymark.models.spark.reading import feature_tables, validated

    taken = fingerprint(folder, spark)
    with validated(folder, spark) as views:
        return taken, protected_characteristics_on_spark(views), feature_tables(views)


def _quality(
    scored: pd.DataFrame,
    features: pd.DataFrame,
    *,
    loaded: LoadedModel,
    champion: LoadedModel | None,
    policy: Policy,
) -> QualityOutcome:
    """The quality gate on the scored cohort, with the champion scored on the very same rows.

    Only rows of presentations the champion was not trained on are compared: on its own training
    presentations the champion would be measured on students it learned from (an institution's
    re-split was blocked against a champion's inflated AUC that way). The floors use every row.
    """
    compared, note = _champion_scores(features, loaded=loaded, champion=champion)
    unseen = None
    if compared is not None and champion is not None:
        unseen, note = _unseen_by(champion, features, note=note)
        if not unseen.any():
            compared = None
    if compared is None or unseen is None or unseen.all():
        rows = scored if compared is None else scored.assign(champion_probability=compared)
        weeks = measure_quality(rows, policy=policy)
    else:
        weeks = measure_quality(scored, policy=policy)
        paired = measure_quality(scored[unseen].assign(champion_probability=compared[unseen]), policy=policy)
        by_week = {w.week: w for w in paired}
        weeks = tuple(
            replace(w, champion=by_week[w.week].champion, difference=by_week[w.week].difference)
            if w.week in by_week
            else w
            for w in weeks
        )
    named = None if champion is None or compared is None else f"version {champion.version}"
    return evaluate_quality(weeks, policy, champion=named, champion_note=note)


def _unseen_by(champion: LoadedModel, features: pd.DataFrame, *, note: str) -> tuple[np.ndarray, str]:
    """Per row, whether the champion's training run left its presentation out; and the note, amended."""
    run_id = registry.resolve(f"models:/{champion.name}/{champion.version}").tags.get("run_id", "")
    trained_on = registry.params_pairs(registry.run(run_id).params, "train_presentations") if run_id else None
    if not trained_on:  # an older run, which kept no list: compared on every row, as before
        return np.ones(len(features), dtype=bool), note
    seen = _of(features, trained_on).to_numpy()
    overlap = sorted(
        {
            presentation_name(m, p)
            for m, p in features.loc[seen, ["module_id", "presentation_id"]]
            .astype(str)
            .itertuples(index=False)
        }
    )
    if not overlap:
        return ~seen, note
    who = f"the champion, {champion.name} version {champion.version}"
    if seen.all():
        return ~seen, (
            f"{who}, was trained on every presentation the candidate is tested on ({', '.join(overlap)}), so "
            "it cannot be compared on students it learned from: this check is skipped"
        )
    return ~seen, (
        f"{note}, on the presentations it was not trained on only (it was trained on {', '.join(overlap)}, "
        "left out of the comparison)"
    )


def _champion_scores(
    features: pd.DataFrame, *, loaded: LoadedModel, champion: LoadedModel | None
) -> tuple[np.ndarray | None, str]:
    """The champion's estimates for the audited rows, or None and why the comparison is skipped."""
    if champion is None:
        return None, f"there is no approved champion of {loaded.name} to compare with: this check is skipped"
    who = f"the champion, {champion.name} version {champion.version}"
    if champion.version == loaded.version and champion.name == loaded.name:
        return None, f"the candidate is {who} itself: there is nothing to compare with"
    if champion.bundle.target != loaded.bundle.target:
        return None, f"{who}, predicts another target ({champion.bundle.target}): this check is skipped"
    try:
        x = champion.bundle.matrix(features)
    except ValueError as exc:  # built for features this code no longer makes
        return None, f"{who}, cannot score these students ({exc}): this check is skipped"
    return champion.bundle.probability(x), f"{who}, scored on the same students of the later presentations"


def _mitigation(
    scored: pd.DataFrame, group_table: pd.DataFrame, *, attributes: tuple[str, ...], policy: Policy
) -> list[MitigationRow]:
    week = policy.weeks[len(policy.weeks) // 2]
    rows = scored[scored["week"] == week].reset_index(drop=True)
    joined = group_table.reindex(rows["student_id"]).fillna(NOT_RECORDED).reset_index(drop=True)
    capacity, min_size = policy.capacities[0], policy.min_group_size
    return [
        m
        for a in attributes
        for m in equalised_fnr(rows, joined[a], capacity=capacity, attribute=a, min_size=min_size)
    ]


def _folder_data_date(folder: Path) -> date | None:
    """The data date of the whole of ``folder`` (``calendar.data_date``), validated or found validated."""
    con, _ = memo.open_valid(folder, fingerprint=folder_fingerprint(folder))
    try:
        last_days = con.sql(TYPED_LAST_DAY_SQL).df()
        return data_date(
            con.sql("SELECT module_id, presentation_id, start_date FROM t_presentations").df(), last_days
        )
    finally:
        con.close()


def _score(
    loaded: LoadedModel,
    folder: Path | str,
    *,
    test: tuple[tuple[str, str], ...],
    weeks: tuple[int, ...],
    exclude: frozenset[str],
    spark: Any = None,
    tables: Any = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The test cohort's labelled rows with the model's estimates, and their features.

    ``tables`` are the folder's feature tables already read on Spark (``_read``); read here when None.
    """
    if spark is None:  # the test presentations only (earlier attempts still count: LearningData.attempts)
        local = local_folder(folder)
        data = load_learning_data(
            local,
            choose=lambda p: p[_of(p, test)],
        ).without(exclude)
        features = build_features(data, weeks)
        # The data date from the whole folder's activity, as training read it: the test presentations'
        # own last days alone would put it earlier, and a presentation ended by then look unfinished.
        as_of, last_days = _folder_data_date(local), None
    else:  # validated and featured on Spark; only the records tables and the features come back
        from waymark.models.spark.engine import SparkEngine, collect
        from waymark.models.spark.features import features_and_records
        from waymark.models.spark.partitions import without
        from waymark.models.spark.reading import load_tables

        engine = SparkEngine(spark)
        read = without(load_tables(folder, spark) if tables is None else tables, exclude, engine=engine)
        data, features = features_and_records(read, spark, weeks=weeks)
        # The records come back without activity: the data date is read from it on Spark.
        as_of, last_days = None, collect(last_activity_day(read["activity"], engine=engine))
    features = features[_of(features, test)]
    pop = population(data.registrations, data.presentations, weeks=weeks)
    running = unfinished(data.tables(), last_days=last_days, as_of=as_of)
    rows = features.merge(
        labels(Target(loaded.bundle.target), pop, tables=data.tables(), running=running), on=list(KEYS)
    )
    if rows.empty:
        raise AuditError(
            "the data holds no labelled rows of the model's test presentations in the audited weeks"
        )
    rows["probability"] = loaded.bundle.probability(loaded.bundle.matrix(rows))
    return rows[[*KEYS, "label", "probability"]], rows


def proxy_check(
    features: pd.DataFrame, groups: pd.DataFrame, *, bundle: ModelBundle, policy: Policy
) -> list[ProxyResult]:
    """Cross-validated AUC of a logistic model predicting each characteristic from the features.

    The features are the model's own (``bundle.matrix``) at the middle audited week, one row per
    student; a characteristic is checked on its recorded groups of at least ``min_group_size``
    (and 5) students, when there are two or more.

    Every fold of every characteristic is one small fit, single-threaded (BLAS and OpenMP limited
    to one thread: many threads on a 16,000 x 60 matrix only wait on each other, and their
    spinning took 150 s of a busy machine where one thread each takes 5); the fits run side by
    side on ``models.threads.cores()`` threads. The result is that of ``cross_val_predict`` on
    the same folds, whatever the number of cores.
    """
    week = sorted(features["week"].unique())[len(features["week"].unique()) // 2]
    rows = features[features["week"] == week].drop_duplicates("student_id")
    x = bundle.matrix(rows)
    tasks, unchecked = [], []
    for attribute in groups.columns:
        y = groups[attribute].reindex(rows["student_id"]).fillna(NOT_RECORDED).to_numpy()
        counts = pd.Series(y).value_counts()
        keep = np.isin(
            y, counts[(counts >= max(policy.min_group_size, 5)) & (counts.index != NOT_RECORDED)].index
        )
        if np.unique(y[keep]).size >= 2:
            tasks.append(_ProxyTask(attribute, x=x[keep], y=y[keep], seed=policy.seed))
        else:  # said, not left out of the table without a word (an art school's care-experienced students)
            unchecked.append(ProxyResult(attribute, math.nan, warning=False))
    folds = [(task, f) for task in tasks for f in range(len(task.folds))]
    with threads.capped(1), ThreadPoolExecutor(threads.cores(), initializer=_one_thread_here) as pool:
        fitted = list(pool.map(lambda job: job[0].fold_proba(job[1]), folds))
    out, start = [], 0
    for task in tasks:
        auc, group, group_auc = task.auc(fitted[start : start + len(task.folds)])
        start += len(task.folds)
        warning = auc >= policy.proxy_auc_warning or group_auc >= policy.proxy_auc_warning
        # of two classes, or the named group (with more and none named, no one group to tell apart)
        named = warning and (group is not None or task.classes.size == 2)
        telling = task.telling(bundle.feature_names, group=group) if named else ()
        out.append(
            ProxyResult(task.attribute, auc, warning, group=group, group_auc=group_auc, features=telling)
        )
    return out + unchecked


def _one_thread_here() -> None:
    """A pool thread's own OpenMP limit (per thread, unlike BLAS's): one thread."""
    threadpool_limits(limits=1, user_api="openmp")


#: The fewest students of a group the proxy check names as the one the features tell apart best.
PROXY_GROUP_MIN = 50
#: How many of the features that tell a warned characteristic apart best the report names, and from
#: which AUC (read either way) one is named.
PROXY_FEATURES, PROXY_FEATURE_MIN = 3, 0.6


class _ProxyTask:
    """One characteristic's proxy check: stratified folds, a fit per fold, the AUC of the whole."""

    def __init__(self, attribute: str, *, x: np.ndarray, y: np.ndarray, seed: int) -> None:
        self.attribute, self.x, self.y = attribute, x, y
        self.classes = np.unique(y)
        splitter = StratifiedKFold(n_splits=5, shuffle=True, random_state=seed)
        self.folds = list(splitter.split(x, y))

    def fold_proba(self, k: int) -> np.ndarray:
        """Probabilities of each class for fold ``k``'s rows, from a model fitted on the others.

        A class absent from the fold's training rows gets probability 0, as in ``cross_val_predict``.
        """
        train, test = self.folds[k]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
        model.fit(self.x[train], self.y[train])
        out = np.zeros((test.size, self.classes.size))
        out[:, np.searchsorted(self.classes, model.classes_)] = model.predict_proba(self.x[test])
        return out

    def telling(self, names: tuple[str, ...], *, group: str | None) -> tuple[tuple[str, float], ...]:
        """The features that alone tell the characteristic apart best: at most ``PROXY_FEATURES``.

        Each feature's AUC for the named ``group`` against the rest (else the second of two classes, or
        the last of more), read either way (0.2 tells apart as well as 0.8), from ``PROXY_FEATURE_MIN``.
        """
        target = self.y == (group if group is not None else self.classes[-1])
        found = []
        for j, name in enumerate(names):
            column = self.x[:, j]
            if np.nanmin(column) == np.nanmax(column):
                continue
            score = float(roc_auc_score(target, np.nan_to_num(column)))
            found.append((name, max(score, 1 - score)))
        found.sort(key=lambda f: -f[1])
        return tuple((n, round(a, 3)) for n, a in found[:PROXY_FEATURES] if a >= PROXY_FEATURE_MIN)

    def auc(self, fold_probas: list[np.ndarray]) -> tuple[float, str | None, float]:
        """ROC AUC of the out-of-fold probabilities, and with more classes the best told apart.

        Two classes: their AUC (no group). More: the one-vs-rest macro average, the class whose
        one-vs-rest AUC is highest, and that AUC.
        """
        proba = np.zeros((self.y.size, self.classes.size))
        for (_, test), part in zip(self.folds, fold_probas, strict=True):
            proba[test] = part
        if self.classes.size == 2:
            return float(roc_auc_score(self.y, proba[:, 1])), None, math.nan
        each = [float(roc_auc_score(self.y == c, proba[:, k])) for k, c in enumerate(self.classes)]
        # The best of many groups' AUCs is high by chance where a group is small: named from
        # PROXY_GROUP_MIN students (a reviewer's point), as the average still covers every group.
        sizes = np.array([(self.y == c).sum() for c in self.classes])
        named = [k for k in range(self.classes.size) if sizes[k] >= PROXY_GROUP_MIN]
        if not named:
            return float(np.mean(each)), None, math.nan
        best = max(named, key=lambda k: each[k])
        return float(np.mean(each)), str(self.classes[best]), each[best]
