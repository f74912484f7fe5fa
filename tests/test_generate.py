"""Generation and model-based evaluation on the tiny model (CPU): stops, budgets, batching, MMLU."""

from __future__ import annotations

import copy

import pytest
import torch

from complementarity.errors import UserError
from complementarity.evaluation.evaluate import evaluate, mmlu_context, predict_choices
from complementarity.evaluation.generate import generate, generate_ids
from complementarity.evaluation.sandbox import run_python
from complementarity.evaluation.scorers import exact_match, extract_code
from complementarity.modeling import encode_prompt, load_base
from complementarity.records import Example, read_prepared
from complementarity.sources import load_source

PROMPTS = [
    "56 + 29 =",
    "reverse: qwertyuiopasdfg",
    "sort: 9 8 7 6 5 4 3 2 1 0 9 8 7 6",
    "741 kg in g =",
    "x",
    "reverse: ab",
]


@pytest.fixture(scope="module")
def tiny(tiny_base):
    # float32 everywhere (bf16 on a GPU could turn near-ties into different greedy tokens across batches)
    model, tok, _ = load_base(tiny_base, dtype="float32")
    # One thread: as fast for a model this small, and not slowed down by busy shared cores.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield model, tok
    torch.set_num_threads(threads)


def test_batched_generation_equals_one_prompt_at_a_time(tiny):
    model, tok = tiny
    lengths = {len(encode_prompt(tok, p, chat=False)) for p in PROMPTS}
    assert len(lengths) >= 4, "the prompts must differ in length for left padding to matter"
    one_by_one = [generate(model, tok, [p], template="plain", max_new_tokens=12)[0] for p in PROMPTS]
    for batch_size in (len(PROMPTS), 4):
        batched = generate(model, tok, PROMPTS, template="plain", max_new_tokens=12, batch_size=batch_size)
        assert batched == one_by_one, batch_size


def test_max_new_tokens_is_respected_and_greedy_outputs_extend(tiny):
    model, tok = tiny
    long = generate(model, tok, PROMPTS, template="plain", max_new_tokens=16)
    for k in (1, 4):
        short = generate(model, tok, PROMPTS, template="plain", max_new_tokens=k)
        assert all(g.n_tokens <= k for g in short)
        assert all(s.finish in ("eos", "length") for s in short)
        for s, g in zip(short, long, strict=True):
            assert g.text.startswith(s.text)  # greedy: a shorter budget gives a prefix
            if s.finish == "length":
                assert s.n_tokens == k
    assert any(g.finish == "length" and g.n_tokens == 16 for g in long), [g.finish for g in long]


