"""Data for comparing selection rules: domain-skewed candidate shards with graded corruption.

The embedded demo's shards mix the four domains equally and are either clean or wholly corrupted, so
every rule picks the same clean shards. Here each shard has a *home* domain (``home_share`` of its
records; the rest spread evenly over the other domains) and a corruption level: that fraction of its
records has the response of another random record of the same domain (right format, wrong answer).
Top-k can then pick shards that all serve one domain, coverage should spread its picks, and the
threshold rule has a graded signal to cut. Prompts are unique across all files (no leakage).

``complementarity make-graded-data OUT`` writes ``OUT/domains/<d>/{train,test}.jsonl``,
``OUT/shards/<shard>.jsonl`` and ``OUT/MANIFEST.json``.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

from .demo import GENERATORS, draw_domain
from .records import Example, write_jsonl

# (home domain, corrupted fraction) per shard: two clean shards per home domain for arithmetic and
# reverse, one clean and one corrupted for sort and units, so that top-k has good shards of few domains.
DEFAULT_SHARDS = (
    ("arithmetic", 0.0),
    ("arithmetic", 0.0),
    ("reverse", 0.0),
    ("reverse", 0.25),
    ("sort", 0.0),
    ("sort", 0.5),
    ("units", 0.25),
    ("units", 0.75),
)


def make_graded_data(
    out_dir: str | Path,
    *,
    shards: tuple[tuple[str, float], ...] = DEFAULT_SHARDS,
    records_per_shard: int = 200,
    home_share: float = 0.7,
    n_train: int = 300,
    n_test: int = 100,
    seed: int = 4321,
) -> dict:
    out = Path(out_dir)
    rng = random.Random(seed)
    domains = list(GENERATORS)
    names = [f"g{i + 1:02d}-{home[:4]}-c{round(100 * frac):03d}" for i, (home, frac) in enumerate(shards)]
    # Records per (shard, domain).
    counts: dict[str, dict[str, int]] = {}
    for name, (home, _) in zip(names, shards, strict=True):
        others = [d for d in domains if d != home]
        n_home = round(home_share * records_per_shard)
        rest = records_per_shard - n_home
        counts[name] = {home: n_home} | {
            d: rest // len(others) + (i < rest % len(others)) for i, d in enumerate(others)
        }
    out_shards: dict[str, list[Example]] = {n: [] for n in names}
    for domain, gen in GENERATORS.items():
        need = n_train + n_test + sum(c[domain] for c in counts.values())
        rest = draw_domain(out, domain, gen, rng, need=need, n_train=n_train, n_test=n_test)
        responses = [r for _, r in rest]
        start = 0
        for name, (_, frac) in zip(names, shards, strict=True):
            chunk = rest[start : start + counts[name][domain]]
            start += len(chunk)
            bad = set(rng.sample(range(len(chunk)), round(frac * len(chunk))))
            for i, (p, r) in enumerate(chunk):
                if i in bad:
                    wrong = r
                    while wrong == r:
                        wrong = rng.choice(responses)
                    r = wrong
                out_shards[name].append(Example(p, r, f"{name}-{domain}-{i}"))
    for name, examples in out_shards.items():
        rng.shuffle(examples)
        write_jsonl(out / "shards" / f"{name}.jsonl", examples)
    manifest = {
        "seed": seed,
        "shards": {
            n: {"home": h, "corrupted": f, "records": counts[n]} for n, (h, f) in zip(names, shards, strict=True)
        },
        "train_per_domain": n_train,
        "test_per_domain": n_test,
    }
    (out / "MANIFEST.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
