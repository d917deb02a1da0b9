"""Every model feature: its name, the family a person understands, and whether a student can act on it.

Families group exact contributions into plain-language factors (PRODUCT §2). Only actionable
families become factors; fixed facts (registration timing, study history) may shape an indicator
but are described neutrally, and context (calendar, which sources exist) is never a factor.
"""

from __future__ import annotations

from dataclasses import dataclass

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
VLE_TYPES = {
    "vle_communication": (
        "forumng",
        "forum",
        "oucollaborate",
        "ouelluminate",
        "collaborate",
        "ouwiki",
        "wiki",
    ),
    "vle_quiz": ("quiz", "externalquiz", "questionnaire", "quiz_page"),
    "vle_navigation": ("homepage", "sharedsubpage", "repeatactivity"),
}  # every other vle type is content (resources, pages, urls, ...)


@dataclass(frozen=True)
class Feature:
    """One model input."""

    name: str
    family: str
    description: str


@dataclass(frozen=True)
class Family:
    """A group of features explained together."""

    name: str
    title: str
    actionable: bool


FAMILIES = {
    f.name: f
    for f in (
        Family("recent_activity", "Recent activity on the learning platform", True),
        Family("regularity", "Regularity of study", True),
        Family("cohort_engagement", "Engagement compared with the module cohort", True),
        Family("study_resources", "Use of study resources", True),
        Family("discussion", "Taking part in discussion", True),
        Family("practice", "Practice quizzes", True),
        Family("attendance", "Attendance", True),
        Family("assessment_submissions", "Assessment submissions", True),
        Family("assessment_results", "Assessment results", True),
        Family("registration_timing", "Registration timing", False),
        Family("study_history", "Study history", False),
        Family("upcoming_assessments", "Assessment calendar", False),
        Family("data_coverage", "Which data sources are recorded", False),
        Family("calendar", "Point in the presentation", False),
        Family("cohort_context", "How the module cohort as a whole is doing", False),
    )
}

_CHANNEL_FAMILY = {
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


def _activity_features() -> list[Feature]:
    return [
        Feature("act_total", "regularity", "log(1 + actions before the cut-off), all sources"),
        Feature("act_active_days", "regularity", "days with any recorded activity"),
        Feature("act_weeks_active_share", "regularity", "share of weeks so far with any activity"),
        Feature("act_earlier_weekly_rate", "regularity", "log(1 + weekly actions before the last 14 days)"),
        Feature("act_pre_start", "regularity", "log(1 + actions before the presentation started)"),
        Feature("act_last7", "recent_activity", "log(1 + actions in the last 7 days)"),
        Feature("act_last14", "recent_activity", "log(1 + actions in the last 14 days)"),
        Feature("act_active_days_last14", "recent_activity", "active days in the last 14 days"),
        Feature("act_recent_vs_own", "recent_activity", "last-14-day weekly rate against own earlier rate"),
        Feature("act_trend_4w", "recent_activity", "slope of log weekly actions over the last 4 weeks"),
        Feature("act_days_since_last", "recent_activity", "days since the last recorded activity"),
        Feature("act_total_pct", "cohort_engagement", "percentile of act_total in the module cohort"),
        Feature("act_last14_pct", "cohort_engagement", "percentile of act_last14 in the module cohort"),
        Feature("act_any", "data_coverage", "1 if the student has any activity record"),
    ]


def _channel_features() -> list[Feature]:
    out = []
    for ch in CHANNELS:
        fam = _CHANNEL_FAMILY[ch]
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
        Feature("asm_due", sub, "non-exam assessments due before the cut-off"),
        Feature("asm_submitted", sub, "of those, submitted before the cut-off"),
        Feature("asm_missed", sub, "of those, not submitted before the cut-off"),
        Feature("asm_submitted_share", sub, "submitted / due (1 when none were due)"),
        Feature("asm_late", sub, "submissions made after their due day"),
        Feature("asm_mean_lateness", sub, "mean days between due day and submission (negative: early)"),
        Feature("asm_early_submissions", sub, "assessments not yet due but already submitted"),
        Feature(
            "asm_score_mean",
            res,
            "weight-averaged score of marked work (quiz marks at once, others 14 days on)",
        ),
        Feature("asm_score_pct", res, "percentile of asm_score_mean in the module cohort (0.5 if none)"),
        Feature("asm_has_score", res, "1 if any marked work is available"),
        Feature("asm_days_to_next", cal, "days until the next non-exam assessment is due (capped at 120)"),
        Feature("asm_next_weight", cal, "weight of the next non-exam assessment"),
    ]


def _registration_features() -> list[Feature]:
    return [
        Feature("reg_day", "registration_timing", "registration day relative to the start"),
        Feature("reg_late", "registration_timing", "1 if registered after the start"),
        Feature("reg_day_missing", "registration_timing", "1 if the registration day is not recorded"),
        Feature("prior_attempts", "study_history", "earlier attempts at this module"),
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
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
KEYS = ("student_id", "module_id", "presentation_id", "week")
