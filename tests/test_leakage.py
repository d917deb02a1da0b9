"""Sanity after training: results too good to be true on a later cohort are named (issue #14, item 7)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from tests.model_stub import stub_outcome
from waymark.fairness.policy import load_policy
from waymark.fairness.report import model_card, published, render_html
from waymark.training.evaluation import (
    chance_warnings,
    leakage_warnings,
    long_presentation_warnings,
    small_test_warnings,
    weekly_metrics,
)

FEATURES = ("active_days", "days_since_withdrawal_recorded")


def _test_rows(*, leak: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(1)
    n = 600
    label = (rng.random(n) < 0.3).astype(int)
    week = np.repeat([4, 8], n // 2)
    honest = rng.normal(0, 1, n) - 0.8 * label  # informative, far from perfect
    leaked = label * 10.0 + rng.random(n) if leak else rng.normal(0, 1, n)
    features = pd.DataFrame({"week": week, "label": label, FEATURES[0]: honest, FEATURES[1]: leaked})
    probability = 1 / (1 + np.exp(-(leaked if leak else -honest)))
    scored = pd.DataFrame({"week": week, "label": label, "probability": probability})
    return weekly_metrics(scored), features


def test_a_feature_that_records_the_outcome_is_named_and_so_is_the_weeks_auc() -> None:
    weekly, features = _test_rows(leak=True)
    warnings = leakage_warnings(weekly, features, feature_names=FEATURES)
    assert any(
        w.startswith("feature days_since_withdrawal_recorded alone reaches AUC 1.000") for w in warnings
    )
    assert any(w.startswith("week 4: test AUC 1.000 is above 0.98") for w in warnings)
    assert not any("active_days" in w for w in warnings)


def test_a_week_too_small_to_judge_raises_no_leakage_warning() -> None:
    """A conservatoire's 12 test registrations with 2 outcomes reached AUC 1.000 by chance, and 19
    warnings blamed the target's mapping: the small-test warning says what is wrong instead."""
    _, features = _test_rows(leak=True)
    few = features[(features["week"] == 4) & ((features["label"] == 0) | (features.index < 20))]
    small = weekly_metrics(
        pd.DataFrame({"week": 4, "label": few["label"], "probability": 1 / (1 + np.exp(-few[FEATURES[1]]))})
    )
    assert int(small.loc[4, "positives"]) < 10
    assert leakage_warnings(small, few, feature_names=FEATURES) == ()
    assert small_test_warnings(small)


def test_an_honest_model_raises_no_warning() -> None:
    weekly, features = _test_rows(leak=False)
    assert leakage_warnings(weekly, features, feature_names=FEATURES) == ()


def test_weeks_whose_test_cohort_is_too_small_to_judge_are_named_in_one_warning() -> None:
    weekly, _ = _test_rows(leak=False)  # 300 registrations a week, about 90 with the outcome
    assert small_test_warnings(weekly) == ()
    rng = np.random.default_rng(2)
    week = np.repeat([2, 3, 4, 8], 14)
    label = (rng.random(week.size) < 0.3).astype(int)
    tiny = weekly_metrics(pd.DataFrame({"week": week, "label": label, "probability": rng.random(week.size)}))
    (warning,) = small_test_warnings(tiny)
    assert warning.startswith("weeks 2 to 4, 8: the test set holds 14 registrations")
    assert "--test-from" in warning


def test_weeks_ranked_no_better_than_chance_are_named_in_one_warning() -> None:
    """An art school's candidate had test AUC 0.45 to 0.51 at every week, and training said nothing."""
    weekly, _ = _test_rows(leak=False)
    assert chance_warnings(weekly) == ()
    rng = np.random.default_rng(4)
    week = np.repeat([4, 8, 12], 300)
    label = (rng.random(week.size) < 0.3).astype(int)
    noise = weekly_metrics(pd.DataFrame({"week": week, "label": label, "probability": rng.random(week.size)}))
    (warning,) = chance_warnings(noise)
    assert warning.startswith("weeks 4, 8, 12: test AUC 0.") and "no better than chance" in warning
    tiny = noise[noise.index.astype(int) == 4].assign(n=14)  # too small to judge: small_test_warnings says so
    assert chance_warnings(tiny) == ()


def test_the_committee_reads_the_training_warnings_in_the_report_and_the_model_card() -> None:
    policy = load_policy()
    warning = "feature days_since_withdrawal_recorded alone reaches AUC 1.000 on the later cohort (week 4)"
    outcome = stub_outcome(policy, training_warnings=(warning,))
    report = published(outcome, [])
    assert report["training_warnings"] == [warning]
    assert warning in render_html(report, policy.weeks, capacities=policy.capacities)
    assert warning in model_card(report, {})


