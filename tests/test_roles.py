"""The one table of roles: what the contract, tokens, scopes, purposes and the statement derive from it."""

from __future__ import annotations

from typing import get_args

from waymark.models.data.contract import RELATIONSHIPS, SCOPE_TYPES
from waymark.models.roles import RELATIONSHIP_SCOPES, ROLES, STAFF_ROLES, SUPPORT_ROLES, Role
from waymark.service.access import SCOPE_COLUMNS
from waymark.service.api.deps import ROLE_PURPOSES, Purpose
from waymark.service.security import ROLES as TOKEN_ROLES
from waymark.service.transparency import WHO_SEES_WHAT


def test_every_role_is_described_once_and_everything_derives_from_the_table() -> None:
    assert set(ROLES) == set(Role) and set(TOKEN_ROLES) == set(Role)
    assert set(Role) - {Role.STUDENT} == STAFF_ROLES
    assert set(WHO_SEES_WHAT) == {r.value for r in Role} and all(WHO_SEES_WHAT.values())
    assert set(ROLE_PURPOSES) == {r.value for r in Role}


def test_every_purpose_a_role_may_record_is_one_the_header_accepts() -> None:
    accepted = set(get_args(Purpose))
    for role, spec in ROLES.items():
        assert spec.purposes and set(spec.purposes) <= accepted, role


def test_every_relationship_has_a_scope_the_contract_and_the_scope_function_know() -> None:
    assert set(RELATIONSHIPS) == set(RELATIONSHIP_SCOPES) == {
        "personal_tutor", "module_leader", "programme_leader", "support_staff", "placement_supervisor"
    }  # fmt: skip
    given = {t for scopes in RELATIONSHIP_SCOPES.values() for t in scopes}
    assert given <= set(SCOPE_TYPES) == set(SCOPE_COLUMNS)
    assert RELATIONSHIP_SCOPES["support_staff"] == ("school", "student")  # a school, or named students
    caseload = {Role.PERSONAL_TUTOR, Role.MODULE_LEADER, Role.PROGRAMME_LEADER, Role.SUPPORT_STAFF}
    assert set(SUPPORT_ROLES) == caseload
