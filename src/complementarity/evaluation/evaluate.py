"""Task accuracy of a model on a list of examples, by evaluator kind.

``exact_match``, ``gsm8k`` and ``mbpp`` generate (greedy, :mod:`.generate`) and score the text
(:mod:`.scorers`); ``multiple_choice`` (MMLU) picks the option letter with the highest
log-likelihood. :func:`evaluate` is the entry point; :func:`~.scorers.score_predictions` scores
predictions without a model.

MMLU has two layouts (``mc_format``):

* ``template`` (default): the question is encoded as in training (:func:`~complementarity.modeling.encode_prompt`:
  chat template, or ``prompt + "\\n"``) and each option is the token(s) of the bare letter, exactly
  the response tokens a model fine-tuned on MMLU records learned. This measures the models the
  pipeline trains in their own format.
* ``harness``: lm-evaluation-harness 0.4.x's ``mmlu`` task (``_default_template_yaml``): raw text, no
  chat template, the tokenizer's own special tokens (a BOS token where the tokenizer adds one, as
  HFLM's ``tok_encode`` lets it), the options as written in the data (``meta["harness_prompt"]``), the
  header ``"The following are multiple choice questions (with answers) about {subject}.\\n\\n"``
  always, and the continuation ``" A"`` … ``" D"`` after ``"Answer:"``, split off the joint encoding
  as HFLM's ``_encode_pair`` does. An over-long context keeps its last ``window + 1 - len(option)``
  tokens, as HFLM's ``(context + continuation)[-(max_length + 1):][:-1]`` does (``template`` keeps
  ``window - len(option)``). Use it to compare with published numbers; the ``harness`` evaluation
  layout (``layout="harness"``) always uses it.

Few-shot (``few_shot``, MMLU only): for each question, the shots of the same ``meta["subject"]``
(the first ``num_fewshot`` of them, in the order given; the harness uses the dev split's first five)
are prepended in the standard layout: the header, then ``"{question}\\nA. …\\nAnswer: {letter}\\n\\n"``
per shot, then the question. In ``template`` format the header is written only when there are shots.

When every option is a single token (the usual case) one forward pass per question gives all four
log-probabilities at the last position; otherwise each option's full continuation log-likelihood is
summed over its tokens (one sequence per option).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ..errors import UserError
from ..modeling import encode_prompt, use_chat_template
from ..records import Example
from ..tasks import (
    GSM8K_FILTERS,
    GSM8K_STOP,
    HARNESS_MAX_GEN_TOKS,
    LAYOUTS,
    MBPP_HARNESS_STOP,
    MBPP_STOP,
    MMLU_LETTERS,
    gsm8k_harness_contexts,
    mbpp_harness_context,
    mmlu_context,
)
from .generate import generate, generate_ids
from .sandbox import SandboxError, resolve_isolation
from .scorers import check_evaluator, score_details

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_STOP", "HARNESS_STOP", "MC_FORMATS", "evaluate", "predict_choices"]

MC_FORMATS = ("template", "harness")
"""Layouts for ``multiple_choice`` (see the module docstring)."""

DEFAULT_STOP: dict[str, tuple[str, ...]] = {
    "exact_match": (),  # the model's end-of-sequence token ends the answer
    "gsm8k": GSM8K_STOP,  # the harness's gsm8k.yaml `until`
    "mbpp": MBPP_STOP,
}
"""Stop sequences per generation-based evaluator in the project layout (EOS always stops)."""

HARNESS_STOP: dict[str, tuple[str, ...]] = {"gsm8k": GSM8K_STOP, "mbpp": MBPP_HARNESS_STOP}
"""The harness layout's ``until`` per task (lm_eval also stops at EOS)."""


