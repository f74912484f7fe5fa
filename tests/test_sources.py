"""Tests for :mod:`complementarity.sources`: the strict readers, spec checks and the real datasets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from complementarity.errors import DataError
from complementarity.sources import FORMATS, load_source

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real data folder {REAL} not present")

MEDICINE = ("anatomy", "clinical_knowledge", "college_medicine", "professional_medicine")


@pytest.fixture
def offline_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep datasets off the network and its cache inside tmp_path."""
    cache = tmp_path / "hf_cache"
    monkeypatch.setenv("HF_DATASETS_CACHE", str(cache))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # The libraries read these variables once, at import; patch the values too in case they are already imported.
    import datasets.config
    import huggingface_hub.constants

    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def rec(**kw: object) -> str:
    return json.dumps(kw)


def error_of(spec: object, base_dir: Path | str = ".") -> str:
    with pytest.raises(DataError) as info:
        load_source(spec, base_dir)  # type: ignore[arg-type]
    return str(info.value)


def assert_mentions(msg: str, *needles: str) -> None:
    """Every needle occurs in the error message (reports the first one that does not)."""
    missing = [n for n in needles if n not in msg]
    assert not missing, f"{missing} not in error message: {msg}"


# ------------------------------------------------------------------------------------------------
# Strict JSONL reader (prompt_response)
# ------------------------------------------------------------------------------------------------


def test_jsonl_good_file(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "mix.jsonl",
        [
            rec(prompt="p1", response="r1"),
            "",
            "   ",
            rec(prompt="p2", response="r2", id=7),
            rec(prompt="p3", response="r3", id="abc"),
        ],
    )
    examples = load_source(str(path))
    assert [ex.id for ex in examples] == ["mix:1", "7", "abc"]
    assert [(ex.prompt, ex.response) for ex in examples] == [("p1", "r1"), ("p2", "r2"), ("p3", "r3")]
    assert all(ex.domain is None and ex.meta == {} for ex in examples)


