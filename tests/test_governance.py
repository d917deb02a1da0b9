"""Governance lives in Waymark's database: audits, reviews bound to them, promotions, the champion."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from sqlalchemy import Engine, select

from tests.champion import Champion, approve_and_promote, govern, register, settings_in
from waymark.fairness.governance import CHAMPION, DECISION_TAG, GATE_SHA_TAG, GATE_TAG
from waymark.fairness.policy import Policy, PolicyError, differences_from_default, load_policy
from waymark.models.bundle import bundle_sha256
from waymark.models.registry import SHA_TAG, Version, configure
from waymark.service import audit, decisions, roles_held, sessions
from waymark.service.api import governance as governance_api
from waymark.service.audit import RequestIds
from waymark.service.db.engine import make_engine, transaction, upgrade
from waymark.service.db.schema import AuditRecord, AuditReport, ModelDecision, RoleHolding
from waymark.service.decisions import GovernanceError
from waymark.service.scoring import ChampionUnavailableError, load_champion
from waymark.service.security import Principal

NAME, KEY = "waymark-not-completing", b"g" * 40
REPORT = {"gate": {"checks": []}, "groups": ["suppressed below 10"]}
CLERK = Principal("clerk-1", "ethics_reviewer", None)


def _audit(engine: Engine, version: str, gate: str, sha: str = "a" * 64) -> None:
    with transaction(engine) as session:
        decisions.record_audit(
            session,
            NAME,
            version=version,
            bundle_sha256=sha,
            gate=gate,
            report=REPORT,
            policy=load_policy(),
            actor="auditor",
        )


def _review(engine: Engine, version: str, approve: bool, override: str | None = None) -> ModelDecision:
    with audit.unit(engine, KEY) as session:
        return decisions.review(
            session,
            NAME,
            version=version,
            approve=approve,
            note="the committee's reasons",
            caller=CLERK,
            request=RequestIds("r-1"),
            override_reason=override,
        )


def _promote(engine: Engine, version: str) -> None:
    with audit.unit(engine, KEY) as session:
        decisions.promote(session, NAME, version=version, caller=CLERK, request=RequestIds("r-2"))


def _approve(engine: Engine, version: str, reviewer: str) -> None:
    """One ethics reviewer's approval of ``version``'s latest audit, in their own name."""
    with audit.unit(engine, KEY) as session:
        decisions.review(
            session, NAME, version=version, approve=True, note="reasons",
            caller=Principal(reviewer, "ethics_reviewer", None), request=RequestIds("r-q"),
        )  # fmt: skip


def _champion(engine: Engine) -> decisions.Champion | None:
    with transaction(engine) as session:
        return decisions.champion(session, NAME)


def test_a_review_needs_an_audit_and_approving_a_gate_that_failed_needs_a_stated_override(
    engine: Engine,
) -> None:
    with pytest.raises(GovernanceError, match="no fairness audit"):
        _review(engine, "1", True)
    _audit(engine, "1", "fail")
    with pytest.raises(GovernanceError, match="override"):
        _review(engine, "1", True)
    row = _review(engine, "1", True, override="the breach is in a group the pilot does not reach")
    assert row.override_reason and row.gate == "fail" and row.recorded_by == "clerk-1"
    _promote(engine, "1")
    assert _champion(engine) == decisions.Champion(NAME, "1", "a" * 64)


def test_an_override_of_gates_that_passed_is_refused_not_recorded(engine: Engine) -> None:
    _audit(engine, "1", "pass")
    with pytest.raises(GovernanceError, match="nothing to override"):
        _review(engine, "1", True, override="testing")
    row = _review(engine, "1", True)
    assert row.override_reason is None and row.kind == "approved"


def test_an_override_holds_only_while_the_report_it_was_given_on_is_stored_unchanged(engine: Engine) -> None:
    _audit(engine, "1", "fail")
    with transaction(engine) as session:
        stored = session.scalars(select(AuditReport)).one()
        stored.report = {**REPORT, "gate": {"checks": [], "status": "pass"}}  # edited in the database
    with pytest.raises(GovernanceError, match="missing or does not match"):
        _review(engine, "1", True, override="the breach is in a group the pilot does not reach")
    with transaction(engine) as session:
        session.scalars(select(AuditReport)).one().report = REPORT  # put back as it was published
    _review(engine, "1", True, override="the breach is in a group the pilot does not reach")
    _promote(engine, "1")
    assert _champion(engine) == decisions.Champion(NAME, "1", "a" * 64)
    with transaction(engine) as session:
        session.delete(session.scalars(select(AuditReport)).one())
    assert _champion(engine) is None
    with transaction(engine) as session:
        reasons = decisions.blockers(session, NAME, version="1")
    assert len(reasons) == 1 and "override given on it cannot be relied on" in reasons[0]


def test_a_new_audit_voids_the_approval_given_on_the_earlier_one(engine: Engine) -> None:
    _audit(engine, "1", "fail")
    _review(engine, "1", True, override="accepted for a two-week pilot")
    _promote(engine, "1")
    _audit(engine, "1", "pass")  # re-audited, say under a loosened policy file
    assert _champion(engine) is None
    with transaction(engine) as session:
        reasons = decisions.blockers(session, NAME, version="1")
    assert len(reasons) == 1 and "earlier audit" in reasons[0]
    with pytest.raises(GovernanceError, match="earlier audit"):
        _promote(engine, "1")
    _review(engine, "1", True)
    assert _champion(engine) == decisions.Champion(NAME, "1", "a" * 64)


def test_rejecting_the_champion_leaves_nothing_served_and_no_fallback(engine: Engine) -> None:
    for version in ("1", "2"):
        _audit(engine, version, "pass", sha=version * 64)
        _review(engine, version, True)
        _promote(engine, version)
    assert _champion(engine) == decisions.Champion(NAME, "2", "2" * 64)
    _review(engine, "2", False)
    assert _champion(engine) is None  # version 1 is still approved, but nothing falls back to it
    with transaction(engine) as session:
        kinds = [(d.model_version, d.kind) for d in decisions.history(session, NAME)]
        logged = session.scalars(select(AuditRecord.action).where(AuditRecord.student_id == "")).all()
    assert kinds[-1] == ("2", "rejected") and len(kinds) == 7
    assert [a.split(":")[0] for a in logged] == ["model_approved", "model_promoted"] * 2 + ["model_rejected"]


def test_a_review_without_the_reviewer_or_a_note_is_refused(engine: Engine) -> None:
    _audit(engine, "1", "pass")
    with transaction(engine) as session, pytest.raises(GovernanceError, match="reviewer"):
        decisions.record_review(
            session, NAME, version="1", approve=True, reviewer=" ", note="reasons", recorded_by="clerk"
        )


def test_a_policy_may_ask_for_several_reviewers_approvals_and_a_rejection_sets_the_count_back(
    engine: Engine,
) -> None:
    """One reviewer's account decided for the committee, an override included (docs/reviews.md)."""
    two = dataclasses.replace(load_policy(), approvals=2)
    assert "approvals 2 (default 1)" in differences_from_default(two)
    with transaction(engine) as session:
        decisions.record_audit(
            session,
            NAME,
            version="1",
            bundle_sha256="a" * 64,
            gate="fail",
            report=REPORT,
            policy=two,
            actor="a",
        )

    def review(reviewer: str, *, approve: bool = True) -> None:
        with audit.unit(engine, KEY) as session:
            decisions.review(
                session,
                NAME,
                version="1",
                approve=approve,
                note="the committee's reasons",
                caller=Principal(reviewer, "ethics_reviewer", None),
                request=RequestIds("r-q"),
                override_reason=f"{reviewer}: a two-week pilot the committee watches" if approve else None,
            )

    review("reviewer-a")
    with pytest.raises(GovernanceError, match=r"2 approvals .* 1 is recorded \(reviewer-a\)"):
        _promote(engine, "1")
    with pytest.raises(GovernanceError, match="already approved this audit"):
        review("reviewer-a")  # the same person twice is one approval
    with pytest.raises(GovernanceError, match="already approved this audit"):
        review("Reviewer-A")  # whatever the case their id is written in (the CLI's --reviewer)
    with transaction(engine) as session:  # and an approval recorded so before that check counts once
        (given,) = session.scalars(select(ModelDecision).where(ModelDecision.kind == "approved")).all()
        columns = {c.key: getattr(given, c.key) for c in ModelDecision.__table__.columns if c.key != "id"}
        session.add(ModelDecision(**{**columns, "actor": "REVIEWER-A"}))
    with transaction(engine) as session:
        audited = decisions.latest_audit(session, NAME, version="1")
        assert audited is not None and decisions.approvers(session, audited) == ["REVIEWER-A"]
    review("reviewer-b")
    _promote(engine, "1")
    assert _champion(engine) == decisions.Champion(NAME, "1", "a" * 64)
    review("reviewer-c", approve=False)  # any reviewer's rejection: nothing is served
    assert _champion(engine) is None
    review("reviewer-a")  # the count starts again after the rejection
    with transaction(engine) as session:
        assert "1 is recorded (reviewer-a)" in decisions.blockers(session, NAME, version="1")[0]
    review("reviewer-c")
    assert _champion(engine) == decisions.Champion(NAME, "1", "a" * 64)
    # Each approver's reason is published, not only the last one's (the rejected round's are gone).
    with transaction(engine) as session:
        audited = decisions.latest_audit(session, NAME, version="1")
        assert audited is not None
        assert decisions.override_reasons(session, audited) == [
            "reviewer-a: a two-week pilot the committee watches",
            "reviewer-c: a two-week pilot the committee watches",
        ]


