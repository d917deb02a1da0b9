"""Four journeys through the pages in a real browser, keyboard only, with axe-core at every step.

A tutor works through the worklist and records outreach; a student sees their indicator by choice,
withdraws a consent and asks for erasure; an ethics reviewer reads a report and approves a version;
the DPO processes the erasure. Each runs on a database of its own (nothing leaks into other tests),
signs in through the real OpenID Connect flow, and moves with the Tab key. axe-core checks each page in
each state reached (loaded, empty, refused, a form with errors) and the counts are printed at the end.
"""

from __future__ import annotations

import copy
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import mlflow
import pytest
from mlflow import MlflowClient
from sqlalchemy import delete, select

from tests.browser_support import (
    AxeLog,
    axe,
    choose,
    chromium,
    new_page,
    no_sideways_scroll,
    press,
    screenshot,
    serving,
    sign_in,
    tab_to,
    type_into,
)
from tests.champion import Champion
from tests.impact_sample import keep_report, sample_report
from tests.service_setup import Served, serve_cohort
from tests.vocabulary import forbidden_words
from waymark.models.registry import configure
from waymark.service import decisions, monitoring, objections, outreach
from waymark.service.db.engine import transaction
from waymark.service.db.schema import (
    Consent,
    Contact,
    DirectoryEntry,
    ProcessingRestriction,
    Publication,
    RightsRequest,
    StudentPreference,
    TrainingExclusion,
    search_key,
)
from waymark.service.dev_provider import person
from waymark.service.directory import import_directory
from waymark.service.security import Principal

pytestmark = [pytest.mark.slow, pytest.mark.browser]
__all__ = ["axe"]  # the module's axe-core log (a fixture)
BOTH = "both-1"  # given the data scientist's and the ethics reviewer's roles
OTHER_NAME = "سام الطالب"  # the tutee's name in a second script


def _second_version(own: Served, champion: Champion, root: Path) -> str:
    """A copy of the champion's MLflow store with a second version of the model, audited and unreviewed.

    The committee needs something to decide on. The copy keeps the shared store as it was; the version
    is the same trained model, so its audit reports the champion's figures under its own number.
    """
    assert champion.audited is not None
    store = root / "mlflow.db"
    shutil.copy(Path(champion.settings.mlflow_tracking_uri.removeprefix("sqlite:///")), store)
    uri = f"sqlite:///{store}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    first = client.get_model_version(champion.name, champion.version)
    second = client.create_model_version(champion.name, first.source, run_id=first.run_id).version
    report = copy.deepcopy(champion.audited.report)
    report["model"]["version"] = str(second)
    with transaction(own.engine) as session:
        decisions.record_audit(
            session,
            champion.name,
            version=str(second),
            bundle_sha256=champion.audited.bundle_sha256,
            gate=champion.audited.gate,
            report=report,
            policy=champion.audited.policy,
            actor="tests",
        )
    return uri


