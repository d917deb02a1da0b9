"""Which activity sources may be used, and from when (CoP §4: notice before a new source is used).

The built-in sources (``contract.DEFAULT_SOURCE_LABELS``: the platform, lecture recordings, the
library, quizzes, attendance) are the ones the contract documents and the transparency statement names.
Any other source is used only once the folder's ``sources`` table declares it with ``notice_given_on``,
the day students and staff were told of it, and then only its activity dated on or after that day:
activity recorded before students knew it would be analysed is never analysed. A built-in source given a
notice date is held to it as well.

The rule is applied where a folder becomes ``LearningData`` (``dataset._learning_data``), the one path by
which training, the fairness audit and scoring read activity, so no caller can forget it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import duckdb
import pandas as pd

from waymark.models.data.contract import DEFAULT_SOURCE_LABELS
from waymark.models.data.findings import Finding
from waymark.models.data.sqltext import literal

BUILT_IN_SOURCES = tuple(DEFAULT_SOURCE_LABELS)
#: SQL over ``t_activity`` (unaliased): true for the rows features may use. Needs ``usable_sources``.
USED_ACTIVITY = (
    "EXISTS (SELECT 1 FROM usable_sources u JOIN t_presentations p "
    "ON p.module_id = t_activity.module_id AND p.presentation_id = t_activity.presentation_id "
    "WHERE u.source = t_activity.source "
    "AND (u.notice IS NULL OR p.start_date + CAST(t_activity.day AS INTEGER) >= u.notice))"
)


@dataclass(frozen=True)
class SourceUse:
    """One activity source of a folder: how many rows it has and how many features may use."""

    source: str
    rows: int
    used_rows: int
    declared: bool  # built in, or given a notice date in the sources table
    notice_given_on: date | None
    read_as: str | None = None  # the built-in source it counts as (``kinds``)

    @property
    def status(self) -> str:
        """``used``, ``used from <date>`` (``, read as <source>`` for a kind), or ``not used: <why>``."""
        if not self.declared:
            return "not used: not declared"
        if self.used_rows == 0 and self.notice_given_on is not None:
            return f"not used: all its activity is dated before its notice ({self.notice_given_on})"
        used = f"used from {self.notice_given_on}" if self.notice_given_on else "used"
        return f"{used}, read as {self.read_as}" if self.read_as else used


def _has_view(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    # fetchall, not fetchone: DuckDB keeps a half-read result open, and the caller's next relation
    # on this connection (the importer's create_view) would be refused.
    found = con.execute("SELECT count(*) FROM duckdb_views() WHERE view_name = ?", [name]).fetchall()
    return bool(found) and int(found[0][0]) > 0


@dataclass(frozen=True)
class Declared:
    """One row of a folder's ``sources`` table."""

    label: str  # '' when not given
    notice_given_on: date | None
    counts_as: str | None  # the built-in source this one is read as (``kinds``); None: its own


def declared(con: duckdb.DuckDBPyConnection) -> dict[str, Declared]:
    """The folder's ``sources`` table by source (empty without one)."""
    if not _has_view(con, "t_sources"):
        return {}
    cols = {r[0] for r in con.execute("DESCRIBE t_sources").fetchall()}
    return declared_of(con.execute(declared_sql(cols)).fetchall())


def declared_sql(columns: Collection[str]) -> str:
    """The query of ``t_sources`` (whose columns are ``columns``) that ``declared_of`` reads."""

    def column(name: str, kind: str) -> str:
        return name if name in columns else f"CAST(NULL AS {kind})"

    return (
        f"SELECT source, {column('label', 'VARCHAR')}, {column('notice_given_on', 'DATE')}, "
        f"{column('counts_as', 'VARCHAR')} FROM t_sources WHERE source IS NOT NULL"
    )


def declared_of(rows: Iterable[tuple[Any, ...]]) -> dict[str, Declared]:
    """The rows of ``declared_sql`` (from DuckDB, Spark or pandas) by source."""
    return {
        str(source): Declared(_text(label), _day(notice), _text(kind) or None)
        for source, label, notice, kind in rows
        if not _missing(source)
    }


def notices(con: duckdb.DuckDBPyConnection) -> dict[str, date | None]:
    """Each source the ``sources`` table lists, with its notice date (None: none given)."""
    return notices_of(declared(con))


def notices_of(found: Mapping[str, Declared]) -> dict[str, date | None]:
    """The notice dates of ``declared`` sources."""
    return {s: d.notice_given_on for s, d in found.items()}


def kinds(found: Mapping[str, Declared]) -> dict[str, str]:
    """Each usable source that is not built in but counts as a built-in one, with that one.

    An institution's own source (``swipe_cards``, say) is otherwise activity of no particular kind: it
    counts towards overall engagement and the study-resources family. Given ``counts_as`` (one of the
    built-in sources; validation checks), its activity is read as that source's everywhere a folder
    becomes learning data: in its channel (``attendance``, ``quiz``, ...), in which sources a module
    records, and in the sentences, where the built-in's name becomes this source's label (``labels``).
    """
    use = usable(notices_of(found))
    return {
        s: d.counts_as
        for s, d in found.items()
        if d.counts_as and s in use and s not in BUILT_IN_SOURCES and d.counts_as in BUILT_IN_SOURCES
    }


