"""The service's database: one schema for indicators, access, the audit log and students' rights.

Alembic migrations (``service/db/migrations``) create it; a test checks they match these classes.
No table has a column for a protected characteristic (CoP §4): they are never stored here.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    exists,
    func,
    or_,
    select,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, aliased, mapped_column

from waymark.fairness.gate import PASS as GATE_PASS
from waymark.models.folding import ascii_digits, folded

ID = String(64)


class Base(DeclarativeBase):
    """Declarative base of the service schema."""


def aware(moment: datetime) -> datetime:
    """A stored time with its zone (SQLite drops it; every time here is stored in UTC)."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def columns(row: Base) -> dict[str, Any]:
    """A row's column values by column name (for a response model built from a row and more)."""
    return {c.key: getattr(row, c.key) for c in row.__table__.columns}


class ScoringRun(Base):
    """One run of ``waymark score``; its indicators are served only once it is published."""

    __tablename__ = "scoring_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(32))
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    data_fingerprint: Mapped[str] = mapped_column(String(64))
    data_as_of: Mapped[str] = mapped_column(String(10))
    status: Mapped[str] = mapped_column(String(16))  # writing | complete | failed
    students: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The process that ran it, named when an overlapping run is refused (none before revision 0002).
    host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # The monitoring policy's smoothing weight the list order was computed with (revision 0007; None
    # before it: ordered by the estimate).
    smoothing: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The identifier of the key the data folder's ids were made with ("" when they were not
    # pseudonymised by a Waymark mapping; None before revision 0009: not known).
    pseudonym_key: Mapped[str | None] = mapped_column(String(64), nullable=True)


class Publication(Base):
    """Which complete run is served for a target: the pointer swapped in one transaction."""

    __tablename__ = "publications"

    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("scoring_runs.id"))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Indicator(Base):
    """One student's explained indicator on one module presentation in one run."""

    __tablename__ = "indicators"
    __table_args__ = (
        Index("ix_indicators_student", "student_id", "run_id"),
        # a caller's scope of one run (migration 0006)
        Index("ix_indicators_run_module", "run_id", "module_id"),
        Index("ix_indicators_run_programme", "run_id", "programme_id"),
        Index("ix_indicators_run_school", "run_id", "school_id"),
    )

    run_id: Mapped[int] = mapped_column(ForeignKey("scoring_runs.id", ondelete="CASCADE"), primary_key=True)
    student_id: Mapped[str] = mapped_column(ID, primary_key=True)
    module_id: Mapped[str] = mapped_column(ID, primary_key=True)
    presentation_id: Mapped[str] = mapped_column(ID, primary_key=True)
    programme_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    school_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    week: Mapped[int] = mapped_column(Integer)
    as_of: Mapped[str] = mapped_column(String(10))
    probability: Mapped[float] = mapped_column(Float)
    lower: Mapped[float] = mapped_column(Float)
    upper: Mapped[float] = mapped_column(Float)
    previous_probability: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The place in the list: the estimate smoothed over runs as the monitoring policy chooses
    # (``models.stability.smooth_step``); equal to the estimate when smoothing is off. None in runs
    # before revision 0007, which are ordered by the estimate (``ORDER_VALUE`` reads either).
    priority: Mapped[float | None] = mapped_column(Float, nullable=True)
    factors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    strengths: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    context: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    what_could_change: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    coverage: Mapped[dict[str, Any]] = mapped_column(JSON)
    engagement: Mapped[dict[str, Any]] = mapped_column(JSON)


def list_order(indicators: Any) -> ColumnElement[float]:
    """The value a list of indicators is ordered by (descending): the stored order value, else the estimate.

    ``indicators`` is ``Indicator`` or any selectable with its columns (``table.c``).
    """
    return func.coalesce(indicators.priority, indicators.probability)


