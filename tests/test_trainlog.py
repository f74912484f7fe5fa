"""Training logs: TensorBoard event files written and read back, a progress line per logging step, no effect on results."""

from __future__ import annotations

import json
import logging

import pytest
import torch
from conftest import BASE_CFG, FINETUNE
from safetensors.torch import load_file

from complementarity.finetune import finetune, fingerprint
from complementarity.records import read_prepared
from complementarity.trainlog import TAGS, read_scalars


def test_tensorboard_logs_are_written_read_back_and_change_nothing(tiny_base, demo_prepared, tmp_path, caplog):
    examples = read_prepared(demo_prepared / "units" / "train.jsonl")[:64]
    ft = {**FINETUNE, "max_steps": 5, "warmup_ratio": 0.4, "report_to": "tensorboard"}
    with caplog.at_level(logging.INFO, logger="complementarity"):
        metrics = finetune(
            examples, tiny_base, tmp_path / "tb", base_cfg=BASE_CFG, ft=ft, name="tb", checkpoint_dir=tmp_path / "ck"
        )
    events = tmp_path / "tb" / "tensorboard"
    assert list(events.glob("events.out.tfevents.*")), "no event file beside metrics.json"
    assert (tmp_path / "tb" / "metrics.json").is_file()

    scalars = read_scalars(events)
    assert set(scalars) == set(TAGS.values())
    steps = [s for s, _ in scalars["train/loss"]]
    assert steps == [1, 2, 3, 4, 5]  # 5 steps: log_every = max(1, 5 // 10) = 1
    history = {h["step"]: h["loss"] for h in metrics["loss_history"]}
    for step, value in scalars["train/loss"]:
        assert value == pytest.approx(history[step], rel=1e-6)
    # Warm-up over int(0.4 x 5) = 2 steps, then linear decay: the LR each optimizer step used.
    peak = ft["learning_rate"]
    expected_lr = [peak * 1 / 3, peak * 2 / 3, peak * 3 / 3, peak * 2 / 3, peak * 1 / 3]
    assert [v for _, v in scalars["train/learning_rate"]] == pytest.approx(expected_lr, rel=1e-5)
    assert all(v > 0 for _, v in scalars["train/tokens_per_second"])

    progress = [r.getMessage() for r in caplog.records if "step " in r.getMessage() and "ETA" in r.getMessage()]
    assert len(progress) == 5 and progress[1].startswith("tb: step 2/5 (40%) loss ")
    assert "tok/s" in progress[1] and "elapsed 0:00:" in progress[1]

    # report_to changes nothing learned: the same adapter without it, and the same checkpoint fingerprint.
    plain = {**ft, "report_to": "none"}
    finetune(examples, tiny_base, tmp_path / "plain", base_cfg=BASE_CFG, ft=plain, name="plain")
    assert not (tmp_path / "plain" / "tensorboard").exists()
    a = load_file(tmp_path / "tb" / "adapter_model.safetensors")
    b = load_file(tmp_path / "plain" / "adapter_model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    manifest = json.loads((tiny_base / "base_model.json").read_text())
    assert fingerprint(examples, ft, manifest) == fingerprint(examples, plain, manifest)
