"""Documentation that cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

from models.data.contract_doc import BEGIN, END, contract_markdown

ROOT = Path(__file__).parents[1]


def test_the_data_contract_reference_matches_the_contract() -> None:
    text = (ROOT / "docs" / "data-contract.md").read_text(encoding="utf-8")
    generated = text.split(BEGIN, 1)[1].split(END, 1)[0].strip()
    assert generated == contract_markdown().strip(), (
        "run: python -m models.data.contract_doc docs/data-contract.md"
    )


def test_the_readme_states_the_two_set_up_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "make run" in readme
    assert "make test" in readme
