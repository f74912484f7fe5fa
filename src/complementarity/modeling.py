"""Loading the base model and tokenizer, and turning examples into token ids.

One code path serves the embedded tiny model, a local model folder and a hub id: everything goes
through ``AutoModelForCausalLM.from_pretrained`` / ``AutoTokenizer.from_pretrained``. The base-model
folder written by the ``build_base_model`` rule always holds ``base_model.json``, a manifest saying
where the weights are (that folder itself for the tiny model; a hub id or local path otherwise).
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import looks_like_path
from .errors import UserError
from .records import Example

log = logging.getLogger(__name__)

MANIFEST = "base_model.json"
IGNORE_INDEX = -100


# x86 instructions that execute bf16 matrix products natively (AVX-512 BF16; AMX tiles on newer Xeons).
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """Whether this CPU executes bf16 natively (a flag in ``cpuinfo``); False where it cannot be read."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return False
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return any(f in flags for f in CPU_BF16_FLAGS)


def device_and_dtype(dtype: str = "auto", *, tiny: bool = False):
    """Pick the device (CUDA when present) and the torch dtype for ``dtype``.

    ``auto``: bfloat16 on a bf16-capable CUDA GPU, and on a CPU with native bf16 instructions
    (see RESULTS.md: losses and the Complementarity ranking agree with float32 on SmolLM2-135M);
    float32 elsewhere, and for the embedded ``tiny`` model (too small for bf16 to pay, and its default
    results then do not depend on the machine's instruction set).
    """
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return device, torch.bfloat16
        if device.type == "cpu" and not tiny and cpu_has_native_bf16():
            return device, torch.bfloat16
        return device, torch.float32
    native = dtype == "bfloat16" and cpu_has_native_bf16()
    if dtype in ("bfloat16", "float16") and device.type == "cpu" and not native:
        log.warning("dtype %s on this CPU (no native bf16) is slow and less precise; consider dtype: auto", dtype)
    return device, getattr(torch, dtype)


def set_threads(threads: int | None = None) -> int:
    """Use ``threads`` torch threads (default: OMP_NUM_THREADS, which Snakemake sets to the job's
    ``threads``), never more; returns the count. Unset and not given: torch's own default."""
    import os

    import torch

    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        threads = int(env) if env.isdigit() and int(env) > 0 else None
    if threads is not None:
        torch.set_num_threads(threads)
    return torch.get_num_threads()


# When a hub repo has transformers-format safetensors weights, the other copies of the weights are not
# fetched (Mistral-7B-Instruct-v0.2 ships two formats: 14.5 GB instead of 29 GB).
NATIVE_WEIGHTS = ("original/", "consolidated")  # the authors' own formats, unused by transformers
OTHER_WEIGHTS = ["*.bin", "*.pt", "*.pth", "*.ckpt", "*.h5", "*.msgpack", "*.onnx", "original/*", "consolidated*"]


def fetch_base_model(source: str, revision: str | None = None) -> str:
    """The local folder to load the base model from, downloading a hub model into the cache first.

    A local folder is returned as given (never copied). A hub id is downloaded once into the Hugging
    Face cache (``HF_HOME`` or ``HF_HUB_CACHE``; on a cluster put it on a filesystem the compute nodes
    see) and its snapshot folder is returned, so that jobs on offline compute nodes load the weights
    from disk. With ``HF_HUB_OFFLINE=1`` a cached snapshot is used without touching the network.
    """
    if looks_like_path(source):
        return source
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"base_model.source: hub model {source!r}" + (f" (revision {revision!r})" if revision else "")
    try:
        ignore = None
        if not constants.HF_HUB_OFFLINE:
            files = HfApi().list_repo_files(source, revision=revision)
            if any(f.endswith(".safetensors") and not f.startswith(NATIVE_WEIGHTS) for f in files):
                ignore = OTHER_WEIGHTS
        log.info("fetching %s into the hub cache %s", source, constants.HF_HUB_CACHE)
        path = snapshot_download(source, revision=revision, ignore_patterns=ignore)
    except (GatedRepoError, RepositoryNotFoundError) as exc:
        raise UserError(
            f"{where} was not found or is gated: check the id, accept the model's licence on the hub, and log "
            f"in on this machine (`hf auth login`, or set HF_TOKEN). ({type(exc).__name__})"
        ) from exc
    except RevisionNotFoundError as exc:
        raise UserError(f"{where}: no such revision; give a branch, tag or commit of that repo") from exc
    except LocalEntryNotFoundError as exc:
        raise UserError(
            f"{where} is not in the hub cache {constants.HF_HUB_CACHE} and the hub cannot be reached "
            f"({'HF_HUB_OFFLINE=1' if constants.HF_HUB_OFFLINE else 'no network'}). Run build_base_model where "
            f"the hub is reachable (it is a local rule: the submit node), fetch it there with "
            f"`hf download {source}`, or set base_model.source to a local model folder."
        ) from exc
    log.info("%s is in %s", source, path)
    return path


