"""Validation loss: mean negative log-likelihood per response token, given the prompt.

L(V) = sum of -log p(response token | prompt, earlier response tokens) over every response token of
every example in V, divided by the number of those tokens (a token-weighted mean, so long responses
count in proportion to their length). The base model is loaded once per job; any number of adapters
are then scored by loading, activating and deleting them in turn on that one copy.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from .modeling import Encoded, collate, encode_all, load_base
from .records import Example

log = logging.getLogger(__name__)


def nll(model, encoded: list[Encoded], *, pad_id: int, batch_size: int) -> dict[str, float]:
    """Sum and mean NLL over response tokens; batches sorted by length to limit padding."""
    import torch
    import torch.nn.functional as F

    device = next(model.parameters()).device
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i].input_ids))
    total = torch.zeros((), dtype=torch.float64, device=device)
    n_tok = 0
    padded = real = 0
    model.eval()
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            batch = [encoded[i] for i in order[start : start + batch_size]]
            ids, mask, labels = (t.to(device) for t in collate(batch, pad_id))
            logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
            target = labels[:, 1:]
            loss = F.cross_entropy(
                logits.reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100, reduction="sum"
            )
            total += loss.double()
            n_tok += sum(e.n_response_tokens for e in batch)
            padded += ids.numel()
            real += int(mask.sum())
    total_f = float(total)
    return {
        "nll_sum": total_f,
        "response_tokens": n_tok,
        "examples": len(encoded),
        "nll": total_f / n_tok if n_tok else float("nan"),
        "padding_fraction": 1 - real / padded if padded else 0.0,
    }


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
        results["base"] = {
            d: nll(model, enc, pad_id=tok.pad_token_id, batch_size=batch_size) for d, enc in encoded.items()
        }
        return results
    from peft import PeftModel

    peft_model, previous = None, None
    for name, path in adapters.items():
        t0 = time.perf_counter()
        if peft_model is None:
            peft_model = PeftModel.from_pretrained(model, str(path), adapter_name=name)
        else:
            peft_model.load_adapter(str(path), adapter_name=name)
        peft_model.set_adapter(name)
        if previous is not None:
            peft_model.delete_adapter(previous)  # keeps memory flat over many adapters
        previous = name
        results[name] = {
            d: nll(peft_model, enc, pad_id=tok.pad_token_id, batch_size=batch_size) for d, enc in encoded.items()
        }
        log.info(
            "scored %s in %.2fs: %s",
            name,
            time.perf_counter() - t0,
            ", ".join(f"{d}={r['nll']:.4f}" for d, r in results[name].items()),
        )
    return results
