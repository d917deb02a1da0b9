"""Documentation that cannot drift from the code."""

from __future__ import annotations

import re
from pathlib import Path

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


def test_every_test_named_in_the_code_of_practice_matrix_exists() -> None:
    matrix = (ROOT / "docs" / "code-of-practice.md").read_text(encoding="utf-8")
    named = set(re.findall(r"`(test_[a-z0-9_]+)`", matrix))
    defined = {
        m
        for path in (ROOT / "tests").glob("test_*.py")
        for m in re.findall(r"^def (test_\w+)", path.read_text(), re.M)
    }
    assert len(named) > 40
    assert sorted(named - defined) == []
    for clause in [
        f"§2({n})"
        for n in (
            [
                "i",
                "ii",
                "iii",
                "iv",
                "v",
                "vi",
                "vii",
                "viii",
                "ix",
                "x",
                "xi",
                "xii",
                "xiii",
                "xiv",
                "xv",
                "xvi",
                "xvii",
            ]
        )
    ] + [f"§{n}" for n in (4, 5, 6, 7, 8, 9, 10, 12)]:
        assert f"| {clause}" in matrix, clause
