"""The cheap final model: merge the k selected shard adapters instead of retraining on their union.

The shard adapters already exist (the fan-out trained them), so merging costs one model load and a
few matrix products instead of a fine-tune on k shards. PEFT's ``add_weighted_adapter`` does the
work; ``final.merge.combination`` picks its method (PEFT 0.21.2 offers all of these):

``cat``
    Exact weighted sum of the LoRA deltas: A = cat(w_i s_i A_i), B = cat(B_i), so
    B A = sum_i w_i s_i B_i A_i, where s_i = alpha_i / r_i is each adapter's scaling. The merged
    adapter has rank k x r (and alpha = rank, scaling 1). The default: it is the weighted sum.
``linear``
    PEFT's cheap approximation: A and B are averaged separately with weights sqrt(w_i s_i), so
    B A = (sum_i sqrt(w_i s_i) B_i)(sum_j sqrt(w_j s_j) A_j), which contains cross terms
    B_i A_j (i != j) and is *not* the weighted sum of the deltas. Rank r.
``svd``
    The exact weighted sum of the deltas, truncated to rank ``svd_rank`` (default r) by SVD.
``ties``, ``dare_linear``, ``dare_ties``, ``magnitude_prune``
    Task-vector merges applied to A and B separately (as ``linear``), after pruning to ``density``
    (TIES: by magnitude, with a sign election by ``majority_sign_method``; DARE: random drop and
    rescale, seeded by ``final.merge.seed``). Rank r.
``ties_svd``, ``dare_linear_svd``, ``dare_ties_svd``, ``magnitude_prune_svd``
    The same prunings applied to the full deltas, then truncated to ``svd_rank`` by SVD.

Weights ``w_i`` (``final.merge.weighting``): ``mean`` (1/k each, an average of the shard models),
``sum`` (1 each, task arithmetic), or ``complementarity`` (each shard's mean Complementarity from
selection.json, normalised to sum to 1; all must be positive).
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from .errors import UserError
from .provenance import provenance

log = logging.getLogger(__name__)

PRUNING = ("ties", "ties_svd", "dare_linear", "dare_ties", "dare_linear_svd", "dare_ties_svd", "magnitude_prune",
           "magnitude_prune_svd")  # fmt: skip
SVD = ("svd", "ties_svd", "dare_linear_svd", "dare_ties_svd", "magnitude_prune_svd")
COMBINATIONS = ("cat", "linear", "svd", *[c for c in PRUNING if c != "svd"])
WEIGHTINGS = ("mean", "sum", "complementarity")
MERGED = "default"  # the merged adapter's name: PEFT saves the "default" adapter at the folder's top level


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def merge_weights(selection: dict[str, Any], weighting: str) -> list[float]:
    """One weight per selected shard, in selection order."""
    chosen = selection["selected"]
    if weighting == "mean":
        return [1.0 / len(chosen)] * len(chosen)
    if weighting == "sum":
        return [1.0] * len(chosen)
    if weighting == "complementarity":
        scores = [float(selection["scores"][s]["mean"]) for s in chosen]
        if min(scores) <= 0:
            raise UserError(
                f"final.merge.weighting: complementarity needs positive scores, but the selected shards score "
                f"{dict(zip(chosen, scores, strict=True))}; use weighting: mean (or sum)"
            )
        total = sum(scores)
        return [s / total for s in scores]
    raise UserError(f"final.merge.weighting: {weighting!r} is not one of {', '.join(WEIGHTINGS)}")


def merge_settings_errors(settings: dict[str, Any]) -> list[str]:
    """Settings PEFT would reject late, or silently ignore: one sentence each, naming the fix."""
    combination = settings["combination"]
    if combination not in COMBINATIONS:
        return [f"final.merge.combination: {combination!r} is not one of {', '.join(COMBINATIONS)}"]
    if combination in PRUNING and settings.get("density") is None:
        return [
            f"final.merge.combination: {combination} prunes the task vectors and needs final.merge.density "
            "(fraction kept, e.g. 0.5); set it, or use combination: cat (exact weighted sum) or linear"
        ]
    return []


def check_merge_settings(settings: dict[str, Any]) -> None:
    problems = merge_settings_errors(settings)
    if problems:
        raise UserError("; ".join(problems))


def merge_adapters(
    base_dir: str | Path,
    adapters: dict[str, str | Path],
    weights: list[float],
    *,
    base_cfg: dict[str, Any],
    settings: dict[str, Any],
):
    """Load ``adapters`` ({name: folder}) onto the base model and merge them into the adapter ``default``.

    Returns the PeftModel holding only the merged adapter (the inputs are deleted).
    """
    import torch
    from peft import PeftModel

    from .modeling import load_base

    check_merge_settings(settings)
    names = list(adapters)
    if len(weights) != len(names):
        raise ValueError(f"{len(weights)} weights for {len(names)} adapters")
    # The merge only combines LoRA tensors; the base weights are a scaffold, so a QLoRA base is loaded
    # unquantized (no GPU needed: merge_final runs on a CPU node). The adapter is the same either way.
    model, tok, manifest = load_base(base_dir, dtype=base_cfg["dtype"], quantization="none")
    peft_model = PeftModel.from_pretrained(model, str(adapters[names[0]]), adapter_name=names[0])
    for name in names[1:]:
        peft_model.load_adapter(str(adapters[name]), adapter_name=name)
    ranks = {n: peft_model.peft_config[n].r for n in names}
    combination = settings["combination"]
    if combination not in ("cat", *SVD) and len(set(ranks.values())) != 1:
        raise UserError(
            f"final.merge.combination: {combination} needs adapters of one rank, got {ranks}; use cat or svd"
        )
    torch.manual_seed(settings.get("seed", 0))  # DARE's random drop
    peft_model.add_weighted_adapter(
        names,
        weights,
        MERGED,
        combination_type=combination,
        svd_rank=settings.get("svd_rank"),
        density=settings.get("density"),
        majority_sign_method=settings.get("majority_sign_method", "total"),
    )
    for name in names:
        peft_model.delete_adapter(name)
    peft_model.set_adapter(MERGED)
    return peft_model, tok, manifest


def merge_final(
    base_dir: str | Path,
    adapters: dict[str, str | Path],
    selection_path: str | Path,
    out_dir: str | Path,
    *,
    base_cfg: dict[str, Any],
    settings: dict[str, Any],
    name: str = "final",
) -> dict[str, Any]:
    """Merge the selected shards' adapters into ``out_dir`` (PEFT format, metrics.json, train_config.json).

    ``name`` is the model's name in metrics.json: ``final``, or ``final_merge`` when final.method is
    retrain and evaluation.final_methods asks for the merge too (plan.Plan.final_name).
    """
    from .finetune import save_adapter

    t0 = time.perf_counter()
    selection = read_json(selection_path)
    chosen = selection["selected"]
    missing = [s for s in chosen if s not in adapters]
    if missing:
        raise UserError(f"{selection_path}: selected shard(s) {missing} have no adapter among {sorted(adapters)}")
    weights = merge_weights(selection, settings["weighting"])
    ordered = {s: adapters[s] for s in chosen}
    log.info(
        "merging %s with weights %s (%s)", ", ".join(chosen), ", ".join(f"{w:.3f}" for w in weights),
        settings["combination"],
    )  # fmt: skip
    model, _, manifest = merge_adapters(base_dir, ordered, weights, base_cfg=base_cfg, settings=settings)
    shard_metrics = {s: read_json(Path(p) / "metrics.json") for s, p in ordered.items()}
    config = model.peft_config[MERGED]
    metrics = {
        "name": name,
        "method": "merge",
        "combination": settings["combination"],
        "merged": chosen,
        "weights": dict(zip(chosen, weights, strict=True)),
        "rank": config.r,
        "lora_alpha": config.lora_alpha,
        # Training data behind the merged model: the selected shards (what the report's fraction counts).
        "examples": sum(m["examples"] for m in shard_metrics.values()),
        # A merge trains nothing itself: its tokens were trained by the shard fine-tunes (counted there).
        "response_tokens_trained": 0,
        "train_seconds": 0.0,
        "merge_seconds": time.perf_counter() - t0,
        "trainable_parameters": sum(p.numel() for n, p in model.named_parameters() if "lora_" in n),
    }
    prov = provenance(
        {"base_model": base_cfg, "final": {"method": "merge", "merge": settings}},
        base_manifest=manifest,
        merged_from={s: str(p) for s, p in ordered.items()},
        shard_train_configs={s: read_json(Path(p) / "train_config.json").get("settings") for s, p in ordered.items()},
    )
    save_adapter(model, out_dir, metrics, prov)
    log.info("wrote the merged adapter (rank %d) to %s", config.r, out_dir)
    return metrics


def lora_deltas(peft_model, adapter: str) -> dict[str, Any]:
    """{module name: delta W = B A x scaling} of one adapter (what merging into the base adds)."""
    from peft.tuners.lora import LoraLayer

    return {
        name: module.get_delta_weight(adapter).detach()
        for name, module in peft_model.named_modules()
        if isinstance(module, LoraLayer) and adapter in module.lora_A
    }


# --- CLI: complementarity merge (rule merge_final in workflow/rules/merge.smk) -----------------------


def register_arguments(parser) -> None:
    from .arguments import json_arg, pair

    parser.add_argument("--base", required=True, help="base-model folder (from complementarity base_model)")
    parser.add_argument("--base-model", type=json_arg, required=True, help="JSON: config `base_model` section")
    parser.add_argument(
        "--adapter", type=pair, nargs="+", required=True, help="SHARD=ADAPTER_DIR, at least the selected shards"
    )
    parser.add_argument("--selection", required=True, help="selection.json: merge its selected shards")
    parser.add_argument("--settings", type=json_arg, required=True, help="JSON: config `final.merge` section")
    parser.add_argument("--name", default="final", help="model name in metrics.json (final or final_merge)")
    parser.add_argument("--out", required=True, help="output adapter folder")


def run(args) -> None:
    from .modeling import keep_unused_out

    keep_unused_out("none")  # the merge loads the base unquantized
    merge_final(
        args.base, dict(args.adapter), args.selection, args.out, base_cfg=args.base_model, settings=args.settings,
        name=args.name,
    )  # fmt: skip
