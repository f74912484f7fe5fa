"""Tests for :mod:`complementarity.prepare`: sharding, validation carving, leakage and normalization."""

from __future__ import annotations

import json
import random
import unicodedata
from pathlib import Path

import pytest

from complementarity.errors import DataError
from complementarity.prepare import (
    carve_validation,
    drop_duplicates,
    normalize,
    normalize_text,
    prepare_domains,
    remove_leakage,
)
from complementarity.records import Example
from complementarity.shards import random_shards

DATA = {"validation_fraction": 0.1, "validation_max": 500, "leakage": "error", "seed": 0}


def examples(n: int, domain: str = "d", prefix: str = "p") -> list[Example]:
    return [Example(f"{prefix}{i}", f"r{i}", f"{domain}-{i}", domain=domain) for i in range(n)]


def ids_by_shard(shards: dict[str, list[Example]]) -> dict[str, list[str]]:
    return {sid: [ex.id for ex in exs] for sid, exs in shards.items()}


def write_records(path: Path, records: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in records), encoding="utf-8")


# ------------------------------------------------------------------------------------------------
# random_shards
# ------------------------------------------------------------------------------------------------

POOL = examples(23, "a") + examples(24, "b")
IDS = [f"shard{i:02d}" for i in range(1, 6)]


def test_random_shards_disjoint_complete_near_equal() -> None:
    shards = random_shards(POOL, 5, seed=0, ids=IDS)
    assert list(shards) == IDS
    seen = [(ex.domain, ex.id) for exs in shards.values() for ex in exs]
    assert len(seen) == len(set(seen)), "shards overlap"
    assert set(seen) == {(ex.domain, ex.id) for ex in POOL}, "shards do not cover the input"
    sizes = [len(exs) for exs in shards.values()]
    assert sum(sizes) == len(POOL)
    assert max(sizes) - min(sizes) <= 1, sizes


def test_random_shards_stable_under_same_seed() -> None:
    assert ids_by_shard(random_shards(POOL, 5, seed=3, ids=IDS)) == ids_by_shard(
        random_shards(list(POOL), 5, seed=3, ids=IDS)
    )


def test_random_shards_independent_of_input_order() -> None:
    expected = ids_by_shard(random_shards(POOL, 5, seed=0, ids=IDS))
    rng = random.Random(11)
    for _ in range(5):
        shuffled = list(POOL)
        rng.shuffle(shuffled)
        assert shuffled != POOL
        assert ids_by_shard(random_shards(shuffled, 5, seed=0, ids=IDS)) == expected


def test_random_shards_shuffle_mixes_domains() -> None:
    shards = random_shards(POOL, 5, seed=0, ids=IDS)
    assert sum(len({ex.domain for ex in exs}) == 2 for exs in shards.values()) >= 3


def test_random_shards_depend_on_seed() -> None:
    assert ids_by_shard(random_shards(POOL, 5, seed=0, ids=IDS)) != ids_by_shard(
        random_shards(POOL, 5, seed=1, ids=IDS)
    )


def test_random_shards_n_equal_records() -> None:
    shards = random_shards(examples(3), 3, seed=0, ids=["x", "y", "z"])
    assert [len(v) for v in shards.values()] == [1, 1, 1]


def test_random_shards_too_many_shards() -> None:
    with pytest.raises(DataError) as info:
        random_shards(examples(4), 5, seed=0, ids=IDS)
    msg = str(info.value)
    assert "n_shards" in msg and "N=5" in msg and "4" in msg


# ------------------------------------------------------------------------------------------------
# carve_validation
# ------------------------------------------------------------------------------------------------


