"""Outreach: a contact with a student from planned to closed, with every change kept (CoP §6, §9).

A contact has a channel and a purpose from the institution's lists, and a lawful basis: the student's
consent to that purpose; one of the institution's stated exemptions (never free text in its place, and
a note saying why it applies to this student); or, when the student has not yet answered for that
purpose, ``asking``: the contact is the offer of support that asks them, as the Code of Practice (§6)
asks consent "at the point where a specific intervention is proposed". An offer goes no further than
``contacted`` until the student agrees (on their own page); once they decline, it can only be closed.
Its status moves forward only, ``to_contact -> contacted -> in_conversation -> closed``, and a closed
contact has an outcome. A contact made on the student's consent goes no further once that consent is
withdrawn: it can only be closed (CoP §6). Each change appends a ``ContactEvent``, so when contact
happened and what followed can be evaluated later (did outreach help, and whom). Who may touch which
student is decided by the caller, through ``service.access.readable``; these functions assume it was.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, get_args

from sqlalchemy import ColumnElement, and_, exists, select
from sqlalchemy.orm import Session

from waymark.models.vocabulary import labelling_words
from waymark.service.db.schema import Consent, Contact, ContactEvent
from waymark.service.schemas import CONSENT_PURPOSES, Answer, ConsentOut, ContactOutcome, ContactStatus
from waymark.service.security import Principal

DEFAULT_OPTIONS = Path(__file__).with_name("outreach.toml")
STATUSES: tuple[str, ...] = get_args(ContactStatus)  # in the order a contact moves through them
OUTCOMES: tuple[str, ...] = get_args(ContactOutcome)
OPEN = STATUSES[:-1]


class OutreachError(ValueError):
    """A contact cannot be recorded as asked; ``field`` names the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class ConsentNeededError(OutreachError):
    """The student has not consented to the purpose and no exemption was given."""


class ReasonNeededError(OutreachError):
    """An exemption without a note saying why it applies to this student (CoP §6: stated and justified)."""


class ConsentWithdrawnError(OutreachError):
    """The contact's basis is the student's consent, since withdrawn: it can be closed, not moved on."""


# What the student agreed to, in the words shown to staff (never the purpose's key).
AGREED_TO = {
    "outreach_contact": "to be contacted about support",
    "study_skills_referral": "to be referred to study skills support",
    "wellbeing_referral": "to be referred to wellbeing services",
    "personal_intervention": "to agree a personal support plan",
}


@dataclass(frozen=True)
class OutreachOptions:
    """The institution's lists: channels and exemptions (key -> what is shown or stated)."""

    channels: dict[str, str]
    exemptions: dict[str, str]
    # exemption -> the purposes it covers (an exemption not here covers every purpose)
    purposes: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # the exemptions whose open contacts outlive a restriction of processing ([restriction] kept)
    kept: tuple[str, ...] = ()


@lru_cache
def load_options(path: Path | None = None) -> OutreachOptions:
    """The lists in ``path`` (the packaged defaults when None).

    Raises
    ------
    OutreachError
        If the file lacks a list, or a list is empty or not a table of text.
    """
    where = path or DEFAULT_OPTIONS
    raw = tomllib.loads(where.read_text(encoding="utf-8"))
    lists = {}
    for name in ("channels", "exemptions"):
        table = raw.get(name)
        if not isinstance(table, dict) or not table or not all(isinstance(v, str) for v in table.values()):
            raise OutreachError(
                name, f'{where}: [{name}] must be a table of key = "text" with at least one entry'
            )
        lists[name] = {str(k): v for k, v in table.items()}
        # staff read them, and students read the exemptions kept while they are left out (PRODUCT §2)
        for key, text in lists[name].items():
            if found := labelling_words(text):
                raise OutreachError(
                    name,
                    f"{where}: [{name}] {key} says {found[0]!r}, which labels a student in what staff and "
                    "students read: word it otherwise",
                )
    covers = raw.get("exemption_purposes", {})
    if not isinstance(covers, dict):
        raise OutreachError("exemption_purposes", f"{where}: [exemption_purposes] must be a table")
    purposes: dict[str, tuple[str, ...]] = {}
    for exemption, named in covers.items():
        if exemption not in lists["exemptions"]:
            raise OutreachError(
                "exemption_purposes", f"{where}: [exemption_purposes] names {exemption!r}, not an exemption"
            )
        if not isinstance(named, list) or not named or any(p not in AGREED_TO for p in named):
            raise OutreachError(
                "exemption_purposes",
                f"{where}: [exemption_purposes] {exemption} must list purposes among: {', '.join(AGREED_TO)}",
            )
        purposes[str(exemption)] = tuple(str(p) for p in named)
    restriction = raw.get("restriction", {})
    if not isinstance(restriction, dict):
        raise OutreachError("restriction", f'{where}: [restriction] must be a table, kept = ["..."]')
    named = restriction.get("kept")
    if named is None:  # a file without the table: a safeguarding exemption, where it has one
        named = [e for e in ("safeguarding",) if e in lists["exemptions"]]
    if not isinstance(named, list) or any(e not in lists["exemptions"] for e in named):
        raise OutreachError(
            "restriction",
            f"{where}: [restriction] kept must list exemptions among: {', '.join(lists['exemptions'])}",
        )
    return OutreachOptions(
        channels=lists["channels"],
        exemptions=lists["exemptions"],
        purposes=purposes,
        kept=tuple(str(e) for e in named),
    )


