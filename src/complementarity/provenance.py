"""What is saved beside every trained artifact: settings, seed, versions, machine."""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGES = ("complementarity", "torch", "transformers", "peft", "accelerate", "bitsandbytes", "datasets", "tokenizers")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_threads": os.cpu_count(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
    }
    try:
        import torch

        info["cuda"] = torch.cuda.is_available()
        if info["cuda"]:
            info["gpu"] = torch.cuda.get_device_name(0)
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:  # light commands run without torch
        pass
    return info


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically (temp file beside it + rename), creating the folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_json(path: str | Path, data: Any, *, sort_keys: bool = True) -> None:
    """Write JSON atomically (temp file + rename); ``sort_keys=False`` keeps insertion order."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=sort_keys, default=str) + "\n")


def provenance(settings: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "settings": settings,
        "versions": versions(),
        "machine": machine(),
        "argv": sys.argv,
        **extra,
    }
