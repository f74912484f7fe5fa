"""Answer extraction and matching, one scorer per evaluator kind; no model needed.

* ``exact_match``: the whole generation against the whole reference, after :func:`normalize_text`
  (strip, collapse every run of whitespace to one space). **Case-sensitive**: in the synthetic
  domains case is part of the answer (``reverse: Ab`` is ``bA``), and a model that learned the
  format produces the reference's case.
* ``gsm8k``: final-answer extraction and exact match as in EleutherAI lm-evaluation-harness
  (``lm_eval/tasks/gsm8k/gsm8k.yaml``, task version 3.0, and ``RegexFilter`` in
  ``lm_eval/filters/extraction.py``): a *strict* filter (``#### <number>``, first match) and a
  *flexible* one (the last number-like string), then ``exact_match`` with ``ignore_case: true``,
  ``ignore_punctuation: false`` and ``regexes_to_ignore`` ``[",", "\\$", "(?s).*#### ", "\\.$"]``
  applied, in that order, to both the extracted answer and the reference (the full worked solution).
* ``multiple_choice`` (MMLU): the predicted option letter against ``meta["answer"]``. Predicting the
  letter from a model's log-likelihoods is in :mod:`complementarity.evaluation.evaluate`.
* ``mbpp``: in the ``project`` layout code is pulled out of the generation (:func:`~complementarity.tasks.extract_code`),
  followed by the task's ``test_setup_code`` and its ``test_list`` asserts; in the ``harness`` layout
  the raw continuation and the first three asserts, as HF ``code_eval`` runs them. Either program runs
  in the sandbox and passes only if it ran to its end (every assert executed); pass@1.

The task formats themselves (patterns, prompts, programs) live in :mod:`complementarity.tasks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..errors import UserError
from ..records import Example
from ..tasks import (
    GSM8K_FILTERS,
    LAYOUTS,
    MBPP_HARNESS_WALL,
    extract_code,
    gsm8k_match,
    gsm8k_normalize,
    mbpp_harness_program,
    mbpp_program,
)

# --------------------------------------------------------------------------------------------------
# exact_match
# --------------------------------------------------------------------------------------------------


def normalize_text(text: str) -> str:
    """Strip and collapse whitespace runs (spaces, tabs, newlines) to one space; case is kept."""
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> bool:
    """Whole-string match after :func:`normalize_text` (case-sensitive)."""
    return normalize_text(prediction) == normalize_text(reference)


# --------------------------------------------------------------------------------------------------
# multiple_choice (MMLU)
# --------------------------------------------------------------------------------------------------


def choice_match(prediction: str, ex: Example) -> bool:
    """The predicted letter (surrounding whitespace ignored) is the gold ``meta["answer"]``."""
    return prediction.strip() == _gold_letter(ex)


def _gold_letter(ex: Example) -> str:
    letter = ex.meta.get("answer")
    if not isinstance(letter, str) or not ex.meta.get("choices"):
        raise UserError(
            f"example {ex.id!r} has no meta 'answer'/'choices'; the multiple_choice evaluator needs MMLU "
            "records (load them with format: mmlu)"
        )
    return letter


# --------------------------------------------------------------------------------------------------
# Scoring lists of predictions
# --------------------------------------------------------------------------------------------------

EVALUATORS = ("exact_match", "gsm8k", "multiple_choice", "mbpp")
"""The evaluator kinds."""


def check_evaluator(evaluator: str) -> None:
    if evaluator not in EVALUATORS:
        raise UserError(f"unknown evaluator {evaluator!r}; use one of: {', '.join(EVALUATORS)}")


def score_details(
    evaluator: str,
    examples: Sequence[Example],
    predictions: Sequence[str],
    *,
    gsm8k_headline: str = "flexible",
    sandbox_timeout: float = 10.0,
    sandbox_workers: int = 2,
    isolation: str = "auto",
    layout: str = "project",
) -> list[dict[str, Any]]:
    """Score each prediction (model output text; an option letter for ``multiple_choice``).

    ``layout`` (:data:`~complementarity.tasks.LAYOUTS`) matters for ``mbpp`` only: ``project`` runs
    the extracted code (:func:`~complementarity.tasks.extract_code`), the setup code and every assert
    for ``sandbox_timeout`` seconds; ``harness`` runs the raw prediction and the first three asserts
    as HF ``code_eval`` does (:func:`~complementarity.tasks.mbpp_harness_program`) for
    :data:`~complementarity.tasks.MBPP_HARNESS_TIMEOUT` seconds. In both a program passes only if it
    ran to its end (:attr:`.sandbox.Result.completed`).

    Returns one record per example: ``{"id", "correct", "prediction", "reference"}``, plus for
    ``gsm8k`` ``strict``/``flexible`` (bools) and ``extracted_strict``/``extracted_flexible``
    (``correct`` is the ``gsm8k_headline`` filter's), and for ``mbpp`` ``code``, ``status``
    (``passed``/``failed``/``timeout``) and ``error``.
    """
    check_evaluator(evaluator)
    if len(examples) != len(predictions):
        raise ValueError(f"{len(examples)} examples but {len(predictions)} predictions; give one per example")
    if gsm8k_headline not in GSM8K_FILTERS:
        raise ValueError(f"gsm8k_headline must be one of {GSM8K_FILTERS}, got {gsm8k_headline!r}")
    if layout not in LAYOUTS:
        raise UserError(f"unknown evaluation layout {layout!r}; use one of: {', '.join(LAYOUTS)}")
    out: list[dict[str, Any]] = []
    if evaluator == "mbpp":
        from .sandbox import Limits, run_many

        if layout == "harness":
            codes = list(predictions)
            programs = [mbpp_harness_program(c, ex) for c, ex in zip(codes, examples, strict=True)]
            sandbox_timeout = MBPP_HARNESS_WALL  # the 3 s limit itself is timed inside, around exec
        else:
            codes = [extract_code(p) for p in predictions]
            programs = [mbpp_program(c, ex) for c, ex in zip(codes, examples, strict=True)]
        results = run_many(
            programs, limits=Limits(timeout=sandbox_timeout), isolation=isolation, workers=sandbox_workers
        )
        for ex, pred, code, res in zip(examples, predictions, codes, results, strict=True):
            out.append(
                {
                    "id": ex.id,
                    "correct": res.passed,
                    "prediction": pred,
                    "reference": ex.response,
                    "code": code,
                    "status": res.status,
                    "error": res.error,
                }
            )
        return out
    for ex, pred in zip(examples, predictions, strict=True):
        item: dict[str, Any] = {"id": ex.id, "prediction": pred}
        if evaluator == "exact_match":
            item.update(correct=exact_match(pred, ex.response), reference=ex.response)
        elif evaluator == "multiple_choice":
            item.update(correct=choice_match(pred, ex), reference=_gold_letter(ex))
        else:  # gsm8k
            for mode in GSM8K_FILTERS:
                ok, extracted = gsm8k_match(pred, ex.response, mode)
                item[mode] = ok
                item[f"extracted_{mode}"] = extracted
            item.update(correct=item[gsm8k_headline], reference=gsm8k_normalize(ex.response))
        out.append(item)
    return out


def score_predictions(
    evaluator: str,
    examples: Sequence[Example],
    predictions: Sequence[str],
    **options: Any,
) -> list[bool]:
    """Per-example correctness of ``predictions`` (see :func:`score_details` for the options)."""
    return [item["correct"] for item in score_details(evaluator, examples, predictions, **options)]
