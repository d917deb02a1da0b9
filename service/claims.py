"""From the identity provider's claims to Waymark roles, through the institution's mapping file.

Identity providers say who someone is in their own words: Entra ID app roles or group ids, Keycloak
realm roles. The mapping file names the claim that holds them and what each value means here;
anything it does not list is ignored, so a new group at the identity provider grants nothing.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waymark.models.roles import Role
from waymark.models.settings import Settings
from waymark.service.security import ConfigurationError, claim_at

DEFAULT_MAPPING = Path(__file__).parent / "role_mapping.toml"
TRAINING_CLAIM = "infosec_training_until"  # the same claim bearer tokens carry


@dataclass(frozen=True)
class RoleMapping:
    """Which claim holds a person's roles (a dotted path) and the Waymark roles each value grants."""

    claim: str
    values: dict[str, tuple[Role, ...]]

    def roles(self, claims: dict[str, Any]) -> list[Role]:
        """The Waymark roles ``claims`` grant, in the order of the one table of roles."""
        found = claim_at(claims, self.claim)
        given = [found] if isinstance(found, str) else found if isinstance(found, list) else []
        granted = {role for value in given if isinstance(value, str) for role in self.values.get(value, ())}
        return [role for role in Role if role in granted]


def load_mapping(settings: Settings) -> RoleMapping:
    """The mapping file named by WAYMARK_OIDC_ROLE_MAPPING_FILE, or the packaged one (refuses a bad file)."""
    path = Path(settings.oidc_role_mapping_file or DEFAULT_MAPPING)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"WAYMARK_OIDC_ROLE_MAPPING_FILE {path}: {exc}") from exc
    claim, table = raw.get("claim"), raw.get("roles")
    if not isinstance(claim, str) or not claim or not isinstance(table, dict):
        raise ConfigurationError(f'{path}: needs claim = "..." and a [roles] table')
    values = {str(value): _roles(path, value, named=named) for value, named in table.items()}
    return RoleMapping(claim, values)


def _roles(path: Path, value: str, *, named: object) -> tuple[Role, ...]:
    names = [named] if isinstance(named, str) else named if isinstance(named, list) else [named]
    unknown = [n for n in names if not isinstance(n, str) or n not in set(Role)]
    if unknown:
        raise ConfigurationError(
            f"{path}: {value!r} maps to {unknown[0]!r}, which is not a Waymark role "
            f"(one of: {', '.join(Role)})"
        )
    return tuple(Role(str(n)) for n in names)


# Control characters and direction controls (embeddings, overrides, isolates) in a name the identity
# provider gives: the header shows "{name}, as {role}", which an override would turn around.
_UNSHOWN = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def display_name(claims: dict[str, Any]) -> str:
    """What the pages call the person: ``name``, else ``preferred_username``, else the subject.

    Without control or direction characters, which a page would act on.
    """
    for key in ("name", "preferred_username", "sub"):
        value = claims.get(key)
        shown = _UNSHOWN.sub("", value).strip() if isinstance(value, str) else ""
        if shown:
            return shown[:200]
    return ""


def training_until(claims: dict[str, Any]) -> float | None:
    """The information-security training attestation the identity provider asserts, if any."""
    value = claims.get(TRAINING_CLAIM)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