def write_manifest(out_dir: str | Path, base_cfg: dict[str, Any], weights: str) -> dict[str, Any]:
    """Record where the base weights are, with the settings that produced them.

    ``weights`` is ``"."`` (the weights are in ``out_dir``), a local model folder (recorded as given,
    never copied) or a hub id. A hub id is fetched into the hub cache here, on the node that runs
    ``build_base_model`` (the submit node), and the manifest records the local snapshot folder, so the
    GPU jobs that read it never need the network.
    """
    manifest = {
        "source": base_cfg["source"],
        "weights": weights,
        "revision": base_cfg.get("revision"),
        "config": base_cfg,
    }
    if weights != "." and not looks_like_path(weights):
        snapshot = fetch_base_model(weights, base_cfg.get("revision"))
        # The snapshot folder is a fixed commit: loading it needs no revision (and no network).
        hub = {"repo_id": weights, "revision": base_cfg.get("revision"), "commit": Path(snapshot).name}
        manifest.update(weights=snapshot, revision=None, hub=hub)
    Path(out_dir, MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(base_dir: str | Path) -> dict[str, Any]:
    path = Path(base_dir, MANIFEST)
    if not path.is_file():
        raise UserError(
            f"{str(path)!r} does not exist: --base must be a folder written by `complementarity base_model`"
        )
    manifest = json.loads(path.read_text())
    if manifest["weights"] == ".":
        manifest["weights"] = str(Path(base_dir))
    elif "hub" in manifest and not Path(manifest["weights"]).is_dir():
        raise UserError(
            f"the base model {manifest['hub']['repo_id']!r} was fetched into {manifest['weights']!r}, which this "
            "machine cannot see. On a cluster, put the hub cache (HF_HOME or HF_HUB_CACHE) on a filesystem that "
            f"the compute nodes share with the submit node, then rerun build_base_model (delete {str(base_dir)!r})."
        )
    return manifest


def check_quantization(quantization: str) -> None:
    """Refuse what cannot work, before anything is loaded."""
    import torch

    if quantization == "4bit" and not torch.cuda.is_available():
        raise UserError(
            "base_model.quantization: 4bit (QLoRA) needs a CUDA GPU, and torch.cuda.is_available() is False "
            "here. Run this job on a GPU node, or set base_model.quantization: none (or 8bit)."
        )


def quiet_libraries(quantization: str) -> None:
    """Keep job logs free of warnings users learn to ignore.

    peft imports bitsandbytes whenever it is installed, and bitsandbytes then warns about its CPU kernels
    (the `kernels` package); without quantization it is not needed, so it is kept out (peft checks for it
    and goes without). peft also asks transformers for a deprecated attribute (a FutureWarning per job).
    """
    import sys
    import warnings

    if quantization == "none" and "bitsandbytes" not in sys.modules:
        sys.modules["bitsandbytes"] = None  # `import bitsandbytes` raises ImportError; find_spec says absent
    warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.*deprecated", category=FutureWarning)


# Installed packages that no ML job uses but that a library imports eagerly when it finds them, with
# what it costs (measured in BENCHMARKS.md). Kept out of the job's process by keep_unused_out().
UNUSED_BY_JOBS = {
    # transformers.modeling_utils -> loss_utils -> loss_for_object_detection imports scipy.optimize when
    # scipy is installed (for DETR-style losses): ~0.2-0.4 s of every job's imports. No causal LM needs it.
    "scipy": "transformers' object-detection losses",
}


def keep_unused_out(quantization: str) -> list[str]:
    """Make the packages of ``UNUSED_BY_JOBS`` (and bitsandbytes unless quantizing) look absent to this
    process, before torch or transformers is imported; returns the names kept out.

    For the process of one ML job only (the CLI of finetune, scoring, evaluation, merge, export,
    base_model calls it first thing): libraries decide "installed?" with ``importlib.util.find_spec``,
    which returns None for a name whose ``sys.modules`` entry is None, and ``import`` of such a name
    raises ImportError (the language reference, "The module cache"). So transformers' ``is_scipy_available``
    and peft's ``is_bnb_available`` answer False and nothing is loaded. Never call it in a process whose
    other code may need these packages (the tests, a notebook): they stay unimportable there.
    """
    import sys

    unused = [*UNUSED_BY_JOBS, *(["bitsandbytes"] if quantization == "none" else [])]
    kept_out = [name for name in unused if name not in sys.modules]
    for name in kept_out:
        sys.modules[name] = None
    quiet_libraries(quantization)
    return kept_out


def load_tokenizer(weights: str, revision: str | None = None):
    from transformers import AutoTokenizer

    try:
        tok = AutoTokenizer.from_pretrained(weights, revision=revision)
    except (OSError, ValueError, TypeError) as exc:
        where = f"the model folder {weights!r}" if Path(weights).is_dir() else f"the model {weights!r}"
        raise UserError(
            f"base_model.source: could not load a tokenizer from {where} ({str(exc).splitlines()[0][:200]}); "
            "a model folder needs its tokenizer files (tokenizer.json or tokenizer.model, and "
            "tokenizer_config.json): copy them from the model's release into it"
        ) from exc
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def load_base(
    base_dir: str | Path,
    *,
    dtype: str = "auto",
    quantization: str = "none",
    for_training: bool = False,
    gradient_checkpointing: bool = False,
):
    """Load the base model and tokenizer that ``base_dir``'s manifest points to."""
    quiet_libraries(quantization)
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    manifest = read_manifest(base_dir)
    weights, revision = manifest["weights"], manifest.get("revision")
    if looks_like_path(weights) and not Path(weights).expanduser().exists():
        raise UserError(
            f"base_model.source: local model folder {weights!r} does not exist; fix the path "
            "(or give a hub model id such as mistralai/Mistral-7B-Instruct-v0.2)"
        )
    check_quantization(quantization)
    threads = set_threads()
    device, torch_dtype = device_and_dtype(dtype, tiny=manifest["source"] == "tiny")
    kwargs: dict[str, Any] = {"dtype": torch_dtype, "revision": revision}
    if quantization == "4bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype,
        )
    elif quantization == "8bit":
        kwargs["quantization_config"] = BitsAndBytesConfig(load_in_8bit=True)
    if device.type == "cuda":
        kwargs["device_map"] = {"": 0}
    try:
        model = AutoModelForCausalLM.from_pretrained(weights, attn_implementation="sdpa", **kwargs)
    except OSError as exc:
        if Path(weights).expanduser().is_dir():
            raise UserError(
                f"base_model.source: the model folder {weights!r} could not be loaded ({str(exc).splitlines()[0]}); "
                "it needs config.json and the weight files (*.safetensors) of a Hugging Face model"
            ) from exc
        raise UserError(
            f"base_model.source: could not load {weights!r}: it is not a local model folder, and as a hub id "
            f"it could not be fetched ({exc}). Fix the path or id; on offline compute nodes fetch the model "
            "into the cache first."
        ) from exc
    if device.type != "cuda" and quantization == "none":
        model.to(device)
    if for_training and quantization != "none":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    elif for_training and gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    model.config.use_cache = False
    tok = load_tokenizer(weights, revision)
    log.info(
        "loaded base %s (%s, %s, quantization=%s) on %s (%d threads): %.2fM parameters",
        manifest["source"],
        weights,
        torch_dtype,
        quantization,
        device,
        threads,
        sum(p.numel() for p in model.parameters()) / 1e6,
    )
    return model, tok, manifest


