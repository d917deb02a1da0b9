"""A characteristic's groups written two ways: one group audited as two (a warning).

Records staff type the same value with its accents placed otherwise or left out: a Vietnamese
university's "Thanh Hóa" (103 students) and "Thanh Hoá" (53), the old and the new placing of the tone
mark, which Unicode does not treat as one text, were audited as two provinces, the smaller one's
figures withheld. Values that are one once case and accents are set aside (``folding.folded``) are
named together, with the value map that makes them one.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence

from waymark.models.data.findings import Finding
from waymark.models.data.sqltext import ident
from waymark.models.folding import folded


def written_values_sql(column: str) -> str:
    """SQL: each written value of a characteristic and its rows (DuckDB and Spark alike)."""
    c = ident(column)
    return (
        f"SELECT trim(CAST({c} AS VARCHAR)) AS value, count(*) AS n FROM raw_protected_characteristics "
        f"WHERE {c} IS NOT NULL AND trim(CAST({c} AS VARCHAR)) <> '' GROUP BY trim(CAST({c} AS VARCHAR))"
    )


def spelled_two_ways(column: str, counted: Iterable[Sequence[object]]) -> list[Finding]:
    """A warning naming the values of ``column`` that differ only in case or accents (none if no such)."""
    spellings: dict[str, dict[str, int]] = defaultdict(dict)
    for value, n in counted:
        spellings[folded(str(value))][str(value)] = int(str(n))
    alike = [sorted(s.items(), key=lambda vn: (-vn[1], vn[0])) for s in spellings.values() if len(s) > 1]
    if not alike:
        return []
    alike.sort(key=lambda group: (-sum(n for _, n in group), group[0][0]))
    first = alike[0]
    mapped = ", ".join(f'"{v}" = "{first[0][0]}"' for v, _ in first[1:])
    fix = f"map them to one spelling (values = {{ {mapped} }}, keep_unmapped = true)"
    if len({unicodedata.normalize("NFC", v) for v, _ in first}) == 1:  # one text, its accents stored two ways
        fix = (
            "they are one text with its accents stored two ways (Unicode's composed and decomposed forms, "
            "as files saved on a Mac are): import the files through a mapping, which reads every cell "
            "composed"
        )
    message = (
        f"{column!r} holds values written two ways that differ only in case or accents: the fairness "
        "audit reads each spelling as a group of its own, splitting one group in two (and a half may "
        f"then be too small to show). If they are one group, {fix}"
    )
    listed = tuple((v, n) for group in alike for v, n in group)
    return [
        Finding(
            "protected_characteristics",
            "spelled_two_ways",
            message,
            column=column,
            count=sum(n for _, n in listed),
            severity="warning",
            values=listed[:10],
            distinct_values=len(listed),
        )
    ]
