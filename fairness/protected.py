"""The one reader of protected characteristics (PRODUCT §3: fairness audits ONLY).

Nothing in ``models``, ``training`` or ``service`` calls this; a test checks that it stays so.
"""

from __future__ import annotations

from pathlib import Path

from waymark.models.data import ProtectedFrame, folder_fingerprint, memo

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