@dataclass
class Encoded:
    """Token ids of one example; ``labels`` is -100 on prompt tokens (loss on the response only)."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool

    @property
    def n_response_tokens(self) -> int:
        return sum(1 for x in self.labels if x != IGNORE_INDEX)


def use_chat_template(tokenizer, template: str) -> bool:
    has = bool(getattr(tokenizer, "chat_template", None))
    if template == "chat" and not has:
        raise UserError("base_model.prompt_template: chat, but the tokenizer has no chat template; use plain or auto")
    return template == "chat" or (template == "auto" and has)


def encode_prompt(tokenizer, prompt: str, chat: bool) -> list[int]:
    if chat:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=True, return_dict=False
        )
        return list(ids)
    return list(tokenizer(prompt + "\n", add_special_tokens=True)["input_ids"])


def encode_example(tokenizer, ex: Example, *, chat: bool, max_seq_len: int) -> Encoded:
    """prompt ids + response ids + EOS; the prompt is cut from the left when too long."""
    prompt_ids = encode_prompt(tokenizer, ex.prompt, chat)
    response_ids = [*list(tokenizer(ex.response, add_special_tokens=False)["input_ids"]), tokenizer.eos_token_id]
    truncated = False
    if len(prompt_ids) + len(response_ids) > max_seq_len:
        truncated = True
        response_ids = response_ids[: max_seq_len - 1]
        keep = max_seq_len - len(response_ids)
        prompt_ids = prompt_ids[-keep:]
    return Encoded(prompt_ids + response_ids, [IGNORE_INDEX] * len(prompt_ids) + response_ids, truncated)


def encode_all(
    tokenizer, examples: list[Example], *, template: str, max_seq_len: int, policy: str = "cut_prompt"
) -> list[Encoded]:
    """Encode every example; ``policy`` says what to do with one longer than ``max_seq_len`` tokens.

    ``cut_prompt``: keep the response, cut the prompt from the left (and the response's end if it
    alone is too long); ``drop``: leave such examples out; ``error``: refuse, naming them.
    Too-long examples are counted and reported in every case.
    """
    chat = use_chat_template(tokenizer, template)
    encoded = [encode_example(tokenizer, ex, chat=chat, max_seq_len=max_seq_len) for ex in examples]
    long = [ex.id for ex, e in zip(examples, encoded, strict=True) if e.truncated]
    if not long:
        return encoded
    if policy == "error":
        raise UserError(
            f"{len(long)} of {len(encoded)} examples are longer than finetune.max_seq_len={max_seq_len} tokens "
            f"(e.g. {', '.join(map(repr, long[:5]))}). Raise finetune.max_seq_len, or set finetune.truncation to "
            "cut_prompt (keep the response, cut the prompt) or drop (leave them out)."
        )
    if policy == "drop":
        log.warning("dropped %d of %d examples longer than max_seq_len=%d tokens", len(long), len(encoded), max_seq_len)
        return [e for e in encoded if not e.truncated]
    log.warning(
        "%d of %d examples exceed max_seq_len=%d tokens and were cut (prompt from the left); "
        "raise finetune.max_seq_len to keep them whole",
        len(long), len(encoded), max_seq_len,
    )  # fmt: skip
    return encoded


def collate(batch: list[Encoded], pad_id: int):
    """Right-pad a batch into tensors (input_ids, attention_mask, labels)."""
    import torch

    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return ids, mask, labels


# --- training helpers shared by the tiny model's pre-training and LoRA fine-tuning ----------------


def set_seed(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def length_grouped_batches(
    items: list[Encoded], batch_size: int, *, seed: int, group: int = 32
) -> Iterator[list[Encoded]]:
    """Shuffle, sort by length within windows of ``group`` batches, then shuffle the batches.

    Sequences of similar length share a batch (little padding) while the order stays random.
    """
    rng = random.Random(seed)
    order = list(range(len(items)))
    rng.shuffle(order)
    batches: list[list[int]] = []
    window = batch_size * group
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: len(items[i].input_ids))
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    for b in batches:
        yield [items[i] for i in b]
