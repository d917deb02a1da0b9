"""Staff feedback on indicators, read back for the people who train the next model (issue #17, item 5).

Each piece of feedback is counted under its module presentation and under every factor family its
indicator showed (an indicator showing two factors counts for both), so a data scientist can see
which explanations staff found useful or not applicable, and where. Counts only: no student, no
member of staff and no free-text note leaves the database (a note may name someone); how many pieces
of feedback carried a note is counted.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, select

from waymark.models.features.catalogue import FAMILIES
from waymark.service import objections
from waymark.service.db.engine import transaction
from waymark.service.db.schema import Feedback, Indicator

NO_FACTOR = "(no factor shown)"


def feedback_summary(engine: Engine, *, since: datetime | None = None) -> dict[str, Any]:
    """Feedback counted by value, by module presentation and by factor family.

    Parameters
    ----------
    engine
        The service database.
    since
        Only feedback given at or after this moment (all when None).

    Returns
    -------
    dict
        ``total``, ``with_note``, ``by_value``, ``by_module`` (module -> value -> count) and
        ``by_family`` (family -> {"title", value -> count}); feedback whose indicator was removed by
        retention counts under its module but not under a family.
    """
    rows = _rows(engine, since=since)
    by_value: Counter[str] = Counter()
    by_module: dict[str, Counter[str]] = {}
    by_family: dict[str, Counter[str]] = {}
    for value, _note, module, pres, factors in rows:
        by_value[value] += 1
        by_module.setdefault(f"{module}/{pres}", Counter())[value] += 1
        families = {f["family"] for f in factors or []} if factors is not None else set()
        for family in sorted(families) or ([NO_FACTOR] if factors is not None else []):
            by_family.setdefault(family, Counter())[value] += 1
    return {
        "since": since.isoformat() if since else None,
        "total": sum(by_value.values()),
        "with_note": sum(1 for _, note, *_ in rows if note),
        "by_value": dict(by_value),
        "by_module": {m: dict(c) for m, c in sorted(by_module.items())},
        "by_family": {
            f: {"title": FAMILIES[f].title if f in FAMILIES else f, **dict(c)}
            for f, c in sorted(by_family.items())
        },
    }


def _rows(engine: Engine, *, since: datetime | None) -> list[tuple[str, str, str, str, Any]]:
    joined = and_(
        Indicator.run_id == Feedback.run_id,
        Indicator.student_id == Feedback.student_id,
        Indicator.module_id == Feedback.module_id,
        Indicator.presentation_id == Feedback.presentation_id,
    )
    # a restricted student's feedback is stored, not processed (``objections.not_restricted``)
    query = (
        select(Feedback.value, Feedback.note, Feedback.module_id, Feedback.presentation_id, Indicator.factors)
        .outerjoin(Indicator, joined)
        .where(objections.not_restricted(Feedback.student_id))
    )
    if since is not None:
        query = query.where(Feedback.at >= since)
    with transaction(engine) as session:
        return [tuple(r) for r in session.execute(query).all()]
