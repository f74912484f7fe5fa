"""The embedded default over several seeds: what its report shows, and how often.

Seed s changes everything random in the default: the demo data (``make_demo_data`` seed 1234 + s), the
tiny base model's initialisation and data order, the LoRA seed, the validation carving and the six
random-k draws (seeds 6s+1 … 6s+6). Seed 0 is the shipped default exactly. Each seed runs the whole
pipeline (``snakemake --profile profiles/local``) in a scratch copy of the workflow, then this script
recomputes the report's comparisons (:func:`complementarity.report.comparisons`) from the evaluation
files and prints one table.

    python bench/default_seeds.py --seeds 0 1 2 3 4 --work /tmp/default-seeds       # run and summarize
    python bench/default_seeds.py --seeds 0 1 2 3 4 --work /tmp/default-seeds --summarize-only

About 3-4 minutes per seed on a quiet 2-core machine. README "What the default shows" holds the figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("Snakefile", "workflow", "config", "profiles", "envs")


def prepare(seed: int, work: Path) -> Path:
    """A scratch copy of the workflow whose demo data and seeds are those of ``seed``."""
    import yaml

    from complementarity.demo import make_demo_data

    d = work / f"seed{seed}"
    if d.exists():
        return d
    d.mkdir(parents=True)
    tmp = work / f"seed{seed}.tar"
    with tarfile.open(tmp, "w") as tar:
        for name in SHIPPED:
            tar.add(REPO / name, arcname=name)
    with tarfile.open(tmp) as tar:
        tar.extractall(d, filter="data")
    tmp.unlink()
    make_demo_data(d / "config" / "digits", design="digits", seed=1234 + seed)
    cfg = yaml.safe_load((d / "config" / "config.yaml").read_text())
    cfg["base_model"]["tiny"]["seed"] = seed
    cfg["finetune"]["seed"] = seed
    cfg["data"]["seed"] = seed
    cfg["evaluation"]["random_k_seeds"] = [6 * seed + i for i in range(1, 7)]
    (d / "config" / "seed.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return d


def run(d: Path, cores: int) -> float:
    t0 = time.perf_counter()
    cmd = ["snakemake", "--profile", "profiles/local", "--cores", str(cores), "--configfile", "config/seed.yaml"]
    with open(d / "run.log", "w") as log:
        subprocess.run(cmd, cwd=d, stdout=log, stderr=subprocess.STDOUT, check=True)
    wall = time.perf_counter() - t0
    (d / "wall_s.txt").write_text(f"{wall:.0f}\n")
    return wall


def summarize(seed: int, d: Path) -> dict:
    """One seed's row: the selection, the accuracies, and the report's comparisons on the mean over domains."""
    from complementarity.report import MEAN, comparisons, load_evaluations

    res = d / "results"
    corrupted = json.loads((d / "config" / "digits" / "MANIFEST.json").read_text())["corrupted"]
    sel = json.loads((res / "selection.json").read_text())
    evals = load_evaluations(sorted((res / "evaluation").glob("*.json")))
    comps = {c["against"]: c for c in comparisons(evals, confidence=0.95, resamples=2000) if c["domain"] == MEAN}

    def mean_acc(model: str) -> float:
        return sum(r["score"] for r in evals[model].values()) / len(evals[model])

    random_models = sorted(m for m in evals if m.startswith("random_k_seed"))
    draws = {m: json.loads((res / "baselines" / "random_k" / m.removeprefix("random_k_") / "selection.json").read_text())
             for m in random_models}  # fmt: skip
    bad_draws = [m for m, s in draws.items() if set(s["selected"]) & set(corrupted)]
    per_draw = [comps[m] for m in random_models]
    return {
        "seed": seed,
        "selected": sel["selected"],
        "selected_corrupted": sorted(set(sel["selected"]) & set(corrupted)),
        "corrupted_last": set(sel["ranking"][-len(corrupted) :]) == set(corrupted),
        "p_same_topk": sel["uncertainty"]["p_same_topk"],
        "accuracy": {m: mean_acc(m) for m in ("base", "final", "all_data")}
        | {"random_k_mean": sum(map(mean_acc, random_models)) / len(random_models)},
        "domains": {d_: {m: evals[m][d_]["score"] for m in ("base", "final", "all_data")} for d_ in evals["base"]},
        "vs": {k: {x: comps[k][x] for x in ("diff", "low", "high")} for k in ("random_k", "all_data", "base")},
        "draws": len(random_models),
        "draws_with_corrupted": len(bad_draws),
        "draws_beaten": sum(c["low"] > 0 for c in per_draw),
        "draws_lost": sum(c["high"] < 0 for c in per_draw),
        "wall_s": float((d / "wall_s.txt").read_text()) if (d / "wall_s.txt").exists() else None,
    }


def table(rows: list[dict]) -> str:
    def pts(c: dict) -> str:
        return f"{100 * c['diff']:+.1f} [{100 * c['low']:+.1f}, {100 * c['high']:+.1f}]"

    out = [
        "| seed | selected | corrupted last | P(same top-2) | base | selected | random k (mean) | all data "
        "| selected − random k | selected − all data | selected − base | draws with a corrupted shard "
        "| draws beaten / lost |",
        "|---" * 13 + "|",
    ]
    for r in rows:
        a = r["accuracy"]
        out.append(
            f"| {r['seed']} | {' + '.join(r['selected'])}{' (corrupted!)' if r['selected_corrupted'] else ''} "
            f"| {'yes' if r['corrupted_last'] else 'no'} | {r['p_same_topk']:.2f} "
            f"| {100 * a['base']:.1f} | {100 * a['final']:.1f} | {100 * a['random_k_mean']:.1f} "
            f"| {100 * a['all_data']:.1f} | {pts(r['vs']['random_k'])} | {pts(r['vs']['all_data'])} "
            f"| {pts(r['vs']['base'])} | {r['draws_with_corrupted']} of {r['draws']} "
            f"| {r['draws_beaten']} / {r['draws_lost']} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--work", type=Path, required=True, help="scratch folder (one workflow copy per seed)")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--summarize-only", action="store_true", help="only read the runs already in --work")
    ap.add_argument("--out", type=Path, default=None, help="also write the rows as JSON here")
    a = ap.parse_args()
    rows = []
    for seed in a.seeds:
        d = a.work / f"seed{seed}"
        if not a.summarize_only:
            d = prepare(seed, a.work)
            if not (d / "results" / "report.md").exists():
                print(f"seed {seed}: running the default pipeline in {d} ...", file=sys.stderr, flush=True)
                print(f"seed {seed}: {run(d, a.cores):.0f} s", file=sys.stderr, flush=True)
        rows.append(summarize(seed, d))
    print(table(rows))
    if a.out:
        a.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
