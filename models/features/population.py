"""Who is predicted for at each prediction point.

At week W the cut-off is day 7·W: features see days < 7·W only. The population is every
registration that started before the cut-off (a missing registration day counts as before the
start) and had not unregistered before it, on a presentation that lasts at least until the cut-off.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from waymark.models.features.query import Engine, query


def population(
    registrations: Any,
    presentations: Any,
    *,
    weeks: Sequence[int] | None = None,
    engine: Engine | None = None,
) -> Any:
    """Registrations in the population at each week.

    Parameters
    ----------
    registrations, presentations
        Contract tables.
    weeks
        Prediction weeks to include; all weeks of each presentation when None.
    engine
        Where to run (``query.Engine``); DuckDB over pandas frames when None.

    Returns
    -------
    The engine's table
        student_id, module_id, presentation_id, week, cutoff, length_days.
    """
    chosen = "" if weeks is None else f"AND w.week IN ({', '.join(str(int(w)) for w in weeks) or 'NULL'})"
    return query(
        f"""
        SELECT r.student_id, r.module_id, r.presentation_id, CAST(w.week AS BIGINT) AS week,
               CAST(7 * w.week AS BIGINT) AS cutoff, p.length_days
        FROM registrations r JOIN presentations p USING (module_id, presentation_id)
        CROSS JOIN (SELECT unnest(generate_series(
                        1, greatest(1, (SELECT max(length_days) FROM presentations) // 7))) AS week) AS w
        WHERE 7 * w.week <= p.length_days
          AND coalesce(r.registration_day, -1) < 7 * w.week
          AND (r.unregistration_day IS NULL OR r.unregistration_day >= 7 * w.week)
          {chosen}
        ORDER BY r.module_id, r.presentation_id, w.week, r.student_id""",
        engine,
        registrations=registrations,
        presentations=presentations,
    )
