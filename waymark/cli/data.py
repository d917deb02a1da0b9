"""``waymark data``: generate, import and check data folders in the contract."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from waymark.cli.console import OutputFormat, out
from waymark.cli.data_import import NumbersSecretFile, import_cmd
from waymark.cli.engine_options import (
    EngineName,
    EngineOption,
    SparkMasterOption,
    data_location,
    spark_session_for,
)
from waymark.cli.errors import fail, handled
from waymark.models.data import folder_fingerprint, memo, validate_folder
from waymark.models.data.erase import erase_from_folder
from waymark.models.data.quality import quality_report
from waymark.models.data.validation import DEFAULT_MAX_EXAMPLES, connect
from waymark.models.pseudonyms import is_pseudonym, key_id
from waymark.training.ingest.oulad import import_oulad
from waymark.training.ingest.synthetic import SynthConfig, generate
from waymark.training.ingest.synthetic_people import Disparity

app = typer.Typer(help="Import, generate and check data in the Waymark contract.", no_args_is_help=True)
app.command("import")(import_cmd)


@app.command("synth")
def synth_cmd(
    students: Annotated[int, typer.Option(help="Number of students.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
    *,
    out_dir: Annotated[Path, typer.Option("--out", help="Destination folder.")] = Path("data/synth"),
    disparity: Annotated[
        float,
        typer.Option(
            help="Extra log-odds of not completing for the disparity group, invisible to features "
            "(0: none). Gives fairness tests a known answer."
        ),
    ] = 0.0,
    disparity_attribute: Annotated[
        str, typer.Option(help="Protected attribute of the group.")
    ] = "disability",
    disparity_group: Annotated[str, typer.Option(help="Value of that attribute.")] = "Y",
    validate: Annotated[
        bool, typer.Option(help="Check the result against the contract before publishing it.")
    ] = True,
) -> None:
    """Generate a synthetic cohort in the data contract, plus access.csv."""
    config = SynthConfig(
        students=students, seed=seed, disparity=Disparity(disparity_attribute, disparity_group, disparity)
    )
    synthesise(out_dir, config, validate=validate)


def synthesise(out_dir: Path, config: SynthConfig, *, validate: bool = True) -> None:
    """Write a synthetic cohort to ``out_dir`` (checked against the contract first when ``validate``)."""
    start = time.perf_counter()
    with (
        handled(contract="generated data broke the contract; nothing was written", also=(ValueError,)),
        out.status(f"Generating {config.students:,} students"),
    ):
        passed = memo.Validation() if validate else None
        summary = generate(out_dir, config, check=passed)
    if passed is not None:
        passed.remember(out_dir)  # its first reader need not check it again
    seconds = time.perf_counter() - start
    out.print(
        f"Wrote {out_dir}: "
        + ", ".join(f"{k} {v:,}" for k, v in summary.rows.items())
        + f" ({summary.total_rows / seconds:,.0f} rows/s)",
        highlight=False,
    )


@app.command("import-oulad")
def import_oulad_cmd(
    src: Annotated[Path, typer.Argument(help="OULAD folder: official CSV release or Parquet copy.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Destination folder.")] = Path("data/oulad"),
) -> None:
    """Import the Open University Learning Analytics Dataset into the data contract."""
    import_cohort(src, out_dir)


def import_cohort(src: Path, out_dir: Path) -> None:
    """Import OULAD from ``src`` into ``out_dir``."""
    with (
        handled(contract="the import broke the contract; nothing was written"),
        out.status("Importing OULAD"),
    ):
        summary = import_oulad(src, out_dir)
    out.print(
        f"Wrote {out_dir}: "
        + ", ".join(f"{k} {v:,}" for k, v in summary.rows.items())
        + f"; total activity count {summary.total_count:,}",
        highlight=False,
    )


@app.command("erase")
def erase_cmd(
    folder: Annotated[Path, typer.Argument(help="A data folder Waymark wrote (a local folder).")],
    *,
    secret_file: NumbersSecretFile = None,
) -> None:
    """Remove every student whose erasure the DPO processed from a data folder, in every table and file.

    Erased students are already left out of training, audits and scoring; this takes their rows out
    of the folder itself (run it after each import too: an import writes what the export holds).
    """
    # here, not at the top: the other data commands load no service or model library (test_cli_errors)
    from waymark.models.settings import get_settings
    from waymark.service.db.engine import opened
    from waymark.service.scoring.publish import erased_students, folder_key
    from waymark.training.ingest.mapping.pseudonyms import SecretError, id_pseudonymiser, read_secret_file

    if not folder.is_dir():
        raise fail(f"{folder} is not a folder: give the data folder an import wrote")
    settings = get_settings()
    with handled(
        contract="the folder without them would break the contract; nothing was changed", also=(SecretError,)
    ):
        key = folder_key(folder)
        if key and secret_file is None and any(folder.rglob("*.csv")):
            # its directory or relationship files hold student numbers as the institution writes them
            raise fail(
                f"{folder}'s ids are pseudonyms, and its CSV files hold student numbers as the "
                "institution writes them: give the secret the imports used (--secret-file) so that an "
                "erased student is found in them too; nothing was changed"
            )
        erased = erased_students(opened(settings), key=key)
        pseudonym = id_pseudonymiser(read_secret_file(secret_file)) if secret_file else None
        done = erase_from_folder(folder, erased, pseudonym=pseudonym)
    if not done.changed:
        out.print(f"No erased student is in {folder}: nothing was changed.", highlight=False)
        return
    rows = ", ".join(f"{name} {n:,}" for name, n in sorted(done.rows.items()))
    out.print(
        f"Removed {done.students:,} erased student{'s' if done.students != 1 else ''} from {folder} "
        f"(rows: {rows}).",
        highlight=False,
    )


@app.command("subject-access")
def subject_access_cmd(
    folder: Annotated[Path, typer.Argument(help="The data folder an import wrote (a local folder).")],
    *,
    student: Annotated[
        str, typer.Option(help="The student, by their number (or by their id in the records).")
    ],
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the copy (JSON).")],
    secret_file: NumbersSecretFile = None,
) -> None:
    """The DPO's copy for a subject access request: the database's records and the data folder's rows.

    Protected characteristics are not copied out (they are read only by the fairness audit): the copy
    names which the folder holds for the student. The copy is recorded in the student's access log.
    """
    # here, not at the top: the other data commands load no service or model library (test_cli_errors)
    from waymark.models.settings import get_settings
    from waymark.service import audit
    from waymark.service.db.engine import opened
    from waymark.service.outreach import OutreachError, load_options
    from waymark.service.scoring.publish import folder_key
    from waymark.service.security import ConfigurationError, StudentIds
    from waymark.service.subject_access import subject_access
    from waymark.training.ingest.mapping.pseudonyms import SecretError, id_pseudonymiser, read_secret_file

    if not folder.is_dir():
        raise fail(f"{folder} is not a folder: give the data folder an import wrote")
    settings = get_settings()
    with handled(also=(SecretError, OutreachError, ConfigurationError)):
        key = folder_key(folder)
        secret = read_secret_file(secret_file) if secret_file and key else None  # none needed without a key
        if key and secret is None:
            raise fail(
                f"{folder}'s ids are pseudonyms: give the secret the imports used (--secret-file), so that "
                "the student's number finds their rows; nothing was written"
            )
        if secret is not None and key_id(secret) != key:
            raise fail(
                f"the secret given is not the one {folder}'s ids were made with (the folder's key is {key}, "
                f"the secret's {key_id(secret)}): the student's number would find none of their rows; "
                "nothing was written"
            )
        pseudonym = id_pseudonymiser(secret) if secret is not None else None
        # A number as sign-in reads it (WAYMARK_STUDENT_ID_CASE, _REMOVE, _REPLACE, _PAD ...): the form
        # the imports wrote. A DPO typing a student's sign-in number 23000374 where the records pad it
        # to 0023000374 had found nothing, and the copy would have said nothing was held.
        number = student if is_pseudonym(student) else StudentIds(settings).written(student)
        student_id = pseudonym(number) if pseudonym is not None and not is_pseudonym(number) else number
        copy = subject_access(
            opened(settings),
            audit.load_key(settings),
            student_id=student_id,
            folder=folder,
            pseudonym=pseudonym,
            caller=audit.operator(settings),
            kept=load_options(settings.outreach_file).kept,
        )
    out_file.write_text(json.dumps(copy, indent=2, default=str) + "\n", encoding="utf-8")
    found = sum(len(rows) for rows in copy["database"].values()) + sum(
        len(rows) for rows in copy["data_folder"].values()
    )
    out.print(
        f"Wrote {out_file}: {found:,} records of {student} ({len(copy['data_folder'])} file"
        f"{'' if len(copy['data_folder']) == 1 else 's'} of the data folder, and the service database); "
        "the copy is recorded in the student's access log.",
        highlight=False,
    )


@app.command("validate")
def validate_cmd(
    folder: Annotated[
        str, typer.Argument(help="Data folder to check (with --engine spark, also a Hadoop URI: s3a://...).")
    ],
    *,
    output: Annotated[
        OutputFormat, typer.Option("--format", help="table (for people) or json (for scripts).")
    ] = OutputFormat.TABLE,
    as_json: Annotated[bool, typer.Option("--json", help="The same as --format json.")] = False,
    max_examples: Annotated[
        int, typer.Option(help="Rows listed per broken rule (all are counted; 0 lists all).")
    ] = DEFAULT_MAX_EXAMPLES,
    engine: EngineOption = EngineName.DUCKDB,
    spark_master: SparkMasterOption = None,
) -> None:
    """Check a data folder against the contract and report on its quality."""
    as_json = as_json or output is OutputFormat.JSON
    data_location(folder, engine, option="FOLDER")  # a URI only with --engine spark
    with handled():
        session = spark_session_for(engine, spark_master)
    if session is None:
        check(Path(folder), as_json=as_json, max_examples=max_examples)
    else:
        check_on_spark(folder, session, as_json=as_json, max_examples=max_examples)


def check(folder: Path, *, as_json: bool = False, max_examples: int = DEFAULT_MAX_EXAMPLES) -> None:
    """Report on ``folder`` against the contract, and on its quality; exit 1 when it breaks the contract."""
    con, fingerprint = connect(), folder_fingerprint(folder) if folder.is_dir() else ""
    report = validate_folder(folder, max_examples=max_examples, con=con)
    quality = quality_report(con) if report.ok else None
    if report.ok and folder_fingerprint(folder) == fingerprint:  # later readers need not check it again
        memo.remember(folder, fingerprint=fingerprint)
    if as_json:
        payload = report.to_dict()
        payload["quality"] = quality.to_dict() if quality else None
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        out.print(report.to_text(max_examples=min(max_examples or 10**9, 20)), highlight=False, markup=False)
        if quality:
            out.print("\n" + quality.to_text(), highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(1)


def check_on_spark(
    folder: str, session: Any, *, as_json: bool = False, max_examples: int = DEFAULT_MAX_EXAMPLES
) -> None:
    """``check`` with the contract rules run on Spark; the quality report is DuckDB's alone, so not given.

    Exits 1 when the folder breaks the contract. A folder that passes is not remembered as valid
    (``memo``): later DuckDB readers check it themselves.
    """
    from waymark.models.spark.validation import validate_folder as validate_on_spark

    report = validate_on_spark(folder, session, max_examples=max_examples)
    if as_json:
        payload = report.to_dict()
        payload["quality"] = None
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        out.print(report.to_text(max_examples=min(max_examples or 10**9, 20)), highlight=False, markup=False)
    if not report.ok:
        raise typer.Exit(1)