def _one_of(field: str, value: str, *, allowed: dict[str, str] | tuple[str, ...]) -> str:
    if value not in allowed:
        raise OutreachError(field, f"'{value}' is not one of: {', '.join(allowed)}")
    return value


@dataclass(frozen=True)
class Change:
    """What a member of staff asks to change on a contact (None: leave as it is)."""

    status: str | None = None
    outcome: str | None = None
    follow_up_on: date | None = None
    clear_follow_up: bool = False
    note: str | None = None


def _check_state(status: str, outcome: str | None) -> None:
    _one_of("status", status, allowed=STATUSES)
    if status == "closed" and outcome is None:
        raise OutreachError("outcome", "a closed contact needs its outcome")
    if outcome is not None:
        _one_of("outcome", outcome, allowed=OUTCOMES)
        if status != "closed":
            raise OutreachError("outcome", "an outcome is recorded when the contact is closed")


#: Statuses an offer of support (basis ``asking``) may have before the student agrees.
ASKING_STATUSES = ("to_contact", "contacted")
#: The purpose an offer itself serves: once a student says no to being contacted about support, no
#: offer of any kind is made to them (only an exemption reaches them).
OFFER = "outreach_contact"


def said_no(student: Any) -> ColumnElement[bool]:
    """The condition that ``student`` (a column) said no to being contacted about support at all."""
    return exists().where(Consent.student_id == student, Consent.purpose == OFFER, Consent.granted.is_(False))


def answer(session: Session, student_id: str, *, purpose: str) -> bool | None:
    """The student's answer for ``purpose``: True (agreed), False (declined, withdrawn), None (not asked)."""
    consent = session.get(Consent, (student_id, purpose))
    return None if consent is None else bool(consent.granted)


def answers(session: Session, student_id: str) -> dict[str, Answer]:
    """The student's answer for every purpose: given, declined (or withdrawn), or not answered."""
    given = {
        c.purpose: c.granted for c in session.scalars(select(Consent).where(Consent.student_id == student_id))
    }
    return {
        p: "not answered" if p not in given else "given" if given[p] else "declined" for p in CONSENT_PURPOSES
    }


def consent_view(session: Session, student_id: str) -> ConsentOut:
    """The student's consents as served: given or not, and each purpose's answer (``answers``)."""
    said = answers(session, student_id)
    return ConsentOut(consents={p: a == "given" for p, a in said.items()}, answers=said)


def consented(session: Session, student_id: str, *, purpose: str) -> bool:
    """Whether the student's consent to ``purpose`` stands now (never given or withdrawn: False)."""
    return answer(session, student_id, purpose=purpose) is True


