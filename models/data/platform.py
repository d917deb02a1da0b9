"""How the learning platform's activity types are read, and a warning when a folder's are not.

Features sort the activity of the learning platform (source ``vle``, or an institution's source
that ``counts_as`` it) into channels by activity type: discussion, quizzes and navigation take the
types listed in ``PLATFORM_TYPES``, and every other type is study content. That vocabulary is the
one OULAD and the ready mappings write. A platform that names its types its own way (Canvas's
``discussion_topic``, a ``test`` in Blackboard, an export in another language) would have every
discussion, quiz and course-page visit read as study content without a word, and the three
channels' features would stay at zero for every student. So validation warns, by name and count:

- for each type read as content whose name looks like one of the channels (``discussion_topic``
  looks like discussion), saying how to map it;
- when the platform's activity has no type of any channel at all, naming its commonest types.

It is a warning, not an error: a platform may truly have no forum. The SQL runs unchanged on DuckDB
and on Spark.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from waymark.models.data.findings import Example, Finding
from waymark.models.data.sqltext import literal

PLATFORM = "vle"
#: Activity types of the platform read as each channel other than content (features.catalogue).
PLATFORM_TYPES: dict[str, tuple[str, ...]] = {
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
}  # every other type is study content (resources, pages, urls, ...)

#: Each channel as people name it (what a type looks like, what it is read as), and the type a
#: mapping can turn a look-alike into.
CHANNEL_WORDS = {
    "vle_communication": ("discussion", "discussion", "forum"),
    "vle_quiz": ("a quiz", "quizzes", "quiz"),
    "vle_navigation": ("a course home page", "navigation", "homepage"),
}
#: Word beginnings that make an unlisted type look like a channel. A type's words (split at anything
#: but letters and digits, and before a capital) are compared. Deliberately few and plain: a false
#: hint costs a reader a moment, a wrong one could send discussion to quizzes.
LOOKS_LIKE: dict[str, tuple[str, ...]] = {
    "vle_communication": ("discuss", "forum", "chat", "messag", "conferenc", "collaborat", "blog", "wiki"),
    "vle_quiz": ("quiz", "test", "survey", "poll", "questionnaire"),
    "vle_navigation": ("home", "dashboard", "homepage", "landing"),
}
COMMONEST = 5
_WORDS = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")  # as sensitive.words_of splits


def platform_types_sql(platform_sources: Collection[str]) -> str:
    """Each activity type of ``platform_sources`` in ``t_activity``: type, rows, first file and row."""
    sources = ", ".join(literal(s) for s in sorted(platform_sources))
    return (
        "SELECT activity_type, count(*), arg_min(_file, (_file, _row)), arg_min(_row, (_file, _row)) "
        f"FROM t_activity WHERE source IN ({sources}) AND activity_type IS NOT NULL GROUP BY activity_type"
    )


def platform_sources(kinds: dict[str, str]) -> set[str]:
    """The built-in platform and every source said to count as it (``notice.kinds``)."""
    return {PLATFORM} | {s for s, kind in kinds.items() if kind == PLATFORM}


def channel_of(activity_type: str) -> str:
    """The channel features read ``activity_type`` of the platform as."""
    return next((ch for ch, types in PLATFORM_TYPES.items() if activity_type in types), "vle_content")


def looks_like(activity_type: str) -> str | None:
    """The channel an unlisted type's name suggests, if exactly one does."""
    words = [w.lower() for w in _WORDS.split(activity_type) if w]
    found = {ch for ch, starts in LOOKS_LIKE.items() for w in words for s in starts if w.startswith(s)}
    return found.pop() if len(found) == 1 else None


def platform_type_findings(rows: Sequence[tuple[object, ...]]) -> list[Finding]:
    """The warnings of ``platform_types_sql``'s rows (any order): look-alikes, then no channel at all."""
    types = sorted(
        ((str(t), int(str(n)), str(f), int(str(r))) for t, n, f, r in rows), key=lambda x: (-x[1], x[0])
    )
    out = []
    for name, count, file, row in types:
        channel = looks_like(name) if channel_of(name) == "vle_content" else None
        if channel is not None:
            out.append(_look_alike(name, channel, count=count, first=(file, row)))
    if types and not out and all(channel_of(t[0]) == "vle_content" for t in types):
        out.append(_all_content(types))
    return out


def _look_alike(name: str, channel: str, *, count: int, first: tuple[str, int]) -> Finding:
    looks, read_as, target = CHANNEL_WORDS[channel]
    listed = ", ".join(PLATFORM_TYPES[channel])
    mapped = f'activity_type values = {{ {name} = "{target}" }}, with keep_unmapped = true'
    message = (
        f"the learning platform's activity type {name!r} looks like {looks} but is not one of the types "
        f"read as {read_as} ({listed}), so it is read as study content. If it is {looks}, map it in the "
        f"mapping ({mapped}) or rename it in the export; if it is not, nothing needs doing"
    )
    example = Example(file=first[0], row=first[1], value=name)
    return Finding(
        "activity",
        "unread_platform_type",
        message,
        column="activity_type",
        count=count,
        examples=(example,),
        severity="warning",
    )


def _all_content(types: list[tuple[str, int, str, int]]) -> Finding:
    rows = sum(t[1] for t in types)
    listed = "; ".join(
        f"{ch_words[0]}: {', '.join(PLATFORM_TYPES[ch])}" for ch, ch_words in CHANNEL_WORDS.items()
    )
    message = (
        f"none of the learning platform's {len(types)} activity "
        f"{'type is' if len(types) == 1 else 'types is'} read as discussion, quizzes or navigation, so all "
        f"its activity is read as study content and those three kinds of feature stay at zero. The types "
        f"read as them are {listed}. If the platform's own names for any of these differ, map them in "
        "the mapping (activity_type values = { ... }, with keep_unmapped = true)"
    )
    return Finding(
        "activity",
        "no_platform_channels",
        message,
        column="activity_type",
        count=rows,
        severity="warning",
        values=tuple((t[0], t[1]) for t in types[:COMMONEST]),
        distinct_values=len(types),
    )
