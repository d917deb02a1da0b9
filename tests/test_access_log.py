"""The access audit log's keyed chain and checkpoints, the access import, and the schema's migrations."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import Engine, delete, func, insert, select, text, update
from sqlalchemy.exc import ProgrammingError

from tests.service_setup import backends, fresh_database
from waymark.service import audit, roles_held, sessions
from waymark.service.audit import RequestIds
from waymark.service.db.engine import MIGRATIONS, make_engine, transaction, upgrade
from waymark.service.db.schema import AccessGrant, AuditAnchor, AuditHead, AuditRecord, Base
from waymark.service.grants import ImportRefused, import_grants, unknown_tutees
from waymark.service.security import Principal
from waymark.training.ingest.mapping.pseudonyms import id_pseudonymiser

KEY = b"k" * 40


def _verify_count(engine: Engine) -> int:
    """How many records the access log holds."""
    with transaction(engine) as session:
        return int(session.scalar(select(func.count()).select_from(AuditRecord)) or 0)


def _write(engine: Engine, n: int, key: bytes = KEY) -> None:
    tutor = Principal("tutor-1", "personal_tutor", None)
    for i in range(n):
        with audit.unit(engine, key) as session:
            request = RequestIds(f"req-{i}", "client-chosen" if i % 2 else None)
            audit.record(
                session,
                tutor,
                purpose="personal_tutoring",
                students=[f"S{i:04d}"],
                action="indicator_view",
                request=request,
            )


def _verify(engine: Engine, checkpoint: dict[str, object] | None = None, key: bytes = KEY) -> list[str]:
    with transaction(engine) as session:
        return audit.verify(session, key, checkpoint=checkpoint)


def test_migrations_create_exactly_the_declared_schema(engine: Engine) -> None:
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []


def test_an_untouched_log_verifies(engine: Engine) -> None:
    _write(engine, 6)
    assert _verify(engine) == []
    with audit.unit(engine, KEY) as session:
        point = audit.checkpoint(session, KEY)
    assert point["seq"] == point["count"] == 6
    assert _verify(engine, point) == []


def test_a_key_that_did_not_write_the_latest_record_is_refused_before_anything_is_written(
    engine: Engine,
) -> None:
    """An operations review restored a database with a new key: a retention run appended under it,
    exit 0, and from then on the chain failed under either key (67 problems in 68 records). A key that
    did not write the latest record is refused, at start-up and at the first record."""
    other = b"another key of forty bytes, not ours...."
    audit.check_key(engine, other)  # an empty log: any key may start it
    _write(engine, 3)
    with pytest.raises(
        audit.AuditKeyMismatch, match="did not write the access log's latest record, record 3"
    ):
        audit.check_key(engine, other)
    with pytest.raises(audit.AuditKeyMismatch):
        _write(engine, 1, key=other)
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == 3
    audit.check_key(engine, KEY)
    _write(engine, 1)
    assert _verify(engine) == []


def test_one_request_writes_one_record_per_student_however_many_rows_they_have(engine: Engine) -> None:
    tutor = Principal("tutor-1", "personal_tutor", None)
    with audit.unit(engine, KEY) as session:
        audit.record(
            session,
            tutor,
            purpose="personal_tutoring",
            students=["S1", "S2", "S1", "S1"],
            action="caseload_view",
            request=RequestIds("r"),
        )
    with transaction(engine) as session:
        assert session.scalars(select(AuditRecord.student_id).order_by(AuditRecord.seq)).all() == ["S1", "S2"]


@pytest.mark.parametrize("backend", backends())
def test_commands_started_together_on_an_empty_database_migrate_it_once(backend: str, tmp_path: Path) -> None:
    """An operations review started three commands at once on an empty PostgreSQL database, as the first
    scheduled job and the service's start meet after an upgrade: two failed on a duplicate type. The
    migration now holds a lock; the others wait and find nothing left to do."""
    url = fresh_database(backend, tmp_path)
    code = "import sys; from waymark.service.db.engine import up_to_date; up_to_date(sys.argv[1])"
    procs = [
        subprocess.Popen([sys.executable, "-c", code, url], stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]
    errors = [p.communicate(timeout=120)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], errors
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


def test_the_chain_starts_at_a_random_seed_written_by_the_migration(engine: Engine) -> None:
    with transaction(engine) as session:
        anchor = session.get(AuditAnchor, 1)
        head = session.get(AuditHead, 1)
        assert anchor is not None and head is not None
        assert head.hash == anchor.seed and anchor.seed != "0" * 64 and len(anchor.seed) == 64


def test_a_chain_recomputed_without_the_key_is_found(engine: Engine) -> None:
    _write(engine, 4)
    with transaction(engine) as session:  # someone with database write access "fixes" a record
        session.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="someone-else"))
        prev = session.scalar(select(AuditRecord.hash).where(AuditRecord.seq == 1))
        for rec in session.scalars(select(AuditRecord).where(AuditRecord.seq >= 2).order_by(AuditRecord.seq)):
            fields = [rec.seq, rec.at, rec.actor, rec.role, rec.purpose, rec.student_id, rec.action,
                      rec.request_id, prev, rec.client_request_id]  # fmt: skip
            rec.prev_hash, rec.hash = prev, hashlib.sha256(json.dumps(fields).encode()).hexdigest()
            prev = rec.hash
        head = session.get(AuditHead, 1)
        assert head is not None
        head.hash = prev
    problems = _verify(engine)
    assert problems and all("not written with this key" in p for p in problems)
    assert _verify(engine, key=b"another key of forty bytes, not ours....") != []


@pytest.mark.parametrize("seal", ["none", "kept"])
def test_a_log_rewritten_with_the_unkeyed_digest_and_its_boundary_moved_is_found(
    engine: Engine, seal: str
) -> None:
    """A red team with write access and no key rewrote every record with the unkeyed digest of a log
    begun before the key, set legacy_seq to the end, and `access-log verify` said intact; the service
    went on appending to the forgery."""
    _write(engine, 5)
    with transaction(engine) as session:
        session.execute(delete(AuditRecord).where(AuditRecord.seq == 3))  # a staff read removed
        prev, seq = "0" * 64, 0
        for rec in session.scalars(select(AuditRecord).order_by(AuditRecord.seq)):
            seq += 1
            rec.seq, rec.prev_hash = seq, prev
            fields = [rec.seq, rec.at, rec.actor, rec.role, rec.purpose, rec.student_id, rec.action,
                      rec.request_id, prev]  # fmt: skip
            rec.hash = prev = hashlib.sha256(json.dumps(fields, separators=(",", ":")).encode()).hexdigest()
        anchor, head = session.get(AuditAnchor, 1), session.get(AuditHead, 1)
        assert anchor is not None and head is not None
        if seal == "kept":  # a seal another log's owner made, or one made before the boundary moved
            anchor.seal = "f" * 64
        anchor.legacy_seq, head.seq, head.hash = seq, seq, prev
    problems = _verify(engine)
    assert len(problems) == 1, problems
    assert (
        "carries no seal" if seal == "none" else "anchor (where its keyed records begin) was altered"
    ) in (problems[0])
    audit._KEYS_CHECKED.clear()  # a process started after the forgery appends nothing to it
    with pytest.raises(audit.AuditKeyMismatch, match="Nothing was written"):
        _write(engine, 1)
    if seal == "none":  # nor can an operator seal it by the number its refusal names
        with pytest.raises(audit.AuditKeyMismatch, match="nothing was sealed"):
            audit.seal_unkeyed(engine, KEY, records=4)


def test_wiped_log_fails_verification_against_checkpoint(engine: Engine) -> None:
    _write(engine, 5)
    with audit.unit(engine, KEY) as session:
        point = audit.checkpoint(session, KEY)
    _write(engine, 2)
    with transaction(engine) as session:  # everything gone, the head put back to the seed
        session.execute(delete(AuditRecord))
        head, anchor = session.get(AuditHead, 1), session.get(AuditAnchor, 1)
        assert head is not None and anchor is not None
        head.seq, head.hash = 0, anchor.seed
    assert _verify(engine) == []  # a chain alone cannot tell an emptied log from a new one
    problems = _verify(engine, point)
    assert len(problems) == 1 and "truncated or wiped" in problems[0]


def test_a_truncated_log_fails_against_checkpoint_and_a_forged_checkpoint_is_refused(engine: Engine) -> None:
    _write(engine, 6)
    with audit.unit(engine, KEY) as session:
        point = audit.checkpoint(session, KEY)
    with transaction(engine) as session:  # the newest two removed, the head moved back to match
        session.execute(delete(AuditRecord).where(AuditRecord.seq > 4))
        head = session.get(AuditHead, 1)
        assert head is not None
        head.seq, head.hash = 4, session.scalar(select(AuditRecord.hash).where(AuditRecord.seq == 4))
    assert _verify(engine) == []
    assert "truncated or wiped" in _verify(engine, point)[0]
    forged = {**point, "seq": 4, "hash": "0" * 64}
    assert "signature does not match" in _verify(engine, forged)[0]
    # The count is signed too (an operations review edited 59 to 1 and it verified), and so is the
    # version: taking it out to pass as an earlier checkpoint breaks the signature as well.
    assert "signature does not match" in _verify(engine, {**point, "count": 1})[0]
    earlier = {k: v for k, v in point.items() if k != "version"}
    assert "signature does not match" in _verify(engine, earlier)[0]


def test_the_key_is_never_stored_in_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    engine = make_engine(url)
    upgrade(engine)
    _write(engine, 3)
    engine.dispose()
    assert KEY not in (tmp_path / "w.db").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("w.db-*")
    )


def _legacy_log(tmp_path: Path, disposing: Callable[[Engine], Engine]) -> Engine:
    """A log of three records as the unkeyed chain wrote them, brought up to date."""
    url = f"sqlite:///{tmp_path}/old.db"
    engine = disposing(make_engine(url))
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0002")
    prev = "0" * 64
    with engine.begin() as conn:  # three records as the unkeyed chain wrote them
        for seq in (1, 2, 3):
            values = {"seq": seq, "at": "2026-01-01T00:00:00", "actor": "t", "role": "personal_tutor",
                      "purpose": "personal_tutoring", "student_id": f"S{seq}", "action": "indicator_view",
                      "request_id": f"r{seq}", "prev_hash": prev}  # fmt: skip
            digest = hashlib.sha256(
                json.dumps(list(values.values()), separators=(",", ":")).encode()
            ).hexdigest()
            conn.execute(insert(AuditRecord.__table__).values(**values, hash=digest))
            prev = digest
        conn.execute(insert(AuditHead.__table__).values(id=1, seq=3, hash=prev))
    upgrade(engine)
    return engine


def test_records_from_before_the_key_still_verify_after_the_migration(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    engine = _legacy_log(tmp_path, disposing)
    # Unkeyed records are read as such only once the owner seals where they end (as a forgery would
    # claim them): until then nothing is appended, and verification says why.
    with pytest.raises(audit.AuditKeyMismatch, match="records 1 to 3 were written before"):
        _write(engine, 1)
    assert "carries no seal" in _verify(engine)[0]
    with pytest.raises(audit.AuditKeyMismatch, match="counts 3 records"):
        audit.seal_unkeyed(engine, KEY, records=4)
    # Nothing keyed follows them yet, as in a forgery: sealed only against a checkpoint kept before.
    with pytest.raises(audit.AuditKeyMismatch, match="Give a checkpoint"):
        audit.seal_unkeyed(engine, KEY, records=3)
    with transaction(engine) as session:
        kept = audit.checkpoint(session, KEY)
    audit.seal_unkeyed(engine, KEY, records=3, checkpoint=kept)
    with pytest.raises(audit.AuditKeyMismatch, match="sealed already"):
        audit.seal_unkeyed(engine, KEY, records=3)
    _write(engine, 2)
    assert _verify(engine) == []
    with transaction(engine) as session:
        assert session.scalar(select(func.count()).select_from(AuditRecord)) == 5
        session.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(purpose="curiosity"))
    assert "record 2" in _verify(engine)[0]


def test_a_log_written_to_since_its_chain_was_keyed_is_sealed_by_the_record_that_follows(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    """A log begun before the key and written to between revisions 0003 and 0021: its first keyed
    record follows the unkeyed ones, which a forger without the key cannot make, so the owner seals it
    without a checkpoint."""
    engine = _legacy_log(tmp_path, disposing)
    url = engine.url.render_as_string(hide_password=True)
    audit._KEYS_CHECKED.add((url, hashlib.sha256(KEY).hexdigest()))  # a process that checked before 0021
    try:
        _write(engine, 2)
    finally:
        audit._KEYS_CHECKED.discard((url, hashlib.sha256(KEY).hexdigest()))
    assert "carries no seal" in _verify(engine)[0]
    with pytest.raises(audit.AuditKeyMismatch, match="nothing was sealed"):
        audit.seal_unkeyed(engine, b"another key of forty bytes, not ours....", records=3)
    audit.seal_unkeyed(engine, KEY, records=3)
    assert _verify(engine) == []
    _write(engine, 1)
    assert _verify(engine) == []


@pytest.mark.skipif(
    not os.environ.get("WAYMARK_TEST_POSTGRES_URL"), reason="needs PostgreSQL (WAYMARK_TEST_POSTGRES_URL)"
)
def test_the_application_role_can_append_to_the_access_log_but_never_change_it(tmp_path: Path) -> None:
    url = fresh_database("postgresql", tmp_path)
    owner = make_engine(url)
    upgrade(owner)
    grants = (MIGRATIONS.parent / "grants.sql").read_text(encoding="utf-8")
    with owner.begin() as conn:
        exists = conn.scalar(text("SELECT 1 FROM pg_roles WHERE rolname = 'waymark_app'"))
        if exists:
            conn.execute(text("DROP OWNED BY waymark_app"))
        else:
            conn.execute(text("CREATE ROLE waymark_app LOGIN"))
        conn.exec_driver_sql(grants)
    app = make_engine(owner.url.set(username="waymark_app").render_as_string(hide_password=False))
    try:
        _write(app, 3)
        assert _verify(app) == []
        # A sign-in records the data scientist's role and, a day later, refreshes when it was last seen;
        # no holding can be changed or taken back.
        sessions.start(app, sub="ds-1", name="D", roles=["data_scientist"], hours=1)
        with owner.begin() as conn:
            conn.execute(text("UPDATE role_holdings SET last_seen_at = last_seen_at - interval '1 day'"))
        sessions.start(app, sub="ds-1", name="D", roles=["data_scientist"], hours=1)
        with app.connect() as conn:
            first, last = conn.execute(text("SELECT first_seen_at, last_seen_at FROM role_holdings")).one()
        assert last > first
        for statement in ("DELETE FROM audit_log", "UPDATE audit_log SET actor = 'x'", "TRUNCATE audit_log",
                          "DELETE FROM model_decisions", "UPDATE audit_anchor SET seed = 'x'",
                          "DELETE FROM role_holdings", "UPDATE role_holdings SET staff_id = 'x'",
                          "TRUNCATE role_holdings", "DELETE FROM holding_clearances",
                          "UPDATE holding_clearances SET reason = 'x'", "TRUNCATE holding_clearances",
                          "INSERT INTO holding_clearances (staff_id, role, first_seen_at, last_seen_at, "
                          "cleared_at, cleared_by, reason, in_error) VALUES ('x', 'x', now(), now(), now(), "
                          "'x', 'x', false)"):  # fmt: skip
            with pytest.raises(ProgrammingError, match="permission denied"), app.begin() as conn:
                conn.execute(text(statement))
        # only the owner clears a holding, and who cleared it and why are kept where the service can
        # read them but never write them
        dba = Principal("dba-1", "operator", None)
        with owner.begin() as conn:
            conn.execute(text("DELETE FROM web_sessions"))  # signed out: a live session is refused
        logged = _verify_count(app)
        with pytest.raises(roles_held.NotOwner, match="run it as the database owner"):
            roles_held.clear_holding(app, KEY, staff_id="DS-1", reason="moved on", caller=dba, in_error=False)
        assert _verify_count(app) == logged  # nothing recorded of a clearance refused
        with audit.unit(owner, KEY) as session:
            roles_held.clear(session, "DS-1", reason="moved on", caller=dba, request=RequestIds("r-c"))
        with transaction(app) as session:
            kept = roles_held.clearances(session)
            assert [(c.reason, c.database_user) for c in kept] == [("moved on", owner.url.username)]
            assert roles_held.holdings(session) == []
        assert _verify_count(app) == logged + 1
        assert _verify(app) == []
    finally:
        app.dispose()
        owner.dispose()


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
    assert _verify(engine) != []


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "waymark", *args], env=env, capture_output=True, text=True)


@pytest.mark.slow  # an integration run of a minute or so: in .ci/run's heavier suite
def test_the_cli_checkpoints_and_reports_a_broken_chain_with_a_non_zero_exit(
    tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    url = f"sqlite:///{tmp_path}/w.db"
    engine = disposing(make_engine(url))
    upgrade(engine)
    _write(engine, 3)
    (tmp_path / "audit.key").write_bytes(KEY)
    env = {"WAYMARK_DATABASE_URL": url, "WAYMARK_AUDIT_KEY_FILE": str(tmp_path / "audit.key"), "PATH": ""}
    assert _cli({**env, "WAYMARK_AUDIT_KEY_FILE": ""}, "access-log", "verify").returncode != 0
    ok = _cli(env, "access-log", "verify")
    assert ok.returncode == 0 and "intact: 3 records" in ok.stdout
    point = _cli(env, "access-log", "checkpoint")
    assert point.returncode == 0 and json.loads(point.stdout)["count"] == 3
    (tmp_path / "head.json").write_text(point.stdout, encoding="utf-8")
    with transaction(engine) as session:
        session.execute(delete(AuditRecord).where(AuditRecord.seq == 3))
        head = session.get(AuditHead, 1)
        assert head is not None
        head.seq, head.hash = 2, session.scalar(select(AuditRecord.hash).where(AuditRecord.seq == 2))
    assert _cli(env, "access-log", "verify").returncode == 0
    truncated = _cli(env, "access-log", "verify", "--checkpoint", str(tmp_path / "head.json"))
    assert truncated.returncode == 1 and "truncated or wiped" in truncated.stderr
    with transaction(engine) as session:
        session.execute(update(AuditRecord).where(AuditRecord.seq == 2).values(actor="someone-else"))
    broken = _cli(env, "access-log", "verify")
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
    # a German university's spreadsheet saved the file with semicolons: said, not only "missing"
    semicolons = tmp_path / "excel.csv"
    semicolons.write_text(
        "\ufeffstaff_id;relationship;scope_type;scope_id\r\nt1;personal_tutor;student;S1\r\n"
    )
    with pytest.raises(ImportRefused, match="the file is separated by semicolons"):
        import_grants(engine, semicolons)


def test_relationships_that_match_no_student_are_refused_and_a_secret_maps_student_numbers(
    engine: Engine, tmp_path: Path
) -> None:
    # The records system exports student numbers; the data folder holds their pseudonyms.
    secret = b"a secret of at least thirty-two bytes, kept by IT"
    pseudonym = id_pseudonymiser(secret)
    known = frozenset({pseudonym("000123"), pseudonym("S04512K")})
    numbers = tmp_path / "access.csv"
    numbers.write_text(
        "staff_id,relationship,scope_type,scope_id\n"
        "t1,personal_tutor,student,000123\nt1,personal_tutor,student,S04512K\n"
        "t2,module_leader,module,HIST/102\n",
        encoding="utf-8",
    )
    with pytest.raises(ImportRefused, match=r"no student relationship in access.csv \(2 in all\)") as refused:
        import_grants(engine, numbers, known=known)
    assert "--secret-file" in str(refused.value)
    assert import_grants(engine, numbers, known=known, pseudonym=pseudonym) == 3
    with transaction(engine) as session:
        stored = set(session.scalars(select(AccessGrant.scope_id)))
    assert stored == {*known, "HIST/102"}  # module ids are not student numbers: kept as written
    assert unknown_tutees(engine, known) == []
    assert unknown_tutees(engine, frozenset({pseudonym("000123")})) == [pseudonym("S04512K")]
    # Some unknown is loaded (a student not scored yet); nothing known at all is not checked, nor is a
    # file checked leniently (against the students scored so far, a new intake's are not known yet).
    assert import_grants(engine, numbers, known=frozenset({pseudonym("000123")}), pseudonym=pseudonym) == 3
    assert import_grants(engine, numbers, known=frozenset()) == 3
    assert import_grants(engine, numbers, known=known, strict=False) == 3
    # A file already of pseudonyms, with the secret set for every command: kept as written, not hashed again.
    pseudonyms = tmp_path / "pseudonyms.csv"
    pseudonyms.write_text(
        "staff_id,relationship,scope_type,scope_id\n"
        f"t1,personal_tutor,student,{pseudonym('000123')}\nt1,personal_tutor,student,{pseudonym('000123')}\n",
        encoding="utf-8",
    )
    assert import_grants(engine, pseudonyms, known=known, pseudonym=pseudonym) == 1
    assert unknown_tutees(engine, known) == []
    # Two spellings of one student number are one relationship once mapped (duplicates dropped after).
    spellings = tmp_path / "spellings.csv"
    spellings.write_text(
        "staff_id,relationship,scope_type,scope_id\nt1,personal_tutor,student,150\nt1,personal_tutor,student,150.0\n",
        encoding="utf-8",
    )
    assert import_grants(engine, spellings, pseudonym=pseudonym) == 1


def test_token_minting_is_refused_outside_development() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "waymark", "token", "--role", "student", "--sub", "S1"],
        env={"WAYMARK_ENV": "production", "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and "development" in result.stderr
