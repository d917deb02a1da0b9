"""A break nobody on a module works through is the module's context, not each student's recent activity.

Module Q has a three-week break before week 8's cut-off (day 56): nobody has activity on days 35 to
55. Module A works through the same weeks. A study-resource count there says the empty fortnight is the
module's. Without the quiet-stretch rule every Q student's "no
activity in the last 14 days; the last recorded activity was 22 days ago" was their factor or
strength (a probe's 199 of 199), and each study-resource count was weighed by the empty fortnight all
of them share.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from tests.contract_folder import VALID, make_folder
from tests.unfitted import unfitted_model
from tests.vocabulary import forbidden_words
from waymark.models.bundle import LinearParams, ModelBundle
from waymark.models.data import load_with_source_labels
from waymark.models.explain import SourceCoverage, explain_cohort
from waymark.models.explain.change import MATERIAL, Change, Differs, smallest_change
from waymark.models.explain.cohort import THRESHOLD
from waymark.models.explain.families import family_columns, family_sums
from waymark.models.explain.sentences import own_weeks
from waymark.models.explain.typical import LONG_BEFORE, quiet_stretch
from waymark.models.features import FEATURE_NAMES, build_features
from waymark.models.features.catalogue import FEATURES, MIN_COHORT

WEEK, PER_MODULE, BREAK = 8, 30, (35, 55)
TABLES = ("presentations", "students", "registrations", "assessments", "assessment_results", "activity")
STOPPED_EARLY = {"Q00": 12, "Q01": 16}  # last active day, well before the others (about day 33)
NEVER = "Q02"


def _tables() -> dict[str, list[list[str]]]:
    rng = np.random.default_rng(8)
    tables = {name: [VALID[name][0]] for name in TABLES}
    tables["students"] = [["student_id"]]
    for module in ("A", "Q"):
        tables["presentations"].append([module, "2024J", "2024-10-07", "200"])
        tables["assessments"].append([f"{module}1", module, "2024J", "coursework", "20", "50"])
        for k in range(PER_MODULE):
            student = f"{module}{k:02d}"
            tables["students"].append([student])
            tables["registrations"].append([student, module, "2024J", str(-int(rng.integers(0, 20))), "", ""])
            tables["assessment_results"].append(
                [student, f"{module}1", str(int(rng.integers(10, 25))), str(int(rng.integers(30, 95)))]
            )
            if student == NEVER:
                continue
            last = STOPPED_EARLY.get(student, 55 if module == "A" else int(rng.integers(30, 35)))
            days = {int(d) for d in rng.integers(0, last, size=int(rng.integers(3, 15)))} | {last}
            for day in sorted(d for d in days if module == "A" or not BREAK[0] <= d <= BREAK[1]):
                tables["activity"].append(
                    [student, module, "2024J", str(day), "vle", "resource", str(int(rng.integers(1, 9)))]
                )
    return tables


def _bundle(
    features: pd.DataFrame,
    *,
    raising: frozenset[str] = frozenset({"act_days_since_last"}),
    only: dict[str, float] | None = None,
) -> ModelBundle:
    """Fitted to nothing: more activity lowers the estimate, a longer time since the last activity
    (``raising``) raises it; with ``only``, just those features matter."""
    if only is not None:
        return unfitted_model(features, lambda name: only.get(name, 0.0))
    return unfitted_model(features, lambda name: 0.5 if name in raising else -0.5)


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, SourceCoverage]:
    folder = make_folder(tmp_path_factory.mktemp("quiet") / "data", **{**dict.fromkeys(VALID), **_tables()})
    data, labels = load_with_source_labels(folder)
    return build_features(data, [WEEK]).reset_index(drop=True), SourceCoverage.of(data.activity, labels)


@pytest.fixture(scope="module")
def explained(scored: tuple[pd.DataFrame, SourceCoverage]) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    features, sources = scored
    result = explain_cohort(_bundle(features), features, sources=sources)
    return features, result.indicators, result.contributions.values


def _said(
    indicators: pd.DataFrame, i: int, *, lists: tuple[str, ...] = ("factors", "strengths")
) -> list[str]:
    return [s["sentence"] for c in lists for s in indicators.at[i, c] if s["family"] == "recent_activity"]


def test_the_break_is_the_modules_context_never_each_students_recent_activity(explained) -> None:  # type: ignore[no-untyped-def]
    features, indicators, contributions = explained
    sums = family_sums(contributions, family_columns(FEATURE_NAMES))
    quiet = (features["module_id"] == "Q") & ~features["student_id"].isin([*STOPPED_EARLY, NEVER])
    # Without the rule these would be said as each student's own: the family moves every estimate.
    assert (np.abs(sums["recent_activity"][quiet.to_numpy()]) >= THRESHOLD).all()
    for i in np.flatnonzero(quiet):
        assert _said(indicators, i) == []
        context = [c["sentence"] for c in indicators.at[i, "context"]]
        assert (
            context.count(
                "No activity from the learning platform in the last 14 days for anyone on this module."
            )
            == 1
        )
    # Module A worked through the same days: its students' recent activity is still theirs.
    on_a = np.flatnonzero(features["module_id"] == "A")
    assert any(_said(indicators, i) for i in on_a)
    assert not any("for anyone" in c["sentence"] for i in on_a for c in indicators.at[i, "context"])


def test_a_student_who_stopped_well_before_the_break_is_described_beside_the_module(explained) -> None:  # type: ignore[no-untyped-def]
    features, indicators, _ = explained
    q = features[features["module_id"] == "Q"]
    typical = int(q.loc[q["act_any"] >= 1, "act_days_since_last"].median())
    for student, last_day in STOPPED_EARLY.items():
        i = int(np.flatnonzero(features["student_id"] == student)[0])
        since = int(features.at[i, "act_days_since_last"])
        assert since == WEEK * 7 - last_day and since >= typical + LONG_BEFORE
        assert _said(indicators, i, lists=("strengths",)) == []
        assert _said(indicators, i, lists=("factors",)) == [
            f"No activity from the learning platform in the last 14 days, as for every student on this"
            f" module; this student's last recorded activity was {since} days ago, against {typical}"
            f" for a typical student on this module."
        ]
    never = int(np.flatnonzero(features["student_id"] == NEVER)[0])
    said = _said(indicators, never) or [c["sentence"] for c in indicators.at[never, "context"]]
    assert not any("against" in s for s in said)
    text = " ".join(
        s["sentence"] for c in ("factors", "strengths", "context") for r in indicators[c] for s in r
    )
    assert forbidden_words(text) == []


def test_a_count_is_weighed_by_what_differs_not_by_the_fortnight_everybody_shares(explained) -> None:  # type: ignore[no-untyped-def]
    features, indicators, contributions = explained
    names = list(FEATURE_NAMES)
    totals = [names.index(f.name) for f in FEATURES if f.family == "study_resources" and "total" in f.name]
    recent = [names.index(f.name) for f in FEATURES if f.family == "study_resources" and "last14" in f.name]
    checked = 0
    for i in np.flatnonzero(features["module_id"] == "Q"):
        assert np.allclose(features.loc[i, [names[j] for j in recent]], 0.0)
        for item in indicators.at[i, "factors"] + indicators.at[i, "strengths"]:
            if item["family"] == "study_resources":
                # The contribution said is the counts' so far, not the shared empty fortnight's.
                assert item["contribution"] == round(float(contributions[i, totals].sum()), 4)
                assert abs(contributions[i, recent].sum()) >= 0.01
                # The empty fortnight is said as the module's, not as something of this student's.
                assert item["sentence"].endswith(
                    ", 0 in the last 14 days, when no student on this module had any activity."
                )
                checked += 1
    assert checked
    on_a = [
        item["sentence"]
        for i in np.flatnonzero(features["module_id"] == "A")
        for item in indicators.at[i, "factors"] + indicators.at[i, "strengths"]
        if item["family"] == "study_resources"
    ]
    assert on_a and not any("when" in s for s in on_a)


def test_a_quiet_stretch_needs_nearly_the_whole_of_a_cohort_large_enough_to_compare() -> None:
    group = np.zeros(40, dtype=np.int64)
    last14 = np.zeros(40)
    since = np.full(40, 22.0)
    since[0] = 50.0
    stretch = quiet_stretch(last14=last14, ever=np.ones(40, bool), since=since, group=group)
    assert stretch.share.tolist() == [1.0] * 40 and stretch.typical_since[0] == 22.0
    assert not stretch.alike[0] and stretch.alike[1:].all()
    last14[:3] = 1.0  # 37 of 40 quiet: under 95%, no stretch, but said beside the student's (SAID_FROM)
    since[3:6] = 23.0  # three who stopped a day before the typical quiet student
    most = quiet_stretch(last14=last14, ever=np.ones(40, bool), since=since, group=group)
    assert most.share.tolist() == [37 / 40] * 40 and most.typical_since[10] == 22.0
    # quiet as most are where they stopped no earlier than the typical quiet student (a Polish
    # university's Christmas fortnight); the active three and those who stopped earlier stay their own
    assert np.flatnonzero(most.alike).tolist() == list(range(6, 40))
    assert np.array_equal(most.quiet, most.alike)
    # not where the quiet students stopped at all sorts of times (each one's own going quiet), nor where
    # barely more than half are quiet
    scattered = quiet_stretch(
        last14=last14, ever=np.ones(40, bool), since=np.linspace(15, 60, 40), group=group
    )
    assert scattered.share[0] == 37 / 40 and not scattered.alike.any()
    last14[:18] = 1.0  # 22 of 40 quiet
    assert not quiet_stretch(last14=last14, ever=np.ones(40, bool), since=since, group=group).alike.any()
    last14[:3] = 1.0
    last14[3:18] = 0.0
    last14[:21] = 1.0  # 19 of 40: under half, nothing said
    assert not quiet_stretch(last14=last14, ever=np.ones(40, bool), since=since, group=group).share.any()
    small = np.zeros(MIN_COHORT - 1, dtype=np.int64)
    none = quiet_stretch(
        last14=np.zeros(len(small)), ever=np.ones(len(small), bool), since=np.ones(len(small)), group=small
    )
    assert not none.share.any() and not none.alike.any()


def test_what_the_student_shares_with_the_cohort_outweighing_their_own_part_is_not_theirs_to_say(
    scored: tuple[pd.DataFrame, SourceCoverage],
) -> None:
    """A model in which a longer time since the last activity lowers the estimate (fitted to nothing):
    for a student who stopped early, the family's whole contribution raises the estimate (the empty
    fortnight everybody shares) while their own part lowers it. Said as a strength it would present
    their inactivity as in their favour; it is the module's context instead."""
    features, sources = scored
    result = explain_cohort(_bundle(features, raising=frozenset()), features, sources=sources)
    names = list(FEATURE_NAMES)
    recent = [names.index(f.name) for f in FEATURES if f.family == "recent_activity"]
    since = names.index("act_days_since_last")
    for student in STOPPED_EARLY:
        i = int(np.flatnonzero(features["student_id"] == student)[0])
        whole_family = result.contributions.values[i, recent].sum()
        assert whole_family >= THRESHOLD and result.contributions.values[i, since] <= -THRESHOLD
        assert _said(result.indicators, i) == []
        context = [c["sentence"] for c in result.indicators.at[i, "context"]]
        assert (
            "No activity from the learning platform in the last 14 days for anyone on this module." in context
        )


