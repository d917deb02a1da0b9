"""The committee's report: report.json, report.html and model_card.md.

Everything published passes through ``published``. The audit has already applied disclosure
control (``fairness.disclosure``: a rate whose denominator is under the minimum group size is
withheld, with every difference and ratio computed from it); here suppressed groups are left out
entirely (not even named: that a category has fewer than the minimum number of students is itself
a small cell), only their number is given, each group lists the metrics withheld from it, and every
count is rounded to the policy's multiple. The HTML page and the model card are rendered from that
published form, never from the raw audit.
"""

from __future__ import annotations

import base64
import functools
import io
import json
import math
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
from matplotlib import font_manager, rc_context
from matplotlib.figure import Figure

from waymark.fairness.audit import AttributeAudit, GroupResult
from waymark.fairness.disclosure import (
    SHARE_STEPS,
    STEPPED,
    TOO_FEW,
    enough_students,
    published_comparison,
    published_share,
    rests_on,
    rounded_count,
)
from waymark.fairness.gate import (
    INCONCLUSIVE,
    inconclusive_text,
    partly_confirmed_text,
    unconfirmed_characteristics,
)
from waymark.fairness.metrics import METRICS
from waymark.fairness.mitigation import MitigationRow
from waymark.fairness.policy import differences_from_default
from waymark.fairness.quality import comparison_table
from waymark.fairness.quality import published as published_quality
from waymark.fairness.run import AuditOutcome

TEMPLATES = Path(__file__).with_name("templates")
CODE_OF_PRACTICE = (
    (
        "§2(vi)",
        "Recognise and minimise bias: every candidate is measured by protected characteristic and their "
        "intersections before any member of staff sees an indicator.",
    ),
    ("§4", "Special-category data is used only in aggregate, never as a feature, never in a dashboard."),
    ("§7", "Published figures cannot identify individuals: small groups are suppressed, counts are rounded."),
    (
        "§8",
        "Validity: temporal evaluation, calibration by group, and a check that features do not stand in "
        "for a protected characteristic (the proxy check).",
    ),
    (
        "§10",
        "Adverse impacts: false negatives (students who needed support and were missed) and false positives "
        "(students contacted who did not need it) are compared across groups.",
    ),
    ("§2(xvii)", "The report is about a model. It must not be used to assess members of staff."),
)
WITHHELD_TEXT = (
    "A figure is withheld when it rests on fewer students than the minimum group size: the false "
    "negative rate when too few in the group needed support, the false positive rate when too few did "
    "not, precision, AUC, ABROCA, the selection rate and the calibration bands when too few of either "
    "(a selection rate of 0 with one student who needed support would say that student was missed), "
    "the number who needed support when too few did or did not, "
    "and every difference or ratio computed from a withheld figure. A check that meets one is not "
    "assessable (too few students): neither a pass nor a failure."
)


def _num(value: float) -> float | None:
    return (
        None if value is None or (isinstance(value, float) and math.isnan(value)) else round(float(value), 4)
    )


POINTS = ("point", "low", "high")


def _triple(t: tuple[float, float, float]) -> dict[str, float | None]:
    return dict(zip(POINTS, (_num(v) for v in t), strict=True))


