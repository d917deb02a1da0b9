"""Governance decisions in Waymark's own database: audits, ethics reviews, promotions.

This is the one place that decides whether a model version may be served. Each event is a row of
``model_decisions``; nothing is updated or deleted. A review binds to the audit it was given on: its
gate result, report hash, policy hash and bundle hash. A later audit of the same version (under any
policy) voids every earlier review, an approval of a gate that failed (the fairness gate, or the quality
gate kept in the audit's report, whose hash the review binds) needs an explicit override with a
reason, and the champion is the version last promoted here, served only while its latest review is
a valid approval and only with the bundle hash recorded here. MLflow tags and the ``champion``
alias are a mirror (``fairness.governance``) for people browsing MLflow; editing them changes nothing.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from waymark.fairness.gate import FAIL, PASS
from waymark.fairness.governance import mirror_audit, mirror_promotion, mirror_refusal, mirror_review
from waymark.fairness.policy import Policy
from waymark.service import audit, roles_held
from waymark.service.audit import RequestIds
from waymark.service.db.engine import transaction
from waymark.service.db.schema import (
    APPROVED,
    AUDIT,
    PROMOTED,
    REJECTED,
    AuditReport,
    ModelDecision,
    aware,
)
from waymark.service.security import Principal

if TYPE_CHECKING:  # the audit's pipeline (features, models) is not needed to record a decision
    from waymark.fairness.run import AuditOutcome

PURPOSE = "governance"  # the access-log purpose of governance actions


class GovernanceError(Exception):
    """A governance action was refused; the message gives the reason."""


@dataclass(frozen=True)
class Champion:
    """The version that may be served, and the only bundle hash it may be served with."""

    name: str
    version: str
    bundle_sha256: str


def _sha256(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def policy_sha256(policy: Policy) -> str:
    """A hash of every setting of the policy an audit ran under."""
    return _sha256(dataclasses.asdict(policy))


def report_sha256(report: dict[str, Any]) -> str:
    """A hash of the published report (what the committee read)."""
    return _sha256(report)


def _latest(session: Session, name: str, *, version: str, kinds: tuple[str, ...]) -> ModelDecision | None:
    query = (
        select(ModelDecision)
        .where(
            ModelDecision.model_name == name,
            ModelDecision.model_version == str(version),
            ModelDecision.kind.in_(kinds),
        )
        .order_by(ModelDecision.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def _add(session: Session, **values: Any) -> ModelDecision:
    row = ModelDecision(**values, at=datetime.now(UTC))
    session.add(row)
    session.flush()
    return row


def record_audit(
    session: Session,
    name: str,
    *,
    version: str,
    bundle_sha256: str,
    gate: str,
    report: dict[str, Any],
    policy: Policy,
    actor: str,
    trained_by: str | None = None,
) -> ModelDecision:
    """Record an audit's gate result and its report; every earlier review of this version stops counting.

    ``trained_by`` is who trained the version (its training run's tag): their approval is refused.
    """
    row = _add(
        session,
        model_name=name,
        model_version=str(version),
        kind=AUDIT,
        bundle_sha256=bundle_sha256,
        gate=gate,
        report_sha256=report_sha256(report),
        policy_sha256=policy_sha256(policy),
        actor=actor,
        recorded_by=actor,
        note="",
        approvals_required=max(policy.approvals, _in_force(session, name)),  # never below the one in force
        trained_by=trained_by or None,
    )
    session.add(AuditReport(decision_id=row.id, report=json.loads(json.dumps(report, default=str))))
    return row


def audit_report(session: Session, audit: ModelDecision) -> dict[str, Any] | None:
    """The report published with ``audit``, if it is stored and unchanged (None otherwise)."""
    stored = session.get(AuditReport, audit.id)
    if stored is None or report_sha256(stored.report) != audit.report_sha256:
        return None
    return stored.report


def quality_gate(session: Session, audited: ModelDecision) -> dict[str, Any] | None:
    """The quality gate published with ``audited`` (None when that audit predates the quality gate).

    Raises
    ------
    GovernanceError
        When the stored report is missing or does not match its hash: the result cannot be trusted.
    """
    report = audit_report(session, audited)
    if report is None:
        raise GovernanceError(
            f"the report stored with the audit of {audited.model_name} version {audited.model_version} is "
            "missing or does not match what was audited, so its quality gate cannot be read: audit it again"
        )
    quality: dict[str, Any] | None = report.get("quality_gate")
    return quality


def _quality_failure(session: Session, audited: ModelDecision) -> str | None:
    """Why the audit's quality gate failed, naming week and measure (None when it did not fail)."""
    quality = quality_gate(session, audited)
    if quality is None or quality.get("status") != FAIL:
        return None
    reasons = [r for c in quality.get("checks", []) if c.get("status") == FAIL for r in c.get("reasons", [])]
    shown = "; ".join(reasons[:6]) + (f"; and {len(reasons) - 6} more" if len(reasons) > 6 else "")
    name, version = audited.model_name, audited.model_version
    return f"the quality gate of {name} version {version} is '{FAIL}' ({shown})"


def _gate_failures(session: Session, audited: ModelDecision) -> list[str]:
    name, version = audited.model_name, audited.model_version
    failures = (
        [f"the fairness gate of {name} version {version} is '{audited.gate}'"] if audited.gate != PASS else []
    )
    quality = _quality_failure(session, audited)
    return failures + ([quality] if quality else [])


def record_review(
    session: Session,
    name: str,
    *,
    version: str,
    approve: bool,
    reviewer: str,
    note: str,
    recorded_by: str,
    override_reason: str | None = None,
    read_audit: int | None = None,
) -> ModelDecision:
    """Record the committee's decision on the version's latest audit (refused without one).

    ``read_audit``, the audit whose report the reviewer read, is refused when it is not the latest.

    Raises
    ------
    GovernanceError
        Without a reviewer or a note, without an audit, or approving a fairness or quality gate that
        failed without an override reason.
    """
    if not reviewer.strip() or not note.strip():
        raise GovernanceError("a review needs the reviewer's identifier and a note giving the reasons")
    audited = _latest(session, name, version=version, kinds=(AUDIT,))
    if audited is None:
        raise GovernanceError(
            f"no fairness audit is recorded for {name} version {version}: run `waymark fairness audit` first"
        )
    if read_audit is not None and read_audit != audited.id:
        raise GovernanceError(
            f"{name} version {version} was audited again ({audited.at:%Y-%m-%d %H:%M}) after the report you "
            "read: read the new report and decide on it"
        )
    override = (override_reason or "").strip() or None
    if approve and override is not None and not _gate_failures(session, audited):
        raise GovernanceError(
            "the audit's gates passed, so there is nothing to override: approve without an override reason"
        )
    if approve and override is not None:  # an override is given on the report as published, never on another
        failures = _report_blockers(session, audited)
    else:
        failures = _gate_failures(session, audited) if approve else []
    if approve and (builder := roles_held.builders(session, [reviewer])):
        raise GovernanceError(
            f"{reviewer} has held the data scientist's role (last seen in it {builder[reviewer]:%Y-%m-%d}): "
            "an approval must come from an ethics reviewer who does not build the models the committee "
            "reviews, so it was not recorded (a rejection is); if they no longer hold that role, the "
            "database owner clears it, with the reason (`waymark access clear-holding`)"
        )
    trained_by = audited.trained_by
    if approve and trained_by and roles_held.same_person(trained_by, reviewer):
        raise GovernanceError(
            f"{reviewer} trained {name} version {version} (its training run's trained_by): an approval "
            "must come from an ethics reviewer who did not build the model, so it was not recorded (a "
            "rejection is)"
        )
    needed = approvals_required(session, audited)
    again = any(roles_held.same_person(reviewer, given) for given in approvers(session, audited))
    if approve and again and needed > 1:
        raise GovernanceError(
            f"{reviewer} has already approved this audit, and an approval counts once: {needed} approvals "
            "by different ethics reviewers are needed"
        )
    if failures and override is not None:
        raise GovernanceError("; ".join(failures))
    if failures:
        raise GovernanceError(
            "; ".join(failures) + ": an approval needs an explicit override with the committee's reason "
            "(--override-reason), which the report will show"
        )
    return _add(
        session,
        model_name=name,
        model_version=str(version),
        kind=APPROVED if approve else REJECTED,
        bundle_sha256=audited.bundle_sha256,
        gate=audited.gate,
        report_sha256=audited.report_sha256,
        policy_sha256=audited.policy_sha256,
        audit_id=audited.id,
        override_reason=override if approve else None,
        actor=reviewer,
        recorded_by=recorded_by,
        note=note,
    )


def blockers(session: Session, name: str, *, version: str) -> list[str]:
    """Why ``version`` may not be served (empty when it may)."""
    audited = _latest(session, name, version=version, kinds=(AUDIT,))
    if audited is None:
        return [f"no fairness audit is recorded for {name} version {version}: run `waymark fairness audit`"]
    review = _latest(session, name, version=version, kinds=(APPROVED, REJECTED))
    if review is None:
        return [
            f"no ethics committee approval is recorded for {name} version {version}: `waymark model review`"
        ]
    if review.audit_id != audited.id:
        return [
            f"the latest review of {name} version {version} was given on an earlier audit; the audit of "
            f"{audited.at:%Y-%m-%d %H:%M} (gate '{audited.gate}') needs its own review"
        ]
    if review.kind != APPROVED:
        return [f"the ethics committee's decision on {name} version {version} is '{review.kind}'"]
    needed, given = approvals_required(session, audited), approvers(session, audited)
    if len(given) < needed:
        void = held_back(session, audited)
        builders = [h.reviewer for h in void if h.cleared_at is None]
        uncounted = (
            f"; the approval of {', '.join(builders)} does not count: seen holding the data scientist's role"
            if builders
            else ""
        )
        uncounted += "".join(
            f"; the approval that {h.reviewer} gave on {h.approved_at.astimezone(UTC):%Y-%m-%d} does not "
            "count: given before their holding of the data scientist's role was cleared on "
            f"{h.cleared_at.astimezone(UTC):%Y-%m-%d} (UTC), so an "
            "approval they give now counts"
            for h in void
            if h.cleared_at is not None
        )
        return [
            f"{needed} approvals of {name} version {version} by different ethics reviewers are needed on "
            f"its latest audit, and {len(given)} {'is' if len(given) == 1 else 'are'} recorded "
            f"({', '.join(given)}){uncounted}"
        ]
    if audited.gate != PASS and not review.override_reason:
        why = (
            "a model that breaks a tolerance cannot be served"
            if audited.gate == FAIL
            else "no comparison had its estimate within the policy's tolerances (for some characteristic, "
            "or at all), so it is served only on an approval with an override reason"
        )
        return [f"the fairness gate result is '{audited.gate}': {why}"]
    if not review.override_reason:
        return _quality_blockers(session, audited)
    return _report_blockers(session, audited)


def approvals_required(session: Session, audited: ModelDecision) -> int:
    """How many different reviewers must approve ``audited``: at least as many as the champion's audit.

    Its policy's number, and never fewer than the one the last promoted version's audit asked for. The
    number comes from the policy file of whoever runs the audit: re-audited under the default, a
    committee's three would have become one (a reviewer's finding). A promotion records the number
    it was given under, so the number in force carries forward from promotion to promotion.
    """
    return max(audited.approvals_required or 1, _in_force(session, audited.model_name))


def _in_force(session: Session, name: str) -> int:
    """The approvals ``name``'s last promotion was given under (1 before any promotion).

    Recorded with the promotion (one recorded before this was kept: its audit's number instead):
    stored as each audit's own policy's, a committee's three lasted one promotion, and audits run
    under the default brought it to one (a red team's finding).
    """
    promoted = session.execute(
        select(ModelDecision.approvals_required, ModelDecision.audit_id)
        .where(ModelDecision.model_name == name, ModelDecision.kind == PROMOTED)
        .order_by(ModelDecision.id.desc())
        .limit(1)
    ).first()
    if promoted is None:
        return 1
    if promoted.approvals_required is not None:
        return int(promoted.approvals_required)
    audited = session.get(ModelDecision, promoted.audit_id) if promoted.audit_id is not None else None
    return (audited.approvals_required or 1) if audited is not None else 1


def approvers(session: Session, audited: ModelDecision) -> list[str]:
    """The different reviewers whose approval of ``audited`` counts: those since its latest rejection.

    A rejection by any reviewer sets the count back to none (the committee's latest word was no).
    """
    return [a.actor for a in approvals(session, audited)]


def approvals(session: Session, audited: ModelDecision) -> list[ModelDecision]:
    """The approvals of ``audited`` that count, one per reviewer (their latest), in the order given.

    An approval by a reviewer seen holding the data scientist's role does not count, however it was
    recorded (before revision 0026, or before they were first seen in that role), nor one given
    before their holding was cleared (unless it had been recorded in error).
    """
    standing = _standing(session, audited)
    uncounted = _uncounted(session, standing)
    return [review for actor, review in standing.items() if actor not in uncounted]


def builder_approvals(session: Session, audited: ModelDecision) -> list[str]:
    """Reviewers whose approval of ``audited`` stands uncounted: builders, now or when they gave it."""
    return [h.reviewer for h in held_back(session, audited)]


@dataclass(frozen=True)
class HeldBack:
    """An approval that stands but does not count, and why.

    ``cleared_at`` None: its reviewer is recorded holding the data scientist's role. Otherwise it was
    given before that holding was cleared (not in error), on ``cleared_at``: an approval the reviewer
    gives now counts.
    """

    reviewer: str
    approved_at: datetime
    cleared_at: datetime | None = None


def held_back(session: Session, audited: ModelDecision) -> list[HeldBack]:
    """The approvals of ``audited`` that stand uncounted, by reviewer, each with why."""
    standing = _standing(session, audited)
    uncounted = _uncounted(session, standing)
    return [
        HeldBack(actor, aware(standing[actor].at), cleared_at=uncounted[actor]) for actor in sorted(uncounted)
    ]


def _uncounted(session: Session, standing: dict[str, ModelDecision]) -> dict[str, datetime | None]:
    """Of the ``standing`` approvals' reviewers, those whose approval does not count.

    They hold the data scientist's role (None), or gave it before a clearance of their holding that
    does not say it was recorded in error (the clearance's time).
    """
    builders = roles_held.builders(session, standing)
    cleared = roles_held.cleared_at(session, standing)
    return {
        actor: None if actor in builders else cleared[actor]
        for actor, review in standing.items()
        if actor in builders or (actor in cleared and aware(review.at) <= cleared[actor])
    }


def _standing(session: Session, audited: ModelDecision) -> dict[str, ModelDecision]:
    """Each reviewer's latest approval of ``audited`` since its latest rejection, in the order given.

    Reviewers are one person whatever the case or Unicode form their id is written in (``roles_held``'s
    comparison): from the command line, ``--reviewer Rev-1`` and ``--reviewer rev-1`` had counted twice
    towards a quorum. Keyed by the id the latest approval gives.
    """
    reviews = session.scalars(
        select(ModelDecision)
        .where(ModelDecision.audit_id == audited.id, ModelDecision.kind.in_((APPROVED, REJECTED)))
        .order_by(ModelDecision.id)
    ).all()
    given: dict[str, ModelDecision] = {}
    for review in reviews:
        if review.kind == REJECTED:
            given = {}
        else:
            for same in [a for a in given if roles_held.same_person(a, review.actor)]:
                del given[same]
            given[review.actor] = review
    return given


def override_reasons(session: Session, audited: ModelDecision) -> list[str]:
    """Every counted approver's stated reason for setting ``audited``'s failed gate aside, in order.

    With a quorum each approval of a failed gate carries its own reason; the committee page and the
    transparency statement had published only the last approver's.
    """
    return [a.override_reason for a in approvals(session, audited) if a.override_reason]


def _report_blockers(session: Session, audited: ModelDecision) -> list[str]:
    """Why the report stored with ``audited`` cannot be relied on (empty when it is there, unchanged).

    An override sets a failed gate aside on what the committee read: without that report, as
    published, there is nothing the override was given on.
    """
    if audit_report(session, audited) is not None:
        return []
    return [
        f"the report stored with the audit of {audited.model_name} version {audited.model_version} is "
        "missing or does not match what was audited, so the override given on it cannot be relied on: "
        "audit it again"
    ]


def _quality_blockers(session: Session, audited: ModelDecision) -> list[str]:
    try:
        failure = _quality_failure(session, audited)
    except GovernanceError as exc:
        return [str(exc)]
    return [f"{failure}: a model below the quality policy cannot be served"] if failure else []


def record_promotion(session: Session, name: str, *, version: str, actor: str) -> ModelDecision:
    """Make ``version`` the champion, only if nothing blocks it.

    Raises
    ------
    GovernanceError
        With every reason the version may not be served.
    """
    reasons = blockers(session, name, version=version)
    if reasons:
        raise GovernanceError(f"{name} version {version} cannot be promoted: " + "; ".join(reasons))
    audited = _latest(session, name, version=version, kinds=(AUDIT,))
    assert audited is not None  # noqa: S101  (no blockers means an audit exists)
    return _add(
        session,
        model_name=name,
        model_version=str(version),
        kind=PROMOTED,
        bundle_sha256=audited.bundle_sha256,
        audit_id=audited.id,
        actor=actor,
        recorded_by=actor,
        note="",
        approvals_required=_in_force_after(session, audited),
    )


def _in_force_after(session: Session, audited: ModelDecision) -> int:
    """The approvals in force once ``audited``'s version is promoted: those it was approved under.

    Lower only where its policy says, in ``[review] lower_from``, that it lowers exactly the number in
    force, and so was approved by that many reviewers knowing it (a reviewer: with a number that could
    only rise, a committee that shrank could never promote again).
    """
    enforced = approvals_required(session, audited)
    policy = (audit_report(session, audited) or {}).get("policy") or {}
    lowered, asked = policy.get("lower_from"), policy.get("approvals")
    if isinstance(lowered, int) and isinstance(asked, int) and lowered == enforced and asked < lowered:
        return asked
    return enforced


def _last_promoted(session: Session, name: str) -> str | None:
    query = (
        select(ModelDecision.model_version)
        .where(ModelDecision.model_name == name, ModelDecision.kind == PROMOTED)
        .order_by(ModelDecision.id.desc())
        .limit(1)
    )
    return session.scalar(query)


def champion(session: Session, name: str) -> Champion | None:
    """The version last promoted for ``name``, if it may still be served (there is no fallback)."""
    version = _last_promoted(session, name)
    if version is None or blockers(session, name, version=version):
        return None
    audited = _latest(session, name, version=version, kinds=(AUDIT,))
    assert audited is not None  # noqa: S101  (no blockers means an audit exists)
    return Champion(name, version, audited.bundle_sha256)


def champion_blockers(session: Session, name: str) -> list[str]:
    """Why ``name`` has no servable champion (empty when it has one)."""
    version = _last_promoted(session, name)
    if version is None:
        return [f"no version of {name} has been promoted: audit, review and promote one first"]
    return blockers(session, name, version=version)


def history(session: Session, name: str) -> list[ModelDecision]:
    """Every decision about ``name``, oldest first."""
    query = select(ModelDecision).where(ModelDecision.model_name == name).order_by(ModelDecision.id)
    return list(session.scalars(query))


def latest_review(session: Session, name: str, *, version: str) -> ModelDecision | None:
    """The most recent review of a version (None when it has none)."""
    return _latest(session, name, version=version, kinds=(APPROVED, REJECTED))


def latest_audit(session: Session, name: str, *, version: str) -> ModelDecision | None:
    """The most recent audit of a version (None when it has none)."""
    return _latest(session, name, version=version, kinds=(AUDIT,))


def review(
    session: Session,
    name: str,
    *,
    version: str,
    approve: bool,
    note: str,
    caller: Principal,
    request: RequestIds,
    reviewer: str | None = None,
    override_reason: str | None = None,
    read_audit: int | None = None,
) -> ModelDecision:
    """Record a review (by ``reviewer``, default the caller) and its access-log record, together.

    A caller whose token or session says they also hold the data scientist's role may not approve,
    whether or not that role was ever seen in use (``service.roles_held``).
    """
    if approve and reviewer in (None, caller.sub) and roles_held.BUILDS in caller.holds:
        raise GovernanceError(
            f"{caller.sub} also holds the data scientist's role, as their sign-in says: an approval must "
            "come from an ethics reviewer who does not build the models the committee reviews, so it was "
            "not recorded (a rejection is)"
        )
    row = record_review(
        session,
        name,
        version=version,
        approve=approve,
        reviewer=reviewer or caller.sub,
        note=note,
        recorded_by=caller.sub,
        override_reason=override_reason,
        read_audit=read_audit,
    )
    audit.record_action(
        session, caller, purpose=PURPOSE, action=f"model_{row.kind}:{row.id}", request=request
    )
    return row


def promote(
    session: Session, name: str, *, version: str, caller: Principal, request: RequestIds
) -> ModelDecision:
    """Record a promotion and its access-log record, together."""
    row = record_promotion(session, name, version=version, actor=caller.sub)
    audit.record_action(session, caller, purpose=PURPOSE, action=f"model_promoted:{row.id}", request=request)
    return row


def mirror(row: ModelDecision) -> None:
    """Copy a committed review or promotion onto MLflow's tags and alias (for people browsing MLflow)."""
    uri = f"models:/{row.model_name}/{row.model_version}"
    if row.kind in (APPROVED, REJECTED):
        mirror_review(uri, row.kind, reviewer=row.actor, note=row.note, override_reason=row.override_reason)
    elif row.kind == PROMOTED:
        mirror_promotion(row.model_name, row.model_version, actor=row.actor)


# The command line's path: each decision in a transaction of its own, mirrored onto MLflow once committed.


def commit_audit(
    engine: Engine, uri: str, *, outcome: AuditOutcome, report: dict[str, Any], folder: Path, actor: str
) -> ModelDecision:
    """Record an audit's gate here, then attach its files (``folder``) and tags to the version in MLflow."""
    model = outcome.model
    with transaction(engine) as session:
        row = record_audit(
            session,
            model.name,
            version=model.version,
            bundle_sha256=model.sha256,
            gate=outcome.gate,
            report=report,
            policy=outcome.policy,
            actor=actor,
            trained_by=outcome.trained_by,
        )
    mirror_audit(
        uri, outcome.gate, bundle_sha256=model.sha256, run_id=outcome.run_id, folder=folder, report=report
    )
    return row


def commit_review(
    engine: Engine,
    key: bytes,
    *,
    name: str,
    version: str,
    approve: bool,
    note: str,
    caller: Principal,
    reviewer: str | None = None,
    override_reason: str | None = None,
) -> ModelDecision:
    """Record a review with its access-log record (under ``key``), then mirror it."""
    with audit.unit(engine, key) as session:
        row = review(
            session,
            name,
            version=version,
            approve=approve,
            note=note,
            caller=caller,
            request=RequestIds.new(),
            reviewer=reviewer,
            override_reason=override_reason,
        )
    mirror(row)
    return row


def commit_promotion(
    engine: Engine, key: bytes, *, name: str, version: str, caller: Principal
) -> ModelDecision:
    """Record a promotion with its access-log record, then mirror it; a refusal is mirrored as an event."""
    try:
        with audit.unit(engine, key) as session:
            row = promote(session, name, version=version, caller=caller, request=RequestIds.new())
    except GovernanceError as exc:
        mirror_refusal(name, version, actor=caller.sub, reasons=[str(exc)])
        raise
    mirror(row)
    return row
