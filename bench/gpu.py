"""GPU benchmark of the project's trainer and scorer, in one run (CPU: a tiny shape, to test the script).

    python bench/gpu.py --out bench/results-gpu.json                    # CUDA, full shapes (~5-8 min on an H200)
    python bench/gpu.py --shape small --out /tmp/gpu-small.json         # CPU or CUDA, tiny shapes (seconds)

Models are random-init, built from a config (no download) and saved like a hub model folder with a
small digit tokenizer; every example is exactly ``--seq-len`` tokens (half prompt, half response), so
both trainers process the same tokens per step. Measured, each after warm-up steps:

(a) QLoRA: 4-bit NF4 (double quantization, bf16 compute: the project's ``load_base``) of a Mistral-7B
    shape (hidden 4096, 32 layers, 32/8 heads, intermediate 14336, vocab 32000), LoRA r 16 all-linear,
    gradient checkpointing (config/paper.yaml's recipe). Ours (``LoraTrainer``) vs the Hugging Face
    ``Trainer`` on the same loaded-and-prepared model, same LoRA, batch, sequence length, AdamW, LR
    schedule: tokens/s, peak GPU memory, and whether a 7B QLoRA shard job fits a 24 GB GPU;
(b) scoring 10 adapters with one base load (``scoring.score(adapters=all)``, what one scoring job
    does) vs one ``score()`` call, hence one 4-bit base load, per adapter;
(c) bf16 LoRA (no quantization) on a ~1.1B shape (TinyLlama's: hidden 2048, 22 layers, 32/4 heads,
    intermediate 5632, vocab 32000), ours vs the HF Trainer.

On a machine without CUDA, 4-bit is skipped (bitsandbytes' 4-bit path needs CUDA; the output says so)
and everything runs in float32. Prints a table; writes the JSON after every section, so a run cut
short keeps what it measured.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch

from complementarity.finetune import LoraTrainer, lora_config
from complementarity.modeling import encode_all, load_base, write_manifest
from complementarity.records import Example
from complementarity.scoring import score
from complementarity.tiny import train_tokenizer

# Shapes: the model, the LoRA recipe, batch x sequence length, steps. "full" is what a GPU run measures;
# "small" runs anywhere in seconds (it tests this script, it measures nothing worth reporting).
SHAPES: dict[str, dict[str, Any]] = {
    "full": {
        "qlora_model": dict(hidden=4096, layers=32, heads=32, kv_heads=8, intermediate=14336, vocab=32000),
        "bf16_model": dict(hidden=2048, layers=22, heads=32, kv_heads=4, intermediate=5632, vocab=32000),
        "batch": 4,  # config/paper.yaml finetune.batch_size
        "seq_len": 1024,  # config/paper.yaml finetune.max_seq_len (the longest a shard job trains on)
        "warmup_steps": 2,
        "steps": 6,
        "adapters": 10,
        "validation_per_domain": 16,  # 4 domains x 16 sequences to score per adapter
        "validation_seq_len": 512,
        "score_batch": 8,  # config/paper.yaml scoring.batch_size
    },
    "small": {
        "qlora_model": dict(hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128, vocab=512),
        "bf16_model": dict(hidden=64, layers=2, heads=4, kv_heads=2, intermediate=128, vocab=512),
        "batch": 2,
        "seq_len": 32,
        "warmup_steps": 1,
        "steps": 2,
        "adapters": 10,
        "validation_per_domain": 2,
        "validation_seq_len": 32,
        "score_batch": 8,
    },
}
# config/paper.yaml's LoRA recipe (the 7B QLoRA run), 1 step per optimizer update.
FINETUNE = {
    "lora_r": 16,
    "lora_alpha": 32,
    "lora_dropout": 0.05,
    "target_modules": "all-linear",
    "learning_rate": 2e-4,
    "weight_decay": 0.0,
    "warmup_ratio": 0.03,
    "epochs": 1,
    "grad_accum": 1,
    "max_grad_norm": 0.3,
    "truncation": "cut_prompt",
    "checkpoint_every": 0,
    "keep_checkpoints": False,
    "report_to": "none",
    "seed": 0,
}
DOMAINS = ("math", "coding", "medicine", "law")
GB = 2**30
GPU_24GB = 24e9 / GB  # a "24 GB" card: 24e9 bytes = 22.35 GiB, of which the CUDA context takes ~0.5 GiB
CUDA_CONTEXT_GIB = 0.5


def progress(msg: str) -> None:
    print(f"[gpu-bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def reset_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def peak_memory() -> dict[str, float | None]:
    if not torch.cuda.is_available():
        return {"peak_allocated_gib": None, "peak_reserved_gib": None}
    return {
        "peak_allocated_gib": torch.cuda.max_memory_allocated() / GB,
        "peak_reserved_gib": torch.cuda.max_memory_reserved() / GB,
    }


# --- the model folder and the data --------------------------------------------------------------------
def build_model(out: Path, shape: dict[str, int], *, dtype: torch.dtype) -> dict[str, Any]:
    """A random-init Mistral of ``shape`` and a digit tokenizer, saved like a hub model folder with the
    project's manifest (what ``build_base_model`` writes)."""
    from transformers import AutoModelForCausalLM, MistralConfig

    tok = train_tokenizer([" ".join(str(i) for i in range(1000))] * 4, vocab_size=300)
    cfg = MistralConfig(
        vocab_size=max(shape["vocab"], len(tok)),
        hidden_size=shape["hidden"],
        intermediate_size=shape["intermediate"],
        num_hidden_layers=shape["layers"],
        num_attention_heads=shape["heads"],
        num_key_value_heads=shape["kv_heads"],
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    t0 = time.perf_counter()
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(cfg, dtype=dtype)
    params = sum(p.numel() for p in model.parameters())
    matmul = params - model.get_input_embeddings().weight.numel()
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    write_manifest(out, {"source": "random-mistral", "shape": shape}, ".")
    del model
    reset_memory()
    return {
        **shape,
        "parameters": params,
        "parameters_matmul": matmul,
        "saved_dtype": str(dtype),
        "build_seconds": time.perf_counter() - t0,
    }


def digit_examples(n: int, seq_len: int, *, seed: int, prefix: str = "ex") -> list[Example]:
    """``n`` examples of exactly ``seq_len`` tokens with the digit tokenizer and the plain template:
    <s> prompt digits \\n | response digits </s>. Half prompt, half response (loss on the response)."""
    rng = random.Random(seed)
    response = seq_len // 2 - 1  # + </s>
    prompt = seq_len - response - 3  # + <s> and "\n"
    return [
        Example(
            prompt="".join(rng.choice("0123456789") for _ in range(prompt)),
            response="".join(rng.choice("0123456789") for _ in range(response)),
            id=f"{prefix}{i}",
        )
        for i in range(n)
    ]


def check_lengths(base_dir: Path, examples: list[Example], seq_len: int) -> None:
    from complementarity.modeling import load_tokenizer

    tok = load_tokenizer(str(base_dir))
    enc = encode_all(tok, examples[:4], template="plain", max_seq_len=seq_len + 8)
    lengths = {len(e.input_ids) for e in enc}
    if lengths != {seq_len}:
        raise RuntimeError(f"benchmark examples are {sorted(lengths)} tokens long, not {seq_len}: fix digit_examples")


# --- trainers -----------------------------------------------------------------------------------------
def ours_train(
    base_dir: Path, examples, base_cfg: dict[str, Any], ft: dict[str, Any], *, warmup: int, steps: int
) -> tuple[dict[str, Any], Any]:
    """LoraTrainer: ``warmup`` steps, then ``steps`` timed steps of the same run (same LR schedule)."""
    reset_memory()
    t0 = time.perf_counter()
    trainer = LoraTrainer(examples, base_dir, base_cfg=base_cfg, ft={**ft, "max_steps": warmup + steps}, name="ours")
    trainer.setup()
    setup_s = time.perf_counter() - t0
    trainer.steps = warmup
    trainer.train()
    sync()
    tokens0 = trainer.state["tokens"]
    trainer.steps = warmup + steps
    t0 = time.perf_counter()
    trainer.train()
    sync()
    wall = time.perf_counter() - t0
    response = trainer.state["tokens"] - tokens0
    processed = steps * ft["batch_size"] * ft["max_seq_len"]
    return {
        "setup_seconds": setup_s,
        "timed_steps": steps,
        "seconds": wall,
        "tokens_per_s": processed / wall,
        "response_tokens_per_s": response / wall,
        "final_loss": trainer.state["history"][-1]["loss"] if trainer.state["history"] else None,
        **peak_memory(),
    }, trainer


def hf_train(
    base_dir: Path, examples, base_cfg: dict[str, Any], ft: dict[str, Any], *, warmup: int, steps: int, workdir: Path
) -> dict[str, Any]:
    """The Hugging Face Trainer on the model load_base gives ours (same quantization, k-bit preparation and
    gradient checkpointing), the same PEFT LoRA, encoding, batch, AdamW (fused, HF's default), linear schedule."""
    from peft import get_peft_model
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    reset_memory()
    t_setup = time.perf_counter()
    torch.manual_seed(ft["seed"])
    model, tok, _ = load_base(
        base_dir,
        dtype=base_cfg["dtype"],
        quantization=base_cfg["quantization"],
        for_training=True,
        gradient_checkpointing=ft["gradient_checkpointing"],
    )
    model = get_peft_model(model, lora_config(ft))
    encoded = encode_all(tok, examples, template="plain", max_seq_len=ft["max_seq_len"], policy=ft["truncation"])
    data = [{"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids), "labels": e.labels} for e in encoded]
    marks: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_train_begin(self, args, state, control, **kw):
            marks["begin"] = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            if state.global_step == warmup:
                sync()
                marks["timed"] = time.perf_counter()

    cuda = torch.cuda.is_available()
    args = TrainingArguments(
        output_dir=str(workdir),
        per_device_train_batch_size=ft["batch_size"],
        gradient_accumulation_steps=ft["grad_accum"],
        max_steps=warmup + steps,
        learning_rate=ft["learning_rate"],
        weight_decay=ft["weight_decay"],
        warmup_steps=int(ft["warmup_ratio"] * (warmup + steps)),
        lr_scheduler_type="linear",
        max_grad_norm=ft["max_grad_norm"],
        bf16=cuda and base_cfg["dtype"] == "bfloat16",  # autocast, as ours does on CUDA
        logging_strategy="no",
        save_strategy="no",
        report_to="none",
        use_cpu=not cuda,
        seed=ft["seed"],
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda,
        disable_tqdm=True,
    )
    collator = DataCollatorForSeq2Seq(tokenizer=tok, label_pad_token_id=-100, padding=True)
    trainer = Trainer(
        model=model, args=args, train_dataset=data, data_collator=collator, processing_class=tok, callbacks=[Clock()]
    )
    setup_s = time.perf_counter() - t_setup
    trainer.train()
    sync()
    wall = time.perf_counter() - marks["timed"]
    processed = steps * ft["batch_size"] * ft["max_seq_len"]
    response = steps * ft["batch_size"] * encoded[0].n_response_tokens  # every example has the same split
    out = {
        "setup_seconds": setup_s,
        "train_setup_seconds": marks["begin"] - t_setup - setup_s,  # Trainer.train()'s own set-up
        "timed_steps": steps,
        "seconds": wall,
        "tokens_per_s": processed / wall,
        "response_tokens_per_s": response / wall,
        **peak_memory(),
    }
    del trainer, model
    reset_memory()
    return out


def training_section(
    name: str, base_dir: Path, base_cfg: dict[str, Any], ft: dict[str, Any], s: dict[str, Any], work: Path,
    *, adapters_out: Path | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Ours then the HF Trainer on the same model folder; optionally save ``s['adapters']`` perturbed copies of
    ours' trained adapter (for the scoring section) before its model is freed."""
    examples = digit_examples(s["batch"] * (s["warmup_steps"] + s["steps"]), s["seq_len"], seed=1)
    check_lengths(base_dir, examples, s["seq_len"])
    progress(f"{name}: ours (LoraTrainer)")
    ours, trainer = ours_train(base_dir, examples, base_cfg, ft, warmup=s["warmup_steps"], steps=s["steps"])
    progress(f"{name}: ours {ours['tokens_per_s']:.0f} tok/s, peak {ours['peak_allocated_gib']} GiB; HF Trainer next")
    if adapters_out is not None:
        save_adapters(trainer.model, adapters_out, s["adapters"])
    del trainer
    hf = hf_train(
        base_dir, examples, base_cfg, ft, warmup=s["warmup_steps"], steps=s["steps"], workdir=work / f"hf-{name}"
    )
    progress(f"{name}: HF Trainer {hf['tokens_per_s']:.0f} tok/s, peak {hf['peak_allocated_gib']} GiB")
    return {
        "batch": ft["batch_size"],
        "seq_len": ft["max_seq_len"],
        "warmup_steps": s["warmup_steps"],
        "lora": {k: ft[k] for k in ("lora_r", "lora_alpha", "lora_dropout", "target_modules")},
        "gradient_checkpointing": ft["gradient_checkpointing"],
        "dtype": base_cfg["dtype"],
        "quantization": base_cfg["quantization"],
        "ours": ours,
        "hf": hf,
        "ratio_ours_over_hf": ours["tokens_per_s"] / hf["tokens_per_s"],
        "target_ratio": 1.3,
        "target_met": ours["tokens_per_s"] / hf["tokens_per_s"] >= 1.3,
    }


def save_adapters(peft_model, out: Path, n: int) -> dict[str, Path]:
    """``n`` copies of a trained adapter, each with its LoRA A matrices perturbed (distinct weights; only
    speed is measured)."""
    paths = {}
    lora = [p for name, p in peft_model.named_parameters() if "lora_A" in name]
    for i in range(n):
        with torch.no_grad():
            for p in lora:
                p.add_(torch.randn_like(p), alpha=1e-3)
        path = out / f"shard{i:02d}"
        peft_model.save_pretrained(path)
        paths[path.name] = path
    return paths


# --- scoring ------------------------------------------------------------------------------------------
def scoring_section(
    base_dir: Path, adapters: dict[str, Path], base_cfg: dict[str, Any], s: dict[str, Any], *, reload_budget_s: float
) -> dict[str, Any]:
    """One job's way (one base load, every adapter) vs one score() call (so one base load) per adapter.

    The reload loop stops once it has spent ``reload_budget_s`` (at least one adapter is reloaded); the
    reload total for all adapters is then extrapolated from the ones measured, and the JSON says so."""
    validation = {
        d: digit_examples(s["validation_per_domain"], s["validation_seq_len"], seed=10 + i, prefix=d)
        for i, d in enumerate(DOMAINS)
    }
    kw = {"base_cfg": base_cfg, "max_seq_len": s["validation_seq_len"], "batch_size": s["score_batch"]}
    # No warm-up call: the training section before this one has read the model file (page cache) and run the
    # kernels; with --skip qlora the one-load run below is the first and pays that (against the reloads).
    reset_memory()
    progress(f"scoring: one base load, {len(adapters)} adapters")
    t0 = time.perf_counter()
    once_scores = score(base_dir, validation, adapters=adapters, **kw)
    sync()
    once = time.perf_counter() - t0
    once_mem = peak_memory()
    reload_times: list[float] = []
    reload_scores: dict[str, Any] = {}
    for name, path in adapters.items():
        progress(f"scoring: reload for {name}")
        reset_memory()
        t0 = time.perf_counter()
        reload_scores.update(score(base_dir, validation, adapters={name: path}, **kw))
        sync()
        reload_times.append(time.perf_counter() - t0)
        if sum(reload_times) > reload_budget_s:
            break
    measured = len(reload_times)
    reload_total = sum(reload_times) * len(adapters) / measured
    agree = max(
        abs(once_scores[n][d]["nll"] - reload_scores[n][d]["nll"]) / abs(reload_scores[n][d]["nll"])
        for n in reload_scores
        for d in DOMAINS
    )
    # What one more base load costs: a reload job's time minus the one-load job's time per adapter.
    load_s = statistics.median(reload_times) - once / len(adapters)
    tokens = len(DOMAINS) * s["validation_per_domain"] * s["validation_seq_len"]
    return {
        "n_adapters": len(adapters),
        "validation_sequences": len(DOMAINS) * s["validation_per_domain"],
        "validation_tokens_per_adapter": tokens,
        "batch_size": s["score_batch"],
        "quantization": base_cfg["quantization"],
        "base_load_seconds_estimate": load_s,
        "once_seconds": once,
        "once_scoring_tokens_per_s": tokens * len(adapters) / once,
        "once_peak_allocated_gib": once_mem["peak_allocated_gib"],
        "reload_seconds": reload_total,
        "reload_seconds_per_adapter": reload_times,
        "reloads_measured": measured,
        "reload_extrapolated": measured < len(adapters),
        "ratio_reload_over_once": reload_total / once,
        "target_ratio": 2.0,
        "target_met": reload_total / once >= 2.0,
        "max_relative_nll_difference_once_vs_reload": agree,
    }


# --- peak -------------------------------------------------------------------------------------------
def matmul_peak() -> dict[str, Any]:
    """bf16 8192^3 matmul TFLOP/s on CUDA (the ceiling for MFU); float32 1024^3 GFLOP/s on CPU."""
    cuda = torch.cuda.is_available()
    n, dtype, dev = (8192, torch.bfloat16, "cuda") if cuda else (1024, torch.float32, "cpu")
    a = torch.randn(n, n, device=dev, dtype=dtype)
    for _ in range(3):
        a @ a
    sync()
    reps = 20 if cuda else 3
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ a
    sync()
    flops = reps * 2 * n**3 / (time.perf_counter() - t0)
    return {"size": n, "dtype": str(dtype), "tflops": flops / 1e12}


def mfu(section: dict[str, Any], params: int, peak_tflops: float, *, checkpointing: bool) -> None:
    """Model FLOPs utilisation of each trainer: LoRA on a frozen base does forward 2P + backward ~2P (input
    gradients only) per token, plus another forward 2P with gradient checkpointing."""
    per_token = (6 if checkpointing else 4) * params
    for who in ("ours", "hf"):
        section[who]["mfu"] = per_token * section[who]["tokens_per_s"] / (peak_tflops * 1e12)
    section["mfu_flops_per_token"] = f"{6 if checkpointing else 4}P"


# --- main ---------------------------------------------------------------------------------------------
def write(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="full", help="full: 7B and 1.1B shapes; small: tiny")
    ap.add_argument("--out", default="bench/results-gpu.json", help="JSON written after every section")
    ap.add_argument("--workdir", help="scratch folder for the model folders (default: a temporary folder)")
    ap.add_argument("--steps", type=int, help="timed training steps (default: the shape's)")
    ap.add_argument(
        "--reload-budget-s", type=float, default=150.0,
        help="stop the reload-per-adapter loop after this many seconds and extrapolate to all adapters",
    )  # fmt: skip
    ap.add_argument("--skip", nargs="*", default=[], choices=["qlora", "score", "bf16"], help="sections to leave out")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    s = dict(SHAPES[a.shape])
    if a.steps:
        s["steps"] = a.steps
    cuda = torch.cuda.is_available()
    out = Path(a.out)
    notes = []
    if not cuda:
        notes.append(
            "no CUDA: 4-bit quantization skipped (bitsandbytes' 4-bit path needs a GPU), the 'qlora' section "
            "trains the unquantized model in float32, and every section runs in float32 on the CPU"
        )
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "shape": a.shape,
        "device": torch.cuda.get_device_name(0) if cuda else f"cpu ({platform.processor() or platform.machine()})",
        "cuda": cuda,
        "gpu_memory_gib": torch.cuda.get_device_properties(0).total_memory / GB if cuda else None,
        "torch": torch.__version__,
        "versions": versions(),
        "torch_threads": torch.get_num_threads(),
        "notes": notes,
    }
    t_all = time.perf_counter()
    results["matmul_peak"] = matmul_peak()
    write(results, out)
    dtype = "bfloat16" if cuda else "float32"
    with tempfile.TemporaryDirectory(prefix="gpu-bench-", dir=a.workdir) as tmp:
        work = Path(tmp)
        adapters: dict[str, Path] = {}
        qlora_dir = work / "qlora-model"
        qlora_cfg = {"dtype": dtype, "quantization": "4bit" if cuda else "none", "prompt_template": "plain"}
        if "qlora" not in a.skip or "score" not in a.skip:
            progress(f"building the {a.shape} Mistral-7B-shaped model")
            results["qlora_model"] = build_model(
                qlora_dir, s["qlora_model"], dtype=torch.bfloat16 if cuda else torch.float32
            )
            write(results, out)
        if "qlora" not in a.skip:
            ft = {**FINETUNE, "batch_size": s["batch"], "max_seq_len": s["seq_len"], "gradient_checkpointing": True}
            sec = training_section(
                "qlora", qlora_dir, qlora_cfg, ft, s, work,
                adapters_out=work / "adapters" if "score" not in a.skip else None,
            )  # fmt: skip
            mfu(sec, results["qlora_model"]["parameters_matmul"], results["matmul_peak"]["tflops"], checkpointing=True)
            # A 24 GB card: our job's peak (reserved, what the allocator holds) plus the CUDA context must fit.
            need = (sec["ours"]["peak_reserved_gib"] or 0) + CUDA_CONTEXT_GIB
            sec["fits_24gb"] = need <= GPU_24GB if cuda else None
            sec["fits_24gb_rule"] = (
                f"ours' peak reserved memory + {CUDA_CONTEXT_GIB} GiB CUDA context <= {GPU_24GB:.2f} GiB (24e9 bytes)"
            )
            results["qlora"] = sec
            write(results, out)
            adapters = {p.name: p for p in sorted((work / "adapters").iterdir())} if "score" not in a.skip else {}
        if "score" not in a.skip:
            if not adapters:
                from peft import get_peft_model

                model, _, _ = load_base(qlora_dir, dtype=dtype, quantization=qlora_cfg["quantization"])
                cfg = lora_config({**FINETUNE})
                cfg.init_lora_weights = False
                adapters = save_adapters(get_peft_model(model, cfg), work / "adapters", s["adapters"])
                del model
            results["scoring"] = scoring_section(qlora_dir, adapters, qlora_cfg, s, reload_budget_s=a.reload_budget_s)
            write(results, out)
        if "bf16" not in a.skip:
            import shutil

            shutil.rmtree(qlora_dir, ignore_errors=True)  # 14.5 GB at full shape: free the disk
            bf16_dir = work / "bf16-model"
            progress(f"building the {a.shape} ~1.1B-shaped model")
            results["bf16_model"] = build_model(
                bf16_dir, s["bf16_model"], dtype=torch.bfloat16 if cuda else torch.float32
            )
            bf16_cfg = {"dtype": dtype, "quantization": "none", "prompt_template": "plain"}
            ft = {**FINETUNE, "batch_size": s["batch"], "max_seq_len": s["seq_len"], "gradient_checkpointing": False}
            sec = training_section("bf16", bf16_dir, bf16_cfg, ft, s, work)
            mfu(sec, results["bf16_model"]["parameters_matmul"], results["matmul_peak"]["tflops"], checkpointing=False)
            results["bf16"] = sec
            write(results, out)
    results["total_seconds"] = time.perf_counter() - t_all
    write(results, out)
    print_table(results)
    print(f"\nwrote {out}")
    return results


def versions() -> dict[str, str | None]:
    from importlib import metadata

    out: dict[str, str | None] = {}
    for dist in ("transformers", "peft", "accelerate", "bitsandbytes"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def print_table(r: dict[str, Any]) -> None:
    rows = [("device", f"{r['device']}" + (f", {r['gpu_memory_gib']:.0f} GiB" if r["gpu_memory_gib"] else ""))]
    p = r["matmul_peak"]
    rows.append((f"matmul peak ({p['dtype']}, {p['size']}^3)", f"{p['tflops']:.2f} TFLOP/s"))
    for note in r["notes"]:
        rows.append(("NOTE", note))

    def gib(x: float | None) -> str:
        return f"{x:.2f} GiB" if x is not None else "n/a (CPU)"

    for key, label in (("qlora", "QLoRA 4-bit, 7B shape"), ("bf16", "bf16 LoRA, 1.1B shape")):
        if not (sec := r.get(key)):
            continue
        model = r[f"{key}_model"]
        head = f"{label} ({model['parameters'] / 1e9:.2f}B params; batch {sec['batch']} x {sec['seq_len']})"
        rows.append((head, f"dtype {sec['dtype']}, quantization {sec['quantization']}"))
        for who, name in (("ours", "ours (LoraTrainer)"), ("hf", "HF Trainer")):
            x = sec[who]
            rows.append(
                (
                    f"  {name}",
                    f"{x['tokens_per_s']:.0f} tok/s, peak {gib(x['peak_allocated_gib'])} allocated / "
                    f"{gib(x['peak_reserved_gib'])} reserved, MFU {x['mfu']:.1%} ({sec['mfu_flops_per_token']})",
                )
            )
        rows.append(("  ratio ours/HF", f"{sec['ratio_ours_over_hf']:.2f}x (target >= 1.3: {sec['target_met']})"))
        if "fits_24gb" in sec:
            rows.append(("  7B QLoRA shard job fits 24 GB", f"{sec['fits_24gb']} ({sec['fits_24gb_rule']})"))
    if sc := r.get("scoring"):
        extra = f" (extrapolated from {sc['reloads_measured']})" if sc["reload_extrapolated"] else ""
        rows.append(
            (
                f"scoring {sc['n_adapters']} adapters ({sc['quantization']})",
                f"one load {sc['once_seconds']:.1f}s vs reload per adapter {sc['reload_seconds']:.1f}s{extra} -> "
                f"{sc['ratio_reload_over_once']:.2f}x (target >= 2: {sc['target_met']}); base load "
                f"{sc['base_load_seconds_estimate']:.1f}s; {sc['once_scoring_tokens_per_s']:.0f} scored tok/s",
            )
        )
    rows.append(("total", f"{r.get('total_seconds', 0):.0f}s"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
