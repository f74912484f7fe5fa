"""Greedy, batched generation with stop sequences, for the generation-based evaluators.

Prompts are encoded exactly as in training and scoring (:func:`complementarity.modeling.encode_prompt`:
the tokenizer's chat template when ``template`` resolves to chat, else ``prompt + "\\n"``), so a
fine-tuned model is asked in the format it learned. Batches are left-padded (a decoder-only model
continues from the last position of every row), and prompts are sorted by length so that a batch
holds similar lengths; the results come back in the input order. Greedy decoding makes the output of
a prompt independent of the batch it is in (checked by the tests, up to floating-point ties).

A row stops at the first of: an end-of-sequence token, a stop sequence in its decoded output (the
output is cut before it), or ``max_new_tokens`` new tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from ..modeling import encode_prompt, use_chat_template

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Generation:
    """One model output."""

    text: str
    """The decoded new tokens (special tokens skipped), cut before the first stop sequence."""
    n_tokens: int
    """New tokens generated (the stop sequence's tokens included, EOS and padding not)."""
    finish: str
    """Why it ended: ``eos``, ``stop`` (a stop sequence) or ``length`` (``max_new_tokens``)."""


def generate(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    template: str = "auto",
    max_new_tokens: int = 256,
    stop: Sequence[str] = (),
    batch_size: int = 16,
) -> list[Generation]:
    """Greedy completions of ``prompts`` (see the module docstring)."""
    chat = use_chat_template(tokenizer, template)
    ids = [encode_prompt(tokenizer, p, chat) for p in prompts]
    return generate_ids(model, tokenizer, ids, max_new_tokens=max_new_tokens, stop=stop, batch_size=batch_size)


def generate_ids(
    model,
    tokenizer,
    prompt_ids: Sequence[Sequence[int]],
    *,
    max_new_tokens: int = 256,
    stop: Sequence[str] = (),
    batch_size: int = 16,
) -> list[Generation]:
    """Greedy completions of already-encoded prompts (the core of :func:`generate`)."""
    import torch

    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if any(not s for s in stop):
        raise ValueError("stop sequences must be non-empty strings")
    if any(len(p) == 0 for p in prompt_ids):
        raise ValueError("every prompt must have at least one token")
    prompt_ids, max_new_tokens = _fit_context(model, [list(p) for p in prompt_ids], max_new_tokens)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    eos_ids = _eos_ids(model, tokenizer)
    device = next(model.parameters()).device
    order = sorted(range(len(prompt_ids)), key=lambda i: -len(prompt_ids[i]))
    out: list[Generation | None] = [None] * len(prompt_ids)
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = [prompt_ids[i] for i in rows]
            width = max(len(p) for p in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, p in enumerate(batch):
                ids[r, width - len(p) :] = torch.tensor(p, dtype=torch.long)
                mask[r, width - len(p) :] = 1
            ids, mask = ids.to(device), mask.to(device)
            new = _greedy(model, tokenizer, ids, mask, max_new_tokens, stop, pad_id, eos_ids)
            for r, i in enumerate(rows):
                out[i] = _finish(tokenizer, new[r], stop, eos_ids, pad_id)
    finally:
        model.train(was_training)
    return out  # type: ignore[return-value]


def _greedy(model, tokenizer, ids, mask, max_new_tokens: int, stop: Sequence[str], pad_id: int, eos_ids: list[int]):
    """HF ``generate`` with greedy decoding; returns the new token ids of each row (list of lists)."""
    import torch
    from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList

    prompt_len = ids.shape[1]

    class StopOnStrings(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            done = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)
            if not stop:
                return done
            for r in range(input_ids.shape[0]):
                text = tokenizer.decode(input_ids[r, prompt_len:], skip_special_tokens=True)
                done[r] = any(s in text for s in stop)
            return done

    config = GenerationConfig(
        do_sample=False,
        num_beams=1,
        max_new_tokens=max_new_tokens,
        pad_token_id=pad_id,
        eos_token_id=eos_ids,
        use_cache=True,
    )
    with torch.inference_mode():
        seqs = model.generate(
            input_ids=ids,
            attention_mask=mask,
            generation_config=config,
            stopping_criteria=StoppingCriteriaList([StopOnStrings()]),
        )
    return [row.tolist() for row in seqs[:, prompt_len:].cpu()]


def _finish(tokenizer, new: list[int], stop: Sequence[str], eos_ids: list[int], pad_id: int) -> Generation:
    """Trim a row's new tokens at EOS, decode, and cut at the first stop sequence."""
    finish = "length"
    for k, tok in enumerate(new):
        if tok in eos_ids:
            new, finish = new[:k], "eos"
            break
    else:
        # Rows that finished early (a stop sequence) are padded to the batch's length.
        while new and new[-1] == pad_id and pad_id not in eos_ids:
            new = new[:-1]
    text = tokenizer.decode(new, skip_special_tokens=True)
    cuts = [i for i in (text.find(s) for s in stop) if i >= 0]
    if cuts:
        text, finish = text[: min(cuts)], "stop"
    return Generation(text=text, n_tokens=len(new), finish=finish)


def _eos_ids(model, tokenizer) -> list[int]:
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = tokenizer.eos_token_id
    ids = eos if isinstance(eos, list) else [eos]
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return [i for i in ids if i is not None]


def _fit_context(model, prompt_ids: list[list[int]], max_new_tokens: int) -> tuple[list[list[int]], int]:
    """Fit prompt + new tokens into the model's positions (``max_position_embeddings``), with warnings.

    A budget of at least the whole context is lowered to half of it; prompts longer than what is left
    are cut from the left (as in training). Models with 32k positions are never touched in practice;
    the embedded tiny model (128 positions) is.
    """
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if not limit:
        return prompt_ids, max_new_tokens
    if max_new_tokens >= limit:
        log.warning(
            "max_new_tokens=%d does not fit the model's %d positions; generating at most %d new tokens",
            max_new_tokens,
            limit,
            limit // 2,
        )
        max_new_tokens = limit // 2
    keep = limit - max_new_tokens
    n_cut = sum(len(p) > keep for p in prompt_ids)
    if n_cut:
        log.warning(
            "%d of %d prompts are longer than %d tokens (max_position_embeddings %d - max_new_tokens %d) "
            "and were cut from the left",
            n_cut,
            len(prompt_ids),
            keep,
            limit,
            max_new_tokens,
        )
    return [p[-keep:] if len(p) > keep else p for p in prompt_ids], max_new_tokens
