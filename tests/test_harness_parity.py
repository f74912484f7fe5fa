"""The harness layout against lm-evaluation-harness's own code, item by item on real data (issue 12).

lm_eval (pinned in pyproject's ``test`` extra) is the reference, not a re-implementation: its task
YAMLs (``gsm8k.yaml``, ``mbpp.yaml``, ``mmlu/default``) are loaded by its own loader and built as its
``ConfigurableTask`` with only the dataset pointed at local files (``dataset_path: json`` plus
``data_files``); prompts come from its ``build_all_requests``, GSM8K answers from its filters and
``process_results``, MBPP verdicts from its ``pass_at_1`` (HF ``code_eval``, imported offline from
``tests/fixtures/code_eval``, see the README there), MMLU log-likelihoods from ``simple_evaluate``
with its ``HFLM`` on a small local model. Nothing is downloaded.

Skipped only when ``../shared/data/real`` (the real GSM8K/MBPP/MMLU files) is absent.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from pathlib import Path

import pytest
from conftest import BASE_CFG, FINETUNE, REPO, finetune_flags, run_cli

REAL = REPO.parent / "shared" / "data" / "real"
FIXTURES = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason=f"no real data at {REAL}")

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ["HF_ALLOW_CODE_EVAL"] = "1"  # lm_eval's mbpp pass_at_1 runs HF code_eval

import lm_eval  # noqa: E402  (after the offline switches)
from lm_eval.api.task import ConfigurableTask  # noqa: E402
from lm_eval.tasks._yaml_loader import load_yaml  # noqa: E402

from complementarity.evaluation.evaluate import evaluate, predict_choices  # noqa: E402
from complementarity.evaluation.scorers import score_details  # noqa: E402
from complementarity.records import Example, write_jsonl  # noqa: E402
from complementarity.sources import load_source  # noqa: E402
from complementarity.tasks import (  # noqa: E402
    GSM8K_STOP,
    MBPP_HARNESS_STOP,
    MMLU_LETTERS,
    gsm8k_harness_contexts,
    mbpp_harness_context,
    mmlu_context,
)

LM_EVAL_VERSION = "0.4.13"
TASKS = Path(lm_eval.__file__).parent / "tasks"


def test_the_pinned_lm_eval_is_installed():
    from importlib.metadata import version

    assert version("lm_eval") == LM_EVAL_VERSION, "pyproject's test extra pins lm_eval==0.4.13; reinstall it"


def _task(yaml_path: Path, data_files: dict[str, str], cache: Path, **overrides) -> ConfigurableTask:
    """lm_eval's own task from its own YAML, reading local files instead of the hub."""
    cfg = load_yaml(yaml_path)
    cfg.update(
        dataset_path="json",
        dataset_name=None,
        dataset_kwargs={"data_files": data_files, "cache_dir": str(cache)},
        **overrides,
    )
    return ConfigurableTask(config=cfg)


# --------------------------------------------------------------------------------------------------
# GSM8K: prompts (5 shots drawn with lm_eval's seed) and both filters on many answer formats
# --------------------------------------------------------------------------------------------------

GSM8K_N = 120


@pytest.fixture(scope="module")
def gsm8k(tmp_path_factory):
    files = {"train": str(REAL / "gsm8k/train.jsonl"), "test": str(REAL / "gsm8k/test.jsonl")}
    task = _task(TASKS / "gsm8k/gsm8k.yaml", files, tmp_path_factory.mktemp("hf-cache"))
    task.set_fewshot_seed(1234)  # simple_evaluate's default fewshot_random_seed
    task.build_all_requests(limit=GSM8K_N, rank=0, world_size=1)
    test = load_source({"path": files["test"], "format": "gsm8k"})[:GSM8K_N]
    train = load_source({"path": files["train"], "format": "gsm8k"})
    return task, test, train


def test_gsm8k_prompts_and_stops_are_the_harness_s(gsm8k):
    task, test, train = gsm8k
    theirs = [inst.args[0] for inst in task.instances]
    ours = gsm8k_harness_contexts(test, train)
    assert len(theirs) == GSM8K_N
    assert sum(a == b for a, b in zip(ours, theirs, strict=True)) == GSM8K_N
    assert all(inst.args[1]["until"] == list(GSM8K_STOP) for inst in task.instances)


