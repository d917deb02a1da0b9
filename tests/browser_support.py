"""What the browser tests share: a served app with a local identity provider, Chromium, axe-core, keys.

axe-core is the copy axe-playwright-python bundles (pinned in pyproject.toml's test extra); every check
runs the WCAG 2.0, 2.1 and 2.2 A and AA rules and axe's best practices, and is counted in the output.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from waymark.models.settings import Settings
from waymark.service.app import create_app
from waymark.service.dev_provider import Person, running

CHROMIUM = os.environ.get("WAYMARK_CHROMIUM", "/usr/bin/chromium")
# Set to a folder to save a screenshot of each page the journeys pass (docs/images is the usual one).
SCREENSHOTS = os.environ.get("WAYMARK_SCREENSHOTS", "")
AXE_RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(settings: Settings, people: list[Person], dev_sign_in: list[tuple[str, str]]) -> Iterator[str]:
    """The app on a free port of 127.0.0.1 with a local OpenID Connect provider; yields its base URL."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running(people, redirect_uris=[f"{base}/auth/callback"]) as provider:
        configured = settings.model_copy(
            update={
                "oidc_issuer": provider.issuer,
                "oidc_client_id": provider.client_id,
                "oidc_client_secret": provider.client_secret,
                # the local provider keeps no session of its own: nothing to end there
                "oidc_end_provider_session": False,
                "dev_sign_in": ",".join(f"{role}={sub}" for role, sub in dev_sign_in),
                "rate_limit_per_minute": 100_000,
            }
        )
        server = uvicorn.Server(
            uvicorn.Config(create_app(configured), host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        yield base
        server.should_exit = True
        thread.join(timeout=10)


@contextmanager
def chromium() -> Iterator[Any]:
    """Debian's Chromium through Playwright (Playwright cannot download a browser here)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}; .ci/run installs Debian's chromium package")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def new_page(browser: Any, base_url: str) -> tuple[Any, list[str]]:
    """A page in a fresh browser context (its own cookies), collecting the console errors of our pages."""
    page = browser.new_context(viewport={"width": 1000, "height": 900}).new_page()
    errors: list[str] = []

    def note(message: Any) -> None:
        # The local provider's form links a stylesheet on the internet, which this machine cannot reach;
        # a refused API call (a 404 or 422 a journey provokes on purpose) is logged by Chromium, not by us.
        if message.type == "error" and page.url.startswith(base_url) and "status of" not in message.text:
            errors.append(message.text)

    page.on("console", note)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return page, errors


def sign_in(browser: Any, base_url: str, sub: str) -> tuple[Any, list[str]]:
    """Signed in with one click on the demo identity ``sub`` of the sign-in page (through the provider)."""
    page, errors = new_page(browser, base_url)
    page.goto(f"{base_url}/")
    page.click(f"a[href='/login?login_hint={sub}']")
    page.wait_for_selector("#signed-in-as")
    assert page.url.startswith(base_url)
    return page, errors


@dataclass
class AxeLog:
    """Runs axe-core on a page's current state; asserts no violation; keeps the count for the output."""

    checked: list[tuple[str, int]] = field(default_factory=list)
    version: str = ""

    def check(self, page: Any, state: str) -> None:
        from axe_playwright_python.sync_playwright import Axe

        results = Axe().run(page, options={"runOnly": {"type": "tag", "values": AXE_RULES}})
        self.version = results.response.get("testEngine", {}).get("version", "")
        self.checked.append((state, results.violations_count))
        assert results.violations_count == 0, f"{state}: {results.generate_report()}"

    def lines(self) -> list[str]:
        total = sum(n for _, n in self.checked)
        rules = ", ".join(AXE_RULES)
        head = (
            f"axe-core {self.version} ({rules}): {len(self.checked)} page states checked, {total} violations"
        )
        return [head, *(f"  axe: {n} violations: {state}" for state, n in self.checked)]


@pytest.fixture(scope="module")
def axe(request: pytest.FixtureRequest) -> Iterator[AxeLog]:
    """An axe-core log for the module; its counts are written to the test output at the end."""
    log = AxeLog()
    yield log
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not log.checked:
        return
    with capture.global_and_fixture_disabled():  # teardown output is captured otherwise
        reporter.write_line("")
        for line in log.lines():
            reporter.write_line(line)


def tab_to(page: Any, selector: str, *, limit: int = 250) -> None:
    """Press Tab until the focused element matches ``selector``; it must show a visible focus ring.

    The page's stylesheets are waited for first: on a busy machine an element can be in the document
    (and focusable) before its stylesheet has arrived, and then shows the browser's own thin ring."""
    page.wait_for_load_state("load")
    page.wait_for_function(
        "() => [...document.querySelectorAll('link[rel=stylesheet]')].every(l => l.sheet !== null)"
    )
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("s => document.activeElement && document.activeElement.matches(s)", selector):
            ring = page.evaluate(
                "() => { const s = getComputedStyle(document.activeElement);"
                " return [s.outlineStyle, parseFloat(s.outlineWidth)]; }"
            )
            assert ring[0] != "none" and ring[1] >= 2, f"{selector} has no visible focus: {ring}"
            return
    raise AssertionError(f"{selector} cannot be reached with the Tab key")


def press(page: Any, selector: str, key: str = "Enter") -> None:
    """Reach ``selector`` with Tab and press ``key`` on it."""
    tab_to(page, selector)
    page.keyboard.press(key)


def type_into(page: Any, selector: str, text: str) -> None:
    """Reach a text field with Tab and type into it."""
    tab_to(page, selector)
    page.keyboard.press("Control+A")
    page.keyboard.type(text)


def choose(page: Any, selector: str, value: str) -> None:
    """Reach a select with Tab and choose ``value`` (Playwright sets it on the focused element)."""
    tab_to(page, selector)
    page.select_option(selector, value)


def screenshot(page: Any, name: str, *, at: str | None = None, height: int = 1300) -> None:
    """Save the page (from the element ``at``, at most ``height`` px) as NAME.png in WAYMARK_SCREENSHOTS.

    Nothing happens unless WAYMARK_SCREENSHOTS names a folder (docs/images for the guide's pictures).
    """
    if not SCREENSHOTS:
        return
    folder = Path(SCREENSHOTS)
    folder.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    top = (
        0
        if at is None
        else page.evaluate(
            "s => Math.max(0, document.querySelector(s).getBoundingClientRect().top + window.scrollY - 8)", at
        )
    )
    size = page.evaluate("() => [document.body.scrollWidth, document.documentElement.scrollHeight]")
    clip = {"x": 0, "y": top, "width": size[0], "height": min(height, size[1] - top)}
    page.screenshot(path=str(folder / f"{name}.png"), full_page=True, clip=clip, animations="disabled")


def no_sideways_scroll(page: Any) -> bool:
    """Whether the page fits its viewport's width (WCAG 1.4.10, reflow)."""
    return bool(page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth"))


def words_of(text: str) -> str:
    return re.sub(r"\s+", " ", text)