def test_a_person_who_holds_the_data_scientists_role_cannot_approve_but_may_reject(engine: Engine) -> None:
    """One person given both roles had approved the models they built (docs/reviews.md)."""
    _audit(engine, "1", "pass")
    # Signing in with both roles records both; a data scientist's own sign-in records theirs.
    sessions.start(engine, sub="both-1", name="Both", roles=["ethics_reviewer", "data_scientist"], hours=1)
    sessions.start(engine, sub="rev-only", name="Reviewer", roles=["ethics_reviewer", "student"], hours=1)
    with transaction(engine) as session:
        held = session.execute(select(RoleHolding.staff_id, RoleHolding.role)).all()
    assert held == [("both-1", "data_scientist")]  # only the role the rule reads is kept
    with pytest.raises(GovernanceError, match="has held the data scientist's role") as refused:
        _approve(engine, "1", "both-1")
    assert "waymark access clear-holding" in str(refused.value)
    with transaction(engine) as session:
        assert decisions.latest_review(session, NAME, version="1") is None  # nothing was recorded
        # The CLI's typed reviewer is read the same way.
        with pytest.raises(GovernanceError, match="data scientist's role"):
            decisions.record_review(
                session, NAME, version="1", approve=True, reviewer="both-1", note="n", recorded_by="clerk"
            )
    with audit.unit(engine, KEY) as session:  # a rejection only ever keeps a model from staff
        rejected = decisions.review(
            session, NAME, version="1", approve=False, note="not yet",
            caller=Principal("both-1", "ethics_reviewer", None), request=RequestIds("r-b"),
        )  # fmt: skip
    assert rejected.kind == "rejected"
    _approve(engine, "1", "rev-only")
    _promote(engine, "1")
    assert _champion(engine) == decisions.Champion(NAME, "1", "a" * 64)


