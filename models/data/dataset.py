"""Validated learning data: the only way model features get student data.

``LearningData`` holds the feature-safe tables and nothing else. It has no field for
protected characteristics and refuses, at construction, any frame that carries a protected
column or is a ``ProtectedFrame``. Protected characteristics are read by
``fairness.protected.load_protected_characteristics`` alone, as a ``ProtectedFrame``, a type that is
not a DataFrame and cannot be passed where one is expected without being unwrapped on purpose.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd
import pyarrow as pa

from waymark.models.data import memo, notice
from waymark.models.data.contract import (
    FEATURE_TABLES,
    PROTECTED_COLUMN_NAMES,
    TABLES,
    Kind,
)
from waymark.models.data.notice import USED_ACTIVITY, register_usable_sources
from waymark.models.data.publish import folder_fingerprint
from waymark.models.data.sqltext import ident, literal
from waymark.models.data.validation import require_valid


class ProtectedDataError(TypeError):
    """Raised when protected characteristics approach a path that builds features or responses."""


@dataclass(frozen=True, eq=False)
class ProtectedFrame:
    """Protected characteristics, wrapped so that they are never mistaken for feature data.

    Only the fairness package unwraps it, through ``for_audit()``: the audit, and the training-time
    mitigation the committee may switch on in its policy (``fairness.reduction``), which turns a
    student's group into a training weight and never lets the characteristic out of the package. The
    name of that call is the point: any other use stands out in review.
    """

    _frame: pd.DataFrame

    def for_audit(self) -> pd.DataFrame:
        """Return the characteristics for an aggregate fairness audit (a copy)."""
        return self._frame.copy()

    @property
    def attributes(self) -> tuple[str, ...]:
        """Names of the characteristics present (not their values)."""
        return tuple(c for c in self._frame.columns if c != "student_id")

    def __repr__(self) -> str:
        return f"ProtectedFrame({len(self._frame)} students, attributes={list(self.attributes)})"


_Frame = TypeVar("_Frame")


def presentation_name(module_id: object, presentation_id: object) -> str:
    """A presentation as people read it, "module (presentation)": ids may hold slashes and spaces."""
    return f"{module_id} ({presentation_id})"


def ensure_feature_safe(frame: _Frame, what: str = "data") -> _Frame:
    """Refuse protected characteristics on a path that builds features or responses.

    Parameters
    ----------
    frame
        The object about to be used.
    what
        What it is, for the error message.

    Returns
    -------
    pandas.DataFrame or pyarrow.Table
        ``frame`` itself, when it is safe.

    Raises
    ------
    ProtectedDataError
        If ``frame`` is a ``ProtectedFrame``, is neither a DataFrame nor an Arrow table, or has a
        protected column.
    """
    if isinstance(frame, ProtectedFrame):
        raise ProtectedDataError(
            f"{what}: protected characteristics may only be used by the fairness audit, "
            "never for features or responses (CoP §4, PRODUCT §3)"
        )
    if isinstance(frame, pd.DataFrame):
        columns = list(frame.columns)
    elif isinstance(frame, pa.Table):
        columns = frame.column_names
    else:
        raise ProtectedDataError(f"{what}: expected a DataFrame, got {type(frame).__name__}")
    bad = sorted(c for c in columns if str(c).lower() in PROTECTED_COLUMN_NAMES)
    if bad:
        raise ProtectedDataError(
            f"{what}: column(s) {', '.join(bad)} are protected characteristics and may never be "
            "features (CoP §4)"
        )
    return frame


@dataclass(frozen=True, eq=False)
class LearningData:
    """The feature-safe contract tables, typed and validated.

    When the tables hold some presentations only (``load_learning_data(choose=...)``), ``attempts``
    holds every registration of their students in the whole folder (``attempts_of``), so that an
    earlier attempt at a module counts in ``prior_attempts`` as it did when the model was trained on
    the whole folder. None: the tables are the whole folder.
    """

    presentations: pd.DataFrame
    students: pd.DataFrame
    registrations: pd.DataFrame
    assessments: pd.DataFrame
    assessment_results: pd.DataFrame
    activity: pd.DataFrame
    attempts: pd.DataFrame | None = None
    # Students' own due days (``contract.EXTENSIONS``); None: nobody has one.
    extensions: pd.DataFrame | None = None

    def __post_init__(self) -> None:
        for name, frame in self.tables().items():
            ensure_feature_safe(frame, f"LearningData.{name}")

    def tables(self) -> dict[str, pd.DataFrame]:
        """The tables by name (``attempts`` only when set)."""
        found = {f.name: getattr(self, f.name) for f in fields(self)}
        return {name: frame for name, frame in found.items() if frame is not None}

    def without(self, students: frozenset[str]) -> LearningData:
        """The same data with every row of ``students`` removed (students whose erasure was processed).

        Their rows go before any feature is built, so they count in no cohort statistic either.
        """
        if not students:
            return self
        return LearningData(
            **{
                name: frame[~frame["student_id"].isin(students)].reset_index(drop=True)
                if "student_id" in frame.columns
                else frame
                for name, frame in self.tables().items()
            }
        )


def load_learning_data(
    folder: Path, choose: Callable[[pd.DataFrame], pd.DataFrame] | None = None
) -> LearningData:
    """Validate ``folder`` (or find it passed before, unchanged: ``memo``) and load its feature-safe tables.

    Parameters
    ----------
    folder
        A data folder in the contract.
    choose
        Given the presentations table, the presentations to load (module_id, presentation_id);
        every table is then read only for them. The whole folder is validated either way.

    Returns
    -------
    LearningData
        Typed tables. Protected characteristics are not read.

    Raises
    ------
    ContractViolation
        If any contract rule is broken (nothing is returned half-loaded).
    """
    return _learning_data(memo.open_valid(folder, fingerprint=folder_fingerprint(folder))[0], choose)


def load_with_source_labels(
    where: Path | duckdb.DuckDBPyConnection,
    choose: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    *,
    activity_before: int | None = None,
) -> tuple[LearningData, dict[str, str]]:
    """``load_learning_data`` and ``source_labels`` of a folder, validating it once.

    ``where`` is a data folder (validated here) or a connection already holding its validated typed
    views (``validate_folder``'s, or ``memo.open_valid``'s for a folder that passed before).
    ``activity_before``, a day of the presentations' calendar, keeps only the activity before it:
    features at a cut-off never read past it, so scoring a chosen week reads only what it uses.
    """
    con = require_valid(where)[0] if isinstance(where, Path) else where
    return _learning_data(con, choose, activity_before=activity_before), source_labels(con)


def source_labels(where: Path | duckdb.DuckDBPyConnection) -> notice.Labels:
    """How explanations name each activity source: the built-in names, then the folder's ``sources`` table.

    Parameters
    ----------
    where
        A data folder (validated here) or a connection that ``validate_folder`` registered it on.

    Returns
    -------
    dict
        Source name -> label (``notice.labels``). A source not in it is named by ``source_label``.
    """
    con = require_valid(where)[0] if isinstance(where, Path) else where
    found = notice.declared(con)
    kinds = set(notice.kinds(found).values())
    present: list[str] = []
    if kinds:  # whether the built-in sources others are read as are in the activity themselves
        among = ", ".join(literal(k) for k in sorted(kinds))
        sql = f"SELECT DISTINCT source FROM t_activity WHERE source IN ({among})"
        present = [r[0] for r in con.execute(sql).fetchall()]
    joined = notice.joined_sources(found, present)
    seen = con.execute(notice.seen_sql(joined)).df() if joined else None
    return notice.labels(found, present, seen=seen)


def attempts_of(registrations: pd.DataFrame, presentations: pd.DataFrame) -> pd.DataFrame:
    """Each registration as (student_id, module_id, start_date): what ``prior_attempts`` counts."""
    starts = presentations[["module_id", "presentation_id", "start_date"]]
    found = registrations[["student_id", "module_id", "presentation_id"]].merge(
        starts, on=["module_id", "presentation_id"], how="inner"
    )
    return found[["student_id", "module_id", "start_date"]].reset_index(drop=True)


def _learning_data(
    con: duckdb.DuckDBPyConnection,
    choose: Callable[[pd.DataFrame], pd.DataFrame] | None,
    *,
    activity_before: int | None = None,
) -> LearningData:
    # Activity from a source students have not been told of never reaches a feature (CoP §4, ``notice``).
    register_usable_sources(con)
    # A source that counts as a built-in one is read as that one (``notice.kinds``).
    columns = {"source": notice.source_as_kind_sql(notice.kinds(notice.declared(con)))}
    used = USED_ACTIVITY if activity_before is None else f"day < {int(activity_before)} AND {USED_ACTIVITY}"
    if choose is None:
        where = {name: used if name == "activity" else "TRUE" for name in FEATURE_TABLES}
        return LearningData(
            **{name: _read(con, name, where=where[name], activity=columns) for name in FEATURE_TABLES}
        )
    every = read_typed(con, "presentations")
    wanted = choose(every)[["module_id", "presentation_id"]]
    con.register("wanted", wanted.astype(str))
    where = {**_ONLY_WANTED, "activity": f"{_IN_WANTED} AND {used}"}
    theirs = read_typed(con, "registrations", where=_ONLY_WANTED["students"])  # in every presentation
    return LearningData(
        **{name: _read(con, name, where=where[name], activity=columns) for name in FEATURE_TABLES},
        attempts=attempts_of(theirs, every),
    )


def _read(
    con: duckdb.DuckDBPyConnection, name: str, *, where: str, activity: Mapping[str, str]
) -> pd.DataFrame:
    return read_typed(con, name, where=where, columns=activity if name == "activity" else None)


_IN_WANTED = "(module_id, presentation_id) IN (SELECT module_id, presentation_id FROM wanted)"
_ONLY_WANTED = {
    "presentations": _IN_WANTED,
    "registrations": _IN_WANTED,
    "assessments": _IN_WANTED,
    "activity": _IN_WANTED,
    "assessment_results": f"assessment_id IN (SELECT assessment_id FROM t_assessments WHERE {_IN_WANTED})",
    "extensions": f"assessment_id IN (SELECT assessment_id FROM t_assessments WHERE {_IN_WANTED})",
    "students": f"student_id IN (SELECT student_id FROM t_registrations WHERE {_IN_WANTED})",
}


def read_typed(
    con: duckdb.DuckDBPyConnection,
    name: str,
    *,
    where: str = "TRUE",
    columns: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Read the typed view of a validated table into a DataFrame with contract dtypes.

    ``columns`` gives an SQL expression to read in place of a column (by name).
    """
    table = TABLES[name]
    present = {r[0] for r in con.execute(f"DESCRIBE {ident('t_' + name)}").fetchall()}
    cols = [c for c in table.columns if c.name in present]
    if table.extra_columns_allowed:
        raise ProtectedDataError(f"{name} is not a closed table; read it through its own loader")
    given = columns or {}
    select = ", ".join(_select(c.name, given) for c in cols)
    # Through Arrow: strings stay Arrow-backed and nullable integers stay integers, which keeps
    # a ten-million-row activity table near its size on disk. Row order is file order.
    return conform(name, con.sql(f"SELECT {select} FROM {ident('t_' + name)} WHERE {where}").to_arrow_table())


