"""The roles of PRODUCT §6, in one table.

Everything else (the data contract's relationships, token checking, who reads which students,
access-log purposes, the transparency statement) derives from it.

It lives in ``models`` because the data contract, the bottom layer, validates the relationships
staff hold; the service adds only what needs its own schema (which indicator column a scope means).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """Who is calling, as the identity provider's token says."""

    STUDENT = "student"
    PERSONAL_TUTOR = "personal_tutor"
    MODULE_LEADER = "module_leader"
    PROGRAMME_LEADER = "programme_leader"
    SUPPORT_STAFF = "support_staff"
    PLACEMENT_SUPERVISOR = "placement_supervisor"
    DATA_SCIENTIST = "data_scientist"
    ETHICS_REVIEWER = "ethics_reviewer"
    DPO = "dpo"


@dataclass(frozen=True)
class RoleSpec:
    """What one role is.

    Attributes
    ----------
    scope_type
        For a relationship staff hold over students (``access.csv``), the scope it is usually given
        on: ``student``, ``module``, ``programme`` or ``school``; None for roles without one.
    also
        Other scopes the relationship may be given on: support staff on named students as well as on
        a school (a targeted support team assigned its students, not the whole school).
    purposes
        The access-log purposes the role may record; the first is its default.
    supports_students
        Reads explained indicators of the students in its scope (an outreach caseload).
    sees
        What the role may see, in the transparency statement's words.
    """

    scope_type: str | None
    purposes: tuple[str, ...]
    supports_students: bool
    sees: str
    also: tuple[str, ...] = ()

    @property
    def scopes(self) -> tuple[str, ...]:
        """Every scope the relationship may be given on, its usual one first."""
        return () if self.scope_type is None else (self.scope_type, *self.also)


ROLES: dict[Role, RoleSpec] = {
    Role.STUDENT: RoleSpec(None, ("own_data",), False, "their own indicator, factors, data and access log"),
    Role.PERSONAL_TUTOR: RoleSpec(
        "student", ("personal_tutoring", "student_support"), True, "their assigned tutees only"
    ),
    Role.MODULE_LEADER: RoleSpec(
        "module", ("module_review", "student_support"), True, "students on their modules"
    ),
    Role.PROGRAMME_LEADER: RoleSpec(
        "programme", ("student_support", "module_review"), True, "students on their programmes"
    ),
    Role.SUPPORT_STAFF: RoleSpec(
        "school",
        ("student_support",),
        True,
        "students in the school or faculty they support, or the students a targeted team is assigned",
        also=("student",),
    ),
    Role.PLACEMENT_SUPERVISOR: RoleSpec(
        "student", ("placement_support",), False, "a minimal engagement summary for assigned students"
    ),
    Role.DATA_SCIENTIST: RoleSpec(
        None,
        ("student_support",),
        False,
        "pseudonymised training data and aggregate metrics, never identifiable indicators",
    ),
    Role.ETHICS_REVIEWER: RoleSpec(
        None, ("ethics_review",), False, "aggregate fairness reports and model cards"
    ),
    Role.DPO: RoleSpec(
        None, ("data_protection",), False, "the access log, erasure and retention; not indicators"
    ),
}
STAFF_ROLES = frozenset(ROLES) - {Role.STUDENT}
# Which scopes each relationship may be given, its usual one first (the contract checks it as a
# cross-field rule).
RELATIONSHIP_SCOPES: dict[str, tuple[str, ...]] = {r.value: s.scopes for r, s in ROLES.items() if s.scopes}
SUPPORT_ROLES = tuple(r for r, s in ROLES.items() if s.supports_students)
