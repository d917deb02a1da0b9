"""Exact additive contributions (SHAP values) of a model's raw output, for a whole cohort at once.

- Logistic models: exact linear SHAP against the training mean,
  phi_i = coef_i * (x_i - mean_i) / scale_i, with the intercept as the base value.
- LightGBM trees: path-dependent TreeSHAP (what shap's TreeExplainer and LightGBM's
  ``pred_contrib`` compute), by per-leaf lookup tables. Along a leaf's path, each feature has a
  condition x satisfies or not (o_j in {0, 1}) and a "zero fraction" z_j (the share of training
  rows that took the path's branches at that feature). The leaf's share of phi_i is
      v * (o_i - z_i) * sum over S subset of U minus i of |S|!(d-|S|-1)!/d! * prod_S o_j * prod_rest z_k,
  which depends on x only through the d bits o. So each leaf gets a table of 2^d rows, built once
  per model with the polynomial prod_j (z_j + o_j t); scoring a row is then d comparisons and one
  lookup per leaf. Any depth works; the cost in memory is 2^d per leaf, which is why
  ``models.estimators`` keeps its trees shallow.

In both families contributions plus the base value equal the raw margin exactly (tests: 1e-6).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np

from waymark.models.bundle import ModelBundle


@dataclass(frozen=True)
class Contributions:
    """Per-row contributions (rows x features) and the base value they add to."""

    values: np.ndarray
    base: float


def contributions(bundle: ModelBundle, x: np.ndarray) -> Contributions:
    """Exact contributions of every feature to the raw margin, for every row of ``x``."""
    if bundle.linear is not None:
        p = bundle.linear
        values = (x - np.asarray(p.mean)) / np.asarray(p.scale) * np.asarray(p.coef)
        return Contributions(values, p.intercept)
    if bundle.booster is None:
        raise ValueError("bundle has neither linear parameters nor a booster")
    return TreeTables.from_booster(bundle.booster.dump_model(), x.shape[1]).explain(x)


@dataclass(frozen=True)
class _DepthGroup:
    """All leaves whose paths test d distinct features."""

    features: np.ndarray  # (L, d) feature index per slot
    low: np.ndarray  # (L, d) the path's condition is low < x <= high
    high: np.ndarray
    tables: np.ndarray  # (L, 2^d, d) contribution per bit pattern and slot


@dataclass(frozen=True)
class TreeTables:
    """Lookup tables of every leaf of every tree, flattened for the compiled kernel."""

    depth: np.ndarray  # (leaves,) distinct features on the path
    features: np.ndarray  # (leaves, deepest path) feature per slot (padded)
    low: np.ndarray  # (leaves, deepest path)
    high: np.ndarray
    offset: np.ndarray  # (leaves,) start of the leaf's table in ``tables``
    tables: np.ndarray  # concatenated (2^d x d) tables
    base: float
    n_features: int

    @classmethod
    def from_booster(cls, dump: dict[str, Any], n_features: int) -> TreeTables:
        """Build the tables from ``Booster.dump_model()``."""
        leaves: dict[int, list[tuple[list[int], list[float], list[float], list[float], float]]] = {}
        base = 0.0
        for tree in dump["tree_info"]:
            root = tree["tree_structure"]
            total = float(_count(root))
            for feats, low, high, zero, value, cover in _paths(root):
                base += value * cover / total
                leaves.setdefault(len(feats), []).append((feats, low, high, zero, value))
        groups = [_group(d, rows) for d, rows in sorted(leaves.items()) if d > 0]
        depth, features, low, high, offset, tables = _flatten(groups)
        return cls(
            depth=depth,
            features=features,
            low=low,
            high=high,
            offset=offset,
            tables=tables,
            base=base,
            n_features=n_features,
        )

    def explain(self, x: np.ndarray) -> Contributions:
        """Contributions of every row of ``x``."""
        out = np.zeros((x.shape[0], self.n_features))
        _kernel(
            np.ascontiguousarray(x, dtype=np.float64),
            self.depth,
            self.features,
            self.low,
            self.high,
            self.offset,
            self.tables,
            out,
        )
        return Contributions(out, self.base)


def _count(node: dict[str, Any]) -> int:
    return int(node["internal_count"] if "split_index" in node else node["leaf_count"])


def _paths(node: dict[str, Any], conds: dict[int, list[float]] | None = None):  # type: ignore[no-untyped-def]
    """Yield (features, lows, highs, zero fractions, leaf value, leaf cover) for every leaf."""
    conds = conds or {}
    if "split_index" not in node:
        feats = sorted(conds)
        yield (
            feats,
            [conds[f][0] for f in feats],
            [conds[f][1] for f in feats],
            [conds[f][2] for f in feats],
            float(node["leaf_value"]),
            _count(node),
        )
        return
    if node["decision_type"] != "<=":
        raise ValueError(f"unsupported split {node['decision_type']!r}: Waymark's features are numeric")
    f, t, total = int(node["split_feature"]), float(node["threshold"]), _count(node)
    for child, side in ((node["left_child"], "left"), (node["right_child"], "right")):
        low, high, zero = conds.get(f, [-math.inf, math.inf, 1.0])
        low, high = (low, min(high, t)) if side == "left" else (max(low, t), high)
        yield from _paths(child, {**conds, f: [low, high, zero * _count(child) / total]})


def _group(d: int, rows: list[tuple[list[int], list[float], list[float], list[float], float]]) -> _DepthGroup:
    feats = np.array([r[0] for r in rows])
    low, high = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
    zero, value = np.array([r[3] for r in rows]), np.array([r[4] for r in rows])
    bits = (np.arange(2**d)[:, None] >> np.arange(d)[None, :]) & 1  # (2^d, d): which conditions hold
    weights = np.array([math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d) for s in range(d)])
    tables = np.zeros((len(rows), 2**d, d))
    for i in range(d):
        coef = np.zeros((len(rows), 2**d, d))  # coefficients of prod_{j != i} (z_j + o_j t)
        coef[:, :, 0] = 1.0
        for j in (j for j in range(d) if j != i):
            shifted = np.concatenate([np.zeros((len(rows), 2**d, 1)), coef[:, :, :-1]], axis=2)
            coef = coef * zero[:, None, j, None] + shifted * bits[None, :, j, None]
        summed = coef @ weights  # (L, 2^d)
        tables[:, :, i] = value[:, None] * (bits[None, :, i] - zero[:, None, i]) * summed
    return _DepthGroup(feats, low, high, tables)


def _flatten(groups: list[_DepthGroup]) -> tuple[np.ndarray, ...]:
    # Slots are padded to the model's own deepest path, so no tree is too deep to explain.
    width = max((g.features.shape[1] for g in groups), default=0)
    depth, features, low, high, offset, tables = [], [], [], [], [], []
    position = 0
    for g in groups:
        n, d = g.features.shape
        pad = width - d
        depth.append(np.full(n, d))
        features.append(np.pad(g.features, ((0, 0), (0, pad))))
        low.append(np.pad(g.low, ((0, 0), (0, pad))))
        high.append(np.pad(g.high, ((0, 0), (0, pad))))
        size = (2**d) * d
        offset.append(position + size * np.arange(n))
        tables.append(g.tables.reshape(-1))
        position += size * n
    if not groups:
        empty = np.zeros((0, width))
        return (
            np.zeros(0, np.int64),
            empty.astype(np.int64),
            empty,
            empty,
            np.zeros(0, np.int64),
            np.zeros(0),
        )
    return (
        np.concatenate(depth).astype(np.int64),
        np.concatenate(features).astype(np.int64),
        np.concatenate(low),
        np.concatenate(high),
        np.concatenate(offset).astype(np.int64),
        np.concatenate(tables),
    )


_BLOCK = 256


@numba.njit(parallel=True, cache=True, nogil=True)
# numba compiles positional parameters only, so the kernel keeps them.
def _kernel(x, depth, features, low, high, offset, tables, out):  # type: ignore[no-untyped-def]  # noqa: PLR0917
    """Blocks of rows in parallel; within a block, leaf by leaf, so each leaf's table stays in cache.

    Each block is copied feature-major, so the inner loop over rows reads and writes contiguously.
    """
    n_blocks = (x.shape[0] + _BLOCK - 1) // _BLOCK
    n_features = x.shape[1]
    for b in numba.prange(n_blocks):
        start, stop = b * _BLOCK, min((b + 1) * _BLOCK, x.shape[0])
        n = stop - start
        xb = np.empty((n_features, n))
        for r in range(n):
            for f in range(n_features):
                xb[f, r] = x[start + r, f]
        ob = np.zeros((out.shape[1], n))
        pattern = np.zeros(n, dtype=np.int64)
        for leaf in range(depth.shape[0]):
            d = depth[leaf]
            pattern[:] = 0
            for j in range(d):
                f, lo, hi = features[leaf, j], low[leaf, j], high[leaf, j]
                for r in range(n):
                    v = xb[f, r]
                    if v > lo and v <= hi:
                        pattern[r] |= 1 << j
            for j in range(d):
                f = features[leaf, j]
                for r in range(n):
                    ob[f, r] += tables[offset[leaf] + pattern[r] * d + j]
        for r in range(n):
            for f in range(out.shape[1]):
                out[start + r, f] = ob[f, r]
