"""Where a data folder stands in time: the date its data reaches, what ran then and what had ended.

A folder says nothing of the day it was exported, but its activity does: the **data date** is the
latest date any activity reaches (each presentation's start plus its last day of activity). Scoring
reads it to find the presentations running on that date, and training to find those that had not
ended, whose outcomes are not all known. Any calendar works: nothing here assumes terms, intakes or
a year's shape, only each presentation's own start date and length in days.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

import pandas as pd

from waymark.models.data.contract import FINAL_RESULTS, OUTCOMES_PENDING_SHARE
from waymark.models.features.query import Engine, query

PRESENTATION = ["module_id", "presentation_id"]
#: The outcomes a registration reaches by staying to the end.
COMPLETED_OR_FAILED = tuple(r for r in FINAL_RESULTS if r != "withdrawn")

#: The last day of activity each presentation's data reaches, on either engine (``query``).
LAST_DAY_SQL = (
    "SELECT module_id, presentation_id, max(day) AS last_day FROM activity "
    "WHERE module_id IS NOT NULL AND presentation_id IS NOT NULL GROUP BY ALL"
)


#: ``LAST_DAY_SQL`` over a validated folder's typed activity view (``t_activity``, ``models.data``).
TYPED_LAST_DAY_SQL = f"WITH activity AS (SELECT * FROM t_activity) {LAST_DAY_SQL}"


def last_activity_day(activity: Any, *, engine: Engine | None = None) -> Any:
    """``LAST_DAY_SQL`` over ``activity`` on ``engine`` (DuckDB over a pandas frame when None)."""
    if isinstance(activity, pd.DataFrame):
        activity = activity[[*PRESENTATION, "day"]]
    else:
        activity = activity.select(*PRESENTATION, "day")
    return query(LAST_DAY_SQL, engine, activity=activity)


#: The presentations with a registration whose outcome is not known yet, on either engine (``query``).
OPEN_OUTCOMES_SQL = (
    "SELECT DISTINCT module_id, presentation_id FROM registrations WHERE final_result IS NULL "
    "AND module_id IS NOT NULL AND presentation_id IS NOT NULL"
)


def open_outcomes(registrations: Any, *, engine: Engine | None = None) -> Any:
    """``OPEN_OUTCOMES_SQL`` over ``registrations`` on ``engine`` (DuckDB over a pandas frame when None)."""
    columns = [*PRESENTATION, "final_result"]
    narrow = (
        registrations[columns] if isinstance(registrations, pd.DataFrame) else registrations.select(*columns)
    )
    return query(OPEN_OUTCOMES_SQL, engine, registrations=narrow)


def _starts(presentations: pd.DataFrame) -> pd.Series:
    return pd.to_datetime(presentations["start_date"]).dt.normalize()


def _ends(presentations: pd.DataFrame) -> pd.Series:
    """The first day after each presentation: its start plus its ``length_days``."""
    return _starts(presentations) + pd.to_timedelta(pd.to_numeric(presentations["length_days"]), unit="D")


def data_date(presentations: pd.DataFrame, last_days: pd.DataFrame) -> date | None:
    """The latest date the activity reaches, from ``LAST_DAY_SQL``'s rows; None without any activity."""
    keys = presentations[[*PRESENTATION, "start_date"]].astype({"module_id": str, "presentation_id": str})
    found = last_days.astype({"module_id": str, "presentation_id": str}).merge(keys, on=PRESENTATION)
    reached = _starts(found) + pd.to_timedelta(pd.to_numeric(found["last_day"]), unit="D")
    latest = reached.max()
    return None if pd.isna(latest) else latest.date()


def days_into(presentations: pd.DataFrame, day: date) -> pd.Series:
    """Per presentation: ``day`` as a day of its own calendar (days since its start; day 0 is the start)."""
    days: pd.Series = (pd.Timestamp(day) - _starts(presentations)).dt.days
    return days


