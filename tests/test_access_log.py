"""The access audit log's hash chain, the access import, and the schema's migrations."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, delete, insert, select, update

from service import audit
from service.db.engine import make_engine, transaction, upgrade
from service.db.schema import AccessGrant, AuditRecord, Base
from service.grants import ImportRefused, import_grants
from service.security import Principal
from tests.service_setup import backends, fresh_database


@pytest.fixture(params=backends())
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Engine:
    engine = make_engine(fresh_database(request.param, tmp_path))
    upgrade(engine)
    yield engine
    engine.dispose()


def _write(engine: Engine, n: int) -> None:
    tutor = Principal("tutor-1", "personal_tutor", None)
    for i in range(n):
        with transaction(engine) as session:
            audit.record(session, tutor, "personal_tutoring", [f"S{i:04d}"], "indicator_view", f"req-{i}")


def test_migrations_create_exactly_the_declared_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_an_untouched_log_verifies(engine: Engine) -> None:
    _write(engine, 6)
    with transaction(engine) as session:
        assert audit.verify(session) == []


@pytest.mark.parametrize("tamper", ["alter", "remove_middle", "remove_last", "insert"])
def test_any_altered_inserted_or_removed_record_is_found(engine: Engine, tamper: str) -> None:
    _write(engine, 6)
    with transaction(engine) as session:
        if tamper == "alter":
            session.execute(update(AuditRecord).where(AuditRecord.seq == 3).values(purpose="curiosity"))
        elif tamper == "remove_middle":
            session.execute(delete(AuditRecord).where(AuditRecord.seq == 3))
        elif tamper == "remove_last":
            session.execute(delete(AuditRecord).where(AuditRecord.seq == 6))
        else:
            row = session.scalar(select(AuditRecord).where(AuditRecord.seq == 4))
            assert row is not None
            values = {c.key: getattr(row, c.key) for c in AuditRecord.__table__.columns}
            session.execute(update(AuditRecord).where(AuditRecord.seq >= 4).values(seq=AuditRecord.seq + 100))
            session.execute(
                insert(AuditRecord), [{**values, "seq": 4, "student_id": "S9999", "hash": "f" * 64}]
            )
    with transaction(engine) as session:
        assert audit.verify(session) != []


def test_the_cli_reports_a_broken_chain_with_a_non_zero_exit(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    engine = make_engine(url)
    upgrade(engine)
    _write(engine, 3)
    env = {"WAYMARK_DATABASE_URL": url, "PATH": ""}
    ok = subprocess.run(
        [sys.executable, "-m", "waymark", "access-log", "verify"], env=env, capture_output=True, text=True
    )
    assert ok.returncode == 0 and "intact: 3 records" in ok.stdout
    with transaction(engine) as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="someone-else"))
    broken = subprocess.run(
        [sys.executable, "-m", "waymark", "access-log", "verify"], env=env, capture_output=True, text=True
    )
    assert broken.returncode == 1 and "record 2" in broken.stderr


def test_access_import_names_each_broken_row_and_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    good = tmp_path / "access.csv"
    good.write_text(
        "staff_id,relationship,scope_type,scope_id\nt1,personal_tutor,student,S1\n", encoding="utf-8"
    )
    assert import_grants(engine, good) == 1
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "staff_id,relationship,scope_type,scope_id\n"
        "t2,personal_tutor,module,M1\n"
        "t3,head_of_everything,school,S\n"
        "t4,module_leader,module,\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRefused) as refused:
        import_grants(engine, bad)
    message = str(refused.value)
    assert "bad.csv line 2" in message and "scope_type 'student', not 'module'" in message
    assert "line 3" in message and "head_of_everything" in message and "line 4" in message
    with transaction(engine) as session:
        assert session.scalars(select(AccessGrant.staff_id)).all() == ["t1"]


def test_token_minting_is_refused_outside_development() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "waymark", "token", "--role", "student", "--sub", "S1"],
        env={"WAYMARK_ENV": "production", "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "development" in result.stderr
