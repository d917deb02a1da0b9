"""Plain-language sentences built from a student's own feature values, one family at a time.

Every number in a sentence is read back from the features (counts were stored as log(1 + n)), so a
sentence says exactly what the model saw. Wording is factual and carries no category (PRODUCT §2):
it describes activity, never the person. Activity is named by the labels of the sources it was
recorded from ("12 actions from the learning platform and the library ..."), never by a source the
module does not record. ``describe_cohort`` words a fact nearly the whole module cohort shares, once,
as context ("No mark counts yet for anyone on this module (...)").
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

from waymark.models.explain.typical import NEARLY_ALL
from waymark.models.features.assessments import MARKING_DELAY_DAYS
from waymark.models.features.catalogue import CHANNEL_FAMILY
from waymark.models.marks import PERCENT, MarkScale

Row = Mapping[str, float]
#: Not a feature: 1 where the student's marks were compared with enough of their cohort's
#: (``cohort.compared_marks``); below that, or when absent, a mark is said without a comparison.
COMPARED_MARKS = "marks_compared_with_cohort"
#: Not features: where at least half the student's cohort has no activity in the last 14 days
#: (``typical.SAID_FROM``; a quiet stretch from 95%, ``typical.quiet_stretch``), that share and its
#: median days since the last activity. A student whose recent activity is still theirs there is
#: described beside the cohort's.
QUIET_SHARE = "cohort_quiet_share"
QUIET_TYPICAL_SINCE = "cohort_typical_days_since_last"
#: Not a feature: in how many of the weeks so far nearly the whole cohort had no activity
#: (``typical.quiet_weeks``); the regularity sentence says them as the module's.
QUIET_WEEKS = "cohort_quiet_weeks"
#: Not a feature: the cohort's typical (median) ratio of recent activity to its own earlier weekly rate
#: (``cohort.cohort_rates``; NaN where too few to say). Where it is low too (a break over part of the
#: last 14 days), a student's low ratio is said beside it: the drop is mostly the calendar's.
COHORT_RATE = "cohort_recent_vs_own"
Sources = tuple[str, ...]  # labels of the recorded sources a family is built from ("the library", ...)
Describer = Callable[[Row, Sources], tuple[str, str]]
#: From this many weeks after the week the student registered in (``registration_week``), recent
#: activity is compared with the student's own earlier weekly rate: the last 14 days are two of them, so
#: at least one earlier week since registering is left (``models.features.activity``). Within SAME_RATE
#: it is "about the same", below it a share, above it a multiple.
RATE_FROM_WEEK = 3
SAME_RATE = (0.9, 1.1)

_FAMILY_CHANNELS = {
    family: tuple(ch for ch, f in CHANNEL_FAMILY.items() if f == family) for family in CHANNEL_FAMILY.values()
}


def counted_channels(family: str) -> tuple[str, ...]:
    """The channels whose counts ``family`` says (empty for a family not counted by channel)."""
    return _FAMILY_CHANNELS.get(family, ()) if family in CHANNEL_FAMILIES else ()


def count(log_value: float) -> int:
    """A count stored as log(1 + n), read back."""
    return round(math.expm1(log_value))


def _times(n: int, one: str, *, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def and_list(words: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


def _from(sources: Sources) -> str:
    """' from the learning platform and the library', or nothing when no source is named."""
    return f" from {and_list(sources)}" if sources else ""


def _upper(text: str) -> str:
    return text[0].upper() + text[1:]


def _channel_counts(row: Row, family: str) -> tuple[int, int]:
    channels = _FAMILY_CHANNELS[family]
    total = sum(count(row[f"ch_{ch}_total"]) for ch in channels)
    recent = sum(count(row[f"ch_{ch}_last14"]) for ch in channels)
    return total, recent


def registration_week(reg_day: float) -> int:
    """The week a registration's own weeks count from: the one its day falls in (days 7k..7k+6).

    0 for a registration before the start or without a recorded day (``reg_day`` is 0 then): its
    weeks count from the start, as ``models.features.activity.FIRST_WEEK`` counts them.
    """
    return max(math.floor(reg_day / 7), 0)


def own_weeks(row: Row) -> int:
    """The weeks the student has had so far: from the week they registered in (at least 1).

    ``act_weeks_active_share`` is a share of these (``models.features.activity.OWN_WEEKS``).
    """
    return max(round(row["weeks_elapsed"]) - registration_week(row.get("reg_day", 0.0)), 1)


def active_weeks(src: str, *, active: int, weeks: int, registered_late: bool) -> tuple[str, str]:
    """The regularity brief and the sentence's start, from the student's weeks so far.

    "active in 5 of the 8 weeks so far" / "Activity in 5 of the 8 weeks so far"; for one who
    registered after the start "... of the 2 weeks since registering"; and with one week, "active in
    the 1 week so far" or "no activity in the 1 week so far" rather than "1 of the 1 weeks".
    """
    since = "since registering" if registered_late else "so far"
    if weeks == 1:
        if active:
            return f"active in the 1 week {since}", f"Activity{src} in the 1 week {since}"
        return f"no activity in the 1 week {since}", f"No activity{src} in the 1 week {since}"
    of = f"{active} of the {weeks} weeks {since}"
    return f"active in {of}", f"Activity{src} in {of}"


#: Said of recent activity when the student's own earlier weeks had none (``act_recent_vs_own`` is
#: smoothed, so a first week's few actions had read as "about 1.5 times" a rate of nothing).
NONE_EARLIER = ", where this student's own earlier weeks had none"
EARLIER_RATE = "act_earlier_weekly_rate"
#: No mark is read yet: quiz marks count at once, others ``MARKING_DELAY_DAYS`` after submission (when a
#: tutor's mark would be back), so "no marked work is recorded" was untrue of work handed in last week.
NO_MARK = "No mark counts yet"
NO_MARK_BRIEF = "no mark counted yet"
MARKS_COUNT = f" (quiz marks count at once, others {MARKING_DELAY_DAYS} days after the work is handed in)"
#: No assessment due: said of those in the data (a presentation whose assessments were not exported had
#: read "No assessment has been due yet", a fact about the module that was untrue), and of their due
#: days (a Swedish records system holds none: "has been due yet" was read beside 202 submissions).
NO_DUE = "No assessment with submissions recorded for this module had a due day before this point"
#: The same of one student, whose own due day may be later (an extension): said of the module, it was
#: untrue beside the assessment's day that had passed.
NO_DUE_OWN = (
    "No assessment with submissions recorded for this module had a due day for this student before this point"
)


def compares_own_rate(row: Row) -> bool:
    """Whether recent activity is compared with the student's own earlier weekly rate (``RATE_FROM_WEEK``).

    A row without ``reg_day`` counts from the start.
    """
    return row["weeks_elapsed"] - registration_week(row.get("reg_day", 0.0)) >= RATE_FROM_WEEK


def _recent_activity(row: Row, sources: Sources) -> tuple[str, str]:
    n, days = count(row["act_last14"]), round(row["act_active_days_last14"])
    if n == 0:
        brief = f"no activity{_from(sources)} in the last 14 days"
        quiet = row.get(QUIET_SHARE, 0.0)
        if quiet > 0:
            return brief, _upper(brief) + _beside_quiet_cohort(row, quiet) + "."
        if row["act_any"] >= 1:
            extra = f"; the last recorded activity was {round(row['act_days_since_last'])} days ago"
        else:
            extra = "; none has been recorded yet"
        return brief, _upper(brief) + extra + "."
    actions, active_days = _times(n, "action", many="actions"), _times(days, "day", many="days")
    brief = f"{actions}{_from(sources)} on {active_days} of the last 14"
    sentence = _upper(brief)
    if compares_own_rate(row):
        ratio = row["act_recent_vs_own"]
        if SAME_RATE[0] <= ratio <= SAME_RATE[1]:
            sentence += ", about the same weekly rate as this student's own earlier weeks"
        elif ratio < SAME_RATE[0]:
            sentence += f", about {round(100 * ratio)}% of this student's own earlier weekly rate"
            sentence += beside_cohort_rate(row.get(COHORT_RATE, math.nan))
        elif row.get(EARLIER_RATE, 1.0) <= 0:  # the ratio is smoothed: nothing before reads as 1
            sentence += NONE_EARLIER
        else:
            sentence += f", about {ratio:.1f} times this student's own earlier weekly rate"
            sentence += beside_cohort_rise(row.get(COHORT_RATE, math.nan))
    return brief, sentence + "."


def beside_cohort_rate(cohort: float) -> str:
    """'' unless the cohort's own typical ratio is below the same rate too: then what it was."""
    if math.isnan(cohort) or cohort >= SAME_RATE[0]:
        return ""
    return f", when students on this module were typically at about {round(100 * cohort)}% of theirs"