def basis_for(
    session: Session,
    student_id: str,
    *,
    purpose: str,
    exemption: str | None,
    options: OutreachOptions,
    may_ask: bool = False,
) -> str:
    """The basis of a new contact or intervention for ``purpose``.

    ``consent`` when the student consented to ``purpose``; else ``exemption`` if one is given; else
    ``asking`` when ``may_ask`` (an offer of support, not yet made or just made) and the student has not
    answered for this purpose.

    Raises
    ------
    ConsentNeededError
        If there is no basis: the student declined, or was not asked and the record is more than an offer.
    OutreachError
        If the exemption is not one of the institution's.
    """
    said = answer(session, student_id, purpose=purpose)
    if said is True:
        return "consent"
    if exemption is None:
        # An offer is itself a contact about support: not once the student has said no to that.
        if said is None and may_ask and answer(session, student_id, purpose=OFFER) is not False:
            return "asking"
        if purpose != OFFER and answer(session, student_id, purpose=OFFER) is False:
            said, purpose = False, OFFER
        agreed = AGREED_TO.get(purpose, "to this")
        raise ConsentNeededError(
            "exemption",
            f"The student has said no: they do not agree {agreed}, having withdrawn or declined their "
            "agreement. Only an exemption that applies can take this further, with a note saying why "
            "(Code of Practice §6)."
            if said is False
            else f"The student has not agreed {agreed}. Ask them first (a contact can be recorded as the "
            "offer that asks, planned or contacted), or choose the exemption that applies and say why "
            "(Code of Practice §6).",
        )
    _check_exemption(exemption, purpose=purpose, options=options)
    return "exemption"


def _check_exemption(exemption: str, *, purpose: str, options: OutreachOptions) -> None:
    """Refuse an exemption not on the institution's list, or one that does not cover ``purpose``."""
    _one_of("exemption", exemption, allowed=options.exemptions)
    covered = options.purposes.get(exemption)
    if covered is not None and purpose not in covered:
        raise OutreachError(
            "exemption",
            f"the exemption '{exemption}' covers {', '.join(covered)}, not {purpose}: ask the student first, "
            "or choose an exemption that covers it",
        )


def open_contact(
    session: Session,
    student_id: str,
    *,
    staff: Principal,
    run_id: int | None,
    channel: str,
    purpose: str,
    exemption: str | None,
    status: str,
    follow_up_on: date | None,
    note: str,
    options: OutreachOptions,
) -> Contact:
    """Record a new contact (planned or made) and its first event."""
    _one_of("channel", channel, allowed=options.channels)
    if status == "closed":
        raise OutreachError("status", "a new contact starts open; close it once its outcome is known")
    _check_state(status, None)
    basis = basis_for(
        session,
        student_id,
        purpose=purpose,
        exemption=exemption,
        options=options,
        may_ask=status in ASKING_STATUSES,
    )
    if basis == "consent" and exemption is not None:
        # The student agreed, and staff also named the exemption that applies (a safeguarding concern):
        # kept with the contact, so that it outlasts the student's objection as one made under it would.
        _check_exemption(exemption, purpose=purpose, options=options)
    if basis == "exemption" and not note.strip():
        raise ReasonNeededError(
            "note",
            "say in the note why the exemption applies to this student: the Code of Practice (§6) asks "
            "that the reason be stated and justified, and the student can read it in their export",
        )
    now = datetime.now(UTC)
    contact = Contact(
        student_id=student_id,
        staff_id=staff.sub,
        role=staff.role,
        run_id=run_id,
        channel=channel,
        purpose=purpose,
        basis=basis,
        exemption=exemption if basis in ("exemption", "consent") else None,
        status=status,
        outcome=None,
        follow_up_on=follow_up_on,
        note=note,
        created_at=now,
        updated_at=now,
    )
    session.add(contact)
    session.flush()
    _append_event(session, contact, staff=staff, at=now)
    return contact


