"""Uncertainty for accuracies and their differences.

- :func:`wilson` — the Wilson score interval of a binomial proportion (better than the normal
  approximation at small n or near 0 and 1).
- :func:`paired_bootstrap` — the difference of two models' accuracies on the *same* test items,
  resampling items with replacement, so the shared item difficulty cancels out.
- :func:`pearson`, :func:`spearman` (average ranks for ties, as SciPy), :func:`bootstrap_correlation`
  (percentile CI resampling points) and :func:`linear_fit`, for the study's correlation analyses.
  Undefined correlations (a constant variable) are NaN, never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def wilson(correct: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """(low, high) of the Wilson score interval; (0, 1) when n is 0."""
    if n == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    low = 0.0 if correct == 0 else max(0.0, centre - half)  # exact at the ends (no rounding residue)
    high = 1.0 if correct == n else min(1.0, centre + half)
    return low, high


def _z(confidence: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + confidence / 2)


def paired_bootstrap(
    a: Sequence[float], b: Sequence[float], *, resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Mean of a - b over paired items, its bootstrap CI, and the fraction of resamples where a > b."""
    import numpy as np

    if len(a) != len(b):
        raise ValueError(f"paired bootstrap needs the same items: {len(a)} != {len(b)}")
    if not len(a):
        return {"diff": float("nan"), "low": float("nan"), "high": float("nan"), "p_better": float("nan"), "n": 0}
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(d), size=(resamples, len(d)))
    means = d[idx].mean(axis=1)
    alpha = (1 - confidence) / 2
    # With no discordant item (every item scored the same by both) "better" is undefined, not 0.
    p_better = float((means > 0).mean()) if d.any() else float("nan")
    return {
        "diff": float(d.mean()),
        "low": float(np.quantile(means, alpha)),
        "high": float(np.quantile(means, 1 - alpha)),
        "p_better": p_better,
        "n": len(d),
    }


def stratified_paired_bootstrap(
    groups: Sequence[tuple[Sequence[float], Sequence[float]]],
    *,
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> dict[str, float]:
    """The mean over groups (domains) of the paired difference a - b, with a bootstrap CI.

    Each resample draws every group's items with replacement within the group, so each domain
    keeps its weight (1 / number of groups) whatever its size, as in a mean of per-domain scores.
    """
    import numpy as np

    if not groups or any(len(a) != len(b) or not len(a) for a, b in groups):
        raise ValueError("stratified paired bootstrap needs non-empty groups of paired items")
    rng = np.random.default_rng(seed)
    diffs = [np.asarray(a, dtype=float) - np.asarray(b, dtype=float) for a, b in groups]
    means = np.zeros(resamples)
    for d in diffs:
        means += d[rng.integers(0, len(d), size=(resamples, len(d)))].mean(axis=1)
    means /= len(diffs)
    alpha = (1 - confidence) / 2
    any_discordant = any(d.any() for d in diffs)
    return {
        "diff": float(np.mean([d.mean() for d in diffs])),
        "low": float(np.quantile(means, alpha)),
        "high": float(np.quantile(means, 1 - alpha)),
        "p_better": float((means > 0).mean()) if any_discordant else float("nan"),
        "n": int(sum(len(d) for d in diffs)),
    }


# --- correlation -------------------------------------------------------------------------------------


def rank_rows(a):
    """Ranks 1..n of every row of a 2-D array, ties given their average rank (SciPy's
    ``rankdata(method="average", axis=1)``)."""
    import numpy as np

    a = np.asarray(a, dtype=float)
    rows, n = a.shape
    order = np.argsort(a, axis=1, kind="mergesort")
    s = np.take_along_axis(a, order, axis=1)
    pos = np.broadcast_to(np.arange(n), (rows, n))
    start = np.ones((rows, n), dtype=bool)
    start[:, 1:] = s[:, 1:] != s[:, :-1]
    end = np.ones((rows, n), dtype=bool)
    end[:, :-1] = start[:, 1:]
    first = np.maximum.accumulate(np.where(start, pos, 0), axis=1)  # first index of each tie run
    last = np.flip(np.minimum.accumulate(np.flip(np.where(end, pos, n), axis=1), axis=1), axis=1)
    ranks = np.empty_like(s)
    np.put_along_axis(ranks, order, (first + last) / 2 + 1, axis=1)
    return ranks


def pearson_rows(x, y):
    """Pearson's r of every row pair of two 2-D arrays; NaN where a row is constant or has < 2 values."""
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.shape[1] < 2:
        return np.full(x.shape[0], np.nan)
    dx = x - x.mean(axis=1, keepdims=True)
    dy = y - y.mean(axis=1, keepdims=True)
    sxx, syy = (dx * dx).sum(axis=1), (dy * dy).sum(axis=1)
    # Relative tolerance: values equal up to rounding are constant, not "almost perfectly correlated".
    ok = (sxx > 1e-24 * np.maximum(1.0, (x * x).sum(axis=1))) & (syy > 1e-24 * np.maximum(1.0, (y * y).sum(axis=1)))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (dx * dy).sum(axis=1) / np.sqrt(sxx * syy)
    return np.where(ok, np.clip(r, -1.0, 1.0), np.nan)


def spearman_rows(x, y):
    """Spearman's rho of every row pair: Pearson's r of the average ranks (ties handled as SciPy does)."""
    return pearson_rows(rank_rows(x), rank_rows(y))


def rankdata(values):
    """:func:`rank_rows` of one 1-D array."""
    import numpy as np

    return rank_rows(np.asarray(values, dtype=float)[None, :])[0]


def _paired(x, y):
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) != len(y):
        raise ValueError(f"correlation needs paired values: {len(x)} != {len(y)}")
    return x[None, :], y[None, :]


def pearson(x, y) -> float:
    """Pearson's r of one pair of arrays (:func:`pearson_rows`); NaN when undefined, never 0."""
    return float(pearson_rows(*_paired(x, y))[0])


def spearman(x, y) -> float:
    """Spearman's rho of one pair of arrays (:func:`spearman_rows`)."""
    return float(spearman_rows(*_paired(x, y))[0])


CORRELATIONS = {"pearson": pearson, "spearman": spearman}
ROW_CORRELATIONS = {"pearson": pearson_rows, "spearman": spearman_rows}


def bootstrap_correlation(
    x, y, *, method: str = "pearson", resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """The correlation, its percentile bootstrap CI (resampling (x, y) pairs), and the number of points.

    A resample in which one variable is constant has no correlation; those are left out of the interval
    and counted in ``undefined`` (a large count means the CI rests on few resamples; say so).
    """
    import numpy as np

    fn = CORRELATIONS[method]
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    r = fn(x, y)
    n = len(x)
    out = {"r": r, "low": float("nan"), "high": float("nan"), "n": n, "undefined": resamples}
    if n < 3 or math.isnan(r):
        return out
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(resamples, n))
    rs = ROW_CORRELATIONS[method](x[idx], y[idx])
    ok = rs[~np.isnan(rs)]
    alpha = (1 - confidence) / 2
    out["undefined"] = int(resamples - len(ok))
    if len(ok):
        out["low"], out["high"] = float(np.quantile(ok, alpha)), float(np.quantile(ok, 1 - alpha))
    return out


def linear_fit(x, y) -> tuple[float, float]:
    """Least-squares (slope, intercept); NaNs when x is constant."""
    import numpy as np

    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    dx = x - x.mean()
    sxx = float(dx @ dx)
    if len(x) < 2 or sxx == 0:
        return float("nan"), float("nan")
    slope = float(dx @ (y - y.mean())) / sxx
    return slope, float(y.mean() - slope * x.mean())
