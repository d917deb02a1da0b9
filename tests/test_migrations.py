"""Migrations carry stored rows forward: a database written by an earlier release reads under this one."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, insert, select, text
from sqlalchemy import inspect as sa_inspect
from typer.testing import CliRunner

from tests.service_setup import fresh_database
from waymark.cli import app
from waymark.models.settings import get_settings
from waymark.service.db.engine import (
    MIGRATIONS,
    MigrationRefused,
    make_engine,
    revisions,
    transaction,
    upgrade,
)
from waymark.service.db.schema import Feedback, ScoringRun


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _to(engine: Engine, revision: str) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_feedback_that_said_a_student_was_flagged_says_the_indicator_seems_wrong(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    engine = disposing(make_engine(f"sqlite:///{tmp_path}/old.db"))
    _to(engine, "0007")  # as the release before 0008 left it
    now = datetime.now(UTC)
    with transaction(engine) as session:
        # the columns of that release only (a row object would name columns later revisions add)
        run_id = session.execute(
            insert(ScoringRun).values(
                target="not_completing",
                model_name="m",
                model_version="1",
                bundle_sha256="a" * 64,
                data_fingerprint="b" * 64,
                data_as_of="2026-11-30",
                status="complete",
                students=0,
                started_at=now,
            )
        ).inserted_primary_key[0]
        for value in ("incorrectly_flagged", "useful"):
            session.add(
                Feedback(
                    run_id=run_id,
                    student_id="S1",
                    module_id="M",
                    presentation_id="P",
                    staff_id="t1",
                    value=value,
                    at=now,
                )
            )
    upgrade(engine)
    with transaction(engine) as session:
        assert sorted(session.scalars(select(Feedback.value))) == ["seems_wrong", "useful"]


def test_erasures_recorded_before_their_key_was_kept_are_still_applied_and_not_checked(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    from waymark.service.db.schema import TrainingExclusion
    from waymark.service.scoring.publish import erased_students

    engine = disposing(make_engine(f"sqlite:///{tmp_path}/old.db"))
    _to(engine, "0008")  # as the release before 0009 left it
    with transaction(engine) as session:
        session.execute(insert(TrainingExclusion).values(student_id="S1", at=datetime.now(UTC)))
    upgrade(engine)
    with transaction(engine) as session:
        assert session.scalar(select(TrainingExclusion.pseudonym_key)) is None
    # the key it was recorded under is not known: left out of any data, whatever its ids' key
    assert erased_students(engine, key="0123456789abcdef") == erased_students(engine, key="") == {"S1"}


def test_a_restriction_written_before_its_grounds_is_read_as_the_objection_it_was(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    """Revision 0022 keys restrictions by request (a correction's beside an objection's)."""
    from waymark.service import objections
    from waymark.service.db.schema import ProcessingRestriction
    from waymark.service.scoring.publish import restricted_students

    engine = disposing(make_engine(f"sqlite:///{tmp_path}/old.db"))
    _to(engine, "0021")  # as the release before 0022 left it
    with transaction(engine) as session:
        session.execute(
            text(
                "INSERT INTO processing_restrictions (student_id, request_id, since, upheld) "
                "VALUES ('S1', 7, '2026-01-01 00:00:00', 1)"
            )
        )
    upgrade(engine)
    with transaction(engine) as session:
        standing = objections.restriction(session, "S1")
        assert standing is not None and (standing.request_id, standing.upheld) == (7, True)
        # a second restriction of the same student, for a correction, is its own row now
        session.add(
            ProcessingRestriction(student_id="S1", request_id=9, since=datetime.now(UTC), ground="accuracy")
        )
    assert restricted_students(engine, key="") == {"S1"}


def test_a_relationship_written_before_its_periods_is_its_first_and_only_period(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    """Revision 0023 lets a relationship hold several periods, one row each, numbered from 0."""
    from waymark.service.db.schema import AccessGrant

    engine = disposing(make_engine(f"sqlite:///{tmp_path}/old.db"))
    _to(engine, "0022")  # as the release before 0023 left it
    with transaction(engine) as session:
        session.execute(
            text(
                "INSERT INTO access_grants (staff_id, relationship, scope_type, scope_id, valid_from) "
                "VALUES ('T1', 'placement_supervisor', 'student', 'S1', '2026-09-01')"
            )
        )
    upgrade(engine)
    with transaction(engine) as session:
        grant = session.scalar(select(AccessGrant))
        assert grant is not None and (grant.period, str(grant.valid_from)) == (0, "2026-09-01")
        session.add(
            AccessGrant(
                staff_id="T1",
                relationship="placement_supervisor",
                scope_type="student",
                scope_id="S1",
                period=1,
            )
        )


def test_a_module_relationship_on_one_presentation_keeps_its_key_and_is_not_widened_by_a_downgrade(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    """Revision 0024 narrows a module relationship to one presentation ("" for every one, as before)."""
    from waymark.service.db.schema import AccessGrant

    engine = disposing(make_engine(f"sqlite:///{tmp_path}/old.db"))
    _to(engine, "0023")  # as the release before 0024 left it
    with transaction(engine) as session:
        session.execute(
            text(
                "INSERT INTO access_grants (staff_id, relationship, scope_type, scope_id, period) "
                "VALUES ('L1', 'module_leader', 'module', 'M1', 0)"
            )
        )
    upgrade(engine)
    section = {"staff_id": "L1", "relationship": "module_leader", "scope_type": "module", "scope_id": "M1"}
    with transaction(engine) as session:
        grant = session.scalar(select(AccessGrant))
        assert grant is not None and grant.presentation_id == ""  # every presentation, as it was
        session.add(AccessGrant(**section, presentation_id="2026B-8W"))  # a second section: its own key
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = revisions(engine).current
    refused = pytest.raises(RuntimeError, match="cannot go back before revision 0024: 1 staff relationship")
    with refused, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0023")
    assert revisions(engine).current == head  # nothing changed
    with transaction(engine) as session:
        session.execute(text("DELETE FROM access_grants WHERE presentation_id <> ''"))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0023")
    with engine.connect() as connection:
        columns = {c["name"] for c in sa_inspect(connection).get_columns("access_grants")}
        assert (
            "presentation_id" not in columns
            and connection.scalar(text("SELECT count(*) FROM access_grants")) == 1
        )


def test_a_name_in_a_second_script_stays_in_the_search_key_when_names_are_folded_again(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    """Revision 0025 adds ``other_name``; a later refold (as 0013, 0016 and 0020 did) must keep it."""
    from waymark.service.db.refold import refold_search_names
    from waymark.service.db.schema import DirectoryEntry

    engine = disposing(make_engine(f"sqlite:///{tmp_path}/w.db"))
    upgrade(engine)
    with transaction(engine) as session:
        session.add(
            DirectoryEntry(
                student_id="S1",
                display_name="Mohammed Al-Ali",
                email="s1@example.ac.uk",
                other_name="محمد العلي",
                imported_at=datetime.now(UTC),
            )
        )
    with engine.begin() as connection:
        connection.execute(text("UPDATE student_directory SET search_name = 'stale'"))
        refold_search_names(connection)
    with engine.connect() as connection:
        key = connection.scalar(text("SELECT search_name FROM student_directory"))
    assert key is not None and key.startswith("mohammed al ali ") and "العلي" in key
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:  # going back takes it out of the key too
        config.attributes["connection"] = connection
        command.downgrade(config, "0024")
    with engine.connect() as connection:
        assert connection.scalar(text("SELECT search_name FROM student_directory")) == "mohammed al ali"


def test_people_signed_in_as_data_scientists_before_0026_are_recorded_holding_the_role(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    """A session begun before revision 0026 recorded nothing, and its reviewer's page said "you may not
    approve" while the approval would have been recorded (a reviewer's finding)."""
    engine = disposing(make_engine(f"sqlite:///{tmp_path}/w.db"))
    _to(engine, "0025")
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for sub, roles in (
            ("both-1", '["data_scientist", "ethics_reviewer"]'),
            ("tutor-1", '["personal_tutor"]'),
        ):
            connection.execute(
                text(
                    "INSERT INTO web_sessions (id_hash, sub, name, roles, active_role, csrf, created_at, "
                    "expires_at) VALUES (:h, :s, '', :r, 'x', 'c', :at, :at)"
                ),
                {"h": sub, "s": sub, "r": roles, "at": now},
            )
    upgrade(engine)
    with engine.connect() as connection:
        held = connection.execute(text("SELECT staff_id, role FROM role_holdings")).all()
    assert [tuple(r) for r in held] == [("both-1", "data_scientist")]