def _published_audit(audit: AttributeAudit, step: int) -> dict[str, Any]:
    shown = [g for g in audit.groups if not g.suppressed]
    by_name = {g.group: g for g in shown}

    def least(g: GroupResult, metric: str) -> int:
        return rests_on(metric, students=g.students, positives=g.positives, selected=g.selected, step=step)

    def own(g: GroupResult) -> dict[str, Any]:
        out = {}
        for metric, triple in g.metrics.items():
            values = (published_share(v, students=least(g, metric), step=step) for v in triple)
            out[metric] = dict(zip(POINTS, values, strict=True)) if metric in STEPPED else _triple(triple)
        return out

    def compared(g: GroupResult, kind: str) -> dict[str, Any]:
        out = {}
        for metric, triple in (g.ratios if kind == "ratio" else g.differences).items():
            if metric not in STEPPED:
                out[metric] = _triple(triple)
                continue
            ref = by_name.get(audit.reference.get(metric, ""))
            if ref is None or metric not in ref.metrics:  # the audit shows a comparison only beside both
                out[metric] = dict.fromkeys(POINTS)
                continue
            values, _ = published_comparison(
                kind,
                triple,
                group=(g.metrics[metric][0], least(g, metric)),
                reference=(ref.metrics[metric][0], least(ref, metric)),
                step=step,
            )
            out[metric] = dict(zip(POINTS, values, strict=True))
        return out

    def abroca(g: GroupResult) -> float | None:
        # the area between two groups' ROC curves rests on both groups' counts
        ref = by_name.get(audit.reference.get("auc", ""))
        students = least(g, "abroca") if ref is None else min(least(g, "abroca"), least(ref, "abroca"))
        return published_share(g.abroca, students=students, step=step)

    return {
        "attribute": audit.attribute,
        "week": audit.week,
        "capacity": audit.capacity,
        "reference": audit.reference,
        "suppressed_groups": len(audit.groups) - len(shown),
        "groups": [
            {
                "group": g.group,
                "students": rounded_count(g.students, step),
                "needed_support": None if g.positives is None else rounded_count(g.positives, step),
                "metrics": own(g),
                "differences": compared(g, "difference"),
                "ratios": compared(g, "ratio"),
                "abroca": abroca(g),
                "withheld": list(g.withheld),
                "reliability": [
                    {
                        "predicted": _num(p),  # the mean of the model's estimates: not a count
                        "observed": published_share(o, students=rounded_count(n, step), step=step),
                        "students": rounded_count(n, step),
                    }
                    for p, o, n in g.reliability
                ],
            }
            for g in shown
        ],
    }


def write_report(outcome: AuditOutcome, out: Path, *, test_metrics: dict[str, float]) -> dict[str, Any]:
    """Write report.json, report.html and model_card.md into ``out``; return the published report.

    With the quality gate, also quality_gate.json (its result) and quality_comparison.csv (the
    candidate's and the champion's AUC and ECE by week), which are kept with the audit in MLflow.
    """
    out.mkdir(parents=True, exist_ok=True)
    report = published(outcome, outcome.mitigation)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    if report["quality_gate"] is not None:
        quality = json.dumps(report["quality_gate"], indent=2) + "\n"
        (out / "quality_gate.json").write_text(quality, encoding="utf-8")
        comparison_table(report["quality_gate"]).to_csv(out / "quality_comparison.csv", index=False)
    html = render_html(report, outcome.policy.weeks, capacities=outcome.policy.capacities)
    (out / "report.html").write_text(html, encoding="utf-8")
    (out / "model_card.md").write_text(model_card(report, test_metrics), encoding="utf-8")
    return report


def _best_told(proxy: dict[str, Any]) -> str:
    """The best told group's AUC against the rest, where a characteristic of three groups or more has one."""
    if proxy.get("group") is None or proxy.get("group_auc") is None:
        return ""
    return f" on average over its groups, {proxy['group_auc']:.2f} for {proxy['group']} against the rest"


def _telling(proxy: dict[str, Any]) -> str:
    """The features that alone tell a warned characteristic apart best, where the report names them."""
    named = proxy.get("features") or []
    if not named:
        return ""
    return "; told apart most by " + ", ".join(f"{f['feature']} ({f['auc']:.2f})" for f in named)


def _policy_card(report: dict[str, Any]) -> str:
    differs = report["policy"].get("differs_from_default") or []
    if not differs:
        return ""
    return f" The policy differs from Waymark's default in: {'; '.join(differs)}."


NOT_COMPLETING_VALUES = ("fail", "withdrawn")
COMPLETING_VALUES = ("pass", "distinction")


