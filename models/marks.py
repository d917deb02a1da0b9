"""The scale marks are shown on to staff and students (``WAYMARK_MARK_SCALE``).

Marks are kept 0 to 100 by the data contract, 100 the best, where the imports put the worst and the best
mark of the institution's scale (a mapping's ``multiply``, ``add``, ``out_of`` or ``values``).
Explanations say them on the scale they were given on: a range (``0-20``, ``1-7``), a range whose best
mark is its lowest number (``1-5 reversed``, a German 1,0), or letter grades with the mark each is kept
as (``A=100, B=80, C=60, D=40, E=20, F=0``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

#: A grade's name: letters, digits, ``+``, ``-``, ``*``, and points, commas, colons, slashes and spaces
#: inside ("A+", "B-", "A*", "MB", "1st", "2:1", a German "2,3", a Philippine "1.25", "Matrícula de Honor").
_GRADE = re.compile(r"\w(?:[\w+\-*.,:/ ]{0,30}[\w+\-*])?")
#: Where between two grades an average is said as the nearer one ("about B") rather than between them.
_NEAR = 0.25


@dataclass(frozen=True)
class MarkScale:
    """The scale marks are shown on to staff and students (``WAYMARK_MARK_SCALE``).

    Marks are kept 0 to 100, where the imports put the worst and the best mark of the institution's
    scale; a Chilean 4,0 pass kept as 50 read "50 out of 100", and staff who say a grade times ten read
    a fail. Shown on the scale it was given on, it reads "4.0 on a scale of 1 to 7"; on a scale of at
    most 20 points, with one decimal. ``worst`` is the mark kept as 0 and ``best`` the one kept as 100:
    on a German scale, 5 and 1 ("2.3 on a scale of 1 to 5, 1 the best"). ``grades`` are letter grades,
    best first, each with the mark (0 to 100) the import keeps it as: an average is said as the grade
    it is near ("about B") or the two it lies between.
    """

    worst: float = 0.0
    best: float = 100.0
    grades: tuple[tuple[str, float], ...] = ()

    @classmethod
    def parse(cls, text: str) -> MarkScale:
        """A range (``"1-7"``, ``"0 to 20"``, ``"1-5 reversed"``) or grades (``"A=100, B=80, ..., F=0"``).

        Grades written with a decimal comma are separated by semicolons (``"1,0=100; 1,3=95; ..."``).

        Raises
        ------
        ValueError
            Unless two numbers, the lowest first, the highest above it, with ``reversed`` after them
            where the lowest is the best; or letter grades, each with a different mark from 0 to 100.
        """
        if "=" in text:
            return cls._letters(text)
        body = text.strip()
        reverse = body.lower().endswith(" reversed")
        body = body[: -len(" reversed")] if reverse else body
        parts = body.replace(" to ", "-").split("-")
        try:
            lowest, highest = (float(p.strip().replace(",", ".")) for p in parts)
        except ValueError:
            raise ValueError(
                f"{text!r} is not a mark scale: give the lowest and the highest mark, as 0-100, 0-20 or "
                "1-7 (with reversed after them where the lowest is the best: 1-5 reversed), or letter "
                "grades with the mark each is imported as (A=100, B=80, C=60, D=40, E=20, F=0)"
            ) from None
        if not (math.isfinite(lowest) and math.isfinite(highest) and 0 <= lowest < highest):
            raise ValueError(
                f"{text!r}: the lowest mark must be at least 0 and below the highest (a scale whose best "
                "mark is its lowest number is written lowest first, with reversed after it: 1-5 reversed)"
            )
        return cls(highest, lowest) if reverse else cls(lowest, highest)

    @classmethod
    def _letters(cls, text: str) -> MarkScale:
        grades: list[tuple[str, float]] = []
        # Grades written with a decimal comma ("1,0=100; 1,3=95") are separated by semicolons, and their
        # marks may have one too ("B=82,5; C=67,5").
        semicolons = ";" in text
        for item in text.split(";" if semicolons else ","):
            if not item.strip():  # a separator at the end
                continue
            name, _, mark = (part.strip() for part in item.partition("="))
            try:
                value = float(mark.replace(",", ".") if semicolons else mark)
            except ValueError:
                value = math.nan
            if not _GRADE.fullmatch(name) or not (math.isfinite(value) and 0 <= value <= 100):
                raise ValueError(
                    f"{text!r}: {item.strip()!r} is not a grade with the mark it is imported as: write each "
                    "grade (letters, digits, + - * : /) with a mark from 0 to 100, as A=100, B=80 (grades "
                    "written with a decimal comma separated by semicolons: 1,0=100; 1,3=95)"
                )
            grades.append((name, value))
        names = [name.casefold() for name, _ in grades]
        marks = [round(value, 1) for _, value in grades]  # told apart as an average is (``_grade``)
        if len(grades) < 2 or len(set(names)) < len(names) or len(set(marks)) < len(marks):
            raise ValueError(
                f"{text!r}: give at least two grades, each once and each with a mark of its own (the mark "
                "the import's values map gives it)"
            )
        ordered = tuple(sorted(grades, key=lambda grade: -grade[1]))
        return cls(ordered[-1][1], ordered[0][1], ordered)

    @property
    def out_of(self) -> bool:
        """Whether a mark is said "out of" the best (a range from 0 to its best, the best the highest)."""
        return not self.grades and self.worst == 0 and self.best > 0

    def text(self, mark: float) -> str:
        """A mark kept 0 to 100 as said on this scale ("11.5 out of 20", "4.0 on a scale of 1 to 7")."""
        mark = min(max(mark, 0.0), 100.0)  # a weighted mean of 100s can be 100.00000000000001
        if self.grades:
            best, worst = self.grades[0][0], self.grades[-1][0]
            return f"{self._grade(mark)} on a scale of {best} to {worst}, {best} the best"
        span = abs(self.best - self.worst)
        shown = (
            mark
            if (self.worst, self.best) == (0.0, 100.0)
            else self.worst + mark * (self.best - self.worst) / 100
        )
        value = f"{round(shown, 1) + 0.0:.1f}" if span <= 20 else str(round(shown))  # + 0.0: never "-0.0"
        if self.out_of:
            return f"{value} out of {_number(self.best)}"
        lowest, highest = sorted((self.worst, self.best))
        scale = f"{value} on a scale of {_number(lowest)} to {_number(highest)}"
        return scale if self.best > self.worst else f"{scale}, {_number(self.best)} the best"

    def _grade(self, mark: float) -> str:
        """The grade an average mark is ("B"), is near ("about B") or lies between ("between B and C").

        Beyond the worst grade's mark by more than a quarter of the gap to the next, it is "worse than" it
        (a scale whose worst grade is kept as 65 would otherwise say an average of 20 as "about" that
        grade), and beyond the best's "better than" it: "below 5.00" would read as better on a scale
        whose best grade is its lowest number.
        """
        exact = [name for name, value in self.grades if round(mark, 1) == round(value, 1)]
        if exact:
            return exact[0]
        above = [grade for grade in self.grades if grade[1] > mark]
        below = [grade for grade in self.grades if grade[1] < mark]
        if not below:  # under the worst grade's mark
            (worst, low), (_, next_up) = self.grades[-1], self.grades[-2]
            return f"about {worst}" if low - mark <= _NEAR * (next_up - low) else f"worse than {worst}"
        if not above:  # over the best grade's mark
            (best, high), (_, next_down) = self.grades[0], self.grades[1]
            return f"about {best}" if mark - high <= _NEAR * (high - next_down) else f"better than {best}"
        (better, high), (worse, low) = above[-1], below[0]
        where = (mark - low) / (high - low)
        if where <= _NEAR:
            return f"about {worse}"
        if where >= 1 - _NEAR:
            return f"about {better}"
        return f"between {better} and {worse}"


#: Marks said as they are kept: 0 to 100, "out of 100" (the default scale).
PERCENT = MarkScale()


def _number(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"
