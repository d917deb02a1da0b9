"""The web pages in a real browser (Debian's Chromium through Playwright): run by .ci/run.

Every journey signs in through the real OpenID Connect flow against a local provider
(oidc-provider-mock), as the demo does: one click on a demo identity, or the provider's own form.
The longer journeys of each audience, with axe-core, are in test_journeys.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser_support import AxeLog, axe, chromium, new_page, serving, sign_in
from tests.service_setup import Served
from tests.vocabulary import forbidden_words
from waymark.service.dev_provider import person

pytestmark = [pytest.mark.slow, pytest.mark.browser]
__all__ = ["axe"]  # the module's axe-core log (a fixture)


@pytest.fixture(scope="module")
def people(served: Served) -> dict[str, str]:
    tutors = served.access[
        (served.access.relationship == "personal_tutor")
        & served.access.scope_id.isin(served.indicators.student_id)
    ]
    return {
        "personal_tutor": str(tutors.staff_id.iloc[0]),
        "student": str(served.indicators.student_id.iloc[0]),
    }


@pytest.fixture(scope="module")
def base_url(served: Served, people: dict[str, str]) -> Iterator[str]:
    local = [
        person(people["personal_tutor"], ["personal_tutor", "module_leader"], name="Tess Tutor"),
        person(people["student"], ["student"], name="Sam Student"),
    ]
    with serving(served.settings, local, list(people.items())) as base:
        yield base


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with chromium() as b:
        yield b


def test_a_tutor_works_through_the_caseload_and_opens_a_student(
    people: dict[str, str], base_url: str, browser: Any, axe: AxeLog
) -> None:
    page, errors = sign_in(browser, base_url, people["personal_tutor"])
    assert page.url == f"{base_url}/caseload"  # where a tutor starts
    page.wait_for_selector("#worklist tbody tr td[data-label='Support priority']")
    first = page.locator("#worklist tbody tr").first
    assert first.locator("td").first.inner_text() == "1"
    text = page.inner_text("body")
    assert forbidden_words(text) == [] and "%" in text
    first.locator("a").click()
    page.wait_for_selector("article.card")
    student_text = page.inner_text("body")
    assert "Strengths" in student_text and "Estimated chance of not completing this module:" in student_text
    assert forbidden_words(student_text) == []
    assert errors == []


def test_a_student_chooses_to_see_their_indicator_and_who_looked(
    people: dict[str, str], base_url: str, browser: Any
) -> None:
    page, errors = sign_in(browser, base_url, people["student"])
    assert page.url == f"{base_url}/me"
    page.wait_for_selector("text=not shown unless you choose")
    assert page.locator("article.card").count() == 0
    page.click("#ask")
    page.wait_for_selector("article.card")
    assert forbidden_words(page.inner_text("body")) == []
    with page.expect_response("**/v1/me/preferences") as saved:  # a write: cookie and CSRF token
        page.check("#always")
    assert saved.value.status == 204
    assert errors == []


def test_signing_in_from_a_page_returns_to_it_and_signing_out_ends_the_session(
    people: dict[str, str], base_url: str, browser: Any
) -> None:
    page, errors = new_page(browser, base_url)
    page.goto(f"{base_url}/caseload")  # not signed in: off to the identity provider
    assert not page.url.startswith(base_url) and "/oauth2/authorize" in page.url
    page.click(f"button[value='{people['personal_tutor']}']")  # the provider's own form
    page.wait_for_selector("#worklist tbody tr")
    assert page.url == f"{base_url}/caseload"
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "__Host-waymark_session"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert "Tess Tutor, as Personal tutor" in page.inner_text("#signed-in-as")
    page.select_option("#role-choice", "module_leader")
    page.click("text=Switch role")
    page.wait_for_selector("text=Tess Tutor, as Module leader")
    page.click("#signout")
    page.wait_for_selector("#signin")
    assert page.url == f"{base_url}/" and not [
        c for c in page.context.cookies() if c["name"] == "__Host-waymark_session"
    ]
    page.goto(f"{base_url}/me")
    assert "/oauth2/authorize" in page.url  # signed out: the page asks for sign-in again
    assert errors == []


def test_a_page_opened_in_a_role_it_is_not_for_says_so_and_the_header_shows_the_roles_pages(
    people: dict[str, str], base_url: str, browser: Any, axe: AxeLog
) -> None:
    page, errors = sign_in(browser, base_url, people["student"])
    nav = page.locator("header nav a")
    assert [nav.nth(i).inner_text() for i in range(nav.count())] == ["My data", "How Waymark works"]
    response = page.goto(f"{base_url}/caseload")
    assert response is not None and response.status == 403
    assert "This page is for" in page.inner_text("#message")
    axe.check(page, "a page for another role")
    assert errors == []


def test_the_transparency_page_needs_no_sign_in(base_url: str, browser: Any, axe: AxeLog) -> None:
    page, _ = new_page(browser, base_url)
    page.goto(f"{base_url}/transparency")
    text = page.inner_text("body")
    assert "Who sees what" in text and forbidden_words(text) == []
    axe.check(page, "transparency, signed out")
    page.goto(f"{base_url}/")
    axe.check(page, "sign-in page")
