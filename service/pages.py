"""Web pages for staff and students: thin HTML over the same API (data is fetched with the caller's token)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import jinja2
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from waymark.service.api.public import STATEMENT, WHO_SEES_WHAT

HERE = Path(__file__).parent
# Escape everything: the default only escapes files ending in .html, and ours end in .html.j2.
templates = Jinja2Templates(
    env=jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"), autoescape=True)
)
router = APIRouter(include_in_schema=False)


def _page(request: Request, page: str, *, title: str) -> HTMLResponse:
    return templates.TemplateResponse(request, f"{page}.html.j2", {"page": page, "title": title})


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    """Sign-in page."""
    return _page(request, "index", title="Sign in")


@router.get("/caseload", response_class=HTMLResponse)
def caseload_page(request: Request) -> HTMLResponse:
    """Staff caseload page."""
    return _page(request, "caseload", title="Your caseload")


@router.get("/student", response_class=HTMLResponse)
def student_page(request: Request) -> HTMLResponse:
    """One student's indicator (the student id travels in the fragment, never to the server log)."""
    return _page(request, "student", title="Student")


@router.get("/me", response_class=HTMLResponse)
def me_page(request: Request) -> HTMLResponse:
    """A student's own page."""
    return _page(request, "me", title="My data")


@router.get("/transparency", response_class=HTMLResponse)
def transparency_page(request: Request) -> HTMLResponse:
    """The transparency statement, readable without signing in."""
    statement = {**tomllib.loads(STATEMENT.read_text(encoding="utf-8")), "who_sees_what": WHO_SEES_WHAT}
    return templates.TemplateResponse(
        request,
        "transparency.html.j2",
        {"page": "transparency", "title": "How Waymark works", "s": statement},
    )
