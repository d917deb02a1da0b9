"""The approved champion: the only model whose indicators may reach staff.

Which version that is, and the hash its files must have, come from Waymark's own governance record
(``service.decisions``), never from MLflow's tags or alias, which anyone with registry write access
can edit.
"""

from __future__ import annotations

from sqlalchemy import Engine

from waymark.models.bundle import BundleIntegrityError
from waymark.models.registry import LoadedModel, ModelNotFoundError, load_bundle
from waymark.service import decisions
from waymark.service.db.engine import transaction


class ChampionUnavailableError(LookupError):
    """There is no approved champion to score with; nothing falls back to another model."""


def approved_champion(engine: Engine, name: str) -> decisions.Champion:
    """The version governance allows to be served, without loading it.

    Raises
    ------
    ChampionUnavailableError
        If no version was promoted, or the one promoted last may no longer be served.
    """
    with transaction(engine) as session:
        found = decisions.champion(session, name)
        reasons = [] if found else decisions.champion_blockers(session, name)
    if found is None:
        raise ChampionUnavailableError(f"no approved model for {name}: " + "; ".join(reasons))
    return found


def load_champion(engine: Engine, name: str, *, store: str | None = None) -> LoadedModel:
    """Load the approved champion of ``name`` after checking its files against the recorded sha256.

    ``store`` is the MLflow tracking URI to read (the process-wide one when omitted).

    Raises
    ------
    ChampionUnavailableError
        If there is no approved champion, or its files do not match the hash recorded at its audit.
    """
    found = approved_champion(engine, name)
    try:
        return load_bundle(
            f"models:/{name}/{found.version}", expected_sha256=found.bundle_sha256, store=store
        )
    except (BundleIntegrityError, ModelNotFoundError) as exc:
        raise ChampionUnavailableError(f"{name} version {found.version} is not loaded: {exc}") from exc


def audited_scope(engine: Engine, name: str, *, version: str) -> tuple[tuple[int, ...], tuple[str, ...]]:
    """The weeks and modules the version's latest fairness audit measured, from its stored report.

    () for either when there is no report, or (modules) when it predates their being kept.
    """
    with transaction(engine) as session:
        audit = decisions.latest_audit(session, name, version=version)
        report = decisions.audit_report(session, audit) if audit is not None else None
    weeks = tuple(sorted({int(a["week"]) for a in (report or {}).get("audits", [])}))
    return weeks, tuple(str(m) for m in (report or {}).get("data", {}).get("test_modules", []))
