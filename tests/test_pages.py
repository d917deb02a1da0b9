"""The web pages in a real browser (Debian's Chromium through Playwright): run by .ci/run."""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from tests.service_setup import Served
from tests.vocabulary import forbidden_words
from waymark.service.app import create_app
from waymark.service.security import mint

CHROMIUM = os.environ.get("WAYMARK_CHROMIUM", "/usr/bin/chromium")
pytestmark = [pytest.mark.slow, pytest.mark.browser]


@pytest.fixture(scope="module")
def base_url(served: Served) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(create_app(served.settings), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
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


def _signed_in(browser, base_url: str, token: str):  # type: ignore[no-untyped-def]
    page = browser.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{base_url}/")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_selector("text=Signed in for this tab.")
    return page, errors


def test_a_tutor_works_through_the_caseload_and_opens_a_student(
    served: Served, base_url: str, browser
) -> None:  # type: ignore[no-untyped-def]
    tutors = served.access[
        (served.access.relationship == "personal_tutor")
        & served.access.scope_id.isin(served.indicators.student_id)
    ]
    token = mint(served.settings, "personal_tutor", sub=str(tutors.staff_id.iloc[0]))
    page, errors = _signed_in(browser, base_url, token)
    page.goto(f"{base_url}/caseload")
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
    served: Served, base_url: str, browser
) -> None:  # type: ignore[no-untyped-def]
    student = str(served.indicators.student_id.iloc[0])
    page, errors = _signed_in(browser, base_url, mint(served.settings, "student", sub=student))
    page.goto(f"{base_url}/me")
    page.wait_for_selector("text=not shown unless you choose")
    assert page.locator("article.card").count() == 0
    page.click("#ask")
    page.wait_for_selector("article.card")
    assert forbidden_words(page.inner_text("body")) == []
    assert errors == []


def test_the_transparency_page_needs_no_sign_in(base_url: str, browser) -> None:  # type: ignore[no-untyped-def]
    page = browser.new_page()
    page.goto(f"{base_url}/transparency")
    text = page.inner_text("body")
    assert "Who sees what" in text and forbidden_words(text) == []
