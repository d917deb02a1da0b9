"""A module cohort under ``MIN_COHORT`` students is never compared with, in features or in sentences.

With one, two or four students on a module, "more activity than about 0% of students" says who the
others are rather than anything about the student, and tells staff about those others. Institutions
run such modules (a small postgraduate option); OULAD and the synthetic cohorts have none.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from tests.contract_folder import make_folder
from tests.test_explanations_fit import _bundle
from tests.unfitted import unfitted_model
from waymark.models.data import load_learning_data
from waymark.models.explain import explain_cohort
from waymark.models.explain.batch_sentences import describe_all
from waymark.models.explain.cohort import compared_marks
from waymark.models.explain.sentences import COMPARED_MARKS
from waymark.models.features import build_features
from waymark.models.features.catalogue import MIN_COHORT

PERCENTILES = ["act_total_pct", "act_last14_pct", "act_active_days_pct", "asm_submitted_pct", "asm_score_pct"]
Z_SCORES = ["act_total_z", "act_last14_z"]
COHORT = ["module_id", "presentation_id", "week"]


def test_a_small_cohort_has_neutral_comparisons_and_a_larger_one_its_ranks(
    tmp_path: Path, synth_dir: Path
) -> None:
    small = build_features(load_learning_data(make_folder(tmp_path)), [2, 4, 6])
    assert small.groupby(COHORT).size().max() < MIN_COHORT
    assert (small[PERCENTILES] == 0.5).all().all() and (small[Z_SCORES] == 0.0).all().all()
    large = build_features(load_learning_data(synth_dir), [6])
    sizes = large.groupby(COHORT)["act_total"].transform("size")
    assert (sizes >= MIN_COHORT).all()
    ranks = large.groupby(COHORT)["act_total"].rank(method="min")
    np.testing.assert_allclose(large["act_total_pct"], (ranks - 1) / (sizes - 1))
    assert large["act_total_z"].abs().max() > 0.5


def test_no_sentence_compares_a_student_with_a_small_cohort(tmp_path: Path) -> None:
    features = build_features(load_learning_data(make_folder(tmp_path)), [4, 6])
    explained = explain_cohort(_bundle(features), features).indicators
    said = [
        item["sentence"]
        for column in ("factors", "strengths", "context")
        for items in explained[column]
        for item in items
    ]
    assert said, "the students of a small cohort still have factors of their own"
    assert not [s for s in said if "% of" in s or "The same for" in s]
    # What could change would be said with another of its few students' values: nothing is said.
    assert explained["what_could_change"].isna().all()
    larger = pd.concat([features.assign(student_id=features["student_id"] + f"-{i}") for i in range(3)])
    changes = explain_cohort(_bundle(larger), larger.reset_index(drop=True)).indicators["what_could_change"]
    assert changes.notna().any(), "in a cohort of five or more, what could change is said"


def test_a_mark_is_compared_only_with_enough_marks(tmp_path: Path) -> None:
    # M1 at week 6: its 2 students have a mark each; three times as many, 6 marks, are compared.
    features = build_features(load_learning_data(make_folder(tmp_path)), [6])
    one = features[features["module_id"] == "M1"]
    many = pd.concat([one] * 3, ignore_index=True)
    for frame, compared in ((one, False), (many, True)):
        group = frame.groupby(COHORT, sort=False).ngroup().to_numpy()
        cols = {c: frame[c].to_numpy(dtype=np.float64) for c in ("asm_has_score", "asm_score_mean")}
        cols |= {"asm_score_pct": np.full(len(frame), 0.9), COMPARED_MARKS: compared_marks(frame, group)}
        _, sentences = describe_all("assessment_results", cols, src=[""] * len(frame))
        marks = [s for s in sentences if s.startswith("Average mark")]
        assert len(marks) == len(frame)
        assert all(("higher than about 90% of marks" in s) is compared for s in marks), marks


def test_in_a_cohort_too_small_to_compare_marks_a_mark_is_weighed_against_the_middle_of_the_scale(
    tmp_path: Path,
) -> None:
    """Below ``MIN_COHORT`` marks there is no typical mark to compare with (it would be one of a few
    named students' own): a mark below the middle of the 0-100 scale is never a strength there, nor
    one above it a factor. M1 at week 6 has two marks, 70.5 and 40."""
    features = build_features(load_learning_data(make_folder(tmp_path)), [6])
    marked = features["asm_has_score"] >= 1
    assert sorted(features.loc[marked, "asm_score_mean"]) == [40.0, 70.5]
    said = []
    for coef in (2.0, -2.0):  # a higher mark raises the estimate, then lowers it
        bundle = unfitted_model(features, lambda name, c=coef: c if name == "asm_score_mean" else 0.0)
        indicators = explain_cohort(bundle, features).indicators
        for column in ("factors", "strengths"):
            for i, items in enumerate(indicators[column]):
                for s in items:
                    if s["family"] == "assessment_results":
                        said.append((column, i, s["sentence"]))
    for column, i, sentence in said:
        mark = features.at[i, "asm_score_mean"] if marked[i] else None
        if column == "strengths":
            assert mark is not None and mark >= 50, sentence
        else:
            assert mark is None or mark <= 50, sentence
    assert ("strengths", "Average mark on marked work so far: 70 out of 100.") in {(c, s) for c, _, s in said}
    assert ("factors", "Average mark on marked work so far: 40 out of 100.") in {(c, s) for c, _, s in said}