def beside_cohort_rise(cohort: float) -> str:
    """'' unless the cohort's own typical ratio is above the same rate too: then what it was.

    After a strike of eight months (a Nigerian university's), a student's earlier weekly rate counts
    the weeks nobody on the module studied: students back at their own pace read "about 2.4 times this
    student's own earlier weekly rate", the calendar's rise and not theirs.
    """
    if math.isnan(cohort) or tenths(cohort) <= SAME_RATE[1]:  # "about 1.1 times" is about the same
        return ""
    return f", when students on this module were typically at about {cohort:.1f} times theirs"


def tenths(x: float) -> float:
    """``x`` as a sentence says it, in tenths ("about 2.9 times"): the value a decision on it compares."""
    return float(f"{x:.1f}")


def _beside_quiet_cohort(row: Row, share: float) -> str:
    """What sets a quiet student apart from a cohort in a quiet stretch (the batch describer's words)."""
    who = "every student" if share >= 1 else f"{math.floor(100 * share)}% of students"
    if row["act_any"] < 1:
        return f", as for {who} on this module; none has been recorded yet for this student"
    since, typical = round(row["act_days_since_last"]), row.get(QUIET_TYPICAL_SINCE, math.nan)
    said = f", as for {who} on this module; this student's last recorded activity was {since} days ago"
    if math.isnan(typical):  # no quiet student of the cohort was ever active: nothing to compare with
        return said
    return said + f", against {round(typical)} for a typical student on this module"