def test_what_could_change_never_offers_a_quiet_peers_recent_activity(
    scored: tuple[pd.DataFrame, SourceCoverage],
) -> None:
    """A quiet peer's recent activity differs from a quiet student's only in the days since each last
    worked: "if this were like that of a typical student (no activity in the last 14 days)" would
    change nothing the student could act on. A model in which only that matters is the hardest case."""
    features, sources = scored
    result = explain_cohort(_bundle(features, only={"act_days_since_last": 2.0}), features, sources=sources)
    for student in STOPPED_EARLY:
        i = int(np.flatnonzero(features["student_id"] == student)[0])
        assert _said(result.indicators, i, lists=("factors",))  # theirs, said beside the module
        assert result.indicators.at[i, "what_could_change"] is None
    # The never-started student, in the same stretch, is not offered a quiet peer's recent activity either.
    never = int(np.flatnonzero(features["student_id"] == NEVER)[0])
    offered = result.indicators.at[never, "what_could_change"]
    assert offered is None or offered["family"] != "recent_activity"


def test_the_weeks_of_the_break_are_said_as_the_modules_beside_a_students_regularity(
    scored: tuple[pd.DataFrame, SourceCoverage],
) -> None:
    features, sources = scored
    # Regularity alone moves the estimate: it is said for most students, as a factor only where their
    # weeks without activity are more than most of their module's, as a strength only where not.
    bundle = _bundle(features, only={"act_weeks_active_share": -2.0})
    indicators = explain_cohort(bundle, features, sources=sources).indicators
    said = {
        features.at[i, "student_id"]: s["sentence"]
        for i in range(len(features))
        for s in indicators.at[i, "factors"] + indicators.at[i, "strengths"]
        if s["family"] == "regularity"
    }
    raised = {
        features.at[i, "student_id"]
        for i in range(len(features))
        for s in indicators.at[i, "factors"]
        if s["family"] == "regularity"
    }
    weeks = np.array([own_weeks(r) for r in features.to_dict("records")])
    missed = pd.Series(weeks - np.round(features["act_weeks_active_share"] * weeks), index=features.index)
    within = set(
        features.loc[missed <= missed.groupby(features["module_id"]).transform("median"), "student_id"]
    )
    assert raised and raised.isdisjoint(within)
    assert set(said) - raised and set(said) - raised <= within  # the strengths
    assert set(features["student_id"]) - set(said)  # some on a side their weeks do not allow
    assert len(said) > len(features) / 2
    # Module Q: nobody was active in weeks 5, 6 and 7 (days 35 to 55) of the 8 so far.
    of_q = re.compile(
        r"Activity from the learning platform in [0-8] of the 8 weeks so far \(\d+ active days?\); "
        r"in 3 of the 8, no activity was recorded for 95% or more of students on this module\."
    )
    for student, sentence in said.items():
        if student.startswith("Q"):
            assert of_q.fullmatch(sentence), sentence
        else:  # module A worked through them
            assert "no activity was recorded" not in sentence, sentence
    # Without the activity's weekly counts (no coverage given), nothing is said of the module's weeks.
    bare = explain_cohort(bundle, features).indicators
    assert not any("no activity was recorded" in s["sentence"] for r in bare["factors"] for s in r)
    assert forbidden_words(" ".join(said.values())) == []