class AccessGrant(Base):
    """A staff relationship (``waymark access import``): who supports whom."""

    __tablename__ = "access_grants"
    # Who holds a relationship reaching a student, a module, a programme: a student's copy of their data
    # and the DPO's list read it by scope, not by member of staff (revision 0028).
    __table_args__ = (Index("ix_access_grants_scope", "scope_type", "scope_id"),)

    staff_id: Mapped[str] = mapped_column(ID, primary_key=True)
    relationship: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_id: Mapped[str] = mapped_column(ID, primary_key=True)
    # The days it holds, both included (None: from always, until further notice): a clinical supervisor's
    # rotation, a placement mentor's placement (revision 0019). ``access.may_read`` applies them.
    valid_from: Mapped[date | None] = mapped_column(Date, nullable=True)
    valid_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    # Which of the relationship's periods, from 0 in order of their first day: a supervisor with the same
    # student in two separate blocks holds two rows, which never overlap (revision 0023).
    period: Mapped[int] = mapped_column(Integer, primary_key=True, default=0, server_default="0")
    # A module relationship on one presentation of the module ("": on every presentation): a US
    # course's 8-week section beside its full-term one, each with its own instructor (revision 0024).
    presentation_id: Mapped[str] = mapped_column(ID, primary_key=True, default="", server_default="")