def _gsm8k_variants(solution: str, final: str) -> dict[str, str]:
    """Ways a model may write (or miss) the answer: every filter path and every regex_to_ignore."""
    worked = solution.rsplit("####", 1)[0]
    wrong = str(int(final.replace(",", "")) + 1) if final.replace(",", "").lstrip("-").isdigit() else "0"
    return {
        "reference": solution,
        "reference + next question": solution + "\n\nQuestion: what next? 12",
        "bare number": final,
        "sentence": f"The answer is {final}.",
        "dollars": f"It costs ${final}.",
        "dollars after ####": f"{worked}#### ${final}",
        "no space after ####": f"{worked}####{final}",
        "two spaces after ####": f"{worked}####  {final}",
        "decimal": f"#### {final}.00",
        "trailing dot": f"#### {final}.",
        "thousands commas": f"#### {int(final.replace(',', '')):,}" if final.replace(",", "").isdigit() else final,
        "negative": f"#### -{final}",
        "wrong after ####": f"{worked}#### {wrong}",
        "right then a later number": f"#### {final}\nThat is {wrong} apples in 2 boxes.",
        "boxed": f"So the answer is \\boxed{{{final}}}",
        "units": f"{final} dollars",
        "upper case words": f"ANSWER: {final} APPLES",
        "only words": "I do not know.",
        "empty": "",
        "newlines": f"\n\n{final}\n\n",
        "one digit": "7",
    }


def test_gsm8k_filters_agree_with_lm_eval_on_every_variant(gsm8k):
    task, test, _ = gsm8k
    docs = [inst.doc for inst in task.instances]
    names = list(_gsm8k_variants(test[0].response, test[0].meta["final_answer"]))
    total = disagree = 0
    seen = {"strict": set(), "flexible": set()}
    for name in names:
        preds = [_gsm8k_variants(ex.response, ex.meta["final_answer"])[name] for ex in test]
        for inst, pred in zip(task.instances, preds, strict=True):
            inst.resps = [pred]
        task.apply_filters()
        ours = score_details("gsm8k", test, preds)
        for inst, doc, item in zip(task.instances, docs, ours, strict=True):
            for filt, mode in (("strict-match", "strict"), ("flexible-extract", "flexible")):
                theirs = task.process_results(doc, [inst.filtered_resps[filt]])["exact_match"]
                total += 1
                seen[mode].add(bool(theirs))
                if bool(theirs) != item[mode] or inst.filtered_resps[filt] != item[f"extracted_{mode}"]:
                    disagree += 1
    assert total == len(names) * GSM8K_N * 2
    assert seen == {"strict": {True, False}, "flexible": {True, False}}  # both verdicts occur
    assert disagree == 0, f"{disagree} of {total} gsm8k verdicts or extractions differ from lm_eval's"


