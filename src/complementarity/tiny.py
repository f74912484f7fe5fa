"""The embedded tiny base model: a byte-level BPE tokenizer and a few-million-parameter Llama.

Built locally from the pipeline's own training text, so the default run needs no network. The model
is briefly pre-trained (full parameters, loss on every token) so that the shard LoRA fine-tunes start
from a model that already knows the text format, as a real base model would.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from .records import Example

log = logging.getLogger(__name__)

SPECIALS = ["<pad>", "<s>", "</s>", "<unk>"]


def train_tokenizer(texts: list[str], vocab_size: int):
    """Byte-level BPE with digits split one by one (so numbers tokenize uniformly)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE(unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    bos = tok.token_to_id("<s>")
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>", unk_token="<unk>"
    )


def build_tiny(
    out_dir: str | Path, examples: list[Example], tiny: dict[str, Any], *, max_seq_len: int = 256
) -> dict[str, Any]:
    """Train the tokenizer, build the model, pre-train it on ``examples``, save both to ``out_dir``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from .modeling import collate, encode_all, length_grouped_batches, set_seed

    if not examples:
        raise ValueError("the tiny model needs pre-training text, and none was given")
    set_seed(tiny["seed"])
    t0 = time.perf_counter()
    texts = [f"{ex.prompt}\n{ex.response}" for ex in examples]
    tokenizer = train_tokenizer(texts, tiny["vocab_size"])
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=tiny["hidden_size"],
        intermediate_size=tiny["intermediate_size"],
        num_hidden_layers=tiny["num_layers"],
        num_attention_heads=tiny["num_heads"],
        num_key_value_heads=tiny["num_heads"],
        max_position_embeddings=tiny["max_position_embeddings"],
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    n_params = sum(p.numel() for p in model.parameters())
    log.info("tiny Llama: %.2fM parameters, vocab %d", n_params / 1e6, len(tokenizer))

    # Pre-training: loss on every token (prompt and response), the format a base model would know.
    encoded = encode_all(
        tokenizer, examples, template="plain", max_seq_len=min(max_seq_len, cfg.max_position_embeddings)
    )
    for e in encoded:
        e.labels = list(e.input_ids)
    steps = tiny["pretrain_steps"]
    losses: list[float] = []
    if steps:
        opt = torch.optim.AdamW(model.parameters(), lr=tiny["pretrain_learning_rate"], weight_decay=0.01)
        warmup = max(1, steps // 10)
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
        )
        model.train()
        step = 0
        epoch = 0
        while step < steps:
            for batch in length_grouped_batches(encoded, tiny["pretrain_batch_size"], seed=tiny["seed"] + epoch):
                ids, mask, labels = collate(batch, tokenizer.pad_token_id)
                loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                opt.zero_grad(set_to_none=True)
                losses.append(loss.item())
                step += 1
                if step % 50 == 0 or step == steps:
                    log.info("pretrain step %d/%d loss %.3f", step, steps, losses[-1])
                if step >= steps:
                    break
            epoch += 1
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return {
        "parameters": n_params,
        "vocab_size": len(tokenizer),
        "pretrain_steps": steps,
        "pretrain_examples": len(examples),
        "pretrain_loss_first": losses[0] if losses else None,
        "pretrain_loss_last": sum(losses[-10:]) / len(losses[-10:]) if losses else None,
        "seconds": time.perf_counter() - t0,
    }