def test_carve_keeps_shared_prompts_together() -> None:
    exs = []
    for i in range(40):
        for j in range(3):  # three records per prompt, different responses
            exs.append(Example(f"prompt {i}", f"resp {i}/{j}", f"{i}-{j}"))
    train, val = carve_validation(exs, fraction=0.25, cap=None, seed=0, domain="d")
    train_prompts = {ex.prompt for ex in train}
    val_prompts = {ex.prompt for ex in val}
    assert not train_prompts & val_prompts
    assert len(val_prompts) == 10  # 25% of 40 prompts
    assert len(val) == 30  # every record of each carved prompt
    assert sorted(ex.id for ex in train + val) == sorted(ex.id for ex in exs)


def test_carve_fraction_and_cap() -> None:
    exs = examples(200)
    train, val = carve_validation(exs, fraction=0.1, cap=None, seed=0, domain="d")
    assert (len(train), len(val)) == (180, 20)
    train, val = carve_validation(exs, fraction=0.1, cap=7, seed=0, domain="d")
    assert (len(train), len(val)) == (193, 7)


def test_carve_at_least_one_each_side() -> None:
    train, val = carve_validation(examples(2), fraction=0.9, cap=None, seed=0, domain="d")
    assert (len(train), len(val)) == (1, 1)
    train, val = carve_validation(examples(5), fraction=0.01, cap=None, seed=0, domain="d")
    assert (len(train), len(val)) == (4, 1)


def test_carve_deterministic_and_seeded() -> None:
    exs = examples(100)
    first = carve_validation(exs, fraction=0.2, cap=None, seed=0, domain="d")
    again = carve_validation(list(reversed(exs)), fraction=0.2, cap=None, seed=0, domain="d")
    other = carve_validation(exs, fraction=0.2, cap=None, seed=1, domain="d")
    assert {ex.id for ex in first[1]} == {ex.id for ex in again[1]}
    assert {ex.id for ex in first[1]} != {ex.id for ex in other[1]}


def test_carve_too_few_prompts() -> None:
    same_prompt = [Example("only", f"r{i}", str(i)) for i in range(5)]
    with pytest.raises(DataError) as info:
        carve_validation(same_prompt, fraction=0.5, cap=None, seed=0, domain="maths")
    msg = str(info.value)
    assert "domains.maths.train" in msg and "1 distinct prompt" in msg


def test_carve_too_few_prompts_names_the_fix() -> None:
    with pytest.raises(DataError) as info:
        carve_validation([], fraction=0.5, cap=None, seed=0, domain="maths")
    msg = str(info.value)
    assert "domains.maths.validation" in msg, msg
    assert "{domain}" not in msg, msg


# ------------------------------------------------------------------------------------------------
# remove_leakage
# ------------------------------------------------------------------------------------------------


def test_leakage_none_found() -> None:
    train = examples(3)
    kept, dropped = remove_leakage(train, {"validation": {"zzz"}}, policy="error", where="domains.d.train")
    assert kept == train and dropped == 0


def test_leakage_policy_error() -> None:
    train = examples(5)
    held = {"validation": {"p1", "p3"}, "test": {"nothing"}}
    with pytest.raises(DataError) as info:
        remove_leakage(train, held, policy="error", where="domains.d.train")
    msg = str(info.value)
    assert "domains.d.train" in msg
    assert "2 training record(s)" in msg
    assert "data.leakage: drop" in msg
    assert "'d-1'" in msg and "'d-3'" in msg


def test_leakage_policy_drop() -> None:
    train = examples(5)
    held = {"validation": {"p1"}, "test": {"p3", "p4"}}
    kept, dropped = remove_leakage(train, held, policy="drop", where="domains.d.train")
    assert dropped == 3
    assert [ex.id for ex in kept] == ["d-0", "d-2"]


def test_leakage_drop_counts_record_once_when_in_two_sets() -> None:
    kept, dropped = remove_leakage(
        examples(2), {"validation": {"p0"}, "test": {"p0"}}, policy="drop", where="domains.d.train"
    )
    assert dropped == 1 and [ex.id for ex in kept] == ["d-1"]