def update_contact(session: Session, contact: Contact, *, staff: Principal, change: Change) -> Contact:
    """Apply ``change`` to an open contact and keep the event.

    A contact whose basis is the student's consent (or an offer), once that consent is withdrawn (or
    the offer declined), can still be closed (any outcome, a note) or have its follow-up cleared, so
    the record can be tidied; anything else (a later open status, a new follow-up date, a new note on
    an open contact) would carry on outreach the student no longer agrees to. An offer moves past
    ``contacted`` only once the student has agreed. Restating what it already holds changes nothing
    and is allowed (the workspace's form sends the current status and note back).

    Raises
    ------
    ConsentWithdrawnError
        If the change would carry on a contact whose consent was withdrawn (checked last: the other
        errors tell nothing about the student).
    ConsentNeededError
        If an offer would move past ``contacted`` before the student agreed.
    ReasonNeededError
        If the note of a contact under an exemption would be emptied.
    OutreachError
        If the contact is closed, the status would move backwards, or the outcome does not fit.
    """
    if contact.status == "closed":
        raise OutreachError("status", "this contact is closed; record a new contact instead")
    status = _one_of("status", change.status or contact.status, allowed=STATUSES)
    if STATUSES.index(status) < STATUSES.index(contact.status):
        raise OutreachError("status", f"a contact moves forward only (it is '{contact.status}')")
    _check_state(status, change.outcome)
    follow_up_on = None if change.clear_follow_up else (change.follow_up_on or contact.follow_up_on)
    carries_on = status != "closed" and (
        status != contact.status
        or follow_up_on not in (None, contact.follow_up_on)
        or change.note not in (None, contact.note)
    )
    said = answer(session, contact.student_id, purpose=contact.purpose)
    if (
        contact.basis == "asking"
        and said is None
        and answer(session, contact.student_id, purpose=OFFER) is False
    ):
        said = False  # they said no to being contacted about support at all
    agreed = AGREED_TO.get(contact.purpose, "to this kind of support")
    if carries_on and contact.basis in ("consent", "asking") and said is False:
        raise ConsentWithdrawnError(
            "status",
            f"The student has withdrawn or declined their agreement {agreed}, so this contact cannot be "
            "moved on. You can still close it, with its outcome and a note, so that the record is complete.",
        )
    moves_on = status != contact.status and status not in (*ASKING_STATUSES, "closed")
    if contact.basis == "asking" and moves_on and said is not True:
        raise ConsentNeededError(
            "status",
            f"This contact offers support and asks the student: it goes further once they have agreed "
            f"{agreed}, which they record on their own page in Waymark. Until then it can be marked "
            "contacted, followed up or closed.",
        )
    if contact.basis == "exemption" and change.note is not None and not change.note.strip():
        raise ReasonNeededError(
            "note",
            "a contact under an exemption keeps its note saying why the exemption applies: edit it, "
            "do not empty it",
        )
    contact.status, contact.outcome = status, change.outcome
    contact.follow_up_on = follow_up_on
    if change.note is not None:
        contact.note = change.note
    now = datetime.now(UTC)
    contact.updated_at = now
    _append_event(session, contact, staff=staff, at=now)
    return contact


def _append_event(session: Session, contact: Contact, *, staff: Principal, at: datetime) -> None:
    session.add(
        ContactEvent(
            contact_id=contact.id,
            student_id=contact.student_id,
            staff_id=staff.sub,
            status=contact.status,
            outcome=contact.outcome,
            follow_up_on=contact.follow_up_on,
            note=contact.note,
            at=at,
        )
    )
    session.flush()


def contacts_of(session: Session, student_id: str) -> list[Contact]:
    """Every contact with ``student_id`` by any member of staff, newest first (the team view)."""
    query = select(Contact).where(Contact.student_id == student_id).order_by(Contact.id.desc())
    return list(session.scalars(query))


def outlives(contact: Any, *, kept: tuple[str, ...]) -> ColumnElement[bool]:
    """The condition that a contact (``Contact`` or an alias) is open under one of the ``kept`` exemptions.

    Such a contact (a safeguarding concern, by default) stays with the staff following it up while the
    student is left out at their request (``indicators.follows_up``): the restriction covers being
    scored and listed, not a duty the institution has judged goes on (``OutreachOptions.kept``). A
    contact the student had agreed to counts too when its exemption was named (``open_contact``).
    """
    return and_(contact.exemption.in_(kept), contact.status != "closed")


def open_outliving(session: Session, student_id: str, *, kept: tuple[str, ...]) -> list[Contact]:
    """The student's open contacts under the ``kept`` exemptions, newest first."""
    query = (
        select(Contact)
        .where(Contact.student_id == student_id, outlives(Contact, kept=kept))
        .order_by(Contact.id.desc())
    )
    return list(session.scalars(query))


def history(session: Session, contact_id: int) -> list[ContactEvent]:
    """The contact's events, oldest first."""
    query = select(ContactEvent).where(ContactEvent.contact_id == contact_id).order_by(ContactEvent.id)
    return list(session.scalars(query))
