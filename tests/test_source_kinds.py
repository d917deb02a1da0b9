"""An institution's own activity source can count as one of the built-in kinds (sources.counts_as).

Without it, a declared source is activity of no particular kind (overall engagement, study resources);
with it, its activity is read as the built-in source's everywhere a folder becomes learning data: the
channel features, which sources a module records, and the sentences, which name it by its own label.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.contract_folder import VALID, make_folder
from waymark.models.data import load_learning_data, source_labels, validate_folder
from waymark.models.data.quality import quality_report
from waymark.models.data.validation import connect
from waymark.models.explain import SourceCoverage
from waymark.models.explain.coverage import family_sources, recorded_sources
from waymark.models.features import build_features
from waymark.models.vocabulary import labelling_words

HEADER = ["source", "label", "notice_given_on", "counts_as"]
# M1 starts on 2024-10-07 (day 0); the notice is given before any of these rows.
SWIPES = [
    ["S1", "M1", "2024J", "3", "swipe_cards", "entry", "1"],
    ["S1", "M1", "2024J", "10", "swipe_cards", "entry", "1"],
    ["S2", "M1", "2024J", "17", "swipe_cards", "entry", "1"],
]
WEEKS = [1, 2, 4, 10]


def _folder(root: Path, *, source: str = "swipe_cards", sources: list[list[str]] | None = None) -> Path:
    rows = [[*r[:4], source, *r[5:]] for r in SWIPES]
    return make_folder(root, activity=[*VALID["activity"], *rows], sources=sources)


def _declared(counts_as: str, label: str = "door swipes at teaching rooms") -> list[list[str]]:
    return [HEADER, ["swipe_cards", label, "2024-09-01", counts_as]]


def test_a_source_counted_as_attendance_builds_exactly_the_features_of_attendance(tmp_path: Path) -> None:
    counted = build_features(
        load_learning_data(_folder(tmp_path / "a", sources=_declared("attendance"))), WEEKS
    )
    as_attendance = build_features(load_learning_data(_folder(tmp_path / "b", source="attendance")), WEEKS)
    pd.testing.assert_frame_equal(counted, as_attendance)
    # Declared without a kind, the same rows are study activity of no particular kind: other features.
    plain = build_features(load_learning_data(_folder(tmp_path / "c", sources=_declared(""))), WEEKS)
    s1 = (plain["student_id"] == "S1") & (plain["week"] == 4)
    assert plain.loc[s1, "ch_other_total"].item() > 0 and counted.loc[s1, "ch_other_total"].item() == 0
    assert counted.loc[s1, "ch_attendance_total"].item() > plain.loc[s1, "ch_attendance_total"].item()


def test_its_label_names_the_kind_it_counts_as_with_the_built_in_one_when_both_are_recorded(
    tmp_path: Path,
) -> None:
    # The valid folder records attendance itself (S3, day 100) but no quizzes.
    as_attendance = source_labels(_folder(tmp_path / "a", sources=_declared("attendance")))
    assert as_attendance["attendance"] == "attendance records and door swipes at teaching rooms"
    assert "swipe_cards" not in as_attendance
    as_quiz = source_labels(_folder(tmp_path / "q", sources=_declared("quiz", label="")))
    assert as_quiz["quiz"] == "'swipe_cards' records"  # a neutral name, never the built-in's own


def test_the_module_records_the_kind_and_its_family_names_the_source(tmp_path: Path) -> None:
    folder = _folder(tmp_path, sources=_declared("quiz", label="the clicker quizzes"))
    data = load_learning_data(folder)
    assert set(data.activity["source"]) == {"vle", "library", "attendance", "quiz"}
    coverage = SourceCoverage.of(data.activity, source_labels(folder))
    features = build_features(data, [4])
    recorded = recorded_sources(features, coverage)[0]
    m1 = features["module_id"] == "M1"
    assert features.loc[0, "module_id"] == "M1" and "quiz" in recorded
    assert (
        features.loc[m1, "src_quiz_recorded"].eq(1).all()
        and features.loc[~m1, "src_quiz_recorded"].eq(0).all()
    )
    # Practice is built from the platform's quizzes and the quiz source, which is now the clickers.
    practice = [coverage.label(s) for s in family_sources("practice", recorded) or ()]
    assert practice == ["the learning platform", "the clicker quizzes"]


def test_counts_as_names_a_built_in_source_and_a_built_in_source_keeps_its_own(tmp_path: Path) -> None:
    unknown = validate_folder(_folder(tmp_path / "u", sources=_declared("labs")))
    [finding] = [f for f in unknown.findings if f.column == "counts_as"]
    assert (finding.table, finding.rule) == ("sources", "allowed_values")
    assert "attendance" in finding.message and finding.examples[0].value == "labs"
    recast = validate_folder(
        _folder(tmp_path / "b", sources=[HEADER, ["library", "the library", "", "attendance"]])
    )
    [finding] = [f for f in recast.findings if f.column == "counts_as"]
    assert finding.rule == "built_in_keeps_its_kind" and finding.examples[0].value == "library -> attendance"
    assert validate_folder(_folder(tmp_path / "ok", sources=_declared("attendance"))).ok


def test_a_source_not_yet_announced_is_not_read_as_its_kind(tmp_path: Path) -> None:
    unannounced = [HEADER, ["swipe_cards", "door swipes", "", "attendance"]]
    data = load_learning_data(_folder(tmp_path / "a", sources=unannounced))
    without = load_learning_data(make_folder(tmp_path / "b"))
    pd.testing.assert_frame_equal(data.activity, without.activity)
    assert source_labels(tmp_path / "a")["attendance"] == "attendance records"


def test_the_quality_report_says_what_each_source_is_read_as(tmp_path: Path) -> None:
    con = connect()
    validate_folder(_folder(tmp_path, sources=_declared("attendance")), con=con)
    use = {u["source"]: u["status"] for u in quality_report(con).source_use}
    assert use["swipe_cards"] == "used from 2024-09-01, read as attendance"
    assert use["attendance"] == "used"


def test_a_sentence_lists_the_sources_a_joined_label_was_made_of_one_by_one(tmp_path: Path) -> None:
    # Attendance is named by two sources here (the register and the door swipes read as it); a
    # sentence built from every source lists each name once: "A, B, C and D", never "A and B and C".
    from waymark.models.explain.cohort import _Said
    from waymark.models.features.catalogue import ALL_SOURCES_FAMILIES

    folder = _folder(tmp_path, sources=_declared("attendance"))
    data = load_learning_data(folder)
    coverage = SourceCoverage.of(data.activity, source_labels(folder))
    assert coverage.label("attendance") == "attendance records and door swipes at teaching rooms"
    assert coverage.names("attendance") == ("attendance records", "door swipes at teaching rooms")
    assert coverage.names("vle") == ("the learning platform",)
    features = build_features(data, [4])
    said = _Said(coverage, recorded_sources(features, coverage))
    family = sorted(ALL_SOURCES_FAMILIES)[0]
    i = int((features["module_id"] == "M1").to_numpy().argmax())
    named = said.labels(i, family)
    assert named is not None and "attendance records" in named and "door swipes at teaching rooms" in named
    _, phrase = said.phrases(family)
    assert phrase[i].count(" and ") == 1 and phrase[i].endswith(" and " + named[-1])
    # The coverage lists name a source once, by its whole label.
    assert "attendance records and door swipes at teaching rooms" in said.coverage(i)[0]


def test_a_source_label_holding_a_labelling_word_is_refused_by_validation(tmp_path: Path) -> None:
    """A source's label is read in sentences as it is: an Indonesian university's attendance source
    labelled "... a dropout risk" reached students' own indicators and the public statement."""
    labelled = [HEADER, ["library", "the library (a dropout risk sign)", "", ""]]
    refused = validate_folder(_folder(tmp_path / "bad", sources=labelled))
    [finding] = [f for f in refused.findings if f.column == "label"]
    assert (
        finding.rule == "no_labelling_words"
        and finding.examples[0].value == "the library (a dropout risk sign)"
    )
    named = [HEADER, ["library", "the Green Library", "", ""]]  # a name, not a band
    assert not [
        f for f in validate_folder(_folder(tmp_path / "ok", sources=named)).findings if f.column == "label"
    ]


