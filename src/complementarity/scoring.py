"""Validation loss: mean negative log-likelihood per response token, given the prompt.

L(V) = sum of -log p(response token | prompt, earlier response tokens) over every response token of
every example in V, divided by the number of those tokens (a token-weighted mean, so long responses
count in proportion to their length). The base model is loaded once per job; any number of adapters
are then scored on that one copy. The first adapter is attached with PEFT; every later one whose
adapter_config matches (same rank, alpha, target modules, …: the usual case, one config for all
shards) has its LoRA tensors copied into the attached adapter in place, which costs a file read and
a copy instead of PEFT's module injection and removal. Others are loaded and swapped the PEFT way.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from .modeling import Encoded, collate, encode_all, load_base
from .records import Example

log = logging.getLogger(__name__)


def length_batches(lengths: list[int], batch_size: int, max_padding: float = 0.1) -> list[list[int]]:
    """Indices in batches of similar length: sorted, at most ``batch_size`` each, and a new batch is
    started whenever adding the next (longer) sequence would make padding exceed ``max_padding`` of the
    batch's tokens. Every batch therefore has at most that much padding; long runs of similar lengths
    still fill whole batches."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    real = 0
    for i in order:
        width = lengths[i]  # ascending: the new item sets the batch width
        if current and (len(current) >= batch_size or 1 - (real + width) / ((len(current) + 1) * width) > max_padding):
            batches.append(current)
            current, real = [], 0
        current.append(i)
        real += width
    if current:
        batches.append(current)
    return batches


def nll_per_example(model, encoded: list[Encoded], *, pad_id: int, batch_size: int, max_padding: float = 0.1):
    """Summed NLL over each example's response tokens (float64 list), and (padded, real) token counts."""
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    sums = torch.zeros(len(encoded), dtype=torch.float64, device=device)
    padded = real = 0
    model.eval()
    with torch.inference_mode():
        for idx in length_batches([len(e.input_ids) for e in encoded], batch_size, max_padding):
            ids, mask, labels = (t.to(device) for t in collate([encoded[i] for i in idx], pad_id))
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            target = labels[:, 1:]
            loss = F.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
            sums[torch.tensor(idx, device=device)] = loss.sum(dim=1).double()
            padded += ids.numel()
            real += int(mask.sum())  # one host sync per batch, like the logits' transfer
    return sums.tolist(), padded, real


def nll(model, encoded: list[Encoded], *, pad_id: int, batch_size: int, max_padding: float = 0.1) -> dict[str, float]:
    """Sum and mean NLL over response tokens of one example set (see :func:`score_sets` for several)."""
    return score_sets(model, {"all": encoded}, pad_id=pad_id, batch_size=batch_size, max_padding=max_padding)["all"]


def score_sets(
    model, sets: dict[str, list[Encoded]], *, pad_id: int, batch_size: int, max_padding: float = 0.1
) -> dict[str, dict[str, float]]:
    """:func:`nll` of every set (domain), batching all their examples together, sorted by length: small
    validation sets share batches instead of each padding its own. ``padding_fraction`` is the pass's.
    ``example_nll_sums`` / ``example_response_tokens`` keep each example's summed NLL and token count."""
    flat = [e for enc in sets.values() for e in enc]
    sums, padded, real = nll_per_example(model, flat, pad_id=pad_id, batch_size=batch_size, max_padding=max_padding)
    out: dict[str, dict[str, float]] = {}
    start = 0
    for name, enc in sets.items():
        example_sums = sums[start : start + len(enc)]  # the sets' examples are consecutive in `flat`
        start += len(enc)
        example_tokens = [e.n_response_tokens for e in enc]
        total, n_tok = sum(example_sums), sum(example_tokens)
        out[name] = {
            "nll_sum": total,
            "response_tokens": n_tok,
            "examples": len(enc),
            "nll": total / n_tok if n_tok else float("nan"),
            "padding_fraction": 1 - real / padded if padded else 0.0,
            # Per example, in the validation file's order (the bootstrap of ``uncertainty.py`` resamples them).
            "example_nll_sums": example_sums,
            "example_response_tokens": example_tokens,
        }
    return out


