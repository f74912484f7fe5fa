"""Training logs users can watch: a progress line per logging step, and TensorBoard event files.

Each logging step writes one line to the job log (``step 40/100 (40%) loss 1.2345 lr 1.60e-03
1834 tok/s elapsed 0:00:21 ETA 0:00:32``) and, with ``finetune.report_to: tensorboard``, the scalars
``train/loss``, ``train/learning_rate`` and ``train/tokens_per_second`` (x = optimizer step) to event
files. While training they are in ``<checkpoint dir>/tensorboard/`` (``tensorboard --logdir
results/checkpoints``); the finished adapter folder gets a copy in ``tensorboard/`` beside metrics.json.
Logging reads values the loop has already computed: it changes nothing that is learned.
"""

from __future__ import annotations

import datetime
import logging
import tempfile
import time
from pathlib import Path

from .errors import UserError

log = logging.getLogger(__name__)

REPORT_TO = ("none", "tensorboard")
TAGS = {"loss": "train/loss", "lr": "train/learning_rate", "tokens_per_second": "train/tokens_per_second"}


def _clock(seconds: float) -> str:
    return str(datetime.timedelta(seconds=round(seconds)))


class TrainingLog:
    """``step()`` at each logging step; ``close()`` at the end. ``logdir`` is None without TensorBoard."""

    def __init__(
        self,
        name: str,
        total_steps: int,
        *,
        report_to: str,
        logdir: str | Path | None,
        start_step: int = 0,
        start_tokens: int = 0,
    ):
        if report_to not in REPORT_TO:
            raise UserError(f"finetune.report_to: {report_to!r} is not one of {', '.join(REPORT_TO)}")
        self.name, self.total = name, total_steps
        self.writer = None
        self.logdir: Path | None = None
        if report_to == "tensorboard":
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise UserError(
                    "finetune.report_to: tensorboard needs the tensorboard package, which is not installed: "
                    "`pip install tensorboard==2.21.0` (or `pip install complementarity[dev]`), or set report_to: none"
                ) from exc
            self.logdir = Path(logdir) if logdir else Path(tempfile.mkdtemp(prefix=f"tb-{name}-"))
            self.logdir.mkdir(parents=True, exist_ok=True)
            # purge_step: a run resumed from a checkpoint drops the events logged after that checkpoint.
            self.writer = SummaryWriter(str(self.logdir), purge_step=start_step + 1 if start_step else None)
        self.t_start = self.t_last = time.perf_counter()
        self.start_step = self.last_step = start_step
        self.tokens_last = start_tokens

    def step(self, step: int, *, loss: float, lr: float, tokens: int) -> dict[str, float]:
        """Log one logging step; ``tokens`` is the running total of response tokens trained."""
        now = time.perf_counter()
        window = now - self.t_last
        tok_s = (tokens - self.tokens_last) / window if window > 0 else 0.0
        elapsed = now - self.t_start
        done = step - self.start_step
        eta = elapsed / done * (self.total - step) if done else float("nan")
        log.info(
            "%s: step %d/%d (%.0f%%) loss %.4f lr %.2e %.0f tok/s elapsed %s ETA %s",
            self.name, step, self.total, 100 * step / self.total, loss, lr, tok_s, _clock(elapsed),
            _clock(eta) if eta == eta else "?",
        )  # fmt: skip
        values = {"loss": loss, "lr": lr, "tokens_per_second": tok_s}
        if self.writer is not None:
            for key, tag in TAGS.items():
                self.writer.add_scalar(tag, values[key], step)
            self.writer.flush()
        self.t_last, self.last_step, self.tokens_last = now, step, tokens
        return values

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def read_scalars(logdir: str | Path) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value), ...]} from the event files in ``logdir`` (TensorBoard's own reader)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}
