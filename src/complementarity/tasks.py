"""Task formats: how GSM8K, MBPP and MMLU records look, are prompted and are scored, in one place.

Data loading (:mod:`complementarity.sources`: the converters below turn raw records into
:class:`~complementarity.records.Example`) and evaluation (:mod:`complementarity.evaluation`: prompts,
stop sequences, answer extraction, test programs) both import from here, so a task's format is
written once.

Two **evaluation layouts** (:data:`LAYOUTS`):

* ``project``: the models this pipeline trains are asked in the format they learned (the
  prompt of the record, encoded as in training), answers are extracted leniently (MBPP code from
  a fenced block or up to a stop sequence, :data:`MBPP_STOP`);
* ``harness``: lm-evaluation-harness 0.4.x's ``gsm8k``, ``mbpp`` and ``mmlu`` tasks exactly:
  their prompt text (kept per record at load time in ``meta["harness_prompt"]``, from the raw
  fields, options as written), few-shot examples and delimiters, stop sequences, extraction, the
  3 s MBPP timeout and the tokenizer's own special tokens (BOS where it adds one). Use it to compare
  with published harness numbers; ``tests/test_harness_parity.py`` checks it against lm_eval's code.

What differs between them is listed in README (Evaluation).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .errors import DataError, UserError
from .records import Example

LAYOUTS = ("project", "harness")
"""Evaluation layouts (see the module docstring)."""

HARNESS_MAX_GEN_TOKS = 256
"""lm_eval's ``HFLM.max_gen_toks``: the generation budget of every generate_until task in the harness layout."""

# --------------------------------------------------------------------------------------------------
# MMLU
# --------------------------------------------------------------------------------------------------

MMLU_LETTERS = ("A", "B", "C", "D")
"""Option letters, in order (``doc_to_choice`` of the harness's mmlu task)."""
MMLU_SPLIT_SUFFIXES = ("_test", "_val", "_dev")
"""File-name suffixes of the original MMLU CSVs (``anatomy_test.csv``): the subject is what is left."""
MMLU_HEADER = "The following are multiple choice questions (with answers) about {subject}.\n\n"
"""The harness's mmlu ``description`` (subject with ``_`` as spaces)."""


def mmlu_harness_doc(question: str, choices: Sequence[str]) -> str:
    """The harness's mmlu ``doc_to_text``: the question stripped, the options exactly as written."""
    options = "".join(f"\n{k}. {v}" for k, v in zip(MMLU_LETTERS, choices, strict=True))
    return question.strip() + options + "\nAnswer:"


def mmlu_context(ex: Example, shots: Sequence[Example], *, header: bool, harness: bool = False) -> str:
    """The text before the answer: optional header, the shots (``… Answer: X``), then the question.

    ``harness``: the records' ``meta["harness_prompt"]`` (options as written) instead of their prompts.
    """
    text_of = _harness_text if harness else (lambda e: e.prompt)
    text = "".join(f"{text_of(s)} {s.meta['answer']}\n\n" for s in shots) + text_of(ex)
    if header:
        subject = str(ex.meta.get("subject", "")).replace("_", " ")
        text = MMLU_HEADER.format(subject=subject) + text
    return text


def _harness_text(ex: Example) -> str:
    text = ex.meta.get("harness_prompt")
    if not isinstance(text, str):
        raise UserError(
            f"example {ex.id!r} has no meta 'harness_prompt' (prepared before the harness layout existed, or "
            "not a gsm8k/mbpp/mmlu record); prepare the data again to evaluate with evaluation.layout: harness"
        )
    return text


# --------------------------------------------------------------------------------------------------
# GSM8K (lm-evaluation-harness gsm8k.yaml, task version 3.0)
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
GSM8K_STOP = ("Question:", "</s>", "<|im_end|>")
"""The harness's gsm8k ``until`` (used in both layouts)."""
GSM8K_HARNESS_FEWSHOT = 5
"""The harness's gsm8k ``num_fewshot``: shots drawn from the training split."""
GSM8K_HARNESS_SEED = 1234
"""lm_eval's default ``fewshot_random_seed``: one ``random.Random`` drawing every question's shots in turn."""

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


def gsm8k_harness_doc(question: str) -> str:
    """The harness's gsm8k ``doc_to_text`` (the question as written)."""
    return f"Question: {question}\nAnswer:"


