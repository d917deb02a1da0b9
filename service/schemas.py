"""Response and request bodies. No field carries a label or a protected characteristic (PRODUCT §2, §3)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from waymark.models.ids import UNSEEN_CLASS

Answer = Literal["given", "declined", "not answered"]  # a student's answer for a consent purpose
FeedbackValue = Literal["accepted", "not_applicable", "seems_wrong", "useful", "not_useful"]
ConsentPurpose = Literal[
    "outreach_contact", "study_skills_referral", "wellbeing_referral", "personal_intervention"
]
CONSENT_PURPOSES: tuple[str, ...] = get_args(ConsentPurpose)

# Input is refused here, before any query: PostgreSQL rejects NUL bytes and over-long values with a
# database error, and a control character in an identifier is never legitimate (and would corrupt logs).
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f-\x9f]+$"
# An identifier holds no direction control either (embeddings, overrides, isolates): shown as the actor
# of a decision or in a student's access log, one would turn the text after it around. Free text may
# hold the embeddings right-to-left writing brings with it, but not an override (U+202D, U+202E), which
# turns letters around as shown: a note, or an override reason published on the transparency statement,
# could read otherwise than it was written.
PLAIN_ID = f"^[^{UNSEEN_CLASS}]+$"  # models/ids.py: the direction marks and the byte-order mark too
TEXT_CHARACTERS = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202d\u202e]*$"  # tabs and line breaks kept
ID_MAX = 64  # the width of identifier columns (service/db/schema.py: ID)
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=ID_MAX, pattern=PLAIN_ID)]
ModelName = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=PLAIN_ID)]
VersionNumber = Annotated[str, StringConstraints(min_length=1, max_length=9, pattern=r"^[0-9]+$")]


def is_identifier(text: str) -> bool:
    r"""Whether ``text`` would pass as an :data:`Identifier` (for values that arrive outside a schema).

    Pydantic refuses a lone surrogate (``"\ud800"`` in a token's JSON decodes to one) as text it
    cannot encode; so does this, before it reaches the database's encoder.
    """
    return len(text) <= ID_MAX and re.fullmatch(PLAIN_ID, text) is not None and _encodable(text)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


Note = Annotated[str, StringConstraints(max_length=2000, pattern=TEXT_CHARACTERS)]
LongNote = Annotated[str, StringConstraints(max_length=4000, pattern=TEXT_CHARACTERS)]


class Strict(BaseModel):
    """Bodies refuse unknown fields, so a typo never passes silently."""

    model_config = ConfigDict(extra="forbid")


class Statement(BaseModel):
    """A factor or strength: a family of contributions in plain language."""

    family: str
    title: str
    sentence: str
    contribution: float = Field(
        description=(
            "Its exact contribution to the indicator, in log-odds (positive raises it), from the features "
            "in which the student differs from nearly all of their module cohort."
        )
    )


class Context(BaseModel):
    """A fixed fact that shapes the indicator, described neutrally (nothing to act on)."""

    family: str
    title: str
    sentence: str


class Change(BaseModel):
    """The smallest change in one actionable family that would move the indicator materially."""

    family: str
    title: str
    sentence: str
    estimate_after: float


class Coverage(BaseModel):
    """Which data the indicator could use."""

    sources_recorded: list[str]
    sources_not_recorded: list[str]
    activity_recorded_for_student: bool
    marked_work_available: bool


class Estimate(BaseModel):
    """An estimate with its uncertainty: never a category."""

    value: float = Field(description="Estimated probability of the target outcome (0 to 1).")
    lower: float = Field(
        description="Lower end of the model range: how far the estimate would move with other training "
        "students (nominally 90%; it does not cover the model's own bias, and its measured coverage is "
        "in the model card)."
    )
    upper: float = Field(description="Upper end of the model range (as lower).")
    change_since_last_run: float | None = Field(description="Difference from the previous run, if any.")


class Provenance(BaseModel):
    """Where an indicator came from.

    For a list: its run, and its first entry's week and data date; each entry carries its own, as
    presentations in one run can stand at different weeks.
    """

    target: str
    model_name: str
    model_version: str
    week: int
    data_as_of: str
    run_id: int


class HistoryPoint(BaseModel):
    """The indicator in an earlier run."""

    run_id: int
    week: int
    data_as_of: str
    model_version: str
    value: float
    lower: float
    upper: float


class CaseloadEntry(BaseModel):
    """One student in the caller's caseload, in support-priority order."""

    student_id: str
    name: str | None = Field(
        None, description="How the student likes to be addressed (preferred name, else display name)."
    )
    other_name: str | None = Field(
        None, description="The student's name in a second script, where the directory holds one."
    )
    module_id: str
    presentation_id: str
    support_priority: int = Field(description="Position in this caller's caseload (1 = contact first).")
    estimate: Estimate
    top_factor: str | None
    week: int = Field(description="The week of its presentation the estimate was made at.")
    data_as_of: str = Field(description="The date the estimate's data runs to.")
    declined_contact: bool = Field(
        False,
        description="The student said no to being contacted about support: only their agreement to a "
        "purpose, or an exemption that applies, lets staff contact them (the worklist leaves them off).",
    )


class Caseload(BaseModel):
    """A page of the caller's caseload."""

    available: bool = Field(description="False when no approved model has published indicators.")
    total: int
    offset: int
    limit: int
    items: list[CaseloadEntry]
    provenance: Provenance | None
    reading_note: str


class WorklistRegistration(BaseModel):
    """One of the student's registrations in the caller's scope."""

    module_id: str
    presentation_id: str
    estimate: Estimate
    top_factor: str | None
    week: int = Field(description="The week of its presentation the estimate was made at.")
    data_as_of: str = Field(description="The date the estimate's data runs to.")


class ContactSummary(BaseModel):
    """The student's latest contact, by anyone in the team."""

    id: int
    staff_id: str
    status: str
    outcome: str | None
    follow_up_on: date | None
    updated_at: datetime


class WorklistEntry(BaseModel):
    """One student: their registrations in scope, and where outreach stands."""

    student_id: str
    name: str | None = Field(
        description="Preferred name, else display name (None without a directory entry)."
    )
    other_name: str | None = Field(
        None,
        description="The student's name in a second script, where the directory holds one: students sharing "
        "a name in one script are told apart by the other as well as by their id.",
    )
    support_priority: int = Field(
        description="The student's place in the caller's whole worklist (1 = first); a student left off it "
        "(``not_listed``) and found by a search shows the place they would take."
    )
    registrations: list[WorklistRegistration]
    latest_contact: ContactSummary | None = Field(
        description="The contact changed last, whoever changed it (a hand-over note on an older contact "
        "included)."
    )
    next_follow_up_on: date | None = Field(
        None,
        description="The earliest follow-up date of the student's open contacts, any colleague's (none "
        "from a contact resting on withdrawn consent).",
    )
    correction_pending: bool = Field(
        False,
        description="The student asked for data behind these estimates to be corrected: the request is "
        "open, or was accepted after this run (the student's page says which).",
    )
    follow_up_due: bool = Field(
        description="An open contact's follow-up date is today or past (unless it rests on withdrawn "
        "consent)."
    )
    consent_withdrawn: bool = Field(
        False,
        description="An open contact rests on consent the student has since withdrawn: it can only be "
        "closed.",
    )
    declined_contact: bool = Field(
        False,
        description="The student said no to being contacted about support (or withdrew their agreement): "
        "only an exemption that applies lets staff contact them.",
    )
    changed_since_last_run: bool = Field(
        description="An estimate moved by at least 5 points since the last run."
    )
    new_since_last_visit: bool = Field(description="First indicated after the caller's previous visit.")


class LeftOutFollowUp(BaseModel):
    """An open contact under an exemption with a student left out at their request, who is on no list."""

    student_id: str
    name: str | None = Field(
        description="Preferred name, else display name (None without a directory entry)."
    )
    contact_id: int
    purpose: str
    exemption: str | None
    exemption_text: str | None = Field(
        None, description="The exemption as the institution's outreach file states it."
    )
    status: str
    follow_up_on: date | None


class Worklist(BaseModel):
    """A page of the caller's worklist (one row per student)."""

    available: bool = Field(description="False when no approved model has published indicators.")
    total: int = Field(description="Students the filters leave.")
    offset: int
    limit: int
    previous_visit: datetime | None = Field(description="When the caller's previous visit ended.")
    new_since_last_visit: int = Field(
        default=0, description="Students the filters leave who were first indicated after the previous visit."
    )
    modules: list[str] = Field(
        default_factory=list, description="Every module of the caller's students (for the module filter)."
    )
    not_listed: int = Field(
        default=0,
        description="Students the filters would leave who said no to being contacted about support and "
        "have no contact open on a basis that still holds: left off the list (a search finds them).",
    )
    items: list[WorklistEntry]
    left_out_follow_ups: list[LeftOutFollowUp] = Field(
        default_factory=list,
        description="The caller's open contacts under an exemption (a safeguarding concern) with students "
        "left out of Waymark at their request, so on no list: to be followed up and closed. Each page "
        "gives them all, soonest follow-up first.",
    )
    provenance: Provenance | None
    reading_note: str
    order_note: str = Field(
        default="", description="How support priority is ordered (this run's estimates, or smoothed)."
    )


class IndicatorView(BaseModel):
    """A student's explained indicator on one module presentation."""

    student_id: str
    module_id: str
    presentation_id: str
    support_priority: int | None
    estimate: Estimate
    factors: list[Statement]
    strengths: list[Statement]
    context: list[Context]
    what_could_change: Change | None
    coverage: Coverage
    history: list[HistoryPoint]
    provenance: Provenance
    reading_note: str


class EngagementSummary(BaseModel):
    """What a placement supervisor may see: counts only."""

    student_id: str
    module_id: str
    presentation_id: str
    data_as_of: str
    active_days_last_14: int
    assessments_due_so_far: int
    assessments_submitted: int


class DirectoryView(BaseModel):
    """How to address and reach a student (from the institution's directory; for outreach only)."""

    display_name: str
    preferred_name: str | None
    pronouns: str | None
    email: str
    other_name: str | None = Field(
        None, description="The name in a second script, where the records hold one (found by search too)."
    )


class StudentIndicators(BaseModel):
    """A student's indicators (one per module presentation), as staff see them."""

    student_id: str
    directory: DirectoryView | None = Field(None, description="None when the directory has no entry.")
    indicators: list[IndicatorView]
    correction: str | None = Field(
        default=None,
        description="A correction the student asked for of data behind these estimates: still open, or "
        "accepted since the run that made them (None: neither).",
    )


class PlacementView(BaseModel):
    """A student's minimal engagement summaries."""

    student_id: str
    summaries: list[EngagementSummary]


class FeedbackIn(Strict):
    """Staff feedback on an indicator."""

    module_id: Identifier
    presentation_id: Identifier
    value: FeedbackValue
    note: Note = ""


class InterventionIn(Strict):
    """A proposed or recorded intervention."""

    purpose: ConsentPurpose
    description: Annotated[Note, Field(min_length=1)]
    exemption_reason: Note | None = Field(
        None,
        description="Only when the student has not consented: the institution's exemption that applies "
        "(one of GET /v1/outreach/options' exemptions; CoP §6).",
    )


ContactStatus = Literal["to_contact", "contacted", "in_conversation", "closed"]
ContactOutcome = Literal["agreed_action", "referred_to_service", "no_action_needed", "could_not_reach"]
Choice = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=PLAIN_ID)]
ShortNote = Annotated[str, StringConstraints(max_length=1000, pattern=TEXT_CHARACTERS)]
SearchText = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=NO_CONTROL_CHARACTERS)]


