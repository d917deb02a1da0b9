"""Run one SQL statement over DataFrames in a private DuckDB connection.

Feature steps are pure: frames in, frame out. This is the edge where they meet DuckDB. Every input
passes the protected-characteristics guard first, so no step can be handed one by mistake.
"""

from __future__ import annotations

import pandas as pd

from waymark.models.data import ensure_feature_safe
from waymark.models.threads import duckdb_connect


def query(sql: str, **frames: pd.DataFrame) -> pd.DataFrame:
    """Run ``sql`` with each keyword frame visible as a table of that name.

    Parameters
    ----------
    sql
        One SELECT statement.
    **frames
        Tables by name. Each is checked by ``ensure_feature_safe``.

    Returns
    -------
    pandas.DataFrame
        The result.
    """
    con = duckdb_connect()
    try:
        for name, frame in frames.items():
            con.register(name, ensure_feature_safe(frame, name))
        result: pd.DataFrame = con.sql(sql).df()
        return result
    finally:
        con.close()
