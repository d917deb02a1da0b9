"""Insert-or-update in one statement, so two first writes of the same row never collide.

Reading a row and then inserting it when absent races: two requests both see nothing, both insert,
and one fails on the primary key. ``INSERT ... ON CONFLICT DO UPDATE`` (PostgreSQL and SQLite) lets
the database settle it; the later write wins, as it would have had the requests arrived one by one.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from waymark.service.db.schema import Base


def upsert(session: Session, model: type[Base], *, values: Mapping[str, Any], update: Iterable[str]) -> None:
    """Insert a ``model`` row of ``values``; if its primary key exists, set only the ``update`` columns."""
    table = cast(Table, model.__table__)
    keys = [column.name for column in table.primary_key]
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        pg = postgresql.insert(table).values(**values)
        session.execute(
            pg.on_conflict_do_update(index_elements=keys, set_={c: pg.excluded[c] for c in update})
        )
    elif dialect == "sqlite":
        lite = sqlite.insert(table).values(**values)
        session.execute(
            lite.on_conflict_do_update(index_elements=keys, set_={c: lite.excluded[c] for c in update})
        )
    else:
        raise NotImplementedError(f"upsert is not written for {dialect}")
