"""Named dependencies: the runtime, the verified caller, role checks, purpose, request id, and ``Access``."""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from waymark.models.roles import RELATIONSHIP_SCOPES, ROLES, STAFF_ROLES, Role
from waymark.service import audit, sessions
from waymark.service.access import narrowed
from waymark.service.audit import RequestIds
from waymark.service.db.engine import ProductionDatabase, transaction
from waymark.service.db.schema import ScoringRun, TrainingAttestation
from waymark.service.errors import Refused
from waymark.service.indicators import served_run
from waymark.service.middleware import verified
from waymark.service.reads import Served
from waymark.service.runtime import DevelopmentGuard, Runtime
from waymark.service.schemas import is_identifier
from waymark.service.security import AuthError, Principal

bearer = HTTPBearer(auto_error=False, description="A bearer token from the institution's identity provider.")
Purpose = Literal[
    "student_support",
    "personal_tutoring",
    "module_review",
    "placement_support",
    "own_data",
    "data_protection",
    "ethics_review",
]
# Which purposes each role may record (the first is its default) comes from the one table of roles.
# A purpose is a claim about why data is read, so a caller may choose only among their role's own: a
# tutor cannot log a read as the DPO's data protection work.
ROLE_PURPOSES: dict[str, tuple[str, ...]] = {role.value: spec.purposes for role, spec in ROLES.items()}


# Dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in a worker
# thread, and each such hop costs a request more than the dependency's own work (a profile of the
# audited indicator read under load put a quarter of the process's time in those hops). What blocks
# (a database query) still runs in a worker thread.


def runtime_of(request: Request) -> Runtime:
    """The runtime built at start-up."""
    runtime: Runtime = request.app.state.runtime
    return runtime


async def get_runtime(request: Request) -> Runtime:
    """The runtime built at start-up (the dependency)."""
    return runtime_of(request)


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _unauthorised(detail: str) -> Refused:
    return Refused(
        401, title="Unauthorised", detail=detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
    )


