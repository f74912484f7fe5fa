"""The base model M: build and pre-train the tiny model, expand a GGUF, or record a hub/local model.

Writes the base-model folder: ``base_model.json`` (the manifest every later stage loads M from),
the weights too for the tiny model (built by :mod:`.tiny`) and for a GGUF source (expanded once into
a plain model folder by :mod:`.gguf_source`), and provenance. A hub model is fetched
into the hub cache by the manifest writer, on the submit node, so that offline GPU jobs find it.

CLI: ``complementarity base_model`` (rule build_base_model in workflow/rules/base_model.smk).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .arguments import json_arg
from .atomic import atomic_output


def build_base_model(base_cfg: dict[str, Any], train_files: list[str], out: str | Path, *, max_seq_len: int) -> None:
    """Write the base-model folder ``out`` (atomically: built beside it, then renamed)."""
    from .gguf_source import is_gguf
    from .modeling import write_manifest
    from .provenance import provenance, write_json
    from .records import read_prepared

    with atomic_output(out, directory=True) as tmp:
        if base_cfg["source"] == "tiny":
            from .tiny import build_tiny

            examples = [ex for f in train_files for ex in read_prepared(f)]
            stats = build_tiny(tmp, examples, base_cfg["tiny"], max_seq_len=max_seq_len)
            write_manifest(tmp, base_cfg, ".")
            write_json(tmp / "metrics.json", stats)
        elif is_gguf(base_cfg):  # expanded once into a plain model folder; jobs load that
            from .gguf_source import build_from_gguf

            write_json(tmp / "metrics.json", build_from_gguf(tmp, base_cfg))
            write_manifest(tmp, base_cfg, ".")
        else:
            write_manifest(tmp, base_cfg, base_cfg["source"])
        write_json(tmp / "provenance.json", provenance({"base_model": base_cfg}))


def register_arguments(parser) -> None:
    parser.add_argument("--base-model", type=json_arg, required=True, help="JSON: config `base_model` section")
    parser.add_argument("--train", nargs="*", default=[], help="pre-training text for the tiny model (prepared JSONL)")
    parser.add_argument("--max-seq-len", type=int, required=True, help="config finetune.max_seq_len (tokens)")
    parser.add_argument("--out", required=True, help="output folder")


def run(args) -> None:
    from .modeling import keep_unused_out

    keep_unused_out("none")  # building never loads quantized weights (later jobs do)
    build_base_model(args.base_model, args.train, args.out, max_seq_len=args.max_seq_len)
