"""Findings: what validation reports, one entry per table, column and rule."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

# An error breaks the contract: nothing is loaded until it is fixed. A warning names something that
# will surprise the user later (an empty feature group, an audit that cannot run, a file that is
# never read) but loses no data, so validation still passes.
Severity = Literal["error", "warning"]


@dataclass(frozen=True)
class Example:
    """One offending row: where it is and what was found there."""

    file: str | None = None
    row: int | None = None  # 1-based data row within the file (the header is not counted)
    key: dict[str, Any] | None = None
    value: Any = None
    # The value as an export wrote it, where an import's rule converted it to ``value`` (a mark of 35
    # multiplied to 700.0): a refusal had named only a number nobody typed.
    written: Any = None

    def describe(self) -> str:
        """Human-readable location, e.g. ``students.csv row 4 (student_id=S1) value 'x'``."""
        parts = []
        if self.file is not None:
            parts.append(self.file)
        if self.row is not None:
            parts.append(f"row {self.row}")
        if self.key:
            parts.append("(" + ", ".join(f"{k}={v}" for k, v in self.key.items()) + ")")
        if self.written is not None:
            parts.append(f"value {self.written!r} in the export, read as {self.value!r}")
        elif self.value is not None:
            parts.append(f"value {self.value!r}")
        return " ".join(parts)


@dataclass(frozen=True)
class Finding:
    """A broken contract rule, or a warning: which table, column and rule, how often, and where."""

    table: str
    rule: str
    message: str
    column: str | None = None
    count: int = 1
    examples: tuple[Example, ...] = field(default_factory=tuple)
    severity: Severity = "error"
    # For a rule on a value vocabulary: the offending values, most frequent first, each with its
    # number of rows, and how many distinct offending values there are in all.
    values: tuple[tuple[str, int], ...] = ()
    distinct_values: int = 0

    def describe(self, max_examples: int = 5) -> str:
        """One or more lines of text for the report."""
        where = self.table + (f".{self.column}" if self.column else "")
        rows = "row" if self.count == 1 else "rows"
        head = f"{where} [{self.rule}] {self.message}"
        if self.examples:
            head += f" ({self.count} {rows})"
        lines = [head]
        if self.values:
            found = ", ".join(f"{v!r} ({n:,} {'row' if n == 1 else 'rows'})" for v, n in self.values)
            more = self.distinct_values - len(self.values)
            lines.append(f"    values found: {found}" + (f", and {more:,} other values" if more > 0 else ""))
        lines += [f"    {ex.describe()}" for ex in self.examples[:max_examples]]
        if self.count > min(len(self.examples), max_examples) and self.examples:
            lines.append(f"    ... and {self.count - min(len(self.examples), max_examples)} more")
        return "\n".join(lines)


@dataclass(frozen=True)
class ValidationReport:
    """The outcome of checking one data folder against the contract.

    ``findings`` are the broken rules (errors); ``warnings`` never make the folder invalid.
    """

    folder: str
    findings: tuple[Finding, ...]
    row_counts: dict[str, int]
    tables_present: tuple[str, ...]
    warnings: tuple[Finding, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no contract rule is broken (warnings do not count)."""
        return not self.findings

    def to_text(self, max_examples: int = 5) -> str:
        """Plain-text report."""
        lines = [f"Contract check of {self.folder}"]
        for name in self.tables_present:
            lines.append(f"  {name}: {self.row_counts.get(name, 0):,} rows")
        if self.ok:
            lines.append("No contract violations.")
        else:
            total = sum(f.count for f in self.findings)
            rules = "1 rule" if len(self.findings) == 1 else f"{len(self.findings)} rules"
            violations = "1 violation" if total == 1 else f"{total:,} violations"
            lines.append(f"{rules} broken, {violations} in all:")
            lines += [f.describe(max_examples) for f in self.findings]
        if self.warnings:
            warned = (
                "1 warning (it does" if len(self.warnings) == 1 else f"{len(self.warnings)} warnings (they do"
            )
            lines.append(f"{warned} not make the folder invalid):")
            lines += [w.describe(max_examples) for w in self.warnings]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return {
            "folder": self.folder,
            "ok": self.ok,
            "row_counts": self.row_counts,
            "tables_present": list(self.tables_present),
            "violations": [asdict(f) for f in self.findings],
            "warnings": [asdict(w) for w in self.warnings],
        }

    def to_json(self) -> str:
        """JSON text."""
        return json.dumps(self.to_dict(), indent=2, default=str)


class ContractViolation(Exception):
    """Raised when a data folder breaks the contract; carries the full report."""

    def __init__(self, report: ValidationReport) -> None:
        super().__init__(report.to_text())
        self.report = report
