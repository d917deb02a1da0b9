"""The service's database: one schema for indicators, access, the audit log and students' rights.

Alembic migrations (``service/db/migrations``) create it; a test checks they match these classes.
No table has a column for a protected characteristic (CoP §4): they are never stored here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ID = String(64)


class Base(DeclarativeBase):
    """Declarative base of the service schema."""


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


class Publication(Base):
    """Which complete run is served for a target: the pointer swapped in one transaction."""

    __tablename__ = "publications"

    target: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("scoring_runs.id"))
    published_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class Indicator(Base):
    """One student's explained indicator on one module presentation in one run."""

    __tablename__ = "indicators"
    __table_args__ = (Index("ix_indicators_student", "student_id", "run_id"),)

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
    factors: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    strengths: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    context: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    what_could_change: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    coverage: Mapped[dict[str, Any]] = mapped_column(JSON)
    engagement: Mapped[dict[str, Any]] = mapped_column(JSON)


class AccessGrant(Base):
    """A staff relationship (``waymark access import``): who supports whom."""

    __tablename__ = "access_grants"

    staff_id: Mapped[str] = mapped_column(ID, primary_key=True)
    relationship: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope_type: Mapped[str] = mapped_column(String(16), primary_key=True)
    scope_id: Mapped[str] = mapped_column(ID, primary_key=True)


class TrainingAttestation(Base):
    """A staff member's information-security training, valid until ``expires_at`` (CoP §5)."""

    __tablename__ = "training_attestations"

    staff_id: Mapped[str] = mapped_column(ID, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditRecord(Base):
    """One read or write of an individual's data; append-only and hash-chained."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_student", "student_id"),)

    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(ID)
    role: Mapped[str] = mapped_column(String(32))
    purpose: Mapped[str] = mapped_column(String(64))
    student_id: Mapped[str] = mapped_column(ID)
    action: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(64))
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
    basis: Mapped[str] = mapped_column(String(16))  # consent | exemption
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
    """A student's rectification or erasure request and how it was handled."""

    __tablename__ = "rights_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    student_id: Mapped[str] = mapped_column(ID, index=True)
    kind: Mapped[str] = mapped_column(String(16))  # rectification | erasure
    detail: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))  # open | done
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class TrainingExclusion(Base):
    """Students erased on request: excluded from later training (read by the training import)."""

    __tablename__ = "training_exclusions"

    student_id: Mapped[str] = mapped_column(ID, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AuditHead(Base):
    """The last record of the audit chain; locked while a record is appended, so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    hash: Mapped[str] = mapped_column(String(64))
