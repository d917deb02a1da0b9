"""The one reader of protected characteristics (PRODUCT §3: fairness audits ONLY).

Nothing in ``models``, ``training`` or ``service`` calls this; a test checks that it stays so.
"""

from __future__ import annotations

from pathlib import Path

from waymark.models.data import ProtectedFrame
from waymark.models.data.validation import require_valid


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
    con, report = require_valid(folder)
    if "protected_characteristics" not in report.tables_present:
        return None
    frame = con.execute(
        "SELECT * EXCLUDE (_file, _row) FROM t_protected_characteristics ORDER BY _file, _row"
    ).df()
    return ProtectedFrame(frame.astype("string"))