class WorklistQuery(Strict):
    """``POST /v1/worklist``'s body: the filters of ``GET /v1/worklist``, out of the address."""

    offset: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    limit: Annotated[int, Field(ge=1, le=100)] = 25
    module_id: Identifier | None = None
    not_contacted: bool = Field(False, description="Only students nobody has contacted yet.")
    changed: bool = Field(False, description="Only estimates that moved since the last run.")
    follow_up_due: bool = Field(False, description="Only students whose follow-up is due.")
    search: SearchText | None = Field(None, description="Part of a name or a student id.")
    new: bool = Field(False, description="Only students first indicated since your previous visit.")


class ContactIn(Strict):
    """A contact with a student, planned or made (the lists come from GET /v1/outreach/options)."""

    channel: Choice = Field(description="One of the institution's channels.")
    purpose: ConsentPurpose
    exemption: Choice | None = Field(
        None,
        description="Only when the student has not consented to the purpose: one of the institution's "
        "exemptions (CoP §6). Free text is not accepted.",
    )
    status: Literal["to_contact", "contacted", "in_conversation"] = "to_contact"
    follow_up_on: date | None = None
    note: ShortNote = ""


class ContactChange(Strict):
    """A change to an open contact: a later status, the outcome on closing, the follow-up, the note."""

    status: ContactStatus | None = None
    outcome: ContactOutcome | None = Field(None, description="Required when the status becomes closed.")
    follow_up_on: date | None = None
    clear_follow_up: bool = False
    note: ShortNote | None = None