def outcome_meaning(target: str, words: dict[str, list[str]]) -> str:
    """What the outcome the model estimates was in the institution's own records, in a sentence ("" unknown).

    The committee read "not completing the module" whatever the import had mapped to fail and
    withdrawn (a deferral, a resit allowed to continue): it is the committee's to check.
    """
    if target != "not_completing" or not words:
        return ""

    def said(values: tuple[str, ...]) -> str:
        parts = [f"{', '.join(f'“{w}”' for w in words[v])} ({v})" for v in values if words.get(v)]
        return "; ".join(parts) or "nothing the mapping named"

    return (
        "In the records this model learnt from, not completing is an outcome written "
        f"{said(NOT_COMPLETING_VALUES)}, and completing {said(COMPLETING_VALUES)}. The committee should "
        "check that this is the outcome a support conversation is meant to help with."
    )


def published(outcome: AuditOutcome, mitigation: list[MitigationRow]) -> dict[str, Any]:
    """The report as it may be shown: suppression and rounding applied."""
    policy, model = outcome.policy, outcome.model
    step = policy.count_rounding
    unconfirmed = unconfirmed_characteristics(outcome.audits, outcome.checks)
    return {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": {
            "name": model.name,
            "version": model.version,
            "target": model.bundle.target,
            "family": model.bundle.family,
            "family_choice": outcome.family_choice or None,
            "intervention_policy": outcome.intervention_policy,
            "outcome_meaning": outcome_meaning(model.bundle.target, outcome.outcome_words),
            "training_mitigation": outcome.training_mitigation or None,
            "bundle_sha256": model.sha256,
            "training_run": outcome.run_id,
        },
        "data": {
            "fingerprint": outcome.data_fingerprint,
            "test_presentations": list(outcome.test_presentations),
            "test_modules": list(outcome.test_modules),
            "characteristics": list(outcome.attributes),
        },
        "gate": {
            "status": outcome.gate,
            # characteristics none of whose comparisons was confirmed (they alone make a gate inconclusive)
            "unconfirmed_characteristics": unconfirmed,
            "partly_confirmed": partly_confirmed_text(outcome.audits, outcome.checks),
            "why_inconclusive": inconclusive_text(
                unconfirmed, any_confirmed=any(c.confirmed for c in outcome.checks)
            )
            if outcome.gate == INCONCLUSIVE
            else "",
            "checks": [
                {"check": c.title, "status": c.status, "reasons": list(c.reasons)} for c in outcome.checks
            ],
        },
        "quality_gate": None if outcome.quality is None else published_quality(outcome.quality, policy),
        # the policy's weeks no test presentation reaches: judged by neither gate
        "unaudited_weeks": list(outcome.unaudited_weeks),
        "training_warnings": list(outcome.training_warnings),
        "proxy_check": [
            {
                "characteristic": p.attribute,
                "auc": _num(p.auc),
                "warning": p.warning,
                "group": p.group,  # of at least the minimum group size, as every group the audit shows
                "group_auc": _num(p.group_auc),
                # with a warning: the features that alone tell it apart best (their own AUC)
                "features": [{"feature": f, "auc": a} for f, a in p.features],
            }
            for p in outcome.proxies
        ],
        "audits": [_published_audit(a, step) for a in outcome.audits],
        # where each calibration gap comes from: inside modules, or the mix of modules (fairness.strata)
        "calibration_within_modules": [w.published() for w in outcome.calibration_within_modules],
        # each shown group's share of estimates per bin, by audited week: the monitor's group reference
        "estimate_reference": outcome.estimate_reference,
        "mitigation": [
            m.published(step)
            for m in mitigation
            if m.named and enough_students(m.students, policy.min_group_size)
        ],
        "policy": {
            # each setting the committee should know differs from Waymark's default (empty: none)
            "differs_from_default": differences_from_default(policy),
            "text": policy.text,
            "min_group_size": policy.min_group_size,
            "count_rounding": step,
            "confidence": policy.confidence,
            "bootstrap_resamples": policy.bootstrap_resamples,
            "withheld_means": WITHHELD_TEXT,
            # the quorum asked, and the one in force it knowingly lowers (``decisions.record_promotion``)
            "approvals": policy.approvals,
            "lower_from": policy.lower_from,
        },
        "metric_meanings": {name: m.meaning for name, m in METRICS.items()},
        "code_of_practice": [{"clause": c, "how": h} for c, h in CODE_OF_PRACTICE],
    }


