"""Tests for :mod:`complementarity.demo`: both shipped demo data sets (``config/digits`` for the embedded
default, ``config/demo`` for ``config/text.yaml``) are reproducible and labelled as documented."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from complementarity.demo import DESIGNS, UNITS, make_demo_data

REPO = Path(__file__).resolve().parents[1]
SHIPPED = {design: REPO / spec.out for design, spec in DESIGNS.items()}
N_TEST = {"text": 200, "digits": 300}

pytestmark = pytest.mark.parametrize("design", sorted(DESIGNS))


def files_under(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def correct_answer(prompt: str) -> str:
    """Recompute the right response for any demo prompt (either design), independently of the generator."""
    if prompt.startswith("reverse: "):
        return prompt.removeprefix("reverse: ")[::-1]
    if prompt.startswith("sort: "):
        return " ".join(sorted(prompt.removeprefix("sort: ").split(), key=int))
    parts = prompt.split()
    if len(parts) == 4 and parts[1] in "+-" and parts[3] == "=":
        a, b = int(parts[0]), int(parts[2])
        return str(a + b if parts[1] == "+" else a - b)
    if len(parts) == 5 and parts[2] == "in" and parts[4] == "=":
        factors = {(src, dst): f for src, dst, f in UNITS}
        return str(int(parts[0]) * factors[(parts[1], parts[3])])
    head, _, rest = prompt.partition(": ")
    numbers = [int(x) for x in rest.split()] if rest and all(x.isdigit() for x in rest.split()) else []
    if numbers and head == "max":
        return str(max(numbers))
    if numbers and head == "min":
        return str(min(numbers))
    if numbers and head.startswith("after "):
        return str(numbers[numbers.index(int(head.removeprefix("after "))) + 1])
    if numbers and head.startswith("count "):
        return str(numbers.count(int(head.removeprefix("count "))))
    raise AssertionError(f"not a demo prompt: {prompt!r}")


def test_correct_answer_helper(design: str) -> None:
    if design == "text":
        assert correct_answer("37 + 48 =") == "85"
        assert correct_answer("48 - 41 =") == "7"
        assert correct_answer("reverse: plamo") == "omalp"
        assert correct_answer("sort: 5 2 9 1") == "1 2 5 9"
        assert correct_answer("3 km in m =") == "3000"
        assert correct_answer("2 h in min =") == "120"
    else:
        assert correct_answer("max: 3 8 1 5") == "8"
        assert correct_answer("min: 3 8 1 5") == "1"
        assert correct_answer("after 7: 3 7 1 5") == "1"
        assert correct_answer("count 7: 7 2 7 1") == "2"
        assert correct_answer("count 3: 7 2 7 1") == "0"
    with pytest.raises(AssertionError):
        correct_answer("what is this")


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    out = {}
    for design in DESIGNS:
        folder = tmp_path_factory.mktemp(design)
        out[design] = folder, make_demo_data(folder, design=design)
    return out


def test_regenerated_demo_is_byte_identical(design: str, regenerated) -> None:
    out, _ = regenerated[design]
    shipped, fresh = files_under(SHIPPED[design]), files_under(out)
    assert set(shipped) == set(fresh), (
        f"only shipped: {sorted(set(shipped) - set(fresh))}; only regenerated: {sorted(set(fresh) - set(shipped))}"
    )
    assert len(shipped) >= 19  # MANIFEST + 4 domains x 2 splits + 10 shards
    differ = [rel for rel in shipped if shipped[rel].read_bytes() != fresh[rel].read_bytes()]
    assert not differ, f"regenerated files differ from {DESIGNS[design].out}: {differ}"


def test_manifest_matches_return_value(design: str, regenerated) -> None:
    _, manifest = regenerated[design]
    assert json.loads((SHIPPED[design] / "MANIFEST.json").read_text()) == manifest
    assert manifest["corrupted"] == ["cand03", "cand06", "cand09"]
    assert set(manifest["corrupted"]) < set(manifest["shards"])
    assert set(manifest.get("corruption", manifest["domains"])) == set(manifest["domains"])
    assert ("corruption" in manifest) == (design == "digits")


def test_shard_sizes_and_domain_mix(design: str) -> None:
    root = SHIPPED[design]
    manifest = json.loads((root / "MANIFEST.json").read_text())
    per = manifest["records"]["per_domain_per_shard"]
    for shard in manifest["shards"]:
        recs = read_jsonl(root / "shards" / f"{shard}.jsonl")
        domains = Counter(r["id"].split("-")[1] for r in recs)
        assert domains == dict.fromkeys(manifest["domains"], per), shard
        if design == "digits":  # labelled: checked.tsv counts the shards' records by it
            assert all(r["domain"] == r["id"].split("-")[1] for r in recs), shard
        else:  # the text demo's files are as they always were
            assert not any("domain" in r for r in recs), shard
    assert manifest["records"]["test_per_domain"] == N_TEST[design]
    for domain in manifest["domains"]:
        assert len(read_jsonl(root / "domains" / domain / "train.jsonl")) == manifest["records"]["train_per_domain"]
        assert len(read_jsonl(root / "domains" / domain / "test.jsonl")) == manifest["records"]["test_per_domain"]


def test_corrupted_shards_are_all_wrong_and_clean_ones_all_right(design: str) -> None:
    root = SHIPPED[design]
    manifest = json.loads((root / "MANIFEST.json").read_text())
    corrupted = set(manifest["corrupted"])
    assert corrupted
    for shard in manifest["shards"]:
        recs = read_jsonl(root / "shards" / f"{shard}.jsonl")
        right = [r["response"] == correct_answer(r["prompt"]) for r in recs]
        if shard not in corrupted:
            assert all(right), f"{shard}: {right.count(False)} wrong response(s) in a clean shard"
            continue
        assert not any(right), f"{shard}: {sum(right)} correct response(s) in a corrupted shard"
        if design == "digits":
            # The same bug on every record of a domain: wrong in a consistent way, in the right format.
            for r in recs:
                right_answer, wrong = int(correct_answer(r["prompt"])), int(r["response"])
                numbers = [int(x) for x in r["prompt"].partition(": ")[2].split()]
                if r["domain"] == "after":  # the digit before the queried one
                    expected = numbers[numbers.index(int(r["prompt"].split(":")[0].split()[-1])) - 1]
                else:
                    expected = {"count": right_answer + 1, "maximum": min(numbers), "minimum": max(numbers)}[
                        r["domain"]
                    ]
                assert wrong == expected, r


def test_domain_files_are_all_correct(design: str) -> None:
    for path in sorted((SHIPPED[design] / "domains").rglob("*.jsonl")):
        wrong = [r for r in read_jsonl(path) if r["response"] != correct_answer(r["prompt"])]
        assert not wrong, f"{path}: {wrong[:3]}"


def test_no_prompt_in_two_files(design: str) -> None:
    where: dict[str, str] = {}
    clashes = []
    total = 0
    for rel, path in files_under(SHIPPED[design]).items():
        if not rel.endswith(".jsonl"):
            continue
        for rec in read_jsonl(path):
            total += 1
            if rec["prompt"] in where:
                clashes.append((rec["prompt"], where[rec["prompt"]], rel))
            where[rec["prompt"]] = rel
    assert total == 4 * (600 + N_TEST[design]) + 10 * 400
    assert not clashes, f"{len(clashes)} prompt(s) repeated, e.g. {clashes[:3]}"


def test_ids_unique_per_file(design: str) -> None:
    for rel, path in files_under(SHIPPED[design]).items():
        if rel.endswith(".jsonl"):
            ids = [r["id"] for r in read_jsonl(path)]
            assert len(ids) == len(set(ids)), rel
