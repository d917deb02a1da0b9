"""Outreach: a contact's lawful basis, its forward-only status, its outcome and its kept history."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from tests.service_setup import backends, fresh_database
from waymark.service import outreach
from waymark.service.db.engine import make_engine, transaction, upgrade
from waymark.service.db.schema import Consent
from waymark.service.outreach import (
    Change,
    ConsentNeededError,
    ConsentWithdrawnError,
    OutreachError,
    ReasonNeededError,
)
from waymark.service.security import Principal

TUTOR = Principal("tutor-1", "personal_tutor", None)
COLLEAGUE = Principal("advisor-2", "support_staff", None)
OPTIONS = outreach.load_options()


@pytest.fixture(params=backends())
def session(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Session]:
    engine: Engine = make_engine(fresh_database(request.param, tmp_path))
    upgrade(engine)
    with transaction(engine) as session:
        session.add(Consent(student_id="S1", purpose="outreach_contact", granted=True, at=datetime.now(UTC)))
        session.add(Consent(student_id="S2", purpose="outreach_contact", granted=False, at=datetime.now(UTC)))
        session.flush()
        yield session
    engine.dispose()


def _open(session: Session, student: str, **overrides: object) -> outreach.Contact:
    fields: dict[str, object] = {
        "staff": TUTOR,
        "run_id": None,
        "channel": "email",
        "purpose": "outreach_contact",
        "exemption": None,
        "status": "to_contact",
        "follow_up_on": None,
        "note": "",
        "options": OPTIONS,
        **overrides,
    }
    return outreach.open_contact(session, student, **fields)  # type: ignore[arg-type]  # keyword fields


def test_consent_an_offer_that_asks_or_a_stated_exemption_is_the_basis(session: Session) -> None:
    assert _open(session, "S1").basis == "consent"
    with pytest.raises(ConsentNeededError, match="has said no"):
        _open(session, "S2")  # withdrawn: no offer asks again
    # Never asked: the contact is the offer that asks (CoP §6, "at the point ... proposed"), no more.
    assert _open(session, "S3").basis == "asking"
    assert _open(session, "S3", status="contacted").basis == "asking"
    with pytest.raises(ConsentNeededError, match="has not agreed to be contacted about support"):
        _open(session, "S3", status="in_conversation")
    with pytest.raises(OutreachError, match="'because I think so' is not one of") as free_text:
        _open(session, "S3", exemption="because I think so", note="why")
    assert free_text.value.field == "exemption"
    with pytest.raises(ReasonNeededError, match="why the exemption applies") as unsaid:
        _open(session, "S2", exemption="safeguarding", note="  ")
    assert unsaid.value.field == "note"
    exempt = _open(session, "S2", exemption="safeguarding", note="Reported concern, see case 12")
    assert (exempt.basis, exempt.exemption) == ("exemption", "safeguarding")
    # consent is the basis; the exemption named beside it is kept, so that the contact outlasts the
    # student's objection as a safeguarding contact (a reviewer's finding)
    consented = _open(session, "S1", exemption="safeguarding")
    assert (consented.basis, consented.exemption) == ("consent", "safeguarding")
    with pytest.raises(OutreachError, match="is not one of"):  # named, it must be one of the list's
        _open(session, "S1", exemption="because I think so")
    assert _open(session, "S1").exemption is None


def test_an_offer_goes_further_once_the_student_agrees_and_only_closes_once_they_decline(
    session: Session,
) -> None:
    offer = _open(session, "S3", note="offered a meeting")
    outreach.update_contact(session, offer, staff=TUTOR, change=Change(status="contacted"))
    with pytest.raises(ConsentNeededError, match="goes further once they have agreed"):
        outreach.update_contact(session, offer, staff=TUTOR, change=Change(status="in_conversation"))
    session.add(Consent(student_id="S3", purpose="outreach_contact", granted=True, at=datetime.now(UTC)))
    session.flush()
    outreach.update_contact(session, offer, staff=TUTOR, change=Change(status="in_conversation"))
    declined = _open(session, "S4")
    session.add(Consent(student_id="S4", purpose="outreach_contact", granted=False, at=datetime.now(UTC)))
    session.flush()
    with pytest.raises(ConsentWithdrawnError, match="withdrawn or declined"):
        outreach.update_contact(session, declined, staff=TUTOR, change=Change(note="tried again"))
    closed = Change(status="closed", outcome="no_action_needed")
    assert outreach.update_contact(session, declined, staff=TUTOR, change=closed).status == "closed"


def test_a_student_who_said_no_to_being_contacted_gets_no_offer_of_any_kind(session: Session) -> None:
    """A reviewer's finding: an offer under another purpose reached a student who had declined to be
    contacted about support at all."""
    for purpose in ("wellbeing_referral", "study_skills_referral", "personal_intervention"):
        with pytest.raises(ConsentNeededError, match="has said no"):
            _open(session, "S2", purpose=purpose)  # S2 said no to outreach_contact
    offer = _open(session, "S5", purpose="wellbeing_referral")
    session.add(Consent(student_id="S5", purpose="outreach_contact", granted=False, at=datetime.now(UTC)))
    session.flush()
    with pytest.raises(ConsentWithdrawnError):
        outreach.update_contact(session, offer, staff=TUTOR, change=Change(status="contacted"))


def test_an_offer_agreed_to_then_withdrawn_can_be_tidied_as_a_consented_contact_can(session: Session) -> None:
    offer = _open(session, "S6", follow_up_on=date(2026, 12, 7), note="offered")
    session.add(Consent(student_id="S6", purpose="outreach_contact", granted=True, at=datetime.now(UTC)))
    session.flush()
    outreach.update_contact(session, offer, staff=TUTOR, change=Change(status="in_conversation"))
    consent = session.get(Consent, ("S6", "outreach_contact"))
    assert consent is not None
    consent.granted = False
    session.flush()
    same = Change(status="in_conversation", note="offered")  # the page's form sends these back
    outreach.update_contact(session, offer, staff=TUTOR, change=same)
    outreach.update_contact(session, offer, staff=TUTOR, change=Change(clear_follow_up=True))
    with pytest.raises(ConsentWithdrawnError):
        outreach.update_contact(session, offer, staff=TUTOR, change=Change(note="carry on"))


def test_an_exemptions_note_cannot_be_emptied_later(session: Session) -> None:
    exempt = _open(session, "S2", exemption="safeguarding", note="Reported concern, case 12")
    with pytest.raises(ReasonNeededError):
        outreach.update_contact(session, exempt, staff=TUTOR, change=Change(note=" "))
    outreach.update_contact(session, exempt, staff=TUTOR, change=Change(note="Case 12: met, plan agreed"))


def test_an_exemption_covers_only_the_purposes_the_institution_lists_for_it(
    session: Session, tmp_path: Path
) -> None:
    """A red team recorded a wellbeing referral without the student's agreement under a visa sponsor's
    duty to follow up attendance."""
    with pytest.raises(
        OutreachError, match="'sponsorship_duty' covers outreach_contact, not wellbeing"
    ) as no:
        _open(session, "S3", purpose="wellbeing_referral", exemption="sponsorship_duty")
    assert no.value.field == "exemption"
    assert _open(session, "S3", exemption="sponsorship_duty", note="visa").basis == "exemption"  # its use
    safeguarding = _open(session, "S3", purpose="wellbeing_referral", exemption="safeguarding", note="why")
    assert safeguarding.basis == "exemption"
    own = tmp_path / "outreach.toml"
    text = (Path(outreach.__file__).parent / "outreach.toml").read_text(encoding="utf-8")
    own.write_text(text.replace('sponsorship_duty = ["outreach_contact"]', 'sponsorship_duty = ["visa"]'))
    with pytest.raises(OutreachError, match="sponsorship_duty must list purposes among"):
        outreach.load_options(own)


def test_channels_come_from_the_institutions_list(session: Session) -> None:
    with pytest.raises(OutreachError, match="'carrier_pigeon' is not one of: email") as wrong:
        _open(session, "S1", channel="carrier_pigeon")
    assert wrong.value.field == "channel"


def test_a_contact_moves_forward_to_a_closed_outcome_and_every_step_is_kept(session: Session) -> None:
    contact = _open(session, "S1", follow_up_on=date(2026, 12, 7), note="planned")
    outreach.update_contact(session, contact, staff=TUTOR, change=Change(status="contacted", note="emailed"))
    with pytest.raises(OutreachError, match="moves forward only"):
        outreach.update_contact(session, contact, staff=TUTOR, change=Change(status="to_contact"))
    with pytest.raises(OutreachError, match="needs its outcome"):
        outreach.update_contact(session, contact, staff=TUTOR, change=Change(status="closed"))
    with pytest.raises(OutreachError, match="when the contact is closed"):
        outreach.update_contact(session, contact, staff=TUTOR, change=Change(outcome="agreed_action"))
    outreach.update_contact(
        session,
        contact,
        staff=COLLEAGUE,
        change=Change(status="closed", outcome="referred_to_service", clear_follow_up=True),
    )
    with pytest.raises(OutreachError, match="closed; record a new contact"):
        outreach.update_contact(session, contact, staff=TUTOR, change=Change(note="late"))
    steps = [
        (e.staff_id, e.status, e.outcome, e.follow_up_on, e.note)
        for e in outreach.history(session, contact.id)
    ]
    assert steps == [
        ("tutor-1", "to_contact", None, date(2026, 12, 7), "planned"),
        ("tutor-1", "contacted", None, date(2026, 12, 7), "emailed"),
        ("advisor-2", "closed", "referred_to_service", None, "emailed"),
    ]


def test_a_new_contact_starts_open(session: Session) -> None:
    with pytest.raises(OutreachError, match="starts open"):
        _open(session, "S1", status="closed")


def test_the_team_sees_every_colleagues_contact_newest_first(session: Session) -> None:
    first = _open(session, "S1")
    second = _open(session, "S1", staff=COLLEAGUE, channel="phone")
    _open(session, "S3", exemption="safeguarding", note="a concern")
    assert [c.id for c in outreach.contacts_of(session, "S1")] == [second.id, first.id]


def test_an_options_file_without_exemptions_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "outreach.toml"
    path.write_text('[channels]\nemail = "Email"\n', encoding="utf-8")
    with pytest.raises(OutreachError, match=r"\[exemptions\] must be a table"):
        outreach.load_options(path)


def test_an_exemption_worded_as_a_label_is_refused(tmp_path: Path) -> None:
    """The student's page says the kept exemptions in the file's words, and staff choose them by them."""
    path = tmp_path / "labelled.toml"
    path.write_text(
        '[channels]\nemail = "Email"\n[exemptions]\nsafeguarding = "Students at risk of harm"\n',
        encoding="utf-8",
    )
    with pytest.raises(OutreachError, match="safeguarding says 'at risk', which labels a student"):
        outreach.load_options(path)


def test_the_exemptions_kept_under_a_restriction_are_the_institutions_and_must_be_its_exemptions(
    tmp_path: Path,
) -> None:
    assert OPTIONS.kept == ("safeguarding",)
    text = (Path(outreach.__file__).parent / "outreach.toml").read_text(encoding="utf-8")

    def options(name: str, kept: str) -> outreach.OutreachOptions:  # a file each: the options are cached
        path = tmp_path / f"{name}.toml"
        path.write_text(text.replace('kept = ["safeguarding"]', kept), encoding="utf-8")
        return outreach.load_options(path)

    assert options("two", 'kept = ["safeguarding", "legal_obligation"]').kept == (
        "safeguarding",
        "legal_obligation",
    )
    assert options("none", "kept = []").kept == ()  # none: every contact goes out of reach with the rest
    with pytest.raises(OutreachError, match="kept must list exemptions among: safeguarding"):
        options("unknown", 'kept = ["welfare"]')
    without = tmp_path / "without.toml"  # an older file: its safeguarding exemption is kept
    without.write_text(text[: text.index("\n# The exemptions whose open contacts stay")], encoding="utf-8")
    assert outreach.load_options(without).kept == ("safeguarding",)
