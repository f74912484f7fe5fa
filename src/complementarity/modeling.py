"""Loading the base model and tokenizer, and turning examples into token ids.

One code path serves the embedded tiny model, a local model folder and a hub id: everything goes
through ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained``. The base-model
folder written by the ``build_base_model`` rule always holds ``base_model.json``, a manifest saying
where the weights are (that folder itself for the tiny model; a hub id or local path otherwise).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import UserError
from .records import Example

log = logging.getLogger(__name__)

MANIFEST = "base_model.json"
IGNORE_INDEX = -100


def device_and_dtype(dtype: str = "auto"):
    """Pick the device (CUDA when present) and the torch dtype for ``dtype``."""
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return device, torch.bfloat16
        return device, torch.float32
    if dtype in ("bfloat16", "float16") and device.type == "cpu":
        log.warning("dtype %s on CPU is slow and less precise; consider dtype: auto", dtype)
    return device, getattr(torch, dtype)


def looks_like_path(source: str) -> bool:
    """A local path rather than a hub id (``org/name``)."""
    return source.startswith((".", "/", "~")) or source.count("/") != 1 or Path(source).exists()


def write_manifest(out_dir: str | Path, base_cfg: dict[str, Any], weights: str) -> dict[str, Any]:
    """Record where the base weights are, with the settings that produced them."""
    manifest = {
        "source": base_cfg["source"],
        "weights": weights,
        "revision": base_cfg.get("revision"),
        "config": base_cfg,
    }
    Path(out_dir, MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(base_dir: str | Path) -> dict[str, Any]:
    path = Path(base_dir, MANIFEST)
    if not path.is_file():
        raise UserError(
            f"{str(path)!r} does not exist: --base must be a folder written by `complementarity build-base-model`"
        )
    manifest = json.loads(path.read_text())
    if manifest["weights"] == ".":
        manifest["weights"] = str(Path(base_dir))
    return manifest


def check_quantization(quantization: str) -> None:
    """Refuse what cannot work, before anything is loaded."""
    import torch

    if quantization == "4bit" and not torch.cuda.is_available():
        raise UserError(
            "base_model.quantization: 4bit (QLoRA) needs a CUDA GPU, and torch.cuda.is_available() is False "
            "here. Run this job on a GPU node, or set base_model.quantization: none (or 8bit)."
        )


def load_tokenizer(weights: str, revision: str | None = None):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(weights, revision=revision)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_base(
    base_dir: str | Path,
    *,
    dtype: str = "auto",
    quantization: str = "none",
    for_training: bool = False,
    gradient_checkpointing: bool = False,
):
    """Load the base model and tokenizer that ``base_dir``'s manifest points to."""
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    manifest = read_manifest(base_dir)
    weights, revision = manifest["weights"], manifest.get("revision")
    if looks_like_path(weights) and not Path(weights).expanduser().exists():
        raise UserError(
            f"base_model.source: local model folder {weights!r} does not exist; fix the path "
            "(or give a hub model id such as mistralai/Mistral-7B-Instruct-v0.2)"
        )
    check_quantization(quantization)
    device, torch_dtype = device_and_dtype(dtype)
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "revision": revision}
    if quantization == "4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype,
        )
    elif quantization == "8bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    if device.type == "cuda":
        kwargs["device_map"] = {"": 0}
    try:
        model = AutoModelForCausalLM.from_pretrained(weights, attn_implementation="sdpa", **kwargs)
    except OSError as exc:
        raise UserError(
            f"base_model.source: could not load {weights!r}: it is not a local model folder, and as a hub id "
            f"it could not be fetched ({exc}). Fix the path or id; on offline compute nodes fetch the model "
            "into the cache first."
        ) from exc
    if device.type != "cuda" and quantization == "none":
        model.to(device)
    if for_training and quantization != "none":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    elif for_training and gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    tok = load_tokenizer(weights, revision)
    log.info(
        "loaded base %s (%s, %s, quantization=%s) on %s: %.2fM parameters",
        manifest["source"],
        weights,
        torch_dtype,
        quantization,
        device,
        sum(p.numel() for p in model.parameters()) / 1e6,
    )
    return model, tok, manifest


@dataclass
class Encoded:
    """Token ids of one example; ``labels`` is -100 on prompt tokens (loss on the response only)."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def n_response_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def use_chat_template(tokenizer, template: str) -> bool:
    has = bool(getattr(tokenizer, "chat_template", None))
    if template == "chat" and not has:
        raise UserError("base_model.prompt_template: chat, but the tokenizer has no chat template; use plain or auto")
    return template == "chat" or (template == "auto" and has)


def encode_prompt(tokenizer, prompt: str, chat: bool) -> list[int]:
    if chat:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=False
        )
        return list(ids)
    return list(tokenizer(prompt + "\n", add_special_tokens=True)["input_ids"])


def encode_example(tokenizer, ex: Example, *, chat: bool, max_seq_len: int) -> Encoded:
    """prompt ids + response ids + EOS; the prompt is cut from the left when too long."""
    prompt_ids = encode_prompt(tokenizer, ex.prompt, chat)
    response_ids = [*list(tokenizer(ex.response, add_special_tokens=False)["input_ids"]), tokenizer.eos_token_id]
    truncated = False
    if len(prompt_ids) + len(response_ids) > max_seq_len:
        truncated = True
        response_ids = response_ids[: max_seq_len - 1]
        keep = max_seq_len - len(response_ids)
        prompt_ids = prompt_ids[-keep:]
    return Encoded(prompt_ids + response_ids, [IGNORE_INDEX] * len(prompt_ids) + response_ids, truncated)


def encode_all(tokenizer, examples: list[Example], *, template: str, max_seq_len: int) -> list[Encoded]:
    chat = use_chat_template(tokenizer, template)
    encoded = [encode_example(tokenizer, ex, chat=chat, max_seq_len=max_seq_len) for ex in examples]
    n_trunc = sum(e.truncated for e in encoded)
    if n_trunc:
        log.warning(
            "%d of %d examples exceed max_seq_len=%d tokens and were cut (prompt from the left); "
            "raise finetune.max_seq_len to keep them whole",
            n_trunc,
            len(encoded),
            max_seq_len,
        )
    return encoded


def collate(batch: list[Encoded], pad_id: int):
    """Right-pad a batch into tensors (input_ids, attention_mask, labels)."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return ids, mask, labels
