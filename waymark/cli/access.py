"""``waymark access``: load who supports whom and their information-security training; who builds models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from waymark.cli.console import out
from waymark.cli.data_import import NumbersSecretFile
from waymark.cli.errors import handled
from waymark.models.data import LearningData, load_learning_data
from waymark.models.settings import get_settings
from waymark.service.db.engine import opened
from waymark.service.db.schema import HoldingClearance
from waymark.service.grants import import_attestations, import_grants, scored_students, unknown_tutees
from waymark.training.ingest.mapping.pseudonyms import SecretError, id_pseudonymiser, read_secret_file

app = typer.Typer(help="Staff relationships: who supports whom.", no_args_is_help=True)


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="CSV: staff_id,relationship,scope_type,scope_id.")],
    *,
    attestations: Annotated[
        Path | None, typer.Option(help="CSV staff_id,expires_on of information-security training.")
    ] = None,
    data: Annotated[
        Path | None,
        typer.Option(
            "--data",
            help="Data folder whose students the relationships should name (default: the students "
            "already scored in the service database).",
        ),
    ] = None,
    secret_file: NumbersSecretFile = None,
) -> None:
    """Replace the staff relationships with those in FILE (all or nothing).

    With --data, a file none of whose student relationships names a student of the folder is refused;
    otherwise students not held yet are loaded and counted (a student not scored yet, or one who left).
    """
    engine = opened(get_settings())
    with handled(contract="the data folder breaks the contract; nothing was imported", also=(SecretError,)):
        pseudonym = id_pseudonymiser(read_secret_file(secret_file)) if secret_file else None
        folder = load_learning_data(data) if data else None
        known = frozenset(folder.students["student_id"]) if folder is not None else scored_students(engine)
        # Checked strictly against a data folder; against the students scored so far (a new intake
        # is not scored yet) the unmatched are only counted.
        loaded = import_grants(engine, file, pseudonym=pseudonym, known=known, strict=data is not None)
        trained = import_attestations(engine, attestations) if attestations else 0
    out.print(
        f"Loaded {loaded:,} staff relationships"
        + (f" and {trained:,} attestations." if attestations else ".")
    )
    if folder is not None:
        _scopes_naming_nothing(file, folder)
    unknown = unknown_tutees(engine, known) if known else []
    if unknown:
        named = "1 student named is" if len(unknown) == 1 else f"{len(unknown):,} students named are"
        where = "in the data folder" if data else "among the students scored so far"
        written = _as_written(file, pseudonym) if pseudonym else {}
        example = written.get(unknown[0], unknown[0])  # as the file writes it, not its pseudonym
        out.print(
            f"{named} not {where} (for example {example}): nothing is shown for them until they are.",
            highlight=False,
        )
        otherwise = _written_otherwise(unknown, written, pseudonym=pseudonym, known=known) if pseudonym else 0
        if pseudonym and otherwise:
            shown = next(
                written[u]
                for u in unknown
                if u in written and _as_imported(written[u], pseudonym=pseudonym, known=known) is not None
            )
            out.print(
                f"{otherwise:,} of them would be when case or leading zeros are ignored ({shown} as "
                f"{_as_imported(shown, pseudonym=pseudonym, known=known)}): the file writes student numbers "
                "otherwise than the data imports did. If the file writes them as the records system does "
                "(as sign-in gives them), bring the data mapping to that form instead (pad, case, prefix, "
                "replace: docs/bring-your-own-data.md, One form for every student number) and import the "
                "data again: until then those students find no record of their own when they sign in.",
                highlight=False,
            )


@app.command("holdings")
def holdings_cmd() -> None:
    """Who is recorded holding the data scientist's role, and the holdings cleared, with why.

    A person recorded so may not approve a model (docs/fairness.md); the database owner clears a
    holding that no longer stands with `waymark access clear-holding`.
    """
    from waymark.service import roles_held

    with handled():
        held, cleared = roles_held.listed(opened(get_settings()))
    lines = [
        f"{h.staff_id}: holds the data scientist's role (first seen {h.first_seen_at:%Y-%m-%d}, last seen "
        f"{h.last_seen_at:%Y-%m-%d})"
        for h in held
    ]
    for line in (lines or ["Nobody is recorded holding the data scientist's role."]) + [
        _clearance(c) for c in cleared
    ]:
        out.print(line, highlight=False, markup=False)


def _clearance(c: HoldingClearance) -> str:
    """One clearance as `waymark access holdings` lists it."""
    as_user = f" (database user {c.database_user})" if c.database_user else ""
    how = "recorded in error, its earlier approvals counted again" if c.in_error else "no longer held"
    return (
        f"{c.staff_id}: held it from {c.first_seen_at:%Y-%m-%d} to {c.last_seen_at:%Y-%m-%d}, cleared "
        f"{c.cleared_at:%Y-%m-%d %H:%M} by {c.cleared_by}{as_user} as {how}: {c.reason}"
    )


@app.command("clear-holding")
def clear_holding_cmd(
    staff_id: Annotated[str, typer.Argument(help="The staff id recorded (`waymark access holdings`).")],
    *,
    reason: Annotated[str, typer.Option(help="Why the holding no longer stands; kept with the clearance.")],
    recorded_in_error: Annotated[
        bool,
        typer.Option(
            "--recorded-in-error",
            help="The holding never stood (a wrong WAYMARK_OPERATOR, a role given by mistake): the "
            "approvals it held back count again.",
        ),
    ] = False,
) -> None:
    """Clear a person's holding of the data scientist's role, keeping who cleared it, when and why.

    For someone who no longer builds models: their approvals from now on count, those given before
    stay uncounted. With --recorded-in-error, those count again too. Run as the database owner (the
    service's role may not), by someone other than the person recorded (WAYMARK_OPERATOR names who
    runs it); the access log records it.
    """
    from waymark.service import audit, roles_held

    settings = get_settings()
    caller = audit.operator(settings)
    with handled(also=(roles_held.MayNotClear, roles_held.NoHolding)):
        done = roles_held.clear_holding(
            opened(settings),
            audit.load_key(settings),
            staff_id=staff_id,
            reason=reason,
            caller=caller,
            in_error=recorded_in_error,
        )
    given = done.approvals_given
    ids = ", ".join(done.staff_ids)
    if not given:
        counted = " They have given no approval as an ethics reviewer."
    elif recorded_in_error:
        counted = f" The {given} approval(s) they have given as an ethics reviewer count again."
    else:
        counted = (
            f" The {given} approval(s) they have given as an ethics reviewer stay uncounted (given while "
            "they may have built the models reviewed); their approvals from now on count."
        )
    out.print(
        f"Cleared {ids}'s holding of the data scientist's role; the clearance, its reason and "
        f"{caller.sub} are kept (`waymark access holdings`) and the access log records it.{counted}",
        highlight=False,
        markup=False,
    )


def _scopes_naming_nothing(file: Path, folder: LearningData) -> None:
    """Say which module, programme or school scopes name nothing in the folder (loaded all the same).

    A conservatoire's programme leader for its second programme saw no student, its joint students
    kept under their first: the grant loaded without a word. A misspelt module code does the same.
    """
    frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    if not {"scope_type", "scope_id"} <= set(frame.columns):
        return
    held = {
        "module": set(folder.registrations["module_id"].astype(str)),
        "programme": set(folder.students.get("programme_id", pd.Series(dtype=str)).dropna().astype(str)),
        "school": set(folder.students.get("school_id", pd.Series(dtype=str)).dropna().astype(str)),
    }
    for scope, ids in held.items():
        named = frame.loc[frame["scope_type"].str.strip() == scope, "scope_id"].str.strip()
        missing = sorted(set(named) - ids - {""})
        if missing:
            some = ", ".join(missing[:3]) + (f" and {len(missing) - 3:,} more" if len(missing) > 3 else "")
            scopes = f"{len(missing):,} {scope} scopes name" if len(missing) > 1 else f"1 {scope} scope names"
            out.print(
                f"{scopes} no {scope} of the data folder ({some}): staff holding only these see no "
                "student until it does (a code written otherwise than the data's, or a student's second "
                "programme, which the data keeps one of).",
                highlight=False,
            )
    if "presentation_id" in frame.columns:
        _presentations_naming_nothing(frame, folder)


def _presentations_naming_nothing(frame: pd.DataFrame, folder: LearningData) -> None:
    """Say which module relationships name a presentation no registration is on (loaded all the same)."""
    module = frame["scope_type"].str.strip() == "module"
    given = frame[module & (frame["presentation_id"].str.strip() != "")]
    pairs = set(zip(given["scope_id"].str.strip(), given["presentation_id"].str.strip(), strict=True))
    held = folder.registrations[["module_id", "presentation_id"]].astype(str)
    unknown = sorted(pairs - set(zip(held["module_id"], held["presentation_id"], strict=True)))
    if not unknown:
        return
    some = ", ".join(f"{m} {p}" for m, p in unknown[:3])
    some += f" and {len(unknown) - 3:,} more" if len(unknown) > 3 else ""
    which = (
        "1 module relationship names" if len(unknown) == 1 else f"{len(unknown):,} module relationships name"
    )
    out.print(
        f"{which} a presentation no registration of the data folder is on ({some}): staff holding only "
        "these see no student until it is (a presentation code written otherwise than the data's).",
        highlight=False,
    )


def _as_written(file: Path, pseudonym: Callable[[str], str]) -> dict[str, str]:
    """Each student relationship's pseudonym, to the student number as the file writes it."""
    frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    if not {"scope_type", "scope_id"} <= set(frame.columns):
        return {}
    ids = frame.loc[frame["scope_type"].str.strip() == "student", "scope_id"].str.strip()
    return {pseudonym(v): v for v in ids if v}


#: The widest student number whose leading zeros a spreadsheet may have dropped.
_PADDED_TO = 12


def _as_imported(number: str, *, pseudonym: Callable[[str], str], known: frozenset[str]) -> str | None:
    """The number as the data imports wrote it, when only its case or leading zeros differ (else None).

    A spreadsheet drops the leading zeros of a student number (0098765 read as 98765); an export may
    write letters in another case. Tried by pseudonym, since the folder holds no student number.
    """
    padded = (number.rjust(width, "0") for width in range(len(number) + 1, _PADDED_TO + 1))
    variants = (number.upper(), number.lower(), number.lstrip("0"), *padded)
    return next((v for v in variants if v and v != number and pseudonym(v) in known), None)


def _written_otherwise(
    unknown: list[str], written: dict[str, str], *, pseudonym: Callable[[str], str], known: frozenset[str]
) -> int:
    """How many unknown students their number in another case, or with its leading zeros, would make known."""
    numbers = (written[u] for u in unknown if u in written)
    return sum(_as_imported(n, pseudonym=pseudonym, known=known) is not None for n in numbers)