def _select(column: str, given: Mapping[str, str]) -> str:
    return f"{given[column]} AS {ident(column)}" if column in given else ident(column)


def conform(name: str, arrow: pa.Table) -> pd.DataFrame:
    """Typed rows of contract table ``name`` (from DuckDB or Spark, as Arrow) with the contract's dtypes.

    A column the rows lack (an optional one) is added as missing values; the columns come in the
    contract's order.
    """
    table = TABLES[name]
    frame: pd.DataFrame = arrow.to_pandas(types_mapper=_ARROW_DTYPES.get)
    for col in table.columns:
        if col.name in frame.columns:
            values = frame[col.name]
            if isinstance(values.dtype, pd.DatetimeTZDtype):  # Spark's timestamps come zoned in UTC
                values = values.dt.tz_convert(None)
            frame[col.name] = values.astype(_DTYPES[col.kind])
        else:
            frame[col.name] = pd.Series(pd.NA, index=frame.index, dtype=_DTYPES[col.kind])
    return frame[list(table.column_names)]


_ARROW_DTYPES: dict[Any, Any] = {
    pa.string(): pd.StringDtype("pyarrow"),
    pa.large_string(): pd.StringDtype("pyarrow"),
    pa.int64(): pd.Int64Dtype(),
    pa.int32(): pd.Int64Dtype(),
    pa.float64(): pd.Float64Dtype(),
}
_DTYPES: dict[Kind, Any] = {
    Kind.ID: pd.StringDtype("pyarrow"),
    Kind.TEXT: pd.StringDtype("pyarrow"),
    Kind.INT: "Int64",
    Kind.FLOAT: "Float64",
    Kind.DATE: "datetime64[s]",
}
