"""final.method merge: the merged adapter against hand-computed combinations of the shard adapters' LoRA deltas."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import BASE_CFG, FINETUNE, run_cli

from complementarity.finetune import finetune
from complementarity.merge import lora_deltas, merge_adapters, merge_settings_errors, merge_weights
from complementarity.records import read_prepared

SETTINGS = {"combination": "cat", "weighting": "mean", "density": None, "majority_sign_method": "total",
            "svd_rank": None, "seed": 0}  # fmt: skip


@pytest.fixture(scope="module")
def shard_adapters(tiny_base, demo_prepared, tmp_path_factory) -> dict[str, Path]:
    """Two tiny shard adapters (3 steps each, different data and seeds): ~2 s each."""
    out = tmp_path_factory.mktemp("shards")
    adapters = {}
    for i, domain in enumerate(("sort", "reverse")):
        examples = read_prepared(demo_prepared / domain / "train.jsonl")[:48]
        ft = {**FINETUNE, "max_steps": 3, "seed": i, "lora_alpha": 8 + 4 * i}  # different scalings
        finetune(examples, tiny_base, out / f"s{i}", base_cfg=BASE_CFG, ft=ft, name=f"s{i}")
        adapters[f"s{i}"] = out / f"s{i}"
    return adapters


@pytest.fixture(scope="module")
def shard_deltas(tiny_base, shard_adapters):
    """{adapter: {module: delta W = B A x alpha/r}} as PEFT computes them for merging into the base."""
    from peft import PeftModel

    from complementarity.modeling import load_base

    model, _, _ = load_base(tiny_base)
    pm = PeftModel.from_pretrained(model, str(shard_adapters["s0"]), adapter_name="s0")
    pm.load_adapter(str(shard_adapters["s1"]), adapter_name="s1")
    raw = {}
    for name in ("s0", "s1"):
        layers = {}
        for mod_name, module in pm.named_modules():
            if hasattr(module, "lora_A") and name in module.lora_A:
                A, B = module.lora_A[name].weight.detach(), module.lora_B[name].weight.detach()
                layers[mod_name] = (A, B, module.scaling[name])
        raw[name] = layers
    return lora_deltas(pm, "s0"), lora_deltas(pm, "s1"), raw


def test_cat_merge_via_the_cli_is_the_weighted_sum_of_the_deltas(tiny_base, shard_adapters, shard_deltas, tmp_path):
    """The saved adapter (PEFT format) adds exactly sum_i w_i B_i A_i alpha_i/r_i to every base weight."""
    from peft import PeftModel

    from complementarity.modeling import load_base

    d0, d1, raw = shard_deltas
    # A hand check of what PEFT's get_delta_weight is, on one module: B A x alpha / r.
    name = next(iter(raw["s0"]))
    A, B, s = raw["s0"][name]
    assert s == pytest.approx(8 / 4) and raw["s1"][name][2] == pytest.approx(12 / 4)
    assert torch.allclose(d0[name], B @ A * s)

    selection = {"selected": ["s1", "s0"], "scores": {"s0": {"mean": 0.1}, "s1": {"mean": 0.3}}, "k": 2}
    (tmp_path / "selection.json").write_text(json.dumps(selection))
    settings = {**SETTINGS, "weighting": "complementarity"}  # 0.75 for s1, 0.25 for s0: not symmetric
    run_cli(
        "merge", "--base", str(tiny_base), "--base-model", json.dumps(BASE_CFG),
        "--adapter", *[f"{n}={p}" for n, p in shard_adapters.items()],
        "--selection", str(tmp_path / "selection.json"), "--settings", json.dumps(settings),
        "--name", "final_merge", "--out", str(tmp_path / "final"),
    )  # fmt: skip
    final = tmp_path / "final"
    assert (final / "adapter_config.json").is_file() and (final / "adapter_model.safetensors").is_file()
    metrics = json.loads((final / "metrics.json").read_text())
    assert metrics["method"] == "merge" and metrics["merged"] == ["s1", "s0"]
    assert metrics["name"] == "final_merge"  # built beside a retrained final model (plan.Plan.final_name)
    assert metrics["weights"] == {"s1": pytest.approx(0.75), "s0": pytest.approx(0.25)}
    assert metrics["rank"] == 8 and metrics["examples"] == 96  # cat: rank 2 x 4; 48 + 48 examples behind it
    prov = json.loads((final / "train_config.json").read_text())
    assert prov["settings"]["final"]["merge"]["combination"] == "cat" and set(prov["merged_from"]) == {"s0", "s1"}

    model, _, _ = load_base(tiny_base)
    merged = PeftModel.from_pretrained(model, str(final))  # a plain PEFT adapter folder
    dm = lora_deltas(merged, "default")
    assert set(dm) == set(d0) and len(dm) == 2 * 7  # 2 layers x 7 linear projections
    for k in dm:
        expected = 0.25 * d0[k] + 0.75 * d1[k]
        torch.testing.assert_close(dm[k], expected, rtol=1e-5, atol=1e-7)


def test_linear_merge_is_peft_s_factorwise_average_not_the_sum_of_deltas(tiny_base, shard_adapters, shard_deltas):
    """`linear` averages A and B separately with sqrt(w_i s_i): B A then has cross terms B_i A_j."""
    d0, d1, raw = shard_deltas
    w = [0.5, 0.5]
    model, _, _ = merge_adapters(
        tiny_base, shard_adapters, w, base_cfg=BASE_CFG, settings={**SETTINGS, "combination": "linear"}
    )
    dm = lora_deltas(model, "default")
    assert model.peft_config["default"].r == 4 and model.peft_config["default"].lora_alpha == 4  # scaling 1
    worst_gap = 0.0
    for k in dm:
        (A0, B0, s0), (A1, B1, s1) = raw["s0"][k], raw["s1"][k]
        c0, c1 = (w[0] * s0) ** 0.5, (w[1] * s1) ** 0.5
        hand = (c0 * B0 + c1 * B1) @ (c0 * A0 + c1 * A1)
        torch.testing.assert_close(dm[k], hand, rtol=1e-5, atol=1e-7)
        worst_gap = max(worst_gap, (dm[k] - (w[0] * d0[k] + w[1] * d1[k])).abs().max().item())
    assert worst_gap > 1e-4, "linear should differ from the weighted sum of deltas (the cross terms)"


def test_svd_merge_at_full_rank_is_the_weighted_sum(tiny_base, shard_adapters, shard_deltas):
    d0, d1, _ = shard_deltas
    settings = {**SETTINGS, "combination": "svd", "svd_rank": 8}  # rank of the sum is at most 4 + 4
    model, _, _ = merge_adapters(tiny_base, shard_adapters, [1.0, 1.0], base_cfg=BASE_CFG, settings=settings)
    dm = lora_deltas(model, "default")
    for k in dm:
        torch.testing.assert_close(dm[k], d0[k] + d1[k], rtol=1e-4, atol=1e-5)


def test_merge_settings_and_weights_are_checked():
    assert "needs final.merge.density" in merge_settings_errors({**SETTINGS, "combination": "ties"})[0]
    assert merge_settings_errors({**SETTINGS, "combination": "dare_ties", "density": 0.5}) == []
    sel = {"selected": ["a", "b"], "scores": {"a": {"mean": 0.2}, "b": {"mean": -0.1}}}
    assert merge_weights(sel, "mean") == [0.5, 0.5] and merge_weights(sel, "sum") == [1.0, 1.0]
    from complementarity.errors import UserError

    with pytest.raises(UserError, match="weighting: complementarity needs positive scores"):
        merge_weights(sel, "complementarity")


def test_config_refuses_a_pruning_merge_without_density(tmp_path):
    import yaml
    from conftest import REPO

    cfg = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    cfg["final"] = {"method": "merge", "merge": {"combination": "ties"}}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    proc = run_cli("validate-config", str(path), "--base-dir", str(REPO), check=False)
    assert proc.returncode != 0 and "final.merge.combination: ties prunes the task vectors" in proc.stderr