def test_relative_path_resolves_against_base_dir(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.jsonl", [rec(prompt="p", response="r")])
    assert len(load_source("a.jsonl", base_dir=tmp_path)) == 1
    assert len(load_source({"path": "a.jsonl"}, base_dir=str(tmp_path))) == 1


def test_crlf_and_unicode_line_separator_inside_strings(tmp_path: Path) -> None:
    # U+2028 is legal unescaped inside a JSON string; str.splitlines() would split the line there.
    text = json.dumps({"prompt": "a\u2028b", "response": "r"}, ensure_ascii=False)
    path = tmp_path / "crlf.jsonl"
    path.write_bytes((text + "\r\n" + rec(prompt="q", response="s") + "\r\n").encode("utf-8"))
    examples = load_source(str(path))
    assert [ex.prompt for ex in examples] == ["a\u2028b", "q"]
    assert [ex.id for ex in examples] == ["crlf:1", "crlf:2"]


def test_jsonl_missing_file(tmp_path: Path) -> None:
    msg = error_of(str(tmp_path / "nope.jsonl"))
    assert_mentions(msg, "nope.jsonl", "existing file")


def test_jsonl_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin.jsonl"
    path.write_bytes((rec(prompt="ok", response="ok") + "\n").encode() + b'{"prompt": "caf\xe9", "response": "r"}\n')
    msg = error_of(str(path))
    assert_mentions(msg, "latin.jsonl", "line 2", "UTF-8", "byte offset")


def test_jsonl_invalid_json(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [rec(prompt="p", response="r"), "", '{"prompt": "p", "response": }'])
    msg = error_of(str(path))
    assert_mentions(msg, "bad.jsonl", "line 3", "not valid JSON", "Expecting value")


def test_jsonl_line_not_an_object(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "arr.jsonl", [rec(prompt="p", response="r"), '["p", "r"]'])
    msg = error_of(str(path))
    assert_mentions(msg, "arr.jsonl", "line 2", "expected a JSON object", "an array")


@pytest.mark.parametrize("missing", ["prompt", "response"])
def test_jsonl_missing_key(tmp_path: Path, missing: str) -> None:
    record = {"prompt": "p", "response": "r"}
    del record[missing]
    path = write_lines(
        tmp_path / "miss.jsonl", [rec(prompt="p", response="r"), rec(prompt="p", response="r"), json.dumps(record)]
    )
    msg = error_of(str(path))
    assert_mentions(msg, "miss.jsonl", "line 3", f"missing key '{missing}'")


@pytest.mark.parametrize("key", ["prompt", "response"])
@pytest.mark.parametrize("value", [3, None, ["x"]])
def test_jsonl_non_string_field(tmp_path: Path, key: str, value: object) -> None:
    record: dict[str, object] = {"prompt": "p", "response": "r", key: value}
    path = write_lines(tmp_path / "types.jsonl", [json.dumps(record)])
    msg = error_of(str(path))
    assert_mentions(msg, "types.jsonl", "line 1", f"'{key}' must be a string")


@pytest.mark.parametrize("key", ["prompt", "response"])
@pytest.mark.parametrize("value", ["", "  \n\t"])
def test_jsonl_blank_field(tmp_path: Path, key: str, value: str) -> None:
    record = {"prompt": "p", "response": "r", key: value}
    path = write_lines(tmp_path / "blank.jsonl", [rec(prompt="p", response="r"), json.dumps(record)])
    msg = error_of(str(path))
    assert_mentions(msg, "blank.jsonl", "line 2", f"'{key}' is empty or whitespace only")


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_jsonl_empty_file(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text(content, encoding="utf-8")
    msg = error_of(str(path))
    assert_mentions(msg, "empty.jsonl", "no records")


def test_jsonl_duplicate_id_names_both_lines(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "dup.jsonl",
        [rec(prompt="p", response="r", id=5), rec(prompt="p", response="r"), rec(prompt="q", response="s", id="5")],
    )
    msg = error_of(str(path))
    assert_mentions(msg, "dup.jsonl: line 3", "line 1", "'5'")


@pytest.mark.parametrize("value", [1.5, True, [1], ""])
def test_jsonl_bad_id(tmp_path: Path, value: object) -> None:
    path = write_lines(tmp_path / "ids.jsonl", [json.dumps({"prompt": "p", "response": "r", "id": value})])
    msg = error_of(str(path))
    assert_mentions(msg, "ids.jsonl", "line 1", "'id'")


def test_json_array_and_its_errors(tmp_path: Path) -> None:
    good = tmp_path / "arr.json"
    good.write_text(json.dumps([{"prompt": "p", "response": "r"}, {"prompt": "q", "response": "s", "id": 3}]))
    assert [ex.id for ex in load_source(str(good))] == ["arr:0", "3"]

    not_list = tmp_path / "obj.json"
    not_list.write_text(json.dumps({"prompt": "p", "response": "r"}))
    assert "expected a JSON array" in error_of(str(not_list))

    bad_item = tmp_path / "item.json"
    bad_item.write_text(json.dumps([{"prompt": "p", "response": "r"}, "oops"]))
    msg = error_of(str(bad_item))
    assert_mentions(msg, "item.json", "record index 1")

    broken = tmp_path / "broken.json"
    broken.write_text('[\n{"prompt": "p",\n "response": }\n]')
    msg = error_of(str(broken))
    assert_mentions(msg, "broken.json", "line 3")


# ------------------------------------------------------------------------------------------------
# Spec checks
# ------------------------------------------------------------------------------------------------


def test_unknown_spec_key(tmp_path: Path) -> None:
    msg = error_of({"path": "x.jsonl", "fromat": "gsm8k"}, tmp_path)
    assert_mentions(msg, "'fromat'", "allowed keys", "format", "limit")


def test_unknown_format(tmp_path: Path) -> None:
    msg = error_of({"path": "x.jsonl", "format": "alpaca"}, tmp_path)
    assert_mentions(msg, "'alpaca'", *FORMATS)


def test_unsupported_extension(tmp_path: Path) -> None:
    (tmp_path / "data.parquet").write_bytes(b"PAR1")
    msg = error_of({"path": "data.parquet"}, tmp_path)
    assert_mentions(msg, "data.parquet", "'.parquet'", ".jsonl", ".csv")


@pytest.mark.parametrize("spec", [{"path": "a.jsonl", "hub": "openai/gsm8k", "split": "test"}, {"format": "gsm8k"}])
def test_path_and_hub_exactly_one(tmp_path: Path, spec: dict[str, str]) -> None:
    msg = error_of(spec, tmp_path)
    assert_mentions(msg, "'path'", "'hub'", "exactly one")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ({"hub": "openai/gsm8k", "format": "gsm8k"}, "needs 'split'"),
        ({"path": "a.jsonl", "name": "main"}, "'name' only applies to 'hub'"),
        ({"path": "a.jsonl", "revision": "abc"}, "'revision' only applies to 'hub'"),
        ({"path": "a.jsonl", "split": "test"}, "MBPP"),
        ({"path": "a.jsonl", "format": "mbpp", "split": "dev"}, "unknown MBPP split 'dev'"),
        ({"path": "a.jsonl", "limit": 0}, "'limit' must be a positive integer"),
        ({"path": "a.jsonl", "limit": "5"}, "'limit' must be a positive integer"),
        ({"path": ""}, "'path' must be a non-empty string"),
        ({"hub": "json", "split": "train", "data_files": 3}, "'data_files'"),
        (42, "must be a path string"),
        ([], "empty list"),
    ],
)
def test_bad_spec_values(tmp_path: Path, spec: object, needle: str) -> None:
    assert needle in error_of(spec, tmp_path)