def evaluate(
    model,
    tokenizer,
    examples: Sequence[Example],
    evaluator: str,
    *,
    template: str = "auto",
    batch_size: int = 16,
    max_new_tokens: int = 256,
    few_shot: Sequence[Example] | None = None,
    num_fewshot: int | None = None,
    mc_format: str = "template",
    stop: Sequence[str] | None = None,
    gsm8k_headline: str = "flexible",
    sandbox_timeout: float = 10.0,
    sandbox_workers: int = 2,
    isolation: str = "auto",
    layout: str = "project",
) -> dict[str, Any]:
    """Score ``model`` on ``examples`` with ``evaluator`` (one of :data:`~.scorers.EVALUATORS`).

    ``layout`` (:data:`~complementarity.tasks.LAYOUTS`): ``project`` asks in the trained format; ``harness`` reproduces
    lm-evaluation-harness 0.4.x's task for ``gsm8k`` (5 shots drawn from ``few_shot``, the training
    split, with lm_eval's seed; raw text; :data:`HARNESS_STOP`; 256 new tokens), ``mbpp`` (its three
    fixed shots, stop ``[DONE]``, the raw continuation is the program, 3 s; 256 new tokens) and
    ``multiple_choice`` (``mc_format="harness"``, whatever ``mc_format`` says; shots from
    ``few_shot`` when ``num_fewshot`` is set, as before). ``exact_match`` has no harness task: both
    layouts are the project's. Settings the harness fixes (``template``, ``max_new_tokens``, ``stop``,
    ``sandbox_timeout``) are ignored there for those tasks.

    ``template``: ``auto``/``chat``/``plain``, as in training. ``max_new_tokens`` and ``stop`` (default
    :data:`DEFAULT_STOP`) apply to the generation-based evaluators. ``few_shot``/``num_fewshot``/
    ``mc_format`` apply to ``multiple_choice`` only. ``gsm8k_headline``: which GSM8K filter is
    ``score`` (``flexible`` by default: it scores the answer, not whether the model also learned the
    ``#### `` format; both are always reported). ``sandbox_*``/``isolation``: MBPP execution
    (:mod:`.sandbox`).

    Returns ``{"evaluator", "n", "correct", "score", "per_item": [{"id", "correct", "prediction",
    "reference", …}], "settings": {…}}`` plus, for ``gsm8k``, ``"strict"`` and ``"flexible"``
    (each ``{"correct", "score"}``) and ``"headline"``; for ``mbpp``, ``"timeouts"``; for
    ``multiple_choice``, ``"single_token_options"``. Per item, generation-based evaluators add
    ``finish`` (``eos``/``stop``/``length``) and ``n_tokens``; ``multiple_choice`` adds ``logprobs``
    ({letter: log-likelihood}); ``gsm8k`` and ``mbpp`` add what :func:`~.scorers.score_details` gives.
    """
    check_evaluator(evaluator)
    examples = list(examples)
    if not examples:
        raise UserError(f"evaluator {evaluator!r}: no examples to evaluate; check the test set")
    if gsm8k_headline not in GSM8K_FILTERS:
        raise UserError(f"gsm8k_headline must be one of {', '.join(GSM8K_FILTERS)}; got {gsm8k_headline!r}")
    if layout not in LAYOUTS:
        raise UserError(f"unknown evaluation layout {layout!r}; use one of: {', '.join(LAYOUTS)}")
    harness_gen = layout == "harness" and evaluator in HARNESS_STOP
    if evaluator == "gsm8k" and harness_gen:
        if num_fewshot is not None:
            raise UserError("the gsm8k harness layout always uses 5 shots; remove num_fewshot")
        if not few_shot:
            raise UserError(
                "the gsm8k harness layout draws 5 shots per question from the training split; pass it as few_shot"
            )
    elif evaluator != "multiple_choice" and (few_shot or num_fewshot):
        raise UserError(
            f"few-shot prompting is implemented for the multiple_choice evaluator (and gsm8k in the harness layout) "
            f"only, not {evaluator!r} in the {layout} layout; remove few_shot/num_fewshot"
        )
    if layout == "harness" and evaluator == "multiple_choice":
        mc_format = "harness"
    chat = use_chat_template(tokenizer, template)
    settings: dict[str, Any] = {"layout": layout, "template": "chat" if chat else "plain", "batch_size": batch_size}
    extras: dict[str, Any] = {}
    if evaluator == "mbpp":
        # Before generating: a machine that cannot run the sandbox should fail now, not after the GPU work.
        try:
            settings.update(sandbox_timeout=sandbox_timeout, isolation=resolve_isolation(isolation))
        except SandboxError as exc:
            raise UserError(f"mbpp evaluation cannot run generated code here: {exc}") from exc
    if evaluator == "multiple_choice":
        if mc_format not in MC_FORMATS:
            raise UserError(f"mc_format must be one of {', '.join(MC_FORMATS)}; got {mc_format!r}")
        predictions, logprobs, single = predict_choices(
            model,
            tokenizer,
            examples,
            chat=chat,
            few_shot=few_shot,
            num_fewshot=num_fewshot,
            mc_format=mc_format,
            batch_size=batch_size,
        )
        items = score_details(evaluator, examples, predictions)
        for item, lp in zip(items, logprobs, strict=True):
            item["logprobs"] = lp
        settings.update(mc_format=mc_format, num_fewshot=num_fewshot, few_shot=len(few_shot or []))
        if mc_format == "harness":
            settings["template"] = "none (harness layout)"
        extras["single_token_options"] = single
    elif harness_gen:
        stop, max_new_tokens = HARNESS_STOP[evaluator], HARNESS_MAX_GEN_TOKS
        if evaluator == "gsm8k":
            contexts = gsm8k_harness_contexts(examples, few_shot or [])
        else:
            contexts = [mbpp_harness_context(ex) for ex in examples]
        # HFLM's tok_batch_encode: the tokenizer's own special tokens (BOS where it adds one), no template.
        ids = [list(tokenizer(text)["input_ids"]) for text in contexts]
        gens = generate_ids(model, tokenizer, ids, max_new_tokens=max_new_tokens, stop=stop, batch_size=batch_size)
        settings["template"] = "none (harness layout)"
    else:
        stop = tuple(DEFAULT_STOP[evaluator] if stop is None else stop)
        gens = generate(
            model,
            tokenizer,
            [ex.prompt for ex in examples],
            template=template,
            max_new_tokens=max_new_tokens,
            stop=stop,
            batch_size=batch_size,
        )
    if evaluator != "multiple_choice":
        items = score_details(
            evaluator,
            examples,
            [g.text for g in gens],
            gsm8k_headline=gsm8k_headline,
            sandbox_timeout=sandbox_timeout,
            sandbox_workers=sandbox_workers,
            isolation=isolation,
            layout=layout,
        )
        for item, g in zip(items, gens, strict=True):
            item.update(finish=g.finish, n_tokens=g.n_tokens)
        settings.update(max_new_tokens=max_new_tokens, stop=list(stop))
        if evaluator == "gsm8k":
            for mode in GSM8K_FILTERS:
                n_ok = sum(item[mode] for item in items)
                extras[mode] = {"correct": n_ok, "score": n_ok / len(items)}
            extras["headline"] = gsm8k_headline
        if evaluator == "mbpp":
            extras["timeouts"] = sum(item["status"] == "timeout" for item in items)
    correct = sum(item["correct"] for item in items)
    result = {
        "evaluator": evaluator,
        "n": len(items),
        "correct": correct,
        "score": correct / len(items),
        **extras,
        "settings": settings,
        "per_item": items,
    }
    log.info("%s: %d/%d correct (%.4f)", evaluator, correct, len(items), result["score"])
    return result