def source_as_kind_sql(found_kinds: Mapping[str, str]) -> str:
    """The ``source`` column of activity with each source in ``found_kinds`` read as its kind (SQL)."""
    if not found_kinds:
        return "source"
    cases = " ".join(f"WHEN {literal(s)} THEN {literal(k)}" for s, k in sorted(found_kinds.items()))
    return f"CASE source {cases} ELSE source END"


class Labels(dict[str, str]):
    """Source name -> how a sentence names it; ``parts`` keeps the names a joined label was made of.

    A built-in source that other sources are read as (``kinds``) may be named by several: "attendance
    records and door swipes". Where a sentence lists a family's sources, it lists those names one by
    one (``parts_of``), so that list reads "A, B and C", never "A and B and C".

    ``part_of`` names each source a joined label was made of (the built-in itself, or one read as it)
    by its part; ``seen`` holds, per module presentation, the first day of each such source
    (``SEEN_SQL``): a module records only some of them (a university's classroom courses an attendance
    app, its online ones lecture videos), and its students read only those (``parts_on``).
    """

    def __init__(
        self,
        names: Mapping[str, str] | None = None,
        parts: Mapping[str, tuple[str, ...]] | None = None,
        *,
        part_of: Mapping[str, str] | None = None,
        seen: pd.DataFrame | None = None,
    ) -> None:
        super().__init__(names or {})
        self.parts: dict[str, tuple[str, ...]] = dict(parts or {})
        self.part_of: dict[str, str] = dict(part_of or {})
        self.seen = seen


#: The first day of each source in ``sources`` on each module presentation (``Labels.seen``), on
#: DuckDB or (translated) Spark.
SEEN_SQL = (
    "SELECT module_id, presentation_id, source, min(day) AS first_day FROM t_activity "
    "WHERE module_id IS NOT NULL AND presentation_id IS NOT NULL AND source IN ({sources}) "
    "GROUP BY module_id, presentation_id, source"
)


def joined_sources(found: Mapping[str, Declared], present: Collection[str] = ()) -> list[str]:
    """The sources a kind's label is joined from (``labels``), for kinds whose label joins two or more.

    A kind's parts are the built-in source itself where the activity holds it (``present``) and each
    source read as it. Empty where no label joins two: no module could record only some of a label.
    """
    by_kind: dict[str, list[str]] = {}
    for source, kind in sorted(kinds(found).items()):
        by_kind.setdefault(kind, [kind] if kind in present else []).append(source)
    return sorted({s for parts in by_kind.values() if len(parts) >= 2 for s in parts})


def seen_sql(sources: Collection[str]) -> str:
    """``SEEN_SQL`` for ``sources`` (``joined_sources``)."""
    return SEEN_SQL.format(sources=", ".join(literal(s) for s in sorted(sources)))


def parts_of(names: Mapping[str, str], source: str) -> tuple[str, ...]:
    """The names ``source``'s label was joined from (one name for most sources; ``source_label``'s)."""
    parts = names.parts.get(source) if isinstance(names, Labels) else None
    return parts or (source_label(names, source),)


def labels(
    found: Mapping[str, Declared], present: Collection[str] = (), *, seen: pd.DataFrame | None = None
) -> Labels:
    """How explanations name each usable source: the built-in names, then the ``sources`` table's.

    A source read as a built-in one (``kinds``) is named under that one: the built-in's name becomes
    the source's label, joined with the built-in's own when the activity holds the built-in source
    itself too (``present``: the built-in sources the activity holds), and the names joined are kept
    (``Labels.parts``, each source's in ``Labels.part_of``). A source that may not be used is never
    named, not even as not recorded. ``seen``: ``SEEN_SQL``'s rows, where a module records which.
    """
    named = dict(DEFAULT_SOURCE_LABELS) | {s: d.label for s, d in found.items() if d.label}
    use = usable(notices_of(found))
    out = {s: label for s, label in named.items() if s in use}
    read_as = kinds(found)
    parts: dict[str, tuple[str, ...]] = {}
    part_of: dict[str, str] = {}
    for kind in dict.fromkeys(sorted(read_as.values())):
        theirs = {s: source_label(out, s) for s, k in sorted(read_as.items()) if k == kind}
        own = {kind: out[kind]} if kind in present and kind in out else {}
        part_of |= own | theirs
        parts[kind] = tuple(dict.fromkeys([*own.values(), *theirs.values()]))
        out[kind] = " and ".join(parts[kind])
    return Labels(
        {s: label for s, label in out.items() if s not in read_as}, parts, part_of=part_of, seen=seen
    )


