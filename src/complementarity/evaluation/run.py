"""One evaluation job: a model (the base, or the base plus one adapter) on every domain's test set."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from ..modeling import load_base
from ..records import read_prepared
from .evaluate import evaluate

log = logging.getLogger(__name__)


def evaluate_model(
    base_dir: str | Path,
    adapter: str | Path | None,
    tests: dict[str, str | Path],
    evaluators: dict[str, str],
    *,
    base_cfg: dict[str, Any],
    settings: dict[str, Any],
    few_shot: dict[str, str | Path] | None = None,
) -> dict[str, Any]:
    """Evaluate on each domain's test file; returns {domain: evaluate() result}."""
    model, tok, _ = load_base(base_dir, dtype=base_cfg["dtype"], quantization=base_cfg["quantization"])
    if adapter:
        from peft import PeftModel

        from ..scoring import check_adapter

        check_adapter(adapter)
        model = PeftModel.from_pretrained(model, str(adapter))
        if base_cfg["quantization"] == "none":
            model = model.merge_and_unload()  # plain weights generate faster; same function
    model.eval()
    results: dict[str, Any] = {}
    for domain, path in tests.items():
        examples = read_prepared(path)
        if settings["test_limit"]:
            examples = examples[: settings["test_limit"]]
        shots = None
        evaluator, layout = evaluators[domain], settings["layout"]
        # MMLU: shots when num_fewshot asks for them; GSM8K in the harness layout: always (5, lm_eval's draw).
        gsm8k_harness = evaluator == "gsm8k" and layout == "harness"
        if few_shot and ((settings["num_fewshot"] and evaluator == "multiple_choice") or gsm8k_harness):
            shots = read_prepared(few_shot[domain])
        t0 = time.perf_counter()
        result = evaluate(
            model,
            tok,
            examples,
            evaluator,
            template=base_cfg["prompt_template"],
            batch_size=settings["batch_size"],
            max_new_tokens=settings["max_new_tokens"],
            few_shot=shots,
            num_fewshot=settings["num_fewshot"] if shots and not gsm8k_harness else None,
            mc_format=settings["mc_format"],
            sandbox_timeout=settings["sandbox_timeout"],
            layout=layout,
        )
        result["seconds"] = time.perf_counter() - t0
        log.info(
            "%s: %s %d/%d = %.3f (%.1fs)",
            domain,
            evaluators[domain],
            result["correct"],
            result["n"],
            result["score"],
            result["seconds"],
        )
        results[domain] = result
    return results