def _plot(report: dict[str, Any], attribute: str, *, week: int, capacity: float) -> tuple[str, str] | None:
    audit = next(
        (
            a
            for a in report["audits"]
            if a["attribute"] == attribute and a["week"] == week and a["capacity"] == capacity
        ),
        None,
    )
    if audit is None or not audit["groups"]:
        return None
    groups = audit["groups"]
    names = [g["group"] for g in groups]
    empty = {"point": None, "low": None, "high": None}
    fnr = [g["metrics"].get("false_negative_rate", empty) for g in groups]
    withheld = ["false_negative_rate" in g["withheld"] for g in groups]
    points = np.array([f["point"] if f["point"] is not None else np.nan for f in fnr])
    low = np.array([f["low"] if f["low"] is not None else np.nan for f in fnr])
    high = np.array([f["high"] if f["high"] is not None else np.nan for f in fnr])
    # A Figure of its own, not pyplot's global registry: nothing is left open if drawing fails; group
    # names in any script (``_font_families``).
    with rc_context({"font.family": _font_families()}):
        fig = Figure(figsize=(7.5, 0.5 + 0.45 * len(names)))  # wide enough for the axis label
        ax = fig.subplots()
        # A percentile bootstrap interval need not contain its point estimate (small, lumpy groups):
        # draw the bar to the interval's ends without asking matplotlib for a negative length.
        below, above = np.clip(points - low, 0, None), np.clip(high - points, 0, None)
        ax.errorbar(points, range(len(names)), xerr=[below, above], fmt="o", capsize=4, color="black")
        ax.set_yticks(range(len(names)), names)
        ax.set_xlim(0, 1)
        ax.set_xlabel("false negative rate (share of students who needed support and were missed)")
        ax.set_title(f"{attribute}, week {week}, {capacity:.0%} capacity")
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=90)
    described = "; ".join(
        f"{n}: {WITHHELD_IN_PLOT}"
        if hidden
        else f"{n}: {p:.2f} (interval {lo:.2f} to {hi:.2f})"
        if not math.isnan(p)
        else f"{n}: not available"
        for n, p, lo, hi, hidden in zip(names, points, low, high, withheld, strict=True)
    )
    alt = f"False negative rate by {attribute} group at week {week}, {capacity:.0%} capacity. {described}."
    return base64.b64encode(buffer.getvalue()).decode("ascii"), alt


#: Fonts with Chinese, Japanese and Korean characters, tried after matplotlib's own for group names it
#: lacks (a Japanese university's 22以上 drew as boxes): those installed (Debian's fonts-noto-cjk,
#: fonts-ipafont, fonts-wqy-zenhei) are used; without any, the alt text and the tables still name them.
CJK_FONTS = (
    "Noto Sans CJK JP",  # Noto's CJK fonts hold kana, Hangul and Chinese characters alike
    "Noto Sans CJK KR",
    "Noto Sans CJK SC",
    "NanumGothic",  # Hangul (a Korean university's 대한민국 drew as boxes beside IPAGothic alone)
    "UnDotum",
    "IPAexGothic",
    "IPAGothic",
    "WenQuanYi Zen Hei",
)
CJK_FONT_FILES = (
    "NotoSansCJK-Regular.ttc",
    "NanumGothic.ttf",
    "UnDotum.ttf",
    "ipaexg.ttf",
    "ipag.ttf",
    "wqy-zenhei.ttc",
)


@functools.cache
def _font_families() -> list[str]:
    manager = font_manager.fontManager
    if not {f.name for f in manager.ttflist} & set(CJK_FONTS):
        # Installed after matplotlib's font cache was written (it never looks again): found by file.
        for path in font_manager.findSystemFonts():
            if Path(path).name in CJK_FONT_FILES:
                manager.addfont(path)
    installed = {f.name for f in manager.ttflist}
    return ["DejaVu Sans", *(name for name in CJK_FONTS if name in installed)]