def gsm8k_harness_contexts(
    examples: Sequence[Example],
    pool: Sequence[Example],
    *,
    num_fewshot: int = GSM8K_HARNESS_FEWSHOT,
    seed: int = GSM8K_HARNESS_SEED,
) -> list[str]:
    """Every question's few-shot context as lm_eval builds it: shots ``rnd.sample(pool, k)`` in question
    order from one ``random.Random(seed)``, each ``"Question: …\nAnswer: <full solution>\n\n"``.

    The shots equal the harness's when ``pool`` is the whole GSM8K train split in file order and
    ``examples`` the test split from its start.
    """
    if num_fewshot and len(pool) < num_fewshot:
        raise UserError(
            f"the gsm8k harness layout draws {num_fewshot} shots per question from the training data, which has "
            f"{len(pool)} records; give the domain a training split (the GSM8K train set)"
        )
    rnd = random.Random(seed)
    out = []
    for ex in examples:
        shots = rnd.sample(list(pool), num_fewshot) if num_fewshot else []
        text = "".join(f"{_harness_text(s)} {s.meta.get('harness_target', s.response)}\n\n" for s in shots)
        out.append(text + _harness_text(ex))
    return out


# --------------------------------------------------------------------------------------------------
# MBPP
# --------------------------------------------------------------------------------------------------

MBPP_SPLITS: dict[str, tuple[int, int]] = {
    "prompt": (1, 10),
    "test": (11, 510),
    "validation": (511, 600),
    "train": (601, 974),
}
"""The standard MBPP splits by task id (inclusive ranges), from the upstream README."""

MBPP_PROMPT = (
    "You are an expert Python programmer, and here is your task: {text} Your code should pass these tests:\n\n"
)
"""The MBPP prompt template (the test asserts follow, one per line)."""

MBPP_STOP = ("\n[DONE]", "[DONE]", "\nassert", '\n"""', "\nif __name__", "\nprint(")
"""Project layout: stop sequences for MBPP generation (what typically follows a finished solution)."""

MBPP_HARNESS_STOP = ("[DONE]",)
"""The harness's mbpp ``until``."""
MBPP_HARNESS_TIMEOUT = 3.0
"""Seconds a program may run in HF ``code_eval`` (``compute(..., timeout=3.0)``, the default lm_eval keeps),
timed in-process around ``exec`` as there (:func:`mbpp_harness_program`)."""
MBPP_HARNESS_WALL = MBPP_HARNESS_TIMEOUT + 2.0
"""The sandbox's wall clock for a harness-layout program: ``code_eval`` kills its process ``timeout + 1``
seconds after start; one more second here covers the sandbox's own start-up."""
MBPP_HARNESS_SHOTS: tuple[dict[str, Any], ...] = (
    {
        "task_id": 2,
        "text": "Write a function to find the similar elements from the given two tuple lists.",
        "code": "def similar_elements(test_tup1, test_tup2):\r\n  res = tuple(set(test_tup1) & set(test_tup2))\r\n  return (res) ",
        "test_list": [
            "assert similar_elements((3, 4, 5, 6),(5, 7, 4, 10)) == (4, 5)",
            "assert similar_elements((1, 2, 3, 4),(5, 4, 3, 7)) == (3, 4)",
            "assert similar_elements((11, 12, 14, 13),(17, 15, 14, 13)) == (13, 14)",
        ],
    },
    {
        "task_id": 3,
        "text": "Write a python function to identify non-prime numbers.",
        "code": "import math\r\ndef is_not_prime(n):\r\n    result = False\r\n    for i in range(2,int(math.sqrt(n)) + 1):\r\n        if n % i == 0:\r\n            result = True\r\n    return result",
        "test_list": [
            "assert is_not_prime(2) == False",
            "assert is_not_prime(10) == True",
            "assert is_not_prime(35) == True",
        ],
    },
    {
        "task_id": 4,
        "text": "Write a function to find the largest integers from a given list of numbers using heap queue algorithm.",
        "code": "import heapq as hq\r\ndef heap_queue_largest(nums,n):\r\n  largest_nums = hq.nlargest(n, nums)\r\n  return largest_nums",
        "test_list": [
            "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],3)==[85, 75, 65] ",
            "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],2)==[85, 75] ",
            "assert heap_queue_largest( [25, 35, 22, 85, 14, 65, 75, 22, 58],5)==[85, 75, 65, 58, 35]",
        ],
    },
)
"""The harness's three fixed MBPP shots (``utils.list_fewshot_samples``: task ids 2, 3, 4, code as in
the dataset, ``\r\n`` included)."""

_FENCE = re.compile(r"```[ \t]*[\w+-]*[ \t]*\n(.*?)(?:\n?```|\Z)", re.DOTALL)


