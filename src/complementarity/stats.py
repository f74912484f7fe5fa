"""Uncertainty for accuracies and their differences.

- :func:`wilson` — the Wilson score interval of a binomial proportion (better than the normal
  approximation at small n or near 0 and 1).
- :func:`paired_bootstrap` — the difference of two models' accuracies on the *same* test items,
  resampling items with replacement, so the shared item difficulty cancels out.
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
