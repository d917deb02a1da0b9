"""Retraining that does not learn its own effect: registrations whose outcome outreach may have changed.

A student contacted because their estimate was high, who then completed, teaches a naive model that
students like them complete: the next model's estimates for such students fall, fewer of them are
contacted, and the support that worked is withdrawn. The training configuration's
``intervention_policy`` says what to do with a registration contacted before its outcome was known:

- ``ignore``: train on it as it is (the outcome as observed, outreach and all);
- ``exclude_after_contact``: leave it out of training; the model learns from registrations whose
  outcome no outreach touched (unbiased when whom to contact was decided from what the model sees);
- ``weight``: leave it out, and weight each registration left in by the inverse of its chance of
  not having been contacted, so the remaining students also stand for the contacted ones like them
  (inverse probability of censoring weighting).

The evaluation on later presentations is not changed: it measures what happened to those students.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

POLICIES = ("ignore", "exclude_after_contact", "weight")
REGISTRATION = ["student_id", "module_id", "presentation_id"]
MAX_WEIGHT = 10.0  # a few nearly-certain contacts must not carry the whole model


@dataclass(frozen=True)
class Censoring:
    """What the policy did to the training rows."""

    policy: str
    contacted_registrations: int  # training registrations contacted before their outcome
    rows_left_out: int
    largest_weight: float = 1.0

    def params(self) -> dict[str, str | int | float]:
        """As MLflow run params (the policy itself is logged with the config)."""
        return {
            "interventions_registrations": self.contacted_registrations,
            "interventions_rows_left_out": self.rows_left_out,
            "interventions_largest_weight": round(self.largest_weight, 4),
        }


def contact_days(
    interventions: pd.DataFrame, *, registrations: pd.DataFrame, presentations: pd.DataFrame
) -> pd.DataFrame:
    """The first contact with each registration, as a day of its presentation.

    Parameters
    ----------
    interventions
        ``student_id`` and ``contacted_on`` (a date): when outreach reached the student.
    registrations, presentations
        The contract tables.

    Returns
    -------
    pandas.DataFrame
        ``student_id, module_id, presentation_id, contact_day`` for each registration running on the
        day of a contact (day 0 to its last, ``length_days - 1``), its first contact only.
    """
    joined = (
        interventions.assign(contacted_on=pd.to_datetime(interventions["contacted_on"]))
        .merge(registrations[REGISTRATION], on="student_id")
        .merge(presentations, on=["module_id", "presentation_id"])
    )
    day = (joined["contacted_on"] - pd.to_datetime(joined["start_date"])).dt.days
    running = (day >= 0) & (day < joined["length_days"])
    found = joined.loc[running, REGISTRATION].assign(contact_day=day[running].astype(int))
    return found.groupby(REGISTRATION, as_index=False).agg(contact_day=("contact_day", "min"))


def touched(rows: pd.DataFrame, contacts: pd.DataFrame) -> np.ndarray:
    """Rows of registrations contacted before their outcome (or with no outcome day: completed)."""
    day = rows[REGISTRATION].merge(contacts, on=REGISTRATION, how="left")["contact_day"].to_numpy()
    outcome = rows["outcome_day"].to_numpy(dtype=np.float64)
    out: np.ndarray = ~np.isnan(day) & (np.isnan(outcome) | (day < outcome))
    return out


def censor(
    rows: pd.DataFrame, contacts: pd.DataFrame, *, policy: str, features: list[str], seed: int = 0
) -> tuple[np.ndarray, np.ndarray, Censoring]:
    """Which training rows to keep and with what weight, under ``policy``.

    Parameters
    ----------
    rows
        Training rows: registration keys, ``outcome_day`` and the ``features``.
    contacts
        Output of :func:`contact_days`.
    policy
        One of ``POLICIES``.
    features
        The columns the chance of contact is estimated from (``weight``).
    seed
        For the contact model.

    Returns
    -------
    tuple
        A boolean mask of rows kept, their weights (1 outside ``weight``), and what was done.
    """
    if policy not in POLICIES:
        raise ValueError(f"intervention_policy {policy!r} must be one of: {', '.join(POLICIES)}")
    hit = touched(rows, contacts)
    registrations = int(rows.loc[hit, REGISTRATION].drop_duplicates().shape[0])
    if policy == "ignore" or not hit.any():
        return np.ones(len(rows), dtype=bool), np.ones(len(rows)), Censoring(policy, registrations, 0)
    weights = np.ones(len(rows))
    if policy == "weight":
        weights = _inverse_chance_not_contacted(rows[features].to_numpy(dtype=np.float64), hit, seed=seed)
    largest = float(weights[~hit].max()) if (~hit).any() else 1.0
    return ~hit, weights, Censoring(policy, registrations, int(hit.sum()), largest)


def _inverse_chance_not_contacted(x: np.ndarray, hit: np.ndarray, *, seed: int) -> np.ndarray:
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    chance_contacted = model.fit(np.nan_to_num(x), hit).predict_proba(np.nan_to_num(x))[:, 1]
    out: np.ndarray = np.minimum(1.0 / np.clip(1.0 - chance_contacted, 1e-6, None), MAX_WEIGHT)
    return out
