"""The default install needs neither Java nor Spark: nothing loads PySpark unless ``--engine spark`` runs.

Not marked ``spark``: these run in ``make test``, where PySpark may well be absent. import-linter keeps
pyspark, py4j and sqlglot inside ``waymark.models.spark`` (pyproject.toml); it cannot tell a deferred
import from a module-level one, which is what these tests check.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
BLOCKED = ("pyspark", "py4j", "sqlglot")
# Modules that run only with --engine spark: they may import waymark.models.spark at module level, and
# are themselves imported only inside the functions that take --engine spark. The command line may import
# Spark-free names of it (models.spark.session); the probe below checks that nothing loads PySpark.
SPARK_ONLY = ("waymark.models.spark", "waymark.service.scoring.on_spark")
MAY_IMPORT_SPARK_ONLY = ("models/spark", "service/scoring/on_spark.py", "waymark/cli")

# As in the default install, pyspark, py4j and sqlglot cannot be imported (MLflow tries pyspark and
# carries on without it). The probe imports every command module (building the whole command line), the
# service's app and the jobs, and names every module of ours that asked for one.
PROBE = """
import json, sys
blocked, asked = {blocked!r}, []

class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] not in blocked:
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith("<frozen"):
            frame = frame.f_back
        asker = frame.f_globals.get("__name__", "") if frame is not None else ""
        if asker.startswith("waymark"):
            asked.append(f"{{asker}} imports {{name}}")
        raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, Absent())
import waymark.cli
waymark.cli.app
import waymark.service.app, waymark.service.scoring, waymark.training.pipeline, waymark.fairness.run
import waymark.models.data, waymark.models.features
print(json.dumps(asked))
"""


def _module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """The imports a module runs when it is imported: not inside a function, nor ``if TYPE_CHECKING``."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            pending.extend(node.orelse)
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While | ast.ClassDef):
            pending.extend(child for child in ast.iter_child_nodes(node) if isinstance(child, ast.stmt))
    return found


def _imported_names(node: ast.Import | ast.ImportFrom) -> list[str]:
    """Absolute module names an import may load (``from a import b`` may load ``a.b``)."""
    if isinstance(node, ast.ImportFrom):
        return [f"{node.module}.{alias.name}" for alias in node.names] if not node.level else []
    return [alias.name for alias in node.names]


def test_the_command_line_service_and_jobs_import_no_spark_module() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(blocked=BLOCKED)],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_spark_only_modules_are_imported_only_inside_the_functions_that_run_on_spark() -> None:
    offending = []
    for folder in ("models", "training", "fairness", "service"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            if any(path.is_relative_to(ROOT / allowed) for allowed in MAY_IMPORT_SPARK_ONLY):
                continue
            for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8"))):
                if any(n.startswith(SPARK_ONLY) for n in _imported_names(node)):
                    offending.append(f"{path.relative_to(ROOT)} line {node.lineno}")
    assert offending == [], "import Spark-only modules inside the function that runs --engine spark"
