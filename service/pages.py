"""Web pages for staff and students: thin HTML over the same API, signed in through the identity provider.

A page that shows someone's data needs a live page session (``sessions``); without one it sends the
browser to ``/login`` and back to the page afterwards. The pages' JavaScript calls the API with the
session cookie and the session's CSRF token.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from waymark.models.roles import Role
from waymark.service import sessions
from waymark.service.api.public import STATEMENT, WHO_SEES_WHAT

HERE = Path(__file__).parent
# Escape everything: the default only escapes files ending in .html, and ours end in .html.j2.
templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
)
router = APIRouter(include_in_schema=False)


def signed_in(request: Request) -> sessions.SignedIn | None:
    """The live page session of this request's cookie, if any."""
    return sessions.find(request.app.state.runtime.engine, request.cookies.get(sessions.COOKIE))


def _page(
    request: Request, page: str, *, title: str, signed: sessions.SignedIn | None, **extra: Any
) -> HTMLResponse:
    context = {"page": page, "title": title, "signed": signed, "role_names": _ROLE_NAMES, **extra}
    return templates.TemplateResponse(request, f"{page}.html.j2", context)


def message(request: Request, status: int, *, title: str, text: str) -> HTMLResponse:
    """A page that says one thing (a refusal, a sign-in that did not complete)."""
    response = templates.TemplateResponse(
        request,
        "message.html.j2",
        {"page": "message", "title": title, "text": text, "signed": None, "role_names": _ROLE_NAMES},
        status_code=status,
    )
    return response


_ROLE_NAMES = {role.value: role.value.replace("_", " ").capitalize() for role in Role}
_ROLE_NAMES["dpo"] = "Data protection officer"


def _signed_page(request: Request, page: str, *, title: str) -> Response:
    signed = signed_in(request)
    if signed is None:  # not signed in, or the session expired: sign in, then come back here
        return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", status_code=303)
    return _page(request, page, title=title, signed=signed)


def dev_identities(request: Request) -> list[tuple[str, str]]:
    """Development only: the (role, subject) pairs the sign-in page offers as one click."""
    settings = request.app.state.runtime.settings
    if not settings.development:
        return []
    pairs = (item.partition("=") for item in settings.dev_sign_in.split(",") if "=" in item)
    found = [(role.strip(), sub.strip()) for role, _, sub in pairs]
    return [(role, sub) for role, sub in found if role in _ROLE_NAMES and sub]


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    """Sign-in page (and, once signed in, who you are)."""
    signed = signed_in(request)
    return _page(request, "index", title="Waymark", signed=signed, identities=dev_identities(request))


@router.get("/caseload", response_class=HTMLResponse)
def caseload_page(request: Request) -> Response:
    """Staff caseload page."""
    return _signed_page(request, "caseload", title="Your caseload")


@router.get("/student", response_class=HTMLResponse)
def student_page(request: Request) -> Response:
    """One student's indicator (the student id travels in the fragment, never to the server log)."""
    return _signed_page(request, "student", title="Student")


@router.get("/me", response_class=HTMLResponse)
def me_page(request: Request) -> Response:
    """A student's own page."""
    return _signed_page(request, "me", title="My data")


@router.get("/transparency", response_class=HTMLResponse)
def transparency_page(request: Request) -> HTMLResponse:
    """The transparency statement, readable without signing in."""
    statement = {**tomllib.loads(STATEMENT.read_text(encoding="utf-8")), "who_sees_what": WHO_SEES_WHAT}
    return _page(request, "transparency", title="How Waymark works", signed=signed_in(request), s=statement)
