"""The synthetic cohort's student directory: invented names and addresses for outreach in the demo.

Drawn from a random stream of its own, so adding the directory changed no other synthetic table, and
independent of every protected characteristic (the names are not a proxy for anything). It is written
beside the data as ``directory.csv``, like ``access.csv``: it is not part of the data contract and no
feature reads it; ``waymark directory import`` loads it into the service database.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GIVEN = (
    "Alex", "Amara", "Ben", "Chen", "Dara", "Eilidh", "Femi", "Gwen", "Hana", "Idris", "Jun", "Kai",
    "Lena", "Marek", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sami", "Tomas", "Uma", "Wen", "Yusuf",
)  # fmt: skip
FAMILY = (
    "Adebayo", "Bell", "Costa", "Davies", "Evans", "Fraser", "Garcia", "Hughes", "Iqbal", "Jones",
    "Kowalski", "Li", "Murphy", "Nowak", "Okafor", "Patel", "Reid", "Singh", "Taylor", "Wong",
)  # fmt: skip
PRONOUNS = ("she/her", "he/him", "they/them", "")
COLUMNS = ("student_id", "display_name", "preferred_name", "pronouns", "email")


def directory_frame(rng: np.random.Generator, student_ids: np.ndarray) -> pd.DataFrame:
    """One invented directory entry per student."""
    n = len(student_ids)
    given = np.asarray(GIVEN)[rng.integers(0, len(GIVEN), size=n)]
    family = np.asarray(FAMILY)[rng.integers(0, len(FAMILY), size=n)]
    preferred = np.where(rng.random(n) < 0.15, np.asarray(GIVEN)[rng.integers(0, len(GIVEN), size=n)], "")
    number = np.char.lstrip(np.asarray(student_ids).astype(str), "S0")
    return pd.DataFrame(
        {
            "student_id": student_ids,
            "display_name": np.char.add(np.char.add(given, " "), family),
            "preferred_name": preferred,
            "pronouns": np.asarray(PRONOUNS)[rng.integers(0, len(PRONOUNS), size=n)],
            "email": [
                f"{g.lower()}.{f.lower()}.{k}@students.example.ac.uk"
                for g, f, k in zip(given, family, number, strict=True)
            ],
        },
        columns=list(COLUMNS),
    )