def test_what_could_change_never_offers_a_peer_whose_values_read_as_the_students_own(
    scored: tuple[pd.DataFrame, SourceCoverage],
) -> None:
    """Regularity is said by weeks active, but its family also holds the total count: a model weighing
    only the count offered "if this were like that of another student on this module at this point
    (active in 5 of the 8 weeks so far)" to students active in 5 of the 8 weeks (a review's M7)."""
    features, sources = scored
    result = explain_cohort(_bundle(features, only={"act_total": -0.3}), features, sources=sources)
    offered = [(i, c) for i, c in enumerate(result.indicators["what_could_change"]) if c]
    assert offered and all(c["family"] == "regularity" for _, c in offered)
    for i, change in offered:
        found = re.search(r"\(active in (\d+) of the 8 weeks so far\)", change["sentence"])
        assert found is not None, change["sentence"]
        own = round(float(features.at[i, "act_weeks_active_share"]) * WEEK)
        assert int(found.group(1)) != own, change["sentence"]


def test_a_peer_said_in_the_students_own_words_is_passed_over_for_the_next_best() -> None:
    """Where the best change's peer would read as the student's own, the next best is offered, not
    nothing (students were left with no change although another family moved their estimate)."""
    linear = LinearParams(mean=(0.0, 0.0), scale=(1.0, 1.0), coef=(-1.0, -0.5), intercept=0.0)
    bundle = ModelBundle("not_completing", "logistic", ("a", "b"), calibration=(1.0, 0.0), linear=linear)
    x = np.repeat(np.arange(5.0)[:, None], 2, axis=1)  # one module of five, each more active than the last
    probability = bundle.probability(x)

    def search(differs: Differs | None = None) -> Change:
        return smallest_change(
            bundle,
            x,
            probability=probability,
            group=np.zeros(5, dtype=np.int64),
            sums=[-x[:, 0], -0.5 * x[:, 1]],
            columns=[np.array([0]), np.array([1])],
            candidate=np.ones((5, 2), dtype=bool),
            differs=differs,
        )

    first = search()
    assert first.family[0] == 0 and first.peer[0] == 2  # family a moves the first row most
    passed_over = search(lambda f, rows, *, peers: np.full(len(rows), f != 0))  # a's peer reads as own
    assert passed_over.family[0] == 1 and passed_over.peer[0] == 2
    assert passed_over.probability[0] == pytest.approx(1 / (1 + np.exp(1.0)))  # b lent: margin -1
    assert probability[0] - passed_over.probability[0] >= MATERIAL
    assert (search(lambda f, rows, *, peers: np.zeros(len(rows), dtype=bool)).family == -1).all()
