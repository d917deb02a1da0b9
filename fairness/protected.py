"""The one reader of protected characteristics (PRODUCT §3: fairness audits ONLY).

Nothing in ``models``, ``training`` or ``service`` calls this; a test checks that it stays so. Its
callers are the audit and, when the committee's policy switches one on, the training-time mitigation
(``fairness.reduction``), which hands training a label and a weight per row and nothing else. On Spark
the table is read from the fairness audit's own validation of the folder (``models.spark.reading.
validated``, whose views hold every table the folder has); the query naming it is here, not there.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from waymark.models.data import ProtectedFrame, folder_fingerprint, memo
from waymark.models.data.sqltext import ident

if TYPE_CHECKING:
    from waymark.models.spark.validation import SparkViews

TABLE = "protected_characteristics"


def load_protected_characteristics(folder: Path) -> ProtectedFrame | None:
    """Read the protected characteristics of a validated data folder, wrapped for audit use.

    Parameters
    ----------
    folder
        A data folder in the contract.

    Returns
    -------
    ProtectedFrame or None
        The characteristics (missing values stay missing; the audit makes them a "not recorded"
        group), or None when the folder has no such table.

    Raises
    ------
    ContractViolation
        If the folder breaks the contract.
    """
    con, report = memo.open_valid(folder, fingerprint=folder_fingerprint(folder), tables=(TABLE,))
    if report is not None:  # validated now
        present = TABLE in report.tables_present
    else:  # the memo's views hold the table when the folder has it
        views = con.execute("SELECT view_name FROM duckdb_views() WHERE view_name = ?", [f"t_{TABLE}"])
        present = views.fetchone() is not None
    if not present:
        return None
    frame = con.execute(
        "SELECT * EXCLUDE (_file, _row) FROM t_protected_characteristics ORDER BY _file, _row"
    ).df()
    return ProtectedFrame(frame.astype("string"))


def protected_characteristics_on_spark(views: SparkViews) -> ProtectedFrame | None:
    """``load_protected_characteristics`` from the views of a folder validated on Spark.

    Parameters
    ----------
    views
        The views of ``models.spark.reading.validated`` (the folder passed the contract).

    Returns
    -------
    ProtectedFrame or None
        The same frame as on DuckDB (every value as text, missing ones missing, in file order), or
        None when the folder has no such table. Only these few columns of one row per student
        come to the driver.
    """
    from waymark.models.spark.engine import collect

    name = f"t_{TABLE}"
    if name not in views.names:
        return None
    columns = ", ".join(ident(c) for c in views.columns(name) if c not in ("_file", "_row"))
    frame = collect(views.sql(f"SELECT {columns} FROM {ident(name)} ORDER BY _file, _row"))
    return ProtectedFrame(frame.astype("string"))
