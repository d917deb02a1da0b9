"""Web pages for staff, students, the ethics committee and the DPO: thin HTML over the same API.

A page that shows someone's data needs a live page session (``sessions``); without one it sends the
browser to ``/login`` and back to the page afterwards. The pages' JavaScript calls the API with the
session cookie and the session's CSRF token; the API decides what each role may read, and a page
opened in a role it is not for says so instead of showing an empty shell. The pages' forms are
``method="post"`` to an address that accepts no POST: should their script not run, a submitted form
ends in a refusal, never with a name or a note in an address (and so in a server's log).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from waymark.models.roles import SUPPORT_ROLES, Role
from waymark.service import outreach, roles_held, sessions
from waymark.service.api.deps import runtime_of
from waymark.service.api.public import current_statement
from waymark.service.db.engine import transaction

HERE = Path(__file__).parent
# Escape everything: the default only escapes files ending in .html, and ours end in .html.j2.
templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
)
router = APIRouter(include_in_schema=False)

_ROLE_NAMES = {role.value: role.value.replace("_", " ").capitalize() for role in Role}
_ROLE_NAMES["dpo"] = "Data protection officer"
_SUPPORT = frozenset(r.value for r in SUPPORT_ROLES)
_COMMITTEE = frozenset({Role.ETHICS_REVIEWER.value, Role.DATA_SCIENTIST.value})
# The pages of each area: (path, link text, the roles it is for). The header shows the active role's.
_AREAS = (
    ("/caseload", "Worklist", _SUPPORT),
    ("/me", "My data", frozenset({Role.STUDENT.value})),
    ("/committee", "Model reviews", _COMMITTEE),
    ("/dpo", "Requests and retention", frozenset({Role.DPO.value})),
)


def signed_in(request: Request) -> sessions.SignedIn | None:
    """The live page session of this request's cookie, if any."""
    cookie = request.cookies.get(sessions.COOKIE)
    return sessions.of_request(request.app.state.runtime.engine, request.scope, cookie=cookie)


def navigation(signed: sessions.SignedIn | None) -> list[tuple[str, str]]:
    """The header's links: the active role's pages, then the transparency statement."""
    role = signed.active_role if signed else None
    return [(path, text) for path, text, roles in _AREAS if role in roles] + [
        ("/transparency", "How Waymark works")
    ]


def _page(
    request: Request,
    page: str,
    *,
    title: str,
    signed: sessions.SignedIn | None,
    status: int = 200,
    **extra: Any,
) -> HTMLResponse:
    context = {
        "page": page,
        "title": title,
        "signed": signed,
        "role_names": _ROLE_NAMES,
        "nav": navigation(signed),
        **extra,
    }
    return templates.TemplateResponse(request, f"{page}.html.j2", context, status_code=status)


def message(request: Request, status: int, *, title: str, text: str) -> HTMLResponse:
    """A page that says one thing (a refusal, a sign-in that did not complete)."""
    return _page(request, "message", title=title, signed=None, status=status, text=text)


def _signed_page(request: Request, page: str, *, title: str, roles: frozenset[str], **extra: Any) -> Response:
    signed = signed_in(request)
    if signed is None:  # not signed in, or the session expired: sign in, then come back here
        return RedirectResponse(f"/login?next={quote(request.url.path, safe='/')}", status_code=303)
    if signed.active_role not in roles:
        wanted = ", ".join(sorted(_ROLE_NAMES[r].lower() for r in roles))
        text = f"This page is for: {wanted}. You are acting as {_ROLE_NAMES[signed.active_role].lower()}."
        return _page(
            request, "message", title="Not a page for your role", signed=signed, status=403, text=text
        )
    return _page(request, page, title=title, signed=signed, **extra)


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
    """Sign-in page (and, once signed in, who you are and where to go)."""
    signed = signed_in(request)
    return _page(request, "index", title="Waymark", signed=signed, identities=dev_identities(request))


@router.get("/caseload", response_class=HTMLResponse)
def caseload_page(request: Request) -> Response:
    """Staff worklist: one row per student, by support priority (the caseload's address)."""
    return _signed_page(request, "worklist", title="Your worklist", roles=_SUPPORT, kept=_kept(request))


@router.get("/student", response_class=HTMLResponse)
def student_page(request: Request) -> Response:
    """One student, for staff (the student id travels in the fragment, never to the server log)."""
    return _signed_page(request, "student", title="Student", roles=_SUPPORT)


@router.get("/me", response_class=HTMLResponse)
def me_page(request: Request) -> Response:
    """A student's own page.

    What stays in reach while they are left out is said from the institution's outreach file (its
    ``[restriction] kept`` exemptions, in its own words): it had been worded for safeguarding whatever
    the file kept.
    """
    return _signed_page(
        request, "me", title="My data", roles=frozenset({Role.STUDENT.value}), kept=_kept(request)
    )


def _kept(request: Request) -> list[str]:
    """The exemptions whose open contacts outlast a restriction, in the outreach file's own words."""
    options = outreach.load_options(runtime_of(request).settings.outreach_file)
    return [options.exemptions.get(key, key).strip().rstrip(".") for key in options.kept]


@router.get("/committee", response_class=HTMLResponse)
def committee_page(request: Request) -> Response:
    """The ethics committee's model versions, decisions and comparison with the champion."""
    return _signed_page(request, "committee", title="Model reviews", roles=_COMMITTEE)


@router.get("/committee/report", response_class=HTMLResponse)
def report_page(request: Request) -> Response:
    """One version's fairness report, as audited, and the committee's decision on it.

    A reviewer who has held the data scientist's role is told, before deciding, that only a rejection
    of theirs is recorded (``service.roles_held``, as the decision reads it).
    """
    signed = signed_in(request)
    builds = False
    if signed is not None and signed.active_role == Role.ETHICS_REVIEWER:
        with transaction(runtime_of(request).engine) as session:
            builds = roles_held.BUILDS in signed.roles or bool(roles_held.builders(session, [signed.sub]))
    return _signed_page(request, "report", title="Fairness report", roles=_COMMITTEE, builds_models=builds)


@router.get("/dpo", response_class=HTMLResponse)
def dpo_page(request: Request) -> Response:
    """The data protection officer's request queue and retention."""
    return _signed_page(request, "dpo", title="Requests and retention", roles=frozenset({Role.DPO.value}))


@router.get("/transparency", response_class=HTMLResponse)
def transparency_page(request: Request) -> HTMLResponse:
    """The transparency statement, readable without signing in."""
    statement = current_statement(runtime_of(request))
    return _page(request, "transparency", title="How Waymark works", signed=signed_in(request), s=statement)