def test_a_budget_beyond_the_models_positions_is_lowered_with_a_warning(tiny, caplog):
    model, tok = tiny
    limit = model.config.max_position_embeddings
    out = generate(model, tok, PROMPTS[:2], template="plain", max_new_tokens=10 * limit)
    assert all(g.n_tokens <= limit // 2 for g in out)
    assert "does not fit the model's" in caplog.text


def test_stop_sequences_cut_the_output_and_end_generation(tiny):
    model, tok = tiny
    free = generate(model, tok, PROMPTS, template="plain", max_new_tokens=24)
    ref = max(free, key=lambda g: len(g.text.strip()))
    prompt = PROMPTS[free.index(ref)]
    assert len(ref.text) >= 6, f"the tiny model's longest output is too short to test stops: {ref.text!r}"
    stop = ref.text[3:5]
    expected = ref.text[: ref.text.find(stop)]
    cut = generate(model, tok, [prompt], template="plain", max_new_tokens=24, stop=[stop])[0]
    assert cut.text == expected and cut.finish == "stop"
    assert cut.n_tokens < ref.n_tokens  # generation ended there, not just the text
    # The earliest of several stops wins; a stop that never occurs changes nothing.
    two = generate(model, tok, [prompt], template="plain", max_new_tokens=24, stop=["\x00never", stop])[0]
    assert two.text == expected
    none = generate(model, tok, [prompt], template="plain", max_new_tokens=24, stop=["\x00never"])[0]
    assert none == ref


def test_the_chat_template_is_used_when_the_tokenizer_has_one(tiny):
    model, tok = tiny
    with pytest.raises(UserError, match="no chat template"):
        generate(model, tok, PROMPTS[:1], template="chat")
    chat_tok = copy.deepcopy(tok)
    chat_tok.chat_template = "{% for m in messages %}USER: {{ m['content'] }}\nBOT:{% endfor %}"
    ids = chat_tok.apply_chat_template(
        [{"role": "user", "content": PROMPTS[0]}], add_generation_prompt=True, tokenize=True, return_dict=False
    )
    assert list(ids) != encode_prompt(tok, PROMPTS[0], chat=False)
    auto = generate(model, chat_tok, PROMPTS[:1], template="auto", max_new_tokens=8)
    assert auto == generate_ids(model, chat_tok, [list(ids)], max_new_tokens=8)


def test_evaluate_exact_match_scores_the_models_own_answers_as_correct(tiny, demo_prepared):
    model, tok = tiny
    examples = read_prepared(demo_prepared / "arithmetic" / "test.jsonl")[:12]
    outputs = generate(model, tok, [e.prompt for e in examples], template="plain", max_new_tokens=8)
    own = [Example(e.prompt, g.text, e.id) for e, g in zip(examples, outputs, strict=True)]
    result = evaluate(model, tok, own, "exact_match", template="plain", max_new_tokens=8, batch_size=5)
    assert result["evaluator"] == "exact_match" and result["n"] == 12
    assert result["correct"] == 12 and result["score"] == 1.0
    assert result["settings"]["template"] == "plain"
    wrong = [Example(e.prompt, e.response + " 1", e.id) for e in own]
    assert evaluate(model, tok, wrong, "exact_match", template="plain", max_new_tokens=8)["score"] == 0.0
    real = evaluate(model, tok, examples, "exact_match", template="plain", max_new_tokens=8)
    assert [i["correct"] for i in real["per_item"]] == [
        exact_match(i["prediction"], e.response) for i, e in zip(real["per_item"], examples, strict=True)
    ]
    assert real["score"] == real["correct"] / 12


def test_evaluate_gsm8k_reports_strict_and_flexible(tiny):
    model, tok = tiny
    outputs = generate(model, tok, PROMPTS, template="plain", max_new_tokens=10, stop=["Question:"])
    examples = [
        Example(p, f"Work.\n#### {g.text.strip()}", str(i))
        for i, (p, g) in enumerate(zip(PROMPTS, outputs, strict=True))
    ]
    result = evaluate(model, tok, examples, "gsm8k", template="plain", max_new_tokens=10)
    assert result["headline"] == "flexible" and result["settings"]["stop"] == ["Question:", "</s>", "<|im_end|>"]
    for mode in ("strict", "flexible"):
        assert result[mode]["correct"] == sum(i[mode] for i in result["per_item"])
    assert result["strict"]["correct"] == 0  # the tiny model never writes "#### "
    assert result["score"] == result["flexible"]["score"]


def test_evaluate_mbpp_runs_the_generated_code(tiny):
    model, tok = tiny
    examples = [
        Example(p, "pass", str(i), meta={"test_list": ["assert True"], "test_setup_code": ""})
        for i, p in enumerate(PROMPTS[:3])
    ]
    result = evaluate(model, tok, examples, "mbpp", template="plain", max_new_tokens=6, sandbox_timeout=10)
    assert result["n"] == 3 and result["timeouts"] == 0
    assert result["settings"]["isolation"] in ("namespace", "basic")
    for item in result["per_item"]:
        assert item["n_tokens"] <= 6 and item["code"] == extract_code(item["prediction"])
        # With a test that always holds, the verdict is whether the generated code itself runs.
        direct = run_python(item["code"] + "\nassert True\n")
        assert item["correct"] == direct.passed and item["status"] == direct.status
    failing = [Example(e.prompt, e.response, e.id, meta={**e.meta, "test_list": ["assert False"]}) for e in examples]
    result = evaluate(model, tok, failing, "mbpp", template="plain", max_new_tokens=6)
    assert result["correct"] == 0 and all(i["status"] == "failed" for i in result["per_item"])


# --------------------------------------------------------------------------------------------------
# multiple_choice
# --------------------------------------------------------------------------------------------------

MMLU_CSV = """\
"What is 2 + 2?",3,4,5,6,B
"Which organ pumps blood?",heart,liver,lung,skin,A
"Water boils at sea level at",50 C,90 C,100 C,120 C,C
"The chemical symbol of gold is",Ag,Fe,Pb,Au,D
"Light travels fastest in",glass,water,vacuum,oil,C
"""
MMLU_DEV = """\
"1 + 1 =",1,2,3,4,B
"The sky is",green,blue,red,black,B
"""


@pytest.fixture(scope="module")
def mmlu(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mmlu")
    (folder / "anatomy_test.csv").write_text(MMLU_CSV)
    (folder / "anatomy_dev.csv").write_text(MMLU_DEV)
    test = load_source({"path": str(folder / "anatomy_test.csv"), "format": "mmlu"})
    dev = load_source({"path": str(folder / "anatomy_dev.csv"), "format": "mmlu"})
    return test, dev


def _direct_logprob(model, context: list[int], continuation: list[int]) -> float:
    with torch.no_grad():
        ids = torch.tensor([context + continuation], device=next(model.parameters()).device)
        logits = model(input_ids=ids).logits[0].float().cpu()
    lp = torch.log_softmax(logits, dim=-1)
    return float(sum(lp[len(context) - 1 + t, tok] for t, tok in enumerate(continuation)))


def test_mmlu_fast_path_equals_full_continuation_and_a_direct_computation(tiny, mmlu):
    model, tok = tiny
    test, _ = mmlu
    fast, fast_lp, single = predict_choices(model, tok, test, batch_size=3)
    slow, slow_lp, slow_single = predict_choices(model, tok, test, batch_size=2, single_token_fast_path=False)
    assert single and not slow_single
    assert fast == slow
    for a, b in zip(fast_lp, slow_lp, strict=True):
        assert a == pytest.approx(b, abs=1e-4)
    ctx = encode_prompt(tok, test[0].prompt, chat=False)
    for letter in "ABCD":
        cont = tok(letter, add_special_tokens=False)["input_ids"]
        assert fast_lp[0][letter] == pytest.approx(_direct_logprob(model, ctx, cont), abs=1e-4)
    assert all(p == max(lp, key=lp.get) for p, lp in zip(fast, fast_lp, strict=True))


def test_mmlu_harness_format_scores_the_space_letter_continuation(tiny, mmlu):
    model, tok = tiny
    test, _ = mmlu
    _, lp, single = predict_choices(model, tok, test, mc_format="harness")
    text = mmlu_context(test[1], [], header=True)  # the harness writes the header even at 0-shot
    ctx = tok(text, add_special_tokens=False)["input_ids"]
    whole = tok(text + " A", add_special_tokens=False)["input_ids"]
    assert len(whole) <= model.config.max_position_embeddings, "keep the question short enough not to be cut"
    assert single == (len(whole) - len(ctx) == 1)
    assert lp[1]["A"] == pytest.approx(_direct_logprob(model, ctx, whole[len(ctx) :]), abs=1e-4)


def test_mmlu_few_shot_layout_and_errors(mmlu):
    test, dev = mmlu
    text = mmlu_context(test[0], dev, header=True)
    assert text == (
        "The following are multiple choice questions (with answers) about anatomy.\n\n"
        "1 + 1 =\nA. 1\nB. 2\nC. 3\nD. 4\nAnswer: B\n\n"
        "The sky is\nA. green\nB. blue\nC. red\nD. black\nAnswer: B\n\n"
        "What is 2 + 2?\nA. 3\nB. 4\nC. 5\nD. 6\nAnswer:"
    )
    other = [Example(e.prompt, e.response, e.id, meta={**e.meta, "subject": "virology"}) for e in dev]
    with pytest.raises(UserError, match="no few-shot examples for subject 'anatomy'"):
        predict_choices(None, None, test, few_shot=other)
    with pytest.raises(UserError, match="num_fewshot=3 but subject 'anatomy' has only 2"):
        predict_choices(None, None, test, few_shot=dev, num_fewshot=3)


def test_evaluate_multiple_choice(tiny, mmlu):
    model, tok = tiny
    test, dev = mmlu
    result = evaluate(model, tok, test, "multiple_choice", template="plain", few_shot=dev, batch_size=2)
    assert result["n"] == 5 and result["single_token_options"]
    gold = [e.meta["answer"] for e in test]
    picks = [max(i["logprobs"], key=i["logprobs"].get) for i in result["per_item"]]
    assert [i["prediction"] for i in result["per_item"]] == picks
    assert result["correct"] == sum(p == g for p, g in zip(picks, gold, strict=True))
    with pytest.raises(UserError, match="multiple_choice evaluator only"):
        evaluate(model, tok, test, "exact_match", few_shot=dev)