# --------------------------------------------------------------------------------------------------
# MBPP: prompts, and pass/fail by lm_eval's pass_at_1 (HF code_eval) against the sandbox
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mbpp(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mbpp")
    test_file = folder / "test.jsonl"
    with open(REAL / "mbpp/mbpp.jsonl") as src, open(test_file, "w") as out:
        out.writelines(line for line in src if 11 <= json.loads(line)["task_id"] <= 510)
    # utils.py runs evaluate.load("code_eval") when imported: a local folder named code_eval wins.
    with _chdir(FIXTURES):
        task = _task(TASKS / "mbpp/mbpp.yaml", {"test": str(test_file)}, folder / "hf-cache")
    task.build_all_requests(rank=0, world_size=1)
    test = load_source({"path": str(REAL / "mbpp/mbpp.jsonl"), "format": "mbpp", "split": "test"})
    assert [str(inst.doc["task_id"]) for inst in task.instances] == [ex.id for ex in test]
    return task, test


def test_mbpp_prompts_and_stops_are_the_harness_s(mbpp):
    task, test = mbpp
    same = sum(mbpp_harness_context(ex) == inst.args[0] for ex, inst in zip(test, task.instances, strict=True))
    assert same == len(test) == 500
    assert all(inst.args[1]["until"] == list(MBPP_HARNESS_STOP) for inst in task.instances)


EARLY = {
    "sys.exit(0)": "import sys\nsys.exit(0)",
    "exit()": "exit()",
    "quit()": "quit()",
    "raise SystemExit": "raise SystemExit",
    "os._exit(0)": "import os\nos._exit(0)",
    "os.kill": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
}


@contextlib.contextmanager
def _chdir(path: Path):
    """contextlib.chdir (Python 3.11+) for Python 3.10."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _mbpp_cases(test: list[Example]) -> list[tuple[str, Example, str]]:
    """(label, task, completion): references as generated (``\\r\\n`` kept), wrong code, early exits,
    a ``__main__`` block, an endless loop, fenced code (the harness does not unfence), setup-code tasks."""
    cases = []
    by_id = {ex.id: ex for ex in test}
    for ex in test[:12]:
        code = ex.response
        cases.append(("reference", ex, code + "\n"))
        cases.append(("wrong", ex, code + "\n\ndef _unused():\n    pass\nassert False\n"))
    for ex in test[24:27]:
        cases.append(("fenced", ex, f"```python\n{ex.response}\n```\n"))
        cases.append(("main block", ex, ex.response + '\nif __name__ == "__main__":\n    print(input())\n'))
    for label, stmt in EARLY.items():
        for ex in test[30:31]:
            cases.append((f"exit before asserts: {label}", ex, "def _nothing():\n    pass\n" + stmt + "\n"))
            cases.append((f"exit after code: {label}", ex, ex.response + "\n" + stmt + "\n"))
    cases.append(("endless loop", test[32], test[32].response + "\nwhile True:\n    pass\n"))
    for task_id in ("367", "927") if "927" in by_id else ("367",):
        cases.append(("needs setup code", by_id[task_id], by_id[task_id].response + "\n"))
    return cases


def test_mbpp_verdicts_agree_with_lm_eval_s_pass_at_1(mbpp):
    task, test = mbpp
    docs = {str(inst.doc["task_id"]): inst.doc for inst in task.instances}
    cases = _mbpp_cases(test)
    theirs = [task.process_results(docs[ex.id], [completion])["pass_at_1"] == 1.0 for _, ex, completion in cases]
    ours = score_details("mbpp", [ex for _, ex, _ in cases], [c for _, _, c in cases], layout="harness")
    diff = [
        (label, ex.id, t, o["correct"], o["error"])
        for (label, ex, _), t, o in zip(cases, theirs, ours, strict=True)
        if t != o["correct"]
    ]
    assert not diff, f"{len(diff)} of {len(cases)} MBPP verdicts differ from lm_eval's: {diff}"
    by_label = {}
    for (label, _, _), verdict in zip(cases, theirs, strict=True):
        by_label.setdefault(label.split(":")[0], set()).add(verdict)
    assert by_label["reference"] == {True} and by_label["wrong"] == {False}
    assert by_label["exit before asserts"] == {False} and by_label["exit after code"] == {False}
    assert by_label["endless loop"] == {False} and by_label["main block"] == {True}


# --------------------------------------------------------------------------------------------------
# MMLU: log-likelihoods and chosen letters from lm_eval's simple_evaluate with its HFLM
# --------------------------------------------------------------------------------------------------

SUBJECTS = {"college_medicine": 12, "high_school_physics": 12}
"""Subjects and how many test questions of each (college_medicine row 141 and high_school_physics row
79 have options with surrounding spaces: they are added)."""
EXTRA_ROWS = {"college_medicine": 141, "high_school_physics": 79}


def _mmlu_jsonl(subject: str, split: str, out: Path, rows: list[int] | None = None) -> Path:
    """The original CSV as cais/mmlu rows (``question, subject, choices, answer`` as 0-3), text untouched."""
    with open(REAL / f"mmlu/data/{split}/{subject}_{split}.csv", newline="", encoding="utf-8") as f:
        records = list(csv.reader(f))
    picked = [records[i] for i in rows] if rows is not None else records
    path = out / f"{subject}_{split}.jsonl"
    with open(path, "w") as f:
        for q, a, b, c, d, letter in picked:
            f.write(
                json.dumps({"question": q, "subject": subject, "choices": [a, b, c, d], "answer": "ABCD".index(letter)})
                + "\n"
            )
    return path


@pytest.fixture(scope="module")
def mmlu_files(tmp_path_factory):
    out = tmp_path_factory.mktemp("mmlu")
    files = {}
    for subject, n in SUBJECTS.items():
        rows = [*range(n), EXTRA_ROWS[subject]]
        files[subject] = {
            "test": str(_mmlu_jsonl(subject, "test", out, rows)),
            "dev": str(_mmlu_jsonl(subject, "dev", out)),
        }
    return out, files


def _mmlu_task(subject: str, files: dict[str, str], cache: Path) -> ConfigurableTask:
    return _task(TASKS / f"mmlu/default/mmlu_{subject}.yaml", files, cache)


@pytest.fixture(scope="module")
def small_model(mmlu_files):
    """A 2-layer Llama with a BPE tokenizer trained on the questions (adds <s>), 256 positions: the
    0-shot prompts mostly fit, the 5-shot ones are cut from the left."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from complementarity.tiny import train_tokenizer

    _, files = mmlu_files
    texts = [line for sub in files.values() for p in sub.values() for line in Path(p).read_text().splitlines()]
    tok = train_tokenizer(texts, 600)
    torch.manual_seed(0)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
        max_position_embeddings=256, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id, tie_word_embeddings=False,
    )  # fmt: skip
    model = LlamaForCausalLM(cfg).eval()
    with torch.no_grad():  # larger weights than the init: distinct, far-from-tied option scores
        for p in model.parameters():
            p.mul_(8.0)
    assert tok("x")["input_ids"][0] == tok.bos_token_id
    return model, tok


