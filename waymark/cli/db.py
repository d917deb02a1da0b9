"""``waymark db``: the service database's schema, for whoever upgrades a deployment (the owner's role).

Every command and the service apply pending migrations when they open the database; these commands let
an operator do it at a time they choose, see where a database stands without changing it, and print the
grants of the service's own role, which may not migrate (docs/operations.md, Upgrading).
"""

from __future__ import annotations

from importlib.resources import files

import typer

from waymark.cli.console import out
from waymark.cli.errors import BROKEN, fail, handled
from waymark.models.settings import get_settings
from waymark.service.db.engine import (
    engine_for,
    mark_production,
    missing_file,
    named_url,
    revisions,
    upgrade,
)

app = typer.Typer(help="The service database's schema: migrations and grants.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd() -> None:
    """Apply the migrations this release holds and the database lacks (run as the database's owner)."""
    settings = get_settings()
    with handled():
        engine = engine_for(named_url(settings))
        before = upgrade(engine)
        if not settings.development:
            mark_production(engine)
    if before.up_to_date:
        out.print(f"The database is up to date at revision {before.head}; nothing to apply.", highlight=False)
        return
    applied = "\n".join(f"  {described}" for described in before.pending)
    out.print(
        f"The database was {before.where}; applied {len(before.pending)} migration(s), now at revision "
        f"{before.head}:\n{applied}\nOn PostgreSQL, apply the grants again: waymark db grants | psql ...",
        highlight=False,
    )


@app.command("status")
def status_cmd() -> None:
    """Say where the schema stands against this release, changing nothing; exit 1 while some are pending."""
    with handled():
        url = named_url(get_settings())
        if missing := missing_file(url):
            raise fail(f"there is no database at {missing} (WAYMARK_DATABASE_URL): nothing to report")
        found = revisions(engine_for(url))
    if not found.known:
        raise fail(found.newer_release())
    if found.up_to_date:
        out.print(f"The database is up to date at revision {found.head}.", highlight=False)
        return
    pending = "\n".join(f"  {described}" for described in found.pending)
    out.print(
        f"The database is {found.where}; this release holds {len(found.pending)} migration(s) it lacks "
        f"(`waymark db upgrade` as the owner applies them):\n{pending}",
        highlight=False,
    )
    raise typer.Exit(BROKEN)


@app.command("grants")
def grants_cmd() -> None:
    """Print the PostgreSQL grants of the service's own role (waymark_app), to apply after every upgrade."""
    typer.echo(files("waymark.service.db").joinpath("grants.sql").read_text(encoding="utf-8"), nl=False)