class TrainingAttestation(Base):
    """A staff member's information-security training, valid until ``expires_at`` (CoP §5)."""

    __tablename__ = "training_attestations"

    staff_id: Mapped[str] = mapped_column(ID, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class RoleHolding(Base):
    """A staff role a person has been seen holding: at each sign-in, and as a data scientist on the API.

    The ethics committee's approvals read it: a person seen holding the data scientist's role may not
    approve a model version (revision 0026). ``last_seen_at`` is the latest sign-in or request in it.
    """

    __tablename__ = "role_holdings"

    staff_id: Mapped[str] = mapped_column(ID, primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HoldingClearance(Base):
    """A holding of the data scientist's role the database owner cleared: who, when, why. Append-only.

    ``waymark access clear-holding`` removes the ``RoleHolding`` and writes this in one transaction, with
    the holding's own first and last seen times (revision 0028). A holding had been cleared with a
    plain ``DELETE``, leaving no record of who cleared it or why, while the approvals it had voided
    counted again. An approval given before a clearance stays uncounted unless ``in_error``.
    """

    __tablename__ = "holding_clearances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    staff_id: Mapped[str] = mapped_column(ID, index=True)
    role: Mapped[str] = mapped_column(String(32))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cleared_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    cleared_by: Mapped[str] = mapped_column(String(200))  # the operator who ran the command
    database_user: Mapped[str | None] = mapped_column(String(200), nullable=True)  # PostgreSQL's session_user
    reason: Mapped[str] = mapped_column(Text)
    # recorded in error (a wrong WAYMARK_OPERATOR, a role the identity provider gave by mistake): the
    # approvals it held back count again; otherwise those given before the clearance stay uncounted
    in_error: Mapped[bool] = mapped_column(default=False)


class AuditRecord(Base):
    """One read or write of an individual's data; append-only and hash-chained."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_student", "student_id"),
        # The last retention run, read by the public transparency statement: a scan of the whole log
        # otherwise. Partial, so no other record's write touches it.
        Index(
            "ix_audit_retention_runs",
            "at",
            sqlite_where=text("action = 'retention_run'"),
            postgresql_where=text("action = 'retention_run'"),
        ),
    )

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(ID)
    role: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(64))
    student_id: Mapped[str] = mapped_column(ID)
    action: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))  # generated by the server, never the client's
    client_request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)  # X-Request-ID, kept
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class Feedback(Base):
    """Staff feedback on an indicator."""

    __tablename__ = "feedback"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("scoring_runs.id"))
    student_id: Mapped[str] = mapped_column(ID, index=True)
    module_id: Mapped[str] = mapped_column(ID)
    presentation_id: Mapped[str] = mapped_column(ID)
    staff_id: Mapped[str] = mapped_column(ID)
    value: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Intervention(Base):
    """A recorded outreach or proposed intervention, with its lawful basis (consent or exemption)."""

    __tablename__ = "interventions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    student_id: Mapped[str] = mapped_column(ID, index=True)
    staff_id: Mapped[str] = mapped_column(ID)
    purpose: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    basis: Mapped[str] = mapped_column(String(16))  # consent | exemption | asking (an offer)
    exemption_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Consent(Base):
    """A student's consent for one purpose."""

    __tablename__ = "consents"

    student_id: Mapped[str] = mapped_column(ID, primary_key=True)
    purpose: Mapped[str] = mapped_column(String(64), primary_key=True)
    granted: Mapped[bool] = mapped_column()
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class StudentPreference(Base):
    """Whether a student wants to see their indicator, and whether it is withheld for wellbeing."""

    __tablename__ = "student_preferences"

    student_id: Mapped[str] = mapped_column(ID, primary_key=True)
    show_indicator: Mapped[bool] = mapped_column(default=False)
    withheld_for_wellbeing: Mapped[bool] = mapped_column(default=False)


class RightsRequest(Base):
    """A student's rectification, erasure or objection request and how it was handled."""

    __tablename__ = "rights_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    student_id: Mapped[str] = mapped_column(ID, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # rectification | erasure | objection
    detail: Mapped[str] = mapped_column(Text, default="")  # the student's words; emptied once processed
    status: Mapped[str] = mapped_column(String(16))  # open | done
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # accepted (an objection: upheld) | declined | erased | withdrawn
    outcome: Mapped[str | None] = mapped_column(String(16), nullable=True)
    outcome_note: Mapped[str | None] = mapped_column(Text, nullable=True)  # the DPO's note to the student
    # an accepted correction: when the DPO recorded it reaching the data Waymark reads (revision 0015)
    applied_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class TrainingExclusion(Base):
    """Students erased on request: excluded from later training (read by the training import)."""

    __tablename__ = "training_exclusions"

    student_id: Mapped[str] = mapped_column(ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The key of the ids the student was erased under (ScoringRun.pseudonym_key of the run that served
    # them); None when no run had recorded one: not checked (``publish.erasures_for``).
    pseudonym_key: Mapped[str | None] = mapped_column(String(64), nullable=True)


class ProcessingRestriction(Base):
    """A restriction of processing a student asked for (GDPR Art. 18): left out while any of theirs stands.

    Written when the request is made, so the student is not scored, trained on or audited, and no staff
    member reads them (``access.may_read``), from that moment. Two grounds (``service.objections``):

    - ``objection``: the student objected to being scored and listed (Art. 21); restricted while the
      DPO weighs it (Art. 18(1)(d)) and, ``upheld``, after. It ends when the DPO declines it with the
      institution's grounds or the student withdraws it.
    - ``accuracy``: the student contested the accuracy of their data in a correction request and
      asked to be left out meanwhile (Art. 18(1)(a)). It ends when the DPO declines the correction,
      when an accepted correction is recorded as reaching the data, or when the student withdraws the
      request.

    The student is told before the DPO's ending lifts it (Art. 18(3)): it stands until ``lifts_at``,
    the end of the notice given with the decision (``objections.end_after_notice``), and counts for
    nothing after it (``objections.standing``); retention removes it then. A student's withdrawal
    removes it at once. One row per request; all of a student's go with their erasure.
    """

    __tablename__ = "processing_restrictions"

    student_id: Mapped[str] = mapped_column(ID, primary_key=True)
    request_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    since: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    upheld: Mapped[bool] = mapped_column(default=False)
    # The key of the ids the student asked under, as for an erasure (``publish.erased_students``).
    pseudonym_key: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ground: Mapped[str] = mapped_column(String(16), default="objection", server_default="objection")
    # The end of the notice the student was given that the DPO's decision lifts it; None: until decided.
    lifts_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class AuditAnchor(Base):
    """Where the keyed chain starts: a random seed written once by the migration (never updated), sealed.

    ``legacy_seq`` counts records written before the chain was keyed; they keep their unkeyed digest.
    """

    __tablename__ = "audit_anchor"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seed: Mapped[str] = mapped_column(String(64))
    legacy_seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # An HMAC of seed and legacy_seq under the audit key (revision 0021), which the owner writes for a log
    # begun before the chain was keyed: unkeyed records are read as such only under it (``audit.verify``).
    seal: Mapped[str | None] = mapped_column(String(64), nullable=True)


class DeploymentMark(Base):
    """That a process opened the database in production, and when first (``engine.opened``; never removed).

    A decision recorded from the command line, which only development allows, is refused on a
    database so marked, whatever the environment of the command says.
    """

    __tablename__ = "deployment_marks"

    mode: Mapped[str] = mapped_column(String(16), primary_key=True)
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    host: Mapped[str] = mapped_column(String(255))


#: The kinds of governance event (``ModelDecision.kind``).
AUDIT, APPROVED, REJECTED, PROMOTED = "audit", "approved", "rejected", "promoted"


class ModelDecision(Base):
    """One governance event on one model version: an audit, a review or a promotion. Append-only.

    The only source of truth for what may be served: promotion and the champion check read this
    table and the bundle sha256 recorded here, never MLflow tags (which anyone with registry write
    access can edit). A review binds to the audit it was given on (``audit_id``); a later audit voids it.
    """

    __tablename__ = "model_decisions"
    __table_args__ = (Index("ix_model_decisions_version", "model_name", "model_version", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(200))
    model_version: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))  # audit | approved | rejected | promoted
    bundle_sha256: Mapped[str] = mapped_column(String(64))
    gate: Mapped[str | None] = mapped_column(String(16), nullable=True)
    report_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    policy_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    audit_id: Mapped[int | None] = mapped_column(ForeignKey("model_decisions.id"), nullable=True)
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    actor: Mapped[str] = mapped_column(String(200))  # the reviewer, or who promoted or audited
    recorded_by: Mapped[str] = mapped_column(String(200))  # the signed-in caller or the CLI operator
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # an audit's: how many different reviewers must approve it (the policy's [review] approvals;
    # None, recorded before revision 0018: one)
    approvals_required: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # an audit's: who trained the version, as its training run's `trained_by` tag names them (revision
    # 0028; None: nobody named, or recorded before): their approval of it is refused. Never published.
    trained_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


def estimates_withdrawn(model_name: Any, model_version: Any) -> ColumnElement[bool]:
    """Whether the estimates of that model version may no longer reach anyone, even as history.

    True when the ethics committee's latest review of the version is a rejection, or when its latest
    fairness audit did not pass the gate and no review has been given on it (an approval given on an
    earlier audit is void once the version is audited again). Such a version's estimates reach no one:
    not as the served batch (``service.decisions``), and not as a past point of a history or the
    previous value a later run's change is measured from, even where they were served while it was
    approved. For a version withdrawn by a failed audit alone, a later audit that passes, or a review
    that sets the failed gate aside, brings them back; a rejection stands until an approval follows it.
    ``model_name`` and ``model_version`` are columns of the enclosing query (a run's) or values.
    """

    def latest(kinds: tuple[str, ...]) -> Any:
        decision = aliased(ModelDecision)
        return (
            select(func.max(decision.id))
            .where(
                decision.model_name == model_name,
                decision.model_version == model_version,
                decision.kind.in_(kinds),
            )
            .correlate_except(decision)  # the run's columns are the enclosing query's, however deep
            .scalar_subquery()
        )

    review, audit = latest((APPROVED, REJECTED)), latest((AUDIT,))
    rejected, failed, reviewed = aliased(ModelDecision), aliased(ModelDecision), aliased(ModelDecision)
    # The audit the latest review was given on (its ``audit_id``, as ``service.decisions.blockers``
    # reads it): a review recorded after an audit but given on an earlier one is no review of it.
    reviewed_audit = (
        select(reviewed.audit_id).where(reviewed.id == review).correlate_except(reviewed).scalar_subquery()
    )
    return or_(
        exists().where(rejected.id == review, rejected.kind == REJECTED).correlate_except(rejected),
        exists()
        .where(failed.id == audit, failed.gate != GATE_PASS, failed.id != func.coalesce(reviewed_audit, 0))
        .correlate_except(failed),
    )


class AuditReport(Base):
    """The published fairness report of one audit (``model_decisions`` row), as the committee reads it.

    Stored with the decision so the committee's pages show exactly what was audited: its sha256 is
    the decision's ``report_sha256``, checked when it is read. Aggregate only, small cells withheld.
    """

    __tablename__ = "audit_reports"

    decision_id: Mapped[int] = mapped_column(ForeignKey("model_decisions.id"), primary_key=True)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)


class AuditHead(Base):
    """The last record of the audit chain; locked while a record is appended, so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))


_WORDS = re.compile(r"[^\W_]+")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
# Kazakh letters as a Russian keyboard types them (and the Platonus export's Windows-1251 writes them):
# a Kazakh university's staff typing "Нурлан Кайратов" found 22 of 96 students ("Нұрлан Қайратов").
# Ukrainian and Kazakh i (U+0456) as the Russian letter, the Russian spelling of the same names.
_KAZAKH = str.maketrans(
    "\u04d9\u0493\u049b\u04a3\u04e9\u04b1\u04af\u04bb\u0456",
    "\u0430\u0433\u043a\u043d\u043e\u0443\u0443\u0445\u0438",
)
# Latin letters that look like Cyrillic ones, typed in a Cyrillic word (a Latin i for U+0456 missed 17 of 96).
_LOOKALIKE = str.maketrans("aceiopxyk", "\u0430\u0441\u0435\u0438\u043e\u0440\u0445\u0443\u043a")


def _cyrillic_word(word: str) -> str:
    return word.translate(_LOOKALIKE).translate(_KAZAKH) if _CYRILLIC.search(word) else word


def search_key(*names: str | None) -> str:
    """Names as a search compares them (``folding.folded``: no case or accents, dotted and dotless i alike).

    A database's ``lower()`` was no help: SQLite's folds ASCII only, so "Şahin", "Özge" or "İbrahim"
    typed exactly as a directory wrote them found nobody (a Turkish university's staff). Digits of
    other scripts are read as 0 to 9, and a Cyrillic word's Kazakh letters and Latin look-alikes as
    the Russian letters they are typed as (``_KAZAKH``, ``_LOOKALIKE``).
    """
    # Punctuation as a space: "lefevre durand" finds Lefèvre-Durand (a French school's staff found nobody).
    words = _WORDS.findall(ascii_digits(folded(" ".join(n for n in names if n))))
    return " ".join(_cyrillic_word(w) for w in words)


def _search_key(context: Any) -> str:
    row = context.get_current_parameters()
    return search_key(row.get("display_name"), row.get("preferred_name"), row.get("other_name"))


class DirectoryEntry(Base):
    """How to address and reach a student: for outreach only (CoP §4: contractual data, not a feature).

    Loaded by ``waymark directory import``; read only by the service, for staff with the student in
    scope and for the student; never by features, training, MLflow or the fairness audit.
    """

    __tablename__ = "student_directory"

    student_id: Mapped[str] = mapped_column(ID, primary_key=True)
    display_name: Mapped[str] = mapped_column(String(200))
    preferred_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    pronouns: Mapped[str | None] = mapped_column(String(64), nullable=True)
    email: Mapped[str] = mapped_column(String(254))
    # The name in a second script, where the records hold one (محمد العلي beside Mohammed Al-Ali, 张伟
    # beside Zhang Wei): shown beside the others and found by search (revision 0025).
    other_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    imported_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The names as a search compares them (``search_key``), set from them when the entry is written (the
    # directory import replaces entries whole; nothing updates a name in place).
    # Text: decomposing and case folding can lengthen names (a Hangul syllable is three jamo, ß is ss).
    search_name: Mapped[str | None] = mapped_column(Text, nullable=True, default=_search_key)


class Contact(Base):
    """One piece of outreach to a student, from first planned contact to its outcome.

    ``status`` moves to_contact -> contacted -> in_conversation -> closed; every change is kept in
    ``contact_events``, so an impact evaluation can see when contact happened and what followed.
    """

    __tablename__ = "contacts"
    __table_args__ = (Index("ix_contacts_student", "student_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    student_id: Mapped[str] = mapped_column(ID)
    staff_id: Mapped[str] = mapped_column(ID)
    role: Mapped[str] = mapped_column(String(32))
    run_id: Mapped[int | None] = mapped_column(ForeignKey("scoring_runs.id"), nullable=True)
    channel: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(64))
    basis: Mapped[str] = mapped_column(String(16))  # consent | exemption
    exemption: Mapped[str | None] = mapped_column(String(64), nullable=True)  # from the configured list
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    follow_up_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ContactEvent(Base):
    """One change to a contact (its creation included): who, when, and the state it left."""

    __tablename__ = "contact_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"), index=True)
    student_id: Mapped[str] = mapped_column(ID, index=True)
    staff_id: Mapped[str] = mapped_column(ID)
    status: Mapped[str] = mapped_column(String(16))
    outcome: Mapped[str | None] = mapped_column(String(32), nullable=True)
    follow_up_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class WebSession(Base):
    """A signed-in browser: the cookie holds a random id, only its sha256 is stored here."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    sub: Mapped[str] = mapped_column(ID, index=True)
    # The id the person's records carry when they act as a student (their number, or its pseudonym).
    student_id: Mapped[str | None] = mapped_column(ID, nullable=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    roles: Mapped[list[str]] = mapped_column(JSON)
    active_role: Mapped[str] = mapped_column(String(32))
    csrf: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class StaffVisit(Base):
    """A member of staff's visits to their worklist in a role ("new since your last visit").

    A visit lasts while the worklist is read at least every half hour; ``previous_seen_at`` is when
    the visit before this one ended, the point "new" is measured from.
    """

    __tablename__ = "staff_visits"

    staff_id: Mapped[str] = mapped_column(ID, primary_key=True)
    role: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    previous_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class RunSummary(Base):
    """Aggregate summaries of one scoring run for one module presentation (``waymark monitor``).

    ``kind`` is ``features`` (counts in the training reference's bins), ``estimates`` (counts in
    tenths) or ``coverage`` (students active from each source in each week). Counts only: no
    student is named, and no protected characteristic is read.
    """

    __tablename__ = "run_summaries"

    run_id: Mapped[int] = mapped_column(ForeignKey("scoring_runs.id", ondelete="CASCADE"), primary_key=True)
    module_id: Mapped[str] = mapped_column(ID, primary_key=True)
    presentation_id: Mapped[str] = mapped_column(ID, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    week: Mapped[int] = mapped_column(Integer)
    summary: Mapped[dict[str, Any]] = mapped_column(JSON)


class MonitoringReport(Base):
    """One ``waymark monitor`` report: a run compared with training and the run before. Aggregate only."""

    __tablename__ = "monitoring_reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    target: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[int] = mapped_column(ForeignKey("scoring_runs.id"))
    previous_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    flags: Mapped[int] = mapped_column(Integer)
    report: Mapped[dict[str, Any]] = mapped_column(JSON)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
