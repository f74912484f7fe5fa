"""Selection: the Complementarity table from the scores, the selection rules, the random-k baseline.

CLI: ``complementarity selection gather|topk|coverage|threshold|random`` (rules gather_scores,
select_topk, select_random in workflow/rules/selection.smk; the study's select_rule). The rule is
``selection.method``; each is one function here, beside :func:`top_k`.

Selection rules (every rule reads a score table {shard: {domain: C(M_i, V_j)}} and returns the
chosen shard ids, best first; ties go to the smaller shard id everywhere, so a selection is
deterministic):

- ``topk`` (the paper's, default, :func:`top_k`): the k shards with the highest mean Complementarity.
- ``coverage`` (:func:`coverage`): k shards chosen greedily to maximise the (weighted) mean over
  domains of the *best* score among the chosen shards, F(S) = mean_j max_{i in S} C(M_i, V_j).
  Independent top-k can spend all k picks on shards that help the same domain; under F, a second
  shard that only helps a domain already served adds nothing, while one that serves a neglected
  domain adds its gain there. Why this rule and not max-min (maximise the worst domain's best
  score): F is monotone and submodular, so the greedy choice is within (1 - 1/e) of the best k-set
  and costs N*k evaluations; its first pick is top-1; and it uses every domain's score, whereas
  max-min is decided by one domain (the hardest, often the noisiest) and ignores the rest. When no
  remaining shard improves any domain (all gains 0), it picks by mean, as top-k would.
- ``threshold`` (:func:`above_threshold`): every shard whose lower confidence bound of the mean
  (``mean_ci_low`` of complementarity.tsv) is above ``selection.threshold``, best mean first, so k
  follows from the data. When none passes, the selection stops with an error naming the best lower
  bound and the fix (lower the threshold, or use ``topk``): fine-tuning on shards that were not
  shown to help would be a silent fallback, and only the cheap selection step reruns after the fix.

The uncertainty of a selection (P(top-k), P(selected), P(same set)) comes from the bootstrap that
``gather`` writes (:mod:`complementarity.uncertainty`).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .arguments import json_arg, pair
from .errors import UserError
from .metric import weighted_mean
from .provenance import write_json

log = logging.getLogger(__name__)


def top_k(means: dict[str, float], k: int) -> list[str]:
    """The k shard ids with the highest mean, best first; ties go to the smaller shard id (deterministic)."""
    if not 1 <= k <= len(means):
        raise UserError(f"selection.k: k={k} must be between 1 and the number of shards N={len(means)}")
    return [s for s, _ in sorted(means.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def random_k(shards: list[str], k: int, seed: int) -> list[str]:
    """The random-k baseline's shards: k of ``shards`` drawn with ``seed`` (independent of their order)."""
    if not 1 <= k <= len(shards):
        raise UserError(f"selection.k: k={k} must be between 1 and the number of shards N={len(shards)}")
    return random.Random(seed).sample(sorted(shards), k)


def read_table(table_path: str | Path):
    """complementarity.tsv as a DataFrame (shard ids kept as text); a damaged table is a UserError."""
    import pandas as pd

    try:
        df = pd.read_csv(table_path, sep="\t", dtype={"shard": str})
    except (ValueError, pd.errors.ParserError) as exc:
        df, why = None, str(exc).splitlines()[0]
    else:
        missing = [c for c in ("shard", "mean") if c not in df.columns]
        why = f"no column {', '.join(map(repr, missing))}" if missing else None
    if why:
        raise UserError(
            f"{table_path} is not a complete Complementarity table ({why}): it was cut short or edited outside the "
            "workflow; delete it and rerun (Snakemake remakes it)"
        )
    return df


METHODS = ("topk", "coverage", "threshold")  # selection.method


def _by_mean(means: Mapping[str, float]) -> list[str]:
    return [s for s, _ in sorted(means.items(), key=lambda kv: (-kv[1], kv[0]))]


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


def above_threshold(means: Mapping[str, float], lower: Mapping[str, float], value: float) -> list[str]:
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
        return top_k(dict(means), k)
    if method == "coverage":
        return coverage(scores, k, weights)
    if method == "threshold":
        if lower is None:
            raise UserError("selection.method threshold needs the lower confidence bounds (mean_ci_low)")
        chosen = above_threshold(means, lower, threshold_value)
        if not chosen and not allow_empty:
            best = max(lower, key=lambda s: (lower[s], s))
            raise UserError(
                f"selection.method threshold: no shard's lower confidence bound is above selection.threshold="
                f"{threshold_value:g} (the best is {best} with {lower[best]:+.4g}); lower selection.threshold "
                "or use selection.method topk"
            )
        return chosen
    raise UserError(f"selection.method: unknown rule {method!r}; choose one of {', '.join(METHODS)}")


