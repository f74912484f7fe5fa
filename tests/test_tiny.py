"""The tiny base model's pre-training objective (``base_model.tiny.pretrain_loss``)."""

from __future__ import annotations

from conftest import TINY

from complementarity.records import read_prepared
from complementarity.tiny import build_tiny


def test_pretrain_loss_response_learns_the_answers_only(tmp_path, demo_prepared):
    """`all` puts the loss on every token, `response` on the answers: the first losses differ, both fall."""
    examples = read_prepared(demo_prepared / "arithmetic" / "train.jsonl")[:64]
    tiny = {**TINY, "pretrain_steps": 8, "pretrain_batch_size": 8}
    stats = {}
    for loss in ("all", "response"):
        stats[loss] = build_tiny(tmp_path / loss, examples, {**tiny, "pretrain_loss": loss}, max_seq_len=64)
    assert stats["all"]["pretrain_loss_first"] != stats["response"]["pretrain_loss_first"]
    for s in stats.values():
        assert s["pretrain_loss_last"] < s["pretrain_loss_first"]
