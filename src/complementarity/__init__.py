"""Complementarity: pick the training data worth fine-tuning an LLM on.

The method (Siegelmann, TMLR 2025): fine-tune a base model on each of N candidate shards, score every
shard model on every domain's validation set by Complementarity, keep the k best shards and fine-tune
on their union. See README.md for the definition used here.
"""

__version__ = "0.1.0"
