"""Explanations that fit the data (#14, item 5): cohort-wide facts are context, sources are named by their
label, and a source a module does not record is coverage, never the student's disengagement."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests.contract_folder import VALID, make_folder
from tests.unfitted import unfitted_model
from tests.vocabulary import forbidden_words
from waymark.models.bundle import ModelBundle
from waymark.models.data import FEATURE_TABLES, load_with_source_labels, source_label, source_labels
from waymark.models.data.contract import DEFAULT_SOURCE_LABELS
from waymark.models.explain import SourceCoverage, describe_cohort, explain_cohort
from waymark.models.explain.cohort import THRESHOLD
from waymark.models.explain.families import family_columns, family_sums
from waymark.models.explain.sentences import MARKS_COUNT
from waymark.models.explain.typical import MIN_COHORT, cohort_standing
from waymark.models.features import FEATURE_NAMES, build_features
from waymark.models.features.catalogue import (
    ALL_SOURCES_FAMILIES,
    CHANNEL_FAMILY,
    SOURCES,
)
from waymark.models.registry import LoadedModel
from waymark.service.db.schema import Indicator
from waymark.service.scoring import job

# exams and kiosk are not built-in sources: they are used because students were told of them (CoP §4);
# kiosk is declared without a label, so it keeps a neutral name.
LABELS = [
    ["source", "label", "notice_given_on"],
    ["exams", "exam sittings", "2024-09-01"],
    ["library", "the university library", ""],
    ["kiosk", "", "2024-09-01"],
]


def test_the_sources_table_names_sources_and_is_never_a_model_input(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "data", sources=LABELS)
    data, labels = load_with_source_labels(folder)
    assert "sources" not in FEATURE_TABLES
    assert "sources" not in data.tables()
    assert labels["exams"] == "exam sittings"
    assert labels["library"] == "the university library"
    assert labels["vle"] == "the learning platform"


def test_without_a_sources_table_every_built_in_source_has_its_own_name(tmp_path: Path) -> None:
    labels = source_labels(make_folder(tmp_path / "data"))
    assert set(DEFAULT_SOURCE_LABELS) == set(SOURCES)
    assert labels == DEFAULT_SOURCE_LABELS


def test_a_source_nobody_named_is_never_called_the_learning_platform() -> None:
    assert source_label(DEFAULT_SOURCE_LABELS, "exams") == "'exams' records"
    assert source_label({"exams": ""}, "exams") == "'exams' records"


# A small folder, four modules of 20 students scored at week 8 (cut-off day 56):
# A  activity from the learning platform and from `exams`, marked coursework;
# B  activity from the learning platform only, coursework submitted but nobody's marked yet;
# C  no activity from any source for anyone, marked coursework;
# D  activity from `kiosk` only (declared, but a source nobody named), marked coursework.
WEEK = 8
PER_MODULE = 20


def _rows() -> dict[str, list[list[str]]]:
    rng = np.random.default_rng(5)
    tables: dict[str, list[list[str]]] = {
        "presentations": [["module_id", "presentation_id", "start_date", "length_days"]],
        "students": [["student_id"]],
        "registrations": [
            [
                "student_id",
                "module_id",
                "presentation_id",
                "registration_day",
                "unregistration_day",
                "final_result",
            ]
        ],
        "assessments": [["assessment_id", "module_id", "presentation_id", "type", "due_day", "weight"]],
        "assessment_results": [["student_id", "assessment_id", "submitted_day", "score"]],
        "activity": [
            ["student_id", "module_id", "presentation_id", "day", "source", "activity_type", "count"]
        ],
    }
    sources = {"A": ("vle", "exams"), "B": ("vle",), "C": (), "D": ("kiosk",)}
    for m, (module, used) in enumerate(sources.items()):
        tables["presentations"].append([module, "2024J", "2024-10-07", "200"])
        tables["assessments"].append([f"{module}1", module, "2024J", "coursework", "20", "50"])
        for k in range(PER_MODULE):
            student = f"S{m}{k:02d}"
            tables["students"].append([student])
            tables["registrations"].append([student, module, "2024J", str(-int(rng.integers(0, 20))), "", ""])
            if rng.random() < 0.8:
                score = "" if module == "B" else str(int(rng.integers(30, 95)))
                tables["assessment_results"].append(
                    [student, f"{module}1", str(int(rng.integers(10, 25))), score]
                )
            for source in used:
                for day in sorted({int(d) for d in rng.integers(0, 56, size=int(rng.integers(0, 12)))}):
                    row = [
                        student,
                        module,
                        "2024J",
                        str(day),
                        source,
                        "resource",
                        str(int(rng.integers(1, 9))),
                    ]
                    tables["activity"].append(row)
    return tables


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fit")
    return make_folder(
        root / "data", **{**dict.fromkeys(VALID), **_rows(), "sources": [LABELS[0], LABELS[1], LABELS[3]]}
    )


def _bundle(features: pd.DataFrame) -> ModelBundle:
    """A logistic model in which every student-describing feature matters, fitted to nothing."""
    return unfitted_model(features)


@pytest.fixture(scope="module")
def scored(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    data, labels = load_with_source_labels(folder)
    features = build_features(data, [WEEK])
    explained = explain_cohort(_bundle(features), features, sources=SourceCoverage.of(data.activity, labels))
    indicators = explained.indicators
    sums = family_sums(explained.contributions.values, family_columns(FEATURE_NAMES))
    return features, indicators, pd.DataFrame(sums)


def _statements(indicators: pd.DataFrame, module: str, *, lists: tuple[str, ...]) -> list[dict[str, object]]:
    rows = indicators[indicators["module_id"] == module]
    return [item for col in lists for items in rows[col] for item in items]


def _sentences(indicators: pd.DataFrame, module: str) -> list[str]:
    said = _statements(indicators, module, lists=("factors", "strengths", "context"))
    changes = indicators.loc[indicators["module_id"] == module, "what_could_change"]
    return [str(s["sentence"]) for s in said] + [c["sentence"] for c in changes if c]


def test_no_marks_for_anyone_is_context_said_once_never_a_students_factor(scored) -> None:  # type: ignore[no-untyped-def]
    _, indicators, sums = scored
    in_b = (indicators["module_id"] == "B").to_numpy()
    # Without the cohort rule this would be every B student's factor: it moves their estimate.
    assert (sums.loc[in_b, "assessment_results"] >= THRESHOLD).all()
    statements = _statements(indicators, "B", lists=("factors", "strengths"))
    assert not [s for s in statements if s["family"] == "assessment_results"]
    for context in indicators.loc[in_b, "context"]:
        said = [c["sentence"] for c in context if c["family"] == "assessment_results"]
        assert said == [f"No mark counts yet for anyone on this module{MARKS_COUNT}."]
    # Where most students have marks, having none still sets a student apart: it stays theirs.
    assert not any("for anyone" in s for s in _sentences(indicators, "A"))


def test_a_module_with_no_activity_for_anyone_has_no_activity_factor_only_coverage(scored) -> None:  # type: ignore[no-untyped-def]
    _, indicators, sums = scored
    in_c = (indicators["module_id"] == "C").to_numpy()
    activity = [*ALL_SOURCES_FAMILIES, *set(CHANNEL_FAMILY.values())]
    assert (sums.loc[in_c, "regularity"].abs() >= THRESHOLD).all()
    said = _statements(indicators, "C", lists=("factors", "strengths", "context"))
    assert not [s for s in said if s["family"] in activity]
    assert not any("activity" in s.lower() or "weeks so far" in s for s in _sentences(indicators, "C"))
    for coverage in indicators.loc[in_c, "coverage"]:
        assert coverage["sources_recorded"] == []
        assert {"the learning platform", "exam sittings", "'kiosk' records"} <= set(
            coverage["sources_not_recorded"]
        )


def test_coverage_never_names_a_built_in_source_this_institution_does_not_record(scored) -> None:  # type: ignore[no-untyped-def]
    _, indicators, _ = scored
    # The folder's activity holds the platform, 'exams' and 'kiosk' only, and labels no other source.
    never = {"the library", "online quizzes", "attendance records", "lecture recordings"}
    for coverage in indicators["coverage"]:
        recorded, not_recorded = set(coverage["sources_recorded"]), set(coverage["sources_not_recorded"])
        assert not never & (recorded | not_recorded)
        assert not recorded & not_recorded


def test_a_custom_source_is_named_by_its_label_where_it_is_recorded(scored) -> None:  # type: ignore[no-untyped-def]
    _, indicators, _ = scored
    sentences = _sentences(indicators, "A")
    activity = [s for s in sentences if "from " in s]
    assert activity
    assert all("the learning platform and exam sittings" in s for s in activity)
    assert not any("exams" in s for s in sentences)
    for coverage in indicators.loc[indicators["module_id"] == "A", "coverage"]:
        assert coverage["sources_recorded"] == ["the learning platform", "exam sittings"]


def test_a_module_without_the_custom_source_never_speaks_of_it(scored) -> None:  # type: ignore[no-untyped-def]
    _, indicators, _ = scored
    sentences = _sentences(indicators, "B")
    assert [s for s in sentences if "from the learning platform" in s]
    assert not any("exam" in s for s in sentences)
    for coverage in indicators.loc[indicators["module_id"] == "B", "coverage"]:
        assert "exam sittings" in coverage["sources_not_recorded"]


def test_an_unnamed_source_is_never_called_the_learning_platform(scored) -> None:  # type: ignore[no-untyped-def]
    _, indicators, _ = scored
    sentences = _sentences(indicators, "D")
    assert [s for s in sentences if "from 'kiosk' records" in s]
    assert not any("learning platform" in s for s in sentences)


def test_without_the_activity_table_other_sources_are_named_together_never_as_the_platform(scored) -> None:  # type: ignore[no-untyped-def]
    features, _, _ = scored
    indicators = explain_cohort(_bundle(features), features).indicators
    sentences = _sentences(indicators, "D")
    assert [s for s in sentences if "from other sources" in s]
    assert not any("learning platform" in s for s in sentences)


def test_explanations_that_fit_the_data_use_no_word_never_shown(scored) -> None:  # type: ignore[no-untyped-def]
    _, indicators, _ = scored
    text = json.dumps(
        indicators[["factors", "strengths", "context", "what_could_change", "coverage"]].to_dict("records")
    )
    assert forbidden_words(text) == []


def test_a_student_exactly_typical_of_a_varied_cohort_is_not_described_by_that_family() -> None:
    group = np.array([0] * 6)
    x = np.array([[1.0], [1.0], [1.0], [2.0], [3.0], [0.0]])
    standing = cohort_standing(x, group=group, columns={"f": np.array([0])})["f"]
    assert standing.apart.tolist() == [False, False, False, True, True, True]
    assert standing.shared.tolist() == [0.0] * 6  # half the cohort differs: no cohort-wide fact


def test_a_fact_nearly_the_whole_cohort_shares_is_context_for_those_who_share_it() -> None:
    x = np.zeros((40, 1))
    x[0] = 1.0
    standing = cohort_standing(x, group=np.zeros(40, dtype=np.int64), columns={"f": np.array([0])})["f"]
    assert standing.apart[0] and not standing.apart[1:].any()
    assert standing.shared[0] == 0.0
    assert standing.shared[1:] == pytest.approx(39 / 40)
    said = describe_cohort("assessment_results", {"asm_has_score": 0.0}, share=39 / 40)
    assert said == f"No mark counts yet for 97% of students on this module{MARKS_COUNT}."


def test_in_a_cohort_too_small_for_a_median_only_what_differs_sets_a_student_apart() -> None:
    group = np.zeros(MIN_COHORT - 1, dtype=np.int64)
    columns = {"f": np.array([0]), "cohort_engagement": np.array([1])}
    alike = cohort_standing(np.zeros((len(group), 2)), group=group, columns=columns)
    # Alike for every student of a small cohort: nobody is set apart by it, and it is not said as context.
    assert not alike["f"].apart.any() and not alike["f"].shared.any()
    differing = np.column_stack([np.arange(len(group)), np.arange(len(group))]).astype(float)
    standing = cohort_standing(differing, group=group, columns=columns)
    assert standing["f"].apart.all() and not standing["f"].shared.any()
    # A comparison with a cohort that small is never a student's factor.
    assert not standing["cohort_engagement"].apart.any()
    # One student alone is set apart by what they did: nothing is alike with nobody.
    alone = cohort_standing(np.zeros((1, 2)), group=np.zeros(1, dtype=np.int64), columns=columns)
    assert alone["f"].apart.all() and not alone["cohort_engagement"].apart.any()


def test_the_scoring_job_names_sources_by_the_folders_labels(
    folder: Path,
    scored: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame],
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    features, _, _ = scored
    model = LoadedModel(bundle=_bundle(features), name="m", version="1", sha256="x")
    monkeypatch.setattr(job, "load_champion", lambda _engine, _name: model)
    job.score(folder, engine, model_name="m", week=WEEK)
    with Session(engine) as session:
        rows = session.scalars(select(Indicator).where(Indicator.module_id == "A")).all()
    said = [s["sentence"] for r in rows for s in r.factors + r.strengths]
    assert [s for s in said if "from the learning platform and exam sittings" in s]
    assert all(r.coverage["sources_recorded"] == ["the learning platform", "exam sittings"] for r in rows)


def _marks_said(indicators: pd.DataFrame, column: str) -> list[tuple[int, str]]:
    """(row, sentence) of each assessment-results statement in ``column``."""
    return [
        (i, s["sentence"])
        for i, items in enumerate(indicators[column])
        for s in items
        if s["family"] == "assessment_results"
    ]


@pytest.mark.parametrize("raising", [True, False])
def test_a_mark_below_the_cohorts_typical_mark_is_never_a_strength_nor_one_above_it_a_factor(
    folder: Path, raising: bool
) -> None:
    """A model may learn that a low mark lowers the estimate (fitted to nothing here, as another
    institution's data did): "Average mark on marked work so far: 19." was then listed as a strength.
    A mark is said on the side of the cohort's typical mark (the median of the marks on the module at
    that week) it falls on, and no mark is never a strength, as no count of none is."""
    data, _ = load_with_source_labels(folder)
    features = build_features(data, [WEEK]).reset_index(drop=True)
    coef = 2.0 if raising else -2.0  # raising: a higher mark raises the estimate
    bundle = unfitted_model(features, lambda name: coef if name == "asm_score_mean" else 0.0)
    indicators = explain_cohort(bundle, features).indicators
    marked = features["asm_has_score"] >= 1
    typical = features["asm_score_mean"].where(marked).groupby(features["module_id"]).transform("median")
    assert (features.loc[marked].groupby("module_id").size() >= MIN_COHORT).all()
    strengths = _marks_said(indicators, "strengths")
    factors = _marks_said(indicators, "factors")
    for i, sentence in strengths:
        assert marked[i] and features.at[i, "asm_score_mean"] >= typical[i], sentence
    for i, sentence in factors:
        assert not marked[i] or features.at[i, "asm_score_mean"] <= typical[i], sentence
    # The rule keeps each mark on its own side; it does not silence marks.
    said = strengths + factors
    assert any(marked[i] and features.at[i, "asm_score_mean"] < typical[i] for i, _ in said)
    if not raising:  # a higher mark lowers the estimate: marks above the typical one are strengths
        assert any(features.at[i, "asm_score_mean"] > typical[i] for i, _ in strengths)


def _said(indicators: pd.DataFrame, column: str, family: str) -> list[str]:
    return [s["sentence"] for items in indicators[column] for s in items if s["family"] == family]


_NEVER = {
    # family: (words never said as a strength, words never said as a factor), as regular expressions
    "regularity": (r" in 0 of the ", r" in (\d+) of the \1 weeks"),
    "recent_activity": (r"^No activity|% of this student's own earlier", r"times this student's own earlier"),
    "cohort_engagement": (
        r"among the lowest|than about ([0-9]|[1-4][0-9])% of",
        r"among the highest|than about (5[1-9]|[6-9][0-9])% of",
    ),
    "assessment_submissions": (
        r"not submitted|^0 of the",
        r"^(The 1 assessment due so far was submitted"
        r"|(\d+) of the \2 assessments due so far were submitted)\.$",
    ),
}


@pytest.mark.parametrize(
    ("family", "feature"),
    [
        ("regularity", "act_weeks_active_share"),
        ("recent_activity", "act_last14"),
        ("cohort_engagement", "act_total_pct"),
        ("assessment_submissions", "asm_submitted"),
    ],
)
def test_a_sentence_is_never_filed_on_the_side_its_own_words_contradict(
    folder: Path, family: str, feature: str
) -> None:
    """A model may learn that more of something raises the estimate (fitted to nothing here, as another
    institution's data did): "Activity in 0 of the 8 weeks so far" was then a strength, "Activity in
    8 of the 8 weeks" and "The 1 assessment due so far was submitted" factors. Each family is said only
    on a side its words allow, and is still said."""
    data, _ = load_with_source_labels(folder)
    features = build_features(data, [WEEK]).reset_index(drop=True)
    indicators = explain_cohort(
        unfitted_model(features, lambda n: 2.0 if n == feature else 0.0), features
    ).indicators
    strengths, factors = _said(indicators, "strengths", family), _said(indicators, "factors", family)
    never_strength, never_factor = _NEVER[family]
    assert [s for s in strengths if re.search(never_strength, s)] == []
    assert [s for s in factors if re.search(never_factor, s)] == []
    assert strengths or factors  # the rule keeps each sentence on its side; it does not silence the family
    if family == "regularity":  # a strength is active in at least half the weeks the module was not quiet
        for sentence in strengths:
            active, weeks = map(int, re.findall(r" in (\d+) of the (\d+) weeks", sentence)[0])
            quiet = re.findall(r"; in (\d+) of the \d+, no activity", sentence)
            assert 2 * active >= weeks - (int(quiet[0]) if quiet else 0), sentence
