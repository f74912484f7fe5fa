"""CPU smoke tests of the real CLI on a tiny model: build, score, fine-tune, select, and its errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from conftest import BASE_CFG, FINETUNE, REPO, finetune_flags, run_cli

from complementarity.modeling import IGNORE_INDEX, encode_example, load_base
from complementarity.records import Example, read_prepared

DOMAINS = ("arithmetic", "reverse", "sort", "units")


def _validation_args(prepared: Path) -> list[str]:
    return [f"{d}={prepared / d / 'validation.jsonl'}" for d in DOMAINS]


def _score(base: Path, prepared: Path, out: Path, *adapters: str, base_cfg: dict = BASE_CFG) -> dict:
    args = [
        "scoring",
        "--batch-size",
        "16",
        "--base",
        str(base),
        "--base-model",
        json.dumps(base_cfg),
        "--max-seq-len",
        "64",
    ]
    args += ["--validation", *_validation_args(prepared), "--out", str(out)]
    if adapters:
        args += ["--adapter", *adapters]
    run_cli(*args)
    return json.loads(out.read_text())["scores"]


def _finetune(base: Path, train: list[Path], out: Path, **overrides) -> dict:
    ft = {**FINETUNE, **overrides}
    run_cli(
        "finetune", "--base", str(base), "--base-model", json.dumps(BASE_CFG), *finetune_flags(ft),
        "--train", *map(str, train), "--name", out.name, "--out", str(out),
    )  # fmt: skip
    return json.loads((out / "metrics.json").read_text())


@pytest.fixture(scope="module")
def arithmetic_adapter(tiny_base, demo_prepared, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("adapters") / "arith"
    _finetune(tiny_base, [demo_prepared / "arithmetic" / "train.jsonl"], out, max_steps=40)
    return out


def test_build_base_model_writes_a_loadable_model(tiny_base):
    manifest = json.loads((tiny_base / "base_model.json").read_text())
    assert manifest["source"] == "tiny"
    metrics = json.loads((tiny_base / "metrics.json").read_text())
    assert metrics["pretrain_loss_last"] < metrics["pretrain_loss_first"], "pre-training did not lower the loss"
    model, tok, _ = load_base(tiny_base)
    assert model.config.model_type == "llama"
    assert tok.eos_token_id is not None and tok.pad_token_id is not None
    ids = tok("sort: 3 1 2")["input_ids"]
    assert ids[0] == tok.bos_token_id and tok.decode(ids, skip_special_tokens=True) == "sort: 3 1 2"


def test_encoding_puts_loss_on_response_tokens_only(tiny_base):
    _, tok, _ = load_base(tiny_base)
    ex = Example(prompt="12 + 30 =", response="42", id="x")
    enc = encode_example(tok, ex, chat=False, max_seq_len=64)
    prompt_len = len(tok("12 + 30 =\n")["input_ids"])
    assert enc.labels[:prompt_len] == [IGNORE_INDEX] * prompt_len
    assert enc.labels[prompt_len:] == enc.input_ids[prompt_len:]
    assert enc.labels[-1] == tok.eos_token_id
    assert tok.decode(enc.labels[prompt_len:-1]) == "42"
    # Too long: the prompt is cut from the left, the response kept whole.
    long = Example(prompt="reverse: " + "abcdefgh" * 20, response="done", id="y")
    enc = encode_example(tok, long, chat=False, max_seq_len=32)
    assert enc.truncated and len(enc.input_ids) == 32
    assert tok.decode([t for t in enc.labels if t != IGNORE_INDEX][:-1]) == "done"


def test_score_base_matches_a_direct_computation(tiny_base, demo_prepared, tmp_path):
    scores = _score(tiny_base, demo_prepared, tmp_path / "base.json")["base"]
    assert set(scores) == set(DOMAINS)
    # Recompute the arithmetic NLL one example at a time, without padding or batching.
    model, tok, _ = load_base(tiny_base)
    total, n = 0.0, 0
    for ex in read_prepared(demo_prepared / "arithmetic" / "validation.jsonl"):
        enc = encode_example(tok, ex, chat=False, max_seq_len=64)
        with torch.no_grad():
            logits = model(torch.tensor([enc.input_ids])).logits[0, :-1]
        logp = torch.log_softmax(logits.double(), -1)
        for pos, label in enumerate(enc.labels[1:]):
            if label != IGNORE_INDEX:
                total -= float(logp[pos, label])
                n += 1
    got = scores["arithmetic"]
    assert got["response_tokens"] == n
    assert math.isclose(got["nll"], total / n, rel_tol=1e-4), (got["nll"], total / n)


def test_finetune_writes_a_standard_peft_adapter_with_provenance(arithmetic_adapter, tiny_base):
    from peft import PeftModel

    for name in ("adapter_config.json", "adapter_model.safetensors", "metrics.json", "train_config.json"):
        assert (arithmetic_adapter / name).is_file(), name
    assert not arithmetic_adapter.with_name("arith.partial").exists()
    metrics = json.loads((arithmetic_adapter / "metrics.json").read_text())
    assert metrics["steps"] == 40 and metrics["response_tokens_trained"] > 0
    assert metrics["loss_history"][-1]["loss"] < metrics["loss_history"][0]["loss"]
    prov = json.loads((arithmetic_adapter / "train_config.json").read_text())
    assert prov["seed"] == FINETUNE["seed"] and prov["versions"]["torch"] and prov["versions"]["peft"]
    assert prov["settings"]["finetune"]["lora_r"] == FINETUNE["lora_r"]
    model, _, _ = load_base(tiny_base)
    peft_model = PeftModel.from_pretrained(model, str(arithmetic_adapter))
    lora_b = [p for n, p in peft_model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b), "LoRA B is still zero: nothing was trained"


def test_finetuning_on_a_domain_lowers_its_validation_loss(arithmetic_adapter, tiny_base, demo_prepared, tmp_path):
    base = _score(tiny_base, demo_prepared, tmp_path / "base.json")["base"]
    tuned = _score(tiny_base, demo_prepared, tmp_path / "a.json", f"arith={arithmetic_adapter}")["arith"]
    assert tuned["arithmetic"]["nll"] < base["arithmetic"]["nll"]
    assert tuned["arithmetic"]["response_tokens"] == base["arithmetic"]["response_tokens"]


def test_finetune_is_deterministic_on_cpu(tiny_base, demo_prepared, tmp_path):
    from safetensors.torch import load_file

    train = [demo_prepared / "sort" / "train.jsonl"]
    _finetune(tiny_base, train, tmp_path / "one", max_steps=10)
    _finetune(tiny_base, train, tmp_path / "two", max_steps=10)
    _finetune(tiny_base, train, tmp_path / "seed1", max_steps=10, seed=1)
    one, two, other = (load_file(tmp_path / d / "adapter_model.safetensors") for d in ("one", "two", "seed1"))
    assert one.keys() == two.keys()
    assert all(torch.equal(one[k], two[k]) for k in one), "same seed, different adapter"
    # ... byte for byte, config included: PEFT writes target_modules from a set (order varies by process).
    configs = [(tmp_path / d / "adapter_config.json").read_bytes() for d in ("one", "two")]
    assert configs[0] == configs[1]
    modules = json.loads(configs[0])["target_modules"]
    assert modules == sorted(modules) and len(set(modules)) == len(modules) > 0
    assert not all(torch.equal(one[k], other[k]) for k in one), "another seed gave the same adapter"


def test_scoring_several_adapters_in_one_job_equals_one_at_a_time(
    arithmetic_adapter, tiny_base, demo_prepared, tmp_path
):
    other = tmp_path / "units"
    _finetune(tiny_base, [demo_prepared / "units" / "train.jsonl"], other, max_steps=10)
    both = _score(tiny_base, demo_prepared, tmp_path / "both.json", f"arith={arithmetic_adapter}", f"units={other}")
    alone = _score(tiny_base, demo_prepared, tmp_path / "alone.json", f"units={other}")
    for d in DOMAINS:
        assert math.isclose(both["units"][d]["nll"], alone["units"][d]["nll"], rel_tol=1e-6)
    assert both["arith"]["arithmetic"]["nll"] != both["units"]["arithmetic"]["nll"]


def test_adapters_with_the_same_config_are_copied_in_and_others_loaded_the_peft_way(
    arithmetic_adapter, tiny_base, demo_prepared, tmp_path
):
    """Scoring A, B (same LoRA config: tensors copied in place), C (rank 2: PEFT load), then A again."""
    same, other_rank = tmp_path / "same", tmp_path / "rank2"
    _finetune(tiny_base, [demo_prepared / "sort" / "train.jsonl"], same, max_steps=5)
    _finetune(tiny_base, [demo_prepared / "sort" / "train.jsonl"], other_rank, max_steps=5, lora_r=2, lora_alpha=4)
    pairs = [f"a={arithmetic_adapter}", f"b={same}", f"c={other_rank}", f"a2={arithmetic_adapter}"]
    proc = run_cli(
        "scoring", "--batch-size", "16", "--base", str(tiny_base), "--base-model", json.dumps(BASE_CFG), "--max-seq-len", "64",
        "--validation", *[f"{d}={demo_prepared / d / 'validation.jsonl'}" for d in DOMAINS],
        "--adapter", *pairs, "--out", str(tmp_path / "all.json"),
    )  # fmt: skip
    assert "scored b (weights copied)" in proc.stderr and "scored c (loaded)" in proc.stderr
    together = json.loads((tmp_path / "all.json").read_text())["scores"]
    for name, path in (("a", arithmetic_adapter), ("b", same), ("c", other_rank)):
        alone = _score(tiny_base, demo_prepared, tmp_path / f"{name}.json", f"{name}={path}")[name]
        for d in DOMAINS:
            assert math.isclose(together[name][d]["nll"], alone[d]["nll"], rel_tol=1e-6), (name, d)
    assert all(math.isclose(together["a"][d]["nll"], together["a2"][d]["nll"], rel_tol=1e-6) for d in DOMAINS)


# Packages an ML job must not load (quantization none): what peft, transformers or torch would pull in
# when installed, and the light stages' plotting and tables. torch and peft are there to show the job ran.
NOT_IN_ML_JOBS = ("bitsandbytes", "scipy", "matplotlib", "pandas", "sklearn", "torchvision", "datasets", "tensorboard")
MODULES_PROBE = """
import json, sys
from complementarity.cli import main
rc = main(sys.argv[1:])
import torch
watch = {watch!r}
print(json.dumps({{"rc": rc, "loaded": [m for m in watch if sys.modules.get(m) is not None],
                  "torch_threads": torch.get_num_threads()}}))
