"""Every model feature: its name, the family a person understands, and what kind of family that is.

Families group exact contributions into plain-language factors (PRODUCT §2). ``FAMILIES`` is the one
table of them: each family's kind decides how an explanation may use it (``Kind``). The sentence that
describes a family lives in ``models.explain.sentences`` (explanations use features, never the other
way round); a test checks that every described family has exactly one describer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from waymark.models.data.platform import PLATFORM_TYPES

# Activity channels: each (source, activity type) falls into one. Fixed, so every model has the
# same feature list whatever sources a data folder happens to hold.
SOURCES = ("vle", "lecture_capture", "library", "quiz", "attendance")
CHANNELS = (
    "vle_content",
    "vle_communication",
    "vle_quiz",
    "vle_navigation",
    "lecture_capture",
    "library",
    "quiz",
    "attendance",
    "other",
)
VLE_TYPES = PLATFORM_TYPES  # the platform's types by channel; every other type is study content


@dataclass(frozen=True)
class Feature:
    """One model input."""

    name: str
    family: str
    description: str


class Kind(StrEnum):
    """How an explanation may use a family."""

    #: Something a student can act on: a factor or strength, and a candidate for what could change.
    FACTOR = "factor"
    #: A fixed fact (when they registered, earlier attempts): it may shape an indicator and is then
    #: described neutrally as context, never as something to change (PRODUCT §2, CoP §10).
    FIXED = "fixed"
    #: The calendar, which sources are recorded, the cohort as a whole: never described as being
    #: about the student.
    BACKGROUND = "background"


@dataclass(frozen=True)
class Family:
    """A group of features explained together."""

    name: str
    title: str
    kind: Kind

    @property
    def actionable(self) -> bool:
        """True when a student can act on it (the family may be a factor)."""
        return self.kind is Kind.FACTOR

    @property
    def described(self) -> bool:
        """True when explanations describe it in a sentence (so it needs a describer)."""
        return self.kind is not Kind.BACKGROUND


FAMILIES = {
    f.name: f
    for f in (
        Family("recent_activity", "Recent activity", Kind.FACTOR),
        Family("regularity", "Regularity of study", Kind.FACTOR),
        Family("cohort_engagement", "Engagement compared with the module cohort", Kind.FACTOR),
        Family("study_resources", "Use of study resources", Kind.FACTOR),
        Family("discussion", "Taking part in discussion", Kind.FACTOR),
        Family("practice", "Practice quizzes", Kind.FACTOR),
        Family("attendance", "Attendance", Kind.FACTOR),
        Family("assessment_submissions", "Assessment submissions", Kind.FACTOR),
        Family("assessment_results", "Assessment results", Kind.FACTOR),
        Family("registration_timing", "Registration timing", Kind.FIXED),
        Family("study_history", "Study history", Kind.FIXED),
        Family("upcoming_assessments", "Assessment calendar", Kind.BACKGROUND),
        Family("data_coverage", "Which data sources are recorded", Kind.BACKGROUND),
        Family("calendar", "Point in the presentation", Kind.BACKGROUND),
        Family("cohort_context", "How the module cohort as a whole is doing", Kind.BACKGROUND),
    )
}


#: The fewest students a module cohort (a module presentation at a week) needs before a student is
#: compared with it. Below it, a percentile or z-score says more about who the few others are than about
#: the student (one student alone would be "below every other"), and a sentence comparing them would
#: tell staff about the others: cohort-relative features take their neutral value (0.5, 0), and
#: explanations neither compare a student with such a cohort nor say what it has in common.
MIN_COHORT = 5
#: Families that only compare a student with their cohort: in a cohort under ``MIN_COHORT`` there is
#: nothing to compare with, so they are never a student's factor or strength there.
COMPARED_WITH_COHORT = frozenset({"cohort_engagement"})


def families_of(kind: Kind) -> tuple[str, ...]:
    """Names of the families of one kind, in the table's order."""
    return tuple(name for name, f in FAMILIES.items() if f.kind is kind)


# The family each activity channel's features belong to.
CHANNEL_FAMILY = {
    "vle_content": "study_resources",
    "vle_communication": "discussion",
    "vle_quiz": "practice",
    "vle_navigation": "study_resources",
    "lecture_capture": "study_resources",
    "library": "study_resources",
    "quiz": "practice",
    "attendance": "attendance",
    "other": "study_resources",
}


def source_channels(source: str) -> tuple[str, ...]:
    """The channels a source's activity falls into (a source not in ``SOURCES`` counts as 'other')."""
    if source == "vle":
        return ("vle_content", *VLE_TYPES)
    return (source,) if source in SOURCES else ("other",)