class ContactStep(BaseModel):
    """One change in a contact's history."""

    staff_id: str
    status: str
    outcome: str | None
    follow_up_on: date | None
    note: str
    at: datetime


class ContactView(BaseModel):
    """A contact as the team sees it, with its history (oldest first)."""

    id: int
    student_id: str
    staff_id: str
    role: str
    channel: str
    purpose: str
    basis: str
    exemption: str | None
    status: str
    outcome: str | None
    follow_up_on: date | None
    note: str
    created_at: datetime
    updated_at: datetime
    history: list[ContactStep]


class Option(BaseModel):
    """One entry of an institution's list: its key (what is stored) and what is shown or stated."""

    key: str
    text: str


class OutreachOptions(BaseModel):
    """The lists a contact is recorded from."""

    channels: list[Option]
    purposes: list[str]
    exemptions: list[Option]
    statuses: list[str]
    outcomes: list[str]


class HoldIn(Strict):
    """Whether the student's indicator is withheld from them for their wellbeing."""

    withheld: bool


class Recorded(BaseModel):
    """Acknowledgement of something written."""

    id: int
    at: datetime
    note: str | None = Field(
        default=None, description="What the person should know about what was recorded (None: nothing more)."
    )


class ConsentIn(Strict):
    """A student's decision for one purpose."""

    purpose: ConsentPurpose
    granted: bool


