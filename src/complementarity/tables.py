"""The fan-in: the Complementarity table and the loss table from the scoring jobs' score files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .atomic import atomic_output
from .errors import UserError
from .metric import complementarity, weighted_mean
from .provenance import read_json


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


def uncertain_table(
    base: dict[str, dict[str, Any]],
    shards_by_seed: dict[int, dict[str, dict[str, dict[str, Any]]]],
    *,
    metric: str,
    weights: dict[str, float] | None,
    k: int,
    resamples: int,
    confidence: float,
    seed: int,
):
    """The Complementarity table (seed means) with the bootstrap's intervals and P(top-k); and the bootstrap.

    Columns: ``shard``, one per domain, ``mean`` (as :func:`complementarity_table`, best first), then
    ``mean_ci_low``, ``mean_ci_high``, ``p_topk`` and ``<domain>_ci_low``/``<domain>_ci_high`` per domain.
    """
    import numpy as np

    from .uncertainty import bootstrap, summary

    per_seed = [
        complementarity_table(base, shards, metric=metric, weights=weights) for shards in shards_by_seed.values()
    ]
    domains = list(base)
    if len(per_seed) == 1:
        df = per_seed[0]
    else:  # seed means, re-sorted
        stacked = [t.set_index("shard")[[*domains, "mean"]] for t in per_seed]
        mean = sum(stacked[1:], stacked[0]) / len(stacked)
        df = mean.reset_index().sort_values(["mean", "shard"], ascending=[False, True], kind="mergesort")
        df = df.reset_index(drop=True)
    boot = bootstrap(base, shards_by_seed, metric=metric, weights=weights, resamples=resamples, seed=seed)
    summ = summary(boot, k=k, confidence=confidence)
    row = {s: i for i, s in enumerate(boot.shards)}
    idx = np.array([row[s] for s in df["shard"]])
    df["mean_ci_low"] = summ["mean_ci_low"][idx]
    df["mean_ci_high"] = summ["mean_ci_high"][idx]
    df["p_topk"] = summ["p_topk"][idx]
    for j, d in enumerate(boot.domains):
        df[f"{d}_ci_low"] = summ["domain_ci_low"][idx, j]
        df[f"{d}_ci_high"] = summ["domain_ci_high"][idx, j]
    return df, boot


def save_bootstrap(boot, path: str | Path) -> None:
    """The resampled table, for the selection step's P(selected) under any rule (NumPy .npz, uncompressed:
    resampled C values barely compress, ~6 %, and compressing them took 14 of gather's 24 s at N = 10,000)."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".tmp"), "wb") as fh:
        np.savez(
            fh, shards=np.array(boot.shards), domains=np.array(boot.domains), weights=boot.weights,
            point=boot.point, resampled=boot.resampled, seeds=np.array(boot.seeds),
        )  # fmt: skip
    path.with_name(path.name + ".tmp").replace(path)


def load_bootstrap(path: str | Path):
    import numpy as np

    from .uncertainty import Bootstrap

    with np.load(path) as z:
        return Bootstrap(
            [str(s) for s in z["shards"]], [str(d) for d in z["domains"]], z["weights"], z["point"],
            z["resampled"], int(z["seeds"]),
        )  # fmt: skip


DOMAIN_COLUMNS_END = "mean"  # complementarity.tsv: shard, <domains>, mean, then the uncertainty columns


def score_columns(df) -> list[str]:
    """The domain columns and ``mean`` of complementarity.tsv (without the uncertainty columns after it)."""
    cols = [c for c in df.columns if c != "shard"]
    return cols[: cols.index(DOMAIN_COLUMNS_END) + 1]