def test_the_committee_reads_what_not_completing_was_in_the_institutions_own_words() -> None:
    """A Chilean university's "Postergación" and a French one's "AJAC" were mapped to fail; the model
    card and report still said "not completing the module", and the committee could not check it."""
    policy = load_policy()
    words = {"fail": ["Reprobado", "Postergación"], "withdrawn": ["Retiro definitivo"], "pass": ["Aprobado"]}
    report = published(stub_outcome(policy, outcome_words=words), [])
    meaning = report["model"]["outcome_meaning"]
    assert "“Reprobado”, “Postergación” (fail); “Retiro definitivo” (withdrawn)" in meaning
    assert "completing “Aprobado” (pass)" in meaning
    assert meaning in render_html(report, policy.weeks, capacities=policy.capacities).replace("&#34;", '"')
    assert meaning in model_card(report, {})
    assert published(stub_outcome(policy), [])["model"]["outcome_meaning"] == ""  # not known: not said


def test_a_week_after_most_presentations_ended_is_noted_not_blamed_on_the_mapping() -> None:
    """An online university's 8-week modules at week 8: AUC 0.993 is the whole run seen, and the
    warning told the team to fix a mapping that was right. Such a week is named once, unchecked."""
    weekly, features = _test_rows(leak=True)
    ended = features.assign(ended=features["week"] == 8)
    warnings = leakage_warnings(weekly, ended, feature_names=FEATURES)
    assert any(w.startswith("week 4: test AUC 1.000") for w in warnings)  # week 4 still checked
    assert not any(w.startswith("week 8: test AUC") for w in warnings)
    assert all("(week 8)" not in w for w in warnings if w.startswith("feature"))
    assert warnings[-1].startswith("week 8: most test registrations' presentations have ended by the cut-off")
    # A week where only some have ended is checked as before.
    some = features.assign(ended=(features["week"] == 8) & (features.index % 3 == 0))
    checked = leakage_warnings(weekly, some, feature_names=FEATURES)
    assert any(w.startswith("week 8: test AUC 1.000") for w in checked)
    # And said to be partly end of term (a US university's week 8 was the last of its 8-week sessions).
    share = some.loc[some["week"] == 8, "ended"].mean()
    assert checked[-1].startswith(f"week 8: {share:.0%} of test registrations' presentations have ended")
    assert not any("have ended" in w for w in leakage_warnings(weekly, features, feature_names=FEATURES))


def test_a_not_recorded_flag_that_tells_the_outcome_is_named_well_below_the_leak_threshold() -> None:
    """A French school's resit rows, kept as the last, carried no registration date: "registration day
    not recorded" was true of every student who failed the first session, AUC 0.915 alone, and the
    model's week 2 AUC was 0.920 against 0.711 with the date; below 0.98 nothing was said."""
    weekly, features = _test_rows(leak=False)
    rng = np.random.default_rng(3)
    told = ((features["label"] == 1) & (rng.random(len(features)) < 0.85)).astype(float)
    flagged = features.assign(
        reg_day_missing=told, credits_missing=(rng.random(len(features)) < 0.1).astype(float)
    )
    names = (*FEATURES, "reg_day_missing", "credits_missing")
    warnings = leakage_warnings(weekly, flagged, feature_names=names)
    [said] = [w for w in warnings if "reg_day_missing" in w]
    assert said.startswith("feature reg_day_missing (a value not recorded) alone reaches AUC 0.9")
    assert "whether a value was recorded should not tell the outcome" in said
    assert not any("credits_missing" in w for w in warnings)  # missing at random: nothing said


def test_a_presentation_far_longer_than_the_others_and_much_of_the_rows_is_named() -> None:
    """A Nigerian university's semester that a strike extended to 48 weeks, against 16 or 17 for every
    other, made 47% of the training rows, and training said nothing."""

    def rows(weeks: dict[str, int], students: int = 10) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {"module_id": "CSC101", "presentation_id": p, "week": w}
                for p, last in weeks.items()
                for w in range(1, last + 1)
                for _ in range(students)
            ]
        )

    usual = {"2019/1": 16, "2019/2": 17, "2020/1": 16, "2020/2": 17}
    assert long_presentation_warnings(rows(usual)) == ()
    [said] = long_presentation_warnings(rows({**usual, "2021/1": 48}))
    assert said.startswith("CSC101 2021/1: 48 weeks against a median of 16.5 for the others, and 42% of")
    assert "its weeks 18 to 48 are in no other presentation trained on" in said
    # Two trained on (a review's case), and two long ones: each named, and no week range said of either.
    [two] = long_presentation_warnings(rows({"2019/1": 16, "2021/1": 48}))
    assert two.startswith("CSC101 2021/1: 48 weeks against a median of 16 for the others, and 75% of")
    both = long_presentation_warnings(rows({**usual, "2021/1": 48, "2022/1": 48}))
    assert len(both) == 2 and not any("are in no other presentation" in w for w in both), both
    # A long one making little of the rows (many presentations beside it) is not named.
    many = {f"{y}/{s}": 16 for y in range(2000, 2020) for s in (1, 2)}
    assert long_presentation_warnings(rows({**many, "2021/1": 48})) == ()