# --------------------------------------------------------------------------------------------------
# multiple_choice
# --------------------------------------------------------------------------------------------------


def _shots_for(examples: Sequence[Example], few_shot: Sequence[Example] | None, k: int | None) -> list[list[Example]]:
    if not few_shot:
        if k:
            raise UserError(f"num_fewshot={k} but no few_shot examples were given; pass the dev split as few_shot")
        return [[] for _ in examples]
    by_subject: dict[str, list[Example]] = {}
    for s in few_shot:
        if "answer" not in s.meta or "subject" not in s.meta:
            raise UserError(f"few-shot example {s.id!r} is not an MMLU record (no meta 'answer'/'subject')")
        by_subject.setdefault(s.meta["subject"], []).append(s)
    out = []
    for ex in examples:
        subject = ex.meta.get("subject")
        pool = [s for s in by_subject.get(subject, []) if s.prompt != ex.prompt]
        if not pool:
            raise UserError(
                f"no few-shot examples for subject {subject!r} (question {ex.id!r}); few_shot has subjects "
                f"{', '.join(sorted(by_subject))}; add that subject's dev split"
            )
        if k is not None and len(pool) < k:
            raise UserError(f"num_fewshot={k} but subject {subject!r} has only {len(pool)} few-shot examples")
        out.append(pool[:k] if k is not None else pool)
    return out


