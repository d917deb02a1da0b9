"""The ``waymark`` command line (PRODUCT §7). Thin: it parses, calls a package function, and reports.

One module per command group; this one assembles them. Errors become messages and exit codes in one
place (``errors``); no command opens a database session or imports MLflow.
"""

from __future__ import annotations

import typer

from waymark.cli import (
    access,
    access_log,
    data,
    demo,
    directory,
    dpia,
    evaluate,
    fairness,
    model,
    monitor,
    retention,
    score,
    serve,
    train,
)

__all__ = ["app", "main"]

app = typer.Typer(
    help="Waymark: early-warning learning analytics that never labels students.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("train")(train.train_cmd)
app.command("score")(score.score_cmd)
app.command("demo")(demo.demo_cmd)
app.command("serve")(serve.serve_cmd)
app.command("token")(serve.token_cmd)
app.command("dpia")(dpia.dpia_cmd)
app.add_typer(data.app, name="data")
app.add_typer(fairness.app, name="fairness")
app.add_typer(model.app, name="model")
app.add_typer(access.app, name="access")
app.add_typer(directory.app, name="directory")
app.add_typer(access_log.app, name="access-log")
app.add_typer(retention.app, name="retention")
app.add_typer(monitor.app, name="monitor")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(evaluate.outreach_app, name="outreach")


def main() -> None:
    """Console-script entry point."""
    app()
