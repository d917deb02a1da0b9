"""What could change an indicator: the smallest change in one actionable family that moves it materially.

For each family a student could act on, the student's values of that family's features are replaced
by those of a real peer on the same module at the same week: first a typical peer (the median of the
cohort's contributions from that family), then one from the quarter it weighs most favourably. The
model scores the changed row exactly. The first step at which some family lowers the estimate by at least
``MATERIAL`` wins; within it, the family that lowers it most. A peer whose values would be said in the
same words as the student's own is passed over for the next best (the model weighed values the words do
not say: "if this were like that of another student (active in 3 of the 8 weeks)" to a student active
in 3 of 8 offers no change anyone could make). Only families that raise this student's
indicator are tried, and never a characteristic of the person: only actionable families exist here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from waymark.models.bundle import ModelBundle

MATERIAL = 0.05  # a change of at least 5 percentage points
# The median peer by contribution is not said to be typical: its values can be anything but (an online
# university's cohort of 16 read "a typical student on this module at this point (more activity so far
# than about 38% of students on the module)"); its values, said beside it, show what it did.
# Nor is the lower quarter said to be "more engaged": a peer is chosen by what the model makes of the
# family's values together, and a Jordanian university's staff read "one of the module's more engaged
# students (more activity so far than about 14% of students)" beside the student's own 47%.
STEPS = (
    (0.5, "another student on this module at this point"),
    (0.25, "a student on this module whose values the model weighs more favourably at this point"),
)


def without_peer(sentence: str) -> str:
    """A what-could-change sentence without the peer's values in brackets, for the student's own view.

    The values are one real classmate's (their counts, their average mark): staff who read the module's
    students may see them; a student reading their own indicator does not (in a cohort of five, a
    friend's average mark could be told).
    """
    end = sentence.rfind("), the estimate would be")
    for _, who in STEPS:
        start = sentence.find(f"that of {who} (")
        if 0 <= start < end:
            return sentence[: start + len(f"that of {who}")] + sentence[end + 1 :]
    return sentence


@dataclass(frozen=True)
class Change:
    """Best single-family change for each row (family -1 where none is material)."""

    family: np.ndarray  # index into the families tried, -1 for none
    step: np.ndarray  # index into STEPS
    peer: np.ndarray  # row whose values were borrowed
    probability: np.ndarray  # estimate after the change


class Differs(Protocol):
    """Which lent values would be said otherwise than a row's own."""

    def __call__(self, f: int, rows: np.ndarray, *, peers: np.ndarray) -> np.ndarray:
        """Per row of ``rows``, whether its peer's values of family ``f`` read otherwise than its own."""
        ...


def _peers(
    sums: np.ndarray, group: np.ndarray, *, q: float, eligible: np.ndarray | None = None
) -> np.ndarray:
    """For each row, the row at quantile ``q`` of ``sums`` within its group (-1 where it has none).

    With ``eligible``, only those rows are peers: a student with a low mark was offered the marks of a
    typical peer with no mark yet ("no mark counted yet"), which nobody can act to have.
    """
    n = len(sums)
    among = np.arange(n) if eligible is None else np.flatnonzero(eligible)
    out = np.full(n, -1, dtype=np.int64)
    if not len(among):
        return out
    order = np.lexsort((sums[among], group[among]))
    groups, starts, sizes = np.unique(group[among][order], return_index=True, return_counts=True)
    pick = among[order[starts + np.floor(q * (sizes - 1)).astype(np.int64)]]
    at = np.minimum(np.searchsorted(groups, group), len(groups) - 1)
    found = groups[at] == group
    out[found] = pick[at[found]]
    return out


def smallest_change(
    bundle: ModelBundle,
    x: np.ndarray,
    *,
    probability: np.ndarray,
    group: np.ndarray,
    sums: list[np.ndarray],
    columns: list[np.ndarray],
    candidate: np.ndarray,
    eligible: list[np.ndarray | None] | None = None,
    differs: Differs | None = None,
) -> Change:
    """Search the steps and families; ``candidate[i, f]`` says whether family f may be tried for row i.

    ``eligible[f]``, when given and not None, says which rows may lend family f's values (``_peers``);
    ``differs``, when given, which lent values would be said otherwise than the row's own.
    """
    n = len(x)
    best = Change(np.full(n, -1), np.zeros(n, np.int64), np.zeros(n, np.int64), probability.copy())
    undecided = np.ones(n, dtype=bool)
    for s, (q, _) in enumerate(STEPS):
        gain = np.zeros(n)
        for f, (fam_sums, cols) in enumerate(zip(sums, columns, strict=True)):
            peer = _peers(fam_sums, group, q=q, eligible=eligible[f] if eligible else None)
            lent = np.where(peer >= 0, fam_sums[np.maximum(peer, 0)], np.inf)
            rows = np.flatnonzero(undecided & candidate[:, f] & (fam_sums > lent + 1e-9))
            if len(rows) == 0:
                continue
            changed = x[rows].copy()
            changed[:, cols] = x[peer[rows]][:, cols]
            after = bundle.probability(changed)
            better = (probability[rows] - after >= MATERIAL) & (probability[rows] - after > gain[rows])
            hit, after = rows[better], after[better]
            if differs is not None and len(hit):
                said_otherwise = differs(f, hit, peers=peer[hit])
                hit, after = hit[said_otherwise], after[said_otherwise]
            gain[hit] = probability[hit] - after
            best.family[hit], best.step[hit], best.peer[hit] = f, s, peer[hit]
            best.probability[hit] = after
        undecided &= gain == 0
    return best
