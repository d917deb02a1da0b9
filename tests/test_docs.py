"""Documentation that cannot drift from the code."""

from __future__ import annotations

import ast
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from waymark.models.data.contract_doc import BEGIN, END, contract_markdown

ROOT = Path(__file__).parents[1]


def test_the_data_contract_reference_matches_the_contract() -> None:
    text = (ROOT / "docs" / "data-contract.md").read_text(encoding="utf-8")
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert generated == contract_markdown().strip(), (
        "run: python -m waymark.models.data.contract_doc docs/data-contract.md"
    )


_PATH = re.compile(
    r"`((?:models|training|fairness|service|waymark|tests|bench|docs)/[\w/]*[\w])(\.py|\.md|/)?"
)


def test_every_file_the_architecture_guide_points_to_exists() -> None:
    """docs/architecture.md says which file each kind of change goes in: those files must exist."""
    guide = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    named = {path + (suffix or "") for path, suffix in _PATH.findall(guide)}
    assert len(named) > 25
    missing = [
        n
        for n in sorted(named)
        if not any((ROOT / candidate).exists() for candidate in (n, n + ".py", n.rsplit(".", 1)[0] + ".py"))
    ]
    assert missing == []


def test_the_readme_states_the_two_set_up_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme
    assert "make test" in readme


def _test_sources() -> dict[str, list[str]]:
    """Every test function's source, by name (a name may be defined in more than one file)."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                found.setdefault(node.name, []).append(ast.get_source_segment(text, node) or "")
    return found


def _matrix_rows() -> list[tuple[str, list[str], list[str]]]:
    """(clause, cited tests, key terms) of each row of docs/code-of-practice.md."""
    matrix = (ROOT / "docs" / "code-of-practice.md").read_text(encoding="utf-8")
    rows = []
    for line in matrix.splitlines():
        if line.startswith("| §"):
            cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
            assert len(cells) == 5, line[:80]
            terms = [t.strip().strip("`") for t in cells[4].split(",") if t.strip()]
            rows.append((cells[0], re.findall(r"`(test_[a-z0-9_]+)`", cells[3]), terms))
    return rows


def test_every_test_named_in_the_code_of_practice_matrix_exists() -> None:
    """Each cited test exists, and each clause cites a test whose body mentions the clause's key terms."""
    sources = _test_sources()
    rows = _matrix_rows()
    named = {t for _, tests, _ in rows for t in tests}
    assert len(named) > 40
    assert sorted(named - set(sources)) == []
    unproved = []
    for clause, tests, terms in rows:
        assert tests and terms, clause
        bodies = [b.lower() for t in tests for b in sources[t]]
        if not any(all(term.lower() in body for term in terms) for body in bodies):
            unproved.append((clause, terms))
    assert unproved == []
    clauses = {c.split(" ")[0] for c, _, _ in rows}
    numerals: tuple[str, ...] = ("i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x")
    numerals += ("xi", "xii", "xiii", "xiv", "xv", "xvi", "xvii")
    for clause in [f"§2({n})" for n in numerals] + [f"§{n}" for n in (4, 5, 6, 7, 8, 9, 10, 12)]:
        assert clause in clauses, clause


def _commands(markdown: str) -> list[list[str]]:
    """Every `waymark ...` command line in the shell blocks of a guide (continuations joined)."""
    blocks = re.findall(r"```sh\n(.*?)```", markdown, flags=re.DOTALL)
    lines = " ".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line.split(" #")[0])[1:] for line in lines if line.strip().startswith("waymark ")]


def test_every_command_in_the_bring_your_own_data_guide_is_one_the_cli_accepts() -> None:
    import typer.main

    from waymark.cli import app

    guide = (ROOT / "docs" / "bring-your-own-data.md").read_text(encoding="utf-8")
    commands = _commands(guide)
    assert len(commands) >= 10
    for args in commands:
        _parse(typer.main.get_command(app), args)  # raises on an unknown command or option


def test_the_guide_check_refuses_what_the_cli_refuses() -> None:
    import typer.main

    from waymark.cli import app

    root = typer.main.get_command(app)
    for wrong in (["train", "--data", "d", "--nonsense"], ["data", "import", "x"], ["data", "nosuch"]):
        with pytest.raises(Exception, match=r"option|Missing|No such command"):
            _parse(root, wrong)


def _parse(root: Any, args: list[str]) -> None:
    """Parse ``args`` as ``waymark`` would, down to the command, without running it."""
    command, rest, parent = root, list(args), None
    while hasattr(command, "resolve_command"):  # a group (Typer vendors its own click classes)
        context = command.make_context(command.name or "waymark", rest, parent=parent, resilient_parsing=True)
        _, found, rest = command.resolve_command(context, [*context._protected_args, *context.args])
        if found is None:
            raise LookupError(f"No such command in waymark {' '.join(args)}")
        command, parent = found, context
    command.make_context(command.name or "", list(rest), parent=parent)
