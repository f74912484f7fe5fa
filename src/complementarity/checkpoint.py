"""Resumable training state: what a checkpoint holds, when it may be resumed, and the signals that ask for one.

A checkpoint is one file, ``<checkpoint_dir>/checkpoint.pt``: the trainable (adapter) weights, the
optimizer and scheduler states, every RNG state and the loop counters, plus a fingerprint of the data,
settings and base model it was made with. It is written to a temporary file and renamed into place, so
a kill mid-save keeps the previous one; the one before it is kept as ``checkpoint.prev.pt``. A checkpoint
that cannot be read (truncated, corrupted) is reported, set aside as ``<name>.corrupt`` and the previous
one is tried, else training starts from scratch.

``out_of_memory.json`` in the same folder records that an attempt ran out of GPU memory, and with which
micro-batch: the next attempt (a Snakemake retry) halves it. Without that record a retry (after a
preemption, a time limit, a node failure) keeps the micro-batch and resumes bit-identically.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import signal
from pathlib import Path
from typing import Any

from .atomic import atomic_output
from .provenance import write_json
from .records import Example
from .settings import FinetuneSettings

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint.pt"
PREVIOUS = "checkpoint.prev.pt"
OUT_OF_MEMORY = "out_of_memory.json"


def fingerprint(examples: list[Example], ft: dict[str, Any], manifest: dict[str, Any]) -> str:
    """What a checkpoint must match to be resumed: the data, the settings and the base model.

    ``batch_size`` and ``grad_accum`` are left out on purpose: only their product (the effective
    batch) decides what is learned, so a retry with a smaller micro-batch resumes the same run; so are
    the settings that change nothing learned (``FinetuneSettings.RUNTIME``: checkpointing, ``report_to``).
    """
    settings = {k: v for k, v in ft.items() if k not in ("batch_size", "grad_accum", *FinetuneSettings.RUNTIME)}
    settings["effective_batch"] = ft["batch_size"] * ft["grad_accum"]
    h = hashlib.sha256(
        json.dumps([settings, manifest.get("weights"), manifest.get("config")], sort_keys=True, default=str).encode()
    )
    for ex in examples:
        h.update(f"{ex.id}\0{ex.prompt}\0{ex.response}\0".encode())
    return h.hexdigest()


class StopRequests:
    """SIGTERM (SLURM's preemption / time-limit kill) and SIGUSR1 (SLURM's --signal warning) handlers.

    Both ask for a checkpoint at the next optimizer-step boundary; SIGTERM then stops the job with
    exit status 143, so the scheduler (or Snakemake's --retries) runs it again and it resumes.
    """

    def __init__(self) -> None:
        self.checkpoint = False
        self.stop = False
        self._old: dict[int, Any] = {}

    def _handle(self, signum, frame) -> None:
        self.checkpoint = True
        if signum == signal.SIGTERM:
            self.stop = True
        log.warning("received %s: checkpointing at the next step", signal.Signals(signum).name)

    def __enter__(self) -> StopRequests:
        for sig in (signal.SIGTERM, signal.SIGUSR1):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


class Preempted(SystemExit):
    """Raised after a SIGTERM checkpoint: exit status 143, as if killed by SIGTERM."""

    def __init__(self) -> None:
        super().__init__(143)


def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(checkpoint_dir: Path, *, fingerprint: str, model, opt, sched, state: dict[str, Any]) -> Path:
    """Write the resumable state to ``checkpoint_dir/checkpoint.pt`` (atomically); keep the one before; return its path."""
    import torch

    trainable = {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}
    payload = {
        "fingerprint": fingerprint,
        "trainable": trainable,
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "rng": rng_state(),
        "state": state,
    }
    need = 3 * sum(t.numel() * t.element_size() for t in trainable.values())  # weights + two AdamW moments
    path = checkpoint_dir / CHECKPOINT
    with atomic_output(path, need=need) as tmp:
        torch.save(payload, tmp)
        if path.exists():
            path.replace(checkpoint_dir / PREVIOUS)  # a kill between the two renames leaves the previous one
    return path


def _read(path: Path, name: str) -> dict[str, Any] | None:
    """The checkpoint at ``path``, or None (reported, and the file set aside) when it cannot be read."""
    import torch

    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(payload, dict) or not {"fingerprint", "trainable", "state"} <= payload.keys():
            raise ValueError("it is not a checkpoint of this program")
        return payload
    except Exception as exc:  # a truncated or corrupted file: any unpickling or zip error
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        aside = path.with_name(path.name + ".corrupt")
        path.replace(aside)
        log.warning(
            "%s: checkpoint %s cannot be read (%s: %s); set aside as %s", name, path, type(exc).__name__, reason, aside
        )
        return None


def load_checkpoint(
    checkpoint_dir: Path | None, *, fingerprint: str, model, opt, sched, name: str
) -> dict[str, Any] | None:
    """Restore weights, optimizer, scheduler and RNGs from a matching checkpoint; return its loop state.

    The latest readable checkpoint is used (``checkpoint.pt``, else ``checkpoint.prev.pt``). None when
    there is none, or it was made with other data or settings: training starts from scratch.
    """
    import torch

    if checkpoint_dir is None:
        return None
    payload = None
    for candidate in (checkpoint_dir / CHECKPOINT, checkpoint_dir / PREVIOUS):
        if candidate.is_file():
            payload = _read(candidate, name)
            if payload is not None:
                path = candidate
                break
            log.warning("%s: trying the previous checkpoint, else starting from scratch", name)
    if payload is None:
        return None
    if payload["fingerprint"] != fingerprint:
        log.warning("%s: ignoring checkpoint %s: it was made with other data or settings", name, path)
        return None
    named = dict(model.named_parameters())
    with torch.no_grad():
        for n, t in payload["trainable"].items():
            named[n].copy_(t)
    opt.load_state_dict(payload["optimizer"])
    sched.load_state_dict(payload["scheduler"])
    set_rng_state(payload["rng"])
    return payload["state"]


def record_out_of_memory(checkpoint_dir: Path | None, micro_batch: int) -> None:
    """Note, for the next attempt, that this one ran out of memory with micro-batches of ``micro_batch``."""
    if checkpoint_dir is not None:
        write_json(checkpoint_dir / OUT_OF_MEMORY, {"micro_batch": micro_batch})


def previous_out_of_memory(checkpoint_dir: Path | None) -> int | None:
    """The micro-batch with which the previous attempt ran out of memory, if it did."""
    path = checkpoint_dir / OUT_OF_MEMORY if checkpoint_dir else None
    if path is None or not path.is_file():
        return None
    try:
        return int(json.loads(path.read_text())["micro_batch"])
    except (ValueError, KeyError, TypeError):
        log.warning("ignoring unreadable %s", path)
        return None