@pytest.fixture(scope="module")
def own(champion: Champion, synth_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("journeys")
    served = serve_cohort(champion, synth_dir, "sqlite", root)
    import_directory(served.engine, synth_dir / "directory.csv", known=None)
    store = _second_version(served, champion, root)
    previous = mlflow.get_tracking_uri()
    yield Served(
        served.settings.model_copy(update={"mlflow_tracking_uri": store}),
        served.engine,
        served.folder,
        served.indicators,
        served.access,
    )
    mlflow.set_tracking_uri(previous)
    configure(champion.settings)
    served.engine.dispose()


@pytest.fixture(scope="module")
def people(own: Served) -> dict[str, str]:
    """A personal tutor (also a module leader) and one of their students, with consents to outreach.

    Another of the tutor's students said no to being contacted about support; the first has a name in a
    second script.
    """
    tutors = own.access[
        (own.access.relationship == "personal_tutor") & own.access.scope_id.isin(own.indicators.student_id)
    ]
    student, tutor = str(tutors.scope_id.iloc[0]), tutors.staff_id.iloc[0]
    # another of the tutor's students said no to being contacted about support: off the worklist
    other = next(s for s in tutors[tutors.staff_id == tutor].scope_id if s != student)
    with transaction(own.engine) as session:
        for purpose in ("outreach_contact", "study_skills_referral"):
            session.add(Consent(student_id=student, purpose=purpose, granted=True, at=datetime.now(UTC)))
        no = Consent(student_id=other, purpose="outreach_contact", granted=False, at=datetime.now(UTC))
        session.add(no)
        entry = session.get(DirectoryEntry, student)
        assert entry is not None
        entry.other_name = OTHER_NAME
        entry.search_name = search_key(entry.display_name, entry.preferred_name, OTHER_NAME)
    return {
        "personal_tutor": str(tutors.staff_id.iloc[0]),
        "student": student,
        "ethics_reviewer": "reviewer-1",
        "data_scientist": "scientist-1",
        "dpo": "dpo-1",
    }


@pytest.fixture(scope="module")
def base_url(own: Served, people: dict[str, str]) -> Iterator[str]:
    local = [
        person(people["personal_tutor"], ["personal_tutor", "module_leader"], name="Tess Tutor"),
        person(people["student"], ["student"], name="Sam Student"),
        person(people["ethics_reviewer"], ["ethics_reviewer"], name="Erin Reviewer"),
        person(people["data_scientist"], ["data_scientist"], name="Dana Scientist"),
        person(people["dpo"], ["dpo"], name="Devi Officer"),
        person(BOTH, ["data_scientist", "ethics_reviewer"], name="Blair Both"),
    ]
    with serving(own.settings, local, list(people.items())) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _name(own: Served, student: str) -> str:
    with transaction(own.engine) as session:
        entry = session.get(DirectoryEntry, student)
        assert entry is not None
        return entry.preferred_name or entry.display_name


def _seen(page: Any) -> str:
    text = str(page.inner_text("body"))
    assert forbidden_words(text) == [], forbidden_words(text)
    return text


def test_a_tutor_finds_a_student_records_outreach_follows_up_and_closes_it(
    own: Served, people: dict[str, str], base_url: str, browser: Any, axe: AxeLog
) -> None:
    student, name = people["student"], _name(own, people["student"])
    page, errors = sign_in(browser, base_url, people["personal_tutor"])
    assert page.url == f"{base_url}/caseload"  # where a tutor starts: the worklist
    page.wait_for_selector("#worklist tbody tr td[data-label='Support priority']")
    text = _seen(page)
    assert "model range" in text and "first visit" in text
    assert "1 student of yours said no to being contacted about support and is not listed" in text
    # a name or a module's ids in a right-to-left script never carry the estimate after them into theirs
    for held in ("#worklist a", "#worklist strong"):
        assert page.evaluate(f"getComputedStyle(document.querySelector('{held}')).unicodeBidi") == "isolate"
    axe.check(page, "worklist, loaded")
    screenshot(page, "worklist")
    page.set_viewport_size({"width": 320, "height": 800})
    assert no_sideways_scroll(page)
    axe.check(page, "worklist at 320 CSS px")
    screenshot(page, "worklist-320px", height=1100)
    page.set_viewport_size({"width": 1000, "height": 900})

    type_into(page, "#search", "nobody-by-this-name")
    page.keyboard.press("Enter")
    page.wait_for_selector("text=No students match these filters.")
    axe.check(page, "worklist, nothing matches")
    type_into(page, "#search", name)
    page.keyboard.press("Enter")
    page.wait_for_selector(f"#worklist a[href='/student#{student}']")
    # their name in a second script beside the first, isolated from the text around it
    shown = page.locator(f"#worklist tr:has(a[href='/student#{student}']) bdi.other-name")
    assert shown.inner_text() == OTHER_NAME
    press(page, f"#worklist a[href='/student#{student}']")

    page.wait_for_selector("#contacts h3")
    page.wait_for_selector("article.card")
    text = _seen(page)
    assert name in page.inner_text("h1") and "@" in page.inner_text("#who")
    assert "Strengths" in text and "Nobody in the team has recorded a contact" in text
    axe.check(page, "student, loaded")
    screenshot(page, "student")
    page.set_viewport_size({"width": 320, "height": 800})
    assert no_sideways_scroll(page)  # the contact form's long exemption list had made it 788 px wide
    page.set_viewport_size({"width": 1000, "height": 900})

    # A wellbeing referral already in conversation: the student has not agreed (an offer that asks them
    # could be recorded, a conversation cannot) and no exemption is chosen, so nothing is saved.
    choose(page, "#nc-purpose", "wellbeing_referral")
    choose(page, "#nc-status", "in_conversation")
    press(page, "#new-contact button[type=submit]")
    page.wait_for_selector("#nc-exemption-error:has-text('has not agreed')")
    assert page.evaluate("document.activeElement.name") == "basis"  # focus goes to the problem
    axe.check(page, "student, contact form refused (consent needed)")
    screenshot(page, "student-consent-needed", at="#new-contact", height=900)
    with transaction(own.engine) as session:
        assert session.scalars(select(Contact).where(Contact.student_id == student)).first() is None

    choose(page, "#nc-purpose", "outreach_contact")
    choose(page, "#nc-channel", "email")
    choose(page, "#nc-status", "contacted")
    type_into(page, "#nc-note", "Sent a friendly email offering a chat.")
    press(page, "#new-contact button[type=submit]")
    page.wait_for_selector("article.contact")
    contact = page.locator("article.contact").first
    assert "the student's consent" in contact.inner_text() and "Contacted" in contact.inner_text()
    prefix = contact.get_attribute("id").replace("contact-", "c")

    tab_to(page, f"#{prefix}-follow_up_on")
    page.fill(f"#{prefix}-follow_up_on", "2030-01-14")
    press(page, f"#{prefix}-status ~ button, article.contact form button[type=submit]")
    page.wait_for_selector("text=Contact updated")
    assert "14 January 2030" in page.locator("article.contact").first.inner_text()

    choose(page, f"#{prefix}-status", "closed")
    press(page, "article.contact form button[type=submit]")
    page.wait_for_selector(f"#{prefix}-outcome-error:has-text('outcome')")
    axe.check(page, "student, contact update refused (closing needs an outcome)")
    choose(page, f"#{prefix}-outcome", "agreed_action")
    press(page, "article.contact form button[type=submit]")
    page.wait_for_selector("text=Closed: agreed an action")
    assert page.locator("article.contact form").count() == 0  # a closed contact is not changed again
    press(page, "article.contact summary")
    assert page.locator("article.contact ol.history li").count() == 3
    axe.check(page, "student, contact closed with its history")
    screenshot(page, "student-contact-closed", at="#outreach", height=900)
    with transaction(own.engine) as session:
        (made,) = session.scalars(select(Contact).where(Contact.student_id == student)).all()
        assert (made.status, made.outcome, made.basis) == ("closed", "agreed_action", "consent")

    press(page, "form.feedback input[value=useful]", "Space")
    press(page, "form.feedback button[type=submit]")
    page.wait_for_selector("text=your feedback was recorded")

    # The student's own view held back for their wellbeing, then released (it was API only).
    page.wait_for_selector("#hold-state:has-text('Not held back')")
    press(page, "#hold-toggle")
    page.wait_for_selector("#hold-state:has-text('Held back for their wellbeing')")
    assert page.inner_text("#hold-toggle") == "Release the hold"
    axe.check(page, "student, own view held back")
    with transaction(own.engine) as session:
        held = session.get(StudentPreference, student)
        assert held is not None and held.withheld_for_wellbeing
    press(page, "#hold-toggle")
    page.wait_for_selector("text=The hold is released.")
    with transaction(own.engine) as session:
        assert not session.get(StudentPreference, student).withheld_for_wellbeing  # type: ignore[union-attr]

    page.goto(f"{base_url}/student#no-such-student")
    page.wait_for_selector("#problem:has-text('Open a student from your worklist')")
    axe.check(page, "student, not found")

    press(page, "#signout")
    page.wait_for_selector("#signin")
    assert errors == []


def test_a_session_that_ends_on_a_students_page_signs_in_again_and_returns_to_that_student(
    own: Served, people: dict[str, str], base_url: str, browser: Any
) -> None:
    student, name = people["student"], _name(own, people["student"])
    page, errors = sign_in(browser, base_url, people["personal_tutor"])
    page.goto(f"{base_url}/student#{student}")
    page.wait_for_selector("article.card")
    assert name in page.inner_text("h1")
    # The page's last read (the wellbeing hold's state) has answered: a read still under way when the
    # cookies go would meet a 401 and start signing in again itself, racing the reload below.
    page.wait_for_selector("#hold-section:not([hidden])")
    page.context.clear_cookies()  # the session (and the provider's) is gone, as after expiry
    page.reload()  # the browser sends no fragment: the server sees only /student
    page.wait_for_selector("input[name=sub]")
    # This provider's one-page form happens to carry the fragment through; a real one's pages (several
    # steps, scripts) drop it, as here, so the page must find its place again by itself.
    page.evaluate("history.replaceState(null, '', location.pathname + location.search)")
    page.fill("input[name=sub]", people["personal_tutor"])
    page.click("button[type=submit]:has-text('Authorize')")
    page.wait_for_selector("article.card")
    assert page.url == f"{base_url}/student#{student}" and name in page.inner_text("h1")
    page.goto(f"{base_url}/caseload")  # a page with no fragment of its own, reached from the site
    page.wait_for_selector("#worklist tbody tr")
    assert page.url == f"{base_url}/caseload"
    assert errors == []


def test_a_student_sees_their_indicator_by_choice_withdraws_a_consent_and_asks_for_erasure(
    own: Served, people: dict[str, str], base_url: str, browser: Any, axe: AxeLog
) -> None:
    student = people["student"]
    page, errors = sign_in(browser, base_url, student)
    assert page.url == f"{base_url}/me"
    page.wait_for_selector("text=not shown unless you choose")
    page.wait_for_selector("#accesslog tbody tr td")
    assert page.locator("article.card").count() == 0
    text = _seen(page)
    assert "@" in page.inner_text("#directory") and "You have made no requests." in text
    axe.check(page, "me, indicator not shown")

    press(page, "#ask")
    page.wait_for_selector("article.card")
    assert "model range" in _seen(page)
    axe.check(page, "me, indicator shown on request")
    screenshot(page, "me")

    row = page.locator("#consents tbody tr", has_text="Outreach contact")
    assert "Given" in row.inner_text()
    press(page, "#consent-outreach_contact")
    page.wait_for_selector("text=Consent withdrawn")
    assert (
        "No (staff do not ask you again)"
        in page.locator("#consents tbody tr", has_text="Outreach contact").inner_text()
    )
    # a purpose never answered offers both answers: agreeing, and saying no before anyone asks
    assert page.locator("#decline-wellbeing_referral").count() == 1
    assert page.evaluate("document.activeElement.id") == "consent-outreach_contact"
    with transaction(own.engine) as session:
        consent = session.get(Consent, (student, "outreach_contact"))
        assert consent is not None and not consent.granted

    # what stays while they are left out, in the words of the institution's outreach file
    assert "an exemption the University keeps open while you are left out (A safeguarding concern" in text
    press(page, "#rectification button[type=submit]")  # nothing said: refused beside the field
    page.wait_for_selector("#rect-detail-error:has-text('Say what is wrong')")
    axe.check(page, "me, correction form with an error")
    # a correction, asking to be left out while it is checked (GDPR Art. 18(1)(a))
    type_into(page, "#rect-detail", "The logins counted in week 3 were not mine.")
    press(page, "#rect-restrict", "Space")
    press(page, "#rectification button[type=submit]")
    page.wait_for_selector("#requests td:has-text('you are left out meanwhile')")
    with transaction(own.engine) as session:
        grounds = session.scalars(
            select(ProcessingRestriction.ground).where(ProcessingRestriction.student_id == student)
        )
        assert list(grounds) == ["accuracy"]
    type_into(page, "#erase-detail", "I am leaving the course.")
    press(page, "#erasure button[type=submit]")
    page.wait_for_selector("#requests td:has-text('Waiting for the data protection officer')")
    axe.check(page, "me, erasure requested")
    screenshot(page, "me-requests", at="#rights", height=900)
    type_into(page, "#object-detail", "Lists of names upset me.")
    press(page, "#objection button[type=submit]")
    page.wait_for_selector("#requests td:has-text('Objection')")
    with transaction(own.engine) as session:  # left out from this moment, before the DPO decides
        assert objections.restriction(session, student) is not None
    axe.check(page, "me, objection made")
    assert errors == []


def _reports_for_the_committee(own: Served, folder: Path) -> None:
    """A monitoring report of the served run and an impact evaluation kept in the served MLflow store."""
    report = monitoring.monitor(
        own.engine, target="not_completing", policy=monitoring.load_policy(), min_students=10
    )
    if not report["stability"]:  # one scoring run has no turnover: a row as the next run would give it
        report["stability"] = [
            {"module": "AAA/2025J", "share": 0.1, "listed": 12, "turnover": 0.25, "turnover_smoothed": 0.08}
        ]
    if not report["flags"]:
        report["flags"] = [
            {
                "kind": "list turnover",
                "scope": "AAA/2025J",
                "name": "top 10%",
                "value": 0.25,
                "threshold": 0.2,
            }
        ]
    monitoring.store(own.engine, report, target="not_completing")
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(own.settings.mlflow_tracking_uri)
    try:
        keep_report(sample_report(), folder)
    finally:
        mlflow.set_tracking_uri(previous)


def test_an_ethics_reviewer_reads_a_report_compares_it_and_approves_the_version(
    own: Served, people: dict[str, str], base_url: str, browser: Any, axe: AxeLog, tmp_path: Path
) -> None:
    page, errors = sign_in(browser, base_url, people["ethics_reviewer"])
    press(page, "header nav a[href='/committee']")
    page.wait_for_selector("#versions tbody tr td[data-label='Version']")
    page.wait_for_selector("#decisions tbody tr")
    text = _seen(page)
    assert "Yes: the champion" in text and "No decision yet" in text
    assert "No impact evaluation yet" in text
    axe.check(page, "committee, versions and decisions")

    _reports_for_the_committee(own, tmp_path / "impact")
    page.reload()
    page.wait_for_selector("#impact:not([hidden])")
    page.wait_for_selector("#monitoring-turnover:not([hidden]) tbody tr")
    text = _seen(page)
    assert "+6.0 points" in text and "\u22121.0 points to +13.0 points" in text  # the estimate and its range
    assert "\u221218.0 points" in text  # the plain comparison beside it
    assert "range includes zero" in text and "Age band: 2 groups not shown" in text
    cut = page.inner_text("#impact-cut")  # the capacity-cut view beside the matched comparison
    assert "just inside" in cut and "+9.0 points" in cut and "+1.0 points to +17.0 points" in cut
    assert page.locator("#impact-groups tbody tr").count() == 1
    assert page.locator("#impact-limits li").count() == len(sample_report()["cannot_show"])
    assert re.search(r"\d\d:\d\d [A-Z]{3}", page.inner_text("#impact-summary"))  # a time, with its zone
    axe.check(page, "committee, with monitoring and impact")
    screenshot(page, "committee-impact", at="#impact-h", height=1000)
    choose(page, "#candidate", "2")
    press(page, "#compare button[type=submit]")
    page.wait_for_selector("#comparison-table")
    axe.check(page, "committee, candidate beside the champion")
    screenshot(page, "committee")

    press(page, "#versions a[href$='/2']")
    page.wait_for_selector("#checks li")
    text = _seen(page)
    assert "Fairness gate: Passed" in text and "(" in page.inner_text("#groups-h + p")
    press(page, "section[aria-labelledby=groups-h] details summary")
    assert page.locator("section[aria-labelledby=groups-h] table").count() > 0
    axe.check(page, "report, read")
    screenshot(page, "report")
    screenshot(page, "report-groups", at="#groups-h", height=1000)

    press(page, "#review input[value=true]", "Space")
    press(page, "#review button[type=submit]")  # no note: the API refuses, nothing is recorded
    page.wait_for_selector("#rv-note-error:not(:empty)")
    axe.check(page, "report, decision form with an error")
    screenshot(page, "report-decision-error", at="#review-section", height=700)
    type_into(page, "#rv-note", "Gate passed; the committee approves this version.")
    press(page, "#review button[type=submit]")
    page.wait_for_selector("text=Recorded: version 2 approved")
    page.goto(f"{base_url}/committee")
    page.wait_for_selector("#decisions tbody tr td:has-text('Approved')")
    version_two = page.locator("#versions tbody tr", has_text="Read the report of version 2")
    assert "Approved by reviewer-1" in version_two.inner_text()
    axe.check(page, "committee, after the approval")
    assert errors == []


def test_a_data_scientist_reads_the_reports_but_records_no_decision(
    people: dict[str, str], base_url: str, browser: Any, axe: AxeLog
) -> None:
    page, errors = sign_in(browser, base_url, people["data_scientist"])
    page.goto(f"{base_url}/committee")
    page.wait_for_selector("#versions a[href$='/1']")
    # An approval given before its reviewer's holding of the role was cleared is said with both days
    # (it had read as by someone who still builds the models); the API's fields, as the page words them.
    said = page.evaluate(
        """() => decisionText({
            ethics_decision: "approved", ethics_reviewer: "rev-2", approvals: 1, approvals_required: 2,
            uncounted_approvals: ["rev-3", "rev-4"],
            cleared_approvals: [{reviewer: "rev-4", approved_on: "2026-12-01", cleared_on: "2026-12-03"}],
        })"""
    )
    assert "; not counted: the approval of rev-3, who has held the data scientist's role" in said
    assert (
        "; not counted: the approval rev-4 gave on 1 December 2026, before their holding of the data "
        "scientist's role was cleared on 3 December 2026 (an approval they give now counts)"
    ) in said
    assert "rev-4, who" not in said and "rev-3, rev-4" not in said
    page.click("#versions a[href$='/1']")
    page.wait_for_selector("#checks li")
    assert page.locator("#review").is_hidden() and page.locator("#review-readonly").is_visible()
    axe.check(page, "report, read only")
    assert errors == []


def test_a_reviewer_who_also_builds_the_models_may_reject_but_not_approve(
    base_url: str, browser: Any, axe: AxeLog
) -> None:
    page, errors = new_page(browser, base_url)
    page.goto(f"{base_url}/login?login_hint={BOTH}")  # not offered as one click: signed in by name
    page.wait_for_selector("#signed-in-as")
    assert "as Data scientist" in page.inner_text("#signed-in-as")
    choose(page, "#role-choice", "ethics_reviewer")
    press(page, "form[action='/session/role'] button[type=submit]")
    page.wait_for_selector("#signed-in-as:has-text('as Ethics reviewer')")
    page.goto(f"{base_url}/committee")
    page.wait_for_selector("#versions a[href$='/1']")
    page.click("#versions a[href$='/1']")
    page.wait_for_selector("#checks li")
    assert page.locator("#review").is_visible() and page.locator("#review-builder").is_visible()
    press(page, "#review input[value=true]", "Space")
    type_into(page, "#rv-note", "My own model, approved by me.")
    press(page, "#review button[type=submit]")
    page.wait_for_selector('#review .form-error:has-text("data scientist\'s role")')
    axe.check(page, "report, an approval refused to a reviewer who builds the models")
    page.goto(f"{base_url}/committee")
    page.wait_for_selector("#decisions tbody tr")
    assert BOTH not in page.inner_text("#decisions")  # the table names reviewers by their id
    assert errors == []


def test_the_dpo_processes_the_erasure_and_runs_retention(
    own: Served, people: dict[str, str], base_url: str, browser: Any, axe: AxeLog
) -> None:
    student = people["student"]
    with transaction(own.engine) as session:  # the student's journey asked; alone, this test asks itself
        if not session.scalars(
            select(RightsRequest).where(RightsRequest.student_id == student, RightsRequest.status == "open")
        ).first():
            session.add(
                RightsRequest(
                    student_id=student, kind="erasure", detail="", status="open", created_at=datetime.now(UTC)
                )
            )
        contested = select(ProcessingRestriction).where(
            ProcessingRestriction.student_id == student, ProcessingRestriction.ground == "accuracy"
        )
        if session.scalars(contested).first() is None:
            asked = RightsRequest(
                student_id=student,
                kind="rectification",
                detail="The logins counted in week 3 were not mine.",
                status="open",
                created_at=datetime.now(UTC),
            )
            session.add(asked)
            session.flush()
            session.add(
                ProcessingRestriction(
                    student_id=student, request_id=asked.id, since=datetime.now(UTC), ground="accuracy"
                )
            )
        if objections.restriction(session, student) is None:
            objected = RightsRequest(
                student_id=student, kind="objection", detail="", status="open", created_at=datetime.now(UTC)
            )
            session.add(objected)
            session.flush()
            session.add(
                ProcessingRestriction(student_id=student, request_id=objected.id, since=datetime.now(UTC))
            )
    page, errors = sign_in(browser, base_url, people["dpo"])
    press(page, "header nav a[href='/dpo']")
    page.wait_for_selector("article.request")
    page.wait_for_selector("#due tbody tr")
    _seen(page)
    axe.check(page, "dpo, queue and retention")
    screenshot(page, "dpo")
    # the objection first: declined, with the grounds the student reads; the restriction ends once they
    # have had notice of it (GDPR Art. 18(3)), which the DPO reads too
    objection = page.locator("article.request", has_text=f"student {student}").filter(has_text="Objection")
    prefix = objection.get_attribute("aria-labelledby").removesuffix("-h")
    press(page, f"#{prefix}-h ~ form button[type=submit]")
    page.wait_for_selector(f"#o{prefix[1:]}-uphold-error:has-text('Choose upheld or declined')")
    page.check(f"#{prefix}-h ~ form input[name=uphold][value=false]")
    type_into(page, f"#o{prefix[1:]}-note", "Your course's accrediting body requires engagement monitoring.")
    press(page, f"#{prefix}-h ~ form button[type=submit]")
    page.wait_for_selector(f"text=Objection {prefix[1:]}: outcome recorded")
    assert (
        "who reads it in their requests in Waymark when they look: You stay left out until"
        in page.locator("#status").inner_text()
    )
    with transaction(own.engine) as session:
        assert objections.restriction(session, student) is None  # in its notice: they may object again
    # the correction they asked to be left out for: declined, they are read again after the notice
    card = page.locator("article.request", has_text=f"student {student}").filter(has_text="Rectification")
    assert "asked to be left out while this is checked" in card.inner_text()
    # what the student wrote is set apart in its own direction (a note in Arabic keeps its order)
    assert card.locator("bdi", has_text="The logins counted in week 3 were not mine.").count() == 1
    prefix = card.get_attribute("aria-labelledby").removesuffix("-h")
    page.check(f"#{prefix}-h ~ form input[name=accept][value=false]")
    type_into(page, f"#{prefix}-note", "The login records show your own device in week 3.")
    press(page, f"#{prefix}-h ~ form button[type=submit]")
    page.wait_for_selector(f"text=Rectification request {prefix[1:]}: outcome recorded")
    with transaction(own.engine) as session:
        left_out = select(ProcessingRestriction).where(ProcessingRestriction.student_id == student)
        assert all(r.lifts_at is not None for r in session.scalars(left_out))  # each in its notice
        assert objections.still_restricted(session, student)
    # the student reads, before it comes, the day each ends, and may end one sooner
    theirs, their_errors = sign_in(browser, base_url, student)
    theirs.wait_for_selector("#requests td:has-text('You stay left out until')")
    assert theirs.locator("#requests td bdi", has_text="The login records show your own device").count() == 1
    axe.check(theirs, "me, left out for the notice of a decision")
    ending = theirs.locator("#requests tr", has_text="Rectification").locator("button", has_text="now")
    assert ending.count() == 1
    ending.focus()
    theirs.keyboard.press("Enter")
    theirs.wait_for_selector("#status:has-text('no longer left out for this request')")
    with transaction(own.engine) as session:  # the objection's notice still runs
        assert [r.ground for r in session.scalars(left_out)] == ["objection"]
    assert their_errors == []
    theirs.context.close()
    # the decided requests stay listed while the student's notice runs, with the day, and no form
    in_notice = page.locator("article.request", has_text=f"student {student}").filter(has_text="Objection")
    assert "stays left out until" in in_notice.inner_text() and in_notice.locator("form").count() == 0
    request = page.locator("article.request", has_text=f"student {student}").filter(has_text="Erasure")
    prefix = request.get_attribute("aria-labelledby").removesuffix("-h")
    press(page, f"#{prefix}-h ~ form button[type=submit]")
    page.wait_for_selector(f"#{prefix}-confirm-error:has-text('cannot be undone')")
    axe.check(page, "dpo, erasure not yet confirmed")
    press(page, f"#{prefix}-confirm", "Space")
    press(page, f"#{prefix}-h ~ form button[type=submit]")
    page.wait_for_selector("text=the student's learning analytics data is erased")
    with transaction(own.engine) as session:
        assert session.get(TrainingExclusion, student) is not None
        assert session.get(DirectoryEntry, student) is None
    if page.locator("#queue-empty").count():
        axe.check(page, "dpo, queue empty")
    press(page, "#run-retention button")
    page.wait_for_selector("text=Retention ran:")
    axe.check(page, "dpo, retention ran")
    assert errors == []


def test_a_tutor_follows_up_a_safeguarding_contact_with_a_student_left_out_at_their_request(
    own: Served, people: dict[str, str], base_url: str, browser: Any, axe: AxeLog
) -> None:
    """A safeguarding follow-up had left its tutor's worklist, unreadable and unclosable, once the student
    objected to being scored and listed (docs/reviews.md)."""
    tutor = people["personal_tutor"]
    grants = own.access
    mine = grants[(grants.relationship == "personal_tutor") & (grants.staff_id == tutor)]
    with transaction(own.engine) as session:
        said_no = set(session.scalars(select(Consent.student_id).where(Consent.granted.is_(False))))
        gone = set(session.scalars(select(TrainingExclusion.student_id)))
        student = next(
            str(s)
            for s in mine.scope_id
            if s in set(own.indicators.student_id) and s not in said_no | gone | {people["student"]}
        )
        run = session.scalar(select(Publication.run_id).where(Publication.target == own.settings.target))
        made = outreach.open_contact(
            session, student, staff=Principal(tutor, "personal_tutor", None), run_id=run,
            channel="phone", purpose="wellbeing_referral", exemption="safeguarding", status="contacted",
            follow_up_on=date(2030, 1, 14), note="A concern for their safety; see them again.",
            options=outreach.load_options(own.settings.outreach_file),
        )  # fmt: skip
        asked = RightsRequest(
            student_id=student, kind="objection", detail="", status="open", created_at=datetime.now(UTC)
        )
        session.add(asked)
        session.flush()
        session.add(ProcessingRestriction(student_id=student, request_id=asked.id, since=datetime.now(UTC)))
        contact_id = made.id
    name = _name(own, student)
    try:
        dpo, dpo_errors = sign_in(browser, base_url, people["dpo"])  # the DPO sees what stays in reach
        dpo.wait_for_selector(f"article.request:has-text('student {student}') p.kept")
        said = dpo.locator("article.request", has_text=f"student {student}").inner_text()
        assert "1 open contact under a safeguarding exemption" in said
        # the tutor who opened it, and any other relationship naming the student
        named = grants[(grants.scope_type == "student") & (grants.scope_id == student)].staff_id.nunique()
        assert f"{named} member{'' if named == 1 else 's'} of staff may read it, at most" in said
        axe.check(dpo, "dpo, an objection whose student keeps a safeguarding contact")
        assert dpo_errors == []
        _follow_up_and_close(
            base_url, browser, axe, tutor=tutor, student=student, name=name, contact=contact_id
        )
    finally:
        with transaction(own.engine) as session:
            session.execute(delete(ProcessingRestriction).where(ProcessingRestriction.student_id == student))
            session.execute(delete(RightsRequest).where(RightsRequest.student_id == student))
    with transaction(own.engine) as session:
        closed = session.get(Contact, contact_id)
        assert closed is not None and (closed.status, closed.outcome) == ("closed", "referred_to_service")


def _follow_up_and_close(
    base_url: str, browser: Any, axe: AxeLog, *, tutor: str, student: str, name: str, contact: int
) -> None:
    page, errors = sign_in(browser, base_url, tutor)
    page.wait_for_selector("#left-out:not([hidden]) li")
    # the exemptions kept, in the outreach file's own words
    assert "an exemption that outlasts this (A safeguarding concern: " in page.inner_text("#left-out")
    item = page.inner_text("#left-out-list")
    assert name in item and "14 January 2030" in item
    assert "Exemption: A safeguarding concern: the University must act" in item  # the institution's words
    assert page.locator(f"#worklist a[href='/student#{student}']").count() == 0  # on no list
    axe.check(page, "worklist, a follow-up with a student left out")
    press(page, f"#left-out a[href='/student#{student}']")
    page.wait_for_selector("article.contact")
    assert "the contacts you follow up under an exemption are below" in _seen(page)
    assert page.locator("#indicators-section").is_hidden() and page.locator("#new-contact").is_hidden()
    prefix = f"c{contact}"
    choose(page, f"#{prefix}-status", "closed")
    choose(page, f"#{prefix}-outcome", "referred_to_service")
    press(page, "article.contact form button[type=submit]")
    page.wait_for_selector("text=Closed: referred to a service")
    assert "the contact leaves your worklist" in page.inner_text("#status")
    axe.check(page, "student left out, the follow-up closed")
    page.goto(f"{base_url}/caseload")
    page.wait_for_selector("#worklist tbody tr")
    assert page.locator("#left-out").is_hidden() and page.locator("#left-out-list li").count() == 0
    assert errors == []