def extract_code(generation: str) -> str:
    """Project layout: the program in a generation.

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
    """Project layout: the program that checks ``code`` on ``ex``: the code, the setup code, the asserts.

    The setup code follows the solution because it uses the solution's definitions (tasks 367 and
    927 build trees of the solution's ``Node`` class). ``challenge`` adds ``challenge_test_list``.
    """
    tests = _mbpp_tests(ex)
    if challenge:
        tests = [*tests, *ex.meta.get("challenge_test_list", [])]
    setup = ex.meta.get("test_setup_code", "") or ""
    parts = [code.replace("\r\n", "\n"), setup.replace("\r\n", "\n"), *tests]
    return "\n".join(p for p in parts if p.strip()) + "\n"


def _mbpp_tests(ex: Example) -> list[str]:
    tests = ex.meta.get("test_list")
    if not isinstance(tests, list) or not tests:
        raise UserError(
            f"example {ex.id!r} has no meta 'test_list'; the mbpp evaluator needs MBPP records (format: mbpp)"
        )
    return tests


def _three(tests: Sequence[str]) -> list[str]:
    """``test_list[0]``, ``[1]``, ``[2]`` as the harness's Jinja templates render them (missing: empty)."""
    return [*tests[:3], *[""] * (3 - len(tests[:3]))]


def mbpp_harness_doc(text: str, tests: Sequence[str]) -> str:
    """The harness's mbpp ``doc_to_text`` (the task text as written, the first three asserts, ``[BEGIN]``)."""
    t = _three(tests)
    return MBPP_PROMPT.format(text=text) + f"{t[0]}\n{t[1]}\n{t[2]}\n[BEGIN]\n"


def mbpp_harness_context(ex: Example) -> str:
    """The whole harness prompt: the three fixed shots (``doc + code + "\n[DONE]"``, joined by a blank
    line), then the question."""
    shots = "".join(
        mbpp_harness_doc(s["text"], s["test_list"]) + s["code"] + "\n[DONE]" + "\n\n" for s in MBPP_HARNESS_SHOTS
    )
    return shots + _harness_text(ex)


def mbpp_harness_reference(ex: Example) -> str:
    """The harness's mbpp ``doc_to_target`` of a test question: its first three asserts, one per line."""
    t = _three(_mbpp_tests(ex))
    return f"{t[0]}\n{t[1]}\n{t[2]}"


def mbpp_harness_program(completion: str, ex: Example) -> str:
    """The program HF ``code_eval`` checks, ``completion + "\\n" + reference``, run as ``code_eval`` runs it.

    The raw continuation is the program (no extraction, no setup code, no challenge tests). The
    returned text reproduces ``code_eval``'s ``unsafe_execute`` around it (:data:`_CODE_EVAL_RUNNER`):
    its ``reliability_guard`` (``exit``/``quit``/``os.kill``/``os.remove``/``subprocess.Popen``/… set
    to ``None``), input and output swallowed (reading raises ``OSError``), ``exec(program, {})`` (so
    ``__name__`` is ``"builtins"``: an ``if __name__ == "__main__":`` block does not run) under a
    :data:`MBPP_HARNESS_TIMEOUT`-second ``ITIMER_REAL`` alarm. Any exception fails; the sandbox's
    completion marker then also requires that nothing exited before the end.
    """
    program = completion + "\n" + mbpp_harness_reference(ex)
    return _CODE_EVAL_RUNNER.replace("__PROGRAM__", repr(program)).replace("__TIMEOUT__", repr(MBPP_HARNESS_TIMEOUT))


_CODE_EVAL_RUNNER = """\
# HF evaluate's metrics/code_eval/execute.py (Apache-2.0): unsafe_execute, as lm_eval's mbpp runs it.
import builtins, contextlib, faulthandler, io, os, shutil, signal, subprocess, sys


class TimeoutException(Exception):
    pass


class WriteOnlyStringIO(io.StringIO):
    def read(self, *args, **kwargs):
        raise OSError

    def readline(self, *args, **kwargs):
        raise OSError

    def readlines(self, *args, **kwargs):
        raise OSError

    def readable(self, *args, **kwargs):
        return False


class redirect_stdin(contextlib._RedirectStream):
    _stream = "stdin"


def _on_alarm(signum, frame):
    raise TimeoutException("Timed out!")


faulthandler.disable()
builtins.exit = None
builtins.quit = None
os.environ["OMP_NUM_THREADS"] = "1"
for _name in ("kill", "system", "putenv", "remove", "removedirs", "rmdir", "fchdir", "setuid", "fork", "forkpty",
              "killpg", "rename", "renames", "truncate", "replace", "unlink", "fchmod", "fchown", "chmod", "chown",
              "chroot", "lchflags", "lchmod", "lchown", "getcwd", "chdir"):
    setattr(os, _name, None)
shutil.rmtree = None
shutil.move = None
shutil.chown = None
subprocess.Popen = None
builtins.help = None
for _name in ("ipdb", "joblib", "resource", "psutil", "tkinter"):
    sys.modules[_name] = None
_stream = WriteOnlyStringIO()
with contextlib.redirect_stdout(_stream), contextlib.redirect_stderr(_stream), redirect_stdin(_stream):
    signal.setitimer(signal.ITIMER_REAL, __TIMEOUT__)
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        exec(__PROGRAM__, {})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
"""
"""``code_eval``'s execution of one program (``__PROGRAM__`` and ``__TIMEOUT__`` filled in)."""


