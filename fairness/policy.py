"""The promotion policy: audit settings, fairness gate tolerances and quality floors, from a TOML file.

The file is documented inline. Its ``[quality]`` table is the quality gate's (``fairness.quality``):
minimum AUC per audited week, maximum ECE, and how far a candidate may fall behind the champion. Its
``[mitigation]`` table, off unless the committee switches it on, is the training-time mitigation
``waymark train --policy`` applies (``fairness.reduction``).
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from waymark.fairness.metrics import METRICS

DEFAULT_POLICY = Path(__file__).with_name("default_policy.toml")


class PolicyError(ValueError):
    """The policy file is not valid; the message names the setting."""


@dataclass(frozen=True)
class Check:
    """One gated comparison with the reference group."""

    metric: str
    kind: str  # "ratio" or "difference"
    low: float
    high: float
    capacity: float


@dataclass(frozen=True)
class QualityPolicy:
    """The quality gate's floors and its tolerances against the champion (same later cohort)."""

    min_auc: dict[int, float]  # audited week -> lowest acceptable AUC
    max_ece: dict[int, float]  # audited week -> highest acceptable ECE
    champion_auc_tolerance: float  # how far the candidate's AUC may fall below the champion's
    champion_ece_tolerance: float  # how far the candidate's ECE may rise above the champion's


#: The mitigation methods a policy may name ("none": train as usual).
MITIGATION_METHODS = ("none", "grid_search")
#: The constraints GridSearch may be run under (``fairness.reduction.CONSTRAINTS`` holds their moments).
MITIGATION_CONSTRAINTS = (
    "true_positive_rate_parity",
    "false_positive_rate_parity",
    "equalized_odds",
    "error_rate_parity",
    "demographic_parity",
)


@dataclass(frozen=True)
class MitigationPolicy:
    """A training-time mitigation the committee switched on, or ``method = "none"``."""

    method: str = "none"
    attributes: tuple[str, ...] = ()
    constraint: str = "true_positive_rate_parity"
    grid_size: int = 15
    grid_limit: float = 0.3
    constraint_weight: float = 0.5


@dataclass(frozen=True)
class Policy:
    """Audit settings and the gate."""

    weeks: tuple[int, ...]
    capacities: tuple[float, ...]
    min_group_size: int
    count_rounding: int
    bootstrap_resamples: int
    confidence: float
    reference: str
    intersections: bool
    seed: int
    proxy_auc_warning: float
    breach: str
    checks: tuple[Check, ...]
    quality: QualityPolicy
    text: str  # the file as written, copied into every report
    mitigation: MitigationPolicy = MitigationPolicy()
    # A comparison within its tolerance confirms it only with an interval at most this many times as
    # wide as the tolerance (gate.confirm_width; 1 asks the interval to be as narrow as the tolerance).
    confirm_width: float = 2.0
    # How many different ethics reviewers must approve an audit before its version may be served
    # ([review] approvals; recorded with each audit, ``ModelDecision.approvals_required``).
    approvals: int = 1
    # The number in force this policy knowingly lowers (``[review] lower_from``): the audit still needs
    # that many approvals, and once its version is promoted, ``approvals`` is in force.
    lower_from: int | None = None


#: No policy file may publish a figure about fewer students than this (``audit.min_group_size``).
MIN_GROUP_FLOOR = 5


def differences_from_default(policy: Policy) -> list[str]:
    """Each setting in which ``policy`` differs from the packaged default, in words (empty: none).

    The committee reads them with the report: a gate passed under tolerances wider than Waymark's,
    or with smaller groups published, is a decision the committee should know it is taking.
    """
    default = load_policy()
    out = []
    for name in (
        "weeks",
        "capacities",
        "min_group_size",
        "count_rounding",
        "bootstrap_resamples",
        "confidence",
        "reference",
        "intersections",
        "proxy_auc_warning",
        "breach",
        "confirm_width",
        "approvals",
        "lower_from",
    ):
        mine, theirs = getattr(policy, name), getattr(default, name)
        if mine != theirs:
            out.append(f"{name} {_said(mine)} (default {_said(theirs)})")
    if policy.checks != default.checks:
        out.append("the gate's checks: " + ("; ".join(_check_said(c) for c in policy.checks) or "none"))
    if policy.quality != default.quality:
        out.append("the quality gate's floors or champion tolerances")
    if policy.mitigation != default.mitigation:
        out.append(f"the training-time mitigation ({policy.mitigation.method})")
    return out