def test_an_approval_stops_counting_once_its_reviewer_is_seen_building_models(engine: Engine) -> None:
    """Approving first and being seen as a data scientist after (a token each) had kept the approval
    counting, and promotion went ahead on it (a reviewer's finding)."""
    _audit(engine, "1", "pass")
    _approve(engine, "1", "rev-late")
    _promote(engine, "1")
    assert _champion(engine) == decisions.Champion(NAME, "1", "a" * 64)
    sessions.start(engine, sub="REV-Late", name="", roles=["data_scientist"], hours=1)  # ids without case
    sessions.start(engine, sub="Élodie", name="", roles=["data_scientist"], hours=1)  # beyond ASCII too
    with transaction(engine) as session:
        assert set(roles_held.builders(session, ["élodie", "ÉLODIE", "elodie"])) == {"élodie", "ÉLODIE"}
    assert _champion(engine) is None  # nothing served on it any more
    with transaction(engine) as session:
        said = decisions.blockers(session, NAME, version="1")
    assert "0 are recorded" in said[0] and "the approval of rev-late does not count" in said[0]
    with transaction(engine) as session:
        audited = decisions.latest_audit(session, NAME, version="1")
        assert audited is not None and decisions.builder_approvals(session, audited) == ["rev-late"]
        assert [h.cleared_at for h in decisions.held_back(session, audited)] == [None]  # no clearance
        page = governance_api._report(session, Version(NAME, "1", "run-1"), champion=None)
        assert page.uncounted_approvals == ["rev-late"] and page.cleared_approvals == []
    with pytest.raises(GovernanceError, match="does not count"):
        _promote(engine, "1")
    _approve(engine, "1", "rev-other")  # another reviewer's approval: served again
    assert _champion(engine) == decisions.Champion(NAME, "1", "a" * 64)