def _activity_features() -> list[Feature]:
    return [
        Feature("act_total", "regularity", "log(1 + actions before the cut-off), all sources"),
        Feature("act_active_days", "regularity", "days with any recorded activity"),
        Feature(
            "act_weeks_active_share", "regularity", "share of the weeks since registering with any activity"
        ),
        Feature(
            "act_earlier_weekly_rate",
            "regularity",
            "log(1 + weekly actions before the last 14 days, since registering)",
        ),
        Feature("act_pre_start", "regularity", "log(1 + actions before the presentation started)"),
        Feature("act_last7", "recent_activity", "log(1 + actions in the last 7 days)"),
        Feature("act_last14", "recent_activity", "log(1 + actions in the last 14 days)"),
        Feature("act_active_days_last14", "recent_activity", "active days in the last 14 days"),
        Feature("act_recent_vs_own", "recent_activity", "last-14-day weekly rate against own earlier rate"),
        Feature("act_trend_4w", "recent_activity", "slope of log weekly actions over the last 4 weeks"),
        Feature(
            "act_days_since_last",
            "recent_activity",
            "days since the last recorded activity (with none: since registering, or day -36)",
        ),
        Feature("act_total_pct", "cohort_engagement", "percentile of act_total in the module cohort"),
        Feature("act_last14_pct", "cohort_engagement", "percentile of act_last14 in the module cohort"),
        Feature("act_active_days_pct", "cohort_engagement", "percentile of act_active_days in the cohort"),
        Feature("act_total_z", "cohort_engagement", "z-score of act_total in the module cohort"),
        Feature("act_last14_z", "cohort_engagement", "z-score of act_last14 in the module cohort"),
        Feature("act_any", "data_coverage", "1 if the student has any activity record"),
    ]


def _channel_features() -> list[Feature]:
    out = []
    for ch in CHANNELS:
        fam = CHANNEL_FAMILY[ch]
        out.append(Feature(f"ch_{ch}_total", fam, f"log(1 + {ch} actions before the cut-off)"))
        out.append(Feature(f"ch_{ch}_last14", fam, f"log(1 + {ch} actions in the last 14 days)"))
    out += [
        Feature(f"src_{s}_recorded", "data_coverage", f"1 if {s} is recorded for this presentation")
        for s in SOURCES
    ]
    return out


def _assessment_features() -> list[Feature]:
    sub, res, cal = "assessment_submissions", "assessment_results", "upcoming_assessments"
    return [
        Feature(
            "asm_due",
            sub,
            "assessments due before the cut-off (mid-term exams too, never the final) that someone in the "
            "presentation has submitted (results not yet exported are not read as missed by all); work "
            "due before the student registered counts only if they submitted it",
        ),
        Feature("asm_submitted", sub, "of those, submitted before the cut-off"),
        Feature("asm_missed", sub, "of those, not submitted before the cut-off"),
        Feature("asm_submitted_share", sub, "submitted / due (1 when none were due)"),
        Feature("asm_late", sub, "submissions made after their due day"),
        Feature("asm_mean_lateness", sub, "mean days between due day and submission (negative: early)"),
        Feature("asm_early_submissions", sub, "assessments not yet due but already submitted"),
        Feature("asm_weight_missed", sub, "total weight of the assessments due so far and not submitted"),
        Feature("asm_days_since_submission", sub, "days since the last submission (since the start if none)"),
        Feature("asm_submitted_pct", sub, "percentile of asm_submitted_share in the module cohort"),
        Feature(
            "asm_score_mean",
            res,
            "weight-averaged score of marked work (quiz marks at once, others 14 days on)",
        ),
        Feature("asm_score_pct", res, "percentile of asm_score_mean in the module cohort (0.5 if none)"),
        Feature("asm_has_score", res, "1 if any marked work is available"),
        Feature("asm_last_score", res, "score of the latest marked work (0 if none)"),
        Feature("asm_min_score", res, "lowest score of marked work (0 if none)"),
        Feature("asm_days_to_next", cal, "days until the next non-exam assessment is due (capped at 120)"),
        Feature("asm_next_weight", cal, "weight of the next non-exam assessment"),
        Feature("asm_next_quiz", cal, "1 if the next non-exam assessment is a quiz"),
        Feature("asm_remaining", cal, "non-exam assessments still to come (due on or after the cut-off)"),
        Feature("asm_next_submitted", sub, "1 if the next non-exam assessment is already submitted"),
        Feature(
            "asm_cohort_next_submitted",
            "cohort_context",
            "share of the module cohort that has already submitted the next non-exam assessment",
        ),
    ]


def _registration_features() -> list[Feature]:
    return [
        Feature("reg_day", "registration_timing", "registration day relative to the start"),
        Feature("reg_late", "registration_timing", "1 if registered after the start"),
        Feature("reg_day_missing", "registration_timing", "1 if the registration day is not recorded"),
        Feature(
            "prior_attempts",
            "study_history",
            "earlier registrations on this module, whatever their outcome (the records' earlier attempts "
            "plus earlier presentations in the data)",
        ),
        Feature("credits", "study_history", "credits being studied"),
        Feature("credits_missing", "study_history", "1 if credits are not recorded"),
        Feature("weeks_elapsed", "calendar", "prediction week W (the cut-off is day 7 x W)"),
        Feature("progress", "calendar", "share of the presentation elapsed"),
        Feature(
            "cohort_withdrawn_share", "cohort_context", "share of the cohort that left before the cut-off"
        ),
        Feature("cohort_activity_median", "cohort_context", "median act_total of the cohort at the cut-off"),
    ]


FEATURES: tuple[Feature, ...] = tuple(
    _activity_features() + _channel_features() + _assessment_features() + _registration_features()
)
#: Families built from every source's activity together (the channel families have their own sources).
ALL_SOURCES_FAMILIES: tuple[str, ...] = tuple(
    dict.fromkeys(f.family for f in _activity_features() if FAMILIES[f.family].actionable)
)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
KEYS = ("student_id", "module_id", "presentation_id", "week")
