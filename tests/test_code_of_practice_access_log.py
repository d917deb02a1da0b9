"""CoP §2(xvii): a student's access log is exported for an appeal or a complaint, and the export logged."""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine
from typer.testing import CliRunner

from waymark.cli import app
from waymark.models.settings import get_settings
from waymark.service import audit
from waymark.service.audit import RequestIds
from waymark.service.db.engine import make_engine, upgrade
from waymark.service.security import Principal

KEY = secrets.token_bytes(32)
TUTOR = Principal("tutor-7", "personal_tutor", None)


def _read(engine: Engine, key: bytes, student: str, who: Principal = TUTOR) -> None:
    with audit.unit(engine, key) as session:
        audit.record(
            session, who, purpose="personal_tutoring", students=[student], action="indicator_view",
            request=RequestIds.new(),
        )  # fmt: skip


def test_the_export_holds_who_read_what_and_why_and_is_itself_recorded(engine: Engine) -> None:
    _read(engine, KEY, "S1")
    _read(engine, KEY, "S2")
    caller = Principal("dpo-office", "operator", None)
    first = audit.export_for_student(engine, KEY, student_id="S1", purpose="appeal", caller=caller)
    assert [(r["actor"], r["role"], r["purpose"], r["action"]) for r in first] == [
        ("tutor-7", "personal_tutor", "personal_tutoring", "indicator_view")
    ]
    again = audit.export_for_student(engine, KEY, student_id="S1", purpose="complaint", caller=caller)
    assert [(r["actor"], r["purpose"], r["action"]) for r in again[1:]] == [
        ("dpo-office", "appeal", "access_log_export")
    ]
    assert audit.verify_log(engine, KEY).problems == []
    with pytest.raises(ValueError, match="appeal, complaint"):
        audit.export_for_student(engine, KEY, student_id="S1", purpose="performance_review", caller=caller)


def test_the_command_exports_one_students_log_as_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, disposing: Callable[[Engine], Engine]
) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    engine = disposing(make_engine(url))
    upgrade(engine)
    key_file = tmp_path / "audit.key"
    key_file.write_text(secrets.token_hex(32))
    monkeypatch.setenv("WAYMARK_DATABASE_URL", url)
    monkeypatch.setenv("WAYMARK_AUDIT_KEY_FILE", str(key_file))
    get_settings.cache_clear()
    try:
        _read(engine, audit.load_key(get_settings()), "S9")
        # An identity provider's subject is not the institution's to vet: a spreadsheet opening the
        # export must not run one as a formula (a red team's finding; the student's export quoted already).
        _read(engine, audit.load_key(get_settings()), "S9", Principal('=HYPERLINK("http://x")', "dpo", None))
        result = CliRunner().invoke(app, ["access-log", "export", "--student", "S9", "--for", "complaint"])
        refused = CliRunner().invoke(app, ["access-log", "export", "--student", "S9", "--for", "curiosity"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [(r["actor"], r["purpose"]) for r in rows] == [
        ("tutor-7", "personal_tutoring"),
        ('\'=HYPERLINK("http://x")', "personal_tutoring"),
    ]
    assert refused.exit_code != 0 and "appeal, complaint" in refused.output
