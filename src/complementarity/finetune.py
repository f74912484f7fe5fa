"""LoRA / QLoRA fine-tuning with loss on response tokens only.

A plain PyTorch loop: AdamW on the adapter weights, linear warm-up then linear decay, gradient
clipping, length-grouped batches (little padding), bf16 autocast on CUDA. The adapter is saved in
standard PEFT format (``PeftModel.from_pretrained`` loads it) into a temporary folder that is renamed
into place only when everything, ``metrics.json`` included, is written.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

from .atomic import atomic_output
from .checkpoint import (
    CHECKPOINT,
    OUT_OF_MEMORY,
    Preempted,
    StopRequests,
    fingerprint,
    load_checkpoint,
    previous_out_of_memory,
    record_out_of_memory,
    save_checkpoint,
)
from .errors import DataError, UserError
from .modeling import Encoded, collate, encode_all, length_grouped_batches, load_base, set_seed
from .provenance import provenance, read_json, write_json
from .records import Example
from .settings import FinetuneSettings
from .trainlog import TrainingLog

log = logging.getLogger(__name__)


# Architectures whose logits are exactly lm_head(decoder output): no soft-capping or logit scaling.
PLAIN_LM_HEAD = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "phi3"}


def response_only_heads(peft_model):
    """(decoder, lm_head) of a causal LM with a plain LM head, to compute logits at response positions only;
    None (full logits, then the loss mask) for other architectures."""
    causal_lm = peft_model.get_base_model()
    if getattr(causal_lm.config, "model_type", None) not in PLAIN_LM_HEAD:
        return None
    decoder, lm_head = causal_lm.get_decoder(), causal_lm.get_output_embeddings()
    return (decoder, lm_head) if decoder is not None and lm_head is not None else None


def lora_config(ft: dict[str, Any]):
    from peft import LoraConfig

    return LoraConfig(
        r=ft["lora_r"],
        lora_alpha=ft["lora_alpha"],
        lora_dropout=ft["lora_dropout"],
        target_modules=ft["target_modules"],
        bias="none",
        task_type="CAUSAL_LM",
    )


def total_steps(n_examples: int, ft: dict[str, Any]) -> int:
    """Optimizer steps: ``max_steps``, or ``epochs`` passes of effective batches (batch_size x grad_accum)."""
    if ft["max_steps"]:
        return ft["max_steps"]
    per_epoch = math.ceil(n_examples / (ft["batch_size"] * ft["grad_accum"]))
    return max(1, math.ceil(per_epoch * ft["epochs"]))


class LoraTrainer:
    """setup() -> train() -> save(); checkpoints in ``checkpoint_dir`` make train() resumable."""

    CHECKPOINT = CHECKPOINT

    def __init__(
        self,
        examples: list[Example],
        base_dir: str | Path,
        *,
        base_cfg: dict[str, Any],
        ft: dict[str, Any],
        name: str,
        checkpoint_dir: str | Path | None = None,
        batch_divisor: int = 1,
    ) -> None:
        if not examples:
            raise ValueError(f"{name}: no training examples")
        self.examples, self.base_dir, self.base_cfg, self.ft, self.name = examples, base_dir, base_cfg, ft, name
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.micro_batch = max(1, ft["batch_size"] // max(1, batch_divisor))
        self.effective_batch = ft["batch_size"] * ft["grad_accum"]
        # Halve the micro-batch only if the previous attempt ran out of memory (it left a record saying so);
        # a retry for any other reason (preemption, time limit, node failure) resumes bit-identically.
        self.oom_before = previous_out_of_memory(self.checkpoint_dir)
        # Fault injection for the tests (a CPU has no GPU memory to run out of): micro-batches of more than
        # COMPLEMENTARITY_FAULT_GPU_FITS sequences raise torch.OutOfMemoryError, as on a GPU that fits that many.
        self.gpu_fits = int(os.environ.get("COMPLEMENTARITY_FAULT_GPU_FITS") or 0)
        if self.oom_before is not None:
            self.micro_batch = min(self.micro_batch, max(1, self.oom_before // 2))

    # --- setup ------------------------------------------------------------------------------------
    def setup(self) -> None:
        import torch

        ft = self.ft
        set_seed(ft["seed"])
        model, self.tok, self.manifest = load_base(
            self.base_dir,
            dtype=self.base_cfg["dtype"],
            quantization=self.base_cfg["quantization"],
            for_training=True,
            gradient_checkpointing=ft["gradient_checkpointing"],
        )
        from peft import get_peft_model  # after load_base, which keeps bitsandbytes out unless quantizing

        self.device = next(model.parameters()).device
        self.model = get_peft_model(model, lora_config(ft))
        self.encoded = encode_all(
            self.tok,
            self.examples,
            template=self.base_cfg["prompt_template"],
            max_seq_len=ft["max_seq_len"],
            policy=ft["truncation"],
        )
        if not self.encoded:
            raise DataError(
                f"{self.name}: all {len(self.examples)} training examples are longer than finetune.max_seq_len="
                f"{ft['max_seq_len']} tokens and finetune.truncation: drop dropped every one, so there is nothing to "
                "train on; raise finetune.max_seq_len, or set finetune.truncation: cut_prompt"
            )
        self.steps = total_steps(len(self.encoded), ft)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(
            self.params,
            lr=ft["learning_rate"],
            weight_decay=ft["weight_decay"],
            fused=self.device.type in ("cpu", "cuda"),
        )
        steps, warmup = self.steps, int(ft["warmup_ratio"] * self.steps)
        self.sched = torch.optim.lr_scheduler.LambdaLR(
            self.opt, lambda s: (s + 1) / (warmup + 1) if s < warmup else max(0.0, (steps - s) / max(1, steps - warmup))
        )
        self.autocast = self.device.type == "cuda" and next(self.model.parameters()).dtype != torch.float16
        self.heads = response_only_heads(self.model)
        self.fingerprint = fingerprint(self.examples, ft, self.manifest)
        self.state = {
            "step": 0,
            "epoch": 0,
            "batch": 0,
            "tokens": 0,
            "history": [],
            "seconds": 0.0,
            "resumed_from": None,
        }
        self.load_checkpoint()
        if self.oom_before is not None:
            log.warning(
                "%s: the previous attempt ran out of memory with micro-batches of %d, so this one uses %d; the "
                "effective batch stays %d, so the result is the same up to floating-point summation order",
                self.name, self.oom_before, self.micro_batch, self.effective_batch,
            )  # fmt: skip
        elif self.micro_batch != ft["batch_size"]:
            log.info(
                "%s: micro-batch %d (finetune.batch_size %d divided by --batch-divisor); the effective batch stays %d",
                self.name, self.micro_batch, ft["batch_size"], self.effective_batch,
            )  # fmt: skip

    # --- checkpoints ------------------------------------------------------------------------------
    def save_checkpoint(self) -> None:
        if self.checkpoint_dir is None:
            return
        save_checkpoint(
            self.checkpoint_dir, fingerprint=self.fingerprint, model=self.model, opt=self.opt, sched=self.sched,
            state=self.state,
        )  # fmt: skip
        log.info("%s: checkpoint at step %d", self.name, self.state["step"])

    def load_checkpoint(self) -> None:
        state = load_checkpoint(
            self.checkpoint_dir, fingerprint=self.fingerprint, model=self.model, opt=self.opt, sched=self.sched,
            name=self.name,
        )  # fmt: skip
        if state is None:
            return
        self.state = state
        self.state["resumed_from"] = self.state["step"]
        log.info("%s: resumed from checkpoint at step %d/%d", self.name, self.state["step"], self.steps)
        if self.oom_before is None:
            log.info("%s: the previous attempt was interrupted (not out of memory): same micro-batch", self.name)

    # --- training ---------------------------------------------------------------------------------
    def _micro_loss(self, batch: list[Encoded], n_tokens: int):
        """Sum of response-token NLL of a micro-batch, divided by the effective batch's token count."""
        import torch
        import torch.nn.functional as F

        if self.gpu_fits and len(batch) > self.gpu_fits:
            raise torch.OutOfMemoryError(f"injected: {len(batch)} sequences > COMPLEMENTARITY_FAULT_GPU_FITS")
        ids, mask, labels = (t.to(self.device, non_blocking=True) for t in collate(batch, self.tok.pad_token_id))
        target = labels[:, 1:]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            if self.heads is not None:
                # Logits only where the loss is: the LM head and the softmax skip prompt and padding
                # positions (identical loss; fewer FLOPs and much less memory with a large vocabulary).
                decoder, lm_head = self.heads
                hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
                keep = target != -100
                logits = lm_head(hidden[keep])
                target = target[keep]
            else:
                logits = self.model(input_ids=ids, attention_mask=mask).logits[:, :-1]
        loss = F.cross_entropy(
            logits.float().reshape(-1, logits.size(-1)), target.reshape(-1), ignore_index=-100, reduction="sum"
        )
        return loss / n_tokens

    def train(self) -> None:

        with StopRequests() as signals:
            self._train(signals)

    def _train(self, signals: StopRequests) -> None:
        import torch

        ft, st = self.ft, self.state
        every = ft["checkpoint_every"]
        log.info(
            "%s: %d examples, %d steps of %d (micro-batches of %d), %.3fM trainable parameters, device %s",
            self.name, len(self.encoded), self.steps, self.effective_batch, self.micro_batch,
            sum(p.numel() for p in self.params) / 1e6, self.device,
        )  # fmt: skip
        self.model.train()
        log_every = max(1, self.steps // 10)
        tb_dir = self.checkpoint_dir / "tensorboard" if self.checkpoint_dir else None
        self.progress = TrainingLog(
            self.name, self.steps, report_to=ft["report_to"], logdir=tb_dir, start_step=st["step"],
            start_tokens=st["tokens"],
        )  # fmt: skip
        # Loss of the steps since the last log line (kept in checkpoints, so a resumed run logs the same).
        window = torch.tensor(st.get("window_loss", 0.0), device=self.device)
        window_steps = st.get("window_steps", 0)
        t0 = time.perf_counter()
        while st["step"] < self.steps:
            batches = list(length_grouped_batches(self.encoded, self.effective_batch, seed=ft["seed"] + st["epoch"]))
            while st["batch"] < len(batches) and st["step"] < self.steps:
                batch = batches[st["batch"]]
                n_tokens = sum(e.n_response_tokens for e in batch)
                step_loss = torch.zeros((), device=self.device)
                try:
                    for i in range(0, len(batch), self.micro_batch):
                        loss = self._micro_loss(batch[i : i + self.micro_batch], n_tokens)
                        loss.backward()
                        step_loss += loss.detach()
                except torch.OutOfMemoryError as exc:
                    record_out_of_memory(self.checkpoint_dir, self.micro_batch)
                    raise OutOfMemory(self.micro_batch, ft, retry=self.checkpoint_dir is not None) from exc
                torch.nn.utils.clip_grad_norm_(self.params, ft["max_grad_norm"])
                self.opt.step()
                self.sched.step()
                self.opt.zero_grad(set_to_none=True)
                st["step"] += 1
                st["batch"] += 1
                st["tokens"] += n_tokens
                window += step_loss
                window_steps += 1
                if st["step"] % log_every == 0 or st["step"] == self.steps:
                    mean = (window / window_steps).item()  # one host sync per logging interval
                    self._check_finite(mean, st["step"] - window_steps, st["step"])
                    st["history"].append({"step": st["step"], "loss": mean})
                    self.progress.step(st["step"], loss=mean, lr=self._lr_of(st["step"]), tokens=st["tokens"])
                    window.zero_()
                    window_steps = 0
                if (every and st["step"] % every == 0) or signals.checkpoint:
                    st["seconds"] += time.perf_counter() - t0
                    t0 = time.perf_counter()
                    st["window_loss"], st["window_steps"] = window.item(), window_steps
                    self._check_finite(st["window_loss"], st["step"] - window_steps, st["step"])  # no NaN checkpoints
                    self.save_checkpoint()
                    signals.checkpoint = False
                    if signals.stop:
                        raise Preempted()
            if st["batch"] >= len(batches):
                st["epoch"] += 1
                st["batch"] = 0
        st["seconds"] += time.perf_counter() - t0
        self.progress.close()
        hist = st["history"]
        if len(hist) >= 2 and hist[-1]["loss"] > 1.5 * hist[0]["loss"]:
            log.warning(
                "%s: the loss rose from %.4f (step %d) to %.4f (step %d): training may have diverged; consider a "
                "lower finetune.learning_rate (now %g)",
                self.name, hist[0]["loss"], hist[0]["step"], hist[-1]["loss"], hist[-1]["step"], ft["learning_rate"],
            )  # fmt: skip

    def _check_finite(self, loss: float, first: int, last: int) -> None:
        """Stop on a NaN or infinite loss: the adapter would be NaNs (a NaN spreads to every weight)."""
        if math.isfinite(loss):
            return
        ft = self.ft
        when = f"at step {last}" if last == first + 1 else f"between steps {first + 1} and {last}"
        raise TrainingDiverged(
            f"{self.name}: the training loss became {loss} {when} of {self.steps} "
            f"(finetune.learning_rate={ft['learning_rate']}, warmup_ratio={ft['warmup_ratio']}, "
            f"max_grad_norm={ft['max_grad_norm']}); training diverged, so no adapter was written. Lower "
            "finetune.learning_rate (1e-4 to 3e-4 is usual for LoRA), or raise finetune.warmup_ratio"
        )

    def _lr_of(self, step: int) -> float:
        """The learning rate optimizer step ``step`` (1-based) used."""
        return self.opt.defaults["lr"] * self.sched.lr_lambdas[0](step - 1)

    # --- outputs ----------------------------------------------------------------------------------
    def metrics(self) -> dict[str, Any]:
        import torch

        st = self.state
        return {
            "name": self.name,
            "examples": len(self.encoded),
            "truncated_examples": sum(e.truncated for e in self.encoded),
            "dropped_too_long": len(self.examples) - len(self.encoded),
            "steps": self.steps,
            "epochs_seen": st["epoch"] + (st["batch"] > 0),
            "effective_batch_size": self.effective_batch,
            "micro_batch_size": self.micro_batch,
            "trainable_parameters": sum(p.numel() for p in self.params),
            "response_tokens_trained": st["tokens"],
            "train_seconds": st["seconds"],
            "response_tokens_per_second": st["tokens"] / st["seconds"] if st["seconds"] else None,
            "resumed_from_step": st["resumed_from"],
            "final_loss": st["history"][-1]["loss"] if st["history"] else None,
            "loss_history": st["history"],
            "peak_gpu_memory_gb": torch.cuda.max_memory_allocated() / 2**30 if self.device.type == "cuda" else None,
        }

    def save(self, out_dir: str | Path) -> dict[str, Any]:
        metrics = self.metrics()
        prov = provenance(
            {"base_model": self.base_cfg, "finetune": self.ft}, base_manifest=self.manifest, seed=self.ft["seed"]
        )
        tb = getattr(getattr(self, "progress", None), "logdir", None)
        save_adapter(self.model, out_dir, metrics, prov, tensorboard=tb)
        return metrics

    def cleanup(self) -> None:
        """Remove the checkpoint once the adapter is safely in place (unless keep_checkpoints)."""
        if self.checkpoint_dir and self.checkpoint_dir.exists():
            if self.ft["keep_checkpoints"]:
                (self.checkpoint_dir / OUT_OF_MEMORY).unlink(missing_ok=True)  # this attempt fitted
            else:
                shutil.rmtree(self.checkpoint_dir)


class OutOfMemory(UserError):
    def __init__(self, micro_batch: int, ft: dict[str, Any], *, retry: bool = False) -> None:
        if micro_batch > 1 and retry:
            auto = (
                "This was recorded in the checkpoint folder: a rerun (or a Snakemake --retries retry) halves the "
                f"micro-batch to {micro_batch // 2}, keeping the effective batch."
            )
        elif micro_batch > 1:
            auto = "Or rerun with --batch-divisor 2 (halves the micro-batch, keeps the effective batch)."
        else:
            auto = "Micro-batches of one sequence do not fit: halving the batch cannot help."
        super().__init__(
            f"out of GPU memory with micro-batches of {micro_batch} sequences of up to {ft['max_seq_len']} tokens. "
            "Lower finetune.batch_size and raise finetune.grad_accum to keep the effective batch, or lower "
            "finetune.max_seq_len, or set finetune.gradient_checkpointing: true or base_model.quantization: 4bit. "
            + auto
        )


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


def finetune(
    examples: list[Example],
    base_dir: str | Path,
    out_dir: str | Path,
    *,
    base_cfg: dict[str, Any],
    ft: dict[str, Any],
    name: str,
    checkpoint_dir: str | Path | None = None,
    batch_divisor: int = 1,
) -> dict[str, Any]:
    """Fine-tune a LoRA adapter on ``examples``; write it and its provenance to ``out_dir``."""
    trainer = LoraTrainer(
        examples,
        base_dir,
        base_cfg=base_cfg,
        ft=ft,
        name=name,
        checkpoint_dir=checkpoint_dir,
        batch_divisor=batch_divisor,
    )
    trainer.setup()
    trainer.train()
    metrics = trainer.save(out_dir)
    trainer.cleanup()
    return metrics


def sort_target_modules(adapter_config: Path) -> None:
    """Write ``target_modules`` sorted: PEFT writes it from a Python set, whose order changes between runs
    (string hash randomization), so the same adapter would otherwise not be byte-identical."""
    cfg = json.loads(adapter_config.read_text())
    if isinstance(cfg.get("target_modules"), list):
        cfg["target_modules"] = sorted(cfg["target_modules"])
        adapter_config.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")


def save_adapter(
    model, out_dir: str | Path, metrics: dict[str, Any], prov: dict[str, Any], *, tensorboard: Path | None = None
) -> None:
    """Write the adapter, metrics and provenance (and TensorBoard logs) to a temp folder, then rename it into place.

    Refuses weights that are not finite (a NaN adapter must never look like a result).
    """
    import torch

    trainable = [p for p in model.parameters() if p.requires_grad]
    if not all(bool(torch.isfinite(p).all()) for p in trainable):
        raise TrainingDiverged(
            f"{Path(out_dir).name}: the adapter weights are not finite (NaN or inf), so it was not written; "
            "lower finetune.learning_rate, or raise finetune.warmup_ratio"
        )
    need = sum(p.numel() * p.element_size() for p in trainable)
    with atomic_output(out_dir, directory=True, need=need) as tmp:
        model.save_pretrained(tmp)
        sort_target_modules(tmp / "adapter_config.json")
        write_json(tmp / "train_config.json", prov)
        write_json(tmp / "metrics.json", metrics)
        if tensorboard is not None and Path(tensorboard).is_dir():
            shutil.copytree(tensorboard, tmp / "tensorboard")


# --- CLI: complementarity finetune ------------------------------------------------------------------


def register_arguments(parser) -> None:
    from .arguments import json_arg

    parser.add_argument("--base", required=True, help="base-model folder (from complementarity base_model)")
    parser.add_argument("--base-model", type=json_arg, required=True, help="JSON: config `base_model` section")
    parser.add_argument(
        "--finetune", type=json_arg, required=True,
        help="JSON: config `finetune` section, the keys that decide the adapter (FinetuneSettings.result_keys)",
    )  # fmt: skip
    parser.add_argument("--checkpoint-every", type=int, required=True, help="config finetune.checkpoint_every")
    parser.add_argument(
        "--keep-checkpoints",
        type=int,
        choices=[0, 1],
        required=True,
        help="config finetune.keep_checkpoints (1 = keep)",
    )
    parser.add_argument(
        "--report-to", choices=["none", "tensorboard"], required=True, help="config finetune.report_to (training logs)"
    )
    parser.add_argument("--train", nargs="+", required=True, help="prepared JSONL files")
    parser.add_argument("--selection", help="selection.json: train on the union of its selected shards only")
    parser.add_argument("--name", default="adapter", help="name used in logs and metrics")
    parser.add_argument(
        "--checkpoint-dir", help="resumable checkpoints go here (outside --out); resumed from if present"
    )
    parser.add_argument(
        "--batch-divisor", type=int, default=1,
        help="divide the micro-batch by this; the effective batch is kept (an out-of-memory rerun halves it by itself)",
    )  # fmt: skip
    parser.add_argument("--out", required=True, help="output adapter folder")


def selected_files(files: list[str], selection: str | Path | None) -> list[str]:
    """The ``files`` of the shards a selection.json selected, in its order (all of them without one)."""
    from .arguments import stem

    if not selection:
        return list(files)
    chosen = read_json(selection, "selected")["selected"]
    by_id = {stem(f): f for f in files}
    missing = [s for s in chosen if s not in by_id]
    if missing:
        raise UserError(f"{selection}: selected shard(s) {missing} are not among --train files {sorted(by_id)}")
    log.info("fine-tuning on the union of %s", ", ".join(chosen))
    return [by_id[s] for s in chosen]


def run(args) -> None:
    from dataclasses import asdict

    from .modeling import keep_unused_out
    from .records import read_prepared

    keep_unused_out(args.base_model["quantization"])
    runtime = {
        "checkpoint_every": args.checkpoint_every,
        "keep_checkpoints": bool(args.keep_checkpoints),
        "report_to": args.report_to,
    }
    ft = asdict(FinetuneSettings.from_dict({**args.finetune, **runtime}))
    examples = [ex for f in selected_files(args.train, args.selection) for ex in read_prepared(f)]
    finetune(
        examples, args.base, args.out, base_cfg=args.base_model, ft=ft, name=args.name,
        checkpoint_dir=args.checkpoint_dir, batch_divisor=args.batch_divisor,
    )  # fmt: skip
