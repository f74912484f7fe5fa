"""Shared fixtures: repo paths, a tiny base model, a CLI runner, a scratch copy of the workflow."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from complementarity.config import defaults
from complementarity.settings import FinetuneSettings

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "data" / "real"
BIN = Path(sys.executable).parent

# Nothing in the tests may touch the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def env_with_bin() -> dict[str, str]:
    """The environment for subprocesses: the venv's bin first on PATH (for `complementarity`)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def run_cli(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real CLI in a subprocess; on an unexpected exit code show its output."""
    proc = subprocess.run(
        [str(BIN / "complementarity"), *args], cwd=cwd, env=env_with_bin(), capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"complementarity {' '.join(args)} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc


def run_snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [str(BIN / "snakemake"), *args], cwd=workdir, env=env_with_bin(), capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of a Snakemake dry run into {rule: count} (empty: nothing to do)."""
    counts: dict[str, int] = {}
    lines = dry_run_output.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Job stats:")
    except StopIteration:
        return counts
    for line in lines[start + 3 :]:
        parts = line.split()
        if len(parts) != 2 or parts[0] == "total":
            break
        counts[parts[0]] = int(parts[1])
    return counts


def copy_workflow(dest: Path) -> Path:
    """A scratch copy of the workflow (Snakefile, rules, configs, demo data, profiles, envs)."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "Snakefile", dest / "Snakefile")
    for d in ("workflow", "config", "profiles", "envs"):
        shutil.copytree(REPO / d, dest / d, symlinks=False)
    return dest


# Settings of the CPU smoke tests: the schema's defaults (the one place defaults live) with what the
# tests change to stay small and fast.
TINY = {
    **defaults("base_model")["tiny"],
    "vocab_size": 300,
    "hidden_size": 64,
    "num_layers": 2,
    "num_heads": 2,
    "intermediate_size": 128,
    "max_position_embeddings": 128,
    "pretrain_steps": 30,
    "pretrain_batch_size": 16,
    "pretrain_on": "domains",
}
BASE_CFG = {**defaults("base_model"), "prompt_template": "plain", "tiny": TINY}
FINETUNE = {
    **defaults("finetune"),
    "lora_r": 4,
    "lora_alpha": 8,
    "lora_dropout": 0.0,
    "learning_rate": 0.003,
    "warmup_ratio": 0.1,
    "max_steps": 20,
    "max_seq_len": 64,
    "checkpoint_every": 0,
}


def finetune_flags(ft: dict) -> list[str]:
    """The finetune command's settings flags, as the rules pass them: ``--finetune`` holds the keys the
    adapter depends on, the checkpoint cadence and training logs come separately."""
    s = FinetuneSettings.from_dict(ft)
    return [
        "--finetune", s.result_json(),
        "--checkpoint-every", str(s.checkpoint_every),
        "--keep-checkpoints", str(int(s.keep_checkpoints)),
        "--report-to", s.report_to,
    ]  # fmt: skip


@pytest.fixture(scope="session")
def demo_prepared(tmp_path_factory) -> Path:
    """The demo domains prepared by the real CLI (train/validation/test per domain)."""
    out = tmp_path_factory.mktemp("prepared")
    domains = {
        d: {
            "train": str(REPO / f"config/demo/domains/{d}/train.jsonl"),
            "test": str(REPO / f"config/demo/domains/{d}/test.jsonl"),
        }
        for d in ("arithmetic", "reverse", "sort", "units")
    }
    data = {"validation_fraction": 0.1, "validation_max": 40, "leakage": "error", "seed": 0}
    run_cli("prepare", "--domains", json.dumps(domains), "--data", json.dumps(data), "--out-dir", str(out))
    return out


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory, demo_prepared) -> Path:
    """A tiny base model (~0.1M parameters) built by the real CLI, shared by the CPU smoke tests."""
    out = tmp_path_factory.mktemp("base") / "base_model"
    train = sorted(str(p) for p in demo_prepared.glob("*/train.jsonl"))
    run_cli(
        "base_model",
        "--base-model",
        json.dumps(BASE_CFG),
        "--train",
        *train,
        "--max-seq-len",
        "64",
        "--out",
        str(out),
    )
    return out