def test_a_holding_cleared_keeps_who_cleared_it_when_and_why_and_approvals_count_from_then(
    engine: Engine,
) -> None:
    """A holding was cleared with a plain DELETE, leaving no record of who cleared it or why, and every
    approval it had held back counted again, those given while building models too (docs/reviews.md)."""
    _audit(engine, "1", "pass")
    _approve(engine, "1", "moved-on")
    _promote(engine, "1")
    cookie, _ = sessions.start(engine, sub="Moved-On", name="", roles=["data_scientist"], hours=1)
    sessions.start(engine, sub="still-builds", name="", roles=["data_scientist"], hours=1)
    assert _champion(engine) is None  # their approval is held back
    owner = Principal("dba-1", "operator", None)

    def clear(staff: str, reason: str = "left data science for the committee", **kw: object) -> list[Any]:
        with audit.unit(engine, KEY) as session:
            return roles_held.clear(
                session, staff, reason=reason, caller=kw.pop("caller", owner), request=RequestIds("r-c"), **kw
            )

    for refused, said in (
        (lambda: clear("moved-on", "  "), "reason"),
        (lambda: clear("never-held"), "nobody is recorded"),
        (
            lambda: clear("moved-on", caller=Principal("MOVED-ON", "operator", None)),
            "cleared by someone else",
        ),
        (lambda: clear("moved-on"), "signed in to the workspace with the data scientist's role"),
    ):
        with pytest.raises((roles_held.MayNotClear, roles_held.NoHolding), match=said):
            refused()
    sessions.end(engine, cookie)
    with transaction(engine) as session:
        assert roles_held.approvals_given(session, "MOVED-ON") == 1
        assert roles_held.clearances(session) == []  # nothing was written by the refusals
    cleared = clear("MOVED-ON")
    assert [(c.staff_id, c.cleared_by, c.reason, c.in_error) for c in cleared] == [
        ("Moved-On", "dba-1", "left data science for the committee", False)
    ]
    with transaction(engine) as session:
        assert [h.staff_id for h in roles_held.holdings(session)] == ["still-builds"]  # only theirs went
        kept = roles_held.clearances(session)
        assert [(c.staff_id, c.role) for c in kept] == [("Moved-On", "data_scientist")]
        assert kept[0].first_seen_at <= kept[0].last_seen_at <= kept[0].cleared_at
        logged = session.scalars(select(AuditRecord).where(AuditRecord.actor == "dba-1")).all()
        assert [(r.purpose, r.action) for r in logged] == [("governance", f"holding_cleared:{kept[0].id}")]
        # the approval given before, while they may have built the models reviewed, stays uncounted
        audited = decisions.latest_audit(session, NAME, version="1")
        assert audited is not None and decisions.builder_approvals(session, audited) == ["moved-on"]
        # and is said with its clearance, not as by someone who still builds (the committee page had
        # named it "who has held the data scientist's role", and no more: docs/reviews.md)
        held = decisions.held_back(session, audited)
        assert [h.reviewer for h in held] == ["moved-on"] and held[0].cleared_at is not None
        assert held[0].approved_at <= held[0].cleared_at
        said = decisions.blockers(session, NAME, version="1")[0]
        assert "seen holding" not in said
        approved, cleared = (held[0].approved_at.astimezone(UTC), held[0].cleared_at.astimezone(UTC))
        assert (
            f"the approval that moved-on gave on {approved:%Y-%m-%d} does not count: given before "
            f"their holding of the data scientist's role was cleared on {cleared:%Y-%m-%d} (UTC), so an "
            "approval they give now counts"
        ) in said
        page = governance_api._report(session, Version(NAME, "1", "run-1"), champion=None)
        assert page.uncounted_approvals == ["moved-on"]
        assert [(c.reviewer, c.approved_on, c.cleared_on) for c in page.cleared_approvals] == [
            ("moved-on", approved.date(), cleared.date())  # days, not moments (the Code of Practice's row)
        ]
    assert audit.verify_log(engine, KEY).problems == []
    assert _champion(engine) is None
    _approve(engine, "1", "moved-on")  # given now, it counts
    assert _champion(engine) == decisions.Champion(NAME, "1", "a" * 64)