class ConsentOut(BaseModel):
    """A student's consents."""

    consents: dict[str, bool]
    answers: dict[str, Answer] = Field(
        default_factory=dict,
        description="Each purpose's answer: given, declined (or withdrawn), or not answered yet. Staff may "
        "record an offer of support that asks a student who has not answered; one who declined is not "
        "asked again (service/outreach.py).",
    )


class PreferencesIn(Strict):
    """Whether the student wants to see their indicator."""

    show_indicator: bool


class RequestIn(Strict):
    """A rectification, erasure or objection request (an objection's words: the student's situation)."""

    detail: LongNote = ""


class RectificationIn(RequestIn):
    """A correction request, and whether to be left out while it is weighed (GDPR Art. 18(1)(a))."""

    restrict: bool = Field(
        default=False,
        description="Leave me out while this is checked: no estimate is worked out for me, no later model "
        "is trained on me, and no staff member sees me in Waymark, until the data protection officer "
        "declines the correction or the corrected data reaches Waymark (or I withdraw the request).",
    )


class OwnIndicator(BaseModel):
    """The student's own indicator, or why it is not shown."""

    shown: bool
    message: str
    indicators: list[IndicatorView] = []
    correction: str | None = Field(
        default=None,
        description="A correction you asked for of data behind it, open or accepted since it was made.",
    )
    always: bool = Field(
        default=False,
        description="The student's saved choice to see it without asking (which a hold may set aside).",
    )