def test_an_institution_adds_its_own_labelling_words(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Welsh university could not add its own language's labelling words as it could sensitive terms:
    a file of words now adds to the packaged ones (never replacing them), in validation and in the
    transparency wording alike."""
    from waymark.models.vocabulary import LabellingWordsError, labelling_words, load_words
    from waymark.service import transparency

    labelled = [HEADER, ["library", "the library (myfyrwyr gwan)", "", ""]]
    assert not [
        f
        for f in validate_folder(_folder(tmp_path / "before", sources=labelled)).findings
        if f.column == "label"
    ]
    own = tmp_path / "words.toml"
    own.write_text('words = ["myfyrwyr  gwan", "Kellokas"]\n', encoding="utf-8")
    monkeypatch.setenv("WAYMARK_LABELLING_WORDS_FILE", str(own))
    [finding] = [
        f
        for f in validate_folder(_folder(tmp_path / "after", sources=labelled)).findings
        if f.column == "label"
    ]
    assert finding.rule == "no_labelling_words"
    assert labelling_words("KELLOKAS opiskelija; at risk") == ["KELLOKAS", "at risk"]  # packaged kept
    assert labelling_words("kellokasvi") == []  # a whole word, not a part of one
    packaged = (Path(transparency.__file__).parent / "transparency.toml").read_text(encoding="utf-8")
    wording = tmp_path / "wording.toml"
    wording.write_text(packaged.replace("purposes = [", 'purposes = [\n  "Reach kellokas students",', 1))
    with pytest.raises(transparency.WordingError, match=r"\(purposes: kellokas\)"):
        transparency.load_wording(wording)
    for text in ("words = []\n", "words = [1]\n", "words = \n"):
        bad = tmp_path / f"bad{len(text)}.toml"
        bad.write_text(text, encoding="utf-8")
        with pytest.raises(LabellingWordsError, match=str(bad)):
            load_words(bad)


def test_a_source_label_naming_a_special_category_is_refused_by_validation(tmp_path: Path) -> None:
    """A polytechnic's testing centre for students with accommodations, a neutral source `tc` with
    activity type `sitting`, was labelled "the Accommodated Testing Centre": every count of it said to
    staff, and every feature built from it, told who is registered with the disability service."""
    for label in ("the Accommodated Testing Centre", "the disability and mental health counselling centre"):
        refused = validate_folder(_folder(tmp_path / "bad", sources=[HEADER, ["library", label, "", ""]]))
        [finding] = [f for f in refused.findings if f.column == "label"]
        assert finding.rule == "sensitive_category" and finding.table == "sources", label
        assert finding.examples[0].value == label and "Leave the source's rows out" in finding.describe()
    named = [HEADER, ["library", "the accessibility statement's page", "", ""]]  # a web page's, not a service
    assert not [
        f for f in validate_folder(_folder(tmp_path / "ok", sources=named)).findings if f.column == "label"
    ]


def test_each_module_is_told_only_of_the_sources_of_a_kind_it_records(tmp_path: Path) -> None:
    """A Korean university declared its lecture videos and its attendance app both as attendance: all
    2,127 indicators read "electronic attendance check-ins and online lecture videos watched", on
    classroom courses without videos and online ones without the app."""
    from waymark.models.explain.cohort import _Said
    from waymark.models.explain.coverage import kind_parts

    activity = [
        *[r for r in VALID["activity"] if r[4] != "attendance"],
        ["S1", "M1", "2024J", "2", "attendance", "present", "1"],  # M1 takes a register
        ["S3", "M2", "2025B", "3", "swipe_cards", "entry", "1"],  # M2 has door swipes only
    ]
    folder = make_folder(tmp_path, activity=activity, sources=_declared("attendance"))
    data = load_learning_data(folder)
    labels = source_labels(folder)
    assert labels["attendance"] == "attendance records and door swipes at teaching rooms"  # the folder's
    coverage = SourceCoverage.of(data.activity, labels)
    features = build_features(data, [4])
    said = _Said(coverage, recorded_sources(features, coverage), kind_parts(features, coverage))
    named = {}
    for i, module in enumerate(features["module_id"]):
        assert "attendance" in recorded_sources(features, coverage)[i]
        named[module] = (said.coverage(i)[0], said.labels(i, "attendance"))
    assert named["M1"] == (
        ["the learning platform", "the library", "attendance records"],
        ("attendance records",),
    )
    assert named["M2"] == (["door swipes at teaching rooms"], ("door swipes at teaching rooms",))
    # A module recording both is named by the whole label, as before.
    both = [*activity, ["S3", "M2", "2025B", "5", "attendance", "present", "1"]]
    folder = make_folder(tmp_path / "both", activity=both, sources=_declared("attendance"))
    data = load_learning_data(folder)
    coverage = SourceCoverage.of(data.activity, source_labels(folder))
    features = build_features(data, [4])
    said = _Said(coverage, recorded_sources(features, coverage), kind_parts(features, coverage))
    i = int((features["module_id"] == "M2").to_numpy().argmax())
    assert said.coverage(i)[0] == ["attendance records and door swipes at teaching rooms"]


def test_spark_scoring_reads_the_labels_of_a_folder_validated_before(tmp_path: Path) -> None:
    """Scoring on Spark reads a local folder's labels on DuckDB through its validation memo; with the
    sources table alone, a folder with a source read as attendance had no activity to ask which
    sources its modules record (a review found "Table with name t_activity does not exist")."""
    from waymark.models.data.memo import open_valid
    from waymark.models.data.publish import folder_fingerprint
    from waymark.service.scoring.on_spark import _labels_on_duckdb

    folder = _folder(tmp_path, sources=_declared("attendance"))
    con, report = open_valid(folder, fingerprint=folder_fingerprint(folder))
    con.close()
    assert report is not None and report.ok  # validated now, and remembered
    labels = _labels_on_duckdb(folder)  # the memo is used: only the tables it names are opened
    assert labels == source_labels(folder)
    assert labels["attendance"] == "attendance records and door swipes at teaching rooms"


@pytest.mark.parametrize(
    ("label", "refused"),
    [
        ("alumnos en riesgo de abandono", True),  # an Argentine university's source label
        ("Desertores 2025", True),
        ("élèves décrocheurs", True),
        ("Étudiants à risque", True),
        ("poner en riesgo sus datos", False),  # privacy wording, not a student
        ("myfyrwyr mewn perygl", True),  # a Welsh university's
        ("Группа риска", True),
        ("طلاب متعثرين", True),
        # a Jordanian university's, with the article and endings Arabic joins to the word
        ("منصة مودل (نشاط الطلبة المتعثرين)", True),
        ("منصة مودل للطلبة المعرضين للخطر", True),
        ("طلبة في خطر الرسوب", True),
        ("بياناتك في خطر", False),  # "your data at risk": privacy wording, not a student
        ("منصة مودل", False),
        ("انذار اكاديمي", True),  # typed without hamza
        ("طلبه في خطر", True),  # taa marbuta typed as haa
        ("طالب متعـثر", True),  # with a tatweel
        ("إدارة المشاريع المتعثرة", False),  # troubled projects, not students
        ("خطر تسرب البيانات", False),  # a data leak
        ("Riesgos laborales (curso)", False),  # a course on occupational risks names no student
        ("Biblioteca Central", False),
    ],
)
def test_labelling_words_in_other_languages_are_refused_as_the_english_ones_are(
    tmp_path: Path, label: str, refused: bool
) -> None:
    assert bool(labelling_words(label)) is refused
    found = validate_folder(_folder(tmp_path, sources=[HEADER, ["library", label, "", ""]])).findings
    assert bool([f for f in found if f.column == "label" and f.rule == "no_labelling_words"]) is refused
