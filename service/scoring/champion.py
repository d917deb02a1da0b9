"""The approved champion: the only model whose indicators may reach staff."""

from __future__ import annotations

from fairness.governance import CHAMPION, promotion_blockers
from models.bundle import BundleIntegrityError
from models.registry import LoadedModel, ModelNotFoundError, load_bundle, resolve


class ChampionUnavailableError(LookupError):
    """There is no approved champion to score with; nothing falls back to another model."""


def load_champion(name: str) -> LoadedModel:
    """Load ``models:/NAME@champion`` after checking it is approved and its files match their hash.

    Raises
    ------
    ChampionUnavailableError
        If no version holds the alias, the version lacks a passing audit or an approval, or its
        files do not match the recorded sha256.
    """
    uri = f"models:/{name}@{CHAMPION}"
    try:
        version = resolve(uri)
    except ModelNotFoundError as exc:
        raise ChampionUnavailableError(
            f"no approved model: {name} has no '{CHAMPION}' version. Audit, review and promote one first."
        ) from exc
    blockers = promotion_blockers(version)
    if blockers:
        raise ChampionUnavailableError(
            f"{name} version {version.version} holds '{CHAMPION}' but is not approved: " + "; ".join(blockers)
        )
    try:
        return load_bundle(f"models:/{name}/{version.version}")
    except BundleIntegrityError as exc:
        raise ChampionUnavailableError(f"{name} version {version.version} is not loaded: {exc}") from exc
