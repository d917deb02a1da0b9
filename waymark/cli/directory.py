"""``waymark directory``: how to address and reach students, for outreach (service database only)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from waymark.cli.console import out
from waymark.cli.data_import import NumbersSecretFile
from waymark.cli.errors import fail, handled
from waymark.models.data import load_learning_data
from waymark.models.settings import get_settings
from waymark.service.db.engine import opened
from waymark.service.directory import import_directory, known_students
from waymark.training.ingest.mapping.pseudonyms import SecretError, id_pseudonymiser, read_secret_file

app = typer.Typer(help="The student directory: names and contacts for outreach.", no_args_is_help=True)


@app.command("import")
def import_cmd(
    file: Annotated[
        Path, typer.Argument(help="CSV: student_id,display_name,preferred_name,pronouns,email[,other_name].")
    ],
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Data folder whose students the entries may name (default: the students already "
            "scored or given a relationship in the service database).",
        ),
    ] = None,
    *,
    secret_file: NumbersSecretFile = None,
) -> None:
    """Replace the student directory with FILE (all or nothing; every bad row is named)."""
    from waymark.service.scoring.publish import folder_key  # here: it loads the model's libraries

    engine = opened(get_settings())
    if data is not None and secret_file is None and data.is_dir() and folder_key(data):
        # every row would be refused as unknown: the file's numbers against the folder's pseudonyms
        raise fail(
            f"{data}'s ids are pseudonyms: give the secret the imports used (--secret-file), so that each "
            "entry's student number finds its student; nothing was imported"
        )
    with handled(contract="the data folder breaks the contract; nothing was imported", also=(SecretError,)):
        pseudonym = id_pseudonymiser(read_secret_file(secret_file)) if secret_file else None
        known = frozenset(load_learning_data(data).students["student_id"]) if data else known_students(engine)
        done = import_directory(engine, file, known=known, pseudonym=pseudonym)
    skipped = f"; {done.skipped_erased:,} erased students left out" if done.skipped_erased else ""
    if done.layout_removed:
        skipped += (
            f"; invisible direction controls (embeddings, isolates) removed from {done.layout_removed:,} "
            "field(s): the pages set each name's direction themselves"
        )
    out.print(f"Loaded {done.loaded:,} directory entries{skipped}.")
