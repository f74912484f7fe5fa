"""Task evaluation: exact match, GSM8K, MMLU (multiple choice) and MBPP (sandboxed execution).

* :func:`evaluate` scores a model on a list of examples with one evaluator kind (:data:`EVALUATORS`);
* :func:`score_predictions` / :func:`score_details` score given predictions, without a model;
* :func:`generate` is the greedy, batched generation the generation-based evaluators use;
* :func:`run_python` runs one program in the sandbox (:mod:`.sandbox` says what isolates it).

Nothing here imports torch at module level; the model-facing functions import it when called.
"""

from .evaluate import DEFAULT_STOP, LAYOUTS, MC_FORMATS, evaluate, predict_choices
from .generate import Generation, generate, generate_ids
from .sandbox import ISOLATION, Limits, Result, SandboxError, resolve_isolation, run_many, run_python
from .scorers import EVALUATORS, extract_code, mbpp_program, score_details, score_predictions

__all__ = [
    "DEFAULT_STOP",
    "EVALUATORS",
    "ISOLATION",
    "LAYOUTS",
    "MC_FORMATS",
    "Generation",
    "Limits",
    "Result",
    "SandboxError",
    "evaluate",
    "extract_code",
    "generate",
    "generate_ids",
    "mbpp_program",
    "predict_choices",
    "resolve_isolation",
    "run_many",
    "run_python",
    "score_details",
    "score_predictions",
]