def score(
    base_dir: str | Path,
    validation: dict[str, list[Example]],
    *,
    adapters: dict[str, str | Path] | None,
    base_cfg: dict[str, Any],
    max_seq_len: int,
    batch_size: int,
) -> dict[str, dict[str, dict[str, float]]]:
    """Score the base model (``adapters`` None) or each adapter on every domain's validation set.

    Returns {model name: {domain: {"nll", "response_tokens", …}}}; the base model is named ``base``.
    """
    model, tok, _ = load_base(base_dir, dtype=base_cfg["dtype"], quantization=base_cfg["quantization"])
    encoded = {
        d: encode_all(tok, exs, template=base_cfg["prompt_template"], max_seq_len=max_seq_len)
        for d, exs in validation.items()
    }
    results: dict[str, dict[str, dict[str, float]]] = {}
    if not adapters:
        results["base"] = score_sets(model, encoded, pad_id=tok.pad_token_id, batch_size=batch_size)
        return results
    from peft import PeftModel

    peft_model, active, active_config = None, None, None
    for name, path in adapters.items():
        t0 = time.perf_counter()
        check_adapter(path)
        config = adapter_config(path)
        if peft_model is None:
            peft_model = PeftModel.from_pretrained(model, str(path), adapter_name=name)
            active, active_config, how = name, config, "attached"
        elif config == active_config and copy_adapter_weights(peft_model, path, active):
            how = "weights copied"
        else:
            peft_model.load_adapter(str(path), adapter_name=name)
            peft_model.set_adapter(name)
            peft_model.delete_adapter(active)  # keeps memory flat over many adapters
            active, active_config, how = name, config, "loaded"
        results[name] = score_sets(peft_model, encoded, pad_id=tok.pad_token_id, batch_size=batch_size)
        log.info(
            "scored %s (%s) in %.2fs: %s",
            name,
            how,
            time.perf_counter() - t0,
            ", ".join(f"{d}={r['nll']:.4f}" for d, r in results[name].items()),
        )
    return results


# Keys of adapter_config.json that do not change the adapter's modules or its function.
_CONFIG_IGNORED = {"base_model_name_or_path", "revision", "inference_mode", "peft_version", "task_type"}


def check_adapter(path: str | Path) -> None:
    """Refuse an adapter folder that is incomplete or damaged (a DataError naming it and the fix).

    Reads every tensor (an adapter is small next to its base model), so a file cut short is caught here.
    """
    from safetensors.torch import load_file

    from .errors import DataError
    from .provenance import read_json

    read_json(Path(path) / "adapter_config.json")
    try:
        load_file(str(Path(path) / "adapter_model.safetensors"))
    except Exception as exc:  # safetensors raises its own error types for a truncated or garbled file
        raise DataError(
            f"adapter {path} cannot be read ({type(exc).__name__}: {str(exc).splitlines()[0][:200]}): it was cut "
            "short or damaged outside the workflow; delete the folder and rerun (Snakemake retrains it)"
        ) from None


def adapter_config(path: str | Path) -> dict[str, Any]:
    config = json.loads((Path(path) / "adapter_config.json").read_text())
    out = {k: v for k, v in config.items() if k not in _CONFIG_IGNORED}
    for key in ("target_modules", "modules_to_save", "exclude_modules"):  # sets, saved in any order
        if isinstance(out.get(key), list):
            out[key] = sorted(out[key])
    return out


def copy_adapter_weights(peft_model, path: str | Path, adapter_name: str) -> bool:
    """Copy a saved adapter's tensors into the attached adapter ``adapter_name``, in place.

    Only when the saved tensors are exactly the adapter's parameters (same names and shapes); returns
    False otherwise (the caller then loads it the PEFT way), so nothing is half-copied.
    """
    import torch
    from safetensors.torch import load_file

    file = Path(path) / "adapter_model.safetensors"
    if not file.is_file():
        return False
    saved = load_file(str(file))
    marker = f".{adapter_name}."
    params = {
        name.replace(marker, "."): p for name, p in peft_model.named_parameters() if marker in name and "lora_" in name
    }
    if set(saved) != set(params) or any(saved[k].shape != params[k].shape for k in saved):
        return False
    with torch.no_grad():
        for key, tensor in saved.items():
            params[key].copy_(tensor)
    return True


# --- CLI: complementarity scoring -------------------------------------------------------------------


def register_arguments(parser) -> None:
    from .arguments import json_arg, pair

    parser.add_argument("--base", required=True, help="base-model folder (from complementarity base_model)")
    parser.add_argument("--base-model", type=json_arg, required=True, help="JSON: config `base_model` section")
    parser.add_argument("--validation", type=pair, nargs="+", required=True, help="DOMAIN=FILE, one per domain")
    parser.add_argument("--adapter", type=pair, nargs="*", help="NAME=ADAPTER_DIR; none scores the base model")
    parser.add_argument("--max-seq-len", type=int, required=True, help="config finetune.max_seq_len (tokens)")
    parser.add_argument("--batch-size", type=int, required=True, help="config scoring.batch_size (sequences)")
    parser.add_argument("--out", required=True, help="output JSON")


def run(args) -> None:
    from .modeling import keep_unused_out
    from .provenance import provenance, write_json

    keep_unused_out(args.base_model["quantization"])
    from .records import read_prepared

    validation = {name: read_prepared(path) for name, path in args.validation}
    scores = score(
        args.base, validation, adapters=dict(args.adapter) if args.adapter else None, base_cfg=args.base_model,
        max_seq_len=args.max_seq_len, batch_size=args.batch_size,
    )  # fmt: skip
    # Domains keep the config's order (the table's columns follow it).
    prov = provenance({"base_model": args.base_model})
    write_json(args.out, {"scores": scores, "provenance": prov}, sort_keys=False)
