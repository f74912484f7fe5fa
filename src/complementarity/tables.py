"""The fan-in: Complementarity table from the loss scores, and the top-k selection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .atomic import atomic_output
from .errors import UserError
from .metric import complementarity, top_k, weighted_mean
from .provenance import read_json, write_json


def read_scores(path: str | Path) -> dict[str, dict[str, dict[str, float]]]:
    return read_json(path, "scores")["scores"]


def complementarity_table(
    base: dict[str, dict[str, float]],
    shards: dict[str, dict[str, dict[str, float]]],
    *,
    metric: str,
    weights: dict[str, float] | None = None,
):
    """DataFrame: one row per shard, one column per domain with C(M_i, V_j), and ``mean``; best first."""
    import pandas as pd

    domains = list(base)
    rows = []
    for shard, per_domain in shards.items():
        missing = set(domains) - set(per_domain)
        if missing:
            raise UserError(f"scores of shard {shard!r} lack domain(s) {sorted(missing)}; rerun its score_group job")
        c = {d: complementarity(base[d]["nll"], per_domain[d]["nll"], metric) for d in domains}
        rows.append({"shard": shard, **c, "mean": weighted_mean(c, weights)})
    df = pd.DataFrame(rows, columns=["shard", *domains, "mean"])
    return df.sort_values(["mean", "shard"], ascending=[False, True], kind="mergesort").reset_index(drop=True)


def loss_table(base: dict[str, dict[str, float]], shards: dict[str, dict[str, dict[str, float]]]):
    """Raw mean NLL per response token: the base model and every shard model on every domain."""
    import pandas as pd

    rows = [{"model": "base", **{d: r["nll"] for d, r in base.items()}}]
    rows += [{"model": s, **{d: r["nll"] for d, r in per.items()}} for s, per in shards.items()]
    return pd.DataFrame(rows)


def write_tsv(df, path: str | Path) -> None:
    with atomic_output(path) as tmp:
        df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")


def select(table_path: str | Path, *, k: int, metric: str, out: str | Path) -> dict[str, Any]:
    """Read the Complementarity table, keep the k best shards, write selection.json."""
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
    means = dict(zip(df["shard"], df["mean"], strict=True))
    chosen = top_k(means, k)
    domains = [c for c in df.columns if c not in ("shard", "mean")]
    scores = {
        row["shard"]: {"mean": float(row["mean"]), **{d: float(row[d]) for d in domains}} for _, row in df.iterrows()
    }
    selection = {
        "k": k,
        "metric": metric,
        "selected": chosen,
        "ranking": [s for s, _ in sorted(means.items(), key=lambda kv: (-kv[1], kv[0]))],
        "scores": scores,
    }
    write_json(out, selection)
    return selection
