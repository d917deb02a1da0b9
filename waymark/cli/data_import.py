"""``waymark data import``: exports from the institution's systems into the contract, as a mapping says."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated
from zoneinfo import available_timezones

import typer

from waymark.cli.console import OutputFormat, err, out
from waymark.cli.errors import BROKEN, fail, handled
from waymark.models.data import ContractViolation
from waymark.training.ingest.mapping.formats.export_errors import ExportFormatError
from waymark.training.ingest.mapping.importer import (
    BLIND_DRY_RUN,
    ImportResult,
    MappingDataError,
    import_mapped,
)
from waymark.training.ingest.mapping.pseudonyms import secret_for
from waymark.training.ingest.mapping.schema import Mapping, MappingError, load_mapping
from waymark.training.ingest.mappings import ready_mappings

SECRET_ENV = "WAYMARK_PSEUDONYM_SECRET_FILE"  # noqa: S105 (the name of a variable naming a file)
#: ``--secret-file`` of the commands that read student numbers from the records system (directory,
#: access): each is replaced by the pseudonym the data imports gave it.
NumbersSecretFile = Annotated[
    Path | None,
    typer.Option(
        "--secret-file",
        envvar=SECRET_ENV,
        help="The pseudonymisation secret the data imports used: FILE then gives student numbers, "
        "and each is replaced by the same pseudonym as in the data folder.",
    ),
]


def import_cmd(
    sources: Annotated[list[Path], typer.Argument(help="Export files, or folders holding them.")],
    *,
    mapping: Annotated[
        Path,
        typer.Option(
            "--mapping",
            help="The mapping file (TOML; docs/mapping.md), or the name of a ready mapping "
            "(docs/ready-mappings.md): " + ", ".join(ready_mappings()) + ".",
        ),
    ],
    out_dir: Annotated[Path, typer.Option("--out", help="Destination data folder.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Report what the mapping covers; write nothing.")
    ] = False,
    append: Annotated[
        bool, typer.Option("--append", help="Add this extract to the existing folder (rows replace by key).")
    ] = False,
    retire_missing: Annotated[
        list[str] | None,
        typer.Option(
            "--retire-missing",
            help="With --append: remove the folder's rows of TABLE (registrations or assessments) of each "
            "presentation this extract lists that it no longer holds (deleted in the source system). "
            "Repeatable. Without it they are kept, and counted.",
        ),
    ] = None,
    replace: Annotated[
        bool,
        typer.Option(
            "--replace",
            help="Replace a folder that appended extracts or other mappings filled with this import alone.",
        ),
    ] = False,
    secret_file: Annotated[
        Path | None,
        typer.Option(
            "--secret-file", envvar=SECRET_ENV, help="File holding the pseudonymisation secret (>= 32 bytes)."
        ),
    ] = None,
    timezone: Annotated[
        str | None,
        typer.Option(
            "--timezone",
            envvar="WAYMARK_TIMEZONE",
            help="The institution's time zone (an IANA name such as Australia/Sydney): days are counted in "
            "it. Replaces the mapping's (the ready mappings say Europe/London).",
        ),
    ] = None,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table (for people) or json (for scripts).")
    ] = OutputFormat.TABLE,
) -> None:
    """Import exports into the data contract as a mapping file says (staged, checked, then published)."""
    try:
        with handled(
            contract="the import broke the contract; nothing was written",
            also=(MappingError, ExportFormatError),
        ):
            checked = in_zone(load_mapping(mapping_file(mapping)), timezone)  # MappingError names the file
            # A dry run writes nothing: without a secret it pseudonymises with a throwaway one.
            secret = secret_for(checked, secret_file=secret_file) if secret_file or not dry_run else None
            with out.status(f"Importing with mapping {checked.name}"):
                result = import_mapped(
                    checked,
                    sources,
                    out=out_dir,
                    secret=secret,
                    dry_run=dry_run,
                    append=append,
                    retire=frozenset(retire_missing or ()),
                    replace_folder=replace,
                )
    except MappingDataError as exc:
        if output is OutputFormat.JSON:
            typer.echo(json.dumps(exc.coverage.to_dict(), indent=2))
        else:
            err.print(exc.coverage.to_text(), highlight=False, markup=False)
        raise fail(
            f"the exports do not fit the mapping (above): nothing was written to {out_dir}", BROKEN
        ) from exc
    as_json = output is OutputFormat.JSON
    _report(result, out_dir=out_dir, as_json=as_json, dry_run=dry_run, zone=result.timezone)
    if not result.coverage.ok:  # a dry run: the import would be refused for the same problems
        raise fail("the exports do not fit the mapping (above): a dry run writes nothing", BROKEN)
    if result.refused is not None:  # a dry run: the import would be refused by the contract
        with handled(contract="the import would break the contract; a dry run writes nothing"):
            raise ContractViolation(result.refused)


def in_zone(mapping: Mapping, timezone: str | None) -> Mapping:
    """``mapping`` counting days in ``timezone`` (the one ``--timezone`` gives), else as it says."""
    if timezone is None:
        return mapping
    if timezone not in available_timezones():
        raise MappingError(f"--timezone {timezone!r} is not a time zone (an IANA name such as Europe/London)")
    return mapping.model_copy(update={"timezone": timezone})


def mapping_file(given: Path) -> Path:
    """The mapping file ``given`` names: a path, else a ready mapping's name (a file of that name wins)."""
    ready = ready_mappings()
    if given.exists() or given.suffix:
        return given
    if str(given) in ready:
        return ready[str(given)]
    raise MappingError(
        f"{given}: no such mapping file, and no ready mapping has that name (ready mappings: "
        + ", ".join(ready)
        + ")"
    )


