"""The trainer's loss: logits at response positions only give the same loss and gradients as full logits."""

from __future__ import annotations

import torch
from conftest import BASE_CFG, FINETUNE

from complementarity.finetune import lora_config, response_only_heads
from complementarity.modeling import collate, encode_all, load_base
from complementarity.records import read_prepared


def test_response_only_logits_match_the_full_logits_loss(tiny_base, demo_prepared):
    import torch.nn.functional as F
    from peft import get_peft_model

    model, tok, _ = load_base(tiny_base)
    peft_model = get_peft_model(model, lora_config({**FINETUNE, "lora_dropout": 0.0}))
    with torch.no_grad():  # non-zero LoRA B, so the adapter takes part
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.02)
    heads = response_only_heads(peft_model)
    assert heads is not None, "the tiny model is a Llama: the fast path must apply"
    examples = read_prepared(demo_prepared / "sort" / "train.jsonl")[:24]
    enc = encode_all(tok, examples, template=BASE_CFG["prompt_template"], max_seq_len=64)
    ids, mask, labels = collate(enc, tok.pad_token_id)
    target = labels[:, 1:]

    full = peft_model(input_ids=ids, attention_mask=mask).logits[:, :-1]
    loss_full = F.cross_entropy(full.reshape(-1, full.size(-1)), target.reshape(-1), ignore_index=-100, reduction="sum")
    loss_full.backward()
    grads_full = {n: p.grad.clone() for n, p in peft_model.named_parameters() if p.requires_grad}
    peft_model.zero_grad()

    decoder, lm_head = heads
    hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    keep = target != -100
    loss_fast = F.cross_entropy(lm_head(hidden[keep]), target[keep], reduction="sum")
    loss_fast.backward()
    assert int(keep.sum()) < keep.numel() / 2, "prompts and padding are most positions here"
    assert torch.allclose(loss_fast, loss_full, rtol=1e-5)
    for n, p in peft_model.named_parameters():
        if p.requires_grad:
            assert torch.allclose(p.grad, grads_full[n], rtol=1e-4, atol=1e-7), n
