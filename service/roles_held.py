"""Which staff roles each person has been seen holding: the committee kept apart from the model's builders.

An identity provider may give one person several Waymark roles, and a bearer token names only the
one it was issued for, so no single sign-in shows that a reviewer also builds the models they
approve. Each sign-in records every staff role it gives, and each read of the committee's reports
by a data scientist's token records that role; ``service.decisions`` refuses an approval by anyone
recorded holding the data scientist's role.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from waymark.models.roles import STAFF_ROLES, Role
from waymark.service.db.schema import RoleHolding
from waymark.service.db.upsert import upsert


def seen(session: Session, staff_id: str, *, roles: Iterable[str]) -> None:
    """Record that ``staff_id`` holds ``roles`` now (a student's role is not recorded)."""
    now = datetime.now(UTC)
    for role in sorted(set(roles) & set(STAFF_ROLES)):
        upsert(
            session,
            RoleHolding,
            values={"staff_id": staff_id, "role": str(role), "first_seen_at": now, "last_seen_at": now},
            update=("last_seen_at",),
        )


def builds_models(session: Session, staff_id: str) -> datetime | None:
    """When ``staff_id`` was last seen holding the data scientist's role (None: never)."""
    return session.scalar(
        select(RoleHolding.last_seen_at).where(
            RoleHolding.staff_id == staff_id, RoleHolding.role == Role.DATA_SCIENTIST.value
        )
    )
