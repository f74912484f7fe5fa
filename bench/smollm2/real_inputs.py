"""Inputs of config/smollm2-real.yaml: random shards of real GSM8K / MBPP / MMLU, a few corrupted.

    python bench/smollm2/real_inputs.py            (from the repository root; then run the config)

Reads the local copies in ../shared/data/real (never copied into the repository) through the
package's own loaders and writes, under results/inputs/smollm2-real/ (git-ignored):

- ``validation/<domain>.jsonl``: V_j, ``--validation`` records per domain drawn at random;
- ``shards/shardNN.jsonl``: ``--shards`` random disjoint shards of the rest, ``--per-shard`` records
  per domain (fewer when a domain runs out: MMLU physics has 54 validation questions);
- ``MANIFEST.json``: which shards are corrupted, the seed and the counts.

A corrupted shard keeps its prompts and the responses' format but pairs each prompt with a wrong
answer: another question's GSM8K solution (ending ``#### <number>``), another task's MBPP code, or a
different MMLU letter. Training records never share a prompt with a validation or test record (MMLU
repeats questions across its splits; those are left out).
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from complementarity.records import Example
from complementarity.sources import load_source

REPO = Path(__file__).resolve().parents[2]
MEDICINE = ["anatomy", "clinical_knowledge", "college_medicine", "professional_medicine"]
PHYSICS = ["college_physics", "high_school_physics", "conceptual_physics"]


def specs(real: str) -> dict[str, dict[str, object]]:
    """Training pool and test set of each domain, as source specs relative to the repository."""

    def mmlu(subjects: list[str], split: str) -> list[dict[str, str]]:
        return [{"path": f"{real}/mmlu/data/{split}/{s}_{split}.csv", "format": "mmlu"} for s in subjects]

    return {
        "math": {
            "train": {"path": f"{real}/gsm8k/train.jsonl", "format": "gsm8k"},
            "test": {"path": f"{real}/gsm8k/test.jsonl", "format": "gsm8k"},
        },
        "coding": {
            "train": {"path": f"{real}/mbpp/mbpp.jsonl", "split": "train", "format": "mbpp"},
            "test": {"path": f"{real}/mbpp/mbpp.jsonl", "split": "test", "format": "mbpp"},
        },
        "medicine": {"train": mmlu(MEDICINE, "val"), "test": mmlu(MEDICINE, "test")},
        "physics": {"train": mmlu(PHYSICS, "val"), "test": mmlu(PHYSICS, "test")},
    }


def corrupt(domain: str, records: list[Example], rng: random.Random) -> list[Example]:
    """Wrong answers in the right format (see the module docstring)."""
    if domain in ("medicine", "physics"):
        out = []
        for ex in records:
            wrong = rng.choice([c for c in "ABCD" if c != ex.response.strip()])
            out.append(Example(prompt=ex.prompt, response=wrong, id=ex.id))
        return out
    # A derangement: every prompt gets another record's response (a rotation of a shuffled order).
    order = list(range(len(records)))
    rng.shuffle(order)
    answers = {order[i]: records[order[(i + 1) % len(order)]].response for i in range(len(order))}
    return [Example(prompt=ex.prompt, response=answers[i], id=ex.id) for i, ex in enumerate(records)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", default="../shared/data/real", help="the real data, relative to the repository")
    ap.add_argument("--out", default="results/inputs/smollm2-real", help="output folder (relative to the repository)")
    ap.add_argument("--shards", type=int, default=10, help="candidate shards N")
    ap.add_argument("--corrupted", type=int, default=3, help="how many of them get wrong answers")
    ap.add_argument("--per-shard", type=int, default=6, help="records per domain per shard")
    ap.add_argument("--validation", type=int, default=16, help="validation records per domain")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    rng = random.Random(a.seed)
    out = REPO / a.out
    shard_ids = [f"shard{i:02d}" for i in range(1, a.shards + 1)]
    corrupted = sorted(rng.sample(shard_ids, a.corrupted))
    shards: dict[str, list[Example]] = {s: [] for s in shard_ids}
    counts: dict[str, dict[str, int]] = {}
    for domain, spec in specs(a.real).items():
        test_prompts = {ex.prompt for ex in load_source(spec["test"], REPO)}
        seen: set[str] = set()
        pool = []
        for ex in load_source(spec["train"], REPO):
            if ex.prompt not in test_prompts and ex.prompt not in seen:
                seen.add(ex.prompt)
                pool.append(Example(prompt=ex.prompt, response=ex.response, id=f"{domain}-{ex.id}"))
        rng.shuffle(pool)
        validation, rest = pool[: a.validation], pool[a.validation :]
        path = out / "validation" / f"{domain}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(ex.to_json() + "\n" for ex in validation))
        per = min(a.per_shard, len(rest) // a.shards)
        for i, sid in enumerate(shard_ids):
            part = rest[i * per : (i + 1) * per]
            shards[sid].extend(corrupt(domain, part, rng) if sid in corrupted else part)
        counts[domain] = {"pool": len(pool), "validation": len(validation), "per_shard": per}
    for sid, records in shards.items():
        rng.shuffle(records)
        path = out / "shards" / f"{sid}.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(
            "".join(json.dumps({"id": r.id, "prompt": r.prompt, "response": r.response}) + "\n" for r in records)
        )
    manifest = {"seed": a.seed, "shards": shard_ids, "corrupted": corrupted, "domains": counts, "real": a.real}
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(json.dumps(manifest))


if __name__ == "__main__":
    main()