# A characteristic the proxy check could not try: fewer than two groups large enough (the audit's minimum).
PROXY_UNCHECKED = "not checked: fewer than two recorded groups large enough to compare"

# A group of 459 withheld beside a group of 3 had read "too few students" (an art school's audit).
WITHHELD_IN_PLOT = "not shown (too few students in it, or withheld beside a group with too few)"


def render_html(report: dict[str, Any], weeks: tuple[int, ...], *, capacities: tuple[float, ...]) -> str:
    """The self-contained, accessible HTML page."""
    week = weeks[len(weeks) // 2]
    plots = [
        {"attribute": a, "image": img, "alt": alt}
        for a in report["data"]["characteristics"]
        if (made := _plot(report, a, week=week, capacity=capacities[0])) is not None
        for img, alt in [made]
    ]
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, trim_blocks=True, lstrip_blocks=True
    )
    env.filters["pct"] = lambda v: "n/a" if v is None else f"{100 * v:.1f}%"
    env.filters["num"] = lambda v: "n/a" if v is None else f"{v:.2f}"
    env.globals["unaudited"] = lambda weeks: unaudited_text(list(weeks))
    env.globals["share_steps"] = ", ".join(
        f"{100 * step:g}% from {least} students" if least else f"{100 * step:g}% below"
        for least, step in SHARE_STEPS
    )
    return env.get_template("report.html.j2").render(
        report=report, plots=plots, plot_week=week, plot_capacity=capacities[0]
    )


def _measured(metrics: dict[str, float], name: str) -> str:
    """A metric to three places, or why there is none (training logs no metric it could not measure)."""
    value = metrics.get(name)
    if value is None or math.isnan(value):
        return "not measurable (one outcome only that week)"
    return f"{value:.3f}"


def _family_choice(model: dict[str, Any]) -> str:
    return f" ({model['family_choice']})" if model.get("family_choice") else ""


def _quality_card(quality: dict[str, Any] | None) -> str:
    """The model card's lines on the quality gate."""
    if quality is None:
        return "Quality gate: not assessed by this audit."
    checks = "\n".join(f"- {c['check']}: {c['status']}" for c in quality["checks"])
    return f"Quality gate: **{quality['status']}** ({quality['champion_note']}). Checks:\n{checks}"


def _mitigation_card(model: dict[str, Any]) -> str:
    if not model.get("training_mitigation"):
        return "They were used only for this audit; training applied no fairness mitigation."
    return (
        "Besides this audit, the fairness policy's training-time mitigation used them to weigh the training "
        f"rows: {model['training_mitigation']}. The training run's "
        "evaluation/mitigation_comparison_by_week.csv shows what it cost beside what it changed."
    )


