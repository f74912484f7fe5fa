"""`complementarity export --merged`: a plain transformers model whose logits match base + adapter."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import BASE_CFG, FINETUNE, run_cli

from complementarity.finetune import finetune
from complementarity.records import read_prepared

# float32 on CPU: merging W + B A x s into one matrix only reorders the additions, so the logits
# agree to float32 rounding (measured max |diff| ~1e-6 on logits of size ~10).
ATOL = 1e-4


def _adapter(tiny_base, demo_prepared, out):
    examples = read_prepared(demo_prepared / "arithmetic" / "train.jsonl")[:48]
    finetune(examples, tiny_base, out, base_cfg=BASE_CFG, ft={**FINETUNE, "max_steps": 3}, name="final")
    return out


def _logits(model, tok, texts):
    batch = tok(texts, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits, batch["attention_mask"].bool()


def test_merged_export_loads_with_from_pretrained_and_matches_base_plus_adapter(tiny_base, demo_prepared, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from complementarity.modeling import load_base

    adapter = _adapter(tiny_base, demo_prepared, tmp_path / "final")
    out = tmp_path / "export"
    run_cli(
        "export", "--merged", "--base", str(tiny_base), "--base-model", json.dumps(BASE_CFG),
        "--adapter", str(adapter), "--out", str(out),
    )  # fmt: skip
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    assert not (out / "adapter_config.json").exists(), "the export must be a plain model, not an adapter"
    info = json.loads((out / "export.json").read_text())
    assert info["base_quantization"] == "none" and "dequantized_to" not in info and info["adapter"] == str(adapter)

    exported = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    base, base_tok, _ = load_base(tiny_base)
    reference = PeftModel.from_pretrained(base, str(adapter)).eval()
    texts = [ex.prompt + "\n" + ex.response for ex in read_prepared(demo_prepared / "arithmetic" / "test.jsonl")[:6]]
    assert tok(texts)["input_ids"] == base_tok(texts)["input_ids"]  # the tokenizer travelled with it
    got, mask = _logits(exported, tok, texts)
    want, _ = _logits(reference, base_tok, texts)
    diff = (got - want)[mask].abs().max().item()
    assert diff < ATOL, f"max |logit difference| {diff}"
    # ... and the adapter does change the model, so the match is not trivial.
    with reference.disable_adapter():
        plain, _ = _logits(reference, base_tok, texts)
    assert (plain - want)[mask].abs().max().item() > 100 * ATOL


def test_export_refuses_a_folder_that_is_not_an_adapter(tiny_base, tmp_path):
    proc = run_cli(
        "export", "--merged", "--base", str(tiny_base), "--base-model", json.dumps(BASE_CFG),
        "--adapter", str(tmp_path), "--out", str(tmp_path / "x"), check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "is not a PEFT adapter folder" in proc.stderr


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="4-bit (QLoRA) export needs a CUDA GPU")
def test_4bit_export_is_dequantized_and_matches(tiny_base, demo_prepared, tmp_path):
    """A QLoRA adapter: the export holds the dequantized base plus the merged adapter, in the compute dtype."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from complementarity.modeling import load_base

    cfg = {**BASE_CFG, "quantization": "4bit"}
    examples = read_prepared(demo_prepared / "arithmetic" / "train.jsonl")[:48]
    adapter = tmp_path / "final"
    finetune(examples, tiny_base, adapter, base_cfg=cfg, ft={**FINETUNE, "max_steps": 3}, name="final")
    out = tmp_path / "export"
    run_cli(
        "export", "--merged", "--base", str(tiny_base), "--base-model", json.dumps(cfg),
        "--adapter", str(adapter), "--out", str(out),
    )  # fmt: skip
    info = json.loads((out / "export.json").read_text())
    assert info["base_quantization"] == "4bit" and info["dequantized_to"].startswith("torch.")
    exported = AutoModelForCausalLM.from_pretrained(out, device_map={"": 0}).eval()
    base, tok, _ = load_base(tiny_base, quantization="4bit")
    reference = PeftModel.from_pretrained(base, str(adapter)).eval()
    texts = ["12 + 30 =", "reverse: abc"]
    batch = tok(texts, return_tensors="pt", padding=True).to("cuda")
    with torch.no_grad():
        diff = (exported(**batch).logits.float() - reference(**batch).logits.float()).abs().max().item()
    assert diff < 0.05, diff  # bf16 compute: 4-bit kernels and a dense matmul round differently
