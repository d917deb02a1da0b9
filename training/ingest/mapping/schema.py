"""The mapping file: how an institution's exports become the data contract, checked before any data is read.

A mapping is TOML (docs/mapping.md). It is parsed into the pydantic models below, which refuse unknown
keys and check every rule that can be checked without the data: tables and columns are the contract's,
every required column is given, a conversion fits its column, joins and sources name declared inputs.
Each mistake is reported with its TOML path ("tables.activity.columns.day: give exactly one of
column or value"), all of them at once.
"""

from __future__ import annotations

import codecs
import math
import re
import tomllib
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any, Literal
from zoneinfo import available_timezones

import duckdb
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from waymark.models.data.contract import TABLES, Kind

MAPPING_VERSION = 1
# Tables a mapping may produce: the contract's, except those loaded by their own commands
# (access: `waymark access import`) or written from the mapping's [sources] section.
MAPPABLE_TABLES = tuple(name for name in TABLES if name not in {"access", "sources"})
TIMESTAMP_KINDS = ("unix", "unix_ms", "iso")


class MappingError(Exception):
    """The mapping file is missing, not TOML, or breaks the schema; the message names every mistake."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class ColumnSpec(_Strict):
    """Where one contract column's values come from and how they are converted."""

    column: str | None = None
    # An id built from several source columns, e.g. a module occurrence: its code, occurrence and year.
    columns: list[str] = Field(default_factory=list)
    joined_with: str = "-"
    value: str | int | float | None = None
    # strptime format, or "iso"; or several formats, tried in order (one column written two ways)
    date: str | list[str] | None = None
    timestamp: Literal["unix", "unix_ms", "iso"] | None = None
    values: dict[str, str] = Field(default_factory=dict)
    patterns: dict[str, str] = Field(default_factory=dict)  # fnmatch-style globs, tried in order
    default: str | None = None  # for a value neither in `values` nor matching `patterns`
    keep_unmapped: bool = False  # an unmatched value passes through unchanged
    multiply: float | None = None
    # Added after multiply: a teaching week numbered from 1 is its first day with multiply = 7, add = -7
    # (multiply alone put week 1 on day 7, the first day of week 2).
    add: float | None = None
    # A mark out of a maximum another column holds (a learning platform's points out of points
    # possible), or out of a number every row shares (a Kenyan university's CATs out of 15): written as
    # a percentage, value / maximum x 100. A text names the column; a number is the maximum.
    out_of: str | float | None = None
    # The source column holding each row's time zone (an IANA name, "America/Los_Angeles"), in which a
    # timestamp's day is counted; the mapping's timezone where it is empty. Students in many zones: an
    # online university's Americas students submitting on the evening of the due day, their time,
    # read as a day late in the one zone a mapping had.
    zone: str | None = None
    # The local time a day starts at for a timestamp or a local time ("03:00"): a moment before it counts
    # on the day before. An evening university's students work past midnight; at midnight a Sunday
    # session was Monday's, in the next teaching week, and a submission at 00:20 a day late.
    day_starts_at: str | None = Field(default=None, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")
    # The zone an ISO timestamp written without an offset is in ("UTC"), where it is not the mapping's:
    # a Saudi university's Blackboard wrote UTC times without a Z, read in Asia/Riyadh, and a third of
    # Ramadan's night-time events moved to the day before.
    written_in: str | None = None
    # A number written with a decimal comma ("12,5"): read as 12.5; a value with a point ("1.234,5",
    # or "1.234", where the point separates thousands) is refused rather than guessed.
    decimal_comma: bool = False
    # Prefixes some of the export's ids carry and others do not ("HS2401001" in one system, "2401001"
    # in another, after a migration): removed where present, before anything else reads the id.
    strip_prefix: list[str] = Field(default_factory=list)
    # Text replaced wherever it occurs, in the order given: one system's "ENG-2019-045" for the records'
    # "ENG/2019/045" ({ "-" = "/" }).
    replace: dict[str, str] = Field(default_factory=dict)
    # Zeros added on the left of a shorter value up to this many characters: an id a spreadsheet read
    # as a number ("23000374" for "0023000374"). Bring every export to the records system's form,
    # which sign-in's student number also has, rather than strip the zeros from the others.
    pad: int | None = Field(default=None, ge=2, le=64)
    # Text put before an id that does not already start with it (after case, strip_prefix, replace and
    # pad): the records' matriculation number "s2012345", which a learning platform's tools write
    # "2012345" or "S2012345" ({ case = "lower", prefix = "s" }).
    prefix: str | None = Field(default=None, min_length=1, max_length=32)
    # The part of a value a regular expression's first group matches: a module code and a term out of
    # one course id ("MATH101-2024-S1"), which a learning platform writes where records keep two columns.
    extract: str | None = None
    # Ids one system writes in lower case and another in upper ("21bcs0457", "21BCS0457"): written in one
    # case before anything else reads them, strip_prefix and replace included (pseudonyms of the two
    # would differ). Turkish pairs its i differently (dotted i and İ, dotless i and I): a Moodle's
    # "fiz101" is the records' "FİZ101" with "turkish-upper", never "FIZ101".
    case: Literal["upper", "lower", "turkish-upper", "turkish-lower"] | None = None
    # Read only on rows whose listed source columns hold one of the values given; on other rows the
    # cell counts as empty. One status-date column that is the leaving day for some statuses and an
    # exam day for others: unregistration_day from it only when the status is a leaving one.
    when: dict[str, list[str]] = Field(default_factory=dict)
    # Read where this rule gives nothing (an empty cell, a row ``when`` passes over): a leaving day in
    # one column for a withdrawal and in another for a break in learning.
    otherwise: ColumnSpec | None = None

    @field_validator("otherwise", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        return _column_spec(value) if value is not None else None

    @model_validator(mode="after")
    def _consistent(self) -> ColumnSpec:
        if sum((self.column is not None, bool(self.columns), self.value is not None)) != 1:
            raise ValueError("give exactly one of column, columns or value")
        if self.columns and len(self.columns) < 2:
            raise ValueError("columns joins two or more source columns (one is column)")
        if self.columns and self.converts_time:
            raise ValueError("columns builds an id or a text; a date or timestamp comes from one column")
        if self.date is not None and self.timestamp is not None:
            raise ValueError("give at most one of date or timestamp")
        if self.zone is not None and self.timestamp is None:
            raise ValueError(
                "zone gives the time zone a timestamp's day is counted in (a date, or a local time read "
                "with date, is already a day)"
            )
        if self.written_in is not None and self.timestamp != "iso":
            raise ValueError(
                "written_in names the zone of ISO timestamps written without an offset: give it with "
                'timestamp = "iso"'
            )
        if self.written_in is not None and self.written_in not in available_timezones():
            raise ValueError(f"written_in: unknown time zone {self.written_in!r} (an IANA name such as UTC)")
        if self.day_starts_at is not None and not (
            self.timestamp or any("%H" in f for f in self.date_formats)
        ):
            raise ValueError(
                "day_starts_at moves the day of a moment: give it with timestamp, or with a date format "
                "that reads an hour (%H); a date alone is already a day"
            )
        if self.default is not None and self.keep_unmapped:
            raise ValueError("give at most one of default or keep_unmapped")
        if (self.default is not None or self.keep_unmapped) and not (self.values or self.patterns):
            raise ValueError("default and keep_unmapped need values or patterns")
        if any(not listed for listed in self.when.values()):
            raise ValueError("when: give each column the values on which the column is read")
        if self.otherwise is not None and self.value is not None:
            raise ValueError("otherwise is read where a column gives nothing; a value always gives one")
        if self.otherwise is not None and self.otherwise.converts_time != self.converts_time:
            raise ValueError("otherwise gives what the rule before it gives: both a date, or neither")
        return self

    def chain(self) -> list[ColumnSpec]:
        """The rule and each ``otherwise`` after it, in the order they are read."""
        return [self, *(self.otherwise.chain() if self.otherwise is not None else [])]

    @property
    def date_formats(self) -> tuple[str, ...]:
        """The ``date`` formats, in the order tried (none without ``date``)."""
        if self.date is None:
            return ()
        return (self.date,) if isinstance(self.date, str) else tuple(self.date)

    @property
    def converts_time(self) -> bool:
        """Whether the column is a date or a timestamp to be parsed."""
        return self.date is not None or self.timestamp is not None

    @property
    def maps_values(self) -> bool:
        """Whether a value map applies."""
        return bool(self.values or self.patterns)


def _column_spec(raw: object) -> object:
    return {"column": raw} if isinstance(raw, str) else raw


class JoinSpec(_Strict):
    """A join of another input onto a table's rows.

    Inner (unmatched rows are dropped and counted), or with ``keep_unmatched`` a left join (unmatched
    rows kept, the joined input's columns empty).
    """

    input: str
    on: dict[str, str] = Field(min_length=1)  # column of the table's rows -> column of the joined input
    # Match ids that two systems write in different case ("KV23AB71" and "kv23ab71") as one.
    ignore_case: bool = False
    # An interruptions or leavers table joined to enrolments: most students have no row there, and an
    # inner join dropped every one of them (a UK evening university's 8,744 of 9,257 enrolments).
    keep_unmatched: bool = False


class InputSpec(_Strict):
    """A named input: the files it is read from and how."""

    files: list[str] = Field(min_length=1)
    format: str = "csv"
    separator: str | None = None  # csv: auto-detected when absent
    encoding: str = "utf-8"
    header: bool = True
    skip_rows: int = Field(default=0, ge=0)  # csv: lines before the header (a preamble), blank ones too
    keep: dict[str, list[str]] = Field(default_factory=dict)  # keep rows whose column value is listed
    drop: dict[str, list[str]] = Field(default_factory=dict)  # then drop rows whose column value is listed
    options: dict[str, str | int | float | bool] = Field(default_factory=dict)  # reader-specific

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            if not getattr(codecs.lookup(value), "_is_text_encoding", True):  # rot13, hex: not text
                raise LookupError(value)
        except LookupError:
            raise ValueError(
                f"unknown encoding {value!r} (for example utf-8, cp1252 for Windows and Excel exports, "
                "latin-1, utf-16)"
            ) from None
        return value

    @field_validator("format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        from waymark.training.ingest.mapping.readers import READERS  # readers import this module

        if value not in READERS:
            raise ValueError(f"unknown format {value!r}; known: {', '.join(sorted(READERS))}")
        return value


class TableSpec(_Strict):
    """How one contract table is built from an input."""

    from_: str = Field(alias="from")
    join: list[JoinSpec] = Field(default_factory=list)
    aggregate: Literal["count", "sum"] | None = None  # activity only
    duplicates: Literal["error", "first", "last"] = "error"  # keyed tables: rows sharing a key
    order_by: ColumnSpec | None = None  # what "first" and "last" follow (else the extract's order)
    # activity with aggregate = "count": count the distinct values of this (a session id, so that a
    # student who checks in twice to one session attends it once) rather than the rows
    count_distinct: ColumnSpec | None = None
    # activity only: rows of a student on a module presentation they have no registration on (a log
    # keyed by login records visits to modules a student browsed but never took) are an error, or,
    # with "drop", left out and counted
    unregistered: Literal["error", "drop"] = "error"
    # activity only: rows dated outside their presentation (from WITHIN_BEFORE_DAYS before its start to
    # its last day) are left out. A source recorded per person (a library's turnstile, a campus card)
    # joined to registrations copies each visit to every registration of every term: a Chinese
    # university's library log put 333,660 of 730,252 rows before a later term's start, read as
    # pre-start activity, and moved 902 of 2,480 estimates by more than 10 points.
    within_presentation: bool = False
    ignore: list[str] = Field(default_factory=list)
    columns: dict[str, ColumnSpec]

    @field_validator("columns", mode="before")
    @classmethod
    def _shorthand(cls, value: object) -> object:
        if isinstance(value, dict):
            return {name: _column_spec(spec) for name, spec in value.items()}
        return value

    @field_validator("order_by", "count_distinct", mode="before")
    @classmethod
    def _order_shorthand(cls, value: object) -> object:
        return _column_spec(value)


class PseudonymiseSpec(_Strict):
    """Which id columns are replaced by a keyed hash, and where the key may be found."""

    columns: list[str] = Field(min_length=1)
    secret_file: str | None = None  # relative to the mapping file

    @field_validator("columns")
    @classmethod
    def _id_columns(cls, value: list[str]) -> list[str]:
        ids = {c.name for t in TABLES.values() for c in t.columns if c.kind is Kind.ID}
        unknown = [c for c in value if c not in ids]
        if unknown:
            raise ValueError(
                f"{', '.join(unknown)}: not an id column of the contract ({', '.join(sorted(ids))})"
            )
        return value


class SourceSpec(_Strict):
    """An activity source: how staff see it named, and the day students were told of it (CoP §4).

    A source that is not built in is used for features only once ``notice_given_on`` is given, and then
    only its activity from that day (``models.data.notice``). ``counts_as`` reads an institution's own
    source as one of the built-in ones (``swipe_cards`` as ``attendance``).
    """

    label: str = ""
    notice_given_on: date | None = None
    counts_as: Literal["vle", "lecture_capture", "library", "quiz", "attendance"] | None = None


class Mapping(_Strict):
    """A whole mapping file."""

    version: Literal[1]
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    timezone: str = "UTC"
    pseudonymise: PseudonymiseSpec | None = None
    inputs: dict[str, InputSpec] = Field(min_length=1)
    tables: dict[str, TableSpec] = Field(min_length=1)
    # activity source -> label shown to staff, or
    # { label = "...", notice_given_on = YYYY-MM-DD, counts_as = "attendance" }
    sources: dict[str, str | SourceSpec] = Field(default_factory=dict)
    empty: list[str] = Field(default_factory=list)  # tables the institution does not record: header only
    _path: Path | None = PrivateAttr(default=None)

    def source_rows(self) -> dict[str, SourceSpec]:
        """The [sources] section as rows of the sources table."""
        return {s: SourceSpec(label=v) if isinstance(v, str) else v for s, v in self.sources.items()}

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        if value not in available_timezones():
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as Europe/London)")
        return value

    @property
    def path(self) -> Path | None:
        """The file the mapping was read from (set by ``load_mapping``)."""
        return self._path


# --- rules that involve more than one section ----------------------------------------------------


def _problems(mapping: Mapping) -> list[str]:
    problems: list[str] = []
    for name, spec in mapping.tables.items():
        where = f"tables.{name}"
        if name not in MAPPABLE_TABLES:
            problems.append(
                f"{where}: not a contract table a mapping can produce ({', '.join(MAPPABLE_TABLES)})"
            )
            continue
        problems += _input_problems(mapping, spec, where=where)
        problems += _column_problems(name, spec, where=where)
        if spec.aggregate is not None and name != "activity":
            problems.append(f"{where}.aggregate: only the activity table is aggregated")
        if spec.unregistered != "error" and name != "activity":
            problems.append(f"{where}.unregistered: only the activity table's rows can be left out")
        if spec.within_presentation and name != "activity":
            problems.append(f"{where}.within_presentation: only the activity table's rows are dated")
        if spec.count_distinct is not None and (name != "activity" or spec.aggregate != "count"):
            problems.append(f'{where}.count_distinct: only with aggregate = "count" on the activity table')
        if spec.duplicates != "error" and not TABLES[name].key:
            problems.append(f"{where}.duplicates: {name} has no key, so rows cannot share one")
    problems += _source_label_problems(mapping)
    for name in mapping.empty:
        if name not in MAPPABLE_TABLES:
            problems.append(f"empty: {name!r} is not a contract table a mapping can produce")
        elif name in mapping.tables:
            problems.append(f"empty: {name} is also built from tables.{name}")
    return problems


def _input_problems(mapping: Mapping, spec: TableSpec, *, where: str) -> list[str]:
    known = ", ".join(sorted(mapping.inputs))
    problems = []
    if spec.from_ not in mapping.inputs:
        problems.append(f"{where}.from: no input called {spec.from_!r} (inputs: {known})")
    for i, join in enumerate(spec.join):
        if join.input not in mapping.inputs:
            problems.append(f"{where}.join[{i}].input: no input called {join.input!r} (inputs: {known})")
    return problems


def _column_problems(table_name: str, spec: TableSpec, *, where: str) -> list[str]:
    table = TABLES[table_name]
    problems = []
    known = set(table.column_names)
    for col, col_spec in spec.columns.items():
        if col not in known and not table.extra_columns_allowed:
            problems.append(
                f"{where}.columns.{col}: {table_name} has no column {col!r} ({', '.join(table.column_names)})"
            )
            continue
        kind = table.column(col).kind if col in known else Kind.TEXT
        for depth, rule in enumerate(col_spec.chain()):
            at = f"{where}.columns.{col}" + ".otherwise" * depth
            problems += [f"{at}: {p}" for p in _conversion_problems(col, rule, kind=kind)]
        if (table_name, col) == ("registrations", "final_result"):
            for depth, rule in enumerate(col_spec.chain()):
                at = f"{where}.columns.{col}" + ".otherwise" * depth
                problems += [f"{at}: {p}" for p in _death_problems(rule)]
    missing = [c.name for c in table.columns if c.required and c.name not in spec.columns]
    if spec.aggregate is not None:
        missing = [c for c in missing if c != "count" or spec.aggregate == "sum"]
    if missing:
        problems.append(
            f"{where}.columns: missing {', '.join(missing)} (required by the contract; "
            'give { value = "" } for a column the extract does not have)'
        )
    return problems


# An outcome recording a death. Mapped to empty ("not known yet") it is scored and listed for outreach
# (an art school's trial put a student keyed as deceased 10th of 137 on a module's list).
DEATH_WORDS = (
    r"deceased|death|\bdied\b|\bdead\b|passed away"
    # The same in the languages of institutions that have tried Waymark (an Arabic export's متوفى was
    # mapped to empty unwarned), with and without accents: French, Spanish, Portuguese, Italian, German,
    # Dutch, Scandinavian, Polish, Turkish, Indonesian, Afrikaans, Arabic, Chinese, Japanese, Korean, Hindi.
    r"|d[ée]c[ée]d|d[ée]c[èe]s\b|fallecid|falecid|[óo]bito|defunci|\bmuert[oa]\b|\bmort[eo]?\b|decedut"
    r"|verstorben|gestorben|overleden|avliden|\bd[øö]d\b|zmar[łl]|vefat|meninggal|oorlede"
    r"|متوف|وفاة|توفي|死亡|去世|逝世|逝去|死去|사망|मृत्यु|निधन"
    # Welsh (a Welsh university's): died, has died, deceased, death
    r"|\bbu farw\b|\bwedi marw\b|ymadawedig|marwolaeth"
)
_DEATH = re.compile(DEATH_WORDS, re.IGNORECASE)
#: Said of an outcome naming a death that a value map leaves empty, by the mapping's check and the rows'.
DEATH_REFUSED = (
    "is mapped to empty (not known yet), so the student would be scored and listed for contact: map a "
    'death to "withdrawn", with the date in unregistration_day when the export gives one '
    "(docs/bring-your-own-data.md, Students who have died)"
)


def _death_problems(spec: ColumnSpec) -> list[str]:
    """Outcomes naming a death that the value map leaves empty (not known yet): refused."""
    rules = {**spec.values, **spec.patterns}
    return [
        f"{source!r} {DEATH_REFUSED}"
        for source, target in rules.items()
        if _DEATH.search(source) and target == ""
    ]


#: The one column other than a day column a date converts: a presentation's length, from its last day.
LENGTH_FROM_END = "length_days"


def _extract_problems(pattern: str) -> list[str]:
    """Why ``extract`` cannot be used: not a regular expression DuckDB (RE2) reads, or no group."""
    try:
        groups = re.compile(pattern).groups
        duckdb.execute("SELECT regexp_extract('', $p, 1)", {"p": pattern}).fetchall()
    except (re.error, duckdb.Error) as exc:
        return [f"extract {pattern!r} is not a regular expression this reads ({str(exc).splitlines()[0]})"]
    if groups < 1:
        return [
            f"extract {pattern!r} has no group: put the part to keep in brackets, as in '^([A-Z]+[0-9]+)-'"
        ]
    return []


def _conversion_problems(col: str, spec: ColumnSpec, *, kind: Kind) -> list[str]:
    problems = []
    # length_days from a date: the presentation's last day, counted from its start_date inclusively
    is_day = kind is Kind.INT and (col == "day" or col.endswith("_day") or col == LENGTH_FROM_END)
    if spec.converts_time and kind is not Kind.DATE and not is_day:
        problems.append(
            "date and timestamp convert only DATE columns, day columns (day, *_day) and length_days (from "
            "the presentation's last day)"
        )
    if spec.multiply is not None and kind not in {Kind.INT, Kind.FLOAT}:
        problems.append("multiply applies to numbers only")
    if spec.add is not None and kind not in {Kind.INT, Kind.FLOAT}:
        problems.append("add applies to numbers only")
    if spec.out_of is not None and kind not in {Kind.INT, Kind.FLOAT}:
        problems.append("out_of applies to numbers only")
    if spec.out_of is not None and spec.column is None:
        problems.append("out_of divides the number of one source column (give column)")
    if isinstance(spec.out_of, float) and not (math.isfinite(spec.out_of) and spec.out_of > 0):
        problems.append("out_of as a number is the maximum every mark is out of, above 0")
    if spec.decimal_comma and kind not in {Kind.INT, Kind.FLOAT}:
        problems.append("decimal_comma applies to numbers only")
    if spec.strip_prefix and kind is not Kind.ID:
        problems.append("strip_prefix applies to ids only")
    if "" in spec.strip_prefix:
        problems.append("strip_prefix lists an empty prefix")
    if spec.prefix is not None and kind is not Kind.ID:
        problems.append("prefix applies to ids only")
    if spec.extract is not None:
        problems += _extract_problems(spec.extract)
    if spec.case is not None and kind not in {Kind.ID, Kind.TEXT}:
        problems.append("case applies to ids and text only")
    if spec.pad is not None and kind not in {Kind.ID, Kind.TEXT}:
        problems.append("pad applies to ids and text only")
    if "" in spec.replace:
        problems.append("replace lists an empty text to replace")
    formats = spec.date_formats
    if isinstance(spec.date, list) and (not formats or "iso" in formats):
        problems.append("date lists strptime formats tried in order (at least one; 'iso' only alone)")
    for form in formats:
        if form != "iso" and "%" not in form:
            problems.append(f"date {form!r} is neither 'iso' nor a strptime format such as '%d/%m/%Y'")
    return problems


def _source_label_problems(mapping: Mapping) -> list[str]:
    problems = []
    for source, spec in mapping.source_rows().items():
        if not spec.label.strip() and spec.notice_given_on is None:
            problems.append(f"sources.{source}: give a label, a notice_given_on date, or both")
    if mapping.sources and "activity" not in mapping.tables:
        problems.append("sources: labels name activity sources, but the mapping builds no activity table")
    return problems


# --- loading -----------------------------------------------------------------------------------


def _location(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part not in {"function-after[_consistent(), ColumnSpec]"}:
            text += ("." if text else "") + str(part).replace("from_", "from")
    return text or "(top level)"


def _schema_messages(error: ValidationError) -> list[str]:
    messages = []
    for item in error.errors():
        loc = tuple(p for p in item["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "extra_forbidden":
            msg = "not a field of the mapping schema (a misspelling?)"
        elif item["type"] == "missing":
            msg = "required"
        messages.append(f"{_location(loc)}: {msg}")
    return messages


def parse_mapping(data: dict[str, Any], *, origin: str = "mapping") -> Mapping:
    """Check parsed TOML against the schema.

    Raises
    ------
    MappingError
        Naming every mistake with its TOML path.
    """
    try:
        mapping = Mapping.model_validate(_composed(data))
    except ValidationError as exc:
        raise MappingError(_report(origin, _schema_messages(exc))) from exc
    problems = _problems(mapping)
    if problems:
        raise MappingError(_report(origin, problems))
    return mapping


def _composed(value: Any, *, key: str = "") -> Any:
    """``value`` with every text, key or value, in Unicode's composed form (NFC), as cells are read.

    A mapping typed where "é" is written decomposed named values no cell, composed on reading, could
    match. File names (``files``) are left as written: they are matched against the disk's names.
    """
    if key == "files":
        return value
    if isinstance(value, str):
        return unicodedata.normalize("NFC", value)
    if isinstance(value, dict):
        return {_composed(k): _composed(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_composed(v, key=key) for v in value]
    return value


def _report(origin: str, messages: list[str]) -> str:
    count = len(messages)
    head = f"{origin}: {count} mistake{'s' if count != 1 else ''} in the mapping"
    return "\n".join([head, *(f"  {m}" for m in messages)])


def _bare_key_hint(text: str, error: str) -> str:
    """A hint where the parser stopped at a letter outside A to Z: TOML's bare keys are ASCII only.

    A Swedish university's `type = { Inlämningsuppgift = "coursework" }` read only "Expected '=' after
    a key in a key/value pair".
    """
    found = re.search(r"at line (\d+), column (\d+)", error)
    if found is None:
        return ""
    lines = text.splitlines()
    line, column = int(found.group(1)), int(found.group(2))
    if not 0 < line <= len(lines) or not 0 < column <= len(lines[line - 1]):
        return ""
    if lines[line - 1][column - 1].isascii():
        return ""
    return (
        f": {lines[line - 1][column - 1]!r} is not a letter a key may hold unquoted (A to Z, digits, _ and - "
        'only): write a key with other letters in quotes ("Inlämningsuppgift" = "coursework")'
    )


def load_mapping(path: Path) -> Mapping:
    """Read and check a mapping file.

    Parameters
    ----------
    path
        A TOML mapping file (docs/mapping.md).

    Returns
    -------
    Mapping
        The checked mapping; ``mapping.path`` is ``path``.

    Raises
    ------
    MappingError
        When the file cannot be read, is not TOML, or breaks the schema (every mistake named).
    """
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except OSError as exc:
        raise MappingError(f"{path}: cannot read the mapping file ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise MappingError(f"{path}: not valid TOML ({exc}){_bare_key_hint(text, str(exc))}") from exc
    mapping = parse_mapping(data, origin=str(path))
    mapping._path = path
    return mapping