def test_leakage_error_counts_record_once_when_in_two_sets() -> None:
    with pytest.raises(DataError) as info:
        remove_leakage(examples(2), {"validation": {"p0"}, "test": {"p0"}}, policy="error", where="domains.d.train")
    assert "1 training record(s)" in str(info.value), str(info.value)


# ------------------------------------------------------------------------------------------------
# Normalization and duplicates
# ------------------------------------------------------------------------------------------------


def test_normalize_text() -> None:
    assert normalize_text("a\r\nb\rc") == "a\nb\nc"
    assert normalize_text("  line one   \nline two\t\n\n") == "line one\nline two"
    decomposed = "cafe\u0301"
    assert normalize_text(decomposed) == "caf\u00e9"
    assert unicodedata.is_normalized("NFC", normalize_text(decomposed))
    assert normalize_text("    indented\n  kept") == "indented\n  kept"  # inner leading spaces stay


def test_normalize_sets_domain() -> None:
    out = normalize([Example(" p \r\n", "r  ", "1")], domain="dom")
    assert out == [Example("p", "r", "1", domain="dom")]
    assert out[0].domain == "dom"


def test_drop_duplicates() -> None:
    exs = [
        Example("p", "r", "1"),
        Example("p", "r", "2"),  # exact duplicate of 1
        Example("p", "other", "3"),  # same prompt, different response: kept
        Example("q", "r", "4"),
        Example("q", "r", "5"),
    ]
    kept, dropped = drop_duplicates(exs)
    assert [ex.id for ex in kept] == ["1", "3", "4"]
    assert dropped == 2


# ------------------------------------------------------------------------------------------------
# prepare_domains
# ------------------------------------------------------------------------------------------------


def test_prepare_carves_validation(tmp_path: Path) -> None:
    records = [(f"q{i}", f"a{i}") for i in range(50)] + [("q0", "a0")]  # one exact duplicate
    write_records(tmp_path / "a.jsonl", records)
    write_records(tmp_path / "a_test.jsonl", [("t1", "x"), ("t2", "y")])
    out, report = prepare_domains({"a": {"train": "a.jsonl", "test": "a_test.jsonl"}}, DATA, base_dir=tmp_path)
    splits = out["a"]
    assert len(splits["validation"]) == 5  # 10% of 50 distinct prompts
    assert len(splits["train"]) == 45
    assert len(splits["test"]) == 2
    assert not {ex.prompt for ex in splits["train"]} & {ex.prompt for ex in splits["validation"]}
    assert all(ex.domain == "a" for split in splits.values() for ex in split)
    rep = report["domains"]["a"]
    assert rep["validation_carved_from_train"] is True
    assert rep["train_duplicates_dropped"] == 1
    assert (rep["train"], rep["validation"], rep["test"]) == (45, 5, 2)
    assert rep["leaked_train_records_dropped"] == 0


def test_prepare_given_validation_is_not_carved(tmp_path: Path) -> None:
    write_records(tmp_path / "a.jsonl", [(f"q{i}", "x") for i in range(10)])
    write_records(tmp_path / "a_val.jsonl", [("v1", "x"), ("v2", "y")])
    out, report = prepare_domains({"a": {"train": "a.jsonl", "validation": "a_val.jsonl"}}, DATA, tmp_path)
    assert [ex.prompt for ex in out["a"]["validation"]] == ["v1", "v2"]
    assert len(out["a"]["train"]) == 10
    assert "validation_carved_from_train" not in report["domains"]["a"]


def cross_domain_setup(tmp_path: Path) -> dict[str, dict[str, str]]:
    """Domain a's validation prompt 'shared' is also in domain b's training data."""
    write_records(tmp_path / "a_train.jsonl", [(f"a{i}", "x") for i in range(5)])
    write_records(tmp_path / "a_val.jsonl", [("shared", "x"), ("a-val", "y")])
    write_records(tmp_path / "b_train.jsonl", [(f"b{i}", "x") for i in range(5)] + [("shared", "z")])
    write_records(tmp_path / "b_val.jsonl", [("b-val", "y")])
    return {
        "a": {"train": "a_train.jsonl", "validation": "a_val.jsonl"},
        "b": {"train": "b_train.jsonl", "validation": "b_val.jsonl"},
    }


