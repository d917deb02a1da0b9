"""Daily activity for synthetic registrations, generated for a whole chunk at once.

Each (presentation, source) has a day profile: weekly rhythm, teaching breaks, bursts before
assessments. Each registration bends it: nothing before registering, a personal trend, and a
taper in the weeks before a withdrawal. Events are drawn in bulk by inverse-CDF sampling over
the flattened per-registration cumulative profiles (one ``searchsorted`` for the chunk), then
merged into one row per (student, day, source, activity type) with its count.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from waymark.models.features.catalogue import SOURCES  # the synthetic institution records every known one
from waymark.training.ingest.synthetic_catalogue import SCHOOL_SOURCES, Presentation

FIRST_DAY = -21  # activity may start three weeks before the presentation
# Expected events over a whole presentation for a registration of engagement 1.
RATES = {"vle": 50.0, "lecture_capture": 10.0, "library": 7.0, "quiz": 6.0, "attendance": 20.0}
TYPES: dict[str, tuple[tuple[str, ...], tuple[float, ...]]] = {
    "vle": (
        ("resource", "content", "forum", "homepage", "url", "page", "wiki", "collaborate"),
        (0.28, 0.24, 0.10, 0.16, 0.08, 0.06, 0.04, 0.04),
    ),
    "lecture_capture": (("view", "download"), (0.85, 0.15)),
    "library": (("turnstile", "loan", "eresource"), (0.5, 0.2, 0.3)),
    "quiz": (("attempt",), (1.0,)),
    "attendance": (("present", "late"), (0.93, 0.07)),
}
EXTRA_CLICKS = {"vle": 2.5, "lecture_capture": 0.3, "library": 0.0, "quiz": 1.0, "attendance": 0.0}
_DOW = {
    "vle": (1.25, 1.2, 1.15, 1.05, 0.9, 0.55, 0.8),
    "lecture_capture": (1.0, 1.0, 1.0, 1.0, 1.0, 0.3, 0.5),
    "library": (1.0, 1.0, 1.0, 1.0, 0.9, 0.6, 0.5),
    "quiz": (1.0, 1.0, 1.0, 1.0, 1.0, 0.8, 0.9),
    "attendance": (1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0),
}


@dataclass(frozen=True)
class Profiles:
    """Day profiles, shape (presentation, source, day index); day = index + FIRST_DAY."""

    weights: np.ndarray
    totals: np.ndarray  # (presentation, source): sum over days, the reference for rates
    days: np.ndarray  # day number of each index


def build_profiles(pres: list[Presentation], due_days: list[np.ndarray]) -> Profiles:
    """Day profiles for every presentation and source."""
    n_days = max(p.length_days for p in pres) - FIRST_DAY + 1
    days = np.arange(n_days) + FIRST_DAY
    weights = np.zeros((len(pres), len(SOURCES), n_days))
    for i, p in enumerate(pres):
        for j, source in enumerate(SOURCES):
            if source in SCHOOL_SOURCES[p.school]:
                weights[i, j] = _profile(source, p, days=days, due=due_days[i])
    return Profiles(weights, weights.sum(axis=2), days)


def _profile(source: str, p: Presentation, *, days: np.ndarray, due: np.ndarray) -> np.ndarray:
    length = p.length_days
    w = np.asarray(_DOW[source])[days % 7].astype(float)
    w[days < 0] = 0.12 if source in ("vle", "library") else 0.0
    w[days > length] = 0.0
    brk = (77, 91) if p.presentation_id.endswith("J") else (56, 70)
    in_break = (days >= brk[0]) & (days < brk[1])
    w[in_break] *= 0.0 if source == "attendance" else 0.45
    before = due[None, :] - days[:, None]  # days until each assessment
    near = np.where((before >= 0) & (before <= 10), np.exp(-before / 3.0), 0.0).sum(axis=1)
    if source == "quiz":
        w = w * (0.2 + 3.0 * near)
    elif source == "attendance":
        w[days > length - 21] = 0.0
    else:
        w = w * (1.0 + near)
        w[days > length - 21] *= 1.4
    w[days > length] = 0.0
    weights: np.ndarray = w
    return weights


@dataclass(frozen=True)
class Registrations:
    """What activity generation needs to know about each registration of a chunk."""

    student: np.ndarray  # index into the chunk's student ids
    pres: np.ndarray  # index into the presentation list
    registration_day: np.ndarray
    engagement: np.ndarray  # 0 for students whose activity is not recorded at all
    slope: np.ndarray  # personal trend over the presentation
    withdraw_day: np.ndarray  # large when the student did not withdraw
    taper_days: np.ndarray


def _modifiers(regs: Registrations, days: np.ndarray, *, lengths: np.ndarray) -> np.ndarray:
    length = lengths[regs.pres][:, None]
    frac = np.clip(days[None, :], 0, None) / length
    m = np.exp(regs.slope[:, None] * frac)
    m[days[None, :] < regs.registration_day[:, None] - 3] = 0.0
    start = (regs.withdraw_day - regs.taper_days)[:, None]
    span = np.maximum(regs.taper_days, 1)[:, None]
    taper = 1.0 - 0.9 * np.clip((days[None, :] - start) / span, 0.0, 1.0)
    taper[days[None, :] > regs.withdraw_day[:, None]] = 0.0
    combined: np.ndarray = m * taper
    return combined


def draw_activity(
    rng: np.random.Generator, regs: Registrations, *, profiles: Profiles, lengths: np.ndarray
) -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """Draw activity rows for all registrations of a chunk.

    Returns, per source, (source, registration index, day, activity type index, count).
    """
    mods = _modifiers(regs, profiles.days, lengths=lengths)
    out = []
    for j, source in enumerate(SOURCES):
        w = profiles.weights[regs.pres, j] * mods
        totals = w.sum(axis=1)
        ref = np.maximum(profiles.totals[regs.pres, j], 1e-9)
        n_events = rng.poisson(RATES[source] * regs.engagement * totals / ref)
        if n_events.sum() == 0:
            continue
        reg, day_idx, kind, count = _sample(rng, source, w=w, totals=totals, n_events=n_events)
        # Day length_days is the first after the presentation (its days are 0 to length_days - 1), which
        # no feature reads: its rows are dropped after drawing, leaving every other draw as it was.
        inside = profiles.days[day_idx] < lengths[regs.pres[reg]]
        out.append((source, reg[inside], day_idx[inside], kind[inside], count[inside]))
    return out


def _sample(
    rng: np.random.Generator, source: str, *, w: np.ndarray, totals: np.ndarray, n_events: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n_reg, n_days = w.shape
    offsets = np.concatenate(([0.0], np.cumsum(totals)[:-1]))
    flat = (np.cumsum(w, axis=1) + offsets[:, None]).ravel()
    reg = np.repeat(np.arange(n_reg), n_events)
    target = offsets[reg] + rng.random(reg.size) * totals[reg]
    cell = np.searchsorted(flat, target, side="right")
    # Rounding can put a draw at the very end of a row into the next one: keep it in its own.
    day_idx = np.clip(cell - reg * n_days, 0, n_days - 1)
    names, probs = TYPES[source]
    kind = rng.choice(len(names), size=reg.size, p=np.asarray(probs))
    clicks = 1 + rng.poisson(EXTRA_CLICKS[source], size=reg.size)
    key = (reg.astype(np.int64) * n_days + day_idx) * len(names) + kind
    uniq, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse, weights=clicks).astype(np.int32)
    cell_u, kind_u = np.divmod(uniq, len(names))
    reg_u, day_u = np.divmod(cell_u, n_days)
    return reg_u, day_u.astype(np.int32), kind_u.astype(np.int32), counts


def activity_table(
    parts: list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
    regs: Registrations,
    *,
    student_ids: pa.Array,
    pres: list[Presentation],
) -> pa.Table:
    """Arrow table of activity rows with dictionary-encoded text columns."""
    module_dict = pa.array([p.module_id for p in pres])
    pres_dict = pa.array([p.presentation_id for p in pres])
    source_dict = pa.array(list(SOURCES))
    type_names = [n for s in SOURCES for n in TYPES[s][0]]
    type_offset = {s: sum(len(TYPES[t][0]) for t in SOURCES[:i]) for i, s in enumerate(SOURCES)}
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("reg", "day", "src", "type", "count")}
    for source, reg, day_idx, kind, count in parts:
        cols["reg"].append(reg)
        cols["day"].append(day_idx + FIRST_DAY)
        cols["src"].append(np.full(reg.size, SOURCES.index(source), dtype=np.int32))
        cols["type"].append(kind + type_offset[source])
        cols["count"].append(count)
    if not parts:
        cols = {k: [np.zeros(0, dtype=np.int64)] for k in cols}
    reg = np.concatenate(cols["reg"])
    order = np.lexsort((np.concatenate(cols["day"]), reg))

    def dict_col(indices: np.ndarray, dictionary: pa.Array) -> pa.DictionaryArray:
        return pa.DictionaryArray.from_arrays(pa.array(indices[order].astype(np.int32)), dictionary)

    return pa.table(
        {
            "student_id": dict_col(regs.student[reg], student_ids),
            "module_id": dict_col(regs.pres[reg], module_dict),
            "presentation_id": dict_col(regs.pres[reg], pres_dict),
            "day": pa.array(np.concatenate(cols["day"])[order].astype(np.int32)),
            "source": dict_col(np.concatenate(cols["src"]), source_dict),
            "activity_type": dict_col(np.concatenate(cols["type"]), pa.array(type_names)),
            "count": pa.array(np.concatenate(cols["count"])[order].astype(np.int32)),
        }
    )