def select(
    table_path: str | Path,
    *,
    k: int,
    metric: str,
    out: str | Path,
    method: str = "topk",
    threshold: float = 0.0,
    bootstrap_path: str | Path | None = None,
    confidence: float = 0.95,
    weights: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Read the Complementarity table, choose shards with rule ``method``, write selection.json.

    With the bootstrap (``bootstrap_path``), selection.json also says how sure the choice is: P(top-k)
    and P(selected by this rule) per shard, and the probabilities that the top-k / this rule's set
    come out the same in a resample (``separated``: P(same top-k) >= ``confidence``).
    """
    from .tables import load_bootstrap, score_columns

    df = read_table(table_path)
    cols = score_columns(df)
    domains = cols[:-1]
    table = {row["shard"]: {d: float(row[d]) for d in domains} for _, row in df.iterrows()}
    lower = dict(zip(df["shard"], df["mean_ci_low"], strict=True)) if "mean_ci_low" in df else None
    chosen = choose(method, table, k=k, weights=weights, lower=lower, threshold_value=threshold)
    means = dict(zip(df["shard"], df["mean"], strict=True))
    scores = {
        row["shard"]: {"mean": float(row["mean"]), **{d: float(row[d]) for d in domains}} for _, row in df.iterrows()
    }
    selection: dict[str, Any] = {
        "k": len(chosen),
        "metric": metric,
        "method": method,
        "selected": chosen,
        "ranking": [s for s, _ in sorted(means.items(), key=lambda kv: (-kv[1], kv[0]))],
        "scores": scores,
    }
    if method == "threshold":
        selection["threshold"] = threshold
    if bootstrap_path is not None:
        selection["uncertainty"] = _selection_uncertainty(
            df, load_bootstrap(bootstrap_path), method=method, chosen=chosen, k=k, weights=weights,
            threshold=threshold, confidence=confidence,
        )  # fmt: skip
    write_json(out, selection)
    return selection


def _selection_uncertainty(df, boot, *, method, chosen, k, weights, threshold, confidence) -> dict[str, Any]:
    from .uncertainty import selection_probability, summary, topk_selection_probability

    top = [s for s, _ in sorted(zip(df["shard"], df["mean"], strict=True), key=lambda kv: (-kv[1], kv[0]))[:k]]
    k_top = min(k, len(df))
    summ = summary(boot, k=k_top, confidence=confidence)
    p_topk = {s: float(p) for s, p in zip(boot.shards, summ["p_topk"], strict=True)}
    if method == "threshold":  # in a resample: is the shard's mean above the threshold?

        def choose_fn(t):
            m = {s: sum(v * w for v, w in zip(per.values(), boot.weights, strict=True)) for s, per in t.items()}
            return above_threshold(m, m, threshold)
    else:

        def choose_fn(t):
            return choose(method, t, k=k, weights=weights)

    if method == "topk":
        p_selected, p_same = topk_selection_probability(boot, k, chosen, weights)
    else:
        p_selected, p_same = selection_probability(boot, choose_fn, chosen)
    intervals = {
        s: {
            "mean": [float(row["mean_ci_low"]), float(row["mean_ci_high"])],
            **{d: [float(row[f"{d}_ci_low"]), float(row[f"{d}_ci_high"])] for d in boot.domains},
        }
        for _, row in df.iterrows()
        for s in [row["shard"]]
    }
    return {
        "resamples": int(boot.resampled.shape[0]),
        "confidence": confidence,
        "seeds": boot.seeds,
        "topk": top,
        "p_topk": p_topk,
        "p_same_topk": summ["p_same_topk"],
        "separated": summ["p_same_topk"] >= confidence,
        "unsure": [s for s in sorted(p_topk, key=lambda s: (-p_topk[s], s)) if 0.2 <= p_topk[s] <= 0.8],
        "p_selected": p_selected,
        "p_same_selection": p_same,
        "intervals": intervals,
    }


# --- CLI -------------------------------------------------------------------------------------------


def run_gather(a) -> None:
    from .tables import loss_table, read_scores, save_bootstrap, uncertain_table, write_tsv

    base = read_scores(a.base_scores)["base"]
    shards: dict[str, dict] = {}
    for f in a.shard_scores:
        shards.update(read_scores(f))
    by_seed: dict[int, dict[str, dict]] = {0: shards}  # key: seed position (0 = finetune.seed)
    for position, f in a.seed_scores or []:  # extra fine-tuning seeds (selection.seeds > 1)
        by_seed.setdefault(int(position), {}).update(read_scores(f))
    table, boot = uncertain_table(
        base, by_seed, metric=a.metric, weights=a.weights, k=a.k, resamples=a.resamples,
        confidence=a.confidence, seed=a.bootstrap_seed,
    )  # fmt: skip
    write_tsv(table, a.out)
    save_bootstrap(boot, a.bootstrap)
    write_tsv(loss_table(base, shards), a.losses)


def run_select(a) -> None:
    """Actions topk, coverage, threshold: the rule is the action's name."""
    sel = select(
        a.table, k=a.k, metric=a.metric, out=a.out, method=a.action, threshold=a.threshold,
        bootstrap_path=a.bootstrap, confidence=a.confidence, weights=a.weights,
    )  # fmt: skip
    unc = sel.get("uncertainty")
    log.info(
        "selected %s (rule %s, k=%d, metric %s)%s", ", ".join(sel["selected"]), a.action, sel["k"], a.metric,
        f"; P(same top-k) {unc['p_same_topk']:.2f}" if unc else "",
    )  # fmt: skip


def run_random(a) -> None:
    # The draw is the plan's (complementarity.plan.Plan.random_draws, made once when the DAG is built)
    # and is recorded here; with selection.method threshold, k is known only after the selection, so
    # the draw is made here from --shards with as many shards as --k-from selected.
    if a.k_from:
        k = len(json.loads(Path(a.k_from).read_text())["selected"])
        selected = random_k(a.shards or [], k, a.seed)
    elif a.selected:
        selected = a.selected
    else:
        raise UserError("selection random: give --selected SHARD..., or --k-from selection.json with --shards")
    write_json(a.out, {"k": len(selected), "metric": "random", "seed": a.seed, "selected": selected})
    log.info("random k=%d (seed %d): %s", len(selected), a.seed, ", ".join(selected))


ACTIONS = {
    "gather": (run_gather, "Build the Complementarity table (intervals, P(top-k)) and its bootstrap."),
    "topk": (run_select, "Rule topk: keep the k best shards by mean Complementarity (the paper's)."),
    "coverage": (run_select, "Rule coverage: k shards chosen greedily so that every domain is served."),
    "threshold": (run_select, "Rule threshold: every shard whose lower confidence bound exceeds --threshold."),
    "random": (run_random, "Baseline: record the k shards drawn at random (seeded) for the random-k baseline."),
}


def register_arguments(parser) -> None:
    from .arguments import add_actions

    sp = add_actions(parser, ACTIONS)
    g = sp["gather"]
    g.add_argument("--base-scores", required=True, help="scores JSON of the base model")
    g.add_argument("--shard-scores", nargs="+", required=True, help="scores JSON of each shard model")
    g.add_argument("--seed-scores", type=pair, nargs="*", help="POSITION=FILE: shard scores of extra seeds 1..S-1")
    g.add_argument("--metric", required=True, help="config selection.metric")
    g.add_argument("--weights", type=json_arg, required=True, help="JSON: config selection.weights")
    g.add_argument("--k", type=int, required=True, help="config selection.k: the k of P(top-k)")
    g.add_argument("--resamples", type=int, required=True, help="config selection.bootstrap.resamples")
    g.add_argument("--confidence", type=float, required=True, help="config selection.bootstrap.confidence")
    g.add_argument("--bootstrap-seed", type=int, required=True, help="config selection.bootstrap.seed")
    g.add_argument("--bootstrap", required=True, help="writes the resampled table here (.npz) for the rules")
    g.add_argument("--out", required=True, help="complementarity.tsv")
    g.add_argument("--losses", required=True, help="raw loss table TSV")

    for method in METHODS:
        r = sp[method]
        r.add_argument("--table", required=True, help="complementarity.tsv")
        r.add_argument("--k", type=int, required=True, help="config selection.k (rules topk, coverage)")
        r.add_argument("--metric", required=True, help="metric the table was computed with (recorded)")
        r.add_argument("--threshold", type=float, required=True, help="config selection.threshold (rule threshold)")
        r.add_argument("--weights", type=json_arg, required=True, help="JSON: config selection.weights")
        r.add_argument("--bootstrap", help="the .npz from gather: P(selected) and P(same set)")
        r.add_argument("--confidence", type=float, required=True, help="config selection.bootstrap.confidence")
        r.add_argument("--out", required=True, help="selection.json")

    r = sp["random"]
    r.add_argument("--selected", nargs="+", help="the drawn shard ids (the plan's draw)")
    r.add_argument("--k-from", help="selection.json: draw as many of --shards as it selected (rule threshold)")
    r.add_argument("--shards", nargs="+", help="every shard id (with --k-from)")
    r.add_argument("--seed", type=int, required=True, help="the seed they were drawn with")
    r.add_argument("--out", required=True, help="selection JSON")


def run(args) -> None:
    args.run(args)
