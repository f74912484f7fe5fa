"""Data preparation: normalize, de-duplicate, carve validation sets, check leakage, make shards.

Leakage: a validation or test prompt that also appears in training data (any domain's training data,
any shard) would let a shard "help" a domain by memorising its validation answers. With
``data.leakage: error`` that stops the run before training; with ``drop`` the training records are
removed and counted in the report.
"""

from __future__ import annotations

import logging
import random
import unicodedata
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from .errors import DataError
from .records import Example

log = logging.getLogger(__name__)


def normalize_text(text: str) -> str:
    """NFC unicode, Unix newlines, no trailing whitespace on lines or at the ends."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip()


def normalize(examples: Iterable[Example], domain: str | None = None) -> list[Example]:
    return [
        replace(ex, prompt=normalize_text(ex.prompt), response=normalize_text(ex.response), domain=domain or ex.domain)
        for ex in examples
    ]


def drop_duplicates(examples: list[Example]) -> tuple[list[Example], int]:
    """Drop exact (prompt, response) duplicates, keeping the first; return the rest and the count dropped."""
    seen: set[tuple[str, str]] = set()
    out = []
    for ex in examples:
        key = (ex.prompt, ex.response)
        if key not in seen:
            seen.add(key)
            out.append(ex)
    return out, len(examples) - len(out)


def carve_validation(
    examples: list[Example], *, fraction: float, cap: int | None, seed: int, domain: str
) -> tuple[list[Example], list[Example]]:
    """Split off a validation set; all records sharing a prompt go to the same side (no leakage)."""
    by_prompt: dict[str, list[Example]] = {}
    for ex in examples:
        by_prompt.setdefault(ex.prompt, []).append(ex)
    prompts = sorted(by_prompt)
    if len(prompts) < 2:
        raise DataError(
            f"domains.{domain}.train: {len(prompts)} distinct prompt(s) is too few to carve a validation set from; "
            f"add training data or give domains.{domain}.validation"
        )
    random.Random(seed).shuffle(prompts)
    n_val = max(1, round(fraction * len(prompts)))
    if cap:
        n_val = min(n_val, cap)
    n_val = min(n_val, len(prompts) - 1)
    val = [ex for p in prompts[:n_val] for ex in by_prompt[p]]
    train = [ex for p in prompts[n_val:] for ex in by_prompt[p]]
    return train, val


def remove_leakage(
    train: list[Example], held_out: dict[str, set[str]], *, policy: str, where: str
) -> tuple[list[Example], int]:
    """Apply the leakage policy to ``train`` given held-out prompts by split name."""
    leaked = []  # (record, first held-out split holding its prompt), each record once
    for ex in train:
        split = next((name for name, prompts in held_out.items() if ex.prompt in prompts), None)
        if split is not None:
            leaked.append((ex, split))
    if not leaked:
        return train, 0
    if policy == "error":
        shown = "; ".join(f"{ex.id!r} ({split}): {ex.prompt[:60]!r}" for ex, split in leaked[:5])
        raise DataError(
            f"{where}: {len(leaked)} training record(s) have a prompt that is also in a validation or test set, "
            f"e.g. {shown}. Remove them from the training data, or set data.leakage: drop to drop and count them."
        )
    bad = {id(ex) for ex, _ in leaked}
    kept = [ex for ex in train if id(ex) not in bad]
    log.warning(
        "%s: dropped %d training record(s) whose prompt is in a validation/test set", where, len(train) - len(kept)
    )
    return kept, len(train) - len(kept)


def prepare_domains(
    domains: dict[str, dict[str, Any]], data_cfg: dict[str, Any], base_dir: str | Path = "."
) -> tuple[dict[str, dict[str, list[Example]]], dict[str, Any]]:
    """Load, normalize, de-duplicate and split every domain; check cross-domain leakage.

    Returns ({domain: {"train", "validation", "test": [Example]}}, report).
    """
    from .sources import load_source

    out: dict[str, dict[str, list[Example]]] = {}
    report: dict[str, Any] = {"domains": {}}
    for name, spec in domains.items():
        rep: dict[str, Any] = {}
        splits: dict[str, list[Example]] = {}
        for split in ("train", "validation", "test"):
            if spec.get(split) is None:
                splits[split] = []
                continue
            exs = normalize(load_source(spec[split], base_dir), domain=name)
            deduped, dups = drop_duplicates(exs)
            if split == "test":
                # Test sets stay whole, so scores compare with published numbers (MMLU repeats questions).
                rep["test_duplicates_kept"] = dups
            else:
                exs = deduped
                rep[f"{split}_duplicates_dropped"] = dups
            if not exs:
                raise DataError(f"domains.{name}.{split}: no records; point it at a non-empty dataset")
            splits[split] = exs
        if spec.get("validation") is None:
            splits["train"], splits["validation"] = carve_validation(
                splits["train"],
                fraction=data_cfg["validation_fraction"],
                cap=data_cfg["validation_max"],
                seed=data_cfg["seed"],
                domain=name,
            )
            rep["validation_carved_from_train"] = True
        out[name] = splits
        report["domains"][name] = rep
    held_out = {
        "validation": {ex.prompt for d in out.values() for ex in d["validation"]},
        "test": {ex.prompt for d in out.values() for ex in d["test"]},
    }
    # Validation prompts must not be in any test set either (they would bias model selection).
    for name, splits in out.items():
        splits["train"], dropped = remove_leakage(
            splits["train"], held_out, policy=data_cfg["leakage"], where=f"domains.{name}.train"
        )
        splits["validation"], dropped_val = remove_leakage(
            splits["validation"],
            {"test": held_out["test"]},
            policy=data_cfg["leakage"],
            where=f"domains.{name}.validation",
        )
        rep = report["domains"][name]
        rep["leaked_train_records_dropped"] = dropped
        rep["leaked_validation_records_dropped"] = dropped_val
        for split, exs in splits.items():
            rep[split] = len(exs)
        if not splits["validation"]:
            raise DataError(
                f"domains.{name}.validation: empty after removing test-set prompts; give more validation data"
            )
    return out, report


# --- CLI: complementarity prepare --------------------------------------------------------------------


def register_arguments(parser) -> None:
    from .arguments import json_arg

    parser.add_argument("--domains", type=json_arg, required=True, help="JSON: config `domains` section")
    parser.add_argument("--data", type=json_arg, required=True, help="JSON: config `data` section")
    parser.add_argument("--base-dir", default=".", help="folder relative data paths resolve against")
    parser.add_argument("--out-dir", required=True, help="writes OUT_DIR/<domain>/{train,validation,test}.jsonl")


def run(args) -> None:
    from .provenance import write_json
    from .records import write_jsonl

    domains, report = prepare_domains(args.domains, args.data, args.base_dir)
    out = Path(args.out_dir)
    for name, splits in domains.items():
        for split, exs in splits.items():
            write_jsonl(out / name / f"{split}.jsonl", exs)
    write_json(out / "report.json", report)
    for name, rep in report["domains"].items():
        log.info("%s: %d train, %d validation, %d test", name, rep["train"], rep["validation"], rep["test"])
