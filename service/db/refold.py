"""Students' names folded again for search by a migration, when ``folding.folded`` learns new letters."""

from __future__ import annotations

import sqlalchemy as sa

from waymark.service.db.schema import search_key

#: The names a search key is made of, in order; ``other_name`` from revision 0025 on.
NAMES = ("display_name", "preferred_name", "other_name")


def refold_search_names(bind: sa.Connection) -> None:
    """Write each directory entry's ``search_name`` as ``search_key`` makes it now, where it differs.

    Only the name columns the table has at this revision are read (a migration before 0025 runs it
    on a table without ``other_name``; one after must keep it in the key).
    """
    present = {c["name"] for c in sa.inspect(bind).get_columns("student_directory")}
    names = [n for n in NAMES if n in present]
    directory = sa.table(
        "student_directory",
        sa.column("student_id", sa.String),
        sa.column("search_name", sa.String),
        *(sa.column(n, sa.String) for n in names),
    )
    rows = bind.execute(
        sa.select(directory.c.student_id, directory.c.search_name, *(directory.c[n] for n in names))
    )
    changed = [
        {"key": row[0], "refolded": folded} for row in rows if (folded := search_key(*row[2:])) != row[1]
    ]
    if changed:
        bind.execute(
            directory.update()
            .where(directory.c.student_id == sa.bindparam("key"))
            .values(search_name=sa.bindparam("refolded")),
            changed,
        )