def _regularity(row: Row, sources: Sources) -> tuple[str, str]:
    weeks = own_weeks(row)
    active = round(row["act_weeks_active_share"] * weeks)
    days = round(row["act_active_days"])
    late = registration_week(row.get("reg_day", 0.0)) > 0
    brief, lead = active_weeks(_from(sources), active=active, weeks=weeks, registered_late=late)
    active_days = _times(days, "active day", many="active days") + before_start(
        row.get("act_pre_start", 0.0), all_before=active == 0 and not late
    )
    quiet = _in_quiet_weeks(round(row.get(QUIET_WEEKS, 0)), weeks)
    return brief, f"{lead} ({active_days}){quiet}."


def before_start(pre_start: float, *, all_before: bool = False) -> str:
    """', some before the module started' where the active days count days before its start.

    A German university's review: "in 7 of the 9 weeks so far (19 active days)" counted 5 days of
    pre-reading the weeks do not. With ``all_before`` (no week so far active, the student registered
    from the start), every one of them was: a polytechnic's block in its first week read "in the 1 week
    so far (1 active day, some before the module started)" of a day wholly before it.
    """
    if pre_start <= 0:
        return ""
    return ", before the module started" if all_before else ", some before the module started"


def _cohort(row: Row, sources: Sources) -> tuple[str, str]:
    pct = round(100 * row["act_total_pct"])
    brief = _compared_with(pct, src="", on="the module")
    return brief, _upper(_compared_with(pct, src=_from(sources), on="this module")) + " at this point."


