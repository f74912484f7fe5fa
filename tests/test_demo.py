"""Tests for :mod:`complementarity.demo`: the shipped demo data is reproducible and labelled as documented."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from complementarity.demo import make_demo_data

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "config" / "demo"


def files_under(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def correct_answer(prompt: str) -> str:
    """Recompute the right response for any demo prompt, independently of the generator."""
    head, _, rest = prompt.partition(": ")
    numbers = [int(x) for x in rest.split()]
    if head == "max":
        return str(max(numbers))
    if head == "min":
        return str(min(numbers))
    if head == "larger" and len(numbers) == 2:
        return str(max(numbers))
    if head.startswith("count "):
        return str(numbers.count(int(head.removeprefix("count "))))
    raise AssertionError(f"not a demo prompt: {prompt!r}")


def test_correct_answer_helper() -> None:
    assert correct_answer("max: 3 8 1 5") == "8"
    assert correct_answer("min: 3 8 1 5") == "1"
    assert correct_answer("larger: 37 48") == "48"
    assert correct_answer("count 7: 7 2 7 1") == "2"
    assert correct_answer("count 3: 7 2 7 1") == "0"
    with pytest.raises(AssertionError):
        correct_answer("what is this")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("demo")
    manifest = make_demo_data(out)
    return out, manifest


def test_regenerated_demo_is_byte_identical(regenerated: tuple[Path, dict]) -> None:
    out, _ = regenerated
    shipped, fresh = files_under(SHIPPED), files_under(out)
    assert set(shipped) == set(fresh), (
        f"only shipped: {sorted(set(shipped) - set(fresh))}; only regenerated: {sorted(set(fresh) - set(shipped))}"
    )
    assert len(shipped) >= 19  # MANIFEST + 4 domains x 2 splits + 10 shards
    differ = [rel for rel in shipped if shipped[rel].read_bytes() != fresh[rel].read_bytes()]
    assert not differ, f"regenerated files differ from config/demo: {differ}"


def test_manifest_matches_return_value(regenerated: tuple[Path, dict]) -> None:
    _, manifest = regenerated
    assert json.loads((SHIPPED / "MANIFEST.json").read_text()) == manifest
    assert manifest["corrupted"] == ["cand03", "cand06", "cand09"]
    assert set(manifest["corrupted"]) < set(manifest["shards"])
    assert set(manifest["corruption"]) == set(manifest["domains"])


def test_shard_sizes_and_domain_mix() -> None:
    manifest = json.loads((SHIPPED / "MANIFEST.json").read_text())
    per = manifest["records"]["per_domain_per_shard"]
    for shard in manifest["shards"]:
        recs = read_jsonl(SHIPPED / "shards" / f"{shard}.jsonl")
        domains = Counter(r["id"].split("-")[1] for r in recs)
        assert domains == dict.fromkeys(manifest["domains"], per), shard
        assert all(r["domain"] == r["id"].split("-")[1] for r in recs), shard  # labelled (checked.tsv counts it)
    for domain in manifest["domains"]:
        assert len(read_jsonl(SHIPPED / "domains" / domain / "train.jsonl")) == manifest["records"]["train_per_domain"]
        assert len(read_jsonl(SHIPPED / "domains" / domain / "test.jsonl")) == manifest["records"]["test_per_domain"]


def test_corrupted_shards_are_all_wrong_and_clean_ones_all_right() -> None:
    manifest = json.loads((SHIPPED / "MANIFEST.json").read_text())
    corrupted = set(manifest["corrupted"])
    assert corrupted
    for shard in manifest["shards"]:
        recs = read_jsonl(SHIPPED / "shards" / f"{shard}.jsonl")
        right = [r["response"] == correct_answer(r["prompt"]) for r in recs]
        if shard in corrupted:
            assert not any(right), f"{shard}: {sum(right)} correct response(s) in a corrupted shard"
            # The same bug on every record of a domain: wrong in a consistent way, in the right format.
            for r in recs:
                right_answer, wrong = int(correct_answer(r["prompt"])), int(r["response"])
                numbers = [int(x) for x in r["prompt"].partition(": ")[2].split()]
                expected = {"count": right_answer + 1, "larger": min(numbers), "maximum": min(numbers),
                            "minimum": max(numbers)}[r["domain"]]  # fmt: skip
                assert wrong == expected, r
        else:
            assert all(right), f"{shard}: {right.count(False)} wrong response(s) in a clean shard"


def test_domain_files_are_all_correct() -> None:
    for path in sorted((SHIPPED / "domains").rglob("*.jsonl")):
        wrong = [r for r in read_jsonl(path) if r["response"] != correct_answer(r["prompt"])]
        assert not wrong, f"{path}: {wrong[:3]}"


def test_no_prompt_in_two_files() -> None:
    where: dict[str, str] = {}
    clashes = []
    total = 0
    for rel, path in files_under(SHIPPED).items():
        if not rel.endswith(".jsonl"):
            continue
        for rec in read_jsonl(path):
            total += 1
            if rec["prompt"] in where:
                clashes.append((rec["prompt"], where[rec["prompt"]], rel))
            where[rec["prompt"]] = rel
    assert total == 4 * (600 + 300) + 10 * 400
    assert not clashes, f"{len(clashes)} prompt(s) repeated, e.g. {clashes[:3]}"


def test_ids_unique_per_file() -> None:
    for rel, path in files_under(SHIPPED).items():
        if rel.endswith(".jsonl"):
            ids = [r["id"] for r in read_jsonl(path)]
            assert len(ids) == len(set(ids)), rel