def parts_on(names: Mapping[str, str], seen: Collection[str], *, kind: str) -> tuple[str, ...] | None:
    """The parts of ``kind``'s label for a module presentation whose activity holds ``seen`` sources.

    None where the label is not joined, or the module records every part or none it names.
    """
    if not isinstance(names, Labels) or len(names.parts.get(kind, ())) < 2:
        return None
    mine = {names.part_of[s] for s in seen if s in names.part_of}
    here = tuple(p for p in names.parts[kind] if p in mine)
    return here if here and here != names.parts[kind] else None


def source_label(names: Mapping[str, str], source: str) -> str:
    """The label of ``source``; a neutral one for a source nobody named (never another source's)."""
    return names.get(source) or f"'{source}' records"


def _missing(value: Any) -> bool:
    return value is None or (not isinstance(value, str) and bool(pd.isna(value)))


def _text(value: Any) -> str:
    return "" if _missing(value) else str(value).strip()


def _day(value: Any) -> date | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        return date.fromisoformat(value)
    return value.date() if isinstance(value, datetime) else value  # a Timestamp is a datetime


def usable(declared: dict[str, date | None]) -> dict[str, date | None]:
    """Sources features may use, each with the first day of its usable activity (None: all of it)."""
    out: dict[str, date | None] = {s: declared.get(s) for s in BUILT_IN_SOURCES}
    out |= {s: d for s, d in declared.items() if d is not None}
    return out


def register_usable_sources(con: duckdb.DuckDBPyConnection) -> dict[str, date | None]:
    """Create the view ``usable_sources`` (source, notice) that ``USED_ACTIVITY`` reads; return it."""
    found = usable(notices(con))
    con.execute(f"CREATE OR REPLACE TEMP VIEW usable_sources AS {usable_sources_sql(found)}")
    return found


def usable_sources_sql(found: dict[str, date | None]) -> str:
    """The query of the view ``usable_sources`` (source, notice) for the sources ``usable`` found."""
    rows = ", ".join(f"({literal(s)}, {_date(d)})" for s, d in found.items())
    return f"SELECT * FROM (VALUES {rows}) v(source, notice)"


def _date(value: date | None) -> str:
    return "CAST(NULL AS DATE)" if value is None else f"DATE {literal(value.isoformat())}"


def source_use(con: duckdb.DuckDBPyConnection) -> list[SourceUse]:
    """Every source in the folder's activity, with its rows and the rows features may use.

    Parameters
    ----------
    con
        A connection holding the typed views ``t_activity`` and ``t_presentations``.

    Returns
    -------
    list of SourceUse
        By source name.
    """
    found = register_usable_sources(con)
    told = declared(con)
    return source_uses(con.execute(SOURCE_USE_SQL).fetchall(), found=found, declared=told)


#: Each source of ``t_activity``, its rows, and the rows features may use. Needs ``usable_sources``.
SOURCE_USE_SQL = (  # the rule is evaluated before the aggregate: Spark takes no subquery in FILTER
    f"SELECT source, count(*), count(*) FILTER (WHERE used) FROM (SELECT source, {USED_ACTIVITY} AS used "
    "FROM t_activity WHERE source IS NOT NULL) GROUP BY source ORDER BY source"
)


def source_uses(
    rows: Iterable[tuple[Any, ...]], *, found: dict[str, date | None], declared: Mapping[str, Declared]
) -> list[SourceUse]:
    """``SOURCE_USE_SQL``'s rows as SourceUse, given the usable sources and the ``sources`` table."""
    read_as = kinds(declared)
    return [
        SourceUse(
            str(s),
            int(n),
            int(used),
            declared=str(s) in found,
            notice_given_on=declared[str(s)].notice_given_on if str(s) in declared else None,
            read_as=read_as.get(str(s)),
        )
        for s, n, used in rows
    ]


def source_use_warnings(uses: list[SourceUse]) -> list[Finding]:
    """A warning for each source whose activity, in whole or in part, is left out of features."""
    return [_warning(u) for u in uses if u.used_rows < u.rows]


def _warning(use: SourceUse) -> Finding:
    left = use.rows - use.used_rows
    head = f"activity source {use.source!r}: {left:,} of {use.rows:,} rows are not used for features"
    if not use.declared:
        why = (
            "it is not declared. A new source is used only once students and staff have been told of it "
            "(CoP §4): give the day they were told as notice_given_on in its row of the sources table "
            f"(sources.csv: {use.source},<label>,<YYYY-MM-DD>; a mapping: [sources] {use.source} = "
            '{ label = "...", notice_given_on = YYYY-MM-DD }), and activity from that day on is used'
        )
    else:
        why = (
            f"they are dated before its notice_given_on ({use.notice_given_on}); activity recorded before "
            "students were told of the source is never used"
        )
    return Finding(
        "activity", "source_not_used", f"{head}: {why}", column="source", count=left, severity="warning"
    )