def _compared_with(pct: int, *, src: str, on: str) -> str:
    """'more activity<src> so far than about N% of students on <on>', said plainly at the extremes.

    ``pct`` is the rounded share of the cohort with strictly less activity (a percentile rank: students
    tied with the student are not counted). "About 0%" read as its opposite and "about 100%" as no other
    student at all: at 0 the student's activity is among the lowest on the module (a student tied with
    others for the least activity ranks 0 too, so it is never said as less than everyone's), at 100
    among the highest.
    """
    if pct <= 0:
        return f"activity{src} so far among the lowest on {on}"
    if pct >= 100:
        return f"activity{src} so far among the highest on {on}"
    return f"more activity{src} so far than about {pct}% of students on {on}"


#: The families counted by channel, and what their counts are of, one and many (the batch describer
#: says the same).
CHANNEL_FAMILIES = {
    "study_resources": ("use of study resources", "uses of study resources"),
    "discussion": (
        "visit or post in discussion forums and shared spaces",
        "visits or posts in discussion forums and shared spaces",
    ),
    "practice": ("practice quiz action", "practice quiz actions"),
    "attendance": ("attendance", "attendances"),
}


def _channels(family: str, what: tuple[str, str]) -> Describer:
    def describe(row: Row, sources: Sources) -> tuple[str, str]:
        total, recent = _channel_counts(row, family)
        counted = _times(total, what[0], many=what[1])
        brief = f"{counted} so far, {recent} in the last 14 days"
        quiet = row.get(QUIET_SHARE, 0.0) if recent == 0 else 0.0
        beside = _when_quiet(quiet) or module_slowed(row.get(COHORT_RATE, math.nan))
        return brief, f"{counted}{_from(sources)} so far, {recent} in the last 14 days{beside}."

    return describe


#: A module whose students typically kept at most this share of their earlier weekly rate in the last 14
#: days has slowed as a whole (a one-week holiday halves a fortnight), and a count's recent part is said
#: beside it.
MODULE_SLOWED = 0.75


def module_slowed(cohort: float) -> str:
    """', when students on this module were typically at about N% of their earlier weekly rate', or ''.

    A Turkish university's one-week religious holiday, in a different teaching week each year: "8
    attendances so far, 0 in the last 14 days" read as the student's own, with no word that one of
    the two weeks had no classes for anyone.
    """
    if math.isnan(cohort) or cohort > MODULE_SLOWED:
        return ""
    share = round(100 * cohort)
    return (
        f", when students' activity on this module was typically at about {share}% of their earlier "
        "weekly rate"
    )


def _in_quiet_weeks(weeks: int, of: int) -> str:
    """'; in N of the W, no activity was recorded for 95% or more of students on this module', or ''.

    Weeks nearly nobody on the module has activity recorded in (a break, whatever the calendar calls
    it, or weeks before a source's activity is used) are the module's, not gaps in this student's
    regularity.
    """
    if weeks <= 0:
        return ""
    share = round(100 * NEARLY_ALL)
    return (
        f"; in {weeks} of the {of}, no activity was recorded for {share}% or more of students on this module"
    )


def _when_quiet(share: float) -> str:
    """', when N% of students on this module had no activity' from half a cohort quiet, else ''.

    A fortnight with nothing recorded is the module's (a break, whatever the calendar calls it), not
    something that sets this student apart.
    """
    if share <= 0:
        return ""
    if share >= 1:
        return ", when no student on this module had any activity"
    return f", when {math.floor(100 * share)}% of students on this module had no activity"


def _submissions(row: Row, _sources: Sources) -> tuple[str, str]:
    due, done, late = round(row["asm_due"]), round(row["asm_submitted"]), round(row["asm_late"])
    if due == 0:
        early = round(row["asm_early_submissions"])
        brief = "no assessment due yet"
        tail = f"; {_times(early, 'assessment', many='assessments')} already submitted early" if early else ""
        return brief, NO_DUE_OWN + tail + "."
    if due == 1:
        brief = "the 1 assessment due so far " + ("submitted" if done else "not submitted")
        sentence = "The 1 assessment due so far was " + ("submitted" if done else "not submitted")
    else:
        brief = f"{done} of the {due} assessments due so far submitted"
        sentence = f"{done} of the {due} assessments due so far {'was' if done == 1 else 'were'} submitted"
    sentence += _after_due(done, late, one=due == 1)
    if row["asm_next_submitted"] >= 1:
        brief += ", the next already submitted"
        sentence += "; the next one is already submitted"
    return brief, sentence + "."