class AccessEntry(BaseModel):
    """One access to the student's data."""

    at: str
    actor: str
    role: str
    purpose: str
    action: str


class ReviewIn(Strict):
    """The ethics committee's decision on one model version."""

    approve: bool
    note: Annotated[LongNote, Field(min_length=1)]
    audit_id: int | None = Field(
        None,
        description="The audit whose report was read (FairnessReport.audit_id), needed to approve: refused "
        "when a newer audit has been recorded since, so that no approval lands on a report nobody read. "
        "A rejection may leave it out (it rejects the latest audit).",
    )
    override_reason: Annotated[
        LongNote | None,
        Field(
            description=(
                "Needed to approve a version whose fairness or quality gate failed; published word for word "
                "in the public transparency statement, so it holds no figure of a group the audit withheld."
            )
        ),
    ] = None

    @model_validator(mode="after")
    def _approval_names_its_audit(self) -> ReviewIn:
        # A red team's API approval without it landed on whichever audit was newest, read or not.
        if self.approve and self.audit_id is None:
            raise ValueError(
                "an approval names the audit whose report was read (audit_id, from the fairness report)"
            )
        return self


class ClearedApproval(BaseModel):
    """An approval given before its reviewer's holding of the data scientist's role was cleared.

    It does not count; one the reviewer gives now does. The committee page had named it as by someone
    who has held the role, and said no more.
    """

    reviewer: str
    approved_on: date = Field(description="The day (UTC) the approval was given.")
    cleared_on: date = Field(description="The day (UTC) the reviewer's holding was cleared.")


class ModelReport(BaseModel):
    """Aggregate governance state of one model version."""

    name: str
    version: str
    fairness_gate: str | None
    ethics_decision: str | None
    ethics_reviewer: str | None
    gate_override_reason: str | None = Field(
        None, description="The latest counted approval's override reason."
    )
    gate_override_reasons: list[str] = Field(
        default_factory=list,
        description="Every counted approval's override reason, in the order given (a quorum gives several).",
    )
    approvals: int = Field(0, description="Different reviewers' approvals of the latest audit that count.")
    uncounted_approvals: list[str] = Field(
        default_factory=list,
        description="Reviewers whose approval of the latest audit stands but does not count: they have held "
        "the data scientist's role (those in cleared_approvals, until a clearance after the approval).",
    )
    cleared_approvals: list[ClearedApproval] = Field(
        default_factory=list,
        description="Of uncounted_approvals, those given before the reviewer's holding of the data "
        "scientist's role was cleared: an approval they give now counts.",
    )
    approvals_required: int | None = Field(
        None, description="How many the policy it was audited under asks for (None before any audit)."
    )
    champion: bool
    report_path: str | None = Field(
        description="Where MLflow keeps the report's files (for browsing MLflow)."
    )
    report_url: str | None = Field(
        None, description="The report as audited, from Waymark's database (None before any audit)."
    )


class FairnessReport(BaseModel):
    """The report published with a version's latest audit, exactly as audited (aggregate only)."""

    name: str
    version: str
    gate: str
    audited_at: datetime
    audit_id: int = Field(description="The audit this report was published with; a review names it.")
    report: dict[str, Any]


class DecisionOut(BaseModel):
    """One governance decision about a model version."""

    id: int
    version: str
    kind: str
    gate: str | None
    actor: str
    # who entered it: the signed-in caller, or the operator at a command line (shown where not the actor)
    recorded_by: str
    note: str
    override_reason: str | None
    audit_id: int | None
    at: datetime


class RectificationDecision(Strict):
    """The DPO's answer to a rectification request; the student sees it."""

    accept: bool
    note: Annotated[LongNote, Field(min_length=1)]


class ObjectionDecision(Strict):
    """The DPO's answer to an objection (GDPR Art. 21(1)); the student reads the note.

    Upheld, the student stays left out; declined, the note gives the institution's compelling
    legitimate grounds for going on, and the student is scored and read again from the next run.
    """

    uphold: bool
    note: Annotated[LongNote, Field(min_length=1)]