"""


@pytest.mark.parametrize("job", ["finetune", "scoring"])
def test_ml_jobs_load_neither_bitsandbytes_nor_unused_packages(
    job, arithmetic_adapter, tiny_base, demo_prepared, tmp_path
):
    """A fine-tune and an adapter-scoring job (quantization none), each in its own process through the CLI's
    entry: the packages above stay out of sys.modules, and torch runs the OMP_NUM_THREADS threads it is given."""
    import subprocess
    import sys

    from conftest import env_with_bin

    if job == "finetune":
        args = ["finetune", "--base", str(tiny_base), "--base-model", json.dumps(BASE_CFG), *finetune_flags({**FINETUNE, "max_steps": 2}),
                "--train", str(demo_prepared / "sort" / "train.jsonl"), "--name", "s", "--out", str(tmp_path / "s")]  # fmt: skip
    else:
        args = ["scoring", "--batch-size", "16", "--base", str(tiny_base), "--base-model", json.dumps(BASE_CFG), "--max-seq-len", "64",
                "--validation", *_validation_args(demo_prepared), "--adapter", f"a={arithmetic_adapter}", "--out", str(tmp_path / "s.json")]  # fmt: skip
    code = MODULES_PROBE.format(watch=["torch", "peft", *NOT_IN_ML_JOBS])
    env = {**env_with_bin(), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["rc"] == 0 and seen["loaded"] == ["torch", "peft"], seen
    assert seen["torch_threads"] == 1


def test_length_batches_bound_padding_and_batch_size():
    import random

    from complementarity.scoring import length_batches

    rng = random.Random(0)
    lengths = [rng.randint(5, 60) for _ in range(500)]
    batches = length_batches(lengths, batch_size=32, max_padding=0.1)
    assert sorted(i for b in batches for i in b) == list(range(500))  # every example exactly once
    for b in batches:
        widths = [lengths[i] for i in b]
        assert len(b) <= 32 and 1 - sum(widths) / (len(b) * max(widths)) <= 0.1
    assert len(length_batches([10] * 100, batch_size=32)) == 4  # equal lengths fill whole batches


def test_final_finetune_uses_only_the_selected_shards(tiny_base, demo_prepared, tmp_path):
    shards = []
    for d in ("arithmetic", "sort", "units"):
        p = tmp_path / f"{d}.jsonl"
        p.write_text((demo_prepared / d / "train.jsonl").read_text())
        shards.append(p)
    sel = tmp_path / "selection.json"
    sel.write_text(json.dumps({"selected": ["units", "arithmetic"]}))
    out = tmp_path / "final"
    ft = {**FINETUNE, "max_steps": 2}
    run_cli(
        "finetune", "--base", str(tiny_base), "--base-model", json.dumps(BASE_CFG), *finetune_flags(ft),
        "--train", *map(str, shards), "--selection", str(sel), "--out", str(out),
    )  # fmt: skip
    n_expected = sum(len(read_prepared(tmp_path / f"{d}.jsonl")) for d in ("units", "arithmetic"))
    assert json.loads((out / "metrics.json").read_text())["examples"] == n_expected


# --- errors: exit status 2, "ERROR: ..." naming the value and the fix --------------------------------


def test_prepare_data_names_file_and_line_of_malformed_jsonl(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a", "response": "b"}\n{"prompt": "c", "response": \n')
    domains = {"d": {"train": str(bad)}}
    data = {"validation_fraction": 0.5, "validation_max": None, "leakage": "error", "seed": 0}
    proc = run_cli("prepare", "--domains", json.dumps(domains), "--data", json.dumps(data), "--out-dir", str(tmp_path / "out"), check=False)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.startswith("ERROR: ") and "bad.jsonl" in proc.stderr and "line 2" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "out").exists(), "a failed preparation left partial output"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised when no CUDA GPU is present")
def test_4bit_without_cuda_is_a_clear_error(tiny_base, demo_prepared, tmp_path):
    cfg = {**BASE_CFG, "quantization": "4bit"}
    proc = run_cli(
        "scoring", "--batch-size", "16", "--base", str(tiny_base), "--base-model", json.dumps(cfg), "--max-seq-len", "64",
        "--validation", *_validation_args(demo_prepared), "--out", str(tmp_path / "s.json"), check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "4bit" in proc.stderr and "CUDA" in proc.stderr and "quantization: none" in proc.stderr
    assert not (tmp_path / "s.json").exists()


def test_missing_local_model_path_is_named(tmp_path, demo_prepared):
    base_dir = tmp_path / "base"
    cfg = {**BASE_CFG, "source": str(tmp_path / "no_such_model")}
    run_cli("base_model", "--max-seq-len", "64", "--base-model", json.dumps(cfg), "--out", str(base_dir))
    proc = run_cli(
        "scoring", "--batch-size", "16", "--base", str(base_dir), "--base-model", json.dumps(cfg), "--max-seq-len", "64",
        "--validation", *_validation_args(demo_prepared), "--out", str(tmp_path / "s.json"), check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "no_such_model" in proc.stderr and "does not exist" in proc.stderr


def test_validate_config_reports_k_larger_than_n(tmp_path):
    cfg = (REPO / "config" / "config.yaml").read_text().replace("k: 2 #", "k: 11 #")
    path = tmp_path / "c.yaml"
    path.write_text(cfg)
    proc = run_cli("validate-config", str(path), "--base-dir", str(REPO), check=False)
    assert proc.returncode == 2 and "k=11" in proc.stderr and "N=10" in proc.stderr
    ok = run_cli("validate-config", str(REPO / "config" / "config.yaml"), "--base-dir", str(REPO))
    assert ok.stdout.startswith("OK:") and "10 shards" in ok.stdout


def test_select_with_k_larger_than_n_fails_and_writes_nothing(tmp_path):
    table = tmp_path / "c.tsv"
    table.write_text("shard\ta\tmean\ns1\t0.1\t0.1\ns2\t0.2\t0.2\n")
    rule = ["--metric", "relative", "--threshold", "0", "--weights", "{}", "--confidence", "0.95"]
    proc = run_cli("selection", "topk", "--table", str(table), "--k", "3", *rule, "--out", str(tmp_path / "s.json"), check=False)  # fmt: skip
    assert proc.returncode == 2 and "k=3" in proc.stderr
    assert not (tmp_path / "s.json").exists()
    run_cli(
        "selection",
        "topk",
        "--table",
        str(table),
        "--k",
        "1",
        *rule,
        "--out",
        str(tmp_path / "s.json"),
    )
    assert json.loads((tmp_path / "s.json").read_text())["selected"] == ["s2"]


def test_a_local_model_folder_loads_through_from_pretrained(tiny_base, demo_prepared, tmp_path):
    """The non-tiny path (hub id or local folder) on a local folder: same model, same losses.

    float32 on both paths: `dtype: auto` keeps the tiny model in float32 but gives a real model bf16 on a
    CPU with native bf16 (modeling.device_and_dtype), and this folder is loaded as a real model."""
    cfg = {**BASE_CFG, "source": str(tiny_base), "dtype": "float32"}
    base_dir = tmp_path / "base"
    run_cli("base_model", "--max-seq-len", "64", "--base-model", json.dumps(cfg), "--out", str(base_dir))
    assert json.loads((base_dir / "base_model.json").read_text())["weights"] == str(tiny_base)
    assert not (base_dir / "model.safetensors").exists(), "a hub/local base must not be copied"
    via_folder = _score(base_dir, demo_prepared, tmp_path / "a.json", base_cfg=cfg)["base"]
    via_tiny = _score(tiny_base, demo_prepared, tmp_path / "b.json")["base"]
    assert {d: r["nll"] for d, r in via_folder.items()} == {d: r["nll"] for d, r in via_tiny.items()}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="4-bit QLoRA needs a CUDA GPU")
def test_qlora_4bit_finetune_and_score_on_gpu(tiny_base, demo_prepared, tmp_path):
    cfg = {**BASE_CFG, "quantization": "4bit", "dtype": "bfloat16"}
    out = tmp_path / "qlora"
    run_cli(
        "finetune", "--base", str(tiny_base), "--base-model", json.dumps(cfg), *finetune_flags(FINETUNE),
        "--train", str(demo_prepared / "arithmetic" / "train.jsonl"), "--out", str(out),
    )  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["peak_gpu_memory_gb"] > 0 and math.isfinite(metrics["final_loss"])
    run_cli(
        "scoring", "--batch-size", "16", "--base", str(tiny_base), "--base-model", json.dumps(cfg), "--max-seq-len", "64",
        "--validation", *_validation_args(demo_prepared), "--adapter", f"q={out}", "--out", str(tmp_path / "s.json"),
    )  # fmt: skip
    scores = json.loads((tmp_path / "s.json").read_text())["scores"]["q"]
    assert all(math.isfinite(r["nll"]) for r in scores.values())


def test_evaluate_cli_on_the_tiny_model(arithmetic_adapter, tiny_base, demo_prepared, tmp_path):
    settings = {"test_limit": 30, "batch_size": 16, "max_new_tokens": 8, "num_fewshot": 0, "mc_format": "template", "sandbox_timeout": 5, "layout": "project"}  # fmt: skip
    tests = [f"{d}={demo_prepared / d / 'test.jsonl'}" for d in ("arithmetic", "sort")]
    out = tmp_path / "final.json"
    run_cli(
        "evaluation", "--base", str(tiny_base), "--base-model", json.dumps(BASE_CFG), "--adapter", str(arithmetic_adapter),
        "--name", "final", "--test", *tests, "--evaluators", json.dumps({"arithmetic": "exact_match", "sort": "exact_match"}),
        "--settings", json.dumps(settings), "--out", str(out),
    )  # fmt: skip
    result = json.loads(out.read_text())
    assert result["model"] == "final" and list(result["domains"]) == ["arithmetic", "sort"]
    for r in result["domains"].values():
        assert r["n"] == 30 and len(r["per_item"]) == 30 and r["correct"] == sum(i["correct"] for i in r["per_item"])
        assert all(i["n_tokens"] <= 8 for i in r["per_item"])


def test_a_group_evaluation_gives_each_model_what_its_own_job_gives(
    arithmetic_adapter, tiny_base, demo_prepared, tmp_path
):
    """evaluate_group's command (--models, --out-dir) evaluates models in turn in one process; the second
    model's results equal those of its own job (the first model's merged adapter does not leak into it)."""
    settings = {"test_limit": 20, "batch_size": 16, "max_new_tokens": 8, "num_fewshot": 0, "mc_format": "template", "sandbox_timeout": 5, "layout": "project"}  # fmt: skip
    sort_adapter = tmp_path / "sort"
    _finetune(tiny_base, [demo_prepared / "sort" / "train.jsonl"], sort_adapter, max_steps=5)
    common = [
        "evaluation", "--base", str(tiny_base), "--base-model", json.dumps(BASE_CFG),
        "--test", *[f"{d}={demo_prepared / d / 'test.jsonl'}" for d in ("arithmetic", "sort")],
        "--evaluators", json.dumps({"arithmetic": "exact_match", "sort": "exact_match"}), "--settings", json.dumps(settings),
    ]  # fmt: skip
    run_cli(
        *common, "--models", f"arith={arithmetic_adapter}", f"sort={sort_adapter}", "--out-dir", str(tmp_path / "group")
    )
    run_cli(*common, "--adapter", str(sort_adapter), "--name", "sort", "--out", str(tmp_path / "sort.json"))
    assert sorted(p.name for p in (tmp_path / "group").iterdir()) == ["arith.json", "sort.json"]

    def scores(path: Path) -> dict:
        result = json.loads(path.read_text())
        return {d: {k: v for k, v in r.items() if k != "seconds"} for d, r in result["domains"].items()}

    grouped, alone = (
        json.loads((tmp_path / "group" / "sort.json").read_text()),
        json.loads((tmp_path / "sort.json").read_text()),
    )
    assert grouped["model"] == alone["model"] == "sort" and grouped["provenance"]["adapter"] == str(sort_adapter)
    assert scores(tmp_path / "group" / "sort.json") == scores(tmp_path / "sort.json")
    # The adapters differ, so equal results above are not the base model's twice.
    arith = scores(tmp_path / "group" / "arith.json")
    assert [i["prediction"] for i in arith["arithmetic"]["per_item"]] != [
        i["prediction"] for i in scores(tmp_path / "sort.json")["arithmetic"]["per_item"]
    ]
    # One model or several, not a mix of both.
    proc = run_cli(
        *common,
        "--models",
        f"arith={arithmetic_adapter}",
        "--name",
        "x",
        "--out-dir",
        str(tmp_path / "g2"),
        check=False,
    )
    assert proc.returncode == 2 and "ERROR: evaluation: give either --name and --out" in proc.stderr
    assert not (tmp_path / "g2").exists()


def test_check_shards_counts_records_by_their_domain_label(tmp_path):
    """Issue 13: candidate records that carry a `domain` field were counted as `unknown`."""
    held = tmp_path / "domains" / "d" / "test.jsonl"
    held.parent.mkdir(parents=True)
    held.write_text('{"id": "t0", "prompt": "held out", "response": "x"}\n')
    rows = [{"prompt": f"p{i}", "response": "r", "domain": "math" if i < 3 else "code"} for i in range(5)]
    rows.append({"prompt": "no label", "response": "r"})
    src = tmp_path / "cand.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    shard = tmp_path / "shards" / "cand.jsonl"
    args = ["shards", "file", "--input", str(src), "--shard", "cand", "--test", str(held), "--leakage", "error"]
    run_cli(*args, "--out", str(shard))
    assert [ex.domain for ex in read_prepared(shard)] == ["math"] * 3 + ["code"] * 2 + [None]
    run_cli("shards", "check", "--shards", str(shard), "--out", str(tmp_path / "checked.tsv"))
    assert (tmp_path / "checked.tsv").read_text().splitlines()[1] == "cand\t6\tcode=2, math=3, unknown=1"
    # The leakage error of a shard names the held-out set and the shard file to fix.
    src.write_text(src.read_text() + '{"prompt": "held out", "response": "y"}\n')
    proc = run_cli(*args, "--out", str(shard), check=False)
    assert proc.returncode == 2 and "1 training record(s) have a prompt that is also in domains.d.test" in proc.stderr
    assert f"Remove them from {src}" in proc.stderr
