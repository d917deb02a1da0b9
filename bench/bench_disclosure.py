"""How often a group's linked shares, read together beside its rounded counts, pin one of its counts.

A group's selection rate, false negative rate, false positive rate and precision rest on the same four
cells (students ``n``, of whom ``p`` needed support, ``s`` on the list, ``t`` both). Each is published
on its step (``fairness.disclosure``) beside ``n`` and ``p`` rounded to 5. For a group of about N
students of whom about P needed support, this lists every (n, p, s, t) a reader cannot rule out from
the rounded counts alone (every list size with at least ten on it and ten off it), publishes each as
the audit would, and counts the tuples whose published figures leave only one possible value of a
count (of any, then of each). It also prints the same with every linked share one
step coarser, and with only two of them published, for comparison. Run: ``python
bench/bench_disclosure.py`` (about a minute).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from waymark.fairness.disclosure import rests_on, rounded_count, share_step

ROUNDING, MIN_SIZE = 5, 10
GROUPS = [(40, 15), (60, 20), (100, 30), (150, 50), (300, 100)]
COARSER = {0.01: 0.02, 0.02: 0.05, 0.05: 0.1, 0.1: 0.2}
Figures = dict[str, np.ndarray]
Rule = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int, int], Figures]


def on(values: np.ndarray, step: np.ndarray | float) -> np.ndarray:
    return np.round(np.floor(values / step + 0.5) * step, 4)


def candidates(shown_n: int, shown_p: int) -> np.ndarray:
    """Every (n, p, s, t) the rounded counts allow, with at least MIN_SIZE on the list and off it."""
    rows = []
    for n in range(shown_n - 2, shown_n + 3):
        for p in range(shown_p - 2, shown_p + 3):
            if rounded_count(n, ROUNDING) != shown_n or rounded_count(p, ROUNDING) != shown_p:
                continue
            if p < MIN_SIZE or n - p < MIN_SIZE:
                continue
            for s in range(MIN_SIZE, n - MIN_SIZE + 1):
                t = np.arange(max(0, s + p - n), min(s, p) + 1)
                rows.append(np.c_[np.full(t.size, n), np.full(t.size, p), np.full(t.size, s), t])
    return np.vstack(rows).astype(float)


def published(coarser: int, shares: tuple[str, ...]) -> Rule:
    def rule(
        n: np.ndarray, p: np.ndarray, s: np.ndarray, t: np.ndarray, shown_n: int, shown_p: int
    ) -> Figures:
        def step_of(metric: str, selected: int = 0) -> float:  # as the report steps it
            least = rests_on(metric, students=shown_n, positives=shown_p, selected=selected, step=ROUNDING)
            return share_step(least)

        step = step_of("selection_rate")
        listed = np.array([step_of("precision", int(x)) for x in s])
        for _ in range(coarser):
            step = COARSER[step]
            listed = np.array([COARSER[round(x, 2)] for x in listed])
        figures = {
            "selection_rate": on(s / n, step),
            "false_negative_rate": on((p - t) / p, step),
            "false_positive_rate": on((s - t) / (n - p), step),
            "precision": on(t / s, listed),
        }
        return {name: figures[name] for name in shares}

    return rule


def pinned(shown_n: int, shown_p: int, rule: Rule) -> dict[str, float]:
    """Of every (n, p, s, t) the rounded counts allow, the share whose published figures pin each count."""
    n, p, s, t = candidates(shown_n, shown_p).T
    frame = pd.DataFrame(rule(n, p, s, t, shown_n, shown_p))
    keys = list(frame.columns)
    frame = frame.assign(n=n, p=p, s=s, t=t)
    values = frame.groupby(keys)[["n", "p", "s", "t"]].transform("nunique") == 1
    return {"any": float(values.any(axis=1).mean()), **{c: float(values[c].mean()) for c in "npst"}}


def main() -> None:
    four = ("selection_rate", "false_negative_rate", "false_positive_rate", "precision")
    rules = {
        "as published (four shares)": published(0, four),
        "every share one step coarser": published(1, four),
        "selection and miss rates only": published(0, four[:2]),
    }
    print("Share of the (n, p, s, t) a group's rounded counts allow whose published figures pin a count:")
    print("n students, p needed support (both published rounded to 5), s on the list, t on it and needing it")
    for name, rule in rules.items():
        print(f"  {name}")
        for shown_n, shown_p in GROUPS:
            share = pinned(shown_n, shown_p, rule)
            counts = "  ".join(f"{c} {share[c]:6.1%}" for c in ("any", *"npst"))
            print(f"    about {shown_n:3d} students, {shown_p:3d} needed support: {counts}")


if __name__ == "__main__":
    main()