# --------------------------------------------------------------------------------------------------
# Converters: raw records -> Example (used by complementarity.sources)
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One raw record plus where it came from, for converters and error messages."""

    data: Any
    index: int
    """0-based position among the source's records (blank lines not counted)."""
    where: str
    """Human-readable location: ``data.jsonl: line 3`` or ``openai/gsm8k (split 'test'), row index 7``."""
    default_id: str
    """The id a ``prompt_response`` row gets when it has none."""


@dataclass(frozen=True)
class Origin:
    """What a converter needs to know about the whole source."""

    stem: str
    """The file stem (local files) or the last part of the dataset name (hub)."""


Converter = Callable[[Row, Origin], Example]


def json_type(value: object) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    if type(value) in names:
        return names[type(value)]
    return "a number" if isinstance(value, (int, float)) else type(value).__name__


def _need_dict(row: Row, keys: str) -> Mapping[str, Any]:
    if not isinstance(row.data, dict):
        raise DataError(f"{row.where}: expected an object with keys {keys}, got {type(row.data).__name__}")
    return row.data


def _need_str(row: Row, d: Mapping[str, Any], key: str, *, nonblank: bool = True) -> str:
    if key not in d:
        raise DataError(f"{row.where}: missing key {key!r}; add a {key!r} string to this record")
    value = d[key]
    if not isinstance(value, str):
        raise DataError(f"{row.where}: {key!r} must be a string, got {json_type(value)} ({value!r:.60})")
    if nonblank and not value.strip():
        raise DataError(f"{row.where}: {key!r} is empty or whitespace only; give it text or drop the record")
    return value


