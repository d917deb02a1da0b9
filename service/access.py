"""Who may read which students: the ONE function every student query starts from.

A staff member reads a student only through a relationship held in ``access_grants`` that matches
the role in their token (a module leader's grants do not work for a personal-tutor token). A
student reads only themselves. Every other role reads no individual's indicator (PRODUCT §6).
A student outside the caller's scope is indistinguishable from one that does not exist.
"""

from __future__ import annotations

from sqlalchemy import Select, false, select
from sqlalchemy.orm import InstrumentedAttribute

from waymark.service.db.schema import AccessGrant, Indicator
from waymark.service.security import Principal

# role -> (scope type its grants use, the indicator column the scope applies to)
SCOPES: dict[str, tuple[str, InstrumentedAttribute[str | None]]] = {
    "personal_tutor": ("student", Indicator.student_id),
    "placement_supervisor": ("student", Indicator.student_id),
    "module_leader": ("module", Indicator.module_id),
    "programme_leader": ("programme", Indicator.programme_id),
    "support_staff": ("school", Indicator.school_id),
}


def readable(principal: Principal, run_id: int) -> Select[Indicator]:
    """The indicators of run ``run_id`` that ``principal`` may read (one per student and presentation).

    The caller passes the run it resolved once for the request (the published, approved one), so
    every statement of a request reads the same batch even if a new one is published meanwhile.
    """
    query = select(Indicator).where(Indicator.run_id == run_id)
    if principal.role == "student":
        return query.where(Indicator.student_id == principal.sub)
    if principal.role not in SCOPES:
        return query.where(false())
    scope_type, column = SCOPES[principal.role]
    granted = select(AccessGrant.scope_id).where(
        AccessGrant.staff_id == principal.sub,
        AccessGrant.relationship == principal.role,
        AccessGrant.scope_type == scope_type,
    )
    return query.where(column.in_(granted))
