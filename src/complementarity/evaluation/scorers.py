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
* ``mbpp``: code is pulled out of the generation (:func:`extract_code`), followed by the task's
  ``test_setup_code`` and its ``test_list`` asserts, and run in the sandbox; pass@1.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..errors import UserError
from ..records import Example

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
# gsm8k (lm-evaluation-harness, gsm8k.yaml v3.0)
# --------------------------------------------------------------------------------------------------

GSM8K_STRICT_PATTERN = r"#### (\-?[0-9\.\,]+)"
"""The harness's ``strict-match`` filter: the number after ``#### `` (first match)."""
GSM8K_FLEXIBLE_PATTERN = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"
"""The harness's ``flexible-extract`` filter (``group_select: -1``: the last match)."""
GSM8K_IGNORE = (",", r"\$", r"(?s).*#### ", r"\.$")
"""``regexes_to_ignore`` of the harness's ``exact_match``: removed from answer and reference alike."""
GSM8K_FALLBACK = "[invalid]"
"""What the harness's regex filter returns when nothing matches (never equal to a reference)."""
GSM8K_FILTERS = ("strict", "flexible")

_STRICT = re.compile(GSM8K_STRICT_PATTERN)
_FLEXIBLE = re.compile(GSM8K_FLEXIBLE_PATTERN)


def gsm8k_extract(text: str, mode: str) -> str:
    """The answer the harness's ``strict-match`` (first) or ``flexible-extract`` (last) filter finds.

    Mirrors ``RegexFilter.apply``: ``findall``; take match ``0`` (strict) or ``-1`` (flexible); of a
    tuple of groups take the first non-empty one; ``strip()``; :data:`GSM8K_FALLBACK` when none.
    """
    if mode == "strict":
        pattern, select = _STRICT, 0
    elif mode == "flexible":
        pattern, select = _FLEXIBLE, -1
    else:
        raise ValueError(f"unknown gsm8k filter {mode!r}; use one of: {', '.join(GSM8K_FILTERS)}")
    matches = pattern.findall(text)
    if not matches:
        return GSM8K_FALLBACK
    match = matches[select]
    if isinstance(match, tuple):
        match = next(m for m in match if m)
    return match.strip()


def gsm8k_normalize(text: str) -> str:
    """The harness's ``exact_match`` preprocessing: drop :data:`GSM8K_IGNORE` in order, then lowercase."""
    for pattern in GSM8K_IGNORE:
        text = re.sub(pattern, "", text)
    return text.lower()


def gsm8k_match(prediction: str, reference: str, mode: str) -> tuple[bool, str]:
    """(correct, extracted answer) for a generation against a reference (full solution or final answer)."""
    extracted = gsm8k_extract(prediction, mode)
    return gsm8k_normalize(extracted) == gsm8k_normalize(reference), extracted


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
# mbpp
# --------------------------------------------------------------------------------------------------

MBPP_STOP = ("\n[DONE]", "[DONE]", "\nassert", '\n"""', "\nif __name__", "\nprint(")
"""Stop sequences for MBPP generation: what typically follows a finished solution."""

_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)(?:\n?```|\Z)", re.DOTALL)


def extract_code(generation: str) -> str:
    """The program in a generation.

    The first markdown-fenced block when there is one (an unclosed fence runs to the end); otherwise
    the text up to the first :data:`MBPP_STOP` sequence. A leading ``[BEGIN]`` marker (the harness's
    MBPP prompt ends with one) is dropped.
    """
    text = generation.replace("\r\n", "\n")
    fenced = _FENCE.search(text)
    if fenced:
        text = fenced.group(1)
    else:
        cut = min((i for i in (text.find(s) for s in MBPP_STOP) if i >= 0), default=len(text))
        text = text[:cut]
    text = text.strip("\n")
    if text.lstrip().startswith("[BEGIN]"):
        text = text.lstrip()[len("[BEGIN]") :].lstrip("\n")
    return text


def mbpp_program(code: str, ex: Example, *, challenge: bool = False) -> str:
    """The program that checks ``code`` on ``ex``: the code, the setup code, then the test asserts.

    The setup code follows the solution because it uses the solution's definitions (tasks 367 and
    927 build trees of the solution's ``Node`` class). ``challenge`` adds ``challenge_test_list``.
    """
    tests = ex.meta.get("test_list")
    if not isinstance(tests, list) or not tests:
        raise UserError(
            f"example {ex.id!r} has no meta 'test_list'; the mbpp evaluator needs MBPP records (format: mbpp)"
        )
    if challenge:
        tests = [*tests, *ex.meta.get("challenge_test_list", [])]
    setup = ex.meta.get("test_setup_code", "") or ""
    parts = [code.replace("\r\n", "\n"), setup.replace("\r\n", "\n"), *tests]
    return "\n".join(p for p in parts if p.strip()) + "\n"


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
) -> list[dict[str, Any]]:
    """Score each prediction (model output text; an option letter for ``multiple_choice``).

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
    out: list[dict[str, Any]] = []
    if evaluator == "mbpp":
        from .sandbox import Limits, run_many

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
