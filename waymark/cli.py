"""The ``waymark`` command line (PRODUCT §7). Thin: it parses, calls a package, and reports."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from models.data import ContractViolation, OutputFolderError, validate_folder
from models.data.quality import quality_report
from models.data.validation import DEFAULT_MAX_EXAMPLES, connect
from training.ingest.oulad import OuladSourceError, import_oulad
from training.ingest.synthetic import SynthConfig, generate
from training.ingest.synthetic_people import Disparity

app = typer.Typer(
    help="Waymark: early-warning learning analytics that never labels students.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Import, generate and check data in the Waymark contract.", no_args_is_help=True)
app.add_typer(data_app, name="data")
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[bold]error:[/bold] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def _validate_or_raise(folder: Path) -> None:
    report = validate_folder(folder)
    if not report.ok:
        raise ContractViolation(report)


@data_app.command("synth")
def synth(
    students: Annotated[int, typer.Option(help="Number of students.")] = 2000,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same files.")] = 0,
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
    start = time.perf_counter()
    try:
        with out.status(f"Generating {students:,} students"):
            summary = generate(out_dir, config, _validate_or_raise if validate else None)
    except (OutputFolderError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    except ContractViolation as exc:
        err.print(exc.report.to_text(), highlight=False)
        raise _fail("generated data broke the contract; nothing was written", 1) from exc
    seconds = time.perf_counter() - start
    out.print(
        f"Wrote {out_dir}: "
        + ", ".join(f"{k} {v:,}" for k, v in summary.rows.items())
        + f" ({summary.total_rows / seconds:,.0f} rows/s)",
        highlight=False,
    )


@data_app.command("import-oulad")
def import_oulad_cmd(
    src: Annotated[Path, typer.Argument(help="OULAD folder: official CSV release or Parquet copy.")],
    out_dir: Annotated[Path, typer.Option("--out", help="Destination folder.")] = Path("data/oulad"),
) -> None:
    """Import the Open University Learning Analytics Dataset into the data contract."""
    try:
        with out.status("Importing OULAD"):
            summary = import_oulad(src, out_dir)
    except (OuladSourceError, OutputFolderError) as exc:
        raise _fail(str(exc)) from exc
    except ContractViolation as exc:
        err.print(exc.report.to_text(), highlight=False)
        raise _fail("the import broke the contract; nothing was written", 1) from exc
    out.print(
        f"Wrote {out_dir}: "
        + ", ".join(f"{k} {v:,}" for k, v in summary.rows.items())
        + f"; total activity count {summary.total_count:,}",
        highlight=False,
    )


@data_app.command("validate")
def validate_cmd(
    folder: Annotated[Path, typer.Argument(help="Data folder to check.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    max_examples: Annotated[
        int, typer.Option(help="Rows listed per broken rule (all are counted; 0 lists all).")
    ] = DEFAULT_MAX_EXAMPLES,
) -> None:
    """Check a data folder against the contract and report on its quality."""
    con = connect()
    report = validate_folder(folder, max_examples=max_examples, con=con)
    quality = quality_report(con) if report.ok else None
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


@app.command("demo")
def demo(
    workdir: Annotated[Path, typer.Option(help="Folder for the demo's data and stores.")] = Path("demo"),
    students: Annotated[int, typer.Option(help="Synthetic students.")] = 4000,
    serve: Annotated[bool, typer.Option(help="Start the service at the end.")] = True,
) -> None:
    """Run the whole pipeline on a synthetic cohort (the steps built so far), then serve."""
    data_dir = workdir / "data"
    synth(
        students=students,
        seed=7,
        out_dir=data_dir,
        disparity=0.0,
        disparity_attribute="disability",
        disparity_group="Y",
        validate=True,
    )
    validate_cmd(data_dir, as_json=False, max_examples=DEFAULT_MAX_EXAMPLES)
    if serve:
        serve_cmd()


@app.command("serve")
def serve_cmd(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8000,
) -> None:
    """Run the HTTP service."""
    import uvicorn

    out.print(f"Waymark is listening on http://{host}:{port} (health: /health)")
    uvicorn.run("service.app:create_app", factory=True, host=host, port=port)


def main() -> None:
    """Console-script entry point."""
    app()
