"""The web pages in a real browser (Debian's Chromium through Playwright): run by .ci/run.

Every journey signs in through the real OpenID Connect flow against a local provider
(oidc-provider-mock), as the demo does: one click on a demo identity, or the provider's own form.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.service_setup import Served
from tests.vocabulary import forbidden_words
from waymark.service.app import create_app
from waymark.service.dev_provider import person, running

CHROMIUM = os.environ.get("WAYMARK_CHROMIUM", "/usr/bin/chromium")
pytestmark = [pytest.mark.slow, pytest.mark.browser]


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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    local = [
        person(people["personal_tutor"], ["personal_tutor", "module_leader"], name="Tess Tutor"),
        person(people["student"], ["student"], name="Sam Student"),
    ]
    with running(local, redirect_uris=[f"{base}/auth/callback"]) as provider:
        settings = served.settings.model_copy(
            update={
                "oidc_issuer": provider.issuer,
                "oidc_client_id": provider.client_id,
                "oidc_client_secret": provider.client_secret,
                "dev_sign_in": ",".join(f"{role}={sub}" for role, sub in people.items()),
            }
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield base
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; .ci/run installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield b
        b.close()


def _new_page(browser: Any, base_url: str) -> tuple[Any, list[str]]:
    """A page in a fresh browser context (its own cookies), collecting the console errors of our pages."""
    page = browser.new_context().new_page()
    errors: list[str] = []
    # The local provider's form links a stylesheet on the internet, which this machine cannot reach.
    page.on(
        "console",
        lambda m: errors.append(m.text) if m.type == "error" and page.url.startswith(base_url) else None,
    )
    return page, errors


def _signed_in(browser: Any, base_url: str, sub: str) -> tuple[Any, list[str]]:
    """Signed in with one click on the demo identity ``sub`` of the sign-in page."""
    page, errors = _new_page(browser, base_url)
    page.goto(f"{base_url}/")
    page.click(f"a[href='/login?login_hint={sub}']")
    page.wait_for_selector("#signed-in-as")
    assert page.url.startswith(base_url)
    return page, errors


def test_a_tutor_works_through_the_caseload_and_opens_a_student(
    people: dict[str, str], base_url: str, browser: Any
) -> None:
    page, errors = _signed_in(browser, base_url, people["personal_tutor"])
    assert page.url == f"{base_url}/caseload"  # where a tutor starts
    page.wait_for_selector("#caseload tbody tr")
    first = page.locator("#caseload tbody tr").first
    assert first.locator("td").first.inner_text() == "1"
    text = page.inner_text("body")
    assert forbidden_words(text) == [] and "%" in text
    first.locator("a").click()
    page.wait_for_selector("article.card")
    student_text = page.inner_text("body")
    assert "Strengths" in student_text and "Estimate:" in student_text
    assert forbidden_words(student_text) == []
    assert errors == []


def test_a_student_chooses_to_see_their_indicator_and_who_looked(
    people: dict[str, str], base_url: str, browser: Any
) -> None:
    page, errors = _signed_in(browser, base_url, people["student"])
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
    page, errors = _new_page(browser, base_url)
    page.goto(f"{base_url}/caseload")  # not signed in: off to the identity provider
    assert not page.url.startswith(base_url) and "/oauth2/authorize" in page.url
    page.click(f"button[value='{people['personal_tutor']}']")  # the provider's own form
    page.wait_for_selector("#caseload tbody tr")
    assert page.url == f"{base_url}/caseload"
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "waymark_session"]
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Lax"
    assert "Tess Tutor, as Personal tutor" in page.inner_text("#signed-in-as")
    page.select_option("#role-choice", "module_leader")
    page.click("text=Switch role")
    page.wait_for_selector("text=Tess Tutor, as Module leader")
    page.click("#signout")
    page.wait_for_selector("#signin")
    assert page.url == f"{base_url}/" and not [
        c for c in page.context.cookies() if c["name"] == "waymark_session"
    ]
    page.goto(f"{base_url}/me")
    assert "/oauth2/authorize" in page.url  # signed out: the page asks for sign-in again
    assert errors == []


def test_the_transparency_page_needs_no_sign_in(base_url: str, browser: Any) -> None:
    page, _ = _new_page(browser, base_url)
    page.goto(f"{base_url}/transparency")
    text = page.inner_text("body")
    assert "Who sees what" in text and forbidden_words(text) == []