def test_restrictions_written_before_0027_stand_until_decided_and_a_downgrade_lifts_those_in_notice(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    """Revision 0027 gives an ended restriction a notice (Art. 18(3)); the release before knew none."""
    from waymark.service import objections
    from waymark.service.scoring.publish import restricted_students

    engine = disposing(make_engine(f"sqlite:///{tmp_path}/n.db"))
    _to(engine, "0026")
    with transaction(engine) as session:
        for student, request in (("S1", 1), ("S2", 2)):
            session.execute(
                text(
                    "INSERT INTO processing_restrictions (student_id, request_id, since, upheld, ground) "
                    "VALUES (:s, :r, '2026-01-01 00:00:00', 0, 'objection')"
                ),
                {"s": student, "r": request},
            )
    upgrade(engine)
    assert restricted_students(engine, key="") == {"S1", "S2"}  # standing until decided, as they were
    with transaction(engine) as session:
        session.execute(
            text("UPDATE processing_restrictions SET lifts_at = :at WHERE student_id = 'S2'"),
            {
                "at": f"{datetime.now(UTC) + timedelta(days=7):%Y-%m-%d %H:%M:%S.%f}"
            },  # as SQLAlchemy writes it
        )
        assert objections.still_restricted(session, "S2")
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0026")
    with engine.connect() as connection:
        left = connection.execute(text("SELECT student_id FROM processing_restrictions")).scalars().all()
    assert left == ["S1"]


def test_directory_names_written_before_the_search_key_are_folded_by_the_upgrade(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    engine = disposing(make_engine(f"sqlite:///{tmp_path}/w.db"))
    _to(engine, "0011")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO student_directory"
                " (student_id, display_name, preferred_name, email, imported_at) "
                "VALUES ('S1', 'İbrahim Özdemir', 'IŞIK', 's1@example.ac.uk', '2027-01-01')"
            )
        )
    upgrade(engine)
    with engine.connect() as connection:
        folded = connection.scalar(text("SELECT search_name FROM student_directory"))
    assert folded == "ibrahim ozdemir isik"


