"""Selection: the Complementarity table from the scores, the top-k shards, the random-k baseline.

CLI: ``complementarity selection gather|topk|random`` (rules gather_scores, select_topk,
select_random in workflow/rules/selection.smk).
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from .arguments import json_arg
from .errors import UserError
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
    """complementarity.tsv as a DataFrame (shard ids kept as text)."""
    import pandas as pd

    return pd.read_csv(table_path, sep="\t", dtype={"shard": str})


def selection_of(df, *, k: int, metric: str) -> dict[str, Any]:
    """selection.json's content from a Complementarity table: the k best shards, the ranking, the scores."""
    means = dict(zip(df["shard"], df["mean"], strict=True))
    domains = [c for c in df.columns if c not in ("shard", "mean")]
    scores = {
        row["shard"]: {"mean": float(row["mean"]), **{d: float(row[d]) for d in domains}} for _, row in df.iterrows()
    }
    return {
        "k": k,
        "metric": metric,
        "selected": top_k(means, k),
        "ranking": [s for s, _ in sorted(means.items(), key=lambda kv: (-kv[1], kv[0]))],
        "scores": scores,
    }


def select(table_path: str | Path, *, k: int, metric: str, out: str | Path) -> dict[str, Any]:
    """Read the Complementarity table, keep the k best shards, write selection.json."""
    selection = selection_of(read_table(table_path), k=k, metric=metric)
    write_json(out, selection)
    return selection


# --- CLI -------------------------------------------------------------------------------------------


def run_gather(a) -> None:
    from .tables import complementarity_table, loss_table, read_scores, write_tsv

    base = read_scores(a.base_scores)["base"]
    shards: dict[str, dict] = {}
    for f in a.shard_scores:
        shards.update(read_scores(f))
    write_tsv(complementarity_table(base, shards, metric=a.metric, weights=a.weights), a.out)
    write_tsv(loss_table(base, shards), a.losses)


def run_topk(a) -> None:
    sel = select(a.table, k=a.k, metric=a.metric, out=a.out)
    log.info("selected %s (k=%d, metric %s)", ", ".join(sel["selected"]), a.k, a.metric)


def run_random(a) -> None:
    # The draw itself is the plan's (complementarity.plan.Plan.random_draws, made once when the DAG
    # is built); this records it.
    write_json(a.out, {"k": len(a.selected), "metric": "random", "seed": a.seed, "selected": a.selected})
    log.info("random k=%d (seed %d): %s", len(a.selected), a.seed, ", ".join(a.selected))


ACTIONS = {
    "gather": (run_gather, "Build the Complementarity table from base and shard scores."),
    "topk": (run_topk, "Keep the k best shards by mean Complementarity."),
    "random": (run_random, "Baseline: record the k shards drawn at random (seeded) for the random-k baseline."),
}


def register_arguments(parser) -> None:
    from .arguments import add_actions

    sp = add_actions(parser, ACTIONS)
    sp["gather"].add_argument("--base-scores", required=True, help="scores JSON of the base model")
    sp["gather"].add_argument("--shard-scores", nargs="+", required=True, help="scores JSON of each shard model")
    sp["gather"].add_argument("--metric", required=True, help="config selection.metric")
    sp["gather"].add_argument("--weights", type=json_arg, required=True, help="JSON: config selection.weights")
    sp["gather"].add_argument("--out", required=True, help="complementarity.tsv")
    sp["gather"].add_argument("--losses", required=True, help="raw loss table TSV")

    sp["topk"].add_argument("--table", required=True, help="complementarity.tsv")
    sp["topk"].add_argument("--k", type=int, required=True, help="number of shards to keep")
    sp["topk"].add_argument("--metric", required=True, help="metric the table was computed with (recorded)")
    sp["topk"].add_argument("--out", required=True, help="selection.json")

    sp["random"].add_argument("--selected", nargs="+", required=True, help="the drawn shard ids")
    sp["random"].add_argument("--seed", type=int, required=True, help="the seed they were drawn with")
    sp["random"].add_argument("--out", required=True, help="selection JSON")


def run(args) -> None:
    args.run(args)