def running_on(presentations: pd.DataFrame, day: date) -> pd.Series:
    """Per presentation: whether ``day`` falls within it (from its start, for its ``length_days``)."""
    when = pd.Timestamp(day)
    return (_starts(presentations) <= when) & (when < _ends(presentations))


def ended_by(presentations: pd.DataFrame, day: date) -> pd.Series:
    """Per presentation: whether ``day`` reaches its last day.

    A term whose platform closes on its last day, the data's last, has ended.
    """
    return _ends(presentations) <= pd.Timestamp(day) + pd.Timedelta(days=1)


def without(frame: pd.DataFrame, presentations: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``frame`` outside ``presentations`` (module_id, presentation_id), compared as text."""
    if presentations.empty:
        return frame
    keys = pd.MultiIndex.from_frame(frame[PRESENTATION].astype(str))
    return frame[~keys.isin(pd.MultiIndex.from_frame(presentations[PRESENTATION].astype(str)))]


def unfinished(
    tables: Mapping[str, pd.DataFrame],
    *,
    last_days: pd.DataFrame | None = None,
    as_of: date | None = None,
) -> pd.DataFrame:
    """module_id, presentation_id of the presentations whose outcomes were not all known yet.

    ``tables`` holds the folder's ``presentations``, ``registrations`` and ``activity``; ``last_days``,
    ``LAST_DAY_SQL``'s rows when another engine read the activity (``tables`` then need not hold it);
    ``as_of``, the data date when ``tables`` hold some presentations only (the whole folder's date,
    ``data_date``; theirs alone could be earlier).

    Such a presentation had not ended on the data date (its last day after it: a term whose platform
    closes on its last day, the data's last, has ended) and has registrations with no
    ``final_result``, or none but withdrawals (an extract that leaves out those still studying); or
    it has more than ``OUTCOMES_PENDING_SHARE`` of them without one, ended or not (outcomes entered
    after an exam board). Its known outcomes are then mostly its early withdrawals, so it gives no
    labels: learning or testing on them would teach that everyone leaves. A presentation that had
    ended keeps its known outcomes when only a few were never recorded (deferrals, say).
    Without any activity there is no data date: only the share counts.
    """
    presentations, registrations = tables["presentations"], tables["registrations"]
    empty = pd.DataFrame({c: pd.Series(dtype=str) for c in PRESENTATION})
    as_text = {"module_id": str, "presentation_id": str}
    open_keys = pd.concat([open_outcomes(registrations), _withdrawals_only(registrations)]).astype(as_text)
    if open_keys.empty:
        return empty
    candidates = presentations.astype(as_text).merge(open_keys.drop_duplicates(), on=PRESENTATION)
    pending = candidates.merge(_pending_shares(registrations), on=PRESENTATION, how="left")
    left_out = (pending["pending"] > OUTCOMES_PENDING_SHARE).to_numpy(copy=True)
    day = as_of or data_date(
        presentations, last_activity_day(tables["activity"]) if last_days is None else last_days
    )
    if day is not None:
        left_out |= (~ended_by(candidates, day)).to_numpy()
    return candidates.loc[left_out, PRESENTATION].reset_index(drop=True)


def _withdrawals_only(registrations: pd.DataFrame) -> pd.DataFrame:
    """module_id, presentation_id of the presentations none of whose known outcomes is a completion."""
    keys = registrations[PRESENTATION].astype(str)
    finished = keys.assign(finished=registrations["final_result"].isin(COMPLETED_OR_FAILED).to_numpy())
    found = finished.groupby(PRESENTATION, as_index=False).agg(finished=("finished", "any"))
    return found.loc[~found["finished"], PRESENTATION]


def _pending_shares(registrations: pd.DataFrame) -> pd.DataFrame:
    """module_id, presentation_id and the share of its registrations with no ``final_result``."""
    keys = registrations[PRESENTATION].astype(str)
    pending = keys.assign(pending=registrations["final_result"].isna().to_numpy(dtype=float))
    shares: pd.DataFrame = pending.groupby(PRESENTATION, as_index=False).agg(pending=("pending", "mean"))
    return shares