# "Нұрлан Қайратов" as the directory writes it, and as folded for search: the Russian letters a Russian
# keyboard types ("нурлан каиратов"; the short i loses its breve as every accent does).
KAZAKH_NAME = "\u041d\u04b1\u0440\u043b\u0430\u043d \u049a\u0430\u0439\u0440\u0430\u0442\u043e\u0432"
RUSSIAN_TYPED = "\u043d\u0443\u0440\u043b\u0430\u043d \u043a\u0430\u0438\u0440\u0430\u0442\u043e\u0432"


def test_directory_names_folded_with_their_stroked_letters_kept_are_folded_again(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    """0012 folded "Łukasz" to "łukasz", which "lukasz" typed by staff never found (a Polish university)."""
    engine = disposing(make_engine(f"sqlite:///{tmp_path}/w.db"))
    _to(engine, "0012")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO student_directory"
                " (student_id, display_name, preferred_name, email, imported_at, search_name) VALUES"
                " ('S1', 'Łukasz Wróbel', NULL, 's1@example.ac.uk', '2027-01-01', 'łukasz wrobel'),"
                " ('S2', 'Anna Nowak', NULL, 's2@example.ac.uk', '2027-01-01', 'anna nowak'),"
                " ('S3', 'فاطمة مصطفى', NULL, 's3@example.eg', '2027-01-01', 'فاطمة مصطفى'),"
                f" ('S4', '{KAZAKH_NAME}', NULL, 's4@example.kz', '2027-01-01', '{KAZAKH_NAME.lower()}')"
            )
        )
    upgrade(engine)
    with engine.connect() as connection:
        folded = dict(connection.execute(text("SELECT student_id, search_name FROM student_directory")).all())
    # and 0016 the Arabic letters written two ways (an Egyptian university's فاطمه found none of 14 فاطمة),
    # and 0020 Kazakh letters as a Russian keyboard types them
    assert folded == {"S1": "lukasz wrobel", "S2": "anna nowak", "S3": "فاطمه مصطفي", "S4": RUSSIAN_TYPED}