def _said(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


def _check_said(check: Check) -> str:
    bounds = f"[{check.low:g}, {check.high:g}]"
    return f"{check.metric} {check.kind} within {bounds} at capacity {check.capacity:g}"


def load_policy(path: Path | None = None) -> Policy:
    """Read and check a policy file (the packaged default when None)."""
    path = path or DEFAULT_POLICY
    text = path.read_text(encoding="utf-8")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{path} is not valid TOML: {exc}") from exc
    try:
        return _read(raw, text)
    except PolicyError as exc:  # every refusal names the file it is about
        raise PolicyError(f"{path}: {exc}") from exc


def _read(raw: dict[str, Any], text: str) -> Policy:
    audit, gate = _table(raw, "audit"), _table(raw, "gate")
    checks = tuple(_check(c, audit) for c in gate.get("checks", []))
    policy = Policy(
        weeks=tuple(int(w) for w in audit["weeks"]),
        capacities=tuple(float(c) for c in audit["capacities"]),
        min_group_size=int(audit["min_group_size"]),
        count_rounding=int(audit.get("count_rounding", 5)),
        bootstrap_resamples=int(audit["bootstrap_resamples"]),
        confidence=float(audit["confidence"]),
        reference=str(audit.get("reference", "largest")),
        intersections=bool(audit.get("intersections", True)),
        seed=int(audit.get("seed", 0)),
        proxy_auc_warning=float(audit.get("proxy_auc_warning", 0.7)),
        breach=str(gate.get("breach", "interval_outside")),
        checks=checks,
        quality=_quality(_table(raw, "quality") if "quality" in raw else _packaged_quality()),
        text=text,
        mitigation=_mitigation(_table(raw, "mitigation")) if "mitigation" in raw else MitigationPolicy(),
        confirm_width=float(gate.get("confirm_width", 2.0)),
        **_review(_table(raw, "review") if "review" in raw else {}),
    )
    _validate(policy)
    return policy


#: The most approvals a policy may ask for (a committee larger than this decides before recording).
MAX_APPROVALS = 12


def _review(raw: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(raw) - {"approvals", "lower_from"})
    if unknown:
        raise PolicyError(f"review.{unknown[0]} is not a setting of [review] (approvals, lower_from)")
    value = raw.get("approvals", 1)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_APPROVALS:
        raise PolicyError(
            f"review.approvals is {value!r}: it must be a whole number from 1 to {MAX_APPROVALS}, the number "
            "of different ethics reviewers who must approve an audit before its version may be served"
        )
    lower = raw.get("lower_from")
    if lower is not None and (
        not isinstance(lower, int) or isinstance(lower, bool) or not value < lower <= MAX_APPROVALS
    ):
        raise PolicyError(
            f"review.lower_from is {lower!r}: it names the number of approvals in force that this policy "
            f"lowers to approvals ({value}), so a whole number above it, at most {MAX_APPROVALS}"
        )
    return {"approvals": value, "lower_from": lower}


def _packaged_quality() -> dict[str, Any]:
    """The packaged ``[quality]`` table: a policy written before the quality gate keeps loading."""
    packaged = tomllib.loads(DEFAULT_POLICY.read_text(encoding="utf-8"))
    return _table(packaged, "quality")


def _table(raw: dict[str, Any], name: str) -> dict[str, Any]:
    value = raw.get(name)
    if not isinstance(value, dict):
        raise PolicyError(f"policy needs a [{name}] table")
    return value


def _check(raw: dict[str, Any], audit: dict[str, Any]) -> Check:
    if raw.get("metric") not in METRICS:
        raise PolicyError(f"gate check metric {raw.get('metric')!r} is not one of {', '.join(METRICS)}")
    if raw.get("kind") not in ("ratio", "difference"):
        raise PolicyError(f"gate check kind {raw.get('kind')!r} must be 'ratio' or 'difference'")
    capacity = float(raw.get("capacity", audit["capacities"][0]))
    return Check(str(raw["metric"]), str(raw["kind"]), float(raw["min"]), float(raw["max"]), capacity)


def _by_week(raw: dict[str, Any], name: str) -> dict[int, float]:
    table = raw.get(name)
    if not isinstance(table, dict):
        raise PolicyError(f"quality.{name} must be a table of prediction week = value")
    return {int(week): float(value) for week, value in table.items()}


def _quality(raw: dict[str, Any]) -> QualityPolicy:
    try:
        return QualityPolicy(
            min_auc=_by_week(raw, "min_auc"),
            max_ece=_by_week(raw, "max_ece"),
            champion_auc_tolerance=float(raw["champion_auc_tolerance"]),
            champion_ece_tolerance=float(raw["champion_ece_tolerance"]),
        )
    except KeyError as exc:
        raise PolicyError(f"policy needs quality.{exc.args[0]}") from exc
    except ValueError as exc:
        raise PolicyError(f"quality settings must be numbers (weeks as whole numbers): {exc}") from exc


_MITIGATION_KEYS = ("method", "attributes", "constraint", "grid_size", "grid_limit", "constraint_weight")


def _mitigation(raw: dict[str, Any]) -> MitigationPolicy:
    # A misspelt key would otherwise train under a default the committee did not choose.
    unknown = sorted(set(raw) - set(_MITIGATION_KEYS))
    if unknown:
        raise PolicyError(
            f"mitigation.{unknown[0]} is not a setting of [mitigation]; it has {', '.join(_MITIGATION_KEYS)}"
        )
    method = str(raw.get("method", "none"))
    if method not in MITIGATION_METHODS:
        raise PolicyError(f"mitigation.method {method!r} must be one of {', '.join(MITIGATION_METHODS)}")
    constraint = str(raw.get("constraint", "true_positive_rate_parity"))
    if constraint not in MITIGATION_CONSTRAINTS:
        raise PolicyError(
            f"mitigation.constraint {constraint!r} must be one of {', '.join(MITIGATION_CONSTRAINTS)}"
        )
    attributes = raw.get("attributes", [])
    if not isinstance(attributes, list) or not all(isinstance(a, str) and a for a in attributes):
        raise PolicyError("mitigation.attributes must be a list of characteristic names")
    if method != "none" and not attributes:
        raise PolicyError("mitigation.attributes must name at least one characteristic when a method is on")
    default = MitigationPolicy()
    if not isinstance(raw.get("grid_size", default.grid_size), int):
        raise PolicyError("mitigation.grid_size must be a whole number")
    try:
        grid_size = int(raw.get("grid_size", default.grid_size))
        limit = float(raw.get("grid_limit", default.grid_limit))
        weight = float(raw.get("constraint_weight", default.constraint_weight))
    except (TypeError, ValueError) as exc:
        raise PolicyError(
            f"mitigation.grid_size, grid_limit and constraint_weight must be numbers: {exc}"
        ) from exc
    if grid_size < 2:
        raise PolicyError("mitigation.grid_size must be at least 2")
    if limit <= 0:
        raise PolicyError("mitigation.grid_limit must be above 0")
    if not 0 < weight <= 1:
        raise PolicyError("mitigation.constraint_weight must be above 0 and at most 1")
    return MitigationPolicy(method, tuple(attributes), constraint, grid_size, limit, weight)


def _validate_quality(policy: Policy) -> None:
    quality = policy.quality
    for name, table in (("min_auc", quality.min_auc), ("max_ece", quality.max_ece)):
        missing = ", ".join(str(w) for w in policy.weeks if w not in table)
        if missing:
            raise PolicyError(
                f"quality.{name} gives no value for audited week(s) {missing}: each week of audit.weeks "
                "needs a value in both quality.min_auc and quality.max_ece"
            )
    if not all(0.5 <= v <= 1 for v in quality.min_auc.values()):
        raise PolicyError("quality.min_auc values must be between 0.5 (chance) and 1")
    if not all(0 < v <= 1 for v in quality.max_ece.values()):
        raise PolicyError("quality.max_ece values must be above 0 and at most 1")
    if quality.champion_auc_tolerance < 0 or quality.champion_ece_tolerance < 0:
        raise PolicyError("quality.champion_auc_tolerance and champion_ece_tolerance cannot be negative")


def _validate(policy: Policy) -> None:
    if policy.breach not in ("interval_outside", "point_outside"):
        raise PolicyError(f"gate.breach {policy.breach!r} must be 'interval_outside' or 'point_outside'")
    if not 1 <= policy.confirm_width <= 10:
        raise PolicyError(f"gate.confirm_width is {policy.confirm_width:g}: it must be between 1 and 10")
    if policy.min_group_size < MIN_GROUP_FLOOR:
        raise PolicyError(
            f"audit.min_group_size is {policy.min_group_size}: it must be at least {MIN_GROUP_FLOOR}, the "
            "smallest group any published figure may describe (Code of Practice §7); a policy cannot "
            "switch small-cell suppression off"
        )
    if policy.bootstrap_resamples < 1:
        raise PolicyError("audit.bootstrap_resamples must be at least 1")
    if not 0 < policy.confidence < 1:
        raise PolicyError("audit.confidence must be between 0 and 1")
    ref = policy.reference
    if not (ref in ("largest", "best") or ref.startswith("group:")):
        raise PolicyError(f"audit.reference {ref!r} must be 'largest', 'best' or 'group:VALUE'")
    if not policy.checks:
        raise PolicyError(
            "the policy has no [[gate.checks]]: a gate with nothing to check would confirm nothing "
            "(the default policy's three checks are a starting point)"
        )
    for check in policy.checks:
        if check.capacity not in policy.capacities:
            raise PolicyError(f"gate check capacity {check.capacity} is not one of audit.capacities")
        if check.low > check.high:
            raise PolicyError(f"gate check on {check.metric}: min is above max")
    _validate_quality(policy)