class ErasureRefusal(Strict):
    """The DPO's lawful reason for not erasing (GDPR Art. 17(3)); the student reads it."""

    note: Annotated[LongNote, Field(min_length=1)]


class OwnRequest(BaseModel):
    """One of the student's own requests and, once handled, its outcome."""

    id: int
    kind: str
    detail: str = Field(description="What you asked (a correction's words are kept; an erasure's go).")
    status: str
    created_at: datetime
    processed_at: datetime | None
    outcome: str | None
    outcome_note: str | None
    restricted: bool = Field(
        default=False,
        description="Whether this request keeps you left out now (an objection; a correction you asked "
        "to be left out for while it is weighed): not scored, and not seen by staff in Waymark.",
    )
    restricted_until: datetime | None = Field(
        default=None,
        description="When this request stops keeping you left out, where the data protection officer's "
        "decision ends it: you are told before it does (GDPR Art. 18(3)). None: until it is decided.",
    )


Interval = tuple[float | None, float | None, float | None]


class ImpactFigures(BaseModel):
    """One comparison of contacted students with comparable students not contacted (aggregate only)."""

    effect: Interval = Field(
        description="Completion rate of the matched contacted students minus that of their comparisons: "
        "point, low, high of the bootstrap interval (None where it could not be measured)."
    )
    naive: Interval = Field(
        description="Contacted minus every student not contacted: what a plain comparison shows."
    )
    contacted: int = Field(description="Contacted registrations (rounded under the fairness policy).")
    matched: int = Field(description="Of them, those for whom a comparable student was found.")
    comparison: int = Field(description="Distinct students not contacted used as comparisons.")
    completed_contacted: float | None
    completed_comparison: float | None
    balance: dict[str, tuple[float | None, float | None]] = Field(
        description="Per covariate, the standardised mean difference before and after matching."
    )


class ImpactGroup(ImpactFigures):
    """The comparison within one group of a characteristic (a group too small to show is absent)."""

    attribute: str
    group: str


class ImpactWithheld(BaseModel):
    """How many groups of a characteristic were too small to show, and why."""

    attribute: str
    withheld_groups: int
    why: str


class ImpactAtTheCut(BaseModel):
    """Students just inside and just outside each module list's capacity cut (``fairness.discontinuity``)."""

    withheld: str | None = Field(None, description="Why no figure is shown: too few students near the cut.")
    followed: bool | None = Field(
        None, description="Whether the share contacted jumped at the cut (staff worked down the list)."
    )
    why: str | None = Field(None, description="Why there is no figure when the list was not followed.")
    first_stage: Interval | None = Field(None, description="The jump in the share contacted at the cut.")
    effect: Interval | None = Field(
        None, description="The jump in completion over the jump in the share contacted (point, low, high)."
    )
    lists: int | None = Field(None, description="Module lists that had a cut.")
    inside: int | None = Field(None, description="Registrations near the cut, contacted side (rounded).")
    outside: int | None = Field(None, description="And on the other side (rounded).")


class ImpactReport(BaseModel):
    """The latest impact evaluation (``waymark evaluate impact``), as kept in MLflow."""

    generated_at: datetime
    since: datetime
    data_fingerprint: str
    settings: dict[str, float | int]
    contacted_without_indicator: int = Field(
        description="Contacted students with no indicator before their first contact (not compared)."
    )
    cannot_show: list[str] = Field(description="What this evaluation cannot show, in plain language.")
    overall: ImpactFigures | None = Field(description="None when too few students to compare.")
    overall_withheld: str | None = None
    at_the_cut: ImpactAtTheCut | None = Field(
        None, description="The view at the capacity cut (None in reports made before it existed)."
    )
    groups: list[ImpactGroup]
    withheld: list[ImpactWithheld]


class LatestImpact(BaseModel):
    """The latest impact report, or ``available: false`` before the first evaluation."""

    available: bool
    report: ImpactReport | None = None