def _lm_eval_mmlu(lm, subject: str, files: dict[str, str], cache: Path, num_fewshot: int) -> list[dict]:
    """simple_evaluate's per-question samples: doc_id, the four log-likelihoods and acc."""
    from lm_eval import simple_evaluate

    task = _mmlu_task(subject, files, cache)
    out = simple_evaluate(model=lm, tasks=[task], num_fewshot=num_fewshot, log_samples=True, bootstrap_iters=0)
    samples = out["samples"][f"mmlu_{subject}"]
    return sorted(samples, key=lambda s: s["doc_id"])


@pytest.mark.parametrize("num_fewshot", [0, 5])
def test_mmlu_log_likelihoods_and_letters_agree_with_lm_eval(small_model, mmlu_files, num_fewshot):
    from lm_eval.models.huggingface import HFLM

    model, tok = small_model
    cache, files = mmlu_files
    lm = HFLM(pretrained=model, tokenizer=tok, batch_size=8, device="cpu")
    n = letters_same = cut = 0
    worst = 0.0
    for subject, sub in files.items():
        samples = _lm_eval_mmlu(lm, subject, sub, cache / "hf-cache", num_fewshot)
        test = load_source({"path": sub["test"], "format": "mmlu"})
        dev = load_source({"path": sub["dev"], "format": "mmlu"})
        letters, lps, _ = predict_choices(
            model, tok, test, mc_format="harness", few_shot=dev if num_fewshot else None,
            num_fewshot=num_fewshot or None, batch_size=8,
        )  # fmt: skip
        assert len(samples) == len(test)
        for sample, ex, letter, lp in zip(samples, test, letters, lps, strict=True):
            theirs = [float(r[0][0]) for r in sample["resps"]]
            worst = max(worst, *(abs(a - lp[k]) for a, k in zip(theirs, MMLU_LETTERS, strict=True)))
            chosen = MMLU_LETTERS[max(range(4), key=theirs.__getitem__)]
            letters_same += chosen == letter
            assert (sample["acc"] == 1.0) == (letter == ex.meta["answer"])
            shots = dev[:num_fewshot]
            text = mmlu_context(ex, shots, header=True, harness=True)
            # lm_eval's requests: our context character for character, continuations " A" … " D"
            assert [list(arg) for arg in sample["arguments"]] == [[text, f" {k}"] for k in MMLU_LETTERS]
            cut += len(tok(text)["input_ids"]) + 1 > model.config.max_position_embeddings + 1
            n += 1
    assert letters_same == n, f"chosen letters agree on {letters_same}/{n}"
    assert worst < 1e-4, f"largest log-likelihood difference {worst:.2e}"
    if num_fewshot:
        assert cut == n  # every 5-shot context was cut to the window, as lm_eval cuts it
    else:
        assert cut < n