def _changes(n: dict[str, int], table: str = "") -> str:
    """What this import did to a table: its rows added, replaced and unchanged, or that it kept it."""
    if not (n["added"] or n["replaced"] or n["unchanged"]):
        return "none in this import: kept as it was" if n["total"] else "none"
    said = f"{n['added']:,} added, {n['replaced']:,} replaced, {n['unchanged']:,} unchanged"
    if n.get("lowered") and n.get("lowered_first") == n["lowered"]:
        said += (
            f" ({n['lowered']:,} of the replaced with fewer actions on their day than the folder held, all "
            "on the first day this import holds of their presentation: an increment that starts part-way "
            "through a local day, cut at midnight UTC say, replaces the folder's whole day with its part; "
            "start each increment at local midnight, docs/mapping.md)"
        )
    elif n.get("lowered"):
        said += (
            f" ({n['lowered']:,} of the replaced with fewer actions on their day than the folder held: an "
            "export that keeps only each item's latest visit rewrites earlier days on every extract, "
            "docs/mapping.md)"
        )
    if n.get("late"):
        said += (
            f" ({n['late']:,} of the added on days the folder's activity had already reached: actions "
            "recorded late, an app syncing what it stored offline say; a run scored before them counted "
            "the last 14 days without them, so score that week again, docs/ready-mappings.md)"
        )
    if not n.get("absent"):
        return said
    rows, are = ("row", "is") if n["absent"] == 1 else ("rows", "are")
    gone = f"{said}; {n['absent']:,} earlier {rows} of presentations it lists {are} no longer in it"
    if "held" not in n:  # not asked to retire them
        return f"{gone}: kept (--retire-missing removes them)"
    kept = f", {n['held']:,} kept because activity or results name them" if n["held"] else ""
    if kept and table == "registrations":
        kept += (
            " (each ended the day after its last activity or submission, unless the folder gave it a "
            "day: not scored after it, and not learnt from without an outcome, docs/mapping.md)"
        )
    return f"{gone}: {n['retired']:,} retired{kept}"


def _report(result: ImportResult, *, out_dir: Path, as_json: bool, dry_run: bool, zone: str) -> None:
    warnings = [asdict(w) for w in result.warnings]
    if as_json:
        body = {
            "coverage": result.coverage.to_dict(),
            "written": result.written,
            "warnings": warnings,
            "timezone": zone,
            "notes": list(result.notes),
            "contract_errors": [asdict(f) for f in result.refused.findings] if result.refused else [],
        }
        typer.echo(json.dumps(body, indent=2, default=str))
        return
    out.print(result.coverage.to_text(), highlight=False, markup=False)
    out.print(f"Times are read as {zone} time, and days counted in it (--timezone to change).", markup=False)
    if not (dry_run or result.written is None):
        lines = [
            f"  {table}: {n['total']:,} rows ({_changes(n, table)})" for table, n in result.written.items()
        ]
        out.print(f"Wrote {out_dir}:\n" + "\n".join(lines), highlight=False, markup=False)
    for note in result.notes:
        out.print(note, highlight=False, markup=False)
    if result.warnings:
        said = "1 warning" if len(result.warnings) == 1 else f"{len(result.warnings)} warnings"
        valid = (
            "" if result.refused else " (the folder would be valid)" if dry_run else " (the folder is valid)"
        )
        out.print(f"{said} from the contract{valid}:", highlight=False)
        for warning in result.warnings:
            out.print(warning.describe(), highlight=False, markup=False)
    if dry_run or result.written is None:
        checked = (
            " and the contract's rules" if result.coverage.ok and BLIND_DRY_RUN not in result.notes else ""
        )
        out.print(f"Dry run: every mapping rule{checked} ran; nothing was written.", highlight=False)