def test_db_status_and_upgrade_say_where_the_schema_stands_and_status_changes_nothing(
    tmp_path: Path, fresh_settings: None, disposing: Callable[[Engine], Engine]
) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    env = {"WAYMARK_DATABASE_URL": url}
    engine = disposing(make_engine(url))
    _to(engine, "0009")
    status = CliRunner().invoke(app, ["db", "status"], env=env)
    assert status.exit_code == 1, status.output
    assert "at revision 0009" in status.output and "0010 (" in status.output and "0011 (" in status.output
    assert revisions(engine).current == "0009"  # status applied nothing

    upgraded = CliRunner().invoke(app, ["db", "upgrade"], env=env)
    assert upgraded.exit_code == 0, upgraded.output
    assert "was at revision 0009; applied 19 migration(s)" in upgraded.output
    assert revisions(engine).up_to_date
    again = CliRunner().invoke(app, ["db", "status"], env=env)
    assert again.exit_code == 0 and "up to date" in again.output


def test_a_database_a_newer_release_migrated_is_refused_by_name_and_left_as_it_was(
    tmp_path: Path, fresh_settings: None, disposing: Callable[[Engine], Engine]
) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    engine = disposing(make_engine(url))
    upgrade(engine)
    head = revisions(engine).head
    newer = f"{int(head) + 1:04d}"
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = :v"), {"v": newer})
    with pytest.raises(MigrationRefused, match=f"at revision {newer}, which this release does not hold"):
        upgrade(engine)
    for command_ in (["db", "upgrade"], ["db", "status"]):
        refused = CliRunner().invoke(app, command_, env={"WAYMARK_DATABASE_URL": url})
        assert refused.exit_code == 2 and "a newer release" in refused.output, (command_, refused.output)
    assert revisions(engine).current == newer


def test_db_status_makes_no_database_where_there_is_none(tmp_path: Path, fresh_settings: None) -> None:
    """A mistyped SQLite path would have been created (and switched to WAL) by a command that changes
    nothing."""
    url = f"sqlite:///{tmp_path}/typo.db"
    said = CliRunner().invoke(app, ["db", "status"], env={"WAYMARK_DATABASE_URL": url})
    assert said.exit_code == 2 and "there is no database at" in said.output
    assert not (tmp_path / "typo.db").exists()


def test_db_grants_prints_the_grant_script_of_the_service_role() -> None:
    printed = CliRunner().invoke(app, ["db", "grants"])
    assert printed.exit_code == 0
    assert printed.output == (MIGRATIONS.parent / "grants.sql").read_text(encoding="utf-8")


@pytest.mark.skipif(
    not os.environ.get("WAYMARK_TEST_POSTGRES_URL"), reason="needs PostgreSQL (WAYMARK_TEST_POSTGRES_URL)"
)
def test_the_service_role_cannot_migrate_and_is_told_to_ask_the_owner_and_nothing_changes(
    tmp_path: Path,
) -> None:
    owner = make_engine(fresh_database("postgresql", tmp_path))
    role = "waymark_app_upgrade"  # its own role: the access-log test drops what waymark_app owns
    try:
        _to(owner, "0011")  # the release before 0012, then the new release installed
        with owner.begin() as connection:
            if connection.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}):
                connection.execute(text(f"DROP OWNED BY {role}"))
            else:
                connection.execute(text(f"CREATE ROLE {role} LOGIN"))
            grants = (MIGRATIONS.parent / "grants.sql").read_text(encoding="utf-8")
            # as the release of 0011 granted them: without the tables later revisions made
            later = ("deployment_marks", "role_holdings", "holding_clearances")
            older = "\n".join(line for line in grants.splitlines() if not any(t in line for t in later))
            connection.exec_driver_sql(older.replace("waymark_app", role))
        service = make_engine(owner.url.set(username=role).render_as_string(hide_password=False))
        try:
            with pytest.raises(MigrationRefused) as refused:
                upgrade(service)
            said = str(refused.value)
            # the pending ones named, or their range when there are many ("0012 to 0015")
            assert "at revision 0011" in said and "17 migration(s), 0012 to 0028" in said, said
            assert "may not apply them" in said and "waymark db upgrade" in said
            assert revisions(owner).current == "0011"  # nothing was changed
            pending = [described.split()[0] for described in upgrade(owner).pending]
            assert pending == [
                "0012",
                "0013",
                "0014",
                "0015",
                "0016",
                "0017",
                "0018",
                "0019",
                "0020",
                "0021",
                "0022",
                "0023",
                "0024",
                "0025",
                "0026",
                "0027",
                "0028",
            ]
            assert revisions(service).up_to_date
            assert upgrade(service).up_to_date  # once the owner has migrated, the service role opens it
        finally:
            service.dispose()  # a failed assertion had left its connection to be closed by the collector
    finally:
        owner.dispose()
