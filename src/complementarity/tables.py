"""The fan-in: the Complementarity table and the loss table from the scoring jobs' score files."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import UserError
from .metric import complementarity, weighted_mean


def read_scores(path: str | Path) -> dict[str, dict[str, dict[str, float]]]:
    return json.loads(Path(path).read_text())["scores"]


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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    df.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    tmp.replace(path)
