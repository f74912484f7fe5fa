"""Typed settings of the stages whose config slice goes to a job, built from the validated config.

The schema (schemas/config.schema.yaml) is the one place defaults live: these classes have none, and
``from_config`` reads a config that :func:`complementarity.config.validate_config` has filled in.
Each class names, once, the keys a job's result does NOT depend on (``RUNTIME``): rules pass
:meth:`result_json` as ``params``, so changing a runtime-only key (``finetune.checkpoint_every``)
reruns nothing, while any other key reruns exactly the jobs that use it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar

from .errors import UserError


@dataclass(frozen=True)
class _Section:
    SECTION: ClassVar[str]
    RUNTIME: ClassVar[tuple[str, ...]] = ()  # keys that change how a job runs, never what it writes

    @classmethod
    def from_config(cls, config: dict[str, Any], **overrides: Any):
        """The section of a validated config (defaults filled in), with ``overrides`` applied."""
        section = {**config[cls.SECTION], **overrides}
        return cls(**{f.name: section[f.name] for f in fields(cls)})

    @classmethod
    def from_dict(cls, values: dict[str, Any]):
        """From a complete section (every key, none unknown), e.g. the JSON a rule passed."""
        names = [f.name for f in fields(cls)]
        missing = [k for k in names if k not in values]
        unknown = sorted(set(values) - set(names))
        if missing or unknown:
            raise UserError(
                f"{cls.SECTION} settings: missing key(s) {missing}, unknown key(s) {unknown}; "
                f"give exactly the keys of config `{cls.SECTION}` ({', '.join(names)})"
            )
        return cls(**values)

    @classmethod
    def result_keys(cls) -> list[str]:
        return [f.name for f in fields(cls) if f.name not in cls.RUNTIME]

    def result(self) -> dict[str, Any]:
        """The keys the job's output depends on."""
        return {k: v for k, v in asdict(self).items() if k not in self.RUNTIME}

    def result_json(self) -> str:
        """:meth:`result` as a stable JSON string, for a rule's ``params`` (compared between runs)."""
        return json.dumps(self.result(), sort_keys=True)


@dataclass(frozen=True)
class FinetuneSettings(_Section):
    """config ``finetune``: LoRA fine-tuning (the schema documents each key and its units)."""

    SECTION: ClassVar[str] = "finetune"
    # Checkpoint cadence and retention: a resumed or uninterrupted run learns the same adapter; the
    # training logs (report_to) only watch it.
    RUNTIME: ClassVar[tuple[str, ...]] = ("checkpoint_every", "keep_checkpoints", "report_to")

    lora_r: int
    lora_alpha: float
    lora_dropout: float
    target_modules: str | list[str]
    learning_rate: float
    weight_decay: float
    warmup_ratio: float
    epochs: float
    max_steps: int | None
    batch_size: int
    grad_accum: int
    max_seq_len: int
    max_grad_norm: float
    gradient_checkpointing: bool
    truncation: str
    checkpoint_every: int
    keep_checkpoints: bool
    report_to: str
    seed: int


@dataclass(frozen=True)
class ScoringSettings(_Section):
    """config ``scoring``: validation-loss scoring."""

    SECTION: ClassVar[str] = "scoring"
    RUNTIME: ClassVar[tuple[str, ...]] = ("group_size",)  # how adapters are grouped into jobs

    batch_size: int
    group_size: int


@dataclass(frozen=True)
class EvaluationSettings(_Section):
    """config ``evaluation``: which models are evaluated, how, and how the report summarizes them."""

    SECTION: ClassVar[str] = "evaluation"
    # Keys that plan which models are evaluated or how the report summarizes them: one model's
    # evaluation does not depend on them.
    RUNTIME: ClassVar[tuple[str, ...]] = (
        "enabled",
        "all_data",
        "random_k_seeds",
        "final_methods",
        "shard_models",
        "group_size",
        "confidence",
        "bootstrap_resamples",
    )

    enabled: bool
    all_data: bool
    random_k_seeds: list[int]
    final_methods: list[str]
    shard_models: bool
    group_size: int
    test_limit: int | None
    batch_size: int
    max_new_tokens: int
    num_fewshot: int
    mc_format: str
    sandbox_timeout: float
    layout: str
    confidence: float
    bootstrap_resamples: int


SETTINGS = (FinetuneSettings, ScoringSettings, EvaluationSettings)
