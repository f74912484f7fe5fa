"""The final model as one plain transformers model: the adapter merged into the base weights.

The output folder holds ``config.json``, safetensors weights, the tokenizer and the generation
config, and loads with ``AutoModelForCausalLM.from_pretrained`` (so vLLM and lm-evaluation-harness
take it as a plain model, no PEFT needed). A 4-bit (QLoRA) base cannot take a merged adapter as it
is: its weights are first dequantized to the compute dtype (``base_model.dtype``), then the adapter is
merged; the export is then a model in that dtype whose base weights are the *dequantized 4-bit*
values the adapter was trained against, not the original checkpoint. ``export.json`` records this.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from .errors import UserError
from .provenance import provenance, write_json

log = logging.getLogger(__name__)

DTYPES = ("auto", "float32", "bfloat16", "float16")


def merged_model(base_dir: str | Path, adapter_dir: str | Path, *, base_cfg: dict[str, Any]):
    """(plain transformers model with the adapter merged in, tokenizer, notes on what was done)."""
    from peft import PeftModel

    from .modeling import load_base

    if not Path(adapter_dir, "adapter_config.json").is_file():
        raise UserError(f"--adapter {str(adapter_dir)!r} is not a PEFT adapter folder (no adapter_config.json)")
    quantization = base_cfg["quantization"]
    model, tok, manifest = load_base(base_dir, dtype=base_cfg["dtype"], quantization=quantization)
    notes: dict[str, Any] = {"base_quantization": quantization}
    if quantization != "none":
        from .modeling import device_and_dtype

        _, compute_dtype = device_and_dtype(base_cfg["dtype"], tiny=manifest["source"] == "tiny")
        # transformers' bitsandbytes dequantize(): every 4/8-bit Linear becomes a plain Linear holding the
        # dequantized weights in the compute dtype; the adapter was trained against exactly these values.
        model = model.dequantize(dtype=compute_dtype)
        notes["dequantized_to"] = str(compute_dtype)
        log.warning(
            "base model was loaded in %s: its weights were dequantized to %s before merging the adapter; the "
            "export holds the dequantized values, not the original checkpoint", quantization, notes["dequantized_to"],
        )  # fmt: skip
    peft_model = PeftModel.from_pretrained(model, str(adapter_dir))
    merged = peft_model.merge_and_unload()
    merged.config.use_cache = True
    return merged, tok, {**notes, "base_manifest": manifest}


def export_merged(
    base_dir: str | Path, adapter_dir: str | Path, out_dir: str | Path, *, base_cfg: dict[str, Any], dtype: str = "auto"
) -> Path:
    """Write the merged model, tokenizer and export.json to ``out_dir`` (via a temporary folder)."""
    import torch

    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
    model, tok, notes = merged_model(base_dir, adapter_dir, base_cfg=base_cfg)
    if dtype != "auto":
        model = model.to(getattr(torch, dtype))
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    out = Path(out_dir)
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    adapter_metrics = Path(adapter_dir, "metrics.json")
    write_json(
        tmp / "export.json",
        provenance(
            {"base_model": base_cfg, "dtype": dtype},
            adapter=str(adapter_dir),
            adapter_metrics=json.loads(adapter_metrics.read_text()) if adapter_metrics.is_file() else None,
            saved_dtype=str(next(model.parameters()).dtype),
            **notes,
        ),
    )
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    log.info("wrote %s (%s): load it with AutoModelForCausalLM.from_pretrained", out, next(model.parameters()).dtype)
    return out


# --- CLI: complementarity export --merged (rule export_merged in workflow/rules/export.smk) ----------


def register_arguments(parser) -> None:
    from .arguments import json_arg

    parser.add_argument("--merged", action="store_true", required=True, help="merge the adapter into the base weights")
    parser.add_argument("--base", required=True, help="base-model folder (from complementarity base_model)")
    parser.add_argument("--base-model", type=json_arg, required=True, help="JSON: config `base_model` section")
    parser.add_argument("--adapter", required=True, help="adapter folder (e.g. results/final)")
    parser.add_argument(
        "--dtype", choices=DTYPES, default="auto", help="saved weights' dtype (auto: the compute dtype)"
    )
    parser.add_argument("--out", required=True, help="output model folder")


def run(args) -> None:
    from .modeling import keep_unused_out

    keep_unused_out(args.base_model["quantization"])
    export_merged(args.base, args.adapter, args.out, base_cfg=args.base_model, dtype=args.dtype)
