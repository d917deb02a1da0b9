"""CoP §7: a DPIA draft filled from this deployment's facts, the institution's parts left to complete."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.service_setup import Served
from tests.test_code_of_practice_transparency import FACTS, WORDING
from tests.vocabulary import forbidden_words
from waymark.cli import app
from waymark.service.dpia import TO_COMPLETE, draft
from waymark.service.transparency import statement

MADE = datetime(2031, 3, 2, 9, 30, tzinfo=UTC)


def test_the_dpia_draft_states_the_deployments_facts_and_leaves_the_judgements_to_the_institution() -> None:
    said = statement(FACTS, WORDING)
    text = draft(said, made_at=MADE)
    for fact in (
        *said["data_sources"],
        *said["features"],
        *said["accuracy"],
        said["retention"],
        said["fairness"],
        said["last_scoring_run"],
        *said["processing_locations"],
        *said["purposes"],
    ):
        assert fact in text
    assert "2031-03-02 09:30 UTC" in text
    # The law and its authority too: an Irish and a Spanish institution's drafts cited UK GDPR and the ICO.
    assert "the supervisory authority and national law that apply" in " ".join(text.split())
    assert "(UK GDPR Article" not in text
    for part in ("Screening decision", "Lawful basis", "Who was consulted", "Measures approved by"):
        line = next(line for line in text.splitlines() if part in line)
        assert TO_COMPLETE in line
    assert not forbidden_words(text)


def test_a_changed_setting_changes_the_draft() -> None:
    shorter = dataclasses.replace(FACTS, retention_days=90)
    before, after = (
        draft(statement(FACTS, WORDING), made_at=MADE),
        draft(statement(shorter, WORDING), made_at=MADE),
    )
    assert "older than 730 days" in before and "older than 90 days" in after


@pytest.mark.slow  # an integration run of a minute or so: in .ci/run's heavier suite
def test_the_command_drafts_the_dpia_of_the_running_deployment(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from waymark.models.settings import Settings, get_settings

    for name, field in Settings.model_fields.items():  # the command reads its settings from the environment
        value = getattr(served.settings, name)
        if isinstance(field.validation_alias, str) and value is not None:
            monkeypatch.setenv(field.validation_alias, str(value))
    get_settings.cache_clear()
    out = tmp_path / "dpia.md"
    result = CliRunner().invoke(app, ["dpia", "--out", str(out)])
    get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8")
    assert "Scoring run" in text and "No model is in service." not in text
    assert f"{text.count(TO_COMPLETE)} parts for the institution to complete" in result.output
