"""Complementarity: how much fine-tuning on a shard lowers a domain's validation loss.

Our definition (the paper's exact formula was not available to us):

    C(M_i, V_j) = (L_M(V_j) - L_{M_i}(V_j)) / L_M(V_j)        metric "relative" (default)
    C(M_i, V_j) =  L_M(V_j) - L_{M_i}(V_j)                    metric "absolute" (nats per token)

where L is the mean NLL per response token given the prompt (``scoring.py``). Positive means
fine-tuning on shard i helps domain j. A shard's score is the (weighted) mean over domains.
Metrics are pluggable: add a function to :data:`METRICS` (or call :func:`register_metric`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from .errors import UserError

MetricFn = Callable[[float, float], float]


def _relative(base: float, tuned: float) -> float:
    if base <= 0 or not math.isfinite(base):
        raise UserError(
            f"relative Complementarity needs a positive finite base loss, got {base!r}; use metric absolute"
        )
    return (base - tuned) / base


def _absolute(base: float, tuned: float) -> float:
    return base - tuned


METRICS: dict[str, MetricFn] = {"relative": _relative, "absolute": _absolute}


def register_metric(name: str) -> Callable[[MetricFn], MetricFn]:
    """Decorator adding a metric ``fn(base_loss, shard_loss) -> score`` (higher = better)."""

    def deco(fn: MetricFn) -> MetricFn:
        METRICS[name] = fn
        return fn

    return deco


def complementarity(base_loss: float, shard_loss: float, metric: str = "relative") -> float:
    if metric not in METRICS:
        raise UserError(f"unknown metric {metric!r}; known metrics: {', '.join(sorted(METRICS))}")
    return METRICS[metric](base_loss, shard_loss)


def weighted_mean(scores: dict[str, float], weights: dict[str, float] | None = None) -> float:
    """Mean over domains; ``weights`` (domain -> weight) default to equal. Missing domains weigh 0."""
    if not weights:
        return sum(scores.values()) / len(scores)
    total = sum(weights.get(d, 0.0) for d in scores)
    return sum(s * weights.get(d, 0.0) for d, s in scores.items()) / total