def _optional_id(row: Row, d: Mapping[str, Any], key: str = "id") -> str | None:
    if key not in d or d[key] is None:
        return None
    value = d[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{row.where}: {key!r} must be a string or an integer, got {json_type(value)} ({value!r:.60})")
    text = str(value)
    if not text.strip():
        raise DataError(f"{row.where}: {key!r} is empty; give a non-empty id or omit the key")
    return text


def _str_list(row: Row, d: Mapping[str, Any], key: str, *, required: bool) -> list[str]:
    if key not in d or d[key] is None:
        if required:
            raise DataError(f"{row.where}: missing key {key!r}; add a list of strings")
        return []
    value = d[key]
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise DataError(f"{row.where}: {key!r} must be a list of strings, got {value!r:.80}")
    if required and not value:
        raise DataError(f"{row.where}: {key!r} is empty; give at least one entry")
    return list(value)


def _convert_prompt_response(row: Row, origin: Origin) -> Example:
    """``{"prompt", "response", "id"?, "domain"?}`` → Example; id defaults to ``stem:line``."""
    d = _need_dict(row, "'prompt' and 'response'")
    prompt = _need_str(row, d, "prompt")
    response = _need_str(row, d, "response")
    ex_id = _optional_id(row, d) or row.default_id
    # An optional label: candidate shard files often say which domain a record belongs to, and the
    # shard table (results/data/shards/checked.tsv) counts records by it. A domain's own data is
    # labelled with the domain's name when it is prepared, whatever it says here.
    domain = _optional_id(row, d, "domain")
    return Example(prompt=prompt, response=response, id=ex_id, domain=domain)


def _convert_gsm8k(row: Row, origin: Origin) -> Example:
    """``{"question", "answer"}`` → Example; the final answer follows the last ``####``."""
    d = _need_dict(row, "'question' and 'answer'")
    question = _need_str(row, d, "question")
    answer = _need_str(row, d, "answer")
    if "####" not in answer:
        raise DataError(f"{row.where}: 'answer' has no '#### <final answer>' line; GSM8K answers must end with one")
    final = answer.rsplit("####", 1)[1].strip()
    if not final:
        raise DataError(f"{row.where}: 'answer' has an empty final answer after '####'; put the answer after it")
    ex_id = _optional_id(row, d) or str(row.index)
    meta = {"final_answer": final, "harness_prompt": gsm8k_harness_doc(question), "harness_target": answer}
    return Example(prompt=question.strip(), response=answer.strip(), id=ex_id, meta=meta)


def _convert_mbpp(row: Row, origin: Origin) -> Example:
    """MBPP full (``text``) or sanitized (``prompt``) rows → Example with the standard MBPP prompt."""
    d = _need_dict(row, "'text' (or 'prompt'), 'code', 'task_id' and 'test_list'")
    text_key = "text" if "text" in d else "prompt" if "prompt" in d else "text"
    text = _need_str(row, d, text_key)
    code = _need_str(row, d, "code").replace("\r\n", "\n").strip()
    if "task_id" not in d:
        raise DataError(f"{row.where}: missing key 'task_id'; add the MBPP task number (an integer)")
    task_id = d["task_id"]
    if isinstance(task_id, str) and task_id.strip().isdigit():
        task_id = int(task_id)
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise DataError(f"{row.where}: 'task_id' must be an integer, got {task_id!r:.60}")
    tests = _str_list(row, d, "test_list", required=True)
    challenge = _str_list(row, d, "challenge_test_list", required=False)
    if "test_setup_code" in d and d["test_setup_code"] is not None:
        setup = _need_str(row, d, "test_setup_code", nonblank=False)
    else:
        # The sanitized config has ``test_imports`` (e.g. ["import math"]) instead of setup code.
        setup = "\n".join(_str_list(row, d, "test_imports", required=False))
    prompt = MBPP_PROMPT.format(text=text.strip()) + "\n".join(tests)
    meta = {
        "test_list": tests,
        "test_setup_code": setup.replace("\r\n", "\n"),
        "challenge_test_list": challenge,
        "harness_prompt": mbpp_harness_doc(text, tests),
    }
    return Example(prompt=prompt, response=code, id=str(task_id), meta=meta)


def _clean(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").strip()


def _convert_mmlu(row: Row, origin: Origin) -> Example:
    """A CSV row ``[question, A, B, C, D, letter]`` or a hub dict ``{question, subject, choices, answer}``."""
    if isinstance(row.data, list):
        if len(row.data) != 6:
            raise DataError(
                f"{row.where}: expected 6 columns (question, A, B, C, D, answer), got {len(row.data)}; "
                "quote fields that contain commas or newlines"
            )
        question, *choices, letter = row.data
        letter = letter.strip()
        subject = origin.stem
        for suffix in MMLU_SPLIT_SUFFIXES:
            subject = subject.removesuffix(suffix)
        if letter not in MMLU_LETTERS:
            raise DataError(f"{row.where}: answer column is {letter!r}; it must be one of A, B, C, D")
        if not question.strip():
            raise DataError(f"{row.where}: the question column is empty; give the question text")
    else:
        d = _need_dict(row, "'question', 'choices' and 'answer'")
        question = _need_str(row, d, "question")
        choices = _str_list(row, d, "choices", required=True)
        if len(choices) != 4:
            raise DataError(f"{row.where}: 'choices' must have 4 options, got {len(choices)}")
        if "answer" not in d:
            raise DataError(f"{row.where}: missing key 'answer'; give the gold option as 0-3 or A-D")
        answer = d["answer"]
        if isinstance(answer, int) and not isinstance(answer, bool) and 0 <= answer <= 3:
            letter = MMLU_LETTERS[answer]
        elif isinstance(answer, str) and answer.strip() in MMLU_LETTERS:
            letter = answer.strip()
        else:
            raise DataError(f"{row.where}: 'answer' is {answer!r}; it must be an integer 0-3 or a letter A-D")
        subject = d.get("subject") or origin.stem
        if not isinstance(subject, str):
            raise DataError(f"{row.where}: 'subject' must be a string, got {subject!r:.60}")
    options = [_clean(c) for c in choices]
    prompt = _clean(question) + "".join(f"\n{k}. {v}" for k, v in zip(MMLU_LETTERS, options, strict=True)) + "\nAnswer:"
    meta = {
        "choices": options,
        "answer": letter,
        "subject": subject,
        "harness_prompt": mmlu_harness_doc(question, choices),
    }
    return Example(prompt=prompt, response=letter, id=f"{subject}:{row.index}", meta=meta)


CONVERTERS: dict[str, Converter] = {
    "prompt_response": _convert_prompt_response,
    "gsm8k": _convert_gsm8k,
    "mbpp": _convert_mbpp,
    "mmlu": _convert_mmlu,
}
