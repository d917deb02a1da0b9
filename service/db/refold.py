"""Students' names folded again for search by a migration, when ``folding.folded`` learns new letters."""

from __future__ import annotations

import sqlalchemy as sa

from waymark.service.db.schema import search_key


def refold_search_names(bind: sa.Connection) -> None:
    """Write each directory entry's ``search_name`` as ``search_key`` makes it now, where it differs."""
    directory = sa.table(
        "student_directory",
        sa.column("student_id", sa.String),
        sa.column("display_name", sa.String),
        sa.column("preferred_name", sa.String),
        sa.column("search_name", sa.String),
    )
    rows = bind.execute(
        sa.select(
            directory.c.student_id,
            directory.c.display_name,
            directory.c.preferred_name,
            directory.c.search_name,
        )
    )
    changed = [
        {"key": s, "refolded": folded} for s, d, p, before in rows if (folded := search_key(d, p)) != before
    ]
    if changed:
        bind.execute(
            directory.update()
            .where(directory.c.student_id == sa.bindparam("key"))
            .values(search_name=sa.bindparam("refolded")),
            changed,
        )