async def current_principal(
    request: Request,
    runtime: RuntimeDep,
    *,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The verified caller: a bearer token, or else a page session (401 for neither, or an invalid one)."""
    if runtime.development is not None:  # no one signed in by development keys until the mark is read
        await run_in_threadpool(_confirm_development, runtime.development)
    if credentials is None and request.cookies.get(sessions.COOKIE):
        principal = await run_in_threadpool(_session_principal, request, runtime)
    elif credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorised("Sign in: send a bearer token in the Authorization header.")
    else:
        try:  # the Guard verified the token already (to rate-limit by subject); not twice
            principal = verified(request.scope, credentials.credentials, verifier=runtime.verifier)
        except AuthError as exc:
            raise _unauthorised(f"The token was not accepted ({exc}). Sign in again.") from exc
    if not is_identifier(principal.sub):  # it becomes a key in the database and the access log
        raise _unauthorised("The token's subject is not a valid identifier (at most 64 characters).")
    if principal.role in STAFF_ROLES and not _trained_by_token(principal):
        await run_in_threadpool(_require_training, runtime, principal)
    if len(RELATIONSHIP_SCOPES.get(principal.role, ())) > 1:  # which kinds of scope they hold now
        principal = await run_in_threadpool(narrowed, runtime.engine, principal)
    return principal


def _confirm_development(guard: DevelopmentGuard) -> None:
    try:
        guard.confirm()
    except ProductionDatabase as exc:
        raise Refused(503, title="Development mode refused", detail=str(exc)) from exc


FETCH_SITE_HEADER = "Sec-Fetch-Site"
OWN_FETCH_SITES = frozenset({"same-origin", "none"})


def _session_principal(request: Request, runtime: Runtime) -> Principal:
    """The page session's person in their active role; a write must carry the session's CSRF token.

    A request another site started is refused whatever its method. The cookie is ``SameSite=Lax``,
    so a link elsewhere (another site, or a student's page on a sibling subdomain, which counts as the
    same site) still carries it on a GET; and a GET here writes what people read: an access record in
    the staff member's name, which the student sees, and the worklist's "new since your last visit".
    Browsers say where a request came from in ``Sec-Fetch-Site``; this site's pages send
    ``same-origin``, and an address typed or bookmarked sends ``none``. A client that sends no such
    header (not a current browser) is not refused for it.
    """
    site = request.headers.get(FETCH_SITE_HEADER)
    if site is not None and site.lower() not in OWN_FETCH_SITES:
        raise Refused(
            403,
            title="Request from another site",
            detail="A request carrying this site's sign-in must come from its own pages; nothing was read "
            "or recorded. Open Waymark directly.",
        )
    signed = sessions.of_request(runtime.engine, request.scope, cookie=request.cookies.get(sessions.COOKIE))
    if signed is None:
        raise Refused(
            401,
            title="Unauthorised",
            detail="Your session has expired or you have signed out. Sign in again.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # A cookie travels with any request the browser makes, including one another site provokes; a
    # token only this site's pages can read shows the request came from them.
    if request.method in sessions.UNSAFE_METHODS and not signed.csrf_matches(
        request.headers.get(sessions.CSRF_HEADER)
    ):
        raise Refused(
            403,
            title="CSRF token missing or wrong",
            detail=f"A change made with a session cookie needs the session's {sessions.CSRF_HEADER} header; "
            "nothing was changed. Reload the page and try again.",
        )
    if signed.active_role == Role.STUDENT and not signed.student_id:
        # A session begun before students were signed in as their records' id (revision 0010) names
        # the provider's subject, which no record carries: a request made under it would reach nobody.
        raise Refused(
            401,
            title="Unauthorised",
            detail="Your session began before a change to how students are signed in. Sign in again.",
            headers={"WWW-Authenticate": "Bearer"},
        )
    # training: the stored attestation; the roles the sign-in gave, for the committee's approvals
    return Principal(signed.acting_as(), signed.active_role, None, holds=tuple(signed.roles))


def _trained_by_token(principal: Principal) -> bool:
    return principal.training_until is not None and principal.training_until > time.time()


def _require_training(runtime: Runtime, principal: Principal) -> None:
    if _trained_by_token(principal):
        return
    with transaction(runtime.engine) as session:
        stored = session.get(TrainingAttestation, principal.sub)
        if stored is not None and stored.expires_at.replace(
            tzinfo=stored.expires_at.tzinfo or UTC
        ) > datetime.now(UTC):
            return
    raise Refused(
        403,
        title="Training attestation needed",
        detail="Access to student data needs a current information-security training attestation "
        "(Code of Practice §5). Yours is missing or has expired: complete the training, then sign in again.",
    )


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def _admit(principal: Principal, allowed: tuple[Role, ...]) -> Principal:
    if principal.role not in allowed:
        raise Refused(403, title="Forbidden", detail=f"The {principal.role} role cannot use this endpoint.")
    return principal


def roles(*allowed: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting only ``allowed`` roles."""

    async def check(principal: PrincipalDep) -> Principal:
        return _admit(principal, allowed)

    return check


PurposeHeader = Annotated[
    Purpose | None,
    Header(description="Why the data is being read (one of the caller's role's purposes); logged."),
]


async def purpose(principal: PrincipalDep, waymark_purpose: PurposeHeader = None) -> str:
    """The purpose recorded in the access log: the role's default, or another of the role's own."""
    return purpose_of(principal, waymark_purpose)


def purpose_of(principal: Principal, waymark_purpose: str | None) -> str:
    """The caller's purpose: ``waymark_purpose`` if their role may record it, else 403; default the role's."""
    allowed = ROLE_PURPOSES.get(principal.role, ())
    if waymark_purpose is None:
        return allowed[0] if allowed else "student_support"
    if waymark_purpose not in allowed:
        raise Refused(
            403,
            title="Purpose not allowed",
            detail=f"The {principal.role} role may record only these purposes: {', '.join(allowed)}.",
        )
    return waymark_purpose


PurposeDep = Annotated[str, Depends(purpose)]


async def request_ids(request: Request) -> RequestIds:
    """The server's id for this request (also returned in X-Request-ID) and the client's, if it sent one."""
    state = request.scope.get("state", {})
    return RequestIds(str(state.get("request_id", "unknown")), state.get("client_request_id"))


RequestIdDep = Annotated[RequestIds, Depends(request_ids)]


@contextmanager
def unit_of_work(runtime: Runtime) -> Iterator[Session]:
    """One transaction: the access and its audit record commit together or not at all."""
    with audit.unit(runtime.engine, runtime.audit_key) as session:
        yield session


@dataclass(frozen=True, eq=False)
class Access:
    """One authorised request's work on student data: who asks, as what, why, and the transaction.

    The session's transaction holds the read (or write) and its access-log records together: they
    commit when the endpoint has built its answer and before the answer is sent, or not at all.
    """

    runtime: Runtime
    principal: Principal
    purpose: str
    request: RequestIds
    session: Session

    def served_run(self) -> ScoringRun | None:
        """The published batch of the approved champion, resolved once per use (None: not available)."""
        return served_run(self.session, self.runtime)

    def served(self) -> Served | None:
        """What the served batch must come from (the approved champion for the target; None: none)."""
        champion = self.runtime.champion
        if champion is None:
            return None
        return Served(self.runtime.settings.target, champion.name, champion.version)

    def record(self, students: Iterable[str], action: str) -> None:
        """Append one access-log record per distinct student to this request's transaction."""
        audit.record(
            self.session,
            self.principal,
            purpose=self.purpose,
            students=list(students),
            action=action,
            request=self.request,
        )


class AccessRoute(APIRoute):
    """A route whose ``Access`` commits in the endpoint's own worker thread, as the endpoint returns.

    FastAPI ends a dependency after the answer is validated, and validates a plain endpoint's answer
    in another worker thread; a transaction left to the dependency would hold the access log's head
    (on SQLite, the writer lock) while that thread is found, and the requests queued behind the lock
    hold the threads. With one request thread, eight concurrent clients' reads stalled (30 s on SQLite,
    then a 503; on PostgreSQL without end: ``tests/test_read_path.py``). Committing here ends the
    transaction at once. If the endpoint raises, nothing is committed and the dependency rolls back;
    if the answer then fails validation, the access stands recorded and no answer is sent (a record
    of an access is never missing; an answer is never sent whose record did not commit). Nothing may
    be written after the endpoint returns.
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _committing(endpoint), **kwargs)


def _committing(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(endpoint):
        return endpoint  # an async endpoint commits in its own code (none takes an Access today)

    @functools.wraps(endpoint)  # FastAPI reads the endpoint's own signature through the wrapper
    def committed(*args: Any, **kwargs: Any) -> Any:
        answer = endpoint(*args, **kwargs)
        for value in kwargs.values():
            if isinstance(value, Access) and value.session.in_transaction():
                value.session.commit()
        return answer

    return committed


def access_for(*allowed: Role) -> Any:
    """The ``Access`` of a caller holding one of ``allowed`` roles (403 for any other role).

    Use as ``Annotated[Access, access_for(Role.X)]`` in a router whose ``route_class`` is
    ``AccessRoute``, which commits the transaction as the endpoint returns; the dependency rolls it
    back on any error, and commits what is left (the tests' own routes) before FastAPI sends the
    response: an answer is never sent whose access record did not commit.
    """

    async def open_access(
        runtime: RuntimeDep,
        principal: PrincipalDep,
        *,
        request: RequestIdDep,
        waymark_purpose: PurposeHeader = None,
    ) -> AsyncIterator[Access]:
        why = purpose_of(_admit(principal, allowed), waymark_purpose)  # the role first, then the purpose
        # The session connects at its first query, in the endpoint's worker thread; ``AccessRoute`` has
        # committed it, and given its connection back, before this resumes.
        session = audit.open_session(runtime.engine, runtime.audit_key)
        try:
            yield Access(runtime=runtime, principal=principal, purpose=why, request=request, session=session)
        except BaseException:
            await _finish(session, commit=False)
            raise
        await _finish(session, commit=True)

    return Depends(open_access, scope="function")


async def _finish(session: Session, *, commit: bool) -> None:
    """Commit (or roll back) and close ``session``: in a worker thread if a transaction is still open.

    The thread is not one of the requests' own (a fresh limiter, as FastAPI's own dependencies'
    exits): a request that holds the database's writer lock must never wait for a thread that the
    requests queued behind that lock are holding. The wait is not cancelled with the request.
    """
    if not session.in_transaction():
        session.close()  # nothing left to send to the database
        return

    def finish() -> None:
        with session:
            if commit:
                session.commit()

    await anyio.to_thread.run_sync(finish, limiter=anyio.CapacityLimiter(1))
