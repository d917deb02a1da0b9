"""Named dependencies: the runtime, the verified caller, role checks, purpose and request id."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from service.db.engine import transaction
from service.db.schema import TrainingAttestation
from service.errors import Refused
from service.runtime import Runtime
from service.security import STAFF_ROLES, AuthError, Principal

bearer = HTTPBearer(auto_error=False, description="A bearer token from the institution's identity provider.")
Purpose = Literal[
    "student_support",
    "personal_tutoring",
    "module_review",
    "placement_support",
    "own_data",
    "data_protection",
]
_DEFAULT_PURPOSE = {
    "student": "own_data",
    "personal_tutor": "personal_tutoring",
    "module_leader": "module_review",
    "programme_leader": "student_support",
    "support_staff": "student_support",
    "placement_supervisor": "placement_support",
    "dpo": "data_protection",
}


def get_runtime(request: Request) -> Runtime:
    """The runtime built at start-up."""
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _unauthorised(detail: str) -> Refused:
    return Refused(401, "Unauthorised", detail, {"WWW-Authenticate": 'Bearer error="invalid_token"'})


def current_principal(
    runtime: RuntimeDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    """The verified caller (401 for a missing or invalid token)."""
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorised("Sign in: send a bearer token in the Authorization header.")
    try:
        principal = runtime.verifier.verify(credentials.credentials)
    except AuthError as exc:
        raise _unauthorised(f"The token was not accepted ({exc}). Sign in again.") from exc
    if principal.role in STAFF_ROLES:
        _require_training(runtime, principal)
    return principal


def _require_training(runtime: Runtime, principal: Principal) -> None:
    now = time.time()
    if principal.training_until is not None and principal.training_until > now:
        return
    with transaction(runtime.engine) as session:
        stored = session.get(TrainingAttestation, principal.sub)
        if stored is not None and stored.expires_at.replace(
            tzinfo=stored.expires_at.tzinfo or UTC
        ) > datetime.now(UTC):
            return
    raise Refused(
        403,
        "Training attestation needed",
        "Access to student data needs a current information-security training attestation "
        "(Code of Practice §5). Yours is missing or has expired: complete the training, then sign in again.",
    )


PrincipalDep = Annotated[Principal, Depends(current_principal)]


def roles(*allowed: str) -> Callable[[Principal], Principal]:
    """A dependency admitting only ``allowed`` roles."""

    def check(principal: PrincipalDep) -> Principal:
        if principal.role not in allowed:
            raise Refused(403, "Forbidden", f"The {principal.role} role cannot use this endpoint.")
        return principal

    return check


def purpose(
    principal: PrincipalDep,
    waymark_purpose: Annotated[
        Purpose | None, Header(description="Why the data is being read; recorded in the access log.")
    ] = None,
) -> str:
    """The purpose recorded in the access log (the role's default when the header is absent)."""
    if waymark_purpose is None:
        return _DEFAULT_PURPOSE.get(principal.role, "student_support")
    return waymark_purpose


PurposeDep = Annotated[str, Depends(purpose)]


def request_id(request: Request) -> str:
    """The request's id (also returned in X-Request-ID)."""
    return str(request.scope.get("state", {}).get("request_id", "unknown"))


RequestIdDep = Annotated[str, Depends(request_id)]


@contextmanager
def unit_of_work(runtime: Runtime) -> Iterator[Session]:
    """One transaction: the access and its audit record commit together or not at all."""
    with transaction(runtime.engine) as session:
        yield session
