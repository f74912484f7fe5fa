"""bf16 vs float32 on CPU for a finished run: losses, Complementarity, the ranking, tokens/s.

    OMP_NUM_THREADS=1 python bench/smollm2/dtype_agreement.py --run RUN_DIR --config config/smollm2.yaml \
        --retrain cand01 cand03 --out bench/smollm2/agreement-demo.json

RUN_DIR is a finished workflow run of ``--config`` (results/base_model, results/shards/*, the prepared
validation sets). Measured there, with the run's adapters (trained in the run's dtype):

1. scoring: the base model and every shard adapter scored on every validation set in bfloat16 and in
   float32 (same adapters): the relative difference of each loss L, the absolute difference of each
   C(M_i, V_j) and of the mean C, the Spearman correlation of the two rankings, top-k and bottom ranks;
2. training (``--retrain``): those shards fine-tuned again in float32 with the same recipe, scored in
   float32: their C against the run's bf16-trained, bf16-scored values (the whole bf16 path vs the whole
   float32 path for those shards), and response tokens/s of both trainings. An adapter already in
   ``<out stem>-float32-<shard>/`` next to ``--out`` is reused.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from complementarity.config import load_config
from complementarity.records import read_prepared
from complementarity.scoring import score
from complementarity.stats import spearman


def c_table(scores: dict, base: dict, domains: list[str]) -> dict[str, dict[str, float]]:
    """C(M_i, V_j) = (L_M - L_Mi) / L_M per shard and domain, plus their mean."""
    table = {}
    for shard, per in scores.items():
        row = {d: (base[d]["nll"] - per[d]["nll"]) / base[d]["nll"] for d in domains}
        row["mean"] = sum(row[d] for d in domains) / len(domains)
        table[shard] = row
    return table


def ranking(table: dict[str, dict[str, float]]) -> list[str]:
    return sorted(table, key=lambda s: -table[s]["mean"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", required=True, type=Path, help="a finished run of --config")
    ap.add_argument("--config", required=True, help="the config the run used")
    ap.add_argument("--retrain", nargs="*", default=[], help="shards to fine-tune again in float32")
    ap.add_argument("--validation-limit", type=int, default=None, help="score only the first N records per domain")
    ap.add_argument("--out", required=True, type=Path)
    a = ap.parse_args()

    cfg = load_config(a.config, a.run)
    domains = list(cfg["domains"])
    run = a.run.resolve()
    base_dir = run / "results" / "base_model"
    validation = {
        d: read_prepared(run / "results" / "data" / "domains" / d / "validation.jsonl")[: a.validation_limit]
        for d in domains
    }
    shards = sorted(p.name for p in (run / "results" / "shards").iterdir() if (p / "adapter_config.json").is_file())
    adapters = {s: run / "results" / "shards" / s for s in shards}
    k = cfg["selection"]["k"]
    kw = {"max_seq_len": cfg["finetune"]["max_seq_len"], "batch_size": cfg["scoring"]["batch_size"]}
    out: dict = {"run": str(run), "config": a.config, "shards": shards, "domains": domains, "scoring": {},
                 "validation_records": {d: len(v) for d, v in validation.items()}}  # fmt: skip

    losses, tables = {}, {}
    for dtype in ("bfloat16", "float32"):
        base_cfg = {**cfg["base_model"], "dtype": dtype}
        t0 = time.perf_counter()
        base = score(base_dir, validation, adapters=None, base_cfg=base_cfg, **kw)["base"]
        per = score(base_dir, validation, adapters=adapters, base_cfg=base_cfg, **kw)
        seconds = time.perf_counter() - t0
        tokens = sum(v["response_tokens"] for v in base.values()) * (1 + len(shards))
        losses[dtype] = {"base": base, **per}
        tables[dtype] = c_table(per, base, domains)
        out["scoring"][dtype] = {"seconds": round(seconds, 1), "response_tokens_scored": tokens,
                                 "ranking": ranking(tables[dtype]), "complementarity": tables[dtype]}  # fmt: skip
        print(f"{dtype}: scored {1 + len(shards)} models in {seconds:.0f} s; ranking {ranking(tables[dtype])}")

    rel = [abs(losses["bfloat16"][m][d]["nll"] - losses["float32"][m][d]["nll"]) / losses["float32"][m][d]["nll"]
           for m in losses["float32"] for d in domains]  # fmt: skip
    dc = [abs(tables["bfloat16"][s][d] - tables["float32"][s][d]) for s in shards for d in [*domains, "mean"]]
    mean_b = [tables["bfloat16"][s]["mean"] for s in shards]
    mean_f = [tables["float32"][s]["mean"] for s in shards]
    rb, rf = ranking(tables["bfloat16"]), ranking(tables["float32"])
    out["scoring_agreement"] = {
        "max_relative_loss_difference": max(rel),
        "mean_relative_loss_difference": sum(rel) / len(rel),
        "max_abs_c_difference": max(dc),
        "c_spread_mean": max(mean_f) - min(mean_f),
        "spearman_mean_c": spearman(mean_b, mean_f),
        "top_k_equal": rb[:k] == rf[:k],
        "bottom_3_equal_as_sets": set(rb[-3:]) == set(rf[-3:]),
    }
    print(json.dumps(out["scoring_agreement"], indent=2))

    if a.retrain:
        fp32 = {**cfg["base_model"], "dtype": "float32"}
        from complementarity.finetune import finetune

        retrained, speed = {}, {}
        for s in a.retrain:
            examples = read_prepared(run / "results" / "data" / "shards" / f"{s}.jsonl")
            dest = a.out.parent / f"{a.out.stem}-float32-{s}"
            if (dest / "metrics.json").is_file():  # trained already (e.g. by `complementarity finetune`)
                m = json.loads((dest / "metrics.json").read_text())
            else:
                m = finetune(examples, base_dir, dest, base_cfg=fp32, ft=cfg["finetune"], name=f"{s}-float32")
            bf16 = json.loads((run / "results" / "shards" / s / "metrics.json").read_text())
            speed[s] = {"bfloat16_response_tokens_per_s": bf16["response_tokens_per_second"],
                        "float32_response_tokens_per_s": m["response_tokens_per_second"],
                        "bfloat16_train_seconds": bf16["train_seconds"], "float32_train_seconds": m["train_seconds"]}  # fmt: skip
            retrained[s] = dest
        per = score(base_dir, validation, adapters=retrained, base_cfg=fp32, **kw)
        full_f32 = c_table(per, losses["float32"]["base"], domains)
        out["training"] = {
            "speed": speed,
            "float32_trained_float32_scored": full_f32,
            "bfloat16_trained_bfloat16_scored": {s: tables["bfloat16"][s] for s in a.retrain},
            "max_abs_c_difference": max(
                abs(full_f32[s][d] - tables["bfloat16"][s][d]) for s in a.retrain for d in [*domains, "mean"]
            ),
        }
        print(json.dumps(out["training"], indent=2))
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