def _after_due(done: int, late: int, *, one: bool) -> str:
    """How many of the submissions were made after their due day ('' for none).

    Only a submission can be after its due day (``asm_late`` counts submissions): with none, nothing is
    said. A single submission is said as itself ("... was submitted after its due day"), not as "1".
    """
    if not late or not done:
        return ""
    if done == 1:
        return " after its due day" if one else ", after its due day"
    return f", {late} after the due day"


def mark_texts(scale: MarkScale, mark: float) -> tuple[str, str]:
    """The brief and the start of the sentence saying an average mark on ``scale``."""
    said = scale.text(mark)
    # "of 4.0 on a scale of 1 to 7 on marked work" would say "on" twice
    brief = (
        f"an average mark of {said} on marked work"
        if scale.out_of
        else f"an average mark on marked work of {said}"
    )
    return brief, f"Average mark on marked work so far: {said}"


def _results(row: Row, _sources: Sources, *, marks: MarkScale = PERCENT) -> tuple[str, str]:
    if row["asm_has_score"] < 1:
        return NO_MARK_BRIEF, NO_MARK + MARKS_COUNT + "."
    pct = round(100 * row["asm_score_pct"])
    brief, sentence = mark_texts(marks, row["asm_score_mean"])
    if pct >= 5 and row.get(COMPARED_MARKS, 0.0) >= 1:
        sentence += f" ({higher_than(pct)} marks on this module)"
    return brief, sentence + "."


def credits_text(value: float) -> str:
    """Credits as studied: whole ones as such, half and other parts to one decimal (7.5 ECTS, not 8)."""
    return f"{round(float(value), 1):g}"


def higher_than(pct: int) -> str:
    """'higher than about N% of', or 'among the highest' where N rounds to 100.

    A medical school's best students read "higher than about 100% of marks", as if above their own.
    """
    return "among the highest" if pct >= 100 else f"higher than about {pct}% of"


def _registration(row: Row, _sources: Sources) -> tuple[str, str]:
    if row["reg_day_missing"] >= 1:
        return "registration date not recorded", "The registration date is not recorded."
    day = round(row["reg_day"])
    if day == 0:
        return "registered on the first day", "Registered on the day the module started."
    when = "before" if day < 0 else "after"
    brief = f"registered {_times(abs(day), 'day', many='days')} {when} the start"
    return brief, f"Registered {_times(abs(day), 'day', many='days')} {when} the module started."


def _history(row: Row, _sources: Sources) -> tuple[str, str]:
    attempts = round(row["prior_attempts"])
    # Nothing recorded is not the same as a first attempt: an institution may not export earlier
    # attempts (num_prev_attempts is optional), so none is said as none recorded. Said as registrations,
    # whatever their outcome: an interruption, an exam deregistration or a termly part of a year-long
    # module is one, and "3 earlier attempts" of them was untrue (a conservatoire, a German and a
    # Scottish university's reviews, where an attempt is an exam attempt with rules of its own).
    first = (
        "no earlier registration recorded"
        if attempts == 0
        else _times(attempts, "earlier registration", many="earlier registrations")
    )
    sentence = (
        "No earlier registration on this module is recorded for the student"
        if attempts == 0
        else f"The student has {first} on this module"
    )
    if row["credits_missing"] < 1:
        sentence += f"; {credits_text(row['credits'])} credits are being studied"
    return first, sentence + "."


#: The one registry of describers: for every family explanations describe (a factor or a fixed fact in
#: ``models.features.catalogue.FAMILIES``), the (brief, sentence) it says about a student's row.
#: tests/test_registries.py fails when a described family has no describer, or a describer no family.
DESCRIBE: dict[str, Describer] = {
    "recent_activity": _recent_activity,
    "regularity": _regularity,
    "cohort_engagement": _cohort,
    **{family: _channels(family, what) for family, what in CHANNEL_FAMILIES.items()},
    "assessment_submissions": _submissions,
    "assessment_results": _results,
    "registration_timing": _registration,
    "study_history": _history,
}