def test_the_person_who_trained_a_version_may_not_approve_it_whatever_their_holdings(engine: Engine) -> None:
    """A data scientist whose holding was cleared could approve a version they had trained themself
    (a reviewer's finding): the audit keeps the training run's ``trained_by``, and approvals read it.
    It is kept beside the audit, never in the published report (which names no member of staff)."""
    with transaction(engine) as session:
        decisions.record_audit(
            session, NAME, version="1", bundle_sha256="a" * 64, gate="pass",
            report=REPORT, policy=load_policy(), actor="auditor", trained_by="DS-Ana",
        )  # fmt: skip
    with pytest.raises(GovernanceError, match="ds-ana trained waymark-not-completing version 1"):
        _approve(engine, "1", "ds-ana")  # never recorded holding the role: the run names them all the same
    with transaction(engine) as session:
        assert decisions.latest_review(session, NAME, version="1") is None
    _approve(engine, "1", "rev-1")
    _promote(engine, "1")
    assert _champion(engine) == decisions.Champion(NAME, "1", "a" * 64)


def test_a_holding_recorded_in_error_is_cleared_with_the_approvals_it_held_back(engine: Engine) -> None:
    """A reviewer named by a wrong WAYMARK_OPERATOR never built anything: their approval counts again."""
    _audit(engine, "1", "pass")
    _approve(engine, "1", "rev-1")
    _promote(engine, "1")
    with transaction(engine) as session:
        roles_held.seen(session, "rev-1", roles=["data_scientist"])  # as `waymark train` records it
    assert _champion(engine) is None
    with audit.unit(engine, KEY) as session:
        roles_held.clear(
            session, "rev-1", reason="WAYMARK_OPERATOR named the wrong person", in_error=True,
            caller=Principal("dba-1", "operator", None), request=RequestIds("r-c"),
        )  # fmt: skip
    assert _champion(engine) == decisions.Champion(NAME, "1", "a" * 64)
    with transaction(engine) as session:  # seen building again: held back again
        roles_held.seen(session, "rev-1", roles=["data_scientist"])
    assert _champion(engine) is None


def test_a_committee_lowers_its_quorum_only_by_approving_an_audit_that_says_so(engine: Engine) -> None:
    """With the number in force carried forward, a committee that had shrunk could never promote again
    (a reviewer): a policy lowering it names the number it lowers (``lower_from``), its audit still
    needs that many approvals, and once its version is promoted the lower number is in force."""
    two = dataclasses.replace(load_policy(), approvals=2)
    lowering = dataclasses.replace(load_policy(), approvals=1, lower_from=2)

    def audited(version: str, policy: Policy) -> None:
        with transaction(engine) as session:
            decisions.record_audit(
                session, NAME, version=version, bundle_sha256=version * 64, gate="pass", policy=policy,
                report={**REPORT, "policy": {"approvals": policy.approvals, "lower_from": policy.lower_from}},
                actor="a",
            )  # fmt: skip

    def approve(version: str, reviewer: str) -> None:
        _approve(engine, version, reviewer)

    audited("1", two)
    approve("1", "reviewer-a")
    approve("1", "reviewer-b")
    _promote(engine, "1")
    audited("2", lowering)  # says it lowers two to one: still needs the two in force
    approve("2", "reviewer-a")
    with pytest.raises(GovernanceError, match="2 approvals"):
        _promote(engine, "2")
    approve("2", "reviewer-b")
    _promote(engine, "2")
    audited("3", load_policy())  # one is in force now
    approve("3", "reviewer-a")
    _promote(engine, "3")
    assert _champion(engine) == decisions.Champion(NAME, "3", "3" * 64)


