"""Shards: form the N candidate shards, and check them all before any training starts.

Strategy random (the paper): pool every domain's training data, shuffle, cut into N near-equal
shards (``split``). Strategy files: normalize one given candidate file, drop duplicates and records
that leak validation/test prompts (``file``). Either way, ``check`` is the barrier that every shard
exists and is non-empty, and writes a table of their sizes.

CLI: ``complementarity shards split|file|check`` (rules make_shards, make_shard, check_shards in
workflow/rules/shards.smk).
"""

from __future__ import annotations

import logging
import random
from collections import Counter
from pathlib import Path

from .arguments import stem
from .errors import DataError
from .records import Example

log = logging.getLogger(__name__)


def random_shards(train: list[Example], n_shards: int, seed: int, ids: list[str]) -> dict[str, list[Example]]:
    """The paper's sharding: shuffle the pooled training data and cut it into N disjoint, near-equal shards."""
    if n_shards > len(train):
        raise DataError(
            f"sharding.n_shards: N={n_shards} is larger than the {len(train)} pooled training records; "
            "lower n_shards or add training data"
        )
    pool = sorted(train, key=lambda ex: (ex.domain or "", ex.id))  # order-independent of input order
    random.Random(seed).shuffle(pool)
    base, extra = divmod(len(pool), n_shards)
    shards, start = {}, 0
    for i, sid in enumerate(ids):
        size = base + (1 if i < extra else 0)
        shards[sid] = pool[start : start + size]
        start += size
    return shards


def shard_file(source, shard: str, held_out: dict[str, list[Example]], *, leakage: str) -> tuple[list[Example], dict]:
    """One candidate shard from its source: normalized, de-duplicated, checked against held-out prompts.

    ``held_out`` maps split ("validation", "test") to its prepared examples; returns the shard's
    examples and its report (records, duplicates and leaked records dropped).
    """
    from .prepare import drop_duplicates, normalize, remove_leakage
    from .sources import load_source

    exs, dups = drop_duplicates(normalize(load_source(source)))
    prompts = {split: {ex.prompt for ex in examples} for split, examples in held_out.items()}
    exs, leaked = remove_leakage(exs, prompts, policy=leakage, where=f"shard {shard!r} ({source})")
    if not exs:
        raise DataError(f"shard {shard!r} ({source}) has no records left; remove it from sharding.files or fix it")
    return exs, {"records": len(exs), "duplicates_dropped": dups, "leaked_dropped": leaked}


def shard_sizes(shards: dict[str, list[Example]]) -> str:
    """checked.tsv: one row per shard (records, records per domain); every shard must be non-empty."""
    empty = [sid for sid, exs in shards.items() if not exs]
    if empty:
        raise DataError(f"empty shard(s): {', '.join(empty)}; remove them from sharding.files or add records")
    rows = []
    for sid, exs in shards.items():
        domains = Counter(ex.domain or "unknown" for ex in exs)
        rows.append(f"{sid}\t{len(exs)}\t{', '.join(f'{d}={n}' for d, n in sorted(domains.items()))}\n")
    return "shard\trecords\tdomains\n" + "".join(rows)


# --- CLI -------------------------------------------------------------------------------------------


def run_split(a) -> None:
    from .records import read_prepared, write_jsonl

    pool = [ex for f in a.train for ex in read_prepared(f)]
    ids = [stem(p) for p in a.out]
    shards = random_shards(pool, len(ids), a.seed, ids)
    for path, sid in zip(a.out, ids, strict=True):
        write_jsonl(path, shards[sid])
    sizes = [len(s) for s in shards.values()]
    log.info("pooled %d records into %d shards of %d-%d", len(pool), len(ids), min(sizes), max(sizes))


def run_file(a) -> None:
    from .provenance import write_json
    from .records import read_prepared, write_jsonl

    held_out: dict[str, list[Example]] = {"validation": [], "test": []}
    for f in a.validation:
        held_out["validation"] += read_prepared(f)
    for f in a.test:
        held_out["test"] += read_prepared(f)
    exs, report = shard_file(a.input, a.shard, held_out, leakage=a.leakage)
    write_jsonl(a.out, exs)
    write_json(Path(a.out).with_suffix(".report.json"), report)
    log.info(
        "shard %s: %d records (%d duplicates, %d leaked dropped)",
        a.shard, len(exs), report["duplicates_dropped"], report["leaked_dropped"],
    )  # fmt: skip


def run_check(a) -> None:
    from .provenance import atomic_write_text
    from .records import read_prepared

    shards = {stem(path): read_prepared(path) for path in a.shards}
    atomic_write_text(a.out, shard_sizes(shards))
    log.info("%d shards checked, %d records in all", len(shards), sum(map(len, shards.values())))


ACTIONS = {
    "split": (run_split, "Pool the domains' training data and split it into N random shards."),
    "file": (run_file, "Normalize one candidate shard file and check it for leakage."),
    "check": (run_check, "Check that every shard is non-empty; write a table of shard sizes."),
}


def register_arguments(parser) -> None:
    from .arguments import add_actions

    sp = add_actions(parser, ACTIONS)
    sp["split"].add_argument("--train", nargs="+", required=True, help="prepared training JSONL files")
    sp["split"].add_argument("--seed", type=int, required=True, help="config sharding.seed")
    sp["split"].add_argument("--out", nargs="+", required=True, help="one output JSONL per shard (id = file stem)")

    sp["file"].add_argument("--input", required=True, help="candidate shard JSONL")
    sp["file"].add_argument("--shard", required=True, help="shard id")
    sp["file"].add_argument("--validation", nargs="*", default=[], help="prepared validation JSONL files")
    sp["file"].add_argument("--test", nargs="*", default=[], help="prepared test JSONL files")
    sp["file"].add_argument("--leakage", choices=["error", "drop"], required=True, help="config data.leakage")
    sp["file"].add_argument("--out", required=True, help="output JSONL")

    sp["check"].add_argument("--shards", nargs="+", required=True, help="shard JSONL files")
    sp["check"].add_argument("--out", required=True, help="output TSV")


def run(args) -> None:
    args.run(args)