def model_card(report: dict[str, Any], test_metrics: dict[str, float]) -> str:
    """model_card.md."""
    m, d, g = report["model"], report["data"], report["gate"]
    weeks = sorted({int(k.rsplit("_w", 1)[1]) for k in test_metrics if k.startswith("test_auc_w")})
    # the weeks the audit measured (an institution's policy may audit weeks 2, 4, 6 and 8), else a few
    audited = {int(a["week"]) for a in report.get("audits", [])}
    shown = [w for w in weeks if w in audited] or [w for w in weeks if w in (2, 4, 8, 12, 16, 20, 24, 30)]
    rows = "\n".join(
        f"| {w} | {_measured(test_metrics, f'test_auc_w{w}')} | "
        f"{_measured(test_metrics, f'test_recall_at_10pct_w{w}')} |"
        for w in shown
    )
    proxies = (
        "\n".join(
            f"- {p['characteristic']}: AUC {p['auc']:.2f}{_best_told(p)}"
            + (" (warning)" if p["warning"] else "")
            + _telling(p)
            if p["auc"] is not None
            else f"- {p['characteristic']}: {PROXY_UNCHECKED}"
            for p in report["proxy_check"]
        )
        or "- none computed"
    )
    policy = _policy_card(report)
    return f"""# Model card: {m["name"]} version {m["version"]}

## Intended use
Estimates, week by week, the probability that a student will {
        "not complete the module"
        if m["target"] == "not_completing"
        else "not submit the next assessment by its due day"
    }, so that a student support team can
decide whom to contact first and what to talk about.{
        " " + m["outcome_meaning"] if m.get("outcome_meaning") else ""
    } The output is an indicator with its uncertainty, never a
category. It is one input to a conversation with the student, not a decision (Code of Practice §10, §11).

## Users
Personal tutors, module and programme leaders and student support staff, each for the students they support;
students for their own indicator. Data scientists and the ethics committee see aggregate figures only.

## Not for
- Reviewing, ranking or investigating members of staff (Code of Practice §2(xvii)).
- Admissions, progression, assessment or any decision taken without a conversation with the student.
- Any use while the fairness gate fails or without the ethics committee's recorded approval.

## Data
Family `{m["family"]}`{_family_choice(m)}.
Bundle sha256 `{m["bundle_sha256"]}`, training run `{m["training_run"]}`.
Registrations outreach reached before their outcome: `{m.get("intervention_policy", "ignore")}`
in training (docs/impact-evaluation.md).
Evaluated on the later presentations {", ".join(d["test_presentations"])}; data fingerprint `{
        d["fingerprint"]
    }`.
Features use activity counts by type, assessment submissions and marks, registration timing and study history.
Protected characteristics ({", ".join(d["characteristics"])}) are never features. {_mitigation_card(m)}

## Performance on the later cohort
| week | AUC | recall at 10% capacity |
|---|---|---|
{rows}

{_quality_card(report.get("quality_gate"))}

## Fairness
Gate: **{g["status"]}** under the policy copied into report.json.{_unconfirmed_card(g)}{policy} Checks:
{chr(10).join(f"- {c['check']}: {c['status']}" for c in g["checks"])}

Proxy check (how well the model's features predict each characteristic; 0.5 is chance):
{proxies}

Warnings from training (results too good to trust, or a test cohort too small to judge, until explained):
{chr(10).join(f"- {w}" for w in report.get("training_warnings", [])) or "- none"}

## Limitations
- Indicators are estimates from incomplete data: missing activity sources lower their certainty.
- Performance and fairness were measured on earlier cohorts; a change of teaching or data can change both.
- Groups smaller than {report["policy"]["min_group_size"]} students are not reported and cannot be judged, and
  any figure resting on fewer students (say, a group's false negative rate when fewer than {
        report["policy"]["min_group_size"]
    } of its students needed support) is withheld: a check that meets one is "{TOO_FEW}".
- The training outcome (completion) reflects past support practice; it can carry past inequities.
{_unaudited_card(report.get("unaudited_weeks", []))}"""


def unaudited_text(weeks: list[int]) -> str:
    """What the report says of the policy's weeks that no test presentation reaches ("" when none)."""
    if not weeks:
        return ""
    named = " and ".join(", ".join(str(w) for w in weeks).rsplit(", ", 1))
    return (
        f"Week{'s' if len(weeks) > 1 else ''} {named} of the policy {'were' if len(weeks) > 1 else 'was'} "
        "not audited: every test presentation ends before then, so neither gate judges "
        f"{'them' if len(weeks) > 1 else 'it'}, and indicators at later weeks rest on no audit. If the "
        "institution's presentations are shorter, the policy's weeks should be weeks they reach."
    )


def _unaudited_card(weeks: list[int]) -> str:
    text = unaudited_text(weeks)
    return f"- {text}\n" if text else ""


def _unconfirmed_card(gate: dict[str, Any]) -> str:
    """What an inconclusive gate means, or a pass with no check passed ("" for any other)."""
    if gate.get("status") == "inconclusive":
        return " " + str(gate.get("why_inconclusive") or inconclusive_text([], any_confirmed=False))
    checks = gate.get("checks", [])
    if gate.get("status") != "pass" or not checks or any(c["status"] == "pass" for c in checks):
        return ""
    return (
        " No check passed whole (each has groups it could not assess or confirm), though some groups'"
        " comparisons had their estimate within the tolerance."
    )
