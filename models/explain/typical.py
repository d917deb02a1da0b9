"""What sets a student apart from their module cohort at a week, one family at a time.

A family's contribution compares the student with the students the model was trained on, not with
their own module. Something true of everybody on the module at that point (no marks yet for anyone,
no assessment due yet) can then carry a large contribution for every student alike; shown as each
student's factor it would read as if it were about them. So, within each module presentation and week
(the cohort):

- the student is **typical** in a family when each of the family's features equals the cohort's
  median; a typical student's family is never their factor or strength;
- a family is **shared** when at least ``NEARLY_ALL`` of the cohort are typical in it: then, for its
  typical students, it is a fact about the cohort, said once as context;
- a cohort of fewer than ``MIN_COHORT`` students has no meaningful median, and saying what it has in
  common would tell staff about its few other students: nothing is said of it as context. A family
  every one of its students has alike (nothing marked yet for any of them) sets none of them apart; a
  family that only compares a student with the cohort (``COMPARED_WITH_COHORT``) has nothing to compare
  with; every other family sets its students apart, as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from waymark.models.features.catalogue import COMPARED_WITH_COHORT, MIN_COHORT

NEARLY_ALL = 0.95


@dataclass(frozen=True)
class Standing:
    """One family's standing for each row."""

    apart: np.ndarray  # bool: the row's values of the family differ from its cohort's median
    shared: (
        np.ndarray
    )  # the share of the cohort typical in the family, where it is shared and the row typical; else 0


def cohort_standing(
    x: np.ndarray, *, group: np.ndarray, columns: dict[str, np.ndarray]
) -> dict[str, Standing]:
    """Each family's standing for every row of ``x``.

    Parameters
    ----------
    x
        Feature matrix (rows by the model's features).
    group
        Cohort code per row (module presentation and week), 0..G-1.
    columns
        For each family, the positions of its features in ``x``.

    Returns
    -------
    dict
        Family -> ``Standing``.
    """
    sizes = np.bincount(group)
    small = in_small_cohort(group)
    return {
        family: _standing(
            x[:, cols], group=group, sizes=sizes, small=small, compares=family in COMPARED_WITH_COHORT
        )
        for family, cols in columns.items()
    }


def in_small_cohort(group: np.ndarray) -> np.ndarray:
    """Per row: whether its cohort (``group``, 0..G-1) has fewer than ``MIN_COHORT`` students."""
    small: np.ndarray = np.bincount(group)[group] < MIN_COHORT
    return small


def _standing(
    values: np.ndarray, *, group: np.ndarray, sizes: np.ndarray, small: np.ndarray, compares: bool
) -> Standing:
    median = pd.DataFrame(values).groupby(group).median().reindex(range(len(sizes))).to_numpy()
    typical = np.isclose(values, median[group], rtol=1e-9, atol=1e-9).all(axis=1)
    share = (np.bincount(group, weights=typical, minlength=len(sizes)) / np.maximum(sizes, 1))[group]
    shared = typical & ~small & (share >= NEARLY_ALL)
    # Every student typical is every student alike (each equals the median); one student alone is not.
    alike = (share >= 1) & (sizes[group] > 1)
    small_apart = ~(alike | compares)
    return Standing(apart=np.where(small, small_apart, ~typical), shared=np.where(shared, share, 0.0))