def test_csv_only_for_mmlu(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("a,b\n")
    assert "only read for format 'mmlu'" in error_of({"path": "x.csv"}, tmp_path)


def test_limit_and_list_concatenation(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.jsonl", [rec(prompt=f"p{i}", response="r") for i in range(5)])
    write_lines(tmp_path / "b.jsonl", [rec(prompt="q", response="s")])
    examples = load_source([{"path": "a.jsonl", "limit": 2}, "b.jsonl"], tmp_path)
    assert [ex.id for ex in examples] == ["a:1", "a:2", "b:1"]


def test_list_with_clashing_ids(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.jsonl", [rec(prompt="p", response="r", id="x")])
    write_lines(tmp_path / "b.jsonl", [rec(prompt="q", response="s", id="x")])
    msg = error_of(["a.jsonl", "b.jsonl"], tmp_path)
    assert_mentions(msg, "items 0 and 1", "'x'")


def test_hub_failure_is_a_data_error(tmp_path: Path, offline_hf: Path) -> None:
    msg = error_of({"hub": str(tmp_path / "no_such_dataset"), "split": "train"}, tmp_path)
    assert_mentions(msg, "no_such_dataset", "load_dataset failed")


# ------------------------------------------------------------------------------------------------
# Format converters on small synthetic files
# ------------------------------------------------------------------------------------------------


def test_gsm8k_converter(tmp_path: Path) -> None:
    write_lines(
        tmp_path / "g.jsonl",
        [rec(question=" How many? ", answer="2+2=<<2+2=4>>4\n#### 4\n"), rec(question="Q", answer="x\n#### 1,000")],
    )
    a, b = load_source({"path": "g.jsonl", "format": "gsm8k"}, tmp_path)
    meta = {  # the harness's doc_to_text and doc_to_target keep the text as written
        "final_answer": "4",
        "harness_prompt": "Question:  How many? \nAnswer:",
        "harness_target": "2+2=<<2+2=4>>4\n#### 4\n",
    }
    assert (a.prompt, a.response, a.id, a.meta) == ("How many?", "2+2=<<2+2=4>>4\n#### 4", "0", meta)
    assert (b.id, b.meta["final_answer"]) == ("1", "1,000")


@pytest.mark.parametrize(
    ("record", "needle"),
    [
        ({"question": "Q", "answer": "no marker 4"}, "'####"),
        ({"question": "Q", "answer": "x\n####  "}, "empty final answer"),
        ({"answer": "#### 1"}, "missing key 'question'"),
    ],
)
def test_gsm8k_converter_errors(tmp_path: Path, record: dict[str, str], needle: str) -> None:
    write_lines(tmp_path / "g.jsonl", [rec(question="Q", answer="#### 1"), json.dumps(record)])
    msg = error_of({"path": "g.jsonl", "format": "gsm8k"}, tmp_path)
    assert_mentions(msg, "g.jsonl", "line 2", needle)


def test_mbpp_converter_sanitized_shape(tmp_path: Path) -> None:
    row = {
        "task_id": 602,
        "prompt": "Add.",
        "code": "def f(a, b):\r\n  return a + b\r\n",
        "test_imports": ["import math"],
        "test_list": ["assert f(1, 2) == 3"],
    }
    (tmp_path / "s.json").write_text(json.dumps([row]))
    (ex,) = load_source({"path": "s.json", "format": "mbpp", "split": "train"}, tmp_path)
    assert ex.id == "602"
    assert ex.response == "def f(a, b):\n  return a + b"
    assert ex.prompt == (
        "You are an expert Python programmer, and here is your task: Add. Your code should pass these tests:\n\n"
        "assert f(1, 2) == 3"
    )
    assert ex.meta == {
        "test_list": ["assert f(1, 2) == 3"],
        "test_setup_code": "import math",
        "challenge_test_list": [],
        # lm_eval's doc_to_text renders test_list[1] and [2] of a one-test task as empty lines
        "harness_prompt": (
            "You are an expert Python programmer, and here is your task: Add. Your code should pass these "
            "tests:\n\nassert f(1, 2) == 3\n\n\n[BEGIN]\n"
        ),
    }
    msg = error_of({"path": "s.json", "format": "mbpp", "split": "test"}, tmp_path)
    assert_mentions(msg, "no MBPP tasks", "11-510")


@pytest.mark.parametrize(
    ("change", "needle"),
    [({"task_id": "x"}, "'task_id' must be an integer"), ({"test_list": "assert 1"}, "'test_list' must be a list")],
)
def test_mbpp_converter_errors(tmp_path: Path, change: dict[str, object], needle: str) -> None:
    row = {"task_id": 1, "text": "t", "code": "c", "test_list": ["assert 1"], **change}
    write_lines(tmp_path / "m.jsonl", [json.dumps(row)])
    msg = error_of({"path": "m.jsonl", "format": "mbpp"}, tmp_path)
    assert_mentions(msg, "m.jsonl", "line 1", needle)


def test_mmlu_csv_converter_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "virology_test.csv"
    path.write_bytes(b'"Two\r\nlines?",None,"b, with comma",c ,d,C\r\nQ2,1,2,3,4,A')
    a, b = load_source({"path": str(path), "format": "mmlu"})
    assert a.prompt == "Two\nlines?\nA. None\nB. b, with comma\nC. c\nD. d\nAnswer:"
    assert a.response == "C"
    assert (a.id, b.id) == ("virology:0", "virology:1")
    harness = a.meta.pop("harness_prompt")  # the harness's doc_to_text: question stripped, options as written
    assert a.meta == {"choices": ["None", "b, with comma", "c", "d"], "answer": "C", "subject": "virology"}
    assert harness.startswith("Two\r\nlines?\nA. None\nB. b, with comma") and harness.endswith("\nAnswer:")

    path.write_text("Q,1,2,3,4,A\nQ,1,2,3,4,E\n")
    msg = error_of({"path": str(path), "format": "mmlu"})
    assert_mentions(msg, "virology_test.csv: row 2", "'E'", "A, B, C, D")
    path.write_text("Q,1,2,3,4,A\nQ,1,2,3,A\n")
    msg = error_of({"path": str(path), "format": "mmlu"})
    assert_mentions(msg, "virology_test.csv: row 2", "expected 6 columns", "got 5")


def test_mmlu_dict_converter(tmp_path: Path) -> None:
    rows = [{"question": "Q?", "subject": "anatomy", "choices": ["w", "x", "y", "z"], "answer": 1}]
    (tmp_path / "m.json").write_text(json.dumps(rows))
    (ex,) = load_source({"path": "m.json", "format": "mmlu"}, tmp_path)
    assert (ex.response, ex.id, ex.meta["subject"]) == ("B", "anatomy:0", "anatomy")
    rows[0]["answer"] = 4
    (tmp_path / "m.json").write_text(json.dumps(rows))
    assert "must be an integer 0-3" in error_of({"path": "m.json", "format": "mmlu"}, tmp_path)


# ------------------------------------------------------------------------------------------------
# Real data (read in place from /work/shared/data/real)
# ------------------------------------------------------------------------------------------------


@needs_real
def test_gsm8k_real_via_hub_local_folder(offline_hf: Path) -> None:
    test = load_source({"hub": str(REAL / "gsm8k"), "split": "test", "format": "gsm8k"})
    assert len(test) == 1319
    assert all(ex.meta["final_answer"] for ex in test)
    assert all(ex.response.splitlines()[-1].startswith("####") for ex in test)
    assert (test[0].id, test[0].meta["final_answer"]) == ("0", "18")
    limited = load_source({"hub": str(REAL / "gsm8k"), "split": "test", "format": "gsm8k", "limit": 5})
    assert [ex.id for ex in limited] == [ex.id for ex in test[:5]]


@needs_real
def test_gsm8k_real_train_via_local_path() -> None:
    train = load_source({"path": str(REAL / "gsm8k" / "train.jsonl"), "format": "gsm8k"})
    assert len(train) == 7473
    assert all(ex.meta["final_answer"] and "####" not in ex.meta["final_answer"] for ex in train)


@needs_real
@pytest.mark.parametrize(
    ("split", "count", "first", "last"),
    [("prompt", 10, 1, 10), ("test", 500, 11, 510), ("validation", 90, 511, 600), ("train", 374, 601, 974)],
)
def test_mbpp_real_local_splits(split: str, count: int, first: int, last: int) -> None:
    examples = load_source({"path": str(REAL / "mbpp" / "mbpp.jsonl"), "format": "mbpp", "split": split})
    assert len(examples) == count
    assert [int(ex.id) for ex in examples] == list(range(first, last + 1))
    assert all("\r" not in ex.response and ex.response for ex in examples)
    assert all(len(ex.meta["test_list"]) == 3 for ex in examples)
    assert all(ex.prompt.endswith(ex.meta["test_list"][-1]) for ex in examples)


@needs_real
def test_mbpp_real_meta_quirks() -> None:
    by_id = {ex.id: ex for ex in load_source({"path": str(REAL / "mbpp" / "mbpp.jsonl"), "format": "mbpp"})}
    assert len(by_id) == 974
    assert sorted(i for i, ex in by_id.items() if ex.meta["test_setup_code"]) == ["367", "927"]
    assert "\r" not in by_id["367"].meta["test_setup_code"]
    assert sum(bool(ex.meta["challenge_test_list"]) for ex in by_id.values()) == 11


@needs_real
def test_mbpp_real_via_hub_json_builder(offline_hf: Path) -> None:
    spec = {"hub": "json", "data_files": str(REAL / "mbpp" / "mbpp.jsonl"), "split": "train", "format": "mbpp"}
    examples = load_source(spec)
    assert len(examples) == 974
    local = load_source({"path": str(REAL / "mbpp" / "mbpp.jsonl"), "format": "mbpp"})
    assert [(ex.id, ex.prompt, ex.response) for ex in examples] == [(ex.id, ex.prompt, ex.response) for ex in local]


@needs_real
def test_mbpp_real_sanitized() -> None:
    examples = load_source({"path": str(REAL / "mbpp" / "sanitized-mbpp.json"), "format": "mbpp", "split": "test"})
    assert len(examples) == 257
    assert sum(ex.meta["test_setup_code"] == "import math" for ex in examples) > 0


MMLU_COUNTS = {
    ("test", "anatomy"): 135,
    ("test", "clinical_knowledge"): 265,
    ("test", "college_medicine"): 173,
    ("test", "professional_medicine"): 272,
    ("test", "college_physics"): 102,
    ("test", "high_school_physics"): 151,
    ("test", "conceptual_physics"): 235,
    ("val", "college_physics"): 11,
    ("val", "clinical_knowledge"): 29,
    ("dev", "clinical_knowledge"): 5,
}


def mmlu_file(split: str, subject: str) -> str:
    return str(REAL / "mmlu" / "data" / split / f"{subject}_{split}.csv")


@needs_real
@pytest.mark.parametrize(("split", "subject"), list(MMLU_COUNTS))
def test_mmlu_real_counts(split: str, subject: str) -> None:
    examples = load_source({"path": mmlu_file(split, subject), "format": "mmlu"})
    assert len(examples) == MMLU_COUNTS[split, subject]
    assert all(ex.response in "ABCD" and len(ex.response) == 1 for ex in examples)
    assert all(ex.meta["subject"] == subject and ex.meta["answer"] == ex.response for ex in examples)
    assert all(ex.prompt.endswith("\nAnswer:") and "\r" not in ex.prompt for ex in examples)


@needs_real
def test_mmlu_real_literal_none_options_kept() -> None:
    physics = load_source({"path": mmlu_file("test", "college_physics"), "format": "mmlu"})
    assert physics[60].meta["choices"][3] == "None"  # README "row 61", 1-based
    assert "\nD. None\n" in physics[60].prompt
    conceptual = load_source({"path": mmlu_file("val", "conceptual_physics"), "format": "mmlu"})
    assert conceptual[16].meta["choices"][0] == "None"  # README "row 17"


@needs_real
def test_mmlu_real_medicine_list_spec() -> None:
    spec = [{"path": mmlu_file("test", s), "format": "mmlu"} for s in MEDICINE]
    examples = load_source(spec)
    assert len(examples) == 845
    assert len({ex.id for ex in examples}) == 845
    assert [ex.meta["subject"] for ex in (examples[0], examples[-1])] == ["anatomy", "professional_medicine"]


@needs_real
def test_mmlu_real_crlf_multiline_fields() -> None:
    # CRLF file without a final newline; CRLF inside quoted multi-line questions.
    val = load_source({"path": mmlu_file("val", "college_physics"), "format": "mmlu"})
    assert "\nI. The average velocity" in val[8].prompt
    medicine = load_source({"path": mmlu_file("test", "college_medicine"), "format": "mmlu"})
    assert sum("\n" in ex.prompt.split("\nA. ")[0] for ex in medicine) == 16


@needs_real
def test_hub_folder_and_data_files_resolve_against_base_dir(offline_hf: Path) -> None:
    gsm = load_source({"hub": "gsm8k", "split": "test", "format": "gsm8k", "limit": 3}, base_dir=REAL)
    assert [ex.id for ex in gsm] == ["0", "1", "2"]
    spec = {"hub": "json", "data_files": "mbpp/mbpp.jsonl", "split": "train", "format": "mbpp", "limit": 2}
    assert [ex.id for ex in load_source(spec, base_dir=REAL)] == ["1", "2"]


def test_spec_errors_name_the_file(tmp_path: Path) -> None:
    msg = error_of([{"path": "ok.jsonl"}, {"path": "data/x.jsonl", "lmit": 3}], tmp_path)
    assert_mentions(msg, "list item 1", "'data/x.jsonl'", "'lmit'")


def test_nested_list_spec_rejected(tmp_path: Path) -> None:
    assert_mentions(error_of(["a.jsonl", ["b.jsonl"]], tmp_path), "list item 1", "nested list")


def test_null_valued_keys_count_as_absent(tmp_path: Path) -> None:
    write_lines(tmp_path / "a.jsonl", [rec(prompt="p", response="r")])
    spec = {"path": "a.jsonl", "hub": None, "name": None, "split": None, "revision": None, "limit": None}
    assert len(load_source(spec, tmp_path)) == 1