@pytest.mark.parametrize(
    "written",
    ["approvals = 0", "approvals = true", "approvals = 2.5", "quorum = 2", "approvals = 2\nlower_from = 2"],
)
def test_a_review_setting_that_is_not_a_whole_number_of_reviewers_is_refused(
    tmp_path: Path, written: str
) -> None:
    default = (Path(__file__).parents[1] / "fairness" / "default_policy.toml").read_text(encoding="utf-8")
    path = tmp_path / "policy.toml"
    path.write_text(default.replace("approvals = 1", written), encoding="utf-8")
    with pytest.raises(PolicyError, match=r"review\."):
        load_policy(path)


# Against a real MLflow registry: what the tags say changes nothing.


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory, synth_dir: Path) -> Champion:
    root = tmp_path_factory.mktemp("governance")
    settings = settings_in(root)
    # The logistic candidate test_quality_gate also registers: trained once a session (champion.trained).
    version = register(synth_dir, settings, NAME, "logistic", seed=3)
    audited = govern(synth_dir, settings, NAME, version, root / "fairness")
    return Champion(settings, NAME, version, audited)


def test_tag_editing_cannot_promote(
    registered: Champion, tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    configure(registered.settings)
    client = MlflowClient()
    engine = disposing(make_engine(f"sqlite:///{tmp_path}/fresh.db"))
    upgrade(engine)
    version = registered.version
    for tag, value in {DECISION_TAG: "approved", GATE_TAG: "pass"}.items():
        client.set_model_version_tag(NAME, version, tag, value)
    client.set_registered_model_alias(NAME, CHAMPION, version)
    with pytest.raises(ChampionUnavailableError, match=r"no version of .* has been promoted"):
        load_champion(engine, NAME)
    with transaction(engine) as session, pytest.raises(GovernanceError, match="no fairness audit"):
        decisions.record_promotion(session, NAME, version=version, actor="someone")
    assert registered.audited is not None
    approve_and_promote(engine, registered.audited)
    assert load_champion(engine, NAME).version == version
    # Swap the model's files in the artifact store and make every tag agree with the swap.
    (bundle,) = Path(registered.settings.mlflow_artifacts).rglob("bundle/bundle.json")  # the only model
    folder = bundle.parent
    original = bundle.read_text(encoding="utf-8")
    meta = json.loads(original)
    meta["calibration"] = [meta["calibration"][0] * 0.5, meta["calibration"][1] + 1.0]
    bundle.write_text(json.dumps(meta), encoding="utf-8")
    swapped = bundle_sha256(folder)
    try:
        for tag in (SHA_TAG, GATE_SHA_TAG):
            client.set_model_version_tag(NAME, version, tag, swapped)
        client.set_model_version_tag(NAME, version, GATE_TAG, "pass")
        with pytest.raises(ChampionUnavailableError, match="altered after registration"):
            load_champion(engine, NAME)
    finally:
        bundle.write_text(original, encoding="utf-8")
        client.set_model_version_tag(NAME, version, SHA_TAG, registered.audited.bundle_sha256)
    assert load_champion(engine, NAME).sha256 == registered.audited.bundle_sha256


def test_the_review_command_needs_an_explicit_decision(tmp_path: Path) -> None:
    command = ["model", "review", "--model", f"models:/{NAME}/1", "--reviewer", "r", "--note", "n"]
    result = subprocess.run(
        [sys.executable, "-m", "waymark", *command],
        env={"WAYMARK_DATABASE_URL": f"sqlite:///{tmp_path}/w.db", "PATH": ""},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "say the decision: --approve or" in result.stderr
    assert not (tmp_path / "w.db").exists()  # refused before anything was opened


def test_an_override_is_shown_with_the_model_in_mlflow(
    registered: Champion, tmp_path: Path, disposing: Callable[[Engine], Engine]
) -> None:
    from waymark.fairness.governance import OVERRIDE_TAG

    configure(registered.settings)
    engine = disposing(make_engine(f"sqlite:///{tmp_path}/override.db"))
    upgrade(engine)
    version = registered.version
    with transaction(engine) as session:
        decisions.record_audit(
            session,
            NAME,
            version=version,
            bundle_sha256="b" * 64,
            gate="fail",
            report=REPORT,
            policy=load_policy(),
            actor="auditor",
        )
    row = _review(engine, version, True, override="the breach is in a group this pilot does not reach")
    decisions.mirror(row)
    client = MlflowClient()
    assert client.get_model_version(NAME, version).tags[OVERRIDE_TAG].startswith("the breach is in a group")
    run_id = client.get_model_version(NAME, version).run_id
    (record,) = [a.path for a in client.list_artifacts(run_id, "fairness/decisions") if "approved" in a.path]
    text = Path(client.download_artifacts(run_id, record, str(tmp_path))).read_text(encoding="utf-8")
    assert "gate failed and was overridden" in text and "does not reach" in text
    decisions.mirror(_review(engine, version, False))
    assert OVERRIDE_TAG not in client.get_model_version(NAME, version).tags


def test_a_later_audit_under_a_policy_asking_fewer_approvals_still_needs_the_quorum_in_force(
    engine: Engine,
) -> None:
    """The number came from the policy file of whoever ran the audit: re-audited under the default, a
    committee's two approvals would have become one (a reviewer's finding)."""
    two = dataclasses.replace(load_policy(), approvals=2)
    for version, policy in (("1", two), ("2", load_policy())):
        with transaction(engine) as session:
            decisions.record_audit(
                session, NAME, version=version, bundle_sha256=version * 64, gate="pass", report=REPORT,
                policy=policy, actor="a",
            )  # fmt: skip

    def approve(version: str, reviewer: str) -> None:
        _approve(engine, version, reviewer)

    approve("1", "reviewer-a")
    approve("1", "reviewer-b")
    _promote(engine, "1")
    approve("2", "reviewer-a")  # the default policy's one approval: not enough while version 1 serves
    with pytest.raises(GovernanceError, match="2 approvals"):
        _promote(engine, "2")
    approve("2", "reviewer-b")
    _promote(engine, "2")
    assert _champion(engine) == decisions.Champion(NAME, "2", "2" * 64)
    # And the next generation: version 2's audit, under the default, records the two in force, so a
    # third version audited under the default still needs two (a red team's: 3, then 1, then 1).
    with transaction(engine) as session:
        decisions.record_audit(
            session, NAME, version="3", bundle_sha256="3" * 64, gate="pass", report=REPORT,
            policy=load_policy(), actor="a",
        )  # fmt: skip
    approve("3", "reviewer-a")
    with pytest.raises(GovernanceError, match="2 approvals"):
        _promote(engine, "3")


def test_a_review_naming_the_audit_it_read_is_refused_once_a_newer_audit_is_recorded(engine: Engine) -> None:
    """A red team re-audited a version under another policy between a reviewer's reading of the report
    and their approval, which then landed on the new audit, never read."""
    _audit(engine, "1", "pass")
    with transaction(engine) as session:
        read = decisions.latest_audit(session, NAME, version="1")
        assert read is not None
        read_id = read.id
    _audit(engine, "1", "pass")
    with audit.unit(engine, KEY) as session, pytest.raises(GovernanceError, match="audited again"):
        decisions.review(
            session, NAME, version="1", approve=True, note="reasons", caller=CLERK,
            request=RequestIds("r-a"), read_audit=read_id,
        )  # fmt: skip
    with transaction(engine) as session:
        latest = decisions.latest_audit(session, NAME, version="1")
        assert latest is not None
        latest_id = latest.id
    with audit.unit(engine, KEY) as session:
        decisions.review(
            session, NAME, version="1", approve=True, note="reasons", caller=CLERK,
            request=RequestIds("r-b"), read_audit=latest_id,
        )  # fmt: skip
