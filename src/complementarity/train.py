"""LoRA / QLoRA fine-tuning with loss on response tokens only.

A plain PyTorch loop: AdamW on the adapter weights, linear warm-up then linear decay, gradient
clipping, length-grouped batches (little padding), bf16 autocast on CUDA. The adapter is saved in
standard PEFT format (``PeftModel.from_pretrained`` loads it) into a temporary folder that is renamed
into place only when everything, ``metrics.json`` included, is written.
"""

from __future__ import annotations

import logging
import math
import random
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .modeling import Encoded, collate, encode_all, load_base
from .provenance import provenance, write_json
from .records import Example

log = logging.getLogger(__name__)


def set_seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def length_grouped_batches(
    items: list[Encoded], batch_size: int, *, seed: int, group: int = 32
) -> Iterator[list[Encoded]]:
    """Shuffle, sort by length within windows of ``group`` batches, then shuffle the batches.

    Sequences of similar length share a batch (little padding) while the order stays random.
    """
    rng = random.Random(seed)
    order = list(range(len(items)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    window = batch_size * group
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(items[i].input_ids))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    for b in batches:
        yield [items[i] for i in b]


def lora_config(ft: dict[str, Any]):
    from peft import LoraConfig

    return LoraConfig(
        r=ft["lora_r"],
        lora_alpha=ft["lora_alpha"],
        lora_dropout=ft["lora_dropout"],
        target_modules=ft["target_modules"],
        bias="none",
        task_type="CAUSAL_LM",
    )


def total_steps(n_examples: int, ft: dict[str, Any]) -> int:
    if ft["max_steps"]:
        return ft["max_steps"]
    per_epoch = math.ceil(n_examples / ft["batch_size"]) / ft["grad_accum"]
    return max(1, math.ceil(per_epoch * ft["epochs"]))


def finetune(
    examples: list[Example],
    base_dir: str | Path,
    out_dir: str | Path,
    *,
    base_cfg: dict[str, Any],
    ft: dict[str, Any],
    name: str,
) -> dict[str, Any]:
    """Fine-tune a LoRA adapter on ``examples``; write it and its provenance to ``out_dir``."""
    import torch
    from peft import get_peft_model

    if not examples:
        raise ValueError(f"{name}: no training examples")
    set_seed(ft["seed"])
    model, tok, manifest = load_base(
        base_dir,
        dtype=base_cfg["dtype"],
        quantization=base_cfg["quantization"],
        for_training=True,
        gradient_checkpointing=ft["gradient_checkpointing"],
    )
    device = next(model.parameters()).device
    model = get_peft_model(model, lora_config(ft))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    encoded = encode_all(tok, examples, template=base_cfg["prompt_template"], max_seq_len=ft["max_seq_len"])
    steps = total_steps(len(encoded), ft)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=ft["learning_rate"], weight_decay=ft["weight_decay"])
    warmup = int(ft["warmup_ratio"] * steps)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / (warmup + 1) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup))
    )
    autocast = device.type == "cuda" and next(model.parameters()).dtype != torch.float16
    log.info(
        "%s: %d examples, %d steps of %d x %d, %.3fM trainable parameters, device %s",
        name,
        len(encoded),
        steps,
        ft["batch_size"],
        ft["grad_accum"],
        trainable / 1e6,
        device,
    )
    model.train()
    t0 = time.perf_counter()
    step, micro, epoch = 0, 0, 0
    tokens = torch.zeros((), dtype=torch.long, device=device)
    loss_sum = torch.zeros((), device=device)
    history: list[dict[str, float]] = []
    log_every = max(1, steps // 10)
    while step < steps:
        for batch in length_grouped_batches(encoded, ft["batch_size"], seed=ft["seed"] + epoch):
            ids, mask, labels = (t.to(device, non_blocking=True) for t in collate(batch, tok.pad_token_id))
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            (loss / ft["grad_accum"]).backward()
            loss_sum += loss.detach()
            tokens += (labels != -100).sum()
            micro += 1
            if micro % ft["grad_accum"]:
                continue
            torch.nn.utils.clip_grad_norm_(params, ft["max_grad_norm"])
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            step += 1
            if step % log_every == 0 or step == steps:
                mean = (loss_sum / micro).item()  # one host sync per logging interval
                history.append({"step": step, "loss": mean})
                log.info("%s: step %d/%d loss %.4f", name, step, steps, mean)
                loss_sum.zero_()
                micro = 0
            if step >= steps:
                break
        epoch += 1
    seconds = time.perf_counter() - t0
    n_tokens = int(tokens.item())
    metrics = {
        "name": name,
        "examples": len(encoded),
        "truncated_examples": sum(e.truncated for e in encoded),
        "steps": steps,
        "epochs_seen": epoch,
        "effective_batch_size": ft["batch_size"] * ft["grad_accum"],
        "trainable_parameters": trainable,
        "response_tokens_trained": n_tokens,
        "train_seconds": seconds,
        "response_tokens_per_second": n_tokens / seconds if seconds else None,
        "final_loss": history[-1]["loss"] if history else None,
        "loss_history": history,
        "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if device.type == "cuda" else None,
    }
    save_adapter(
        model,
        out_dir,
        metrics,
        provenance({"base_model": base_cfg, "finetune": ft}, base_manifest=manifest, seed=ft["seed"]),
    )
    return metrics


def save_adapter(model, out_dir: str | Path, metrics: dict[str, Any], prov: dict[str, Any]) -> None:
    """Write the adapter, metrics and provenance to a temp folder, then rename it into place."""
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp)
    write_json(tmp / "train_config.json", prov)
    write_json(tmp / "metrics.json", metrics)
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
