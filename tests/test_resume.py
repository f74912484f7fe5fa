"""Resumable fine-tuning: kill a real training process, rerun it, compare with an uninterrupted run."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from conftest import BASE_CFG, BIN, FINETUNE, env_with_bin, finetune_flags, run_cli
from safetensors.torch import load_file

STEPS = 150
FT = {**FINETUNE, "max_steps": STEPS, "checkpoint_every": 10, "lora_dropout": 0.1}  # dropout: RNG state matters


def finetune_args(base: Path, train: Path, out: Path, ckpt: Path, **overrides) -> list[str]:
    ft = {**FT, **overrides}
    return [
        "finetune", "--base", str(base), "--base-model", json.dumps(BASE_CFG), *finetune_flags(ft),
        "--train", str(train), "--name", out.name, "--checkpoint-dir", str(ckpt), "--out", str(out),
    ]  # fmt: skip


def start(args: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [str(BIN / "complementarity"), *args], env=env_with_bin(), stdout=log.open("w"), stderr=subprocess.STDOUT
    )


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, f"training ended (exit {proc.returncode}) before {path.name} appeared"
        assert time.monotonic() < deadline, f"{path} did not appear within {timeout}s"
        time.sleep(0.02)


def adapter(path: Path) -> dict[str, torch.Tensor]:
    return load_file(path / "adapter_model.safetensors")


def metrics(path: Path) -> dict:
    return json.loads((path / "metrics.json").read_text())


@pytest.fixture(scope="module")
def train_file(demo_prepared) -> Path:
    return demo_prepared / "sort" / "train.jsonl"


@pytest.fixture(scope="module")
def reference(tiny_base, train_file, tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must reproduce."""
    tmp = tmp_path_factory.mktemp("ref")
    run_cli(*finetune_args(tiny_base, train_file, tmp / "ref", tmp / "ckpt"))
    assert not (tmp / "ckpt").exists(), "the checkpoint was not removed after a successful run"
    return tmp / "ref"


def test_sigkill_mid_training_then_rerun_gives_the_same_adapter(tiny_base, train_file, reference, tmp_path):
    out, ckpt = tmp_path / "killed", tmp_path / "ckpt"
    args = finetune_args(tiny_base, train_file, out, ckpt)
    proc = start(args, tmp_path / "first.log")
    wait_for(ckpt / "checkpoint.pt", proc)
    time.sleep(random.uniform(0.0, 0.3))  # land somewhere between two checkpoints
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "a killed job left an adapter that looks complete"
    step = torch.load(ckpt / "checkpoint.pt", weights_only=False)["state"]["step"]
    assert 10 <= step < STEPS

    run_cli(*args)
    m = metrics(out)
    assert m["resumed_from_step"] == step and m["steps"] == STEPS
    ref, got = adapter(reference), adapter(out)
    assert ref.keys() == got.keys()
    assert all(torch.equal(ref[k], got[k]) for k in ref), "resumed adapter differs from the uninterrupted one"
    assert m["loss_history"] == metrics(reference)["loss_history"]
    assert not ckpt.exists()


def test_sigterm_checkpoints_exits_143_and_resumes(tiny_base, train_file, reference, tmp_path):
    out, ckpt = tmp_path / "term", tmp_path / "ckpt"
    args = finetune_args(tiny_base, train_file, out, ckpt, checkpoint_every=0)  # only the signal checkpoints
    proc = start(args, tmp_path / "first.log")
    deadline = time.monotonic() + 120
    while "step" not in (tmp_path / "first.log").read_text() or "examples" not in (tmp_path / "first.log").read_text():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 143
    log = (tmp_path / "first.log").read_text()
    assert "received SIGTERM" in log
    assert (ckpt / "checkpoint.pt").is_file() and not out.exists()

    run_cli(*args)
    assert metrics(out)["resumed_from_step"] is not None
    ref, got = adapter(reference), adapter(out)
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_sigusr1_checkpoints_and_training_goes_on(tiny_base, train_file, tmp_path):
    out, ckpt = tmp_path / "usr1", tmp_path / "ckpt"
    args = finetune_args(tiny_base, train_file, out, ckpt, checkpoint_every=0, keep_checkpoints=True)
    proc = start(args, tmp_path / "run.log")
    deadline = time.monotonic() + 120
    while "steps of" not in (tmp_path / "run.log").read_text():
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGUSR1)
    assert proc.wait(timeout=120) == 0
    log = (tmp_path / "run.log").read_text()
    assert "received SIGUSR1" in log and "checkpoint at step" in log
    assert metrics(out)["steps"] == STEPS and (ckpt / "checkpoint.pt").is_file()


def test_a_checkpoint_from_other_settings_is_not_resumed(tiny_base, train_file, tmp_path):
    ckpt = tmp_path / "ckpt"
    run_cli(*finetune_args(tiny_base, train_file, tmp_path / "a", ckpt, max_steps=20, keep_checkpoints=True))
    assert (ckpt / "checkpoint.pt").is_file()
    proc = run_cli(*finetune_args(tiny_base, train_file, tmp_path / "b", ckpt, max_steps=20, learning_rate=0.001))
    assert "ignoring checkpoint" in proc.stderr
    assert metrics(tmp_path / "b")["resumed_from_step"] is None


def test_halving_the_micro_batch_keeps_the_effective_batch(tiny_base, train_file, tmp_path):
    """What an out-of-memory retry does: same effective batch, same result up to summation order."""
    ft = {"max_steps": 20, "lora_dropout": 0.0}
    run_cli(*finetune_args(tiny_base, train_file, tmp_path / "one", tmp_path / "c1", **ft))
    run_cli(*finetune_args(tiny_base, train_file, tmp_path / "half", tmp_path / "c2", **ft), "--batch-divisor", "2")
    m = metrics(tmp_path / "half")
    assert m["micro_batch_size"] == FT["batch_size"] // 2 and m["effective_batch_size"] == FT["batch_size"]
    one, half = adapter(tmp_path / "one"), adapter(tmp_path / "half")
    assert all(torch.allclose(one[k], half[k], atol=1e-5, rtol=1e-4) for k in one)


def test_truncation_policies(tiny_base, tmp_path):
    long = tmp_path / "long.jsonl"
    rows = [{"prompt": f"sort: {' '.join('9' * 3)}", "response": "9 9 9", "id": f"s{i}"} for i in range(8)]
    rows.append({"prompt": "reverse: " + "abc" * 40, "response": "cba" * 40, "id": "too-long"})
    long.write_text("".join(json.dumps(r) + "\n" for r in rows))
    proc = run_cli(*finetune_args(tiny_base, long, tmp_path / "e", tmp_path / "c", max_steps=2, truncation="error"), check=False)  # fmt: skip
    assert proc.returncode == 2 and "'too-long'" in proc.stderr and "max_seq_len=64" in proc.stderr
    assert not (tmp_path / "e").exists()
    run_cli(*finetune_args(tiny_base, long, tmp_path / "d", tmp_path / "c", max_steps=2, truncation="drop"))
    assert metrics(tmp_path / "d")["dropped_too_long"] == 1 and metrics(tmp_path / "d")["examples"] == 8
    run_cli(*finetune_args(tiny_base, long, tmp_path / "k", tmp_path / "c", max_steps=2))
    assert metrics(tmp_path / "k")["truncated_examples"] == 1 and metrics(tmp_path / "k")["examples"] == 9