#: The one family said on the institution's scale of marks (``WAYMARK_MARK_SCALE``): its describer also
#: takes the scale.
ON_THE_SCALE = "assessment_results"


def _said(family: str, row: Row, *, sources: Sequence[str], marks: MarkScale) -> tuple[str, str]:
    if family == ON_THE_SCALE:
        return _results(row, tuple(sources), marks=marks)
    return DESCRIBE[family](row, tuple(sources))


def describe(family: str, row: Row, *, sources: Sequence[str] = (), marks: MarkScale = PERCENT) -> str:
    """The sentence for ``family`` from the student's values, naming the ``sources`` it was recorded from.

    Marks are said on ``marks``, the institution's scale (0 to 100 without it).
    """
    return _said(family, row, sources=sources, marks=marks)[1]


def brief(family: str, row: Row, *, sources: Sequence[str] = (), marks: MarkScale = PERCENT) -> str:
    """A short phrase for ``family`` (used to describe a comparison)."""
    return _said(family, row, sources=sources, marks=marks)[0]


def _nothing_yet(family: str, row: Row, *, sources: Sources) -> str | None:
    """The absence a typical row of a family shows, with {who} left to fill; None if it is no absence."""
    src = _from(sources)
    if family in {"regularity", "cohort_engagement"} and row["act_total"] <= 0:
        return f"No activity{src} has been recorded yet for {{who}} on this module."
    if family == "recent_activity" and row["act_last14"] <= 0:
        return f"No activity{src} in the last 14 days for {{who}} on this module."
    if family in _CHANNEL_WHAT and _channel_counts(row, family)[0] == 0:
        return f"No {_CHANNEL_WHAT[family]}{src} recorded yet for {{who}} on this module."
    if family == "assessment_results" and row["asm_has_score"] < 1:
        return NO_MARK + " for {who} on this module" + MARKS_COUNT + "."
    if family == "assessment_submissions" and row["asm_due"] <= 0:
        return NO_DUE + "."
    return None


_CHANNEL_WHAT = {
    "study_resources": "use of study resources",
    "discussion": "visits or posts in discussion forums and shared spaces",
    "practice": "practice quiz actions",
    "attendance": "attendances",
}


def describe_cohort(
    family: str, row: Row, *, share: float, sources: Sequence[str] = (), marks: MarkScale = PERCENT
) -> str:
    """A fact about the module cohort at this point that ``share`` of it (nearly all) have in common.

    ``row`` is a student who is typical of it: their values of ``family`` are the cohort's.
    """
    every = share >= 1
    # Floored, so that "100%" never stands for a cohort in which someone differs.
    part = f"{math.floor(100 * share)}% of students"
    said = _nothing_yet(family, row, sources=tuple(sources))
    if said is not None:
        return said.format(who="anyone" if every else part)
    who = "every student" if every else part
    said_briefly = brief(family, row, sources=sources, marks=marks)
    return f"The same for {who} on this module at this point: {said_briefly}."


#: Each phrase the sentences use of "the student", and how it reads to the student themself. The
#: sentences are written once, for staff, and stored with the indicator; the student's own page reads
#: them through ``to_the_student``. A test holds every phrase of a scored cohort to this table.
TO_THE_STUDENT = (
    ("this student's own earlier", "your own earlier"),
    ("none has been recorded yet for this student", "none has been recorded yet for you"),
    ("this student's last recorded activity was", "your last recorded activity was"),
    (
        "No earlier registration on this module is recorded for the student",
        "No earlier registration on this module is recorded for you",
    ),
    ("The student has ", "You have "),
    ("Not listed as the student's own:", "Not listed as your own:"),
)


def to_the_student(sentence: str) -> str:
    """A sentence written for staff, as the student reads it of themself ("your own earlier weekly rate")."""
    for staff, student in TO_THE_STUDENT:
        sentence = sentence.replace(staff, student)
    return sentence
