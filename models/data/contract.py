"""The data contract: every table Waymark reads, declared once.

Each table is a folder entry ``NAME.parquet``, ``NAME.csv`` or a folder ``NAME/`` of Parquet parts.
Days are integers relative to the start of the module presentation (as in OULAD).

The declarations here are data, not code: validation (``validation.py``), loading (``dataset.py``)
and the documentation (``docs/data-contract.md``) are all driven by them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from waymark.models.roles import RELATIONSHIP_SCOPES

CONTRACT_VERSION = "1"


class Kind(StrEnum):
    """Logical type of a column."""

    ID = "id"  # non-empty text; integers are accepted and read as text
    INT = "int"
    FLOAT = "float"
    TEXT = "text"
    DATE = "date"  # ISO 8601 calendar date


@dataclass(frozen=True)
class Column:
    """One column of a contract table."""

    name: str
    kind: Kind
    description: str
    required: bool = True  # the column must be present
    nullable: bool = False  # values may be missing
    allowed: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    # What to do with a value outside ``allowed`` (said with the refusal); a generic line when None.
    mapping_hint: str | None = None


@dataclass(frozen=True)
class Reference:
    """A foreign key: ``columns`` of this table must exist as ``target_columns`` of ``target``."""

    columns: tuple[str, ...]
    target: str
    target_columns: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """One contract table."""

    name: str
    description: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    references: tuple[Reference, ...] = ()
    required: bool = True  # the table must be present in a data folder
    extra_columns_allowed: bool = False
    min_rows: int = 0
    feature_safe: bool = True  # False: may never reach model features or the service
    feature_input: bool = True  # False: read for something else (e.g. wording), never a model input

    def column(self, name: str) -> Column:
        """Return the column called ``name``."""
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(f"{self.name} has no column {name!r}")

    @property
    def column_names(self) -> tuple[str, ...]:
        """Names of the declared columns, in order."""
        return tuple(col.name for col in self.columns)


FINAL_RESULTS = ("pass", "distinction", "fail", "withdrawn")
#: A presentation that has ended with more than this share of its registrations still without an outcome
#: has not had its outcomes entered yet (an exam board to come, say), rather than some deferrals and
#: resits: like one still running, its known outcomes would be mostly its early leavers, so it gives no
#: labels. A quarter, not less: deferrals and resits pending often reach 5 to 15% of a module (at 5%,
#: another institution's largest module lost a whole year of labels to 5.7% deferred or resitting),
#: while outcomes not yet entered leave most of a presentation empty.
OUTCOMES_PENDING_SHARE = 0.25
ASSESSMENT_TYPES = ("coursework", "quiz", "exam")
#: A presentation's final exam is its last-due exam from this share of its length on (its last quarter),
#: and no later than ``FINAL_GRACE_DAYS`` after its last day (one later is a resit sitting): sitting it
#: or not is, in a module's last weeks, the outcome itself, so features never read it
#: (``models.features.assessments``) and validation does not ask for its results.
FINAL_FROM = 0.75
FINAL_GRACE_DAYS = 28


def final_exams_sql(assessments: str, lengths: str) -> str:
    """SQL: module_id, presentation_id and ``final_day`` of each presentation's final exam.

    ``assessments`` and ``lengths`` (module_id, presentation_id, length_days) are relations' names.
    An exam due on or after it is never read by features (the final, or a resit after it), and
    validation asks for no results of one (one rule for both: ``models.features.assessments``).
    """
    return (
        f"SELECT s.module_id, s.presentation_id, max(s.due_day) AS final_day FROM {assessments} s "
        f"JOIN {lengths} l ON l.module_id = s.module_id AND l.presentation_id = s.presentation_id "
        f"WHERE s.type = 'exam' AND s.due_day >= {FINAL_FROM} * l.length_days "
        f"AND s.due_day < l.length_days + {FINAL_GRACE_DAYS} GROUP BY s.module_id, s.presentation_id"
    )


STUDY_MODES = ("full_time", "part_time")
# The relationships staff hold over students, and the scope each may be given (checked by
# validation as a cross-field rule), come from the one table of roles.
RELATIONSHIPS = tuple(RELATIONSHIP_SCOPES)
SCOPE_TYPES = ("student", "module", "programme", "school")

# Column names that name a protected characteristic or special-category data (CoP §4). They may
# appear only in ``protected_characteristics``; anywhere else they are a contract violation, so a
# careless export that puts gender into ``students`` is refused before it can become a feature.
PROTECTED_COLUMN_NAMES = frozenset(
    {
        "gender",
        "sex",
        "age",
        "age_band",
        "date_of_birth",
        "disability",
        "ethnicity",
        "race",
        "religion",
        "belief",
        "sexual_orientation",
        "gender_identity",
        "marital_status",
        "pregnancy",
        "imd_band",
        "deprivation",
        "region",
        "nationality",
        "citizenship",
        "country_of_birth",
        "health",
        "trade_union",
        "political_opinion",
    }
)

_PRESENTATION_REF = Reference(
    ("module_id", "presentation_id"), "presentations", ("module_id", "presentation_id")
)
_REGISTRATION_REF = Reference(
    ("student_id", "module_id", "presentation_id"),
    "registrations",
    ("student_id", "module_id", "presentation_id"),
)


def _id(name: str, description: str, **kw: object) -> Column:
    return Column(name, Kind.ID, description, **kw)  # type: ignore[arg-type]


PRESENTATIONS = Table(
    name="presentations",
    description="Calendar of module presentations (one run of a module).",
    columns=(
        _id("module_id", "Module code."),
        _id("presentation_id", "Presentation code, e.g. 2024J."),
        Column("start_date", Kind.DATE, "First day of the presentation (day 0)."),
        Column(
            "length_days",
            Kind.INT,
            "Length in days: start_date is day 0, the last day is length_days - 1 (a 20-week "
            "presentation: 140).",
            minimum=1,
            maximum=1000,
        ),
    ),
    key=("module_id", "presentation_id"),
    min_rows=1,
)

STUDENTS = Table(
    name="students",
    description="One row per student (pseudonymous). Used for features, subject to policy.",
    columns=(
        _id("student_id", "Pseudonymous student identifier."),
        _id("programme_id", "Programme of study.", required=False, nullable=True),
        _id("school_id", "School (or faculty) of the programme.", required=False, nullable=True),
        Column(
            "year_of_study",
            Kind.INT,
            "Year of study (1 = first year).",
            required=False,
            nullable=True,
            minimum=1,
            maximum=10,
        ),
        Column(
            "study_mode",
            Kind.TEXT,
            "full_time or part_time.",
            required=False,
            nullable=True,
            allowed=STUDY_MODES,
        ),
        Column(
            "highest_education", Kind.TEXT, "Highest qualification on entry.", required=False, nullable=True
        ),
        Column(
            "num_prev_attempts",
            Kind.INT,
            "Earlier attempts at the module before the data starts.",
            required=False,
            nullable=True,
            minimum=0,
            maximum=50,
        ),
        Column(
            "credits",
            Kind.FLOAT,
            "Credits being studied (parts allowed: 7.5 ECTS).",
            required=False,
            nullable=True,
            minimum=0,
            maximum=1000,
        ),
    ),
    key=("student_id",),
    min_rows=1,
)

REGISTRATIONS = Table(
    name="registrations",
    description="A student's registration on a module presentation, with its outcome.",
    columns=(
        _id("student_id", "Student."),
        _id("module_id", "Module."),
        _id("presentation_id", "Presentation."),
        Column(
            "registration_day",
            Kind.INT,
            "Day of registration (negative: before the start).",
            nullable=True,
            minimum=-1000,
            maximum=1000,
        ),
        Column(
            "unregistration_day",
            Kind.INT,
            "Day the student left the module, if they did.",
            nullable=True,
            minimum=-1000,
            maximum=2000,
        ),
        Column(
            "final_result",
            Kind.TEXT,
            "Outcome; empty while the presentation runs.",
            nullable=True,
            allowed=FINAL_RESULTS,
            mapping_hint=(
                "write each of the institution's outcomes as one of these: a completion (a pass, merit "
                "or compensated pass) as pass or distinction, a non-completion as fail or withdrawn, and "
                "leave it empty where the outcome is not known yet (deferred, in progress); an import "
                "mapping does it with final_result = { column = ..., values = { ... } } (docs/mapping.md)"
            ),
        ),
    ),
    key=("student_id", "module_id", "presentation_id"),
    references=(Reference(("student_id",), "students", ("student_id",)), _PRESENTATION_REF),
    min_rows=1,
)

ASSESSMENTS = Table(
    name="assessments",
    description="Assessments of each presentation.",
    columns=(
        _id("assessment_id", "Assessment identifier."),
        _id("module_id", "Module."),
        _id("presentation_id", "Presentation."),
        Column("type", Kind.TEXT, "coursework, quiz or exam.", allowed=ASSESSMENT_TYPES),
        Column(
            "due_day",
            Kind.INT,
            "Day it is due; empty when not scheduled.",
            nullable=True,
            minimum=-1000,
            maximum=1000,
        ),
        Column("weight", Kind.FLOAT, "Weight in the module mark, 0-100.", minimum=0, maximum=100),
    ),
    key=("assessment_id",),
    references=(_PRESENTATION_REF,),
    required=False,  # absent: read as no rows (a warning says assessment features will be empty)
)

ASSESSMENT_RESULTS = Table(
    name="assessment_results",
    description="Submissions and scores.",
    columns=(
        _id("student_id", "Student."),
        _id("assessment_id", "Assessment."),
        Column("submitted_day", Kind.INT, "Day of submission.", minimum=-1000, maximum=2000),
        Column(
            "score",
            Kind.FLOAT,
            "Score 0-100; empty when not (yet) marked.",
            nullable=True,
            minimum=0,
            maximum=100,
        ),
    ),
    key=("student_id", "assessment_id"),
    references=(Reference(("assessment_id",), "assessments", ("assessment_id",)),),
    required=False,  # absent: read as no rows
)

EXTENSIONS = Table(
    name="extensions",
    description=(
        "A student's own due day for an assessment (an extension, mitigating circumstances, a reasonable "
        "adjustment), replacing the assessment's due_day for that student alone."
    ),
    columns=(
        _id("student_id", "Student."),
        _id("assessment_id", "Assessment."),
        Column(
            "due_day",
            Kind.INT,
            "The student's own due day (days from the presentation's start, as the assessment's).",
            minimum=-1000,
            maximum=1000,
        ),
        Column(
            "granted_day",
            Kind.INT,
            "Day the extension was granted or recorded; a week whose cut-off is after it reads the "
            "student's own due day, an earlier one the assessment's. Empty: known from the start.",
            required=False,
            nullable=True,
            minimum=-1000,
            maximum=2000,
        ),
    ),
    key=("student_id", "assessment_id"),
    references=(Reference(("assessment_id",), "assessments", ("assessment_id",)),),
    required=False,  # absent: every student has the assessment's due day
)

ACTIVITY = Table(
    name="activity",
    description="Daily counts of activity by source and type. Never titles or content (CoP §4).",
    columns=(
        _id("student_id", "Student."),
        _id("module_id", "Module."),
        _id("presentation_id", "Presentation."),
        Column(
            "day",
            Kind.INT,
            "Day of the activity; one after the presentation's last day (day >= length_days) is kept "
            "with a warning, unread.",
            minimum=-1000,
            maximum=1000,
        ),
        _id("source", "vle, lecture_capture, library, quiz, attendance, or another source name."),
        _id("activity_type", "Kind of activity within the source (e.g. resource, forum)."),
        Column("count", Kind.INT, "Number of actions that day.", minimum=0),
    ),
    references=(_REGISTRATION_REF,),
)

_ACCESS_HINT = (
    "write each row with one of these: the relationships and scopes Waymark knows decide what each "
    "member of staff may read (docs/operations.md), so the file says them exactly"
)

ACCESS = Table(
    name="access",
    description="Who supports whom: staff relationships, loaded by `waymark access import`.",
    columns=(
        _id("staff_id", "Staff identifier (as in the identity provider's subject)."),
        Column(
            "relationship",
            Kind.TEXT,
            "Kind of relationship.",
            allowed=RELATIONSHIPS,
            mapping_hint=_ACCESS_HINT,
        ),
        Column(
            "scope_type", Kind.TEXT, "What scope_id names.", allowed=SCOPE_TYPES, mapping_hint=_ACCESS_HINT
        ),
        _id("scope_id", "A student, module, programme or school identifier."),
        _id(
            "presentation_id",
            "For a module relationship, the one presentation of the module it holds (empty: every "
            "presentation); a section's instructor beside another section's.",
            required=False,
            nullable=True,
        ),
        Column(
            "valid_from",
            Kind.DATE,
            "First day the relationship holds (empty: from always); a rotation's or placement's first day.",
            required=False,
            nullable=True,
        ),
        Column(
            "valid_until",
            Kind.DATE,
            "Last day the relationship holds, included (empty: until further notice).",
            required=False,
            nullable=True,
        ),
    ),
    # a relationship may hold several periods, one row each (a supervisor's two blocks with one student)
    key=("staff_id", "relationship", "scope_type", "scope_id", "presentation_id", "valid_from"),
    required=False,
    feature_safe=False,
)

PROTECTED_CHARACTERISTICS = Table(
    name="protected_characteristics",
    description="Protected characteristics for fairness audits ONLY (never features, never shown).",
    columns=(_id("student_id", "Student."),),
    key=("student_id",),
    references=(Reference(("student_id",), "students", ("student_id",)),),
    required=False,
    extra_columns_allowed=True,
    feature_safe=False,
)

# The built-in sources (models.features.catalogue.SOURCES) and how a sentence names them unless a
# data folder's ``sources`` table says otherwise.
DEFAULT_SOURCE_LABELS: dict[str, str] = {
    "vle": "the learning platform",
    "lecture_capture": "lecture recordings",
    "library": "the library",
    "quiz": "online quizzes",
    "attendance": "attendance records",
}

SOURCES = Table(
    name="sources",
    description=(
        "The activity sources the institution has declared, and how explanations name them (one row "
        "per source, not per student; never a model input). The built-in sources (vle, "
        "lecture_capture, library, quiz, attendance) are used without a row and keep their built-in "
        "name unless a row gives another. Any other source is used only once its row gives "
        "notice_given_on, and then only its activity dated on or after that day (CoP §4: students are "
        "told before a new source is used); its rows are otherwise left out of every feature, and "
        "validation warns. A built-in source given a notice date is used from that date too. A source "
        "given counts_as is read as that built-in source: its activity is attendance, quizzes, ... "
        "in features and sentences, named by its own label."
    ),
    columns=(
        _id("source", "A source name as written in activity.source."),
        Column(
            "label",
            Kind.TEXT,
            "How a sentence names it, e.g. the library, attendance records; empty: a neutral name.",
            required=False,
            nullable=True,
        ),
        Column(
            "notice_given_on",
            Kind.DATE,
            "The day students and staff were told this source would be used for learning analytics.",
            required=False,
            nullable=True,
        ),
        Column(
            "counts_as",
            Kind.TEXT,
            "The built-in source this one is a kind of (e.g. swipe_cards: attendance; vle: its "
            "activity_type is then read as the platform's); empty: activity of no particular kind, "
            "which counts towards overall engagement and study resources. Built-in sources keep their own.",
            required=False,
            nullable=True,
            allowed=tuple(DEFAULT_SOURCE_LABELS),
            mapping_hint=(
                "name one of the built-in sources, or leave it empty for activity of no particular kind "
                "(a mapping file sets it in [sources]: docs/mapping.md)"
            ),
        ),
    ),
    key=("source",),
    required=False,
    feature_input=False,
)

TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        PRESENTATIONS,
        STUDENTS,
        REGISTRATIONS,
        ASSESSMENTS,
        ASSESSMENT_RESULTS,
        EXTENSIONS,
        ACTIVITY,
        PROTECTED_CHARACTERISTICS,
        ACCESS,
        SOURCES,
    )
}

# Tables from which model features may be built. protected_characteristics and access are not
# among them, by construction: dataset.load_learning_data reads only these. sources is safe but
# only words: it is read by dataset.source_labels.
FEATURE_TABLES: tuple[str, ...] = tuple(t.name for t in TABLES.values() if t.feature_safe and t.feature_input)
