"""Markdown tables of a finished run for RESULTS.md: the ranking (corrupted shards marked), test
accuracy, and per-rule job seconds from Snakemake's benchmark files.

    python bench/smollm2/summarize.py RUN_DIR [--corrupted cand03 cand06 cand09]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--corrupted", nargs="*", default=None, help="default: the run's MANIFEST.json")
    a = ap.parse_args()
    res = a.run / "results"
    corrupted = a.corrupted
    if corrupted is None:
        manifest = res / "inputs" / "smollm2-real" / "MANIFEST.json"
        corrupted = json.loads(manifest.read_text())["corrupted"] if manifest.is_file() else []
    table = pd.read_csv(res / "complementarity.tsv", sep="\t", dtype={"shard": str})
    table = table.sort_values("mean", ascending=False).reset_index(drop=True)
    table.insert(0, "rank", range(1, len(table) + 1))
    table["shard"] = [f"**{s}** (corrupted)" if s in corrupted else s for s in table["shard"]]
    print("Complementarity (relative loss reduction on each domain's validation set), best first:\n")
    print(table.to_markdown(index=False, floatfmt="+.4f"))
    sel = json.loads((res / "selection.json").read_text())
    print(f"\nselected: {sel['selected']}")
    ranks = [i + 1 for i, s in enumerate(table["shard"]) if "corrupted" in s]
    print(f"corrupted shards' ranks: {ranks} of {len(table)}")
    base = json.loads((res / "scores" / "base.json").read_text())["scores"]["base"]
    print(
        "\nbase model validation loss (nats per response token): "
        + ", ".join(f"{d} {v['nll']:.4f}" for d, v in base.items())
    )
    ev = res / "evaluation.tsv"
    if ev.is_file():
        df = pd.read_csv(ev, sep="\t")
        wide = df.pivot(index="model", columns="domain", values="score")
        wide["mean"] = wide.mean(axis=1)
        print("\nTest accuracy (exact match):\n")
        print(wide.to_markdown(floatfmt=".3f"))
        print(f"\nitems per domain: {sorted(set(df['n']))}")
    bench = sorted((a.run / "benchmarks").glob("*/*.tsv"))
    rows = []
    for path in bench:
        s = pd.read_csv(path, sep="\t")["s"].iloc[0]
        rows.append((path.parent.name, s))
    if rows:
        jobs = pd.DataFrame(rows, columns=["rule", "s"]).groupby("rule")["s"].agg(["count", "sum", "max"])
        print("\nJob seconds per rule (Snakemake benchmark files):\n")
        print(jobs.sort_values("sum", ascending=False).to_markdown(floatfmt=".0f"))
        print(f"\nsum of job seconds: {jobs['sum'].sum():.0f}")


if __name__ == "__main__":
    main()
