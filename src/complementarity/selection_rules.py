"""Selection rules: which shards the final model is fine-tuned on (``selection.method``).

Every rule reads a score table, {shard: {domain: C(M_i, V_j)}} with the shard's mean over domains
alongside, and returns the chosen shard ids, best first. Ties go to the smaller shard id everywhere,
so a selection is deterministic.

- ``topk`` (the paper's, default): the k shards with the highest mean Complementarity.
- ``coverage``: k shards chosen greedily to maximise the (weighted) mean over domains of the *best*
  score among the chosen shards, F(S) = mean_j max_{i in S} C(M_i, V_j). Independent top-k can
  spend all k picks on shards that help the same domain; under F, a second shard that only helps
  a domain already served adds nothing, while one that serves a neglected domain adds its gain
  there. Why this rule and not max-min (maximise the worst domain's best score): F is monotone and
  submodular, so the greedy choice is within (1 - 1/e) of the best k-set and costs N*k evaluations;
  its first pick is top-1; and it uses every domain's score, whereas max-min is decided by one
  domain (the hardest, often the noisiest) and ignores the rest. When no remaining shard improves
  any domain (all gains 0), it picks by mean, as top-k would.
- ``threshold``: every shard whose lower confidence bound of the mean (``mean_ci_low`` of
  complementarity.tsv) is above ``selection.threshold``, best mean first, so k follows from the
  data. When none passes, the selection stops with an error naming the best lower bound and the
  fix (lower the threshold, or use ``topk``): fine-tuning on shards that were not shown to help
  would be a silent fallback, and only the cheap selection step reruns after the fix.
"""

from __future__ import annotations

from collections.abc import Mapping

from .errors import UserError
from .metric import top_k, weighted_mean

METHODS = ("topk", "coverage", "threshold")


def _by_mean(means: Mapping[str, float]) -> list[str]:
    return [s for s, _ in sorted(means.items(), key=lambda kv: (-kv[1], kv[0]))]


def topk(means: Mapping[str, float], k: int) -> list[str]:
    """The paper's rule: the k highest means (ties: smaller shard id)."""
    return top_k(dict(means), k)


def coverage(
    scores: Mapping[str, Mapping[str, float]], k: int, weights: Mapping[str, float] | None = None
) -> list[str]:
    """Greedy k-set maximising mean_j max_{i in S} C(i, j) (see the module docstring).

    Each step adds the shard with the largest gain in F; ties (including all-zero gains) go to the
    higher mean, then the smaller shard id.
    """
    if not 1 <= k <= len(scores):
        raise UserError(f"selection.k: k={k} must be between 1 and the number of shards N={len(scores)}")
    weights = dict(weights or {})
    means = {s: weighted_mean(dict(per), weights) for s, per in scores.items()}
    domains = list(next(iter(scores.values())))
    chosen: list[str] = []
    best: dict[str, float] | None = None  # best score among the chosen shards, per domain
    for _ in range(k):
        current = weighted_mean(best, weights) if best else float("-inf")
        ranked = []
        for s in sorted(scores):
            if s in chosen:
                continue
            cand = {d: scores[s][d] if best is None else max(best[d], scores[s][d]) for d in domains}
            ranked.append((-(weighted_mean(cand, weights) - current), -means[s], s, cand))
        _, _, pick, best = min(ranked, key=lambda t: t[:3])
        chosen.append(pick)
    return chosen


def threshold(means: Mapping[str, float], lower: Mapping[str, float], value: float) -> list[str]:
    """Every shard whose lower confidence bound exceeds ``value``, best mean first (may be empty)."""
    return [s for s in _by_mean(means) if lower[s] > value]


def choose(
    method: str,
    scores: Mapping[str, Mapping[str, float]],
    *,
    k: int,
    weights: Mapping[str, float] | None = None,
    lower: Mapping[str, float] | None = None,
    threshold_value: float = 0.0,
    allow_empty: bool = False,
) -> list[str]:
    """Apply rule ``method`` to a score table {shard: {domain: C}}. ``lower``: lower bounds of the means
    (threshold rule). An empty threshold selection is an error unless ``allow_empty`` (the bootstrap)."""
    means = {s: weighted_mean(dict(per), dict(weights or {})) for s, per in scores.items()}
    if method == "topk":
        return topk(means, k)
    if method == "coverage":
        return coverage(scores, k, weights)
    if method == "threshold":
        if lower is None:
            raise UserError("selection.method threshold needs the lower confidence bounds (mean_ci_low)")
        chosen = threshold(means, lower, threshold_value)
        if not chosen and not allow_empty:
            best = max(lower, key=lambda s: (lower[s], s))
            raise UserError(
                f"selection.method threshold: no shard's lower confidence bound is above selection.threshold="
                f"{threshold_value:g} (the best is {best} with {lower[best]:+.4g}); lower selection.threshold "
                "or use selection.method topk"
            )
        return chosen
    raise UserError(f"selection.method: unknown rule {method!r}; choose one of {', '.join(METHODS)}")
