"""The scale marks are shown on to staff and students (``WAYMARK_MARK_SCALE``).

Marks are kept 0 to 100 by the data contract, where the imports put the lowest and the highest mark of
the institution's scale (a mapping's ``out_of`` and ``add``). Explanations say them on the scale they
were given on.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class MarkScale:
    """The scale marks are shown on to staff and students (``WAYMARK_MARK_SCALE``).

    Marks are kept 0 to 100, where the imports put the lowest and the highest mark of the
    institution's scale (``out_of``, ``add``); a Chilean 4,0 pass kept as 50 read "50 out of 100", and
    staff who say a grade times ten read a fail. Shown on the scale it was given on, it reads "4.0
    on a scale of 1 to 7"; on a scale of at most 20 points, with one decimal.
    """

    lowest: float = 0.0
    highest: float = 100.0

    @classmethod
    def parse(cls, text: str) -> MarkScale:
        """``"1-7"``, ``"0 to 20"``: the lowest and the highest mark.

        Raises
        ------
        ValueError
            Unless two numbers, the lowest first, the highest above it.
        """
        parts = text.replace(" to ", "-").split("-")
        try:
            lowest, highest = (float(p.strip().replace(",", ".")) for p in parts)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a mark scale: give the lowest and the highest mark, as 0-100, 0-20 or 1-7"
            ) from None
        if not (math.isfinite(lowest) and math.isfinite(highest) and 0 <= lowest < highest):
            raise ValueError(f"{text!r}: the lowest mark must be at least 0 and below the highest")
        return cls(lowest, highest)

    def text(self, mark: float) -> str:
        """A mark kept 0 to 100 as said on this scale ("11.5 out of 20", "4.0 on a scale of 1 to 7")."""
        span = self.highest - self.lowest
        shown = mark if (self.lowest, self.highest) == (0.0, 100.0) else self.lowest + mark * span / 100
        value = f"{round(shown, 1):.1f}" if span <= 20 else str(round(shown))
        if self.lowest == 0:
            return f"{value} out of {_number(self.highest)}"
        return f"{value} on a scale of {_number(self.lowest)} to {_number(self.highest)}"


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"