def test_prepare_cross_domain_leakage_error(tmp_path: Path) -> None:
    domains = cross_domain_setup(tmp_path)
    with pytest.raises(DataError) as info:
        prepare_domains(domains, DATA, tmp_path)
    msg = str(info.value)
    assert "domains.b.train" in msg and "1 training record(s)" in msg and "shared" in msg
    assert "data.leakage: drop" in msg


def test_prepare_cross_domain_leakage_drop(tmp_path: Path) -> None:
    domains = cross_domain_setup(tmp_path)
    out, report = prepare_domains(domains, {**DATA, "leakage": "drop"}, tmp_path)
    assert "shared" not in {ex.prompt for ex in out["b"]["train"]}
    assert len(out["b"]["train"]) == 5
    assert report["domains"]["b"]["leaked_train_records_dropped"] == 1
    assert report["domains"]["b"]["train"] == 5
    assert report["domains"]["a"]["leaked_train_records_dropped"] == 0
    assert "shared" in {ex.prompt for ex in out["a"]["validation"]}  # the validation side is kept


def test_prepare_validation_prompt_in_test_set(tmp_path: Path) -> None:
    write_records(tmp_path / "train.jsonl", [(f"q{i}", "x") for i in range(5)])
    write_records(tmp_path / "val.jsonl", [("v1", "x"), ("v2", "x")])
    write_records(tmp_path / "test.jsonl", [("v1", "x")])
    domains = {"a": {"train": "train.jsonl", "validation": "val.jsonl", "test": "test.jsonl"}}
    with pytest.raises(DataError, match=r"domains\.a\.validation"):
        prepare_domains(domains, DATA, tmp_path)
    out, report = prepare_domains(domains, {**DATA, "leakage": "drop"}, tmp_path)
    assert [ex.prompt for ex in out["a"]["validation"]] == ["v2"]
    assert report["domains"]["a"]["leaked_validation_records_dropped"] == 1


def test_prepare_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(DataError, match=r"empty\.jsonl"):
        prepare_domains({"a": {"train": "empty.jsonl"}}, DATA, tmp_path)


def test_prepare_carved_validation_leaks_into_other_domain(tmp_path: Path) -> None:
    """Domain b's training data repeats all of a's prompts: a's carved validation prompts leak into b."""
    write_records(tmp_path / "a.jsonl", [(f"q{i}", "x") for i in range(20)])
    write_records(tmp_path / "b.jsonl", [(f"q{i}", "y") for i in range(20)] + [(f"b{i}", "y") for i in range(10)])
    domains = {"a": {"train": "a.jsonl"}, "b": {"train": "b.jsonl"}}
    with pytest.raises(DataError, match=r"data\.leakage: drop"):
        prepare_domains(domains, DATA, tmp_path)
    out, report = prepare_domains(domains, {**DATA, "leakage": "drop"}, tmp_path)
    held = {ex.prompt for d in out.values() for ex in d["validation"]}
    assert len(out["a"]["validation"]) == 2 and len(out["b"]["validation"]) == 3
    for name, n_before_carving in (("a", 20), ("b", 30)):
        train = out[name]["train"]
        assert not {ex.prompt for ex in train} & held
        dropped = report["domains"][name]["leaked_train_records_dropped"]
        assert len(train) + len(out[name]["validation"]) + dropped == n_before_carving
    a_val = {ex.prompt for ex in out["a"]["validation"]}
    b_val = {ex.prompt for ex in out["b"]["validation"]}
    a_prompts = {f"q{i}" for i in range(20)}
    assert report["domains"]["b"]["leaked_train_records_dropped"] == len(a_val - b_val) >= 1
    assert report["domains"]["a"]["leaked_train_records_dropped"] == len((b_val & a_prompts) - a_val)
