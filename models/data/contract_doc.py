"""Render the contract as Markdown, so that docs/data-contract.md never drifts from the code.

python -m models.data.contract_doc docs/data-contract.md   # rewrites the generated block
"""

from __future__ import annotations

import sys
from pathlib import Path

from waymark.models.data.contract import TABLES, Column, Table

BEGIN, END = "<!-- BEGIN GENERATED: contract tables -->", "<!-- END GENERATED -->"


def _rules(col: Column) -> str:
    parts = [col.kind.value]
    if col.allowed:
        parts.append("one of " + ", ".join(f"`{v}`" for v in col.allowed))
    if col.minimum is not None:
        parts.append(f">= {col.minimum:g}")
    if col.maximum is not None:
        parts.append(f"<= {col.maximum:g}")
    return "; ".join(parts)


def table_markdown(table: Table) -> str:
    """One table's section."""
    status = "required" if table.required else "optional"
    lines = [f"### `{table.name}` ({status})", "", table.description, ""]
    if table.key:
        lines += [f"Key: ({', '.join(table.key)}).", ""]
    for ref in table.references:
        lines += [f"References: ({', '.join(ref.columns)}) -> `{ref.target}`.", ""]
    if table.extra_columns_allowed:
        lines += [
            "More columns are allowed (each one characteristic, as text). Each must group students: one "
            "where more than half of the students with a value hold a value no other student holds (an "
            "identity number), or more than half of whose values are dates (a date of birth), is refused "
            '(`groups_students`, from 20 students). A value saying nothing is recorded ("Not stated", '
            '"Prefer not to say", "Unknown") is warned of (`says_not_recorded`): leave such a value '
            'empty, so that the audit holds those students in its "not recorded" group.',
            "",
        ]
    lines += ["| column | presence | missing values | type and rules | meaning |", "|---|---|---|---|---|"]
    for col in table.columns:
        presence = "required" if col.required else "optional"
        missing = "allowed" if col.nullable else "not allowed"
        lines.append(f"| `{col.name}` | {presence} | {missing} | {_rules(col)} | {col.description} |")
    return "\n".join(lines)


def contract_markdown() -> str:
    """All tables."""
    return "\n\n".join(table_markdown(t) for t in TABLES.values())


def rewrite(path: Path) -> None:
    """Replace the generated block of ``path``."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{BEGIN}\n{contract_markdown()}\n{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    rewrite(Path(sys.argv[1]))