def predict_choices(
    model,
    tokenizer,
    examples: Sequence[Example],
    *,
    chat: bool = False,
    few_shot: Sequence[Example] | None = None,
    num_fewshot: int | None = None,
    mc_format: str = "template",
    batch_size: int = 16,
    single_token_fast_path: bool = True,
) -> tuple[list[str], list[dict[str, float]], bool]:
    """The highest-likelihood letter per question, the log-likelihood of every letter, and whether the
    single-token fast path was used (``single_token_fast_path=False`` forces full continuations)."""
    for ex in examples:
        if not ex.meta.get("choices") or "answer" not in ex.meta:
            raise UserError(
                f"example {ex.id!r} has no meta 'choices'/'answer'; multiple_choice needs MMLU records (format: mmlu)"
            )
    shots = _shots_for(examples, few_shot, num_fewshot)
    contexts: list[list[int]] = []
    options: list[list[list[int]]] = []
    for ex, sh in zip(examples, shots, strict=True):
        if mc_format == "harness":
            text = mmlu_context(ex, sh, header=True, harness=True)
            ctx = _encode_harness(tokenizer, text)
            conts = [_encode_harness(tokenizer, text + " " + letter)[len(ctx) :] for letter in MMLU_LETTERS]
        else:
            ctx = encode_prompt(tokenizer, mmlu_context(ex, sh, header=bool(sh)), chat)
            conts = [_encode_raw(tokenizer, letter) for letter in MMLU_LETTERS]
        if any(not c for c in conts):
            raise UserError(f"question {ex.id!r}: an option letter encodes to no tokens with this tokenizer")
        contexts.append(ctx)
        options.append(conts)
    single = single_token_fast_path and all(len(c) == 1 for opts in options for c in opts)
    longest_option = max(len(c) for opts in options for c in opts)
    was_training = model.training
    model.eval()
    try:
        if single:
            # harness: HFLM feeds (context + continuation)[-(window + 1):][:-1], the whole window of context.
            contexts = _fit(model, contexts, 0 if mc_format == "harness" else 1)
            scores = _last_position_logprobs(model, contexts, options, tokenizer, batch_size)
        else:
            if mc_format == "harness":  # each option's own cut: window + 1 - len(option) context tokens
                _fit(model, contexts, longest_option - 1)  # the warning, once
                per_option = [
                    [_fit(model, [ctx], len(c) - 1, warn=False)[0] for c in opts]
                    for ctx, opts in zip(contexts, options, strict=True)
                ]
            else:
                per_option = [
                    [ctx] * len(opts) for ctx, opts in zip(_fit(model, contexts, longest_option), options, strict=True)
                ]
            scores = _continuation_logprobs(model, per_option, options, tokenizer, batch_size)
    finally:
        model.train(was_training)
    predictions = [MMLU_LETTERS[max(range(len(s)), key=s.__getitem__)] for s in scores]
    logprobs = [dict(zip(MMLU_LETTERS, s, strict=True)) for s in scores]
    return predictions, logprobs, single


def _encode_raw(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def _encode_harness(tokenizer, text: str) -> list[int]:
    """HFLM's ``tok_encode`` for causal models: the tokenizer's default special tokens (BOS if it adds one)."""
    return list(tokenizer(text)["input_ids"])


def _fit(model, contexts: list[list[int]], reserve: int, *, warn: bool = True) -> list[list[int]]:
    """Cut contexts from the left so context + ``reserve`` tokens fit the model's positions."""
    limit = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if not limit:
        return contexts
    keep = limit - reserve
    n_cut = sum(len(c) > keep for c in contexts)
    if n_cut and warn:
        log.warning(
            "%d of %d multiple-choice contexts exceed %d tokens (max_position_embeddings %d) and were cut from the left",
            n_cut,
            len(contexts),
            keep,
            limit,
        )
    return [c[-keep:] if len(c) > keep else c for c in contexts]


def _forward_logprobs(model, seqs: list[list[int]], pad_id: int):
    """Right-padded forward pass; log-softmax over the vocabulary at every position (float32)."""
    import torch

    device = next(model.parameters()).device
    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    return torch.log_softmax(logits.float(), dim=-1).cpu()


def _pad_id(tokenizer) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def _last_position_logprobs(model, contexts, options, tokenizer, batch_size: int) -> list[list[float]]:
    """One forward per question: log p(option token | context) read at the context's last position."""
    import torch

    order = sorted(range(len(contexts)), key=lambda i: len(contexts[i]))
    out: list[list[float] | None] = [None] * len(contexts)
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            lp = _forward_logprobs(model, [contexts[i] for i in rows], _pad_id(tokenizer))
            for r, i in enumerate(rows):
                last = lp[r, len(contexts[i]) - 1]
                out[i] = [float(last[opt[0]]) for opt in options[i]]
    return out  # type: ignore[return-value]


def _continuation_logprobs(model, contexts, options, tokenizer, batch_size: int) -> list[list[float]]:
    """Sum of log p(continuation tokens | context, earlier continuation tokens), one sequence per option
    (``contexts[i][j]``: option j's context of question i)."""
    import torch

    flat = [(i, j) for i in range(len(contexts)) for j in range(len(options[i]))]
    flat.sort(key=lambda ij: len(contexts[ij[0]][ij[1]]) + len(options[ij[0]][ij[1]]))
    out = [[0.0] * len(opts) for opts in options]
    with torch.inference_mode():
        for start in range(0, len(flat), batch_size):
            chunk = flat[start : start + batch_size]
            seqs = [contexts[i][j] + options[i][j] for i, j in chunk]
            lp = _forward_logprobs(model, seqs, _pad_id(tokenizer))
            for r, (i, j) in enumerate(chunk):
                n_ctx, cont = len(contexts[i][j]), options[i][j]
                # Token t of the continuation is predicted at position n_ctx - 1 + t.
                out[i][j] = float(sum(lp[r, n_ctx - 1 + t, tok] for t, tok in enumerate(cont)))
    return out