def test_options_are_kept_as_written_in_the_harness_layout(mmlu_files):
    _, files = mmlu_files
    for subject, row in EXTRA_ROWS.items():
        ex = load_source({"path": files[subject]["test"], "format": "mmlu"})[-1]
        raw = json.loads(Path(files[subject]["test"]).read_text().splitlines()[-1])["choices"]
        assert any(c != c.strip() for c in raw), f"{subject} row {row} no longer has an unstripped option"
        assert all(f"{k}. {c}\n" in ex.meta["harness_prompt"] for k, c in zip(MMLU_LETTERS, raw, strict=True))


# --------------------------------------------------------------------------------------------------
# Our fine-tuned adapter in lm_eval (--model hf --model_args pretrained=…,peft=…)
# --------------------------------------------------------------------------------------------------


def test_an_adapter_from_our_finetune_evaluates_in_lm_eval_with_our_log_likelihoods(
    tiny_base, demo_prepared, mmlu_files, tmp_path
):
    from lm_eval import simple_evaluate

    from complementarity.evaluation.run import evaluate_model

    adapter = tmp_path / "adapter"
    ft = {**FINETUNE, "max_steps": 5}
    run_cli(
        "finetune", "--base", str(tiny_base), "--base-model", json.dumps(BASE_CFG), *finetune_flags(ft),
        "--train", str(demo_prepared / "arithmetic" / "train.jsonl"), "--name", "adapter", "--out", str(adapter),
    )  # fmt: skip
    cache, files = mmlu_files
    sub = files["college_medicine"]
    task = _mmlu_task("college_medicine", sub, cache / "hf-cache")
    out = simple_evaluate(
        model="hf",
        model_args=f"pretrained={tiny_base},peft={adapter},dtype=float32",
        tasks=[task],
        num_fewshot=0,
        limit=12,
        log_samples=True,
        bootstrap_iters=0,
        device="cpu",
        batch_size=4,
    )
    samples = sorted(out["samples"]["mmlu_college_medicine"], key=lambda s: s["doc_id"])
    prepared = tmp_path / "mmlu_test.jsonl"  # the evaluation job reads prepared records, as in the pipeline
    write_jsonl(prepared, load_source({"path": sub["test"], "format": "mmlu"}))
    settings = {"test_limit": 12, "batch_size": 4, "max_new_tokens": 8, "num_fewshot": 0, "mc_format": "template",
                "sandbox_timeout": 5, "layout": "harness"}  # fmt: skip
    ours = evaluate_model(
        tiny_base, adapter, {"mmlu": prepared}, {"mmlu": "multiple_choice"}, base_cfg=BASE_CFG, settings=settings
    )["mmlu"]
    assert ours["settings"]["mc_format"] == "harness" and len(samples) == ours["n"] == 12
    worst = max(
        abs(float(r[0][0]) - item["logprobs"][k])
        for s, item in zip(samples, ours["per_item"], strict=True)
        for r, k in zip(s["resps"], MMLU_LETTERS, strict=True)
    )
    assert worst < 1e-4, f"largest log-likelihood difference {worst:.2e}"
    # the adapter changed the model: the base alone scores differently
    base_only = evaluate(
        *_load(tiny_base),
        load_source({"path": sub["test"], "format": "mmlu"})[:12],
        "multiple_choice",
        layout="harness",
    )
    assert any(
        abs(a["logprobs"]["A"] - b["logprobs"]["A"]) > 1e-4
        for a, b in zip(base_only["per_item"], ours["per_item"], strict=True)
    )


def _load(base: Path):
    from complementarity.modeling import load_base

    model, tok, _ = load_base(base, dtype=BASE_CFG["dtype"], quantization="none")
    return model.eval(), tok
